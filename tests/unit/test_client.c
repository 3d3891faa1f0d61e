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
#include "batch.h"
#include "errors.h"
#include "nsproof.h"
#include "pbconv.h"
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


/* Client keys go out one per transaction, empty for a transaction without
 * one; the server checks what it really received. */
static int script_submit_keyed(server *s, int fd)
{
    Seq__ClientRequest *req = read_request(s, fd);
    if (!req)
        return -1;
    const Seq__SubmitRequest *sub = req->submit;
    static const char *want[3] = { "order-1", "", "order-3" };
    int ok = req->body_case == SEQ__CLIENT_REQUEST__BODY_SUBMIT && sub && sub->n_txs == 3 && sub->n_client_keys == 3;
    for (size_t i = 0; ok && i < 3; i++)
        ok = sub->client_keys[i].len == strlen(want[i]) &&
             (!want[i][0] || memcmp(sub->client_keys[i].data, want[i], strlen(want[i])) == 0);
    int rc = ok ? answer_submit(s, fd, req) : server_fail(s, "client keys not as sent");
    seq__client_request__free_unpacked(req, NULL);
    return rc;
}

static void test_submit_keyed(void **state)
{
    (void)state;
    server s;
    server_start(&s, script_submit_keyed, NULL);
    seq_client *c = connect_to(&s);
    seq_tx txs[3];
    char payloads[3][16];
    make_txs(txs, 3, payloads);
    seq_client_key keys[3] = { { (const uint8_t *)"order-1", 7 }, { NULL, 0 }, { (const uint8_t *)"order-3", 7 } };
    uint8_t long_key[SEQ_CLIENT_KEY_BYTES_MAX + 1] = { 0 };
    seq_client_key too_long[3] = { keys[0], { long_key, sizeof long_key }, keys[2] };
    seq_submit_result res[3];
    assert_int_equal(seq_client_submit_keyed(c, txs, too_long, 3, res, WAIT_MS), SEQ_EINVAL); /* nothing sent */
    assert_int_equal(seq_client_submit_keyed(c, txs, keys, 3, res, WAIT_MS), 0);
    assert_int_equal(res[0].status, 0);
    assert_memory_equal(res[2].id.b, txs[2].id.b, SEQ_HASH_BYTES);
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

/* The header, certificate, transactions, link, proof and certificate path of
 * one hand-built batch. Sizes leave room for the over-limit cases. */
#define PROOF_NODES 2
typedef struct {
    Seq__BlockHeader header;
    uint8_t parent[SEQ_HASH_BYTES], root[SEQ_HASH_BYTES], prev[SEQ_HASH_BYTES], digest[SEQ_HASH_BYTES];
    Seq__Certificate cert;
    uint8_t bitmap[SEQ_BITMAP_BYTES];
    uint8_t sig_bytes[3][SEQ_SIG_BYTES];
    ProtobufCBinaryData sigs[3];
    Seq__Tx tx_items[2];
    Seq__Tx *tx_ptrs[2];
    Seq__NmtNode nodes[SEQ_NSPROOF_NODES_MAX + 1];
    Seq__NmtNode *node_ptrs[SEQ_NSPROOF_NODES_MAX + 1];
    Seq__NamespaceProof proof;
    Seq__BlockHeader path_header;
    Seq__BlockHeader *path_ptrs[SEQ_CERT_PATH_MAX + 1];
    Seq__NamespaceBatch batch;
} batch_parts;

static void build_header(Seq__BlockHeader *h, batch_parts *p, uint64_t height)
{
    *h = (Seq__BlockHeader)SEQ__BLOCK_HEADER__INIT;
    h->chain_id = CHAIN_ID;
    h->height = height;
    h->view = height + 2;
    h->parent = (ProtobufCBinaryData){ .len = SEQ_HASH_BYTES, .data = p->parent };
    h->parent_view = height + 1;
    h->leader = 2;
    h->timestamp_ms = 1764000000000ull + height;
    h->payload_root = (ProtobufCBinaryData){ .len = SEQ_HASH_BYTES, .data = p->root };
    h->tx_count = 5;
}

/* A batch of the right shape (the client checks shape only until it
 * verifies): a proof of PROOF_NODES nodes and a path of one header. */
static void build_batch(batch_parts *p, uint64_t height, uint64_t ns, uint32_t n_txs)
{
    memset(p, 0, sizeof *p);
    memset(p->parent, (int)height, sizeof p->parent);
    memset(p->root, 0xAB, sizeof p->root);
    memset(p->prev, 0xC0 + (int)height, sizeof p->prev);
    memset(p->digest, 0xD1, sizeof p->digest);
    build_header(&p->header, p, height);
    build_header(&p->path_header, p, height + 1);
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
    for (uint32_t i = 0; i <= SEQ_NSPROOF_NODES_MAX; i++) {
        p->nodes[i] = (Seq__NmtNode)SEQ__NMT_NODE__INIT;
        p->nodes[i].min = 10 * i + 1;
        p->nodes[i].max = 10 * i + 2;
        p->nodes[i].digest = (ProtobufCBinaryData){ .len = SEQ_HASH_BYTES, .data = p->digest };
        p->node_ptrs[i] = &p->nodes[i];
    }
    p->proof = (Seq__NamespaceProof)SEQ__NAMESPACE_PROOF__INIT;
    p->proof.start = 3;
    p->proof.n_nodes = PROOF_NODES;
    p->proof.nodes = p->node_ptrs;
    for (uint32_t i = 0; i <= SEQ_CERT_PATH_MAX; i++)
        p->path_ptrs[i] = &p->path_header;
    p->batch = (Seq__NamespaceBatch)SEQ__NAMESPACE_BATCH__INIT;
    p->batch.header = &p->header;
    p->batch.ns = ns;
    p->batch.n_txs = n_txs;
    p->batch.txs = n_txs ? p->tx_ptrs : NULL;
    p->batch.cert = &p->cert;
    p->batch.prev_batch_hash = (ProtobufCBinaryData){ .len = SEQ_HASH_BYTES, .data = p->prev };
    p->batch.proof = &p->proof;
    p->batch.n_cert_path = 1;
    p->batch.cert_path = p->path_ptrs;
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
    assert_int_equal(b->prev_batch_hash.b[0], 0xC0 + height);
    assert_int_equal(b->prev_batch_hash.b[31], 0xC0 + height);
    assert_int_equal(b->path_len, 1);
    assert_int_equal(b->cert_path[0].height, height + 1);
    assert_int_equal(b->cert_path[0].view, height + 3);
    assert_int_equal(b->cert_path[0].payload_root.b[0], 0xAB);
    assert_int_equal(b->proof.start, 3);
    assert_int_equal(b->proof.count, b->tx_count);
    assert_int_equal(b->proof.node_count, PROOF_NODES);
    assert_int_equal(b->proof.nodes[1].min, 11);
    assert_int_equal(b->proof.nodes[1].max, 12);
    assert_int_equal(b->proof.nodes[1].digest.b[31], 0xD1);
}

/* Two batches decode field for field (block hash computed, txs copied with
 * their ids, link, proof with its count, certificate path), then the node's
 * close is SEQ_ECLOSED. */
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

/* Frames the client must reject, each a whole frame out of shape in one
 * way; the stream goes on after each. */
static void bad_parent(batch_parts *p) { p->header.parent.len = 31; }
static void bad_sig(batch_parts *p) { p->sigs[1].len = 63; }
static void few_sigs(batch_parts *p) { p->cert.n_sigs = 2; }
static void foreign_tx(batch_parts *p) { p->tx_items[0].ns = 8; }
static void no_cert(batch_parts *p) { p->batch.cert = NULL; }
static void no_prev(batch_parts *p) { p->batch.prev_batch_hash.len = 0; }
static void short_prev(batch_parts *p) { p->batch.prev_batch_hash.len = 31; }
static void long_digest(batch_parts *p) { p->nodes[1].digest.len = 33; }
static void many_nodes(batch_parts *p) { p->proof.n_nodes = SEQ_NSPROOF_NODES_MAX + 1; }
static void bad_path_header(batch_parts *p) { p->path_header.payload_root.len = 0; }
static void long_path(batch_parts *p) { p->batch.n_cert_path = SEQ_CERT_PATH_MAX + 1; }
static void more_txs_than_block(batch_parts *p) { p->header.tx_count = 0; }
static void other_ns(batch_parts *p) { p->batch.ns = 8; p->tx_items[0].ns = 8; }

static const struct {
    void (*tamper)(batch_parts *p);
    int want;
} MALFORMED[] = {
    { bad_parent, SEQ_EDECODE },   { bad_sig, SEQ_EDECODE },         { few_sigs, SEQ_EDECODE },
    { foreign_tx, SEQ_EDECODE },   { no_cert, SEQ_EDECODE },         { no_prev, SEQ_EDECODE },
    { short_prev, SEQ_EDECODE },   { long_digest, SEQ_EDECODE },     { many_nodes, SEQ_EDECODE },
    { bad_path_header, SEQ_EDECODE }, { long_path, SEQ_EDECODE },    { more_txs_than_block, SEQ_EDECODE },
    { other_ns, SEQ_EPROTOCOL }, /* a namespace not subscribed */
};
#define MALFORMED_N (sizeof MALFORMED / sizeof MALFORMED[0])

static int script_malformed(server *s, int fd)
{
    uint64_t id;
    if (read_subscribe(s, fd, &id))
        return -1;
    static const uint8_t garbage[] = { 0xFF, 0xFF, 0xFF, 0xFF, 0x0F };
    if (send_frame(fd, garbage, sizeof garbage))
        return server_fail(s, "send garbage");
    batch_parts *p = malloc(sizeof *p);
    if (!p)
        return server_fail(s, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i <= MALFORMED_N; i++) {
        build_batch(p, 6, 7, 1);
        if (i < MALFORMED_N)
            MALFORMED[i].tamper(p);
        rc = send_batch(fd, id, p); /* the last one is good */
    }
    free(p);
    if (rc)
        return server_fail(s, "send batch");
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

/* Garbage, then each MALFORMED batch, is refused with its code and a
 * message; the good batch after them comes through; a frame over the limit
 * ends the stream for good. */
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
    seq_batch *b = NULL;
    for (size_t i = 0; i <= MALFORMED_N; i++) {
        int want = i == 0 ? SEQ_EDECODE : MALFORMED[i - 1].want;
        int rc = seq_client_next_batch(c, &b, WAIT_MS);
        if (rc != want)
            fail_msg("frame %zu: got %s, want %s (%s)", i, seq_errname(rc), seq_errname(want), seq_client_last_error(c));
        assert_true(seq_client_last_error(c)[0] != '\0');
    }
    assert_null(b);
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

/* ---- a real chain: verification end to end ---------------------------------
 * CHAIN_LEN finalized blocks signed by CHAIN_N real keys (q = 3), the
 * batches a node would send for them (real namespace proofs, certificates
 * and paths), sent by the server thread as NamespaceBatch frames. */

#define CHAIN_N 4
#define CHAIN_LEN 8
#define NS_A 7         /* two transactions per block, none in block 5 */
#define NS_B 9         /* one per block */
#define CHAIN_TXS_MAX 4
#define PATH_MAX_TEST 3

typedef struct {
    seq_keypair *keys[CHAIN_N];
    seq_validators vs;
    seq_block *blocks[CHAIN_LEN + 1]; /* [h] for h >= 1 */
    seq_cert certs[CHAIN_LEN + 1];    /* finalization of blocks[h] */
} chain;

static void chain_cert(chain *ch, uint64_t h, const uint32_t *signers, uint32_t n)
{
    seq_vote votes[CHAIN_N];
    for (uint32_t i = 0; i < n; i++)
        votes[i] = seq_test_vote(SEQ_VOTE_FINALIZE, ch->blocks[h]->h.view, &ch->blocks[h]->hash, signers[i],
                                 ch->keys[signers[i]], CHAIN_ID);
    assert_int_equal(seq_cert_build(&ch->certs[h], &ch->vs, votes, n), 0);
}

static chain *chain_make(void)
{
    chain *ch = calloc(1, sizeof *ch);
    assert_non_null(ch);
    assert_int_equal(seq_test_keys_make(ch->keys, CHAIN_N), 0);
    seq_pubkey pks[CHAIN_N];
    for (int i = 0; i < CHAIN_N; i++)
        pks[i] = ch->keys[i]->pk;
    assert_int_equal(seq_validators_init(&ch->vs, pks, CHAIN_N), 0);
    seq_hash parent = { { 0 } };
    for (uint64_t h = 1; h <= CHAIN_LEN; h++) {
        char pay[CHAIN_TXS_MAX][24];
        seq_tx txs[CHAIN_TXS_MAX];
        uint32_t n = 0;
        const seq_ns nss[CHAIN_TXS_MAX] = { 3, NS_A, NS_A, NS_B };
        for (uint32_t i = 0; i < CHAIN_TXS_MAX; i++) {
            if (nss[i] == NS_A && h == 5)
                continue;
            snprintf(pay[n], sizeof pay[n], "tx-%u-h%llu", i, (unsigned long long)h);
            txs[n] = (seq_tx){ .ns = nss[i], .len = (uint32_t)strlen(pay[n]), .data = (const uint8_t *)pay[n] };
            n++;
        }
        seq_header t = { .chain_id = CHAIN_ID, .height = h, .view = 2 * h, .parent = parent,
                         .parent_view = 2 * (h - 1), .leader = (uint32_t)(2 * h % CHAIN_N),
                         .timestamp_ms = 1764000000000ull + 500 * h };
        assert_int_equal(seq_block_build(&ch->blocks[h], &t, txs, n), 0);
        static const uint32_t signers[3] = { 0, 1, 3 };
        chain_cert(ch, h, signers, 3);
        parent = ch->blocks[h]->hash;
    }
    return ch;
}

static void chain_free(chain *ch)
{
    for (uint64_t h = 1; h <= CHAIN_LEN; h++)
        seq_block_free(ch->blocks[h]);
    seq_test_keys_free(ch->keys, CHAIN_N);
    free(ch);
}

/* Namespace ns's batch of block h, as a node sends it, with the
 * certificate of block cert_h >= h (and the path of headers up to it). */
static seq_batch *chain_batch(const chain *ch, uint64_t h, seq_ns ns, uint64_t cert_h)
{
    assert_true(h >= 1 && cert_h >= h && cert_h <= CHAIN_LEN && cert_h - h <= PATH_MAX_TEST);
    const seq_block *blk = ch->blocks[h];
    seq_nsproof proof;
    assert_int_equal(seq_nsproof_build(blk, ns, &proof), 0);
    size_t bytes = 0;
    for (uint32_t i = 0; i < proof.count; i++)
        bytes += blk->txs[proof.start + i].len;
    seq_batch *b;
    uint8_t *pay;
    assert_int_equal(seq_batch_alloc(&b, proof.count, bytes, (uint32_t)(cert_h - h), &pay), 0);
    for (uint32_t i = 0; i < proof.count; i++) {
        const seq_tx *t = &blk->txs[proof.start + i];
        memcpy(pay, t->data, t->len);
        b->txs[i] = *t;
        b->txs[i].data = pay;
        pay += t->len;
    }
    b->header = blk->h;
    b->block_hash = blk->hash;
    b->ns = ns;
    b->cert = ch->certs[cert_h];
    b->prev_batch_hash = blk->h.parent;
    for (uint64_t i = 0; i < cert_h - h; i++)
        b->cert_path[i] = ch->blocks[h + 1 + i]->h;
    b->proof = proof;
    return b;
}

/* A seq_batch as the NamespaceBatch message that carries it; points into b,
 * which must outlive it. */
typedef struct {
    seq_batch *src;
    Seq__NamespaceBatch msg;
    Seq__BlockHeader header;
    Seq__Certificate cert;
    ProtobufCBinaryData sigs[SEQ_VALIDATORS_MAX];
    Seq__Tx txs[CHAIN_TXS_MAX];
    Seq__Tx *tx_ptrs[CHAIN_TXS_MAX];
    Seq__BlockHeader path[PATH_MAX_TEST];
    Seq__BlockHeader *path_ptrs[PATH_MAX_TEST];
    Seq__NamespaceProof proof;
    Seq__NmtNode nodes[SEQ_NSPROOF_NODES_MAX];
    Seq__NmtNode *node_ptrs[SEQ_NSPROOF_NODES_MAX];
} pb_batch;

static void proof_to_pb(Seq__NamespaceProof *pb, Seq__NmtNode *nodes, Seq__NmtNode **ptrs, const seq_nsproof *p)
{
    *pb = (Seq__NamespaceProof)SEQ__NAMESPACE_PROOF__INIT;
    pb->start = p->start;
    for (uint32_t i = 0; i < p->node_count; i++) {
        nodes[i] = (Seq__NmtNode)SEQ__NMT_NODE__INIT;
        nodes[i].min = p->nodes[i].min;
        nodes[i].max = p->nodes[i].max;
        nodes[i].digest = (ProtobufCBinaryData){ .len = SEQ_HASH_BYTES, .data = (uint8_t *)p->nodes[i].digest.b };
        ptrs[i] = &nodes[i];
    }
    pb->n_nodes = p->node_count;
    pb->nodes = ptrs;
}

/* (Re)builds p->msg from p->src, after any tampering of src. */
static void pb_batch_set(pb_batch *p)
{
    const seq_batch *b = p->src;
    assert_true(b->tx_count <= CHAIN_TXS_MAX && b->path_len <= PATH_MAX_TEST);
    seq_pb_header_set(&p->header, &b->header);
    assert_int_equal(seq_pb_cert_set(&p->cert, p->sigs, &b->cert), 0);
    for (uint32_t i = 0; i < b->tx_count; i++) {
        p->txs[i] = (Seq__Tx)SEQ__TX__INIT;
        p->txs[i].ns = b->txs[i].ns;
        p->txs[i].payload = (ProtobufCBinaryData){ .len = b->txs[i].len, .data = (uint8_t *)b->txs[i].data };
        p->tx_ptrs[i] = &p->txs[i];
    }
    for (uint32_t i = 0; i < b->path_len; i++) {
        seq_pb_header_set(&p->path[i], &b->cert_path[i]);
        p->path_ptrs[i] = &p->path[i];
    }
    proof_to_pb(&p->proof, p->nodes, p->node_ptrs, &b->proof);
    p->msg = (Seq__NamespaceBatch)SEQ__NAMESPACE_BATCH__INIT;
    p->msg.header = &p->header;
    p->msg.ns = b->ns;
    p->msg.n_txs = b->tx_count;
    p->msg.txs = p->tx_ptrs;
    p->msg.cert = &p->cert;
    p->msg.prev_batch_hash = (ProtobufCBinaryData){ .len = SEQ_HASH_BYTES, .data = (uint8_t *)b->prev_batch_hash.b };
    p->msg.proof = &p->proof;
    p->msg.n_cert_path = b->path_len;
    p->msg.cert_path = p->path_ptrs;
}

#define STREAM_MAX 8

/* What the server sends after the subscribe request: these batches, then it
 * closes its side. */
typedef struct {
    pb_batch items[STREAM_MAX];
    size_t n;
    /* The client may close before reading everything (it stops at a batch
     * that fails verification): a send that finds it gone is not an error. */
    bool client_may_hang_up;
} stream;

static void stream_add(stream *st, seq_batch *b)
{
    assert_true(st->n < STREAM_MAX);
    st->items[st->n].src = b;
    pb_batch_set(&st->items[st->n]);
    st->n++;
}

static void stream_free(stream *st)
{
    for (size_t i = 0; i < st->n; i++)
        seq_batch_free(st->items[i].src);
    free(st);
}

static int script_chain(server *s, int fd)
{
    Seq__ClientRequest *req = read_request(s, fd);
    if (!req)
        return -1;
    uint64_t id = req->request_id;
    int ok = req->body_case == SEQ__CLIENT_REQUEST__BODY_SUBSCRIBE;
    seq__client_request__free_unpacked(req, NULL);
    if (!ok)
        return server_fail(s, "not a subscribe");
    stream *st = s->ctx;
    for (size_t i = 0; i < st->n; i++) {
        Seq__ClientResponse r = SEQ__CLIENT_RESPONSE__INIT;
        r.request_id = id;
        r.body_case = SEQ__CLIENT_RESPONSE__BODY_BATCH;
        r.batch = &st->items[i].msg;
        if (send_response(fd, &r))
            return st->client_may_hang_up ? 0 : server_fail(s, "send batch");
    }
    shutdown(fd, SHUT_WR);
    return 0;
}

/* Subscribes to ns with verification against vs (resuming after
 * (last_height, last_hash) when last_hash is given, else from from_height). */
static seq_client *verified_client(server *s, const chain *ch, const seq_ns *ns, uint32_t ns_count,
                                   uint64_t from_height, const seq_hash *last_hash)
{
    seq_client *c = connect_to(s);
    assert_false(seq_client_verifying(c));
    assert_int_equal(seq_client_verify_with(c, &ch->vs, CHAIN_ID), 0);
    assert_true(seq_client_verifying(c));
    if (last_hash)
        assert_int_equal(seq_client_subscribe_resume(c, ns, ns_count, from_height - 1, last_hash), 0);
    else
        assert_int_equal(seq_client_subscribe(c, ns, ns_count, from_height), 0);
    assert_int_equal(seq_client_verify_with(c, &ch->vs, CHAIN_ID), SEQ_EINVAL); /* too late */
    return c;
}

/* Real batches pass: two namespaces, an empty batch (absence proof), a
 * certificate that finalizes a descendant (path of two headers); the resume
 * point is the lowest height both namespaces reached. */
static void test_verified_stream(void **state)
{
    (void)state;
    chain *ch = chain_make();
    stream *st = calloc(1, sizeof *st);
    assert_non_null(st);
    stream_add(st, chain_batch(ch, 3, NS_A, 3));
    stream_add(st, chain_batch(ch, 3, NS_B, 3));
    stream_add(st, chain_batch(ch, 4, NS_A, 6)); /* certified through 5 and 6 */
    stream_add(st, chain_batch(ch, 4, NS_B, 6));
    stream_add(st, chain_batch(ch, 5, NS_A, 6)); /* empty: an absence proof */
    stream_add(st, chain_batch(ch, 5, NS_B, 5));
    stream_add(st, chain_batch(ch, 6, NS_A, 6));
    server s;
    server_start(&s, script_chain, st);
    const seq_ns ns[2] = { NS_A, NS_B };
    seq_client *c = verified_client(&s, ch, ns, 2, 3, NULL);
    uint64_t height;
    seq_hash hash;
    assert_int_equal(seq_client_resume_point(c, &height, &hash), SEQ_ENOTFOUND);
    for (size_t i = 0; i < st->n; i++) {
        seq_batch *b = NULL;
        int rc = seq_client_next_batch(c, &b, WAIT_MS);
        if (rc)
            fail_msg("batch %zu: %s (%s)", i, seq_errname(rc), seq_client_last_error(c));
        assert_int_equal(b->header.height, st->items[i].src->header.height);
        assert_int_equal(b->ns, st->items[i].src->ns);
        assert_int_equal(b->tx_count, st->items[i].src->tx_count);
        assert_memory_equal(b->block_hash.b, st->items[i].src->block_hash.b, SEQ_HASH_BYTES);
        seq_batch_free(b);
    }
    assert_int_equal(seq_client_verified_count(c), st->n);
    assert_int_equal(seq_client_resume_point(c, &height, &hash), 0);
    assert_int_equal(height, 5); /* NS_B reached 5 only */
    assert_memory_equal(hash.b, ch->blocks[5]->hash.b, SEQ_HASH_BYTES);
    seq_batch *b = NULL;
    assert_int_equal(seq_client_next_batch(c, &b, WAIT_MS), SEQ_ECLOSED);
    seq_client_close(c);
    server_finish(&s);
    stream_free(st);
    chain_free(ch);
}

/* Tamperings of the second batch (NS_A at height 3, after a good one at 2),
 * each in its own connection, and the error each must yield. */
static void flip_payload(chain *ch, seq_batch **b)
{
    (void)ch;
    ((uint8_t *)(*b)->txs[0].data)[0] ^= 1;
}
static void drop_tx(chain *ch, seq_batch **b)
{
    (void)ch;
    (*b)->tx_count--;
    (*b)->proof.count--;
}
static void bad_cert_sig(chain *ch, seq_batch **b)
{
    (void)ch;
    (*b)->cert.sigs[1].b[7] ^= 0x40;
}
/* Two real signatures of four validators (signer 3's is dropped). */
static void below_quorum(chain *ch, seq_batch **b)
{
    (void)ch;
    (*b)->cert.bitmap[0] &= (uint8_t)~(1u << 3);
    (*b)->cert.sig_count = 2;
}
static void other_header(chain *ch, seq_batch **b)
{
    (void)ch;
    (*b)->header.timestamp_ms++;
}
static void wrong_link(chain *ch, seq_batch **b)
{
    (void)ch;
    (*b)->prev_batch_hash.b[3] ^= 1;
}
static void skip_height(chain *ch, seq_batch **b)
{
    seq_batch_free(*b);
    *b = chain_batch(ch, 5, NS_A, 5);
}
static void repeat_height(chain *ch, seq_batch **b)
{
    seq_batch_free(*b);
    *b = chain_batch(ch, 2, NS_A, 2);
}
static void bad_path(chain *ch, seq_batch **b)
{
    seq_batch_free(*b);
    *b = chain_batch(ch, 3, NS_A, 5);
    (*b)->cert_path[0].timestamp_ms++;
}
/* A proof of another block's range: the root it rebuilds is not this one's. */
static void other_block_proof(chain *ch, seq_batch **b)
{
    seq_batch *other = chain_batch(ch, 4, NS_A, 4);
    (*b)->proof = other->proof;
    seq_batch_free(other);
    (*b)->proof.nodes[0].digest.b[0] ^= 1;
}
/* The node withholds NS_A's second transaction and proves the first with a
 * correct inclusion proof: the root matches, completeness does not. */
static void withheld_with_inclusion(chain *ch, seq_batch **b)
{
    (*b)->tx_count = 1;
    assert_int_equal(seq_nsproof_build_range(ch->blocks[3], (*b)->proof.start, 1, &(*b)->proof), 0);
}

static const struct {
    const char *name;
    void (*tamper)(chain *ch, seq_batch **b);
    int want;
} TAMPERED[] = {
    { "payload byte", flip_payload, SEQ_EPROOF },
    { "transaction left out", drop_tx, SEQ_EPROOF },
    { "certificate signature", bad_cert_sig, SEQ_EBADSIG },
    { "two of four signers", below_quorum, SEQ_EQUORUM },
    { "header changed", other_header, SEQ_EMISMATCH },
    { "prev_batch_hash", wrong_link, SEQ_EGAP },
    { "height skipped", skip_height, SEQ_EGAP },
    { "height repeated", repeat_height, SEQ_EGAP },
    { "certificate path header", bad_path, SEQ_EMISMATCH },
    { "proof of another block", other_block_proof, SEQ_EPROOF },
    { "withheld, inclusion proof", withheld_with_inclusion, SEQ_EPROOF },
};

static void test_verify_rejects_tampered(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof TAMPERED / sizeof TAMPERED[0]; k++) {
        chain *ch = chain_make();
        stream *st = calloc(1, sizeof *st);
        assert_non_null(st);
        stream_add(st, chain_batch(ch, 2, NS_A, 2));
        seq_batch *bad = chain_batch(ch, 3, NS_A, 3);
        TAMPERED[k].tamper(ch, &bad);
        stream_add(st, bad);
        stream_add(st, chain_batch(ch, 4, NS_A, 4)); /* good, but after a failure nothing is delivered */
        st->client_may_hang_up = true; /* the client closes after the failure, maybe before this is sent */
        server s;
        server_start(&s, script_chain, st);
        const seq_ns ns[1] = { NS_A };
        seq_client *c = verified_client(&s, ch, ns, 1, 2, NULL);
        seq_batch *b = NULL;
        assert_int_equal(seq_client_next_batch(c, &b, WAIT_MS), 0);
        seq_batch_free(b);
        b = NULL;
        int rc = seq_client_next_batch(c, &b, WAIT_MS);
        if (rc != TAMPERED[k].want)
            fail_msg("%s: got %s, want %s (%s)", TAMPERED[k].name, seq_errname(rc), seq_errname(TAMPERED[k].want),
                     seq_client_last_error(c));
        assert_null(b);
        assert_non_null(strstr(seq_client_last_error(c), "failed verification"));
        assert_int_equal(seq_client_next_batch(c, &b, WAIT_MS), TAMPERED[k].want); /* sticky */
        assert_null(b);
        assert_int_equal(seq_client_verified_count(c), 1);
        seq_client_close(c);
        server_finish(&s);
        stream_free(st);
        chain_free(ch);
    }
}

/* Catch-up mode: NS_A's batches of heights 2..6, all arrived before the
 * first is asked for, are one run. With the certificate of height `bad`
 * forged: below the run's last batch it goes unnoticed (the last one's
 * checked certificate proves it final: final_by 6); as the last batch, the
 * run is checked one batch at a time, the four before it pass on their own
 * certificates and it is refused. */
static void verify_run_with_forged(uint64_t bad)
{
    chain *ch = chain_make();
    stream *st = calloc(1, sizeof *st);
    assert_non_null(st);
    for (uint64_t h = 2; h <= 6; h++) {
        seq_batch *b = chain_batch(ch, h, NS_A, h);
        if (h == bad)
            b->cert.sigs[0].b[11] ^= 2;
        stream_add(st, b);
    }
    server s;
    server_start(&s, script_chain, st);
    const seq_ns ns[1] = { NS_A };
    seq_client *c = verified_client(&s, ch, ns, 1, 2, NULL);
    assert_int_equal(seq_client_verify_runs(c, true), 0);
    server_finish(&s); /* every frame is in the socket: one run */
    for (uint64_t h = 2; h <= 6; h++) {
        seq_batch *b = NULL;
        int rc = seq_client_next_batch(c, &b, WAIT_MS);
        if (h == bad && bad == 6) {
            assert_int_equal(rc, SEQ_EBADSIG);
            assert_non_null(strstr(seq_client_last_error(c), "at height 6 failed verification"));
            break;
        }
        if (rc)
            fail_msg("height %llu: %s (%s)", (unsigned long long)h, seq_errname(rc), seq_client_last_error(c));
        assert_int_equal(b->header.height, h);
        assert_int_equal(b->final_by, bad == 6 || h == 6 ? 0 : 6);
        seq_batch_free(b);
    }
    assert_int_equal(seq_client_verified_count(c), bad == 6 ? 4 : 5);
    seq_batch *b = NULL;
    assert_int_equal(seq_client_next_batch(c, &b, WAIT_MS), bad == 6 ? SEQ_EBADSIG : SEQ_ECLOSED);
    seq_client_close(c);
    stream_free(st);
    chain_free(ch);
}

static void test_verify_runs_catch_up(void **state)
{
    (void)state;
    verify_run_with_forged(3);
    verify_run_with_forged(6);
}

/* The wrong chain id, validators of another network, and a first batch that
 * is not at the subscribed height are all refused. */
static void test_verify_wrong_network(void **state)
{
    (void)state;
    chain *ch = chain_make();
    chain *other = chain_make();
    /* Another network: the same keys shifted by one. */
    seq_pubkey pks[CHAIN_N];
    for (int i = 0; i < CHAIN_N; i++)
        pks[i] = ch->keys[(i + 1) % CHAIN_N]->pk;
    assert_int_equal(seq_validators_init(&other->vs, pks, CHAIN_N), 0);
    const struct {
        const seq_validators *vs;
        uint64_t chain_id;
        uint64_t from;
        int want;
    } cases[] = {
        { &ch->vs, CHAIN_ID + 1, 2, SEQ_ECHAIN_ID },
        { &other->vs, CHAIN_ID, 2, SEQ_EBADSIG },
        { &ch->vs, CHAIN_ID, 1, SEQ_EGAP },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        stream *st = calloc(1, sizeof *st);
        assert_non_null(st);
        stream_add(st, chain_batch(ch, 2, NS_A, 2));
        server s;
        server_start(&s, script_chain, st);
        seq_client *c = connect_to(&s);
        assert_int_equal(seq_client_verify_with(c, cases[k].vs, cases[k].chain_id), 0);
        const seq_ns ns[1] = { NS_A };
        assert_int_equal(seq_client_subscribe(c, ns, 1, cases[k].from), 0);
        seq_batch *b = NULL;
        int rc = seq_client_next_batch(c, &b, WAIT_MS);
        if (rc != cases[k].want)
            fail_msg("case %zu: got %s, want %s (%s)", k, seq_errname(rc), seq_errname(cases[k].want),
                     seq_client_last_error(c));
        seq_client_close(c);
        server_finish(&s);
        stream_free(st);
    }
    chain_free(other);
    chain_free(ch);
}

/* Resuming after (3, hash of 3): height 4 follows; a wrong hash, a repeat of
 * 3 and a jump to 5 do not. */
static void test_verify_resume(void **state)
{
    (void)state;
    chain *ch = chain_make();
    const struct {
        uint64_t send_h;
        uint64_t hash_h; /* the resume hash given: of this height */
        int want;
    } cases[] = {
        { 4, 3, 0 },
        { 4, 2, SEQ_EGAP },
        { 3, 3, SEQ_EGAP },
        { 5, 3, SEQ_EGAP },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        stream *st = calloc(1, sizeof *st);
        assert_non_null(st);
        stream_add(st, chain_batch(ch, cases[k].send_h, NS_A, cases[k].send_h));
        server s;
        server_start(&s, script_chain, st);
        const seq_ns ns[1] = { NS_A };
        seq_client *c = verified_client(&s, ch, ns, 1, 4, &ch->blocks[cases[k].hash_h]->hash);
        uint64_t height;
        seq_hash hash;
        assert_int_equal(seq_client_resume_point(c, &height, &hash), 0); /* where it resumed */
        assert_int_equal(height, 3);
        seq_batch *b = NULL;
        int rc = seq_client_next_batch(c, &b, WAIT_MS);
        if (rc != cases[k].want)
            fail_msg("case %zu: got %s, want %s (%s)", k, seq_errname(rc), seq_errname(cases[k].want),
                     seq_client_last_error(c));
        seq_batch_free(b);
        seq_client_close(c);
        server_finish(&s);
        stream_free(st);
    }
    chain_free(ch);
}

/* ---- transaction status ----------------------------------------------------- */

/* One scripted answer: the request it expects (an id or a client key) and
 * the reply, sent with the request's id. */
typedef struct {
    const uint8_t *want_id;        /* NULL: expects a key */
    const char *want_key;
    Seq__TxStatusReply reply;
} tx_answer;

#define TX_ANSWERS_MAX 6

typedef struct {
    tx_answer a[TX_ANSWERS_MAX];
    size_t n;
} tx_script;

static int script_tx_status(server *s, int fd)
{
    tx_script *ts = s->ctx;
    for (size_t i = 0; i < ts->n; i++) {
        Seq__ClientRequest *req = read_request(s, fd);
        if (!req)
            return -1;
        const Seq__TxStatusRequest *tr = req->tx_status;
        const tx_answer *a = &ts->a[i];
        int ok = req->body_case == SEQ__CLIENT_REQUEST__BODY_TX_STATUS && tr;
        if (ok && a->want_id)
            ok = tr->id.len == SEQ_HASH_BYTES && memcmp(tr->id.data, a->want_id, SEQ_HASH_BYTES) == 0 &&
                 tr->client_key.len == 0;
        else if (ok)
            ok = tr->id.len == 0 && tr->client_key.len == strlen(a->want_key) &&
                 memcmp(tr->client_key.data, a->want_key, tr->client_key.len) == 0;
        Seq__ClientResponse r = SEQ__CLIENT_RESPONSE__INIT;
        r.request_id = req->request_id;
        r.body_case = SEQ__CLIENT_RESPONSE__BODY_TX_STATUS;
        r.tx_status = (Seq__TxStatusReply *)&a->reply;
        seq__client_request__free_unpacked(req, NULL);
        if (!ok)
            return server_fail(s, "tx status request not as expected");
        if (send_response(fd, &r))
            return server_fail(s, "send tx status");
    }
    return 0;
}

/* The proof parts of a finalized status: NS_A's second transaction of
 * block 4, certified by block 5's certificate through a path of one header. */
typedef struct {
    seq_batch *batch;               /* owns header, cert, path */
    seq_nsproof proof;
    uint32_t index;
    Seq__BlockHeader header, path[1];
    Seq__BlockHeader *path_ptrs[1];
    Seq__Certificate cert;
    ProtobufCBinaryData sigs[SEQ_VALIDATORS_MAX];
    Seq__NamespaceProof pb_proof;
    Seq__NmtNode nodes[SEQ_NSPROOF_NODES_MAX];
    Seq__NmtNode *node_ptrs[SEQ_NSPROOF_NODES_MAX];
} tx_proof_parts;

static void finalized_reply(tx_proof_parts *p, const chain *ch, Seq__TxStatusReply *r)
{
    p->batch = chain_batch(ch, 4, NS_A, 5);
    assert_int_equal(p->batch->tx_count, 2);
    p->index = p->batch->proof.start + 1;
    assert_int_equal(seq_nsproof_build_range(ch->blocks[4], p->index, 1, &p->proof), 0);
    seq_pb_header_set(&p->header, &p->batch->header);
    seq_pb_header_set(&p->path[0], &p->batch->cert_path[0]);
    p->path_ptrs[0] = &p->path[0];
    assert_int_equal(seq_pb_cert_set(&p->cert, p->sigs, &p->batch->cert), 0);
    proof_to_pb(&p->pb_proof, p->nodes, p->node_ptrs, &p->proof);
    const seq_tx *tx = &p->batch->txs[1];
    *r = (Seq__TxStatusReply)SEQ__TX_STATUS_REPLY__INIT;
    r->status = SEQ__TX_STATUS_REPLY__STATUS__FINALIZED;
    r->id = (ProtobufCBinaryData){ .len = SEQ_HASH_BYTES, .data = (uint8_t *)tx->id.b };
    r->height = 4;
    r->index = p->index;
    r->block_hash = (ProtobufCBinaryData){ .len = SEQ_HASH_BYTES, .data = (uint8_t *)p->batch->block_hash.b };
    r->ns = NS_A;
    r->header = &p->header;
    r->cert = &p->cert;
    r->n_cert_path = 1;
    r->cert_path = p->path_ptrs;
    r->proof = &p->pb_proof;
}

/* Finalized (decoded in full and verified; wrong validators, another index,
 * another block hash fail), dropped by key with its reason, unknown by key
 * without id, and the malformed answers: another transaction's status, a
 * finalized one without header. */
static void test_tx_status(void **state)
{
    (void)state;
    chain *ch = chain_make();
    tx_proof_parts *pp = calloc(1, sizeof *pp);
    tx_script *ts = calloc(1, sizeof *ts);
    assert_true(pp && ts);
    Seq__TxStatusReply fin;
    finalized_reply(pp, ch, &fin);
    const seq_hash id = pp->batch->txs[1].id;
    seq_hash other_id = id;
    other_id.b[0] ^= 1;
    ts->a[0] = (tx_answer){ .want_id = id.b, .reply = fin };
    ts->a[1] = (tx_answer){ .want_key = "order-9", .reply = SEQ__TX_STATUS_REPLY__INIT };
    ts->a[1].reply.status = SEQ__TX_STATUS_REPLY__STATUS__DROPPED;
    ts->a[1].reply.id = (ProtobufCBinaryData){ .len = SEQ_HASH_BYTES, .data = other_id.b };
    ts->a[1].reply.reason = "expired";
    ts->a[2] = (tx_answer){ .want_key = "nobody", .reply = SEQ__TX_STATUS_REPLY__INIT };
    ts->a[2].reply.status = SEQ__TX_STATUS_REPLY__STATUS__UNKNOWN;
    ts->a[3] = (tx_answer){ .want_id = other_id.b, .reply = fin }; /* answers about id instead */
    ts->a[4] = (tx_answer){ .want_id = id.b, .reply = fin };
    ts->a[4].reply.header = NULL;
    ts->n = 5;
    server s;
    server_start(&s, script_tx_status, ts);
    seq_client *c = connect_to(&s);

    seq_tx_status *st = NULL;
    assert_int_equal(seq_client_tx_status(c, &id, &st, WAIT_MS), 0);
    assert_int_equal(st->state, SEQ_TX_FINALIZED);
    assert_int_equal(st->height, 4);
    assert_int_equal(st->index, pp->index);
    assert_int_equal(st->ns, NS_A);
    assert_int_equal(st->path_len, 1);
    assert_int_equal(st->cert_path[0].height, 5);
    assert_int_equal(st->proof.start, pp->index);
    assert_int_equal(st->proof.count, 1);
    assert_int_equal(st->proof.node_count, pp->proof.node_count);
    char why[200] = "";
    int rc = seq_client_tx_status_verify(st, &ch->vs, CHAIN_ID, why, sizeof why);
    if (rc)
        fail_msg("verify: %s (%s)", seq_errname(rc), why);
    assert_int_not_equal(seq_client_tx_status_verify(st, &ch->vs, CHAIN_ID + 1, why, sizeof why), 0);
    st->index++;
    assert_int_equal(seq_client_tx_status_verify(st, &ch->vs, CHAIN_ID, why, sizeof why), SEQ_EPROOF);
    st->index--;
    st->proof.start++;
    st->index++;
    assert_int_not_equal(seq_client_tx_status_verify(st, &ch->vs, CHAIN_ID, why, sizeof why), 0);
    st->proof.start--;
    st->index--;
    st->block_hash.b[0] ^= 1;
    assert_int_equal(seq_client_tx_status_verify(st, &ch->vs, CHAIN_ID, why, sizeof why), SEQ_EMISMATCH);
    seq_tx_status_free(st);

    assert_int_equal(seq_client_tx_status_by_key(c, (const uint8_t *)"order-9", 7, &st, WAIT_MS), 0);
    assert_int_equal(st->state, SEQ_TX_DROPPED);
    assert_string_equal(st->reason, "expired");
    assert_memory_equal(st->id.b, other_id.b, SEQ_HASH_BYTES);
    assert_int_equal(seq_client_tx_status_verify(st, &ch->vs, CHAIN_ID, why, sizeof why), SEQ_EINVAL);
    seq_tx_status_free(st);

    assert_int_equal(seq_client_tx_status_by_key(c, (const uint8_t *)"nobody", 6, &st, WAIT_MS), 0);
    assert_int_equal(st->state, SEQ_TX_UNKNOWN);
    seq_tx_status_free(st);
    st = NULL;

    assert_int_equal(seq_client_tx_status(c, &other_id, &st, WAIT_MS), SEQ_EPROTOCOL);
    assert_int_equal(seq_client_tx_status(c, &id, &st, WAIT_MS), SEQ_EDECODE);
    assert_non_null(strstr(seq_client_last_error(c), "header"));
    assert_null(st);
    assert_int_equal(seq_client_tx_status_by_key(c, (const uint8_t *)"", 0, &st, WAIT_MS), SEQ_EINVAL);
    seq_client_close(c);
    server_finish(&s);
    seq_batch_free(pp->batch);
    free(pp);
    free(ts);
    chain_free(ch);
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
        cmocka_unit_test(test_submit_keyed),
        cmocka_unit_test(test_submit_pipelined),
        cmocka_unit_test(test_status_and_error),
        cmocka_unit_test(test_subscribe_stream),
        cmocka_unit_test(test_subscribe_rejects_malformed),
        cmocka_unit_test(test_subscribe_refused_and_timeout),
        cmocka_unit_test(test_verified_stream),
        cmocka_unit_test(test_verify_rejects_tampered),
        cmocka_unit_test(test_verify_runs_catch_up),
        cmocka_unit_test(test_verify_wrong_network),
        cmocka_unit_test(test_verify_resume),
        cmocka_unit_test(test_tx_status),
        cmocka_unit_test(test_connect_errors),
        cmocka_unit_test(test_bench_stamp),
        cmocka_unit_test(test_hist_quantiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
