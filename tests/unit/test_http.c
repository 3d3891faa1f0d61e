/* The HTTP port (lib/http.c, http_routes.c, http_stream.c) over a real libuv
 * loop in a thread of the test, a real LMDB store holding real finalized
 * blocks with real certificates, a real mempool and client-key tracker
 * behind the hooks, and raw sockets on 127.0.0.1 speaking HTTP/1.1 by hand,
 * well-formed and not. Every wait is bounded. The loop thread never calls
 * cmocka: the test thread checks what comes back over the sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "batch_json.h"
#include "client.h"
#include "errors.h"
#include "http.h"
#include "log.h"
#include "mempool.h"
#include "replica.h"
#include "store.h"
#include "testutil.h"
#include "txtrack.h"
#include "types.h"
#include "verify.h"

#define CHAIN_ID 42u
#define N_VALIDATORS 4u
#define BLOCKS_STORED 3u
#define BLOCKS_MAX 40u       /* the slow-reader test commits up to here */
#define NS_BUSY 10u          /* transactions in every block */
#define NS_OTHER 20u
#define NS_EMPTY 30u         /* never any */
#define WAIT_MS 3000
#define TX_BYTES_MAX 1024u   /* the mempool's payload limit */
#define CLIENTS_MAX 8u
#define HEADER_BYTES_MAX 4096u
#define BODY_BYTES_MAX (64u << 10)
#define REQUEST_TIMEOUT_MS 700u
#define HEARTBEAT_MS 200u
#define SEND_QUEUE_BYTES 8192u
#define BIG_PAYLOAD_BYTES 200000u /* slow-reader blocks: their events outgrow the kernel buffers too */
#define CONN_BUF_BYTES (4u << 20)

/* ---- fixture ------------------------------------------------------------------------ */

typedef struct {
    char dir[256];
    seq_store *store;
    seq_mempool *mempool;
    seq_txtrack *txtrack;
    uv_loop_t loop;
    uv_async_t deliver;      /* test thread -> loop: seq_http_delivered(deliver_height) */
    uv_async_t stop;
    seq_http *http;
    uint16_t port;
    pthread_t thread;
    bool thread_running;
    _Atomic uint64_t deliver_height;
    _Atomic uint64_t delivered;   /* deliveries the loop has handed to the port */
    _Atomic bool http_done;
    seq_block *blocks[BLOCKS_MAX];
    seq_cert certs[BLOCKS_MAX];
    uint32_t committed;
} fixture;

static seq_keypair *keys[N_VALIDATORS];
static seq_validators vs;
static const uint8_t dropped_payload[] = "dropped-tx";

/* What seq_node_submit does: the key tracker around the mempool. */
static int hook_submit(void *ctx, seq_ns ns, const uint8_t *data, uint32_t len, const uint8_t *key, size_t key_len,
                       seq_hash *id)
{
    fixture *fx = ctx;
    if (key_len == 0)
        return seq_mempool_add(fx->mempool, ns, data, len, id);
    seq_tx tx = {.ns = ns, .len = len, .data = data};
    seq_tx_compute_id(&tx);
    *id = tx.id;
    int rc = seq_txtrack_key_check(fx->txtrack, key, key_len, &tx.id);
    if (rc == 0)
        rc = seq_txtrack_key_commit(fx->txtrack, key, key_len, &tx.id, seq_mempool_add(fx->mempool, ns, data, len, id));
    return rc;
}

static int hook_tx_fate(void *ctx, const seq_hash *id, int *reason)
{
    fixture *fx = ctx;
    if (seq_mempool_contains(fx->mempool, id))
        return SEQ_TX_PENDING;
    return seq_txtrack_dropped_get(fx->txtrack, id, reason) ? SEQ_TX_DROPPED : SEQ_TX_UNKNOWN;
}

static bool hook_key_lookup(void *ctx, const uint8_t *key, size_t key_len, seq_hash *id)
{
    fixture *fx = ctx;
    return seq_txtrack_key_get(fx->txtrack, key, key_len, id);
}

static void hook_metrics(void *ctx, seq_metrics *m)
{
    fixture *fx = ctx;
    seq_store_tip tip = {0};
    if (seq_store_tip_get(fx->store, &tip) != 0)
        tip.height = 0;
    m->chain_id = CHAIN_ID;
    m->self = 1;
    snprintf(m->name, sizeof m->name, "node\"1");
    m->validators = N_VALIDATORS;
    m->height = tip.height;
    m->view = 5678;
    m->peers_connected = 3;
    m->mempool_txs = seq_mempool_count(fx->mempool);
    m->mempool_bytes = seq_mempool_bytes(fx->mempool);
}

/* Block h (1-based): two txs in NS_BUSY, one in NS_OTHER, given unsorted;
 * payload_bytes > 0 makes the NS_BUSY ones that large. */
static void block_make(fixture *fx, uint32_t h, uint32_t payload_bytes)
{
    static uint8_t big[2][BIG_PAYLOAD_BYTES];
    char p0[32], p1[32], p2[32];
    int l0 = snprintf(p0, sizeof p0, "busy-%u-a", h);
    int l1 = snprintf(p1, sizeof p1, "other-%u", h);
    int l2 = snprintf(p2, sizeof p2, "busy-%u-bb", h);
    seq_tx txs[3] = {{.ns = NS_BUSY, .len = (uint32_t)l0, .data = (const uint8_t *)p0},
                     {.ns = NS_OTHER, .len = (uint32_t)l1, .data = (const uint8_t *)p1},
                     {.ns = NS_BUSY, .len = (uint32_t)l2, .data = (const uint8_t *)p2}};
    if (payload_bytes) {
        for (int k = 0; k < 2; k++) {
            memset(big[k], 'a' + (int)(h % 26), payload_bytes);
            snprintf((char *)big[k], 16, "h%u-%d", h, k);
        }
        txs[0] = (seq_tx){.ns = NS_BUSY, .len = payload_bytes, .data = big[0]};
        txs[2] = (seq_tx){.ns = NS_BUSY, .len = payload_bytes, .data = big[1]};
    }
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

static void commit_next(fixture *fx)
{
    uint32_t h = ++fx->committed;
    assert_true(h <= BLOCKS_MAX);
    seq_store_final item = {.block = fx->blocks[h - 1], .cert = &fx->certs[h - 1]};
    assert_int_equal(seq_store_commit_finalized(fx->store, &item, 1), 0);
}

/* Runs on the loop thread: hands the block at deliver_height to the port
 * exactly as the node does after a commit. */
static void deliver_cb(uv_async_t *h)
{
    fixture *fx = h->data;
    uint64_t height = atomic_load(&fx->deliver_height);
    seq_http_delivered(fx->http, fx->blocks[height - 1], &fx->certs[height - 1]);
    atomic_fetch_add(&fx->delivered, 1);
}

static void http_done_cb(void *ctx)
{
    fixture *fx = ctx;
    atomic_store(&fx->http_done, true);
}

static void stop_cb(uv_async_t *h)
{
    fixture *fx = h->data;
    seq_http_close(fx->http, http_done_cb, fx);
    uv_close((uv_handle_t *)&fx->deliver, NULL);
    uv_close((uv_handle_t *)&fx->stop, NULL);
}

/* An ephemeral port nobody listens on right now: bind port 0, read it, close. */
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

static void *loop_main(void *arg)
{
    fixture *fx = arg;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(seq_test_tmpdir(fx->dir, sizeof fx->dir, "http"), 0);
    seq_store_opts so = {.chain_id = CHAIN_ID, .map_bytes = 64u << 20};
    assert_int_equal(seq_store_open(&fx->store, fx->dir, &so), 0);
    for (uint32_t h = 1; h <= BLOCKS_MAX; h++)
        block_make(fx, h, h > BLOCKS_STORED + 1 ? BIG_PAYLOAD_BYTES : 0);
    for (uint32_t h = 1; h <= BLOCKS_STORED; h++)
        commit_next(fx);
    seq_mempool_limits ml = {.txs_max = 1000, .bytes_max = 1u << 20, .tx_bytes_max = TX_BYTES_MAX,
                             .namespaces_max = 16, .recent_max = 100};
    assert_int_equal(seq_mempool_new(&fx->mempool, &ml), 0);
    assert_int_equal(seq_txtrack_new(&fx->txtrack, 64, 64), 0);
    seq_tx dropped = {.ns = 5, .len = sizeof dropped_payload - 1, .data = dropped_payload};
    seq_tx_compute_id(&dropped);
    seq_txtrack_dropped_put(fx->txtrack, &dropped.id, SEQ_DROP_EXPIRED);

    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(uv_async_init(&fx->loop, &fx->deliver, deliver_cb), 0);
    assert_int_equal(uv_async_init(&fx->loop, &fx->stop, stop_cb), 0);
    fx->deliver.data = fx->stop.data = fx;
    char listen[32];
    uint16_t port = free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    seq_http_config cfg = {.loop = &fx->loop, .listen = listen, .clients_max = CLIENTS_MAX,
                           .header_bytes_max = HEADER_BYTES_MAX, .body_bytes_max = BODY_BYTES_MAX,
                           .request_timeout_ms = REQUEST_TIMEOUT_MS, .heartbeat_ms = HEARTBEAT_MS,
                           .send_queue_bytes_max = SEND_QUEUE_BYTES, .store = fx->store,
                           .hooks = {.ctx = fx, .tx = {.submit = hook_submit, .tx_fate = hook_tx_fate,
                                                        .key_lookup = hook_key_lookup},
                                     .metrics = hook_metrics}};
    assert_int_equal(seq_http_start(&fx->http, &cfg), 0);
    fx->port = seq_http_port(fx->http);
    assert_int_equal(fx->port, port);
    assert_int_equal(pthread_create(&fx->thread, NULL, loop_main, fx), 0);
    fx->thread_running = true;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    if (fx->thread_running) {
        assert_int_equal(uv_async_send(&fx->stop), 0);
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += WAIT_MS / 1000;
        assert_int_equal(pthread_timedjoin_np(fx->thread, NULL, &deadline), 0);
        assert_true(atomic_load(&fx->http_done));
    }
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    for (uint32_t h = 0; h < BLOCKS_MAX; h++)
        seq_block_free(fx->blocks[h]);
    seq_txtrack_free(fx->txtrack);
    seq_mempool_free(fx->mempool);
    seq_store_close(fx->store);
    assert_int_equal(seq_test_rmtree(fx->dir), 0);
    free(fx);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    seq_log_set_level(SEQ_LOG_ERROR);
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

/* ---- a raw HTTP/1.1 client ------------------------------------------------------------- */

typedef struct {
    int fd;
    size_t len;              /* bytes in buf not consumed yet */
    bool eof;
    char buf[CONN_BUF_BYTES];
} conn;

typedef struct {
    int status;
    char head[HEADER_BYTES_MAX * 4];
    char *body;              /* NUL-terminated, owned */
    size_t body_len;
    json_t *json;            /* parsed body when it is JSON, else NULL */
} response;

static conn *conn_open_rcvbuf(const fixture *fx, int rcvbuf)
{
    conn *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    if (rcvbuf)
        assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(fx->port)};
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
    return c;
}

static conn *conn_open(const fixture *fx) { return conn_open_rcvbuf(fx, 0); }

static void conn_close(conn *c)
{
    close(c->fd);
    free(c);
}

static void send_all(conn *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        assert_true(k > 0);
        s += k;
        n -= (size_t)k;
    }
}

static void send_str(conn *c, const char *s) { send_all(c, s, strlen(s)); }

/* Reads more into the buffer within timeout_ms; false on timeout. */
static bool fill(conn *c, int timeout_ms)
{
    if (c->eof)
        return false;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int rc = poll(&p, 1, timeout_ms);
    if (rc <= 0)
        return false;
    assert_true(c->len < sizeof c->buf);
    ssize_t k = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (k <= 0) {
        c->eof = true;
        return k == 0;
    }
    c->len += (size_t)k;
    return true;
}

static void consume(conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static const char *header_find(const response *r, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':')
            return p + 2 + n + 1 + strspn(p + 2 + n + 1, " ");
    return NULL;
}

/* One response (status line, headers, Content-Length body) off the stream. */
static void response_read(conn *c, response *r)
{
    memset(r, 0, sizeof *r);
    char *end;
    while (!(c->len > 0 && (end = memmem(c->buf, c->len, "\r\n\r\n", 4)) != NULL))
        if (!fill(c, WAIT_MS))
            fail_msg("no complete response head (have %zu bytes)", c->len);
    size_t head_len = (size_t)(end - c->buf) + 4;
    assert_true(head_len < sizeof r->head);
    memcpy(r->head, c->buf, head_len);
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
    consume(c, head_len);
    const char *cl = header_find(r, "Content-Length");
    assert_non_null(cl);
    r->body_len = strtoul(cl, NULL, 10);
    while (c->len < r->body_len)
        if (!fill(c, WAIT_MS))
            fail_msg("body cut short: %zu of %zu bytes", c->len, r->body_len);
    r->body = malloc(r->body_len + 1);
    assert_non_null(r->body);
    memcpy(r->body, c->buf, r->body_len);
    r->body[r->body_len] = '\0';
    consume(c, r->body_len);
    const char *ct = header_find(r, "Content-Type");
    if (ct && strncmp(ct, "application/json", 16) == 0) {
        r->json = json_loadb(r->body, r->body_len, 0, NULL);
        assert_non_null(r->json);
    }
}

static void response_free(response *r)
{
    free(r->body);
    json_decref(r->json);
}

static void request(conn *c, const char *method, const char *target, const char *body, response *r)
{
    char head[1024];
    snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: test\r\nContent-Length: %zu\r\n\r\n", method, target,
             body ? strlen(body) : 0);
    send_str(c, head);
    if (body)
        send_str(c, body);
    response_read(c, r);
}

/* True when the server closed the connection within WAIT_MS (nothing else arrives). */
static bool closed_by_server(conn *c)
{
    while (fill(c, WAIT_MS))
        ;
    return c->eof && c->len == 0;
}

/* A JSON error reply with this status: {"error": non-empty text, "code": status}. */
static void assert_error(const response *r, int status)
{
    if (r->status != status)
        fail_msg("want %d, got %d: %s", status, r->status, r->body);
    assert_non_null(r->json);
    const char *msg = json_string_value(json_object_get(r->json, "error"));
    assert_non_null(msg);
    assert_true(msg[0] != '\0');
    assert_int_equal(json_integer_value(json_object_get(r->json, "code")), status);
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s)
        fail_msg("no string %s", key);
    return s;
}

static void b64(char *out, size_t cap, const void *p, size_t n)
{
    sodium_bin2base64(out, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
}

static void hex_id(char out[2 * SEQ_HASH_BYTES + 1], seq_ns ns, const char *payload)
{
    seq_tx t = {.ns = ns, .len = (uint32_t)strlen(payload), .data = (const uint8_t *)payload};
    seq_tx_compute_id(&t);
    seq_hex(out, t.id.b, SEQ_HASH_BYTES);
}

/* ---- health, status, metrics ------------------------------------------------------------ */

/* /healthz, /status and /metrics answer on one kept-alive connection, with
 * the hooks' figures and the port's own (its connection, its requests). */
static void test_health_status_metrics(void **state)
{
    fixture *fx = *state;
    conn *c = conn_open(fx);
    response r;
    request(c, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "ok")));
    assert_non_null(strstr(r.head, "Connection: keep-alive"));
    response_free(&r);

    request(c, "GET", "/status", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "height")), BLOCKS_STORED);
    assert_int_equal(json_integer_value(json_object_get(r.json, "view")), 5678);
    assert_int_equal(json_integer_value(json_object_get(r.json, "chain_id")), CHAIN_ID);
    assert_int_equal(json_integer_value(json_object_get(r.json, "peers")), 3);
    assert_string_equal(jstr(r.json, "name"), "node\"1");
    response_free(&r);

    request(c, "GET", "/metrics", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(r.body, "\nseq_height 3\n"));
    assert_non_null(strstr(r.body, "\nseq_clients{port=\"http\"} 1\n"));
    assert_non_null(strstr(r.body, "\nseq_http_requests_total 2\n")); /* healthz, status */
    assert_non_null(strstr(r.body, "name=\"node\\\"1\""));
    response_free(&r);
    conn_close(c);
}

/* Two requests in one write are answered in order on the same connection;
 * "Connection: close" is honoured after its reply; HTTP/1.0 without
 * keep-alive closes too. */
static void test_keep_alive_and_pipelining(void **state)
{
    fixture *fx = *state;
    conn *c = conn_open(fx);
    send_str(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /v1/tx/zz HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n");
    response r;
    response_read(c, &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    response_read(c, &r);
    assert_error(&r, 400);
    assert_non_null(strstr(r.head, "Connection: keep-alive"));
    response_free(&r);
    response_read(c, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(json_object_get(r.json, "height"));
    assert_non_null(strstr(r.head, "Connection: close"));
    response_free(&r);
    assert_true(closed_by_server(c)); /* the fourth request is never answered */
    conn_close(c);

    /* a reply to HEAD announces its length but carries no body */
    c = conn_open(fx);
    send_str(c, "HEAD /healthz HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n");
    char *end;
    while (!(c->len > 0 && (end = memmem(c->buf, c->len, "\r\n\r\n", 4)) != NULL))
        assert_true(fill(c, WAIT_MS));
    assert_memory_equal(c->buf, "HTTP/1.1 405 ", 13);
    consume(c, (size_t)(end - c->buf) + 4);
    response_read(c, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "ok")));
    response_free(&r);
    conn_close(c);

    c = conn_open(fx);
    send_str(c, "GET /healthz HTTP/1.0\r\n\r\n");
    response_read(c, &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    assert_true(closed_by_server(c));
    conn_close(c);
}

/* ---- submit and transaction status ------------------------------------------------------- */

/* A single transaction is accepted (202) under the id the format defines
 * and then pending; again it is a duplicate (409); over the mempool's
 * payload limit it is too_large (413); a batch gets one verdict per
 * transaction in order; a dropped one says why; an unknown one is unknown. */
static void test_submit_and_status(void **state)
{
    fixture *fx = *state;
    conn *c = conn_open(fx);
    char body[4096], data[64], id[65], target[128];
    b64(data, sizeof data, "hello", 5);
    snprintf(body, sizeof body, "{\"ns\": 7, \"data\": \"%s\"}", data);
    response r;
    request(c, "POST", "/v1/tx", body, &r);
    assert_int_equal(r.status, 202);
    hex_id(id, 7, "hello");
    assert_string_equal(jstr(r.json, "id"), id);
    assert_string_equal(jstr(r.json, "status"), "accepted");
    response_free(&r);

    snprintf(target, sizeof target, "/v1/tx/%s", id);
    request(c, "GET", target, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "status"), "pending");
    assert_string_equal(jstr(r.json, "id"), id);
    response_free(&r);

    request(c, "POST", "/v1/tx", body, &r);
    assert_error(&r, 409);
    assert_string_equal(jstr(r.json, "status"), "duplicate");
    assert_string_equal(jstr(r.json, "id"), id);
    response_free(&r);

    static uint8_t big[TX_BYTES_MAX + 1];
    static char big64[2 * TX_BYTES_MAX + 64], big_body[2 * TX_BYTES_MAX + 128];
    b64(big64, sizeof big64, big, sizeof big);
    snprintf(big_body, sizeof big_body, "{\"ns\": \"7\", \"data\": \"%s\"}", big64);
    request(c, "POST", "/v1/tx", big_body, &r);
    assert_error(&r, 413);
    assert_string_equal(jstr(r.json, "status"), "too_large");
    response_free(&r);

    char d1[16], d2[16];
    b64(d1, sizeof d1, "one", 3);
    b64(d2, sizeof d2, "", 0);
    snprintf(body, sizeof body, "{\"txs\": [{\"ns\": 8, \"data\": \"%s\"}, {\"ns\": 7, \"data\": \"%s\"}, "
                                "{\"ns\": 9, \"data\": \"%s\"}]}", d1, data, d2);
    request(c, "POST", "/v1/tx", body, &r);
    assert_int_equal(r.status, 200);
    json_t *res = json_object_get(r.json, "results");
    assert_int_equal(json_array_size(res), 3);
    assert_string_equal(jstr(json_array_get(res, 0), "status"), "accepted");
    assert_string_equal(jstr(json_array_get(res, 1), "status"), "duplicate");
    assert_string_equal(jstr(json_array_get(res, 2), "status"), "accepted");
    hex_id(id, 9, "");
    assert_string_equal(jstr(json_array_get(res, 2), "id"), id);
    response_free(&r);

    /* a client that waits for 100 Continue before its body gets it */
    b64(d1, sizeof d1, "later", 5);
    snprintf(body, sizeof body, "{\"ns\": 8, \"data\": \"%s\"}", d1);
    char head[256];
    snprintf(head, sizeof head, "POST /v1/tx HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
             strlen(body));
    send_str(c, head);
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    while (c->len < sizeof cont - 1)
        assert_true(fill(c, WAIT_MS));
    assert_memory_equal(c->buf, cont, sizeof cont - 1);
    consume(c, sizeof cont - 1);
    send_str(c, body);
    response_read(c, &r);
    assert_int_equal(r.status, 202);
    response_free(&r);

    hex_id(id, 5, (const char *)dropped_payload);
    snprintf(target, sizeof target, "/v1/tx/%s", id);
    request(c, "GET", target, NULL, &r);
    assert_string_equal(jstr(r.json, "status"), "dropped");
    assert_string_equal(jstr(r.json, "reason"), seq_drop_reason_name(SEQ_DROP_EXPIRED));
    response_free(&r);

    request(c, "GET", "/v1/tx/00000000000000000000000000000000000000000000000000000000000000aB", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "status"), "unknown");
    response_free(&r);
    conn_close(c);
}

/* A keyed submit is found by its key (percent-encoded in the query); the
 * same key and transaction again is accepted again; the key used for
 * another transaction is a conflict (409); an unknown key is unknown. */
static void test_client_keys(void **state)
{
    fixture *fx = *state;
    conn *c = conn_open(fx);
    char body[512], data[64], id[65];
    b64(data, sizeof data, "keyed", 5);
    snprintf(body, sizeof body, "{\"ns\": 4, \"data\": \"%s\", \"client_key\": \"order 17/a\"}", data);
    response r;
    request(c, "POST", "/v1/tx", body, &r);
    assert_int_equal(r.status, 202);
    response_free(&r);
    request(c, "POST", "/v1/tx", body, &r);
    assert_int_equal(r.status, 202);
    response_free(&r);

    request(c, "GET", "/v1/tx?client_key=order%2017%2Fa", NULL, &r);
    assert_int_equal(r.status, 200);
    hex_id(id, 4, "keyed");
    assert_string_equal(jstr(r.json, "id"), id);
    assert_string_equal(jstr(r.json, "status"), "pending");
    assert_string_equal(jstr(r.json, "client_key"), "order 17/a");
    response_free(&r);

    char other[64];
    b64(other, sizeof other, "other", 5);
    snprintf(body, sizeof body, "{\"ns\": 4, \"data\": \"%s\", \"client_key\": \"order 17/a\"}", other);
    request(c, "POST", "/v1/tx", body, &r);
    assert_error(&r, 409);
    assert_string_equal(jstr(r.json, "status"), "key_conflict");
    response_free(&r);

    request(c, "GET", "/v1/tx?client_key=nobody", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "status"), "unknown");
    assert_null(json_object_get(r.json, "id"));
    response_free(&r);
    conn_close(c);
}

/* A finalized transaction's status carries what proves it: header,
 * certificate, path and inclusion proof, which pass seq_tx_proof_check
 * against the validators. */
static void test_finalized_status_proves(void **state)
{
    fixture *fx = *state;
    const seq_block *b = fx->blocks[1];
    uint32_t index = 2; /* sorted: two of NS_BUSY, then NS_OTHER */
    assert_int_equal(b->txs[index].ns, NS_OTHER);
    char id[65], target[128];
    seq_hex(id, b->txs[index].id.b, SEQ_HASH_BYTES);
    assert_int_equal(seq_store_index_sync(fx->store), 0);
    snprintf(target, sizeof target, "/v1/tx/%s", id);
    conn *c = conn_open(fx);
    response r;
    request(c, "GET", target, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "status"), "finalized");
    assert_int_equal(json_integer_value(json_object_get(r.json, "height")), 2);
    assert_int_equal(json_integer_value(json_object_get(r.json, "index")), index);
    assert_int_equal(json_integer_value(json_object_get(r.json, "ns")), NS_OTHER);
    char hash[65];
    seq_hex(hash, b->hash.b, SEQ_HASH_BYTES);
    assert_string_equal(jstr(r.json, "block_hash"), hash);

    seq_header h;
    seq_cert cert;
    seq_nsproof proof;
    char err[128];
    assert_int_equal(seq_header_from_json(json_object_get(r.json, "header"), "header", &h, err, sizeof err), 0);
    assert_int_equal(seq_cert_from_json(json_object_get(r.json, "cert"), "cert", &cert, err, sizeof err), 0);
    assert_int_equal(seq_nsproof_from_json(json_object_get(r.json, "proof"), "proof", &proof, err, sizeof err), 0);
    assert_int_equal(json_array_size(json_object_get(r.json, "cert_path")), 0);
    proof.count = 1;
    seq_tx tx = b->txs[index];
    assert_int_equal(seq_tx_proof_check(&h, &cert, NULL, 0, &tx, &proof, &vs, CHAIN_ID, err, sizeof err), 0);
    tx.id.b[0] ^= 1; /* the check can fail */
    assert_int_not_equal(seq_tx_proof_check(&h, &cert, NULL, 0, &tx, &proof, &vs, CHAIN_ID, err, sizeof err), 0);
    response_free(&r);
    conn_close(c);
}

/* ---- blocks and batches ------------------------------------------------------------------ */

static seq_batch *batch_of(const json_t *j)
{
    seq_batch *b = NULL;
    bool verified = true;
    char err[160] = "";
    if (seq_batch_from_json(j, &b, &verified, err, sizeof err) != 0)
        fail_msg("batch JSON refused: %s", err);
    assert_false(verified); /* the node does not claim to have checked its own batch */
    return b;
}

/* namespace ns's batch of block height holds exactly its transactions. */
static void assert_batch(const fixture *fx, const seq_batch *b, uint64_t height, seq_ns ns)
{
    const seq_block *blk = fx->blocks[height - 1];
    assert_int_equal(b->header.height, height);
    assert_int_equal(b->ns, ns);
    assert_memory_equal(b->block_hash.b, blk->hash.b, SEQ_HASH_BYTES);
    uint32_t k = 0;
    for (uint32_t i = 0; i < blk->tx_count; i++) {
        if (blk->txs[i].ns != ns)
            continue;
        assert_true(k < b->tx_count);
        assert_int_equal(b->txs[k].len, blk->txs[i].len);
        assert_memory_equal(b->txs[k].data, blk->txs[i].data, blk->txs[i].len);
        k++;
    }
    assert_int_equal(b->tx_count, k);
}

/* /v1/blocks/{h}?ns=N gives the batch in batch_json's form, which passes
 * the client's checks (certificate, proof) for a namespace with and without
 * transactions; /batches gives consecutive heights that pass a stream
 * verifier, bounded by limit and the tip, with where to go on. */
static void test_blocks_and_batches(void **state)
{
    fixture *fx = *state;
    conn *c = conn_open(fx);
    response r;
    char why[160];
    const seq_ns nss[2] = {NS_BUSY, NS_EMPTY};
    for (int k = 0; k < 2; k++) {
        char target[64];
        snprintf(target, sizeof target, "/v1/blocks/2?ns=%u", (unsigned)nss[k]);
        request(c, "GET", target, NULL, &r);
        assert_int_equal(r.status, 200);
        seq_batch *b = batch_of(r.json);
        assert_batch(fx, b, 2, nss[k]);
        assert_int_equal(seq_batch_check(b, &vs, CHAIN_ID, why, sizeof why), 0);
        seq_batch_free(b);
        response_free(&r);
    }

    request(c, "GET", "/v1/namespaces/10/batches?from=1&limit=2", NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *arr = json_object_get(r.json, "batches");
    assert_int_equal(json_array_size(arr), 2);
    assert_int_equal(json_integer_value(json_object_get(r.json, "next")), 3);
    assert_int_equal(json_integer_value(json_object_get(r.json, "tip")), BLOCKS_STORED);
    response_free(&r);

    request(c, "GET", "/v1/namespaces/10/batches?from=1", NULL, &r);
    arr = json_object_get(r.json, "batches");
    assert_int_equal(json_array_size(arr), BLOCKS_STORED);
    seq_verifier v;
    seq_verifier_init(&v, &vs, CHAIN_ID);
    assert_int_equal(seq_verifier_expect(&v, NS_BUSY, 1, NULL), 0);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        seq_batch *b = batch_of(json_array_get(arr, i));
        assert_batch(fx, b, i + 1, NS_BUSY);
        if (seq_verifier_check(&v, b, why, sizeof why) != 0)
            fail_msg("batch %zu: %s", i + 1, why);
        seq_batch_free(b);
    }
    assert_int_equal(json_integer_value(json_object_get(r.json, "next")), BLOCKS_STORED + 1);
    response_free(&r);

    request(c, "GET", "/v1/namespaces/10/batches?from=99&limit=5", NULL, &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "batches")), 0);
    assert_int_equal(json_integer_value(json_object_get(r.json, "next")), 99);
    response_free(&r);
    conn_close(c);
}

/* Many pipelined requests for large replies, sent before reading any: the
 * node stops parsing while its unsent replies exceed the bound (the rest
 * is held) and resumes as the client reads; every reply comes, in order. */
static void test_pipelining_backpressure(void **state)
{
    fixture *fx = *state;
    while (fx->committed < BLOCKS_MAX)
        commit_next(fx);
    conn *c = conn_open_rcvbuf(fx, 4096);
    char reqs[64 * 64];
    size_t len = 0;
    for (uint32_t h = BLOCKS_STORED + 1; h <= BLOCKS_MAX; h++)
        len += (size_t)snprintf(reqs + len, sizeof reqs - len, "GET /v1/blocks/%u?ns=10 HTTP/1.1\r\nHost: t\r\n\r\n",
                                (unsigned)h);
    send_all(c, reqs, len); /* ~20 MB of replies asked for */
    for (uint32_t h = BLOCKS_STORED + 1; h <= BLOCKS_MAX; h++) {
        response r;
        response_read(c, &r);
        assert_int_equal(r.status, 200);
        seq_batch *b = batch_of(r.json);
        assert_batch(fx, b, h, NS_BUSY);
        seq_batch_free(b);
        response_free(&r);
    }
    conn_close(c);
}

/* ---- bad requests ------------------------------------------------------------------------ */

/* Each malformed parameter, body, path or method gets its 4xx with a JSON
 * {"error", "code"}, and the connection survives for the next request. */
static void test_bad_parameters(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *method, *target, *body;
        int status;
    } cases[] = {
        {"GET", "/nope", NULL, 404},
        {"GET", "/v1/blocks", NULL, 404},
        {"GET", "/v1//tx", NULL, 404},
        {"DELETE", "/status", NULL, 405},
        {"POST", "/metrics", NULL, 405},
        {"GET", "/v1/tx/abc", NULL, 400},
        {"GET", "/v1/tx/000000000000000000000000000000000000000000000000000000000000000g", NULL, 400},
        {"GET", "/v1/tx/00000000000000000000000000000000000000000000000000000000000000000", NULL, 400},
        {"GET", "/v1/tx", NULL, 400},
        {"GET", "/v1/tx?client_key=", NULL, 400},
        {"GET", "/v1/tx?client_key=%zz", NULL, 400},
        {"GET", "/v1/blocks/2", NULL, 400},
        {"GET", "/v1/blocks/0?ns=1", NULL, 400},
        {"GET", "/v1/blocks/-1?ns=1", NULL, 400},
        {"GET", "/v1/blocks/2?ns=1&ns=2", NULL, 400},
        {"GET", "/v1/blocks/2?ns=18446744073709551616", NULL, 400},
        {"GET", "/v1/blocks/2?ns=1&color=red", NULL, 400},
        {"GET", "/v1/blocks/99?ns=1", NULL, 404},
        {"GET", "/v1/namespaces/x/batches?from=1", NULL, 400},
        {"GET", "/v1/namespaces/1/batches", NULL, 400},
        {"GET", "/v1/namespaces/1/batches?from=0", NULL, 400},
        {"GET", "/v1/namespaces/1/batches?from=1&limit=0", NULL, 400},
        {"GET", "/v1/namespaces/1/batches?from=1&limit=100000", NULL, 400},
        {"GET", "/v1/namespaces/1/batches?from=+1", NULL, 400},
        {"GET", "/v1/namespaces/1/stream?from=abc", NULL, 400},
        {"POST", "/v1/tx", "{\"ns\": 1, \"data\": ", 400},
        {"POST", "/v1/tx", "[1, 2]", 400},
        {"POST", "/v1/tx", "{\"ns\": -1, \"data\": \"\"}", 400},
        {"POST", "/v1/tx", "{\"ns\": 1, \"data\": \"not base64!\"}", 400},
        {"POST", "/v1/tx", "{\"ns\": 1, \"data\": \"aGk=\", \"extra\": 1}", 400},
        {"POST", "/v1/tx", "{\"ns\": 1, \"data\": \"aGk=\", \"client_key\": \"\"}", 400},
        {"POST", "/v1/tx", "{\"ns\": 1, \"ns\": 2, \"data\": \"aGk=\"}", 400},
        {"POST", "/v1/tx", "{\"txs\": []}", 400},
        {"POST", "/v1/tx", "{\"txs\": [{\"ns\": 1, \"data\": \"aGk=\"}, {\"ns\": 1}]}", 400},
        {"POST", "/v1/tx", "{\"txs\": [], \"ns\": 1}", 400},
        {"POST", "/v1/tx", "", 400},
    };
    conn *c = conn_open(fx);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        response r;
        request(c, cases[i].method, cases[i].target, cases[i].body, &r);
        if (r.status != cases[i].status)
            fail_msg("%s %s: want %d, got %d: %s", cases[i].method, cases[i].target, cases[i].status, r.status,
                     r.body);
        assert_error(&r, cases[i].status);
        if (cases[i].status == 405)
            assert_non_null(header_find(&r, "Allow"));
        response_free(&r);
    }
    response r;
    request(c, "GET", "/healthz", NULL, &r); /* still served */
    assert_int_equal(r.status, 200);
    response_free(&r);
    conn_close(c);

    /* the batch form's bad entry is named, and nothing of it was submitted */
    char body[256], id[65], target[128];
    snprintf(body, sizeof body, "{\"txs\": [{\"ns\": 3, \"data\": \"Zmlyc3Q=\"}, {\"ns\": 3, \"data\": \"%%\"}]}");
    c = conn_open(fx);
    request(c, "POST", "/v1/tx", body, &r);
    assert_error(&r, 400);
    assert_non_null(strstr(jstr(r.json, "error"), "txs[1]"));
    response_free(&r);
    hex_id(id, 3, "first");
    snprintf(target, sizeof target, "/v1/tx/%s", id);
    request(c, "GET", target, NULL, &r);
    assert_string_equal(jstr(r.json, "status"), "unknown");
    response_free(&r);
    conn_close(c);
}

/* Requests the parser or the bounds refuse get their status and the
 * connection closes: garbage (400), headers over the bound (431), a URL over
 * its bound (414), a body over the bound announced (413, body never sent)
 * or chunked (413). */
static void test_malformed_requests_close(void **state)
{
    fixture *fx = *state;
    typedef struct {
        const char *what;
        char *bytes;
        int status;
    } bad_case;
    bad_case cases[5];
    cases[0] = (bad_case){"garbage", strdup("\x01\x02\x03 garbage\r\n\r\n"), 400};
    char *big_header = malloc(2 * HEADER_BYTES_MAX);
    assert_non_null(big_header);
    snprintf(big_header, 2 * HEADER_BYTES_MAX, "GET /healthz HTTP/1.1\r\nX-Pad: %0*d\r\n\r\n", HEADER_BYTES_MAX, 0);
    cases[1] = (bad_case){"headers too large", big_header, 431};
    char *long_url = malloc(4096);
    assert_non_null(long_url);
    snprintf(long_url, 4096, "GET /%03000d HTTP/1.1\r\n\r\n", 0);
    cases[2] = (bad_case){"url too long", long_url, 414};
    char *announced = malloc(128);
    assert_non_null(announced);
    snprintf(announced, 128, "POST /v1/tx HTTP/1.1\r\nContent-Length: %u\r\n\r\n", BODY_BYTES_MAX + 1);
    cases[3] = (bad_case){"body too large", announced, 413};
    size_t chunked_len = BODY_BYTES_MAX + 256;
    char *chunked = malloc(chunked_len);
    assert_non_null(chunked);
    int n = snprintf(chunked, chunked_len, "POST /v1/tx HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n",
                     BODY_BYTES_MAX + 1);
    memset(chunked + n, 'x', BODY_BYTES_MAX + 1);
    chunked[n + BODY_BYTES_MAX + 1] = '\0';
    cases[4] = (bad_case){"chunked body too large", chunked, 413};
    for (int i = 0; i < 5; i++) {
        conn *c = conn_open(fx);
        send_str(c, cases[i].bytes);
        response r;
        response_read(c, &r);
        if (r.status != cases[i].status)
            fail_msg("%s: want %d, got %d", cases[i].what, cases[i].status, r.status);
        assert_error(&r, cases[i].status);
        assert_non_null(strstr(r.head, "Connection: close"));
        response_free(&r);
        assert_true(closed_by_server(c));
        conn_close(c);
        free(cases[i].bytes);
    }
}

/* A request that does not arrive within the timeout gets 408 and the
 * connection closes; an idle kept-alive connection is closed silently. */
static void test_timeouts(void **state)
{
    fixture *fx = *state;
    conn *c = conn_open(fx);
    send_str(c, "GET /healthz HTTP/1.1\r\nHost: slow");
    response r;
    response_read(c, &r);
    assert_error(&r, 408);
    response_free(&r);
    assert_true(closed_by_server(c));
    conn_close(c);

    c = conn_open(fx);
    request(c, "GET", "/healthz", NULL, &r);
    response_free(&r);
    assert_true(closed_by_server(c)); /* within WAIT_MS > REQUEST_TIMEOUT_MS */
    conn_close(c);
}

/* Up to clients_max connections are served; one more gets 503 and is closed. */
static void test_connection_limit(void **state)
{
    fixture *fx = *state;
    conn *cs[CLIENTS_MAX];
    response r;
    for (uint32_t i = 0; i < CLIENTS_MAX; i++) {
        cs[i] = conn_open(fx);
        request(cs[i], "GET", "/healthz", NULL, &r);
        assert_int_equal(r.status, 200);
        response_free(&r);
    }
    conn *extra = conn_open(fx);
    response_read(extra, &r);
    assert_error(&r, 503);
    response_free(&r);
    assert_true(closed_by_server(extra));
    conn_close(extra);
    conn_close(cs[0]);
    /* a freed slot is served again (the close reaches the loop soon) */
    bool served = false;
    for (int tries = 0; tries < 50 && !served; tries++) {
        conn *again = conn_open(fx);
        send_str(again, "GET /healthz HTTP/1.1\r\n\r\n");
        response_read(again, &r);
        served = r.status == 200;
        response_free(&r);
        conn_close(again);
        if (!served)
            usleep(20 * 1000); /* the loop has not seen the close yet; bounded */
    }
    assert_true(served);
    for (uint32_t i = 1; i < CLIENTS_MAX; i++)
        conn_close(cs[i]);
}

/* ---- server-sent events ------------------------------------------------------------------ */

/* Reads the stream's response head. */
static void stream_open(conn *c, const char *target, const char *extra)
{
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n%s\r\n", target,
             extra ? extra : "");
    send_str(c, req);
    char *end;
    while (!(c->len > 0 && (end = memmem(c->buf, c->len, "\r\n\r\n", 4)) != NULL))
        if (!fill(c, WAIT_MS))
            fail_msg("no stream head");
    assert_memory_equal(c->buf, "HTTP/1.1 200 OK\r\n", 17);
    *end = '\0';
    assert_non_null(strcasestr(c->buf, "Content-Type: text/event-stream"));
    consume(c, (size_t)(end - c->buf) + 4);
}

/* The next block of "field: value" lines up to a blank line (an event or
 * a comment), NUL-terminated into out; false on timeout. */
static bool next_event(conn *c, char *out, size_t cap, int timeout_ms)
{
    char *end;
    while (!(c->len > 0 && (end = memmem(c->buf, c->len, "\n\n", 2)) != NULL))
        if (!fill(c, timeout_ms))
            return false;
    size_t n = (size_t)(end - c->buf) + 2;
    assert_true(n < cap);
    memcpy(out, c->buf, n);
    out[n] = '\0';
    consume(c, n);
    return true;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The next data event within timeout_ms (comments and the retry line
 * skipped): its id and batch; NULL when none came. */
static seq_batch *next_batch(conn *c, uint64_t *id, int timeout_ms)
{
    static char ev[CONN_BUF_BYTES];
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0 || !next_event(c, ev, sizeof ev, (int)left))
            return NULL;
        if (strncmp(ev, "id: ", 4) == 0)
            break;
        assert_true(ev[0] == ':' || strncmp(ev, "retry: ", 7) == 0);
    }
    char *data = strstr(ev, "\ndata: ");
    assert_non_null(data);
    *id = strtoull(ev + 4, NULL, 10);
    data += 7;
    assert_true(strchr(data, '\n') == data + strlen(data) - 2); /* the JSON is one line */
    json_t *j = json_loads(data, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(j);
    seq_batch *b = batch_of(j);
    json_decref(j);
    return b;
}

/* Hands height to the port on the loop and waits (bounded) until it did. */
static void deliver(fixture *fx, uint64_t height)
{
    uint64_t before = atomic_load(&fx->delivered);
    atomic_store(&fx->deliver_height, height);
    assert_int_equal(uv_async_send(&fx->deliver), 0);
    int64_t deadline = mono_ms() + WAIT_MS;
    while (atomic_load(&fx->delivered) == before) {
        assert_true(mono_ms() < deadline);
        sched_yield();
    }
}

/* A stream from height 1 gets the stored heights in order as events whose
 * id is the height and whose batches verify as one gap-free stream (empty
 * batches of a namespace without transactions too); a block delivered later
 * arrives live; Last-Event-ID resumes after the given height; an idle
 * stream gets heartbeat comments. */
static void test_stream_stored_then_live(void **state)
{
    fixture *fx = *state;
    const seq_ns nss[2] = {NS_BUSY, NS_EMPTY};
    conn *cs[2];
    seq_verifier v[2];
    char why[160];
    for (int k = 0; k < 2; k++) {
        char target[96];
        snprintf(target, sizeof target, "/v1/namespaces/%u/stream?from=1", (unsigned)nss[k]);
        cs[k] = conn_open(fx);
        stream_open(cs[k], target, NULL);
        seq_verifier_init(&v[k], &vs, CHAIN_ID);
        assert_int_equal(seq_verifier_expect(&v[k], nss[k], 1, NULL), 0);
        for (uint64_t h = 1; h <= BLOCKS_STORED; h++) {
            uint64_t id = 0;
            seq_batch *b = next_batch(cs[k], &id, WAIT_MS);
            assert_non_null(b);
            assert_int_equal(id, h);
            assert_batch(fx, b, h, nss[k]);
            if (seq_verifier_check(&v[k], b, why, sizeof why) != 0)
                fail_msg("height %llu: %s", (unsigned long long)h, why);
            seq_batch_free(b);
        }
    }
    commit_next(fx);
    deliver(fx, BLOCKS_STORED + 1);
    for (int k = 0; k < 2; k++) {
        uint64_t id = 0;
        seq_batch *b = next_batch(cs[k], &id, WAIT_MS);
        assert_non_null(b);
        assert_int_equal(id, BLOCKS_STORED + 1);
        assert_batch(fx, b, BLOCKS_STORED + 1, nss[k]);
        assert_int_equal(seq_verifier_check(&v[k], b, why, sizeof why), 0);
        seq_batch_free(b);
    }
    /* idle now: heartbeats, and no event */
    char ev[256];
    assert_true(next_event(cs[0], ev, sizeof ev, 4 * HEARTBEAT_MS));
    assert_string_equal(ev, ": heartbeat\n\n");
    conn_close(cs[0]);
    conn_close(cs[1]);

    conn *c = conn_open(fx);
    stream_open(c, "/v1/namespaces/10/stream?from=1", "Last-Event-ID: 2\r\n");
    uint64_t id = 0;
    seq_batch *b = next_batch(c, &id, WAIT_MS);
    assert_non_null(b);
    assert_int_equal(id, 3);
    seq_batch_free(b);
    conn_close(c);

    c = conn_open(fx); /* without from: from the next block on */
    stream_open(c, "/v1/namespaces/10/stream", NULL);
    assert_null(next_batch(c, &id, 2 * HEARTBEAT_MS));
    conn_close(c);

    c = conn_open(fx); /* a Last-Event-ID that is not a height */
    response r;
    send_str(c, "GET /v1/namespaces/10/stream HTTP/1.1\r\nLast-Event-ID: x7\r\n\r\n");
    response_read(c, &r);
    assert_error(&r, 400);
    response_free(&r);
    conn_close(c);
}

static uint64_t metric(const fixture *fx, const char *line_prefix)
{
    conn *c = conn_open(fx);
    response r;
    request(c, "GET", "/metrics", NULL, &r);
    const char *p = strstr(r.body, line_prefix);
    if (!p)
        fail_msg("no %s in /metrics", line_prefix);
    uint64_t v = strtoull(p + strlen(line_prefix), NULL, 10);
    response_free(&r);
    conn_close(c);
    return v;
}

/* A stream that kept up and then stops reading while many large blocks
 * finalize (each event larger than the send queue bound) is skipped by the
 * live path once its queue is full, and fed from the store when it reads
 * again: it gets every height once, in order, verifiably, and most of them
 * came from the store (the metrics count both paths). */
static void test_stream_slow_reader_catches_up(void **state)
{
    fixture *fx = *state;
    conn *c = conn_open_rcvbuf(fx, 4096);
    stream_open(c, "/v1/namespaces/10/stream?from=1", NULL);
    seq_verifier v;
    char why[160];
    seq_verifier_init(&v, &vs, CHAIN_ID);
    assert_int_equal(seq_verifier_expect(&v, NS_BUSY, 1, NULL), 0);
    for (uint64_t h = 1; h <= BLOCKS_MAX; h++) {
        if (h == BLOCKS_STORED + 1) /* caught up: now finalize the rest without reading */
            for (uint32_t k = BLOCKS_STORED + 1; k <= BLOCKS_MAX; k++) {
                commit_next(fx);
                deliver(fx, k);
            }
        uint64_t id = 0;
        seq_batch *b = next_batch(c, &id, WAIT_MS);
        if (!b)
            fail_msg("no event for height %llu", (unsigned long long)h);
        assert_int_equal(id, h);
        assert_batch(fx, b, h, NS_BUSY);
        if (seq_verifier_check(&v, b, why, sizeof why) != 0)
            fail_msg("height %llu: %s", (unsigned long long)h, why);
        seq_batch_free(b);
    }
    uint64_t live = metric(fx, "seq_http_stream_events_total{source=\"live\"} ");
    uint64_t stored = metric(fx, "seq_http_stream_events_total{source=\"store\"} ");
    assert_int_equal(live + stored, BLOCKS_MAX);
    if (live == 0 || stored < BLOCKS_STORED + (BLOCKS_MAX - BLOCKS_STORED) / 2)
        fail_msg("%llu events live, %llu from the store", (unsigned long long)live, (unsigned long long)stored);
    conn_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_health_status_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_and_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_and_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finalized_status_proves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocks_and_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelining_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_requests_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_stored_then_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_slow_reader_catches_up, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
