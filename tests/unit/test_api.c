/* Client API server (lib/api.c) over a real libuv loop run in a thread of
 * the test, a real LMDB store holding real finalized blocks with real
 * certificates, a real mempool behind the hooks, and the blocking client
 * library (lib/client.c) or raw sockets on 127.0.0.1. Every wait is bounded.
 * The loop thread never calls cmocka: everything it does is checked by the
 * test thread through what the client receives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "api.h"
#include "client.h"
#include "errors.h"
#include "log.h"
#include "mempool.h"
#include "seq.pb-c.h"
#include "store.h"
#include "testutil.h"
#include "types.h"

#define CHAIN_ID 42u
#define N_VALIDATORS 4u
#define BLOCKS_STORED 3u
#define BLOCKS_MAX 4u        /* one more is committed during a test */
#define CHAIN_LONG 640u      /* blocks the height-order sweep test stores */
#define NS_BUSY 10u          /* has transactions in every block */
#define NS_OTHER 20u         /* has transactions too, never subscribed */
#define NS_EMPTY 30u         /* never has transactions */
#define WAIT_MS 3000u        /* bound on every wait */
#define QUIET_MS 150u        /* how long "nothing more arrives" is watched */
#define FRAME_BYTES_MAX (4u << 20)
#define TX_BYTES_MAX 1024u   /* the mempool's payload limit */
#define CLIENTS_MAX 8u

/* ---- fixture ------------------------------------------------------------------------ */

typedef struct {
    char dir[256];
    char listen[64];
    seq_store *store;
    seq_mempool *mempool;
    uv_loop_t loop;
    uv_async_t deliver;      /* test thread -> loop: seq_api_delivered(deliver_height) */
    uv_async_t stop;         /* test thread -> loop: seq_api_close */
    seq_api *api;
    pthread_t thread;
    bool thread_running;
    _Atomic uint64_t deliver_height;
    _Atomic bool api_done;
    _Atomic int deliver_errors;
    seq_block *blocks[CHAIN_LONG]; /* the first BLOCKS_MAX made by setup */
    seq_cert certs[CHAIN_LONG];
    _Atomic uint32_t many_calls;  /* hook_submit_many calls */
    _Atomic uint32_t many_over;   /* transactions it got over the format's payload limit */
} fixture;

static seq_keypair *keys[N_VALIDATORS];
static seq_validators vs;

static const seq_node_status fixed_status = {.height = 1234, .view = 5678, .leader = 3, .peers = 2,
                                             .mempool_txs = 91, .mempool_bytes = 9100};

static int hook_submit(void *ctx, seq_ns ns, const uint8_t *data, uint32_t len, const uint8_t *key, size_t key_len,
                       seq_hash *id)
{
    (void)key;
    (void)key_len;
    fixture *fx = ctx;
    return seq_mempool_add(fx->mempool, ns, data, len, id);
}

/* The node's batch path, as the node gives it: each as hook_submit would. */
static void hook_submit_many(void *ctx, const seq_tx *txs, uint32_t n, int *rcs, seq_hash *ids)
{
    fixture *fx = ctx;
    fx->many_calls++;
    for (uint32_t i = 0; i < n; i++) {
        if (txs[i].len > SEQ_TX_PAYLOAD_BYTES_MAX)
            fx->many_over++;
        memset(&ids[i], 0, sizeof ids[i]);
        rcs[i] = seq_mempool_add(fx->mempool, txs[i].ns, txs[i].data, txs[i].len, &ids[i]);
    }
}

static bool hook_pending(void *ctx, const seq_hash *id);

static bool hook_key_lookup(void *ctx, const uint8_t *key, size_t key_len, seq_hash *id)
{
    (void)ctx;
    (void)key;
    (void)key_len;
    (void)id;
    return false;
}

static int hook_tx_fate(void *ctx, const seq_hash *id, int *reason)
{
    (void)reason;
    return hook_pending(ctx, id) ? SEQ_TX_PENDING : SEQ_TX_UNKNOWN;
}

static bool hook_pending(void *ctx, const seq_hash *id)
{
    fixture *fx = ctx;
    return seq_mempool_contains(fx->mempool, id);
}

static void hook_status(void *ctx, seq_node_status *out)
{
    (void)ctx;
    *out = fixed_status;
}

/* Block h (1-based): two txs in NS_BUSY, one in NS_OTHER, given unsorted. */
static void block_make(fixture *fx, uint32_t h)
{
    char p0[32], p1[32], p2[32];
    int l0 = snprintf(p0, sizeof p0, "busy-%u-a", h);
    int l1 = snprintf(p1, sizeof p1, "other-%u", h);
    int l2 = snprintf(p2, sizeof p2, "busy-%u-bb", h);
    seq_tx txs[3] = {{.ns = NS_BUSY, .len = (uint32_t)l0, .data = (const uint8_t *)p0},
                     {.ns = NS_OTHER, .len = (uint32_t)l1, .data = (const uint8_t *)p1},
                     {.ns = NS_BUSY, .len = (uint32_t)l2, .data = (const uint8_t *)p2}};
    seq_hash zero;
    memset(&zero, 0, sizeof zero);
    seq_header hd = {.chain_id = CHAIN_ID, .height = h, .view = 10 * h, .parent = h > 1 ? fx->blocks[h - 2]->hash : zero,
                     .parent_view = h > 1 ? 10 * (h - 1) : 0, .leader = h % N_VALIDATORS, .timestamp_ms = 5000 + h};
    assert_int_equal(seq_block_build(&fx->blocks[h - 1], &hd, txs, 3), 0);
    seq_vote votes[3];
    for (uint32_t i = 0; i < 3; i++)
        votes[i] = seq_test_vote(SEQ_VOTE_FINALIZE, hd.view, &fx->blocks[h - 1]->hash, i + 1, keys[i + 1], CHAIN_ID);
    assert_int_equal(seq_cert_build(&fx->certs[h - 1], &vs, votes, 3), 0);
}

static void commit_block(fixture *fx, uint32_t h)
{
    seq_store_final item = {.block = fx->blocks[h - 1], .cert = &fx->certs[h - 1]};
    assert_int_equal(seq_store_commit_finalized(fx->store, &item, 1), 0);
}

/* A port nobody listens on right now: bind port 0, read it, close. */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Runs on the loop thread: hands the block at deliver_height to the API
 * exactly as the node does after a commit. */
static void deliver_cb(uv_async_t *h)
{
    fixture *fx = h->data;
    uint64_t height = atomic_load(&fx->deliver_height);
    seq_block *b = NULL;
    seq_cert cert;
    if (seq_store_block_get(fx->store, height, &b) != 0 || seq_store_cert_get(fx->store, height, &cert) != 0) {
        atomic_fetch_add(&fx->deliver_errors, 1);
        seq_block_free(b);
        return;
    }
    seq_api_delivered(fx->api, b, &cert);
    seq_block_free(b);
}

static void api_done_cb(void *ctx)
{
    fixture *fx = ctx;
    atomic_store(&fx->api_done, true);
}

static void stop_cb(uv_async_t *h)
{
    fixture *fx = h->data;
    seq_api_close(fx->api, api_done_cb, fx);
    uv_close((uv_handle_t *)&fx->deliver, NULL);
    uv_close((uv_handle_t *)&fx->stop, NULL);
}

static void *loop_main(void *arg)
{
    fixture *fx = arg;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return NULL;
}

static bool with_submit_many; /* the next setup wires hook_submit_many */

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(seq_test_tmpdir(fx->dir, sizeof fx->dir, "api"), 0);
    seq_store_opts so = {.chain_id = CHAIN_ID, .map_bytes = 64u << 20};
    assert_int_equal(seq_store_open(&fx->store, fx->dir, &so), 0);
    for (uint32_t h = 1; h <= BLOCKS_MAX; h++)
        block_make(fx, h);
    for (uint32_t h = 1; h <= BLOCKS_STORED; h++)
        commit_block(fx, h);
    seq_mempool_limits ml = {.txs_max = 1000, .bytes_max = 1u << 20, .tx_bytes_max = TX_BYTES_MAX,
                             .namespaces_max = 16, .recent_max = 100};
    assert_int_equal(seq_mempool_new(&fx->mempool, &ml), 0);

    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(uv_async_init(&fx->loop, &fx->deliver, deliver_cb), 0);
    assert_int_equal(uv_async_init(&fx->loop, &fx->stop, stop_cb), 0);
    fx->deliver.data = fx;
    fx->stop.data = fx;
    snprintf(fx->listen, sizeof fx->listen, "127.0.0.1:%u", free_port());
    seq_api_config cfg = {.loop = &fx->loop, .listen = fx->listen, .frame_bytes_max = FRAME_BYTES_MAX,
                          .clients_max = CLIENTS_MAX, .send_queue_bytes_max = 1u << 20, .store = fx->store,
                          .hooks = {.ctx = fx, .tx = {.submit = hook_submit, .tx_fate = hook_tx_fate, .key_lookup = hook_key_lookup},
                                    .status = hook_status}};
    if (with_submit_many)
        cfg.hooks.tx.submit_many = hook_submit_many;
    with_submit_many = false;
    assert_int_equal(seq_api_start(&fx->api, &cfg), 0);
    assert_int_equal(pthread_create(&fx->thread, NULL, loop_main, fx), 0);
    fx->thread_running = true;
    *state = fx;
    return 0;
}

/* Closes the API from its loop, waits (bounded) for the loop to end. */
static void loop_stop(fixture *fx)
{
    if (!fx->thread_running)
        return;
    assert_int_equal(uv_async_send(&fx->stop), 0);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_MS / 1000;
    assert_int_equal(pthread_timedjoin_np(fx->thread, NULL, &deadline), 0);
    fx->thread_running = false;
    assert_true(atomic_load(&fx->api_done));
}

static int teardown(void **state)
{
    fixture *fx = *state;
    loop_stop(fx);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    for (uint32_t h = 0; h < CHAIN_LONG; h++)
        seq_block_free(fx->blocks[h]);
    seq_mempool_free(fx->mempool);
    seq_store_close(fx->store);
    assert_int_equal(seq_test_rmtree(fx->dir), 0);
    free(fx);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    seq_log_set_level(SEQ_LOG_WARN);
    if (seq_test_keys_make(keys, N_VALIDATORS) != 0)
        return -1;
    seq_pubkey pks[N_VALIDATORS];
    for (uint32_t i = 0; i < N_VALIDATORS; i++)
        pks[i] = keys[i]->pk;
    return seq_validators_init(&vs, pks, N_VALIDATORS) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    seq_test_keys_free(keys, N_VALIDATORS);
    return 0;
}

static seq_client *client_connect(const fixture *fx)
{
    seq_client *c = NULL;
    char err[128] = "";
    int rc = seq_client_connect(&c, fx->listen, WAIT_MS, err, sizeof err);
    if (rc != 0)
        fail_msg("connect %s: %s (%s)", fx->listen, seq_strerror(rc), err);
    return c;
}

static void assert_status_fixed(seq_client *c)
{
    seq_node_status st;
    memset(&st, 0xee, sizeof st);
    assert_int_equal(seq_client_status(c, &st, WAIT_MS), 0);
    assert_int_equal(st.height, fixed_status.height);
    assert_int_equal(st.view, fixed_status.view);
    assert_int_equal(st.leader, fixed_status.leader);
    assert_int_equal(st.peers, fixed_status.peers);
    assert_int_equal(st.mempool_txs, fixed_status.mempool_txs);
    assert_int_equal(st.mempool_bytes, fixed_status.mempool_bytes);
}

/* ---- submit and status ------------------------------------------------------------------ */

static int setup_submit_many(void **state)
{
    with_submit_many = true;
    return setup(state);
}

/* Three new transactions are accepted under the ids the format defines; the
 * same one again is DUPLICATE (with its id); payloads over the mempool's
 * limit or over the format's limit are TOO_LARGE. */
static void test_submit_verdicts(void **state)
{
    fixture *fx = *state;
    seq_client *c = client_connect(fx);
    seq_tx txs[3] = {{.ns = 7, .len = 5, .data = (const uint8_t *)"hello"},
                     {.ns = 3, .len = 0, .data = (const uint8_t *)""},
                     {.ns = 7, .len = 6, .data = (const uint8_t *)"world!"}};
    seq_submit_result res[3];
    assert_int_equal(seq_client_submit(c, txs, 3, res, WAIT_MS), 0);
    for (uint32_t i = 0; i < 3; i++) {
        seq_tx t = txs[i];
        seq_tx_compute_id(&t);
        assert_int_equal(res[i].status, 0);
        assert_memory_equal(res[i].id.b, t.id.b, SEQ_HASH_BYTES);
    }

    seq_submit_result dup;
    assert_int_equal(seq_client_submit(c, &txs[2], 1, &dup, WAIT_MS), 0);
    assert_int_equal(dup.status, SEQ_EDUPLICATE);
    assert_memory_equal(dup.id.b, res[2].id.b, SEQ_HASH_BYTES);

    uint8_t *big = calloc(1, SEQ_TX_PAYLOAD_BYTES_MAX + 1);
    assert_non_null(big);
    seq_tx large[2] = {{.ns = 7, .len = TX_BYTES_MAX + 1, .data = big},
                       {.ns = 7, .len = SEQ_TX_PAYLOAD_BYTES_MAX + 1, .data = big}};
    seq_submit_result too[2];
    assert_int_equal(seq_client_submit(c, large, 2, too, WAIT_MS), 0);
    assert_int_equal(too[0].status, SEQ_ETOOBIG);
    assert_int_equal(too[1].status, SEQ_ETOOBIG);
    free(big);

    /* the connection is still fine after rejections */
    assert_status_fixed(c);
    seq_client_close(c);
    if (fx->many_calls > 0) /* the batch path: what the format refuses never reached the node */
        assert_int_equal(fx->many_over, 0);
}

/* The same verdicts through the node's batch hook, which a request without
 * client keys now takes (and a format-refused payload never reaches). */
static void test_submit_verdicts_batched(void **state)
{
    fixture *fx = *state;
    test_submit_verdicts(state);
    assert_true(fx->many_calls >= 3);
}

/* A status request returns the hook's numbers field for field, repeatedly. */
static void test_status_round_trip(void **state)
{
    fixture *fx = *state;
    seq_client *c = client_connect(fx);
    assert_status_fixed(c);
    assert_status_fixed(c);
    seq_client_close(c);
}

/* ---- subscriptions ---------------------------------------------------------------------- */

static void assert_batch(const fixture *fx, const seq_batch *b, uint64_t height, seq_ns ns)
{
    const seq_block *blk = fx->blocks[height - 1];
    assert_int_equal(b->header.height, height);
    assert_int_equal(b->ns, ns);
    assert_memory_equal(b->block_hash.b, blk->hash.b, SEQ_HASH_BYTES);
    uint32_t expect = 0;
    for (uint32_t i = 0; i < blk->tx_count; i++) {
        if (blk->txs[i].ns != ns)
            continue;
        assert_true(expect < b->tx_count);
        const seq_tx *got = &b->txs[expect++];
        assert_int_equal(got->ns, ns);
        assert_int_equal(got->len, blk->txs[i].len);
        assert_memory_equal(got->data, blk->txs[i].data, got->len);
    }
    assert_int_equal(b->tx_count, expect);
    const seq_cert *want = &fx->certs[height - 1];
    assert_int_equal(b->cert.kind, SEQ_VOTE_FINALIZE);
    assert_int_equal(b->cert.view, want->view);
    assert_memory_equal(b->cert.hash.b, blk->hash.b, SEQ_HASH_BYTES);
    assert_memory_equal(b->cert.bitmap, want->bitmap, SEQ_BITMAP_BYTES);
    assert_int_equal(b->cert.sig_count, want->sig_count);
    assert_memory_equal(b->cert.sigs, want->sigs, want->sig_count * sizeof want->sigs[0]);
    assert_int_equal(seq_cert_verify(&b->cert, &vs, CHAIN_ID), 0);
}

static void expect_batches(const fixture *fx, seq_client *c, uint64_t from, uint64_t to, const seq_ns *ns,
                           uint32_t ns_count)
{
    for (uint64_t h = from; h <= to; h++) {
        for (uint32_t k = 0; k < ns_count; k++) {
            seq_batch *b = NULL;
            int rc = seq_client_next_batch(c, &b, WAIT_MS);
            if (rc != 0)
                fail_msg("height %llu ns %llu: %s", (unsigned long long)h, (unsigned long long)ns[k],
                         seq_strerror(rc));
            assert_batch(fx, b, h, ns[k]);
            seq_batch_free(b);
        }
    }
}

static void expect_quiet(seq_client *c)
{
    seq_batch *b = NULL;
    int rc = seq_client_next_batch(c, &b, QUIET_MS);
    if (rc == 0) {
        uint64_t h = b->header.height;
        seq_batch_free(b);
        fail_msg("unexpected batch at height %llu", (unsigned long long)h);
    }
    assert_int_equal(rc, SEQ_ETIMEOUT);
}

/* A subscription from height 1 gets the stored heights as one batch per
 * (height, namespace) in order, empty for a namespace without transactions,
 * each with the stored certificate; a block committed later reaches it when
 * the node reports it delivered (and not before). */
static void test_subscribe_stored_then_live(void **state)
{
    fixture *fx = *state;
    seq_client *c = client_connect(fx);
    const seq_ns ns[2] = {NS_BUSY, NS_EMPTY};
    assert_int_equal(seq_client_subscribe(c, ns, 2, 1), 0);
    expect_batches(fx, c, 1, BLOCKS_STORED, ns, 2);
    expect_quiet(c);

    commit_block(fx, BLOCKS_STORED + 1);
    expect_quiet(c); /* stored, but not yet reported finalized to the API */
    atomic_store(&fx->deliver_height, BLOCKS_STORED + 1);
    assert_int_equal(uv_async_send(&fx->deliver), 0);
    expect_batches(fx, c, BLOCKS_STORED + 1, BLOCKS_STORED + 1, ns, 2);
    expect_quiet(c);
    assert_int_equal(atomic_load(&fx->deliver_errors), 0);
    seq_client_close(c);
}

/* A subscription from a middle height starts there; one from beyond the tip
 * waits for the block to be delivered. */
static void test_subscribe_from_middle_and_future(void **state)
{
    fixture *fx = *state;
    seq_client *mid = client_connect(fx);
    seq_client *future = client_connect(fx);
    const seq_ns ns[1] = {NS_OTHER};
    assert_int_equal(seq_client_subscribe(mid, ns, 1, 2), 0);
    assert_int_equal(seq_client_subscribe(future, ns, 1, BLOCKS_STORED + 1), 0);
    expect_batches(fx, mid, 2, BLOCKS_STORED, ns, 1);
    expect_quiet(future);

    commit_block(fx, BLOCKS_STORED + 1);
    atomic_store(&fx->deliver_height, BLOCKS_STORED + 1);
    assert_int_equal(uv_async_send(&fx->deliver), 0);
    expect_batches(fx, future, BLOCKS_STORED + 1, BLOCKS_STORED + 1, ns, 1);
    expect_batches(fx, mid, BLOCKS_STORED + 1, BLOCKS_STORED + 1, ns, 1);
    seq_client_close(mid);
    seq_client_close(future);
}

/* Empty batches (heartbeats) may wait briefly to share a write with later
 * ones, but never for good: a subscriber of a namespace without
 * transactions gets every stored height and then the delivered one, with no
 * later height to push it out. */
static void test_heartbeats_arrive_on_a_quiet_chain(void **state)
{
    fixture *fx = *state;
    seq_client *c = client_connect(fx);
    const seq_ns ns[1] = {NS_EMPTY};
    assert_int_equal(seq_client_subscribe(c, ns, 1, 1), 0);
    expect_batches(fx, c, 1, BLOCKS_STORED, ns, 1);
    commit_block(fx, BLOCKS_STORED + 1);
    atomic_store(&fx->deliver_height, BLOCKS_STORED + 1);
    assert_int_equal(uv_async_send(&fx->deliver), 0);
    expect_batches(fx, c, BLOCKS_STORED + 1, BLOCKS_STORED + 1, ns, 1);
    expect_quiet(c);
    seq_client_close(c);
}

/* Subscribers from far-apart heights of a long stored chain (two clusters
 * more than the sweep's 256-height merge distance apart, members a few
 * heights apart, one at the tip) are served in height order across all of
 * them, many heights per write: each still gets every height from its own
 * start to the tip once, in order, with the stored block and certificate. */
static void test_subscribers_at_spread_heights(void **state)
{
    fixture *fx = *state;
    for (uint32_t h = BLOCKS_STORED + 1; h <= CHAIN_LONG; h++)
        if (!fx->blocks[h - 1])
            block_make(fx, h);
    seq_store_final items[CHAIN_LONG];
    uint32_t n = 0;
    for (uint32_t h = BLOCKS_STORED + 1; h <= CHAIN_LONG; h++)
        items[n++] = (seq_store_final){.block = fx->blocks[h - 1], .cert = &fx->certs[h - 1]};
    assert_int_equal(seq_store_commit_finalized(fx->store, items, n), 0);
    atomic_store(&fx->deliver_height, CHAIN_LONG);
    assert_int_equal(uv_async_send(&fx->deliver), 0);

    const uint64_t from[] = {1, 3, 40, 400, 401, 433, CHAIN_LONG};
    enum { SUBS = sizeof from / sizeof from[0] };
    _Static_assert(SUBS <= CLIENTS_MAX, "one client per subscriber");
    seq_client *c[SUBS];
    const seq_ns ns[1] = {NS_BUSY};
    for (uint32_t i = 0; i < SUBS; i++) {
        c[i] = client_connect(fx);
        assert_int_equal(seq_client_subscribe(c[i], ns, 1, from[i]), 0);
    }
    for (uint32_t i = 0; i < SUBS; i++) {
        expect_batches(fx, c[i], from[i], CHAIN_LONG, ns, 1);
        expect_quiet(c[i]);
        seq_client_close(c[i]);
    }
    assert_int_equal(atomic_load(&fx->deliver_errors), 0);
}

/* ---- bad input -------------------------------------------------------------------------- */

static int raw_connect(const fixture *fx)
{
    const char *colon = strrchr(fx->listen, ':');
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)atoi(colon + 1))};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* True when the server closes fd within WAIT_MS (EOF or reset). */
static bool closed_by_server(int fd)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed >= (long)WAIT_MS)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(WAIT_MS - elapsed)) <= 0)
            continue;
        uint8_t buf[256];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return true;
    }
}

static void send_all(int fd, const void *data, size_t len)
{
    assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* A frame that is not a ClientRequest, and a length header over the limit,
 * each close only their own connection: another client keeps its answers. */
static void test_bad_input_closes_only_that_connection(void **state)
{
    fixture *fx = *state;
    seq_client *good = client_connect(fx);
    assert_status_fixed(good);

    int garbage = raw_connect(fx);
    static const uint8_t junk[] = {0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    send_all(garbage, junk, sizeof junk);
    assert_true(closed_by_server(garbage));
    close(garbage);
    assert_status_fixed(good);

    int oversized = raw_connect(fx);
    uint8_t header[4];
    uint32_t too_long = FRAME_BYTES_MAX + 1;
    header[0] = (uint8_t)(too_long >> 24);
    header[1] = (uint8_t)(too_long >> 16);
    header[2] = (uint8_t)(too_long >> 8);
    header[3] = (uint8_t)too_long;
    send_all(oversized, header, sizeof header);
    assert_true(closed_by_server(oversized));
    close(oversized);
    assert_status_fixed(good);

    /* plain text where a header belongs: its "length" is far over the limit */
    int text = raw_connect(fx);
    send_all(text, "GET / HTTP/1.0\r\n\r\n", 18);
    assert_true(closed_by_server(text));
    close(text);
    assert_status_fixed(good);
    seq_client_close(good);
}

/* ---- raw protobuf requests (no client library call for these) ---------------------- */

static void raw_request(int fd, const Seq__ClientRequest *req)
{
    size_t n = seq__client_request__get_packed_size(req);
    uint8_t *buf = malloc(4 + n);
    assert_non_null(buf);
    buf[0] = (uint8_t)(n >> 24);
    buf[1] = (uint8_t)(n >> 16);
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    seq__client_request__pack(req, buf + 4);
    send_all(fd, buf, 4 + n);
    free(buf);
}

/* Reads exactly len bytes within WAIT_MS; false on timeout or close. */
static bool recv_exact(int fd, uint8_t *out, size_t len)
{
    size_t got = 0;
    while (got < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)WAIT_MS) <= 0)
            return false;
        ssize_t n = recv(fd, out + got, len - got, 0);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

/* The next response frame; free with seq__client_response__free_unpacked. */
static Seq__ClientResponse *raw_response(int fd)
{
    uint8_t h[4];
    assert_true(recv_exact(fd, h, 4));
    size_t len = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    assert_true(len < (1u << 20));
    uint8_t *buf = malloc(len + 1);
    assert_non_null(buf);
    assert_true(recv_exact(fd, buf, len));
    Seq__ClientResponse *r = seq__client_response__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(r);
    return r;
}

static Seq__ClientResponse *tx_status_raw(int fd, uint64_t rid, const uint8_t *id, size_t id_len)
{
    Seq__TxStatusRequest ts = SEQ__TX_STATUS_REQUEST__INIT;
    ts.id = (ProtobufCBinaryData){.len = id_len, .data = (uint8_t *)id};
    Seq__ClientRequest req = SEQ__CLIENT_REQUEST__INIT;
    req.request_id = rid;
    req.body_case = SEQ__CLIENT_REQUEST__BODY_TX_STATUS;
    req.tx_status = &ts;
    raw_request(fd, &req);
    Seq__ClientResponse *r = raw_response(fd);
    assert_int_equal(r->request_id, rid);
    return r;
}

/* A finalized transaction is found at its height and index in its block, a
 * submitted one is pending, any other id unknown; a short id is an error. */
static void test_tx_status(void **state)
{
    fixture *fx = *state;
    const seq_block *b2 = fx->blocks[1];
    uint32_t index = b2->tx_count - 1;
    int fd = raw_connect(fx);
    Seq__ClientResponse *r = tx_status_raw(fd, 11, b2->txs[index].id.b, SEQ_HASH_BYTES);
    assert_int_equal(r->body_case, SEQ__CLIENT_RESPONSE__BODY_TX_STATUS);
    assert_int_equal(r->tx_status->status, SEQ__TX_STATUS_REPLY__STATUS__FINALIZED);
    assert_int_equal(r->tx_status->height, 2);
    assert_int_equal(r->tx_status->index, index);
    assert_int_equal(r->tx_status->block_hash.len, SEQ_HASH_BYTES);
    assert_memory_equal(r->tx_status->block_hash.data, b2->hash.b, SEQ_HASH_BYTES);
    assert_memory_equal(r->tx_status->id.data, b2->txs[index].id.b, SEQ_HASH_BYTES);
    seq__client_response__free_unpacked(r, NULL);

    seq_client *c = client_connect(fx);
    seq_tx tx = {.ns = 5, .len = 4, .data = (const uint8_t *)"wait"};
    seq_submit_result res;
    assert_int_equal(seq_client_submit(c, &tx, 1, &res, WAIT_MS), 0);
    assert_int_equal(res.status, 0);
    r = tx_status_raw(fd, 12, res.id.b, SEQ_HASH_BYTES);
    assert_int_equal(r->tx_status->status, SEQ__TX_STATUS_REPLY__STATUS__PENDING);
    seq__client_response__free_unpacked(r, NULL);

    uint8_t other[SEQ_HASH_BYTES];
    memset(other, 0x5a, sizeof other);
    r = tx_status_raw(fd, 13, other, SEQ_HASH_BYTES);
    assert_int_equal(r->tx_status->status, SEQ__TX_STATUS_REPLY__STATUS__UNKNOWN);
    seq__client_response__free_unpacked(r, NULL);

    r = tx_status_raw(fd, 14, other, 31);
    assert_int_equal(r->body_case, SEQ__CLIENT_RESPONSE__BODY_ERROR);
    assert_int_equal(r->error->code, (uint32_t)-SEQ_EDECODE);
    seq__client_response__free_unpacked(r, NULL);
    close(fd);
    seq_client_close(c);
}

static Seq__ClientResponse *get_block_raw(int fd, uint64_t rid, uint64_t height, const seq_hash *hash)
{
    Seq__GetBlockRequest gb = SEQ__GET_BLOCK_REQUEST__INIT;
    if (hash) {
        gb.by_case = SEQ__GET_BLOCK_REQUEST__BY_HASH;
        gb.hash = (ProtobufCBinaryData){.len = SEQ_HASH_BYTES, .data = (uint8_t *)hash->b};
    } else {
        gb.by_case = SEQ__GET_BLOCK_REQUEST__BY_HEIGHT;
        gb.height = height;
    }
    Seq__ClientRequest req = SEQ__CLIENT_REQUEST__INIT;
    req.request_id = rid;
    req.body_case = SEQ__CLIENT_REQUEST__BODY_GET_BLOCK;
    req.get_block = &gb;
    raw_request(fd, &req);
    Seq__ClientResponse *r = raw_response(fd);
    assert_int_equal(r->request_id, rid);
    return r;
}

static void assert_block_reply(const fixture *fx, const Seq__ClientResponse *r, uint64_t height)
{
    const seq_block *want = fx->blocks[height - 1];
    assert_int_equal(r->body_case, SEQ__CLIENT_RESPONSE__BODY_BLOCK);
    const Seq__FinalizedBlock *fb = r->block->block;
    assert_non_null(fb);
    assert_int_equal(fb->block->header->height, height);
    assert_int_equal(fb->block->n_txs, want->tx_count);
    for (uint32_t i = 0; i < want->tx_count; i++) {
        assert_int_equal(fb->block->txs[i]->ns, want->txs[i].ns);
        assert_int_equal(fb->block->txs[i]->payload.len, want->txs[i].len);
        assert_memory_equal(fb->block->txs[i]->payload.data, want->txs[i].data, want->txs[i].len);
    }
    assert_int_equal(fb->cert->view, fx->certs[height - 1].view);
    assert_int_equal(fb->cert->hash.len, SEQ_HASH_BYTES);
    assert_memory_equal(fb->cert->hash.data, want->hash.b, SEQ_HASH_BYTES);
}

/* A stored block comes back by height and by hash with its certificate; a
 * height not stored is SEQ_ENOTFOUND, and the connection stays usable. */
static void test_get_block(void **state)
{
    fixture *fx = *state;
    int fd = raw_connect(fx);
    Seq__ClientResponse *r = get_block_raw(fd, 21, 2, NULL);
    assert_block_reply(fx, r, 2);
    seq__client_response__free_unpacked(r, NULL);
    r = get_block_raw(fd, 22, 0, &fx->blocks[2]->hash);
    assert_block_reply(fx, r, 3);
    seq__client_response__free_unpacked(r, NULL);
    r = get_block_raw(fd, 23, BLOCKS_STORED + 1, NULL);
    assert_int_equal(r->body_case, SEQ__CLIENT_RESPONSE__BODY_ERROR);
    assert_int_equal(r->error->code, (uint32_t)-SEQ_ENOTFOUND);
    seq__client_response__free_unpacked(r, NULL);
    r = get_block_raw(fd, 24, 1, NULL);
    assert_block_reply(fx, r, 1);
    seq__client_response__free_unpacked(r, NULL);
    close(fd);
}

/* A second subscribe on one connection is refused with an error, and the
 * first subscription goes on. */
static void test_second_subscribe_refused(void **state)
{
    fixture *fx = *state;
    int fd = raw_connect(fx);
    uint64_t nss[1] = {NS_BUSY};
    Seq__SubscribeRequest sub = SEQ__SUBSCRIBE_REQUEST__INIT;
    sub.n_namespaces = 1;
    sub.namespaces = nss;
    sub.from_height = BLOCKS_STORED;
    Seq__ClientRequest req = SEQ__CLIENT_REQUEST__INIT;
    req.request_id = 31;
    req.body_case = SEQ__CLIENT_REQUEST__BODY_SUBSCRIBE;
    req.subscribe = &sub;
    raw_request(fd, &req);
    Seq__ClientResponse *r = raw_response(fd);
    assert_int_equal(r->body_case, SEQ__CLIENT_RESPONSE__BODY_BATCH);
    assert_int_equal(r->request_id, 31);
    assert_int_equal(r->batch->header->height, BLOCKS_STORED);
    seq__client_response__free_unpacked(r, NULL);

    req.request_id = 32;
    sub.from_height = 1;
    raw_request(fd, &req);
    r = raw_response(fd);
    assert_int_equal(r->body_case, SEQ__CLIENT_RESPONSE__BODY_ERROR);
    assert_int_equal(r->request_id, 32);
    assert_int_equal(r->error->code, (uint32_t)-SEQ_EINVAL);
    seq__client_response__free_unpacked(r, NULL);

    commit_block(fx, BLOCKS_STORED + 1);
    atomic_store(&fx->deliver_height, BLOCKS_STORED + 1);
    assert_int_equal(uv_async_send(&fx->deliver), 0);
    r = raw_response(fd);
    assert_int_equal(r->body_case, SEQ__CLIENT_RESPONSE__BODY_BATCH);
    assert_int_equal(r->request_id, 31);
    assert_int_equal(r->batch->header->height, BLOCKS_STORED + 1);
    seq__client_response__free_unpacked(r, NULL);
    close(fd);
}

/* Connections beyond clients_max are closed at once; those within keep working. */
static void test_clients_max(void **state)
{
    fixture *fx = *state;
    seq_client *c[CLIENTS_MAX];
    for (uint32_t i = 0; i < CLIENTS_MAX; i++) {
        c[i] = client_connect(fx);
        assert_status_fixed(c[i]); /* accepted and counted before the next one */
    }
    int extra = raw_connect(fx);
    assert_true(closed_by_server(extra));
    close(extra);
    assert_status_fixed(c[CLIENTS_MAX - 1]);
    seq_client_close(c[0]);
    /* the closed one's place frees up (once the loop has seen it go) */
    bool accepted = false;
    for (int attempt = 0; attempt < 50 && !accepted; attempt++) {
        seq_client *again = client_connect(fx);
        seq_node_status st;
        accepted = seq_client_status(again, &st, WAIT_MS) == 0;
        seq_client_close(again);
        if (!accepted) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL); /* the server closes our fd first; no condition to wait on here */
        }
    }
    assert_true(accepted);
    for (uint32_t i = 1; i < CLIENTS_MAX; i++)
        seq_client_close(c[i]);
}

/* Starting on an address that is taken is SEQ_EIO and, once that loop has
 * run, leaves nothing allocated; a malformed address is SEQ_EADDR. */
static void test_start_failures(void **state)
{
    fixture *fx = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    seq_api_config cfg = {.loop = &loop, .listen = fx->listen, .frame_bytes_max = FRAME_BYTES_MAX,
                          .clients_max = 1, .send_queue_bytes_max = 1u << 20, .store = fx->store,
                          .hooks = {.ctx = fx, .tx = {.submit = hook_submit, .tx_fate = hook_tx_fate, .key_lookup = hook_key_lookup},
                                    .status = hook_status}};
    seq_api *a = NULL;
    assert_int_equal(seq_api_start(&a, &cfg), SEQ_EIO);
    assert_null(a);
    cfg.listen = "127.0.0.1";
    assert_int_equal(seq_api_start(&a, &cfg), SEQ_EADDR);
    cfg.listen = "not an address:port";
    assert_int_equal(seq_api_start(&a, &cfg), SEQ_EADDR);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Blocks heights from.. (n of them) after fx's stored chain, one big
 * payload each in NS_BUSY, certified; committed except the last. */
static void big_chain(fixture *fx, seq_block **blocks, seq_cert *certs, uint32_t n, uint32_t payload_bytes)
{
    uint8_t *payload = malloc(payload_bytes);
    assert_non_null(payload);
    const seq_block *parent = fx->blocks[BLOCKS_STORED - 1];
    for (uint32_t i = 0; i < n; i++) {
        memset(payload, (int)(i + 1), payload_bytes);
        seq_tx tx = {.ns = NS_BUSY, .len = payload_bytes, .data = payload};
        seq_header hd = {.chain_id = CHAIN_ID, .height = parent->h.height + 1, .view = parent->h.view + 1,
                         .parent = parent->hash, .parent_view = parent->h.view, .leader = 1,
                         .timestamp_ms = parent->h.timestamp_ms + 1};
        assert_int_equal(seq_block_build(&blocks[i], &hd, &tx, 1), 0);
        seq_vote votes[3];
        for (uint32_t k = 0; k < 3; k++)
            votes[k] = seq_test_vote(SEQ_VOTE_FINALIZE, hd.view, &blocks[i]->hash, k, keys[k], CHAIN_ID);
        assert_int_equal(seq_cert_build(&certs[i], &vs, votes, 3), 0);
        parent = blocks[i];
    }
    free(payload);
    seq_store_final *items = calloc(n - 1, sizeof *items);
    assert_non_null(items);
    for (uint32_t i = 0; i + 1 < n; i++)
        items[i] = (seq_store_final){blocks[i], &certs[i]};
    assert_int_equal(seq_store_commit_finalized(fx->store, items, n - 1), 0);
    free(items);
}

#define BIG_BLOCKS 64u
#define BIG_PAYLOAD_BYTES (128u << 10)

/* A subscriber that reads slowly (tiny receive buffer, not reading while
 * megabytes are due) still gets every height once, in order, including a
 * block delivered live while it was behind. */
static void test_slow_subscriber_gets_everything_in_order(void **state)
{
    fixture *fx = *state;
    seq_block **blocks = calloc(BIG_BLOCKS, sizeof *blocks);
    seq_cert *certs = calloc(BIG_BLOCKS, sizeof *certs);
    assert_non_null(blocks);
    assert_non_null(certs);
    big_chain(fx, blocks, certs, BIG_BLOCKS, BIG_PAYLOAD_BYTES);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int small = 4096;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    const char *colon = strrchr(fx->listen, ':');
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)atoi(colon + 1))};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    uint64_t nss[1] = {NS_BUSY};
    Seq__SubscribeRequest sub = SEQ__SUBSCRIBE_REQUEST__INIT;
    sub.n_namespaces = 1;
    sub.namespaces = nss;
    sub.from_height = 1;
    Seq__ClientRequest req = SEQ__CLIENT_REQUEST__INIT;
    req.request_id = 41;
    req.body_case = SEQ__CLIENT_REQUEST__BODY_SUBSCRIBE;
    req.subscribe = &sub;
    raw_request(fd, &req);

    /* the last block is finalized while the subscriber is megabytes behind */
    uint64_t last = BLOCKS_STORED + BIG_BLOCKS;
    seq_store_final item = {blocks[BIG_BLOCKS - 1], &certs[BIG_BLOCKS - 1]};
    assert_int_equal(seq_store_commit_finalized(fx->store, &item, 1), 0);
    atomic_store(&fx->deliver_height, last);
    assert_int_equal(uv_async_send(&fx->deliver), 0);

    for (uint64_t h = 1; h <= last; h++) {
        Seq__ClientResponse *r = raw_response(fd);
        assert_int_equal(r->body_case, SEQ__CLIENT_RESPONSE__BODY_BATCH);
        assert_int_equal(r->batch->header->height, h);
        uint32_t want_txs = h <= BLOCKS_STORED ? 2 : 1;
        assert_int_equal(r->batch->n_txs, want_txs);
        if (h > BLOCKS_STORED) {
            assert_int_equal(r->batch->txs[0]->payload.len, BIG_PAYLOAD_BYTES);
            assert_int_equal(r->batch->txs[0]->payload.data[BIG_PAYLOAD_BYTES - 1], (uint8_t)(h - BLOCKS_STORED));
        }
        seq__client_response__free_unpacked(r, NULL);
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, (int)QUIET_MS), 0); /* nothing twice */
    assert_int_equal(atomic_load(&fx->deliver_errors), 0);
    close(fd);
    for (uint32_t i = 0; i < BIG_BLOCKS; i++)
        seq_block_free(blocks[i]);
    free(blocks);
    free(certs);
}

/* ---- shutdown --------------------------------------------------------------------------- */

/* Closing the API with a subscriber, a plain client and an idle raw
 * connection still open frees everything (ASan/LSan) and calls done; the
 * clients see their connections closed. */
static void test_close_with_clients_open(void **state)
{
    fixture *fx = *state;
    seq_client *sub = client_connect(fx);
    seq_client *plain = client_connect(fx);
    int raw = raw_connect(fx);
    const seq_ns ns[1] = {NS_BUSY};
    assert_int_equal(seq_client_subscribe(sub, ns, 1, 1), 0);
    expect_batches(fx, sub, 1, BLOCKS_STORED, ns, 1);
    assert_status_fixed(plain);

    loop_stop(fx);
    assert_true(closed_by_server(raw));
    close(raw);
    seq_batch *b = NULL;
    assert_int_equal(seq_client_next_batch(sub, &b, WAIT_MS), SEQ_ECLOSED);
    seq_node_status st;
    assert_int_not_equal(seq_client_status(plain, &st, WAIT_MS), 0);
    seq_client_close(sub);
    seq_client_close(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submit_verdicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_verdicts_batched, setup_submit_many, teardown),
        cmocka_unit_test_setup_teardown(test_status_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_stored_then_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_from_middle_and_future, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribers_at_spread_heights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeats_arrive_on_a_quiet_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_closes_only_that_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_subscribe_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_subscriber_gets_everything_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_clients_open, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
