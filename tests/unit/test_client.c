/* Unit tests of lib/client.c against a real TCP server on 127.0.0.1 run in a
 * thread of the test: the server reads real ClientRequest frames and answers
 * with hand-built ClientResponses (verdicts, status, a subscription stream,
 * errors, malformed and oversized frames). It is scaffolding for the client
 * library, not a stand-in for the node. The server thread never calls cmocka
 * (its longjmp is per thread): it records what went wrong and the test
 * asserts on that after joining it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "client.h"
#include "codec.h"
#include "errors.h"
#include "seq.pb-c.h"

#define WAIT_MS 3000          /* bound on every wait in these tests */
#define SERVER_FRAME_MAX (1u << 20)
#define CHAIN_ID 42

/* ---- the scripted server --------------------------------------------------- */

typedef struct server server;
typedef int (*script_fn)(server *s, int fd);

struct server {
    int listen_fd;
    uint16_t port;
    pthread_t thread;
    script_fn script;
    int result;          /* 0, or -1 with why set */
    char why[200];
    void *ctx;           /* per-test data for the script */
};

static int server_fail(server *s, const char *why)
{
    if (!s->why[0])
        snprintf(s->why, sizeof s->why, "%s", why);
    return -1;
}

static int read_exact(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, WAIT_MS) <= 0)
            return -1;
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one framed ClientRequest; NULL on error. Free with
 * seq__client_request__free_unpacked(r, NULL). */
static Seq__ClientRequest *read_request(server *s, int fd)
{
    uint8_t hdr[4];
    if (read_exact(fd, hdr, sizeof hdr) != 0) {
        server_fail(s, "no request header");
        return NULL;
    }
    uint32_t len = seq_get_u32be(hdr);
    if (len > SERVER_FRAME_MAX) {
        server_fail(s, "request frame too large");
        return NULL;
    }
    uint8_t *buf = malloc(len ? len : 1);
    Seq__ClientRequest *r = NULL;
    if (buf && read_exact(fd, buf, len) == 0)
        r = seq__client_request__unpack(NULL, len, buf);
    free(buf);
    if (!r)
        server_fail(s, "bad request frame");
    return r;
}

static int send_frame(int fd, const uint8_t *payload, uint32_t len)
{
    uint8_t hdr[4];
    seq_put_u32be(hdr, len);
    if (write_all(fd, hdr, sizeof hdr) != 0)
        return -1;
    return write_all(fd, payload, len);
}

static int send_response(int fd, const Seq__ClientResponse *r)
{
    size_t n = seq__client_response__get_packed_size(r);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return -1;
    seq__client_response__pack(r, buf);
    int rc = send_frame(fd, buf, (uint32_t)n);
    free(buf);
    return rc;
}

static int send_error(int fd, uint64_t request_id, int code, const char *msg)
{
    Seq__Error e = SEQ__ERROR__INIT;
    e.code = (uint32_t)-code;
    e.message = (char *)msg;
    Seq__ClientResponse r = SEQ__CLIENT_RESPONSE__INIT;
    r.request_id = request_id;
    r.body_case = SEQ__CLIENT_RESPONSE__BODY_ERROR;
    r.error = &e;
    return send_response(fd, &r);
}

static void *server_main(void *arg)
{
    server *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0) {
        s->result = server_fail(s, "accept failed");
        return NULL;
    }
    s->result = s->script(s, fd);
    /* Stay until the client hangs up, so it reads everything sent. */
    uint8_t sink[256];
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    while (poll(&pfd, 1, WAIT_MS) > 0 && read(fd, sink, sizeof sink) > 0)
        ;
    close(fd);
    return NULL;
}

static void server_start(server *s, script_fn script, void *ctx)
{
    memset(s, 0, sizeof *s);
    s->script = script;
    s->ctx = ctx;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->listen_fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->listen_fd, 4), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

/* Joins the server and asserts its script saw what it expected. */
static void server_finish(server *s)
{
    assert_int_equal(pthread_join(s->thread, NULL), 0);
    close(s->listen_fd);
    if (s->result != 0)
        fail_msg("server: %s", s->why);
}

static seq_client *connect_to(const server *s)
{
    char addr[32], err[200] = "";
    snprintf(addr, sizeof addr, "127.0.0.1:%u", s->port);
    seq_client *c = NULL;
    int rc = seq_client_connect(&c, addr, WAIT_MS, err, sizeof err);
    if (rc != 0)
        fail_msg("connect: %s", err);
    return c;
}

/* ---- submit ----------------------------------------------------------------- */

static const int SUBMIT_PB_STATUS[] = {
    SEQ__SUBMIT_RESULT__STATUS__ACCEPTED, SEQ__SUBMIT_RESULT__STATUS__TOO_LARGE,
    SEQ__SUBMIT_RESULT__STATUS__MEMPOOL_FULL, SEQ__SUBMIT_RESULT__STATUS__DUPLICATE,
    SEQ__SUBMIT_RESULT__STATUS__INVALID,
};
#define SUBMIT_N 5

/* Answers one SubmitRequest: tx i gets SUBMIT_PB_STATUS[i], with the id the
 * server computes from the request it really received. */
static int answer_submit(server *s, int fd, const Seq__ClientRequest *req)
{
    if (req->body_case != SEQ__CLIENT_REQUEST__BODY_SUBMIT || !req->submit)
        return server_fail(s, "not a submit");
    size_t n = req->submit->n_txs;
    if (n > SUBMIT_N)
        return server_fail(s, "too many txs");
    Seq__SubmitResult res[SUBMIT_N], *ptrs[SUBMIT_N];
    seq_tx tx[SUBMIT_N];
    char reasons[SUBMIT_N][32];
    for (size_t i = 0; i < n; i++) {
        const Seq__Tx *t = req->submit->txs[i];
        tx[i] = (seq_tx){ .ns = t->ns, .len = (uint32_t)t->payload.len, .data = t->payload.data };
        seq_tx_compute_id(&tx[i]);
        res[i] = (Seq__SubmitResult)SEQ__SUBMIT_RESULT__INIT;
        res[i].id = (ProtobufCBinaryData){ .len = SEQ_HASH_BYTES, .data = tx[i].id.b };
        res[i].status = SUBMIT_PB_STATUS[i];
        snprintf(reasons[i], sizeof reasons[i], "%s", i == 0 ? "" : "reason-text");
        res[i].reason = reasons[i];
        ptrs[i] = &res[i];
    }
    Seq__SubmitReply sr = SEQ__SUBMIT_REPLY__INIT;
    sr.n_results = n;
    sr.results = ptrs;
    Seq__ClientResponse r = SEQ__CLIENT_RESPONSE__INIT;
    r.request_id = req->request_id;
    r.body_case = SEQ__CLIENT_RESPONSE__BODY_SUBMIT;
    r.submit = &sr;
    return send_response(fd, &r);
}

static int script_submit(server *s, int fd)
{
    Seq__ClientRequest *req = read_request(s, fd);
    if (!req)
        return -1;
    int rc = answer_submit(s, fd, req);
    seq__client_request__free_unpacked(req, NULL);
    return rc;
}

static void make_txs(seq_tx *txs, uint32_t n, char payloads[][16])
{
    for (uint32_t i = 0; i < n; i++) {
        snprintf(payloads[i], 16, "tx-%u", i);
        txs[i] = (seq_tx){ .ns = 10 + i, .len = (uint32_t)strlen(payloads[i]), .data = (uint8_t *)payloads[i] };
        seq_tx_compute_id(&txs[i]);
    }
}

/* Each status enum maps to its lib/errors.h code; ids and reasons come through. */
static void test_submit_verdicts(void **state)
{
    (void)state;
    server s;
    server_start(&s, script_submit, NULL);
    seq_client *c = connect_to(&s);
    seq_tx txs[SUBMIT_N];
    char payloads[SUBMIT_N][16];
    make_txs(txs, SUBMIT_N, payloads);
    seq_submit_result res[SUBMIT_N];
    assert_int_equal(seq_client_submit(c, txs, SUBMIT_N, res, WAIT_MS), 0);
    const int want[SUBMIT_N] = { 0, SEQ_ETOOBIG, SEQ_EFULL, SEQ_EDUPLICATE, SEQ_EINVAL };
    for (int i = 0; i < SUBMIT_N; i++) {
        assert_int_equal(res[i].status, want[i]);
        assert_memory_equal(res[i].id.b, txs[i].id.b, SEQ_HASH_BYTES);
        assert_string_equal(res[i].reason, i == 0 ? "" : "reason-text");
    }
    seq_client_close(c);
    server_finish(&s);
}

#define PIPELINED 3

static int script_pipelined(server *s, int fd)
{
    for (int i = 0; i < PIPELINED; i++) {
        Seq__ClientRequest *req = read_request(s, fd);
        if (!req)
            return -1;
        int rc = answer_submit(s, fd, req);
        seq__client_request__free_unpacked(req, NULL);
        if (rc)
            return rc;
    }
    return 0;
}

/* Several requests in flight: replies come back in order, tagged with the ids
 * submit_send handed out, and a small cap still reports the full count. */
static void test_submit_pipelined(void **state)
{
    (void)state;
    server s;
    server_start(&s, script_pipelined, NULL);
    seq_client *c = connect_to(&s);
    seq_tx txs[SUBMIT_N];
    char payloads[SUBMIT_N][16];
    make_txs(txs, SUBMIT_N, payloads);
    uint64_t ids[PIPELINED];
    for (uint32_t i = 0; i < PIPELINED; i++)
        assert_int_equal(seq_client_submit_send(c, txs, i + 1, &ids[i]), 0);
    assert_true(ids[0] < ids[1] && ids[1] < ids[2]);
    for (uint32_t i = 0; i < PIPELINED; i++) {
        seq_submit_result res[1];
        uint32_t n = 0;
        uint64_t id = 0;
        assert_int_equal(seq_client_submit_recv(c, res, 1, &n, &id, WAIT_MS), 0);
        assert_int_equal(id, ids[i]);
        assert_int_equal(n, i + 1);
        assert_int_equal(res[0].status, 0);
    }
    /* Nothing more is coming. */
    seq_submit_result res[1];
    uint32_t n;
    assert_int_equal(seq_client_submit_recv(c, res, 1, &n, NULL, 50), SEQ_ETIMEOUT);
    assert_int_equal(seq_client_submit_send(c, txs, 0, NULL), SEQ_EINVAL);
    seq_client_close(c);
    server_finish(&s);
}

/* ---- status and errors ------------------------------------------------------ */

static int script_status(server *s, int fd)
{
    Seq__ClientRequest *req = read_request(s, fd);
    if (!req)
        return -1;
    if (req->body_case != SEQ__CLIENT_REQUEST__BODY_STATUS) {
        seq__client_request__free_unpacked(req, NULL);
        return server_fail(s, "not a status request");
    }
    Seq__StatusReply st = SEQ__STATUS_REPLY__INIT;
    st.height = 1234;
    st.view = 1300;
    st.leader = 3;
    st.peers = 6;
    st.mempool_txs = 777;
    st.mempool_bytes = 5000000000ull;
    Seq__ClientResponse r = SEQ__CLIENT_RESPONSE__INIT;
    r.request_id = req->request_id;
    r.body_case = SEQ__CLIENT_RESPONSE__BODY_STATUS;
    r.status = &st;
    int rc = send_response(fd, &r);
    uint64_t id = req->request_id;
    seq__client_request__free_unpacked(req, NULL);
    if (rc)
        return server_fail(s, "send status");
    /* The second status request is refused with an Error. */
    if (!(req = read_request(s, fd)))
        return -1;
    id = req->request_id;
    seq__client_request__free_unpacked(req, NULL);
    return send_error(fd, id, SEQ_EFULL, "api queue full");
}

/* Every StatusReply field arrives; an Error reply yields its code and text. */
static void test_status_and_error(void **state)
{
    (void)state;
    server s;
    server_start(&s, script_status, NULL);
    seq_client *c = connect_to(&s);
    seq_node_status st;
    assert_int_equal(seq_client_status(c, &st, WAIT_MS), 0);
    assert_int_equal(st.height, 1234);
    assert_int_equal(st.view, 1300);
    assert_int_equal(st.leader, 3);
    assert_int_equal(st.peers, 6);
    assert_int_equal(st.mempool_txs, 777);
    assert_int_equal(st.mempool_bytes, 5000000000ull);
    assert_int_equal(seq_client_status(c, &st, WAIT_MS), SEQ_EFULL);
    assert_non_null(strstr(seq_client_last_error(c), "api queue full"));
    seq_client_close(c);
    server_finish(&s);
}

/* ---- subscriptions ---------------------------------------------------------- */

/* The header, certificate and transactions of one hand-built batch. */
typedef struct {
    Seq__BlockHeader header;
    uint8_t parent[SEQ_HASH_BYTES], root[SEQ_HASH_BYTES];
    Seq__Certificate cert;
    uint8_t bitmap[SEQ_BITMAP_BYTES];
    uint8_t sig_bytes[3][SEQ_SIG_BYTES];
    ProtobufCBinaryData sigs[3];
    Seq__Tx tx_items[2];
    Seq__Tx *tx_ptrs[2];
    Seq__NamespaceBatch batch;
} batch_parts;

static void build_batch(batch_parts *p, uint64_t height, uint64_t ns, uint32_t n_txs)
{
    memset(p, 0, sizeof *p);
    p->header = (Seq__BlockHeader)SEQ__BLOCK_HEADER__INIT;
    p->header.chain_id = CHAIN_ID;
    p->header.height = height;
    p->header.view = height + 2;
    memset(p->parent, (int)height, sizeof p->parent);
    memset(p->root, 0xAB, sizeof p->root);
    p->header.parent = (ProtobufCBinaryData){ .len = SEQ_HASH_BYTES, .data = p->parent };
    p->header.parent_view = height + 1;
    p->header.leader = 2;
    p->header.timestamp_ms = 1764000000000ull + height;
    p->header.payload_root = (ProtobufCBinaryData){ .len = SEQ_HASH_BYTES, .data = p->root };
    p->header.tx_count = 5;
    p->cert = (Seq__Certificate)SEQ__CERTIFICATE__INIT;
    p->cert.kind = SEQ_VOTE_FINALIZE;
    p->cert.view = height + 2;
    p->cert.hash = p->header.parent; /* any 32 bytes: the client checks shape only */
    p->bitmap[0] = 0x0B; /* validators 0, 1, 3 */
    p->cert.signers = (ProtobufCBinaryData){ .len = SEQ_BITMAP_BYTES, .data = p->bitmap };
    for (int i = 0; i < 3; i++) {
        memset(p->sig_bytes[i], i + 1, SEQ_SIG_BYTES);
        p->sigs[i] = (ProtobufCBinaryData){ .len = SEQ_SIG_BYTES, .data = p->sig_bytes[i] };
    }
    p->cert.n_sigs = 3;
    p->cert.sigs = p->sigs;
    static const char *payloads[2] = { "hello", "world!" };
    for (uint32_t i = 0; i < n_txs && i < 2; i++) {
        p->tx_items[i] = (Seq__Tx)SEQ__TX__INIT;
        p->tx_items[i].ns = ns;
        p->tx_items[i].payload = (ProtobufCBinaryData){ .len = strlen(payloads[i]), .data = (uint8_t *)payloads[i] };
        p->tx_ptrs[i] = &p->tx_items[i];
    }
    p->batch = (Seq__NamespaceBatch)SEQ__NAMESPACE_BATCH__INIT;
    p->batch.header = &p->header;
    p->batch.ns = ns;
    p->batch.n_txs = n_txs;
    p->batch.txs = n_txs ? p->tx_ptrs : NULL;
    p->batch.cert = &p->cert;
}

static int send_batch(int fd, uint64_t request_id, batch_parts *p)
{
    Seq__ClientResponse r = SEQ__CLIENT_RESPONSE__INIT;
    r.request_id = request_id;
    r.body_case = SEQ__CLIENT_RESPONSE__BODY_BATCH;
    r.batch = &p->batch;
    return send_response(fd, &r);
}

/* Reads the subscribe request, checks it names namespaces {7, 9} from 5. */
static int read_subscribe(server *s, int fd, uint64_t *id)
{
    Seq__ClientRequest *req = read_request(s, fd);
    if (!req)
        return -1;
    int ok = req->body_case == SEQ__CLIENT_REQUEST__BODY_SUBSCRIBE && req->subscribe &&
             req->subscribe->n_namespaces == 2 && req->subscribe->namespaces[0] == 7 &&
             req->subscribe->namespaces[1] == 9 && req->subscribe->from_height == 5;
    *id = req->request_id;
    seq__client_request__free_unpacked(req, NULL);
    return ok ? 0 : server_fail(s, "unexpected subscribe request");
}

static int script_stream(server *s, int fd)
{
    uint64_t id;
    if (read_subscribe(s, fd, &id))
        return -1;
    batch_parts p;
    build_batch(&p, 5, 7, 2);
    if (send_batch(fd, id, &p))
        return server_fail(s, "send batch 1");
    build_batch(&p, 5, 9, 0);
    if (send_batch(fd, id, &p))
        return server_fail(s, "send batch 2");
    /* Then the server closes its side: shutdown leaves the read side open. */
    shutdown(fd, SHUT_WR);
    return 0;
}

static void assert_batch_header(const seq_batch *b, uint64_t height, seq_ns ns)
{
    assert_int_equal(b->ns, ns);
    assert_int_equal(b->header.chain_id, CHAIN_ID);
    assert_int_equal(b->header.height, height);
    assert_int_equal(b->header.view, height + 2);
    assert_int_equal(b->header.parent_view, height + 1);
    assert_int_equal(b->header.leader, 2);
    assert_int_equal(b->header.timestamp_ms, 1764000000000ull + height);
    assert_int_equal(b->header.tx_count, 5);
    assert_int_equal(b->header.parent.b[0], (uint8_t)height);
    assert_int_equal(b->header.payload_root.b[31], 0xAB);
    seq_hash h;
    seq_header_hash(&b->header, &h);
    assert_memory_equal(h.b, b->block_hash.b, SEQ_HASH_BYTES);
    assert_int_equal(b->cert.kind, SEQ_VOTE_FINALIZE);
    assert_int_equal(b->cert.view, height + 2);
    assert_int_equal(seq_cert_signers(&b->cert), 3);
    assert_int_equal(b->cert.sig_count, 3);
    assert_int_equal(b->cert.sigs[2].b[63], 3);
}

/* Two batches decode field for field (block hash computed, txs copied with
 * their ids), then the node's close is SEQ_ECLOSED. */
static void test_subscribe_stream(void **state)
{
    (void)state;
    server s;
    server_start(&s, script_stream, NULL);
    seq_client *c = connect_to(&s);
    seq_batch *b = NULL;
    assert_int_equal(seq_client_next_batch(c, &b, 10), SEQ_EINVAL); /* not subscribed yet */
    const seq_ns ns[2] = { 7, 9 };
    assert_int_equal(seq_client_subscribe(c, ns, 0, 5), SEQ_EINVAL);
    assert_int_equal(seq_client_subscribe(c, ns, 2, 0), SEQ_EINVAL);
    assert_int_equal(seq_client_subscribe(c, ns, 2, 5), 0);

    assert_int_equal(seq_client_next_batch(c, &b, WAIT_MS), 0);
    assert_batch_header(b, 5, 7);
    assert_int_equal(b->tx_count, 2);
    assert_int_equal(b->txs[1].len, 6);
    assert_memory_equal(b->txs[1].data, "world!", 6);
    seq_tx want = { .ns = 7, .len = 5, .data = (const uint8_t *)"hello" };
    seq_tx_compute_id(&want);
    assert_memory_equal(b->txs[0].id.b, want.id.b, SEQ_HASH_BYTES);
    seq_batch_free(b);

    assert_int_equal(seq_client_next_batch(c, &b, WAIT_MS), 0);
    assert_batch_header(b, 5, 9);
    assert_int_equal(b->tx_count, 0);
    seq_batch_free(b);

    assert_int_equal(seq_client_next_batch(c, &b, WAIT_MS), SEQ_ECLOSED);
    seq_client_close(c);
    server_finish(&s);
}

/* Frames the client must reject, each followed by a good batch to show the
 * stream goes on after a frame that was whole but malformed. */
static int script_malformed(server *s, int fd)
{
    uint64_t id;
    if (read_subscribe(s, fd, &id))
        return -1;
    static const uint8_t garbage[] = { 0xFF, 0xFF, 0xFF, 0xFF, 0x0F };
    if (send_frame(fd, garbage, sizeof garbage))
        return server_fail(s, "send garbage");
    batch_parts p;
    build_batch(&p, 6, 7, 1);
    p.header.parent.len = 31; /* a hash of 31 bytes */
    if (send_batch(fd, id, &p))
        return -1;
    build_batch(&p, 6, 7, 1);
    p.sigs[1].len = 63; /* a short signature */
    if (send_batch(fd, id, &p))
        return -1;
    build_batch(&p, 6, 7, 1);
    p.cert.n_sigs = 2; /* fewer signatures than signers */
    if (send_batch(fd, id, &p))
        return -1;
    build_batch(&p, 6, 7, 1);
    p.tx_items[0].ns = 8; /* a tx of another namespace */
    if (send_batch(fd, id, &p))
        return -1;
    build_batch(&p, 6, 7, 1);
    p.batch.cert = NULL; /* no certificate */
    if (send_batch(fd, id, &p))
        return -1;
    build_batch(&p, 6, 8, 0); /* a namespace not subscribed */
    if (send_batch(fd, id, &p))
        return -1;
    build_batch(&p, 6, 7, 1);
    if (send_batch(fd, id, &p))
        return -1;
    /* Then, once the client has taken all of that (the framer drops what it
     * buffered when a header is over the limit), a length far over the
     * client's limit: the stream is dead. */
    int *go = s->ctx;
    struct pollfd pfd = { .fd = go[0], .events = POLLIN };
    if (poll(&pfd, 1, WAIT_MS) != 1)
        return server_fail(s, "client never took the good batch");
    static const uint8_t huge[4] = { 0xFF, 0xFF, 0xFF, 0xF0 };
    return write_all(fd, huge, sizeof huge);
}

static void test_subscribe_rejects_malformed(void **state)
{
    (void)state;
    server s;
    int go[2];
    assert_int_equal(pipe(go), 0);
    server_start(&s, script_malformed, go);
    seq_client *c = connect_to(&s);
    const seq_ns ns[2] = { 7, 9 };
    assert_int_equal(seq_client_subscribe(c, ns, 2, 5), 0);
    const int want[] = { SEQ_EDECODE, SEQ_EDECODE, SEQ_EDECODE, SEQ_EDECODE, SEQ_EDECODE, SEQ_EDECODE,
                         SEQ_EPROTOCOL };
    seq_batch *b = NULL;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int rc = seq_client_next_batch(c, &b, WAIT_MS);
        if (rc != want[i])
            fail_msg("frame %zu: got %s, want %s (%s)", i, seq_errname(rc), seq_errname(want[i]), seq_client_last_error(c));
        assert_true(seq_client_last_error(c)[0] != '\0');
    }
    assert_int_equal(seq_client_next_batch(c, &b, WAIT_MS), 0);
    assert_int_equal(b->header.height, 6);
    assert_int_equal(b->tx_count, 1);
    seq_batch_free(b);
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(seq_client_next_batch(c, &b, WAIT_MS), SEQ_EDECODE);
    assert_non_null(strstr(seq_client_last_error(c), "over"));
    /* Sticky: the framing is lost for good. */
    assert_int_equal(seq_client_next_batch(c, &b, 10), SEQ_EDECODE);
    seq_client_close(c);
    server_finish(&s);
    close(go[0]);
    close(go[1]);
}

static int script_refuse(server *s, int fd)
{
    uint64_t id;
    if (read_subscribe(s, fd, &id))
        return -1;
    return send_error(fd, id, SEQ_ENOTFOUND, "height 5 is pruned");
}

/* A refused subscription is the node's code; no batch meanwhile is a timeout. */
static void test_subscribe_refused_and_timeout(void **state)
{
    (void)state;
    server s;
    server_start(&s, script_refuse, NULL);
    seq_client *c = connect_to(&s);
    const seq_ns ns[2] = { 7, 9 };
    assert_int_equal(seq_client_subscribe(c, ns, 2, 5), 0);
    seq_batch *b = NULL;
    assert_int_equal(seq_client_next_batch(c, &b, WAIT_MS), SEQ_ENOTFOUND);
    assert_non_null(strstr(seq_client_last_error(c), "pruned"));
    assert_int_equal(seq_client_next_batch(c, &b, 30), SEQ_ETIMEOUT);
    assert_null(b);
    seq_client_close(c);
    server_finish(&s);
}

/* ---- connecting ------------------------------------------------------------- */

/* A closed port is SEQ_EIO naming the refusal; a bad address is SEQ_EADDR. */
static void test_connect_errors(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd); /* bound, never listened: the port refuses */
    char addr[32], err[200] = "";
    snprintf(addr, sizeof addr, "127.0.0.1:%u", ntohs(a.sin_port));
    seq_client *c = NULL;
    assert_int_equal(seq_client_connect(&c, addr, WAIT_MS, err, sizeof err), SEQ_EIO);
    assert_non_null(strstr(err, "refused"));
    assert_null(c);
    const char *bad[] = { "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":80", "127.0.0.1:8x", "[::1:80" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(seq_client_connect(&c, bad[i], WAIT_MS, err, sizeof err), SEQ_EADDR);
    assert_int_equal(seq_client_connect(&c, "127.0.0.1:1", WAIT_MS, NULL, 0), SEQ_EIO);
}

/* ---- the bench helpers seqctl uses with the client (lib/bench.c) ------------ */

/* A stamp reads back as written, the filler differs between sequences, and a
 * payload too short for a stamp is refused. */
static void test_bench_stamp(void **state)
{
    (void)state;
    uint8_t a[64], b[64];
    seq_bench_stamp(a, sizeof a, 123456789, 0xFEEDu, 7);
    seq_bench_stamp(b, sizeof b, 123456789, 0xFEEDu, 8);
    uint64_t t, nonce, seq;
    assert_true(seq_bench_unstamp(a, sizeof a, &t, &nonce, &seq));
    assert_int_equal(t, 123456789);
    assert_int_equal(nonce, 0xFEEDu);
    assert_int_equal(seq, 7);
    assert_memory_not_equal(a + SEQ_BENCH_STAMP_BYTES, b + SEQ_BENCH_STAMP_BYTES, sizeof a - SEQ_BENCH_STAMP_BYTES);
    assert_false(seq_bench_unstamp(a, SEQ_BENCH_STAMP_BYTES - 1, &t, &nonce, &seq));
}

/* Quantiles of 1..100000 (ns) are within 1% of the exact ones; small values
 * are exact; the maximum bounds every answer; an empty histogram says 0. */
static void test_hist_quantiles(void **state)
{
    (void)state;
    seq_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    seq_hist_init(h);
    assert_int_equal(seq_hist_quantile(h, 0.5), 0);
    for (uint64_t v = 1; v <= 100000; v++)
        seq_hist_add(h, v);
    const double qs[] = { 0.5, 0.9, 0.99, 0.999 };
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        double exact = qs[i] * 100000.0, got = (double)seq_hist_quantile(h, qs[i]);
        if (got < exact * 0.99 || got > exact * 1.01)
            fail_msg("q=%.3f: got %.0f, exact %.0f", qs[i], got, exact);
    }
    assert_int_equal(seq_hist_quantile(h, 1.0), 100000);
    assert_int_equal(h->max, 100000);
    seq_hist_init(h);
    for (uint64_t v = 0; v < 100; v++)
        seq_hist_add(h, v);
    assert_int_equal(seq_hist_quantile(h, 0.5), 49);
    seq_hist_add(h, UINT64_MAX); /* the largest value has a bucket too */
    assert_int_equal(seq_hist_quantile(h, 1.0), UINT64_MAX);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_verdicts),
        cmocka_unit_test(test_submit_pipelined),
        cmocka_unit_test(test_status_and_error),
        cmocka_unit_test(test_subscribe_stream),
        cmocka_unit_test(test_subscribe_rejects_malformed),
        cmocka_unit_test(test_subscribe_refused_and_timeout),
        cmocka_unit_test(test_connect_errors),
        cmocka_unit_test(test_bench_stamp),
        cmocka_unit_test(test_hist_quantiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
