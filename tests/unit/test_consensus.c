/* Unit tests of lib/consensus.c: one seq_consensus of a 4-validator network
 * (real ed25519 keys), fed hand-built proposals, votes and certificates signed
 * with the other validators' keys, asserting the exact actions it returns. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus.h"
#include "errors.h"
#include "log.h"
#include "types.h"

#define CHAIN_ID 1
#define OTHER_CHAIN_ID 2
#define N 4           /* validators; f = 1, q = 3 */
#define Q 3
#define TIMEOUT_MS 1000
#define T0 1000       /* time of START in every test */
#define NS 7          /* namespace of the test transactions */
#define PAYLOAD_BYTES 16
#define LONG_CHAIN (SEQ_BLOCKS_MAX + 1) /* one block more than a node holds */
#define TEST_BLOCKS_MAX (LONG_CHAIN + 16)
#define FAR_VIEW 50   /* a certificate this far ahead makes the node jump */

/* Signers 1, 2, 3 (bit i = validator i): a quorum without validator 0. */
#define SIGNERS_123 0xEu
#define SIGNERS_013 0xBu

static seq_keypair *keys[N];
static seq_validators vs;
static const seq_hash zero_hash;

typedef struct {
    seq_consensus *c;
    seq_actions *out;
    seq_block *blocks[TEST_BLOCKS_MAX]; /* built by the test, freed at teardown */
    uint32_t block_count;
} fixture;

/* ---- fixture ------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    if (seq_test_keys_make(keys, N) != 0)
        return -1;
    seq_pubkey pks[N];
    for (int i = 0; i < N; i++)
        pks[i] = keys[i]->pk;
    return seq_validators_init(&vs, pks, N);
}

static int group_teardown(void **state)
{
    (void)state;
    seq_test_keys_free(keys, N);
    return 0;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    fx->out = calloc(1, sizeof *fx->out);
    if (!fx->out) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    seq_consensus_free(fx->c);
    for (uint32_t i = 0; i < fx->block_count; i++)
        seq_block_free(fx->blocks[i]);
    free(fx->out);
    free(fx);
    return 0;
}

static seq_consensus_config config_of(uint32_t self)
{
    return (seq_consensus_config){.chain_id = CHAIN_ID, .validators = &vs, .self = self,
                                  .key = keys[self], .view_timeout_ms = TIMEOUT_MS};
}

static void node_new(fixture *fx, uint32_t self, const seq_consensus_restore *restore)
{
    seq_consensus_config cfg = config_of(self);
    assert_int_equal(seq_consensus_new(&fx->c, &cfg, restore), 0);
}

static seq_consensus_status status_of(const fixture *fx)
{
    seq_consensus_status st;
    seq_consensus_status_get(fx->c, &st);
    return st;
}

/* ---- events ------------------------------------------------------------------- */

static void step_ok(fixture *fx, const seq_event *ev)
{
    assert_int_equal(seq_consensus_step(fx->c, ev, fx->out), 0);
}

static void do_start(fixture *fx, uint64_t now)
{
    seq_event ev = {.kind = SEQ_EV_START, .now_ms = now};
    step_ok(fx, &ev);
}

static void do_timeout(fixture *fx, uint64_t now)
{
    seq_event ev = {.kind = SEQ_EV_TIMEOUT, .now_ms = now};
    step_ok(fx, &ev);
}

static void do_msg(fixture *fx, uint32_t from, const seq_msg *m)
{
    seq_event ev = {.kind = SEQ_EV_MESSAGE, .now_ms = T0};
    ev.u.message.from = from;
    ev.u.message.msg = m;
    step_ok(fx, &ev);
}

static void do_payload(fixture *fx, uint64_t view, const seq_tx *txs, uint32_t count, uint64_t now)
{
    seq_event ev = {.kind = SEQ_EV_PAYLOAD, .now_ms = now};
    ev.u.payload.view = view;
    ev.u.payload.txs = txs;
    ev.u.payload.count = count;
    step_ok(fx, &ev);
}

static void do_verified(fixture *fx, const seq_block *b, bool ok)
{
    seq_event ev = {.kind = SEQ_EV_VERIFIED, .now_ms = T0};
    ev.u.verified.view = b->h.view;
    ev.u.verified.hash = b->hash;
    ev.u.verified.ok = ok;
    step_ok(fx, &ev);
}

/* ---- building blocks, votes, certificates ---------------------------------------- */

/* A block from a full header template (leader and chain id as given). */
static seq_block *block_from(fixture *fx, const seq_header *tmpl, uint8_t tag)
{
    uint8_t payload[PAYLOAD_BYTES];
    memset(payload, tag, sizeof payload);
    seq_tx tx = {.ns = NS, .len = sizeof payload, .data = payload};
    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, tmpl, &tx, 1), 0);
    assert_true(fx->block_count < TEST_BLOCKS_MAX);
    fx->blocks[fx->block_count++] = b;
    return b;
}

/* A well-formed block of the view's leader; tag makes otherwise equal blocks differ. */
static seq_block *block_make(fixture *fx, uint64_t view, uint64_t height, const seq_hash *parent,
                             uint64_t parent_view, uint8_t tag)
{
    seq_header h = {.chain_id = CHAIN_ID, .height = height, .view = view, .parent = *parent,
                    .parent_view = parent_view, .leader = seq_leader_of(&vs, view),
                    .timestamp_ms = T0 + height};
    return block_from(fx, &h, tag);
}

static seq_vote vote_make(uint8_t kind, uint64_t view, const seq_hash *hash, uint32_t signer)
{
    return seq_test_vote(kind, view, hash, signer, keys[signer], CHAIN_ID);
}

static seq_msg vote_msg(uint8_t kind, uint64_t view, const seq_hash *hash, uint32_t signer)
{
    seq_msg m;
    memset(&m, 0, sizeof m);
    m.kind = SEQ_MSG_VOTE;
    m.u.vote = vote_make(kind, view, hash, signer);
    return m;
}

/* The proposal of b, signed by signer (the leader, unless a test says otherwise). */
static seq_msg propose_msg(seq_block *b, uint32_t signer)
{
    seq_msg m;
    memset(&m, 0, sizeof m);
    m.kind = SEQ_MSG_PROPOSE;
    m.u.propose.block = b;
    m.u.propose.vote = vote_make(SEQ_VOTE_NOTARIZE, b->h.view, &b->hash, signer);
    return m;
}

/* A certificate signed by the validators in the bitmask `signers`. */
static seq_msg cert_msg(uint8_t kind, uint64_t view, const seq_hash *hash, uint32_t signers)
{
    seq_vote votes[N];
    uint32_t n = 0;
    for (uint32_t i = 0; i < N; i++)
        if (signers & (1u << i))
            votes[n++] = vote_make(kind, view, hash, i);
    seq_msg m;
    memset(&m, 0, sizeof m);
    m.kind = SEQ_MSG_CERT;
    assert_int_equal(seq_cert_build(&m.u.cert, &vs, votes, n), 0);
    return m;
}

/* ---- looking at actions ------------------------------------------------------------ */

static bool act_matches(const seq_action *a, seq_action_kind kind, int msg_kind)
{
    if (a->kind != kind)
        return false;
    if (msg_kind == 0 || (kind != SEQ_ACT_BROADCAST && kind != SEQ_ACT_SEND))
        return true;
    return (int)a->u.send.msg->kind == msg_kind;
}

/* Index of the first action of kind (and message kind, when not 0), or -1. */
static int act_find(const seq_actions *out, seq_action_kind kind, int msg_kind)
{
    for (uint32_t i = 0; i < out->count; i++)
        if (act_matches(&out->items[i], kind, msg_kind))
            return (int)i;
    return -1;
}

static uint32_t act_count(const seq_actions *out, seq_action_kind kind, int msg_kind)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < out->count; i++)
        n += act_matches(&out->items[i], kind, msg_kind);
    return n;
}

static const seq_action *act_at(const seq_actions *out, uint32_t i, seq_action_kind kind)
{
    assert_true(i < out->count);
    assert_int_equal(out->items[i].kind, kind);
    return &out->items[i];
}

static const seq_msg *sent_at(const seq_actions *out, uint32_t i, seq_action_kind kind, seq_msg_kind msg_kind)
{
    const seq_action *a = act_at(out, i, kind);
    assert_int_equal(a->u.send.msg->kind, msg_kind);
    return a->u.send.msg;
}

/* Our own vote: the expected kind, view, hash and signer, and a good signature. */
static void assert_own_vote(const seq_vote *v, uint8_t kind, uint64_t view, const seq_hash *hash, uint32_t self)
{
    assert_int_equal(v->kind, kind);
    assert_int_equal(v->view, view);
    assert_int_equal(v->signer, self);
    assert_memory_equal(v->hash.b, hash ? hash->b : zero_hash.b, SEQ_HASH_BYTES);
    assert_int_equal(seq_vote_verify(v, &vs, CHAIN_ID), 0);
}

/* The node neither voted nor asked to verify anything in the last step. */
static void assert_no_vote(const fixture *fx)
{
    assert_int_equal(act_count(fx->out, SEQ_ACT_PERSIST_VOTE, 0), 0);
    assert_int_equal(act_count(fx->out, SEQ_ACT_BROADCAST, SEQ_MSG_VOTE), 0);
    assert_int_equal(act_count(fx->out, SEQ_ACT_VERIFY, 0), 0);
}

/* The step's first action is the evidence pair (first vote, second vote). */
static void assert_evidence(const fixture *fx, const seq_vote *first, const seq_vote *second)
{
    const seq_action *eq = act_at(fx->out, 0, SEQ_ACT_EQUIVOCATION);
    seq_test_assert_vote_equal(&eq->u.equivocation.a, first);
    seq_test_assert_vote_equal(&eq->u.equivocation.b, second);
}

static void assert_cert(const seq_cert *cert, uint8_t kind, uint64_t view, const seq_hash *hash)
{
    assert_int_equal(cert->kind, kind);
    assert_int_equal(cert->view, view);
    assert_memory_equal(cert->hash.b, hash ? hash->b : zero_hash.b, SEQ_HASH_BYTES);
    assert_int_equal(seq_cert_verify(cert, &vs, CHAIN_ID), 0);
}

/* Drives validator 0 to its notarize vote for b (view 1): proposal, VERIFY, VERIFIED. */
static void vote_for_view1(fixture *fx, seq_block *b)
{
    seq_msg p = propose_msg(b, 1);
    do_msg(fx, 1, &p);
    assert_int_equal(fx->out->count, 1);
    assert_memory_equal(act_at(fx->out, 0, SEQ_ACT_VERIFY)->u.block->hash.b, b->hash.b, SEQ_HASH_BYTES);
    do_verified(fx, b, true);
    assert_int_equal(act_count(fx->out, SEQ_ACT_PERSIST_VOTE, 0), 1);
}

/* ---- start and proposing ------------------------------------------------------------------ */

/* START arms the view timer at now + view_timeout_ms and does nothing else for a non-leader. */
static void test_start_arms_timer(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    assert_int_equal(fx->out->count, 1);
    assert_int_equal(act_at(fx->out, 0, SEQ_ACT_SET_TIMER)->u.deadline_ms, T0 + TIMEOUT_MS);
    assert_int_equal(status_of(fx).view, 1);
}

/* The leader of view 1 asks for a payload on the genesis parent, and on PAYLOAD
 * persists its signed notarize vote before it broadcasts the proposal. */
static void test_leader_builds_on_genesis_and_persists_first(void **state)
{
    fixture *fx = *state;
    node_new(fx, 1, NULL);
    do_start(fx, T0);
    assert_int_equal(fx->out->count, 2);
    assert_int_equal(act_at(fx->out, 0, SEQ_ACT_SET_TIMER)->u.deadline_ms, T0 + TIMEOUT_MS);
    const seq_action *build = act_at(fx->out, 1, SEQ_ACT_BUILD);
    assert_int_equal(build->u.build.view, 1);
    assert_true(seq_hash_is_zero(build->u.build.parent));

    uint8_t a[] = "a", bb[] = "bb";
    seq_tx txs[2] = {{.ns = 9, .len = 1, .data = a}, {.ns = 3, .len = 2, .data = bb}};
    seq_tx_compute_id(&txs[0]); /* the payload event carries ids, as the mempool's do */
    seq_tx_compute_id(&txs[1]);
    do_payload(fx, 1, txs, 2, T0 + 5);
    assert_int_equal(fx->out->count, 2);
    const seq_vote *persisted = &act_at(fx->out, 0, SEQ_ACT_PERSIST_VOTE)->u.vote;
    const seq_msg *prop = sent_at(fx->out, 1, SEQ_ACT_BROADCAST, SEQ_MSG_PROPOSE);
    const seq_block *b = prop->u.propose.block;
    assert_own_vote(persisted, SEQ_VOTE_NOTARIZE, 1, &b->hash, 1);
    seq_test_assert_vote_equal(&prop->u.propose.vote, persisted);
    assert_int_equal(b->h.chain_id, CHAIN_ID);
    assert_int_equal(b->h.height, 1);
    assert_int_equal(b->h.view, 1);
    assert_true(seq_hash_is_zero(&b->h.parent));
    assert_int_equal(b->h.parent_view, 0);
    assert_int_equal(b->h.leader, 1);
    assert_int_equal(b->h.timestamp_ms, T0 + 5);
    assert_int_equal(b->tx_count, 2);
    assert_int_equal(b->txs[0].ns, 3); /* sorted by namespace */
    assert_non_null(seq_consensus_block_find(fx->c, &b->hash));
}

/* ---- voting on proposals ------------------------------------------------------------------ */

/* A valid proposal is sent to VERIFY; VERIFIED ok gives PERSIST_VOTE(notarize) then BROADCAST of that vote. */
static void test_replica_votes_after_verified(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_block *b = block_make(fx, 1, 1, &zero_hash, 0, 'a');
    seq_msg p = propose_msg(b, 1);
    do_msg(fx, 1, &p);
    assert_int_equal(fx->out->count, 1);
    assert_memory_equal(act_at(fx->out, 0, SEQ_ACT_VERIFY)->u.block->hash.b, b->hash.b, SEQ_HASH_BYTES);

    do_verified(fx, b, true);
    assert_int_equal(fx->out->count, 2);
    const seq_vote *persisted = &act_at(fx->out, 0, SEQ_ACT_PERSIST_VOTE)->u.vote;
    assert_own_vote(persisted, SEQ_VOTE_NOTARIZE, 1, &b->hash, 0);
    seq_test_assert_vote_equal(&sent_at(fx->out, 1, SEQ_ACT_BROADCAST, SEQ_MSG_VOTE)->u.vote, persisted);
}

/* VERIFIED not ok gives no vote, and a later VERIFIED ok for the same block does not revive it. */
static void test_replica_refuses_unverified(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_block *b = block_make(fx, 1, 1, &zero_hash, 0, 'a');
    seq_msg p = propose_msg(b, 1);
    do_msg(fx, 1, &p);
    assert_int_equal(act_count(fx->out, SEQ_ACT_VERIFY, 0), 1);
    do_verified(fx, b, false);
    assert_int_equal(fx->out->count, 0);
    do_verified(fx, b, true);
    assert_int_equal(fx->out->count, 0);
}

/* A second, different proposal of the leader in one view gets no vote and is
 * reported as an EQUIVOCATION with both signed votes, also kept as evidence. */
static void test_equivocating_leader(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_block *first = block_make(fx, 1, 1, &zero_hash, 0, 'a');
    seq_block *second = block_make(fx, 1, 1, &zero_hash, 0, 'b');
    vote_for_view1(fx, first);

    seq_msg p2 = propose_msg(second, 1);
    do_msg(fx, 1, &p2);
    assert_int_equal(fx->out->count, 1);
    const seq_action *eq = act_at(fx->out, 0, SEQ_ACT_EQUIVOCATION);
    seq_vote want_a = vote_make(SEQ_VOTE_NOTARIZE, 1, &first->hash, 1);
    seq_test_assert_vote_equal(&eq->u.equivocation.a, &want_a);
    seq_test_assert_vote_equal(&eq->u.equivocation.b, &p2.u.propose.vote);
    do_verified(fx, second, true);
    assert_int_equal(fx->out->count, 0);

    const seq_vote *pairs = NULL;
    assert_int_equal(seq_consensus_evidence(fx->c, &pairs), 1);
    seq_test_assert_vote_equal(&pairs[0], &want_a);
    seq_test_assert_vote_equal(&pairs[1], &p2.u.propose.vote);
    assert_int_equal(status_of(fx).equivocations, 1);
}

/* A proposal signed by a validator that is not the view's leader is dropped without a vote. */
static void test_proposal_from_non_leader_dropped(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_header h = {.chain_id = CHAIN_ID, .height = 1, .view = 1, .leader = 2, .timestamp_ms = T0};
    seq_block *b = block_from(fx, &h, 'a');
    seq_msg p = propose_msg(b, 2);
    do_msg(fx, 2, &p);
    assert_int_equal(fx->out->count, 0);
    /* The leader's block relayed with another validator's signature: also dropped. */
    seq_block *b1 = block_make(fx, 1, 1, &zero_hash, 0, 'b');
    seq_msg p1 = propose_msg(b1, 3);
    do_msg(fx, 3, &p1);
    assert_int_equal(fx->out->count, 0);
    seq_consensus_status st = status_of(fx);
    assert_int_equal(st.msgs_dropped, 2);
    assert_int_equal(st.bad_signatures, 0);
}

/* A proposal whose signature does not verify gets no vote and counts as a bad signature. */
static void test_proposal_bad_signature_counted(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_block *b = block_make(fx, 1, 1, &zero_hash, 0, 'a');
    seq_msg p = propose_msg(b, 1);
    p.u.propose.vote.sig.b[0] ^= 1;
    do_msg(fx, 1, &p);
    assert_int_equal(fx->out->count, 0);
    seq_consensus_status st = status_of(fx);
    assert_int_equal(st.bad_signatures, 1);
    assert_int_equal(st.msgs_dropped, 1);
    /* The genuine proposal still gets its vote: the bad copy left no trace. */
    seq_msg good = propose_msg(b, 1);
    do_msg(fx, 1, &good);
    assert_int_equal(act_count(fx->out, SEQ_ACT_VERIFY, 0), 1);
}

/* A proposal for another chain id (block and vote of that chain) is dropped without a vote. */
static void test_proposal_other_chain_dropped(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_header h = {.chain_id = OTHER_CHAIN_ID, .height = 1, .view = 1, .leader = 1, .timestamp_ms = T0};
    seq_block *b = block_from(fx, &h, 'a');
    seq_msg p = propose_msg(b, 1);
    seq_vote_sign(&p.u.propose.vote, keys[1], OTHER_CHAIN_ID);
    do_msg(fx, 1, &p);
    assert_int_equal(fx->out->count, 0);
    assert_int_equal(status_of(fx).msgs_dropped, 1);
    assert_int_equal(status_of(fx).bad_signatures, 0);
}

/* A proposal at parent view 0 whose parent is not the genesis (the finalized block) gets no vote. */
static void test_proposal_unknown_parent_not_voted(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_hash bogus;
    memset(bogus.b, 0x5a, sizeof bogus.b);
    seq_block *b = block_make(fx, 1, 1, &bogus, 0, 'a');
    seq_msg p = propose_msg(b, 1);
    do_msg(fx, 1, &p);
    assert_no_vote(fx);
    do_verified(fx, b, true);
    assert_int_equal(fx->out->count, 0);
}

/* A proposal whose height is not its parent's plus one gets no vote. */
static void test_proposal_wrong_height_not_voted(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_block *b = block_make(fx, 1, 2, &zero_hash, 0, 'a');
    seq_msg p = propose_msg(b, 1);
    do_msg(fx, 1, &p);
    assert_no_vote(fx);
    do_verified(fx, b, true);
    assert_int_equal(fx->out->count, 0);
}

/* A proposal extending a block whose view has no notarization is not voted on;
 * the node asks the leader for that view's certificates and votes once the
 * notarization arrives. */
static void test_proposal_unnotarized_parent_waits(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_block *b1 = block_make(fx, 1, 1, &zero_hash, 0, 'a');
    seq_msg p1 = propose_msg(b1, 1);
    do_msg(fx, 1, &p1); /* the node holds b1 (VERIFY left unanswered) */
    seq_msg null1 = cert_msg(SEQ_VOTE_NULLIFY, 1, NULL, SIGNERS_123);
    do_msg(fx, 3, &null1);
    assert_int_equal(status_of(fx).view, 2);

    seq_block *b2 = block_make(fx, 2, 2, &b1->hash, 1, 'b');
    seq_msg p2 = propose_msg(b2, 2);
    do_msg(fx, 2, &p2);
    assert_no_vote(fx);
    int req = act_find(fx->out, SEQ_ACT_SEND, SEQ_MSG_CERT_REQ);
    assert_true(req >= 0);
    assert_int_equal(fx->out->items[req].u.send.to, 2);
    assert_int_equal(fx->out->items[req].u.send.msg->u.cert_req.view_from, 1);
    assert_int_equal(fx->out->items[req].u.send.msg->u.cert_req.count, 1);

    seq_msg nz1 = cert_msg(SEQ_VOTE_NOTARIZE, 1, &b1->hash, SIGNERS_123);
    do_msg(fx, 2, &nz1);
    int verify = act_find(fx->out, SEQ_ACT_VERIFY, 0);
    assert_true(verify >= 0);
    assert_memory_equal(fx->out->items[verify].u.block->hash.b, b2->hash.b, SEQ_HASH_BYTES);
}

/* A proposal that arrives before the node enters its view is kept, and sent
 * to VERIFY as soon as the node enters that view. */
static void test_early_proposal_verified_on_entering_view(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_block *b2 = block_make(fx, 2, 1, &zero_hash, 0, 'a');
    seq_msg p = propose_msg(b2, 2);
    do_msg(fx, 2, &p);
    assert_int_equal(fx->out->count, 0);
    seq_msg null1 = cert_msg(SEQ_VOTE_NULLIFY, 1, NULL, SIGNERS_123);
    do_msg(fx, 1, &null1);
    assert_int_equal(status_of(fx).view, 2);
    int verify = act_find(fx->out, SEQ_ACT_VERIFY, 0);
    assert_true(verify >= 0);
    assert_memory_equal(fx->out->items[verify].u.block->hash.b, b2->hash.b, SEQ_HASH_BYTES);
}

/* A VERIFIED answer that comes after the node left the proposal's view gives no vote. */
static void test_verified_after_view_left_no_vote(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_block *b1 = block_make(fx, 1, 1, &zero_hash, 0, 'a');
    seq_msg p = propose_msg(b1, 1);
    do_msg(fx, 1, &p);
    assert_int_equal(act_count(fx->out, SEQ_ACT_VERIFY, 0), 1);
    seq_msg null1 = cert_msg(SEQ_VOTE_NULLIFY, 1, NULL, SIGNERS_123);
    do_msg(fx, 3, &null1);
    assert_int_equal(status_of(fx).view, 2);
    do_verified(fx, b1, true);
    assert_int_equal(fx->out->count, 0);
}

/* A second timeout in the same view repeats the same signed nullify without
 * persisting or counting a new one, and re-arms the timer. */
static void test_repeated_timeout_repeats_nullify(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    do_timeout(fx, T0 + TIMEOUT_MS);
    seq_vote first = act_at(fx->out, 0, SEQ_ACT_PERSIST_VOTE)->u.vote;
    do_timeout(fx, T0 + 2 * TIMEOUT_MS);
    assert_int_equal(fx->out->count, 2);
    seq_test_assert_vote_equal(&sent_at(fx->out, 0, SEQ_ACT_BROADCAST, SEQ_MSG_VOTE)->u.vote, &first);
    assert_int_equal(act_at(fx->out, 1, SEQ_ACT_SET_TIMER)->u.deadline_ms, T0 + 3 * TIMEOUT_MS);
    assert_int_equal(status_of(fx).timeouts, 1);
}

/* Finalize and nullify of one view by one validator contradict each other and
 * are reported as equivocation. */
static void test_finalize_and_nullify_is_equivocation(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_hash h;
    memset(h.b, 0x66, sizeof h.b);
    seq_msg fin = vote_msg(SEQ_VOTE_FINALIZE, 1, &h, 3);
    seq_msg nul = vote_msg(SEQ_VOTE_NULLIFY, 1, NULL, 3);
    do_msg(fx, 3, &fin);
    assert_int_equal(fx->out->count, 0);
    do_msg(fx, 3, &nul);
    assert_int_equal(fx->out->count, 1);
    assert_evidence(fx, &fin.u.vote, &nul.u.vote);
    assert_int_equal(status_of(fx).equivocations, 1);
}

/* [R-PARENT] the leader builds on the highest notarized view below its own
 * only when every view in between is nullified: with view 2 unaccounted for it
 * asks a peer for certificates and does not build; once view 2 is nullified it
 * builds on the notarized, unfinalized block of view 1 at height 2. */
static void test_leader_parent_rule(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL); /* leads view 4 */
    do_start(fx, T0);
    seq_block *b1 = block_make(fx, 1, 1, &zero_hash, 0, 'a');
    seq_msg p1 = propose_msg(b1, 1);
    do_msg(fx, 1, &p1);
    seq_msg nz1 = cert_msg(SEQ_VOTE_NOTARIZE, 1, &b1->hash, SIGNERS_123);
    do_msg(fx, 1, &nz1);
    seq_msg null3 = cert_msg(SEQ_VOTE_NULLIFY, 3, NULL, SIGNERS_123);
    do_msg(fx, 3, &null3);
    assert_int_equal(status_of(fx).view, 4);
    assert_int_equal(act_count(fx->out, SEQ_ACT_BUILD, 0), 0);
    int req = act_find(fx->out, SEQ_ACT_SEND, SEQ_MSG_CERT_REQ);
    assert_true(req >= 0);
    const seq_msg *ask = fx->out->items[req].u.send.msg;
    assert_true(ask->u.cert_req.view_from <= 2); /* the request covers view 2 */
    assert_true(ask->u.cert_req.view_from + ask->u.cert_req.count > 2);

    seq_msg null2 = cert_msg(SEQ_VOTE_NULLIFY, 2, NULL, SIGNERS_123);
    do_msg(fx, 2, &null2);
    assert_int_equal(fx->out->count, 1);
    const seq_action *build = act_at(fx->out, 0, SEQ_ACT_BUILD);
    assert_int_equal(build->u.build.view, 4);
    assert_memory_equal(build->u.build.parent->b, b1->hash.b, SEQ_HASH_BYTES);

    do_payload(fx, 4, NULL, 0, T0 + 7);
    const seq_msg *prop = sent_at(fx->out, 1, SEQ_ACT_BROADCAST, SEQ_MSG_PROPOSE);
    const seq_block *b4 = prop->u.propose.block;
    assert_int_equal(b4->h.height, 2);
    assert_int_equal(b4->h.view, 4);
    assert_int_equal(b4->h.parent_view, 1);
    assert_memory_equal(b4->h.parent.b, b1->hash.b, SEQ_HASH_BYTES);
    assert_int_equal(b4->tx_count, 0);
}

/* ---- certificates and views ---------------------------------------------------------------- */

/* q notarize votes form a notarization: the node broadcasts it, sends
 * finalize (persisted first) and enters view + 1. */
static void test_notarization_advances_and_finalizes(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_block *b = block_make(fx, 1, 1, &zero_hash, 0, 'a');
    vote_for_view1(fx, b); /* votes so far: leader 1 and us */

    seq_msg v2 = vote_msg(SEQ_VOTE_NOTARIZE, 1, &b->hash, 2);
    do_msg(fx, 2, &v2);
    assert_int_equal(fx->out->count, 4);
    const seq_cert *cert = &sent_at(fx->out, 0, SEQ_ACT_BROADCAST, SEQ_MSG_CERT)->u.cert;
    assert_cert(cert, SEQ_VOTE_NOTARIZE, 1, &b->hash);
    assert_int_equal(cert->sig_count, Q);
    assert_true(seq_bitmap_get(cert->bitmap, 0) && seq_bitmap_get(cert->bitmap, 1) &&
                seq_bitmap_get(cert->bitmap, 2));
    const seq_vote *fin = &act_at(fx->out, 1, SEQ_ACT_PERSIST_VOTE)->u.vote;
    assert_own_vote(fin, SEQ_VOTE_FINALIZE, 1, &b->hash, 0);
    seq_test_assert_vote_equal(&sent_at(fx->out, 2, SEQ_ACT_BROADCAST, SEQ_MSG_VOTE)->u.vote, fin);
    assert_int_equal(act_at(fx->out, 3, SEQ_ACT_SET_TIMER)->u.deadline_ms, T0 + TIMEOUT_MS);
    assert_int_equal(status_of(fx).view, 2);
}

/* A timed-out view is nullified at its deadline (not before: an early timer
 * event only re-arms it), and a later
 * notarization of it moves the node on without a finalize vote. */
static void test_no_finalize_after_nullify(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    do_timeout(fx, T0 + TIMEOUT_MS - 1); /* early: only re-arms the same deadline */
    assert_int_equal(fx->out->count, 1);
    assert_int_equal(act_at(fx->out, 0, SEQ_ACT_SET_TIMER)->u.deadline_ms, T0 + TIMEOUT_MS);

    do_timeout(fx, T0 + TIMEOUT_MS);
    assert_int_equal(fx->out->count, 3);
    const seq_vote *nul = &act_at(fx->out, 0, SEQ_ACT_PERSIST_VOTE)->u.vote;
    assert_own_vote(nul, SEQ_VOTE_NULLIFY, 1, NULL, 0);
    seq_test_assert_vote_equal(&sent_at(fx->out, 1, SEQ_ACT_BROADCAST, SEQ_MSG_VOTE)->u.vote, nul);
    assert_int_equal(act_at(fx->out, 2, SEQ_ACT_SET_TIMER)->u.deadline_ms, T0 + 2 * TIMEOUT_MS);
    assert_int_equal(status_of(fx).timeouts, 1);

    seq_hash h;
    memset(h.b, 0x11, sizeof h.b);
    for (uint32_t signer = 1; signer <= 3; signer++) {
        seq_msg v = vote_msg(SEQ_VOTE_NOTARIZE, 1, &h, signer);
        do_msg(fx, signer, &v);
        assert_int_equal(act_count(fx->out, SEQ_ACT_PERSIST_VOTE, 0), 0);
        assert_int_equal(act_count(fx->out, SEQ_ACT_BROADCAST, SEQ_MSG_VOTE), 0);
    }
    /* the last vote formed the notarization: broadcast, and view 2 entered */
    assert_int_equal(act_count(fx->out, SEQ_ACT_BROADCAST, SEQ_MSG_CERT), 1);
    assert_int_equal(act_count(fx->out, SEQ_ACT_SET_TIMER, 0), 1);
    assert_int_equal(status_of(fx).view, 2);
}

/* q nullify votes form a nullification that moves the node to view 2, where a
 * proposal extending the genesis across the nullified view 1 is accepted. */
static void test_nullification_lets_parent_skip(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    for (uint32_t signer = 1; signer <= 2; signer++) {
        seq_msg v = vote_msg(SEQ_VOTE_NULLIFY, 1, NULL, signer);
        do_msg(fx, signer, &v);
        assert_int_equal(fx->out->count, 0);
    }
    seq_msg v3 = vote_msg(SEQ_VOTE_NULLIFY, 1, NULL, 3);
    do_msg(fx, 3, &v3);
    assert_int_equal(fx->out->count, 2);
    assert_cert(&sent_at(fx->out, 0, SEQ_ACT_BROADCAST, SEQ_MSG_CERT)->u.cert, SEQ_VOTE_NULLIFY, 1, NULL);
    assert_int_equal(act_at(fx->out, 1, SEQ_ACT_SET_TIMER)->u.deadline_ms, T0 + TIMEOUT_MS);
    assert_int_equal(status_of(fx).view, 2);

    seq_block *b2 = block_make(fx, 2, 1, &zero_hash, 0, 'a');
    seq_msg p = propose_msg(b2, 2);
    do_msg(fx, 2, &p);
    assert_int_equal(fx->out->count, 1);
    assert_memory_equal(act_at(fx->out, 0, SEQ_ACT_VERIFY)->u.block->hash.b, b2->hash.b, SEQ_HASH_BYTES);
}

/* A proposal that skips a view without a nullification is not voted on; the
 * node asks the leader for the certificates of the skipped views, and votes
 * once the missing nullification arrives. */
static void test_parent_skipping_unnullified_view_waits(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_msg null2 = cert_msg(SEQ_VOTE_NULLIFY, 2, NULL, SIGNERS_123);
    do_msg(fx, 1, &null2);
    assert_int_equal(status_of(fx).view, 3);

    seq_block *b3 = block_make(fx, 3, 1, &zero_hash, 0, 'a'); /* skips views 1 and 2 */
    seq_msg p = propose_msg(b3, 3);
    do_msg(fx, 3, &p);
    assert_no_vote(fx);
    assert_int_equal(fx->out->count, 1);
    const seq_msg *req = sent_at(fx->out, 0, SEQ_ACT_SEND, SEQ_MSG_CERT_REQ);
    assert_int_equal(fx->out->items[0].u.send.to, 3);
    assert_int_equal(req->u.cert_req.view_from, 1);
    assert_int_equal(req->u.cert_req.count, 2);

    seq_msg null1 = cert_msg(SEQ_VOTE_NULLIFY, 1, NULL, SIGNERS_123);
    do_msg(fx, 3, &null1);
    assert_int_equal(fx->out->count, 1);
    assert_memory_equal(act_at(fx->out, 0, SEQ_ACT_VERIFY)->u.block->hash.b, b3->hash.b, SEQ_HASH_BYTES);
}

/* ---- finalization ---------------------------------------------------------------------------- */

/* q finalize votes form a finalization: the node broadcasts it and DELIVERs
 * the block with that certificate, and its finalized state moves to it. */
static void test_finalization_delivers(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_block *b = block_make(fx, 1, 1, &zero_hash, 0, 'a');
    vote_for_view1(fx, b);
    for (uint32_t signer = 1; signer <= 2; signer++) {
        seq_msg v = vote_msg(SEQ_VOTE_FINALIZE, 1, &b->hash, signer);
        do_msg(fx, signer, &v);
        assert_int_equal(fx->out->count, 0);
    }
    seq_msg v3 = vote_msg(SEQ_VOTE_FINALIZE, 1, &b->hash, 3);
    do_msg(fx, 3, &v3);
    assert_int_equal(act_count(fx->out, SEQ_ACT_DELIVER, 0), 1);
    const seq_action *d = &fx->out->items[act_find(fx->out, SEQ_ACT_DELIVER, 0)];
    assert_memory_equal(d->u.deliver.block->hash.b, b->hash.b, SEQ_HASH_BYTES);
    assert_cert(d->u.deliver.cert, SEQ_VOTE_FINALIZE, 1, &b->hash);
    assert_int_equal(act_count(fx->out, SEQ_ACT_BROADCAST, SEQ_MSG_CERT), 1);
    assert_cert(&fx->out->items[act_find(fx->out, SEQ_ACT_BROADCAST, SEQ_MSG_CERT)].u.send.msg->u.cert,
                SEQ_VOTE_FINALIZE, 1, &b->hash);

    seq_consensus_status st = status_of(fx);
    assert_int_equal(st.final_height, 1);
    assert_int_equal(st.final_view, 1);
    assert_memory_equal(st.final_hash.b, b->hash.b, SEQ_HASH_BYTES);
    assert_int_equal(st.view, 2);
    assert_int_equal(st.blocks_held, 0);
}

/* A finalization of a block whose ancestors are unknown fetches them one by
 * one (BLOCK_REQ), drops a block it did not ask for, then delivers heights
 * 1, 2, 3 in order with that certificate. */
static void test_finalization_fetches_ancestors(void **state)
{
    fixture *fx = *state;
    node_new(fx, 2, NULL); /* not the leader of view 4, which the certificate leads to */
    seq_block *b1 = block_make(fx, 1, 1, &zero_hash, 0, 'a');
    seq_block *b2 = block_make(fx, 2, 2, &b1->hash, 1, 'b');
    seq_block *b3 = block_make(fx, 3, 3, &b2->hash, 2, 'c');
    seq_msg fin = cert_msg(SEQ_VOTE_FINALIZE, 3, &b3->hash, SIGNERS_013);
    do_msg(fx, 1, &fin);
    assert_int_equal(status_of(fx).view, 4);
    assert_int_equal(act_count(fx->out, SEQ_ACT_DELIVER, 0), 0);

    seq_block *chain[3] = {b3, b2, b1};
    for (int i = 0; i < 3; i++) {
        int req = act_find(fx->out, SEQ_ACT_SEND, SEQ_MSG_BLOCK_REQ);
        assert_true(req >= 0);
        assert_int_equal(act_count(fx->out, SEQ_ACT_SEND, SEQ_MSG_BLOCK_REQ), 1);
        const seq_action *a = &fx->out->items[req];
        assert_memory_equal(a->u.send.msg->u.block_req.hash.b, chain[i]->hash.b, SEQ_HASH_BYTES);
        assert_true(a->u.send.to < N && a->u.send.to != 2);
        if (i == 1) {
            /* b1 before it was asked for: dropped, and it changes nothing */
            uint64_t dropped = status_of(fx).msgs_dropped;
            seq_msg early = {.kind = SEQ_MSG_BLOCK, .u.block.block = b1};
            do_msg(fx, 0, &early);
            assert_int_equal(fx->out->count, 0);
            assert_int_equal(status_of(fx).msgs_dropped, dropped + 1);
        }
        seq_msg blk = {.kind = SEQ_MSG_BLOCK, .u.block.block = chain[i]};
        do_msg(fx, a->u.send.to, &blk);
    }
    assert_int_equal(fx->out->count, 3);
    for (uint32_t i = 0; i < 3; i++) {
        const seq_action *d = act_at(fx->out, i, SEQ_ACT_DELIVER);
        assert_int_equal(d->u.deliver.block->h.height, i + 1);
        assert_memory_equal(d->u.deliver.block->hash.b, chain[2 - i]->hash.b, SEQ_HASH_BYTES);
        assert_cert(d->u.deliver.cert, SEQ_VOTE_FINALIZE, 3, &b3->hash);
    }
    seq_consensus_status st = status_of(fx);
    assert_int_equal(st.final_height, 3);
    assert_int_equal(st.final_view, 3);
    assert_memory_equal(st.final_hash.b, b3->hash.b, SEQ_HASH_BYTES);
}

/* ---- regressions from the review's drivers (fixed in 6c02250) -------------------------------- */

/* chain[1..len]: block i at view i and height i on block i - 1 (the genesis for 1). */
static void chain_make(fixture *fx, seq_block **chain, uint32_t len)
{
    const seq_hash *parent = &zero_hash;
    for (uint32_t i = 1; i <= len; i++) {
        chain[i] = block_make(fx, i, i, parent, i - 1, (uint8_t)i);
        parent = &chain[i]->hash;
    }
}

/* The last step asked exactly one peer for exactly `want`; answers it with that block. */
static void answer_block_req(fixture *fx, seq_block *want)
{
    assert_int_equal(act_count(fx->out, SEQ_ACT_SEND, SEQ_MSG_BLOCK_REQ), 1);
    const seq_action *a = &fx->out->items[act_find(fx->out, SEQ_ACT_SEND, SEQ_MSG_BLOCK_REQ)];
    assert_memory_equal(a->u.send.msg->u.block_req.hash.b, want->hash.b, SEQ_HASH_BYTES);
    seq_msg blk = {.kind = SEQ_MSG_BLOCK, .u.block.block = want};
    do_msg(fx, a->u.send.to, &blk);
}

/* The last step delivered exactly chain[first..last], in height order, with one certificate. */
static void assert_delivered(const fixture *fx, seq_block **chain, uint32_t first, uint32_t last)
{
    assert_int_equal(act_count(fx->out, SEQ_ACT_DELIVER, 0), last - first + 1);
    const seq_cert *cert = NULL;
    uint32_t height = first;
    for (uint32_t i = 0; i < fx->out->count; i++) {
        const seq_action *a = &fx->out->items[i];
        if (a->kind != SEQ_ACT_DELIVER)
            continue;
        assert_int_equal(a->u.deliver.block->h.height, height);
        assert_memory_equal(a->u.deliver.block->hash.b, chain[height]->hash.b, SEQ_HASH_BYTES);
        if (!cert)
            cert = a->u.deliver.cert;
        assert_ptr_equal(a->u.deliver.cert, cert);
        height++;
    }
}

/* A proposal at a height we already finalized is dropped on arrival and counted. */
static void assert_stale_proposal_dropped(fixture *fx, seq_block *b)
{
    uint64_t dropped = status_of(fx).msgs_dropped;
    seq_msg p = propose_msg(b, b->h.leader);
    do_msg(fx, b->h.leader, &p);
    assert_int_equal(fx->out->count, 0);
    assert_int_equal(status_of(fx).msgs_dropped, dropped + 1);
}

/* A Byzantine leader's proposal on an unknown parent at height 1, left waiting,
 * does not crash the node when a finalization at height 1 prunes it (vote_try
 * asserted before the fix); it gets no vote, and a new proposal at height 1 is
 * dropped on arrival. */
static void test_pruned_waiting_proposal_below_final(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_msg null4 = cert_msg(SEQ_VOTE_NULLIFY, 4, NULL, SIGNERS_123);
    do_msg(fx, 2, &null4);
    assert_int_equal(status_of(fx).view, 5);

    seq_hash junk;
    memset(junk.b, 0x55, sizeof junk.b);
    seq_block *bad = block_make(fx, 5, 1, &junk, 2, 'x'); /* leader 1: parent view 2 unaccounted for */
    seq_msg pb = propose_msg(bad, 1);
    do_msg(fx, 1, &pb);
    assert_no_vote(fx);
    assert_int_equal(act_count(fx->out, SEQ_ACT_SEND, SEQ_MSG_CERT_REQ), 1); /* it waits */

    seq_block *b1 = block_make(fx, 1, 1, &zero_hash, 0, 'a');
    seq_msg fin1 = cert_msg(SEQ_VOTE_FINALIZE, 1, &b1->hash, SIGNERS_123);
    do_msg(fx, 2, &fin1);
    answer_block_req(fx, b1);
    seq_block *chain[2] = {NULL, b1};
    assert_delivered(fx, chain, 1, 1);
    assert_no_vote(fx);
    assert_int_equal(status_of(fx).final_height, 1);
    assert_int_equal(status_of(fx).view, 5);
    assert_null(seq_consensus_block_find(fx->c, &bad->hash));
    do_verified(fx, bad, true);
    assert_int_equal(fx->out->count, 0);

    assert_stale_proposal_dropped(fx, block_make(fx, 6, 1, &zero_hash, 0, 'y'));
}

/* A Byzantine leader of view 5 forks from view 3's block at height 2, skipping
 * notarized view 4; the finalization of view 4 (height 2) prunes the waiting
 * fork without crashing the node (vote_try asserted before the fix), the fork
 * gets no vote, and a new proposal below height 2 is dropped on arrival. */
static void test_pruned_waiting_fork_at_final(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    for (uint64_t v = 1; v <= 2; v++) {
        seq_msg nul = cert_msg(SEQ_VOTE_NULLIFY, v, NULL, SIGNERS_123);
        do_msg(fx, 2, &nul);
    }
    seq_block *b3 = block_make(fx, 3, 1, &zero_hash, 0, 'a');
    seq_msg p3 = propose_msg(b3, 3);
    do_msg(fx, 3, &p3);
    do_verified(fx, b3, true);
    seq_msg nz3 = cert_msg(SEQ_VOTE_NOTARIZE, 3, &b3->hash, SIGNERS_123);
    do_msg(fx, 2, &nz3);
    assert_int_equal(status_of(fx).view, 4);

    seq_block *b4 = block_make(fx, 4, 2, &b3->hash, 3, 'b'); /* notarized by the others */
    seq_msg nz4 = cert_msg(SEQ_VOTE_NOTARIZE, 4, &b4->hash, SIGNERS_123);
    do_msg(fx, 2, &nz4);
    assert_int_equal(status_of(fx).view, 5);

    seq_block *fork = block_make(fx, 5, 2, &b3->hash, 3, 'f');
    seq_msg pf = propose_msg(fork, 1);
    do_msg(fx, 1, &pf);
    assert_no_vote(fx);
    assert_int_equal(act_count(fx->out, SEQ_ACT_SEND, SEQ_MSG_CERT_REQ), 1); /* it waits */

    seq_msg fin4 = cert_msg(SEQ_VOTE_FINALIZE, 4, &b4->hash, SIGNERS_123);
    do_msg(fx, 2, &fin4);
    answer_block_req(fx, b4);
    seq_block *chain[3] = {NULL, b3, b4};
    assert_delivered(fx, chain, 1, 2);
    assert_no_vote(fx);
    assert_int_equal(status_of(fx).final_height, 2);
    assert_null(seq_consensus_block_find(fx->c, &fork->hash));
    do_verified(fx, fork, true);
    assert_int_equal(fx->out->count, 0);

    assert_stale_proposal_dropped(fx, block_make(fx, 6, 1, &zero_hash, 0, 'y'));
}

/* A node holding SEQ_BLOCKS_MAX blocks (one stale proposal and a fetched chain)
 * commits the whole chain in the step that brings its last block, without
 * aborting on the SEQ_BLOCKS_MAX + 1 blocks freed in that step, and delivers
 * every height in order. */
static void test_commit_full_table_in_one_step(void **state)
{
    fixture *fx = *state;
    enum { LEN = SEQ_BLOCKS_MAX };
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_block *stray = block_make(fx, 1, 1, &zero_hash, 0, 0xee);
    seq_msg ps = propose_msg(stray, 1);
    do_msg(fx, 1, &ps);

    seq_block *chain[LEN + 1];
    chain_make(fx, chain, LEN);
    seq_msg fin = cert_msg(SEQ_VOTE_FINALIZE, LEN, &chain[LEN]->hash, SIGNERS_123);
    do_msg(fx, 2, &fin);
    for (uint32_t i = LEN; i >= 2; i--)
        answer_block_req(fx, chain[i]);
    assert_int_equal(status_of(fx).blocks_held, SEQ_BLOCKS_MAX); /* the stray and 2..LEN */
    assert_int_equal(status_of(fx).final_height, 0);

    answer_block_req(fx, chain[1]);
    assert_delivered(fx, chain, 1, LEN);
    assert_cert(fx->out->items[act_find(fx->out, SEQ_ACT_DELIVER, 0)].u.deliver.cert, SEQ_VOTE_FINALIZE, LEN,
                &chain[LEN]->hash);
    seq_consensus_status st = status_of(fx);
    assert_int_equal(st.final_height, LEN);
    assert_int_equal(st.final_view, LEN);
    assert_memory_equal(st.final_hash.b, chain[LEN]->hash.b, SEQ_HASH_BYTES);
    assert_int_equal(st.blocks_held, 0);
}

/* The leader of view 4 asked to BUILD on the genesis (views 1-3 nullified);
 * view 3's notarization then moves its parent, so the PAYLOAD is discarded and
 * a new BUILD on view 3's block follows (on that step or the next), whose
 * PAYLOAD becomes the proposal. */
static void test_payload_after_parent_moved_builds_again(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL); /* leads view 4 */
    do_start(fx, T0);
    seq_block *b3 = block_make(fx, 3, 1, &zero_hash, 0, 'a');
    seq_msg p3 = propose_msg(b3, 3);
    do_msg(fx, 3, &p3); /* held, not voted: the node is in view 1 */
    for (uint64_t v = 1; v <= 3; v++) {
        seq_msg nul = cert_msg(SEQ_VOTE_NULLIFY, v, NULL, SIGNERS_123);
        do_msg(fx, 2, &nul);
    }
    assert_int_equal(status_of(fx).view, 4);
    assert_int_equal(act_count(fx->out, SEQ_ACT_BUILD, 0), 1);
    const seq_action *build = &fx->out->items[act_find(fx->out, SEQ_ACT_BUILD, 0)];
    assert_int_equal(build->u.build.view, 4);
    assert_true(seq_hash_is_zero(build->u.build.parent));

    seq_msg nz3 = cert_msg(SEQ_VOTE_NOTARIZE, 3, &b3->hash, SIGNERS_123);
    do_msg(fx, 2, &nz3);
    assert_int_equal(status_of(fx).view, 4);

    do_payload(fx, 4, NULL, 0, T0 + 3);
    assert_int_equal(act_count(fx->out, SEQ_ACT_BROADCAST, SEQ_MSG_PROPOSE), 0);
    assert_int_equal(act_count(fx->out, SEQ_ACT_PERSIST_VOTE, 0), 0);
    if (act_find(fx->out, SEQ_ACT_BUILD, 0) < 0) {
        seq_msg again = vote_msg(SEQ_VOTE_NOTARIZE, 3, &b3->hash, 1); /* any later event */
        do_msg(fx, 1, &again);
    }
    assert_int_equal(act_count(fx->out, SEQ_ACT_BUILD, 0), 1);
    build = &fx->out->items[act_find(fx->out, SEQ_ACT_BUILD, 0)];
    assert_int_equal(build->u.build.view, 4);
    assert_memory_equal(build->u.build.parent->b, b3->hash.b, SEQ_HASH_BYTES);

    do_payload(fx, 4, NULL, 0, T0 + 4);
    int prop = act_find(fx->out, SEQ_ACT_BROADCAST, SEQ_MSG_PROPOSE);
    assert_true(prop >= 0);
    const seq_block *b4 = fx->out->items[prop].u.send.msg->u.propose.block;
    assert_int_equal(b4->h.view, 4);
    assert_int_equal(b4->h.height, 2);
    assert_int_equal(b4->h.parent_view, 3);
    assert_memory_equal(b4->h.parent.b, b3->hash.b, SEQ_HASH_BYTES);
}

/* With the block table full, a fetched block that does not fit is refused
 * without asking for it again at once (before the fix: fetch, refuse, fetch at
 * network speed); the request is retried on the timeout. */
static void test_full_table_refused_block_retried_on_timeout(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_block *chain[LONG_CHAIN + 1];
    chain_make(fx, chain, LONG_CHAIN);
    seq_msg fin = cert_msg(SEQ_VOTE_FINALIZE, LONG_CHAIN, &chain[LONG_CHAIN]->hash, SIGNERS_123);
    do_msg(fx, 2, &fin);
    for (uint32_t i = LONG_CHAIN; i >= 2; i--)
        answer_block_req(fx, chain[i]);
    assert_int_equal(status_of(fx).blocks_held, SEQ_BLOCKS_MAX);

    answer_block_req(fx, chain[1]); /* does not fit */
    assert_int_equal(act_count(fx->out, SEQ_ACT_SEND, SEQ_MSG_BLOCK_REQ), 0);
    assert_int_equal(act_count(fx->out, SEQ_ACT_BROADCAST, SEQ_MSG_BLOCK_REQ), 0);
    seq_consensus_status st = status_of(fx);
    assert_int_equal(st.blocks_held, SEQ_BLOCKS_MAX);
    assert_int_equal(st.final_height, 0);
    assert_null(seq_consensus_block_find(fx->c, &chain[1]->hash));

    do_timeout(fx, T0 + TIMEOUT_MS);
    assert_int_equal(act_count(fx->out, SEQ_ACT_SEND, SEQ_MSG_BLOCK_REQ), 1);
    const seq_action *retry = &fx->out->items[act_find(fx->out, SEQ_ACT_SEND, SEQ_MSG_BLOCK_REQ)];
    assert_memory_equal(retry->u.send.msg->u.block_req.hash.b, chain[1]->hash.b, SEQ_HASH_BYTES);
}

/* ---- restart safety ------------------------------------------------------------------------ */

static seq_consensus_restore restore_with(const seq_vote *votes, uint32_t count)
{
    return (seq_consensus_restore){.votes = votes, .vote_count = count};
}

/* A node restored with its notarize vote for one block of view 1 does not vote
 * for a different proposal of view 1, while its restored vote still counts
 * toward the notarization of the block it did vote for. */
static void test_restore_notarize_blocks_other_proposal(void **state)
{
    fixture *fx = *state;
    seq_block *voted = block_make(fx, 1, 1, &zero_hash, 0, 'a');
    seq_block *other = block_make(fx, 1, 1, &zero_hash, 0, 'b');
    seq_vote mine = vote_make(SEQ_VOTE_NOTARIZE, 1, &voted->hash, 0);
    seq_consensus_restore r = restore_with(&mine, 1);
    node_new(fx, 0, &r);
    do_start(fx, T0);
    assert_int_equal(status_of(fx).view, 1);

    seq_msg p = propose_msg(other, 1);
    do_msg(fx, 1, &p);
    assert_no_vote(fx);
    do_verified(fx, other, true);
    assert_int_equal(fx->out->count, 0);

    for (uint32_t signer = 2; signer <= 3; signer++) {
        seq_msg v = vote_msg(SEQ_VOTE_NOTARIZE, 1, &voted->hash, signer);
        do_msg(fx, signer, &v);
    }
    int c = act_find(fx->out, SEQ_ACT_BROADCAST, SEQ_MSG_CERT);
    assert_true(c >= 0);
    const seq_cert *cert = &fx->out->items[c].u.send.msg->u.cert;
    assert_cert(cert, SEQ_VOTE_NOTARIZE, 1, &voted->hash);
    assert_true(seq_bitmap_get(cert->bitmap, 0));
}

/* A node restored with its nullify vote for view 1 enters view 2 on a
 * notarization of view 1 without sending finalize for it. */
static void test_restore_nullify_blocks_finalize(void **state)
{
    fixture *fx = *state;
    seq_vote mine = vote_make(SEQ_VOTE_NULLIFY, 1, NULL, 0);
    seq_consensus_restore r = restore_with(&mine, 1);
    node_new(fx, 0, &r);
    do_start(fx, T0);
    seq_hash h;
    memset(h.b, 0x22, sizeof h.b);
    for (uint32_t signer = 1; signer <= 3; signer++) {
        seq_msg v = vote_msg(SEQ_VOTE_NOTARIZE, 1, &h, signer);
        do_msg(fx, signer, &v);
        assert_int_equal(act_count(fx->out, SEQ_ACT_PERSIST_VOTE, 0), 0);
    }
    assert_int_equal(act_count(fx->out, SEQ_ACT_BROADCAST, SEQ_MSG_CERT), 1);
    assert_int_equal(status_of(fx).view, 2);
}

/* A node restored with its finalize vote for view 1 resumes in view 2. */
static void test_restore_finalize_resumes_next_view(void **state)
{
    fixture *fx = *state;
    seq_hash h;
    memset(h.b, 0x33, sizeof h.b);
    seq_vote mine[2] = {vote_make(SEQ_VOTE_NOTARIZE, 1, &h, 0), vote_make(SEQ_VOTE_FINALIZE, 1, &h, 0)};
    seq_consensus_restore r = restore_with(mine, 2);
    node_new(fx, 0, &r);
    assert_int_equal(status_of(fx).view, 2);
    do_start(fx, T0);
    assert_int_equal(fx->out->count, 1);
    assert_int_equal(act_at(fx->out, 0, SEQ_ACT_SET_TIMER)->u.deadline_ms, T0 + TIMEOUT_MS);
}

/* Restoring votes that are not the node's own, or too many of them, is refused. */
static void test_restore_rejects_foreign_votes(void **state)
{
    fixture *fx = *state;
    seq_vote theirs = vote_make(SEQ_VOTE_NULLIFY, 1, NULL, 2);
    seq_consensus_restore r = restore_with(&theirs, 1);
    seq_consensus_config cfg = config_of(0);
    assert_int_equal(seq_consensus_new(&fx->c, &cfg, &r), SEQ_EINVAL);
    r.vote_count = SEQ_RESTORE_VOTES_MAX + 1;
    assert_int_equal(seq_consensus_new(&fx->c, &cfg, &r), SEQ_ETOOBIG);
    fx->c = NULL;
}

/* ---- windows and duplicates ------------------------------------------------------------------ */

/* Votes more than SEQ_VOTE_VIEWS_AHEAD_MAX views ahead are dropped, the last
 * view inside the window is not, and a certificate far ahead makes the node jump. */
static void test_far_votes_dropped_far_certs_jump(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_hash h;
    memset(h.b, 0x44, sizeof h.b);
    seq_msg far = vote_msg(SEQ_VOTE_NOTARIZE, 1 + SEQ_VOTE_VIEWS_AHEAD_MAX + 1, &h, 2);
    do_msg(fx, 2, &far);
    assert_int_equal(fx->out->count, 0);
    assert_int_equal(status_of(fx).msgs_dropped, 1);
    seq_msg edge = vote_msg(SEQ_VOTE_NOTARIZE, 1 + SEQ_VOTE_VIEWS_AHEAD_MAX, &h, 2);
    do_msg(fx, 2, &edge);
    assert_int_equal(status_of(fx).msgs_dropped, 1);

    seq_msg jump = cert_msg(SEQ_VOTE_NULLIFY, FAR_VIEW, NULL, SIGNERS_123);
    do_msg(fx, 3, &jump);
    assert_int_equal(status_of(fx).view, FAR_VIEW + 1);
    assert_int_equal(fx->out->count, 1);
    assert_int_equal(act_at(fx->out, 0, SEQ_ACT_SET_TIMER)->u.deadline_ms, T0 + TIMEOUT_MS);
    assert_int_equal(status_of(fx).msgs_dropped, 1);
}

/* The same vote delivered twice (also relayed by another peer) is counted
 * once: two distinct signers are no quorum, the third distinct one makes it. */
static void test_duplicate_votes_counted_once(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_hash h;
    memset(h.b, 0x55, sizeof h.b);
    seq_msg v2 = vote_msg(SEQ_VOTE_NOTARIZE, 1, &h, 2);
    seq_msg v3 = vote_msg(SEQ_VOTE_NOTARIZE, 1, &h, 3);
    do_msg(fx, 2, &v2);
    do_msg(fx, 2, &v2);
    do_msg(fx, 1, &v2);
    do_msg(fx, 3, &v3);
    do_msg(fx, 3, &v3);
    assert_int_equal(fx->out->count, 0);
    assert_int_equal(status_of(fx).view, 1);
    assert_int_equal(status_of(fx).equivocations, 0);

    seq_msg v1 = vote_msg(SEQ_VOTE_NOTARIZE, 1, &h, 1);
    do_msg(fx, 1, &v1);
    int c = act_find(fx->out, SEQ_ACT_BROADCAST, SEQ_MSG_CERT);
    assert_true(c >= 0);
    const seq_cert *cert = &fx->out->items[c].u.send.msg->u.cert;
    assert_cert(cert, SEQ_VOTE_NOTARIZE, 1, &h);
    assert_int_equal(cert->sig_count, Q);
    assert_int_equal(cert->bitmap[0], SIGNERS_123);
    assert_int_equal(status_of(fx).view, 2);
}

/* A late vote, one the certificate held for its view and kind already
 * decides, is still verified and recorded: skipping it would lose the
 * evidence a contradicting vote arriving after it gives (a review found
 * this; the tests below pin both orders). A bad signature on it counts. */
static void test_late_vote_still_verified(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_block *b = block_make(fx, 1, 1, &zero_hash, 0, 'a');
    vote_for_view1(fx, b);
    seq_msg v2 = vote_msg(SEQ_VOTE_NOTARIZE, 1, &b->hash, 2);
    do_msg(fx, 2, &v2);
    assert_true(act_find(fx->out, SEQ_ACT_BROADCAST, SEQ_MSG_CERT) >= 0);
    seq_consensus_status before = status_of(fx);

    seq_msg late = vote_msg(SEQ_VOTE_NOTARIZE, 1, &b->hash, 3);
    late.u.vote.sig.b[0] ^= 1;
    do_msg(fx, 2, &late); /* relayed: from its signer it would also ask us for help */
    assert_int_equal(status_of(fx).sig_checks, before.sig_checks + 1);
    assert_int_equal(status_of(fx).bad_signatures, 1);
}

/* The late vote first, its contradiction second: evidence all the same,
 * for another notarize hash and for finalize against a held nullification. */
static void test_late_vote_then_contradiction_is_evidence(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_hash h, h2;
    memset(h.b, 0x55, sizeof h.b);
    memset(h2.b, 0x56, sizeof h2.b);
    seq_msg nz = cert_msg(SEQ_VOTE_NOTARIZE, 1, &h, 0x7u);
    do_msg(fx, 1, &nz);
    seq_msg first = vote_msg(SEQ_VOTE_NOTARIZE, 1, &h, 3);
    do_msg(fx, 2, &first);
    seq_msg second = vote_msg(SEQ_VOTE_NOTARIZE, 1, &h2, 3);
    do_msg(fx, 2, &second);
    assert_int_equal(status_of(fx).equivocations, 1);

    seq_msg nul_cert = cert_msg(SEQ_VOTE_NULLIFY, 2, NULL, 0x7u);
    do_msg(fx, 1, &nul_cert);
    seq_msg nul = vote_msg(SEQ_VOTE_NULLIFY, 2, NULL, 3);
    do_msg(fx, 2, &nul);
    seq_msg fin = vote_msg(SEQ_VOTE_FINALIZE, 2, &h2, 3);
    do_msg(fx, 2, &fin);
    assert_evidence(fx, &nul.u.vote, &fin.u.vote);
    assert_int_equal(status_of(fx).equivocations, 2);
}

/* A vote of the certificate's hash from a signer whose earlier vote it
 * contradicts is still verified and kept as evidence: another notarize hash,
 * or a finalize against a held nullification. */
static void test_vote_covered_by_cert_still_evidence(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_hash h, h2;
    memset(h.b, 0x55, sizeof h.b);
    memset(h2.b, 0x56, sizeof h2.b);
    seq_msg first = vote_msg(SEQ_VOTE_NOTARIZE, 1, &h2, 3);
    do_msg(fx, 3, &first);
    seq_msg nz = cert_msg(SEQ_VOTE_NOTARIZE, 1, &h, 0x7u);
    do_msg(fx, 1, &nz);
    assert_int_equal(status_of(fx).view, 2);
    seq_msg second = vote_msg(SEQ_VOTE_NOTARIZE, 1, &h, 3);
    do_msg(fx, 2, &second);
    assert_evidence(fx, &first.u.vote, &second.u.vote);

    seq_msg fin = vote_msg(SEQ_VOTE_FINALIZE, 2, &h2, 3);
    do_msg(fx, 3, &fin);
    seq_msg nul_cert = cert_msg(SEQ_VOTE_NULLIFY, 2, NULL, 0x7u);
    do_msg(fx, 1, &nul_cert);
    assert_int_equal(status_of(fx).view, 3);
    seq_msg nul = vote_msg(SEQ_VOTE_NULLIFY, 2, NULL, 3);
    do_msg(fx, 2, &nul);
    assert_evidence(fx, &fin.u.vote, &nul.u.vote);
    assert_int_equal(status_of(fx).equivocations, 2);
}

/* A certificate whose signatures we already verified as votes is checked
 * for the others only; a held signer's signature that differs from its vote
 * is verified (and this one is bad). */
static void test_cert_signatures_held_as_votes_not_reverified(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_hash h;
    memset(h.b, 0x44, sizeof h.b);
    seq_msg v2 = vote_msg(SEQ_VOTE_NOTARIZE, 1, &h, 2);
    seq_msg v3 = vote_msg(SEQ_VOTE_NOTARIZE, 1, &h, 3);
    do_msg(fx, 2, &v2);
    do_msg(fx, 3, &v3);
    assert_int_equal(status_of(fx).sig_checks, 2);

    seq_msg bad = cert_msg(SEQ_VOTE_NOTARIZE, 1, &h, 0xEu);
    bad.u.cert.sigs[1].b[5] ^= 1; /* signer 2's */
    do_msg(fx, 2, &bad);
    assert_int_equal(status_of(fx).bad_signatures, 1);
    assert_int_equal(status_of(fx).view, 1);

    uint64_t checks = status_of(fx).sig_checks;
    seq_msg good = cert_msg(SEQ_VOTE_NOTARIZE, 1, &h, 0xEu);
    do_msg(fx, 3, &good);
    assert_int_equal(status_of(fx).view, 2);
    assert_int_equal(status_of(fx).sig_checks, checks + 1); /* signer 1's only */
}

/* ---- helping a lagging peer (d97d3e1) --------------------------------------------------------- */

/* Action i is a SEND to `to` of a message of msg_kind; returns the message. */
static const seq_msg *sent_to(const seq_actions *out, uint32_t i, uint32_t to, seq_msg_kind msg_kind)
{
    const seq_msg *m = sent_at(out, i, SEQ_ACT_SEND, msg_kind);
    assert_int_equal(out->items[i].u.send.to, to);
    return m;
}

/* got is the certificate want: same kind, view, hash, signers and signatures. */
static void assert_same_cert(const seq_cert *got, const seq_cert *want)
{
    assert_cert(got, want->kind, want->view, &want->hash);
    assert_memory_equal(got->bitmap, want->bitmap, SEQ_BITMAP_BYTES);
    assert_int_equal(got->sig_count, want->sig_count);
    assert_memory_equal(got->sigs, want->sigs, want->sig_count * sizeof want->sigs[0]);
}

/* Validator 0, fresh, moved to view 2 by a notarization of view 1 on *h (returned in *nz1). */
static void node_past_notarized_view1(fixture *fx, const seq_hash *h, seq_msg *nz1)
{
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    *nz1 = cert_msg(SEQ_VOTE_NOTARIZE, 1, h, SIGNERS_123);
    do_msg(fx, 2, nz1);
    assert_int_equal(status_of(fx).view, 2);
}

/* The last step answered a vote of a lower view with exactly one SEND of cert to `to`. */
static void assert_helped_with_cert(const fixture *fx, uint32_t to, const seq_cert *cert)
{
    assert_int_equal(fx->out->count, 1);
    assert_same_cert(&sent_to(fx->out, 0, to, SEQ_MSG_CERT)->u.cert, cert);
}

/* A nullify of the view below ours, signed by the peer that sends it, is
 * answered with exactly the certificate that moved us on, to that peer only:
 * the notarization of view 1 in view 2, the nullification of view 2 in view 3. */
static void test_laggard_gets_certificate(void **state)
{
    fixture *fx = *state;
    seq_hash h;
    memset(h.b, 0x77, sizeof h.b);
    seq_msg nz1;
    node_past_notarized_view1(fx, &h, &nz1);
    seq_msg stuck1 = vote_msg(SEQ_VOTE_NULLIFY, 1, NULL, 3);
    do_msg(fx, 3, &stuck1);
    assert_helped_with_cert(fx, 3, &nz1.u.cert);

    seq_msg null2 = cert_msg(SEQ_VOTE_NULLIFY, 2, NULL, SIGNERS_123);
    do_msg(fx, 2, &null2);
    assert_int_equal(status_of(fx).view, 3);
    seq_msg stuck2 = vote_msg(SEQ_VOTE_NULLIFY, 2, NULL, 1);
    do_msg(fx, 1, &stuck2);
    assert_helped_with_cert(fx, 1, &null2.u.cert);
}

/* A node restored in view 2 (own notarize and finalize of view 1, nullify of
 * view 2) holds no certificate of view 1, so it answers a peer's nullify of
 * view 1 with its own signed notarize and finalize votes of view 1. */
static void test_laggard_gets_own_votes_after_restart(void **state)
{
    fixture *fx = *state;
    seq_hash h;
    memset(h.b, 0x88, sizeof h.b);
    seq_vote mine[3] = {vote_make(SEQ_VOTE_NOTARIZE, 1, &h, 0), vote_make(SEQ_VOTE_FINALIZE, 1, &h, 0),
                        vote_make(SEQ_VOTE_NULLIFY, 2, NULL, 0)};
    seq_consensus_restore r = restore_with(mine, 3);
    node_new(fx, 0, &r);
    do_start(fx, T0);
    assert_int_equal(status_of(fx).view, 2);

    seq_msg stuck = vote_msg(SEQ_VOTE_NULLIFY, 1, NULL, 3);
    do_msg(fx, 3, &stuck);
    assert_int_equal(fx->out->count, 2);
    const seq_vote *nz = &sent_to(fx->out, 0, 3, SEQ_MSG_VOTE)->u.vote;
    assert_own_vote(nz, SEQ_VOTE_NOTARIZE, 1, &h, 0);
    seq_test_assert_vote_equal(nz, &mine[0]);
    const seq_vote *fin = &sent_to(fx->out, 1, 3, SEQ_MSG_VOTE)->u.vote;
    assert_own_vote(fin, SEQ_VOTE_FINALIZE, 1, &h, 0);
    seq_test_assert_vote_equal(fin, &mine[1]);
}

/* After a restart a node holds no certificate of the views before it, only
 * its own votes; a peer's certificate request for them is answered with those
 * votes (notarize and finalize of view 1, nullify of view 2), so that the
 * asker can form the certificates every validator lost (a whole-network
 * restart whose one resend of votes on link up was lost: the simulator's
 * seed 13 of 7 nodes stalled for good without this). */
static void test_cert_req_answered_with_own_votes_after_restart(void **state)
{
    fixture *fx = *state;
    seq_hash h;
    memset(h.b, 0x8a, sizeof h.b);
    seq_vote mine[3] = {vote_make(SEQ_VOTE_NOTARIZE, 1, &h, 0), vote_make(SEQ_VOTE_FINALIZE, 1, &h, 0),
                        vote_make(SEQ_VOTE_NULLIFY, 2, NULL, 0)};
    seq_consensus_restore r = restore_with(mine, 3);
    node_new(fx, 0, &r);
    do_start(fx, T0);
    seq_msg req = {.kind = SEQ_MSG_CERT_REQ, .u.cert_req = {.view_from = 1, .count = 2}};
    do_msg(fx, 2, &req);
    assert_int_equal(fx->out->count, 3);
    for (uint32_t i = 0; i < 3; i++)
        seq_test_assert_vote_equal(&sent_to(fx->out, i, 2, SEQ_MSG_VOTE)->u.vote, &mine[i]);
}

/* A kind we hold the certificate of is answered with the certificate, not
 * with our vote; a kind we only voted (finalize of view 1) with the vote. */
static void test_cert_req_prefers_certificate_to_own_vote(void **state)
{
    fixture *fx = *state;
    seq_hash h;
    memset(h.b, 0x8b, sizeof h.b);
    seq_msg nz1;
    node_past_notarized_view1(fx, &h, &nz1);
    seq_msg req = {.kind = SEQ_MSG_CERT_REQ, .u.cert_req = {.view_from = 1, .count = 1}};
    do_msg(fx, 3, &req);
    assert_int_equal(fx->out->count, 2);
    assert_same_cert(&sent_to(fx->out, 0, 3, SEQ_MSG_CERT)->u.cert, &nz1.u.cert);
    assert_own_vote(&sent_to(fx->out, 1, 3, SEQ_MSG_VOTE)->u.vote, SEQ_VOTE_FINALIZE, 1, &h, 0);
}

/* One peer gets at most SEQ_CERT_REQS_PER_VIEW_MAX help answers per view of
 * ours, whatever lower-view votes it sends next; another peer still gets one. */
static void test_laggard_help_budget_per_peer(void **state)
{
    fixture *fx = *state;
    seq_hash h;
    memset(h.b, 0x99, sizeof h.b);
    seq_msg nz1;
    node_past_notarized_view1(fx, &h, &nz1);
    seq_msg stuck3 = vote_msg(SEQ_VOTE_NULLIFY, 1, NULL, 3);
    for (int i = 0; i < SEQ_CERT_REQS_PER_VIEW_MAX; i++) {
        do_msg(fx, 3, &stuck3);
        assert_helped_with_cert(fx, 3, &nz1.u.cert);
    }
    do_msg(fx, 3, &stuck3);
    assert_int_equal(fx->out->count, 0);
    seq_msg other3 = vote_msg(SEQ_VOTE_NOTARIZE, 1, &h, 3);
    do_msg(fx, 3, &other3);
    assert_int_equal(fx->out->count, 0);

    seq_msg stuck2 = vote_msg(SEQ_VOTE_NULLIFY, 1, NULL, 2);
    do_msg(fx, 2, &stuck2);
    assert_helped_with_cert(fx, 2, &nz1.u.cert);
}

/* A lower-view vote relayed by a peer other than its signer says nothing about
 * the relaying peer and gets no answer; the same vote from its signer does. */
static void test_relayed_lower_vote_not_helped(void **state)
{
    fixture *fx = *state;
    seq_hash h;
    memset(h.b, 0xaa, sizeof h.b);
    seq_msg nz1;
    node_past_notarized_view1(fx, &h, &nz1);
    seq_msg stuck3 = vote_msg(SEQ_VOTE_NULLIFY, 1, NULL, 3);
    do_msg(fx, 2, &stuck3);
    assert_int_equal(fx->out->count, 0);
    do_msg(fx, 3, &stuck3);
    assert_helped_with_cert(fx, 3, &nz1.u.cert);
}

/* Votes of the views we asked a peer for are its answer, not a sign that it
 * lags: they get no help back (which would bounce votes between the two
 * until the budget ran out), while the same vote from a peer we did not
 * ask still gets the certificate that moved us on. */
static void test_answer_to_our_cert_req_not_helped(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_msg null2 = cert_msg(SEQ_VOTE_NULLIFY, 2, NULL, SIGNERS_123);
    do_msg(fx, 1, &null2);
    seq_block *b3 = block_make(fx, 3, 1, &zero_hash, 0, 'a');
    seq_msg p = propose_msg(b3, 3);
    do_msg(fx, 3, &p);
    assert_int_equal(sent_to(fx->out, 0, 3, SEQ_MSG_CERT_REQ)->u.cert_req.view_from, 1);

    seq_msg answer = vote_msg(SEQ_VOTE_NULLIFY, 2, NULL, 3);
    do_msg(fx, 3, &answer);
    assert_int_equal(fx->out->count, 0);
    seq_msg stuck = vote_msg(SEQ_VOTE_NULLIFY, 2, NULL, 2);
    do_msg(fx, 2, &stuck);
    assert_helped_with_cert(fx, 2, &null2.u.cert);
}

/* A timeout in a view where the node voted notarize broadcasts that same signed
 * notarize after the new nullify; a second timeout repeats both, persisting nothing. */
static void test_timeout_repeats_notarize(void **state)
{
    fixture *fx = *state;
    node_new(fx, 0, NULL);
    do_start(fx, T0);
    seq_block *b = block_make(fx, 1, 1, &zero_hash, 0, 'a');
    vote_for_view1(fx, b);
    seq_vote notarize = act_at(fx->out, 0, SEQ_ACT_PERSIST_VOTE)->u.vote;
    assert_own_vote(&notarize, SEQ_VOTE_NOTARIZE, 1, &b->hash, 0);

    do_timeout(fx, T0 + TIMEOUT_MS);
    assert_int_equal(fx->out->count, 4);
    seq_vote nullify = act_at(fx->out, 0, SEQ_ACT_PERSIST_VOTE)->u.vote;
    assert_own_vote(&nullify, SEQ_VOTE_NULLIFY, 1, NULL, 0);
    seq_test_assert_vote_equal(&sent_at(fx->out, 1, SEQ_ACT_BROADCAST, SEQ_MSG_VOTE)->u.vote, &nullify);
    seq_test_assert_vote_equal(&sent_at(fx->out, 2, SEQ_ACT_BROADCAST, SEQ_MSG_VOTE)->u.vote, &notarize);
    assert_int_equal(act_at(fx->out, 3, SEQ_ACT_SET_TIMER)->u.deadline_ms, T0 + 2 * TIMEOUT_MS);

    do_timeout(fx, T0 + 2 * TIMEOUT_MS);
    assert_int_equal(fx->out->count, 3);
    seq_test_assert_vote_equal(&sent_at(fx->out, 0, SEQ_ACT_BROADCAST, SEQ_MSG_VOTE)->u.vote, &nullify);
    seq_test_assert_vote_equal(&sent_at(fx->out, 1, SEQ_ACT_BROADCAST, SEQ_MSG_VOTE)->u.vote, &notarize);
    assert_int_equal(act_at(fx->out, 2, SEQ_ACT_SET_TIMER)->u.deadline_ms, T0 + 3 * TIMEOUT_MS);
    assert_int_equal(status_of(fx).timeouts, 1);
}

int main(void)
{
    seq_log_set_level(SEQ_LOG_OFF); /* dropped messages would log; the asserts say it all */
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_start_arms_timer),
        T(test_leader_builds_on_genesis_and_persists_first),
        T(test_replica_votes_after_verified),
        T(test_replica_refuses_unverified),
        T(test_equivocating_leader),
        T(test_proposal_from_non_leader_dropped),
        T(test_proposal_bad_signature_counted),
        T(test_proposal_other_chain_dropped),
        T(test_proposal_unknown_parent_not_voted),
        T(test_proposal_wrong_height_not_voted),
        T(test_proposal_unnotarized_parent_waits),
        T(test_early_proposal_verified_on_entering_view),
        T(test_verified_after_view_left_no_vote),
        T(test_repeated_timeout_repeats_nullify),
        T(test_finalize_and_nullify_is_equivocation),
        T(test_leader_parent_rule),
        T(test_notarization_advances_and_finalizes),
        T(test_no_finalize_after_nullify),
        T(test_nullification_lets_parent_skip),
        T(test_parent_skipping_unnullified_view_waits),
        T(test_finalization_delivers),
        T(test_finalization_fetches_ancestors),
        T(test_pruned_waiting_proposal_below_final),
        T(test_pruned_waiting_fork_at_final),
        T(test_commit_full_table_in_one_step),
        T(test_payload_after_parent_moved_builds_again),
        T(test_full_table_refused_block_retried_on_timeout),
        T(test_restore_notarize_blocks_other_proposal),
        T(test_restore_nullify_blocks_finalize),
        T(test_restore_finalize_resumes_next_view),
        T(test_restore_rejects_foreign_votes),
        T(test_far_votes_dropped_far_certs_jump),
        T(test_duplicate_votes_counted_once),
        T(test_late_vote_still_verified),
        T(test_late_vote_then_contradiction_is_evidence),
        T(test_vote_covered_by_cert_still_evidence),
        T(test_cert_signatures_held_as_votes_not_reverified),
        T(test_laggard_gets_certificate),
        T(test_laggard_gets_own_votes_after_restart),
        T(test_cert_req_answered_with_own_votes_after_restart),
        T(test_cert_req_prefers_certificate_to_own_vote),
        T(test_answer_to_our_cert_req_not_helped),
        T(test_laggard_help_budget_per_peer),
        T(test_relayed_lower_vote_not_helped),
        T(test_timeout_repeats_notarize),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
