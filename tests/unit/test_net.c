/* Unit tests of lib/net.c: real TCP on 127.0.0.1, three (or four) nets in one
 * libuv loop, real keys; raw sockets play the misbehaving clients. Every wait
 * is bounded by a deadline on the loop's clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "net.h"

#define NODES_N 3            /* genesis validators */
#define KEYS_N 4             /* key 3 is the outsider */
#define CHAIN_ID 5
#define WAIT_MS 5000         /* deadline of every wait */
#define FRAME_BYTES_MAX (8u << 20)
#define BIG_FRAME_BYTES (5u << 20)
#define SMALL_FRAMES_N 50
#define HS_TIMEOUT_MS 200
#define ADDR_BYTES 32

typedef struct {
    seq_net *net;
    seq_net_config cfg;
    uint32_t self;
    int up_events[KEYS_N], down_events[KEYS_N];
    uint32_t next_seq[KEYS_N]; /* next frame number expected from each peer */
    uint64_t bytes_from[KEYS_N];
    int bad;                   /* frames out of order or with wrong bytes */
    bool closed;
} node;

typedef struct {
    uv_loop_t loop;
    uv_timer_t tick;           /* keeps uv_run(ONCE) returning while we wait */
    seq_keypair *keys[KEYS_N];
    seq_validators vs, outsider_vs;
    char addr_buf[KEYS_N][ADDR_BYTES];
    const char *addrs[KEYS_N];
    node nodes[KEYS_N];
} fixture;

/* ---- helpers -------------------------------------------------------------- */

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void done_cb(void *ctx);

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static int setup(void **state)
{
    seq_log_set_level(getenv("SEQ_TEST_NET_DEBUG") ? SEQ_LOG_DEBUG : SEQ_LOG_ERROR);
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx || seq_test_keys_make(fx->keys, KEYS_N) != 0)
        return -1;
    seq_pubkey pks[KEYS_N];
    for (int i = 0; i < KEYS_N; i++)
        pks[i] = fx->keys[i]->pk;
    if (seq_validators_init(&fx->vs, pks, NODES_N) != 0 || seq_validators_init(&fx->outsider_vs, pks, KEYS_N) != 0)
        return -1;
    for (int i = 0; i < KEYS_N; i++) {
        snprintf(fx->addr_buf[i], ADDR_BYTES, "127.0.0.1:%u", free_port());
        fx->addrs[i] = fx->addr_buf[i];
    }
    if (uv_loop_init(&fx->loop) != 0 || uv_timer_init(&fx->loop, &fx->tick) != 0)
        return -1;
    uv_timer_start(&fx->tick, tick_cb, 10, 10);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    /* A failed test leaves nets running: close them so the loop can end. */
    for (int i = 0; i < KEYS_N; i++)
        if (fx->nodes[i].net)
            seq_net_close(fx->nodes[i].net, done_cb, &fx->nodes[i]);
    uv_close((uv_handle_t *)&fx->tick, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    /* Every handle of every net was closed: the loop closes cleanly. */
    int rc = uv_loop_close(&fx->loop);
    seq_test_keys_free(fx->keys, KEYS_N);
    free(fx);
    return rc == 0 ? 0 : -1;
}

typedef bool (*cond_fn)(fixture *fx, void *arg);

/* Runs the loop until cond holds or WAIT_MS passed; returns cond. */
static bool wait_for(fixture *fx, cond_fn cond, void *arg)
{
    uv_update_time(&fx->loop);
    uint64_t deadline = uv_now(&fx->loop) + WAIT_MS;
    while (!cond(fx, arg)) {
        if (uv_now(&fx->loop) > deadline)
            return false;
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    return true;
}

static uint8_t pattern(uint32_t from, uint32_t seq, size_t i)
{
    return (uint8_t)(from * 31 + seq * 7 + i * 13);
}

static void on_frame(void *ctx, uint32_t from, const uint8_t *data, size_t len)
{
    node *nd = ctx;
    if (len < 4) {
        nd->bad++;
        return;
    }
    uint32_t seq = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
    if (seq != nd->next_seq[from])
        nd->bad++;
    for (size_t i = 4; i < len; i++)
        if (data[i] != pattern(from, seq, i)) {
            nd->bad++;
            break;
        }
    nd->next_seq[from] = seq + 1;
    nd->bytes_from[from] += len;
}

static void on_peer(void *ctx, uint32_t peer, bool up)
{
    node *nd = ctx;
    if (up)
        nd->up_events[peer]++;
    else
        nd->down_events[peer]++;
}

static int node_start(fixture *fx, uint32_t i)
{
    node *nd = &fx->nodes[i];
    bool outsider = i >= NODES_N;
    memset(nd, 0, sizeof *nd);
    nd->self = i;
    nd->cfg = (seq_net_config){
        .loop = &fx->loop,
        .chain_id = CHAIN_ID,
        .validators = outsider ? &fx->outsider_vs : &fx->vs,
        .addresses = fx->addrs,
        .self = i,
        .key = fx->keys[i],
        .listen = fx->addrs[i],
        .frame_bytes_max = FRAME_BYTES_MAX,
        .handshake_timeout_ms = HS_TIMEOUT_MS,
        .reconnect_min_ms = 10,
        .reconnect_max_ms = 100,
        .send_queue_bytes_max = 64u << 20,
    };
    seq_net_callbacks cb = {.ctx = nd, .on_frame = on_frame, .on_peer = on_peer};
    return seq_net_start(&nd->net, &nd->cfg, &cb);
}

static void done_cb(void *ctx)
{
    node *nd = ctx;
    nd->closed = true;
    nd->net = NULL;
}

static bool node_closed(fixture *fx, void *arg)
{
    (void)fx;
    return ((node *)arg)->closed;
}

static void node_close(fixture *fx, uint32_t i)
{
    node *nd = &fx->nodes[i];
    seq_net_close(nd->net, done_cb, nd);
    assert_true(wait_for(fx, node_closed, nd));
}

static bool all_up(fixture *fx, void *arg)
{
    (void)arg;
    for (int i = 0; i < NODES_N; i++)
        if (!fx->nodes[i].net || seq_net_peers_up(fx->nodes[i].net) != NODES_N - 1)
            return false;
    return true;
}

static void start_all(fixture *fx)
{
    for (uint32_t i = 0; i < NODES_N; i++)
        assert_int_equal(node_start(fx, i), 0);
    assert_true(wait_for(fx, all_up, NULL));
}

static void close_all(fixture *fx, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++)
        if (fx->nodes[i].net)
            node_close(fx, i);
}

/* Sends frame number seq of len bytes from node `from` to `to`. */
static int send_frame(fixture *fx, uint32_t from, uint32_t to, uint32_t seq, size_t len)
{
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    buf[0] = (uint8_t)(seq >> 24);
    buf[1] = (uint8_t)(seq >> 16);
    buf[2] = (uint8_t)(seq >> 8);
    buf[3] = (uint8_t)seq;
    for (size_t i = 4; i < len; i++)
        buf[i] = pattern(from, seq, i);
    int rc = seq_net_send(fx->nodes[from].net, to, buf, len);
    free(buf);
    return rc;
}

typedef struct {
    uint32_t frames; /* every node expects this many frames from every peer */
} expect;

static bool all_received(fixture *fx, void *arg)
{
    const expect *e = arg;
    for (uint32_t i = 0; i < NODES_N; i++)
        for (uint32_t j = 0; j < NODES_N; j++)
            if (i != j && fx->nodes[i].next_seq[j] < e->frames)
                return false;
    return true;
}

/* Every node sends n more frames to every other; all arrive in order. */
static void exchange(fixture *fx, uint32_t n, size_t len)
{
    uint32_t start = fx->nodes[0].next_seq[1];
    for (uint32_t k = 0; k < n; k++)
        for (uint32_t i = 0; i < NODES_N; i++)
            for (uint32_t j = 0; j < NODES_N; j++)
                if (i != j)
                    assert_int_equal(send_frame(fx, i, j, start + k, len), 0);
    expect e = {start + n};
    assert_true(wait_for(fx, all_received, &e));
    for (uint32_t i = 0; i < NODES_N; i++)
        assert_int_equal(fx->nodes[i].bad, 0);
}

/* A raw client socket to node i, blocking connect, then non-blocking. */
static int raw_connect(fixture *fx, uint32_t i)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    const char *colon = strrchr(fx->addrs[i], ':');
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    return fd;
}

/* The node closed the raw connection: read gives EOF (or a reset). Drains
 * whatever the node sent first (its Hello). */
static bool raw_closed(fixture *fx, void *arg)
{
    (void)fx;
    int fd = *(int *)arg;
    uint8_t buf[512];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return true;
        if (r < 0)
            return false;
    }
}

/* ---- tests ---------------------------------------------------------------- */

/* Three nets connect and exchange many small and one several-MB frame each
 * way, in order and intact. */
static void test_three_nets_exchange(void **state)
{
    fixture *fx = *state;
    start_all(fx);
    for (uint32_t i = 0; i < NODES_N; i++) {
        for (uint32_t j = 0; j < NODES_N; j++)
            assert_int_equal(seq_net_peer_up(fx->nodes[i].net, j), i != j);
        assert_int_equal(fx->nodes[i].down_events[(i + 1) % NODES_N], 0);
    }
    exchange(fx, SMALL_FRAMES_N, 256);
    exchange(fx, 1, BIG_FRAME_BYTES);
    exchange(fx, SMALL_FRAMES_N, 1000);
    /* Both sides dialed every pair at once: the duplicate links were retired
     * without a peer ever going down (and without losing a frame, above). */
    for (uint32_t i = 0; i < NODES_N; i++)
        for (uint32_t j = 0; j < NODES_N; j++) {
            assert_int_equal(fx->nodes[i].up_events[j], i != j);
            assert_int_equal(fx->nodes[i].down_events[j], 0);
        }
    seq_net_stats st;
    seq_net_stats_get(fx->nodes[0].net, &st);
    assert_int_equal(st.frames_out, (2 * SMALL_FRAMES_N + 1) * (NODES_N - 1));
    assert_int_equal(st.frames_in, (2 * SMALL_FRAMES_N + 1) * (NODES_N - 1));
    assert_true(st.handshakes_ok >= NODES_N - 1);
    assert_int_equal(st.bad_frames, 0);
    assert_true(st.bytes_out > BIG_FRAME_BYTES * (NODES_N - 1));
    close_all(fx, NODES_N);
}

/* Send refuses what it cannot do: no link, over the frame limit, a full
 * queue (dropped and counted). */
static void test_send_limits(void **state)
{
    fixture *fx = *state;
    uint8_t small[16] = {0};
    assert_int_equal(node_start(fx, 0), 0);
    assert_int_equal(seq_net_send(fx->nodes[0].net, 1, small, sizeof small), SEQ_ENOTCONN);
    assert_int_equal(seq_net_send(fx->nodes[0].net, 0, small, sizeof small), SEQ_ENOTCONN);
    assert_int_equal(seq_net_send(fx->nodes[0].net, 99, small, sizeof small), SEQ_ENOTCONN);
    node_close(fx, 0);

    start_all(fx);
    assert_int_equal(send_frame(fx, 0, 1, 0, FRAME_BYTES_MAX + 1), SEQ_ETOOBIG);
    /* 64 MiB bound: 13 frames of 5 MiB written in one go cannot all fit. */
    int full = 0;
    for (uint32_t k = 0; k < 13 && !full; k++) {
        int rc = send_frame(fx, 0, 1, k, BIG_FRAME_BYTES);
        if (rc == SEQ_EFULL)
            full = 1;
        else
            assert_int_equal(rc, 0);
    }
    assert_true(full);
    seq_net_stats st;
    seq_net_stats_get(fx->nodes[0].net, &st);
    assert_int_equal(st.frames_dropped, 1);
    close_all(fx, NODES_N);
}

static bool outsider_refused(fixture *fx, void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < NODES_N; i++) {
        seq_net_stats st;
        seq_net_stats_get(fx->nodes[i].net, &st);
        if (st.conns_refused < 1)
            return false;
    }
    return true;
}

/* A fourth identity, not in genesis, is refused by all three; they keep
 * working. */
static void test_outsider_refused(void **state)
{
    fixture *fx = *state;
    start_all(fx);
    assert_int_equal(node_start(fx, 3), 0);
    assert_true(wait_for(fx, outsider_refused, NULL));
    assert_int_equal(seq_net_peers_up(fx->nodes[3].net), 0);
    for (uint32_t i = 0; i < NODES_N; i++) {
        assert_int_equal(seq_net_peers_up(fx->nodes[i].net), NODES_N - 1);
        assert_int_equal(fx->nodes[i].up_events[3], 0);
    }
    exchange(fx, 5, 300);
    node_close(fx, 3);
    close_all(fx, NODES_N);
}

typedef struct {
    uint32_t node;
    uint64_t bad_frames, handshakes_failed;
} stats_expect;

static bool stats_reached(fixture *fx, void *arg)
{
    stats_expect *e = arg;
    seq_net_stats st;
    seq_net_stats_get(fx->nodes[e->node].net, &st);
    return st.bad_frames >= e->bad_frames && st.handshakes_failed >= e->handshakes_failed;
}

/* Garbage and an oversized length header each close only that connection. */
static void test_garbage_closed(void **state)
{
    fixture *fx = *state;
    start_all(fx);

    int fd = raw_connect(fx, 0);
    uint8_t junk[] = {0, 0, 0, 10, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6};
    assert_int_equal(send(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
    assert_true(wait_for(fx, raw_closed, &fd));
    close(fd);
    stats_expect e = {.node = 0, .handshakes_failed = 1};
    assert_true(wait_for(fx, stats_reached, &e));

    fd = raw_connect(fx, 1);
    uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(send(fd, huge, sizeof huge, 0), (ssize_t)sizeof huge);
    assert_true(wait_for(fx, raw_closed, &fd));
    close(fd);
    e = (stats_expect){.node = 1, .bad_frames = 1};
    assert_true(wait_for(fx, stats_reached, &e));

    for (uint32_t i = 0; i < NODES_N; i++)
        assert_int_equal(seq_net_peers_up(fx->nodes[i].net), NODES_N - 1);
    exchange(fx, 5, 300);
    close_all(fx, NODES_N);
}

/* A client that connects and says nothing is cut off after the handshake
 * timeout, not before. */
static void test_handshake_timeout(void **state)
{
    fixture *fx = *state;
    start_all(fx);
    uv_update_time(&fx->loop);
    uint64_t t0 = uv_now(&fx->loop);
    int fd = raw_connect(fx, 2);
    assert_true(wait_for(fx, raw_closed, &fd));
    uint64_t waited = uv_now(&fx->loop) - t0;
    close(fd);
    assert_true(waited >= HS_TIMEOUT_MS - 20);
    assert_true(waited < WAIT_MS);
    seq_net_stats st;
    seq_net_stats_get(fx->nodes[2].net, &st);
    assert_true(st.handshakes_failed >= 1);
    exchange(fx, 2, 100);
    close_all(fx, NODES_N);
}

static bool peer2_down(fixture *fx, void *arg)
{
    (void)arg;
    return fx->nodes[0].down_events[2] >= 1 && fx->nodes[1].down_events[2] >= 1 &&
           !seq_net_peer_up(fx->nodes[0].net, 2) && !seq_net_peer_up(fx->nodes[1].net, 2);
}

/* Node 0 dialed again since *arg reconnects. */
static bool redialed(fixture *fx, void *arg)
{
    seq_net_stats st;
    seq_net_stats_get(fx->nodes[0].net, &st);
    return st.reconnects > *(uint64_t *)arg;
}

/* A peer closed and restarted on the same port is reconnected: its peers see
 * it go down, then up again, and frames flow again. */
static void test_restart_reconnects(void **state)
{
    fixture *fx = *state;
    start_all(fx);
    exchange(fx, 3, 100);
    seq_net_stats st;
    seq_net_stats_get(fx->nodes[0].net, &st);
    uint64_t reconnects_before = st.reconnects;
    node_close(fx, 2);
    assert_true(wait_for(fx, peer2_down, NULL));
    assert_int_equal(fx->nodes[0].up_events[2], 1);
    /* Node 0 redials the dead peer (refused while it is down). */
    assert_true(wait_for(fx, redialed, &reconnects_before));

    assert_int_equal(node_start(fx, 2), 0);
    assert_true(wait_for(fx, all_up, NULL));
    /* At least down then up again; the duplicate rule may add a flap. */
    for (uint32_t i = 0; i < 2; i++) {
        assert_true(fx->nodes[i].up_events[2] >= 2);
        assert_int_equal(fx->nodes[i].up_events[2], fx->nodes[i].down_events[2] + 1);
    }
    /* The restarted node counts frames from 0 again: so do its peers' streams. */
    for (uint32_t i = 0; i < NODES_N; i++)
        memset(fx->nodes[i].next_seq, 0, sizeof fx->nodes[i].next_seq);
    exchange(fx, 3, 100);
    close_all(fx, NODES_N);
}

static bool node0_lost_2(fixture *fx, void *arg)
{
    (void)arg;
    return fx->nodes[0].down_events[2] >= 1;
}

/* seq_net_drop closes one peer's link (the node found its data invalid):
 * the link goes down, is redialed like any lost link, and frames flow again;
 * dropping a peer with no link, ourselves or an index out of range is a no-op. */
static void test_drop_peer(void **state)
{
    fixture *fx = *state;
    start_all(fx);
    exchange(fx, 3, 50);
    seq_net_drop(fx->nodes[0].net, 0, "self");
    seq_net_drop(fx->nodes[0].net, 99, "out of range");
    assert_int_equal(fx->nodes[0].down_events[1] + fx->nodes[0].down_events[2], 0);
    seq_net_drop(fx->nodes[0].net, 2, "test");
    assert_true(wait_for(fx, node0_lost_2, NULL));
    assert_int_equal(fx->nodes[0].down_events[1], 0);
    assert_true(wait_for(fx, all_up, NULL));
    for (uint32_t i = 0; i < NODES_N; i++)
        memset(fx->nodes[i].next_seq, 0, sizeof fx->nodes[i].next_seq);
    exchange(fx, 3, 50);
    close_all(fx, NODES_N);
}

/* Bad listen addresses: a malformed one, and a port that is taken. */
static void test_bad_listen(void **state)
{
    fixture *fx = *state;
    node *nd = &fx->nodes[0];
    const char *good = fx->addrs[0];
    fx->addrs[0] = "no-port-here";
    assert_int_equal(node_start(fx, 0), SEQ_EADDR);
    assert_null(nd->net);
    fx->addrs[0] = "[::1]:99999";
    assert_int_equal(node_start(fx, 0), SEQ_EADDR);
    fx->addrs[0] = good;

    assert_int_equal(node_start(fx, 0), 0);
    seq_net *first = nd->net;
    node other = *nd;
    assert_int_equal(node_start(fx, 0), SEQ_EIO); /* the same port again */
    assert_null(nd->net);
    *nd = other;
    assert_ptr_equal(nd->net, first);
    node_close(fx, 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    /* As seqd does: a write to a link the peer just closed must be an error
     * (EPIPE, the link closes), not a signal that kills the process. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_three_nets_exchange, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outsider_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_reconnects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_listen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
