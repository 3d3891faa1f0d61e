/* One validator's deciding parts wired together: consensus, mempool and store.
 * No sockets, no clock, no libuv: a driver (the simulator today, seqd next)
 * feeds it time-stamped events and carries out its sends and timer through
 * seq_replica_io. The simulator and the daemon drive this same code. */
#ifndef SEQ_REPLICA_H
#define SEQ_REPLICA_H

#include <stdbool.h>
#include <stdint.h>

#include "consensus.h"
#include "mempool.h"
#include "msg.h"
#include "store.h"

#define SEQ_TO_ALL UINT32_MAX
#define SEQ_GOSSIP_PENDING_MAX 65536 /* accepted txs waiting to be pushed to peers */
#define SEQ_BLOCK_REQS_PER_VIEW_MAX 64 /* block requests served per peer per view of ours */

typedef struct {
    void *ctx;
    /* Send m to validator `to`, or to every other validator when to is
     * SEQ_TO_ALL. m and what it points to are valid only during the call. */
    void (*send)(void *ctx, uint32_t to, const seq_msg *m);
    /* (Re)arm the single timer; when it fires call seq_replica_timeout. */
    void (*set_timer)(void *ctx, uint64_t deadline_ms);
    /* Optional: a block was finalized and committed to the store. */
    void (*delivered)(void *ctx, const seq_block *b, const seq_cert *cert);
    /* Optional: our own vote is durable and about to be sent (simulator checks). */
    void (*signed_vote)(void *ctx, const seq_vote *v);
    /* Optional: pending transactions left the mempool unordered (expired, or
     * evicted by a full mempool for another namespace's). */
    void (*dropped)(void *ctx, const seq_hash *ids, uint32_t n, int reason);
    /* The store failed to persist: the node must stop. Nothing was sent after
     * the failed write. */
    void (*fatal)(void *ctx, int err, const char *what);
} seq_replica_io;

typedef struct {
    seq_consensus_config consensus;
    seq_mempool_limits mempool;
    uint32_t block_txs_max;   /* <= SEQ_BLOCK_TXS_MAX */
    uint64_t block_bytes_max; /* payload bytes per block, <= SEQ_BLOCK_BYTES_MAX */
    seq_store *store;         /* borrowed; open for writing, same chain id */
    /* A leader with an empty mempool holds its proposal up to this long
     * (answered by seq_replica_tick once a transaction arrives or the delay
     * is over). 0: propose at once, empty or not (the simulator). */
    uint64_t empty_block_delay_ms;
    /* A leader holds its proposal until the parent block is this old (by
     * the parent's timestamp, at most this long from when it is asked to
     * build; answered by seq_replica_tick). Fewer, fuller blocks at moderate
     * load: on a saturated machine every view's votes, flushes and
     * signatures cost CPU that the latency pays for. 0: at once. */
    uint64_t block_interval_min_ms;
    /* A pending transaction not ordered within this long is dropped from the
     * mempool (io->dropped, SEQ_DROP_EXPIRED) by seq_replica_tick. 0: never. */
    uint64_t tx_ttl_ms;
    /* Our proposals go out as header and tx ids (after the gossip still
     * queued), not payloads: each payload then crosses each link once. A
     * validator that lacks one of the transactions fetches the whole block
     * from the leader. Received compact proposals are handled either way. */
    bool compact_proposals;
} seq_replica_config;

/* Why a pending transaction left the mempool unordered. Expired is the only
 * one the node produces today (docs/design.md); the others are reserved
 * answers of the tx status API. */
enum { SEQ_DROP_EXPIRED = 1, SEQ_DROP_EVICTED = 2, SEQ_DROP_INVALID = 3 };
const char *seq_drop_reason_name(int reason);

typedef struct seq_replica seq_replica;

/* Restores the consensus from the store's safety state (tip and own votes).
 * *out owned by the caller (seq_replica_free, which does not close the store). */
int seq_replica_new(seq_replica **out, const seq_replica_config *cfg, const seq_replica_io *io) SEQ_MUST_CHECK;
void seq_replica_free(seq_replica *r);

/* Each returns 0, or the store error that made the node stop (io->fatal was
 * called; the replica must not be driven further). */
int seq_replica_start(seq_replica *r, uint64_t now_ms) SEQ_MUST_CHECK;
int seq_replica_receive(seq_replica *r, uint64_t now_ms, uint32_t from, const seq_msg *m) SEQ_MUST_CHECK;
int seq_replica_timeout(seq_replica *r, uint64_t now_ms) SEQ_MUST_CHECK;

/* True when answers to the consensus (a payload to build, a block to verify)
 * are still queued after a call: the driver should call seq_replica_continue
 * soon (same tick), before waiting for I/O. Each call answers a bounded number. */
bool seq_replica_pending(const seq_replica *r);
int seq_replica_continue(seq_replica *r, uint64_t now_ms) SEQ_MUST_CHECK;

/* Answers a proposal held back for lack of transactions when one has arrived
 * or its delay is over, and expires old transactions (at most
 * SEQ_EXPIRE_PER_TICK per call). Cheap otherwise: call it on a short timer. */
#define SEQ_EXPIRE_PER_TICK 4096
int seq_replica_tick(seq_replica *r, uint64_t now_ms) SEQ_MUST_CHECK;

/* A client's transaction: into the mempool and queued for gossip. Returns the
 * mempool's verdict (0, SEQ_ETOOBIG, SEQ_EDUPLICATE, SEQ_EFULL, SEQ_ENS_FULL);
 * a transaction already finalized is SEQ_EDUPLICATE; SEQ_EIO once the node
 * has stopped on a store error. */
int seq_replica_submit(seq_replica *r, seq_ns ns, const uint8_t *payload, uint32_t len, seq_hash *id);
/* seq_replica_submit for a client's batch (ns, len and data of each; ids
 * ignored): rcs[i] and ids[i] are transaction i's verdict and id (zero when
 * refused before hashing), exactly as one call each in order would give
 * (SEQ_ENOMEM for all when the batch's scratch cannot be had). One store
 * lookup for all the ids instead of one each. */
void seq_replica_submit_many(seq_replica *r, const seq_tx *txs, uint32_t n, int *rcs, seq_hash *ids);
/* Pushes queued transactions to all peers in frames of at most
 * SEQ_GOSSIP_TXS_MAX; call after a burst of submits or on a short timer. */
void seq_replica_gossip_flush(seq_replica *r);

/* Range sync: commits finalized blocks fetched from peers and checked by
 * seq_sync_check (heights continuing the store's tip), takes their
 * transactions out of the mempool, announces them (io->delivered), and when
 * they reach past the consensus' finalized height restarts the consensus from
 * the store (own votes kept: no double vote). The mempool and gossip queue are
 * kept. A store refusal (SEQ_EORDER, SEQ_EMISMATCH, ...) changes nothing and
 * is returned; the replica keeps running. */
int seq_replica_commit_synced(seq_replica *r, uint64_t now_ms, const seq_store_final *items, uint32_t n) SEQ_MUST_CHECK;

/* A link to peer came up: sends it our own votes above the finalized view
 * (durable ones, from the store). Certificates live only in memory; after
 * every validator restarted, a view whose votes were all cast but whose
 * certificate nobody kept would stay undecided for good (neither
 * certifiable nor nullifiable by those who voted finalize). Peers re-form its
 * certificates from these votes. At most SEQ_RESTORE_VOTES_MAX votes. */
int seq_replica_peer_up(seq_replica *r, uint32_t peer) SEQ_MUST_CHECK;

/* Whether transaction id waits in the mempool. */
bool seq_replica_contains(const seq_replica *r, const seq_hash *id);
/* The mempool, read-only, for the driver's metrics (seq_mempool_ns_top). */
const seq_mempool *seq_replica_mempool(const seq_replica *r);

typedef struct {
    seq_consensus_status consensus;
    uint32_t mempool_txs;
    uint64_t mempool_bytes;
    uint64_t finalized_txs;
    uint64_t gossip_dropped; /* gossip queue was full */
    uint64_t expired_txs;    /* dropped from the mempool by tx_ttl_ms */
    uint64_t evicted_txs;    /* dropped from a full mempool for another namespace's */
    uint64_t proposals_rebuilt; /* compact proposals rebuilt from the mempool */
    uint64_t proposals_fetched; /* compact proposals whose whole block was asked for */
} seq_replica_status;

void seq_replica_status_get(const seq_replica *r, seq_replica_status *out);

#endif
