/* Encoded NamespaceBatch messages (proto/seq.proto) of recent heights, built
 * once and sent to every subscriber that wants them. With S subscribers on
 * one block, the node builds the block's Merkle tree once, each namespace's
 * batch (proof, certificate path, encoding) once, and copies bytes S times.
 * Driver-side (reads the store); one thread. */
#ifndef SEQ_BATCHCACHE_H
#define SEQ_BATCHCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "assert.h"
#include "store.h"
#include "types.h"
#include "verify.h"

typedef struct seq_batch_cache seq_batch_cache;

#define SEQ_BATCH_CACHE_SLOTS 4096        /* (height, ns) entries */
#define SEQ_BATCH_CACHE_BLOCKS 256        /* the last heights' blocks (with trees) held */

/* bytes_max bounds the encoded batches held; a batch larger than a quarter
 * of it is encoded for its caller and not kept. block_bytes_max bounds the
 * blocks held (seq_block_mem_bytes), the lowest heights going first; the
 * block being served is always kept. */
int seq_batch_cache_new(seq_batch_cache **out, seq_store *s, size_t bytes_max, size_t block_bytes_max) SEQ_MUST_CHECK;
void seq_batch_cache_free(seq_batch_cache *c);
/* Bytes of the blocks held now (seq_block_mem_bytes), for the bound's test. */
size_t seq_batch_cache_block_bytes(const seq_batch_cache *c);

/* A finalized block the caller holds (a live delivery), taken over (the
 * cache frees it): the batches of its height are then built without reading
 * and re-checking it from the store. */
void seq_batch_cache_adopt(seq_batch_cache *c, seq_block *b, const seq_cert *cert);

/* The encoded NamespaceBatch of ns at height: *bytes valid until the next
 * call on c, *txs its transaction count (0: an empty batch, a heartbeat).
 * Reads block and certificate from the store when not held. SEQ_ENOTFOUND
 * above the store's tip, store and encoding errors. */
int seq_batch_cache_get(seq_batch_cache *c, uint64_t height, seq_ns ns, const uint8_t **bytes, size_t *len,
                        uint32_t *txs) SEQ_MUST_CHECK;

#endif
