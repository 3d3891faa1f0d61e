/* The genesis file (JSON, jansson): the chain id, the genesis time and the
 * validators (name, ed25519 public key, peer address). Every node of a
 * network loads the same file; its validator order is the index order used
 * by the consensus (leader rotation, certificate bitmaps).
 *
 *   { "chain_id": 7, "genesis_time_ms": 1764000000000,
 *     "validators": [ { "name": "node0", "public_key": "<64 hex>",
 *                       "address": "127.0.0.1:7600" }, ... ] }
 */
#ifndef SEQ_GENESIS_H
#define SEQ_GENESIS_H

#include <stdint.h>

#include "config.h"
#include "types.h"

#define SEQ_NAME_BYTES 64 /* a validator name, with its NUL */

typedef struct {
    char name[SEQ_NAME_BYTES];
    seq_pubkey key;
    char address[SEQ_ADDR_BYTES]; /* peer "host:port" */
} seq_genesis_validator;

typedef struct {
    uint64_t chain_id;        /* non-zero */
    uint64_t genesis_time_ms;
    uint32_t n;               /* 1..SEQ_VALIDATORS_MAX */
    seq_genesis_validator validators[SEQ_VALIDATORS_MAX];
    seq_validators set;       /* the keys, in file order */
} seq_genesis;

/* Loads and checks path: valid JSON object with exactly these keys (unknown
 * keys are errors), chain_id > 0, 1..SEQ_VALIDATORS_MAX validators, unique
 * names, keys and addresses, 64-hex-digit keys, HOST:PORT addresses.
 * SEQ_EGENESIS (SEQ_ENOTFOUND when missing) with one message in err naming
 * the file and what was wrong (with line:column for JSON syntax errors, and
 * the validator index for a bad entry). */
int seq_genesis_load(seq_genesis *out, const char *path, char *err, size_t err_len) SEQ_MUST_CHECK;

/* Writes g as pretty-printed JSON (0644). SEQ_EIO on failure. */
int seq_genesis_save(const seq_genesis *g, const char *path) SEQ_MUST_CHECK;

/* Index of key in g, or -1. */
int seq_genesis_find(const seq_genesis *g, const seq_pubkey *key);

#endif
