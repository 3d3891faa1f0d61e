/* Temporary directories, keys and vote checks for the unit tests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int seq_test_tmpdir(char *out, size_t cap, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(out, cap, "%s/seq-test-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return mkdtemp(out) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int seq_test_rmtree(const char *dir)
{
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

seq_vote seq_test_vote(uint8_t kind, uint64_t view, const seq_hash *hash, uint32_t signer, const seq_keypair *key,
                       uint64_t chain_id)
{
    seq_vote v;
    memset(&v, 0, sizeof v);
    v.kind = kind;
    v.view = view;
    if (hash)
        v.hash = *hash;
    v.signer = signer;
    seq_vote_sign(&v, key, chain_id);
    return v;
}

int seq_test_keys_make(seq_keypair **keys, int n)
{
    if (seq_crypto_init() != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        uint8_t seed[SEQ_SEED_BYTES] = {0};
        seed[0] = (uint8_t)(i + 1);
        if (seq_keypair_from_seed(&keys[i], seed) != 0) {
            seq_test_keys_free(keys, i);
            return -1;
        }
    }
    return 0;
}

void seq_test_keys_free(seq_keypair **keys, int n)
{
    for (int i = 0; i < n; i++) {
        seq_keypair_free(keys[i]);
        keys[i] = NULL;
    }
}

void seq_test_assert_vote_equal(const seq_vote *a, const seq_vote *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->view, b->view);
    assert_int_equal(a->signer, b->signer);
    assert_memory_equal(a->hash.b, b->hash.b, SEQ_HASH_BYTES);
    assert_memory_equal(a->sig.b, b->sig.b, SEQ_SIG_BYTES);
}
