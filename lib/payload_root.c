/* The payload root: a namespaced Merkle tree over a block's transactions
 * (types.h gives the exact leaf, inner and root encodings). */
#include "types.h"

#include <stdlib.h>

#include "codec.h"
#include "errors.h"

#define TAG_LEAF 0x00
#define TAG_INNER 0x01
#define TAG_ROOT 0x02
#define TAG_EMPTY 0x03

#define NODE_BYTES (8 + 8 + SEQ_HASH_BYTES)
#define LEAF_PREIMAGE_BYTES (1 + 8 + SEQ_HASH_BYTES)
#define INNER_PREIMAGE_BYTES (1 + 2 * NODE_BYTES)

typedef struct {
    seq_ns min;
    seq_ns max;
    seq_hash digest;
} nmt_node;

static void enc_node(seq_enc *e, const nmt_node *n)
{
    seq_enc_u64(e, n->min);
    seq_enc_u64(e, n->max);
    seq_enc_bytes(e, n->digest.b, SEQ_HASH_BYTES);
}

static void leaf_of(nmt_node *out, const seq_tx *tx)
{
    uint8_t pre[LEAF_PREIMAGE_BYTES];
    seq_enc e;
    seq_enc_init(&e, pre, sizeof pre);
    seq_enc_u8(&e, TAG_LEAF);
    seq_enc_u64(&e, tx->ns);
    seq_enc_bytes(&e, tx->id.b, SEQ_HASH_BYTES);
    SEQ_ASSERT(!e.overflow && e.len == sizeof pre);
    out->min = tx->ns;
    out->max = tx->ns;
    seq_hash_compute(&out->digest, pre, e.len);
}

/* out may alias l (the in-place reduction below relies on that). */
static void inner_of(nmt_node *out, const nmt_node *l, const nmt_node *r)
{
    uint8_t pre[INNER_PREIMAGE_BYTES];
    seq_enc e;
    seq_enc_init(&e, pre, sizeof pre);
    seq_enc_u8(&e, TAG_INNER);
    enc_node(&e, l);
    enc_node(&e, r);
    SEQ_ASSERT(!e.overflow && e.len == sizeof pre);
    seq_ns min = l->min < r->min ? l->min : r->min;
    seq_ns max = l->max > r->max ? l->max : r->max;
    seq_hash_compute(&out->digest, pre, e.len);
    out->min = min;
    out->max = max;
}

static void root_of(seq_hash *out, const nmt_node *root)
{
    uint8_t pre[1 + NODE_BYTES];
    seq_enc e;
    seq_enc_init(&e, pre, sizeof pre);
    seq_enc_u8(&e, TAG_ROOT);
    enc_node(&e, root);
    SEQ_ASSERT(!e.overflow && e.len == sizeof pre);
    seq_hash_compute(out, pre, e.len);
}

/* Bottom-up pairing where an odd last node moves up unchanged gives exactly
 * the RFC 6962 tree (left subtree = largest power of two < n), without
 * recursion, in one array of n nodes. */
int seq_payload_root(const seq_tx *txs, uint32_t n, seq_hash *out)
{
    SEQ_ASSERT(out);
    if (n == 0) {
        uint8_t tag = TAG_EMPTY;
        seq_hash_compute(out, &tag, 1);
        return 0;
    }
    if (n > SEQ_BLOCK_TXS_MAX)
        return SEQ_ETOOBIG;
    if (!txs)
        return SEQ_EINVAL;

    nmt_node *level = malloc((size_t)n * sizeof *level);
    if (!level)
        return SEQ_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        leaf_of(&level[i], &txs[i]);

    uint32_t width = n;
    while (width > 1) {
        uint32_t next = 0;
        for (uint32_t i = 0; i + 1 < width; i += 2)
            inner_of(&level[next++], &level[i], &level[i + 1]);
        if (width % 2 == 1)
            level[next++] = level[width - 1];
        SEQ_ASSERT(next == (width + 1) / 2);
        width = next;
    }
    root_of(out, &level[0]);
    free(level);
    return 0;
}
