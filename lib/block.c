/* Blocks: the canonical header encoding and hash, building a block from a
 * batch, checking a received one, copies and the canonical block encoding.
 * A block owns its txs array and one arena holding every payload. */
#include "types.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errors.h"
#include "nmt_tree.h"

_Static_assert(SEQ_HEADER_BYTES == 8 + 8 + 8 + SEQ_HASH_BYTES + 8 + 4 + 8 + SEQ_HASH_BYTES + 4,
               "header layout");
_Static_assert(SEQ_TX_HEADER_BYTES == 8 + 4, "tx header layout");
_Static_assert((uint64_t)SEQ_BLOCK_TXS_MAX * SEQ_TX_HEADER_BYTES < SEQ_BLOCK_BYTES_MAX,
               "a full block of empty txs fits the byte limit");

/* ---- header --------------------------------------------------------------- */

void seq_header_encode(const seq_header *h, uint8_t out[SEQ_HEADER_BYTES])
{
    seq_enc e;
    seq_enc_init(&e, out, SEQ_HEADER_BYTES);
    seq_enc_u64(&e, h->chain_id);
    seq_enc_u64(&e, h->height);
    seq_enc_u64(&e, h->view);
    seq_enc_bytes(&e, h->parent.b, SEQ_HASH_BYTES);
    seq_enc_u64(&e, h->parent_view);
    seq_enc_u32(&e, h->leader);
    seq_enc_u64(&e, h->timestamp_ms);
    seq_enc_bytes(&e, h->payload_root.b, SEQ_HASH_BYTES);
    seq_enc_u32(&e, h->tx_count);
    SEQ_ASSERT(!e.overflow && e.len == SEQ_HEADER_BYTES);
}

int seq_header_decode(seq_header *h, const uint8_t *in, size_t len)
{
    SEQ_ASSERT(h);
    if (!in || len != SEQ_HEADER_BYTES)
        return SEQ_EDECODE;
    seq_dec d;
    seq_dec_init(&d, in, len);
    h->chain_id = seq_dec_u64(&d);
    h->height = seq_dec_u64(&d);
    h->view = seq_dec_u64(&d);
    seq_dec_bytes(&d, h->parent.b, SEQ_HASH_BYTES);
    h->parent_view = seq_dec_u64(&d);
    h->leader = seq_dec_u32(&d);
    h->timestamp_ms = seq_dec_u64(&d);
    seq_dec_bytes(&d, h->payload_root.b, SEQ_HASH_BYTES);
    h->tx_count = seq_dec_u32(&d);
    SEQ_ASSERT(seq_dec_done(&d));
    return 0;
}

void seq_header_hash(const seq_header *h, seq_hash *out)
{
    uint8_t enc[SEQ_HEADER_BYTES];
    seq_header_encode(h, enc);
    seq_hash_compute(out, enc, sizeof enc);
}

/* ---- checks on a batch of transactions ------------------------------------ */

/* Format limits (count, payload size, encoded block size); *payload_bytes is
 * the sum of payload lengths. */
static int txs_check_sizes(const seq_tx *txs, uint32_t n, size_t *payload_bytes)
{
    if (n > SEQ_BLOCK_TXS_MAX)
        return SEQ_ETOOBIG;
    if (n > 0 && !txs)
        return SEQ_EINVAL;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (txs[i].len > SEQ_TX_PAYLOAD_BYTES_MAX)
            return SEQ_ETOOBIG;
        if (txs[i].len > 0 && !txs[i].data)
            return SEQ_EINVAL;
        sum += txs[i].len;
    }
    if (SEQ_HEADER_BYTES + (uint64_t)n * SEQ_TX_HEADER_BYTES + sum > SEQ_BLOCK_BYTES_MAX)
        return SEQ_ETOOBIG;
    *payload_bytes = (size_t)sum;
    return 0;
}

static int check_sorted(const seq_tx *txs, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        if (txs[i - 1].ns > txs[i].ns)
            return SEQ_EORDER;
    return 0;
}

static int cmp_hash(const void *a, const void *b)
{
    return memcmp(a, b, SEQ_HASH_BYTES);
}

/* Sorting a copy of the ids: O(n log n), bounded by SEQ_BLOCK_TXS_MAX. */
static int check_no_duplicates(const seq_tx *txs, uint32_t n)
{
    if (n < 2)
        return 0;
    seq_hash *ids = malloc((size_t)n * sizeof *ids);
    if (!ids)
        return SEQ_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        ids[i] = txs[i].id;
    qsort(ids, n, sizeof *ids, cmp_hash);
    int rc = 0;
    for (uint32_t i = 1; i < n && rc == 0; i++)
        if (seq_hash_eq(&ids[i - 1], &ids[i]))
            rc = SEQ_EDUPLICATE;
    free(ids);
    return rc;
}

/* ---- allocation ----------------------------------------------------------- */

static seq_block *block_alloc(uint32_t n, size_t payload_bytes)
{
    seq_block *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    /* At least one element each, so pointers into them are never NULL-based. */
    b->txs = calloc(n > 0 ? n : 1, sizeof *b->txs);
    if (!b->txs)
        goto err_after_block;
    b->arena = malloc(payload_bytes > 0 ? payload_bytes : 1);
    if (!b->arena)
        goto err_after_txs;
    b->tx_count = n;
    b->payload_bytes = payload_bytes;
    return b;

err_after_txs:
    free(b->txs);
err_after_block:
    free(b);
    return NULL;
}

void seq_block_free(seq_block *b)
{
    if (!b)
        return;
    seq_nmt_tree_free(b->tree);
    free(b->tree);
    free(b->arena);
    free(b->txs);
    free(b);
}

/* Copies txs[order[i]] (or txs[i] when order is NULL) into b and computes each
 * id from the copied contents, unless ided (seq_block_build_ided): ids
 * given by the caller are otherwise never trusted. */
static void block_fill(seq_block *b, const seq_tx *txs, const uint32_t *order, bool ided)
{
    size_t off = 0;
    for (uint32_t i = 0; i < b->tx_count; i++) {
        const seq_tx *src = &txs[order ? order[i] : i];
        seq_tx *dst = &b->txs[i];
        dst->ns = src->ns;
        dst->len = src->len;
        dst->data = b->arena + off;
        if (src->len > 0)
            memcpy(b->arena + off, src->data, src->len);
        off += src->len;
        if (ided)
            dst->id = src->id;
        else
            seq_tx_compute_id(dst);
    }
    SEQ_ASSERT(off == b->payload_bytes);
}

int seq_block_tree_keep(seq_block *b)
{
    SEQ_ASSERT(b);
    if (b->tree)
        return 0;
    seq_nmt_tree *t = malloc(sizeof *t);
    if (!t)
        return SEQ_ENOMEM;
    int rc = seq_nmt_tree_build(t, b->txs, b->tx_count);
    if (rc) {
        free(t);
        return rc;
    }
    b->tree = t;
    return 0;
}

/* Hashes b's namespaced Merkle tree, kept in b, and gives its payload root
 * (the same as seq_payload_root's, as tests/unit/test_nmt_tree.c checks). */
static int block_tree(seq_block *b, seq_hash *root)
{
    int rc = seq_block_tree_keep(b);
    if (rc == 0)
        seq_nmt_tree_root(b->tree, root);
    return rc;
}

/* ---- build and check ------------------------------------------------------ */

typedef struct {
    seq_ns ns;
    uint32_t idx;
} ns_rank;

static int cmp_ns_rank(const void *pa, const void *pb)
{
    const ns_rank *a = pa, *b = pb;
    if (a->ns != b->ns)
        return a->ns < b->ns ? -1 : 1;
    return a->idx < b->idx ? -1 : (a->idx > b->idx);
}

/* order[i] = index of the i-th tx in block order: by namespace, stable
 * (qsort is not stable, so the original index breaks ties). */
static int stable_ns_order(const seq_tx *txs, uint32_t n, uint32_t **order_out)
{
    ns_rank *ranks = malloc((size_t)(n > 0 ? n : 1) * sizeof *ranks);
    uint32_t *order = calloc(n > 0 ? n : 1, sizeof *order);
    if (!ranks || !order) {
        free(ranks);
        free(order);
        return SEQ_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        ranks[i] = (ns_rank){.ns = txs[i].ns, .idx = i};
    qsort(ranks, n, sizeof *ranks, cmp_ns_rank);
    for (uint32_t i = 0; i < n; i++)
        order[i] = ranks[i].idx;
    free(ranks);
    *order_out = order;
    return 0;
}

static int block_build(seq_block **out, const seq_header *tmpl, const seq_tx *txs, uint32_t n, bool ided)
{
    SEQ_ASSERT(out && tmpl);
    size_t payload_bytes = 0;
    int rc = txs_check_sizes(txs, n, &payload_bytes);
    if (rc)
        return rc;
    uint32_t *order = NULL;
    rc = stable_ns_order(txs, n, &order);
    if (rc)
        return rc;
    seq_block *b = block_alloc(n, payload_bytes);
    if (!b) {
        rc = SEQ_ENOMEM;
        goto err_after_order;
    }
    block_fill(b, txs, order, ided);
    SEQ_ASSERT(check_sorted(b->txs, n) == 0);
    /* A batch with a repeated tx is refused here too, so that every built
     * block passes seq_block_new on the receiving side. */
    rc = check_no_duplicates(b->txs, n);
    if (rc)
        goto err_after_block;
    b->h = *tmpl;
    b->h.tx_count = n;
    rc = block_tree(b, &b->h.payload_root);
    if (rc)
        goto err_after_block;
    seq_header_hash(&b->h, &b->hash);
    free(order);
    *out = b;
    return 0;

err_after_block:
    seq_block_free(b);
err_after_order:
    free(order);
    return rc;
}

int seq_block_build(seq_block **out, const seq_header *tmpl, const seq_tx *txs, uint32_t n)
{
    return block_build(out, tmpl, txs, n, false);
}

int seq_block_build_ided(seq_block **out, const seq_header *tmpl, const seq_tx *txs, uint32_t n)
{
    return block_build(out, tmpl, txs, n, true);
}

static int block_new(seq_block **out, const seq_header *h, const seq_tx *txs, uint32_t n, bool ided)
{
    SEQ_ASSERT(out && h);
    size_t payload_bytes = 0;
    int rc = txs_check_sizes(txs, n, &payload_bytes);
    if (rc)
        return rc;
    if (h->tx_count != n)
        return SEQ_EMISMATCH;
    rc = check_sorted(txs, n);
    if (rc)
        return rc;
    seq_block *b = block_alloc(n, payload_bytes);
    if (!b)
        return SEQ_ENOMEM;
    block_fill(b, txs, NULL, ided);
    rc = check_no_duplicates(b->txs, n);
    if (rc)
        goto err_after_block;
    seq_hash root;
    rc = block_tree(b, &root);
    if (rc)
        goto err_after_block;
    if (!seq_hash_eq(&root, &h->payload_root)) {
        rc = SEQ_EMISMATCH;
        goto err_after_block;
    }
    b->h = *h;
    seq_header_hash(&b->h, &b->hash);
    *out = b;
    return 0;

err_after_block:
    seq_block_free(b);
    return rc;
}

int seq_block_new(seq_block **out, const seq_header *h, const seq_tx *txs, uint32_t n)
{
    return block_new(out, h, txs, n, false);
}

int seq_block_new_ided(seq_block **out, const seq_header *h, const seq_tx *txs, uint32_t n)
{
    return block_new(out, h, txs, n, true);
}

seq_block *seq_block_clone(const seq_block *b)
{
    SEQ_ASSERT(b);
    seq_block *c = block_alloc(b->tx_count, b->payload_bytes);
    if (!c)
        return NULL;
    c->h = b->h;
    c->hash = b->hash;
    size_t off = 0;
    for (uint32_t i = 0; i < b->tx_count; i++) {
        c->txs[i] = b->txs[i];
        c->txs[i].data = c->arena + off;
        if (b->txs[i].len > 0)
            memcpy(c->arena + off, b->txs[i].data, b->txs[i].len);
        off += b->txs[i].len;
    }
    SEQ_ASSERT(off == b->payload_bytes);
    if (b->tree && (!(c->tree = malloc(sizeof *c->tree)) || seq_nmt_tree_copy(c->tree, b->tree) != 0)) {
        free(c->tree);
        c->tree = NULL;
        seq_block_free(c);
        return NULL;
    }
    return c;
}

size_t seq_block_mem_bytes(const seq_block *b)
{
    SEQ_ASSERT(b);
    size_t tree = b->tree ? sizeof *b->tree + seq_nmt_tree_bytes(b->tree) : 0;
    return sizeof *b + b->payload_bytes + (size_t)b->tx_count * sizeof *b->txs + tree;
}

/* ---- canonical block encoding --------------------------------------------- */

size_t seq_block_encoded_size(const seq_block *b)
{
    SEQ_ASSERT(b);
    return SEQ_HEADER_BYTES + (size_t)b->tx_count * SEQ_TX_HEADER_BYTES + b->payload_bytes;
}

void seq_block_encode(const seq_block *b, uint8_t *out)
{
    size_t size = seq_block_encoded_size(b);
    seq_header_encode(&b->h, out);
    seq_enc e;
    seq_enc_init(&e, out + SEQ_HEADER_BYTES, size - SEQ_HEADER_BYTES);
    for (uint32_t i = 0; i < b->tx_count; i++) {
        seq_enc_u64(&e, b->txs[i].ns);
        seq_enc_u32(&e, b->txs[i].len);
        seq_enc_bytes(&e, b->txs[i].data, b->txs[i].len);
    }
    SEQ_ASSERT(!e.overflow && SEQ_HEADER_BYTES + e.len == size);
}

/* Reads count tx encodings into txs (payloads borrowed from in). */
static int decode_txs(seq_dec *d, seq_tx *txs, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        txs[i].ns = seq_dec_u64(d);
        txs[i].len = seq_dec_u32(d);
        if (d->err)
            return SEQ_EDECODE;
        if (txs[i].len > SEQ_TX_PAYLOAD_BYTES_MAX)
            return SEQ_ETOOBIG;
        txs[i].data = seq_dec_ref(d, txs[i].len);
        if (d->err)
            return SEQ_EDECODE;
    }
    return seq_dec_done(d) ? 0 : SEQ_EDECODE;
}

int seq_block_decode(seq_block **out, const uint8_t *in, size_t len)
{
    SEQ_ASSERT(out);
    if (len > SEQ_BLOCK_BYTES_MAX)
        return SEQ_ETOOBIG;
    if (!in || len < SEQ_HEADER_BYTES)
        return SEQ_EDECODE;
    seq_header h;
    int rc = seq_header_decode(&h, in, SEQ_HEADER_BYTES);
    if (rc)
        return rc;
    if (h.tx_count > SEQ_BLOCK_TXS_MAX)
        return SEQ_ETOOBIG;
    /* Each tx takes at least its 12-byte header: bounds the array below by
     * the input actually received, not by the claimed count. */
    if (h.tx_count > (len - SEQ_HEADER_BYTES) / SEQ_TX_HEADER_BYTES)
        return SEQ_EDECODE;

    seq_tx *txs = calloc(h.tx_count > 0 ? h.tx_count : 1, sizeof *txs);
    if (!txs)
        return SEQ_ENOMEM;
    seq_dec d;
    seq_dec_init(&d, in + SEQ_HEADER_BYTES, len - SEQ_HEADER_BYTES);
    rc = decode_txs(&d, txs, h.tx_count);
    if (rc == 0)
        rc = seq_block_new(out, &h, txs, h.tx_count);
    free(txs);
    return rc;
}
