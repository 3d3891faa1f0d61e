/* Node side of lib/batch.h: a namespace's batch of a finalized block, built
 * from the block, its stored certificate and the store (for the certificate
 * path).
 *
 * Happy path: seq_nsproof_build finds ns's slice of the block and its proof;
 * when the certificate names a descendant, the hash index gives the certified
 * height and seq_store_header_get reads the headers in between; one arena
 * (seq_batch_alloc) then receives the slice's payloads and the path. */
#include "batch.h"

#include <string.h>

#include "errors.h"
#include "log.h"

/* Headers height+1 .. certified height into path (path_len of them); each
 * must link to the one before, the first to b, the last be cert's block. */
static int path_read(seq_store *s, const seq_block *b, const seq_cert *cert, seq_header *path,
                     uint32_t path_len)
{
    SEQ_ASSERT(path_len > 0 && path_len <= SEQ_CERT_PATH_MAX);
    seq_hash prev = b->hash;
    for (uint32_t i = 0; i < path_len; i++) {
        int err = seq_store_header_get(s, b->h.height + 1 + i, &path[i]);
        if (err)
            return err;
        if (memcmp(path[i].parent.b, prev.b, SEQ_HASH_BYTES) != 0)
            return SEQ_EMISMATCH;
        seq_header_hash(&path[i], &prev);
    }
    return memcmp(prev.b, cert->hash.b, SEQ_HASH_BYTES) == 0 ? 0 : SEQ_EMISMATCH;
}

/* Headers between b and the block cert names: 0 when cert names b. */
static int path_len_find(seq_store *s, const seq_block *b, const seq_cert *cert, uint32_t *len)
{
    *len = 0;
    if (memcmp(cert->hash.b, b->hash.b, SEQ_HASH_BYTES) == 0)
        return 0;
    uint64_t certified;
    int err = seq_store_height_of(s, &cert->hash, &certified);
    if (err)
        return err; /* SEQ_ENOTFOUND: the certified block is not stored (yet) */
    if (certified <= b->h.height || certified - b->h.height > SEQ_CERT_PATH_MAX)
        return SEQ_EMISMATCH;
    *len = (uint32_t)(certified - b->h.height);
    return 0;
}

int seq_batch_make(seq_store *s, const seq_block *b, const seq_cert *cert, seq_ns ns, seq_batch **out)
{
    if (!s || !b || !cert || !out)
        return SEQ_EINVAL;
    seq_nsproof proof;
    int err = seq_nsproof_build(b, ns, &proof);
    if (err)
        return err;
    return seq_batch_make_proved(s, b, cert, ns, &proof, out);
}

int seq_batch_make_proved(seq_store *s, const seq_block *b, const seq_cert *cert, seq_ns ns,
                          const seq_nsproof *proved, seq_batch **out)
{
    if (!s || !b || !cert || !proved || !out)
        return SEQ_EINVAL;
    const seq_nsproof proof = *proved;
    SEQ_ASSERT(proof.start <= b->tx_count && proof.count <= b->tx_count - proof.start);
    uint32_t path_len;
    int err = path_len_find(s, b, cert, &path_len);
    if (err)
        return err;
    const seq_tx *slice = b->txs + proof.start;
    size_t payload_bytes = 0;
    for (uint32_t i = 0; i < proof.count; i++)
        payload_bytes += slice[i].len;

    seq_batch *batch;
    uint8_t *payloads;
    if ((err = seq_batch_alloc(&batch, proof.count, payload_bytes, path_len, &payloads)) != 0)
        return err;
    if (path_len && (err = path_read(s, b, cert, batch->cert_path, path_len)) != 0) {
        SEQ_WARN("batch_path", "height=%llu err=%s", (unsigned long long)b->h.height, seq_errname(err));
        seq_batch_free(batch);
        return err;
    }
    for (uint32_t i = 0; i < proof.count; i++) {
        batch->txs[i] = slice[i];
        batch->txs[i].data = payloads;
        if (slice[i].len)
            memcpy(payloads, slice[i].data, slice[i].len);
        payloads += slice[i].len;
    }
    batch->header = b->h;
    batch->block_hash = b->hash;
    batch->ns = ns;
    batch->cert = *cert;
    batch->prev_batch_hash = b->h.parent;
    batch->proof = proof;
    batch->ids_from_payloads_ = true; /* the stored block's ids were computed when it was decoded */
    *out = batch;
    return 0;
}

int seq_batch_load(seq_store *s, uint64_t height, seq_ns ns, seq_batch **out)
{
    if (!s || !out || height == 0)
        return SEQ_EINVAL;
    seq_block *b;
    int err = seq_store_block_get(s, height, &b);
    if (err)
        return err;
    /* A block and its certificate are committed in one transaction. */
    seq_cert cert;
    err = seq_store_cert_get(s, height, &cert);
    if (!err)
        err = seq_batch_make(s, b, &cert, ns, out);
    seq_block_free(b);
    return err;
}
