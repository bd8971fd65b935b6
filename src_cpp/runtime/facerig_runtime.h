/* facerig_runtime.h -- embedded blendshape runtime of pyfacerig (C ABI).
 *
 * Evaluates S = S0 + sum_i w_i * dS_i (Pan et al., Eq. 13) for a rig loaded
 * from a .frig file (format: docs/rig_format.md).  The library is the runtime
 * half of an offline/runtime split: pyfacerig (Python) builds .frig files, this
 * library only validates and evaluates them.
 *
 * Contract:
 *   - Every input file is hostile: the loaders check every count, size and
 *     offset against the buffer (and a CRC-32) before any use.
 *   - Errors are return codes (frig_status); a message naming the problem is
 *     available from frig_last_error() on the calling thread.
 *   - The caller owns all output buffers.  Only the loaders allocate; the
 *     evaluate calls never allocate and may run concurrently on one rig
 *     (a rig is immutable after loading, except frig_rig_set_simd_level).
 *   - Arrays are float32, xyz interleaved: positions[3*v + 0..2].
 */
#ifndef FACERIG_RUNTIME_H
#define FACERIG_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  if defined(FRIG_BUILD_SHARED)
#    define FRIG_API __declspec(dllexport)
#  elif defined(FRIG_USE_SHARED)
#    define FRIG_API __declspec(dllimport)
#  else
#    define FRIG_API
#  endif
#elif defined(__GNUC__)
#  define FRIG_API __attribute__((visibility("default")))
#else
#  define FRIG_API
#endif

#define FRIG_FORMAT_VERSION 1u

typedef enum frig_status {
    FRIG_OK = 0,
    FRIG_ERROR_INVALID_ARGUMENT = 1, /* null pointer, bad range, NaN weight, wrong count */
    FRIG_ERROR_IO = 2,               /* file cannot be opened or read */
    FRIG_ERROR_TRUNCATED = 3,        /* buffer shorter than the header or the sizes it declares */
    FRIG_ERROR_BAD_MAGIC = 4,        /* not a .frig file */
    FRIG_ERROR_BAD_VERSION = 5,      /* a .frig version this library does not read */
    FRIG_ERROR_BAD_CHECKSUM = 6,     /* CRC-32 mismatch: the bytes were altered */
    FRIG_ERROR_CORRUPT = 7,          /* checksum fine but a count/offset/value is inconsistent */
    FRIG_ERROR_OUT_OF_MEMORY = 8,
    FRIG_ERROR_UNSUPPORTED = 9       /* e.g. forcing a SIMD level this CPU/build lacks */
} frig_status;

/* SIMD kernels.  The loader picks the widest one the CPU supports. */
typedef enum frig_simd_level {
    FRIG_SIMD_SCALAR = 0,
    FRIG_SIMD_SSE2 = 1,
    FRIG_SIMD_AVX2 = 2,   /* AVX2 + FMA + F16C */
    FRIG_SIMD_AVX512 = 3, /* AVX-512F */
    FRIG_SIMD_NEON = 4
} frig_simd_level;

typedef struct frig_rig frig_rig;

/* Message for the last failing call on this thread ("" if none).  Valid until
 * the next failing call on the same thread. */
FRIG_API const char *frig_last_error(void);
FRIG_API const char *frig_status_name(int status);

/* Load a rig.  The memory loader copies the bytes, so `data` may be freed
 * afterwards.  On success *out_rig owns the rig; release it with frig_rig_free. */
FRIG_API int frig_rig_load_memory(const void *data, size_t size, frig_rig **out_rig);
FRIG_API int frig_rig_load_file(const char *path, frig_rig **out_rig);
FRIG_API void frig_rig_free(frig_rig *rig);

FRIG_API uint32_t frig_rig_vertex_count(const frig_rig *rig);
FRIG_API uint32_t frig_rig_shape_count(const frig_rig *rig);
FRIG_API int frig_rig_has_normals(const frig_rig *rig);
/* NUL-terminated UTF-8 name of shape `index`, or NULL if out of range. */
FRIG_API const char *frig_rig_shape_name(const frig_rig *rig, uint32_t index);
/* The validated file image (for re-saving).  *size receives its byte count. */
FRIG_API const void *frig_rig_file_bytes(const frig_rig *rig, size_t *size);

/* positions: vertex_count*3 floats.  normals: NULL, or vertex_count*3 floats
 * (only for rigs with normals; they come back unit length, see rig_format.md).
 * weights: weight_count floats, weight_count must equal the shape count and every
 * weight must be finite.  Any weight value is allowed (0, negative, > 1). */
FRIG_API int frig_evaluate(const frig_rig *rig, const float *weights, size_t weight_count,
                           float *positions, float *normals);

/* Same, but only vertices [begin, end) are written, into the same full-size
 * buffers (so several threads can each take a range of one output). */
FRIG_API int frig_evaluate_range(const frig_rig *rig, const float *weights, size_t weight_count,
                                 uint32_t begin, uint32_t end, float *positions, float *normals);

/* SIMD dispatch, mainly for tests and benchmarks. */
FRIG_API int frig_simd_supported(int level);  /* 1 if this CPU and build can run `level` */
FRIG_API int frig_simd_best(void);            /* widest supported level */
FRIG_API int frig_rig_simd_level(const frig_rig *rig);
/* Force `rig` onto one kernel.  Not thread-safe against concurrent evaluates of the same rig. */
FRIG_API int frig_rig_set_simd_level(frig_rig *rig, int level);

#ifdef __cplusplus
}
#endif
#endif /* FACERIG_RUNTIME_H */
