/* The HTTP port's endpoints (table in lib/http.h). Each handler parses its
 * path and query strictly (decimal numbers only, 64 hex digits for an id,
 * no unknown or repeated parameter), answers from the store or through the
 * node's hooks, and replies JSON; a bad parameter is a 400 naming it. */
#include "http_internal.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batch_json.h"
#include "client.h"
#include "decimal.h"
#include "errors.h"
#include "log.h"
#include "msg.h"
#include "replica.h"

#define SEGMENTS_MAX 5
#define QUERY_PARAMS_MAX 4
#define QUERY_VALUE_BYTES 256       /* decoded; a client key is at most 64 */
#define BATCHES_LIMIT_DEFAULT 16
#define BATCHES_LIMIT_MAX 256
#define BATCHES_PAYLOAD_BYTES_MAX (8u << 20) /* one /batches reply stops past this (after one batch) */

typedef struct {
    uint32_t count;
    const char *s[SEGMENTS_MAX];
    size_t len[SEGMENTS_MAX];
} segments;

typedef struct {
    char key[16];
    uint8_t value[QUERY_VALUE_BYTES];
    size_t value_len;
} param;

typedef struct {
    uint32_t count;
    param p[QUERY_PARAMS_MAX];
} query;

/* ---- parsing ----------------------------------------------------------------- */

/* "/a/b/c" into segments; false for an empty segment or too many. */
static bool split_path(const http_request *r, segments *out)
{
    out->count = 0;
    const char *p = r->path, *end = r->path + r->path_len;
    if (p == end || *p != '/')
        return false;
    if (r->path_len == 1)
        return true;
    while (p < end) {
        const char *start = ++p;
        while (p < end && *p != '/')
            p++;
        if (p == start || out->count == SEGMENTS_MAX)
            return false;
        out->s[out->count] = start;
        out->len[out->count++] = (size_t)(p - start);
    }
    return true;
}

static bool seg_is(const segments *s, uint32_t i, const char *word)
{
    return i < s->count && s->len[i] == strlen(word) && memcmp(s->s[i], word, s->len[i]) == 0;
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static bool id_parse(const char *s, size_t len, seq_hash *out)
{
    if (len != 2 * SEQ_HASH_BYTES)
        return false;
    for (size_t i = 0; i < SEQ_HASH_BYTES; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out->b[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Percent-decoding ('+' is a space, as forms send it). False on a bad
 * escape or a value over the room. */
static bool url_decode(const char *s, size_t len, uint8_t *out, size_t room, size_t *out_len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (n == room)
            return false;
        if (s[i] == '%') {
            int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1, lo = i + 2 < len ? hex_digit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return false;
            out[n++] = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = s[i] == '+' ? ' ' : (uint8_t)s[i];
        }
    }
    *out_len = n;
    return true;
}

/* key=value&...; every key must be one of allowed (NULL-terminated) and
 * appear once. Replies 400 and returns false otherwise. */
static bool query_parse(http_conn *c, const http_request *r, const char *const *allowed, query *q)
{
    q->count = 0;
    const char *p = r->query, *end = r->query ? r->query + r->query_len : NULL;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        size_t klen = (size_t)((eq ? eq : stop) - p);
        const char *const *a = allowed;
        while (*a && (strlen(*a) != klen || memcmp(*a, p, klen) != 0))
            a++;
        if (!*a) {
            http_reply_error(c, 400, "unknown query parameter '%.*s'", (int)(klen > 32 ? 32 : klen), p);
            return false;
        }
        for (uint32_t i = 0; i < q->count; i++)
            if (strcmp(q->p[i].key, *a) == 0) {
                http_reply_error(c, 400, "query parameter '%s' given twice", *a);
                return false;
            }
        SEQ_ASSERT(q->count < QUERY_PARAMS_MAX && strlen(*a) < sizeof q->p[0].key);
        param *pr = &q->p[q->count];
        snprintf(pr->key, sizeof pr->key, "%s", *a);
        const char *v = eq ? eq + 1 : stop;
        if (!eq || v == stop || !url_decode(v, (size_t)(stop - v), pr->value, sizeof pr->value, &pr->value_len)) {
            http_reply_error(c, 400, "query parameter '%s': %s", *a,
                             !eq || v == stop ? "empty value" : "bad percent-encoding or too long");
            return false;
        }
        q->count++;
        p = amp ? amp + 1 : end;
    }
    return true;
}

static const param *query_get(const query *q, const char *key)
{
    for (uint32_t i = 0; i < q->count; i++)
        if (strcmp(q->p[i].key, key) == 0)
            return &q->p[i];
    return NULL;
}

/* A decimal query parameter in [min, max]; *present false when absent.
 * Replies 400 and returns false when malformed or out of range. */
static bool query_u64(http_conn *c, const query *q, const char *key, uint64_t min, uint64_t max, uint64_t *out,
                      bool *present)
{
    const param *p = query_get(q, key);
    *present = p != NULL;
    if (!p)
        return true;
    if (!seq_u64_parse((const char *)p->value, p->value_len, out) || *out < min || *out > max) {
        http_reply_error(c, 400, "query parameter '%s': want a decimal integer in %" PRIu64 "..%" PRIu64, key, min,
                         max);
        return false;
    }
    return true;
}

static bool method_is(http_conn *c, const http_request *r, int method, const char *allow)
{
    if (r->method == method)
        return true;
    char hdr[64];
    snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "error", json_string("method not allowed on this path"));
        json_object_set_new(o, "code", json_integer(405));
    }
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    http_reply(c, 405, "application/json", text, text ? strlen(text) : 0, hdr);
    return false;
}

/* ---- JSON helpers ------------------------------------------------------------ */

static json_t *u64_json(uint64_t v)
{
    if (v <= INT64_MAX)
        return json_integer((json_int_t)v);
    char s[SEQ_U64_DIGITS_MAX + 1];
    snprintf(s, sizeof s, "%" PRIu64, v);
    return json_string(s);
}

static json_t *hash_json(const seq_hash *h)
{
    char s[2 * SEQ_HASH_BYTES + 1];
    seq_hex(s, h->b, SEQ_HASH_BYTES);
    return json_string(s);
}

static uint64_t tip_height(seq_http *h)
{
    seq_store_tip tip;
    return seq_store_tip_get(h->cfg.store, &tip) == 0 ? tip.height : 0;
}

/* ---- health, status, metrics ------------------------------------------------- */

static void metrics_fill(seq_http *h, seq_metrics *m)
{
    memset(m, 0, sizeof *m);
    h->cfg.hooks.metrics(h->cfg.hooks.ctx, m);
    m->http_connections = h->conn_count;
    m->http_streams = h->stream_count;
    m->http_requests_total = h->requests;
    m->http_events_live_total = h->events_live;
    m->http_events_stored_total = h->events_stored;
}

static void on_healthz(http_conn *c)
{
    json_t *o = json_object();
    if (o)
        json_object_set_new(o, "ok", json_true());
    http_reply_json(c, 200, o);
}

static void on_status(http_conn *c)
{
    seq_metrics m;
    metrics_fill(c->srv, &m);
    json_t *o = json_object();
    struct {
        const char *key;
        json_t *value;
    } fields[] = {
        {"chain_id", u64_json(m.chain_id)},
        {"validator", json_integer(m.self)},
        {"name", json_stringn(m.name, strnlen(m.name, sizeof m.name))},
        {"validators", json_integer(m.validators)},
        {"height", u64_json(m.height)},
        {"view", u64_json(m.view)},
        {"leader", json_integer(m.leader)},
        {"peers", json_integer(m.peers_connected)},
        {"sync_lag_blocks", u64_json(m.sync_lag_blocks)},
        {"mempool_txs", u64_json(m.mempool_txs)},
        {"mempool_bytes", u64_json(m.mempool_bytes)},
        {"finalized_txs", u64_json(m.finalized_txs_total)},
        {"api_subscribers", json_integer(m.api_subscribers)},
        {"http_streams", json_integer(m.http_streams)},
        {"uptime_seconds", u64_json(m.uptime_seconds)},
    };
    bool ok = o != NULL;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (ok && fields[i].value) {
            ok = json_object_set_new(o, fields[i].key, fields[i].value) == 0; /* stolen either way */
        } else {
            json_decref(fields[i].value);
            ok = false;
        }
    }
    if (!ok) {
        json_decref(o);
        o = NULL;
    }
    http_reply_json(c, 200, o);
}

static void on_metrics(http_conn *c)
{
    seq_metrics m;
    metrics_fill(c->srv, &m);
    char *text = malloc(SEQ_METRICS_TEXT_BYTES_MAX);
    size_t len;
    if (!text || seq_metrics_render(&m, text, SEQ_METRICS_TEXT_BYTES_MAX, &len) != 0) {
        free(text);
        http_reply_error(c, 500, "cannot render the metrics");
        return;
    }
    http_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
}

/* ---- POST /v1/tx --------------------------------------------------------------- */

typedef struct {
    seq_ns ns;
    uint8_t *data;
    uint32_t len;
    const char *key;     /* into the JSON document */
    size_t key_len;
    bool too_large;      /* decoded past SEQ_TX_PAYLOAD_BYTES_MAX: a verdict, not a bad request */
} submit_tx;

static bool ns_from_json(const json_t *v, seq_ns *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (seq_ns)json_integer_value(v);
        return true;
    }
    return json_is_string(v) && seq_u64_parse(json_string_value(v), json_string_length(v), out);
}

/* One {"ns","data","client_key"?} object; err names the field. */
static bool tx_from_json(const json_t *o, submit_tx *t, char *err, size_t err_len)
{
    const char *key;
    const json_t *v;
    if (!json_is_object(o)) {
        seq_err_set(err, err_len, "want an object {\"ns\", \"data\", \"client_key\"}");
        return false;
    }
    json_object_foreach((json_t *)o, key, v)
    {
        if (strcmp(key, "ns") && strcmp(key, "data") && strcmp(key, "client_key")) {
            seq_err_set(err, err_len, "unknown field '%.32s'", key);
            return false;
        }
    }
    const json_t *ns = json_object_get(o, "ns"), *data = json_object_get(o, "data");
    const json_t *ck = json_object_get(o, "client_key");
    if (!ns || !ns_from_json(ns, &t->ns)) {
        seq_err_set(err, err_len, "ns: want an unsigned integer (or its decimal string)");
        return false;
    }
    if (!json_is_string(data)) {
        seq_err_set(err, err_len, "data: want the payload in base64");
        return false;
    }
    if (ck && (!json_is_string(ck) || json_string_length(ck) == 0 ||
               json_string_length(ck) > SEQ_CLIENT_KEY_BYTES_MAX)) {
        seq_err_set(err, err_len, "client_key: want a string of 1..%d bytes", SEQ_CLIENT_KEY_BYTES_MAX);
        return false;
    }
    if (ck) {
        t->key = json_string_value(ck);
        t->key_len = json_string_length(ck);
    }
    size_t b64_len = json_string_length(data), cap = b64_len / 4 * 3 + 3, len = 0;
    if (cap > SEQ_TX_PAYLOAD_BYTES_MAX + 3) {
        t->too_large = true;
        return true;
    }
    if (!(t->data = malloc(cap + 1)) ||
        sodium_base642bin(t->data, cap, json_string_value(data), b64_len, NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        seq_err_set(err, err_len, "data: not base64 (standard alphabet, with padding)");
        return false;
    }
    t->too_large = len > SEQ_TX_PAYLOAD_BYTES_MAX;
    t->len = (uint32_t)len;
    return true;
}

static const char *verdict_name(int rc)
{
    switch (rc) {
    case 0: return "accepted";
    case SEQ_ETOOBIG: return "too_large";
    case SEQ_EFULL:
    case SEQ_ENS_FULL: return "mempool_full";
    case SEQ_EDUPLICATE: return "duplicate";
    case SEQ_EEXISTS: return "key_conflict";
    case SEQ_EIO: return "unavailable";
    default: return "invalid";
    }
}

static int verdict_status(int rc)
{
    switch (rc) {
    case 0: return 202;
    case SEQ_ETOOBIG: return 413;
    case SEQ_EFULL:
    case SEQ_ENS_FULL:
    case SEQ_EIO: return 503;
    case SEQ_EDUPLICATE:
    case SEQ_EEXISTS: return 409;
    default: return 400;
    }
}

static json_t *submit_one(seq_http *h, const submit_tx *t, int *rc_out)
{
    seq_tx tx = {.ns = t->ns, .len = t->len, .data = t->data};
    seq_tx_compute_id(&tx);
    seq_hash id = tx.id;
    int rc = SEQ_ETOOBIG;
    if (!t->too_large)
        rc = h->cfg.hooks.tx.submit(h->cfg.hooks.ctx, t->ns, t->data, t->len, (const uint8_t *)t->key, t->key_len, &id);
    *rc_out = rc;
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (!t->too_large)
        json_object_set_new(o, "id", hash_json(&id));
    json_object_set_new(o, "status", json_string(verdict_name(rc)));
    if (rc != 0)
        json_object_set_new(o, "error", json_string(seq_strerror(rc)));
    return o;
}

static void submit_txs_free(submit_tx *txs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(txs[i].data);
    free(txs);
}

/* {"txs": [...]}: every transaction is checked before any is submitted. */
static void on_submit_batch(http_conn *c, const json_t *arr)
{
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    if (n == 0 || n > SEQ_GOSSIP_TXS_MAX) {
        http_reply_error(c, 400, "txs: want an array of 1..%d transactions", SEQ_GOSSIP_TXS_MAX);
        return;
    }
    submit_tx *txs = calloc(n, sizeof *txs);
    json_t *results = json_array();
    if (!txs || !results) {
        free(txs);
        json_decref(results);
        http_reply_error(c, 500, "out of memory");
        return;
    }
    char err[160];
    for (size_t i = 0; i < n; i++) {
        if (!tx_from_json(json_array_get(arr, i), &txs[i], err, sizeof err)) {
            http_reply_error(c, 400, "txs[%zu]: %s", i, err);
            submit_txs_free(txs, n);
            json_decref(results);
            return;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int rc;
        json_array_append_new(results, submit_one(c->srv, &txs[i], &rc));
    }
    submit_txs_free(txs, n);
    json_t *o = json_object();
    if (o)
        json_object_set_new(o, "results", results);
    else
        json_decref(results);
    http_reply_json(c, 200, o);
}

static void on_submit(http_conn *c, const http_request *r)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        http_reply_error(c, 400, "body is not JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return;
    }
    const json_t *arr = json_object_get(doc, "txs");
    if (arr && json_object_size(doc) != 1) {
        http_reply_error(c, 400, "a body with txs holds nothing else");
    } else if (arr) {
        on_submit_batch(c, arr);
    } else {
        submit_tx t = {0};
        char err[160];
        if (!tx_from_json(doc, &t, err, sizeof err)) {
            http_reply_error(c, 400, "%s", err);
        } else {
            int rc;
            json_t *o = submit_one(c->srv, &t, &rc);
            if (o && rc != 0)
                json_object_set_new(o, "code", json_integer(verdict_status(rc)));
            http_reply_json(c, verdict_status(rc), o);
        }
        free(t.data);
    }
    json_decref(doc);
}

/* ---- transaction status ------------------------------------------------------ */

/* header, cert, cert_path and the leaf's inclusion proof of a finalized tx. */
static int finalized_json(seq_store *st, uint64_t height, uint32_t index, json_t *o)
{
    seq_block *b = NULL;
    seq_batch *batch = NULL;
    seq_cert cert;
    seq_nsproof proof;
    int rc = seq_store_block_get(st, height, &b);
    if (rc == 0)
        rc = seq_store_cert_get(st, height, &cert);
    if (rc == 0 && index >= b->tx_count)
        rc = SEQ_ECORRUPT;
    if (rc == 0)
        rc = seq_nsproof_build_range(b, index, 1, &proof);
    if (rc == 0)
        rc = seq_batch_make_proved(st, b, &cert, b->txs[index].ns, &proof, &batch);
    json_t *path = rc == 0 ? json_array() : NULL;
    for (uint32_t i = 0; path && i < batch->path_len; i++)
        json_array_append_new(path, seq_header_to_json(&batch->cert_path[i]));
    if (rc == 0 && path) {
        json_object_set_new(o, "status", json_string("finalized"));
        json_object_set_new(o, "height", u64_json(height));
        json_object_set_new(o, "index", json_integer(index));
        json_object_set_new(o, "ns", u64_json(b->txs[index].ns));
        json_object_set_new(o, "block_hash", hash_json(&b->hash));
        json_object_set_new(o, "header", seq_header_to_json(&b->h));
        json_object_set_new(o, "cert", seq_cert_to_json(&batch->cert));
        json_object_set_new(o, "cert_path", path);
        json_object_set_new(o, "proof", seq_nsproof_to_json(&proof));
    } else if (rc == 0) {
        rc = SEQ_ENOMEM;
    }
    seq_batch_free(batch);
    seq_block_free(b);
    return rc;
}

static void tx_status_reply(http_conn *c, const seq_hash *id, const uint8_t *key, size_t key_len)
{
    seq_http *h = c->srv;
    json_t *o = json_object();
    if (!o) {
        http_reply_error(c, 500, "out of memory");
        return;
    }
    if (key)
        json_object_set_new(o, "client_key", json_stringn((const char *)key, key_len));
    uint64_t height;
    uint32_t index;
    int reason = 0;
    if (!id) {
        json_object_set_new(o, "status", json_string("unknown"));
        http_reply_json(c, 200, o);
        return;
    }
    json_object_set_new(o, "id", hash_json(id));
    if (seq_store_tx_find(h->cfg.store, id, &height, &index) == 0) {
        int rc = finalized_json(h->cfg.store, height, index, o);
        if (rc) {
            json_decref(o);
            http_reply_error(c, 500, "cannot read the finalized block of this transaction: %s", seq_strerror(rc));
            return;
        }
    } else {
        int fate = h->cfg.hooks.tx.tx_fate(h->cfg.hooks.ctx, id, &reason);
        json_object_set_new(o, "status", json_string(fate == SEQ_TX_PENDING   ? "pending"
                                                     : fate == SEQ_TX_DROPPED ? "dropped"
                                                                              : "unknown"));
        if (fate == SEQ_TX_DROPPED)
            json_object_set_new(o, "reason", json_string(seq_drop_reason_name(reason)));
    }
    http_reply_json(c, 200, o);
}

static void on_tx_by_id(http_conn *c, const http_request *r, const segments *s)
{
    static const char *const none[] = {NULL};
    query q;
    seq_hash id;
    if (!method_is(c, r, HTTP_GET, "GET") || !query_parse(c, r, none, &q))
        return;
    if (!id_parse(s->s[2], s->len[2], &id)) {
        http_reply_error(c, 400, "transaction id: want 64 hex digits");
        return;
    }
    tx_status_reply(c, &id, NULL, 0);
}

static void on_tx_root(http_conn *c, const http_request *r)
{
    if (r->method == HTTP_POST) {
        on_submit(c, r);
        return;
    }
    static const char *const keys[] = {"client_key", NULL};
    query q;
    if (!method_is(c, r, HTTP_GET, "GET, POST") || !query_parse(c, r, keys, &q))
        return;
    const param *k = query_get(&q, "client_key");
    if (!k || k->value_len > SEQ_CLIENT_KEY_BYTES_MAX) {
        http_reply_error(c, 400, "client_key: want 1..%d bytes (or GET /v1/tx/{id})", SEQ_CLIENT_KEY_BYTES_MAX);
        return;
    }
    const seq_http_hooks *hk = &c->srv->cfg.hooks;
    if (!hk->tx.key_lookup) {
        http_reply_error(c, 501, "this node does not look transactions up by client key");
        return;
    }
    seq_hash id;
    bool known = hk->tx.key_lookup(hk->ctx, k->value, k->value_len, &id);
    tx_status_reply(c, known ? &id : NULL, k->value, k->value_len);
}

/* ---- blocks and batches ------------------------------------------------------- */

static bool ns_segment(http_conn *c, const segments *s, uint32_t i, seq_ns *ns)
{
    if (seq_u64_parse(s->s[i], s->len[i], ns))
        return true;
    http_reply_error(c, 400, "namespace: want a decimal integer");
    return false;
}

static void on_block(http_conn *c, const http_request *r, const segments *s)
{
    static const char *const keys[] = {"ns", NULL};
    query q;
    uint64_t height, ns;
    bool has_ns;
    if (!method_is(c, r, HTTP_GET, "GET") || !query_parse(c, r, keys, &q) ||
        !query_u64(c, &q, "ns", 0, UINT64_MAX, &ns, &has_ns))
        return;
    if (!seq_u64_parse(s->s[2], s->len[2], &height) || height == 0) {
        http_reply_error(c, 400, "height: want a decimal integer from 1");
        return;
    }
    if (!has_ns) {
        http_reply_error(c, 400, "ns is required: /v1/blocks/{height}?ns=N gives namespace N's batch");
        return;
    }
    seq_batch *b = NULL;
    int rc = seq_batch_load(c->srv->cfg.store, height, ns, &b);
    if (rc == SEQ_ENOTFOUND) {
        http_reply_error(c, 404, "no finalized block at height %" PRIu64 " (the tip is %" PRIu64 ")", height,
                         tip_height(c->srv));
        return;
    }
    if (rc) {
        http_reply_error(c, 500, "cannot read block %" PRIu64 ": %s", height, seq_strerror(rc));
        return;
    }
    json_t *j = seq_batch_to_json(b, false);
    seq_batch_free(b);
    http_reply_json(c, 200, j);
}

static void on_batches(http_conn *c, const http_request *r, seq_ns ns)
{
    static const char *const keys[] = {"from", "limit", NULL};
    query q;
    uint64_t from, limit = BATCHES_LIMIT_DEFAULT;
    bool has_from, has_limit;
    if (!method_is(c, r, HTTP_GET, "GET") || !query_parse(c, r, keys, &q) ||
        !query_u64(c, &q, "from", 1, UINT64_MAX, &from, &has_from) ||
        !query_u64(c, &q, "limit", 1, BATCHES_LIMIT_MAX, &limit, &has_limit))
        return;
    if (!has_from) {
        http_reply_error(c, 400, "from is required (the first height, from 1)");
        return;
    }
    uint64_t tip = tip_height(c->srv), h = from;
    size_t bytes = 0;
    json_t *arr = json_array();
    for (; arr && h <= tip && h - from < limit && (h == from || bytes < BATCHES_PAYLOAD_BYTES_MAX); h++) {
        seq_batch *b = NULL;
        int rc = seq_batch_load(c->srv->cfg.store, h, ns, &b);
        if (rc) {
            json_decref(arr);
            http_reply_error(c, 500, "cannot read block %" PRIu64 ": %s", h, seq_strerror(rc));
            return;
        }
        for (uint32_t i = 0; i < b->tx_count; i++)
            bytes += b->txs[i].len;
        json_array_append_new(arr, seq_batch_to_json(b, false));
        seq_batch_free(b);
    }
    json_t *o = arr ? json_pack("{s:o,s:o,s:o}", "batches", arr, "next", u64_json(h), "tip", u64_json(tip)) : NULL;
    http_reply_json(c, 200, o);
}

static void on_stream(http_conn *c, const http_request *r, seq_ns ns)
{
    static const char *const keys[] = {"from", NULL};
    query q;
    uint64_t from = 0, last;
    bool has_from;
    if (!method_is(c, r, HTTP_GET, "GET") || !query_parse(c, r, keys, &q) ||
        !query_u64(c, &q, "from", 1, UINT64_MAX, &from, &has_from))
        return;
    if (r->last_event_id) { /* a reconnecting EventSource resumes after the last event it got */
        if (!seq_u64_parse(r->last_event_id, r->last_event_id_len, &last) || last == UINT64_MAX) {
            http_reply_error(c, 400, "Last-Event-ID: want the decimal height of the last event received");
            return;
        }
        from = last + 1;
    }
    http_stream_start(c, ns, from);
}

/* ---- routing ------------------------------------------------------------------ */

void http_route(http_conn *c, const http_request *r)
{
    segments s;
    seq_ns ns;
    if (!split_path(r, &s)) {
        http_reply_error(c, 404, "no such path");
    } else if (s.count == 1 && seg_is(&s, 0, "healthz")) {
        if (method_is(c, r, HTTP_GET, "GET"))
            on_healthz(c);
    } else if (s.count == 1 && seg_is(&s, 0, "status")) {
        if (method_is(c, r, HTTP_GET, "GET"))
            on_status(c);
    } else if (s.count == 1 && seg_is(&s, 0, "metrics")) {
        if (method_is(c, r, HTTP_GET, "GET"))
            on_metrics(c);
    } else if (s.count == 2 && seg_is(&s, 0, "v1") && seg_is(&s, 1, "tx")) {
        on_tx_root(c, r);
    } else if (s.count == 3 && seg_is(&s, 0, "v1") && seg_is(&s, 1, "tx")) {
        on_tx_by_id(c, r, &s);
    } else if (s.count == 3 && seg_is(&s, 0, "v1") && seg_is(&s, 1, "blocks")) {
        on_block(c, r, &s);
    } else if (s.count == 4 && seg_is(&s, 0, "v1") && seg_is(&s, 1, "namespaces") && seg_is(&s, 3, "batches")) {
        if (ns_segment(c, &s, 2, &ns))
            on_batches(c, r, ns);
    } else if (s.count == 4 && seg_is(&s, 0, "v1") && seg_is(&s, 1, "namespaces") && seg_is(&s, 3, "stream")) {
        if (ns_segment(c, &s, 2, &ns))
            on_stream(c, r, ns);
    } else {
        http_reply_error(c, 404, "no such path (see GET /v1/... in the README)");
    }
}
