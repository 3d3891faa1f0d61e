/* The namespaced Merkle tree's nodes (lib/nmt.h) and the payload root over a
 * block's transactions (types.h gives the exact leaf, inner and root
 * encodings). */
#include "nmt.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errors.h"

#define TAG_LEAF 0x00
#define TAG_INNER 0x01
#define TAG_ROOT 0x02
#define TAG_EMPTY 0x03

#define NODE_BYTES (8 + 8 + SEQ_HASH_BYTES)
#define LEAF_PREIMAGE_BYTES (1 + 8 + SEQ_HASH_BYTES)
#define INNER_PREIMAGE_BYTES (1 + 2 * NODE_BYTES)

/* The preimages are written with the inline big-endian stores of codec.h
 * rather than seq_enc calls: these run for every leaf and inner node of every
 * block built and every proof checked. */
static uint8_t *put_node(uint8_t *p, const seq_nmt_node *n)
{
    seq_put_u64be(p, n->min);
    seq_put_u64be(p + 8, n->max);
    memcpy(p + 16, n->digest.b, SEQ_HASH_BYTES);
    return p + NODE_BYTES;
}

void seq_nmt_leaf(seq_nmt_node *out, seq_ns ns, const seq_hash *id)
{
    uint8_t pre[LEAF_PREIMAGE_BYTES];
    pre[0] = TAG_LEAF;
    seq_put_u64be(pre + 1, ns);
    memcpy(pre + 9, id->b, SEQ_HASH_BYTES);
    out->min = ns;
    out->max = ns;
    seq_hash_compute(&out->digest, pre, sizeof pre);
}

void seq_nmt_inner(seq_nmt_node *out, const seq_nmt_node *l, const seq_nmt_node *r)
{
    uint8_t pre[INNER_PREIMAGE_BYTES];
    pre[0] = TAG_INNER;
    uint8_t *end = put_node(put_node(pre + 1, l), r);
    SEQ_ASSERT(end == pre + sizeof pre);
    /* Read both children before writing: out may alias either. */
    seq_ns min = l->min < r->min ? l->min : r->min;
    seq_ns max = l->max > r->max ? l->max : r->max;
    seq_hash_compute(&out->digest, pre, sizeof pre);
    out->min = min;
    out->max = max;
}

void seq_nmt_root(seq_hash *out, const seq_nmt_node *root)
{
    uint8_t pre[1 + NODE_BYTES];
    pre[0] = TAG_ROOT;
    uint8_t *end = put_node(pre + 1, root);
    SEQ_ASSERT(end == pre + sizeof pre);
    seq_hash_compute(out, pre, sizeof pre);
}

void seq_nmt_empty_root(seq_hash *out)
{
    uint8_t tag = TAG_EMPTY;
    seq_hash_compute(out, &tag, 1);
}

/* Bottom-up pairing where an odd last node moves up unchanged gives exactly
 * the RFC 6962 tree (left subtree = largest power of two < n), without
 * recursion, in one array of n nodes. */
void seq_nmt_subtree(seq_nmt_node *out, const seq_tx *txs, uint32_t n, seq_nmt_node *scratch)
{
    SEQ_ASSERT(out && txs && scratch && n >= 1);
    for (uint32_t i = 0; i < n; i++)
        seq_nmt_leaf(&scratch[i], txs[i].ns, &txs[i].id);

    uint32_t width = n;
    while (width > 1) {
        uint32_t next = 0;
        for (uint32_t i = 0; i + 1 < width; i += 2)
            seq_nmt_inner(&scratch[next++], &scratch[i], &scratch[i + 1]);
        if (width % 2 == 1)
            scratch[next++] = scratch[width - 1];
        SEQ_ASSERT(next == (width + 1) / 2);
        width = next;
    }
    *out = scratch[0];
}

int seq_payload_root(const seq_tx *txs, uint32_t n, seq_hash *out)
{
    SEQ_ASSERT(out);
    if (n == 0) {
        seq_nmt_empty_root(out);
        return 0;
    }
    if (n > SEQ_BLOCK_TXS_MAX)
        return SEQ_ETOOBIG;
    if (!txs)
        return SEQ_EINVAL;

    seq_nmt_node *scratch = malloc((size_t)n * sizeof *scratch);
    if (!scratch)
        return SEQ_ENOMEM;
    seq_nmt_node root;
    seq_nmt_subtree(&root, txs, n, scratch);
    seq_nmt_root(out, &root);
    free(scratch);
    return 0;
}
