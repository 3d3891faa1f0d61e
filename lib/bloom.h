/* A blocked Bloom filter over 32-byte ids that are uniform hashes (tx ids):
 * each id sets 8 bits inside one 64-byte line, so a lookup reads one cache
 * line. About 10 bits per id give ~2% false positives, never a false negative.
 * The filter is a plain byte array (lines * 64 bytes) so that it can be
 * stored as an LMDB value and tested where it is mapped, without a copy.
 *
 * Ids are taken as hashes as they are: someone who grinds ids to share bits
 * only raises the false-positive rate of the filters those ids are in (each
 * false positive costs one B-tree lookup), never hides an id. */
#ifndef SEQ_BLOOM_H
#define SEQ_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define SEQ_BLOOM_LINE_BYTES 64u
#define SEQ_BLOOM_BITS_PER_ID 10u

/* Lines for a filter of `ids` entries (at least 1). */
uint64_t seq_bloom_lines_for(uint64_t ids);

/* Sets id's bits in a filter of `lines` lines (bytes: lines * 64). */
void seq_bloom_add(uint8_t *bytes, uint64_t lines, const seq_hash *id);

/* Asks the CPU to start loading id's line: a loop over many ids calls this
 * a few ids ahead of seq_bloom_maybe, so that the cache misses of a large
 * filter overlap instead of following one another. Changes nothing. */
void seq_bloom_prefetch(const uint8_t *bytes, uint64_t lines, const seq_hash *id);

/* False: id was never added. True: it may have been. */
bool seq_bloom_maybe(const uint8_t *bytes, uint64_t lines, const seq_hash *id);

#endif
