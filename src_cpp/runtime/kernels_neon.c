/* kernels_neon.c -- NEON block kernels for ARM builds (12 q registers per block). */
#include "frig_internal.h"

#if defined(__ARM_NEON) || defined(__aarch64__) || defined(_M_ARM64)
#include <arm_neon.h>

static void kernel_neon_f32(float *out, const float *base, const uint32_t *shapes,
                            const void *deltas, uint32_t entry_count, const float *weights)
{
    float32x4_t a[12];
    uint32_t k;
    int j;
    for (j = 0; j < 12; ++j)
        a[j] = vld1q_f32(base + 4 * j);
    for (k = 0; k < entry_count; ++k) {
        const float w = weights[shapes[k]];
        const float *d = (const float *)deltas + (size_t)k * FRIG_BLOCK_FLOATS;
        if (w == 0.0f)
            continue;
        for (j = 0; j < 12; ++j)
            a[j] = vmlaq_n_f32(a[j], vld1q_f32(d + 4 * j), w);
    }
    for (j = 0; j < 12; ++j)
        vst1q_f32(out + 4 * j, a[j]);
}

#if defined(__aarch64__) || defined(_M_ARM64)
/* AArch64 always has the half <-> single conversion instructions. */
static void kernel_neon_f16(float *out, const float *base, const uint32_t *shapes,
                            const void *deltas, uint32_t entry_count, const float *weights)
{
    float32x4_t a[12];
    uint32_t k;
    int j;
    for (j = 0; j < 12; ++j)
        a[j] = vld1q_f32(base + 4 * j);
    for (k = 0; k < entry_count; ++k) {
        const float w = weights[shapes[k]];
        const uint16_t *d = (const uint16_t *)deltas + (size_t)k * FRIG_BLOCK_FLOATS;
        if (w == 0.0f)
            continue;
        for (j = 0; j < 12; ++j)
            a[j] = vmlaq_n_f32(a[j], vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(d + 4 * j))), w);
    }
    for (j = 0; j < 12; ++j)
        vst1q_f32(out + 4 * j, a[j]);
}
#  define FRIG_NEON_F16 kernel_neon_f16
#else
#  define FRIG_NEON_F16 NULL /* 32-bit ARM: binary16 rigs use the scalar kernel */
#endif

frig_block_kernel frig_kernel_neon(int encoding)
{
    return encoding == FRIG_DELTAS_F16 ? FRIG_NEON_F16 : kernel_neon_f32;
}

#else

frig_block_kernel frig_kernel_neon(int encoding)
{
    (void)encoding;
    return NULL;
}

#endif
