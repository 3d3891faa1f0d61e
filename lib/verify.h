/* What a rollup receives, checked against the genesis validator set only:
 * it never has to trust the node that served it.
 *
 * A batch (one namespace's part of one finalized block) is valid when:
 * - header.chain_id is the chain's, block_hash = hash(header);
 * - cert is a finalization certificate (seq_cert_verify against the
 *   validators) for block_hash, or for the last header of cert_path, where
 *   cert_path[0].parent = block_hash, each next header's parent is the hash
 *   of the one before and heights go up by one (a later block's finalization
 *   commits its ancestors);
 * - header.parent = prev_batch_hash;
 * - every tx has namespace ns, and the namespace proof shows txs are all of
 *   ns's transactions in the block (absence proof when there are none).
 * A stream of batches is gap-free when, per namespace, each batch's height is
 * the previous one's + 1 and its prev_batch_hash is the previous block_hash. */
#ifndef SEQ_VERIFY_H
#define SEQ_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assert.h"
#include "nsproof.h"
#include "types.h"

/* Headers a certificate path may hold: a commit covers at most the
 * consensus's unfinalized blocks (SEQ_BLOCKS_MAX). */
#define SEQ_CERT_PATH_MAX 512

/* One namespace's part of one finalized block, as a client receives it.
 * Owned by whoever filled it: seq_batch_free. txs[i].data, txs and cert_path
 * point into arena_. */
typedef struct {
    seq_header header;
    seq_hash block_hash;      /* computed from header by the receiver */
    seq_ns ns;
    uint32_t tx_count;
    seq_tx *txs;
    seq_cert cert;
    seq_hash prev_batch_hash;
    uint32_t path_len;
    seq_header *cert_path;
    seq_nsproof proof;
    /* Set by the builders in lib/ that compute txs[i].id from the payloads
     * they store (the client's decoder, seq_batch_from_json, seq_batch_make):
     * seq_batch_check then uses those ids instead of hashing every payload a
     * second time. Unset (a batch filled by hand), it recomputes them. */
    bool ids_from_payloads_;
    /* Set by seq_verifier_check_run: 0 when this batch's own certificate was
     * checked; else the height of a later batch of the same run and
     * namespace, linked to this one by parent hashes, whose certificate was
     * checked. That block's finality commits this one (its ancestor); this
     * batch's cert was then not checked (seq_batch_check it alone if the
     * certificate itself is needed, to pass on to a third party). */
    uint64_t final_by;
    void *arena_;
} seq_batch;

void seq_batch_free(seq_batch *b);

/* The checks above on one batch, without the stream's continuity.
 * tx ids are recomputed from the payloads. 0, or: SEQ_ECHAIN_ID,
 * SEQ_EMISMATCH (cert kind, hash or path link), SEQ_EBADSIG / SEQ_EQUORUM /
 * SEQ_EUNKNOWN_SIGNER / SEQ_EDECODE (certificate), SEQ_EGAP (parent is not
 * prev_batch_hash), SEQ_EPROOF / SEQ_EINVAL (proof or a tx of another
 * namespace). why (may be NULL) says which check failed, for the rollup's log. */
int seq_batch_check(const seq_batch *b, const seq_validators *vs, uint64_t chain_id, char *why,
                    size_t why_len) SEQ_MUST_CHECK;

/* A stream verifier: batch checks, plus per-namespace continuity, plus a
 * cache of the last certificate verified (a subscription to several
 * namespaces gets one certificate per block several times). */
#define SEQ_VERIFIER_NS_MAX 256

typedef struct {
    seq_ns ns;
    uint64_t next_height;   /* 0: not known yet, the first batch sets it */
    bool have_hash;
    seq_hash last_hash;     /* block hash of the batch before next_height */
} seq_verifier_ns;

typedef struct {
    seq_validators vs;
    uint64_t chain_id;
    bool have_cert;
    seq_hash cert_hash;     /* hash certified by the last verified certificate */
    uint64_t cert_view;
    seq_hash cert_digest;   /* of its canonical encoding: only an identical one is skipped */
    uint32_t ns_count;
    seq_verifier_ns ns[SEQ_VERIFIER_NS_MAX];
    uint64_t verified;      /* batches that passed */
} seq_verifier;

void seq_verifier_init(seq_verifier *v, const seq_validators *vs, uint64_t chain_id);
/* The next batch of ns must have this height and, when last_hash is not
 * NULL, prev_batch_hash = *last_hash (resuming after a reconnect).
 * SEQ_EFULL past SEQ_VERIFIER_NS_MAX namespaces. */
int seq_verifier_expect(seq_verifier *v, seq_ns ns, uint64_t next_height, const seq_hash *last_hash) SEQ_MUST_CHECK;
/* seq_batch_check, then continuity (SEQ_EGAP for a skipped, repeated or
 * re-forked height). On success the namespace's expectation moves on. */
int seq_verifier_check(seq_verifier *v, const seq_batch *b, char *why, size_t why_len) SEQ_MUST_CHECK;

/* A run of batches read together (a catch-up): each checked as by
 * seq_verifier_check, except that of each namespace's batches only the last
 * one's certificate is verified; the earlier ones, linked to it by the
 * continuity checks, are proven final by it (their final_by is set to its
 * height, 0 for the ones whose own certificate was checked). One ed25519
 * quorum per namespace and run instead of per batch.
 * *passed is how many leading batches passed, in order (all of them on
 * success). On a failure, the batches before the failing one are checked
 * again one at a time, each with its own certificate, so the result is
 * the same as seq_verifier_check over the run: the first failing batch is
 * run[*passed], why says why, and the verifier stands after the ones that
 * passed; every batch after it has final_by 0. run[i] may be of any
 * subscribed namespace, in stream order. */
#define SEQ_VERIFIER_RUN_MAX 1024 /* batches in one run (SEQ_EINVAL past it): finding each one's
                                   * namespace's last batch is quadratic in the run */
int seq_verifier_check_run(seq_verifier *v, seq_batch *const *run, uint32_t n, uint32_t *passed, char *why,
                           size_t why_len) SEQ_MUST_CHECK;

/* A finalized transaction's proof (tx status): header, certificate with its
 * path, and the inclusion proof of leaf index. tx carries ns and id. */
int seq_tx_proof_check(const seq_header *h, const seq_cert *cert, const seq_header *path, uint32_t path_len,
                       const seq_tx *tx, const seq_nsproof *p, const seq_validators *vs, uint64_t chain_id,
                       char *why, size_t why_len) SEQ_MUST_CHECK;

#endif
