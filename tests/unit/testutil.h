/* Helpers shared by the unit tests: temporary directories that really exist
 * on disk (real LMDB, real key files) and are removed afterwards. */
#ifndef SEQ_TESTUTIL_H
#define SEQ_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

/* Creates a fresh directory $TMPDIR/seq-test-<name>-XXXXXX (TMPDIR defaults
 * to /tmp) and writes its path to out. 0, or -1 when it cannot. */
int seq_test_tmpdir(char *out, size_t cap, const char *name);

/* Removes dir and everything below it. 0, or -1 when something stayed. */
int seq_test_rmtree(const char *dir);

/* n deterministic validator keys: key i comes from the seed {i+1, 0, ...}, so
 * every test file names the same validators. Initialises libsodium first.
 * 0, or -1 (keys made so far are freed). Free with seq_test_keys_free. */
int seq_test_keys_make(seq_keypair **keys, int n);
void seq_test_keys_free(seq_keypair **keys, int n);

/* A vote of `kind` by validator `signer`, signed with key for chain_id;
 * hash may be NULL (nullify). */
seq_vote seq_test_vote(uint8_t kind, uint64_t view, const seq_hash *hash, uint32_t signer, const seq_keypair *key,
                       uint64_t chain_id);

/* cmocka-asserts that a and b are the same vote, field by field. */
void seq_test_assert_vote_equal(const seq_vote *a, const seq_vote *b);

#endif
