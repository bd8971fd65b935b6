/* fuzz_rig_loader.c -- libFuzzer harness for the .frig loader and evaluator.
 * Built and run by tools/fuzz_rig_loader.py with clang -fsanitize=fuzzer,address,undefined;
 * not part of the library or of CI.
 *
 * Each input is tried twice: as is (exercises the header checks and the CRC),
 * and with its declared file size and trailing CRC-32 rewritten to match, so
 * mutated files get past those two checks and reach the structural validation.  Every rig that loads is then
 * evaluated on every SIMD level, whole and by ranges, with and without normals,
 * so a validation gap shows up as an out-of-bounds access under ASan. */
#include "../frig_internal.h"

#include <stdlib.h>
#include <string.h>

static void exercise(const frig_rig *const_rig)
{
    frig_rig *rig = (frig_rig *)const_rig;
    const uint32_t n = frig_rig_vertex_count(rig), m = frig_rig_shape_count(rig);
    float *weights = (float *)malloc((m ? m : 1) * sizeof(float));
    float *positions = (float *)malloc((size_t)n * 3 * sizeof(float));
    float *normals = frig_rig_has_normals(rig) ? (float *)malloc((size_t)n * 3 * sizeof(float)) : NULL;
    uint32_t i;
    int level;
    size_t size;
    if (!weights || !positions || (frig_rig_has_normals(rig) && !normals))
        abort();
    for (i = 0; i < m; ++i)
        weights[i] = (i % 3 == 0) ? 0.0f : (i % 3 == 1 ? 1.5f : -0.75f);
    for (i = 0; i < m; ++i)
        (void)strlen(frig_rig_shape_name(rig, i));
    (void)frig_rig_file_bytes(rig, &size);
    for (level = FRIG_SIMD_SCALAR; level <= FRIG_SIMD_NEON; ++level) {
        if (frig_rig_set_simd_level(rig, level) != FRIG_OK)
            continue;
        if (frig_evaluate(rig, weights, m, positions, normals) != FRIG_OK)
            abort();
        if (n > 2 && frig_evaluate_range(rig, weights, m, n / 3, n - 1, positions, normals) != FRIG_OK)
            abort();
    }
    free(weights);
    free(positions);
    free(normals);
}

static void try_load(const uint8_t *data, size_t size)
{
    frig_rig *rig = NULL;
    if (frig_rig_load_memory(data, size, &rig) == FRIG_OK) {
        exercise(rig);
        frig_rig_free(rig);
    } else if (rig != NULL || frig_last_error()[0] == '\0') {
        abort(); /* a failure must leave no rig and must say why */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *sealed;
    uint32_t crc;
    try_load(data, size);
    if (size < 4)
        return 0;
    sealed = (uint8_t *)malloc(size);
    if (!sealed)
        return 0;
    memcpy(sealed, data, size);
    if (size >= 24) {
        uint64_t declared = size;
        int b;
        for (b = 0; b < 8; ++b)
            sealed[16 + b] = (uint8_t)(declared >> (8 * b));
    }
    crc = frig_crc32(sealed, size - 4);
    sealed[size - 4] = (uint8_t)crc;
    sealed[size - 3] = (uint8_t)(crc >> 8);
    sealed[size - 2] = (uint8_t)(crc >> 16);
    sealed[size - 1] = (uint8_t)(crc >> 24);
    try_load(sealed, size);
    free(sealed);
    return 0;
}
