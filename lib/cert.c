/* Certificates: a quorum of votes of one kind on one (view, hash) as a signer
 * bitmap plus signatures; building, verifying, canonical encoding. */
#include "types.h"

#include <string.h>

#include "codec.h"
#include "errors.h"

#define CERT_FIXED_BYTES (1 + 8 + SEQ_HASH_BYTES + SEQ_BITMAP_BYTES + 4)

_Static_assert(SEQ_VALIDATORS_MAX % 8 == 0, "bitmap must cover every validator");

static bool kind_valid(int kind)
{
    return kind == SEQ_VOTE_NOTARIZE || kind == SEQ_VOTE_NULLIFY || kind == SEQ_VOTE_FINALIZE;
}

static bool same_target(const seq_vote *a, const seq_vote *b)
{
    return a->kind == b->kind && a->view == b->view && seq_hash_eq(&a->hash, &b->hash);
}

uint32_t seq_cert_signers(const seq_cert *c)
{
    uint32_t count = 0;
    for (size_t i = 0; i < SEQ_BITMAP_BYTES; i++)
        count += (uint32_t)__builtin_popcount(c->bitmap[i]);
    return count;
}

int seq_cert_build(seq_cert *out, const seq_validators *vs, const seq_vote *votes, uint32_t n)
{
    SEQ_ASSERT(out && vs && vs->n <= SEQ_VALIDATORS_MAX);
    if (n == 0)
        return SEQ_EQUORUM;
    if (!votes)
        return SEQ_EINVAL;
    if (!kind_valid(votes[0].kind))
        return SEQ_EINVAL;

    /* vote_of[i] = index into votes of signer i's vote, to emit signatures
     * in ascending signer order. */
    uint32_t vote_of[SEQ_VALIDATORS_MAX];
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < n; i++) {
        const seq_vote *v = &votes[i];
        if (!same_target(v, &votes[0]))
            return SEQ_EMISMATCH;
        if (v->signer >= vs->n)
            return SEQ_EUNKNOWN_SIGNER;
        if (seq_bitmap_get(out->bitmap, v->signer))
            return SEQ_EDUP_SIGNER;
        seq_bitmap_set(out->bitmap, v->signer);
        vote_of[v->signer] = i;
    }
    if (n < vs->q)
        return SEQ_EQUORUM;

    out->kind = votes[0].kind;
    out->view = votes[0].view;
    out->hash = votes[0].hash;
    for (uint32_t s = 0; s < vs->n; s++)
        if (seq_bitmap_get(out->bitmap, s))
            out->sigs[out->sig_count++] = votes[vote_of[s]].sig;
    SEQ_ASSERT(out->sig_count == n);
    return 0;
}

int seq_cert_verify(const seq_cert *c, const seq_validators *vs, uint64_t chain_id)
{
    return seq_cert_verify_skipping(c, vs, chain_id, NULL, NULL);
}

/* Hot path (the simulator calls it for every certificate it sees): one
 * preimage, each signature verified once, nothing allocated. */
int seq_cert_verify_skipping(const seq_cert *c, const seq_validators *vs, uint64_t chain_id,
                             seq_cert_sig_known_fn known, void *ctx)
{
    SEQ_ASSERT(c && vs && vs->n <= SEQ_VALIDATORS_MAX);
    if (!kind_valid(c->kind))
        return SEQ_EINVAL;
    if (c->kind == SEQ_VOTE_NULLIFY && !seq_hash_is_zero(&c->hash))
        return SEQ_EMISMATCH;
    uint32_t signers = seq_cert_signers(c);
    if (c->sig_count > SEQ_VALIDATORS_MAX || c->sig_count != signers)
        return SEQ_EDECODE;
    for (uint32_t i = vs->n; i < SEQ_VALIDATORS_MAX; i++)
        if (seq_bitmap_get(c->bitmap, i))
            return SEQ_EUNKNOWN_SIGNER;
    if (signers < vs->q)
        return SEQ_EQUORUM;

    uint8_t pre[SEQ_PREIMAGE_BYTES_MAX];
    size_t len = seq_vote_preimage(pre, c->kind, chain_id, c->view, &c->hash);
    uint32_t k = 0;
    for (uint32_t s = 0; s < vs->n; s++) {
        if (!seq_bitmap_get(c->bitmap, s))
            continue;
        const seq_sig *sig = &c->sigs[k++];
        if (known && known(ctx, s, sig))
            continue;
        int rc = seq_sig_verify(&vs->keys[s], pre, len, sig);
        if (rc)
            return rc;
    }
    SEQ_ASSERT(k == c->sig_count);
    return 0;
}

size_t seq_cert_encoded_size(const seq_cert *c)
{
    SEQ_ASSERT(c && c->sig_count <= SEQ_VALIDATORS_MAX);
    return CERT_FIXED_BYTES + (size_t)c->sig_count * SEQ_SIG_BYTES;
}

void seq_cert_encode(const seq_cert *c, uint8_t *out)
{
    size_t size = seq_cert_encoded_size(c);
    seq_enc e;
    seq_enc_init(&e, out, size);
    seq_enc_u8(&e, c->kind);
    seq_enc_u64(&e, c->view);
    seq_enc_bytes(&e, c->hash.b, SEQ_HASH_BYTES);
    seq_enc_bytes(&e, c->bitmap, SEQ_BITMAP_BYTES);
    seq_enc_u32(&e, c->sig_count);
    for (uint32_t i = 0; i < c->sig_count; i++)
        seq_enc_bytes(&e, c->sigs[i].b, SEQ_SIG_BYTES);
    SEQ_ASSERT(!e.overflow && e.len == size);
}

int seq_cert_decode(seq_cert *c, const uint8_t *in, size_t len)
{
    SEQ_ASSERT(c);
    if (!in && len > 0)
        return SEQ_EINVAL;
    seq_cert tmp;
    memset(&tmp, 0, sizeof tmp);
    seq_dec d;
    seq_dec_init(&d, in, len);
    tmp.kind = seq_dec_u8(&d);
    tmp.view = seq_dec_u64(&d);
    seq_dec_bytes(&d, tmp.hash.b, SEQ_HASH_BYTES);
    seq_dec_bytes(&d, tmp.bitmap, SEQ_BITMAP_BYTES);
    tmp.sig_count = seq_dec_u32(&d);
    if (d.err || !kind_valid(tmp.kind) || tmp.sig_count > SEQ_VALIDATORS_MAX)
        return SEQ_EDECODE;
    for (uint32_t i = 0; i < tmp.sig_count; i++)
        seq_dec_bytes(&d, tmp.sigs[i].b, SEQ_SIG_BYTES);
    if (!seq_dec_done(&d))
        return SEQ_EDECODE;
    *c = tmp;
    return 0;
}
