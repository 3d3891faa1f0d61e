/* The in-memory tree of lib/nmt_tree.h. */
#include "nmt_tree.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

int seq_nmt_tree_build(seq_nmt_tree *t, const seq_tx *txs, uint32_t n)
{
    SEQ_ASSERT(t && (txs || n == 0));
    memset(t, 0, sizeof *t);
    if (n > SEQ_BLOCK_TXS_MAX)
        return SEQ_ETOOBIG;
    t->n = n;
    if (n == 0)
        return 0;
    t->mem = malloc(((size_t)2 * n + SEQ_NMT_DEPTH_MAX + 1) * sizeof *t->mem);
    if (!t->mem)
        return SEQ_ENOMEM;
    seq_nmt_node *next = t->mem;
    uint32_t width = n;
    t->level[0] = next;
    for (uint32_t i = 0; i < n; i++)
        seq_nmt_leaf(&next[i], txs[i].ns, &txs[i].id);
    next += n;
    t->levels = 1;
    while (width > 1) {
        SEQ_ASSERT(t->levels <= SEQ_NMT_DEPTH_MAX);
        const seq_nmt_node *below = t->level[t->levels - 1];
        seq_nmt_node *here = next;
        uint32_t w = 0;
        for (uint32_t i = 0; i + 1 < width; i += 2)
            seq_nmt_inner(&here[w++], &below[i], &below[i + 1]);
        if (width % 2 == 1)
            here[w++] = below[width - 1];
        t->level[t->levels++] = here;
        next += w;
        width = w;
    }
    return 0;
}

void seq_nmt_tree_free(seq_nmt_tree *t)
{
    if (!t)
        return;
    free(t->mem);
    memset(t, 0, sizeof *t);
}

size_t seq_nmt_tree_bytes(const seq_nmt_tree *t)
{
    SEQ_ASSERT(t);
    return t->n == 0 ? 0 : ((size_t)(t->level[t->levels - 1] - t->mem) + 1) * sizeof *t->mem; /* root is last */
}

int seq_nmt_tree_copy(seq_nmt_tree *out, const seq_nmt_tree *t)
{
    SEQ_ASSERT(out && t);
    *out = *t;
    if (t->n == 0)
        return 0;
    size_t bytes = seq_nmt_tree_bytes(t);
    if (!(out->mem = malloc(bytes))) {
        memset(out, 0, sizeof *out);
        return SEQ_ENOMEM;
    }
    memcpy(out->mem, t->mem, bytes);
    for (uint32_t l = 0; l < t->levels; l++)
        out->level[l] = out->mem + (t->level[l] - t->mem);
    return 0;
}

/* ceil(log2(size)) for size >= 1. */
static uint32_t level_of(uint32_t size)
{
    uint32_t l = 0;
    while ((1u << l) < size)
        l++;
    return l;
}

static const seq_nmt_node *subtree(const seq_nmt_tree *t, uint32_t lo, uint32_t hi)
{
    uint32_t l = level_of(hi - lo);
    SEQ_ASSERT(l < t->levels && (lo & ((1u << l) - 1)) == 0);
    return &t->level[l][lo >> l];
}

typedef struct {
    const seq_nmt_tree *t;
    uint32_t start, end;
    seq_nsproof *out;
} walk_ctx;

/* The RFC 6962 recursion of nsproof.c: a subtree wholly outside the range is
 * one proof node, one inside contributes nothing, any other splits. */
static void walk(walk_ctx *c, uint32_t lo, uint32_t hi, uint32_t depth)
{
    SEQ_ASSERT(depth <= SEQ_NMT_DEPTH_MAX);
    if (hi <= c->start || lo >= c->end) {
        SEQ_ASSERT(c->out->node_count < SEQ_NSPROOF_NODES_MAX);
        c->out->nodes[c->out->node_count++] = *subtree(c->t, lo, hi);
        return;
    }
    if (hi - lo == 1)
        return;
    uint32_t k = seq_nmt_split(hi - lo);
    walk(c, lo, lo + k, depth + 1);
    walk(c, lo + k, hi, depth + 1);
}

void seq_nmt_tree_proof(const seq_nmt_tree *t, uint32_t start, uint32_t count, seq_nsproof *out)
{
    SEQ_ASSERT(t && out && (uint64_t)start + count <= t->n);
    memset(out, 0, sizeof *out);
    out->start = start;
    out->count = count;
    if (t->n == 0)
        return;
    walk_ctx c = {.t = t, .start = start, .end = start + count, .out = out};
    walk(&c, 0, t->n, 0);
}

void seq_nmt_tree_root(const seq_nmt_tree *t, seq_hash *out)
{
    if (t->n == 0) {
        seq_nmt_empty_root(out);
        return;
    }
    seq_nmt_root(out, &t->level[t->levels - 1][0]);
}
