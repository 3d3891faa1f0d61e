/* The peer handshake state machine and the secretstream session it yields
 * (protocol in lib/handshake.h). Pure: no sockets, no clock. */
#include "handshake.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errors.h"
#include "seq.pb-c.h"

_Static_assert(SEQ_HS_SEAL_BYTES == crypto_secretstream_xchacha20poly1305_ABYTES, "seal overhead");
_Static_assert(crypto_kx_PUBLICKEYBYTES == SEQ_PUBKEY_BYTES, "kx key size");
_Static_assert(crypto_secretstream_xchacha20poly1305_HEADERBYTES <= SEQ_HS_FRAME_BYTES_MAX, "header fits");
_Static_assert(crypto_kx_SESSIONKEYBYTES == crypto_secretstream_xchacha20poly1305_KEYBYTES, "kx keys feed streams");

#define HS_DOMAIN "seq/handshake/v1"
#define HS_OUT_FRAMES 3 /* Hello, HelloAuth, header: all a side ever sends */

typedef enum { AWAIT_HELLO, AWAIT_AUTH, AWAIT_HEADER, ESTABLISHED, FAILED } hs_state;

struct seq_hs {
    seq_hs_role role;
    uint64_t chain_id;
    const seq_keypair *key;
    const seq_validators *vs;
    uint32_t self;
    hs_state state;
    seq_hs_fail fail;
    uint32_t peer;
    uint8_t kx_pk[crypto_kx_PUBLICKEYBYTES];
    uint8_t kx_sk[crypto_kx_SECRETKEYBYTES];
    uint8_t rx[crypto_kx_SESSIONKEYBYTES];
    uint8_t tx[crypto_kx_SESSIONKEYBYTES];
    seq_hash transcript;
    uint8_t out[HS_OUT_FRAMES][SEQ_HS_FRAME_BYTES_MAX];
    size_t out_len[HS_OUT_FRAMES];
    unsigned out_count, out_next;
    crypto_secretstream_xchacha20poly1305_state push, pull;
};

/* Room for the next outgoing frame; the three frames fit by design. */
static uint8_t *out_slot(seq_hs *hs, size_t len)
{
    SEQ_ASSERT(hs->out_count < HS_OUT_FRAMES);
    SEQ_ASSERT(len <= SEQ_HS_FRAME_BYTES_MAX);
    hs->out_len[hs->out_count] = len;
    return hs->out[hs->out_count++];
}

static void queue_hello(seq_hs *hs)
{
    Seq__Hello h = SEQ__HELLO__INIT;
    h.version = SEQ_HS_VERSION;
    h.kx_pubkey.data = hs->kx_pk;
    h.kx_pubkey.len = sizeof hs->kx_pk;
    h.identity_pubkey.data = (uint8_t *)hs->key->pk.b;
    h.identity_pubkey.len = SEQ_PUBKEY_BYTES;
    h.chain_id = hs->chain_id;
    seq__hello__pack(&h, out_slot(hs, seq__hello__get_packed_size(&h)));
}

int seq_hs_new(seq_hs **out, seq_hs_role role, uint64_t chain_id, const seq_keypair *key, const seq_validators *vs,
               uint32_t self)
{
    SEQ_ASSERT(out && key && vs);
    SEQ_ASSERT(role == SEQ_HS_DIALER || role == SEQ_HS_ACCEPTOR);
    *out = NULL;
    if (self >= vs->n)
        return SEQ_EINVAL;
    seq_hs *hs = calloc(1, sizeof *hs);
    if (!hs)
        return SEQ_ENOMEM;
    hs->role = role;
    hs->chain_id = chain_id;
    hs->key = key;
    hs->vs = vs;
    hs->self = self;
    hs->state = AWAIT_HELLO;
    crypto_kx_keypair(hs->kx_pk, hs->kx_sk);
    queue_hello(hs);
    *out = hs;
    return 0;
}

void seq_hs_free(seq_hs *hs)
{
    if (!hs)
        return;
    sodium_memzero(hs, sizeof *hs);
    free(hs);
}

static int fail(seq_hs *hs, seq_hs_fail why)
{
    SEQ_ASSERT(why != SEQ_HS_FAIL_NONE);
    hs->state = FAILED;
    hs->fail = why;
    /* Nothing secret is needed any more. */
    sodium_memzero(hs->kx_sk, sizeof hs->kx_sk);
    sodium_memzero(hs->rx, sizeof hs->rx);
    sodium_memzero(hs->tx, sizeof hs->tx);
    sodium_memzero(&hs->push, sizeof hs->push);
    sodium_memzero(&hs->pull, sizeof hs->pull);
    return SEQ_EHANDSHAKE;
}

static void hash_part(seq_hasher *h, const uint8_t *data, size_t len)
{
    uint8_t n[4];
    seq_put_u32be(n, (uint32_t)len);
    seq_hasher_update(h, n, sizeof n);
    seq_hasher_update(h, data, len);
}

/* Both Hellos as sent on the wire, dialer's first, so both sides hash the
 * same bytes whatever order they arrived in. */
static void compute_transcript(seq_hs *hs, const uint8_t *theirs, size_t theirs_len)
{
    const uint8_t *ours = hs->out[0];
    size_t ours_len = hs->out_len[0];
    seq_hasher h;
    seq_hasher_init(&h);
    seq_hasher_update(&h, HS_DOMAIN, strlen(HS_DOMAIN));
    if (hs->role == SEQ_HS_DIALER) {
        hash_part(&h, ours, ours_len);
        hash_part(&h, theirs, theirs_len);
    } else {
        hash_part(&h, theirs, theirs_len);
        hash_part(&h, ours, ours_len);
    }
    seq_hasher_final(&h, &hs->transcript);
}

/* What a side signs: the transcript and its own role, so a signature made as
 * dialer cannot be reflected back as the acceptor's. */
static void auth_message(const seq_hs *hs, seq_hs_role role, uint8_t msg[SEQ_HASH_BYTES + 1])
{
    memcpy(msg, hs->transcript.b, SEQ_HASH_BYTES);
    msg[SEQ_HASH_BYTES] = (uint8_t)role;
}

static void queue_auth_and_header(seq_hs *hs)
{
    uint8_t msg[SEQ_HASH_BYTES + 1];
    auth_message(hs, hs->role, msg);
    seq_sig sig;
    seq_sign(hs->key, msg, sizeof msg, &sig);
    Seq__HelloAuth a = SEQ__HELLO_AUTH__INIT;
    a.sig.data = sig.b;
    a.sig.len = sizeof sig.b;
    seq__hello_auth__pack(&a, out_slot(hs, seq__hello_auth__get_packed_size(&a)));

    uint8_t *header = out_slot(hs, crypto_secretstream_xchacha20poly1305_HEADERBYTES);
    crypto_secretstream_xchacha20poly1305_init_push(&hs->push, header, hs->tx);
    sodium_memzero(hs->tx, sizeof hs->tx);
}

static int derive_keys(seq_hs *hs, const uint8_t *peer_kx)
{
    int rc = hs->role == SEQ_HS_DIALER
                 ? crypto_kx_client_session_keys(hs->rx, hs->tx, hs->kx_pk, hs->kx_sk, peer_kx)
                 : crypto_kx_server_session_keys(hs->rx, hs->tx, hs->kx_pk, hs->kx_sk, peer_kx);
    sodium_memzero(hs->kx_sk, sizeof hs->kx_sk);
    return rc;
}

/* Checks a Hello's fields; the identity must be another genesis validator. */
static seq_hs_fail check_hello(seq_hs *hs, const Seq__Hello *h)
{
    if (h->kx_pubkey.len != crypto_kx_PUBLICKEYBYTES || h->identity_pubkey.len != SEQ_PUBKEY_BYTES)
        return SEQ_HS_FAIL_MALFORMED;
    if (h->version != SEQ_HS_VERSION)
        return SEQ_HS_FAIL_VERSION;
    if (h->chain_id != hs->chain_id)
        return SEQ_HS_FAIL_CHAIN_ID;
    seq_pubkey id;
    memcpy(id.b, h->identity_pubkey.data, SEQ_PUBKEY_BYTES);
    if (memcmp(id.b, hs->key->pk.b, SEQ_PUBKEY_BYTES) == 0)
        return SEQ_HS_FAIL_OWN_KEY;
    int idx = seq_validators_find(hs->vs, &id);
    if (idx < 0)
        return SEQ_HS_FAIL_UNKNOWN_KEY;
    if ((uint32_t)idx == hs->self)
        return SEQ_HS_FAIL_OWN_KEY; /* our index under a copy of our key */
    hs->peer = (uint32_t)idx;
    return SEQ_HS_FAIL_NONE;
}

static int on_hello(seq_hs *hs, const uint8_t *frame, size_t len)
{
    Seq__Hello *h = seq__hello__unpack(NULL, len, frame);
    if (!h)
        return fail(hs, SEQ_HS_FAIL_MALFORMED);
    seq_hs_fail why = check_hello(hs, h);
    int kx_rc = why == SEQ_HS_FAIL_NONE ? derive_keys(hs, h->kx_pubkey.data) : 0;
    seq__hello__free_unpacked(h, NULL);
    if (why != SEQ_HS_FAIL_NONE)
        return fail(hs, why);
    if (kx_rc != 0)
        return fail(hs, SEQ_HS_FAIL_BAD_KX);
    compute_transcript(hs, frame, len);
    queue_auth_and_header(hs);
    hs->state = AWAIT_AUTH;
    return 0;
}

static int on_auth(seq_hs *hs, const uint8_t *frame, size_t len)
{
    Seq__HelloAuth *a = seq__hello_auth__unpack(NULL, len, frame);
    if (!a)
        return fail(hs, SEQ_HS_FAIL_MALFORMED);
    if (a->sig.len != SEQ_SIG_BYTES) {
        seq__hello_auth__free_unpacked(a, NULL);
        return fail(hs, SEQ_HS_FAIL_MALFORMED);
    }
    seq_sig sig;
    memcpy(sig.b, a->sig.data, SEQ_SIG_BYTES);
    seq__hello_auth__free_unpacked(a, NULL);
    uint8_t msg[SEQ_HASH_BYTES + 1];
    auth_message(hs, hs->role == SEQ_HS_DIALER ? SEQ_HS_ACCEPTOR : SEQ_HS_DIALER, msg);
    if (seq_sig_verify(&hs->vs->keys[hs->peer], msg, sizeof msg, &sig) != 0)
        return fail(hs, SEQ_HS_FAIL_BAD_SIG);
    hs->state = AWAIT_HEADER;
    return 0;
}

static int on_header(seq_hs *hs, const uint8_t *frame, size_t len)
{
    if (len != crypto_secretstream_xchacha20poly1305_HEADERBYTES)
        return fail(hs, SEQ_HS_FAIL_MALFORMED);
    if (crypto_secretstream_xchacha20poly1305_init_pull(&hs->pull, frame, hs->rx) != 0)
        return fail(hs, SEQ_HS_FAIL_MALFORMED);
    sodium_memzero(hs->rx, sizeof hs->rx);
    hs->state = ESTABLISHED;
    return 0;
}

int seq_hs_feed(seq_hs *hs, const uint8_t *frame, size_t len)
{
    SEQ_ASSERT(hs);
    SEQ_ASSERT(frame || len == 0);
    if (hs->state == FAILED)
        return SEQ_EHANDSHAKE;
    if (len > SEQ_HS_FRAME_BYTES_MAX)
        return fail(hs, SEQ_HS_FAIL_MALFORMED);
    switch (hs->state) {
    case AWAIT_HELLO:
        return on_hello(hs, frame, len);
    case AWAIT_AUTH:
        return on_auth(hs, frame, len);
    case AWAIT_HEADER:
        return on_header(hs, frame, len);
    case ESTABLISHED:
        return fail(hs, SEQ_HS_FAIL_EXTRA);
    case FAILED:
        break;
    }
    SEQ_UNREACHABLE();
    return SEQ_EHANDSHAKE;
}

int seq_hs_pop(seq_hs *hs, const uint8_t **frame, size_t *len)
{
    SEQ_ASSERT(hs && frame && len);
    if (hs->state == FAILED || hs->out_next == hs->out_count)
        return 0;
    *frame = hs->out[hs->out_next];
    *len = hs->out_len[hs->out_next];
    hs->out_next++;
    return 1;
}

bool seq_hs_established(const seq_hs *hs)
{
    return hs->state == ESTABLISHED;
}

bool seq_hs_failed(const seq_hs *hs)
{
    return hs->state == FAILED;
}

seq_hs_fail seq_hs_failure(const seq_hs *hs)
{
    return hs->fail;
}

const char *seq_hs_fail_str(seq_hs_fail f)
{
    switch (f) {
    case SEQ_HS_FAIL_NONE:
        return "none";
    case SEQ_HS_FAIL_MALFORMED:
        return "malformed handshake frame";
    case SEQ_HS_FAIL_VERSION:
        return "wrong handshake version";
    case SEQ_HS_FAIL_CHAIN_ID:
        return "wrong chain id";
    case SEQ_HS_FAIL_UNKNOWN_KEY:
        return "identity key not in genesis";
    case SEQ_HS_FAIL_OWN_KEY:
        return "peer claims our own identity key";
    case SEQ_HS_FAIL_BAD_KX:
        return "bad key exchange key";
    case SEQ_HS_FAIL_BAD_SIG:
        return "bad handshake signature";
    case SEQ_HS_FAIL_EXTRA:
        return "handshake frame after the handshake";
    }
    return "unknown";
}

uint32_t seq_hs_peer(const seq_hs *hs)
{
    SEQ_ASSERT(hs->state == ESTABLISHED);
    return hs->peer;
}

void seq_hs_seal(seq_hs *hs, const uint8_t *in, size_t len, uint8_t *out)
{
    SEQ_ASSERT(hs->state == ESTABLISHED);
    SEQ_ASSERT(in || len == 0);
    int rc = crypto_secretstream_xchacha20poly1305_push(&hs->push, out, NULL, in, len, NULL, 0,
                                                        crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    SEQ_ASSERT(rc == 0);
}

int seq_hs_open(seq_hs *hs, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len)
{
    SEQ_ASSERT(hs->state == ESTABLISHED);
    SEQ_ASSERT(out_len);
    if (len < SEQ_HS_SEAL_BYTES)
        return SEQ_EDECODE;
    unsigned long long n = 0;
    unsigned char tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(&hs->pull, out, &n, &tag, in, len, NULL, 0) != 0)
        return SEQ_EDECODE;
    /* We only ever push TAG_MESSAGE; a rekey or final tag is not ours. */
    if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
        return SEQ_EDECODE;
    *out_len = (size_t)n;
    return 0;
}
