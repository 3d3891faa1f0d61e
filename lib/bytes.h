/* A malloc'd byte buffer that grows by doubling: frame assembly, gossip
 * batches, subscriber queues and the vote log's scratch all append to one. */
#ifndef SEQ_BYTES_H
#define SEQ_BYTES_H

#include <stddef.h>
#include <stdint.h>

#include "assert.h"

/* Makes *buf hold at least need bytes: doubles *cap from first (when 0)
 * until it does, so n appends reallocate about log2(n) times. SEQ_ENOMEM
 * leaves *buf and *cap as they were. */
int seq_bytes_reserve(uint8_t **buf, size_t *cap, size_t need, size_t first) SEQ_MUST_CHECK;

#endif
