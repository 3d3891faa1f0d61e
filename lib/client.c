/* The client side of the node's API port: one TCP connection, ClientRequest
 * frames out, ClientResponse frames in (lib/client.h).
 *
 * Happy path: connect (non-blocking connect + poll, so the timeout holds),
 * then each call packs one request behind a 4-byte length and writes it, and
 * each receive reads into a seq_framer (bounded by SEQ_CLIENT_FRAME_BYTES_MAX)
 * until one whole frame is there, unpacks it with a budgeted allocator and
 * converts it to lib/types.h structs with the peer wire's shape checks
 * (lib/pbconv.h) plus the batch's own (namespace, counts, hash sizes, proof
 * and path bounds). With a verifier set, a subscription batch is handed out
 * only after seq_verifier_check passed (lib/verify.h); the first failure
 * sticks, because a node that sent one bad batch is not trusted for the next.
 * The socket stays non-blocking throughout; every wait is a poll with a
 * deadline, so no call blocks longer than its timeout (sends: SEND_TIMEOUT_MS). */
#include "client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "errors.h"
#include "genesis.h"
#include "msg.h"
#include "pbconv.h"
#include "seq.pb-c.h"
#include "wire.h"

#define SEND_TIMEOUT_MS 10000u        /* a node that stops reading for this long is dead to us */
#define READ_CHUNK_BYTES (64u << 10)  /* one read(2) into the framer */
#define SEND_BUF_IDLE_BYTES (1u << 20) /* a larger send buffer is freed after use */
#define HOST_BYTES 256
#define RUN_BATCHES_MAX 64            /* batches read ahead and verified together (catch-up) */
#define RUN_BYTES_MAX (8u << 20)      /* read ahead while the run holds less (so at most this plus one batch) */

_Static_assert(SEQ_CLIENT_SUBSCRIBE_NS_MAX >= 1, "a subscription names a namespace");
_Static_assert(SEQ_CLIENT_FRAME_BYTES_MAX <= UINT32_MAX - SEQ_FRAME_HEADER_BYTES, "frame length fits the header");
_Static_assert(SEQ_VERIFIER_NS_MAX >= SEQ_CLIENT_SUBSCRIBE_NS_MAX, "the verifier follows every subscribed namespace");

/* Where one subscribed namespace is: the last batch handed out. */
typedef struct {
    bool have;
    uint64_t height;
    seq_hash hash;
} sub_position;

struct seq_client {
    int fd;
    uint64_t next_request_id;
    seq_framer framer;
    int sticky_err;              /* set once the stream is unusable (framing, i/o, closed) */
    bool subscribed;
    uint64_t subscribe_id;
    uint32_t sub_ns_count;
    seq_ns sub_ns[SEQ_CLIENT_SUBSCRIBE_NS_MAX];
    sub_position sub_pos[SEQ_CLIENT_SUBSCRIBE_NS_MAX];
    seq_pb_arena rx_arena;       /* the one response unpacked (recv_response .. free_response) */
    seq_verifier *verifier;      /* NULL: batches are shape-checked only */
    int verify_failed;           /* the first verification error, returned from then on */
    seq_batch *run[RUN_BATCHES_MAX]; /* verified, not yet handed out: run[run_pos..run_len) */
    uint32_t run_len, run_pos;
    int run_deferred;            /* an error read ahead, returned once the run is handed out */
    bool verify_runs;            /* seq_client_verify_runs: read ahead and check runs */
    uint8_t *send_buf;           /* reused between sends */
    size_t send_cap;
    Seq__Tx *tx_items;           /* SEQ_GOSSIP_TXS_MAX each, allocated on first submit */
    Seq__Tx **tx_ptrs;
    ProtobufCBinaryData *key_items;
    char last_error[256];
};

static void set_error(seq_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(seq_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_error, sizeof c->last_error, fmt, ap);
    va_end(ap);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds left until deadline, for poll(2). */
static int ms_left(uint64_t deadline)
{
    uint64_t now = now_ms();
    if (now >= deadline)
        return 0;
    uint64_t left = deadline - now;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = events };
        int rc = poll(&p, 1, ms_left(deadline));
        if (rc > 0)
            return 0;
        if (rc == 0)
            return SEQ_ETIMEOUT;
        if (errno != EINTR)
            return SEQ_EIO;
    }
}

/* ---- connecting ----------------------------------------------------------- */

/* "host:port" or "[v6]:port" -> host, port text. */
static int split_hostport(const char *s, char *host, size_t host_len, const char **port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return SEQ_EADDR;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return SEQ_EADDR;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= host_len)
        return SEQ_EADDR;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = colon + 1;
    char *end;
    errno = 0;
    unsigned long p = strtoul(*port, &end, 10);
    if (errno || end == *port || *end || p == 0 || p > 65535 || (*port)[0] == '-' || (*port)[0] == '+')
        return SEQ_EADDR;
    return 0;
}

/* One address: non-blocking connect, poll until writable, read SO_ERROR. */
static int connect_one(const struct addrinfo *ai, uint64_t deadline, int *fd_out, int *errno_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        *errno_out = errno;
        return SEQ_EIO;
    }
    int rc = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            *errno_out = errno;
            close(fd);
            return SEQ_EIO;
        }
        rc = wait_fd(fd, POLLOUT, deadline);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (!rc && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)) {
            *errno_out = soerr ? soerr : errno;
            rc = SEQ_EIO;
        }
        if (rc) {
            close(fd);
            return rc;
        }
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *fd_out = fd;
    return 0;
}

static int connect_fd(int *fd_out, const char *hostport, uint32_t timeout_ms, char *err, size_t err_len)
{
    char host[HOST_BYTES];
    const char *port;
    if (split_hostport(hostport, host, sizeof host, &port) != 0) {
        snprintf(err, err_len, "bad address '%s' (want HOST:PORT)", hostport);
        return SEQ_EADDR;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, err_len, "resolve %s: %s", host, gai_strerror(gai));
        return SEQ_EADDR;
    }
    uint64_t deadline = now_ms() + timeout_ms;
    int rc = SEQ_EIO, last_errno = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = connect_one(ai, deadline, fd_out, &last_errno);
        if (rc == 0 || rc == SEQ_ETIMEOUT)
            break;
    }
    freeaddrinfo(res);
    if (rc == SEQ_ETIMEOUT)
        snprintf(err, err_len, "connect %s: timed out after %u ms", hostport, timeout_ms);
    else if (rc)
        snprintf(err, err_len, "connect %s: %s", hostport, last_errno ? strerror(last_errno) : "failed");
    return rc;
}

int seq_client_connect(seq_client **out, const char *hostport, uint32_t timeout_ms, char *err, size_t err_len)
{
    SEQ_ASSERT(out && hostport);
    char scratch[8];
    if (!err) {
        err = scratch;
        err_len = sizeof scratch;
    }
    /* Verifying signatures needs libsodium initialised; do it once here. */
    if (seq_crypto_init() != 0) {
        snprintf(err, err_len, "libsodium failed to initialise");
        return SEQ_EIO;
    }
    seq_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, err_len, "out of memory");
        return SEQ_ENOMEM;
    }
    int rc = connect_fd(&c->fd, hostport, timeout_ms, err, err_len);
    if (rc) {
        free(c);
        return rc;
    }
    c->next_request_id = 1;
    seq_framer_init(&c->framer, SEQ_CLIENT_FRAME_BYTES_MAX);
    *out = c;
    return 0;
}

void seq_client_close(seq_client *c)
{
    if (!c)
        return;
    close(c->fd);
    seq_framer_free(&c->framer);
    free(c->send_buf);
    free(c->tx_items);
    free(c->tx_ptrs);
    free(c->key_items);
    free(c->verifier);
    seq_pb_arena_release(&c->rx_arena);
    for (uint32_t i = c->run_pos; i < c->run_len; i++)
        seq_batch_free(c->run[i]);
    free(c);
}

int seq_client_fd(const seq_client *c)
{
    SEQ_ASSERT(c);
    return c->fd;
}

const char *seq_client_last_error(const seq_client *c)
{
    SEQ_ASSERT(c);
    return c->last_error;
}

/* ---- sending -------------------------------------------------------------- */

static int write_all(seq_client *c, const uint8_t *p, size_t len)
{
    uint64_t deadline = now_ms() + SEND_TIMEOUT_MS;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(c->fd, POLLOUT, deadline);
            if (rc == SEQ_ETIMEOUT) {
                set_error(c, "send: node did not read for %u ms", SEND_TIMEOUT_MS);
                return c->sticky_err = SEQ_ETIMEOUT;
            }
            if (rc == 0)
                continue;
        }
        set_error(c, "send: %s", strerror(errno));
        return c->sticky_err = (errno == EPIPE || errno == ECONNRESET) ? SEQ_ECLOSED : SEQ_EIO;
    }
    return 0;
}

/* Packs req behind its frame header into the reusable send buffer and writes it. */
static int send_request(seq_client *c, Seq__ClientRequest *req)
{
    if (c->sticky_err)
        return c->sticky_err;
    req->request_id = c->next_request_id;
    size_t n = seq__client_request__get_packed_size(req);
    if (n > SEQ_CLIENT_FRAME_BYTES_MAX) {
        set_error(c, "request of %zu bytes is over the frame limit", n);
        return SEQ_ETOOBIG;
    }
    size_t total = SEQ_FRAME_HEADER_BYTES + n;
    if (total > c->send_cap) {
        uint8_t *buf = realloc(c->send_buf, total);
        if (!buf)
            return SEQ_ENOMEM;
        c->send_buf = buf;
        c->send_cap = total;
    }
    seq_frame_header(c->send_buf, (uint32_t)n);
    size_t written = seq__client_request__pack(req, c->send_buf + SEQ_FRAME_HEADER_BYTES);
    SEQ_ASSERT(written == n);
    int rc = write_all(c, c->send_buf, total);
    if (c->send_cap > SEND_BUF_IDLE_BYTES) {
        free(c->send_buf);
        c->send_buf = NULL;
        c->send_cap = 0;
    }
    if (rc == 0)
        c->next_request_id++;
    return rc;
}

/* ---- receiving ------------------------------------------------------------ */

/* Reads whatever the socket has into the framer. 0 when bytes came. */
static int read_some(seq_client *c, uint64_t deadline)
{
    uint8_t chunk[READ_CHUNK_BYTES];
    for (;;) {
        ssize_t n = recv(c->fd, chunk, sizeof chunk, 0);
        if (n > 0) {
            int rc = seq_framer_feed(&c->framer, chunk, (size_t)n);
            if (rc == SEQ_ETOOBIG) {
                set_error(c, "node sent a frame over %u bytes", SEQ_CLIENT_FRAME_BYTES_MAX);
                return c->sticky_err = SEQ_EDECODE;
            }
            return rc ? (c->sticky_err = rc) : 0;
        }
        if (n == 0) {
            set_error(c, "node closed the connection");
            return c->sticky_err = SEQ_ECLOSED;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            set_error(c, "recv: %s", strerror(errno));
            return c->sticky_err = (errno == ECONNRESET) ? SEQ_ECLOSED : SEQ_EIO;
        }
        if (ms_left(deadline) == 0)
            return SEQ_ETIMEOUT; /* a poll(2) of 0 ms would only say what recv just did */
        int rc = wait_fd(c->fd, POLLIN, deadline);
        if (rc == SEQ_ETIMEOUT)
            return rc;
        if (rc) {
            set_error(c, "poll: %s", strerror(errno));
            return c->sticky_err = rc;
        }
    }
}

/* Waits for one whole frame and unpacks it into c->rx_arena: one response
 * at a time, *out freed with free_response. The arena because a subscriber
 * decodes a batch per block and namespace: protobuf-c's malloc per field
 * was ~10% of seqctl fanout's CPU. */
static int recv_response(seq_client *c, Seq__ClientResponse **out, uint32_t timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    const uint8_t *payload;
    size_t len;
    while (!seq_framer_next(&c->framer, &payload, &len)) {
        if (c->sticky_err)
            return c->sticky_err;
        int rc = read_some(c, deadline);
        if (rc)
            return rc;
    }
    SEQ_ASSERT(!c->rx_arena.head); /* the previous response was freed */
    seq_pb_arena_init(&c->rx_arena, len);
    Seq__ClientResponse *r = seq__client_response__unpack(&c->rx_arena.allocator, len, payload);
    if (!r) {
        seq_pb_arena_release(&c->rx_arena);
        set_error(c, "node sent a malformed frame of %zu bytes", len);
        return SEQ_EDECODE;
    }
    *out = r;
    return 0;
}

static void free_response(seq_client *c, Seq__ClientResponse *r)
{
    (void)r; /* it lives in the arena */
    seq_pb_arena_release(&c->rx_arena);
}

/* An Error reply: the node's code (any code of the table), else SEQ_EPROTOCOL. */
static int error_from_pb(seq_client *c, const Seq__Error *e)
{
    int code = e ? -(int)(e->code > 100000 ? 100000 : e->code) : 0;
    const char *msg = e && e->message ? e->message : "";
    if (code <= SEQ_ERR_FIRST_ || code >= SEQ_ERR_LAST_) {
        set_error(c, "node error with unknown code %u: %s", e ? e->code : 0, msg);
        return SEQ_EPROTOCOL;
    }
    set_error(c, "node: %s", msg[0] ? msg : seq_strerror(code));
    return code;
}

/* ---- submit --------------------------------------------------------------- */

/* The request's protobuf items, reused between submits: SEQ_GOSSIP_TXS_MAX
 * of each, allocated on the first submit. */
static int submit_scratch(seq_client *c)
{
    if (c->tx_items)
        return 0;
    c->tx_items = malloc(SEQ_GOSSIP_TXS_MAX * sizeof *c->tx_items);
    c->tx_ptrs = malloc(SEQ_GOSSIP_TXS_MAX * sizeof *c->tx_ptrs);
    c->key_items = malloc(SEQ_GOSSIP_TXS_MAX * sizeof *c->key_items);
    if (c->tx_items && c->tx_ptrs && c->key_items)
        return 0;
    free(c->tx_items);
    free(c->tx_ptrs);
    free(c->key_items);
    c->tx_items = NULL;
    c->tx_ptrs = NULL;
    c->key_items = NULL;
    return SEQ_ENOMEM;
}

int seq_client_submit_send_keyed(seq_client *c, const seq_tx *txs, const seq_client_key *keys, uint32_t n,
                                 uint64_t *request_id)
{
    SEQ_ASSERT(c);
    SEQ_ASSERT(txs || n == 0);
    if (n == 0 || n > SEQ_GOSSIP_TXS_MAX)
        return SEQ_EINVAL;
    for (uint32_t i = 0; keys && i < n; i++) {
        if (keys[i].len > SEQ_CLIENT_KEY_BYTES_MAX || (keys[i].len && !keys[i].data)) {
            set_error(c, "client key %u: %u bytes, at most %u", i, keys[i].len, SEQ_CLIENT_KEY_BYTES_MAX);
            return SEQ_EINVAL;
        }
    }
    int rc = submit_scratch(c);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        c->tx_items[i] = (Seq__Tx)SEQ__TX__INIT;
        c->tx_items[i].ns = txs[i].ns;
        c->tx_items[i].payload = (ProtobufCBinaryData){ .len = txs[i].len, .data = (uint8_t *)txs[i].data };
        c->tx_ptrs[i] = &c->tx_items[i];
        if (keys)
            c->key_items[i] = (ProtobufCBinaryData){ .len = keys[i].len, .data = (uint8_t *)keys[i].data };
    }
    Seq__SubmitRequest sub = SEQ__SUBMIT_REQUEST__INIT;
    sub.n_txs = n;
    sub.txs = c->tx_ptrs;
    sub.n_client_keys = keys ? n : 0; /* one key per transaction, or none at all */
    sub.client_keys = keys ? c->key_items : NULL;
    Seq__ClientRequest req = SEQ__CLIENT_REQUEST__INIT;
    req.body_case = SEQ__CLIENT_REQUEST__BODY_SUBMIT;
    req.submit = &sub;
    uint64_t id = c->next_request_id;
    rc = send_request(c, &req);
    if (rc == 0 && request_id)
        *request_id = id;
    return rc;
}

int seq_client_submit_send(seq_client *c, const seq_tx *txs, uint32_t n, uint64_t *request_id)
{
    return seq_client_submit_send_keyed(c, txs, NULL, n, request_id);
}

static int status_from_pb(int pb_status)
{
    switch (pb_status) {
    case SEQ__SUBMIT_RESULT__STATUS__ACCEPTED:
        return 0;
    case SEQ__SUBMIT_RESULT__STATUS__TOO_LARGE:
        return SEQ_ETOOBIG;
    case SEQ__SUBMIT_RESULT__STATUS__MEMPOOL_FULL:
        return SEQ_EFULL;
    case SEQ__SUBMIT_RESULT__STATUS__DUPLICATE:
        return SEQ_EDUPLICATE;
    case SEQ__SUBMIT_RESULT__STATUS__INVALID:
        return SEQ_EINVAL;
    default:
        return 1; /* not a status: the reply is malformed */
    }
}

/* One SubmitResult; an id is 32 bytes, or empty when the node could not
 * compute one (a rejection). */
static int result_from_pb(seq_submit_result *out, const Seq__SubmitResult *pb)
{
    if (!pb || (pb->id.len != 0 && pb->id.len != SEQ_HASH_BYTES))
        return SEQ_EDECODE;
    int status = status_from_pb(pb->status);
    if (status > 0)
        return SEQ_EDECODE;
    memset(out, 0, sizeof *out);
    if (pb->id.len)
        memcpy(out->id.b, pb->id.data, SEQ_HASH_BYTES);
    out->status = status;
    snprintf(out->reason, sizeof out->reason, "%s", pb->reason ? pb->reason : "");
    return 0;
}

static int submit_reply_from_pb(seq_client *c, const Seq__SubmitReply *pb, seq_submit_result *results, uint32_t cap,
                                uint32_t *n)
{
    if (!pb || pb->n_results > SEQ_GOSSIP_TXS_MAX) {
        set_error(c, "node sent a malformed submit reply");
        return SEQ_EDECODE;
    }
    for (size_t i = 0; i < pb->n_results && i < cap; i++) {
        if (result_from_pb(&results[i], pb->results[i]) != 0) {
            set_error(c, "node sent a malformed submit result %zu", i);
            return SEQ_EDECODE;
        }
    }
    *n = (uint32_t)pb->n_results;
    return 0;
}

int seq_client_submit_recv(seq_client *c, seq_submit_result *results, uint32_t cap, uint32_t *n,
                           uint64_t *request_id, uint32_t timeout_ms)
{
    SEQ_ASSERT(c && n);
    SEQ_ASSERT(results || cap == 0);
    Seq__ClientResponse *r;
    int rc = recv_response(c, &r, timeout_ms);
    if (rc)
        return rc;
    if (request_id)
        *request_id = r->request_id;
    if (r->body_case == SEQ__CLIENT_RESPONSE__BODY_ERROR) {
        rc = error_from_pb(c, r->error);
    } else if (r->body_case == SEQ__CLIENT_RESPONSE__BODY_SUBMIT) {
        rc = submit_reply_from_pb(c, r->submit, results, cap, n);
    } else {
        set_error(c, "expected a submit reply, got body %d", (int)r->body_case);
        rc = SEQ_EPROTOCOL;
    }
    free_response(c, r);
    return rc;
}

int seq_client_submit_keyed(seq_client *c, const seq_tx *txs, const seq_client_key *keys, uint32_t n,
                            seq_submit_result *results, uint32_t timeout_ms)
{
    uint64_t sent_id, got_id;
    int rc = seq_client_submit_send_keyed(c, txs, keys, n, &sent_id);
    if (rc)
        return rc;
    uint32_t got = 0;
    rc = seq_client_submit_recv(c, results, n, &got, &got_id, timeout_ms);
    if (rc)
        return rc;
    if (got_id != sent_id || got != n) {
        set_error(c, "submit reply for request %llu with %u results, expected %llu with %u",
                  (unsigned long long)got_id, got, (unsigned long long)sent_id, n);
        return SEQ_EPROTOCOL;
    }
    return 0;
}

int seq_client_submit(seq_client *c, const seq_tx *txs, uint32_t n, seq_submit_result *results, uint32_t timeout_ms)
{
    return seq_client_submit_keyed(c, txs, NULL, n, results, timeout_ms);
}

/* ---- status --------------------------------------------------------------- */

/* Sends req and waits for its one reply of body `want`: 0 with *out (free
 * with free_response), the node's Error code, or SEQ_EPROTOCOL for a reply
 * to another request or of another kind. */
static int request_reply(seq_client *c, Seq__ClientRequest *req, int want, const char *what,
                         Seq__ClientResponse **out, uint32_t timeout_ms)
{
    uint64_t id = c->next_request_id;
    int rc = send_request(c, req);
    if (rc)
        return rc;
    Seq__ClientResponse *r;
    if ((rc = recv_response(c, &r, timeout_ms)))
        return rc;
    if (r->body_case == SEQ__CLIENT_RESPONSE__BODY_ERROR) {
        rc = error_from_pb(c, r->error);
    } else if ((int)r->body_case != want || r->request_id != id) {
        set_error(c, "expected the %s reply to request %llu", what, (unsigned long long)id);
        rc = SEQ_EPROTOCOL;
    }
    if (rc) {
        free_response(c, r);
        return rc;
    }
    *out = r;
    return 0;
}

int seq_client_status(seq_client *c, seq_node_status *out, uint32_t timeout_ms)
{
    SEQ_ASSERT(c && out);
    Seq__StatusRequest sr = SEQ__STATUS_REQUEST__INIT;
    Seq__ClientRequest req = SEQ__CLIENT_REQUEST__INIT;
    req.body_case = SEQ__CLIENT_REQUEST__BODY_STATUS;
    req.status = &sr;
    Seq__ClientResponse *r;
    int rc = request_reply(c, &req, SEQ__CLIENT_RESPONSE__BODY_STATUS, "status", &r, timeout_ms);
    if (rc)
        return rc;
    if (!r->status) {
        set_error(c, "node sent an empty status reply");
        rc = SEQ_EPROTOCOL;
    } else {
        *out = (seq_node_status){ .height = r->status->height, .view = r->status->view,
                                  .leader = r->status->leader, .peers = r->status->peers,
                                  .mempool_txs = r->status->mempool_txs,
                                  .mempool_bytes = r->status->mempool_bytes };
    }
    free_response(c, r);
    return rc;
}

/* ---- verification --------------------------------------------------------- */

int seq_client_verify_with(seq_client *c, const seq_validators *vs, uint64_t chain_id)
{
    SEQ_ASSERT(c && vs);
    SEQ_ASSERT(vs->n >= 1 && vs->n <= SEQ_VALIDATORS_MAX);
    if (c->subscribed) {
        set_error(c, "verification is set before subscribing");
        return SEQ_EINVAL;
    }
    if (!c->verifier && !(c->verifier = malloc(sizeof *c->verifier)))
        return SEQ_ENOMEM;
    seq_verifier_init(c->verifier, vs, chain_id);
    return 0;
}

int seq_client_verify_genesis(seq_client *c, const char *genesis_path, char *err, size_t err_len)
{
    SEQ_ASSERT(c && genesis_path);
    seq_genesis *g = malloc(sizeof *g);
    if (!g) {
        seq_err_set(err, err_len, "out of memory");
        return SEQ_ENOMEM;
    }
    int rc = seq_genesis_load(g, genesis_path, err, err_len);
    if (rc == 0 && (rc = seq_client_verify_with(c, &g->set, g->chain_id)))
        seq_err_set(err, err_len, "%s", c->last_error[0] ? c->last_error : seq_strerror(rc));
    free(g);
    return rc;
}

int seq_client_verify_runs(seq_client *c, bool on)
{
    SEQ_ASSERT(c);
    if (!c->verifier)
        return SEQ_EINVAL;
    c->verify_runs = on;
    return 0;
}

bool seq_client_verifying(const seq_client *c)
{
    SEQ_ASSERT(c);
    return c->verifier != NULL;
}

uint64_t seq_client_verified_count(const seq_client *c)
{
    SEQ_ASSERT(c);
    /* The verifier also counts a run's batches not handed out yet. */
    return c->verifier ? c->verifier->verified - (c->run_len - c->run_pos) : 0;
}

/* ---- subscriptions -------------------------------------------------------- */

/* Sends the subscription; with a verifier, each namespace's first batch must
 * be at from_height and, when last_hash is given, follow it. */
static int subscribe_start(seq_client *c, const seq_ns *ns, uint32_t ns_count, uint64_t from_height,
                           const seq_hash *last_hash)
{
    SEQ_ASSERT(c);
    SEQ_ASSERT(ns || ns_count == 0);
    if (ns_count == 0 || ns_count > SEQ_CLIENT_SUBSCRIBE_NS_MAX || from_height == 0 || c->subscribed)
        return SEQ_EINVAL;
    for (uint32_t i = 0; c->verifier && i < ns_count; i++) {
        int rc = seq_verifier_expect(c->verifier, ns[i], from_height, last_hash);
        if (rc) {
            set_error(c, "verifier: cannot follow namespace %llu (%s)", (unsigned long long)ns[i],
                      seq_strerror(rc));
            return rc;
        }
    }
    uint64_t nsv[SEQ_CLIENT_SUBSCRIBE_NS_MAX];
    for (uint32_t i = 0; i < ns_count; i++)
        nsv[i] = ns[i];
    Seq__SubscribeRequest sr = SEQ__SUBSCRIBE_REQUEST__INIT;
    sr.n_namespaces = ns_count;
    sr.namespaces = nsv;
    sr.from_height = from_height;
    Seq__ClientRequest req = SEQ__CLIENT_REQUEST__INIT;
    req.body_case = SEQ__CLIENT_REQUEST__BODY_SUBSCRIBE;
    req.subscribe = &sr;
    uint64_t id = c->next_request_id;
    int rc = send_request(c, &req);
    if (rc)
        return rc;
    c->subscribed = true;
    c->subscribe_id = id;
    c->sub_ns_count = ns_count;
    memcpy(c->sub_ns, ns, ns_count * sizeof *ns);
    for (uint32_t i = 0; i < ns_count; i++)
        c->sub_pos[i] = (sub_position){ .have = last_hash != NULL, .height = from_height - 1,
                                        .hash = last_hash ? *last_hash : (seq_hash){ { 0 } } };
    return 0;
}

int seq_client_subscribe(seq_client *c, const seq_ns *ns, uint32_t ns_count, uint64_t from_height)
{
    return subscribe_start(c, ns, ns_count, from_height, NULL);
}

int seq_client_subscribe_resume(seq_client *c, const seq_ns *ns, uint32_t ns_count, uint64_t last_height,
                                const seq_hash *last_hash)
{
    SEQ_ASSERT(last_hash);
    if (last_height == UINT64_MAX)
        return SEQ_EINVAL;
    return subscribe_start(c, ns, ns_count, last_height + 1, last_hash);
}

int seq_client_resume_point(const seq_client *c, uint64_t *height, seq_hash *hash)
{
    SEQ_ASSERT(c && height && hash);
    if (!c->subscribed)
        return SEQ_ENOTFOUND;
    const sub_position *low = NULL;
    for (uint32_t i = 0; i < c->sub_ns_count; i++) {
        if (!c->sub_pos[i].have)
            return SEQ_ENOTFOUND;
        if (!low || c->sub_pos[i].height < low->height)
            low = &c->sub_pos[i];
    }
    SEQ_ASSERT(low);
    *height = low->height;
    *hash = low->hash;
    return 0;
}

static int subscribed_index(const seq_client *c, seq_ns ns)
{
    for (uint32_t i = 0; i < c->sub_ns_count; i++)
        if (c->sub_ns[i] == ns)
            return (int)i;
    return -1;
}

static int hash_from_pb(seq_hash *out, ProtobufCBinaryData d)
{
    if (d.len != SEQ_HASH_BYTES)
        return SEQ_EDECODE;
    memcpy(out->b, d.data, SEQ_HASH_BYTES);
    return 0;
}

/* The certificate path: at most SEQ_CERT_PATH_MAX headers (checked by the caller). */
static int path_from_pb(seq_header *out, Seq__BlockHeader *const *pb, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = seq_pb_header_get(&out[i], pb[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* A proof covering count transactions (count is not on the wire). A missing
 * proof reads as the empty one, start 0 and no node, as proto3 reads any
 * absent message: the proof of an empty block, which fails the check of
 * any other. */
static int proof_from_pb(seq_nsproof *out, const Seq__NamespaceProof *pb, uint32_t count)
{
    memset(out, 0, sizeof *out);
    out->count = count;
    if (!pb)
        return 0;
    if (pb->n_nodes > SEQ_NSPROOF_NODES_MAX)
        return SEQ_EDECODE;
    out->start = pb->start;
    for (size_t i = 0; i < pb->n_nodes; i++) {
        const Seq__NmtNode *n = pb->nodes[i];
        if (!n || hash_from_pb(&out->nodes[i].digest, n->digest) != 0)
            return SEQ_EDECODE;
        out->nodes[i].min = n->min;
        out->nodes[i].max = n->max;
    }
    out->node_count = (uint32_t)pb->n_nodes;
    return 0;
}

/* The counts and sizes of a batch before anything is allocated for it.
 * *what names the first thing out of shape. */
static int batch_shape(const Seq__NamespaceBatch *pb, size_t *payload_bytes, const char **what)
{
    if (pb->n_txs > SEQ_BLOCK_TXS_MAX || (pb->header && pb->n_txs > pb->header->tx_count)) {
        *what = "more transactions than its block";
        return SEQ_EDECODE;
    }
    if (pb->n_cert_path > SEQ_CERT_PATH_MAX) {
        *what = "certificate path too long";
        return SEQ_EDECODE;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < pb->n_txs; i++) {
        const Seq__Tx *t = pb->txs[i];
        if (!t || t->ns != pb->ns || t->payload.len > SEQ_TX_PAYLOAD_BYTES_MAX) {
            *what = "a transaction of another namespace or too large";
            return SEQ_EDECODE;
        }
        bytes += t->payload.len;
    }
    if (bytes > SEQ_BLOCK_BYTES_MAX) {
        *what = "payloads over a block's size";
        return SEQ_EDECODE;
    }
    *payload_bytes = bytes;
    return 0;
}

/* Fills b (allocated for pb's counts) from pb; *what names a bad field. */
static int batch_fields_from_pb(seq_batch *b, uint8_t *payloads, const Seq__NamespaceBatch *pb, const char **what)
{
    b->ns = pb->ns;
    if (seq_pb_header_get(&b->header, pb->header) != 0) {
        *what = "header";
        return SEQ_EDECODE;
    }
    if (seq_pb_cert_get(&b->cert, pb->cert) != 0) {
        *what = "certificate";
        return SEQ_EDECODE;
    }
    if (hash_from_pb(&b->prev_batch_hash, pb->prev_batch_hash) != 0) {
        *what = "prev_batch_hash not 32 bytes";
        return SEQ_EDECODE;
    }
    if (path_from_pb(b->cert_path, pb->cert_path, pb->n_cert_path) != 0) {
        *what = "certificate path header";
        return SEQ_EDECODE;
    }
    if (proof_from_pb(&b->proof, pb->proof, (uint32_t)pb->n_txs) != 0) {
        *what = "namespace proof";
        return SEQ_EDECODE;
    }
    for (size_t i = 0; i < pb->n_txs; i++) {
        const Seq__Tx *t = pb->txs[i];
        if (t->payload.len)
            memcpy(payloads, t->payload.data, t->payload.len);
        b->txs[i] = (seq_tx){ .ns = t->ns, .len = (uint32_t)t->payload.len, .data = payloads };
        seq_tx_compute_id(&b->txs[i]);
        payloads += t->payload.len;
    }
    b->ids_from_payloads_ = true; /* computed just above from what was received */
    seq_header_hash(&b->header, &b->block_hash);
    return 0;
}

static int batch_from_pb(seq_client *c, seq_batch **out, const Seq__NamespaceBatch *pb)
{
    if (!pb) {
        set_error(c, "node sent an empty batch");
        return SEQ_EDECODE;
    }
    if (subscribed_index(c, pb->ns) < 0) {
        set_error(c, "node sent a batch of namespace %llu, not subscribed", (unsigned long long)pb->ns);
        return SEQ_EPROTOCOL;
    }
    const char *what = "";
    size_t payload_bytes = 0;
    int rc = batch_shape(pb, &payload_bytes, &what);
    seq_batch *b = NULL;
    uint8_t *payloads = NULL;
    if (rc == 0 && (rc = seq_batch_alloc(&b, (uint32_t)pb->n_txs, payload_bytes, (uint32_t)pb->n_cert_path,
                                         &payloads)) != 0) {
        SEQ_ASSERT(rc == SEQ_ENOMEM); /* batch_shape kept within seq_batch_alloc's limits */
        set_error(c, "out of memory for a batch of %zu transactions", pb->n_txs);
        return rc;
    }
    if (rc == 0 && (rc = batch_fields_from_pb(b, payloads, pb, &what)) != 0)
        seq_batch_free(b);
    if (rc) {
        set_error(c, "node sent a malformed batch (%s)", what);
        return rc;
    }
    *out = b;
    return 0;
}

/* One batch frame of the subscription, decoded, not verified. */
static int receive_batch(seq_client *c, seq_batch **out, uint32_t timeout_ms)
{
    Seq__ClientResponse *r;
    int rc = recv_response(c, &r, timeout_ms);
    if (rc)
        return rc;
    /* An Error may carry the subscribe's id or none (a connection-level refusal). */
    if (r->body_case == SEQ__CLIENT_RESPONSE__BODY_ERROR) {
        rc = error_from_pb(c, r->error);
    } else if (r->request_id != c->subscribe_id) {
        set_error(c, "reply to request %llu on a subscription (%llu)", (unsigned long long)r->request_id,
                  (unsigned long long)c->subscribe_id);
        rc = SEQ_EPROTOCOL;
    } else if (r->body_case == SEQ__CLIENT_RESPONSE__BODY_BATCH) {
        rc = batch_from_pb(c, out, r->batch);
    } else {
        set_error(c, "expected a batch, got body %d", (int)r->body_case);
        rc = SEQ_EPROTOCOL;
    }
    free_response(c, r);
    return rc;
}

/* Memory a received batch holds, about: its payloads, tx entries and path. */
static size_t batch_bytes(const seq_batch *b)
{
    size_t n = (size_t)b->tx_count * sizeof b->txs[0] + (size_t)b->path_len * sizeof b->cert_path[0];
    for (uint32_t i = 0; i < b->tx_count; i++)
        n += b->txs[i].len;
    return n;
}

/* Fills the run: one batch (waiting up to timeout_ms); with verify_runs,
 * also whatever batches have already arrived, up to RUN_BATCHES_MAX and
 * RUN_BYTES_MAX, without waiting. Then verifies them (seq_verifier_check_run: one certificate per
 * namespace and run, so a catch-up costs one ed25519 quorum per run instead
 * of per batch; a run of one is seq_verifier_check). A failure is kept and
 * returned from then on, after the batches before it. An error met while
 * reading ahead waits for the run. */
static int run_fill(seq_client *c, uint32_t timeout_ms)
{
    SEQ_ASSERT(c->run_pos == c->run_len);
    c->run_pos = c->run_len = 0;
    int rc = receive_batch(c, &c->run[0], timeout_ms);
    if (rc)
        return rc;
    c->run_len = 1;
    uint32_t max = c->verify_runs ? RUN_BATCHES_MAX : 1;
    size_t bytes = batch_bytes(c->run[0]);
    while (c->run_len < max && bytes < RUN_BYTES_MAX && (rc = receive_batch(c, &c->run[c->run_len], 0)) == 0)
        bytes += batch_bytes(c->run[c->run_len++]);
    if (rc && rc != SEQ_ETIMEOUT)
        c->run_deferred = rc;
    char why[200] = "";
    uint32_t passed = 0;
    rc = seq_verifier_check_run(c->verifier, c->run, c->run_len, &passed, why, sizeof why);
    if (rc == 0)
        return 0;
    const seq_batch *bad = c->run[passed];
    set_error(c, "batch of namespace %llu at height %llu failed verification: %s", (unsigned long long)bad->ns,
              (unsigned long long)bad->header.height, why[0] ? why : seq_strerror(rc));
    c->verify_failed = rc;
    for (uint32_t i = passed; i < c->run_len; i++)
        seq_batch_free(c->run[i]);
    c->run_len = passed;
    return passed ? 0 : rc;
}

/* The next batch to hand out: decoded only, or verified through the run. */
static int next_checked(seq_client *c, seq_batch **out, uint32_t timeout_ms)
{
    if (!c->verifier)
        return receive_batch(c, out, timeout_ms);
    if (c->run_pos == c->run_len) {
        if (c->verify_failed)
            return c->verify_failed; /* last_error still says why */
        if (c->run_deferred) {
            int rc = c->run_deferred;
            c->run_deferred = 0;
            return rc;
        }
        int rc = run_fill(c, timeout_ms);
        if (rc)
            return rc;
    }
    *out = c->run[c->run_pos++];
    return 0;
}

int seq_client_next_batch(seq_client *c, seq_batch **out, uint32_t timeout_ms)
{
    SEQ_ASSERT(c && out);
    if (!c->subscribed)
        return SEQ_EINVAL;
    seq_batch *b = NULL;
    int rc = next_checked(c, &b, timeout_ms);
    if (rc)
        return rc;
    int i = subscribed_index(c, b->ns);
    SEQ_ASSERT(i >= 0);
    c->sub_pos[i] = (sub_position){ .have = true, .height = b->header.height, .hash = b->block_hash };
    *out = b;
    return 0;
}

/* ---- transaction status ---------------------------------------------------- */

static int tx_state_from_pb(int pb_status)
{
    switch (pb_status) {
    case SEQ__TX_STATUS_REPLY__STATUS__UNKNOWN:
        return SEQ_TX_UNKNOWN;
    case SEQ__TX_STATUS_REPLY__STATUS__PENDING:
        return SEQ_TX_PENDING;
    case SEQ__TX_STATUS_REPLY__STATUS__FINALIZED:
        return SEQ_TX_FINALIZED;
    case SEQ__TX_STATUS_REPLY__STATUS__DROPPED:
        return SEQ_TX_DROPPED;
    default:
        return 0;
    }
}

/* What proves a finalized transaction: where it is, the header, the
 * certificate and its path, the inclusion proof of one leaf. */
static int tx_proof_from_pb(seq_tx_status *st, const Seq__TxStatusReply *pb, const char **what)
{
    st->height = pb->height;
    st->index = pb->index;
    st->ns = pb->ns;
    if (hash_from_pb(&st->block_hash, pb->block_hash) != 0) {
        *what = "block_hash not 32 bytes";
        return SEQ_EDECODE;
    }
    if (seq_pb_header_get(&st->header, pb->header) != 0) {
        *what = "header";
        return SEQ_EDECODE;
    }
    if (seq_pb_cert_get(&st->cert, pb->cert) != 0) {
        *what = "certificate";
        return SEQ_EDECODE;
    }
    if (path_from_pb(st->cert_path, pb->cert_path, pb->n_cert_path) != 0) {
        *what = "certificate path header";
        return SEQ_EDECODE;
    }
    if (proof_from_pb(&st->proof, pb->proof, 1) != 0) {
        *what = "inclusion proof";
        return SEQ_EDECODE;
    }
    return 0;
}

/* want_id: the id asked about (NULL when asked by key). */
static int tx_status_from_pb(seq_client *c, const Seq__TxStatusReply *pb, const seq_hash *want_id,
                             seq_tx_status **out)
{
    int state = pb ? tx_state_from_pb(pb->status) : 0;
    bool finalized = state == SEQ_TX_FINALIZED;
    size_t path_len = finalized ? pb->n_cert_path : 0;
    const char *what = "";
    if (!state) {
        what = "no known status";
    } else if (pb->id.len != SEQ_HASH_BYTES && !(pb->id.len == 0 && state == SEQ_TX_UNKNOWN)) {
        what = "id not 32 bytes";
    } else if (path_len > SEQ_CERT_PATH_MAX) {
        what = "certificate path too long";
    }
    if (what[0]) {
        set_error(c, "node sent a malformed tx status (%s)", what);
        return SEQ_EDECODE;
    }
    seq_tx_status *st = calloc(1, sizeof *st + path_len * sizeof(seq_header));
    if (!st)
        return SEQ_ENOMEM;
    st->state = (seq_tx_state)state;
    st->cert_path = path_len ? (seq_header *)(st + 1) : NULL;
    st->path_len = (uint32_t)path_len;
    if (pb->id.len)
        memcpy(st->id.b, pb->id.data, SEQ_HASH_BYTES);
    else if (want_id)
        st->id = *want_id;
    snprintf(st->reason, sizeof st->reason, "%s", pb->reason ? pb->reason : "");
    int rc = finalized ? tx_proof_from_pb(st, pb, &what) : 0;
    if (rc) {
        set_error(c, "node sent a malformed tx status (%s)", what);
    } else if (want_id && memcmp(st->id.b, want_id->b, SEQ_HASH_BYTES) != 0) {
        set_error(c, "node answered with the status of another transaction");
        rc = SEQ_EPROTOCOL;
    }
    if (rc) {
        free(st);
        return rc;
    }
    *out = st;
    return 0;
}

static int tx_status_ask(seq_client *c, Seq__TxStatusRequest *tr, const seq_hash *want_id, seq_tx_status **out,
                         uint32_t timeout_ms)
{
    if (c->subscribed) {
        set_error(c, "a subscribed connection carries only batches");
        return SEQ_EINVAL;
    }
    Seq__ClientRequest req = SEQ__CLIENT_REQUEST__INIT;
    req.body_case = SEQ__CLIENT_REQUEST__BODY_TX_STATUS;
    req.tx_status = tr;
    Seq__ClientResponse *r;
    int rc = request_reply(c, &req, SEQ__CLIENT_RESPONSE__BODY_TX_STATUS, "tx status", &r, timeout_ms);
    if (rc)
        return rc;
    rc = tx_status_from_pb(c, r->tx_status, want_id, out);
    free_response(c, r);
    return rc;
}

int seq_client_tx_status(seq_client *c, const seq_hash *id, seq_tx_status **out, uint32_t timeout_ms)
{
    SEQ_ASSERT(c && id && out);
    Seq__TxStatusRequest tr = SEQ__TX_STATUS_REQUEST__INIT;
    tr.id = (ProtobufCBinaryData){ .len = SEQ_HASH_BYTES, .data = (uint8_t *)id->b };
    return tx_status_ask(c, &tr, id, out, timeout_ms);
}

int seq_client_tx_status_by_key(seq_client *c, const uint8_t *key, uint32_t key_len, seq_tx_status **out,
                                uint32_t timeout_ms)
{
    SEQ_ASSERT(c && out);
    if (!key || key_len == 0 || key_len > SEQ_CLIENT_KEY_BYTES_MAX) {
        set_error(c, "a client key is 1..%u bytes", SEQ_CLIENT_KEY_BYTES_MAX);
        return SEQ_EINVAL;
    }
    Seq__TxStatusRequest tr = SEQ__TX_STATUS_REQUEST__INIT;
    tr.client_key = (ProtobufCBinaryData){ .len = key_len, .data = (uint8_t *)key };
    return tx_status_ask(c, &tr, NULL, out, timeout_ms);
}

void seq_tx_status_free(seq_tx_status *st)
{
    free(st);
}

int seq_client_tx_status_verify(const seq_tx_status *st, const seq_validators *vs, uint64_t chain_id, char *why,
                                size_t why_len)
{
    SEQ_ASSERT(st && vs);
    if (st->state != SEQ_TX_FINALIZED) {
        seq_err_set(why, why_len, "the transaction is not finalized");
        return SEQ_EINVAL;
    }
    seq_hash h;
    seq_header_hash(&st->header, &h);
    if (memcmp(h.b, st->block_hash.b, SEQ_HASH_BYTES) != 0 || st->header.height != st->height) {
        seq_err_set(why, why_len, "block_hash is not the hash of the header at height %llu",
                    (unsigned long long)st->height);
        return SEQ_EMISMATCH;
    }
    if (st->proof.start != st->index || st->proof.count != 1) {
        seq_err_set(why, why_len, "the proof is not for index %u", st->index);
        return SEQ_EPROOF;
    }
    seq_tx tx = { .ns = st->ns, .id = st->id };
    return seq_tx_proof_check(&st->header, &st->cert, st->cert_path, st->path_len, &tx, &st->proof, vs, chain_id,
                              why, why_len);
}
