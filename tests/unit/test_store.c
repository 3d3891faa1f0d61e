/* Unit tests of lib/store.c: a real LMDB in a mkdtemp() directory, real blocks
 * built with seq_block_build, hand-made certificates (the store only keeps
 * their bytes), and a read-only reader in another process. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec.h"
#include "errors.h"
#include "log.h"
#include "store.h"
#include "types.h"
#include "votelog.h"

#define DIR_BYTES_MAX 64
#define PATH_BYTES_MAX (DIR_BYTES_MAX + 256 + 2) /* dir + "/" + any d_name */
#define CHAIN_ID 7
#define CHAIN_BLOCKS_MAX 64
#define TXS_PER_BLOCK 5
#define NS_COUNT 3           /* namespaces 1..NS_COUNT */
#define SMALL_PAYLOAD_BYTES 24
#define BIG_PAYLOAD_BYTES 2048
#define TINY_MAP_BYTES (256u << 10)
#define TEST_MAP_BYTES (16u << 20)
#define GARBAGE_BYTES (64u << 10)
#define SIGNERS 3
#define RECORDED_MAX 256

/* A deterministic chain: block h has view h * view_step, parent = block h-1. */
typedef struct {
    uint32_t n;
    seq_block *blocks[CHAIN_BLOCKS_MAX + 1]; /* [0] unused */
    seq_cert certs[CHAIN_BLOCKS_MAX + 1];
} chain;

typedef struct {
    char dir[DIR_BYTES_MAX];
    seq_store *s;
    chain *c;
} fixture;

/* ---- fixture ------------------------------------------------------------------ */

static int setup(void **state)
{
    if (seq_crypto_init() != 0)
        return -1;
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (seq_test_tmpdir(fx->dir, sizeof fx->dir, "store") != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static void chain_free(chain *c)
{
    if (!c)
        return;
    for (uint32_t h = 1; h <= c->n; h++)
        seq_block_free(c->blocks[h]);
    free(c);
}

/* Removes every file of the (flat) directory, then the directory. */
static int teardown(void **state)
{
    fixture *fx = *state;
    seq_store_close(fx->s);
    chain_free(fx->c);
    int rc = seq_test_rmtree(fx->dir);
    free(fx);
    return rc;
}

static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* ---- chain building -------------------------------------------------------------- */

static void cert_fabricate(seq_cert *c, const seq_block *b)
{
    memset(c, 0, sizeof *c);
    c->kind = SEQ_VOTE_FINALIZE;
    c->view = b->h.view;
    c->hash = b->hash;
    for (uint32_t i = 0; i < SIGNERS; i++) {
        seq_bitmap_set(c->bitmap, i);
        memset(c->sigs[i].b, (int)(b->h.height * SIGNERS + i), SEQ_SIG_BYTES);
    }
    c->sig_count = SIGNERS;
}

static seq_block *block_make(uint64_t chain_id, uint64_t height, uint64_t view,
                             const seq_hash *parent, size_t payload_bytes)
{
    uint8_t payloads[TXS_PER_BLOCK][BIG_PAYLOAD_BYTES];
    seq_tx txs[TXS_PER_BLOCK];
    assert_true(payload_bytes <= BIG_PAYLOAD_BYTES);
    for (uint32_t i = 0; i < TXS_PER_BLOCK; i++) {
        memset(payloads[i], 'a' + (int)i, payload_bytes);
        snprintf((char *)payloads[i], payload_bytes, "h=%llu i=%u", (unsigned long long)height, i);
        /* Namespaces interleave so the block sort reorders them. */
        txs[i] = (seq_tx){.ns = (height + i) % NS_COUNT + 1, .len = (uint32_t)payload_bytes,
                          .data = payloads[i]};
    }
    seq_header tmpl = {.chain_id = chain_id, .height = height, .view = view,
                       .parent = *parent, .parent_view = view > 0 ? view - 1 : 0,
                       .leader = (uint32_t)(view % 4), .timestamp_ms = 1700000000000ull + height};
    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, &tmpl, txs, TXS_PER_BLOCK), 0);
    return b;
}

static chain *chain_make(uint32_t n, uint64_t view_step, size_t payload_bytes)
{
    assert_true(n <= CHAIN_BLOCKS_MAX);
    chain *c = calloc(1, sizeof *c);
    assert_non_null(c);
    seq_hash parent = {{0}};
    for (uint32_t h = 1; h <= n; h++) {
        c->blocks[h] = block_make(CHAIN_ID, h, h * view_step, &parent, payload_bytes);
        cert_fabricate(&c->certs[h], c->blocks[h]);
        parent = c->blocks[h]->hash;
        c->n = h;
    }
    return c;
}

/* Commits chain heights [from, to] in one batch. */
static int commit_range(seq_store *s, const chain *c, uint32_t from, uint32_t to)
{
    seq_store_final items[CHAIN_BLOCKS_MAX];
    assert_true(from >= 1 && to <= c->n && from <= to);
    size_t n = 0;
    for (uint32_t h = from; h <= to; h++)
        items[n++] = (seq_store_final){.block = c->blocks[h], .cert = &c->certs[h]};
    return seq_store_commit_finalized(s, items, n);
}

static seq_store_opts opts_make(uint64_t chain_id, size_t map_bytes, bool read_only)
{
    return (seq_store_opts){.chain_id = chain_id, .map_bytes = map_bytes, .read_only = read_only};
}

static void store_open_ok(fixture *fx, size_t map_bytes)
{
    seq_store_opts o = opts_make(CHAIN_ID, map_bytes, false);
    assert_int_equal(seq_store_open(&fx->s, fx->dir, &o), 0);
}

static void store_reopen(fixture *fx, size_t map_bytes)
{
    seq_store_close(fx->s);
    fx->s = NULL;
    store_open_ok(fx, map_bytes);
}

static void assert_tip(seq_store *s, const chain *c, uint32_t height)
{
    seq_store_tip tip;
    assert_int_equal(seq_store_tip_get(s, &tip), 0);
    assert_int_equal(tip.height, height);
    if (height == 0) {
        assert_int_equal(tip.view, 0);
        assert_true(seq_hash_is_zero(&tip.hash));
        return;
    }
    assert_int_equal(tip.view, c->blocks[height]->h.view);
    assert_true(seq_hash_eq(&tip.hash, &c->blocks[height]->hash));
}

static void assert_cert_bytes_equal(const seq_cert *a, const seq_cert *b)
{
    uint8_t ea[sizeof(seq_cert) + 64], eb[sizeof(seq_cert) + 64];
    size_t la = seq_cert_encoded_size(a), lb = seq_cert_encoded_size(b);
    assert_int_equal(la, lb);
    seq_cert_encode(a, ea);
    seq_cert_encode(b, eb);
    assert_memory_equal(ea, eb, la);
}

/* Everything the store says about height h matches the chain. */
static void assert_height_stored(seq_store *s, const chain *c, uint32_t h)
{
    const seq_block *want = c->blocks[h];
    seq_block *got = NULL;
    assert_int_equal(seq_store_block_get(s, h, &got), 0);
    assert_true(seq_hash_eq(&got->hash, &want->hash));
    assert_int_equal(got->tx_count, want->tx_count);
    seq_block_free(got);

    seq_cert cert;
    assert_int_equal(seq_store_cert_get(s, h, &cert), 0);
    assert_cert_bytes_equal(&cert, &c->certs[h]);

    uint64_t height = 0;
    assert_int_equal(seq_store_height_of(s, &want->hash, &height), 0);
    assert_int_equal(height, h);
    for (uint32_t i = 0; i < want->tx_count; i++) {
        uint32_t index = UINT32_MAX;
        assert_int_equal(seq_store_tx_find(s, &want->txs[i].id, &height, &index), 0);
        assert_int_equal(height, h);
        assert_int_equal(index, i);
    }
}

static void assert_height_absent(seq_store *s, const chain *c, uint32_t h)
{
    seq_block *got = NULL;
    seq_cert cert;
    uint64_t height;
    uint32_t index;
    assert_int_equal(seq_store_block_get(s, h, &got), SEQ_ENOTFOUND);
    assert_null(got);
    assert_int_equal(seq_store_cert_get(s, h, &cert), SEQ_ENOTFOUND);
    assert_int_equal(seq_store_height_of(s, &c->blocks[h]->hash, &height), SEQ_ENOTFOUND);
    assert_int_equal(seq_store_tx_find(s, &c->blocks[h]->txs[0].id, &height, &index), SEQ_ENOTFOUND);
}

/* ---- ns_each recorder ---------------------------------------------------------------- */

typedef struct {
    size_t n;
    uint64_t heights[RECORDED_MAX];
    uint32_t indexes[RECORDED_MAX];
    seq_hash ids[RECORDED_MAX];
    int stop_with; /* returned by the callback; 0 keeps walking */
} recorder;

static int record_cb(void *ctx, uint64_t height, uint32_t index, const seq_tx *tx)
{
    recorder *r = ctx;
    if (r->n == RECORDED_MAX)
        return -1;
    /* The tx handed out must be intact: its id recomputed from the bytes. */
    seq_tx copy = *tx;
    seq_tx_compute_id(&copy);
    if (!seq_hash_eq(&copy.id, &tx->id))
        return -2;
    r->heights[r->n] = height;
    r->indexes[r->n] = index;
    r->ids[r->n] = tx->id;
    r->n++;
    return r->stop_with;
}

/* What ns_each must yield for ns from from_height, up to limit (0 = all). */
static void expected_ns(const chain *c, uint32_t tip, seq_ns ns, uint64_t from_height,
                        size_t limit, recorder *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t h = 1; h <= tip; h++) {
        if (h < from_height)
            continue;
        for (uint32_t i = 0; i < c->blocks[h]->tx_count; i++) {
            if (c->blocks[h]->txs[i].ns != ns || (limit && out->n == limit))
                continue;
            out->heights[out->n] = h;
            out->indexes[out->n] = i;
            out->ids[out->n] = c->blocks[h]->txs[i].id;
            out->n++;
        }
    }
}

static void assert_ns_walk(seq_store *s, const chain *c, uint32_t tip, seq_ns ns,
                           uint64_t from_height, size_t limit)
{
    recorder want, got;
    expected_ns(c, tip, ns, from_height, limit, &want);
    memset(&got, 0, sizeof got);
    assert_int_equal(seq_store_ns_each(s, ns, from_height, limit, record_cb, &got), 0);
    assert_int_equal(got.n, want.n);
    for (size_t i = 0; i < want.n; i++) {
        assert_int_equal(got.heights[i], want.heights[i]);
        assert_int_equal(got.indexes[i], want.indexes[i]);
        assert_true(seq_hash_eq(&got.ids[i], &want.ids[i]));
    }
}

/* ---- tests ------------------------------------------------------------------------- */

/* Blocks committed in two batches survive close and reopen, and the tip, block,
 * certificate, hash and tx indexes all answer exactly for them and only them. */
static void test_commit_reopen_reads_back(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(6, 2, SMALL_PAYLOAD_BYTES);
    store_open_ok(fx, TEST_MAP_BYTES);
    assert_tip(fx->s, fx->c, 0);
    assert_int_equal(commit_range(fx->s, fx->c, 1, 3), 0);
    assert_int_equal(commit_range(fx->s, fx->c, 4, 5), 0);
    store_reopen(fx, TEST_MAP_BYTES);

    assert_tip(fx->s, fx->c, 5);
    for (uint32_t h = 1; h <= 5; h++)
        assert_height_stored(fx->s, fx->c, h);
    assert_height_absent(fx->s, fx->c, 6);

    seq_hash ids[3] = {fx->c->blocks[2]->txs[1].id, fx->c->blocks[6]->txs[0].id,
                       fx->c->blocks[5]->txs[4].id};
    bool found[3] = {false, true, false};
    assert_int_equal(seq_store_txs_finalized(fx->s, ids, 3, found), 0);
    assert_true(found[0]);
    assert_false(found[1]);
    assert_true(found[2]);

    size_t used = 0, map = 0;
    assert_int_equal(seq_store_usage(fx->s, &used, &map), 0);
    assert_int_equal(map, TEST_MAP_BYTES);
    assert_true(used > 0 && used < map);
}

/* ns_each yields exactly one namespace's transactions in (height, index)
 * order, honouring from_height and limit, and an early stop is returned. */
static void test_ns_each_order_and_bounds(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(6, 1, SMALL_PAYLOAD_BYTES);
    store_open_ok(fx, TEST_MAP_BYTES);
    assert_int_equal(commit_range(fx->s, fx->c, 1, 6), 0);
    store_reopen(fx, TEST_MAP_BYTES);

    for (seq_ns ns = 1; ns <= NS_COUNT; ns++) {
        assert_ns_walk(fx->s, fx->c, 6, ns, 0, 0);
        assert_ns_walk(fx->s, fx->c, 6, ns, 4, 0);
        assert_ns_walk(fx->s, fx->c, 6, ns, 2, 3);
    }
    recorder all;
    expected_ns(fx->c, 6, 2, 0, 0, &all);
    assert_true(all.n > 6); /* the walk above crossed several heights */

    recorder none = {0};
    assert_int_equal(seq_store_ns_each(fx->s, NS_COUNT + 1, 0, 0, record_cb, &none), 0);
    assert_int_equal(none.n, 0);
    assert_int_equal(seq_store_ns_each(fx->s, 1, 7, 0, record_cb, &none), 0);
    assert_int_equal(none.n, 0);

    recorder stop = {.stop_with = 42};
    assert_int_equal(seq_store_ns_each(fx->s, 2, 0, 0, record_cb, &stop), 42);
    assert_int_equal(stop.n, 1);
}

/* A batch whose heights do not continue the tip (or whose block does not link
 * to it, or is of another chain) is refused and none of it is written. */
static void test_commit_out_of_order_writes_nothing(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(5, 1, SMALL_PAYLOAD_BYTES);
    store_open_ok(fx, TEST_MAP_BYTES);
    assert_int_equal(commit_range(fx->s, fx->c, 2, 2), SEQ_EORDER);
    assert_int_equal(commit_range(fx->s, fx->c, 1, 2), 0);

    assert_int_equal(commit_range(fx->s, fx->c, 4, 4), SEQ_EORDER);
    assert_int_equal(commit_range(fx->s, fx->c, 2, 3), SEQ_EORDER);
    seq_store_final gap[2] = {{fx->c->blocks[3], &fx->c->certs[3]},
                              {fx->c->blocks[5], &fx->c->certs[5]}};
    assert_int_equal(seq_store_commit_finalized(fx->s, gap, 2), SEQ_EORDER);

    seq_hash wrong_parent = fx->c->blocks[1]->hash;
    seq_block *orphan = block_make(CHAIN_ID, 3, 3, &wrong_parent, SMALL_PAYLOAD_BYTES);
    seq_store_final bad_link = {orphan, &fx->c->certs[3]};
    assert_int_equal(seq_store_commit_finalized(fx->s, &bad_link, 1), SEQ_EMISMATCH);
    seq_block_free(orphan);
    seq_block *alien = block_make(CHAIN_ID + 1, 3, 3, &fx->c->blocks[2]->hash, SMALL_PAYLOAD_BYTES);
    seq_store_final bad_chain = {alien, &fx->c->certs[3]};
    assert_int_equal(seq_store_commit_finalized(fx->s, &bad_chain, 1), SEQ_ECHAIN_ID);
    seq_block_free(alien);

    store_reopen(fx, TEST_MAP_BYTES);
    assert_tip(fx->s, fx->c, 2);
    assert_height_absent(fx->s, fx->c, 3);
    assert_ns_walk(fx->s, fx->c, 2, 1, 0, 0);
    assert_int_equal(commit_range(fx->s, fx->c, 3, 5), 0);
    assert_tip(fx->s, fx->c, 5);
}

/* A store created for one chain refuses to open for another. */
static void test_reopen_other_chain_refused(void **state)
{
    fixture *fx = *state;
    store_open_ok(fx, TEST_MAP_BYTES);
    seq_store_close(fx->s);
    fx->s = NULL;
    seq_store_opts other = opts_make(CHAIN_ID + 1, TEST_MAP_BYTES, false);
    seq_store *s = NULL;
    assert_int_equal(seq_store_open(&s, fx->dir, &other), SEQ_ECHAIN_ID);
    assert_null(s);
    other.read_only = true;
    assert_int_equal(seq_store_open(&s, fx->dir, &other), SEQ_ECHAIN_ID);
    store_open_ok(fx, TEST_MAP_BYTES);
}

/* Raw LMDB on the environment at dir, as another program (or an earlier
 * version) sees it: one transaction, read-only unless write. */
typedef struct {
    MDB_env *env;
    MDB_txn *txn;
    bool write;
} raw_lmdb;

static raw_lmdb raw_begin(const char *dir, bool write)
{
    raw_lmdb r = {.write = write};
    assert_int_equal(mdb_env_create(&r.env), 0);
    assert_int_equal(mdb_env_set_maxdbs(r.env, 16), 0);
    if (write)
        assert_int_equal(mdb_env_set_mapsize(r.env, TEST_MAP_BYTES), 0);
    assert_int_equal(mdb_env_open(r.env, dir, write ? 0 : MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(r.env, NULL, write ? 0 : MDB_RDONLY, &r.txn), 0);
    return r;
}

/* Commits a write transaction, aborts a read one; closes the environment. */
static void raw_end(raw_lmdb *r)
{
    if (r->write)
        assert_int_equal(mdb_txn_commit(r->txn), 0);
    else
        mdb_txn_abort(r->txn);
    mdb_env_close(r->env);
}

static MDB_dbi raw_dbi(const raw_lmdb *r, const char *db_name, unsigned flags)
{
    MDB_dbi dbi;
    assert_int_equal(mdb_dbi_open(r->txn, db_name, flags, &dbi), 0);
    return dbi;
}

/* Writes key -> val into db_name (created when missing). */
static void raw_lmdb_put(const char *dir, const char *db_name, const void *key, size_t klen, const void *val,
                         size_t vlen)
{
    raw_lmdb r = raw_begin(dir, true);
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    assert_int_equal(mdb_put(r.txn, raw_dbi(&r, db_name, MDB_CREATE), &k, &v, 0), 0);
    raw_end(&r);
}

/* Writes one LMDB environment in dir with database db_name holding key -> val. */
static void raw_lmdb_write(const char *dir, const char *db_name, const char *key, const char *val)
{
    raw_lmdb_put(dir, db_name, key, strlen(key), val, strlen(val));
}

static void raw_lmdb_del(const char *dir, const char *db_name, const char *key)
{
    raw_lmdb r = raw_begin(dir, true);
    MDB_val k = {strlen(key), (void *)key};
    assert_int_equal(mdb_del(r.txn, raw_dbi(&r, db_name, 0), &k, NULL), 0);
    raw_end(&r);
}

/* The value of key in db_name (mv_data NULL when absent); valid until raw_end. */
static MDB_val raw_get(const raw_lmdb *r, const char *db_name, const char *key)
{
    MDB_dbi dbi;
    MDB_val k = {strlen(key), (void *)key}, v = {0, NULL};
    if (mdb_dbi_open(r->txn, db_name, 0, &dbi) != 0 || mdb_get(r->txn, dbi, &k, &v) != 0)
        v = (MDB_val){0, NULL};
    return v;
}

/* True when db_name still holds exactly key -> val. */
static bool raw_lmdb_holds(const char *dir, const char *db_name, const char *key, const char *val)
{
    raw_lmdb r = raw_begin(dir, false);
    MDB_val v = raw_get(&r, db_name, key);
    bool ok = v.mv_data && v.mv_size == strlen(val) && memcmp(v.mv_data, val, v.mv_size) == 0;
    raw_end(&r);
    return ok;
}

/* A u64 value (0 when absent). */
static uint64_t raw_lmdb_u64(const char *dir, const char *db_name, const char *key)
{
    raw_lmdb r = raw_begin(dir, false);
    MDB_val v = raw_get(&r, db_name, key);
    uint64_t out = v.mv_data && v.mv_size == 8 ? seq_get_u64be(v.mv_data) : 0;
    raw_end(&r);
    return out;
}

/* Entries of database db_name in the environment at dir, read with raw LMDB. */
static size_t raw_lmdb_entries(const char *dir, const char *db_name)
{
    raw_lmdb r = raw_begin(dir, false);
    MDB_stat st;
    assert_int_equal(mdb_stat(r.txn, raw_dbi(&r, db_name, 0), &st), 0);
    raw_end(&r);
    return st.ms_entries;
}

/* Size of DIR/votes-a.log (the active file until a compaction). */
static uint64_t votelog_bytes(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, SEQ_VOTELOG_FILE_A);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* An LMDB environment that is not ours is refused (writer and reader) and left
 * as it was, whether it lacks "meta" or carries another magic. */
static void test_foreign_lmdb_refused(void **state)
{
    fixture *fx = *state;
    raw_lmdb_write(fx->dir, "other", "k", "v");
    seq_store_opts o = opts_make(CHAIN_ID, TEST_MAP_BYTES, false);
    seq_store *s = NULL;
    assert_int_equal(seq_store_open(&s, fx->dir, &o), SEQ_EFOREIGN);
    o.read_only = true;
    assert_int_equal(seq_store_open(&s, fx->dir, &o), SEQ_EFOREIGN);
    assert_null(s);
    assert_true(raw_lmdb_holds(fx->dir, "other", "k", "v"));
    assert_false(raw_lmdb_holds(fx->dir, "meta", "magic", "seq-store"));

    raw_lmdb_write(fx->dir, "meta", "magic", "not-a-seq-store");
    o.read_only = false;
    assert_int_equal(seq_store_open(&s, fx->dir, &o), SEQ_EFOREIGN);
    assert_true(raw_lmdb_holds(fx->dir, "meta", "magic", "not-a-seq-store"));
}

/* A data.mdb of random bytes is SEQ_ECORRUPT for writer and reader, and the
 * file is left byte for byte as it was. */
static void test_garbage_file_is_corrupt(void **state)
{
    fixture *fx = *state;
    static uint8_t garbage[GARBAGE_BYTES], after[GARBAGE_BYTES];
    randombytes_buf(garbage, sizeof garbage);
    char path[PATH_BYTES_MAX];
    snprintf(path, sizeof path, "%s/data.mdb", fx->dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(garbage, 1, sizeof garbage, f), sizeof garbage);
    assert_int_equal(fclose(f), 0);

    seq_store_opts o = opts_make(CHAIN_ID, TEST_MAP_BYTES, false);
    seq_store *s = NULL;
    assert_int_equal(seq_store_open(&s, fx->dir, &o), SEQ_ECORRUPT);
    o.read_only = true;
    assert_int_equal(seq_store_open(&s, fx->dir, &o), SEQ_ECORRUPT);
    assert_null(s);

    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(after, 1, sizeof after, f), sizeof after);
    assert_int_equal(fgetc(f), EOF);
    fclose(f);
    assert_memory_equal(garbage, after, sizeof garbage);
}

/* Filling a tiny map gives SEQ_EMAP_FULL without damage: the failed batch
 * leaves no trace and the store reopens with exactly the earlier blocks. */
static void test_map_full_keeps_store_intact(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(CHAIN_BLOCKS_MAX, 1, BIG_PAYLOAD_BYTES);
    store_open_ok(fx, TINY_MAP_BYTES);
    uint32_t h = 1;
    int err = 0;
    for (; h <= fx->c->n; h++) {
        err = commit_range(fx->s, fx->c, h, h);
        if (err)
            break;
    }
    assert_int_equal(err, SEQ_EMAP_FULL);
    uint32_t committed = h - 1;
    assert_true(committed >= 2);
    assert_tip(fx->s, fx->c, committed);
    assert_height_absent(fx->s, fx->c, committed + 1);

    store_reopen(fx, TINY_MAP_BYTES);
    assert_tip(fx->s, fx->c, committed);
    for (uint32_t k = 1; k <= committed; k++)
        assert_height_stored(fx->s, fx->c, k);
    assert_height_absent(fx->s, fx->c, committed + 1);
    assert_ns_walk(fx->s, fx->c, committed, 1, 0, 0);
}

static seq_vote vote_make(uint8_t kind, uint64_t view, uint8_t fill)
{
    seq_vote v = {.kind = kind, .view = view, .signer = 2};
    if (kind != SEQ_VOTE_NULLIFY)
        memset(v.hash.b, fill, SEQ_HASH_BYTES);
    memset(v.sig.b, fill + 1, SEQ_SIG_BYTES);
    return v;
}

/* Own votes survive reopen in (view, kind) order, a conflicting vote is
 * refused, and a commit prunes votes at or below the finalized view while the
 * highest voted view stays. */
static void test_votes_persist_and_prune(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(1, 5, SMALL_PAYLOAD_BYTES); /* block 1 has view 5 */
    store_open_ok(fx, TEST_MAP_BYTES);
    uint64_t view = 99;
    assert_int_equal(seq_store_highest_view(fx->s, &view), 0);
    assert_int_equal(view, 0);

    seq_vote want[4] = {vote_make(SEQ_VOTE_NULLIFY, 3, 1), vote_make(SEQ_VOTE_NOTARIZE, 5, 2),
                        vote_make(SEQ_VOTE_FINALIZE, 5, 3), vote_make(SEQ_VOTE_NOTARIZE, 8, 4)};
    const int put_order[4] = {3, 1, 0, 2};
    for (int i = 0; i < 4; i++)
        assert_int_equal(seq_store_vote_put(fx->s, &want[put_order[i]]), 0);
    assert_int_equal(seq_store_vote_put(fx->s, &want[1]), 0); /* a retry */
    seq_vote twin = vote_make(SEQ_VOTE_NOTARIZE, 5, 9);
    assert_int_equal(seq_store_vote_put(fx->s, &twin), SEQ_EEXISTS);
    seq_vote bad = vote_make(0, 9, 1);
    assert_int_equal(seq_store_vote_put(fx->s, &bad), SEQ_EINVAL);
    store_reopen(fx, TEST_MAP_BYTES);

    seq_vote got[4];
    size_t n = 0;
    assert_int_equal(seq_store_votes_load(fx->s, got, 4, &n), 0);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < 4; i++)
        seq_test_assert_vote_equal(&got[i], &want[i]);
    assert_int_equal(seq_store_votes_load(fx->s, got, 3, &n), 0); /* the newest three */
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++)
        seq_test_assert_vote_equal(&got[i], &want[i + 1]);
    assert_int_equal(seq_store_highest_view(fx->s, &view), 0);
    assert_int_equal(view, 8);

    assert_int_equal(raw_lmdb_entries(fx->dir, "votes"), 0); /* in the vote log, not LMDB */
    assert_int_equal(commit_range(fx->s, fx->c, 1, 1), 0);
    assert_int_equal(seq_store_votes_load(fx->s, got, 4, &n), 0);
    assert_int_equal(n, 1);
    store_reopen(fx, TEST_MAP_BYTES);
    assert_int_equal(seq_store_votes_load(fx->s, got, 4, &n), 0);
    assert_int_equal(n, 1);
    seq_test_assert_vote_equal(&got[0], &want[3]);
    assert_int_equal(seq_store_highest_view(fx->s, &view), 0);
    assert_int_equal(view, 8);
}

/* Read-only: an empty dir is SEQ_ENOTFOUND and stays empty, a missing dir is
 * SEQ_ENOTFOUND, and an open reader reads but refuses every write. */
static void test_read_only_rules(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(2, 1, SMALL_PAYLOAD_BYTES);
    seq_store_opts ro = opts_make(CHAIN_ID, 0, true);
    seq_store *r = NULL;
    assert_int_equal(seq_store_open(&r, fx->dir, &ro), SEQ_ENOTFOUND);
    assert_int_equal(dir_entries(fx->dir), 0);
    char missing[PATH_BYTES_MAX];
    snprintf(missing, sizeof missing, "%s/missing", fx->dir);
    seq_store_opts rw = opts_make(CHAIN_ID, TEST_MAP_BYTES, false);
    assert_int_equal(seq_store_open(&r, missing, &rw), SEQ_ENOTFOUND);
    assert_null(r);

    store_open_ok(fx, TEST_MAP_BYTES);
    assert_int_equal(commit_range(fx->s, fx->c, 1, 1), 0);
    assert_int_equal(seq_store_index_sync(fx->s), 0); /* a reader sees ids once written */
    assert_int_equal(seq_store_open(&r, fx->dir, &ro), 0);
    assert_tip(r, fx->c, 1);
    assert_height_stored(r, fx->c, 1);
    assert_int_equal(commit_range(r, fx->c, 2, 2), SEQ_EREADONLY);
    seq_vote v = vote_make(SEQ_VOTE_NOTARIZE, 4, 1);
    assert_int_equal(seq_store_vote_put(r, &v), SEQ_EREADONLY);
    assert_int_equal(commit_range(fx->s, fx->c, 2, 2), 0);
    assert_tip(r, fx->c, 2); /* the open reader sees the writer's new commit */
    seq_store_close(r);
}

/* The tx index is written behind the blocks: ids are found at once through the
 * writer, reach the database on flush, and a writer that dies before flushing
 * (a child process that never closes the store) loses none of them: the next
 * open indexes the blocks above the last flush. */
static void test_tx_index_deferred_and_recovered(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(3, 4, SMALL_PAYLOAD_BYTES);
    store_open_ok(fx, TEST_MAP_BYTES);
    assert_int_equal(commit_range(fx->s, fx->c, 1, 1), 0);
    assert_true(fx->c->blocks[1]->tx_count > 0);
    assert_int_equal(seq_store_index_pending(fx->s), fx->c->blocks[1]->tx_count);
    assert_height_stored(fx->s, fx->c, 1);
    assert_int_equal(seq_store_index_sync(fx->s), 0);
    assert_int_equal(seq_store_index_pending(fx->s), 0);
    assert_height_stored(fx->s, fx->c, 1);
    seq_store_close(fx->s);
    fx->s = NULL;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        seq_store *w = NULL;
        seq_store_opts rw = opts_make(CHAIN_ID, TEST_MAP_BYTES, false);
        int rc = seq_store_open(&w, fx->dir, &rw);
        if (rc == 0)
            rc = commit_range(w, fx->c, 2, 3);
        _exit(rc == 0 && seq_store_index_pending(w) > 0 ? 0 : 1); /* no close: no flush */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    store_open_ok(fx, TEST_MAP_BYTES);
    assert_int_equal(seq_store_index_pending(fx->s), 0); /* indexed by open */
    for (uint32_t h = 1; h <= 3; h++)
        assert_height_stored(fx->s, fx->c, h);
}

/* One writing process per store: a second writer is refused before it opens
 * anything (SEQ_ELOCKED), readers are not, the lock file names the holder's
 * pid, and the lock goes with its holder: a process that dies holding it
 * (no close, as in a crash) leaves it free. */
static void test_second_writer_refused(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(2, 1, SMALL_PAYLOAD_BYTES);
    store_open_ok(fx, TEST_MAP_BYTES);
    assert_int_equal(commit_range(fx->s, fx->c, 1, 1), 0);
    seq_store_opts rw = opts_make(CHAIN_ID, TEST_MAP_BYTES, false), ro = opts_make(CHAIN_ID, 0, true);
    seq_store *other = NULL;
    assert_int_equal(seq_store_open(&other, fx->dir, &rw), SEQ_ELOCKED);
    assert_null(other);
    char path[PATH_BYTES_MAX];
    snprintf(path, sizeof path, "%s/writer.lock", fx->dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long pid = 0;
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    assert_int_equal(pid, (long)getpid());
    assert_int_equal(seq_store_open(&other, fx->dir, &ro), 0);
    assert_tip(other, fx->c, 1);
    seq_store_close(other);
    seq_store_close(fx->s);
    fx->s = NULL;

    int ready[2], quit[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(quit), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(ready[0]);
        close(quit[1]); /* else its own copy would keep the read below from ever ending */
        seq_store *w = NULL;
        char opened = seq_store_open(&w, fx->dir, &rw) == 0 ? '1' : '0';
        char byte;
        if (write(ready[1], &opened, 1) != 1 || read(quit[0], &byte, 1) < 0)
            _exit(2);
        _exit(0); /* holding the store: no close */
    }
    close(ready[1]);
    close(quit[0]);
    char opened = 0;
    assert_int_equal(read(ready[0], &opened, 1), 1);
    assert_int_equal(opened, '1');
    assert_int_equal(seq_store_open(&other, fx->dir, &rw), SEQ_ELOCKED);
    close(quit[1]); /* the child's read returns: it exits */
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(ready[0]);
    store_open_ok(fx, TEST_MAP_BYTES);
    assert_tip(fx->s, fx->c, 1);
}

/* ---- read-only reader in another process ------------------------------------------- */

#define CHILD_BLOCKS 12
#define CHILD_POLL_MS 200
#define CHILD_ROUNDS_MAX 100 /* bounds the child to ~20 s if the parent stalls */
#define PARENT_READY_MS 10000

enum { CHILD_OK, CHILD_OPEN = 10, CHILD_EARLY_TIP, CHILD_PIPE, CHILD_NEVER_SAW, CHILD_BAD_READ };

static bool child_reads_match(seq_store *r, const chain *c, uint32_t upto)
{
    for (uint32_t h = 1; h <= upto; h++) {
        seq_block *b = NULL;
        seq_cert cert;
        uint64_t height = 0;
        if (seq_store_block_get(r, h, &b) != 0)
            return false;
        bool ok = seq_hash_eq(&b->hash, &c->blocks[h]->hash);
        seq_block_free(b);
        ok = ok && seq_store_cert_get(r, h, &cert) == 0 && seq_hash_eq(&cert.hash, &c->blocks[h]->hash);
        ok = ok && seq_store_height_of(r, &c->blocks[h]->hash, &height) == 0 && height == h;
        if (!ok)
            return false;
    }
    return true;
}

/* Runs in the child: never returns, never touches the parent's store. */
static void child_reader(const char *dir, const chain *c, int ready_fd, int tick_fd)
{
    seq_store_opts ro = opts_make(CHAIN_ID, 0, true);
    seq_store *r = NULL;
    if (seq_store_open(&r, dir, &ro) != 0)
        _exit(CHILD_OPEN);
    seq_store_tip tip;
    if (seq_store_tip_get(r, &tip) != 0 || tip.height != 0)
        _exit(CHILD_EARLY_TIP);
    if (write(ready_fd, "r", 1) != 1)
        _exit(CHILD_PIPE);
    for (int round = 0; round < CHILD_ROUNDS_MAX && tip.height < CHILD_BLOCKS; round++) {
        struct pollfd p = {.fd = tick_fd, .events = POLLIN};
        char buf[CHILD_BLOCKS];
        if (poll(&p, 1, CHILD_POLL_MS) > 0 && read(tick_fd, buf, sizeof buf) < 0)
            _exit(CHILD_PIPE);
        if (seq_store_tip_get(r, &tip) != 0)
            _exit(CHILD_BAD_READ);
        if (tip.height > 0 && !child_reads_match(r, c, (uint32_t)tip.height))
            _exit(CHILD_BAD_READ);
    }
    if (tip.height != CHILD_BLOCKS)
        _exit(CHILD_NEVER_SAW);
    seq_store_close(r);
    _exit(CHILD_OK);
}

/* A read-only reader in another process sees the writer's commits as they
 * land, reading every block correctly while the parent keeps committing. */
static void test_read_only_reader_in_other_process(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(CHILD_BLOCKS, 1, SMALL_PAYLOAD_BYTES);
    store_open_ok(fx, TEST_MAP_BYTES);
    int ready[2], tick[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(tick), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(tick[1]);
        child_reader(fx->dir, fx->c, ready[1], tick[0]);
    }
    close(ready[1]);
    close(tick[0]);
    struct pollfd p = {.fd = ready[0], .events = POLLIN};
    char byte = 0;
    int ready_ok = poll(&p, 1, PARENT_READY_MS) == 1 && read(ready[0], &byte, 1) == 1;
    for (uint32_t h = 1; ready_ok && h <= CHILD_BLOCKS; h++) {
        assert_int_equal(commit_range(fx->s, fx->c, h, h), 0);
        assert_int_equal(write(tick[1], "t", 1), 1);
    }
    close(tick[1]);
    close(ready[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(ready_ok);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), CHILD_OK);
}

/* The store's votes above its tip are exactly first, then second. */
static void assert_votes_loaded(seq_store *s, seq_vote first, seq_vote second)
{
    seq_vote got[4];
    size_t n = 0;
    assert_int_equal(seq_store_votes_load(s, got, 4, &n), 0);
    assert_int_equal(n, 2);
    seq_test_assert_vote_equal(&got[0], &first);
    seq_test_assert_vote_equal(&got[1], &second);
}

/* ---- kept blocks ------------------------------------------------------------------- */

#define KEPT_OVER (SEQ_STORE_KEPT_MAX + 8) /* blocks kept in the cap tests */

/* The kept block under b's hash equals b: hash, header and every tx id. */
static void assert_kept(seq_store *s, const seq_block *b)
{
    seq_block *got = NULL;
    assert_int_equal(seq_store_kept_get(s, &b->hash, &got), 0);
    assert_non_null(got);
    assert_true(seq_hash_eq(&got->hash, &b->hash));
    assert_int_equal(got->h.height, b->h.height);
    assert_int_equal(got->h.view, b->h.view);
    assert_int_equal(got->tx_count, b->tx_count);
    for (uint32_t i = 0; i < b->tx_count; i++) {
        assert_true(seq_hash_eq(&got->txs[i].id, &b->txs[i].id));
        assert_int_equal(got->txs[i].len, b->txs[i].len);
        assert_memory_equal(got->txs[i].data, b->txs[i].data, b->txs[i].len);
    }
    seq_block_free(got);
}

static void assert_not_kept(seq_store *s, const seq_hash *hash)
{
    seq_block *got = NULL;
    assert_int_equal(seq_store_kept_get(s, hash, &got), SEQ_ENOTFOUND);
    assert_null(got);
}

/* Keeps the one block b together with a notarize vote for it. */
static int keep_with_vote(seq_store *s, const seq_block *b, uint8_t fill)
{
    seq_vote v = vote_make(SEQ_VOTE_NOTARIZE, b->h.view, fill);
    v.hash = b->hash;
    const seq_block *keep[1] = {b};
    return seq_store_write_votes(s, &v, 1, keep, 1);
}

/* An empty block at height (view = height): the cheapest block to keep. */
static seq_block *tiny_block(uint64_t height)
{
    seq_hash parent;
    memset(parent.b, (int)(height & 0xff), SEQ_HASH_BYTES);
    seq_header tmpl = {.chain_id = CHAIN_ID, .height = height, .view = height, .parent = parent,
                       .parent_view = height - 1, .timestamp_ms = 1700000000000ull + height};
    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, &tmpl, NULL, 0), 0);
    return b;
}

typedef struct {
    seq_block *b[KEPT_OVER + 1]; /* [h] is height h; [0] unused */
} tiny_set;

static tiny_set *tiny_set_make(void)
{
    tiny_set *t = calloc(1, sizeof *t);
    assert_non_null(t);
    for (uint64_t h = 1; h <= KEPT_OVER; h++)
        t->b[h] = tiny_block(h);
    return t;
}

static void tiny_set_free(tiny_set *t)
{
    for (uint64_t h = 1; h <= KEPT_OVER; h++)
        seq_block_free(t->b[h]);
    free(t);
}

/* Keeps heights 1..KEPT_OVER, each with its own write_votes call (a node
 * votes one view at a time). */
static void tiny_set_keep_all(seq_store *s, const tiny_set *t)
{
    for (uint64_t h = 1; h <= KEPT_OVER; h++)
        assert_int_equal(keep_with_vote(s, t->b[h], (uint8_t)h), 0);
}

/* The kept set is exactly heights from..KEPT_OVER. */
static void assert_tiny_kept_from(seq_store *s, const tiny_set *t, uint64_t from)
{
    for (uint64_t h = 1; h <= KEPT_OVER; h++) {
        if (h < from)
            assert_not_kept(s, &t->b[h]->hash);
        else
            assert_kept(s, t->b[h]);
    }
}

/* Votes and kept blocks land in one transaction: both visible after, a retry
 * is a no-op, an unknown hash is SEQ_ENOTFOUND, and a vote conflicting with a
 * stored one fails the whole call: its kept block is not stored either. */
static void test_write_votes_keeps_blocks_atomically(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(3, 2, SMALL_PAYLOAD_BYTES);
    store_open_ok(fx, TEST_MAP_BYTES);
    const seq_block *b1 = fx->c->blocks[1], *b2 = fx->c->blocks[2], *b3 = fx->c->blocks[3];
    assert_not_kept(fx->s, &b1->hash);

    seq_vote nz = vote_make(SEQ_VOTE_NOTARIZE, b1->h.view, 1);
    nz.hash = b1->hash;
    seq_vote nul = vote_make(SEQ_VOTE_NULLIFY, b1->h.view + 1, 2);
    const seq_vote votes[2] = {nz, nul};
    const seq_block *keep[1] = {b1};
    assert_int_equal(seq_store_write_votes(fx->s, votes, 2, keep, 1), 0);
    assert_kept(fx->s, b1);
    assert_votes_loaded(fx->s, nz, nul);
    seq_vote got[4];
    size_t n = 0;
    uint64_t log_bytes = votelog_bytes(fx->dir);
    assert_int_equal(seq_store_write_votes(fx->s, votes, 2, keep, 1), 0); /* a retry */
    assert_int_equal(votelog_bytes(fx->dir), log_bytes);                   /* writes nothing */
    assert_not_kept(fx->s, &b2->hash);

    /* Another notarize in b1's view (our own equivocation) with b2 to keep. */
    seq_vote twin = vote_make(SEQ_VOTE_NOTARIZE, b1->h.view, 9);
    twin.hash = b2->hash;
    seq_vote fresh = vote_make(SEQ_VOTE_NOTARIZE, b3->h.view, 3);
    fresh.hash = b3->hash;
    const seq_vote bad[2] = {fresh, twin};
    const seq_block *keep_bad[2] = {b3, b2};
    assert_int_equal(seq_store_write_votes(fx->s, bad, 2, keep_bad, 2), SEQ_EEXISTS);
    assert_not_kept(fx->s, &b2->hash);
    assert_not_kept(fx->s, &b3->hash);
    assert_int_equal(seq_store_votes_load(fx->s, got, 4, &n), 0);
    assert_int_equal(n, 2); /* fresh, first in the batch, was not written either */
    assert_int_equal(votelog_bytes(fx->dir), log_bytes);
    store_reopen(fx, TEST_MAP_BYTES);
    assert_not_kept(fx->s, &b3->hash);
    assert_int_equal(seq_store_votes_load(fx->s, got, 4, &n), 0);
    assert_int_equal(n, 2);

    seq_vote bad_kind = vote_make(0, 20, 1);
    assert_int_equal(seq_store_write_votes(fx->s, &bad_kind, 1, keep_bad, 1), SEQ_EINVAL);
    assert_not_kept(fx->s, &b3->hash);
    assert_int_equal(seq_store_write_votes(fx->s, NULL, 0, NULL, 0), 0);
}

/* A commit drops the kept blocks at or below the height it reaches and keeps
 * those above; what is kept survives close and reopen. */
static void test_kept_pruned_by_commit_and_survive_reopen(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(4, 1, SMALL_PAYLOAD_BYTES);
    store_open_ok(fx, TEST_MAP_BYTES);
    for (uint32_t h = 2; h <= 4; h++)
        assert_int_equal(keep_with_vote(fx->s, fx->c->blocks[h], (uint8_t)h), 0);
    store_reopen(fx, TEST_MAP_BYTES);
    for (uint32_t h = 2; h <= 4; h++)
        assert_kept(fx->s, fx->c->blocks[h]);

    assert_int_equal(commit_range(fx->s, fx->c, 1, 1), 0);
    for (uint32_t h = 2; h <= 4; h++)
        assert_kept(fx->s, fx->c->blocks[h]); /* all above height 1 */
    assert_int_equal(commit_range(fx->s, fx->c, 2, 3), 0);
    assert_not_kept(fx->s, &fx->c->blocks[2]->hash);
    assert_not_kept(fx->s, &fx->c->blocks[3]->hash);
    assert_kept(fx->s, fx->c->blocks[4]);
    store_reopen(fx, TEST_MAP_BYTES);
    assert_kept(fx->s, fx->c->blocks[4]);
    assert_not_kept(fx->s, &fx->c->blocks[3]->hash);
}

/* A chain that notarizes without finalizing: the store keeps at most
 * SEQ_STORE_KEPT_MAX blocks, the lowest heights dropped first, with no
 * commit in between (the case the cap exists for). */
static void test_kept_capped_without_commit(void **state)
{
    fixture *fx = *state;
    store_open_ok(fx, TEST_MAP_BYTES);
    tiny_set *t = tiny_set_make();
    tiny_set_keep_all(fx->s, t);
    assert_tiny_kept_from(fx->s, t, KEPT_OVER - SEQ_STORE_KEPT_MAX + 1);
    tiny_set_free(t);
}

/* The cap also holds once a commit below every kept height has run. */
static void test_kept_capped_after_commit(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(1, 1, SMALL_PAYLOAD_BYTES);
    store_open_ok(fx, TEST_MAP_BYTES);
    tiny_set *t = tiny_set_make();
    /* height 1 of the chain goes final, the tiny block 1 (another hash) with it */
    tiny_set_keep_all(fx->s, t);
    assert_int_equal(commit_range(fx->s, fx->c, 1, 1), 0);
    assert_tiny_kept_from(fx->s, t, KEPT_OVER - SEQ_STORE_KEPT_MAX + 1);
    tiny_set_free(t);
}

/* A read-only store refuses write_votes and changes nothing. */
static void test_read_only_refuses_write_votes(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(2, 1, SMALL_PAYLOAD_BYTES);
    store_open_ok(fx, TEST_MAP_BYTES);
    assert_int_equal(keep_with_vote(fx->s, fx->c->blocks[1], 1), 0);
    seq_store_opts ro = opts_make(CHAIN_ID, 0, true);
    seq_store *r = NULL;
    assert_int_equal(seq_store_open(&r, fx->dir, &ro), 0);
    assert_int_equal(keep_with_vote(r, fx->c->blocks[2], 2), SEQ_EREADONLY);
    seq_block *got = NULL;
    assert_int_equal(seq_store_kept_get(r, &fx->c->blocks[1]->hash, &got), SEQ_EREADONLY); /* the writer's */
    seq_vote votes[1];
    size_t n = 9;
    assert_int_equal(seq_store_votes_load(r, votes, 1, &n), SEQ_EREADONLY);
    assert_int_equal(n, 0);
    seq_store_close(r);
    assert_kept(fx->s, fx->c->blocks[1]);
    assert_not_kept(fx->s, &fx->c->blocks[2]->hash);
}

/* With a small compaction size, commits compact the vote log as they go:
 * after each, and after a reopen, exactly the votes and kept blocks above
 * the tip are there, and the log stays small. */
static void test_commits_compact_the_vote_log(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(12, 1, BIG_PAYLOAD_BYTES);
    seq_store_opts o = opts_make(CHAIN_ID, TEST_MAP_BYTES, false);
    o.vote_log_compact_bytes = 32u << 10;
    assert_int_equal(seq_store_open(&fx->s, fx->dir, &o), 0);
    for (uint32_t h = 1; h <= 12; h++)
        assert_int_equal(keep_with_vote(fx->s, fx->c->blocks[h], (uint8_t)h), 0);
    for (uint32_t tip = 1; tip <= 9; tip++) {
        assert_int_equal(commit_range(fx->s, fx->c, tip, tip), 0);
        if (tip % 3 != 0)
            continue;
        seq_store_close(fx->s);
        fx->s = NULL;
        assert_int_equal(seq_store_open(&fx->s, fx->dir, &o), 0);
        seq_vote got[16];
        size_t n = 0;
        assert_int_equal(seq_store_votes_load(fx->s, got, 16, &n), 0);
        assert_int_equal(n, 12 - tip);
        for (uint32_t h = 1; h <= 12; h++) {
            if (h <= tip)
                assert_not_kept(fx->s, &fx->c->blocks[h]->hash);
            else
                assert_kept(fx->s, fx->c->blocks[h]);
        }
    }
    /* it did compact: into the second file */
    char b_path[PATH_MAX];
    snprintf(b_path, sizeof b_path, "%s/%s", fx->dir, SEQ_VOTELOG_FILE_B);
    struct stat st;
    assert_int_equal(stat(b_path, &st), 0);
    assert_true(st.st_size > 0);
}

/* A store that had a vote log and lost its files is refused, not started
 * with an empty log (its node could vote again in views it voted in). */
static void test_vote_log_gone_refused(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(2, 1, SMALL_PAYLOAD_BYTES);
    store_open_ok(fx, TEST_MAP_BYTES);
    assert_int_equal(keep_with_vote(fx->s, fx->c->blocks[1], 1), 0);
    seq_store_close(fx->s);
    fx->s = NULL;
    char path[PATH_MAX];
    const char *names[2] = {SEQ_VOTELOG_FILE_A, SEQ_VOTELOG_FILE_B};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", fx->dir, names[i]);
        assert_int_equal(unlink(path), 0);
    }
    seq_store_opts o = opts_make(CHAIN_ID, TEST_MAP_BYTES, false);
    assert_int_equal(seq_store_open(&fx->s, fx->dir, &o), SEQ_ECORRUPT);
    assert_null(fx->s);
}

/* ---- votes written before the vote log ----------------------------------------------- */




static void legacy_vote_put(const char *dir, const seq_vote *v)
{
    uint8_t key[9], val[1 + 8 + SEQ_HASH_BYTES + 4 + SEQ_SIG_BYTES];
    seq_put_u64be(key, v->view);
    key[8] = v->kind;
    val[0] = v->kind;
    seq_put_u64be(val + 1, v->view);
    memcpy(val + 9, v->hash.b, SEQ_HASH_BYTES);
    seq_put_u32be(val + 9 + SEQ_HASH_BYTES, v->signer);
    memcpy(val + 13 + SEQ_HASH_BYTES, v->sig.b, SEQ_SIG_BYTES);
    raw_lmdb_put(dir, "votes", key, sizeof key, val, sizeof val);
}

static void legacy_kept_put(const char *dir, const seq_block *b)
{
    size_t len = 8 + seq_block_encoded_size(b);
    uint8_t *val = malloc(len);
    assert_non_null(val);
    seq_put_u64be(val, b->h.height);
    seq_block_encode(b, val + 8);
    raw_lmdb_put(dir, "kept", b->hash.b, SEQ_HASH_BYTES, val, len);
    free(val);
}

/* A store whose votes and kept blocks an earlier version wrote into LMDB:
 * open moves those above the tip into the vote log and empties the tables;
 * the next open (and one after a crash before the emptying) finds the same. */
static void test_legacy_votes_move_to_log(void **state)
{
    fixture *fx = *state;
    fx->c = chain_make(3, 2, SMALL_PAYLOAD_BYTES); /* views 2, 4, 6 */
    store_open_ok(fx, TEST_MAP_BYTES);
    assert_int_equal(commit_range(fx->s, fx->c, 1, 1), 0);
    seq_store_close(fx->s);
    fx->s = NULL;

    seq_vote settled = vote_make(SEQ_VOTE_FINALIZE, 2, 1), nz = vote_make(SEQ_VOTE_NOTARIZE, 4, 2),
             nul = vote_make(SEQ_VOTE_NULLIFY, 5, 3);
    nz.hash = fx->c->blocks[2]->hash;
    uint8_t v2[8], voted_view[8];
    seq_put_u64be(v2, SEQ_STORE_VERSION_BEFORE_VOTE_LOG);
    seq_put_u64be(voted_view, 6); /* a vote of view 6 pruned, say; the view stays the highest */
    raw_lmdb_put(fx->dir, "meta", "version", strlen("version"), v2, sizeof v2);
    raw_lmdb_del(fx->dir, "state", "vote_log"); /* a version 2 store has no vote log */
    char path[PATH_MAX];
    const char *names[2] = {SEQ_VOTELOG_FILE_A, SEQ_VOTELOG_FILE_B};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", fx->dir, names[i]);
        assert_int_equal(unlink(path), 0);
    }
    for (int round = 0; round < 2; round++) { /* the second: as if emptying had not happened */
        raw_lmdb_put(fx->dir, "state", "voted_view", strlen("voted_view"), voted_view, sizeof voted_view);
        legacy_vote_put(fx->dir, &settled);
        legacy_vote_put(fx->dir, &nz);
        legacy_vote_put(fx->dir, &nul);
        legacy_kept_put(fx->dir, fx->c->blocks[1]); /* at the tip: settled */
        legacy_kept_put(fx->dir, fx->c->blocks[2]);
        store_open_ok(fx, TEST_MAP_BYTES);
        assert_int_equal(raw_lmdb_entries(fx->dir, "votes"), 0);
        assert_int_equal(raw_lmdb_entries(fx->dir, "kept"), 0);
        assert_votes_loaded(fx->s, nz, nul);
        uint64_t view = 0;
        assert_int_equal(seq_store_highest_view(fx->s, &view), 0);
        assert_int_equal(view, 6);
        assert_false(raw_lmdb_holds(fx->dir, "state", "voted_view", ""));
        assert_true(raw_lmdb_u64(fx->dir, "meta", "version") == SEQ_STORE_VERSION);
        assert_kept(fx->s, fx->c->blocks[2]);
        assert_not_kept(fx->s, &fx->c->blocks[1]->hash);
        store_reopen(fx, TEST_MAP_BYTES);
        assert_votes_loaded(fx->s, nz, nul);
        assert_kept(fx->s, fx->c->blocks[2]);
        seq_store_close(fx->s);
        fx->s = NULL;
    }
    /* A vote conflicting with one the log holds is not ours to drop: open refuses. */
    seq_vote twin = vote_make(SEQ_VOTE_NOTARIZE, 4, 7);
    legacy_vote_put(fx->dir, &twin);
    seq_store_opts o = opts_make(CHAIN_ID, TEST_MAP_BYTES, false);
    assert_int_equal(seq_store_open(&fx->s, fx->dir, &o), SEQ_EEXISTS);
    assert_null(fx->s);
}

int main(void)
{
    seq_log_set_level(SEQ_LOG_OFF); /* expected failures would log; the asserts say it all */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_reopen_reads_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ns_each_order_and_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_out_of_order_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_other_chain_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_lmdb_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_file_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_full_keeps_store_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_votes_persist_and_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_writer_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_index_deferred_and_recovered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_reader_in_other_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_votes_keeps_blocks_atomically, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_pruned_by_commit_and_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_capped_without_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_capped_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_refuses_write_votes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_votes_move_to_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commits_compact_the_vote_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vote_log_gone_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
