/* The JSON form of a batch (lib/batch_json.h): writing it, and parsing it
 * back with strict shape checks and messages naming the field. */
#include "batch_json.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "decimal.h"
#include "errors.h"

#define WHERE_BYTES 64
#define B64 sodium_base64_VARIANT_ORIGINAL

/* ---- writing ------------------------------------------------------------------ */

static json_t *u64_json(uint64_t v)
{
    if (v <= INT64_MAX)
        return json_integer((json_int_t)v);
    char s[SEQ_U64_DIGITS_MAX + 1];
    snprintf(s, sizeof s, "%" PRIu64, v);
    return json_string(s);
}

static json_t *hex_json(const void *p, size_t len)
{
    SEQ_ASSERT(len <= SEQ_SIG_BYTES);
    char s[2 * SEQ_SIG_BYTES + 1];
    seq_hex(s, p, len);
    return json_string(s);
}

static json_t *base64_json(const uint8_t *p, uint32_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, B64);
    char *s = malloc(cap);
    if (!s)
        return NULL;
    sodium_bin2base64(s, cap, p, len, B64);
    json_t *j = json_string(s);
    free(s);
    return j;
}

/* Sets o[key] = v (stolen, NULL allowed); false once anything failed. */
static bool put(json_t *o, const char *key, json_t *v)
{
    return json_object_set_new(o, key, v) == 0;
}

static json_t *finish(json_t *o, bool ok)
{
    if (ok)
        return o;
    json_decref(o);
    return NULL;
}

json_t *seq_header_to_json(const seq_header *h)
{
    SEQ_ASSERT(h);
    json_t *o = json_object();
    bool ok = o && put(o, "chain_id", u64_json(h->chain_id)) && put(o, "height", u64_json(h->height)) &&
              put(o, "view", u64_json(h->view)) && put(o, "parent", hex_json(h->parent.b, SEQ_HASH_BYTES)) &&
              put(o, "parent_view", u64_json(h->parent_view)) && put(o, "leader", json_integer(h->leader)) &&
              put(o, "timestamp_ms", u64_json(h->timestamp_ms)) &&
              put(o, "payload_root", hex_json(h->payload_root.b, SEQ_HASH_BYTES)) &&
              put(o, "tx_count", json_integer(h->tx_count));
    return finish(o, ok);
}

json_t *seq_cert_to_json(const seq_cert *c)
{
    SEQ_ASSERT(c);
    json_t *o = json_object(), *signers = json_array(), *sigs = json_array();
    bool ok = o && signers && sigs;
    uint32_t k = 0;
    for (uint32_t i = 0; ok && i < SEQ_VALIDATORS_MAX && k < c->sig_count; i++) {
        if (!seq_bitmap_get(c->bitmap, i))
            continue;
        ok = json_array_append_new(signers, json_integer(i)) == 0 &&
             json_array_append_new(sigs, hex_json(c->sigs[k].b, SEQ_SIG_BYTES)) == 0;
        k++;
    }
    const char *kind = seq_vote_kind_name(c->kind);
    ok = ok && put(o, "kind", json_string(kind)) && put(o, "view", u64_json(c->view)) &&
         put(o, "hash", hex_json(c->hash.b, SEQ_HASH_BYTES)) && put(o, "signers", json_incref(signers)) &&
         put(o, "sigs", json_incref(sigs));
    json_decref(signers);
    json_decref(sigs);
    return finish(o, ok);
}

static json_t *node_json(const seq_nmt_node *n)
{
    json_t *o = json_object();
    bool ok = o && put(o, "min", u64_json(n->min)) && put(o, "max", u64_json(n->max)) &&
              put(o, "digest", hex_json(n->digest.b, SEQ_HASH_BYTES));
    return finish(o, ok);
}

json_t *seq_nsproof_to_json(const seq_nsproof *p)
{
    SEQ_ASSERT(p && p->node_count <= SEQ_NSPROOF_NODES_MAX);
    json_t *o = json_object(), *nodes = json_array();
    bool ok = o && nodes;
    for (uint32_t i = 0; ok && i < p->node_count; i++)
        ok = json_array_append_new(nodes, node_json(&p->nodes[i])) == 0;
    ok = ok && put(o, "start", json_integer(p->start)) && put(o, "nodes", json_incref(nodes));
    json_decref(nodes);
    return finish(o, ok);
}

static json_t *txs_json(const seq_batch *b)
{
    json_t *a = json_array();
    bool ok = a != NULL;
    for (uint32_t i = 0; ok && i < b->tx_count; i++) {
        const seq_tx *t = &b->txs[i];
        json_t *o = json_object();
        ok = o && put(o, "id", hex_json(t->id.b, SEQ_HASH_BYTES)) &&
             put(o, "index", json_integer((json_int_t)b->proof.start + i)) &&
             put(o, "data", base64_json(t->data, t->len));
        ok = json_array_append_new(a, finish(o, ok)) == 0 && ok;
    }
    return finish(a, ok);
}

static json_t *path_json(const seq_batch *b)
{
    json_t *a = json_array();
    bool ok = a != NULL;
    for (uint32_t i = 0; ok && i < b->path_len; i++)
        ok = json_array_append_new(a, seq_header_to_json(&b->cert_path[i])) == 0;
    return finish(a, ok);
}

json_t *seq_batch_to_json(const seq_batch *b, bool verified)
{
    SEQ_ASSERT(b && b->path_len <= SEQ_CERT_PATH_MAX);
    json_t *o = json_object();
    bool ok = o && put(o, "height", u64_json(b->header.height)) && put(o, "ns", u64_json(b->ns)) &&
              put(o, "block_hash", hex_json(b->block_hash.b, SEQ_HASH_BYTES)) &&
              put(o, "prev_batch_hash", hex_json(b->prev_batch_hash.b, SEQ_HASH_BYTES)) &&
              put(o, "tx_count", json_integer(b->tx_count)) && put(o, "txs", txs_json(b)) &&
              put(o, "header", seq_header_to_json(&b->header)) && put(o, "cert", seq_cert_to_json(&b->cert)) &&
              put(o, "cert_path", path_json(b)) && put(o, "proof", seq_nsproof_to_json(&b->proof)) &&
              put(o, "verified", json_boolean(verified));
    if (ok && b->final_by)
        ok = put(o, "final_by", u64_json(b->final_by));
    return finish(o, ok);
}

/* ---- parsing -------------------------------------------------------------------
 * Each reader names the field it refuses as where.key in err and returns
 * SEQ_EDECODE. */

static int bad(char *err, size_t err_len, const char *where, const char *key, const char *what)
{
    if (!*where && !key)
        where = "batch";
    seq_err_set(err, err_len, "%s%s%s: %s", where, *where && key ? "." : "", key ? key : "", what);
    return SEQ_EDECODE;
}

/* o must be an object holding exactly keys[0..n). */
static int shape_check(const json_t *o, const char *where, const char *const *keys, size_t n, char *err,
                       size_t err_len)
{
    if (!json_is_object(o))
        return bad(err, err_len, where, NULL, "not an object");
    for (size_t i = 0; i < n; i++)
        if (!json_object_get(o, keys[i]))
            return bad(err, err_len, where, keys[i], "missing");
    if (json_object_size(o) == n)
        return 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(key, keys[i]) == 0;
        if (!known)
            return bad(err, err_len, where, key, "unknown key");
    }
    SEQ_UNREACHABLE();
    return SEQ_EDECODE;
}

/* o[key]: a JSON integer >= 0 or a decimal string, at most max. */
static int u64_get(const json_t *o, const char *where, const char *key, uint64_t max, uint64_t *out, char *err,
                   size_t err_len)
{
    const json_t *v = json_object_get(o, key);
    uint64_t x;
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        x = (uint64_t)json_integer_value(v);
    else if (!json_is_string(v) || !seq_u64_parse(json_string_value(v), json_string_length(v), &x))
        return bad(err, err_len, where, key, "not an unsigned integer");
    if (x > max)
        return bad(err, err_len, where, key, "out of range");
    *out = x;
    return 0;
}

static int u32_get(const json_t *o, const char *where, const char *key, uint32_t max, uint32_t *out, char *err,
                   size_t err_len)
{
    uint64_t x;
    int rc = u64_get(o, where, key, max, &x, err, err_len);
    if (!rc)
        *out = (uint32_t)x;
    return rc;
}

/* A string of exactly 2 * len hex digits into out. */
static int hex_value(const json_t *v, const char *where, const char *key, void *out, size_t len, char *err,
                     size_t err_len)
{
    if (!json_is_string(v) || json_string_length(v) != 2 * len ||
        seq_unhex(out, len, json_string_value(v)) != 0)
        return bad(err, err_len, where, key, len == SEQ_SIG_BYTES ? "not 128 hex digits" : "not 64 hex digits");
    return 0;
}

static int hash_get(const json_t *o, const char *where, const char *key, seq_hash *out, char *err, size_t err_len)
{
    return hex_value(json_object_get(o, key), where, key, out->b, SEQ_HASH_BYTES, err, err_len);
}

int seq_header_from_json(const json_t *j, const char *where, seq_header *out, char *err, size_t err_len)
{
    static const char *const keys[] = {"chain_id", "height", "view", "parent", "parent_view",
                                       "leader", "timestamp_ms", "payload_root", "tx_count"};
    SEQ_ASSERT(where && out);
    seq_header h;
    int rc;
    if ((rc = shape_check(j, where, keys, sizeof keys / sizeof keys[0], err, err_len)) ||
        (rc = u64_get(j, where, "chain_id", UINT64_MAX, &h.chain_id, err, err_len)) ||
        (rc = u64_get(j, where, "height", UINT64_MAX, &h.height, err, err_len)) ||
        (rc = u64_get(j, where, "view", UINT64_MAX, &h.view, err, err_len)) ||
        (rc = hash_get(j, where, "parent", &h.parent, err, err_len)) ||
        (rc = u64_get(j, where, "parent_view", UINT64_MAX, &h.parent_view, err, err_len)) ||
        (rc = u32_get(j, where, "leader", UINT32_MAX, &h.leader, err, err_len)) ||
        (rc = u64_get(j, where, "timestamp_ms", UINT64_MAX, &h.timestamp_ms, err, err_len)) ||
        (rc = hash_get(j, where, "payload_root", &h.payload_root, err, err_len)) ||
        (rc = u32_get(j, where, "tx_count", SEQ_BLOCK_TXS_MAX, &h.tx_count, err, err_len)))
        return rc;
    *out = h;
    return 0;
}

static int kind_parse(const json_t *v, const char *where, uint8_t *kind, char *err, size_t err_len)
{
    static const uint8_t kinds[] = {SEQ_VOTE_NOTARIZE, SEQ_VOTE_NULLIFY, SEQ_VOTE_FINALIZE};
    for (size_t i = 0; json_is_string(v) && i < sizeof kinds; i++)
        if (strcmp(json_string_value(v), seq_vote_kind_name(kinds[i])) == 0) {
            *kind = kinds[i];
            return 0;
        }
    return bad(err, err_len, where, "kind", "not notarize, nullify or finalize");
}

/* signers (ascending indices) into the bitmap, sigs in the same order. */
static int signers_parse(const json_t *signers, const json_t *sigs, const char *where, seq_cert *c, char *err,
                         size_t err_len)
{
    if (!json_is_array(signers) || !json_is_array(sigs))
        return bad(err, err_len, where, json_is_array(signers) ? "sigs" : "signers", "not an array");
    size_t n = json_array_size(signers);
    if (n != json_array_size(sigs))
        return bad(err, err_len, where, "sigs", "not one per signer");
    if (n > SEQ_VALIDATORS_MAX)
        return bad(err, err_len, where, "signers", "more than the validators' limit");
    char at[WHERE_BYTES];
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(signers, i);
        json_int_t idx = json_is_integer(s) ? json_integer_value(s) : -1;
        snprintf(at, sizeof at, "%s.signers[%zu]", where, i);
        if (idx < 0 || idx >= SEQ_VALIDATORS_MAX)
            return bad(err, err_len, at, NULL, "not a validator index");
        if (i > 0 && idx <= json_integer_value(json_array_get(signers, i - 1)))
            return bad(err, err_len, at, NULL, "signers not in ascending order");
        seq_bitmap_set(c->bitmap, (uint32_t)idx);
        snprintf(at, sizeof at, "%s.sigs[%zu]", where, i);
        int rc = hex_value(json_array_get(sigs, i), at, NULL, c->sigs[i].b, SEQ_SIG_BYTES, err, err_len);
        if (rc)
            return rc;
    }
    c->sig_count = (uint32_t)n;
    return 0;
}

int seq_cert_from_json(const json_t *j, const char *where, seq_cert *out, char *err, size_t err_len)
{
    static const char *const keys[] = {"kind", "view", "hash", "signers", "sigs"};
    SEQ_ASSERT(where && out);
    seq_cert c;
    memset(&c, 0, sizeof c);
    int rc;
    if ((rc = shape_check(j, where, keys, sizeof keys / sizeof keys[0], err, err_len)) ||
        (rc = kind_parse(json_object_get(j, "kind"), where, &c.kind, err, err_len)) ||
        (rc = u64_get(j, where, "view", UINT64_MAX, &c.view, err, err_len)) ||
        (rc = hash_get(j, where, "hash", &c.hash, err, err_len)) ||
        (rc = signers_parse(json_object_get(j, "signers"), json_object_get(j, "sigs"), where, &c, err, err_len)))
        return rc;
    *out = c;
    return 0;
}

static int node_parse(const json_t *j, const char *where, seq_nmt_node *n, char *err, size_t err_len)
{
    static const char *const keys[] = {"min", "max", "digest"};
    int rc;
    if ((rc = shape_check(j, where, keys, sizeof keys / sizeof keys[0], err, err_len)) ||
        (rc = u64_get(j, where, "min", UINT64_MAX, &n->min, err, err_len)) ||
        (rc = u64_get(j, where, "max", UINT64_MAX, &n->max, err, err_len)) ||
        (rc = hash_get(j, where, "digest", &n->digest, err, err_len)))
        return rc;
    return 0;
}

int seq_nsproof_from_json(const json_t *j, const char *where, seq_nsproof *out, char *err, size_t err_len)
{
    static const char *const keys[] = {"start", "nodes"};
    SEQ_ASSERT(where && out);
    seq_nsproof p;
    memset(&p, 0, sizeof p);
    int rc;
    if ((rc = shape_check(j, where, keys, sizeof keys / sizeof keys[0], err, err_len)) ||
        (rc = u32_get(j, where, "start", SEQ_BLOCK_TXS_MAX, &p.start, err, err_len)))
        return rc;
    const json_t *nodes = json_object_get(j, "nodes");
    if (!json_is_array(nodes))
        return bad(err, err_len, where, "nodes", "not an array");
    if (json_array_size(nodes) > SEQ_NSPROOF_NODES_MAX)
        return bad(err, err_len, where, "nodes", "more than SEQ_NSPROOF_NODES_MAX");
    char at[WHERE_BYTES];
    for (size_t i = 0; i < json_array_size(nodes); i++) {
        snprintf(at, sizeof at, "%s.nodes[%zu]", where, i);
        if ((rc = node_parse(json_array_get(nodes, i), at, &p.nodes[i], err, err_len)))
            return rc;
    }
    p.node_count = (uint32_t)json_array_size(nodes);
    *out = p;
    return 0;
}

/* ---- the batch ------------------------------------------------------------------ */

/* Bytes a base64 string decodes to: exact for padded base64, an upper
 * bound for anything else (which fails to decode later). 0 for a non-string. */
static size_t base64_decoded_max(const json_t *data)
{
    if (!json_is_string(data))
        return 0;
    size_t len = json_string_length(data);
    const char *s = json_string_value(data);
    if (len % 4 != 0)
        return len / 4 * 3 + 3;
    size_t pad = (len >= 1 && s[len - 1] == '=') + (len >= 2 && s[len - 2] == '=');
    return len / 4 * 3 - pad;
}

/* Arrays of the batch and a bound of their payload bytes, before allocating. */
static int sizes_check(const json_t *j, uint32_t *tx_count, uint32_t *path_len, size_t *payload_bytes_max,
                       char *err, size_t err_len)
{
    const json_t *txs = json_object_get(j, "txs"), *path = json_object_get(j, "cert_path");
    if (!json_is_array(txs))
        return bad(err, err_len, "", "txs", "not an array");
    if (!json_is_array(path))
        return bad(err, err_len, "", "cert_path", "not an array");
    uint32_t declared;
    int rc = u32_get(j, "", "tx_count", SEQ_BLOCK_TXS_MAX, &declared, err, err_len);
    if (rc)
        return rc;
    if (json_array_size(txs) != declared)
        return bad(err, err_len, "", "tx_count", "not the number of txs");
    if (json_array_size(path) > SEQ_CERT_PATH_MAX) {
        bad(err, err_len, "", "cert_path", "longer than SEQ_CERT_PATH_MAX");
        return SEQ_ETOOBIG;
    }
    size_t bytes = 0;
    for (uint32_t i = 0; i < declared; i++)
        bytes += base64_decoded_max(json_object_get(json_array_get(txs, i), "data"));
    if (bytes > SEQ_BLOCK_BYTES_MAX) {
        bad(err, err_len, "", "txs", "payloads over SEQ_BLOCK_BYTES_MAX");
        return SEQ_ETOOBIG;
    }
    *tx_count = declared;
    *path_len = (uint32_t)json_array_size(path);
    *payload_bytes_max = bytes;
    return 0;
}

/* Decodes txs[i].data into *payloads (room left: *room), checks id and index. */
static int tx_parse(const json_t *j, uint32_t i, seq_batch *b, uint8_t **payloads, size_t *room, char *err,
                    size_t err_len)
{
    static const char *const keys[] = {"id", "index", "data"};
    char where[WHERE_BYTES];
    snprintf(where, sizeof where, "txs[%" PRIu32 "]", i);
    int rc;
    seq_hash id;
    uint32_t index;
    if ((rc = shape_check(j, where, keys, sizeof keys / sizeof keys[0], err, err_len)) ||
        (rc = hash_get(j, where, "id", &id, err, err_len)) ||
        (rc = u32_get(j, where, "index", SEQ_BLOCK_TXS_MAX, &index, err, err_len)))
        return rc;
    if (index != b->proof.start + i)
        return bad(err, err_len, where, "index", "not proof.start + its position");
    const json_t *data = json_object_get(j, "data");
    size_t len;
    const char *end;
    if (!json_is_string(data) ||
        sodium_base642bin(*payloads, *room, json_string_value(data), json_string_length(data), NULL, &len, &end,
                          B64) != 0 ||
        end != json_string_value(data) + json_string_length(data))
        return bad(err, err_len, where, "data", "not base64");
    if (len > SEQ_TX_PAYLOAD_BYTES_MAX) {
        bad(err, err_len, where, "data", "payload over SEQ_TX_PAYLOAD_BYTES_MAX");
        return SEQ_ETOOBIG;
    }
    seq_tx *t = &b->txs[i];
    *t = (seq_tx){.ns = b->ns, .len = (uint32_t)len, .data = *payloads};
    seq_tx_compute_id(t);
    if (!seq_hash_eq(&t->id, &id))
        return bad(err, err_len, where, "id", "not the hash of ns and data");
    *payloads += len;
    *room -= len;
    return 0;
}

static int path_parse(const json_t *path, seq_batch *b, char *err, size_t err_len)
{
    char where[WHERE_BYTES];
    for (uint32_t i = 0; i < b->path_len; i++) {
        snprintf(where, sizeof where, "cert_path[%" PRIu32 "]", i);
        int rc = seq_header_from_json(json_array_get(path, i), where, &b->cert_path[i], err, err_len);
        if (rc)
            return rc;
    }
    return 0;
}

/* Everything but the arrays sized before allocation; then those. */
static int batch_parse(const json_t *j, seq_batch *b, uint8_t *payloads, size_t room, bool *verified, char *err,
                       size_t err_len)
{
    uint64_t height;
    seq_hash block_hash;
    int rc;
    if ((rc = u64_get(j, "", "height", UINT64_MAX, &height, err, err_len)) ||
        (rc = u64_get(j, "", "ns", UINT64_MAX, &b->ns, err, err_len)) ||
        (rc = hash_get(j, "", "block_hash", &block_hash, err, err_len)) ||
        (rc = hash_get(j, "", "prev_batch_hash", &b->prev_batch_hash, err, err_len)) ||
        (rc = seq_header_from_json(json_object_get(j, "header"), "header", &b->header, err, err_len)) ||
        (rc = seq_cert_from_json(json_object_get(j, "cert"), "cert", &b->cert, err, err_len)) ||
        (rc = seq_nsproof_from_json(json_object_get(j, "proof"), "proof", &b->proof, err, err_len)) ||
        (rc = path_parse(json_object_get(j, "cert_path"), b, err, err_len)))
        return rc;
    if (height != b->header.height)
        return bad(err, err_len, "", "height", "not header.height");
    if (json_object_get(j, "final_by") &&
        (rc = u64_get(j, "", "final_by", UINT64_MAX, &b->final_by, err, err_len)) != 0)
        return rc;
    if (json_object_get(j, "final_by") && b->final_by <= height)
        return bad(err, err_len, "", "final_by", "not above height");
    seq_header_hash(&b->header, &b->block_hash);
    if (!seq_hash_eq(&block_hash, &b->block_hash))
        return bad(err, err_len, "", "block_hash", "not the hash of header");
    const json_t *v = json_object_get(j, "verified");
    if (!json_is_boolean(v))
        return bad(err, err_len, "", "verified", "not true or false");
    b->proof.count = b->tx_count;
    const json_t *txs = json_object_get(j, "txs");
    for (uint32_t i = 0; i < b->tx_count; i++)
        if ((rc = tx_parse(json_array_get(txs, i), i, b, &payloads, &room, err, err_len)))
            return rc;
    if (verified)
        *verified = json_is_true(v);
    return 0;
}

int seq_batch_from_json(const json_t *j, seq_batch **out, bool *verified, char *err, size_t err_len)
{
    static const char *const keys[] = {"height", "ns", "block_hash", "prev_batch_hash", "tx_count", "txs",
                                       "header", "cert", "cert_path", "proof", "verified", "final_by"};
    if (!out)
        return SEQ_EINVAL;
    /* final_by, the last key, is the only optional one. */
    size_t nkeys = sizeof keys / sizeof keys[0] - (json_object_get(j, "final_by") ? 0 : 1);
    *out = NULL;
    uint32_t tx_count, path_len;
    size_t payload_bytes_max;
    int rc;
    if ((rc = shape_check(j, "", keys, nkeys, err, err_len)) ||
        (rc = sizes_check(j, &tx_count, &path_len, &payload_bytes_max, err, err_len)))
        return rc;
    seq_batch *b;
    uint8_t *payloads;
    rc = seq_batch_alloc(&b, tx_count, payload_bytes_max, path_len, &payloads);
    if (rc) {
        seq_err_set(err, err_len, "batch: %s", seq_strerror(rc));
        return rc;
    }
    rc = batch_parse(j, b, payloads, payload_bytes_max, verified, err, err_len);
    if (rc) {
        seq_batch_free(b);
        return rc;
    }
    b->ids_from_payloads_ = true; /* each id was computed from its data (and had to match) */
    *out = b;
    return 0;
}
