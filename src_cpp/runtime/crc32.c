/* crc32.c -- CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320).
 * Chosen over a 64-bit hash because every language has it (zlib.crc32), so a
 * host or a test can check or re-seal a .frig file without this library. */
#include "frig_internal.h"

/* Slicing-by-4 tables, built once from the polynomial at compile time would need
 * a generator; computing them per call costs 1 KiB x 4 of work, negligible next
 * to reading a rig, and keeps the library free of global mutable state. */
static void crc32_tables(uint32_t table[4][256])
{
    uint32_t i, k;
    for (i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (k = 0; k < 8; ++k)
            c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[0][i] = c;
    }
    for (i = 0; i < 256; ++i) {
        table[1][i] = (table[0][i] >> 8) ^ table[0][table[0][i] & 0xFFu];
        table[2][i] = (table[1][i] >> 8) ^ table[0][table[1][i] & 0xFFu];
        table[3][i] = (table[2][i] >> 8) ^ table[0][table[2][i] & 0xFFu];
    }
}

uint32_t frig_crc32(const uint8_t *data, size_t size)
{
    uint32_t table[4][256];
    uint32_t crc = 0xFFFFFFFFu;
    crc32_tables(table);
    while (size >= 4) {
        crc ^= (uint32_t)data[0] | ((uint32_t)data[1] << 8) | ((uint32_t)data[2] << 16) |
               ((uint32_t)data[3] << 24);
        crc = table[3][crc & 0xFFu] ^ table[2][(crc >> 8) & 0xFFu] ^
              table[1][(crc >> 16) & 0xFFu] ^ table[0][crc >> 24];
        data += 4;
        size -= 4;
    }
    while (size--)
        crc = (crc >> 8) ^ table[0][(crc ^ *data++) & 0xFFu];
    return crc ^ 0xFFFFFFFFu;
}
