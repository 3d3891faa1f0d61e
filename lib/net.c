/* Peer links over libuv TCP (contract in lib/net.h; handshake in
 * lib/handshake.c).
 *
 * Happy path of one connection:
 *   dial (or accept) -> handshake timer starts, Hello written
 *   read: bytes -> framer -> handshake frames into seq_hs, its answers written
 *   established -> timer stopped, duplicate rule picks the link, on_peer(up)
 *   read: frames -> seq_hs_open -> on_frame
 *   send: one malloc'd buffer = length header + ciphertext, one uv_write
 *   any error -> warn line, counter, this connection closed, on_peer(down)
 *   if it was the link, redial after backoff with jitter.
 *
 * Memory: a connection is freed after both of its handles (tcp, timer) closed;
 * the net after every handle closed. Counters: bytes_in/out are wire bytes
 * (handshake included), frames_in/out are data frames. */
#include "net.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "errors.h"
#include "handshake.h"
#include "log.h"
#include "wire.h"

#define NET_READ_BYTES (64u << 10)     /* one read buffer per net, reused */
#define NET_PLAIN_BYTES_MIN (64u << 10) /* initial decrypt buffer */
#define NET_ACCEPT_HANDSHAKES_MAX 64   /* accepted conns not yet authenticated */
#define NET_BACKLOG 128
#define NET_KEEPALIVE_S 10
#define NET_DRAIN_GRACE_MS 2000        /* see retire() */
#define NET_HOST_BYTES 64 /* an IP address as text */
#define NET_ADDR_TEXT_BYTES 80

typedef struct conn conn;

typedef struct {
    uint32_t index;
    struct sockaddr_storage addr;
    char text[NET_ADDR_TEXT_BYTES];
    conn *link;           /* the authenticated link, or NULL */
    conn *dial;           /* our outgoing attempt in progress, or NULL */
    conn *drain;          /* a retired duplicate link still being read */
    uv_timer_t redial;
    uint32_t backoff_ms;  /* next redial delay before jitter */
    bool dialed_once;
} peer;

struct conn {
    seq_net *net;
    uv_tcp_t tcp;
    uv_timer_t timer;     /* handshake timeout */
    uv_connect_t connect;
    uv_shutdown_t shutdown;
    seq_hs *hs;
    seq_framer framer;
    seq_hs_role role;
    int32_t target;       /* the validator we dialed; -1 when accepted */
    int32_t peer;         /* the authenticated validator; -1 before */
    bool established, closing;
    bool paused;          /* reads held while a retired duplicate drains */
    int handles_open;
    size_t pending_bytes; /* bytes of uv_writes not yet called back */
    char addr[NET_ADDR_TEXT_BYTES];
    conn *prev, *next;
};

struct seq_net {
    seq_net_config cfg;
    seq_net_callbacks cb;
    uv_tcp_t listener;
    peer *peers;          /* validators->n entries; ours unused */
    conn *conns;
    uint32_t accepting;   /* accepted conns still in handshake */
    uint32_t up;
    seq_net_stats stats;
    uint8_t *rbuf;        /* NET_READ_BYTES */
    uint8_t *plain;       /* decrypt buffer, grows up to frame_bytes_max */
    size_t plain_cap;
    size_t handles_open;
    bool closing;
    void (*done)(void *ctx);
    void *done_ctx;
};

/* One write: the request, then header + ciphertext in one buffer. */
typedef struct {
    uv_write_t req;
    conn *c;
    size_t bytes;
    uint8_t data[];
} wreq;

static void conn_close(conn *c);
static void dial(seq_net *n, peer *p);
static void drain_frames(seq_net *n, conn *c);
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ---- addresses ------------------------------------------------------------ */

static void sockaddr_text(const struct sockaddr_storage *sa, char *out, size_t len)
{
    char ip[NET_HOST_BYTES] = "?";
    int port = 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uv_ip4_name(in, ip, sizeof ip);
        port = ntohs(in->sin_port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(in6, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, len, "%s:%d", ip, port);
}

/* ---- closing and freeing -------------------------------------------------- */

static void net_free(seq_net *n)
{
    void (*done)(void *) = n->done;
    void *ctx = n->done_ctx;
    free(n->peers);
    free(n->rbuf);
    free(n->plain);
    free(n);
    if (done)
        done(ctx);
}

static void maybe_finish(seq_net *n)
{
    if (n->closing && n->handles_open == 0)
        net_free(n);
}

static void net_handle_closed_cb(uv_handle_t *h)
{
    seq_net *n = h->data;
    SEQ_ASSERT(n->handles_open > 0);
    n->handles_open--;
    maybe_finish(n);
}

static void conn_free(conn *c)
{
    seq_net *n = c->net;
    if (c->prev)
        c->prev->next = c->next;
    else
        n->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    seq_hs_free(c->hs);
    seq_framer_free(&c->framer);
    free(c);
}

static void conn_handle_closed_cb(uv_handle_t *h)
{
    conn *c = h->data;
    seq_net *n = c->net;
    SEQ_ASSERT(c->handles_open > 0 && n->handles_open > 0);
    n->handles_open--;
    if (--c->handles_open == 0)
        conn_free(c);
    maybe_finish(n);
}

/* ---- redial --------------------------------------------------------------- */

/* A peer's redial timer carries the net as data; the peer is its container. */
static peer *timer_peer(uv_timer_t *t)
{
    return (peer *)(void *)((char *)t - offsetof(peer, redial));
}

static void redial_cb(uv_timer_t *t)
{
    dial(t->data, timer_peer(t));
}

static void schedule_redial(seq_net *n, peer *p)
{
    if (n->closing || p->link || p->dial || uv_is_active((uv_handle_t *)&p->redial))
        return;
    uint32_t b = p->backoff_ms;
    /* Equal jitter: half the backoff fixed, half random, so peers that lost
     * each other at once do not redial in lockstep. */
    uint32_t delay = b / 2 + randombytes_uniform(b / 2 + 1);
    uint64_t next = (uint64_t)b * 2;
    p->backoff_ms = next > n->cfg.reconnect_max_ms ? n->cfg.reconnect_max_ms : (uint32_t)next;
    int rc = uv_timer_start(&p->redial, redial_cb, delay, 0);
    SEQ_ASSERT(rc == 0);
}

/* ---- connection state ----------------------------------------------------- */

static const char *conn_who(const conn *c, char *buf, size_t len)
{
    int32_t v = c->peer >= 0 ? c->peer : c->target;
    if (v >= 0)
        snprintf(buf, len, "peer=%d addr=%s", (int)v, c->addr);
    else
        snprintf(buf, len, "peer=? addr=%s", c->addr);
    return buf;
}

static void conn_warn(const conn *c, const char *event, const char *reason)
{
    char who[NET_ADDR_TEXT_BYTES + 32];
    SEQ_WARN(event, "%s reason=\"%s\"", conn_who(c, who, sizeof who), reason);
}

typedef enum { DETACHED_OTHER, DETACHED_LINK, DETACHED_DRAIN } detached;

/* Detaches c from its peer and says what it was to it. A lost link takes its
 * draining duplicate with it. */
static detached conn_detach(seq_net *n, conn *c)
{
    if (c->target >= 0 && n->peers[c->target].dial == c)
        n->peers[c->target].dial = NULL;
    if (!c->established) {
        if (c->role == SEQ_HS_ACCEPTOR)
            n->accepting--;
        return DETACHED_OTHER;
    }
    peer *p = &n->peers[c->peer];
    if (p->drain == c) {
        p->drain = NULL;
        return DETACHED_DRAIN;
    }
    if (p->link != c)
        return DETACHED_OTHER;
    p->link = NULL;
    n->up--;
    if (p->drain)
        conn_close(p->drain);
    return DETACHED_LINK;
}

/* The duplicate drained: read the kept link again, frames it already
 * buffered first. */
static void conn_resume(seq_net *n, conn *c)
{
    if (!c->paused || c->closing)
        return;
    c->paused = false;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (rc != 0) {
        conn_close(c);
        return;
    }
    drain_frames(n, c);
}

/* Closes one connection (idempotent); the memory goes in the close callbacks.
 * A lost link is reported and redialed. */
static void conn_close(conn *c)
{
    if (c->closing)
        return;
    seq_net *n = c->net;
    c->closing = true;
    detached was = conn_detach(n, c);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed_cb);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed_cb);
    int32_t v = c->peer >= 0 ? c->peer : c->target;
    if (v >= 0)
        schedule_redial(n, &n->peers[v]);
    if (was == DETACHED_DRAIN && !n->closing && n->peers[v].link)
        conn_resume(n, n->peers[v].link);
    if (was == DETACHED_LINK && !n->closing) {
        SEQ_INFO("net_peer_down", "peer=%d addr=%s", (int)c->peer, c->addr);
        if (n->cb.on_peer)
            n->cb.on_peer(n->cb.ctx, (uint32_t)c->peer, false);
    }
}

static void handshake_timeout_cb(uv_timer_t *t)
{
    conn *c = t->data;
    c->net->stats.handshakes_failed++;
    conn_warn(c, "net_handshake_failed", "timeout");
    conn_close(c);
}

static conn *conn_new(seq_net *n, seq_hs_role role)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (seq_hs_new(&c->hs, role, n->cfg.chain_id, n->cfg.key, n->cfg.validators, n->cfg.self) != 0) {
        free(c);
        return NULL;
    }
    if (uv_tcp_init(n->cfg.loop, &c->tcp) != 0) {
        seq_hs_free(c->hs);
        free(c);
        return NULL;
    }
    int rc = uv_timer_init(n->cfg.loop, &c->timer);
    SEQ_ASSERT(rc == 0);
    c->net = n;
    c->role = role;
    c->target = c->peer = -1;
    c->tcp.data = c->timer.data = c->connect.data = c;
    c->handles_open = 2;
    n->handles_open += 2;
    seq_framer_init(&c->framer, n->cfg.frame_bytes_max + SEQ_HS_SEAL_BYTES);
    c->next = n->conns;
    if (n->conns)
        n->conns->prev = c;
    n->conns = c;
    if (role == SEQ_HS_ACCEPTOR)
        n->accepting++;
    rc = uv_timer_start(&c->timer, handshake_timeout_cb, n->cfg.handshake_timeout_ms, 0);
    SEQ_ASSERT(rc == 0);
    return c;
}

/* ---- writing -------------------------------------------------------------- */

static void write_cb(uv_write_t *req, int status)
{
    wreq *w = (wreq *)(void *)req;
    conn *c = w->c;
    SEQ_ASSERT(c->pending_bytes >= w->bytes);
    c->pending_bytes -= w->bytes;
    free(w);
    if (status < 0 && !c->closing) {
        conn_warn(c, "net_write_failed", uv_strerror(status));
        conn_close(c);
    }
}

static wreq *wreq_new(size_t payload_len)
{
    return malloc(sizeof(wreq) + SEQ_FRAME_HEADER_BYTES + payload_len);
}

/* Writes header + payload already in w->data; frees w on failure. */
static int wreq_submit(conn *c, wreq *w, size_t payload_len)
{
    size_t total = SEQ_FRAME_HEADER_BYTES + payload_len;
    seq_frame_header(w->data, (uint32_t)payload_len);
    w->c = c;
    w->bytes = total;
    uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)total);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, write_cb);
    if (rc != 0) {
        free(w);
        conn_warn(c, "net_write_failed", uv_strerror(rc));
        conn_close(c);
        return SEQ_ENOTCONN;
    }
    c->pending_bytes += total;
    c->net->stats.bytes_out += total;
    return 0;
}

/* Writes the handshake frames seq_hs has queued, in clear. */
static void send_hs_frames(conn *c)
{
    const uint8_t *f;
    size_t len;
    while (!c->closing && seq_hs_pop(c->hs, &f, &len)) {
        wreq *w = wreq_new(len);
        if (!w) {
            conn_warn(c, "net_write_failed", "out of memory");
            conn_close(c);
            return;
        }
        memcpy(w->data + SEQ_FRAME_HEADER_BYTES, f, len);
        (void)wreq_submit(c, w, len);
    }
}

/* ---- authenticated links -------------------------------------------------- */

static uint32_t dialer_of(const seq_net *n, const conn *c)
{
    return c->role == SEQ_HS_DIALER ? n->cfg.self : (uint32_t)c->peer;
}

/* Two links to one peer: keep the one dialed by the lower index, the same
 * choice on both sides. Both dialed by one side means that side redialed
 * (restart, or a link it saw die first): the newer one is live. */
static bool keeps_new(const seq_net *n, const conn *old, const conn *c)
{
    uint32_t d_old = dialer_of(n, old), d_new = dialer_of(n, c);
    return d_new == d_old || d_new < d_old;
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status; /* a failed flush ends in EOF, an error or the drain timeout */
}

static void drain_timeout_cb(uv_timer_t *t)
{
    conn *c = t->data;
    conn_warn(c, "net_drain_timeout", "retired duplicate link never closed by the peer");
    conn_close(c);
}

/* Retires the duplicate r without losing what the peer sent on it: we stop
 * sending on r (shutdown flushes, then FIN), keep reading r until the peer's
 * FIN, and hold the kept link's reads until then. The peer applies the same
 * rule, so it sent on r only before it switched: its frames stay in order.
 * One drain at a time; a third link is just closed. */
static void retire(seq_net *n, peer *p, conn *r)
{
    if (p->drain || uv_shutdown(&r->shutdown, (uv_stream_t *)&r->tcp, shutdown_cb) != 0) {
        conn_close(r);
        return;
    }
    p->drain = r;
    /* The peer sends its FIN once its handshake on the kept link is done
     * (bounded by its handshake timeout) and what it queued on r is flushed. */
    uint64_t drain_ms = (uint64_t)n->cfg.handshake_timeout_ms + NET_DRAIN_GRACE_MS;
    int rc = uv_timer_start(&r->timer, drain_timeout_cb, drain_ms, 0);
    SEQ_ASSERT(rc == 0);
    conn *kept = p->link;
    if (!kept->paused) {
        kept->paused = true;
        uv_read_stop((uv_stream_t *)&kept->tcp);
    }
}

static void link_up(seq_net *n, conn *c)
{
    peer *p = &n->peers[c->peer];
    conn *old = p->link;
    if (old) {
        /* Swap without reporting the peer down: it never was. */
        bool kept_new = keeps_new(n, old, c);
        SEQ_DEBUG("net_duplicate_link", "peer=%d addr=%s kept=%s", (int)c->peer, c->addr, kept_new ? "new" : "old");
        if (kept_new)
            p->link = c;
        retire(n, p, kept_new ? old : c);
        return;
    }
    p->link = c;
    p->backoff_ms = n->cfg.reconnect_min_ms;
    uv_timer_stop(&p->redial);
    n->up++;
    SEQ_INFO("net_peer_up", "peer=%d addr=%s role=%s", (int)c->peer, c->addr,
             c->role == SEQ_HS_DIALER ? "dialer" : "acceptor");
    if (n->cb.on_peer)
        n->cb.on_peer(n->cb.ctx, (uint32_t)c->peer, true);
}

static void on_established(seq_net *n, conn *c)
{
    uint32_t v = seq_hs_peer(c->hs);
    if (c->role == SEQ_HS_DIALER && (int32_t)v != c->target) {
        /* Our addresses list and their key disagree: not the peer we wanted. */
        n->stats.handshakes_failed++;
        conn_warn(c, "net_handshake_failed", "dialed address answered with another validator's key");
        conn_close(c);
        return;
    }
    uv_timer_stop(&c->timer);
    if (c->role == SEQ_HS_ACCEPTOR)
        n->accepting--;
    if (c->target >= 0 && n->peers[c->target].dial == c)
        n->peers[c->target].dial = NULL;
    c->established = true;
    c->peer = (int32_t)v;
    n->stats.handshakes_ok++;
    link_up(n, c);
}

static void on_hs_frame(seq_net *n, conn *c, const uint8_t *f, size_t len)
{
    int rc = seq_hs_feed(c->hs, f, len);
    send_hs_frames(c);
    if (rc != 0) {
        seq_hs_fail why = seq_hs_failure(c->hs);
        n->stats.handshakes_failed++;
        if (why == SEQ_HS_FAIL_UNKNOWN_KEY)
            n->stats.conns_refused++;
        conn_warn(c, "net_handshake_failed", seq_hs_fail_str(why));
        conn_close(c);
        return;
    }
    if (!c->closing && seq_hs_established(c->hs))
        on_established(n, c);
}

static int plain_reserve(seq_net *n, size_t len)
{
    if (len <= n->plain_cap)
        return 0;
    uint8_t *p = realloc(n->plain, len);
    if (!p)
        return SEQ_ENOMEM;
    n->plain = p;
    n->plain_cap = len;
    return 0;
}

static void on_data_frame(seq_net *n, conn *c, const uint8_t *f, size_t len)
{
    size_t plain_len = 0;
    if (len < SEQ_HS_SEAL_BYTES || plain_reserve(n, len - SEQ_HS_SEAL_BYTES) != 0 ||
        seq_hs_open(c->hs, f, len, n->plain, &plain_len) != 0) {
        n->stats.bad_frames++;
        conn_warn(c, "net_bad_frame", "frame fails to decrypt");
        conn_close(c);
        return;
    }
    n->stats.frames_in++;
    peer *p = &n->peers[c->peer];
    if ((p->link == c || p->drain == c) && n->cb.on_frame)
        n->cb.on_frame(n->cb.ctx, (uint32_t)c->peer, n->plain, plain_len);
}

/* ---- reading -------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn *c = h->data;
    /* One buffer per net: read_cb consumes it before the loop reads again. */
    *buf = uv_buf_init((char *)c->net->rbuf, NET_READ_BYTES);
}

static void drain_frames(seq_net *n, conn *c)
{
    const uint8_t *f;
    size_t len;
    while (!c->closing && !c->paused && seq_framer_next(&c->framer, &f, &len)) {
        if (c->established)
            on_data_frame(n, c, f, len);
        else
            on_hs_frame(n, c, f, len);
    }
    /* Every complete frame went through, so while unauthenticated the
     * partial one is a handshake frame: bound it tightly. */
    if (!c->closing && !c->established &&
        c->framer.len - c->framer.off > SEQ_FRAME_HEADER_BYTES + SEQ_HS_FRAME_BYTES_MAX) {
        n->stats.handshakes_failed++;
        conn_warn(c, "net_handshake_failed", "handshake frame over its limit");
        conn_close(c);
    }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = s->data;
    seq_net *n = c->net;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        if (nread == UV_EOF) {
            char who[NET_ADDR_TEXT_BYTES + 32];
            SEQ_DEBUG("net_conn_eof", "%s", conn_who(c, who, sizeof who));
        } else {
            conn_warn(c, "net_read_failed", uv_strerror((int)nread));
        }
        conn_close(c);
        return;
    }
    n->stats.bytes_in += (uint64_t)nread;
    int rc = seq_framer_feed(&c->framer, (const uint8_t *)buf->base, (size_t)nread);
    if (rc != 0) {
        n->stats.bad_frames++;
        conn_warn(c, "net_bad_frame", rc == SEQ_ETOOBIG ? "frame over frame_bytes_max" : seq_strerror(rc));
        conn_close(c);
        return;
    }
    drain_frames(n, c);
}

static void conn_begin(conn *c)
{
    /* Frames are latency bound (votes); keepalive finds a peer that vanished
     * without a FIN, so a stale link cannot block the duplicate rule forever. */
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, NET_KEEPALIVE_S);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (rc != 0) {
        conn_warn(c, "net_read_failed", uv_strerror(rc));
        conn_close(c);
        return;
    }
    send_hs_frames(c);
}

/* ---- dialing and accepting ------------------------------------------------ */

static void connect_cb(uv_connect_t *req, int status)
{
    conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        /* Expected while a peer is down: not worth a warn line each time. */
        char who[NET_ADDR_TEXT_BYTES + 32];
        SEQ_DEBUG("net_connect_failed", "%s reason=\"%s\"", conn_who(c, who, sizeof who), uv_strerror(status));
        conn_close(c);
        return;
    }
    conn_begin(c);
}

static void dial(seq_net *n, peer *p)
{
    if (n->closing || p->link || p->dial)
        return;
    if (p->dialed_once)
        n->stats.reconnects++;
    p->dialed_once = true;
    conn *c = conn_new(n, SEQ_HS_DIALER);
    if (!c) {
        SEQ_WARN("net_dial_failed", "peer=%u addr=%s reason=\"out of memory\"", p->index, p->text);
        schedule_redial(n, p);
        return;
    }
    c->target = (int32_t)p->index;
    snprintf(c->addr, sizeof c->addr, "%s", p->text);
    p->dial = c;
    int rc = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&p->addr, connect_cb);
    if (rc != 0) {
        conn_warn(c, "net_dial_failed", uv_strerror(rc));
        conn_close(c);
    }
}

static void accept_cb(uv_stream_t *server, int status)
{
    seq_net *n = server->data;
    if (status < 0) {
        SEQ_WARN("net_accept_failed", "listen=%s reason=\"%s\"", n->cfg.listen, uv_strerror(status));
        return;
    }
    conn *c = conn_new(n, SEQ_HS_ACCEPTOR);
    if (!c) {
        SEQ_WARN("net_accept_failed", "listen=%s reason=\"out of memory\"", n->cfg.listen);
        return;
    }
    int rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        conn_warn(c, "net_accept_failed", uv_strerror(rc));
        conn_close(c);
        return;
    }
    struct sockaddr_storage sa;
    int sa_len = sizeof sa;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &sa_len) == 0)
        sockaddr_text(&sa, c->addr, sizeof c->addr);
    if (n->accepting > NET_ACCEPT_HANDSHAKES_MAX) {
        conn_warn(c, "net_accept_refused", "too many connections in handshake");
        conn_close(c);
        return;
    }
    conn_begin(c);
}

/* ---- public API ----------------------------------------------------------- */

static int check_config(const seq_net_config *cfg)
{
    if (!cfg->loop || !cfg->validators || !cfg->addresses || !cfg->key || !cfg->listen)
        return SEQ_EINVAL;
    if (cfg->self >= cfg->validators->n || cfg->frame_bytes_max == 0 ||
        cfg->frame_bytes_max > UINT32_MAX - SEQ_HS_SEAL_BYTES)
        return SEQ_EINVAL;
    if (cfg->reconnect_min_ms == 0 || cfg->reconnect_min_ms > cfg->reconnect_max_ms ||
        cfg->handshake_timeout_ms == 0)
        return SEQ_EINVAL;
    return 0;
}

static int resolve_peers(seq_net *n)
{
    const seq_net_config *cfg = &n->cfg;
    for (uint32_t i = 0; i < cfg->validators->n; i++) {
        peer *p = &n->peers[i];
        p->index = i;
        p->backoff_ms = cfg->reconnect_min_ms;
        if (i == cfg->self)
            continue;
        if (seq_addr_resolve(cfg->addresses[i], &p->addr) != 0) {
            SEQ_ERROR("net_bad_address", "peer=%u addr=%s", i, cfg->addresses[i] ? cfg->addresses[i] : "(null)");
            return SEQ_EADDR;
        }
        snprintf(p->text, sizeof p->text, "%s", cfg->addresses[i]);
    }
    return 0;
}

static int net_alloc(seq_net **out, const seq_net_config *cfg, const seq_net_callbacks *cb)
{
    seq_net *n = calloc(1, sizeof *n);
    if (!n)
        return SEQ_ENOMEM;
    n->cfg = *cfg;
    n->cb = *cb;
    n->peers = calloc(cfg->validators->n, sizeof *n->peers);
    n->rbuf = malloc(NET_READ_BYTES);
    n->plain_cap = NET_PLAIN_BYTES_MIN;
    n->plain = malloc(n->plain_cap);
    if (!n->peers || !n->rbuf || !n->plain) {
        net_free(n);
        return SEQ_ENOMEM;
    }
    *out = n;
    return 0;
}

/* Binds and listens; on failure the listener is closed (and n freed) in its
 * close callback, so the caller must still run the loop. */
static int listen_on(seq_net *n, const struct sockaddr_storage *sa)
{
    int rc = uv_tcp_init(n->cfg.loop, &n->listener);
    if (rc != 0) {
        SEQ_ERROR("net_listen_failed", "listen=%s reason=\"%s\"", n->cfg.listen, uv_strerror(rc));
        return SEQ_EIO;
    }
    n->listener.data = n;
    n->handles_open = 1;
    rc = uv_tcp_bind(&n->listener, (const struct sockaddr *)sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&n->listener, NET_BACKLOG, accept_cb);
    if (rc != 0) {
        SEQ_ERROR("net_listen_failed", "listen=%s reason=\"%s\"", n->cfg.listen, uv_strerror(rc));
        n->closing = true;
        uv_close((uv_handle_t *)&n->listener, net_handle_closed_cb);
        return SEQ_EIO;
    }
    return 0;
}

int seq_net_start(seq_net **out, const seq_net_config *cfg, const seq_net_callbacks *cb)
{
    SEQ_ASSERT(out && cfg && cb);
    *out = NULL;
    int rc = check_config(cfg);
    if (rc)
        return rc;
    struct sockaddr_storage listen_sa;
    if (seq_addr_resolve(cfg->listen, &listen_sa) != 0) {
        SEQ_ERROR("net_bad_address", "listen=%s", cfg->listen);
        return SEQ_EADDR;
    }
    seq_net *n;
    rc = net_alloc(&n, cfg, cb);
    if (rc)
        return rc;
    rc = resolve_peers(n);
    if (rc) {
        net_free(n);
        return rc;
    }
    rc = listen_on(n, &listen_sa);
    if (rc) {
        if (n->handles_open == 0)
            net_free(n);
        return rc;
    }
    for (uint32_t i = 0; i < cfg->validators->n; i++) {
        if (i == cfg->self)
            continue;
        rc = uv_timer_init(cfg->loop, &n->peers[i].redial);
        SEQ_ASSERT(rc == 0);
        n->peers[i].redial.data = n;
        n->handles_open++;
    }
    /* First dials from the loop, so nets started together all listen before
     * anyone dials (and a caller's on_peer never runs inside start). */
    for (uint32_t i = 0; i < cfg->validators->n; i++) {
        if (i == cfg->self)
            continue;
        rc = uv_timer_start(&n->peers[i].redial, redial_cb, 0, 0);
        SEQ_ASSERT(rc == 0);
    }
    SEQ_INFO("net_started", "listen=%s self=%u peers=%u", cfg->listen, cfg->self, cfg->validators->n - 1);
    *out = n;
    return 0;
}

int seq_net_send(seq_net *n, uint32_t to, const uint8_t *data, size_t len)
{
    SEQ_ASSERT(n);
    SEQ_ASSERT(data || len == 0);
    if (n->closing || to >= n->cfg.validators->n || !n->peers[to].link)
        return SEQ_ENOTCONN;
    if (len > n->cfg.frame_bytes_max)
        return SEQ_ETOOBIG;
    conn *c = n->peers[to].link;
    size_t sealed = len + SEQ_HS_SEAL_BYTES;
    if (c->pending_bytes + SEQ_FRAME_HEADER_BYTES + sealed > n->cfg.send_queue_bytes_max) {
        n->stats.frames_dropped++;
        return SEQ_EFULL;
    }
    wreq *w = wreq_new(sealed);
    if (!w)
        return SEQ_ENOMEM;
    seq_hs_seal(c->hs, data, len, w->data + SEQ_FRAME_HEADER_BYTES);
    int rc = wreq_submit(c, w, sealed);
    if (rc)
        return rc;
    n->stats.frames_out++;
    return 0;
}

void seq_net_broadcast(seq_net *n, const uint8_t *data, size_t len)
{
    SEQ_ASSERT(n);
    for (uint32_t i = 0; i < n->cfg.validators->n; i++)
        if (n->peers[i].link) {
            int rc = seq_net_send(n, i, data, len);
            (void)rc; /* a full queue is counted; a failed write closed that link */
        }
}

void seq_net_drop(seq_net *n, uint32_t v, const char *why)
{
    if (v >= n->cfg.validators->n || v == n->cfg.self || !n->peers[v].link)
        return;
    SEQ_WARN("net_peer_dropped", "peer=%u reason=\"%s\"", v, why);
    conn_close(n->peers[v].link); /* redialed with backoff, like any lost link */
}

uint32_t seq_net_peers_up(const seq_net *n)
{
    return n->up;
}

bool seq_net_peer_up(const seq_net *n, uint32_t v)
{
    return v < n->cfg.validators->n && n->peers[v].link != NULL;
}

void seq_net_stats_get(const seq_net *n, seq_net_stats *out)
{
    SEQ_ASSERT(n && out);
    *out = n->stats;
}

void seq_net_close(seq_net *n, void (*done)(void *ctx), void *ctx)
{
    SEQ_ASSERT(n && !n->closing);
    n->closing = true;
    n->done = done;
    n->done_ctx = ctx;
    uv_close((uv_handle_t *)&n->listener, net_handle_closed_cb);
    for (uint32_t i = 0; i < n->cfg.validators->n; i++)
        if (i != n->cfg.self)
            uv_close((uv_handle_t *)&n->peers[i].redial, net_handle_closed_cb);
    for (conn *c = n->conns; c; c = c->next)
        conn_close(c);
}
