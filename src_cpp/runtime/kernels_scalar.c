/* kernels_scalar.c -- portable block kernel and the kernel table.
 * The reference every SIMD kernel must match, and the fallback for CPUs and
 * compilers without one. */
#include "frig_internal.h"

#include <string.h>

void frig_kernel_scalar(float *out, const float *base, const uint32_t *shapes,
                        const float *deltas, uint32_t entry_count, const float *weights)
{
    float acc[FRIG_BLOCK_FLOATS];
    uint32_t k, j;
    memcpy(acc, base, sizeof acc);
    for (k = 0; k < entry_count; ++k) {
        const float w = weights[shapes[k]];
        const float *d = deltas + (size_t)k * FRIG_BLOCK_FLOATS;
        if (w == 0.0f)
            continue;
        for (j = 0; j < FRIG_BLOCK_FLOATS; ++j)
            acc[j] += w * d[j];
    }
    memcpy(out, acc, sizeof acc);
}

frig_block_kernel frig_kernel_for(int level)
{
    switch (level) {
    case FRIG_SIMD_SCALAR: return frig_kernel_scalar;
    case FRIG_SIMD_SSE2:
    case FRIG_SIMD_AVX2:
    case FRIG_SIMD_AVX512: return frig_kernel_x86(level);
    case FRIG_SIMD_NEON: return frig_kernel_neon();
    default: return NULL;
    }
}
