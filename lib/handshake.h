/* The peer handshake and the encrypted session it sets up, as a pure state
 * machine per connection: frames in, frames out, no sockets and no clock
 * (lib/net.c drives it). See lib/net.h for the protocol in short.
 *
 * Happy path, both roles alike:
 *   new      -> out: Hello {version, fresh crypto_kx key, identity key, chain}
 *   Hello    -> checks the peer's Hello, derives the session keys (the dialer
 *               is the crypto_kx client), hashes the transcript
 *               BLAKE2b("seq/handshake/v1" || len||Hello_dialer || len||Hello_acceptor)
 *               -> out: HelloAuth {ed25519 sig of transcript || our role byte},
 *                  then our crypto_secretstream header
 *   HelloAuth-> verifies the peer's signature over transcript || its role byte
 *   header   -> established: seal/open work, every later frame is one
 *               secretstream message.
 * Every failure is final: feed returns SEQ_EHANDSHAKE from then on and
 * seq_hs_failure says why. */
#ifndef SEQ_HANDSHAKE_H
#define SEQ_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assert.h"
#include "crypto.h"
#include "types.h"

#define SEQ_HS_VERSION 1
/* Upper bound on any handshake frame (Hello, HelloAuth, header): a larger one
 * is malformed, so an unauthenticated peer cannot make us buffer much. */
#define SEQ_HS_FRAME_BYTES_MAX 256
/* Ciphertext overhead of seal (crypto_secretstream_xchacha20poly1305_ABYTES). */
#define SEQ_HS_SEAL_BYTES 17

typedef enum { SEQ_HS_DIALER = 0, SEQ_HS_ACCEPTOR = 1 } seq_hs_role;

typedef enum {
    SEQ_HS_FAIL_NONE = 0,
    SEQ_HS_FAIL_MALFORMED,   /* not a Hello/HelloAuth/header of the right shape */
    SEQ_HS_FAIL_VERSION,     /* Hello.version is not SEQ_HS_VERSION */
    SEQ_HS_FAIL_CHAIN_ID,    /* Hello.chain_id is not ours */
    SEQ_HS_FAIL_UNKNOWN_KEY, /* identity key not in genesis: the conn is refused */
    SEQ_HS_FAIL_OWN_KEY,     /* identity key is ours (a reflected Hello) */
    SEQ_HS_FAIL_BAD_KX,      /* crypto_kx rejected the peer's key (weak point) */
    SEQ_HS_FAIL_BAD_SIG,     /* HelloAuth does not verify */
    SEQ_HS_FAIL_EXTRA,       /* a frame fed after the handshake ended */
} seq_hs_fail;

typedef struct seq_hs seq_hs;

/* Starts a handshake; Hello is ready to pop. key and vs are borrowed and must
 * outlive hs. *out owned by the caller (seq_hs_free). SEQ_ENOMEM, SEQ_EINVAL
 * when self is not a validator index. */
int seq_hs_new(seq_hs **out, seq_hs_role role, uint64_t chain_id, const seq_keypair *key, const seq_validators *vs,
               uint32_t self) SEQ_MUST_CHECK;
/* Wipes every secret (kx key, session keys, stream states) and frees. */
void seq_hs_free(seq_hs *hs);

/* One received handshake frame (payload, without the length header).
 * 0, or SEQ_EHANDSHAKE (then and on every later call; see seq_hs_failure).
 * Feeding after established is SEQ_EHANDSHAKE too: data frames go to open. */
int seq_hs_feed(seq_hs *hs, const uint8_t *frame, size_t len) SEQ_MUST_CHECK;

/* Takes the next frame to send, in order: returns 1 and sets *frame (borrowed,
 * valid until hs is freed) and *len, or 0 when nothing is queued. */
int seq_hs_pop(seq_hs *hs, const uint8_t **frame, size_t *len);

bool seq_hs_established(const seq_hs *hs);
bool seq_hs_failed(const seq_hs *hs);
seq_hs_fail seq_hs_failure(const seq_hs *hs);
const char *seq_hs_fail_str(seq_hs_fail f);
/* The peer's validator index; only once established. */
uint32_t seq_hs_peer(const seq_hs *hs);

/* Encrypts one frame into out, which holds len + SEQ_HS_SEAL_BYTES bytes (it
 * must not overlap in). Only once established. */
void seq_hs_seal(seq_hs *hs, const uint8_t *in, size_t len, uint8_t *out);
/* Decrypts the next frame of the peer's stream into out, which holds
 * len - SEQ_HS_SEAL_BYTES bytes (must not overlap in); *out_len is that.
 * SEQ_EDECODE for a frame too short, altered, replayed, reordered, from
 * another stream or with a tag we never send; the link must be closed then.
 * Only once established. */
int seq_hs_open(seq_hs *hs, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) SEQ_MUST_CHECK;

#endif
