/* The client API server. See lib/api.h. One libuv TCP listener; per client a
 * framer for requests and a byte count of replies queued in libuv. A client
 * that does not read its replies stops being read (backpressure) until its
 * queue drains; a subscriber that falls behind is fed from the store. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "codec.h"
#include "crypto.h"
#include "errors.h"
#include "log.h"
#include "pbconv.h"
#include "seq.pb-c.h"
#include "wire.h"

#define READ_BUF_BYTES (256u << 10)
#define CATCHUP_INTERVAL_MS 2
#define CATCHUP_BLOCKS_PER_TICK 32 /* per subscriber per tick: bounds one tick's work */

typedef struct client client;

struct client {
    uv_tcp_t tcp;
    seq_api *api;
    client *prev, *next;
    seq_framer framer;
    size_t queued;        /* reply bytes handed to libuv, not yet written */
    bool reading;
    bool closing;
    bool subscribed;
    uint64_t sub_request_id;
    uint64_t next_height; /* next height to send to the subscriber */
    uint32_t ns_count;
    seq_ns ns[SEQ_CLIENT_SUBSCRIBE_NS_MAX];
};

struct seq_api {
    seq_api_config cfg;
    uv_tcp_t listener;
    uv_timer_t catchup;
    client *clients;
    uint32_t client_count;
    uint32_t handles_open;
    bool closing;
    void (*done)(void *ctx);
    void *done_ctx;
    uint8_t read_buf[READ_BUF_BYTES];
};

typedef struct {
    uv_write_t req;
    client *c;
    size_t len;
    uint8_t data[];
} write_req;

static void client_close(client *c, const char *why);

/* ---- writing ------------------------------------------------------------------ */

static void maybe_resume_reading(client *c);

static void write_cb(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    client *c = w->c;
    c->queued -= w->len;
    free(w);
    if (status < 0) {
        client_close(c, uv_strerror(status));
        return;
    }
    maybe_resume_reading(c);
}

static int send_response(client *c, const Seq__ClientResponse *resp)
{
    if (c->closing)
        return SEQ_ECLOSED;
    size_t n = seq__client_response__get_packed_size(resp);
    if (n > SEQ_CLIENT_FRAME_BYTES_MAX)
        return SEQ_ETOOBIG;
    write_req *w = malloc(sizeof *w + SEQ_FRAME_HEADER_BYTES + n);
    if (!w)
        return SEQ_ENOMEM;
    w->c = c;
    w->len = SEQ_FRAME_HEADER_BYTES + n;
    seq_frame_header(w->data, (uint32_t)n);
    seq__client_response__pack(resp, w->data + SEQ_FRAME_HEADER_BYTES);
    uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, write_cb);
    if (rc < 0) {
        free(w);
        client_close(c, uv_strerror(rc));
        return SEQ_EIO;
    }
    c->queued += w->len;
    return 0;
}

static void send_error(client *c, uint64_t request_id, int err, const char *what)
{
    Seq__Error e = SEQ__ERROR__INIT;
    e.code = (uint32_t)-err;
    e.message = (char *)what;
    Seq__ClientResponse resp = SEQ__CLIENT_RESPONSE__INIT;
    resp.request_id = request_id;
    resp.body_case = SEQ__CLIENT_RESPONSE__BODY_ERROR;
    resp.error = &e;
    (void)send_response(c, &resp);
}

/* ---- subscriptions ------------------------------------------------------------ */

/* The run of b's transactions in namespace ns (they are sorted by namespace). */
static void ns_slice(const seq_block *b, seq_ns ns, uint32_t *first, uint32_t *count)
{
    uint32_t lo = 0, hi = b->tx_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (b->txs[mid].ns < ns)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t end = lo;
    while (end < b->tx_count && b->txs[end].ns == ns)
        end++;
    *first = lo;
    *count = end - lo;
}

static int send_batch(client *c, const seq_block *b, const seq_cert *cert, seq_ns ns)
{
    uint32_t first, count;
    ns_slice(b, ns, &first, &count);
    Seq__Tx *items = count ? malloc(count * sizeof *items) : NULL;
    Seq__Tx **ptrs = count ? malloc(count * sizeof *ptrs) : NULL;
    if (count && (!items || !ptrs)) {
        free(items);
        free(ptrs);
        return SEQ_ENOMEM;
    }
    for (uint32_t i = 0; i < count; i++) {
        const seq_tx *tx = &b->txs[first + i];
        items[i] = (Seq__Tx)SEQ__TX__INIT;
        items[i].ns = tx->ns;
        items[i].payload = (ProtobufCBinaryData){.len = tx->len, .data = (uint8_t *)tx->data};
        ptrs[i] = &items[i];
    }
    Seq__BlockHeader header;
    Seq__Certificate pcert;
    ProtobufCBinaryData sigs[SEQ_VALIDATORS_MAX];
    seq_pb_header_set(&header, &b->h);
    int rc = seq_pb_cert_set(&pcert, sigs, cert);
    Seq__NamespaceBatch batch = SEQ__NAMESPACE_BATCH__INIT;
    batch.header = &header;
    batch.ns = ns;
    batch.n_txs = count;
    batch.txs = ptrs;
    batch.cert = &pcert;
    Seq__ClientResponse resp = SEQ__CLIENT_RESPONSE__INIT;
    resp.request_id = c->sub_request_id;
    resp.body_case = SEQ__CLIENT_RESPONSE__BODY_BATCH;
    resp.batch = &batch;
    if (rc == 0)
        rc = send_response(c, &resp);
    free(items);
    free(ptrs);
    return rc;
}

static int send_block(client *c, const seq_block *b, const seq_cert *cert)
{
    for (uint32_t i = 0; i < c->ns_count; i++) {
        int rc = send_batch(c, b, cert, c->ns[i]);
        if (rc)
            return rc;
    }
    c->next_height = b->h.height + 1;
    return 0;
}

static uint64_t store_height(seq_api *a)
{
    seq_store_tip tip;
    return seq_store_tip_get(a->cfg.store, &tip) == 0 ? tip.height : 0;
}

static bool lagging(const client *c, uint64_t tip)
{
    return c->subscribed && !c->closing && c->next_height <= tip;
}

static void catchup_cb(uv_timer_t *t);

static void catchup_start(seq_api *a)
{
    if (!a->closing && !uv_is_active((uv_handle_t *)&a->catchup))
        (void)uv_timer_start(&a->catchup, catchup_cb, CATCHUP_INTERVAL_MS, CATCHUP_INTERVAL_MS);
}

/* Sends one subscriber up to CATCHUP_BLOCKS_PER_TICK stored blocks while its
 * queue has room. */
static void catchup_client(client *c, uint64_t tip)
{
    size_t room = c->api->cfg.send_queue_bytes_max / 2;
    for (uint32_t k = 0; k < CATCHUP_BLOCKS_PER_TICK && lagging(c, tip) && c->queued < room; k++) {
        seq_block *b = NULL;
        seq_cert cert;
        int rc = seq_store_block_get(c->api->cfg.store, c->next_height, &b);
        if (rc == 0)
            rc = seq_store_cert_get(c->api->cfg.store, c->next_height, &cert);
        if (rc == 0)
            rc = send_block(c, b, &cert);
        seq_block_free(b);
        if (rc) {
            client_close(c, seq_strerror(rc));
            return;
        }
    }
}

static void catchup_cb(uv_timer_t *t)
{
    seq_api *a = t->data;
    uint64_t tip = store_height(a);
    bool any = false;
    for (client *c = a->clients, *next; c; c = next) {
        next = c->next;
        catchup_client(c, tip);
        any |= lagging(c, tip);
    }
    if (!any)
        uv_timer_stop(t);
}

void seq_api_delivered(seq_api *a, const seq_block *b, const seq_cert *cert)
{
    bool behind = false;
    for (client *c = a->clients, *next; c; c = next) {
        next = c->next;
        if (!c->subscribed || c->closing)
            continue;
        if (c->next_height == b->h.height && c->queued < a->cfg.send_queue_bytes_max) {
            int rc = send_block(c, b, cert);
            if (rc)
                client_close(c, seq_strerror(rc));
        } else if (c->next_height <= b->h.height) {
            behind = true;
        }
    }
    if (behind)
        catchup_start(a);
}

/* ---- requests ----------------------------------------------------------------- */

static Seq__SubmitResult__Status submit_status(int rc)
{
    switch (rc) {
    case 0:
        return SEQ__SUBMIT_RESULT__STATUS__ACCEPTED;
    case SEQ_ETOOBIG:
        return SEQ__SUBMIT_RESULT__STATUS__TOO_LARGE;
    case SEQ_EFULL:
    case SEQ_ENS_FULL:
        return SEQ__SUBMIT_RESULT__STATUS__MEMPOOL_FULL;
    case SEQ_EDUPLICATE:
        return SEQ__SUBMIT_RESULT__STATUS__DUPLICATE;
    default:
        return SEQ__SUBMIT_RESULT__STATUS__INVALID;
    }
}

static void on_submit(client *c, uint64_t rid, const Seq__SubmitRequest *req)
{
    size_t n = req->n_txs;
    if (n == 0 || n > SEQ_GOSSIP_TXS_MAX) {
        send_error(c, rid, SEQ_EINVAL, "submit carries 1 to 4096 transactions");
        return;
    }
    Seq__SubmitResult *results = malloc(n * sizeof *results);
    Seq__SubmitResult **ptrs = malloc(n * sizeof *ptrs);
    seq_hash *ids = malloc(n * sizeof *ids);
    if (!results || !ptrs || !ids) {
        send_error(c, rid, SEQ_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const Seq__Tx *tx = req->txs[i];
        results[i] = (Seq__SubmitResult)SEQ__SUBMIT_RESULT__INIT;
        ptrs[i] = &results[i];
        int rc = SEQ_ETOOBIG;
        memset(&ids[i], 0, sizeof ids[i]);
        if (tx && tx->payload.len <= SEQ_TX_PAYLOAD_BYTES_MAX) {
            rc = c->api->cfg.hooks.submit(c->api->cfg.hooks.ctx, tx->ns, tx->payload.data,
                                          (uint32_t)tx->payload.len, &ids[i]);
            if (rc == SEQ_EDUPLICATE || rc == SEQ_EFULL || rc == SEQ_ENS_FULL) {
                seq_tx t = {.ns = tx->ns, .len = (uint32_t)tx->payload.len, .data = tx->payload.data};
                seq_tx_compute_id(&t);
                ids[i] = t.id;
            }
        }
        results[i].status = submit_status(rc);
        results[i].reason = rc ? (char *)seq_strerror(rc) : (char *)"";
        if (rc == 0 || seq_hash_is_zero(&ids[i]) == false)
            results[i].id = (ProtobufCBinaryData){.len = SEQ_HASH_BYTES, .data = ids[i].b};
    }
    Seq__SubmitReply reply = SEQ__SUBMIT_REPLY__INIT;
    reply.n_results = n;
    reply.results = ptrs;
    Seq__ClientResponse resp = SEQ__CLIENT_RESPONSE__INIT;
    resp.request_id = rid;
    resp.body_case = SEQ__CLIENT_RESPONSE__BODY_SUBMIT;
    resp.submit = &reply;
    (void)send_response(c, &resp);
out:
    free(results);
    free(ptrs);
    free(ids);
}

static void on_subscribe(client *c, uint64_t rid, const Seq__SubscribeRequest *req)
{
    if (c->subscribed) {
        send_error(c, rid, SEQ_EINVAL, "this connection already has a subscription");
        return;
    }
    if (req->n_namespaces == 0 || req->n_namespaces > SEQ_CLIENT_SUBSCRIBE_NS_MAX) {
        send_error(c, rid, SEQ_EINVAL, "subscribe names 1 to 256 namespaces");
        return;
    }
    c->ns_count = (uint32_t)req->n_namespaces;
    memcpy(c->ns, req->namespaces, c->ns_count * sizeof c->ns[0]);
    c->sub_request_id = rid;
    /* from 0: from the next block on */
    c->next_height = req->from_height ? req->from_height : store_height(c->api) + 1;
    c->subscribed = true;
    SEQ_INFO("api_subscribe", "namespaces=%u from=%llu", c->ns_count, (unsigned long long)c->next_height);
    catchup_start(c->api);
}

static void on_status(client *c, uint64_t rid)
{
    seq_node_status st;
    c->api->cfg.hooks.status(c->api->cfg.hooks.ctx, &st);
    Seq__StatusReply reply = SEQ__STATUS_REPLY__INIT;
    reply.height = st.height;
    reply.view = st.view;
    reply.leader = st.leader;
    reply.peers = st.peers;
    reply.mempool_txs = st.mempool_txs;
    reply.mempool_bytes = st.mempool_bytes;
    Seq__ClientResponse resp = SEQ__CLIENT_RESPONSE__INIT;
    resp.request_id = rid;
    resp.body_case = SEQ__CLIENT_RESPONSE__BODY_STATUS;
    resp.status = &reply;
    (void)send_response(c, &resp);
}

static void on_get_block(client *c, uint64_t rid, const Seq__GetBlockRequest *req)
{
    seq_store *st = c->api->cfg.store;
    uint64_t height = req->height;
    int rc = 0;
    if (req->by_case == SEQ__GET_BLOCK_REQUEST__BY_HASH) {
        seq_hash h;
        if (req->hash.len != SEQ_HASH_BYTES) {
            send_error(c, rid, SEQ_EDECODE, "hash must be 32 bytes");
            return;
        }
        memcpy(h.b, req->hash.data, SEQ_HASH_BYTES);
        rc = seq_store_height_of(st, &h, &height);
    } else if (req->by_case != SEQ__GET_BLOCK_REQUEST__BY_HEIGHT) {
        send_error(c, rid, SEQ_EINVAL, "get block by height or by hash");
        return;
    }
    seq_block *b = NULL;
    seq_cert cert;
    if (rc == 0)
        rc = seq_store_block_get(st, height, &b);
    if (rc == 0)
        rc = seq_store_cert_get(st, height, &cert);
    if (rc != 0) {
        send_error(c, rid, rc, rc == SEQ_ENOTFOUND ? "no finalized block there" : seq_strerror(rc));
        seq_block_free(b);
        return;
    }
    Seq__Tx *items = malloc((b->tx_count + 1) * sizeof *items);
    Seq__Tx **ptrs = malloc((b->tx_count + 1) * sizeof *ptrs);
    if (items && ptrs) {
        for (uint32_t i = 0; i < b->tx_count; i++) {
            items[i] = (Seq__Tx)SEQ__TX__INIT;
            items[i].ns = b->txs[i].ns;
            items[i].payload = (ProtobufCBinaryData){.len = b->txs[i].len, .data = (uint8_t *)b->txs[i].data};
            ptrs[i] = &items[i];
        }
        Seq__BlockHeader header;
        Seq__Certificate pcert;
        ProtobufCBinaryData sigs[SEQ_VALIDATORS_MAX];
        seq_pb_header_set(&header, &b->h);
        if (seq_pb_cert_set(&pcert, sigs, &cert) == 0) {
            Seq__Block block = SEQ__BLOCK__INIT;
            block.header = &header;
            block.n_txs = b->tx_count;
            block.txs = ptrs;
            Seq__FinalizedBlock fb = SEQ__FINALIZED_BLOCK__INIT;
            fb.block = &block;
            fb.cert = &pcert;
            Seq__GetBlockReply reply = SEQ__GET_BLOCK_REPLY__INIT;
            reply.block = &fb;
            Seq__ClientResponse resp = SEQ__CLIENT_RESPONSE__INIT;
            resp.request_id = rid;
            resp.body_case = SEQ__CLIENT_RESPONSE__BODY_BLOCK;
            resp.block = &reply;
            (void)send_response(c, &resp);
        }
    } else {
        send_error(c, rid, SEQ_ENOMEM, "out of memory");
    }
    free(items);
    free(ptrs);
    seq_block_free(b);
}

static void on_tx_status(client *c, uint64_t rid, const Seq__TxStatusRequest *req)
{
    if (req->id.len != SEQ_HASH_BYTES) {
        send_error(c, rid, SEQ_EDECODE, "transaction id must be 32 bytes");
        return;
    }
    seq_hash id, block_hash;
    memcpy(id.b, req->id.data, SEQ_HASH_BYTES);
    Seq__TxStatusReply reply = SEQ__TX_STATUS_REPLY__INIT;
    reply.id = req->id;
    uint64_t height;
    uint32_t index;
    seq_block *b = NULL;
    if (seq_store_tx_find(c->api->cfg.store, &id, &height, &index) == 0 &&
        seq_store_block_get(c->api->cfg.store, height, &b) == 0) {
        block_hash = b->hash;
        reply.status = SEQ__TX_STATUS_REPLY__STATUS__FINALIZED;
        reply.height = height;
        reply.index = index;
        reply.block_hash = (ProtobufCBinaryData){.len = SEQ_HASH_BYTES, .data = block_hash.b};
    } else if (c->api->cfg.hooks.pending(c->api->cfg.hooks.ctx, &id)) {
        reply.status = SEQ__TX_STATUS_REPLY__STATUS__PENDING;
    } else {
        reply.status = SEQ__TX_STATUS_REPLY__STATUS__UNKNOWN;
    }
    Seq__ClientResponse resp = SEQ__CLIENT_RESPONSE__INIT;
    resp.request_id = rid;
    resp.body_case = SEQ__CLIENT_RESPONSE__BODY_TX_STATUS;
    resp.tx_status = &reply;
    (void)send_response(c, &resp);
    seq_block_free(b);
}

/* One request frame. A frame that is not a ClientRequest closes the client:
 * after garbage the stream cannot be trusted to be in sync. */
static void on_frame(client *c, const uint8_t *data, size_t len)
{
    seq_pb_budget budget;
    seq_pb_budget_init(&budget, len);
    Seq__ClientRequest *req = seq__client_request__unpack(&budget.allocator, len, data);
    if (!req) {
        client_close(c, "malformed request frame");
        return;
    }
    uint64_t rid = req->request_id;
    switch (req->body_case) {
    case SEQ__CLIENT_REQUEST__BODY_SUBMIT:
        on_submit(c, rid, req->submit);
        break;
    case SEQ__CLIENT_REQUEST__BODY_SUBSCRIBE:
        on_subscribe(c, rid, req->subscribe);
        break;
    case SEQ__CLIENT_REQUEST__BODY_GET_BLOCK:
        on_get_block(c, rid, req->get_block);
        break;
    case SEQ__CLIENT_REQUEST__BODY_TX_STATUS:
        on_tx_status(c, rid, req->tx_status);
        break;
    case SEQ__CLIENT_REQUEST__BODY_STATUS:
        on_status(c, rid);
        break;
    default:
        send_error(c, rid, SEQ_EINVAL, "unknown request");
        break;
    }
    seq__client_request__free_unpacked(req, &budget.allocator);
}

/* ---- connections --------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    client *c = h->data;
    *buf = uv_buf_init((char *)c->api->read_buf, READ_BUF_BYTES);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    client *c = s->data;
    if (nread < 0) {
        client_close(c, nread == UV_EOF ? "client closed" : uv_strerror((int)nread));
        return;
    }
    int rc = seq_framer_feed(&c->framer, (const uint8_t *)buf->base, (size_t)nread);
    if (rc) {
        client_close(c, rc == SEQ_ETOOBIG ? "request frame over the limit" : seq_strerror(rc));
        return;
    }
    const uint8_t *frame;
    size_t len;
    while (!c->closing && seq_framer_next(&c->framer, &frame, &len) == 1)
        on_frame(c, frame, len);
    /* backpressure: a client that does not read its replies is not read */
    if (!c->closing && c->queued > c->api->cfg.send_queue_bytes_max && c->reading) {
        uv_read_stop(s);
        c->reading = false;
    }
}

static void maybe_resume_reading(client *c)
{
    if (!c->closing && !c->reading && c->queued <= c->api->cfg.send_queue_bytes_max / 2) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
            c->reading = true;
    }
}

static void api_maybe_done(seq_api *a)
{
    if (a->closing && a->handles_open == 0 && a->clients == NULL) {
        void (*done)(void *) = a->done;
        void *ctx = a->done_ctx;
        free(a);
        if (done)
            done(ctx);
    }
}

static void client_closed_cb(uv_handle_t *h)
{
    client *c = h->data;
    seq_api *a = c->api;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->client_count--;
    seq_framer_free(&c->framer);
    free(c);
    api_maybe_done(a);
}

static void client_close(client *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    SEQ_DEBUG("api_client_closed", "reason=\"%s\"", why);
    if (strcmp(why, "client closed") != 0 && !c->api->closing)
        SEQ_INFO("api_client_closed", "reason=\"%s\"", why);
    uv_close((uv_handle_t *)&c->tcp, client_closed_cb);
}

static void connection_cb(uv_stream_t *server, int status)
{
    seq_api *a = server->data;
    if (status < 0 || a->closing)
        return;
    client *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->api = a;
    c->tcp.data = c;
    seq_framer_init(&c->framer, a->cfg.frame_bytes_max);
    uv_tcp_init(a->cfg.loop, &c->tcp);
    c->next = a->clients;
    if (a->clients)
        a->clients->prev = c;
    a->clients = c;
    a->client_count++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        client_close(c, "accept failed");
        return;
    }
    if (a->client_count > a->cfg.clients_max) {
        SEQ_WARN("api_refused", "reason=too_many_clients max=%u", a->cfg.clients_max);
        client_close(c, "too many clients");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
        c->reading = true;
}

int seq_api_start(seq_api **out, const seq_api_config *cfg)
{
    struct sockaddr_storage addr;
    if (seq_addr_resolve(cfg->listen, &addr) != 0) {
        SEQ_ERROR("api_listen", "addr=%s err=%s", cfg->listen, seq_strerror(SEQ_EADDR));
        return SEQ_EADDR;
    }
    seq_api *a = calloc(1, sizeof *a);
    if (!a)
        return SEQ_ENOMEM;
    a->cfg = *cfg;
    uv_tcp_init(cfg->loop, &a->listener);
    uv_timer_init(cfg->loop, &a->catchup);
    a->listener.data = a;
    a->catchup.data = a;
    a->handles_open = 2;
    int rc = uv_tcp_bind(&a->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&a->listener, 256, connection_cb);
    if (rc != 0) {
        SEQ_ERROR("api_listen", "addr=%s err=\"%s\"", cfg->listen, uv_strerror(rc));
        seq_api_close(a, NULL, NULL);
        return SEQ_EIO;
    }
    *out = a;
    return 0;
}

uint32_t seq_api_clients(const seq_api *a) { return a->client_count; }

static void handle_closed_cb(uv_handle_t *h)
{
    seq_api *a = h->data;
    a->handles_open--;
    api_maybe_done(a);
}

void seq_api_close(seq_api *a, void (*done)(void *ctx), void *ctx)
{
    a->closing = true;
    a->done = done;
    a->done_ctx = ctx;
    for (client *c = a->clients; c; c = c->next)
        client_close(c, "node stopping");
    uv_close((uv_handle_t *)&a->listener, handle_closed_cb);
    uv_close((uv_handle_t *)&a->catchup, handle_closed_cb);
}
