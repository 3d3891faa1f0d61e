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
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consensus.h"
#include "errors.h"
#include "log.h"
#include "replica.h"
#include "store.h"
#include "sync.h"
#include "types.h"
#include "votelog.h"

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
#define TEST_BLOCKS_MAX 16
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
#define SYNC_K 4 /* blocks of the synced chain; leader of view SYNC_K + 1 is validator 1, not us */
#define EMPTY_DELAY_MS 200
#define INTERVAL_MS 10

_Static_assert(FILL_VIEW_STEP % KEYS_N == 0, "validator 1 must lead the view after the tip");
_Static_assert((SYNC_K + 1) % KEYS_N == 1, "validator 1 must lead the view after the synced tip");

static seq_keypair *keys[KEYS_N];
static const seq_hash zero_hash;

/* What one send callback saw. */
typedef struct {
    uint32_t to;
    seq_msg_kind kind;
    seq_vote vote;  /* VOTE, or PROPOSE's vote */
    seq_hash hash;  /* BLOCK: the block's hash; BLOCK_REQ: the hash asked for */
    bool ids_only;  /* PROPOSE: to travel compact */
    uint32_t txs;   /* TXS: how many */
    bool ids_ok;    /* TXS: every id is its transaction's */
    seq_hash first_id; /* TXS: the first transaction's id */
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
    seq_hash delivered_hash[DELIVERED_MAX];
    uint32_t delivered_txs[DELIVERED_MAX];
    uint32_t delivered_count;
    uint32_t fatal_count;
    int fatal_err;
    seq_vote *votes_buf; /* SEQ_RESTORE_VOTES_MAX, for store checks */
    seq_block *blocks[TEST_BLOCKS_MAX];
    uint32_t block_count;
    uint64_t empty_block_delay_ms; /* for replica_open */
    uint64_t block_interval_min_ms;
    uint64_t tx_ttl_ms;            /* for replica_open */
    uint32_t mempool_txs_max;      /* for replica_open; 0: 1024 */
    bool compact;                  /* for replica_open: compact_proposals */
    uint64_t block_bytes_max;      /* for replica_open; 0: 1 MiB */
    seq_hash dropped[DELIVERED_MAX];
    int dropped_reason[DELIVERED_MAX];
    uint32_t dropped_count;
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
/* The file size limit as it was before a test lowered it (fsize_limited). */
static struct rlimit fsize_before;
static bool fsize_lowered;

static void fsize_restore(void)
{
    if (fsize_lowered)
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &fsize_before), 0);
    fsize_lowered = false;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    fsize_restore();
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
    else if (m->kind == SEQ_MSG_PROPOSE) {
        s->vote = m->u.propose.vote;
        s->ids_only = m->u.propose.ids_only;
    } else if (m->kind == SEQ_MSG_BLOCK)
        s->hash = m->u.block.block->hash;
    else if (m->kind == SEQ_MSG_BLOCK_REQ)
        s->hash = m->u.block_req.hash;
    else if (m->kind == SEQ_MSG_TXS) {
        s->txs = m->u.txs.count;
        s->ids_ok = true;
        for (uint32_t i = 0; i < m->u.txs.count; i++) {
            seq_tx t = m->u.txs.txs[i];
            seq_tx_compute_id(&t);
            s->ids_ok &= seq_hash_eq(&t.id, &m->u.txs.txs[i].id);
        }
        if (m->u.txs.count > 0)
            s->first_id = m->u.txs.txs[0].id;
    }
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
    fx->delivered_hash[fx->delivered_count] = b->hash;
    fx->delivered_txs[fx->delivered_count] = b->tx_count;
    fx->delivered[fx->delivered_count++] = b->h.height;
}

static void io_dropped(void *ctx, const seq_hash *ids, uint32_t n, int reason)
{
    fixture *fx = ctx;
    for (uint32_t i = 0; i < n; i++) {
        assert_true(fx->dropped_count < DELIVERED_MAX);
        fx->dropped_reason[fx->dropped_count] = reason;
        fx->dropped[fx->dropped_count++] = ids[i];
    }
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
        .mempool = {.txs_max = fx->mempool_txs_max ? fx->mempool_txs_max : 1024, .bytes_max = 1u << 20,
                    .tx_bytes_max = 4096, .namespaces_max = 16,
                    .recent_max = 1024},
        .block_txs_max = 64,
        .block_bytes_max = fx->block_bytes_max ? fx->block_bytes_max : 1u << 20,
        .store = fx->store,
        .empty_block_delay_ms = fx->empty_block_delay_ms,
        .block_interval_min_ms = fx->block_interval_min_ms,
        .tx_ttl_ms = fx->tx_ttl_ms,
        .compact_proposals = fx->compact,
    };
    seq_replica_io io = {.ctx = fx, .send = io_send, .set_timer = io_set_timer, .delivered = io_delivered,
                         .dropped = io_dropped, .fatal = io_fatal};
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

static int receive_vote_rc(fixture *fx, uint8_t kind, uint64_t view, const seq_hash *hash, uint32_t signer)
{
    seq_msg m;
    memset(&m, 0, sizeof m);
    m.kind = SEQ_MSG_VOTE;
    m.u.vote = vote_make(kind, view, hash, signer);
    return seq_replica_receive(fx->r, T0, signer, &m);
}

static void receive_vote(fixture *fx, uint8_t kind, uint64_t view, const seq_hash *hash, uint32_t signer)
{
    assert_int_equal(receive_vote_rc(fx, kind, view, hash, signer), 0);
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


/* ---- a finalized chain, as range sync fetches it ------------------------------------------ */

static seq_block *block_keep(fixture *fx, seq_block *b)
{
    assert_true(fx->block_count < TEST_BLOCKS_MAX);
    fx->blocks[fx->block_count++] = b;
    return b;
}

/* The one transaction of chain block `height` (variant `tag`), so that a test
 * can submit it first and see it leave the mempool. */
static seq_tx chain_tx(uint64_t height, uint8_t tag, uint8_t payload[SMALL_PAYLOAD_BYTES])
{
    memset(payload, 0, SMALL_PAYLOAD_BYTES);
    int len = snprintf((char *)payload, SMALL_PAYLOAD_BYTES, "chain%c h=%llu", tag, (unsigned long long)height);
    return (seq_tx){.ns = NS, .len = (uint32_t)len, .data = payload};
}

/* A block of view = height (consecutive views need no nullifications), child
 * of parent (NULL: the genesis), led by the view's leader, with the one
 * transaction chain_tx(height, tag). */
static seq_block *chain_block(fixture *fx, uint64_t height, const seq_block *parent, uint8_t tag, uint64_t ts)
{
    uint8_t payload[SMALL_PAYLOAD_BYTES];
    seq_tx tx = chain_tx(height, tag, payload);
    seq_header h = {.chain_id = CHAIN_ID, .height = height, .view = height,
                    .parent = parent ? parent->hash : zero_hash, .parent_view = parent ? parent->h.view : 0,
                    .leader = seq_leader_of(&fx->vs, height), .timestamp_ms = ts};
    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, &h, &tx, 1), 0);
    return block_keep(fx, b);
}

/* A real finalization of b: finalize votes of validators 1..3, a quorum of 4. */
static seq_cert finalization_of(const fixture *fx, const seq_block *b)
{
    seq_vote votes[KEYS_N - 1];
    for (uint32_t i = 0; i < KEYS_N - 1; i++)
        votes[i] = vote_make(SEQ_VOTE_FINALIZE, b->h.view, &b->hash, i + 1);
    seq_cert c;
    assert_int_equal(seq_cert_build(&c, &fx->vs, votes, KEYS_N - 1), 0);
    return c;
}

typedef struct {
    seq_block *blocks[SYNC_K]; /* blocks[i] is height i + 1 */
    seq_cert certs[SYNC_K];
    seq_store_final items[SYNC_K];
} synced_chain;

/* Heights 1..SYNC_K with their certificates, timed before T0, and passed by
 * seq_sync_check as the node checks a fetched range before committing it. */
static void synced_chain_make(fixture *fx, synced_chain *c)
{
    const seq_block *parent = NULL;
    for (uint32_t i = 0; i < SYNC_K; i++) {
        c->blocks[i] = chain_block(fx, i + 1, parent, 's', FILL_TS_BASE + i);
        c->certs[i] = finalization_of(fx, c->blocks[i]);
        c->items[i] = (seq_store_final){c->blocks[i], &c->certs[i]};
        parent = c->blocks[i];
    }
    uint32_t accepted = 0;
    assert_int_equal(seq_sync_check(&fx->vs, CHAIN_ID, 0, &zero_hash, c->blocks, c->certs, SYNC_K, &accepted), 0);
    assert_int_equal(accepted, SYNC_K);
}

/* Submits the transaction of chain block `height` (variant tag); its id. */
static seq_hash submit_chain_tx(fixture *fx, uint64_t height, uint8_t tag)
{
    uint8_t payload[SMALL_PAYLOAD_BYTES];
    seq_tx tx = chain_tx(height, tag, payload);
    seq_hash id;
    assert_int_equal(seq_replica_submit(fx->r, tx.ns, tx.data, tx.len, &id), 0);
    return id;
}

static void assert_tip(fixture *fx, uint64_t height, const seq_hash *hash)
{
    seq_store_tip tip;
    assert_int_equal(seq_store_tip_get(fx->store, &tip), 0);
    assert_int_equal(tip.height, height);
    assert_memory_equal(tip.hash.b, hash->b, SEQ_HASH_BYTES);
}

/* Leader proposal, our notarize vote, notarize and finalize votes of 1..3:
 * the consensus finalizes b (we vote for it, and it gathers a quorum). */
static void finalize_by_peers(fixture *fx, seq_block *b)
{
    assert_int_equal(receive_proposal(fx, b), 0);
    assert_non_null(own_vote_find(fx, SEQ_VOTE_NOTARIZE, b->h.view));
    for (uint32_t signer = 1; signer < KEYS_N; signer++)
        if (signer != b->h.leader)
            receive_vote(fx, SEQ_VOTE_NOTARIZE, b->h.view, &b->hash, signer);
    assert_non_null(own_vote_find(fx, SEQ_VOTE_FINALIZE, b->h.view));
    for (uint32_t signer = 1; signer < KEYS_N; signer++)
        receive_vote(fx, SEQ_VOTE_FINALIZE, b->h.view, &b->hash, signer);
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

/* Fills the tiny-map store with big finalized blocks until SEQ_EMAP_FULL.
 * Returns the tip block. */
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
    return prev;
}

/* The vote log's next append fails with a real kernel error: the process may
 * not grow a file past the log's size now (RLIMIT_FSIZE; SIGXFSZ ignored, so
 * the write returns EFBIG). Teardown lifts the limit. */
static void votelog_cannot_grow(fixture *fx)
{
    char path[DIR_BYTES_MAX + sizeof "/" SEQ_VOTELOG_FILE_A];
    snprintf(path, sizeof path, "%s/%s", fx->dir, SEQ_VOTELOG_FILE_A);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &fsize_before), 0);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit low = {.rlim_cur = (rlim_t)st.st_size, .rlim_max = fsize_before.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
    fsize_lowered = true;
}

/* A vote the store cannot persist is fatal: io->fatal gets the store error,
 * the vote is never sent, nothing is sent after the failed write, and every
 * later call returns an error without sending anything. The store's LMDB map
 * is full too: the vote log does not depend on it. */
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
    votelog_cannot_grow(fx);
    assert_int_equal(receive_proposal(fx, b), SEQ_EIO);
    fsize_restore();
    assert_int_equal(fx->fatal_count, 1);
    assert_int_equal(fx->fatal_err, SEQ_EIO);
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

/* Range sync of heights 1..SYNC_K into a node at height 0: the store tip moves
 * to SYNC_K, each block is delivered once in height order, its pending
 * transaction leaves the mempool (others stay), and the consensus resumes at
 * the new tip: it votes for and finalizes the next proposal, and ignores the
 * synced blocks' own messages replayed. */
static void test_commit_synced_moves_tip_and_restarts_consensus(void **state)
{
    fixture *fx = *state;
    node_open(fx, KEYS_N, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    synced_chain c;
    synced_chain_make(fx, &c);
    seq_hash in_block1 = submit_chain_tx(fx, 1, 's');
    seq_hash in_block3 = submit_chain_tx(fx, 3, 's');
    seq_hash stays = submit_chain_tx(fx, SYNC_K + 1, 'x');
    uint32_t sends_before = fx->send_count;

    assert_int_equal(seq_replica_commit_synced(fx->r, T0, c.items, SYNC_K), 0);
    assert_tip(fx, SYNC_K, &c.blocks[SYNC_K - 1]->hash);
    assert_int_equal(fx->delivered_count, SYNC_K);
    for (uint32_t i = 0; i < SYNC_K; i++) {
        assert_int_equal(fx->delivered[i], i + 1);
        assert_memory_equal(fx->delivered_hash[i].b, c.blocks[i]->hash.b, SEQ_HASH_BYTES);
    }
    assert_false(seq_replica_contains(fx->r, &in_block1));
    assert_false(seq_replica_contains(fx->r, &in_block3));
    assert_true(seq_replica_contains(fx->r, &stays));
    uint8_t payload[SMALL_PAYLOAD_BYTES];
    seq_tx synced_tx = chain_tx(2, 's', payload);
    assert_int_equal(seq_replica_submit(fx->r, synced_tx.ns, synced_tx.data, synced_tx.len, NULL), SEQ_EDUPLICATE);
    seq_replica_status st;
    seq_replica_status_get(fx->r, &st);
    assert_int_equal(st.mempool_txs, 1);
    assert_int_equal(st.finalized_txs, SYNC_K);
    assert_int_equal(st.consensus.final_height, SYNC_K);
    assert_int_equal(st.consensus.final_view, SYNC_K);
    assert_memory_equal(st.consensus.final_hash.b, c.blocks[SYNC_K - 1]->hash.b, SEQ_HASH_BYTES);
    assert_int_equal(st.consensus.view, SYNC_K + 1);
    assert_int_equal(own_votes_sent(fx, sends_before, SEQ_VOTE_NOTARIZE, SYNC_K + 1), 0);

    /* The synced blocks' proposal and votes, replayed: below the tip, dropped. */
    assert_int_equal(receive_proposal(fx, c.blocks[0]), 0);
    for (uint32_t signer = 1; signer < KEYS_N; signer++)
        receive_vote(fx, SEQ_VOTE_FINALIZE, 1, &c.blocks[0]->hash, signer);
    assert_int_equal(fx->delivered_count, SYNC_K);
    assert_int_equal(own_votes_sent(fx, sends_before, SEQ_VOTE_NOTARIZE, 1), 0);

    seq_block *next = chain_block(fx, SYNC_K + 1, c.blocks[SYNC_K - 1], 'x', T0);
    finalize_by_peers(fx, next);
    const sent *nz = own_vote_find(fx, SEQ_VOTE_NOTARIZE, SYNC_K + 1);
    assert_memory_equal(nz->vote.hash.b, next->hash.b, SEQ_HASH_BYTES);
    assert_int_equal(fx->delivered_count, SYNC_K + 1);
    assert_int_equal(fx->delivered[SYNC_K], SYNC_K + 1);
    assert_tip(fx, SYNC_K + 1, &next->hash);
    assert_false(seq_replica_contains(fx->r, &stays));
    assert_int_equal(fx->own_votes_not_durable, 0);
    assert_int_equal(fx->fatal_count, 0);
}

/* A synced range that does not continue the store's tip (a repeat, a gap, a
 * broken parent link) is refused with the store's error and changes nothing:
 * tip, deliveries, mempool, consensus, sends. The next good range commits. */
static void test_commit_synced_refuses_range_off_the_tip(void **state)
{
    fixture *fx = *state;
    node_open(fx, KEYS_N, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    synced_chain c;
    synced_chain_make(fx, &c);
    assert_int_equal(seq_replica_commit_synced(fx->r, T0, c.items, 2), 0);
    seq_hash pending3 = submit_chain_tx(fx, 3, 's');
    seq_hash pending4 = submit_chain_tx(fx, 4, 's');
    seq_block *forged = chain_block(fx, 3, c.blocks[0], 's', T0); /* height 3, parent height 1 */
    seq_cert forged_cert = finalization_of(fx, forged);
    seq_store_final forged_item = {forged, &forged_cert};
    seq_replica_status before;
    seq_replica_status_get(fx->r, &before);
    uint32_t sends_before = fx->send_count;
    uint32_t timers_before = fx->timers_set;

    const struct {
        const seq_store_final *items;
        uint32_t n;
        int err;
    } refused[] = {
        {c.items, 2, SEQ_EORDER},     /* heights 1..2 again */
        {c.items + 1, 2, SEQ_EORDER}, /* 2..3: starts below the tip */
        {c.items + 3, 1, SEQ_EORDER}, /* 4: skips 3 */
        {&forged_item, 1, SEQ_EMISMATCH},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(seq_replica_commit_synced(fx->r, T0 + 1, refused[i].items, refused[i].n), refused[i].err);
        assert_tip(fx, 2, &c.blocks[1]->hash);
        assert_int_equal(fx->delivered_count, 2);
        assert_true(seq_replica_contains(fx->r, &pending3));
        assert_true(seq_replica_contains(fx->r, &pending4));
        seq_replica_status st;
        seq_replica_status_get(fx->r, &st);
        assert_int_equal(st.mempool_txs, 2);
        assert_int_equal(st.finalized_txs, before.finalized_txs);
        assert_int_equal(st.consensus.view, before.consensus.view);
        assert_int_equal(st.consensus.final_height, 2);
        assert_int_equal(fx->send_count, sends_before);
        assert_int_equal(fx->timers_set, timers_before);
        assert_int_equal(fx->fatal_count, 0);
    }

    assert_int_equal(seq_replica_commit_synced(fx->r, T0 + 1, c.items + 2, 2), 0);
    assert_tip(fx, SYNC_K, &c.blocks[SYNC_K - 1]->hash);
    assert_int_equal(fx->delivered_count, SYNC_K);
    assert_false(seq_replica_contains(fx->r, &pending3));
    assert_false(seq_replica_contains(fx->r, &pending4));
}

/* Blocks the store already holds when the consensus finalizes them (written
 * behind its back while it had voted on them) are skipped: no error, no
 * delivery, the tip unchanged; the next height is delivered once.
 * seq_replica_commit_synced cannot produce this state (it restarts the
 * consensus past what it stored), so the test writes the store itself. */
static void test_finalized_block_already_stored_is_skipped(void **state)
{
    fixture *fx = *state;
    node_open(fx, KEYS_N, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    seq_block *b1 = chain_block(fx, 1, NULL, 'a', T0);
    seq_block *b2 = chain_block(fx, 2, b1, 'a', T0);
    assert_int_equal(receive_proposal(fx, b1), 0);
    for (uint32_t signer = 2; signer < KEYS_N; signer++)
        receive_vote(fx, SEQ_VOTE_NOTARIZE, 1, &b1->hash, signer);
    assert_int_equal(receive_proposal(fx, b2), 0);
    assert_non_null(own_vote_find(fx, SEQ_VOTE_NOTARIZE, 2));
    assert_int_equal(fx->delivered_count, 0);

    seq_cert cert2 = finalization_of(fx, b2);
    seq_store_final stored[2] = {{b1, &cert2}, {b2, &cert2}};
    assert_int_equal(seq_store_commit_finalized(fx->store, stored, 2), 0);

    for (uint32_t signer = 1; signer < KEYS_N; signer++)
        if (signer != 2)
            receive_vote(fx, SEQ_VOTE_NOTARIZE, 2, &b2->hash, signer);
    for (uint32_t signer = 1; signer < KEYS_N; signer++)
        receive_vote(fx, SEQ_VOTE_FINALIZE, 2, &b2->hash, signer);
    seq_replica_status st;
    seq_replica_status_get(fx->r, &st);
    assert_int_equal(st.consensus.final_height, 2);
    assert_int_equal(fx->delivered_count, 0);
    assert_int_equal(fx->fatal_count, 0);
    assert_tip(fx, 2, &b2->hash);

    seq_block *b3 = chain_block(fx, 3, b2, 'a', T0);
    finalize_by_peers(fx, b3);
    assert_int_equal(fx->delivered_count, 1);
    assert_int_equal(fx->delivered[0], 3);
    assert_tip(fx, 3, &b3->hash);
    assert_int_equal(fx->fatal_count, 0);
    assert_int_equal(fx->own_votes_not_durable, 0);
}

/* The consensus finalizing another block at a height the store holds is two
 * finalized blocks at one height: fatal with SEQ_EMISMATCH, the store keeps
 * its block, later calls refuse and send nothing. (The step's own messages
 * go out before its blocks are committed, so the failing step may send.) */
static void test_finalized_block_conflicting_with_store_is_fatal(void **state)
{
    fixture *fx = *state;
    node_open(fx, KEYS_N, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    seq_block *ours = chain_block(fx, 1, NULL, 'a', T0);
    seq_block *stored = chain_block(fx, 1, NULL, 'b', T0);
    assert_int_equal(receive_proposal(fx, ours), 0);
    seq_cert cert = finalization_of(fx, stored);
    seq_store_final item = {stored, &cert};
    assert_int_equal(seq_store_commit_finalized(fx->store, &item, 1), 0);
    for (uint32_t signer = 2; signer < KEYS_N; signer++)
        receive_vote(fx, SEQ_VOTE_NOTARIZE, 1, &ours->hash, signer);
    assert_non_null(own_vote_find(fx, SEQ_VOTE_FINALIZE, 1));
    receive_vote(fx, SEQ_VOTE_FINALIZE, 1, &ours->hash, 1);
    assert_int_equal(fx->fatal_count, 0);

    assert_int_equal(receive_vote_rc(fx, SEQ_VOTE_FINALIZE, 1, &ours->hash, 2), SEQ_EMISMATCH);
    assert_int_equal(fx->fatal_count, 1);
    assert_int_equal(fx->fatal_err, SEQ_EMISMATCH);
    uint32_t sends_before = fx->send_count;
    assert_int_equal(fx->delivered_count, 0);
    assert_tip(fx, 1, &stored->hash);

    assert_int_equal(receive_vote_rc(fx, SEQ_VOTE_FINALIZE, 1, &ours->hash, 3), SEQ_EIO);
    assert_int_equal(seq_replica_timeout(fx->r, T0 + TIMEOUT_MS), SEQ_EIO);
    assert_int_equal(seq_replica_submit(fx->r, NS, (const uint8_t *)"late", 4, NULL), SEQ_EIO);
    assert_int_equal(seq_replica_commit_synced(fx->r, T0, &item, 1), SEQ_EIO);
    assert_int_equal(fx->send_count, sends_before);
    assert_int_equal(fx->fatal_count, 1);
}

/* One validator with an empty-block delay: an empty mempool holds the
 * proposal; a transaction arriving within the delay is proposed on the next
 * tick; then with none, the empty block waits the full delay. */
static void test_empty_block_delay_waits_for_a_tx(void **state)
{
    fixture *fx = *state;
    fx->empty_block_delay_ms = EMPTY_DELAY_MS;
    node_open(fx, 1, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    assert_int_equal(fx->delivered_count, 0);
    assert_int_equal(seq_replica_tick(fx->r, T0 + EMPTY_DELAY_MS / 2), 0);
    assert_int_equal(fx->delivered_count, 0);

    seq_hash id;
    assert_int_equal(seq_replica_submit(fx->r, NS, (const uint8_t *)"now", 3, &id), 0);
    uint64_t tx_at = T0 + EMPTY_DELAY_MS / 2 + 1;
    assert_int_equal(seq_replica_tick(fx->r, tx_at), 0);
    assert_int_equal(fx->delivered_count, 1);
    assert_int_equal(fx->delivered_txs[0], 1);
    uint64_t height = 0;
    uint32_t index = 9;
    assert_int_equal(seq_store_tx_find(fx->store, &id, &height, &index), 0);
    assert_int_equal(height, 1);
    assert_false(seq_replica_contains(fx->r, &id));

    assert_int_equal(seq_replica_tick(fx->r, tx_at + EMPTY_DELAY_MS - 1), 0);
    assert_int_equal(fx->delivered_count, 1);
    assert_int_equal(seq_replica_tick(fx->r, tx_at + EMPTY_DELAY_MS), 0);
    assert_int_equal(fx->delivered_count, 2);
    assert_int_equal(fx->delivered[1], 2);
    assert_int_equal(fx->delivered_txs[1], 0);
}

/* With the delay and no transaction at all, the first block is empty and
 * comes exactly when the delay is over. */
static void test_empty_block_delay_expires(void **state)
{
    fixture *fx = *state;
    fx->empty_block_delay_ms = EMPTY_DELAY_MS;
    node_open(fx, 1, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    assert_int_equal(seq_replica_tick(fx->r, T0 + EMPTY_DELAY_MS - 1), 0);
    assert_int_equal(fx->delivered_count, 0);
    assert_int_equal(seq_replica_tick(fx->r, T0 + EMPTY_DELAY_MS), 0);
    assert_int_equal(fx->delivered_count, 1);
    assert_int_equal(fx->delivered[0], 1);
    assert_int_equal(fx->delivered_txs[0], 0);
    seq_store_tip tip;
    assert_int_equal(seq_store_tip_get(fx->store, &tip), 0);
    assert_int_equal(tip.height, 1);
}

/* Without the delay a single validator finalizes an empty block at start. */
static void test_no_empty_block_delay_proposes_at_once(void **state)
{
    fixture *fx = *state;
    node_open(fx, 1, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    assert_true(fx->delivered_count >= 1);
    assert_int_equal(fx->delivered[0], 1);
    assert_int_equal(fx->delivered_txs[0], 0);
}

/* One validator with a minimum block interval: block 1 (on genesis) comes
 * at once; the proposal on block 1 waits until block 1 is INTERVAL_MS old
 * and then carries every transaction submitted meanwhile. */
static void test_block_interval_holds_proposal(void **state)
{
    fixture *fx = *state;
    fx->block_interval_min_ms = INTERVAL_MS;
    node_open(fx, 1, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    assert_int_equal(fx->delivered_count, 1);
    for (int i = 0; i < 3; i++) {
        char tx[16];
        snprintf(tx, sizeof tx, "tx%d", i);
        assert_int_equal(seq_replica_submit(fx->r, NS, (const uint8_t *)tx, strlen(tx), NULL), 0);
        assert_int_equal(seq_replica_tick(fx->r, T0 + 1 + (uint64_t)i), 0);
    }
    assert_int_equal(seq_replica_tick(fx->r, T0 + INTERVAL_MS - 1), 0);
    assert_int_equal(fx->delivered_count, 1);
    assert_int_equal(seq_replica_tick(fx->r, T0 + INTERVAL_MS), 0);
    assert_int_equal(fx->delivered_count, 2);
    assert_int_equal(fx->delivered_txs[1], 3);
}

/* A parent whose timestamp is ahead of our clock (its leader's clock runs
 * ahead, within what validation accepts) holds our proposal at most
 * INTERVAL_MS from when we were asked to build, not until the parent's
 * timestamp plus the interval. */
static void test_block_interval_capped_by_our_clock(void **state)
{
    fixture *fx = *state;
    fx->block_interval_min_ms = INTERVAL_MS;
    const uint32_t self = 2;
    node_open(fx, KEYS_N, self, TEST_MAP_BYTES);
    assert_int_equal(seq_leader_of(&fx->vs, 2), self);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    seq_header h = {.chain_id = CHAIN_ID, .height = 1, .view = 1, .leader = seq_leader_of(&fx->vs, 1),
                    .timestamp_ms = T0 + 5000};
    seq_block *b = block_make(fx, &h, 'f');
    assert_int_equal(receive_proposal(fx, b), 0); /* at T0 */
    receive_vote(fx, SEQ_VOTE_NOTARIZE, 1, &b->hash, 0); /* notarized: we lead view 2 */
    assert_int_equal(own_votes_sent(fx, 0, SEQ_VOTE_NOTARIZE, 2), 0);
    assert_int_equal(seq_replica_tick(fx->r, T0 + INTERVAL_MS - 1), 0);
    assert_int_equal(own_votes_sent(fx, 0, SEQ_VOTE_NOTARIZE, 2), 0);
    assert_int_equal(seq_replica_tick(fx->r, T0 + INTERVAL_MS), 0);
    assert_int_equal(own_votes_sent(fx, 0, SEQ_VOTE_NOTARIZE, 2), 1); /* our proposal */
}

/* ---- kept blocks and the vote resend ------------------------------------------------------ */

/* Our notarize vote for a proposal keeps its block in the store. */
static void test_notarize_vote_keeps_block(void **state)
{
    fixture *fx = *state;
    node_open(fx, KEYS_N, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    seq_block *b = block_view1(fx, 'k');
    seq_block *got = NULL;
    assert_int_equal(seq_store_kept_get(fx->store, &b->hash, &got), SEQ_ENOTFOUND);
    assert_int_equal(receive_proposal(fx, b), 0);
    assert_non_null(own_vote_find(fx, SEQ_VOTE_NOTARIZE, 1));
    assert_int_equal(seq_store_kept_get(fx->store, &b->hash, &got), 0);
    assert_memory_equal(got->hash.b, b->hash.b, SEQ_HASH_BYTES);
    assert_int_equal(got->h.height, 1);
    assert_int_equal(got->tx_count, b->tx_count);
    seq_block_free(got);
}

/* A notarized block is served to a peer after a restart of the replica on the
 * same store: the consensus forgot it, the store kept it. */
static void test_block_req_served_from_kept_after_restart(void **state)
{
    fixture *fx = *state;
    node_open(fx, KEYS_N, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    seq_block *b = block_view1(fx, 'r');
    assert_int_equal(receive_proposal(fx, b), 0);
    receive_vote(fx, SEQ_VOTE_NOTARIZE, 1, &b->hash, 2); /* notarized, not finalized */
    assert_int_equal(fx->delivered_count, 0);

    seq_replica_free(fx->r);
    fx->r = NULL;
    replica_open(fx);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    seq_replica_status st;
    seq_replica_status_get(fx->r, &st);
    assert_int_equal(st.consensus.blocks_held, 0); /* so only the store can answer */
    seq_store_tip tip;
    assert_int_equal(seq_store_tip_get(fx->store, &tip), 0);
    assert_int_equal(tip.height, 0);

    seq_msg req = {.kind = SEQ_MSG_BLOCK_REQ, .u.block_req.hash = b->hash};
    uint32_t mark = fx->send_count;
    assert_int_equal(seq_replica_receive(fx->r, T0, 3, &req), 0);
    assert_int_equal(fx->send_count, mark + 1);
    assert_int_equal(fx->sends[mark].to, 3);
    assert_int_equal(fx->sends[mark].kind, SEQ_MSG_BLOCK);
    assert_memory_equal(fx->sends[mark].hash.b, b->hash.b, SEQ_HASH_BYTES);
}

/* peer_up sends that peer exactly the store's own votes above the finalized
 * view, in the store's order, and nothing to anyone else; self and unknown
 * peers are SEQ_EINVAL and send nothing. */
static void test_peer_up_resends_own_votes(void **state)
{
    fixture *fx = *state;
    node_open(fx, KEYS_N, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    seq_block *b1 = block_view1(fx, 'p');
    assert_int_equal(receive_proposal(fx, b1), 0);
    for (uint32_t signer = 1; signer <= 3; signer++)
        receive_vote(fx, SEQ_VOTE_FINALIZE, 1, &b1->hash, signer);
    assert_int_equal(fx->delivered_count, 1); /* view 1 final: its votes are pruned */
    seq_block *b2 = chain_block(fx, 2, b1, 'p', T0);
    assert_int_equal(receive_proposal(fx, b2), 0);
    receive_vote(fx, SEQ_VOTE_NOTARIZE, 2, &b2->hash, 3 == b2->h.leader ? 1 : 3);
    assert_non_null(own_vote_find(fx, SEQ_VOTE_FINALIZE, 2));

    size_t n = 0;
    assert_int_equal(seq_store_votes_load(fx->store, fx->votes_buf, SEQ_RESTORE_VOTES_MAX, &n), 0);
    assert_int_equal(n, 2); /* notarize and finalize of view 2 */
    uint32_t mark = fx->send_count;
    assert_int_equal(seq_replica_peer_up(fx->r, 2), 0);
    assert_int_equal(fx->send_count, mark + n);
    for (size_t i = 0; i < n; i++) {
        const sent *s = &fx->sends[mark + i];
        assert_int_equal(s->to, 2);
        assert_int_equal(s->kind, SEQ_MSG_VOTE);
        assert_true(vote_same(&s->vote, &fx->votes_buf[i]));
        assert_int_equal(s->vote.view, 2);
    }

    mark = fx->send_count;
    assert_int_equal(seq_replica_peer_up(fx->r, 0), SEQ_EINVAL);
    assert_int_equal(seq_replica_peer_up(fx->r, KEYS_N), SEQ_EINVAL);
    assert_int_equal(seq_replica_peer_up(fx->r, UINT32_MAX), SEQ_EINVAL);
    assert_int_equal(fx->send_count, mark);
}

/* A transaction nobody orders within tx_ttl_ms is dropped by the tick, with
 * its reason, and no longer pending; the next one goes when its turn comes. */
/* A submitted transaction is hashed once: the id the caller gets, the one
 * the mempool holds and the one in the gossip frame are the same, and each
 * gossiped id is its transaction's. */
static void test_submit_gossips_with_its_id(void **state)
{
    fixture *fx = *state;
    node_open(fx, 4, 2, 0); /* not the leader of view 1: the txs stay pending */
    assert_int_equal(seq_replica_start(fx->r, 0), 0);
    seq_hash a = submit_chain_tx(fx, 1, 1);
    (void)submit_chain_tx(fx, 1, 2);
    assert_true(seq_replica_contains(fx->r, &a));
    uint32_t before = fx->send_count;
    seq_replica_gossip_flush(fx->r);
    uint32_t frames = 0;
    for (uint32_t i = before; i < fx->send_count; i++) {
        if (fx->sends[i].kind != SEQ_MSG_TXS)
            continue;
        frames++;
        assert_int_equal(fx->sends[i].txs, 2);
        assert_true(fx->sends[i].ids_ok);
        assert_memory_equal(fx->sends[i].first_id.b, a.b, SEQ_HASH_BYTES);
    }
    assert_int_equal(frames, 1);
}

static void test_pending_tx_expires(void **state)
{
    fixture *fx = *state;
    fx->tx_ttl_ms = 1000;
    node_open(fx, 4, 2, 0); /* not the leader of view 1: nothing gets ordered */
    assert_int_equal(seq_replica_start(fx->r, 0), 0);
    assert_int_equal(seq_replica_tick(fx->r, 100), 0);
    seq_hash a = submit_chain_tx(fx, 1, 1);
    assert_int_equal(seq_replica_tick(fx->r, 600), 0);
    seq_hash b = submit_chain_tx(fx, 1, 2);
    assert_int_equal(seq_replica_tick(fx->r, 1099), 0);
    assert_int_equal(fx->dropped_count, 0);
    assert_int_equal(seq_replica_tick(fx->r, 1100), 0);
    assert_int_equal(fx->dropped_count, 1);
    assert_memory_equal(fx->dropped[0].b, a.b, SEQ_HASH_BYTES);
    assert_int_equal(fx->dropped_reason[0], SEQ_DROP_EXPIRED);
    assert_string_equal(seq_drop_reason_name(fx->dropped_reason[0]), "expired");
    assert_false(seq_replica_contains(fx->r, &a));
    assert_true(seq_replica_contains(fx->r, &b));
    assert_int_equal(seq_replica_tick(fx->r, 1600), 0);
    assert_int_equal(fx->dropped_count, 2);
    assert_false(seq_replica_contains(fx->r, &b));
    seq_replica_status st;
    seq_replica_status_get(fx->r, &st);
    assert_int_equal(st.expired_txs, 2);
    assert_int_equal(st.mempool_txs, 0);
}

/* A full mempool evicts the biggest namespace's newest transaction for a
 * smaller namespace's: reported dropped with reason "evicted", counted, and
 * no longer pending. */
static void test_full_mempool_evicts_for_other_namespace(void **state)
{
    fixture *fx = *state;
    fx->mempool_txs_max = 4;
    node_open(fx, 4, 2, 0); /* not the leader of view 1: nothing gets ordered */
    assert_int_equal(seq_replica_start(fx->r, 0), 0);
    seq_hash flood[4], id;
    for (uint8_t i = 0; i < 4; i++) {
        uint8_t payload[8] = {i};
        assert_int_equal(seq_replica_submit(fx->r, 7, payload, sizeof payload, &flood[i]), 0);
    }
    uint8_t more[8] = {0x77};
    assert_int_equal(seq_replica_submit(fx->r, 7, more, sizeof more, &id), SEQ_EFULL);
    assert_int_equal(fx->dropped_count, 0);
    uint8_t other[8] = {0x88};
    assert_int_equal(seq_replica_submit(fx->r, 9, other, sizeof other, &id), 0);
    assert_int_equal(fx->dropped_count, 1);
    assert_memory_equal(fx->dropped[0].b, flood[3].b, SEQ_HASH_BYTES);
    assert_int_equal(fx->dropped_reason[0], SEQ_DROP_EVICTED);
    assert_string_equal(seq_drop_reason_name(fx->dropped_reason[0]), "evicted");
    assert_false(seq_replica_contains(fx->r, &flood[3]));
    assert_true(seq_replica_contains(fx->r, &id));
    seq_replica_status st;
    seq_replica_status_get(fx->r, &st);
    assert_int_equal(st.evicted_txs, 1);
    assert_int_equal(st.mempool_txs, 4);
}

/* A batch gets the verdicts one call each would: new ones accepted under
 * their ids and gossiped once, one pending already or twice in the batch a
 * duplicate, one finalized a duplicate, one too large or malformed refused
 * before hashing (zero id). */
static void test_submit_many_as_one_by_one(void **state)
{
    fixture *fx = *state;
    node_open(fx, 1, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_submit(fx->r, NS, (const uint8_t *)"final", 5, NULL), 0);
    assert_int_equal(seq_replica_start(fx->r, T0), 0); /* one validator: finalized at once */
    assert_true(fx->delivered_count >= 1);
    seq_hash pending;
    assert_int_equal(seq_replica_submit(fx->r, NS, (const uint8_t *)"pending", 7, &pending), 0);
    seq_replica_gossip_flush(fx->r);
    static uint8_t big[4097];
    seq_tx txs[6] = {{.ns = NS, .len = 3, .data = (const uint8_t *)"new"},
                     {.ns = NS, .len = 7, .data = (const uint8_t *)"pending"},
                     {.ns = NS, .len = 3, .data = (const uint8_t *)"new"},
                     {.ns = NS, .len = 5, .data = (const uint8_t *)"final"},
                     {.ns = NS, .len = sizeof big, .data = big},
                     {.ns = NS, .len = 4, .data = NULL}};
    int want[6] = {0, SEQ_EDUPLICATE, SEQ_EDUPLICATE, SEQ_EDUPLICATE, SEQ_ETOOBIG, SEQ_EINVAL};
    int rcs[6];
    seq_hash ids[6];
    uint32_t before = fx->send_count;
    seq_replica_submit_many(fx->r, txs, 6, rcs, ids);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(rcs[i], want[i]);
        seq_tx t = txs[i];
        if (i < 4)
            seq_tx_compute_id(&t);
        else
            memset(&t.id, 0, sizeof t.id);
        assert_memory_equal(ids[i].b, t.id.b, SEQ_HASH_BYTES);
    }
    assert_memory_equal(ids[1].b, pending.b, SEQ_HASH_BYTES);
    assert_true(seq_replica_contains(fx->r, &ids[0]));
    seq_replica_gossip_flush(fx->r);
    uint32_t gossiped = 0;
    for (uint32_t i = before; i < fx->send_count; i++)
        if (fx->sends[i].kind == SEQ_MSG_TXS)
            gossiped += fx->sends[i].txs;
    assert_int_equal(gossiped, 1);
}

/* A batch whose later transaction evicts an earlier one (the mempool full,
 * the earlier one's namespace the biggest): both accepted, the earlier one
 * reported evicted and no longer pending, which is what the node checks
 * before it forgets a transaction's dropped record. */
static void test_submit_many_eviction_inside_batch(void **state)
{
    fixture *fx = *state;
    fx->mempool_txs_max = 4;
    node_open(fx, 4, 2, TEST_MAP_BYTES);
    for (uint8_t i = 0; i < 3; i++) {
        uint8_t payload[8] = {i};
        assert_int_equal(seq_replica_submit(fx->r, 7, payload, sizeof payload, NULL), 0);
    }
    uint8_t pa[8] = {0xa}, pb[8] = {0xb};
    seq_tx txs[2] = {{.ns = 7, .len = sizeof pa, .data = pa}, {.ns = 9, .len = sizeof pb, .data = pb}};
    int rcs[2];
    seq_hash ids[2];
    seq_replica_submit_many(fx->r, txs, 2, rcs, ids);
    assert_int_equal(rcs[0], 0);
    assert_int_equal(rcs[1], 0);
    assert_false(seq_replica_contains(fx->r, &ids[0]));
    assert_true(seq_replica_contains(fx->r, &ids[1]));
    assert_int_equal(fx->dropped_count, 1);
    assert_memory_equal(fx->dropped[0].b, ids[0].b, SEQ_HASH_BYTES);
    assert_int_equal(fx->dropped_reason[0], SEQ_DROP_EVICTED);
}

/* ---- compact proposals ------------------------------------------------------------------ */

/* b as its leader sends it compact: header, tx ids (into ids), signed vote. */
static seq_msg compact_of(const seq_block *b, seq_hash *ids)
{
    seq_msg m;
    memset(&m, 0, sizeof m);
    m.kind = SEQ_MSG_PROPOSE_IDS;
    m.u.propose_ids.header = b->h;
    m.u.propose_ids.hash = b->hash;
    for (uint32_t i = 0; i < b->tx_count; i++)
        ids[i] = b->txs[i].id;
    m.u.propose_ids.ids = ids;
    m.u.propose_ids.vote = vote_make(SEQ_VOTE_NOTARIZE, b->h.view, &b->hash, b->h.leader);
    return m;
}

/* A validator (0 of KEYS_N, not view 1's leader) started at T0. */
static void follower_start(fixture *fx)
{
    node_open(fx, KEYS_N, 0, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
}

/* We sent our notarize vote for b's view, for b. */
static void assert_notarized_by_us(const fixture *fx, const seq_block *b)
{
    const sent *nz = own_vote_find(fx, SEQ_VOTE_NOTARIZE, b->h.view);
    assert_non_null(nz);
    assert_memory_equal(nz->vote.hash.b, b->hash.b, SEQ_HASH_BYTES);
}

static void assert_compact_counts(const fixture *fx, uint64_t rebuilt, uint64_t fetched)
{
    seq_replica_status st;
    seq_replica_status_get(fx->r, &st);
    assert_int_equal(st.proposals_rebuilt, rebuilt);
    assert_int_equal(st.proposals_fetched, fetched);
}

/* Every transaction of b into our mempool, as gossip would bring them. */
static void gossip_block_txs(fixture *fx, const seq_block *b)
{
    for (uint32_t i = 0; i < b->tx_count; i++)
        assert_int_equal(seq_replica_submit(fx->r, b->txs[i].ns, b->txs[i].data, b->txs[i].len, NULL), 0);
}

static uint32_t sends_of(const fixture *fx, seq_msg_kind kind, uint32_t to)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < fx->send_count; i++)
        n += fx->sends[i].kind == kind && fx->sends[i].to == to;
    return n;
}

/* A compact proposal whose transactions we hold is rebuilt into the
 * leader's block: we vote to notarize that very block and ask for nothing. */
static void test_compact_proposal_rebuilt_from_mempool(void **state)
{
    fixture *fx = *state;
    follower_start(fx);
    seq_block *b = block_view1(fx, 'c');
    gossip_block_txs(fx, b);
    seq_hash ids[1];
    seq_msg m = compact_of(b, ids);
    assert_int_equal(seq_replica_receive(fx->r, T0, b->h.leader, &m), 0);
    assert_notarized_by_us(fx, b);
    assert_int_equal(sends_of(fx, SEQ_MSG_BLOCK_REQ, b->h.leader), 0);
    seq_block *kept = NULL;
    assert_int_equal(seq_store_kept_get(fx->store, &b->hash, &kept), 0);
    assert_int_equal(kept->tx_count, 1);
    assert_memory_equal(kept->txs[0].data, b->txs[0].data, b->txs[0].len);
    seq_block_free(kept);
    assert_compact_counts(fx, 1, 0);
}

/* Missing a transaction, we ask the leader for the whole block once (a
 * repeat of the proposal asks nothing more) and vote when it arrives. */
static void test_compact_proposal_missing_tx_fetches_block(void **state)
{
    fixture *fx = *state;
    follower_start(fx);
    seq_block *b = block_view1(fx, 'm');
    seq_hash ids[1];
    seq_msg m = compact_of(b, ids);
    assert_int_equal(seq_replica_receive(fx->r, T0, b->h.leader, &m), 0);
    assert_int_equal(seq_replica_receive(fx->r, T0, b->h.leader, &m), 0);
    assert_null(own_vote_find(fx, SEQ_VOTE_NOTARIZE, 1));
    assert_int_equal(sends_of(fx, SEQ_MSG_BLOCK_REQ, b->h.leader), 1);
    for (uint32_t i = 0; i < fx->send_count; i++)
        if (fx->sends[i].kind == SEQ_MSG_BLOCK_REQ)
            assert_memory_equal(fx->sends[i].hash.b, b->hash.b, SEQ_HASH_BYTES);

    seq_msg whole = {.kind = SEQ_MSG_BLOCK, .u.block.block = b};
    assert_int_equal(seq_replica_receive(fx->r, T0 + 1, b->h.leader, &whole), 0);
    assert_notarized_by_us(fx, b);
    assert_compact_counts(fx, 0, 1);
}

/* Only the view's leader gets a block fetched for its compact proposal: one
 * from another validator (which cannot be a valid proposal) asks nothing. */
static void test_compact_proposal_from_non_leader_asks_nothing(void **state)
{
    fixture *fx = *state;
    follower_start(fx);
    seq_block *b = block_view1(fx, 'n');
    seq_hash ids[1];
    seq_msg m = compact_of(b, ids);
    uint32_t other = (b->h.leader + 1) % KEYS_N == 0 ? 2 : (b->h.leader + 1) % KEYS_N;
    assert_int_equal(seq_replica_receive(fx->r, T0, other, &m), 0);
    assert_int_equal(sends_of(fx, SEQ_MSG_BLOCK_REQ, other), 0);
    assert_int_equal(sends_of(fx, SEQ_MSG_BLOCK_REQ, b->h.leader), 0);
    assert_null(own_vote_find(fx, SEQ_VOTE_NOTARIZE, 1));
}

/* Ids that name transactions we hold but not the header's payload root (a
 * leader lying about its block) rebuild nothing we would vote for. */
static void test_compact_proposal_with_foreign_ids_refused(void **state)
{
    fixture *fx = *state;
    follower_start(fx);
    seq_block *b = block_view1(fx, 'x');
    seq_header h2 = b->h;
    h2.timestamp_ms++;
    seq_block *other = block_make(fx, &h2, 'y'); /* another transaction, held by us */
    gossip_block_txs(fx, other);
    seq_hash ids[1];
    seq_msg m = compact_of(b, ids);
    ids[0] = other->txs[0].id;
    assert_int_equal(seq_replica_receive(fx->r, T0, b->h.leader, &m), 0);
    assert_null(own_vote_find(fx, SEQ_VOTE_NOTARIZE, 1));
    assert_compact_counts(fx, 0, 0);
}

/* A block of view `view` led by its leader, one transaction tagged `tag`
 * (which no mempool holds unless gossiped). */
static seq_block *block_in_view(fixture *fx, uint64_t view, uint8_t tag)
{
    seq_header h = {.chain_id = CHAIN_ID, .height = 1, .view = view, .leader = seq_leader_of(&fx->vs, view),
                    .timestamp_ms = T0};
    return block_make(fx, &h, tag);
}

/* The same compact proposal again (a replay, or a duplicated frame) costs
 * no second rebuild. */
static void test_compact_proposal_repeat_not_rebuilt(void **state)
{
    fixture *fx = *state;
    follower_start(fx);
    seq_block *b = block_view1(fx, 'r');
    gossip_block_txs(fx, b);
    seq_hash ids[1];
    seq_msg m = compact_of(b, ids);
    for (int i = 0; i < 3; i++)
        assert_int_equal(seq_replica_receive(fx->r, T0, b->h.leader, &m), 0);
    assert_compact_counts(fx, 1, 0);
    assert_int_equal(own_votes_sent(fx, 0, SEQ_VOTE_NOTARIZE, 1), 1);
}

/* A compact proposal for a view beyond the consensus' vote window, or with
 * more transactions than our blocks may hold, costs no rebuild and asks
 * for no block, even from the view's leader. */
static void test_compact_proposal_outside_limits_ignored(void **state)
{
    fixture *fx = *state;
    follower_start(fx);
    uint64_t far = 1 + KEYS_N * (SEQ_VOTE_VIEWS_AHEAD_MAX + 1); /* led by view 1's leader */
    seq_block *ahead = block_in_view(fx, far, 'f');
    seq_hash ids[1];
    seq_msg m = compact_of(ahead, ids);
    assert_int_equal(seq_replica_receive(fx->r, T0, ahead->h.leader, &m), 0);
    assert_int_equal(sends_of(fx, SEQ_MSG_BLOCK_REQ, ahead->h.leader), 0);

    seq_block *b = block_view1(fx, 'g');
    seq_hash big_ids[1];
    seq_msg big = compact_of(b, big_ids);
    big.u.propose_ids.header.tx_count = 65; /* the fixture's block_txs_max is 64 */
    assert_int_equal(seq_replica_receive(fx->r, T0, b->h.leader, &big), 0);
    assert_int_equal(sends_of(fx, SEQ_MSG_BLOCK_REQ, b->h.leader), 0);
}

/* Transactions we hold whose payloads add up to more than our block byte
 * limit rebuild nothing (no copy of them) and ask for nothing. */
static void test_compact_proposal_over_byte_limit_ignored(void **state)
{
    fixture *fx = *state;
    fx->block_bytes_max = 8192;
    follower_start(fx);
    static uint8_t payloads[3][4000];
    seq_tx txs[3];
    for (int i = 0; i < 3; i++) {
        memset(payloads[i], 'a' + i, sizeof payloads[i]);
        txs[i] = (seq_tx){.ns = NS, .len = sizeof payloads[i], .data = payloads[i]};
    }
    seq_header h = {.chain_id = CHAIN_ID, .height = 1, .view = 1, .leader = seq_leader_of(&fx->vs, 1),
                    .timestamp_ms = T0};
    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, &h, txs, 3), 0);
    block_keep(fx, b);
    gossip_block_txs(fx, b);
    seq_hash ids[3];
    seq_msg m = compact_of(b, ids);
    assert_int_equal(seq_replica_receive(fx->r, T0, b->h.leader, &m), 0);
    assert_compact_counts(fx, 0, 0);
    assert_int_equal(sends_of(fx, SEQ_MSG_BLOCK_REQ, b->h.leader), 0);
    assert_null(own_vote_find(fx, SEQ_VOTE_NOTARIZE, 1));
}

/* Each leader parks only its own newest proposal: another validator's
 * compact proposals that it must fetch cannot push the view's leader's
 * out, whose block, when it comes, gets our vote. */
static void test_parked_proposal_kept_per_leader(void **state)
{
    fixture *fx = *state;
    follower_start(fx);
    seq_block *b = block_view1(fx, 'p');
    seq_hash ids[1];
    seq_msg m = compact_of(b, ids);
    assert_int_equal(seq_replica_receive(fx->r, T0, b->h.leader, &m), 0);
    uint32_t other = seq_leader_of(&fx->vs, 2);
    for (uint64_t view = 2; view <= SEQ_VOTE_VIEWS_AHEAD_MAX; view += KEYS_N) {
        for (uint8_t tag = 0; tag < 4; tag++) {
            seq_header h = {.chain_id = CHAIN_ID, .height = 1, .view = view, .leader = other,
                            .timestamp_ms = T0 + tag};
            seq_block *junk = block_make(fx, &h, (uint8_t)('A' + tag));
            seq_hash junk_ids[1];
            seq_msg j = compact_of(junk, junk_ids);
            assert_int_equal(seq_replica_receive(fx->r, T0, other, &j), 0);
        }
    }
    assert_true(sends_of(fx, SEQ_MSG_BLOCK_REQ, other) >= 4);
    seq_msg whole = {.kind = SEQ_MSG_BLOCK, .u.block.block = b};
    assert_int_equal(seq_replica_receive(fx->r, T0 + 1, b->h.leader, &whole), 0);
    assert_notarized_by_us(fx, b);
}

/* As leader with compact proposals, our proposal travels ids-only and comes
 * after the gossip of the transactions it carries, on the same sends. */
static void test_own_proposal_compact_after_gossip(void **state)
{
    fixture *fx = *state;
    fx->compact = true;
    node_open(fx, KEYS_N, 1, TEST_MAP_BYTES);
    assert_int_equal(seq_leader_of(&fx->vs, 1), 1);
    assert_int_equal(seq_replica_submit(fx->r, NS, (const uint8_t *)"queued", 6, NULL), 0);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    int gossip_at = -1, propose_at = -1;
    for (uint32_t i = 0; i < fx->send_count; i++) {
        if (fx->sends[i].kind == SEQ_MSG_TXS && gossip_at < 0)
            gossip_at = (int)i;
        if (fx->sends[i].kind == SEQ_MSG_PROPOSE && propose_at < 0)
            propose_at = (int)i;
    }
    assert_true(gossip_at >= 0 && propose_at > gossip_at);
    assert_true(fx->sends[propose_at].ids_only);
    assert_int_equal(fx->sends[propose_at].to, SEQ_TO_ALL);
}

/* Without compact proposals the proposal carries its payloads. */
static void test_own_proposal_full_without_compact(void **state)
{
    fixture *fx = *state;
    node_open(fx, KEYS_N, 1, TEST_MAP_BYTES);
    assert_int_equal(seq_replica_submit(fx->r, NS, (const uint8_t *)"queued", 6, NULL), 0);
    assert_int_equal(seq_replica_start(fx->r, T0), 0);
    uint32_t proposals = 0;
    for (uint32_t i = 0; i < fx->send_count; i++)
        if (fx->sends[i].kind == SEQ_MSG_PROPOSE) {
            proposals++;
            assert_false(fx->sends[i].ids_only);
        }
    assert_int_equal(proposals, 1);
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
        T(test_commit_synced_moves_tip_and_restarts_consensus),
        T(test_commit_synced_refuses_range_off_the_tip),
        T(test_finalized_block_already_stored_is_skipped),
        T(test_finalized_block_conflicting_with_store_is_fatal),
        T(test_empty_block_delay_waits_for_a_tx),
        T(test_empty_block_delay_expires),
        T(test_no_empty_block_delay_proposes_at_once),
        T(test_block_interval_holds_proposal),
        T(test_block_interval_capped_by_our_clock),
        T(test_notarize_vote_keeps_block),
        T(test_block_req_served_from_kept_after_restart),
        T(test_peer_up_resends_own_votes),
        T(test_submit_gossips_with_its_id),
        T(test_pending_tx_expires),
        T(test_full_mempool_evicts_for_other_namespace),
        T(test_submit_many_as_one_by_one),
        T(test_submit_many_eviction_inside_batch),
        T(test_compact_proposal_rebuilt_from_mempool),
        T(test_compact_proposal_missing_tx_fetches_block),
        T(test_compact_proposal_from_non_leader_asks_nothing),
        T(test_compact_proposal_with_foreign_ids_refused),
        T(test_own_proposal_compact_after_gossip),
        T(test_compact_proposal_repeat_not_rebuilt),
        T(test_compact_proposal_outside_limits_ignored),
        T(test_parked_proposal_kept_per_leader),
        T(test_compact_proposal_over_byte_limit_ignored),
        T(test_own_proposal_full_without_compact),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
