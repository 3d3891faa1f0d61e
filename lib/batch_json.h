/* The one JSON form of a batch (jansson), printed by `seqctl read`, served by
 * the HTTP port, and parsed back by clients that verify what they were served.
 *
 *   { "height": 12, "ns": 5,
 *     "block_hash": "<64 hex>", "prev_batch_hash": "<64 hex>",
 *     "tx_count": 2,
 *     "txs": [ { "id": "<64 hex>", "index": 3, "data": "<base64>" }, ... ],
 *     "header": { "chain_id": 7, "height": 12, "view": 40, "parent": "<64 hex>",
 *                 "parent_view": 39, "leader": 0, "timestamp_ms": 1764000000000,
 *                 "payload_root": "<64 hex>", "tx_count": 9 },
 *     "cert": { "kind": "finalize", "view": 41, "hash": "<64 hex>",
 *               "signers": [0, 1, 3], "sigs": ["<128 hex>", ...] },
 *     "cert_path": [ <header>, ... ],
 *     "proof": { "start": 3, "nodes": [ { "min": 1, "max": 4, "digest": "<64 hex>" }, ... ] },
 *     "verified": true, "final_by": 19 }
 *
 * - Hashes, digests and signatures are lowercase hex (parsing accepts either case).
 * - data is the payload in standard base64 with padding (RFC 4648 section 4):
 *   payloads are arbitrary bytes, and base64 costs a third more where hex
 *   would double them.
 * - index is the transaction's position in the block (proof.start + i).
 * - Unsigned 64-bit numbers are JSON integers up to INT64_MAX (what jansson
 *   and most JSON readers hold exactly) and decimal strings above it.
 * - cert.signers are validator indices in ascending order, sigs[i] is
 *   signers[i]'s signature.
 * - verified says whether the producer checked the batch against the genesis
 *   validators (lib/verify.h). A consumer that does not trust the producer
 *   checks it again: seq_batch_from_json then seq_batch_check.
 * - final_by (present only when not 0, seq_batch.final_by): the batch was
 *   proven final by the later batch at that height, read in the same run,
 *   whose certificate was checked; this batch's own cert was not. */
#ifndef SEQ_BATCH_JSON_H
#define SEQ_BATCH_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "assert.h"
#include "verify.h"

/* A new JSON object (caller owns: json_decref), or NULL when out of memory. */
json_t *seq_batch_to_json(const seq_batch *b, bool verified);

/* Parses the form above with strict shape checks: exactly these keys (an
 * unknown or missing key is an error), the right JSON types, hex of the
 * right length, base64 data, numbers in range, and consistency that needs
 * no keys: height = header.height, block_hash = hash of header, tx_count =
 * number of txs, each tx id = the hash of (ns, data), index = proof.start + i,
 * signers ascending and as many as sigs, and the format's limits (txs, path,
 * proof nodes, payload sizes). Whether the batch is valid (certificate,
 * proof, chain) is for seq_batch_check. 0 with *out owned by the caller
 * (seq_batch_free) and *verified (may be NULL) the producer's flag; or
 * SEQ_EDECODE (SEQ_ETOOBIG past a limit, SEQ_ENOMEM) with a message in err
 * naming the field, e.g. "txs[2].data: not base64". */
int seq_batch_from_json(const json_t *j, seq_batch **out, bool *verified, char *err, size_t err_len) SEQ_MUST_CHECK;

/* The parts, for other JSON answers that carry them (a tx status's proof). */
json_t *seq_header_to_json(const seq_header *h);
json_t *seq_cert_to_json(const seq_cert *c);
json_t *seq_nsproof_to_json(const seq_nsproof *p);
/* where names the value in err ("header", "cert_path[1]"). SEQ_EDECODE. */
int seq_header_from_json(const json_t *j, const char *where, seq_header *out, char *err, size_t err_len) SEQ_MUST_CHECK;
int seq_cert_from_json(const json_t *j, const char *where, seq_cert *out, char *err, size_t err_len) SEQ_MUST_CHECK;
/* out->count is left 0: the transactions that come with a proof carry it. */
int seq_nsproof_from_json(const json_t *j, const char *where, seq_nsproof *out, char *err, size_t err_len) SEQ_MUST_CHECK;

#endif
