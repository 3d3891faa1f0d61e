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

/* Hard caps on the configured limits (seq_mempool_new refuses more). The
 * recent set is allocated up front: at most about 140 bytes per id of recent_max. */
#define SEQ_MEMPOOL_TXS_LIMIT_MAX (1u << 24)
#define SEQ_MEMPOOL_NAMESPACES_LIMIT_MAX SEQ_MEMPOOL_TXS_LIMIT_MAX
#define SEQ_MEMPOOL_RECENT_LIMIT_MAX (1u << 22)

/* Excluded transactions one namespace may walk past in one build before it
 * stops offering for that build: bounds the work a large exclude set causes
 * (at most this many exclude calls per namespace per build). */
#define SEQ_MEMPOOL_EXCLUDED_SKIPS_MAX 1024u

/* SEQ_EINVAL for a zero or out-of-format limit. *out owned by the caller. */
int seq_mempool_new(seq_mempool **out, const seq_mempool_limits *limits) SEQ_MUST_CHECK;
void seq_mempool_free(seq_mempool *mp);

/* Evicted ids kept for seq_mempool_take_evicted; more are only counted. */
#define SEQ_MEMPOOL_EVICTED_MAX 1024u

/* Copies and queues a transaction at the tail of its namespace. On success
 * *id is its id. When the pool is full (txs_max or bytes_max), the namespace
 * with the most pending transactions gives way to one holding at least two
 * fewer: its newest transactions are evicted (up to 16 for one add) and their
 * ids kept for seq_mempool_take_evicted. So one namespace's flood can fill the
 * pool but not keep the others out.
 * Errors (nothing changes): SEQ_ETOOBIG (payload over tx_bytes_max),
 * SEQ_EDUPLICATE (pending or recently finalized), SEQ_EFULL (full, and no
 * namespace has two more than this one), SEQ_ENS_FULL (namespaces_max).
 * Checked in that order; *id (may be NULL) is also set on the last three.
 * SEQ_EINVAL for a NULL payload with len > 0, SEQ_ENOMEM. */
int seq_mempool_add(seq_mempool *mp, seq_ns ns, const uint8_t *payload, uint32_t len, seq_hash *id);
/* The same for a transaction whose id is already computed (a decoded gossip
 * frame hashed it): saves hashing the payload again. tx->id must be the id of
 * ns, len and data (seq_tx_compute_id). */
int seq_mempool_add_tx(seq_mempool *mp, const seq_tx *tx);
/* Asks the CPU to start loading what adding id reads first (its slots in the
 * pending and recent sets): a loop adding many transactions (a gossip
 * frame, a client's batch) calls it a few ahead, so the cache misses of the
 * large sets overlap instead of following one another. Changes nothing. */
void seq_mempool_prefetch(const seq_mempool *mp, const seq_hash *id);

/* Moves up to max ids of evicted transactions (oldest eviction first) to out;
 * returns how many. *unreported (may be NULL): evictions beyond what could be
 * kept since the last call, then reset. */
uint32_t seq_mempool_take_evicted(seq_mempool *mp, seq_hash *out, uint32_t max, uint64_t *unreported);

/* Predicate: true to leave this pending tx out of the batch (it stays queued),
 * e.g. because a notarized, not yet finalized ancestor already carries it. */
typedef bool (*seq_mempool_exclude_fn)(void *ctx, const seq_hash *id);

/* Picks up to txs_max transactions / bytes_max payload bytes, fair across
 * namespaces: rounds that take one transaction from each namespace in turn,
 * the starting namespace rotating between calls, so a namespace with 100x the
 * load gets no more than any other while others have transactions waiting.
 * Writes them to out (capacity txs_max) sorted by namespace, FIFO inside one;
 * out[i].data points into the mempool and is valid until the next call that
 * changes it. Transactions stay pending until removed. *n is the count.
 *
 * The exact rule. Namespaces are kept in a rotation ring (a new namespace
 * joins just before the start one). Round 1 visits each namespace once, in
 * ring order from the start; later rounds visit, in the same order, those
 * that gave a transaction in the round before. A visited namespace offers
 * its oldest transaction not yet taken in this build:
 * - excluded ones are passed over (they stay pending); after
 *   SEQ_MEMPOOL_EXCLUDED_SKIPS_MAX of them it offers nothing more;
 * - one whose payload exceeds the bytes still free is not taken, and that
 *   namespace offers nothing more in this build (its later transactions never
 *   overtake it), while the other namespaces go on;
 * - otherwise it is taken: one per namespace per round.
 * The build ends when txs_max are taken or no namespace offers any more.
 * The next build starts at the namespace after the last one that gave a
 * transaction (unchanged if none did). Work: the transactions taken, the
 * excluded ones passed over, plus one visit per namespace, then a sort of
 * the result. exclude may be NULL, and must not call into the mempool. */
int seq_mempool_build(seq_mempool *mp, uint32_t txs_max, uint64_t bytes_max,
                      seq_mempool_exclude_fn exclude, void *ctx, seq_tx *out, uint32_t *n);

/* Removes finalized transactions (pending or not) and remembers their ids so
 * that a late copy is rejected as a duplicate. */
void seq_mempool_remove_finalized(seq_mempool *mp, const seq_hash *ids, size_t n);

/* Expiry. The mempool's clock is the latest now_ms given here (it never
 * goes back); a transaction is stamped with it when it arrives. Removes up to
 * max pending transactions stamped at or before now_ms - ttl_ms, oldest first,
 * writing their ids to expired; returns how many. They are not remembered as
 * finalized: the same transaction may be submitted again. Work: O(removed). */
uint32_t seq_mempool_expire(seq_mempool *mp, uint64_t now_ms, uint64_t ttl_ms, seq_hash *expired, uint32_t max);

/* True for a pending id. */
bool seq_mempool_contains(const seq_mempool *mp, const seq_hash *id);
/* Looks up n ids among the pending transactions: out[i] is ids[i]'s (its
 * payload borrowed until the mempool next changes) or, when not pending,
 * all zero. Returns how many were not pending. */
uint32_t seq_mempool_lookup(const seq_mempool *mp, const seq_hash *ids, uint32_t n, seq_tx *out);
/* True for an id among the last recent_max finalized ones. */
bool seq_mempool_recent_contains(const seq_mempool *mp, const seq_hash *id);
uint32_t seq_mempool_count(const seq_mempool *mp);
uint64_t seq_mempool_bytes(const seq_mempool *mp);
/* Pending count and bytes of one namespace (0, 0 when none). */
void seq_mempool_ns_usage(const seq_mempool *mp, seq_ns ns, uint32_t *count, uint64_t *bytes);

/* For metrics: namespaces with pending transactions, and the up to cap of
 * them with the most (count descending, then ns ascending) written to out;
 * returns how many. Work: one pass over the pending namespaces. */
typedef struct {
    seq_ns ns;
    uint32_t count;
    uint64_t bytes;
} seq_mempool_ns_stat;

uint32_t seq_mempool_namespaces(const seq_mempool *mp);
uint32_t seq_mempool_ns_top(const seq_mempool *mp, seq_mempool_ns_stat *out, uint32_t cap);

#endif
