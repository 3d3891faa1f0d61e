/* The background tx id index: see lib/txindex.h.
 *
 * Two in-memory sets under one lock: `pending` gathers ids of newly committed
 * blocks; `writing` is the batch the worker is putting into LMDB. A lookup
 * checks both, then the environment. The worker owns every write transaction
 * of the environment. */
#include "txindex.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "codec.h"
#include "crypto.h"
#include "errors.h"
#include "idset.h"
#include "log.h"

#define LOC_INDEX_BITS 17 /* a location packed in a pointer: height << 17 | index */
#define LOC_BYTES (8 + 4)
#define KEY_HEIGHT "height"
_Static_assert(SEQ_BLOCK_TXS_MAX <= (1u << LOC_INDEX_BITS), "index fits its bits");

struct seq_txindex {
    MDB_env *env;
    MDB_dbi txs, state;
    bool read_only;
    bool present; /* read-only open of a store that has no index yet */
    char dir[PATH_MAX];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t worker;
    bool worker_started;
    bool stopping;
    seq_idset pending, writing;
    uint64_t pending_height, writing_height; /* highest block height in each */
    bool busy;                               /* the worker holds `writing` */
    uint64_t height;                         /* durable */
    int error;                               /* sticky worker error */
};

static int mdb_err(const char *dir, const char *op, int rc)
{
    SEQ_ERROR("txindex_error", "dir=%s op=%s err=\"%s\"", dir, op, mdb_strerror(rc));
    return rc == MDB_MAP_FULL ? SEQ_EMAP_FULL : rc == MDB_CORRUPTED || rc == MDB_INVALID ? SEQ_ECORRUPT : SEQ_ESTORE;
}

static void *loc_pack(uint64_t height, uint32_t index) { return (void *)(uintptr_t)((height << LOC_INDEX_BITS) | index); }

static void loc_unpack(void *v, uint64_t *height, uint32_t *index)
{
    uintptr_t x = (uintptr_t)v;
    *height = x >> LOC_INDEX_BITS;
    *index = (uint32_t)(x & ((1u << LOC_INDEX_BITS) - 1));
}

/* ---- the worker ------------------------------------------------------------------ */

static int put_loc(MDB_cursor *cur, const seq_hash *id, void *loc)
{
    uint64_t height;
    uint32_t index;
    loc_unpack(loc, &height, &index);
    uint8_t v[LOC_BYTES];
    seq_put_u64be(v, height);
    seq_put_u32be(v + 8, index);
    MDB_val k = {.mv_size = SEQ_HASH_BYTES, .mv_data = (void *)id->b}, val = {.mv_size = sizeof v, .mv_data = v};
    int rc = mdb_cursor_put(cur, &k, &val, MDB_NOOVERWRITE);
    return rc == MDB_KEYEXIST ? 0 : rc; /* an id finalized again keeps its first location */
}

static int by_id(const void *a, const void *b)
{
    return memcmp(((const seq_idset_slot *)a)->id.b, ((const seq_idset_slot *)b)->id.b, SEQ_HASH_BYTES);
}

/* The ids of `writing` in key order. Inserting them in order through one
 * cursor lets LMDB find each key's leaf from the page the cursor is on
 * (mdb_cursor_set's fast path) and touch each leaf page once per batch;
 * in hash-table order every insert searched from the root and re-dirtied
 * pages all over the tree (perf: LMDB's page search was ~15% of a node). */
static seq_idset_slot *sorted_entries(const seq_idset *w, size_t *n)
{
    seq_idset_slot *e = malloc(((size_t)w->count + 1) * sizeof *e);
    if (!e)
        return NULL;
    *n = 0;
    for (uint32_t i = 0; i < w->cap; i++)
        if (!seq_hash_is_zero(&w->slots[i].id))
            e[(*n)++] = w->slots[i];
    if (w->zero_present)
        e[(*n)++] = (seq_idset_slot){.value = w->zero_value};
    qsort(e, *n, sizeof *e, by_id);
    return e;
}

/* One durable transaction: every id of `writing`, and the height it completes. */
static int write_batch(seq_txindex *x)
{
    size_t n;
    seq_idset_slot *entries = sorted_entries(&x->writing, &n);
    if (!entries)
        return SEQ_ENOMEM;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    int rc = mdb_txn_begin(x->env, NULL, 0, &txn);
    if (rc) {
        free(entries);
        return mdb_err(x->dir, "txn_begin", rc);
    }
    rc = mdb_cursor_open(txn, x->txs, &cur);
    for (size_t i = 0; !rc && i < n; i++)
        rc = put_loc(cur, &entries[i].id, entries[i].value);
    if (cur)
        mdb_cursor_close(cur);
    free(entries);
    uint8_t hv[8];
    seq_put_u64be(hv, x->writing_height);
    MDB_val k = {.mv_size = strlen(KEY_HEIGHT), .mv_data = KEY_HEIGHT}, v = {.mv_size = 8, .mv_data = hv};
    if (!rc)
        rc = mdb_put(txn, x->state, &k, &v, 0);
    if (rc) {
        mdb_txn_abort(txn);
        return mdb_err(x->dir, "write", rc);
    }
    rc = mdb_txn_commit(txn);
    return rc ? mdb_err(x->dir, "commit", rc) : 0;
}

static void *worker_main(void *arg)
{
    seq_txindex *x = arg;
    /* Index writes are not on anyone's path; the node's loop thread is. On
     * Linux a thread is its own scheduling entity: lowest priority for this
     * one, so it takes the CPU the loop leaves (failure is harmless). */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    (void)pthread_setname_np(pthread_self(), "seq-txindex"); /* top -H, perf */
    pthread_mutex_lock(&x->lock);
    for (;;) {
        while (!x->busy && !x->stopping)
            pthread_cond_wait(&x->cond, &x->lock);
        if (!x->busy)
            break; /* stopping, nothing handed over */
        pthread_mutex_unlock(&x->lock);
        int err = write_batch(x); /* `writing` is ours: nobody else changes it while busy */
        pthread_mutex_lock(&x->lock);
        if (err && !x->error)
            x->error = err;
        if (!err)
            x->height = x->writing_height;
        seq_idset_free(&x->writing);
        x->busy = false;
        pthread_cond_broadcast(&x->cond);
    }
    pthread_mutex_unlock(&x->lock);
    return NULL;
}

/* With the lock held and the worker idle: pending becomes the worker's batch. */
static void hand_over(seq_txindex *x)
{
    x->writing = x->pending;
    x->writing_height = x->pending_height;
    seq_idset_init(&x->pending);
    x->busy = true;
    pthread_cond_broadcast(&x->cond);
}

static void wait_idle(seq_txindex *x)
{
    while (x->busy)
        pthread_cond_wait(&x->cond, &x->lock);
}

int seq_txindex_add(seq_txindex *x, const seq_block *b)
{
    SEQ_ASSERT(!x->read_only);
    pthread_mutex_lock(&x->lock);
    int err = x->error;
    if (!err && seq_idset_count(&x->pending) + b->tx_count > SEQ_TXINDEX_PENDING_MAX) {
        wait_idle(x); /* the bound on memory: a full batch waits for the previous one */
        err = x->error;
        if (!err && seq_idset_count(&x->pending) > 0)
            hand_over(x);
    }
    if (!err)
        err = seq_idset_reserve(&x->pending, seq_idset_count(&x->pending) + b->tx_count);
    for (uint32_t i = 0; !err && i < b->tx_count; i++) {
        int rc = seq_idset_put(&x->pending, &b->txs[i].id, loc_pack(b->h.height, i));
        SEQ_ASSERT(rc == 0 || rc == SEQ_EEXISTS);
    }
    if (!err && b->h.height > x->pending_height)
        x->pending_height = b->h.height;
    pthread_mutex_unlock(&x->lock);
    return err;
}

int seq_txindex_flush(seq_txindex *x)
{
    if (x->read_only)
        return 0;
    pthread_mutex_lock(&x->lock);
    if (!x->busy && seq_idset_count(&x->pending) > 0)
        hand_over(x);
    int err = x->error;
    pthread_mutex_unlock(&x->lock);
    return err;
}

int seq_txindex_sync(seq_txindex *x)
{
    if (x->read_only)
        return 0;
    pthread_mutex_lock(&x->lock);
    wait_idle(x);
    if (seq_idset_count(&x->pending) > 0 || x->pending_height > x->height) {
        hand_over(x);
        wait_idle(x);
    }
    int err = x->error;
    pthread_mutex_unlock(&x->lock);
    return err;
}

size_t seq_txindex_unwritten(seq_txindex *x)
{
    pthread_mutex_lock(&x->lock);
    size_t n = seq_idset_count(&x->pending) + seq_idset_count(&x->writing);
    pthread_mutex_unlock(&x->lock);
    return n;
}

uint64_t seq_txindex_height(seq_txindex *x)
{
    pthread_mutex_lock(&x->lock);
    uint64_t h = x->height;
    pthread_mutex_unlock(&x->lock);
    return h;
}

static int db_find(seq_txindex *x, MDB_txn *txn, const seq_hash *id, uint64_t *height, uint32_t *index)
{
    MDB_val k = {.mv_size = SEQ_HASH_BYTES, .mv_data = (void *)id->b}, v;
    int rc = mdb_get(txn, x->txs, &k, &v);
    if (rc == MDB_NOTFOUND)
        return SEQ_ENOTFOUND;
    if (rc)
        return mdb_err(x->dir, "get", rc);
    if (v.mv_size != LOC_BYTES)
        return SEQ_ECORRUPT;
    *height = seq_get_u64be(v.mv_data);
    *index = seq_get_u32be((const uint8_t *)v.mv_data + 8);
    return 0;
}

int seq_txindex_find(seq_txindex *x, const seq_hash *id, uint64_t *height, uint32_t *index)
{
    bool found = false;
    int err = seq_txindex_find_many(x, id, 1, &found);
    if (err || !found)
        return err ? err : SEQ_ENOTFOUND;
    void *loc = NULL;
    pthread_mutex_lock(&x->lock);
    bool in_memory = seq_idset_get(&x->pending, id, &loc) || seq_idset_get(&x->writing, id, &loc);
    pthread_mutex_unlock(&x->lock);
    if (in_memory) {
        loc_unpack(loc, height, index);
        return 0;
    }
    MDB_txn *txn;
    int rc = mdb_txn_begin(x->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return mdb_err(x->dir, "read_begin", rc);
    err = db_find(x, txn, id, height, index);
    mdb_txn_abort(txn);
    return err;
}

/* Memory first under one lock, then one read transaction for the rest: the
 * per-id cost is a hash probe and a B-tree search, not a transaction. */
int seq_txindex_find_many(seq_txindex *x, const seq_hash *ids, size_t n, bool *found)
{
    size_t left = 0;
    pthread_mutex_lock(&x->lock);
    for (size_t i = 0; i < n; i++) {
        found[i] = seq_idset_get(&x->pending, &ids[i], NULL) || seq_idset_get(&x->writing, &ids[i], NULL);
        left += !found[i];
    }
    pthread_mutex_unlock(&x->lock);
    if (left == 0 || !x->present)
        return 0;
    MDB_txn *txn;
    int rc = mdb_txn_begin(x->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return mdb_err(x->dir, "read_begin", rc);
    int err = 0;
    for (size_t i = 0; !err && i < n; i++) {
        if (found[i])
            continue;
        uint64_t height;
        uint32_t index;
        err = db_find(x, txn, &ids[i], &height, &index);
        found[i] = err == 0;
        if (err == SEQ_ENOTFOUND)
            err = 0;
    }
    mdb_txn_abort(txn);
    return err;
}

/* ---- open / close ---------------------------------------------------------------- */

static int env_open(seq_txindex *x, size_t map_bytes)
{
    int rc = mdb_env_create(&x->env);
    if (!rc)
        rc = mdb_env_set_maxdbs(x->env, 2);
    if (!rc)
        rc = mdb_env_set_mapsize(x->env, map_bytes);
    if (!rc)
        rc = mdb_env_open(x->env, x->dir, MDB_NOTLS | (x->read_only ? MDB_RDONLY : 0), 0600);
    MDB_txn *txn = NULL;
    if (!rc)
        rc = mdb_txn_begin(x->env, NULL, x->read_only ? MDB_RDONLY : 0, &txn);
    unsigned flags = x->read_only ? 0 : MDB_CREATE;
    if (!rc)
        rc = mdb_dbi_open(txn, "txs", flags, &x->txs);
    if (!rc)
        rc = mdb_dbi_open(txn, "state", flags, &x->state);
    MDB_val k = {.mv_size = strlen(KEY_HEIGHT), .mv_data = KEY_HEIGHT}, v;
    int got = rc ? rc : mdb_get(txn, x->state, &k, &v);
    if (got == 0 && v.mv_size == 8)
        x->height = seq_get_u64be(v.mv_data);
    if (txn)
        rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
    return rc ? mdb_err(x->dir, "open", rc) : 0;
}

int seq_txindex_open(seq_txindex **out, const char *store_dir, size_t map_bytes, bool read_only)
{
    seq_txindex *x = calloc(1, sizeof *x);
    if (!x)
        return SEQ_ENOMEM;
    x->read_only = read_only;
    if (snprintf(x->dir, sizeof x->dir, "%s/%s", store_dir, SEQ_TXINDEX_DIR) >= (int)sizeof x->dir) {
        free(x);
        return SEQ_EINVAL;
    }
    pthread_mutex_init(&x->lock, NULL);
    pthread_cond_init(&x->cond, NULL);
    struct stat st;
    bool exists = stat(x->dir, &st) == 0;
    int err = 0;
    if (!exists && !read_only && mkdir(x->dir, 0700) != 0 && errno != EEXIST)
        err = SEQ_EIO;
    x->present = exists || !read_only;
    if (!err && x->present)
        err = env_open(x, map_bytes);
    if (!err && !read_only) {
        if (pthread_create(&x->worker, NULL, worker_main, x) != 0)
            err = SEQ_ENOMEM;
        else
            x->worker_started = true;
    }
    if (err) {
        seq_txindex_close(x);
        return err;
    }
    *out = x;
    return 0;
}

void seq_txindex_close(seq_txindex *x)
{
    if (!x)
        return;
    if (x->worker_started) {
        int err = seq_txindex_sync(x);
        if (err)
            SEQ_WARN("txindex_close", "dir=%s err=%s (indexed again at the next open)", x->dir, seq_strerror(err));
        pthread_mutex_lock(&x->lock);
        x->stopping = true;
        pthread_cond_broadcast(&x->cond);
        pthread_mutex_unlock(&x->lock);
        pthread_join(x->worker, NULL);
    }
    if (x->env)
        mdb_env_close(x->env);
    seq_idset_free(&x->pending);
    seq_idset_free(&x->writing);
    pthread_cond_destroy(&x->cond);
    pthread_mutex_destroy(&x->lock);
    free(x);
}
