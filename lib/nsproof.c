/* Namespace proofs (lib/nsproof.h): the outside subtrees of a range of a
 * block's transactions, and the rebuild of the payload root from them.
 *
 * Building and verifying walk the same RFC 6962 recursion over leaves
 * [lo, hi): a subtree wholly left of start, or wholly right of start+count,
 * is one proof node; a leaf inside the range comes from the range's own
 * transactions; anything else splits. For an empty range (absence) every
 * subtree straddling start splits, so each node lies on one side of it. */
#include "nsproof.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "nmt.h"

typedef enum {
    PLACE_LEFT,     /* hi <= start: a proof node left of the range */
    PLACE_RIGHT,    /* lo >= end: a proof node right of the range */
    PLACE_LEAF,     /* one leaf inside the range */
    PLACE_SPLIT,    /* overlaps the range, or straddles an empty range */
} place;

static place place_of(uint32_t lo, uint32_t hi, uint32_t start, uint32_t end)
{
    SEQ_ASSERT(lo < hi && start <= end);
    if (hi <= start)
        return PLACE_LEFT;
    if (lo >= end)
        return PLACE_RIGHT;
    if (hi - lo == 1)
        return PLACE_LEAF;
    return PLACE_SPLIT;
}

/* ---- building ---------------------------------------------------------------- */

typedef struct {
    const seq_tx *txs;      /* the whole block */
    uint32_t start, end;
    seq_nmt_node *scratch;  /* room for the block's leaves */
    seq_nsproof *out;
} build_walk_ctx;

/* Emits the nodes of [lo, hi) left to right; each emitted subtree is hashed
 * once and the range itself not at all. */
static void build_walk(build_walk_ctx *c, uint32_t lo, uint32_t hi, uint32_t depth)
{
    SEQ_ASSERT(depth <= SEQ_NMT_DEPTH_MAX);
    switch (place_of(lo, hi, c->start, c->end)) {
    case PLACE_LEFT:
    case PLACE_RIGHT:
        SEQ_ASSERT(c->out->node_count < SEQ_NSPROOF_NODES_MAX);
        seq_nmt_subtree(&c->out->nodes[c->out->node_count++], c->txs + lo, hi - lo, c->scratch);
        return;
    case PLACE_LEAF:
        return;
    case PLACE_SPLIT: {
        uint32_t k = seq_nmt_split(hi - lo);
        build_walk(c, lo, lo + k, depth + 1);
        build_walk(c, lo + k, hi, depth + 1);
        return;
    }
    }
    SEQ_UNREACHABLE();
}

static int build(const seq_block *b, uint32_t start, uint32_t count, seq_nsproof *out)
{
    SEQ_ASSERT(b->tx_count <= SEQ_BLOCK_TXS_MAX && (uint64_t)start + count <= b->tx_count);
    memset(out, 0, sizeof *out);
    out->start = start;
    out->count = count;
    if (b->tx_count == 0)
        return 0;
    seq_nmt_node *scratch = malloc((size_t)b->tx_count * sizeof *scratch);
    if (!scratch)
        return SEQ_ENOMEM;
    build_walk_ctx c = {.txs = b->txs, .start = start, .end = start + count, .scratch = scratch, .out = out};
    build_walk(&c, 0, b->tx_count, 0);
    free(scratch);
    return 0;
}

/* First index whose namespace is above ns (strictly when above is true, else
 * at or above): the block is sorted by namespace. */
static uint32_t ns_bound(const seq_block *b, seq_ns ns, bool above)
{
    uint32_t lo = 0, hi = b->tx_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        bool before = above ? b->txs[mid].ns <= ns : b->txs[mid].ns < ns;
        if (before)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int seq_nsproof_build(const seq_block *b, seq_ns ns, seq_nsproof *out)
{
    SEQ_ASSERT(b && out);
    uint32_t start = ns_bound(b, ns, false);
    uint32_t end = ns_bound(b, ns, true);
    SEQ_ASSERT(start <= end && end <= b->tx_count);
    return build(b, start, end - start, out);
}

int seq_nsproof_build_range(const seq_block *b, uint32_t start, uint32_t count, seq_nsproof *out)
{
    SEQ_ASSERT(b && out);
    if (count == 0 || (uint64_t)start + count > b->tx_count)
        return SEQ_EINVAL;
    return build(b, start, count, out);
}

/* ---- verifying --------------------------------------------------------------- */

typedef struct {
    const seq_tx *txs;      /* the range's leaves only */
    const seq_nsproof *p;
    uint32_t start, end;
    bool bounded;           /* namespace completeness or absence: check node bounds */
    seq_ns ns;
    bool ids_from_payloads;
    uint32_t used;          /* proof nodes consumed */
} verify_walk_ctx;

static int take_node(verify_walk_ctx *c, place where, seq_nmt_node *out)
{
    if (c->used >= c->p->node_count)
        return SEQ_EPROOF;
    const seq_nmt_node *n = &c->p->nodes[c->used++];
    /* No transaction of ns may hide outside the range. */
    if (c->bounded && where == PLACE_LEFT && !(n->max < c->ns))
        return SEQ_EPROOF;
    if (c->bounded && where == PLACE_RIGHT && !(n->min > c->ns))
        return SEQ_EPROOF;
    *out = *n;
    return 0;
}

static void range_leaf(const verify_walk_ctx *c, uint32_t index, seq_nmt_node *out)
{
    const seq_tx *tx = &c->txs[index - c->start];
    if (!c->ids_from_payloads) {
        seq_nmt_leaf(out, tx->ns, &tx->id);
        return;
    }
    seq_tx own = *tx;
    seq_tx_compute_id(&own);
    seq_nmt_leaf(out, own.ns, &own.id);
}

/* Rebuilds the node of [lo, hi): only the range's leaves and the proof's
 * nodes are hashed, never the rest of the block. */
static int verify_walk(verify_walk_ctx *c, uint32_t lo, uint32_t hi, uint32_t depth, seq_nmt_node *out)
{
    SEQ_ASSERT(depth <= SEQ_NMT_DEPTH_MAX);
    place where = place_of(lo, hi, c->start, c->end);
    if (where == PLACE_LEFT || where == PLACE_RIGHT)
        return take_node(c, where, out);
    if (where == PLACE_LEAF) {
        range_leaf(c, lo, out);
        return 0;
    }
    uint32_t k = seq_nmt_split(hi - lo);
    seq_nmt_node l, r;
    int rc = verify_walk(c, lo, lo + k, depth + 1, &l);
    if (rc == 0)
        rc = verify_walk(c, lo + k, hi, depth + 1, &r);
    if (rc == 0)
        seq_nmt_inner(out, &l, &r);
    return rc;
}

static int verify(const seq_header *h, const seq_tx *txs, const seq_nsproof *p, verify_walk_ctx *c)
{
    SEQ_ASSERT(h && p);
    if (p->node_count > SEQ_NSPROOF_NODES_MAX || h->tx_count > SEQ_BLOCK_TXS_MAX)
        return SEQ_EINVAL;
    if ((uint64_t)p->start + p->count > h->tx_count || (p->count > 0 && !txs))
        return SEQ_EINVAL;
    seq_hash root;
    if (h->tx_count == 0) {
        if (p->node_count != 0)
            return SEQ_EPROOF;
        seq_nmt_empty_root(&root);
        return seq_hash_eq(&root, &h->payload_root) ? 0 : SEQ_EPROOF;
    }
    c->txs = txs;
    c->p = p;
    c->start = p->start;
    c->end = p->start + p->count;
    c->used = 0;
    seq_nmt_node top;
    int rc = verify_walk(c, 0, h->tx_count, 0, &top);
    if (rc)
        return rc;
    if (c->used != p->node_count)
        return SEQ_EPROOF;
    seq_nmt_root(&root, &top);
    return seq_hash_eq(&root, &h->payload_root) ? 0 : SEQ_EPROOF;
}

static int verify_ns(const seq_header *h, seq_ns ns, const seq_tx *txs, const seq_nsproof *p,
                     bool ids_from_payloads)
{
    SEQ_ASSERT(p);
    if (p->count > SEQ_BLOCK_TXS_MAX || (p->count > 0 && !txs))
        return SEQ_EINVAL;
    for (uint32_t i = 0; i < p->count; i++) {
        if (txs[i].ns != ns)
            return SEQ_EPROOF;
        if (ids_from_payloads && txs[i].len > 0 && !txs[i].data)
            return SEQ_EINVAL;
    }
    verify_walk_ctx c = {.bounded = true, .ns = ns, .ids_from_payloads = ids_from_payloads};
    return verify(h, txs, p, &c);
}

int seq_nsproof_verify_ns(const seq_header *h, seq_ns ns, const seq_tx *txs, const seq_nsproof *p)
{
    return verify_ns(h, ns, txs, p, false);
}

int seq_nsproof_verify_ns_payloads(const seq_header *h, seq_ns ns, const seq_tx *txs, const seq_nsproof *p)
{
    return verify_ns(h, ns, txs, p, true);
}

int seq_nsproof_verify_range(const seq_header *h, const seq_tx *txs, const seq_nsproof *p)
{
    SEQ_ASSERT(p);
    if (p->count == 0)
        return SEQ_EINVAL;
    verify_walk_ctx c = {.bounded = false};
    return verify(h, txs, p, &c);
}
