/* libsodium wrappers: ed25519 identity keys (secret in guarded sodium memory),
 * key files on disk, detached signatures, BLAKE2b-256 and hex helpers. */
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "errors.h"

_Static_assert(SEQ_HASH_BYTES == crypto_generichash_BYTES, "hash size");
_Static_assert(SEQ_PUBKEY_BYTES == crypto_sign_PUBLICKEYBYTES, "public key size");
_Static_assert(SEQ_SECRET_BYTES == crypto_sign_SECRETKEYBYTES, "secret key size");
_Static_assert(SEQ_SEED_BYTES == crypto_sign_SEEDBYTES, "seed size");
_Static_assert(SEQ_SIG_BYTES == crypto_sign_BYTES, "signature size");
/* seq_hasher is an opaque stand-in for libsodium's state: it must be able to
 * hold one, with the same alignment, or the casts below are undefined. */
_Static_assert(sizeof(seq_hasher) >= sizeof(crypto_generichash_state), "seq_hasher too small");
_Static_assert(_Alignof(seq_hasher) >= _Alignof(crypto_generichash_state), "seq_hasher misaligned");

#define KEYFILE_TAG "seq-ed25519-seed-v1 "
#define KEYFILE_TAG_LEN (sizeof(KEYFILE_TAG) - 1)
#define KEYFILE_HEX_LEN (2 * SEQ_SEED_BYTES)
/* tag || hex || '\n' */
#define KEYFILE_BYTES (KEYFILE_TAG_LEN + KEYFILE_HEX_LEN + 1)
#define HASH_SHORT_SLOTS 4
#define HASH_SHORT_BYTES 4 /* 8 hex chars */

int seq_crypto_init(void)
{
    /* sodium_init is itself idempotent and thread-safe; the flag only skips
     * the call on hot paths after the first success. */
    static _Atomic int done;
    if (done)
        return 0;
    if (sodium_init() < 0)
        return SEQ_EIO;
    done = 1;
    return 0;
}

static int keypair_alloc(seq_keypair **out)
{
    int rc = seq_crypto_init();
    if (rc)
        return rc;
    seq_keypair *kp = calloc(1, sizeof *kp);
    if (!kp)
        return SEQ_ENOMEM;
    kp->sk = sodium_malloc(SEQ_SECRET_BYTES);
    if (!kp->sk) {
        free(kp);
        return SEQ_ENOMEM;
    }
    *out = kp;
    return 0;
}

int seq_keypair_generate(seq_keypair **out)
{
    seq_keypair *kp;
    int rc = keypair_alloc(&kp);
    if (rc)
        return rc;
    crypto_sign_keypair(kp->pk.b, kp->sk);
    *out = kp;
    return 0;
}

int seq_keypair_from_seed(seq_keypair **out, const uint8_t seed[SEQ_SEED_BYTES])
{
    seq_keypair *kp;
    int rc = keypair_alloc(&kp);
    if (rc)
        return rc;
    crypto_sign_seed_keypair(kp->pk.b, kp->sk, seed);
    *out = kp;
    return 0;
}

void seq_keypair_free(seq_keypair *kp)
{
    if (!kp)
        return;
    sodium_memzero(kp->sk, SEQ_SECRET_BYTES);
    sodium_free(kp->sk);
    free(kp);
}

/* ---- key files ------------------------------------------------------------ */

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return SEQ_EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Writes the key line into line (KEYFILE_BYTES); the caller wipes it. */
static void keyfile_format(const seq_keypair *kp, char line[KEYFILE_BYTES + 1])
{
    uint8_t seed[SEQ_SEED_BYTES];
    crypto_sign_ed25519_sk_to_seed(seed, kp->sk);
    memcpy(line, KEYFILE_TAG, KEYFILE_TAG_LEN);
    sodium_bin2hex(line + KEYFILE_TAG_LEN, KEYFILE_HEX_LEN + 1, seed, sizeof seed);
    line[KEYFILE_BYTES - 1] = '\n';
    line[KEYFILE_BYTES] = '\0';
    sodium_memzero(seed, sizeof seed);
}

int seq_keyfile_save(const seq_keypair *kp, const char *path)
{
    SEQ_ASSERT(kp && kp->sk && path);
    /* O_EXCL: never replace an identity key that may already be in a genesis. */
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? SEQ_EEXISTS : SEQ_EIO;

    char line[KEYFILE_BYTES + 1];
    keyfile_format(kp, line);
    int rc = write_all(fd, (const uint8_t *)line, KEYFILE_BYTES);
    sodium_memzero(line, sizeof line);
    if (rc)
        goto err_after_open;
    if (fsync(fd) != 0) {
        rc = SEQ_EIO;
        goto err_after_open;
    }
    if (close(fd) != 0) {
        rc = SEQ_EIO;
        goto err_after_close;
    }
    return 0;

err_after_open:
    close(fd);
err_after_close:
    /* We created the file; a half-written key must not be left behind. */
    unlink(path);
    return rc;
}

/* Reads until end of file or cap bytes; *len is how many were read. */
static int read_bounded(int fd, uint8_t *buf, size_t cap, size_t *len)
{
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return SEQ_EIO;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    *len = got;
    return 0;
}

static int keyfile_parse(char *buf, size_t len, uint8_t seed[SEQ_SEED_BYTES])
{
    if (len != KEYFILE_BYTES || memcmp(buf, KEYFILE_TAG, KEYFILE_TAG_LEN) != 0 ||
        buf[KEYFILE_BYTES - 1] != '\n')
        return SEQ_EDECODE;
    buf[KEYFILE_BYTES - 1] = '\0';
    return seq_unhex(seed, SEQ_SEED_BYTES, buf + KEYFILE_TAG_LEN);
}

int seq_keyfile_load(seq_keypair **out, const char *path)
{
    SEQ_ASSERT(out && path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? SEQ_ENOTFOUND : SEQ_EIO;

    int rc;
    struct stat st;
    /* fstat on the open descriptor: the file checked is the file read. */
    if (fstat(fd, &st) != 0) {
        rc = SEQ_EIO;
        goto err_after_open;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = SEQ_EDECODE;
        goto err_after_open;
    }
    if (st.st_mode & 077) {
        rc = SEQ_EPERM;
        goto err_after_open;
    }

    /* One byte of room past a valid file, so a longer file is seen as such. */
    char buf[KEYFILE_BYTES + 1];
    uint8_t seed[SEQ_SEED_BYTES];
    size_t len = 0;
    rc = read_bounded(fd, (uint8_t *)buf, sizeof buf, &len);
    if (rc == 0)
        rc = keyfile_parse(buf, len, seed);
    if (rc == 0)
        rc = seq_keypair_from_seed(out, seed);
    sodium_memzero(buf, sizeof buf);
    sodium_memzero(seed, sizeof seed);

err_after_open:
    close(fd);
    return rc;
}

/* ---- signatures ----------------------------------------------------------- */

void seq_sign(const seq_keypair *kp, const void *msg, size_t len, seq_sig *out)
{
    SEQ_ASSERT(kp && kp->sk && out);
    int rc = crypto_sign_detached(out->b, NULL, msg, len, kp->sk);
    SEQ_ASSERT(rc == 0);
}

int seq_sig_verify(const seq_pubkey *pk, const void *msg, size_t len, const seq_sig *sig)
{
    SEQ_ASSERT(pk && sig);
    if (crypto_sign_verify_detached(sig->b, msg, len, pk->b) != 0)
        return SEQ_EBADSIG;
    return 0;
}

/* ---- BLAKE2b-256 ---------------------------------------------------------- */

void seq_hash_compute(seq_hash *out, const void *data, size_t len)
{
    int rc = crypto_generichash(out->b, SEQ_HASH_BYTES, data, len, NULL, 0);
    SEQ_ASSERT(rc == 0);
}

void seq_hasher_init(seq_hasher *h)
{
    int rc = crypto_generichash_init((crypto_generichash_state *)h->opaque, NULL, 0, SEQ_HASH_BYTES);
    SEQ_ASSERT(rc == 0);
}

void seq_hasher_update(seq_hasher *h, const void *data, size_t len)
{
    int rc = crypto_generichash_update((crypto_generichash_state *)h->opaque, data, len);
    SEQ_ASSERT(rc == 0);
}

void seq_hasher_final(seq_hasher *h, seq_hash *out)
{
    int rc = crypto_generichash_final((crypto_generichash_state *)h->opaque, out->b, SEQ_HASH_BYTES);
    SEQ_ASSERT(rc == 0);
}

/* ---- hex ------------------------------------------------------------------ */

void seq_hex(char *out, const void *data, size_t len)
{
    /* sodium_bin2hex is constant-time: fine for seeds as well as hashes. */
    sodium_bin2hex(out, 2 * len + 1, data, len);
}

const char *seq_hash_short(const seq_hash *h)
{
    static _Thread_local char slots[HASH_SHORT_SLOTS][2 * HASH_SHORT_BYTES + 1];
    static _Thread_local unsigned next;
    char *s = slots[next++ % HASH_SHORT_SLOTS];
    seq_hex(s, h->b, HASH_SHORT_BYTES);
    return s;
}

int seq_unhex(void *out, size_t len, const char *hex)
{
    SEQ_ASSERT(out && hex);
    size_t bin_len = 0;
    const char *end = NULL;
    if (strnlen(hex, 2 * len + 1) != 2 * len)
        return SEQ_EDECODE;
    if (sodium_hex2bin(out, len, hex, 2 * len, NULL, &bin_len, &end) != 0 || bin_len != len ||
        end != hex + 2 * len)
        return SEQ_EDECODE;
    return 0;
}
