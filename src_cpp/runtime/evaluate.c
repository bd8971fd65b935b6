/* evaluate.c -- S = S0 + sum_i w_i dS_i (Pan et al., Eq. 13) over vertex blocks.
 *
 * The rig stores, per block of 16 vertices, the shapes that move it and their
 * 48 delta floats (block-major, see rig_format.md).  One pass over the output:
 * each block is loaded once, every active shape of that block is added while the
 * sum sits in registers, and the block is stored once.  Shapes with weight 0 and
 * vertices a shape does not move cost no delta reads.  Nothing is allocated. */
#include "frig_internal.h"

#include <math.h>
#include <string.h>

static int finite_weight(float w)
{
    uint32_t bits;
    memcpy(&bits, &w, 4);
    return (bits & 0x7F800000u) != 0x7F800000u;
}

/* Morph-target normals are blended linearly and then renormalised, as glTF
 * viewers do; a sum of exactly zero length is left at zero. */
static void normalize_rows(float *n, uint32_t count)
{
    uint32_t v;
    for (v = 0; v < count; ++v, n += 3) {
        const float len2 = n[0] * n[0] + n[1] * n[1] + n[2] * n[2];
        if (len2 > 0.0f) {
            const float inv = 1.0f / sqrtf(len2);
            n[0] *= inv;
            n[1] *= inv;
            n[2] *= inv;
        }
    }
}

static void evaluate_blocks(const frig_rig *rig, const float *base, const void *deltas,
                            const float *weights, uint32_t begin, uint32_t end, float *out,
                            int normalize)
{
    const frig_block_kernel kernel = rig->kernel;
    uint32_t b = begin / FRIG_BLOCK_VERTICES;
    const uint32_t b_end = begin < end ? (end + FRIG_BLOCK_VERTICES - 1) / FRIG_BLOCK_VERTICES : b;
    for (; b < b_end; ++b) {
        const uint32_t first = b * FRIG_BLOCK_VERTICES;
        const uint32_t lo = begin > first ? begin : first;
        const uint32_t hi = end < first + FRIG_BLOCK_VERTICES ? end : first + FRIG_BLOCK_VERTICES;
        const uint32_t e0 = rig->block_starts[b];
        const uint32_t n = rig->block_starts[b + 1] - e0;
        const float *block_base = base + (size_t)b * FRIG_BLOCK_FLOATS;
        const void *block_deltas = (const uint8_t *)deltas + (size_t)e0 * rig->delta_block_bytes;
        if (lo == first && hi == first + FRIG_BLOCK_VERTICES) {
            kernel(out + (size_t)first * 3u, block_base, rig->entry_shapes + e0, block_deltas, n,
                   weights);
        } else {
            /* Partial block (range edge or the mesh's last block): compute the
             * whole block on the stack and copy out only the requested rows. */
            float tmp[FRIG_BLOCK_FLOATS];
            kernel(tmp, block_base, rig->entry_shapes + e0, block_deltas, n, weights);
            memcpy(out + (size_t)lo * 3u, tmp + (lo - first) * 3u, (size_t)(hi - lo) * 3u * sizeof(float));
        }
        if (normalize)
            normalize_rows(out + (size_t)lo * 3u, hi - lo);
    }
}

int frig_evaluate_range(const frig_rig *rig, const float *weights, size_t weight_count,
                        uint32_t begin, uint32_t end, float *positions, float *normals)
{
    uint32_t i;
    if (!rig || !positions)
        return frig_fail(FRIG_ERROR_INVALID_ARGUMENT, "rig or positions is NULL");
    if (weight_count != rig->shape_count)
        return frig_fail(FRIG_ERROR_INVALID_ARGUMENT, "%zu weights for a rig of %u shapes",
                         weight_count, rig->shape_count);
    if (weight_count && !weights)
        return frig_fail(FRIG_ERROR_INVALID_ARGUMENT, "weights is NULL");
    for (i = 0; i < rig->shape_count; ++i) {
        if (!finite_weight(weights[i]))
            return frig_fail(FRIG_ERROR_INVALID_ARGUMENT, "weight %u (shape '%s') is not finite",
                             i, rig->names[i]);
    }
    if (begin > end || end > rig->vertex_count)
        return frig_fail(FRIG_ERROR_INVALID_ARGUMENT, "vertex range [%u, %u) not within [0, %u)",
                         begin, end, rig->vertex_count);
    if (normals && !rig->has_normals)
        return frig_fail(FRIG_ERROR_INVALID_ARGUMENT, "normals requested from a rig without normals");
    evaluate_blocks(rig, rig->neutral, rig->deltas, weights, begin, end, positions, 0);
    if (normals)
        evaluate_blocks(rig, rig->neutral_normals, rig->normal_deltas, weights, begin, end,
                        normals, 1);
    return FRIG_OK;
}

int frig_evaluate(const frig_rig *rig, const float *weights, size_t weight_count,
                  float *positions, float *normals)
{
    if (!rig)
        return frig_fail(FRIG_ERROR_INVALID_ARGUMENT, "rig is NULL");
    return frig_evaluate_range(rig, weights, weight_count, 0, rig->vertex_count, positions,
                               normals);
}

int frig_simd_supported(int level)
{
    return frig_kernel_for(level, FRIG_DELTAS_F32) != NULL && frig_cpu_has(level);
}

int frig_best_level(int encoding)
{
    static const int widest_first[] = {FRIG_SIMD_AVX512, FRIG_SIMD_AVX2, FRIG_SIMD_NEON,
                                       FRIG_SIMD_SSE2};
    size_t i;
    for (i = 0; i < sizeof widest_first / sizeof widest_first[0]; ++i) {
        if (frig_kernel_for(widest_first[i], encoding) != NULL && frig_cpu_has(widest_first[i]))
            return widest_first[i];
    }
    return FRIG_SIMD_SCALAR;
}

int frig_simd_best(void)
{
    return frig_best_level(FRIG_DELTAS_F32);
}

int frig_rig_simd_level(const frig_rig *rig)
{
    return rig ? rig->simd_level : -1;
}

int frig_rig_set_simd_level(frig_rig *rig, int level)
{
    frig_block_kernel kernel;
    if (!rig)
        return frig_fail(FRIG_ERROR_INVALID_ARGUMENT, "rig is NULL");
    kernel = frig_kernel_for(level, rig->delta_encoding);
    if (!kernel || !frig_cpu_has(level))
        return frig_fail(FRIG_ERROR_UNSUPPORTED, "SIMD level %d is not available here", level);
    rig->simd_level = level;
    rig->kernel = kernel;
    return FRIG_OK;
}
