/* The blocked Bloom filter: see lib/bloom.h. */
#include "bloom.h"

#define BITS_PER_LINE (SEQ_BLOOM_LINE_BYTES * 8u)
#define PROBES 8u
#define PROBE_BITS 9u /* log2(BITS_PER_LINE) */

_Static_assert(1u << PROBE_BITS == BITS_PER_LINE, "a probe addresses one bit of a line");

uint64_t seq_bloom_lines_for(uint64_t ids)
{
    uint64_t bits = ids * SEQ_BLOOM_BITS_PER_ID;
    uint64_t lines = (bits + BITS_PER_LINE - 1) / BITS_PER_LINE;
    return lines ? lines : 1;
}

/* Little-endian whatever the host: a filter stored by one machine reads the
 * same on another. */
static uint64_t word_at(const seq_hash *id, size_t offset)
{
    uint64_t w = 0;
    for (size_t i = 0; i < 8; i++)
        w |= (uint64_t)id->b[offset + i] << (8 * i);
    return w;
}

/* The line from the id's first 8 bytes (multiply-shift: no modulo bias), the
 * 8 bit positions from the next 9-bit groups of bytes 8..23. */
static uint64_t line_of(const seq_hash *id, uint64_t lines)
{
    return (uint64_t)(((unsigned __int128)word_at(id, 0) * lines) >> 64);
}

static void probes_of(const seq_hash *id, uint32_t pos[PROBES])
{
    uint64_t a = word_at(id, 8), b = word_at(id, 16);
    for (uint32_t i = 0; i < PROBES - 1; i++, a >>= PROBE_BITS)
        pos[i] = (uint32_t)(a & (BITS_PER_LINE - 1));
    pos[PROBES - 1] = (uint32_t)(b & (BITS_PER_LINE - 1));
}

void seq_bloom_add(uint8_t *bytes, uint64_t lines, const seq_hash *id)
{
    uint8_t *line = bytes + line_of(id, lines) * SEQ_BLOOM_LINE_BYTES;
    uint32_t pos[PROBES];
    probes_of(id, pos);
    for (uint32_t i = 0; i < PROBES; i++)
        line[pos[i] >> 3] |= (uint8_t)(1u << (pos[i] & 7));
}

void seq_bloom_prefetch(const uint8_t *bytes, uint64_t lines, const seq_hash *id)
{
    __builtin_prefetch(bytes + line_of(id, lines) * SEQ_BLOOM_LINE_BYTES);
}

bool seq_bloom_maybe(const uint8_t *bytes, uint64_t lines, const seq_hash *id)
{
    const uint8_t *line = bytes + line_of(id, lines) * SEQ_BLOOM_LINE_BYTES;
    uint32_t pos[PROBES];
    probes_of(id, pos);
    for (uint32_t i = 0; i < PROBES; i++)
        if (!(line[pos[i] >> 3] & (1u << (pos[i] & 7))))
            return false;
    return true;
}
