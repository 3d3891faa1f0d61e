/* Unit tests of lib/crypto.c: real libsodium keys, real key files in a
 * mkdtemp() directory, BLAKE2b-256 known answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "errors.h"

#define DIR_BYTES_MAX 64 /* short, so a dir + name always fits PATH_BYTES_MAX */
#define PATH_BYTES_MAX 128

typedef struct {
    char dir[DIR_BYTES_MAX];
} fixture;

static int setup(void **state)
{
    if (seq_crypto_init() != 0)
        return -1;
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (seq_test_tmpdir(fx->dir, sizeof fx->dir, "crypto") != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    int rc = seq_test_rmtree(fx->dir);
    free(fx);
    return rc;
}

static void path_in(const fixture *fx, const char *name, char out[PATH_BYTES_MAX])
{
    snprintf(out, PATH_BYTES_MAX, "%s/%s", fx->dir, name);
}

/* Writes content to a new file with the given mode (fchmod so umask cannot
 * change it). */
static void write_file(const char *path, const char *content, mode_t mode)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    size_t len = strlen(content);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

static void assert_same_key(const seq_keypair *a, const seq_keypair *b)
{
    assert_memory_equal(a->pk.b, b->pk.b, SEQ_PUBKEY_BYTES);
    assert_memory_equal(a->sk, b->sk, SEQ_SECRET_BYTES);
}

/* A generated key saved to a file and loaded back is the same key, and the
 * loaded key's signatures verify under the original public key. */
static void test_keyfile_round_trip(void **state)
{
    fixture *fx = *state;
    char path[PATH_BYTES_MAX];
    path_in(fx, "key", path);
    seq_keypair *kp = NULL, *loaded = NULL;
    assert_int_equal(seq_keypair_generate(&kp), 0);
    assert_int_equal(seq_keyfile_save(kp, path), 0);
    assert_int_equal(seq_keyfile_load(&loaded, path), 0);
    assert_same_key(kp, loaded);

    seq_sig sig;
    seq_sign(loaded, "hello", 5, &sig);
    assert_int_equal(seq_sig_verify(&kp->pk, "hello", 5, &sig), 0);
    seq_keypair_free(kp);
    seq_keypair_free(loaded);
}

/* The saved file has mode 0600 exactly and holds one line in the documented
 * format: the tag, the seed in lower-case hex, a newline. */
static void test_keyfile_mode_and_format(void **state)
{
    fixture *fx = *state;
    char path[PATH_BYTES_MAX];
    path_in(fx, "key", path);
    uint8_t seed[SEQ_SEED_BYTES];
    for (int i = 0; i < SEQ_SEED_BYTES; i++)
        seed[i] = (uint8_t)(0xa0 + i);
    seq_keypair *kp = NULL;
    assert_int_equal(seq_keypair_from_seed(&kp, seed), 0);
    assert_int_equal(seq_keyfile_save(kp, path), 0);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    char content[256] = {0};
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t got = fread(content, 1, sizeof content - 1, f);
    fclose(f);
    const char *want = "seq-ed25519-seed-v1 "
                       "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\n";
    assert_int_equal(got, strlen(want));
    assert_string_equal(content, want);
    seq_keypair_free(kp);
}

/* A key file readable by group or others is refused with SEQ_EPERM, even
 * though its content is valid; the same file at 0600 loads. */
static void test_keyfile_load_refuses_open_mode(void **state)
{
    fixture *fx = *state;
    char path[PATH_BYTES_MAX];
    path_in(fx, "open", path);
    const char *line = "seq-ed25519-seed-v1 "
                       "0000000000000000000000000000000000000000000000000000000000000001\n";
    write_file(path, line, 0644);
    seq_keypair *kp = NULL;
    assert_int_equal(seq_keyfile_load(&kp, path), SEQ_EPERM);
    assert_null(kp);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(seq_keyfile_load(&kp, path), SEQ_EPERM);
    assert_int_equal(chmod(path, 0604), 0);
    assert_int_equal(seq_keyfile_load(&kp, path), SEQ_EPERM);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(seq_keyfile_load(&kp, path), 0);
    assert_non_null(kp);
    seq_keypair_free(kp);
}

/* save never overwrites: an existing file gives SEQ_EEXISTS and keeps its
 * content (the first key still loads). */
static void test_keyfile_save_refuses_overwrite(void **state)
{
    fixture *fx = *state;
    char path[PATH_BYTES_MAX];
    path_in(fx, "key", path);
    seq_keypair *first = NULL, *second = NULL, *loaded = NULL;
    assert_int_equal(seq_keypair_generate(&first), 0);
    assert_int_equal(seq_keypair_generate(&second), 0);
    assert_int_equal(seq_keyfile_save(first, path), 0);
    assert_int_equal(seq_keyfile_save(second, path), SEQ_EEXISTS);
    assert_int_equal(seq_keyfile_load(&loaded, path), 0);
    assert_same_key(first, loaded);
    seq_keypair_free(first);
    seq_keypair_free(second);
    seq_keypair_free(loaded);
}

/* A missing file is SEQ_ENOTFOUND, and every kind of malformed content is
 * SEQ_EDECODE: wrong tag, short or long hex, a non-hex char, no newline,
 * trailing bytes, an empty file. */
static void test_keyfile_load_malformed(void **state)
{
    fixture *fx = *state;
    char path[PATH_BYTES_MAX];
    seq_keypair *kp = NULL;
    path_in(fx, "absent", path);
    assert_int_equal(seq_keyfile_load(&kp, path), SEQ_ENOTFOUND);

    static const char *const bad[] = {
        "seq-ed25519-seed-v2 0000000000000000000000000000000000000000000000000000000000000001\n",
        "seq-ed25519-seed-v1 000000000000000000000000000000000000000000000000000000000000001\n",
        "seq-ed25519-seed-v1 00000000000000000000000000000000000000000000000000000000000000011\n",
        "seq-ed25519-seed-v1 000000000000000000000000000000000000000000000000000000000000000g\n",
        "seq-ed25519-seed-v1 0000000000000000000000000000000000000000000000000000000000000001",
        "seq-ed25519-seed-v1 0000000000000000000000000000000000000000000000000000000000000001\nx",
        "seq-ed25519-seed-v1  000000000000000000000000000000000000000000000000000000000000001\n",
        "",
    };
    path_in(fx, "bad", path);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unlink(path);
        write_file(path, bad[i], 0600);
        assert_int_equal(seq_keyfile_load(&kp, path), SEQ_EDECODE);
        assert_null(kp);
    }
}

/* from_seed is deterministic: the same seed gives the same key (and
 * ed25519's deterministic signatures), a different seed a different key. */
static void test_from_seed_deterministic(void **state)
{
    (void)state;
    uint8_t seed[SEQ_SEED_BYTES] = {1, 2, 3};
    seq_keypair *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(seq_keypair_from_seed(&a, seed), 0);
    assert_int_equal(seq_keypair_from_seed(&b, seed), 0);
    seed[0] ^= 1;
    assert_int_equal(seq_keypair_from_seed(&c, seed), 0);
    assert_same_key(a, b);
    assert_memory_not_equal(a->pk.b, c->pk.b, SEQ_PUBKEY_BYTES);

    seq_sig sa, sb;
    seq_sign(a, "m", 1, &sa);
    seq_sign(b, "m", 1, &sb);
    assert_memory_equal(sa.b, sb.b, SEQ_SIG_BYTES);
    seq_keypair_free(a);
    seq_keypair_free(b);
    seq_keypair_free(c);
}

/* verify accepts a good signature and rejects a flipped bit in the signature,
 * in the message, and a signature checked under another key. */
static void test_sign_verify(void **state)
{
    (void)state;
    seq_keypair *kp = NULL, *other = NULL;
    assert_int_equal(seq_keypair_generate(&kp), 0);
    assert_int_equal(seq_keypair_generate(&other), 0);
    uint8_t msg[100];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)i;
    seq_sig sig;
    seq_sign(kp, msg, sizeof msg, &sig);
    assert_int_equal(seq_sig_verify(&kp->pk, msg, sizeof msg, &sig), 0);

    for (int bit = 0; bit < SEQ_SIG_BYTES * 8; bit += 37) {
        seq_sig bad = sig;
        bad.b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(seq_sig_verify(&kp->pk, msg, sizeof msg, &bad), SEQ_EBADSIG);
    }
    msg[50] ^= 0x10;
    assert_int_equal(seq_sig_verify(&kp->pk, msg, sizeof msg, &sig), SEQ_EBADSIG);
    msg[50] ^= 0x10;
    assert_int_equal(seq_sig_verify(&other->pk, msg, sizeof msg, &sig), SEQ_EBADSIG);
    seq_keypair_free(kp);
    seq_keypair_free(other);
}

static void assert_hash_hex(const seq_hash *h, const char *want)
{
    char hex[2 * SEQ_HASH_BYTES + 1];
    seq_hex(hex, h->b, SEQ_HASH_BYTES);
    assert_string_equal(hex, want);
}

/* BLAKE2b-256 matches the published known answers for "" and "abc". */
static void test_blake2b_known_answers(void **state)
{
    (void)state;
    seq_hash h;
    seq_hash_compute(&h, "", 0);
    assert_hash_hex(&h, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    seq_hash_compute(&h, "abc", 3);
    assert_hash_hex(&h, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

/* The incremental hasher gives the one-shot hash whatever the split points,
 * including empty updates and splits across BLAKE2b's 128-byte blocks. */
static void test_hasher_incremental_equals_one_shot(void **state)
{
    (void)state;
    uint8_t data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    seq_hash want;
    seq_hash_compute(&want, data, sizeof data);

    static const size_t steps[] = {1, 7, 127, 128, 129, 333, 1000};
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        seq_hasher h;
        seq_hasher_init(&h);
        seq_hasher_update(&h, data, 0);
        for (size_t off = 0; off < sizeof data; off += steps[s]) {
            size_t n = sizeof data - off < steps[s] ? sizeof data - off : steps[s];
            seq_hasher_update(&h, data + off, n);
        }
        seq_hash got;
        seq_hasher_final(&h, &got);
        assert_true(seq_hash_eq(&got, &want));
    }
    seq_hasher h;
    seq_hasher_init(&h);
    seq_hasher_update(&h, "ab", 2);
    seq_hasher_update(&h, "c", 1);
    seq_hash got;
    seq_hasher_final(&h, &got);
    assert_hash_hex(&got, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

/* hex round-trips, unhex accepts upper case and rejects a wrong length, a
 * non-hex char and a longer string; hash_short is the first 8 hex chars and
 * its 4 slots do not overwrite each other. */
static void test_hex_helpers(void **state)
{
    (void)state;
    const uint8_t bytes[4] = {0x00, 0x9f, 0xa0, 0xff};
    char hex[9];
    seq_hex(hex, bytes, sizeof bytes);
    assert_string_equal(hex, "009fa0ff");
    uint8_t back[4];
    assert_int_equal(seq_unhex(back, sizeof back, "009FA0ff"), 0);
    assert_memory_equal(back, bytes, sizeof bytes);
    assert_int_equal(seq_unhex(back, sizeof back, "009fa0f"), SEQ_EDECODE);
    assert_int_equal(seq_unhex(back, sizeof back, "009fa0ff00"), SEQ_EDECODE);
    assert_int_equal(seq_unhex(back, sizeof back, "009fa0fz"), SEQ_EDECODE);
    assert_int_equal(seq_unhex(back, sizeof back, " 009fa0f"), SEQ_EDECODE);

    seq_hash h1, h2;
    seq_hash_compute(&h1, "", 0);
    seq_hash_compute(&h2, "abc", 3);
    const char *s1 = seq_hash_short(&h1);
    const char *s2 = seq_hash_short(&h2);
    assert_string_equal(s1, "0e5751c0");
    assert_string_equal(s2, "bddd813c");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keyfile_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyfile_mode_and_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyfile_load_refuses_open_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyfile_save_refuses_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyfile_load_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_from_seed_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blake2b_known_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hasher_incremental_equals_one_shot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hex_helpers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
