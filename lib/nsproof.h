/* Namespace proofs over the payload root (lib/types.h gives the tree).
 *
 * A proof covers a range [start, start+count) of a block's transactions (in
 * block order, sorted by namespace). It lists the largest subtrees that lie
 * wholly outside the range, left to right, as (min ns, max ns, digest) nodes;
 * a verifier rebuilds the root from them and the range's own leaves.
 *
 * - Completeness: for namespace ns, the range is every transaction of ns.
 *   The verifier also checks that each node left of the range has max < ns and
 *   each node right of it has min > ns, so no transaction of ns is hidden.
 * - Absence: the same with count 0; start is where ns would sit. Every node
 *   then lies left (max < ns) or right (min > ns) of that point.
 * - Inclusion (transaction status): a range of one leaf, without the
 *   namespace bound check.
 *
 * Pure: no I/O, no allocation beyond what a call states. */
#ifndef SEQ_NSPROOF_H
#define SEQ_NSPROOF_H

#include <stdint.h>

#include "assert.h"
#include "types.h"

/* Nodes of one proof: at most two per tree level, and a tree of
 * SEQ_BLOCK_TXS_MAX leaves has 17 levels. */
#define SEQ_NSPROOF_NODES_MAX 40

typedef struct {
    seq_ns min;
    seq_ns max;
    seq_hash digest;
} seq_nmt_node;

typedef struct {
    uint32_t start;      /* block index of the range's first leaf (or insertion point) */
    uint32_t count;      /* leaves in the range (not carried on the wire: txs carry it) */
    uint32_t node_count;
    seq_nmt_node nodes[SEQ_NSPROOF_NODES_MAX];
} seq_nsproof;

/* All transactions of ns in block b: out->start and out->count give the slice
 * b->txs[start .. start+count), count 0 with an absence proof when there are
 * none. SEQ_ENOMEM (scratch is heap allocated). */
int seq_nsproof_build(const seq_block *b, seq_ns ns, seq_nsproof *out) SEQ_MUST_CHECK;
/* Inclusion proof of b->txs[start .. start+count); SEQ_EINVAL for a range
 * outside the block or count 0. */
int seq_nsproof_build_range(const seq_block *b, uint32_t start, uint32_t count, seq_nsproof *out) SEQ_MUST_CHECK;

/* txs: p->count transactions with ids computed (payloads are not read).
 * Completeness of namespace ns in the block of header h: every txs[i].ns is
 * ns, the nodes are bounded as above, and the rebuilt root equals
 * h->payload_root for h->tx_count leaves. SEQ_EPROOF when anything differs
 * (a wrong start, count, node, namespace or leaf), SEQ_EINVAL for a
 * malformed proof (too many nodes, range outside tx_count). */
int seq_nsproof_verify_ns(const seq_header *h, seq_ns ns, const seq_tx *txs, const seq_nsproof *p) SEQ_MUST_CHECK;
/* Inclusion only: txs are leaves start.. of the block of h. */
int seq_nsproof_verify_range(const seq_header *h, const seq_tx *txs, const seq_nsproof *p) SEQ_MUST_CHECK;

#endif
