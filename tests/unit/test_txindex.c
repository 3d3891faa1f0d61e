/* txindex: the Bloom filter's promises; the index as sorted runs merged in the
 * background (every id found at its first location, absent ids not, across
 * merges, reopens and a read-only open); the single B-tree of earlier versions
 * dropped for re-indexing; a slot left behind by a cut-short merge emptied.
 * Real LMDB in temporary directories, random ids from libsodium. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <lmdb.h>
#include <sodium.h>

#include "bloom.h"
#include "codec.h"
#include "errors.h"
#include "testutil.h"
#include "txindex.h"

#define MAP_BYTES (256u << 20)
#define BLOOM_IDS 100000u
#define BATCHES 40u      /* one run each before merging: 40 = 2*16 + 2*4 */
#define BATCH_IDS 1000u
#define RUNS_AFTER_MERGES 4u
#define ABSENT_IDS 5000u
#define RAPID_BATCHES 24u
#define RAPID_BATCH_IDS 65536u /* two merge chunks a batch */
#define RAPID_RUNS_MAX 12u     /* 3 per level over 4 levels, once settled */

typedef struct {
    char dir[256];
    seq_hash *ids; /* BATCHES * BATCH_IDS, batch b at height b + 1 */
} fixture;

static seq_hash random_id(void)
{
    seq_hash id;
    randombytes_buf(id.b, sizeof id.b);
    return id;
}

/* A block that carries only what the index reads: height and tx ids. */
static int add_ids(seq_txindex *x, uint64_t height, const seq_hash *ids, uint32_t n)
{
    seq_tx *txs = calloc(n, sizeof *txs);
    assert_non_null(txs);
    for (uint32_t i = 0; i < n; i++)
        txs[i].id = ids[i];
    seq_block b = {.h = {.height = height}, .txs = txs, .tx_count = n};
    int rc = seq_txindex_add(x, &b);
    free(txs);
    return rc;
}

static int setup(void **state)
{
    if (sodium_init() < 0)
        return -1;
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx || seq_test_tmpdir(fx->dir, sizeof fx->dir, "txindex") != 0)
        return -1;
    fx->ids = malloc(BATCHES * BATCH_IDS * sizeof *fx->ids);
    for (uint32_t i = 0; fx->ids && i < BATCHES * BATCH_IDS; i++)
        fx->ids[i] = random_id();
    *state = fx;
    return fx->ids ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    seq_test_rmtree(fx->dir);
    free(fx->ids);
    free(fx);
    return 0;
}

/* Writes BATCHES batches, each made durable as its own run. */
static seq_txindex *open_and_fill(fixture *fx)
{
    seq_txindex *x = NULL;
    assert_int_equal(seq_txindex_open(&x, fx->dir, MAP_BYTES, false), 0);
    for (uint32_t b = 0; b < BATCHES; b++) {
        assert_int_equal(add_ids(x, b + 1, fx->ids + b * BATCH_IDS, BATCH_IDS), 0);
        assert_int_equal(seq_txindex_sync(x), 0);
    }
    assert_int_equal(seq_txindex_settle(x), 0);
    return x;
}

static void assert_all_found(seq_txindex *x, const fixture *fx)
{
    for (uint32_t i = 0; i < BATCHES * BATCH_IDS; i++) {
        uint64_t height = 0;
        uint32_t index = UINT32_MAX;
        assert_int_equal(seq_txindex_find(x, &fx->ids[i], &height, &index), 0);
        assert_int_equal(height, i / BATCH_IDS + 1);
        assert_int_equal(index, i % BATCH_IDS);
    }
    bool *found = calloc(BATCHES * BATCH_IDS, sizeof *found);
    assert_non_null(found);
    assert_int_equal(seq_txindex_find_many(x, fx->ids, BATCHES * BATCH_IDS, found), 0);
    for (uint32_t i = 0; i < BATCHES * BATCH_IDS; i++)
        assert_true(found[i]);
    free(found);
}

static void assert_absent_not_found(seq_txindex *x)
{
    seq_hash *absent = malloc(ABSENT_IDS * sizeof *absent);
    bool *found = calloc(ABSENT_IDS, sizeof *found);
    assert_true(absent && found);
    for (uint32_t i = 0; i < ABSENT_IDS; i++)
        absent[i] = random_id();
    assert_int_equal(seq_txindex_find_many(x, absent, ABSENT_IDS, found), 0);
    for (uint32_t i = 0; i < ABSENT_IDS; i++)
        assert_false(found[i]);
    uint64_t height;
    uint32_t index;
    assert_int_equal(seq_txindex_find(x, &absent[0], &height, &index), SEQ_ENOTFOUND);
    free(absent);
    free(found);
}

/* Every added id is maybe-present; unrelated ids rarely are (10 bits an id
 * gives ~1%); ids ground to share all the bytes the filter reads are still
 * found (a grinder only raises false positives). */
static void test_bloom_promises(void **state)
{
    (void)state;
    uint64_t lines = seq_bloom_lines_for(BLOOM_IDS);
    uint8_t *f = calloc(lines, SEQ_BLOOM_LINE_BYTES);
    seq_hash *ids = malloc(BLOOM_IDS * sizeof *ids);
    assert_true(f && ids);
    for (uint32_t i = 0; i < BLOOM_IDS; i++) {
        ids[i] = random_id();
        seq_bloom_add(f, lines, &ids[i]);
    }
    for (uint32_t i = 0; i < BLOOM_IDS; i++)
        assert_true(seq_bloom_maybe(f, lines, &ids[i]));
    uint32_t positives = 0;
    for (uint32_t i = 0; i < BLOOM_IDS; i++) {
        seq_hash other = random_id();
        positives += seq_bloom_maybe(f, lines, &other);
    }
    assert_true(positives < BLOOM_IDS / 33); /* under 3% */
    assert_int_equal(seq_bloom_lines_for(0), 1);

    memset(f, 0, lines * SEQ_BLOOM_LINE_BYTES);
    seq_hash ground = random_id();
    for (uint32_t i = 0; i < 100; i++) {
        ground.b[31] = (uint8_t)i; /* differs only past the bytes the filter reads */
        seq_bloom_add(f, lines, &ground);
        assert_true(seq_bloom_maybe(f, lines, &ground));
    }
    free(f);
    free(ids);
}

/* 40 durable batches end up as 4 runs (two of 16 batches, two of 4): every id
 * found at its location, 5000 random ids not; the same after a reopen and
 * from a read-only open. */
static void test_runs_merged_and_found(void **state)
{
    fixture *fx = *state;
    seq_txindex *x = open_and_fill(fx);
    assert_int_equal(seq_txindex_runs(x), RUNS_AFTER_MERGES);
    assert_int_equal(seq_txindex_height(x), BATCHES);
    assert_all_found(x, fx);
    assert_absent_not_found(x);
    seq_txindex_close(x);

    assert_int_equal(seq_txindex_open(&x, fx->dir, MAP_BYTES, false), 0);
    assert_int_equal(seq_txindex_runs(x), RUNS_AFTER_MERGES);
    assert_int_equal(seq_txindex_height(x), BATCHES);
    assert_all_found(x, fx);
    seq_txindex_close(x);

    assert_int_equal(seq_txindex_open(&x, fx->dir, MAP_BYTES, true), 0);
    assert_all_found(x, fx);
    assert_absent_not_found(x);
    seq_txindex_close(x);
}

/* An id indexed twice (in two runs, then in their merge) answers with its
 * first location. */
static void test_first_location_kept(void **state)
{
    fixture *fx = *state;
    seq_txindex *x = NULL;
    assert_int_equal(seq_txindex_open(&x, fx->dir, MAP_BYTES, false), 0);
    seq_hash twice = random_id();
    for (uint32_t b = 0; b < 4; b++) { /* four runs: merged into one */
        seq_hash ids[2] = {twice, random_id()};
        assert_int_equal(add_ids(x, 10 + b, ids, 2), 0);
        assert_int_equal(seq_txindex_sync(x), 0);
        uint64_t height = 0;
        uint32_t index = 9;
        assert_int_equal(seq_txindex_find(x, &twice, &height, &index), 0);
        assert_int_equal(height, 10);
        assert_int_equal(index, 0);
    }
    assert_int_equal(seq_txindex_settle(x), 0);
    assert_int_equal(seq_txindex_runs(x), 1);
    uint64_t height = 0;
    uint32_t index = 9;
    assert_int_equal(seq_txindex_find(x, &twice, &height, &index), 0);
    assert_int_equal(height, 10);
    assert_int_equal(index, 0);
    seq_txindex_close(x);
}

/* Raw LMDB access to the index's environment, as an earlier version or a
 * crash would have left it. */
static MDB_env *raw_open(const fixture *fx, MDB_txn **txn)
{
    char path[320];
    snprintf(path, sizeof path, "%s/%s", fx->dir, SEQ_TXINDEX_DIR);
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 80), 0);
    assert_int_equal(mdb_env_set_mapsize(env, MAP_BYTES), 0);
    assert_int_equal(mdb_env_open(env, path, MDB_NOTLS, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, txn), 0);
    return env;
}

static void raw_put(MDB_txn *txn, const char *table, const void *key, size_t klen, const void *val, size_t vlen)
{
    MDB_dbi dbi;
    assert_int_equal(mdb_dbi_open(txn, table, MDB_CREATE, &dbi), 0);
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key}, v = {.mv_size = vlen, .mv_data = (void *)val};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
}

static size_t raw_entries(MDB_txn *txn, const char *table)
{
    MDB_dbi dbi;
    MDB_stat st;
    if (mdb_dbi_open(txn, table, 0, &dbi) != 0)
        return SIZE_MAX; /* no such table */
    assert_int_equal(mdb_stat(txn, dbi, &st), 0);
    return st.ms_entries;
}

/* The single B-tree of earlier versions ("txs") is dropped and the height
 * goes back to 0, so the store indexes its blocks again as runs. */
static void test_legacy_layout_dropped(void **state)
{
    fixture *fx = *state;
    char path[320];
    snprintf(path, sizeof path, "%s/%s", fx->dir, SEQ_TXINDEX_DIR);
    assert_int_equal(mkdir(path, 0700), 0);
    MDB_txn *txn;
    MDB_env *env = raw_open(fx, &txn);
    uint8_t loc[12] = {0}, height[8];
    seq_put_u64be(height, 7);
    raw_put(txn, "txs", fx->ids[0].b, SEQ_HASH_BYTES, loc, sizeof loc);
    raw_put(txn, "state", "height", 6, height, sizeof height);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    seq_txindex *x = NULL;
    assert_int_equal(seq_txindex_open(&x, fx->dir, MAP_BYTES, false), 0);
    assert_int_equal(seq_txindex_height(x), 0);
    uint64_t h;
    uint32_t index;
    assert_int_equal(seq_txindex_find(x, &fx->ids[0], &h, &index), SEQ_ENOTFOUND);
    seq_txindex_close(x);

    env = raw_open(fx, &txn);
    assert_int_equal(raw_entries(txn, "txs"), SIZE_MAX);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

/* A slot holding ids but listed by no run (a merge cut short by a crash) is
 * emptied at open, and new batches are written into it as usual. */
static void test_unlisted_slot_emptied(void **state)
{
    fixture *fx = *state;
    seq_txindex *x = NULL;
    assert_int_equal(seq_txindex_open(&x, fx->dir, MAP_BYTES, false), 0);
    seq_txindex_close(x);
    MDB_txn *txn;
    MDB_env *env = raw_open(fx, &txn);
    uint8_t loc[12] = {0};
    for (uint32_t i = 0; i < 100; i++)
        raw_put(txn, "run00", fx->ids[i].b, SEQ_HASH_BYTES, loc, sizeof loc);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    assert_int_equal(seq_txindex_open(&x, fx->dir, MAP_BYTES, false), 0);
    seq_txindex_close(x);
    env = raw_open(fx, &txn);
    assert_int_equal(raw_entries(txn, "run00"), 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);

    x = open_and_fill(fx);
    assert_all_found(x, fx);
    seq_txindex_close(x);
}

/* Big batches handed over back to back, as at a catch-up from height 0,
 * while merges run between them: no error, every id found, few runs once
 * settled. (Running the slots out without the worker's merge-first rule
 * takes over 16M ids: too slow for a unit test.) */
static void test_rapid_batches_all_found(void **state)
{
    fixture *fx = *state;
    seq_hash *ids = malloc((size_t)RAPID_BATCHES * RAPID_BATCH_IDS * sizeof *ids);
    assert_non_null(ids);
    randombytes_buf(ids, (size_t)RAPID_BATCHES * RAPID_BATCH_IDS * sizeof *ids);
    seq_txindex *x = NULL;
    assert_int_equal(seq_txindex_open(&x, fx->dir, MAP_BYTES * 4, false), 0);
    for (uint32_t b = 0; b < RAPID_BATCHES; b++) {
        assert_int_equal(add_ids(x, b + 1, ids + (size_t)b * RAPID_BATCH_IDS, RAPID_BATCH_IDS), 0);
        assert_int_equal(seq_txindex_flush(x), 0); /* hands over unless busy; never waits */
    }
    assert_int_equal(seq_txindex_sync(x), 0);
    assert_int_equal(seq_txindex_settle(x), 0);
    assert_true(seq_txindex_runs(x) <= RAPID_RUNS_MAX);
    bool *found = calloc((size_t)RAPID_BATCHES * RAPID_BATCH_IDS, sizeof *found);
    assert_non_null(found);
    assert_int_equal(seq_txindex_find_many(x, ids, (size_t)RAPID_BATCHES * RAPID_BATCH_IDS, found), 0);
    for (size_t i = 0; i < (size_t)RAPID_BATCHES * RAPID_BATCH_IDS; i++)
        assert_true(found[i]);
    seq_txindex_close(x);
    free(found);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bloom_promises),
        cmocka_unit_test_setup_teardown(test_runs_merged_and_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_location_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_layout_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlisted_slot_emptied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rapid_batches_all_found, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
