/* frig_internal.h -- shared by the runtime's source files, not installed. */
#ifndef FRIG_INTERNAL_H
#define FRIG_INTERNAL_H

#include "facerig_runtime.h"

#include <stddef.h>
#include <stdint.h>

/* The evaluator works on blocks of FRIG_BLOCK_VERTICES consecutive vertices:
 * 16 xyz vertices = 48 floats = 3 AVX-512 / 6 AVX / 12 SSE or NEON registers,
 * so one block's sum stays in registers while every shape is added to it. */
#define FRIG_BLOCK_VERTICES 16u
#define FRIG_BLOCK_FLOATS (3u * FRIG_BLOCK_VERTICES)

/* out[0..48) = base[0..48) + sum_k weights[shapes[k]] * deltas[48k .. 48k+48),
 * skipping zero weights, in float32.  `deltas` holds float32 or IEEE binary16
 * values depending on the kernel (FRIG_DELTAS_F32 / FRIG_DELTAS_F16).  `out`
 * may alias nothing else; no alignment is required. */
typedef void (*frig_block_kernel)(float *out, const float *base, const uint32_t *shapes,
                                  const void *deltas, uint32_t entry_count,
                                  const float *weights);

enum { FRIG_DELTAS_F32 = 0, FRIG_DELTAS_F16 = 1 };

struct frig_rig {
    void *image_alloc;            /* owns the file image (64-byte aligned inside) */
    const uint8_t *image;
    size_t image_size;
    void *work_alloc;             /* owns names + padded neutral arrays */

    uint32_t vertex_count;
    uint32_t shape_count;
    uint32_t block_count;
    uint32_t entry_count;
    int has_normals;

    const char **names;           /* shape_count pointers into the image */
    const float *neutral;         /* block_count*48, zero-padded past vertex_count */
    const float *neutral_normals; /* same, or NULL */
    const uint32_t *block_starts; /* block_count+1 prefix sums into the entries */
    const uint32_t *entry_shapes; /* entry_count shape indices, ascending per block */
    const void *deltas;           /* entry_count*48 float32 or binary16 */
    const void *normal_deltas;    /* same, or NULL */
    int delta_encoding;           /* FRIG_DELTAS_F32 or FRIG_DELTAS_F16 */
    size_t delta_block_bytes;     /* 48 * 4 or 48 * 2 */

    int simd_level;
    frig_block_kernel kernel;
};

/* error.c */
int frig_fail(int status, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* crc32.c: IEEE 802.3 CRC-32, the one zlib.crc32 and PNG use. */
uint32_t frig_crc32(const uint8_t *data, size_t size);

/* cpu_features.c */
int frig_cpu_has(int level);

/* evaluate.c: widest level with a kernel for `encoding` on this CPU. */
int frig_best_level(int encoding);

/* kernels_*.c; a kernel for a level (or encoding) this build lacks is NULL. */
frig_block_kernel frig_kernel_x86(int level, int encoding);
frig_block_kernel frig_kernel_neon(int encoding);
frig_block_kernel frig_kernel_for(int level, int encoding);
float frig_half_to_float(uint16_t half);

#endif
