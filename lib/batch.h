/* Building seq_batch values (lib/verify.h defines the type and its checks).
 * The node side builds them from a finalized block, its certificate and the
 * store (API port, HTTP port, reader); clients build them from frames. */
#ifndef SEQ_BATCH_H
#define SEQ_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "assert.h"
#include "store.h"
#include "verify.h"

/* A zeroed batch whose arena has room for tx_count seq_tx (b->txs),
 * path_len headers (b->cert_path) and payload_bytes of payloads
 * (*payloads, for the caller to fill and point txs[i].data into).
 * SEQ_ETOOBIG past the format's limits, SEQ_ENOMEM. */
int seq_batch_alloc(seq_batch **out, uint32_t tx_count, size_t payload_bytes, uint32_t path_len,
                    uint8_t **payloads) SEQ_MUST_CHECK;

/* Node side: namespace ns's batch of finalized block b, whose finalization
 * certificate (as stored for its height) is cert: the slice of b's
 * transactions (copied), the namespace proof, prev_batch_hash = b's parent,
 * block_hash, and the certificate path read from the store when cert names a
 * descendant. SEQ_ENOTFOUND when the store lacks a header of the path,
 * SEQ_EMISMATCH when the path never reaches cert's hash within
 * SEQ_CERT_PATH_MAX heights. */
int seq_batch_make(seq_store *s, const seq_block *b, const seq_cert *cert, seq_ns ns,
                   seq_batch **out) SEQ_MUST_CHECK;
/* The same with ns's proof already built (from a seq_nmt_tree kept for the
 * block, when many namespaces of one block are served). */
int seq_batch_make_proved(seq_store *s, const seq_block *b, const seq_cert *cert, seq_ns ns,
                          const seq_nsproof *proof, seq_batch **out) SEQ_MUST_CHECK;
/* The same for the stored block at height. SEQ_ENOTFOUND above the tip. */
int seq_batch_load(seq_store *s, uint64_t height, seq_ns ns, seq_batch **out) SEQ_MUST_CHECK;

#endif
