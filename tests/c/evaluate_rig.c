/* evaluate_rig.c -- a host program using only facerig_runtime.h, as an engine would.
 *
 *   evaluate_rig RIG.frig WEIGHTS.f32 POSITIONS.f32 [NORMALS.f32]
 *
 * Loads the rig from file, evaluates the raw float32 weights into caller-owned
 * buffers and writes the raw float32 results.  Along the way it checks the parts
 * of the C contract a Python caller cannot reach: the evaluation split over
 * ranges equals one call, a NaN weight or a wrong weight count is refused, and
 * the memory loader rejects the same bytes cut short by one.
 * Exit codes: 0 ok, 1 usage/io, 2 load failed, 3 range mismatch, 4 bad
 * argument accepted, 5 truncated image accepted, 6 evaluate failed. */
#include "facerig_runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    long end;
    void *data;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        if (f)
            fclose(f);
        return NULL;
    }
    data = malloc((size_t)end + 1);
    if (data && fread(data, 1, (size_t)end, f) != (size_t)end) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = (size_t)end;
    return data;
}

static int write_all(const char *path, const float *values, size_t count)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(values, sizeof(float), count, f) == count;
    if (f)
        ok = (fclose(f) == 0) && ok;
    return ok;
}

int main(int argc, char **argv)
{
    frig_rig *rig = NULL, *cut = NULL;
    float *weights, *positions, *tiled, *normals = NULL;
    void *image;
    size_t weight_bytes, image_size, n3;
    uint32_t vertices, shapes, r;
    int status;

    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s RIG WEIGHTS POSITIONS [NORMALS]\n", argv[0]);
        return 1;
    }
    status = frig_rig_load_file(argv[1], &rig);
    if (status != FRIG_OK) {
        fprintf(stderr, "load failed (%d): %s\n", status, frig_last_error());
        return 2;
    }
    vertices = frig_rig_vertex_count(rig);
    shapes = frig_rig_shape_count(rig);
    weights = (float *)read_all(argv[2], &weight_bytes);
    if (!weights || weight_bytes != shapes * sizeof(float)) {
        fprintf(stderr, "weights file must hold %u float32\n", shapes);
        return 1;
    }
    n3 = (size_t)vertices * 3;
    positions = (float *)malloc(n3 * sizeof(float));
    tiled = (float *)malloc(n3 * sizeof(float));
    if (argc == 5)
        normals = (float *)malloc(n3 * sizeof(float));
    if (!positions || !tiled || (argc == 5 && !normals))
        return 1;

    status = frig_evaluate(rig, weights, shapes, positions, normals);
    if (status != FRIG_OK) {
        fprintf(stderr, "evaluate failed: %s\n", frig_last_error());
        return 6;
    }

    /* Four uneven ranges, as a host would hand to four worker threads. */
    for (r = 0; r < 4; ++r) {
        const uint32_t begin = (uint32_t)((uint64_t)vertices * r * r / 16);
        const uint32_t end = (uint32_t)((uint64_t)vertices * (r + 1) * (r + 1) / 16);
        if (frig_evaluate_range(rig, weights, shapes, begin, end, tiled, NULL) != FRIG_OK)
            return 6;
    }
    if (memcmp(tiled, positions, n3 * sizeof(float)) != 0) {
        fprintf(stderr, "ranges disagree with one call\n");
        return 3;
    }

    if (shapes > 0) {
        const float saved = weights[0];
        weights[0] = NAN;
        if (frig_evaluate(rig, weights, shapes, tiled, NULL) != FRIG_ERROR_INVALID_ARGUMENT)
            return 4;
        weights[0] = saved;
    }
    if (frig_evaluate(rig, weights, shapes + 1, tiled, NULL) != FRIG_ERROR_INVALID_ARGUMENT ||
        frig_evaluate_range(rig, weights, shapes, 1, vertices + 1, tiled, NULL) !=
            FRIG_ERROR_INVALID_ARGUMENT)
        return 4;

    image = read_all(argv[1], &image_size);
    if (!image)
        return 1;
    if (frig_rig_load_memory(image, image_size - 1, &cut) == FRIG_OK || cut != NULL) {
        fprintf(stderr, "a truncated image was accepted\n");
        return 5;
    }

    if (!write_all(argv[3], positions, n3) || (normals && !write_all(argv[4], normals, n3)))
        return 1;
    printf("vertices=%u shapes=%u simd=%d first=%s\n", vertices, shapes, frig_rig_simd_level(rig),
           shapes ? frig_rig_shape_name(rig, 0) : "-");
    frig_rig_free(rig);
    free(image);
    free(weights);
    free(positions);
    free(tiled);
    free(normals);
    return 0;
}
