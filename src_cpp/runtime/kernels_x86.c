/* kernels_x86.c -- SSE2, AVX2+FMA(+F16C) and AVX-512F block kernels.
 *
 * Each kernel keeps one block's 48 floats in registers (12 xmm / 6 ymm / 3 zmm),
 * adds w * delta for every active shape of the block, and stores once: the
 * output is written exactly once however many shapes touch it.  The _f16
 * variants read binary16 deltas (half the bytes, see rig_format.md) and widen
 * them to float32 before the same float32 arithmetic.  The wider kernels carry
 * target attributes so this file builds without -mavx*; they run only after
 * cpu_features.c confirmed that the CPU and the OS support them. */
#include "frig_internal.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#  define FRIG_X86_KERNELS 1
#  define FRIG_TARGET(isa) __attribute__((target(isa)))
#elif defined(_M_X64)
#  define FRIG_X86_KERNELS 1
#  define FRIG_TARGET(isa)
#endif

#ifdef FRIG_X86_KERNELS
#include <immintrin.h>

/* ---- SSE2 (x86-64 baseline) ------------------------------------------------ */

/* binary16 -> binary32 without F16C: move exponent and mantissa into float
 * position and rescale by 2^112 (which also turns half subnormals into the right
 * float), then restore the sign.  Exact for every finite half; a host that sets
 * DAZ would flush the sub-2^-14 halves to zero, the one difference to F16C. */
static __m128 half4_to_float4_sse2(__m128i h32)
{
    const __m128i sign = _mm_slli_epi32(_mm_and_si128(h32, _mm_set1_epi32(0x8000)), 16);
    const __m128i magnitude = _mm_slli_epi32(_mm_and_si128(h32, _mm_set1_epi32(0x7FFF)), 13);
    const __m128 scaled = _mm_mul_ps(_mm_castsi128_ps(magnitude), _mm_set1_ps(5.192296858534828e33f));
    return _mm_or_ps(scaled, _mm_castsi128_ps(sign));
}

static void kernel_sse2_f32(float *out, const float *base, const uint32_t *shapes,
                            const void *deltas, uint32_t entry_count, const float *weights)
{
    __m128 a[12];
    uint32_t k;
    int j;
    for (j = 0; j < 12; ++j)
        a[j] = _mm_loadu_ps(base + 4 * j);
    for (k = 0; k < entry_count; ++k) {
        const float w = weights[shapes[k]];
        const float *d = (const float *)deltas + (size_t)k * FRIG_BLOCK_FLOATS;
        __m128 wv;
        if (w == 0.0f)
            continue;
        wv = _mm_set1_ps(w);
        for (j = 0; j < 12; ++j)
            a[j] = _mm_add_ps(a[j], _mm_mul_ps(wv, _mm_loadu_ps(d + 4 * j)));
    }
    for (j = 0; j < 12; ++j)
        _mm_storeu_ps(out + 4 * j, a[j]);
}

static void kernel_sse2_f16(float *out, const float *base, const uint32_t *shapes,
                            const void *deltas, uint32_t entry_count, const float *weights)
{
    const __m128i zero = _mm_setzero_si128();
    __m128 a[12];
    uint32_t k;
    int j;
    for (j = 0; j < 12; ++j)
        a[j] = _mm_loadu_ps(base + 4 * j);
    for (k = 0; k < entry_count; ++k) {
        const float w = weights[shapes[k]];
        const uint16_t *d = (const uint16_t *)deltas + (size_t)k * FRIG_BLOCK_FLOATS;
        __m128 wv;
        if (w == 0.0f)
            continue;
        wv = _mm_set1_ps(w);
        for (j = 0; j < 6; ++j) {
            const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(d + 8 * j));
            a[2 * j] = _mm_add_ps(a[2 * j], _mm_mul_ps(wv, half4_to_float4_sse2(_mm_unpacklo_epi16(h, zero))));
            a[2 * j + 1] = _mm_add_ps(a[2 * j + 1],
                                      _mm_mul_ps(wv, half4_to_float4_sse2(_mm_unpackhi_epi16(h, zero))));
        }
    }
    for (j = 0; j < 12; ++j)
        _mm_storeu_ps(out + 4 * j, a[j]);
}

/* ---- AVX2 + FMA (+ F16C) and AVX-512F -------------------------------------- *
 * One body for the four FMA kernels: they differ only in register width and in
 * how a delta vector is loaded (float32 as is, binary16 widened by F16C).  The
 * accumulator array has a constant size (48 / lanes), so the compiler unrolls
 * the loops and keeps the whole block in registers. */
#define FRIG_FMA_KERNEL(name, isa, vec, lanes, delta_t, load_delta, loadu, set1, fmadd, storeu) \
    FRIG_TARGET(isa)                                                                          \
    static void name(float *out, const float *base, const uint32_t *shapes,                 \
                     const void *deltas, uint32_t entry_count, const float *weights)        \
    {                                                                                        \
        vec a[FRIG_BLOCK_FLOATS / (lanes)];                                                  \
        uint32_t k;                                                                          \
        unsigned j;                                                                          \
        for (j = 0; j < FRIG_BLOCK_FLOATS / (lanes); ++j)                                    \
            a[j] = loadu(base + (lanes) * j);                                                \
        for (k = 0; k < entry_count; ++k) {                                                  \
            const float w = weights[shapes[k]];                                              \
            const delta_t *d = (const delta_t *)deltas + (size_t)k * FRIG_BLOCK_FLOATS;      \
            vec wv;                                                                          \
            if (w == 0.0f)                                                                   \
                continue;                                                                    \
            wv = set1(w);                                                                    \
            for (j = 0; j < FRIG_BLOCK_FLOATS / (lanes); ++j)                                \
                a[j] = fmadd(wv, load_delta(d + (lanes) * j), a[j]);                         \
        }                                                                                    \
        for (j = 0; j < FRIG_BLOCK_FLOATS / (lanes); ++j)                                    \
            storeu(out + (lanes) * j, a[j]);                                                 \
    }

#define FRIG_LOAD_PH8(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define FRIG_LOAD_PH16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))

FRIG_FMA_KERNEL(kernel_avx2_f32, "avx2,fma", __m256, 8, float, _mm256_loadu_ps,
                _mm256_loadu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps)
FRIG_FMA_KERNEL(kernel_avx2_f16, "avx2,fma,f16c", __m256, 8, uint16_t, FRIG_LOAD_PH8,
                _mm256_loadu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps)
FRIG_FMA_KERNEL(kernel_avx512_f32, "avx512f", __m512, 16, float, _mm512_loadu_ps,
                _mm512_loadu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps)
FRIG_FMA_KERNEL(kernel_avx512_f16, "avx512f", __m512, 16, uint16_t, FRIG_LOAD_PH16,
                _mm512_loadu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps)

frig_block_kernel frig_kernel_x86(int level, int encoding)
{
    const int half = encoding == FRIG_DELTAS_F16;
    switch (level) {
    case FRIG_SIMD_SSE2: return half ? kernel_sse2_f16 : kernel_sse2_f32;
    case FRIG_SIMD_AVX2: return half ? kernel_avx2_f16 : kernel_avx2_f32;
    case FRIG_SIMD_AVX512: return half ? kernel_avx512_f16 : kernel_avx512_f32;
    default: return NULL;
    }
}

#else

frig_block_kernel frig_kernel_x86(int level, int encoding)
{
    (void)level;
    (void)encoding;
    return NULL;
}

#endif
