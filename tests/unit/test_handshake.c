/* Unit tests of lib/handshake.c: two real state machines with real libsodium
 * keys handshake in memory; every refusal and every tampering is tried. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "handshake.h"
#include "seq.pb-c.h"

#define KEYS_N 4       /* keys 0..2 are genesis validators, key 3 is not */
#define VALIDATORS_N 3
#define CHAIN_ID 77
#define MSG_BYTES 300

typedef struct {
    seq_keypair *keys[KEYS_N];
    seq_validators vs;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx || seq_test_keys_make(fx->keys, KEYS_N) != 0) {
        free(fx);
        return -1;
    }
    seq_pubkey pks[VALIDATORS_N];
    for (int i = 0; i < VALIDATORS_N; i++)
        pks[i] = fx->keys[i]->pk;
    if (seq_validators_init(&fx->vs, pks, VALIDATORS_N) != 0) {
        seq_test_keys_free(fx->keys, KEYS_N);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    seq_test_keys_free(fx->keys, KEYS_N);
    free(fx);
    return 0;
}

/* Moves every queued frame from src into dst; returns dst's first error. */
static int deliver(seq_hs *src, seq_hs *dst)
{
    const uint8_t *f;
    size_t len;
    while (seq_hs_pop(src, &f, &len)) {
        int rc = seq_hs_feed(dst, f, len);
        if (rc)
            return rc;
    }
    return 0;
}

/* Runs both machines until neither has anything to send. */
static void pump(seq_hs *d, seq_hs *a, int *rc_d, int *rc_a)
{
    *rc_d = *rc_a = 0;
    for (int round = 0; round < 4; round++) {
        if (!*rc_a)
            *rc_a = deliver(d, a);
        if (!*rc_d)
            *rc_d = deliver(a, d);
    }
}

static void pair_new(fixture *fx, seq_hs **d, seq_hs **a, uint32_t dialer, uint32_t acceptor)
{
    assert_int_equal(seq_hs_new(d, SEQ_HS_DIALER, CHAIN_ID, fx->keys[dialer], &fx->vs, dialer), 0);
    assert_int_equal(seq_hs_new(a, SEQ_HS_ACCEPTOR, CHAIN_ID, fx->keys[acceptor], &fx->vs, acceptor), 0);
}

static void established_pair(fixture *fx, seq_hs **d, seq_hs **a)
{
    pair_new(fx, d, a, 0, 2);
    int rc_d, rc_a;
    pump(*d, *a, &rc_d, &rc_a);
    assert_int_equal(rc_d, 0);
    assert_int_equal(rc_a, 0);
    assert_true(seq_hs_established(*d));
    assert_true(seq_hs_established(*a));
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seed + i * 7);
}

/* Two validators handshake and exchange frames both ways, in order. */
static void test_handshake_and_exchange(void **state)
{
    fixture *fx = *state;
    seq_hs *d, *a;
    established_pair(fx, &d, &a);
    assert_int_equal(seq_hs_peer(d), 2);
    assert_int_equal(seq_hs_peer(a), 0);

    uint8_t msg[MSG_BYTES], ct[MSG_BYTES + SEQ_HS_SEAL_BYTES], pt[MSG_BYTES];
    for (int i = 0; i < 5; i++) {
        size_t len = (size_t)(i * 60); /* the empty frame included */
        fill(msg, len, (uint8_t)i);
        seq_hs *from = (i % 2) ? a : d, *to = (i % 2) ? d : a;
        seq_hs_seal(from, msg, len, ct);
        size_t out_len = 0;
        assert_int_equal(seq_hs_open(to, ct, len + SEQ_HS_SEAL_BYTES, pt, &out_len), 0);
        assert_int_equal(out_len, len);
        assert_memory_equal(pt, msg, len);
    }
    /* A frame fed to the handshake after it ended is an error. */
    uint8_t junk[4] = {1, 2, 3, 4};
    assert_int_equal(seq_hs_feed(a, junk, sizeof junk), SEQ_EHANDSHAKE);
    seq_hs_free(d);
    seq_hs_free(a);
}

/* Seals n frames of d into cts[i] (each MSG_BYTES long plaintext). */
static void seal_frames(seq_hs *d, uint8_t cts[][MSG_BYTES + SEQ_HS_SEAL_BYTES], int n)
{
    uint8_t msg[MSG_BYTES];
    for (int i = 0; i < n; i++) {
        fill(msg, sizeof msg, (uint8_t)(i + 1));
        seq_hs_seal(d, msg, sizeof msg, cts[i]);
    }
}

/* A frame opened twice fails the second time. */
static void test_replay_fails(void **state)
{
    fixture *fx = *state;
    seq_hs *d, *a;
    established_pair(fx, &d, &a);
    uint8_t cts[2][MSG_BYTES + SEQ_HS_SEAL_BYTES], pt[MSG_BYTES];
    seal_frames(d, cts, 2);
    size_t n;
    assert_int_equal(seq_hs_open(a, cts[0], sizeof cts[0], pt, &n), 0);
    assert_int_equal(seq_hs_open(a, cts[0], sizeof cts[0], pt, &n), SEQ_EDECODE);
    seq_hs_free(d);
    seq_hs_free(a);
}

/* The second frame cannot be opened before the first. */
static void test_reorder_fails(void **state)
{
    fixture *fx = *state;
    seq_hs *d, *a;
    established_pair(fx, &d, &a);
    uint8_t cts[2][MSG_BYTES + SEQ_HS_SEAL_BYTES], pt[MSG_BYTES];
    seal_frames(d, cts, 2);
    size_t n;
    assert_int_equal(seq_hs_open(a, cts[1], sizeof cts[1], pt, &n), SEQ_EDECODE);
    seq_hs_free(d);
    seq_hs_free(a);
}

/* Any altered byte, a truncated frame and our own frame reflected back fail. */
static void test_tamper_fails(void **state)
{
    fixture *fx = *state;
    seq_hs *d, *a;
    established_pair(fx, &d, &a);
    uint8_t cts[1][MSG_BYTES + SEQ_HS_SEAL_BYTES], pt[MSG_BYTES];
    seal_frames(d, cts, 1);
    size_t n;
    size_t positions[] = {0, 1, 100, sizeof cts[0] - 1};
    for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
        cts[0][positions[i]] ^= 0x10;
        assert_int_equal(seq_hs_open(a, cts[0], sizeof cts[0], pt, &n), SEQ_EDECODE);
        cts[0][positions[i]] ^= 0x10;
    }
    assert_int_equal(seq_hs_open(a, cts[0], SEQ_HS_SEAL_BYTES - 1, pt, &n), SEQ_EDECODE);
    assert_int_equal(seq_hs_open(a, cts[0], sizeof cts[0] - 1, pt, &n), SEQ_EDECODE);
    /* d's own frame is not in the stream d opens (other key). */
    assert_int_equal(seq_hs_open(d, cts[0], sizeof cts[0], pt, &n), SEQ_EDECODE);
    /* The untouched frame still opens: failures left the stream where it was. */
    assert_int_equal(seq_hs_open(a, cts[0], sizeof cts[0], pt, &n), 0);
    seq_hs_free(d);
    seq_hs_free(a);
}

/* A dialer whose identity key is not in genesis is refused as unknown. */
static void test_unknown_key_refused(void **state)
{
    fixture *fx = *state;
    seq_hs *d, *a;
    /* The outsider believes it is validator 0 of a set holding its own key. */
    seq_validators outsider_vs = fx->vs;
    outsider_vs.keys[0] = fx->keys[3]->pk;
    assert_int_equal(seq_hs_new(&d, SEQ_HS_DIALER, CHAIN_ID, fx->keys[3], &outsider_vs, 0), 0);
    assert_int_equal(seq_hs_new(&a, SEQ_HS_ACCEPTOR, CHAIN_ID, fx->keys[1], &fx->vs, 1), 0);
    int rc_d, rc_a;
    pump(d, a, &rc_d, &rc_a);
    assert_int_equal(rc_a, SEQ_EHANDSHAKE);
    assert_true(seq_hs_failed(a));
    assert_int_equal(seq_hs_failure(a), SEQ_HS_FAIL_UNKNOWN_KEY);
    assert_false(seq_hs_established(d));
    seq_hs_free(d);
    seq_hs_free(a);
}

/* One flipped bit in the dialer's HelloAuth: the acceptor refuses it. */
static void test_bad_signature_refused(void **state)
{
    fixture *fx = *state;
    seq_hs *d, *a;
    pair_new(fx, &d, &a, 1, 0);
    const uint8_t *f;
    size_t len;
    /* Hellos both ways. */
    assert_int_equal(seq_hs_pop(d, &f, &len), 1);
    assert_int_equal(seq_hs_feed(a, f, len), 0);
    assert_int_equal(deliver(a, d), 0);
    /* d's HelloAuth, altered in its last signature byte. */
    assert_int_equal(seq_hs_pop(d, &f, &len), 1);
    uint8_t auth[SEQ_HS_FRAME_BYTES_MAX];
    memcpy(auth, f, len);
    auth[len - 1] ^= 0x01;
    assert_int_equal(seq_hs_feed(a, auth, len), SEQ_EHANDSHAKE);
    assert_int_equal(seq_hs_failure(a), SEQ_HS_FAIL_BAD_SIG);
    /* Sticky: the genuine HelloAuth does not revive it. */
    assert_int_equal(seq_hs_feed(a, f, len), SEQ_EHANDSHAKE);
    assert_false(seq_hs_established(a));
    seq_hs_free(d);
    seq_hs_free(a);
}

/* A signature made as dialer is not accepted as the acceptor's (role byte). */
static void test_reflected_auth_refused(void **state)
{
    fixture *fx = *state;
    seq_hs *d, *a;
    pair_new(fx, &d, &a, 1, 0);
    const uint8_t *hello_d, *f;
    size_t hello_d_len, len;
    assert_int_equal(seq_hs_pop(d, &hello_d, &hello_d_len), 1);
    assert_int_equal(seq_hs_feed(a, hello_d, hello_d_len), 0);
    assert_int_equal(seq_hs_pop(a, &f, &len), 1); /* a's Hello */
    assert_int_equal(seq_hs_feed(d, f, len), 0);
    /* a's HelloAuth sent back to a as if from d: wrong key and role. */
    assert_int_equal(seq_hs_pop(a, &f, &len), 1);
    assert_int_equal(seq_hs_feed(a, f, len), SEQ_EHANDSHAKE);
    assert_int_equal(seq_hs_failure(a), SEQ_HS_FAIL_BAD_SIG);
    seq_hs_free(d);
    seq_hs_free(a);
}

/* Peers of different chains refuse each other. */
static void test_wrong_chain_refused(void **state)
{
    fixture *fx = *state;
    seq_hs *d, *a;
    assert_int_equal(seq_hs_new(&d, SEQ_HS_DIALER, CHAIN_ID + 1, fx->keys[0], &fx->vs, 0), 0);
    assert_int_equal(seq_hs_new(&a, SEQ_HS_ACCEPTOR, CHAIN_ID, fx->keys[1], &fx->vs, 1), 0);
    /* Both Hellos cross on the wire before either side judges the other. */
    const uint8_t *hello_d, *hello_a;
    size_t len_d, len_a;
    assert_int_equal(seq_hs_pop(d, &hello_d, &len_d), 1);
    assert_int_equal(seq_hs_pop(a, &hello_a, &len_a), 1);
    assert_int_equal(seq_hs_feed(a, hello_d, len_d), SEQ_EHANDSHAKE);
    assert_int_equal(seq_hs_feed(d, hello_a, len_a), SEQ_EHANDSHAKE);
    assert_int_equal(seq_hs_failure(a), SEQ_HS_FAIL_CHAIN_ID);
    assert_int_equal(seq_hs_failure(d), SEQ_HS_FAIL_CHAIN_ID);
    seq_hs_free(d);
    seq_hs_free(a);
}

/* Our own Hello reflected back (our key claimed by the peer) is refused. */
static void test_own_key_refused(void **state)
{
    fixture *fx = *state;
    seq_hs *d, *a;
    pair_new(fx, &d, &a, 1, 1); /* both hold key 1 */
    int rc_d, rc_a;
    pump(d, a, &rc_d, &rc_a);
    assert_int_equal(rc_a, SEQ_EHANDSHAKE);
    assert_int_equal(seq_hs_failure(a), SEQ_HS_FAIL_OWN_KEY);
    seq_hs_free(d);
    seq_hs_free(a);

    assert_int_equal(seq_hs_new(&d, SEQ_HS_DIALER, CHAIN_ID, fx->keys[0], &fx->vs, 0), 0);
    const uint8_t *f;
    size_t len;
    assert_int_equal(seq_hs_pop(d, &f, &len), 1);
    assert_int_equal(seq_hs_feed(d, f, len), SEQ_EHANDSHAKE);
    assert_int_equal(seq_hs_failure(d), SEQ_HS_FAIL_OWN_KEY);
    seq_hs_free(d);
}

/* Feeds one Hello to a fresh acceptor (validator 1); returns its failure. */
static seq_hs_fail feed_hello(fixture *fx, const Seq__Hello *h)
{
    uint8_t buf[SEQ_HS_FRAME_BYTES_MAX];
    size_t len = seq__hello__pack(h, buf);
    seq_hs *a;
    assert_int_equal(seq_hs_new(&a, SEQ_HS_ACCEPTOR, CHAIN_ID, fx->keys[1], &fx->vs, 1), 0);
    int rc = seq_hs_feed(a, buf, len);
    seq_hs_fail why = seq_hs_failure(a);
    assert_int_equal(rc, why == SEQ_HS_FAIL_NONE ? 0 : SEQ_EHANDSHAKE);
    seq_hs_free(a);
    return why;
}

/* Hellos of the wrong shape or version, garbage and oversized frames. */
static void test_malformed_hello_refused(void **state)
{
    fixture *fx = *state;
    uint8_t kx[32] = {9};
    Seq__Hello h = SEQ__HELLO__INIT;
    h.version = SEQ_HS_VERSION;
    h.kx_pubkey.data = kx;
    h.kx_pubkey.len = sizeof kx;
    h.identity_pubkey.data = fx->keys[0]->pk.b;
    h.identity_pubkey.len = SEQ_PUBKEY_BYTES;
    h.chain_id = CHAIN_ID;
    assert_int_equal(feed_hello(fx, &h), SEQ_HS_FAIL_NONE); /* the control */

    h.kx_pubkey.len = 31;
    assert_int_equal(feed_hello(fx, &h), SEQ_HS_FAIL_MALFORMED);
    h.kx_pubkey.len = sizeof kx;
    h.identity_pubkey.len = 0;
    assert_int_equal(feed_hello(fx, &h), SEQ_HS_FAIL_MALFORMED);
    h.identity_pubkey.len = SEQ_PUBKEY_BYTES;
    h.version = SEQ_HS_VERSION + 1;
    assert_int_equal(feed_hello(fx, &h), SEQ_HS_FAIL_VERSION);
    h.version = SEQ_HS_VERSION;
    memset(kx, 0, sizeof kx); /* the identity point: crypto_kx refuses it */
    assert_int_equal(feed_hello(fx, &h), SEQ_HS_FAIL_BAD_KX);

    seq_hs *a;
    assert_int_equal(seq_hs_new(&a, SEQ_HS_ACCEPTOR, CHAIN_ID, fx->keys[1], &fx->vs, 1), 0);
    uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(seq_hs_feed(a, garbage, sizeof garbage), SEQ_EHANDSHAKE);
    assert_int_equal(seq_hs_failure(a), SEQ_HS_FAIL_MALFORMED);
    const uint8_t *f;
    size_t len;
    assert_int_equal(seq_hs_pop(a, &f, &len), 0); /* a failed machine sends nothing */
    seq_hs_free(a);

    uint8_t big[SEQ_HS_FRAME_BYTES_MAX + 1] = {0};
    assert_int_equal(seq_hs_new(&a, SEQ_HS_ACCEPTOR, CHAIN_ID, fx->keys[1], &fx->vs, 1), 0);
    assert_int_equal(seq_hs_feed(a, big, sizeof big), SEQ_EHANDSHAKE);
    assert_int_equal(seq_hs_failure(a), SEQ_HS_FAIL_MALFORMED);
    seq_hs_free(a);
}

/* A stream header of the wrong size ends the handshake. */
static void test_bad_header_refused(void **state)
{
    fixture *fx = *state;
    seq_hs *d, *a;
    pair_new(fx, &d, &a, 0, 1);
    const uint8_t *f;
    size_t len;
    for (int i = 0; i < 2; i++) { /* Hello, HelloAuth */
        assert_int_equal(seq_hs_pop(d, &f, &len), 1);
        assert_int_equal(seq_hs_feed(a, f, len), 0);
        if (i == 0)
            assert_int_equal(deliver(a, d), 0);
    }
    assert_int_equal(seq_hs_pop(d, &f, &len), 1);
    assert_int_equal(seq_hs_feed(a, f, len - 1), SEQ_EHANDSHAKE);
    assert_int_equal(seq_hs_failure(a), SEQ_HS_FAIL_MALFORMED);
    seq_hs_free(d);
    seq_hs_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_exchange),
        cmocka_unit_test(test_replay_fails),
        cmocka_unit_test(test_reorder_fails),
        cmocka_unit_test(test_tamper_fails),
        cmocka_unit_test(test_unknown_key_refused),
        cmocka_unit_test(test_bad_signature_refused),
        cmocka_unit_test(test_reflected_auth_refused),
        cmocka_unit_test(test_wrong_chain_refused),
        cmocka_unit_test(test_own_key_refused),
        cmocka_unit_test(test_malformed_hello_refused),
        cmocka_unit_test(test_bad_header_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
