/* The subscription batch cache over a real LMDB store: every batch it gives
 * is the namespace's slice of the stored block, whether the block was
 * delivered (adopted) or read back from the store, across more heights than
 * its ring holds; the blocks it holds stay within their byte bound, and a
 * replay from far back does not push out the recent blocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batchcache.h"
#include "errors.h"
#include "seq.pb-c.h"
#include "store.h"
#include "testutil.h"
#include "types.h"

#define CHAIN_ID 7u
#define N_VALIDATORS 4u
#define HEIGHTS (SEQ_BATCH_CACHE_BLOCKS + 44u)
#define NS_A 10u
#define NS_NONE 99u

static seq_keypair *keys[N_VALIDATORS];
static seq_validators vs;
static char dir[256];
static seq_store *store;
static seq_block *blocks[HEIGHTS + 1];
static seq_cert certs[HEIGHTS + 1];

/* Block h: h % 5 + 1 transactions of NS_A and two of namespace 20. */
static void block_make(uint32_t h)
{
    char p[8][32];
    seq_tx txs[8];
    uint32_t n = 0;
    for (uint32_t i = 0; i < h % 5 + 1; i++, n++) {
        int len = snprintf(p[n], sizeof p[n], "a-%u-%u", h, i);
        txs[n] = (seq_tx){.ns = NS_A, .len = (uint32_t)len, .data = (const uint8_t *)p[n]};
    }
    for (uint32_t i = 0; i < 2; i++, n++) {
        int len = snprintf(p[n], sizeof p[n], "b-%u-%u", h, i);
        txs[n] = (seq_tx){.ns = 20, .len = (uint32_t)len, .data = (const uint8_t *)p[n]};
    }
    seq_hash zero;
    memset(&zero, 0, sizeof zero);
    seq_header hd = {.chain_id = CHAIN_ID, .height = h, .view = h, .parent = h > 1 ? blocks[h - 1]->hash : zero,
                     .parent_view = h - 1, .leader = h % N_VALIDATORS, .timestamp_ms = 1000 + h};
    assert_int_equal(seq_block_build(&blocks[h], &hd, txs, n), 0);
    seq_vote votes[3];
    for (uint32_t i = 0; i < 3; i++)
        votes[i] = seq_test_vote(SEQ_VOTE_FINALIZE, h, &blocks[h]->hash, i, keys[i], CHAIN_ID);
    assert_int_equal(seq_cert_build(&certs[h], &vs, votes, 3), 0);
}

static int group_setup(void **state)
{
    (void)state;
    if (seq_test_keys_make(keys, N_VALIDATORS) != 0)
        return -1;
    seq_pubkey pks[N_VALIDATORS];
    for (uint32_t i = 0; i < N_VALIDATORS; i++)
        pks[i] = keys[i]->pk;
    if (seq_validators_init(&vs, pks, N_VALIDATORS) != 0 || seq_test_tmpdir(dir, sizeof dir, "batchcache") != 0)
        return -1;
    seq_store_opts so = {.chain_id = CHAIN_ID, .map_bytes = 64u << 20};
    if (seq_store_open(&store, dir, &so) != 0)
        return -1;
    static seq_store_final items[HEIGHTS];
    for (uint32_t h = 1; h <= HEIGHTS; h++) {
        block_make(h);
        items[h - 1] = (seq_store_final){.block = blocks[h], .cert = &certs[h]};
    }
    return seq_store_commit_finalized(store, items, HEIGHTS) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    for (uint32_t h = 1; h <= HEIGHTS; h++)
        seq_block_free(blocks[h]);
    seq_store_close(store);
    seq_test_keys_free(keys, N_VALIDATORS);
    return seq_test_rmtree(dir);
}

/* The batch of ns at height h decodes to the stored block's slice. */
static void assert_batch(seq_batch_cache *c, uint64_t h, seq_ns ns)
{
    const uint8_t *bytes;
    size_t len;
    uint32_t txs = 99;
    assert_int_equal(seq_batch_cache_get(c, h, ns, &bytes, &len, &txs), 0);
    Seq__NamespaceBatch *pb = seq__namespace_batch__unpack(NULL, len, bytes);
    assert_non_null(pb);
    assert_int_equal(pb->header->height, h);
    assert_int_equal(pb->ns, ns);
    uint32_t want = ns == NS_A ? (uint32_t)(h % 5 + 1) : 0;
    assert_int_equal(pb->n_txs, want);
    assert_int_equal(txs, want);
    for (uint32_t i = 0; i < want; i++) {
        char p[32];
        int plen = snprintf(p, sizeof p, "a-%u-%u", (unsigned)h, i);
        assert_int_equal(pb->txs[i]->payload.len, (size_t)plen);
        assert_memory_equal(pb->txs[i]->payload.data, p, (size_t)plen);
    }
    assert_memory_equal(pb->cert->hash.data, blocks[h]->hash.b, SEQ_HASH_BYTES);
    seq__namespace_batch__free_unpacked(pb, NULL);
}

/* Delivered blocks and blocks read back from the store give the same
 * batches, for more heights than the ring holds, with a bound that holds
 * only a few blocks: the bytes held never exceed it by more than the block
 * being served. */
static void test_batches_within_the_block_bound(void **state)
{
    (void)state;
    size_t one = seq_block_mem_bytes(blocks[1]);
    size_t bound = 6 * one;
    seq_batch_cache *c;
    assert_int_equal(seq_batch_cache_new(&c, store, 1u << 20, bound), 0);
    for (uint32_t h = HEIGHTS - 20; h <= HEIGHTS; h++) /* delivered: the cache owns the clones */
        seq_batch_cache_adopt(c, seq_block_clone(blocks[h]), &certs[h]);
    for (uint32_t h = 1; h <= HEIGHTS; h++) {
        assert_batch(c, h, NS_A);
        assert_batch(c, h, NS_NONE);
        assert_true(seq_batch_cache_block_bytes(c) <= bound + 2 * one);
    }
    seq_batch_cache_free(c);
}

/* A replay from far back (heights congruent to recent ones in the ring)
 * leaves the recent delivered blocks in place. */
static void test_replay_keeps_recent_blocks(void **state)
{
    (void)state;
    seq_batch_cache *c;
    assert_int_equal(seq_batch_cache_new(&c, store, 1u << 20, 64u << 20), 0);
    uint32_t recent = HEIGHTS;                        /* in ring slot HEIGHTS % ring */
    uint32_t old = HEIGHTS - SEQ_BATCH_CACHE_BLOCKS;  /* the same slot */
    seq_batch_cache_adopt(c, seq_block_clone(blocks[recent]), &certs[recent]);
    size_t held = seq_batch_cache_block_bytes(c);
    assert_int_equal(held, seq_block_mem_bytes(blocks[recent]));
    assert_batch(c, old, NS_A); /* read from the store, kept beside the recent one */
    assert_int_equal(seq_batch_cache_block_bytes(c), held + seq_block_mem_bytes(blocks[old]));
    assert_batch(c, recent, NS_NONE);
    assert_int_equal(seq_batch_cache_block_bytes(c), held + seq_block_mem_bytes(blocks[old]));
    seq_batch_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_within_the_block_bound),
        cmocka_unit_test(test_replay_keeps_recent_blocks),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
