/* libsodium wrappers: ed25519 identity keys and key files, BLAKE2b-256. */
#ifndef SEQ_CRYPTO_H
#define SEQ_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assert.h"

#define SEQ_HASH_BYTES 32
#define SEQ_PUBKEY_BYTES 32
#define SEQ_SEED_BYTES 32
#define SEQ_SECRET_BYTES 64
#define SEQ_SIG_BYTES 64

typedef struct { uint8_t b[SEQ_HASH_BYTES]; } seq_hash;
typedef struct { uint8_t b[SEQ_PUBKEY_BYTES]; } seq_pubkey;
typedef struct { uint8_t b[SEQ_SIG_BYTES]; } seq_sig;

/* An identity key. The secret lives in sodium_malloc'd memory (guarded,
 * locked) and is wiped by seq_keypair_free. */
typedef struct seq_keypair {
    seq_pubkey pk;
    uint8_t *sk; /* SEQ_SECRET_BYTES, sodium_malloc'd */
} seq_keypair;

/* Calls sodium_init once; safe to call many times. Returns 0 or SEQ_EIO. */
int seq_crypto_init(void) SEQ_MUST_CHECK;

/* New random key. *out is owned by the caller (seq_keypair_free). */
int seq_keypair_generate(seq_keypair **out) SEQ_MUST_CHECK;
/* Deterministic key from a 32-byte seed (simulator, tests). */
int seq_keypair_from_seed(seq_keypair **out, const uint8_t seed[SEQ_SEED_BYTES]) SEQ_MUST_CHECK;
void seq_keypair_free(seq_keypair *kp);

/* Key file: one line "seq-ed25519-seed-v1 <64 hex chars>\n", mode 0600.
 * save refuses to overwrite an existing file (SEQ_EEXISTS).
 * load refuses a file readable by group or others (SEQ_EPERM), a malformed one
 * (SEQ_EDECODE) and a missing one (SEQ_ENOTFOUND). */
int seq_keyfile_save(const seq_keypair *kp, const char *path) SEQ_MUST_CHECK;
int seq_keyfile_load(seq_keypair **out, const char *path) SEQ_MUST_CHECK;

/* Detached ed25519 signature over msg. */
void seq_sign(const seq_keypair *kp, const void *msg, size_t len, seq_sig *out);
/* 0 when valid, SEQ_EBADSIG otherwise. Never ignore the result. */
int seq_sig_verify(const seq_pubkey *pk, const void *msg, size_t len, const seq_sig *sig) SEQ_MUST_CHECK;

/* BLAKE2b-256 of one buffer. */
void seq_hash_compute(seq_hash *out, const void *data, size_t len);

/* Incremental BLAKE2b-256 (opaque state sized for libsodium's). */
typedef struct { _Alignas(64) uint8_t opaque[384]; } seq_hasher;
void seq_hasher_init(seq_hasher *h);
void seq_hasher_update(seq_hasher *h, const void *data, size_t len);
void seq_hasher_final(seq_hasher *h, seq_hash *out);

static inline bool seq_hash_eq(const seq_hash *a, const seq_hash *b)
{
    for (int i = 0; i < SEQ_HASH_BYTES; i++)
        if (a->b[i] != b->b[i])
            return false;
    return true;
}
static inline bool seq_hash_is_zero(const seq_hash *a)
{
    for (int i = 0; i < SEQ_HASH_BYTES; i++)
        if (a->b[i])
            return false;
    return true;
}

/* Lower-case hex; out must hold 2*len+1 bytes. */
void seq_hex(char *out, const void *data, size_t len);
/* Short hex prefix (8 chars) of a hash for logs; returns a static buffer per
 * call slot (4 rotating slots), valid until 4 more calls. */
const char *seq_hash_short(const seq_hash *h);
/* Parses exactly 2*len hex chars (either case) into out; hex must be a
 * string of exactly that length (hex[2*len] == '\0'). 0 or SEQ_EDECODE. */
int seq_unhex(void *out, size_t len, const char *hex) SEQ_MUST_CHECK;

#endif
