/* The namespaced Merkle tree, defined once (types.h gives the encodings):
 * node hashing and the RFC 6962 split, shared by the payload root
 * (payload_root.c) and namespace proofs (nsproof.c). Internal to lib/. */
#ifndef SEQ_NMT_H
#define SEQ_NMT_H

#include <stdbool.h>
#include <stdint.h>

#include "nsproof.h"
#include "types.h"

/* Levels below the root of a tree of SEQ_BLOCK_TXS_MAX leaves: the bound on
 * every recursion over the tree. */
#define SEQ_NMT_DEPTH_MAX 17
_Static_assert((1u << SEQ_NMT_DEPTH_MAX) >= SEQ_BLOCK_TXS_MAX, "depth covers the largest block");
_Static_assert((1u << (SEQ_NMT_DEPTH_MAX - 1)) < SEQ_BLOCK_TXS_MAX, "depth is tight");
_Static_assert(SEQ_NSPROOF_NODES_MAX >= 2 * SEQ_NMT_DEPTH_MAX, "a range proof fits");

/* leaf = (ns, ns, BLAKE2b-256(0x00 || ns || id)). */
void seq_nmt_leaf(seq_nmt_node *out, seq_ns ns, const seq_hash *id);
/* inner = (min, max, BLAKE2b-256(0x01 || l || r)); out may alias l or r. */
void seq_nmt_inner(seq_nmt_node *out, const seq_nmt_node *l, const seq_nmt_node *r);
/* payload_root = BLAKE2b-256(0x02 || root.min || root.max || root.digest). */
void seq_nmt_root(seq_hash *out, const seq_nmt_node *root);
/* The payload root of no transactions: BLAKE2b-256(0x03). */
void seq_nmt_empty_root(seq_hash *out);

/* Size of the left subtree of a tree of n >= 2 leaves: the largest power of
 * two below n (RFC 6962). */
static inline uint32_t seq_nmt_split(uint32_t n)
{
    SEQ_ASSERT(n >= 2);
    uint32_t k = 1;
    while (k * 2 < n)
        k *= 2;
    return k;
}

/* The node of the tree over txs[0..n), n >= 1, using txs[i].id; scratch
 * holds at least n nodes. Each node is hashed once. */
void seq_nmt_subtree(seq_nmt_node *out, const seq_tx *txs, uint32_t n, seq_nmt_node *scratch);

/* seq_nsproof_verify_ns, except that each leaf's id is computed from the
 * transaction's ns and payload and txs[i].id is never read: for a caller
 * holding ids it does not trust (lib/verify.c). */
int seq_nsproof_verify_ns_payloads(const seq_header *h, seq_ns ns, const seq_tx *txs,
                                   const seq_nsproof *p) SEQ_MUST_CHECK;

#endif
