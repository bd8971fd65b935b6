/* kernels_x86.c -- SSE2, AVX2+FMA and AVX-512F block kernels.
 * Each kernel keeps one block's 48 floats in registers (12 xmm / 6 ymm / 3 zmm),
 * adds w * delta for every active shape of the block, and stores once: the
 * output is written exactly once however many shapes touch it.  The wider
 * kernels carry target attributes so this file builds without -mavx*; they run
 * only after cpu_features.c confirmed the CPU and OS support them. */
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

static void kernel_sse2(float *out, const float *base, const uint32_t *shapes,
                        const float *deltas, uint32_t entry_count, const float *weights)
{
    __m128 a[12];
    uint32_t k;
    int j;
    for (j = 0; j < 12; ++j)
        a[j] = _mm_loadu_ps(base + 4 * j);
    for (k = 0; k < entry_count; ++k) {
        const float w = weights[shapes[k]];
        const float *d = deltas + (size_t)k * FRIG_BLOCK_FLOATS;
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

FRIG_TARGET("avx2,fma")
static void kernel_avx2(float *out, const float *base, const uint32_t *shapes,
                        const float *deltas, uint32_t entry_count, const float *weights)
{
    __m256 a0 = _mm256_loadu_ps(base), a1 = _mm256_loadu_ps(base + 8),
           a2 = _mm256_loadu_ps(base + 16), a3 = _mm256_loadu_ps(base + 24),
           a4 = _mm256_loadu_ps(base + 32), a5 = _mm256_loadu_ps(base + 40);
    uint32_t k;
    for (k = 0; k < entry_count; ++k) {
        const float w = weights[shapes[k]];
        const float *d = deltas + (size_t)k * FRIG_BLOCK_FLOATS;
        __m256 wv;
        if (w == 0.0f)
            continue;
        wv = _mm256_set1_ps(w);
        a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(d), a0);
        a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(d + 8), a1);
        a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(d + 16), a2);
        a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(d + 24), a3);
        a4 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(d + 32), a4);
        a5 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(d + 40), a5);
    }
    _mm256_storeu_ps(out, a0);
    _mm256_storeu_ps(out + 8, a1);
    _mm256_storeu_ps(out + 16, a2);
    _mm256_storeu_ps(out + 24, a3);
    _mm256_storeu_ps(out + 32, a4);
    _mm256_storeu_ps(out + 40, a5);
}

FRIG_TARGET("avx512f")
static void kernel_avx512(float *out, const float *base, const uint32_t *shapes,
                          const float *deltas, uint32_t entry_count, const float *weights)
{
    __m512 a0 = _mm512_loadu_ps(base), a1 = _mm512_loadu_ps(base + 16),
           a2 = _mm512_loadu_ps(base + 32);
    uint32_t k;
    for (k = 0; k < entry_count; ++k) {
        const float w = weights[shapes[k]];
        const float *d = deltas + (size_t)k * FRIG_BLOCK_FLOATS;
        __m512 wv;
        if (w == 0.0f)
            continue;
        wv = _mm512_set1_ps(w);
        a0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(d), a0);
        a1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(d + 16), a1);
        a2 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(d + 32), a2);
    }
    _mm512_storeu_ps(out, a0);
    _mm512_storeu_ps(out + 16, a1);
    _mm512_storeu_ps(out + 32, a2);
}

frig_block_kernel frig_kernel_x86(int level)
{
    switch (level) {
    case FRIG_SIMD_SSE2: return kernel_sse2;
    case FRIG_SIMD_AVX2: return kernel_avx2;
    case FRIG_SIMD_AVX512: return kernel_avx512;
    default: return NULL;
    }
}

#else

frig_block_kernel frig_kernel_x86(int level)
{
    (void)level;
    return NULL;
}

#endif
