/* Range block sync, the pure part: which ranges of finalized blocks to ask
 * which peer for, and whether what a peer sent is final. No I/O, no clock:
 * the node feeds it peer heights, responses and the time, and sends the
 * requests it plans (lib/node.c).
 *
 * A node behind its peers asks for consecutive ranges [from, from+count)
 * from different peers at once (pipelined, at most inflight_max), applies
 * answers strictly in height order, and asks again for whatever a short or
 * late answer left out. */
#ifndef SEQ_SYNC_H
#define SEQ_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"
#include "types.h"

#define SEQ_SYNC_INFLIGHT_MAX 16
#define SEQ_SYNC_RESP_BYTES_MAX (8u << 20) /* payload bytes a node puts in one answer */

/* Checks blocks (consecutive heights, as decoded) against our finalized tip:
 * blocks[0] is tip_height+1 and its parent is tip_hash, each next block's
 * parent is the previous one's hash, every chain id is ours, and every
 * certificate is a valid finalization (seq_cert_verify against vs; kind
 * finalize). A certificate may name a later block than its own (a group
 * finalized together): the blocks accepted are the prefix up to the highest
 * block some certificate in the answer names; *accepted is its length, and
 * certs[i] of an accepted block is replaced by one naming a block of the
 * prefix when it named one beyond. SEQ_EMISMATCH (broken link, wrong chain,
 * a certificate for a block at a lower height), SEQ_ECHAIN_ID, or
 * seq_cert_verify's error: the peer sent invalid data. blocks[0] at another
 * height than tip_height+1 is SEQ_EORDER (stale answer, not the peer's fault). */
int seq_sync_check(const seq_validators *vs, uint64_t chain_id, uint64_t tip_height, const seq_hash *tip_hash,
                   seq_block *const *blocks, seq_cert *certs, uint32_t n, uint32_t *accepted) SEQ_MUST_CHECK;

typedef struct {
    uint64_t from;
    uint32_t count;
    uint32_t peer;
    uint64_t sent_ms;
    bool used;
    bool answered;
    seq_msg resp; /* owned once answered */
} seq_sync_slot;

typedef struct {
    uint32_t peer;
    uint64_t from;
    uint32_t count;
} seq_sync_request;

typedef struct {
    uint32_t n;           /* validators */
    uint32_t self;
    uint32_t range;       /* blocks per request */
    uint32_t inflight_max;
    uint64_t timeout_ms;  /* an unanswered request is given up after this */
    uint64_t tip;         /* our finalized height */
    uint64_t peer_tip[SEQ_VALIDATORS_MAX];
    bool peer_up[SEQ_VALIDATORS_MAX];
    uint32_t next_peer;   /* round robin */
    seq_sync_slot slots[SEQ_SYNC_INFLIGHT_MAX];
    uint64_t requests_sent, responses_applied, timeouts;
} seq_sync;

void seq_sync_init(seq_sync *s, uint32_t n, uint32_t self, uint32_t range, uint32_t inflight_max,
                   uint64_t timeout_ms);
/* Releases answers still held. */
void seq_sync_reset(seq_sync *s);
void seq_sync_peer(seq_sync *s, uint32_t peer, bool up);
void seq_sync_peer_tip(seq_sync *s, uint32_t peer, uint64_t tip);
/* Highest height a live peer has told us of. */
uint64_t seq_sync_target(const seq_sync *s);

/* Our tip moved to tip (by sync or consensus): drops slots now below it.
 * Then plans requests for the heights above tip up to the target not yet
 * asked for, and gives up requests older than timeout_ms. Fills out (at most
 * cap) and returns how many requests to send now. */
uint32_t seq_sync_plan(seq_sync *s, uint64_t now_ms, uint64_t tip, seq_sync_request *out, uint32_t cap);

/* An answer from peer: takes ownership of *resp (a SEQ_MSG_SYNC_RESP) when it
 * answers an open request from that peer (returns true), else leaves it to
 * the caller (returns false). Updates the peer's height either way. */
bool seq_sync_answer(seq_sync *s, uint32_t peer, seq_msg *resp);

/* The held answer that continues our tip (its first block is tip+1), or NULL. */
seq_sync_slot *seq_sync_ready(seq_sync *s);
/* Done with a ready slot (applied, or rejected): frees it. */
void seq_sync_release(seq_sync *s, seq_sync_slot *slot);

#endif
