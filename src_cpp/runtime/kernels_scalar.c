/* kernels_scalar.c -- portable block kernels and the kernel table.
 * The reference every SIMD kernel must match, and the fallback for CPUs and
 * compilers without one. */
#include "frig_internal.h"

#include <string.h>

/* Exact IEEE binary16 -> binary32 (every half is representable as a float). */
float frig_half_to_float(uint16_t half)
{
    const uint32_t sign = (uint32_t)(half & 0x8000u) << 16;
    uint32_t exponent = (half >> 10) & 0x1Fu;
    uint32_t mantissa = half & 0x3FFu;
    uint32_t bits;
    float value;
    if (exponent == 0x1Fu) {
        bits = sign | 0x7F800000u | (mantissa << 13); /* inf/NaN (rejected by the loader) */
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {
        /* Subnormal half: normalise the mantissa into a normal float. */
        exponent = 113u;
        while (!(mantissa & 0x400u)) {
            mantissa <<= 1;
            --exponent;
        }
        bits = sign | (exponent << 23) | ((mantissa & 0x3FFu) << 13);
    }
    memcpy(&value, &bits, 4);
    return value;
}

/* The two portable kernels differ only in how one stored delta becomes a float. */
#define FRIG_F32_VALUE(x) (x)
#define FRIG_SCALAR_KERNEL(name, delta_t, to_float)                                      \
    static void name(float *out, const float *base, const uint32_t *shapes,             \
                     const void *deltas, uint32_t entry_count, const float *weights)    \
    {                                                                                    \
        float acc[FRIG_BLOCK_FLOATS];                                                    \
        uint32_t k, j;                                                                   \
        memcpy(acc, base, sizeof acc);                                                   \
        for (k = 0; k < entry_count; ++k) {                                              \
            const float w = weights[shapes[k]];                                          \
            const delta_t *d = (const delta_t *)deltas + (size_t)k * FRIG_BLOCK_FLOATS;  \
            if (w == 0.0f)                                                               \
                continue;                                                                \
            for (j = 0; j < FRIG_BLOCK_FLOATS; ++j)                                      \
                acc[j] += w * to_float(d[j]);                                            \
        }                                                                                \
        memcpy(out, acc, sizeof acc);                                                    \
    }

FRIG_SCALAR_KERNEL(kernel_scalar_f32, float, FRIG_F32_VALUE)
FRIG_SCALAR_KERNEL(kernel_scalar_f16, uint16_t, frig_half_to_float)

frig_block_kernel frig_kernel_for(int level, int encoding)
{
    if (encoding != FRIG_DELTAS_F32 && encoding != FRIG_DELTAS_F16)
        return NULL;
    switch (level) {
    case FRIG_SIMD_SCALAR:
        return encoding == FRIG_DELTAS_F16 ? kernel_scalar_f16 : kernel_scalar_f32;
    case FRIG_SIMD_SSE2:
    case FRIG_SIMD_AVX2:
    case FRIG_SIMD_AVX512: return frig_kernel_x86(level, encoding);
    case FRIG_SIMD_NEON: return frig_kernel_neon(encoding);
    default: return NULL;
    }
}
