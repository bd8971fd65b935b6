/* cpu_features.c -- which SIMD kernels this CPU (and OS) can run.
 * The library is compiled for the baseline ISA only (no -march=native); wider
 * kernels are compiled with per-function target attributes and chosen here at
 * run time.  AVX needs OS support for the wider register state (XGETBV), not
 * only the CPUID bit, or the first AVX instruction would fault. */
#include "frig_internal.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#  define FRIG_X86 1
#  if defined(_MSC_VER)
#    include <intrin.h>
#  else
#    include <cpuid.h>
#  endif
#endif

#ifdef FRIG_X86
static void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
#  if defined(_MSC_VER)
    int r[4];
    __cpuidex(r, (int)leaf, (int)subleaf);
    regs[0] = (uint32_t)r[0]; regs[1] = (uint32_t)r[1];
    regs[2] = (uint32_t)r[2]; regs[3] = (uint32_t)r[3];
#  else
    __cpuid_count(leaf, subleaf, regs[0], regs[1], regs[2], regs[3]);
#  endif
}

static uint64_t xgetbv0(void)
{
#  if defined(_MSC_VER)
    return _xgetbv(0);
#  else
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
#  endif
}

static int x86_has(int level)
{
    uint32_t r1[4], r0[4], r7[4] = {0, 0, 0, 0};
    uint64_t xcr0 = 0;
    int os_avx;
    cpuid(0, 0, r0);
    cpuid(1, 0, r1);
    if (r0[0] >= 7)
        cpuid(7, 0, r7);
    if (level == FRIG_SIMD_SSE2)
        return (r1[3] >> 26) & 1u;
    os_avx = ((r1[2] >> 27) & 1u) && ((r1[2] >> 28) & 1u); /* OSXSAVE and AVX */
    if (os_avx)
        xcr0 = xgetbv0();
    if (level == FRIG_SIMD_AVX2)
        return os_avx && (xcr0 & 0x6u) == 0x6u /* XMM and YMM state */
               && ((r1[2] >> 12) & 1u)         /* FMA */
               && ((r1[2] >> 29) & 1u)         /* F16C (binary16 rigs) */
               && ((r7[1] >> 5) & 1u);         /* AVX2 */
    if (level == FRIG_SIMD_AVX512)
        return os_avx && (xcr0 & 0xE6u) == 0xE6u /* + opmask, ZMM_Hi256, Hi16_ZMM */
               && ((r7[1] >> 16) & 1u);          /* AVX-512F */
    return 0;
}
#endif

int frig_cpu_has(int level)
{
    if (level == FRIG_SIMD_SCALAR)
        return 1;
#ifdef FRIG_X86
    if (level == FRIG_SIMD_SSE2 || level == FRIG_SIMD_AVX2 || level == FRIG_SIMD_AVX512)
        return x86_has(level);
#endif
#if defined(__ARM_NEON) || defined(__aarch64__) || defined(_M_ARM64)
    if (level == FRIG_SIMD_NEON)
        return 1; /* the build targets NEON, so the CPU has it */
#endif
    return 0;
}
