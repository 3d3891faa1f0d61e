/* Votes: the domain-separated signing preimage, signing and verification
 * (DESIGN.md: "seq/" kind "/v1" || chain_id || view || block_hash). */
#include "types.h"

#include <string.h>

#include "codec.h"
#include "errors.h"

static bool kind_valid(int kind)
{
    return kind == SEQ_VOTE_NOTARIZE || kind == SEQ_VOTE_NULLIFY || kind == SEQ_VOTE_FINALIZE;
}

const char *seq_vote_kind_name(int kind)
{
    switch (kind) {
    case SEQ_VOTE_NOTARIZE:
        return "notarize";
    case SEQ_VOTE_NULLIFY:
        return "nullify";
    case SEQ_VOTE_FINALIZE:
        return "finalize";
    default:
        return "unknown";
    }
}

size_t seq_vote_preimage(uint8_t out[SEQ_PREIMAGE_BYTES_MAX], int kind, uint64_t chain_id,
                         uint64_t view, const seq_hash *hash)
{
    SEQ_ASSERT(kind_valid(kind));
    SEQ_ASSERT(kind == SEQ_VOTE_NULLIFY || hash);
    const char *name = seq_vote_kind_name(kind);
    seq_enc e;
    seq_enc_init(&e, out, SEQ_PREIMAGE_BYTES_MAX);
    seq_enc_bytes(&e, "seq/", 4);
    seq_enc_bytes(&e, name, strlen(name));
    seq_enc_bytes(&e, "/v1", 3);
    seq_enc_u64(&e, chain_id);
    seq_enc_u64(&e, view);
    /* A nullification is for the view, not for a block. */
    if (kind != SEQ_VOTE_NULLIFY)
        seq_enc_bytes(&e, hash->b, SEQ_HASH_BYTES);
    SEQ_ASSERT(!e.overflow);
    return e.len;
}

void seq_vote_sign(seq_vote *v, const seq_keypair *kp, uint64_t chain_id)
{
    SEQ_ASSERT(v && kp);
    SEQ_ASSERT(v->kind != SEQ_VOTE_NULLIFY || seq_hash_is_zero(&v->hash));
    uint8_t pre[SEQ_PREIMAGE_BYTES_MAX];
    size_t len = seq_vote_preimage(pre, v->kind, chain_id, v->view, &v->hash);
    seq_sign(kp, pre, len, &v->sig);
}

int seq_vote_verify(const seq_vote *v, const seq_validators *vs, uint64_t chain_id)
{
    SEQ_ASSERT(v && vs);
    if (!kind_valid(v->kind))
        return SEQ_EINVAL;
    /* The hash is not signed for nullify: a non-zero one would be unbacked. */
    if (v->kind == SEQ_VOTE_NULLIFY && !seq_hash_is_zero(&v->hash))
        return SEQ_EMISMATCH;
    if (v->signer >= vs->n)
        return SEQ_EUNKNOWN_SIGNER;
    uint8_t pre[SEQ_PREIMAGE_BYTES_MAX];
    size_t len = seq_vote_preimage(pre, v->kind, chain_id, v->view, &v->hash);
    return seq_sig_verify(&vs->keys[v->signer], pre, len, &v->sig);
}
