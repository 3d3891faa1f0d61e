/* Checks of what a rollup receives (lib/verify.h), trusting only the genesis
 * validators. Happy path of one batch: the header is of our chain and hashes
 * to block_hash; its parent is prev_batch_hash; the certificate is a
 * finalization of block_hash or, through cert_path, of a descendant; its
 * signatures are a quorum (once per certificate when a verifier caches it);
 * the namespace proof over the payloads rebuilds the header's payload root.
 * Pure: no I/O; only seq_verifier_check_run allocates (the verifier copy
 * its trial runs on). */
#include "verify.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "nmt.h"

#define CERT_BYTES_MAX (1 + 8 + SEQ_HASH_BYTES + SEQ_BITMAP_BYTES + 4 + SEQ_VALIDATORS_MAX * SEQ_SIG_BYTES)

/* Writes why and returns rc, so that each refusal is one statement. */
__attribute__((format(printf, 4, 5))) static int refuse(char *why, size_t why_len, int rc, const char *fmt, ...)
{
    SEQ_ASSERT(rc < 0);
    if (why && why_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- certificates ------------------------------------------------------------ */

/* The first validator whose signature in c does not verify, or -1: only on
 * the error path, to name it in why. */
static int first_bad_signer(const seq_cert *c, const seq_validators *vs, uint64_t chain_id)
{
    uint8_t pre[SEQ_PREIMAGE_BYTES_MAX];
    size_t len = seq_vote_preimage(pre, c->kind, chain_id, c->view, &c->hash);
    uint32_t k = 0;
    for (uint32_t s = 0; s < vs->n && k < c->sig_count; s++) {
        if (!seq_bitmap_get(c->bitmap, s))
            continue;
        if (seq_sig_verify(&vs->keys[s], pre, len, &c->sigs[k++]) != 0)
            return (int)s;
    }
    return -1;
}

static int check_signatures(const seq_cert *c, const seq_validators *vs, uint64_t chain_id, char *why,
                            size_t why_len)
{
    int rc = seq_cert_verify(c, vs, chain_id);
    switch (rc) {
    case 0:
        return 0;
    case SEQ_EBADSIG:
        return refuse(why, why_len, rc, "certificate: bad signature from validator %d",
                      first_bad_signer(c, vs, chain_id));
    case SEQ_EQUORUM:
        return refuse(why, why_len, rc, "certificate: %" PRIu32 " signers, quorum is %" PRIu32,
                      seq_cert_signers(c), vs->q);
    case SEQ_EDECODE:
        return refuse(why, why_len, rc, "certificate: bitmap names %" PRIu32 " signers, %" PRIu32 " signatures",
                      seq_cert_signers(c), c->sig_count);
    case SEQ_EUNKNOWN_SIGNER:
        return refuse(why, why_len, rc, "certificate: a signer beyond the %" PRIu32 " validators", vs->n);
    default:
        return refuse(why, why_len, rc, "certificate: %s", seq_strerror(rc));
    }
}

/* Identifies a certificate exactly (kind, view, hash, signers, signatures):
 * the verifier's cache skips only a byte-identical certificate. */
static void cert_digest(const seq_cert *c, seq_hash *out)
{
    uint8_t enc[CERT_BYTES_MAX];
    SEQ_ASSERT(c->sig_count <= SEQ_VALIDATORS_MAX && seq_cert_encoded_size(c) <= sizeof enc);
    seq_cert_encode(c, enc);
    seq_hash_compute(out, enc, seq_cert_encoded_size(c));
}

/* The certificate's signatures, verified unless cache (may be NULL) verified
 * this very certificate last. */
static int check_signatures_cached(const seq_cert *c, const seq_validators *vs, uint64_t chain_id,
                                   seq_verifier *cache, char *why, size_t why_len)
{
    if (!cache)
        return check_signatures(c, vs, chain_id, why, why_len);
    seq_hash digest;
    cert_digest(c, &digest);
    if (cache->have_cert && seq_hash_eq(&digest, &cache->cert_digest))
        return 0;
    int rc = check_signatures(c, vs, chain_id, why, why_len);
    if (rc)
        return rc;
    cache->have_cert = true;
    cache->cert_hash = c->hash;
    cache->cert_view = c->view;
    cache->cert_digest = digest;
    return 0;
}

/* A later block's finalization commits its ancestors: cert must finalize
 * block_hash (header h) or the end of path, a chain of headers each the
 * child of the one before, starting at h's child. */
static int check_certified(const seq_header *h, const seq_hash *block_hash, const seq_cert *c,
                           const seq_header *path, uint32_t path_len, uint64_t chain_id, char *why,
                           size_t why_len)
{
    if (c->kind != SEQ_VOTE_FINALIZE)
        return refuse(why, why_len, SEQ_EMISMATCH, "certificate: kind %s, expected finalize",
                      seq_vote_kind_name(c->kind));
    if (path_len > SEQ_CERT_PATH_MAX || (path_len > 0 && !path))
        return refuse(why, why_len, SEQ_EINVAL, "cert_path: %" PRIu32 " headers, at most %d", path_len,
                      SEQ_CERT_PATH_MAX);
    seq_hash at = *block_hash;
    const seq_header *certified = h;
    for (uint32_t i = 0; i < path_len; i++) {
        const seq_header *next = &path[i];
        if (next->chain_id != chain_id)
            return refuse(why, why_len, SEQ_ECHAIN_ID, "cert_path[%" PRIu32 "]: chain id %" PRIu64 ", expected %" PRIu64,
                          i, next->chain_id, chain_id);
        if (!seq_hash_eq(&next->parent, &at))
            return refuse(why, why_len, SEQ_EMISMATCH, "cert_path[%" PRIu32 "]: parent %s, expected %s", i,
                          seq_hash_short(&next->parent), seq_hash_short(&at));
        if (next->height != certified->height + 1)
            return refuse(why, why_len, SEQ_EMISMATCH, "cert_path[%" PRIu32 "]: height %" PRIu64 ", expected %" PRIu64,
                          i, next->height, certified->height + 1);
        seq_header_hash(next, &at);
        certified = next;
    }
    if (!seq_hash_eq(&c->hash, &at))
        return refuse(why, why_len, SEQ_EMISMATCH, "certificate: finalizes %s, not %s", seq_hash_short(&c->hash),
                      seq_hash_short(&at));
    /* Votes name the view of the block they vote for. */
    if (c->view != certified->view)
        return refuse(why, why_len, SEQ_EMISMATCH, "certificate: view %" PRIu64 ", block's view %" PRIu64, c->view,
                      certified->view);
    return 0;
}

/* ---- batches ------------------------------------------------------------------ */

static int check_header(const seq_batch *b, uint64_t chain_id, char *why, size_t why_len)
{
    if (b->header.chain_id != chain_id)
        return refuse(why, why_len, SEQ_ECHAIN_ID, "header: chain id %" PRIu64 ", expected %" PRIu64,
                      b->header.chain_id, chain_id);
    seq_hash h;
    seq_header_hash(&b->header, &h);
    if (!seq_hash_eq(&h, &b->block_hash))
        return refuse(why, why_len, SEQ_EMISMATCH, "block_hash %s is not the header's hash %s",
                      seq_hash_short(&b->block_hash), seq_hash_short(&h));
    if (!seq_hash_eq(&b->header.parent, &b->prev_batch_hash))
        return refuse(why, why_len, SEQ_EGAP, "header: parent %s, prev_batch_hash %s",
                      seq_hash_short(&b->header.parent), seq_hash_short(&b->prev_batch_hash));
    return 0;
}

/* The transactions are all of ns's in the block: the proof's range is the
 * batch's transactions (count is not on the wire), ids from the payloads. */
static int check_proof(const seq_batch *b, char *why, size_t why_len)
{
    if (b->tx_count > SEQ_BLOCK_TXS_MAX || (b->tx_count > 0 && !b->txs))
        return refuse(why, why_len, SEQ_EINVAL, "batch: %" PRIu32 " txs", b->tx_count);
    for (uint32_t i = 0; i < b->tx_count; i++) {
        if (b->txs[i].ns != b->ns)
            return refuse(why, why_len, SEQ_EPROOF, "tx %" PRIu32 ": namespace %" PRIu64 ", batch is of %" PRIu64, i,
                          b->txs[i].ns, b->ns);
        if (b->txs[i].len > 0 && !b->txs[i].data)
            return refuse(why, why_len, SEQ_EINVAL, "tx %" PRIu32 ": no payload", i);
    }
    seq_nsproof p = b->proof;
    p.count = b->tx_count;
    int rc = b->ids_from_payloads_ ? seq_nsproof_verify_ns(&b->header, b->ns, b->txs, &p)
                                   : seq_nsproof_verify_ns_payloads(&b->header, b->ns, b->txs, &p);
    if (rc == SEQ_EPROOF)
        return refuse(why, why_len, rc, "proof: root mismatch (%" PRIu32 " txs at %" PRIu32 ", %" PRIu32 " nodes)",
                      p.count, p.start, p.node_count);
    if (rc)
        return refuse(why, why_len, rc, "proof: malformed (%" PRIu32 " txs at %" PRIu32 ", %" PRIu32
                      " nodes, block of %" PRIu32 ")", p.count, p.start, p.node_count, b->header.tx_count);
    return 0;
}

/* signatures false: everything but the certificate's signatures (a run's
 * batch whose finality a later one proves). */
static int check_batch_parts(const seq_batch *b, const seq_validators *vs, uint64_t chain_id, seq_verifier *cache,
                             bool signatures, char *why, size_t why_len)
{
    SEQ_ASSERT(b && vs);
    int rc = check_header(b, chain_id, why, why_len);
    if (rc == 0)
        rc = check_certified(&b->header, &b->block_hash, &b->cert, b->cert_path, b->path_len, chain_id, why,
                             why_len);
    if (rc == 0 && signatures)
        rc = check_signatures_cached(&b->cert, vs, chain_id, cache, why, why_len);
    if (rc == 0)
        rc = check_proof(b, why, why_len);
    return rc;
}

static int check_batch(const seq_batch *b, const seq_validators *vs, uint64_t chain_id, seq_verifier *cache,
                       char *why, size_t why_len)
{
    return check_batch_parts(b, vs, chain_id, cache, true, why, why_len);
}

int seq_batch_check(const seq_batch *b, const seq_validators *vs, uint64_t chain_id, char *why, size_t why_len)
{
    return check_batch(b, vs, chain_id, NULL, why, why_len);
}

/* ---- stream verifier ---------------------------------------------------------- */

void seq_verifier_init(seq_verifier *v, const seq_validators *vs, uint64_t chain_id)
{
    SEQ_ASSERT(v && vs && vs->n <= SEQ_VALIDATORS_MAX);
    memset(v, 0, sizeof *v);
    v->vs = *vs;
    v->chain_id = chain_id;
}

/* The namespace's entry, added when missing; NULL when the table is full. */
static seq_verifier_ns *ns_entry(seq_verifier *v, seq_ns ns)
{
    SEQ_ASSERT(v->ns_count <= SEQ_VERIFIER_NS_MAX);
    for (uint32_t i = 0; i < v->ns_count; i++)
        if (v->ns[i].ns == ns)
            return &v->ns[i];
    if (v->ns_count == SEQ_VERIFIER_NS_MAX)
        return NULL;
    seq_verifier_ns *e = &v->ns[v->ns_count++];
    memset(e, 0, sizeof *e);
    e->ns = ns;
    return e;
}

int seq_verifier_expect(seq_verifier *v, seq_ns ns, uint64_t next_height, const seq_hash *last_hash)
{
    SEQ_ASSERT(v);
    seq_verifier_ns *e = ns_entry(v, ns);
    if (!e)
        return SEQ_EFULL;
    e->next_height = next_height;
    e->have_hash = last_hash != NULL;
    if (last_hash)
        e->last_hash = *last_hash;
    return 0;
}

/* Per namespace, heights go up by one and each batch follows the last. */
static int check_continuity(const seq_verifier_ns *e, const seq_batch *b, char *why, size_t why_len)
{
    if (e->next_height != 0 && b->header.height != e->next_height)
        return refuse(why, why_len, SEQ_EGAP, "gap: expected height %" PRIu64 ", got %" PRIu64, e->next_height,
                      b->header.height);
    if (e->have_hash && !seq_hash_eq(&b->prev_batch_hash, &e->last_hash))
        return refuse(why, why_len, SEQ_EGAP, "gap: height %" PRIu64 " follows %s, expected %s", b->header.height,
                      seq_hash_short(&b->prev_batch_hash), seq_hash_short(&e->last_hash));
    return 0;
}

/* The batch checks (signatures or not), then continuity; on success the
 * namespace's expectation moves on. */
static int verifier_step(seq_verifier *v, const seq_batch *b, bool signatures, char *why, size_t why_len)
{
    int rc = check_batch_parts(b, &v->vs, v->chain_id, v, signatures, why, why_len);
    if (rc)
        return rc;
    seq_verifier_ns *e = ns_entry(v, b->ns);
    if (!e)
        return refuse(why, why_len, SEQ_EFULL, "namespace %" PRIu64 ": already following %d namespaces", b->ns,
                      SEQ_VERIFIER_NS_MAX);
    rc = check_continuity(e, b, why, why_len);
    if (rc)
        return rc;
    e->next_height = b->header.height + 1;
    e->have_hash = true;
    e->last_hash = b->block_hash;
    v->verified++;
    return 0;
}

int seq_verifier_check(seq_verifier *v, const seq_batch *b, char *why, size_t why_len)
{
    SEQ_ASSERT(v && b);
    return verifier_step(v, b, true, why, why_len);
}

/* The index of the last batch of run[i]'s namespace in run. */
static uint32_t last_of_ns(seq_batch *const *run, uint32_t n, uint32_t i)
{
    uint32_t last = i;
    for (uint32_t k = i + 1; k < n; k++)
        if (run[k]->ns == run[i]->ns)
            last = k;
    return last;
}

/* Why a run's earlier batches are final without their own certificates:
 * continuity gives, per namespace, consecutive heights each the child of
 * the batch before (parent = prev_batch_hash = that batch's block_hash,
 * block_hash = hash(header)), so they are ancestors of the namespace's last
 * batch, whose certificate finalizes it or, through cert_path, a
 * descendant; a block's finality commits its ancestors ([R-COMMIT]). The
 * trial runs on a copy, so a failure leaves v as it was before the run. */
int seq_verifier_check_run(seq_verifier *v, seq_batch *const *run, uint32_t n, uint32_t *passed, char *why,
                           size_t why_len)
{
    SEQ_ASSERT(v && passed && (n == 0 || run));
    *passed = 0;
    if (n > SEQ_VERIFIER_RUN_MAX)
        return refuse(why, why_len, SEQ_EINVAL, "run of %" PRIu32 " batches, at most %d", n, SEQ_VERIFIER_RUN_MAX);
    if (n == 1) { /* a live stream: nothing to share */
        run[0]->final_by = 0;
        int rc = verifier_step(v, run[0], true, why, why_len);
        *passed = rc ? 0 : 1;
        return rc;
    }
    seq_verifier *trial = malloc(sizeof *trial);
    int rc = trial ? 0 : SEQ_ENOMEM;
    uint32_t i = 0;
    if (trial) {
        *trial = *v;
        for (; i < n && rc == 0; i++) {
            uint32_t last = last_of_ns(run, n, i);
            rc = verifier_step(trial, run[i], last == i, why, why_len);
            run[i]->final_by = last == i ? 0 : run[last]->header.height;
        }
    }
    if (rc == 0) {
        *v = *trial;
        free(trial);
        *passed = n;
        return 0;
    }
    free(trial);
    for (uint32_t k = 0; k < n; k++)
        run[k]->final_by = 0;
    /* Where it failed, one batch at a time, each with its own certificate. */
    for (*passed = 0; *passed < n; (*passed)++) {
        run[*passed]->final_by = 0;
        if ((rc = seq_verifier_check(v, run[*passed], why, why_len)) != 0)
            return rc;
    }
    return 0; /* out of memory for the trial only: all passed one by one */
}

/* ---- transaction status ---------------------------------------------------------- */

int seq_tx_proof_check(const seq_header *h, const seq_cert *cert, const seq_header *path, uint32_t path_len,
                       const seq_tx *tx, const seq_nsproof *p, const seq_validators *vs, uint64_t chain_id,
                       char *why, size_t why_len)
{
    SEQ_ASSERT(h && cert && tx && p && vs);
    if (h->chain_id != chain_id)
        return refuse(why, why_len, SEQ_ECHAIN_ID, "header: chain id %" PRIu64 ", expected %" PRIu64, h->chain_id,
                      chain_id);
    seq_hash block_hash;
    seq_header_hash(h, &block_hash);
    int rc = check_certified(h, &block_hash, cert, path, path_len, chain_id, why, why_len);
    if (rc == 0)
        rc = check_signatures(cert, vs, chain_id, why, why_len);
    if (rc)
        return rc;
    /* One leaf: the count is the transaction, not the wire's. */
    seq_nsproof one = *p;
    one.count = 1;
    rc = seq_nsproof_verify_range(h, tx, &one);
    if (rc == SEQ_EPROOF)
        return refuse(why, why_len, rc, "proof: root mismatch (tx at %" PRIu32 ", %" PRIu32 " nodes)", one.start,
                      one.node_count);
    if (rc)
        return refuse(why, why_len, rc, "proof: malformed (tx at %" PRIu32 ", %" PRIu32 " nodes, block of %" PRIu32 ")",
                      one.start, one.node_count, h->tx_count);
    return 0;
}
