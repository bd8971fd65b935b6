/* rig_loader.c -- reads and validates a .frig file (docs/rig_format.md).
 *
 * Every input is treated as hostile.  The order is: header size, magic, version,
 * declared file size against the buffer, CRC-32, then every count, every section
 * offset and size (64-bit arithmetic, each bound checked before it is used as a
 * pointer), then the section contents (name table, block index, shape indices,
 * finite floats).  Only after all of that is a pointer into the image formed. */
#include "frig_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_SIZE 128u
#define CHECKSUM_SIZE 4u
#define SECTION_ALIGN 64u
#define MAX_VERTICES (1u << 24)   /* keeps 3*48*blocks and vertex*3 far from 2^32 */
#define MAX_SHAPES (1u << 16)
#define MAX_NAME_BYTES 255u
#define FLAG_HAS_NORMALS 1u
#define FLAG_HALF_DELTAS 2u   /* deltas stored as IEEE binary16 instead of float32 */
#define KNOWN_FLAGS (FLAG_HAS_NORMALS | FLAG_HALF_DELTAS)

static const uint8_t k_magic[8] = {'F', 'R', 'I', 'G', '\r', '\n', 0x1A, '\n'};

static uint32_t read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t read_u64(const uint8_t *p)
{
    return (uint64_t)read_u32(p) | ((uint64_t)read_u32(p + 4) << 32);
}

static int host_is_little_endian(void)
{
    const uint32_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* Bit test instead of isfinite(): stays correct under -ffast-math in a host build. */
static int all_finite(const float *values, size_t count)
{
    size_t i;
    for (i = 0; i < count; ++i) {
        uint32_t bits;
        memcpy(&bits, values + i, 4);
        if ((bits & 0x7F800000u) == 0x7F800000u)
            return 0;
    }
    return 1;
}

static int all_finite_half(const uint16_t *values, size_t count)
{
    size_t i;
    for (i = 0; i < count; ++i) {
        if ((values[i] & 0x7C00u) == 0x7C00u)
            return 0;
    }
    return 1;
}

typedef struct section {
    const char *name;
    uint64_t offset;
    uint64_t size;
} section;

/* Sections follow each other in a fixed order, each at the first 64-byte
 * boundary after the previous one, with zero padding between them.  This
 * canonical layout means a count that disagrees with the data moves some
 * boundary and is caught.  No sum is formed before its bound is checked. */
static int check_section(const uint8_t *image, const section *s, uint64_t *cursor,
                         uint64_t body_end)
{
    const uint64_t expected = (*cursor + SECTION_ALIGN - 1) / SECTION_ALIGN * SECTION_ALIGN;
    uint64_t i;
    if (s->offset != expected || expected > body_end)
        return frig_fail(FRIG_ERROR_CORRUPT, "%s offset %llu, expected %llu (data ends at %llu)",
                         s->name, (unsigned long long)s->offset, (unsigned long long)expected,
                         (unsigned long long)body_end);
    if (s->size > body_end - s->offset)
        return frig_fail(FRIG_ERROR_CORRUPT, "%s (%llu bytes at %llu) runs past the data end %llu",
                         s->name, (unsigned long long)s->size, (unsigned long long)s->offset,
                         (unsigned long long)body_end);
    for (i = *cursor; i < s->offset; ++i) {
        if (image[i] != 0)
            return frig_fail(FRIG_ERROR_CORRUPT, "padding byte %llu before %s is not zero",
                             (unsigned long long)i, s->name);
    }
    *cursor = s->offset + s->size;
    return FRIG_OK;
}

static void *aligned_block(size_t size, void **raw)
{
    uintptr_t p;
    *raw = malloc(size + SECTION_ALIGN);
    if (!*raw)
        return NULL;
    p = ((uintptr_t)*raw + SECTION_ALIGN - 1) & ~(uintptr_t)(SECTION_ALIGN - 1);
    return (void *)p;
}

/* Expands a vertex_count*3 array into block_count*48 floats, zero padded, so the
 * kernels always read whole blocks. */
static void pad_blocks(float *dst, const float *src, uint32_t vertex_count, uint32_t block_count)
{
    size_t n = (size_t)vertex_count * 3u;
    memcpy(dst, src, n * sizeof(float));
    memset(dst + n, 0, ((size_t)block_count * FRIG_BLOCK_FLOATS - n) * sizeof(float));
}

/* Validates `image` (64-byte aligned, owned by `image_alloc`) and builds the
 * rig around it.  Takes ownership of image_alloc in every case. */
static int load_image(void *image_alloc, const uint8_t *image, size_t size, frig_rig **out_rig)
{
    frig_rig *rig = NULL;
    uint64_t file_size, body_end, cursor, max_entries;
    uint32_t flags, version, header_size, block_size, vertex_count, shape_count, block_count,
        entry_count, i, b;
    section names, neutral, normals, block_starts, entry_shapes, deltas, normal_deltas;
    const uint32_t *starts, *shapes;
    const char *name_cursor;
    size_t work_size;
    uint8_t *work;
    int has_normals, half_deltas, status;
    uint64_t delta_block_bytes;

    if (!host_is_little_endian()) {
        status = frig_fail(FRIG_ERROR_UNSUPPORTED, "big-endian hosts are not supported");
        goto fail;
    }
    if (size < 8 || memcmp(image, k_magic, 8) != 0) {
        status = size < 8 && memcmp(image, k_magic, size) == 0
                     ? frig_fail(FRIG_ERROR_TRUNCATED, "%zu bytes, shorter than the magic", size)
                     : frig_fail(FRIG_ERROR_BAD_MAGIC, "the file does not start with FRIG");
        goto fail;
    }
    if (size < HEADER_SIZE + CHECKSUM_SIZE) {
        status = frig_fail(FRIG_ERROR_TRUNCATED, "%zu bytes, the header alone needs %u", size,
                           HEADER_SIZE + CHECKSUM_SIZE);
        goto fail;
    }
    version = read_u32(image + 8);
    if (version != FRIG_FORMAT_VERSION) {
        status = frig_fail(FRIG_ERROR_BAD_VERSION, "version %u, this library reads %u", version,
                           FRIG_FORMAT_VERSION);
        goto fail;
    }
    header_size = read_u32(image + 12);
    file_size = read_u64(image + 16);
    if (file_size > (uint64_t)size) {
        status = frig_fail(FRIG_ERROR_TRUNCATED, "the header declares %llu bytes, %zu present",
                           (unsigned long long)file_size, size);
        goto fail;
    }
    if (file_size < (uint64_t)size || header_size != HEADER_SIZE) {
        status = frig_fail(FRIG_ERROR_CORRUPT,
                           "declared file size %llu (buffer %zu), header size %u (expected %u)",
                           (unsigned long long)file_size, size, header_size, HEADER_SIZE);
        goto fail;
    }
    body_end = file_size - CHECKSUM_SIZE;
    {
        const uint32_t stored = read_u32(image + body_end);
        const uint32_t actual = frig_crc32(image, (size_t)body_end);
        if (stored != actual) {
            status = frig_fail(FRIG_ERROR_BAD_CHECKSUM, "stored CRC-32 %08x, computed %08x",
                               stored, actual);
            goto fail;
        }
    }

    flags = read_u32(image + 24);
    vertex_count = read_u32(image + 28);
    shape_count = read_u32(image + 32);
    block_size = read_u32(image + 36);
    block_count = read_u32(image + 40);
    entry_count = read_u32(image + 44);
    has_normals = (flags & FLAG_HAS_NORMALS) != 0;
    half_deltas = (flags & FLAG_HALF_DELTAS) != 0;
    delta_block_bytes = (uint64_t)FRIG_BLOCK_FLOATS * (half_deltas ? 2u : 4u);
    if (flags & ~KNOWN_FLAGS) {
        status = frig_fail(FRIG_ERROR_CORRUPT, "unknown flags %08x", flags);
        goto fail;
    }
    for (i = 112; i < HEADER_SIZE; ++i) {
        if (image[i] != 0) {
            status = frig_fail(FRIG_ERROR_CORRUPT, "reserved header byte %u is not zero", i);
            goto fail;
        }
    }
    if (vertex_count == 0 || vertex_count > MAX_VERTICES) {
        status = frig_fail(FRIG_ERROR_CORRUPT, "vertex count %u not in [1, %u]", vertex_count,
                           MAX_VERTICES);
        goto fail;
    }
    if (shape_count > MAX_SHAPES) {
        status = frig_fail(FRIG_ERROR_CORRUPT, "shape count %u exceeds %u", shape_count, MAX_SHAPES);
        goto fail;
    }
    if (block_size != FRIG_BLOCK_VERTICES ||
        block_count != (vertex_count + FRIG_BLOCK_VERTICES - 1) / FRIG_BLOCK_VERTICES) {
        status = frig_fail(FRIG_ERROR_CORRUPT, "block size %u / block count %u do not match %u vertices",
                           block_size, block_count, vertex_count);
        goto fail;
    }
    /* Each block lists a shape at most once, so E <= B * M (both < 2^32: no overflow). */
    max_entries = (uint64_t)block_count * shape_count;
    if ((uint64_t)entry_count > max_entries) {
        status = frig_fail(FRIG_ERROR_CORRUPT, "entry count %u exceeds blocks x shapes = %llu",
                           entry_count, (unsigned long long)max_entries);
        goto fail;
    }

    names.name = "shape names";
    names.offset = read_u64(image + 48);
    names.size = read_u64(image + 56);
    neutral.name = "neutral positions";
    neutral.offset = read_u64(image + 64);
    neutral.size = (uint64_t)vertex_count * 12u;
    normals.name = "neutral normals";
    normals.offset = read_u64(image + 72);
    normals.size = has_normals ? (uint64_t)vertex_count * 12u : 0u;
    block_starts.name = "block starts";
    block_starts.offset = read_u64(image + 80);
    block_starts.size = ((uint64_t)block_count + 1u) * 4u;
    entry_shapes.name = "entry shapes";
    entry_shapes.offset = read_u64(image + 88);
    entry_shapes.size = (uint64_t)entry_count * 4u;
    deltas.name = "position deltas";
    deltas.offset = read_u64(image + 96);
    deltas.size = (uint64_t)entry_count * delta_block_bytes;
    normal_deltas.name = "normal deltas";
    normal_deltas.offset = read_u64(image + 104);
    normal_deltas.size = has_normals ? (uint64_t)entry_count * delta_block_bytes : 0u;

    if (!has_normals && (normals.offset != 0 || normal_deltas.offset != 0)) {
        status = frig_fail(FRIG_ERROR_CORRUPT, "normal sections present without the normals flag");
        goto fail;
    }
    if (names.size > (uint64_t)shape_count * (MAX_NAME_BYTES + 1u)) {
        status = frig_fail(FRIG_ERROR_CORRUPT, "name table of %llu bytes for %u shapes",
                           (unsigned long long)names.size, shape_count);
        goto fail;
    }
    cursor = HEADER_SIZE;
    if ((status = check_section(image, &names, &cursor, body_end)) != FRIG_OK ||
        (status = check_section(image, &neutral, &cursor, body_end)) != FRIG_OK ||
        (has_normals && (status = check_section(image, &normals, &cursor, body_end)) != FRIG_OK) ||
        (status = check_section(image, &block_starts, &cursor, body_end)) != FRIG_OK ||
        (status = check_section(image, &entry_shapes, &cursor, body_end)) != FRIG_OK ||
        (status = check_section(image, &deltas, &cursor, body_end)) != FRIG_OK ||
        (has_normals && (status = check_section(image, &normal_deltas, &cursor, body_end)) != FRIG_OK))
        goto fail;
    if (cursor != body_end) {
        status = frig_fail(FRIG_ERROR_CORRUPT, "%llu stray bytes between the last section and the checksum",
                           (unsigned long long)(body_end - cursor));
        goto fail;
    }

    /* Block index: prefix sums from 0 to entry_count; shapes ascending inside a block. */
    starts = (const uint32_t *)(image + block_starts.offset);
    shapes = (const uint32_t *)(image + entry_shapes.offset);
    if (starts[0] != 0 || starts[block_count] != entry_count) {
        status = frig_fail(FRIG_ERROR_CORRUPT, "block starts run from %u to %u, expected 0 to %u",
                           starts[0], starts[block_count], entry_count);
        goto fail;
    }
    for (b = 0; b < block_count; ++b) {
        uint32_t k;
        if (starts[b + 1] < starts[b] || starts[b + 1] > entry_count) {
            status = frig_fail(FRIG_ERROR_CORRUPT, "block %u entries [%u, %u) are not a valid range",
                               b, starts[b], starts[b + 1]);
            goto fail;
        }
        for (k = starts[b]; k < starts[b + 1]; ++k) {
            if (shapes[k] >= shape_count || (k > starts[b] && shapes[k] <= shapes[k - 1])) {
                status = frig_fail(FRIG_ERROR_CORRUPT,
                                   "entry %u of block %u names shape %u (shapes %u, ascending)", k,
                                   b, shapes[k], shape_count);
                goto fail;
            }
        }
    }
    {
        const size_t delta_values = (size_t)entry_count * FRIG_BLOCK_FLOATS;
        const void *d = image + deltas.offset, *nd = image + normal_deltas.offset;
        int finite =
            all_finite((const float *)(image + neutral.offset), (size_t)vertex_count * 3u) &&
            (!has_normals ||
             all_finite((const float *)(image + normals.offset), (size_t)vertex_count * 3u));
        if (half_deltas)
            finite = finite && all_finite_half((const uint16_t *)d, delta_values) &&
                     (!has_normals || all_finite_half((const uint16_t *)nd, delta_values));
        else
            finite = finite && all_finite((const float *)d, delta_values) &&
                     (!has_normals || all_finite((const float *)nd, delta_values));
        if (!finite) {
            status = frig_fail(FRIG_ERROR_CORRUPT, "a position, normal or delta is NaN or infinite");
            goto fail;
        }
    }

    /* Working memory: name pointers and the block-padded neutral arrays. */
    work_size = (size_t)shape_count * sizeof(char *) + SECTION_ALIGN +
                (size_t)block_count * FRIG_BLOCK_FLOATS * sizeof(float) * (has_normals ? 2u : 1u);
    rig = (frig_rig *)calloc(1, sizeof *rig);
    work = rig ? (uint8_t *)aligned_block(work_size, &rig->work_alloc) : NULL;
    if (!work) {
        status = frig_fail(FRIG_ERROR_OUT_OF_MEMORY, "%zu bytes of working memory", work_size);
        goto fail;
    }
    rig->image_alloc = image_alloc;
    image_alloc = NULL;
    rig->image = image;
    rig->image_size = size;
    rig->vertex_count = vertex_count;
    rig->shape_count = shape_count;
    rig->block_count = block_count;
    rig->entry_count = entry_count;
    rig->has_normals = has_normals;
    rig->block_starts = starts;
    rig->entry_shapes = shapes;
    rig->deltas = image + deltas.offset;
    rig->normal_deltas = has_normals ? image + normal_deltas.offset : NULL;
    rig->delta_encoding = half_deltas ? FRIG_DELTAS_F16 : FRIG_DELTAS_F32;
    rig->delta_block_bytes = (size_t)delta_block_bytes;
    {
        float *padded = (float *)work;
        pad_blocks(padded, (const float *)(image + neutral.offset), vertex_count, block_count);
        rig->neutral = padded;
        if (has_normals) {
            padded += (size_t)block_count * FRIG_BLOCK_FLOATS;
            pad_blocks(padded, (const float *)(image + normals.offset), vertex_count, block_count);
            rig->neutral_normals = padded;
        }
        padded += (size_t)block_count * FRIG_BLOCK_FLOATS;
        rig->names = (const char **)(void *)padded;
    }

    /* Names: shape_count non-empty NUL-terminated strings filling the section exactly. */
    name_cursor = (const char *)(image + names.offset);
    {
        const char *names_end = name_cursor + names.size;
        for (i = 0; i < shape_count; ++i) {
            const char *nul = (const char *)memchr(name_cursor, 0, (size_t)(names_end - name_cursor));
            if (!nul || nul == name_cursor || (size_t)(nul - name_cursor) > MAX_NAME_BYTES) {
                status = frig_fail(FRIG_ERROR_CORRUPT, "shape name %u is missing, empty or too long", i);
                goto fail;
            }
            rig->names[i] = name_cursor;
            name_cursor = nul + 1;
        }
        if (name_cursor != names_end) {
            status = frig_fail(FRIG_ERROR_CORRUPT, "%zu stray bytes after the shape names",
                               (size_t)(names_end - name_cursor));
            goto fail;
        }
    }

    rig->simd_level = frig_best_level(rig->delta_encoding);
    rig->kernel = frig_kernel_for(rig->simd_level, rig->delta_encoding);
    *out_rig = rig;
    return FRIG_OK;

fail:
    if (rig)
        frig_rig_free(rig);
    free(image_alloc);
    return status;
}

int frig_rig_load_memory(const void *data, size_t size, frig_rig **out_rig)
{
    void *raw;
    uint8_t *image;
    if (!out_rig)
        return frig_fail(FRIG_ERROR_INVALID_ARGUMENT, "out_rig is NULL");
    *out_rig = NULL;
    if (!data && size != 0)
        return frig_fail(FRIG_ERROR_INVALID_ARGUMENT, "data is NULL");
    if (size > SIZE_MAX - 2 * SECTION_ALIGN)
        return frig_fail(FRIG_ERROR_OUT_OF_MEMORY, "%zu bytes", size);
    image = (uint8_t *)aligned_block(size ? size : 1, &raw);
    if (!image)
        return frig_fail(FRIG_ERROR_OUT_OF_MEMORY, "%zu bytes for the rig image", size);
    if (size)
        memcpy(image, data, size);
    return load_image(raw, image, size, out_rig);
}

int frig_rig_load_file(const char *path, frig_rig **out_rig)
{
    FILE *file;
    long end;
    void *raw;
    uint8_t *image;
    size_t size;
    if (!out_rig || !path)
        return frig_fail(FRIG_ERROR_INVALID_ARGUMENT, "path or out_rig is NULL");
    *out_rig = NULL;
    file = fopen(path, "rb");
    if (!file)
        return frig_fail(FRIG_ERROR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (fseek(file, 0, SEEK_END) != 0 || (end = ftell(file)) < 0 || fseek(file, 0, SEEK_SET) != 0) {
        fclose(file);
        return frig_fail(FRIG_ERROR_IO, "cannot size '%s'", path);
    }
    size = (size_t)end;
    image = (uint8_t *)aligned_block(size ? size : 1, &raw);
    if (!image) {
        fclose(file);
        return frig_fail(FRIG_ERROR_OUT_OF_MEMORY, "%zu bytes for '%s'", size, path);
    }
    if (size && fread(image, 1, size, file) != size) {
        fclose(file);
        free(raw);
        return frig_fail(FRIG_ERROR_IO, "short read from '%s'", path);
    }
    fclose(file);
    return load_image(raw, image, size, out_rig);
}

void frig_rig_free(frig_rig *rig)
{
    if (!rig)
        return;
    free(rig->work_alloc);
    free(rig->image_alloc);
    free(rig);
}

uint32_t frig_rig_vertex_count(const frig_rig *rig) { return rig ? rig->vertex_count : 0; }
uint32_t frig_rig_shape_count(const frig_rig *rig) { return rig ? rig->shape_count : 0; }
int frig_rig_has_normals(const frig_rig *rig) { return rig ? rig->has_normals : 0; }

const char *frig_rig_shape_name(const frig_rig *rig, uint32_t index)
{
    return rig && index < rig->shape_count ? rig->names[index] : NULL;
}

const void *frig_rig_file_bytes(const frig_rig *rig, size_t *size)
{
    if (size)
        *size = rig ? rig->image_size : 0;
    return rig ? rig->image : NULL;
}
