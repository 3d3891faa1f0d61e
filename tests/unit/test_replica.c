/* Unit tests of lib/replica.c: a real replica over a real LMDB store in a
 * mkdtemp() directory, real ed25519 keys, and an io whose callbacks record
 * what the replica sends, arms and delivers (and check the store as it sends). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consensus.h"
#include "errors.h"
#include "log.h"
#include "replica.h"
#include "store.h"
#include "types.h"

#define DIR_BYTES_MAX 64
#define PATH_BYTES_MAX (DIR_BYTES_MAX + 256 + 2)
#define CHAIN_ID 1
#define KEYS_N 4
#define TIMEOUT_MS 1000
#define T0 1000
#define TEST_MAP_BYTES (16u << 20)
#define TINY_MAP_BYTES (256u << 10)
#define SENDS_MAX 4096
#define DELIVERED_MAX 1024
#define TEST_BLOCKS_MAX 8
#define NS 5
#define SMALL_PAYLOAD_BYTES 16
/* Filling the tiny map: blocks of FILL_TXS big transactions, views spaced by
 * FILL_VIEW_STEP (a multiple of KEYS_N, so validator 1 leads the view after the
 * tip) to leave room for filler votes below the tip's view. */
#define FILL_TXS 5
#define FILL_PAYLOAD_BYTES 2048
#define FILL_BLOCKS_MAX 256
#define FILL_VIEW_STEP (KEYS_N * 4096)
#define FILL_TS_BASE 100ull /* below T0: blocks are not timed ahead of the node's clock */

_Static_assert(FILL_VIEW_STEP % KEYS_N == 0, "validator 1 must lead the view after the tip");

static seq_keypair *keys[KEYS_N];
static const seq_hash zero_hash;

/* What one send callback saw. */
typedef struct {
    uint32_t to;
    seq_msg_kind kind;
    seq_vote vote;  /* VOTE, or PROPOSE's vote */
    seq_hash hash;  /* BLOCK: the block's hash */
} sent;

typedef struct {
    char dir[DIR_BYTES_MAX];
    seq_validators vs;
    uint32_t self;
    seq_store *store;
    size_t map_bytes;
    seq_replica *r;
    sent sends[SENDS_MAX];
    uint32_t send_count;
    uint32_t own_votes_sent;
    uint32_t own_votes_not_durable; /* own votes the store did not hold when sent */
    uint64_t deadline;
    uint32_t timers_set;
    uint64_t delivered[DELIVERED_MAX]; /* heights, in delivery order */
    uint32_t delivered_count;
    uint32_t fatal_count;
    int fatal_err;
    seq_vote *votes_buf; /* SEQ_RESTORE_VOTES_MAX, for store checks */
    seq_block *blocks[TEST_BLOCKS_MAX];
    uint32_t block_count;
} fixture;

/* ---- fixture ------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    if (seq_test_keys_make(keys, KEYS_N) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    seq_test_keys_free(keys, KEYS_N);
    return 0;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    fx->votes_buf = malloc(SEQ_RESTORE_VOTES_MAX * sizeof *fx->votes_buf);
    if (!fx->votes_buf || seq_test_tmpdir(fx->dir, sizeof fx->dir, "replica") != 0) {
        free(fx->votes_buf);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

/* Removes every file of the (flat) directory, then the directory. */
static int teardown(void **state)
{
    fixture *fx = *state;
    seq_replica_free(fx->r);
    seq_store_close(fx->store);
    for (uint32_t i = 0; i < fx->block_count; i++)
        seq_block_free(fx->blocks[i]);
    int rc = seq_test_rmtree(fx->dir);
    free(fx->votes_buf);
    free(fx);
    return rc;
}

/* ---- io callbacks --------------------------------------------------------------- */

static bool vote_same(const seq_vote *a, const seq_vote *b)
{
    return a->kind == b->kind && a->view == b->view && a->signer == b->signer &&
           seq_hash_eq(&a->hash, &b->hash) && memcmp(a->sig.b, b->sig.b, SEQ_SIG_BYTES) == 0;
}

/* Whether the store holds exactly this own vote right now. */
/* Durable: stored, or at or below the store's finalized view. A step that
 * finalizes the view it votes in writes vote and block in one transaction,
 * and the commit prunes votes at or below the new tip at once: the
 * consensus never votes there again, so they are no longer needed. */
static bool store_has_vote(fixture *fx, const seq_vote *v)
{
    seq_store_tip tip;
    if (seq_store_tip_get(fx->store, &tip) == 0 && tip.height > 0 && v->view <= tip.view)
        return true;
    size_t n = 0;
    if (seq_store_votes_load(fx->store, fx->votes_buf, SEQ_RESTORE_VOTES_MAX, &n) != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (vote_same(&fx->votes_buf[i], v))
            return true;
    return false;
}

static void io_send(void *ctx, uint32_t to, const seq_msg *m)
{
    fixture *fx = ctx;
    assert_true(fx->send_count < SENDS_MAX);
    sent *s = &fx->sends[fx->send_count++];
    memset(s, 0, sizeof *s);
    s->to = to;
    s->kind = m->kind;
    if (m->kind == SEQ_MSG_VOTE)
        s->vote = m->u.vote;
    else if (m->kind == SEQ_MSG_PROPOSE)
        s->vote = m->u.propose.vote;
    else if (m->kind == SEQ_MSG_BLOCK)
        s->hash = m->u.block.block->hash;
    if ((m->kind == SEQ_MSG_VOTE || m->kind == SEQ_MSG_PROPOSE) && s->vote.signer == fx->self) {
        fx->own_votes_sent++;
        if (!store_has_vote(fx, &s->vote))
            fx->own_votes_not_durable++;
    }
}

static void io_set_timer(void *ctx, uint64_t deadline_ms)
{
    fixture *fx = ctx;
    fx->deadline = deadline_ms;
    fx->timers_set++;
}

static void io_delivered(void *ctx, const seq_block *b, const seq_cert *cert)
{
    fixture *fx = ctx;
    assert_true(fx->delivered_count < DELIVERED_MAX);
    assert_int_equal(cert->kind, SEQ_VOTE_FINALIZE);
    fx->delivered[fx->delivered_count++] = b->h.height;
}

static void io_fatal(void *ctx, int err, const char *what)
{
    fixture *fx = ctx;
    (void)what;
    fx->fatal_count++;
    fx->fatal_err = err;
}

/* ---- building the node ------------------------------------------------------------- */

static void validators_of(fixture *fx, uint32_t n, uint32_t self)
{
    seq_pubkey pks[KEYS_N];
    assert_true(n <= KEYS_N && self < n);
    for (uint32_t i = 0; i < n; i++)
        pks[i] = keys[i]->pk;
    assert_int_equal(seq_validators_init(&fx->vs, pks, n), 0);
    fx->self = self;
}

static void store_open(fixture *fx, size_t map_bytes)
{
    seq_store_opts o = {.chain_id = CHAIN_ID, .map_bytes = map_bytes};
    assert_int_equal(seq_store_open(&fx->store, fx->dir, &o), 0);
    fx->map_bytes = map_bytes;
}

static void replica_open(fixture *fx)
{
    seq_replica_config cfg = {
        .consensus = {.chain_id = CHAIN_ID, .validators = &fx->vs, .self = fx->self, .key = keys[fx->self],
                      .view_timeout_ms = TIMEOUT_MS},
        .mempool = {.txs_max = 1024, .bytes_max = 1u << 20, .tx_bytes_max = 4096, .namespaces_max = 16,
                    .recent_max = 1024},
        .block_txs_max = 64,
        .block_bytes_max = 1u << 20,
        .store = fx->store,
    };
    seq_replica_io io = {.ctx = fx, .send = io_send, .set_timer = io_set_timer, .delivered = io_delivered,
                         .fatal = io_fatal};
    assert_int_equal(seq_replica_new(&fx->r, &cfg, &io), 0);
}

/* A node: validators 0..n-1, we are self, a store with map_bytes. */
static void node_open(fixture *fx, uint32_t n, uint32_t self, size_t map_bytes)
{
    validators_of(fx, n, self);
    store_open(fx, map_bytes);
    replica_open(fx);
}

/* Closes replica and store, as a crash between events would, and reopens both. */
static void node_restart(fixture *fx)
{
    seq_replica_free(fx->r);
    fx->r = NULL;
    seq_store_close(fx->store);
    fx->store = NULL;
    store_open(fx, fx->map_bytes);
    replica_open(fx);
}

/* ---- messages from the other validators -------------------------------------------------- */

static seq_block *block_make(fixture *fx, const seq_header *tmpl, uint8_t tag)
{
    uint8_t payload[SMALL_PAYLOAD_BYTES];
    memset(payload, tag, sizeof payload);
    seq_tx tx = {.ns = NS, .len = sizeof payload, .data = payload};
    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, tmpl, &tx, 1), 0);
    assert_true(fx->block_count < TEST_BLOCKS_MAX);
    fx->blocks[fx->block_count++] = b;
    return b;
}

/* A first block (parent: genesis) proposed by the leader of view 1. */
static seq_block *block_view1(fixture *fx, uint8_t tag)
{
    seq_header h = {.chain_id = CHAIN_ID, .height = 1, .view = 1, .leader = seq_leader_of(&fx->vs, 1),
                    .timestamp_ms = T0};
    return block_make(fx, &h, tag);
}

static seq_vote vote_make(uint8_t kind, uint64_t view, const seq_hash *hash, uint32_t signer)
{
    return seq_test_vote(kind, view, hash, signer, keys[signer], CHAIN_ID);
}

static int receive_proposal(fixture *fx, seq_block *b)
{
    seq_msg m;
    memset(&m, 0, sizeof m);
    m.kind = SEQ_MSG_PROPOSE;
    m.u.propose.block = b;
    m.u.propose.vote = vote_make(SEQ_VOTE_NOTARIZE, b->h.view, &b->hash, b->h.leader);
    return seq_replica_receive(fx->r, T0, b->h.leader, &m);
}

static void receive_vote(fixture *fx, uint8_t kind, uint64_t view, const seq_hash *hash, uint32_t signer)
{
    seq_msg m;
    memset(&m, 0, sizeof m);
    m.kind = SEQ_MSG_VOTE;
    m.u.vote = vote_make(kind, view, hash, signer);
    assert_int_equal(seq_replica_receive(fx->r, T0, signer, &m), 0);
}

/* Own votes the node sent (VOTE or PROPOSE) with this kind and view, from index `from` on. */
static uint32_t own_votes_sent(const fixture *fx, uint32_t from, uint8_t kind, uint64_t view)
{
    uint32_t n = 0;
    for (uint32_t i = from; i < fx->send_count; i++) {
        const sent *s = &fx->sends[i];
        if ((s->kind == SEQ_MSG_VOTE || s->kind == SEQ_MSG_PROPOSE) && s->vote.signer == fx->self &&
            s->vote.kind == kind && s->vote.view == view)
            n++;
    }
    return n;
}

static const sent *own_vote_find(const fixture *fx, uint8_t kind, uint64_t view)
{
    for (uint32_t i = 0; i < fx->send_count; i++) {
        const sent *s = &fx->sends[i];
        if ((s->kind == SEQ_MSG_VOTE || s->kind == SEQ_MSG_PROPOSE) && s->vote.signer == fx->self &&
            s->vote.kind == kind && s->vote.view == view)
            return s;
    }
    return NULL;
}

/* ---- tests ------------------------------------------------------------------------------- */

/* A one-validator network finalizes the submitted transactions into the store
 * (tip, tx index), takes them out of the mempool, refuses them afterwards as
 * duplicates, and after a timeout finalizes a transaction submitted later. */
static void test_single_validator_finalizes(void **state)
{
    fixture *fx = *state;
    node_open(fx, 1, 0, TEST_MAP_BYTES);
    const char *payloads[3] = {"alpha", "beta", "gamma"};
    const seq_ns nss[3] = {2, 1, 2};
    seq_hash ids[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(seq_replica_submit(fx->r, nss[i], (const uint8_t *)payloads[i],
                                            (uint32_t)strlen(payloads[i]), &ids[i]), 0);
    seq_replica_status st;
    seq_replica_status_get(fx->r, &st);
    assert_int_equal(st.mempool_txs, 3);

    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    seq_store_tip tip;
    assert_int_equal(seq_store_tip_get(fx->store, &tip), 0);
    assert_true(tip.height >= 1);
    assert_int_equal(fx->delivered_count, tip.height);
    for (uint32_t i = 0; i < fx->delivered_count; i++)
        assert_int_equal(fx->delivered[i], i + 1);
    for (int i = 0; i < 3; i++) {
        uint64_t height = 0;
        uint32_t index = 99;
        assert_int_equal(seq_store_tx_find(fx->store, &ids[i], &height, &index), 0);
        assert_int_equal(height, 1);
        assert_int_equal(index, nss[i] == 1 ? 0 : (i == 0 ? 1 : 2)); /* sorted by namespace, FIFO inside */
    }
    seq_replica_status_get(fx->r, &st);
    assert_int_equal(st.mempool_txs, 0);
    assert_int_equal(st.finalized_txs, 3);
    assert_int_equal(st.consensus.final_height, tip.height);
    for (int i = 0; i < 3; i++)
        assert_int_equal(seq_replica_submit(fx->r, nss[i], (const uint8_t *)payloads[i],
                                            (uint32_t)strlen(payloads[i]), NULL), SEQ_EDUPLICATE);

    seq_hash late;
    assert_int_equal(seq_replica_submit(fx->r, 3, (const uint8_t *)"late", 4, &late), 0);
    uint64_t tip_before = tip.height;
    assert_int_equal(seq_replica_timeout(fx->r, fx->deadline), 0);
    uint64_t height = 0;
    uint32_t index = 0;
    assert_int_equal(seq_store_tx_find(fx->store, &late, &height, &index), 0);
    assert_true(height > tip_before);
    assert_int_equal(fx->own_votes_not_durable, 0);
    assert_true(fx->own_votes_sent >= 2 * tip.height);
}

/* With n = 4 every own vote (notarize, then finalize) is in the store at the
 * moment the send callback sees it. */
static void test_vote_durable_before_send(void **state)
{
    fixture *fx = *state;
    node_open(fx, KEYS_N, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    seq_block *b = block_view1(fx, 'a');
    assert_int_equal(receive_proposal(fx, b), 0);
    const sent *nz = own_vote_find(fx, SEQ_VOTE_NOTARIZE, 1);
    assert_non_null(nz);
    assert_int_equal(nz->to, SEQ_TO_ALL);
    assert_memory_equal(nz->vote.hash.b, b->hash.b, SEQ_HASH_BYTES);
    assert_int_equal(seq_vote_verify(&nz->vote, &fx->vs, CHAIN_ID), 0);

    receive_vote(fx, SEQ_VOTE_NOTARIZE, 1, &b->hash, 2); /* leader 1, us, 2: notarized */
    const sent *fin = own_vote_find(fx, SEQ_VOTE_FINALIZE, 1);
    assert_non_null(fin);
    assert_memory_equal(fin->vote.hash.b, b->hash.b, SEQ_HASH_BYTES);
    assert_int_equal(fx->own_votes_sent, 2);
    assert_int_equal(fx->own_votes_not_durable, 0);
}

/* Fills the tiny-map store: big finalized blocks until SEQ_EMAP_FULL, then
 * filler votes below the tip's view (invisible to votes_load) until the small
 * writes fail too. Returns the tip block. */
static const seq_block *store_fill(fixture *fx)
{
    static uint8_t payloads[FILL_TXS][FILL_PAYLOAD_BYTES];
    seq_hash parent = zero_hash;
    seq_block *prev = NULL;
    int err = 0;
    uint64_t h = 1;
    for (; h <= FILL_BLOCKS_MAX; h++) {
        seq_tx txs[FILL_TXS];
        for (uint32_t i = 0; i < FILL_TXS; i++) {
            memset(payloads[i], (int)(h + i), FILL_PAYLOAD_BYTES);
            snprintf((char *)payloads[i], FILL_PAYLOAD_BYTES, "fill h=%llu i=%u", (unsigned long long)h, i);
            txs[i] = (seq_tx){.ns = NS, .len = FILL_PAYLOAD_BYTES, .data = payloads[i]};
        }
        seq_header tmpl = {.chain_id = CHAIN_ID, .height = h, .view = h * FILL_VIEW_STEP, .parent = parent,
                           .parent_view = (h - 1) * FILL_VIEW_STEP,
                           .leader = seq_leader_of(&fx->vs, h * FILL_VIEW_STEP),
                           .timestamp_ms = FILL_TS_BASE + h};
        seq_block *b = NULL;
        assert_int_equal(seq_block_build(&b, &tmpl, txs, FILL_TXS), 0);
        seq_cert cert;
        memset(&cert, 0, sizeof cert); /* the store keeps certificate bytes, unchecked */
        cert.kind = SEQ_VOTE_FINALIZE;
        cert.view = b->h.view;
        cert.hash = b->hash;
        seq_store_final item = {.block = b, .cert = &cert};
        err = seq_store_commit_finalized(fx->store, &item, 1);
        if (err) {
            seq_block_free(b);
            break;
        }
        seq_block_free(prev);
        prev = b;
        parent = b->hash;
    }
    assert_int_equal(err, SEQ_EMAP_FULL);
    assert_non_null(prev);
    assert_true(fx->block_count < TEST_BLOCKS_MAX);
    fx->blocks[fx->block_count++] = prev;

    err = 0;
    for (uint64_t view = 1; view < prev->h.view && !err; view++) {
        seq_hash filler;
        memset(filler.b, (int)(view & 0xff), sizeof filler.b);
        seq_vote v = vote_make(SEQ_VOTE_NOTARIZE, view, &filler, fx->self);
        err = seq_store_vote_put(fx->store, &v);
    }
    assert_int_equal(err, SEQ_EMAP_FULL);
    return prev;
}

/* A vote the store cannot persist is fatal: io->fatal gets the store error,
 * the vote is never sent, nothing is sent after the failed write, and every
 * later call returns an error without sending anything. */
static void test_store_failure_is_fatal_and_silent(void **state)
{
    fixture *fx = *state;
    validators_of(fx, KEYS_N, 0);
    store_open(fx, TINY_MAP_BYTES);
    const seq_block *tip = store_fill(fx);
    replica_open(fx);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    seq_replica_status st;
    seq_replica_status_get(fx->r, &st);
    assert_int_equal(st.consensus.view, tip->h.view + 1);

    seq_header h = {.chain_id = CHAIN_ID, .height = tip->h.height + 1, .view = tip->h.view + 1,
                    .parent = tip->hash, .parent_view = tip->h.view, .leader = 1,
                    .timestamp_ms = tip->h.timestamp_ms + 1};
    seq_block *b = block_make(fx, &h, 'z');
    uint32_t sends_before = fx->send_count;
    assert_int_equal(receive_proposal(fx, b), SEQ_EMAP_FULL);
    assert_int_equal(fx->fatal_count, 1);
    assert_int_equal(fx->fatal_err, SEQ_EMAP_FULL);
    assert_int_equal(fx->send_count, sends_before);
    assert_int_equal(fx->own_votes_sent, 0);
    size_t n = 99;
    assert_int_equal(seq_store_votes_load(fx->store, fx->votes_buf, SEQ_RESTORE_VOTES_MAX, &n), 0);
    assert_int_equal(n, 0);

    assert_true(seq_replica_timeout(fx->r, fx->deadline + TIMEOUT_MS) < 0);
    assert_true(receive_proposal(fx, b) < 0);
    assert_true(seq_replica_start(fx->r, T0) < 0);
    assert_int_equal(fx->send_count, sends_before);
    assert_int_equal(fx->fatal_count, 1);
}

/* After a restart the node does not vote for a different proposal of the view
 * it already voted in, nor again for the same one: the store keeps one vote. */
static void test_restart_does_not_revote(void **state)
{
    fixture *fx = *state;
    node_open(fx, KEYS_N, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    seq_block *first = block_view1(fx, 'a');
    seq_block *second = block_view1(fx, 'b');
    assert_int_equal(receive_proposal(fx, first), 0);
    assert_int_equal(own_votes_sent(fx, 0, SEQ_VOTE_NOTARIZE, 1), 1);

    node_restart(fx);
    uint32_t mark = fx->send_count;
    assert_int_equal(seq_replica_start(fx->r, T0 + 1), 0);
    assert_int_equal(receive_proposal(fx, second), 0);
    assert_int_equal(receive_proposal(fx, first), 0);
    assert_int_equal(own_votes_sent(fx, mark, SEQ_VOTE_NOTARIZE, 1), 0);

    size_t n = 0;
    assert_int_equal(seq_store_votes_load(fx->store, fx->votes_buf, SEQ_RESTORE_VOTES_MAX, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(fx->votes_buf[0].kind, SEQ_VOTE_NOTARIZE);
    assert_memory_equal(fx->votes_buf[0].hash.b, first->hash.b, SEQ_HASH_BYTES);
}

/* A BLOCK_REQ for a finalized block the consensus no longer holds is answered
 * from the store with that block; an unknown hash gets no answer. */
static void test_block_req_served_from_store(void **state)
{
    fixture *fx = *state;
    node_open(fx, KEYS_N, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    seq_block *b = block_view1(fx, 'a');
    assert_int_equal(receive_proposal(fx, b), 0);
    for (uint32_t signer = 1; signer <= 3; signer++)
        receive_vote(fx, SEQ_VOTE_FINALIZE, 1, &b->hash, signer);
    assert_int_equal(fx->delivered_count, 1);
    seq_store_tip tip;
    assert_int_equal(seq_store_tip_get(fx->store, &tip), 0);
    assert_int_equal(tip.height, 1);
    assert_memory_equal(tip.hash.b, b->hash.b, SEQ_HASH_BYTES);
    seq_replica_status st;
    seq_replica_status_get(fx->r, &st);
    assert_int_equal(st.consensus.blocks_held, 0);

    seq_msg req = {.kind = SEQ_MSG_BLOCK_REQ, .u.block_req.hash = b->hash};
    uint32_t mark = fx->send_count;
    assert_int_equal(seq_replica_receive(fx->r, T0, 2, &req), 0);
    assert_int_equal(fx->send_count, mark + 1);
    assert_int_equal(fx->sends[mark].to, 2);
    assert_int_equal(fx->sends[mark].kind, SEQ_MSG_BLOCK);
    assert_memory_equal(fx->sends[mark].hash.b, b->hash.b, SEQ_HASH_BYTES);

    memset(req.u.block_req.hash.b, 0x77, SEQ_HASH_BYTES);
    assert_int_equal(seq_replica_receive(fx->r, T0, 2, &req), 0);
    assert_int_equal(fx->send_count, mark + 1);
}

int main(void)
{
    seq_log_set_level(SEQ_LOG_OFF); /* the fatal test logs by design; the asserts say it all */
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_single_validator_finalizes),
        T(test_vote_durable_before_send),
        T(test_store_failure_is_fatal_and_silent),
        T(test_restart_does_not_revote),
        T(test_block_req_served_from_store),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
