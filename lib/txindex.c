/* The background tx id index (lib/txindex.h): the ids in memory, the worker
 * thread, the public calls, open and close. The layout on disk (sorted runs
 * with Bloom filters, merged in the background) is lib/txindex_runs.c.
 *
 * In memory: two sets under one lock: `pending` gathers ids of newly committed
 * blocks; `writing` is the batch the worker is putting into LMDB. A lookup
 * checks both, then the runs. The worker owns every write transaction of the
 * environment. */
#include "txindex_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "errors.h"
#include "log.h"

#define PUT_PREFETCH_AHEAD 8 /* ids of a block prefetched ahead of their insert into `pending` */
#define PENDING_RESERVE_MAX 131072u /* ids a new `pending` is sized for at most (~1.3 s at 100k tx/s) */

static uint64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* With the lock held: writes the handed-over batch (unlocked meanwhile). */
static void worker_write(seq_txindex *x)
{
    pthread_mutex_unlock(&x->lock);
    int err = txi_write_batch(x); /* `writing` is ours: nobody else changes it while busy */
    pthread_mutex_lock(&x->lock);
    if (err && !x->error)
        x->error = err;
    if (!err)
        x->height = x->writing_height;
    seq_idset_free(&x->writing);
    x->busy = false;
    pthread_cond_broadcast(&x->cond);
}

/* With the lock held: one merge chunk (unlocked meanwhile), then a rest. */
static void worker_merge(seq_txindex *x, bool urgent)
{
    uint64_t started = mono_ns();
    pthread_mutex_unlock(&x->lock);
    int err = txi_merge_step(x);
    uint64_t now = mono_ns();
    x->merge_rest_until_ns = urgent ? now : now + (now - started) * MERGE_REST_FACTOR;
    pthread_mutex_lock(&x->lock);
    if (err && !x->error)
        x->error = err;
}

/* Merges are paced, so that they take a share of a core instead of all of it
 * in bursts (on a shared machine the loop threads of every node would wait):
 * with the lock held, rests until the rest is over or a batch arrives. */
static void worker_rest(seq_txindex *x)
{
    struct timespec until = {.tv_sec = (time_t)(x->merge_rest_until_ns / 1000000000u),
                             .tv_nsec = (long)(x->merge_rest_until_ns % 1000000000u)};
    pthread_cond_timedwait(&x->cond, &x->lock, &until);
}

/* Batches go before merge chunks, except when free slots run short (batches
 * arriving faster than merges, as at a catch-up from height 0): then merges
 * go first, unpaced, and a full `pending` makes seq_txindex_add wait. That
 * is the back-pressure that keeps the slots from running out. */
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
        x->merging = txi_merge_wanted(x);
        bool urgent = x->merging && txi_slots_free(x) < SLOTS_RESERVE;
        if (!x->busy && !x->merging) {
            pthread_cond_broadcast(&x->cond); /* seq_txindex_settle */
            if (x->stopping)
                break;
            pthread_cond_wait(&x->cond, &x->lock);
        } else if (x->busy && !urgent) {
            worker_write(x);
        } else if (x->stopping) {
            break; /* a merge cut short here is redone later */
        } else if (!urgent && !x->busy && mono_ns() < x->merge_rest_until_ns) {
            worker_rest(x);
        } else {
            worker_merge(x, urgent);
        }
    }
    x->merging = false;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    return NULL;
}

/* With the lock held and the worker idle: pending becomes the worker's batch. */
static void hand_over(seq_txindex *x)
{
    x->writing = x->pending;
    x->writing_height = x->pending_height;
    seq_idset_init(&x->pending);
    /* Sized for a batch like this one at once (a steady one: a catch-up's
     * full batch would leave a huge sparse set): grown from empty by
     * doubling, it rehashed every id about once more per batch. Without
     * the memory now, it grows as before. */
    uint32_t expect = seq_idset_count(&x->writing);
    if (expect > PENDING_RESERVE_MAX)
        expect = PENDING_RESERVE_MAX;
    if (seq_idset_reserve(&x->pending, expect) != 0)
        SEQ_DEBUG("txindex_reserve_failed", "ids=%u", expect);
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
    for (uint32_t i = 0; !err && i < b->tx_count && i < PUT_PREFETCH_AHEAD; i++)
        seq_idset_prefetch(&x->pending, &b->txs[i].id);
    for (uint32_t i = 0; !err && i < b->tx_count; i++) {
        if (i + PUT_PREFETCH_AHEAD < b->tx_count)
            seq_idset_prefetch(&x->pending, &b->txs[i + PUT_PREFETCH_AHEAD].id);
        int rc = seq_idset_put(&x->pending, &b->txs[i].id, txi_loc_pack(b->h.height, i));
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

int seq_txindex_find(seq_txindex *x, const seq_hash *id, uint64_t *height, uint32_t *index)
{
    void *loc = NULL;
    pthread_mutex_lock(&x->lock);
    bool in_memory = seq_idset_get(&x->pending, id, &loc) || seq_idset_get(&x->writing, id, &loc);
    pthread_mutex_unlock(&x->lock);
    if (in_memory) {
        txi_loc_unpack(loc, height, index);
        return 0;
    }
    if (!x->present)
        return SEQ_ENOTFOUND;
    MDB_txn *txn;
    int rc = mdb_txn_begin(x->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return txi_mdb_err(x->dir, "read_begin", rc);
    bool found = false;
    int err = txi_runs_find(x, txn, id, 1, &found, true, height, index);
    mdb_txn_abort(txn);
    return err ? err : found ? 0 : SEQ_ENOTFOUND;
}

/* Memory first under one lock, then one read transaction for the rest: the
 * per-id cost is a hash probe, a filter line per run and a B-tree search only
 * where a filter says maybe. */
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
        return txi_mdb_err(x->dir, "read_begin", rc);
    int err = txi_runs_find(x, txn, ids, n, found, false, NULL, NULL);
    mdb_txn_abort(txn);
    return err;
}

int seq_txindex_settle(seq_txindex *x)
{
    if (x->read_only)
        return 0;
    pthread_mutex_lock(&x->lock);
    while ((x->busy || x->merging) && !x->error)
        pthread_cond_wait(&x->cond, &x->lock);
    int err = x->error;
    pthread_mutex_unlock(&x->lock);
    return err;
}

size_t seq_txindex_runs(seq_txindex *x)
{
    if (!x->present)
        return 0;
    MDB_txn *txn;
    MDB_stat st;
    if (mdb_txn_begin(x->env, NULL, MDB_RDONLY, &txn) != 0)
        return 0;
    int rc = mdb_stat(txn, x->runs, &st);
    mdb_txn_abort(txn);
    return rc ? 0 : st.ms_entries;
}

static int env_open(seq_txindex *x, size_t map_bytes)
{
    int rc = mdb_env_create(&x->env);
    if (!rc)
        rc = mdb_env_set_maxdbs(x->env, SLOTS + 3);
    if (!rc)
        rc = mdb_env_set_mapsize(x->env, map_bytes);
    if (!rc)
        rc = mdb_env_open(x->env, x->dir, MDB_NOTLS | (x->read_only ? MDB_RDONLY : 0), 0600);
    MDB_txn *txn = NULL;
    if (!rc)
        rc = mdb_txn_begin(x->env, NULL, x->read_only ? MDB_RDONLY : 0, &txn);
    if (!rc)
        rc = txi_tables_open(x, txn);
    if (rc == MDB_NOTFOUND && x->read_only) {
        /* a node of an earlier layout, not yet upgraded: an index that finds nothing */
        mdb_txn_abort(txn);
        x->present = false;
        return 0;
    }
    MDB_val k = {.mv_size = strlen(KEY_HEIGHT), .mv_data = KEY_HEIGHT}, v;
    int got = rc ? rc : mdb_get(txn, x->state, &k, &v);
    if (got == 0 && v.mv_size == 8)
        x->height = seq_get_u64be(v.mv_data);
    if (!rc && !x->read_only)
        rc = txi_legacy_drop(x, txn);
    if (!rc && !x->read_only)
        rc = txi_runs_load(x, txn);
    if (txn)
        rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
    if (rc == SEQ_ECORRUPT) {
        SEQ_ERROR("txindex_error", "dir=%s op=open err=\"corrupt run list\"", x->dir);
        return rc;
    }
    return rc ? txi_mdb_err(x->dir, "open", rc) : 0;
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
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* merge rests: see worker_main */
    pthread_cond_init(&x->cond, &attr);
    pthread_condattr_destroy(&attr);
    struct stat st;
    bool exists = stat(x->dir, &st) == 0;
    int err = 0;
    if (!exists && !read_only && mkdir(x->dir, 0700) != 0 && errno != EEXIST)
        err = SEQ_EIO;
    x->present = exists || !read_only;
    if (!err && x->present)
        err = env_open(x, map_bytes);
    if (!err && !read_only) {
        x->merging = txi_merge_wanted(x); /* seq_txindex_settle before the worker's first look */
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
    for (uint32_t l = 0; l < LEVELS; l++)
        txi_merge_reset(&x->merges[l]);
    pthread_cond_destroy(&x->cond);
    pthread_mutex_destroy(&x->lock);
    free(x);
}

