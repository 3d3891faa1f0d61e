/* Pending transactions: dedup by id (also against recently finalized ids),
 * limits, per-namespace FIFO queues and a batch builder fair across namespaces. */
#ifndef SEQ_MEMPOOL_H
#define SEQ_MEMPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

typedef struct {
    uint32_t txs_max;        /* pending transactions */
    uint64_t bytes_max;      /* pending payload bytes */
    uint32_t tx_bytes_max;   /* one payload; <= SEQ_TX_PAYLOAD_BYTES_MAX */
    uint32_t namespaces_max; /* namespaces with pending transactions */
    uint32_t recent_max;     /* finalized ids remembered for dedup */
} seq_mempool_limits;

typedef struct seq_mempool seq_mempool;

/* SEQ_EINVAL for a zero or out-of-format limit. *out owned by the caller. */
int seq_mempool_new(seq_mempool **out, const seq_mempool_limits *limits) SEQ_MUST_CHECK;
void seq_mempool_free(seq_mempool *mp);

/* Copies and queues a transaction at the tail of its namespace. On success
 * *id is its id. Errors (nothing changes): SEQ_ETOOBIG (payload over
 * tx_bytes_max), SEQ_EDUPLICATE (pending or recently finalized), SEQ_EFULL
 * (count or bytes limit), SEQ_ENS_FULL (namespaces_max). */
int seq_mempool_add(seq_mempool *mp, seq_ns ns, const uint8_t *payload, uint32_t len, seq_hash *id);

/* Predicate: true to leave this pending tx out of the batch (it stays queued),
 * e.g. because a notarized, not yet finalized ancestor already carries it. */
typedef bool (*seq_mempool_exclude_fn)(void *ctx, const seq_hash *id);

/* Picks up to txs_max transactions / bytes_max payload bytes, fair across
 * namespaces: rounds that take one transaction from each namespace in turn,
 * the starting namespace rotating between calls, so a namespace with 100x the
 * load gets no more than any other while others have transactions waiting.
 * Writes them to out (capacity txs_max) sorted by namespace, FIFO inside one;
 * out[i].data points into the mempool and is valid until the next call that
 * changes it. Transactions stay pending until removed. *n is the count. */
int seq_mempool_build(seq_mempool *mp, uint32_t txs_max, uint64_t bytes_max,
                      seq_mempool_exclude_fn exclude, void *ctx, seq_tx *out, uint32_t *n);

/* Removes finalized transactions (pending or not) and remembers their ids so
 * that a late copy is rejected as a duplicate. */
void seq_mempool_remove_finalized(seq_mempool *mp, const seq_hash *ids, size_t n);

bool seq_mempool_contains(const seq_mempool *mp, const seq_hash *id);
uint32_t seq_mempool_count(const seq_mempool *mp);
uint64_t seq_mempool_bytes(const seq_mempool *mp);
/* Pending count and bytes of one namespace (0, 0 when none). */
void seq_mempool_ns_usage(const seq_mempool *mp, seq_ns ns, uint32_t *count, uint64_t *bytes);

#endif
