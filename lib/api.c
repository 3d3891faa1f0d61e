/* The client API server. See lib/api.h. One libuv TCP listener; per client a
 * framer for requests and a byte count of replies queued in libuv. A client
 * that does not read its replies stops being read (backpressure) until its
 * queue drains; a subscriber that falls behind is fed from the store. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "batch.h"
#include "substream.h"
#include "codec.h"
#include "crypto.h"
#include "errors.h"
#include "log.h"
#include "nsproof.h"
#include "pbconv.h"
#include "replica.h"
#include "seq.pb-c.h"
#include "wire.h"

#define READ_BUF_BYTES (256u << 10)
#define BATCH_CACHE_BYTES (32u << 20) /* encoded batches shared by subscribers */
#define BLOCK_CACHE_BYTES (64u << 20) /* delivered blocks kept for subscribers behind (lib/batchcache.c) */

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
    bool handed_over;     /* the subscription thread has the socket now */
    uint32_t ns_count;
    seq_ns ns[SEQ_CLIENT_SUBSCRIBE_NS_MAX];
};

struct seq_api {
    seq_api_config cfg;
    uv_tcp_t listener;
    seq_substream *stream;
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
static void hand_over(client *c);

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
    if (c->subscribed && c->queued == 0 && !c->closing)
        hand_over(c);
    else
        maybe_resume_reading(c);
}

/* A frame of n body bytes for the caller to fill after the header, or NULL. */
static write_req *frame_new(client *c, size_t n, int *err)
{
    *err = c->closing ? SEQ_ECLOSED : n > SEQ_CLIENT_FRAME_BYTES_MAX ? SEQ_ETOOBIG : 0;
    write_req *w = *err ? NULL : malloc(sizeof *w + SEQ_FRAME_HEADER_BYTES + n);
    if (!w) {
        *err = *err ? *err : SEQ_ENOMEM;
        return NULL;
    }
    w->c = c;
    w->len = SEQ_FRAME_HEADER_BYTES + n;
    seq_frame_header(w->data, (uint32_t)n);
    return w;
}

static int frame_send(client *c, write_req *w)
{
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

static int send_response(client *c, const Seq__ClientResponse *resp)
{
    int err;
    write_req *w = frame_new(c, seq__client_response__get_packed_size(resp), &err);
    if (!w)
        return err;
    seq__client_response__pack(resp, w->data + SEQ_FRAME_HEADER_BYTES);
    return frame_send(c, w);
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

/* A subscribed connection carries only batches from now on: it moves to the
 * subscription thread (lib/substream.h) once every reply queued before the
 * subscribe has been written (a dup of the socket goes over; this handle
 * closes). */
static void hand_over(client *c)
{
    uv_os_fd_t fd;
    int dup_fd = -1;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        dup_fd = dup(fd);
    if (dup_fd < 0) {
        client_close(c, "cannot hand the subscription over");
        return;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    int rc = seq_substream_adopt(c->api->stream, dup_fd, c->sub_request_id, c->ns, c->ns_count, c->next_height);
    c->handed_over = true;
    client_close(c, rc == 0 ? "handed to the subscription thread" : seq_strerror(rc));
}

static uint64_t store_height(seq_api *a)
{
    seq_store_tip tip;
    return seq_store_tip_get(a->cfg.store, &tip) == 0 ? tip.height : 0;
}

void seq_api_delivered(seq_api *a, const seq_block *b, const seq_cert *cert)
{
    seq_substream_tip(a->stream, b, cert);
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

/* A submitted transaction the request can carry: present, and within the
 * format's payload limit (else it is TOO_LARGE without asking the node). */
static bool submit_shape_ok(const Seq__Tx *tx)
{
    return tx && tx->payload.len <= SEQ_TX_PAYLOAD_BYTES_MAX;
}

/* The id of a transaction the node refused before hashing it. */
static void submit_id_fill(const Seq__Tx *tx, seq_hash *id)
{
    if (!seq_hash_is_zero(id))
        return;
    seq_tx t = {.ns = tx->ns, .len = (uint32_t)tx->payload.len, .data = tx->payload.data};
    seq_tx_compute_id(&t);
    *id = t.id;
}

static void submit_result_set(Seq__SubmitResult *result, int rc, bool keyed, const seq_hash *id)
{
    result->status = submit_status(rc);
    result->reason = rc == 0               ? (char *)""
                     : rc == SEQ_EEXISTS   ? (char *)"client key already used for another transaction"
                     : rc == SEQ_EINVAL && keyed ? (char *)"client key must be 1 to 64 bytes"
                                           : (char *)seq_strerror(rc);
    if (rc != SEQ_ETOOBIG)
        result->id = (ProtobufCBinaryData){.len = SEQ_HASH_BYTES, .data = (uint8_t *)id->b};
}

/* The verdict on one submitted transaction: results[i] and ids[i]. */
static void submit_one(client *c, const Seq__SubmitRequest *req, size_t i, Seq__SubmitResult *result, seq_hash *id)
{
    const Seq__Tx *tx = req->txs[i];
    const ProtobufCBinaryData *key = req->n_client_keys ? &req->client_keys[i] : NULL;
    int rc = SEQ_ETOOBIG;
    memset(id, 0, sizeof *id);
    if (submit_shape_ok(tx)) {
        rc = c->api->cfg.hooks.tx.submit(c->api->cfg.hooks.ctx, tx->ns, tx->payload.data, (uint32_t)tx->payload.len,
                                      key ? key->data : NULL, key ? key->len : 0, id);
        submit_id_fill(tx, id);
    }
    submit_result_set(result, rc, key != NULL, id);
}

/* A batch without client keys, through the node's submit_many: one tx-index
 * lookup for all its ids (one per transaction was ~3% of a loaded node's
 * loop thread). Transactions the format refuses never reach the node. */
static int submit_batch(client *c, const Seq__SubmitRequest *req, Seq__SubmitResult *results, seq_hash *ids)
{
    size_t n = req->n_txs;
    seq_tx *txs = malloc(n * sizeof *txs);
    int *rcs = malloc(n * sizeof *rcs);
    seq_hash *got = malloc(n * sizeof *got);
    uint32_t *at = malloc(n * sizeof *at); /* request index of each transaction passed on */
    int err = txs && rcs && got && at ? 0 : SEQ_ENOMEM;
    uint32_t m = 0;
    for (size_t i = 0; !err && i < n; i++) {
        const Seq__Tx *tx = req->txs[i];
        memset(&ids[i], 0, sizeof ids[i]);
        if (!submit_shape_ok(tx)) {
            submit_result_set(&results[i], SEQ_ETOOBIG, false, &ids[i]);
            continue;
        }
        txs[m] = (seq_tx){.ns = tx->ns, .len = (uint32_t)tx->payload.len, .data = tx->payload.data};
        at[m++] = (uint32_t)i;
    }
    if (!err && m > 0)
        c->api->cfg.hooks.tx.submit_many(c->api->cfg.hooks.ctx, txs, m, rcs, got);
    for (uint32_t k = 0; !err && k < m; k++) {
        uint32_t i = at[k];
        ids[i] = got[k];
        submit_id_fill(req->txs[i], &ids[i]);
        submit_result_set(&results[i], rcs[k], false, &ids[i]);
    }
    free(txs);
    free(rcs);
    free(got);
    free(at);
    return err;
}

static void on_submit(client *c, uint64_t rid, const Seq__SubmitRequest *req)
{
    size_t n = req->n_txs;
    if (n == 0 || n > SEQ_GOSSIP_TXS_MAX) {
        send_error(c, rid, SEQ_EINVAL, "submit carries 1 to 4096 transactions");
        return;
    }
    if (req->n_client_keys != 0 && req->n_client_keys != n) {
        send_error(c, rid, SEQ_EINVAL, "client_keys: none, or one per transaction (empty for none)");
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
        results[i] = (Seq__SubmitResult)SEQ__SUBMIT_RESULT__INIT;
        ptrs[i] = &results[i];
    }
    if (req->n_client_keys == 0 && c->api->cfg.hooks.tx.submit_many) {
        if (submit_batch(c, req, results, ids) != 0) {
            send_error(c, rid, SEQ_ENOMEM, "out of memory");
            goto out;
        }
    } else {
        for (size_t i = 0; i < n; i++)
            submit_one(c, req, i, &results[i], &ids[i]);
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
    if (c->queued == 0) {
        hand_over(c);
    } else if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
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

/* A finalized transaction's reply: where it is and what proves it (header,
 * certificate with its path, the inclusion proof of its leaf). */
typedef struct {
    seq_block *block;
    seq_batch *batch; /* for header, certificate and path */
    seq_nsproof proof;
    Seq__BlockHeader header;
    Seq__Certificate cert;
    ProtobufCBinaryData sigs[SEQ_VALIDATORS_MAX];
    Seq__BlockHeader *path;
    Seq__BlockHeader **path_ptrs;
    Seq__NmtNode nodes[SEQ_NSPROOF_NODES_MAX];
    Seq__NmtNode *node_ptrs[SEQ_NSPROOF_NODES_MAX];
    Seq__NamespaceProof pb_proof;
} finalized_reply;

static void finalized_reply_free(finalized_reply *f)
{
    seq_block_free(f->block);
    seq_batch_free(f->batch);
    free(f->path);
    free(f->path_ptrs);
}

static int finalized_fill(seq_store *st, uint64_t height, uint32_t index, finalized_reply *f,
                          Seq__TxStatusReply *reply)
{
    seq_cert cert;
    int rc = seq_store_block_get(st, height, &f->block);
    if (rc == 0)
        rc = seq_store_cert_get(st, height, &cert);
    if (rc == 0 && index >= f->block->tx_count)
        rc = SEQ_ECORRUPT;
    if (rc == 0)
        rc = seq_nsproof_build_range(f->block, index, 1, &f->proof);
    if (rc == 0)
        rc = seq_batch_make_proved(st, f->block, &cert, f->block->txs[index].ns, &f->proof, &f->batch);
    if (rc == 0)
        rc = seq_pb_cert_set(&f->cert, f->sigs, &f->batch->cert);
    uint32_t path_len = rc == 0 ? f->batch->path_len : 0;
    if (rc == 0 && (!(f->path = calloc(path_len + 1, sizeof *f->path)) ||
                    !(f->path_ptrs = calloc(path_len + 1, sizeof *f->path_ptrs))))
        rc = SEQ_ENOMEM;
    if (rc)
        return rc;
    for (uint32_t i = 0; i < path_len; i++) {
        seq_pb_header_set(&f->path[i], &f->batch->cert_path[i]);
        f->path_ptrs[i] = &f->path[i];
    }
    for (uint32_t i = 0; i < f->proof.node_count; i++) {
        const seq_nmt_node *n = &f->proof.nodes[i];
        f->nodes[i] = (Seq__NmtNode)SEQ__NMT_NODE__INIT;
        f->nodes[i].min = n->min;
        f->nodes[i].max = n->max;
        f->nodes[i].digest = (ProtobufCBinaryData){.len = SEQ_HASH_BYTES, .data = (uint8_t *)n->digest.b};
        f->node_ptrs[i] = &f->nodes[i];
    }
    f->pb_proof = (Seq__NamespaceProof)SEQ__NAMESPACE_PROOF__INIT;
    f->pb_proof.start = f->proof.start;
    f->pb_proof.n_nodes = f->proof.node_count;
    f->pb_proof.nodes = f->node_ptrs;
    seq_pb_header_set(&f->header, &f->block->h);
    reply->status = SEQ__TX_STATUS_REPLY__STATUS__FINALIZED;
    reply->height = height;
    reply->index = index;
    reply->ns = f->block->txs[index].ns;
    reply->block_hash = (ProtobufCBinaryData){.len = SEQ_HASH_BYTES, .data = f->block->hash.b};
    reply->header = &f->header;
    reply->cert = &f->cert;
    reply->n_cert_path = path_len;
    reply->cert_path = f->path_ptrs;
    reply->proof = &f->pb_proof;
    return 0;
}

/* The id a status request names: by id, or by the client key it was
 * submitted with. False (and an error sent) when neither works. */
static bool tx_status_id(client *c, uint64_t rid, const Seq__TxStatusRequest *req, seq_hash *id, bool *known)
{
    const seq_api_hooks *h = &c->api->cfg.hooks;
    *known = true;
    if (req->client_key.len > 0) {
        if (req->id.len != 0) {
            send_error(c, rid, SEQ_EINVAL, "ask by id or by client key, not both");
            return false;
        }
        *known = h->tx.key_lookup(h->ctx, req->client_key.data, req->client_key.len, id);
        if (!*known)
            memset(id, 0, sizeof *id);
        return true;
    }
    if (req->id.len != SEQ_HASH_BYTES) {
        send_error(c, rid, SEQ_EDECODE, "transaction id must be 32 bytes");
        return false;
    }
    memcpy(id->b, req->id.data, SEQ_HASH_BYTES);
    return true;
}

static void on_tx_status(client *c, uint64_t rid, const Seq__TxStatusRequest *req)
{
    const seq_api_hooks *h = &c->api->cfg.hooks;
    seq_hash id;
    bool known;
    if (!tx_status_id(c, rid, req, &id, &known))
        return;
    Seq__TxStatusReply reply = SEQ__TX_STATUS_REPLY__INIT;
    reply.id = (ProtobufCBinaryData){.len = SEQ_HASH_BYTES, .data = id.b};
    reply.status = SEQ__TX_STATUS_REPLY__STATUS__UNKNOWN;
    finalized_reply fin = {0};
    uint64_t height;
    uint32_t index;
    int reason = 0;
    if (!known) {
        reply.id.len = 0;
    } else if (seq_store_tx_find(c->api->cfg.store, &id, &height, &index) == 0) {
        int rc = finalized_fill(c->api->cfg.store, height, index, &fin, &reply);
        if (rc) {
            finalized_reply_free(&fin);
            send_error(c, rid, rc, "cannot read the finalized block of this transaction");
            return;
        }
    } else {
        int fate = h->tx.tx_fate(h->ctx, &id, &reason);
        if (fate == SEQ_TX_PENDING)
            reply.status = SEQ__TX_STATUS_REPLY__STATUS__PENDING;
        else if (fate == SEQ_TX_DROPPED) {
            reply.status = SEQ__TX_STATUS_REPLY__STATUS__DROPPED;
            reply.reason = (char *)seq_drop_reason_name(reason);
        }
    }
    Seq__ClientResponse resp = SEQ__CLIENT_RESPONSE__INIT;
    resp.request_id = rid;
    resp.body_case = SEQ__CLIENT_RESPONSE__BODY_TX_STATUS;
    resp.tx_status = &reply;
    (void)send_response(c, &resp);
    finalized_reply_free(&fin);
}

/* One request frame. A frame that is not a ClientRequest closes the client:
 * after garbage the stream cannot be trusted to be in sync. */
static void on_frame(client *c, const uint8_t *data, size_t len)
{
    seq_pb_arena arena;
    seq_pb_arena_init(&arena, len);
    Seq__ClientRequest *req = seq__client_request__unpack(&arena.allocator, len, data);
    if (!req) {
        seq_pb_arena_release(&arena);
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
    seq_pb_arena_release(&arena); /* req with it */
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
    /* after a subscribe the client's frames are not read: the connection is
     * on its way to the subscription thread */
    while (!c->closing && !c->subscribed && seq_framer_next(&c->framer, &frame, &len) == 1)
        on_frame(c, frame, len);
    /* backpressure: a client that does not read its replies is not read */
    if (!c->closing && c->queued > c->api->cfg.send_queue_bytes_max && c->reading) {
        uv_read_stop(s);
        c->reading = false;
    }
}

static void maybe_resume_reading(client *c)
{
    if (!c->closing && !c->subscribed && !c->reading && c->queued <= c->api->cfg.send_queue_bytes_max / 2) {
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
    seq_substream_config sc = {.store = cfg->store, .send_queue_bytes_max = cfg->send_queue_bytes_max,
                               .stall_ms = cfg->subscriber_stall_ms, .cache_bytes = BATCH_CACHE_BYTES,
                               .block_cache_bytes = BLOCK_CACHE_BYTES};
    if (seq_substream_start(&a->stream, &sc) != 0) {
        free(a);
        return SEQ_ENOMEM;
    }
    uv_tcp_init(cfg->loop, &a->listener);
    a->listener.data = a;
    a->handles_open = 1;
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
uint32_t seq_api_subscribers(const seq_api *a) { return seq_substream_count(a->stream); }
uint64_t seq_api_slow_disconnects(const seq_api *a) { return seq_substream_slow_disconnects(a->stream); }

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
    seq_substream_stop(a->stream);
    a->stream = NULL;
}
