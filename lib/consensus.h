/* The Simplex consensus as a pure, deterministic state machine: events in,
 * actions out (cowsql/raft's raft_step shape). No I/O, no clock, no libuv:
 * time arrives in events, and the driver carries out the actions in order
 * (persist before send, as etcd's Ready). Rules: docs/design.md §Consensus. */
#ifndef SEQ_CONSENSUS_H
#define SEQ_CONSENSUS_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"
#include "types.h"

#define SEQ_VIEW_WINDOW 256        /* views held in memory (ring) */
#define SEQ_VOTE_VIEWS_AHEAD_MAX 8 /* votes further ahead of our view are dropped */
#define SEQ_BLOCKS_MAX 512         /* unfinalized blocks held in memory */
#define SEQ_ACTIONS_MAX (SEQ_BLOCKS_MAX + 2 * SEQ_CERT_REQ_VIEWS_MAX + 64)
#define SEQ_RESTORE_VOTES_MAX (4 * SEQ_VIEW_WINDOW)
#define SEQ_EVIDENCE_MAX 64        /* equivocation records kept */
#define SEQ_CERT_ARCHIVE_VIEWS 4096 /* notarizations/nullifications kept (packed) to answer peers */
#define SEQ_CERT_REQS_PER_VIEW_MAX 4 /* certificate requests answered per peer per view of ours */
#define SEQ_NULLIFIED_RUNS_MAX 64  /* runs of consecutive nullified views kept beyond the ring */
#define SEQ_TIMESTAMP_AHEAD_MS_MAX 10000 /* a block may not be timed further ahead of our clock */

_Static_assert(SEQ_BLOCKS_MAX >= 2 * SEQ_VIEW_WINDOW, "one proposal per view plus fetched ancestors");

typedef struct {
    uint64_t chain_id;
    const seq_validators *validators; /* borrowed; outlives the consensus */
    uint32_t self;                    /* our index in validators */
    const seq_keypair *key;           /* borrowed; our identity key */
    uint64_t view_timeout_ms;         /* a view without progress for this long is nullified */
} seq_consensus_config;

/* What the node had durably before a restart (from the store). */
typedef struct {
    uint64_t final_height;
    uint64_t final_view;
    seq_hash final_hash;        /* zero before the first block */
    uint64_t final_timestamp_ms;
    const seq_cert *final_cert; /* certificate of the last finalized block, or NULL */
    const seq_vote *votes;      /* the newest own votes with view > final_view */
    uint32_t vote_count;        /* <= SEQ_RESTORE_VOTES_MAX */
} seq_consensus_restore;

typedef enum {
    SEQ_EV_START = 1, /* begin (or resume after restart) */
    SEQ_EV_MESSAGE,   /* a message from validator `from` (link already authenticated) */
    SEQ_EV_TIMEOUT,   /* the timer set by SEQ_ACT_SET_TIMER fired */
    SEQ_EV_PAYLOAD,   /* answer to SEQ_ACT_BUILD: transactions for our proposal */
    SEQ_EV_VERIFIED,  /* answer to SEQ_ACT_VERIFY */
} seq_event_kind;

typedef struct {
    seq_event_kind kind;
    uint64_t now_ms;
    union {
        struct {
            uint32_t from;
            const seq_msg *msg; /* borrowed for the call */
        } message;
        struct {
            uint64_t view;
            const seq_tx *txs; /* borrowed for the call; copied into the block, with the ids
                                * given (seq_tx_compute_id of each: the mempool's) */
            uint32_t count;
        } payload;
        struct {
            uint64_t view;
            seq_hash hash;
            bool ok;
        } verified;
    } u;
} seq_event;

typedef enum {
    SEQ_ACT_PERSIST_VOTE = 1, /* make vote durable; every later action waits for it */
    SEQ_ACT_BROADCAST,        /* send msg to every other validator */
    SEQ_ACT_SEND,             /* send msg to validator `to` */
    SEQ_ACT_SET_TIMER,        /* (re)arm the single timer at deadline_ms */
    SEQ_ACT_BUILD,            /* we lead `view`: pick transactions not in `parent` or its
                                 unfinalized ancestors; answer with SEQ_EV_PAYLOAD */
    SEQ_ACT_VERIFY,           /* check the block's transactions against the chain (none
                                 finalized or in an unfinalized ancestor); answer
                                 with SEQ_EV_VERIFIED */
    SEQ_ACT_DELIVER,          /* a finalized block, in height order, with the
                                 certificate that finalized it (or a descendant) */
    SEQ_ACT_EQUIVOCATION,     /* evidence: two conflicting signed votes of one validator */
} seq_action_kind;

typedef struct {
    seq_action_kind kind;
    union {
        seq_vote vote;
        struct {
            uint32_t to;
            const seq_msg *msg;
        } send;
        uint64_t deadline_ms;
        struct {
            uint64_t view;
            const seq_hash *parent; /* zero hash: the genesis */
        } build;
        const seq_block *block; /* VERIFY */
        struct {
            const seq_block *block;
            const seq_cert *cert;
        } deliver;
        struct {
            seq_vote a, b;
        } equivocation;
    } u;
} seq_action;

/* Actions of one step. Everything they point to is owned by the consensus
 * and valid until the next seq_consensus_step call. */
typedef struct {
    uint32_t count;
    seq_action items[SEQ_ACTIONS_MAX];
} seq_actions;

typedef struct seq_consensus seq_consensus;

/* restore may be NULL for a fresh node. *out owned by the caller. */
int seq_consensus_new(seq_consensus **out, const seq_consensus_config *cfg,
                      const seq_consensus_restore *restore) SEQ_MUST_CHECK;
void seq_consensus_free(seq_consensus *c);

/* Feeds one event; fills out (cleared first). Bad messages are dropped and
 * counted, never an error: the return is 0, or SEQ_EINVAL for a malformed
 * event from the driver itself. */
int seq_consensus_step(seq_consensus *c, const seq_event *ev, seq_actions *out);

typedef struct {
    uint64_t view;
    uint64_t final_height;
    uint64_t final_view;
    seq_hash final_hash;
    uint64_t timeouts;        /* views we nullified */
    uint64_t msgs_dropped;    /* invalid or out-of-window messages */
    uint64_t bad_signatures;
    uint64_t sig_checks;      /* signatures verified: peers' votes, certificate signatures not held as votes */
    uint64_t equivocations;
    uint32_t blocks_held;
} seq_consensus_status;

void seq_consensus_status_get(const seq_consensus *c, seq_consensus_status *out);

/* An unfinalized block held in memory, or NULL. Valid until the next step. */
const seq_block *seq_consensus_block_find(const seq_consensus *c, const seq_hash *hash);

/* Equivocation evidence kept (at most SEQ_EVIDENCE_MAX, oldest dropped). */
uint32_t seq_consensus_evidence(const seq_consensus *c, const seq_vote **pairs_out);

#endif
