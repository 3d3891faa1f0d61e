/* Range sync (lib/sync.c): seq_sync_check on real chains with real
 * finalization certificates (whole ranges, groups finalized together,
 * every kind of bad answer), and the planner: ranges, peers, held answers,
 * stale slots, timeouts and peers going down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "msg.h"
#include "sync.h"
#include "testutil.h"
#include "types.h"

#define CHAIN_ID 7u
#define OTHER_CHAIN_ID 8u
#define N_VALIDATORS 4u
#define CHAIN_LEN 16u
#define SELF 0u
#define RANGE 4u
#define INFLIGHT 3u
#define TIMEOUT_MS 1000u
#define PEER_TIP 12u

static seq_keypair *keys[N_VALIDATORS];
static seq_validators vs;

/* blocks[h-1] is height h; parent of height 1 is the zero hash (our tip 0). */
typedef struct {
    seq_block *blocks[CHAIN_LEN];
    seq_cert certs[CHAIN_LEN]; /* certs[i]: finalization of blocks[i] */
} chain;

static chain main_chain;
static const seq_hash zero_hash;

/* ---- fixture: real keys, a real chain with real certificates -------------------- */

static seq_cert cert_make(uint8_t kind, const seq_block *b, uint64_t chain_id)
{
    seq_vote votes[3];
    for (uint32_t i = 0; i < 3; i++)
        votes[i] = seq_test_vote(kind, b->h.view, &b->hash, i, keys[i], chain_id);
    seq_cert c;
    assert_int_equal(seq_cert_build(&c, &vs, votes, 3), 0);
    return c;
}

static void chain_make(chain *c, uint64_t chain_id)
{
    const seq_hash *parent = &zero_hash;
    for (uint32_t i = 0; i < CHAIN_LEN; i++) {
        char payload[16];
        int len = snprintf(payload, sizeof payload, "tx-%u", i);
        seq_tx txs[2] = {{.ns = 20, .len = (uint32_t)len, .data = (const uint8_t *)payload},
                         {.ns = 10, .len = 3, .data = (const uint8_t *)"abc"}};
        seq_header h = {.chain_id = chain_id, .height = i + 1, .view = 2 * i + 1, .parent = *parent,
                        .parent_view = i ? 2 * i - 1 : 0, .leader = (uint32_t)(2 * i + 1) % N_VALIDATORS,
                        .timestamp_ms = 1000 + i};
        assert_int_equal(seq_block_build(&c->blocks[i], &h, txs, 2), 0);
        c->certs[i] = cert_make(SEQ_VOTE_FINALIZE, c->blocks[i], chain_id);
        parent = &c->blocks[i]->hash;
    }
}

static void chain_free(chain *c)
{
    for (uint32_t i = 0; i < CHAIN_LEN; i++)
        seq_block_free(c->blocks[i]);
}

static int group_setup(void **state)
{
    (void)state;
    if (seq_test_keys_make(keys, N_VALIDATORS) != 0)
        return -1;
    seq_pubkey pks[N_VALIDATORS];
    for (uint32_t i = 0; i < N_VALIDATORS; i++)
        pks[i] = keys[i]->pk;
    if (seq_validators_init(&vs, pks, N_VALIDATORS) != 0)
        return -1;
    chain_make(&main_chain, CHAIN_ID);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    chain_free(&main_chain);
    seq_test_keys_free(keys, N_VALIDATORS);
    return 0;
}

/* Blocks from..from+n-1 of the main chain and a copy of their certificates. */
static void range_of(uint64_t from, uint32_t n, seq_block **blocks, seq_cert *certs)
{
    for (uint32_t i = 0; i < n; i++) {
        blocks[i] = main_chain.blocks[from - 1 + i];
        certs[i] = main_chain.certs[from - 1 + i];
    }
}

static const seq_hash *hash_at(uint64_t height)
{
    return height ? &main_chain.blocks[height - 1]->hash : &zero_hash;
}

static void assert_cert_equal(const seq_cert *a, const seq_cert *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->view, b->view);
    assert_memory_equal(a->hash.b, b->hash.b, SEQ_HASH_BYTES);
    assert_memory_equal(a->bitmap, b->bitmap, SEQ_BITMAP_BYTES);
    assert_int_equal(a->sig_count, b->sig_count);
    assert_memory_equal(a->sigs, b->sigs, a->sig_count * sizeof a->sigs[0]);
}

static int check(uint64_t tip, seq_block **blocks, seq_cert *certs, uint32_t n, uint32_t *accepted)
{
    return seq_sync_check(&vs, CHAIN_ID, tip, hash_at(tip), blocks, certs, n, accepted);
}

/* ---- seq_sync_check ----------------------------------------------------------------- */

/* A range where each certificate names its own block is accepted whole, as sent. */
static void test_check_accepts_whole_range(void **state)
{
    (void)state;
    seq_block *blocks[4];
    seq_cert certs[4];
    range_of(3, 4, blocks, certs);
    uint32_t accepted = 99;
    assert_int_equal(check(2, blocks, certs, 4, &accepted), 0);
    assert_int_equal(accepted, 4);
    for (uint32_t i = 0; i < 4; i++)
        assert_cert_equal(&certs[i], &main_chain.certs[2 + i]);
}

/* Blocks 1..3 finalized together by block 3's certificate, block 4's
 * certificate naming block 5 (not in the answer): the prefix 1..3 is accepted. */
static void test_check_group_accepts_prefix(void **state)
{
    (void)state;
    seq_block *blocks[4];
    seq_cert certs[4];
    range_of(1, 4, blocks, certs);
    certs[0] = certs[1] = certs[2] = main_chain.certs[2];
    certs[3] = main_chain.certs[4];
    uint32_t accepted = 0;
    assert_int_equal(check(0, blocks, certs, 4, &accepted), 0);
    assert_int_equal(accepted, 3);
    for (uint32_t i = 0; i < 3; i++)
        assert_cert_equal(&certs[i], &main_chain.certs[2]);
}

/* Accepted blocks whose certificate names a block past the prefix get one
 * naming a block of the prefix (at or after their own height); the others
 * are kept. */
static void test_check_replaces_certs_beyond_prefix(void **state)
{
    (void)state;
    seq_block *blocks[4];
    seq_cert certs[4];
    range_of(1, 4, blocks, certs);
    certs[0] = main_chain.certs[5]; /* names block 6: beyond the answer */
    certs[1] = main_chain.certs[1]; /* its own */
    certs[2] = main_chain.certs[2]; /* its own: the highest named */
    certs[3] = main_chain.certs[6]; /* names block 7: beyond */
    uint32_t accepted = 0;
    assert_int_equal(check(0, blocks, certs, 4, &accepted), 0);
    assert_int_equal(accepted, 3);
    assert_cert_equal(&certs[0], &main_chain.certs[2]);
    assert_cert_equal(&certs[1], &main_chain.certs[1]);
    assert_cert_equal(&certs[2], &main_chain.certs[2]);
    for (uint32_t i = 0; i < accepted; i++) {
        bool in_prefix = false;
        for (uint32_t j = i; j < accepted; j++)
            in_prefix |= seq_hash_eq(&certs[i].hash, &blocks[j]->hash);
        assert_true(in_prefix);
        assert_int_equal(seq_cert_verify(&certs[i], &vs, CHAIN_ID), 0);
    }
}

/* No certificate naming a block of the answer: nothing is accepted, no error. */
static void test_check_nothing_named_accepts_none(void **state)
{
    (void)state;
    seq_block *blocks[2];
    seq_cert certs[2];
    range_of(1, 2, blocks, certs);
    certs[0] = certs[1] = main_chain.certs[9];
    uint32_t accepted = 7;
    assert_int_equal(check(0, blocks, certs, 2, &accepted), 0);
    assert_int_equal(accepted, 0);
}

/* A block whose parent is not the previous block, or a first block whose
 * parent is not our tip, is SEQ_EMISMATCH. */
static void test_check_broken_link(void **state)
{
    (void)state;
    seq_block *blocks[3];
    seq_cert certs[3];
    range_of(1, 3, blocks, certs);
    seq_header h = blocks[1]->h;
    h.parent.b[0] ^= 1;
    seq_block *bad = NULL;
    assert_int_equal(seq_block_build(&bad, &h, blocks[1]->txs, blocks[1]->tx_count), 0);
    seq_cert bad_cert = cert_make(SEQ_VOTE_FINALIZE, bad, CHAIN_ID);
    blocks[1] = bad;
    certs[1] = bad_cert;
    uint32_t accepted = 5;
    assert_int_equal(check(0, blocks, certs, 3, &accepted), SEQ_EMISMATCH);
    assert_int_equal(accepted, 0);

    /* the right heights, but our tip is another block */
    range_of(1, 3, blocks, certs);
    seq_hash other_tip = zero_hash;
    other_tip.b[31] = 1;
    assert_int_equal(seq_sync_check(&vs, CHAIN_ID, 0, &other_tip, blocks, certs, 3, &accepted), SEQ_EMISMATCH);
    seq_block_free(bad);
}

/* A first block at another height than tip+1 is SEQ_EORDER (a stale answer). */
static void test_check_wrong_first_height(void **state)
{
    (void)state;
    seq_block *blocks[3];
    seq_cert certs[3];
    range_of(2, 3, blocks, certs);
    uint32_t accepted;
    assert_int_equal(check(0, blocks, certs, 3, &accepted), SEQ_EORDER);
    assert_int_equal(check(2, blocks, certs, 3, &accepted), SEQ_EORDER);
    assert_int_equal(check(1, blocks, certs, 3, &accepted), 0);
    assert_int_equal(accepted, 3);
}

/* Blocks of another chain (linked and certified there) are SEQ_ECHAIN_ID. */
static void test_check_wrong_chain(void **state)
{
    (void)state;
    chain other;
    chain_make(&other, OTHER_CHAIN_ID);
    uint32_t accepted;
    assert_int_equal(seq_sync_check(&vs, CHAIN_ID, 0, &zero_hash, other.blocks, other.certs, 3, &accepted),
                     SEQ_ECHAIN_ID);
    /* and our chain's blocks checked as another chain's */
    seq_block *blocks[3];
    seq_cert certs[3];
    range_of(1, 3, blocks, certs);
    assert_int_equal(seq_sync_check(&vs, OTHER_CHAIN_ID, 0, &zero_hash, blocks, certs, 3, &accepted),
                     SEQ_ECHAIN_ID);
    chain_free(&other);
}

/* A flipped signature byte fails verification, also in a certificate that
 * names the same block as one already verified in the answer. */
static void test_check_bad_signature(void **state)
{
    (void)state;
    seq_block *blocks[3];
    seq_cert certs[3];
    uint32_t accepted = 9;
    range_of(1, 3, blocks, certs);
    certs[1].sigs[0].b[5] ^= 0x40;
    assert_int_equal(check(0, blocks, certs, 3, &accepted), SEQ_EBADSIG);
    assert_int_equal(accepted, 0);

    /* a group: all three name block 3; the second copy is forged */
    range_of(1, 3, blocks, certs);
    certs[0] = certs[1] = certs[2] = main_chain.certs[2];
    certs[1].sigs[2].b[0] ^= 1;
    assert_int_equal(check(0, blocks, certs, 3, &accepted), SEQ_EBADSIG);
    assert_int_equal(accepted, 0);

    /* a copy with another view: its signatures are not over that view */
    range_of(1, 3, blocks, certs);
    certs[0] = certs[1] = certs[2] = main_chain.certs[2];
    certs[2].view += 1;
    assert_int_equal(check(0, blocks, certs, 3, &accepted), SEQ_EBADSIG);
}

/* A notarization is not a finalization, even with valid signatures. */
static void test_check_notarization_refused(void **state)
{
    (void)state;
    seq_block *blocks[3];
    seq_cert certs[3];
    range_of(1, 3, blocks, certs);
    certs[2] = cert_make(SEQ_VOTE_NOTARIZE, blocks[2], CHAIN_ID);
    assert_int_equal(seq_cert_verify(&certs[2], &vs, CHAIN_ID), 0);
    uint32_t accepted = 4;
    assert_int_not_equal(check(0, blocks, certs, 3, &accepted), 0);
    assert_int_equal(accepted, 0);
}

/* A certificate naming an earlier block of the answer (an ancestor) is SEQ_EMISMATCH. */
static void test_check_cert_for_ancestor(void **state)
{
    (void)state;
    seq_block *blocks[3];
    seq_cert certs[3];
    range_of(1, 3, blocks, certs);
    certs[2] = main_chain.certs[0];
    uint32_t accepted = 4;
    assert_int_equal(check(0, blocks, certs, 3, &accepted), SEQ_EMISMATCH);
    assert_int_equal(accepted, 0);
}

/* ---- planner -------------------------------------------------------------------------- */

static void sync_up(seq_sync *s, uint64_t peer_tip)
{
    seq_sync_init(s, N_VALIDATORS, SELF, RANGE, INFLIGHT, TIMEOUT_MS);
    for (uint32_t p = 1; p < N_VALIDATORS; p++) {
        seq_sync_peer(s, p, true);
        seq_sync_peer_tip(s, p, peer_tip);
    }
}

/* A SYNC_RESP shaped as seq_msg_decode makes it: owned arrays of owned blocks. */
static seq_msg resp_make(uint64_t from, uint32_t count, uint64_t tip)
{
    seq_msg m = {.kind = SEQ_MSG_SYNC_RESP, .owned = true};
    m.u.sync_resp.tip_height = tip;
    m.u.sync_resp.count = count;
    m.u.sync_resp.blocks = malloc(count * sizeof *m.u.sync_resp.blocks);
    m.u.sync_resp.certs = malloc(count * sizeof *m.u.sync_resp.certs);
    assert_non_null(m.u.sync_resp.blocks);
    assert_non_null(m.u.sync_resp.certs);
    for (uint32_t i = 0; i < count; i++) {
        m.u.sync_resp.blocks[i] = seq_block_clone(main_chain.blocks[from - 1 + i]);
        assert_non_null(m.u.sync_resp.blocks[i]);
        m.u.sync_resp.certs[i] = main_chain.certs[from - 1 + i];
    }
    return m;
}

/* Hands an answer to the planner; frees it when the planner does not take it. */
static bool answer(seq_sync *s, uint32_t peer, uint64_t from, uint32_t count)
{
    seq_msg m = resp_make(from, count, PEER_TIP);
    bool taken = seq_sync_answer(s, peer, &m);
    if (taken)
        assert_false(m.owned);
    seq_msg_release(&m);
    return taken;
}

static void assert_request(const seq_sync_request *r, uint32_t peer, uint64_t from, uint32_t count)
{
    assert_int_equal(r->peer, peer);
    assert_int_equal(r->from, from);
    assert_int_equal(r->count, count);
}

/* With every peer up and ahead, the plan is consecutive non-overlapping ranges,
 * one per peer in turn, up to inflight_max; nothing more while they are open. */
static void test_plan_ranges_round_robin(void **state)
{
    (void)state;
    seq_sync s;
    sync_up(&s, PEER_TIP);
    assert_int_equal(seq_sync_target(&s), PEER_TIP);
    seq_sync_request r[SEQ_SYNC_INFLIGHT_MAX];
    assert_int_equal(seq_sync_plan(&s, 0, 0, r, SEQ_SYNC_INFLIGHT_MAX), 3);
    assert_request(&r[0], 1, 1, RANGE);
    assert_request(&r[1], 2, 5, RANGE);
    assert_request(&r[2], 3, 9, RANGE);
    assert_int_equal(seq_sync_plan(&s, 1, 0, r, SEQ_SYNC_INFLIGHT_MAX), 0);
    assert_int_equal(s.requests_sent, 3);
    seq_sync_reset(&s);

    /* cap bounds one call; the last range stops at the target */
    sync_up(&s, 10);
    assert_int_equal(seq_sync_plan(&s, 0, 0, r, 2), 2);
    assert_request(&r[0], 1, 1, RANGE);
    assert_request(&r[1], 2, 5, RANGE);
    assert_int_equal(seq_sync_plan(&s, 0, 0, r, 2), 1);
    assert_request(&r[0], 3, 9, 2);
    seq_sync_reset(&s);
}

/* Never ask ourselves, a peer that is down, or one below the height asked for. */
static void test_plan_skips_self_down_and_short_peers(void **state)
{
    (void)state;
    seq_sync s;
    sync_up(&s, PEER_TIP);
    seq_sync_peer(&s, 2, false);
    seq_sync_peer_tip(&s, 3, 0);
    seq_sync_peer_tip(&s, SELF, 1000); /* ignored: we are not our own peer */
    seq_sync_request r[SEQ_SYNC_INFLIGHT_MAX];
    assert_int_equal(seq_sync_plan(&s, 0, 0, r, SEQ_SYNC_INFLIGHT_MAX), 3);
    for (uint32_t i = 0; i < 3; i++)
        assert_request(&r[i], 1, 1 + i * RANGE, RANGE);
    seq_sync_reset(&s);

    /* nobody ahead: nothing to plan */
    sync_up(&s, 0);
    assert_int_equal(seq_sync_plan(&s, 0, 0, r, SEQ_SYNC_INFLIGHT_MAX), 0);
    seq_sync_peer_tip(&s, 3, 2);
    seq_sync_peer(&s, 3, false);
    assert_int_equal(seq_sync_target(&s), 0);
    assert_int_equal(seq_sync_plan(&s, 0, 0, r, SEQ_SYNC_INFLIGHT_MAX), 0);
    seq_sync_reset(&s);
}

/* Answers are held; only the one continuing the tip is ready, in order. */
static void test_answers_held_until_they_continue_tip(void **state)
{
    (void)state;
    seq_sync s;
    sync_up(&s, PEER_TIP);
    seq_sync_request r[SEQ_SYNC_INFLIGHT_MAX];
    assert_int_equal(seq_sync_plan(&s, 0, 0, r, SEQ_SYNC_INFLIGHT_MAX), 3);

    assert_true(answer(&s, 2, 5, RANGE));
    assert_true(answer(&s, 3, 9, RANGE));
    assert_null(seq_sync_ready(&s));
    assert_true(answer(&s, 1, 1, RANGE));
    seq_sync_slot *slot = seq_sync_ready(&s);
    assert_non_null(slot);
    assert_int_equal(slot->from, 1);
    assert_int_equal(slot->peer, 1);
    uint32_t accepted = 0;
    assert_int_equal(check(0, slot->resp.u.sync_resp.blocks, slot->resp.u.sync_resp.certs,
                           slot->resp.u.sync_resp.count, &accepted), 0);
    assert_int_equal(accepted, RANGE);
    seq_sync_release(&s, slot);

    /* the tip moved to 4: the answer from 5 is next */
    assert_int_equal(seq_sync_plan(&s, 1, 4, r, SEQ_SYNC_INFLIGHT_MAX), 0);
    slot = seq_sync_ready(&s);
    assert_non_null(slot);
    assert_int_equal(slot->from, 5);
    seq_sync_release(&s, slot);
    assert_int_equal(seq_sync_plan(&s, 2, 8, r, SEQ_SYNC_INFLIGHT_MAX), 0);
    slot = seq_sync_ready(&s);
    assert_non_null(slot);
    assert_int_equal(slot->from, 9);
    seq_sync_release(&s, slot);
    assert_int_equal(seq_sync_plan(&s, 3, PEER_TIP, r, SEQ_SYNC_INFLIGHT_MAX), 0);
    assert_null(seq_sync_ready(&s));
    seq_sync_reset(&s);
}

/* An answer from another peer than the one asked, or for a range not asked,
 * is left to the caller; the sender's height is noted either way. */
static void test_answer_from_wrong_peer_or_range_not_taken(void **state)
{
    (void)state;
    seq_sync s;
    sync_up(&s, PEER_TIP);
    seq_sync_request r[SEQ_SYNC_INFLIGHT_MAX];
    assert_int_equal(seq_sync_plan(&s, 0, 0, r, SEQ_SYNC_INFLIGHT_MAX), 3);
    assert_false(answer(&s, 3, 1, RANGE)); /* 1.. was asked of peer 1 */
    assert_false(answer(&s, 1, 2, RANGE)); /* peer 1 was asked from 1 */
    assert_false(answer(&s, 1, 13, 2));    /* nobody was asked from 13 */
    assert_null(seq_sync_ready(&s));

    seq_msg m = resp_make(1, 0, 40);       /* a bare height report */
    assert_false(seq_sync_answer(&s, 2, &m));
    seq_msg_release(&m);
    assert_int_equal(s.peer_tip[2], 40);

    assert_true(answer(&s, 1, 1, RANGE));
    assert_false(answer(&s, 1, 1, RANGE)); /* answered already */
    assert_non_null(seq_sync_ready(&s));
    seq_sync_reset(&s);
}

/* When the tip moves past planned ranges (consensus finalized them), the
 * slots below it are dropped and the planner asks from tip+1, also when
 * the tip lands inside a range that was already answered. */
static void test_plan_drops_stale_slots(void **state)
{
    (void)state;
    seq_sync s;
    sync_up(&s, PEER_TIP);
    seq_sync_request r[SEQ_SYNC_INFLIGHT_MAX];
    assert_int_equal(seq_sync_plan(&s, 0, 0, r, SEQ_SYNC_INFLIGHT_MAX), 3);
    assert_true(answer(&s, 1, 1, RANGE));
    assert_true(answer(&s, 2, 5, RANGE));

    /* tip 4: slot [1,5) is stale, the rest stays; nothing new to ask */
    assert_int_equal(seq_sync_plan(&s, 1, 4, r, SEQ_SYNC_INFLIGHT_MAX), 0);
    seq_sync_slot *slot = seq_sync_ready(&s);
    assert_non_null(slot);
    assert_int_equal(slot->from, 5);

    /* tip 6 lands inside the answered [5,9): that answer can never apply
     * (it does not start at tip+1), so it goes and 7.. is asked again */
    uint32_t k = seq_sync_plan(&s, 2, 6, r, SEQ_SYNC_INFLIGHT_MAX);
    assert_int_equal(k, 1);
    assert_int_equal(r[0].from, 7);
    assert_int_equal(r[0].count, 2); /* stops short of [9,13), still open */
    for (uint32_t i = 0; i < SEQ_SYNC_INFLIGHT_MAX; i++)
        if (s.slots[i].used)
            assert_true(s.slots[i].from > 6);
    seq_sync_reset(&s);
}

/* A request unanswered for timeout_ms is given up, counted, and asked
 * again of another peer; answered ones are kept. */
static void test_plan_timeout_replans_elsewhere(void **state)
{
    (void)state;
    seq_sync s;
    sync_up(&s, PEER_TIP);
    seq_sync_request r[SEQ_SYNC_INFLIGHT_MAX];
    assert_int_equal(seq_sync_plan(&s, 100, 0, r, SEQ_SYNC_INFLIGHT_MAX), 3);
    assert_true(answer(&s, 2, 5, RANGE));
    assert_true(answer(&s, 3, 9, RANGE));

    assert_int_equal(seq_sync_plan(&s, 100 + TIMEOUT_MS - 1, 0, r, SEQ_SYNC_INFLIGHT_MAX), 0);
    assert_int_equal(s.timeouts, 0);
    assert_int_equal(seq_sync_plan(&s, 100 + TIMEOUT_MS, 0, r, SEQ_SYNC_INFLIGHT_MAX), 1);
    assert_int_equal(s.timeouts, 1);
    assert_int_equal(r[0].from, 1);
    assert_int_equal(r[0].count, RANGE);
    assert_int_not_equal(r[0].peer, 1);
    assert_int_not_equal(r[0].peer, SELF);

    /* the late answer of peer 1 is no longer taken; the new peer's is */
    assert_false(answer(&s, 1, 1, RANGE));
    assert_true(answer(&s, r[0].peer, 1, RANGE));
    assert_int_equal(seq_sync_ready(&s)->from, 1);
    seq_sync_reset(&s);
}

/* A peer going down frees its unanswered requests (asked again elsewhere)
 * but keeps what it already answered. */
static void test_peer_down_frees_its_slots(void **state)
{
    (void)state;
    seq_sync s;
    sync_up(&s, PEER_TIP);
    seq_sync_request r[SEQ_SYNC_INFLIGHT_MAX];
    assert_int_equal(seq_sync_plan(&s, 0, 0, r, SEQ_SYNC_INFLIGHT_MAX), 3);
    assert_true(answer(&s, 1, 1, RANGE));
    seq_sync_peer(&s, 1, false);
    seq_sync_peer(&s, 2, false);
    assert_int_equal(seq_sync_ready(&s)->from, 1); /* kept */
    assert_false(answer(&s, 2, 5, RANGE));         /* its request is gone */

    uint32_t k = seq_sync_plan(&s, 1, 0, r, SEQ_SYNC_INFLIGHT_MAX);
    assert_int_equal(k, 1);
    assert_request(&r[0], 3, 5, RANGE);
    assert_int_equal(s.timeouts, 0);
    seq_sync_reset(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_accepts_whole_range),
        cmocka_unit_test(test_check_group_accepts_prefix),
        cmocka_unit_test(test_check_replaces_certs_beyond_prefix),
        cmocka_unit_test(test_check_nothing_named_accepts_none),
        cmocka_unit_test(test_check_broken_link),
        cmocka_unit_test(test_check_wrong_first_height),
        cmocka_unit_test(test_check_wrong_chain),
        cmocka_unit_test(test_check_bad_signature),
        cmocka_unit_test(test_check_notarization_refused),
        cmocka_unit_test(test_check_cert_for_ancestor),
        cmocka_unit_test(test_plan_ranges_round_robin),
        cmocka_unit_test(test_plan_skips_self_down_and_short_peers),
        cmocka_unit_test(test_answers_held_until_they_continue_tip),
        cmocka_unit_test(test_answer_from_wrong_peer_or_range_not_taken),
        cmocka_unit_test(test_plan_drops_stale_slots),
        cmocka_unit_test(test_plan_timeout_replans_elsewhere),
        cmocka_unit_test(test_peer_down_frees_its_slots),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
