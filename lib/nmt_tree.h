/* A block's whole namespaced Merkle tree kept in memory, so that proofs for
 * many namespaces of one block (a node serving many subscribers) cost one
 * tree build plus O(log n) per proof instead of O(n) each.
 *
 * Layout: level 0 holds the n leaves; level l+1 pairs level l left to right
 * and moves an odd last node up unchanged. That is exactly the RFC 6962 tree
 * (see payload_root.c): its subtree over leaves [lo, hi) is node lo >> l of
 * level l, l = ceil(log2(hi - lo)). */
#ifndef SEQ_NMT_TREE_H
#define SEQ_NMT_TREE_H

#include <stdint.h>

#include "assert.h"
#include "nmt.h"
#include "nsproof.h"
#include "types.h"

typedef struct seq_nmt_tree {
    uint32_t n;                                   /* leaves */
    uint32_t levels;                              /* 1 + height; 0 for n == 0 */
    seq_nmt_node *level[SEQ_NMT_DEPTH_MAX + 1];   /* into mem */
    seq_nmt_node *mem;                            /* about 2n nodes */
} seq_nmt_tree;

/* Hashes every node once, from txs[i].ns and txs[i].id. SEQ_ENOMEM,
 * SEQ_ETOOBIG over SEQ_BLOCK_TXS_MAX. Free with seq_nmt_tree_free. */
int seq_nmt_tree_build(seq_nmt_tree *t, const seq_tx *txs, uint32_t n) SEQ_MUST_CHECK;
void seq_nmt_tree_free(seq_nmt_tree *t);

/* Bytes of the nodes t holds (0 for no leaves). */
size_t seq_nmt_tree_bytes(const seq_nmt_tree *t);

/* A copy of t into out (no hashing). SEQ_ENOMEM. */
int seq_nmt_tree_copy(seq_nmt_tree *out, const seq_nmt_tree *t) SEQ_MUST_CHECK;

/* The proof of leaves [start, start+count) (count 0: an absence proof at
 * start), as seq_nsproof_build / _build_range give it. */
void seq_nmt_tree_proof(const seq_nmt_tree *t, uint32_t start, uint32_t count, seq_nsproof *out);

/* The payload root, for checks. */
void seq_nmt_tree_root(const seq_nmt_tree *t, seq_hash *out);

#endif
