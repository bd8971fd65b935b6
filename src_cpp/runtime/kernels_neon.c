/* kernels_neon.c -- NEON block kernel for ARM builds (12 q registers per block). */
#include "frig_internal.h"

#if defined(__ARM_NEON) || defined(__aarch64__) || defined(_M_ARM64)
#include <arm_neon.h>

static void kernel_neon(float *out, const float *base, const uint32_t *shapes,
                        const float *deltas, uint32_t entry_count, const float *weights)
{
    float32x4_t a[12];
    uint32_t k;
    int j;
    for (j = 0; j < 12; ++j)
        a[j] = vld1q_f32(base + 4 * j);
    for (k = 0; k < entry_count; ++k) {
        const float w = weights[shapes[k]];
        const float *d = deltas + (size_t)k * FRIG_BLOCK_FLOATS;
        if (w == 0.0f)
            continue;
        for (j = 0; j < 12; ++j)
            a[j] = vmlaq_n_f32(a[j], vld1q_f32(d + 4 * j), w);
    }
    for (j = 0; j < 12; ++j)
        vst1q_f32(out + 4 * j, a[j]);
}

frig_block_kernel frig_kernel_neon(void)
{
    return kernel_neon;
}

#else

frig_block_kernel frig_kernel_neon(void)
{
    return NULL;
}

#endif
