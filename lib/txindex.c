/* The background tx id index: see lib/txindex.h.
 *
 * Layout: the ids live in sorted runs, each in its own LMDB table (a slot),
 * each written once, in key order, with MDB_APPEND: a batch of n ids costs
 * about n * 52 bytes of sequential pages, whatever the size of the index. The
 * earlier single B-tree keyed by id dirtied one random 4 KiB leaf per id
 * (ids are uniform hashes), so every 3-second batch rewrote most of the tree:
 * 100-250 ms of a node's time per batch at 27k tx/s on the bench machine,
 * which was most of the bench's p99, and the cost grew with the index.
 *
 * The table "runs" lists the live runs: run id (increasing) -> slot, level,
 * id count and a Bloom filter of the run's ids (lib/bloom.h), read in place.
 * A lookup walks that list in one read snapshot and searches only the runs
 * whose filter may hold the id, so a merge (below) is atomic for readers:
 * they see the inputs or the output, never neither.
 *
 * Runs of one level are merged, FANOUT at a time, into one run of the next
 * level (size-tiered), so live runs stay few (FANOUT - 1 per level, ~log4 of
 * the index size levels). A merge moves MERGE_CHUNK_IDS ids per transaction
 * into a slot not yet listed; the worker writes handed-over batches between
 * chunks, so a merge of any size never holds back the node. The last chunk
 * lists the output and empties the inputs' slots in one transaction; a slot
 * that no listed run uses (a merge cut short by a crash) is emptied at open.
 *
 * In memory: two sets under one lock: `pending` gathers ids of newly committed
 * blocks; `writing` is the batch the worker is putting into LMDB. A lookup
 * checks both, then the runs. The worker owns every write transaction of the
 * environment. */
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
#include <time.h>
#include <unistd.h>

#include "bloom.h"
#include "codec.h"
#include "crypto.h"
#include "errors.h"
#include "idset.h"
#include "log.h"

#define LOC_INDEX_BITS 17 /* a location packed in a pointer: height << 17 | index */
#define LOC_BYTES (8 + 4)
#define KEY_HEIGHT "height"
#define SLOTS 64                /* run tables: a few per level (a level is 4x the one below) */
#define LEVELS 24               /* 27k ids a second for centuries fit below the top */
#define FANOUT 4                /* runs of one level merged into one of the next */
#define MERGE_CHUNK_IDS 32768u  /* ids a merge moves per write transaction (~5 ms of CPU) */
#define MERGE_REST_FACTOR 2     /* after each chunk, rest twice as long as it took */
#define RUN_ID_BYTES 4
#define RUN_HEADER_BYTES (4 + 4 + 8 + 8) /* slot, level, ids, filter lines; then the filter */
#define SLOTS_RESERVE 8                  /* fewer free slots than this: merges before batches */
#define LEGACY_TABLE "txs"           /* the single B-tree of earlier versions */
_Static_assert(SEQ_BLOCK_TXS_MAX <= (1u << LOC_INDEX_BITS), "index fits its bits");

/* A listed run, as the worker keeps track of them (lookups read "runs"). */
typedef struct {
    uint32_t id, slot, level;
    uint64_t ids;
} run_info;

/* A merge in progress: FANOUT inputs of level `level - 1` into `out_slot`. */
typedef struct {
    bool active;
    run_info in[FANOUT];
    uint32_t out_slot, level;
    seq_hash last; /* last id moved */
    bool moved_any;
    uint64_t moved;
    uint8_t *bloom; /* of the output, sized for every input id */
    uint64_t bloom_lines;
} merge_state;

struct seq_txindex {
    MDB_env *env;
    MDB_dbi runs, state, slots[SLOTS];
    bool read_only;
    bool present; /* read-only open of a store that has no index (of this layout) yet */
    char dir[PATH_MAX];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t worker;
    bool worker_started;
    bool stopping;
    seq_idset pending, writing;
    uint64_t pending_height, writing_height; /* highest block height in each */
    bool busy;                               /* the worker holds `writing` */
    bool merging;                            /* the worker has merge work */
    uint64_t height;                         /* durable */
    int error;                               /* sticky worker error */
    /* the worker's own (and open's), never read by other threads: */
    run_info listed[SLOTS];
    uint32_t listed_count;
    uint32_t next_run_id;
    merge_state merges[LEVELS]; /* [L]: merging runs of level L; at most one each */
    uint64_t merge_rest_until_ns; /* CLOCK_MONOTONIC */
};

static uint64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

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

static void loc_encode(uint8_t out[LOC_BYTES], uint64_t height, uint32_t index)
{
    seq_put_u64be(out, height);
    seq_put_u32be(out + 8, index);
}

/* ---- the run list ------------------------------------------------------------------ */

/* A "runs" entry, parsed; the filter points into the mapped value. */
typedef struct {
    uint32_t id, slot, level;
    uint64_t ids;
    const uint8_t *bloom;
    uint64_t bloom_lines;
} run_entry;

static int run_entry_parse(const MDB_val *k, const MDB_val *v, run_entry *e)
{
    if (k->mv_size != RUN_ID_BYTES || v->mv_size < RUN_HEADER_BYTES)
        return SEQ_ECORRUPT;
    const uint8_t *p = v->mv_data;
    e->id = seq_get_u32be(k->mv_data);
    e->slot = seq_get_u32be(p);
    e->level = seq_get_u32be(p + 4);
    e->ids = seq_get_u64be(p + 8);
    e->bloom_lines = seq_get_u64be(p + 16);
    e->bloom = p + RUN_HEADER_BYTES;
    if (e->slot >= SLOTS || e->bloom_lines == 0 ||
        e->bloom_lines > (v->mv_size - RUN_HEADER_BYTES) / SEQ_BLOOM_LINE_BYTES ||
        v->mv_size != RUN_HEADER_BYTES + e->bloom_lines * SEQ_BLOOM_LINE_BYTES)
        return SEQ_ECORRUPT;
    return 0;
}

/* Lists a run: its entry, with the filter (of `lines` lines) copied in. */
static int run_list(seq_txindex *x, MDB_txn *txn, const run_info *r, const uint8_t *bloom, uint64_t lines)
{
    uint8_t key[RUN_ID_BYTES];
    seq_put_u32be(key, r->id);
    MDB_val k = {.mv_size = sizeof key, .mv_data = key},
            v = {.mv_size = RUN_HEADER_BYTES + lines * SEQ_BLOOM_LINE_BYTES};
    int rc = mdb_put(txn, x->runs, &k, &v, MDB_RESERVE | MDB_NOOVERWRITE);
    if (rc)
        return mdb_err(x->dir, "run_list", rc);
    uint8_t *p = v.mv_data;
    seq_put_u32be(p, r->slot);
    seq_put_u32be(p + 4, r->level);
    seq_put_u64be(p + 8, r->ids);
    seq_put_u64be(p + 16, lines);
    memcpy(p + RUN_HEADER_BYTES, bloom, lines * SEQ_BLOOM_LINE_BYTES);
    return 0;
}

static bool slot_listed(const seq_txindex *x, uint32_t slot)
{
    for (uint32_t i = 0; i < x->listed_count; i++)
        if (x->listed[i].slot == slot)
            return true;
    return false;
}

static bool slot_merging_into(const seq_txindex *x, uint32_t slot)
{
    for (uint32_t l = 0; l < LEVELS; l++)
        if (x->merges[l].active && x->merges[l].out_slot == slot)
            return true;
    return false;
}

/* A slot neither listed nor a merge's output, or SLOTS when none is. */
static uint32_t slot_free(const seq_txindex *x)
{
    for (uint32_t s = 0; s < SLOTS; s++)
        if (!slot_listed(x, s) && !slot_merging_into(x, s))
            return s;
    return SLOTS;
}

static int height_put(seq_txindex *x, MDB_txn *txn, uint64_t height)
{
    uint8_t hv[8];
    seq_put_u64be(hv, height);
    MDB_val k = {.mv_size = strlen(KEY_HEIGHT), .mv_data = KEY_HEIGHT}, v = {.mv_size = 8, .mv_data = hv};
    int rc = mdb_put(txn, x->state, &k, &v, 0);
    return rc ? mdb_err(x->dir, "height_put", rc) : 0;
}

/* ---- the worker: batches ------------------------------------------------------------ */

static int by_id(const void *a, const void *b)
{
    return memcmp(((const seq_idset_slot *)a)->id.b, ((const seq_idset_slot *)b)->id.b, SEQ_HASH_BYTES);
}

#define SORT_BUCKET_BITS 16
#define SORT_INSERTION_MAX 16 /* a bucket larger than this (ground ids) gets qsort */

static uint32_t bucket_of_id(const seq_hash *id) { return (uint32_t)id->b[0] << 8 | id->b[1]; }

static void insertion_sort(seq_idset_slot *e, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        seq_idset_slot x = e[i];
        size_t j = i;
        for (; j > 0 && memcmp(e[j - 1].id.b, x.id.b, SEQ_HASH_BYTES) > 0; j--)
            e[j] = e[j - 1];
        e[j] = x;
    }
}

/* Sorts `in` by id into `out`. Ids are hashes, so their first two bytes spread
 * them evenly: one counting pass on those bytes leaves about one id per
 * bucket, and each bucket is finished by a comparison sort. qsort of the
 * whole batch was ~20 ms of every 3-second flush (perf); this is ~2 ms. A
 * bucket someone filled on purpose (ids ground to share a prefix) gets qsort,
 * so the worst case stays n log n. */
static int sort_by_id(const seq_idset_slot *in, seq_idset_slot *out, size_t n)
{
    uint32_t *start = calloc((1u << SORT_BUCKET_BITS) + 1, sizeof *start);
    if (!start)
        return SEQ_ENOMEM;
    for (size_t i = 0; i < n; i++)
        start[bucket_of_id(&in[i].id) + 1]++;
    for (uint32_t b = 0; b < 1u << SORT_BUCKET_BITS; b++)
        start[b + 1] += start[b];
    for (size_t i = 0; i < n; i++) /* start[b] walks to the end of bucket b */
        out[start[bucket_of_id(&in[i].id)]++] = in[i];
    size_t from = 0;
    for (uint32_t b = 0; b < 1u << SORT_BUCKET_BITS; b++) {
        size_t len = start[b] - from;
        if (len > SORT_INSERTION_MAX)
            qsort(out + from, len, sizeof *out, by_id);
        else if (len > 1)
            insertion_sort(out + from, len);
        from = start[b];
    }
    free(start);
    return 0;
}

/* The ids of `writing` in key order. Inserting them in order through one
 * cursor lets LMDB find each key's leaf from the page the cursor is on
 * (mdb_cursor_set's fast path) and touch each leaf page once per batch;
 * in hash-table order every insert searched from the root and re-dirtied
 * pages all over the tree (perf: LMDB's page search was ~15% of a node). */
static seq_idset_slot *sorted_entries(const seq_idset *w, size_t *n)
{
    size_t count = (size_t)w->count + 1;
    seq_idset_slot *e = malloc(count * sizeof *e), *sorted = malloc(count * sizeof *sorted);
    if (!e || !sorted) {
        free(e);
        free(sorted);
        return NULL;
    }
    *n = 0;
    for (uint32_t i = 0; i < w->cap; i++)
        if (!seq_hash_is_zero(&w->slots[i].id))
            e[(*n)++] = w->slots[i];
    if (w->zero_present)
        e[(*n)++] = (seq_idset_slot){.value = w->zero_value};
    int err = sort_by_id(e, sorted, *n);
    free(e);
    if (err) {
        free(sorted);
        return NULL;
    }
    return sorted;
}

/* One durable transaction: every id of `writing` as a new level-0 run, and
 * the height it completes. */
static int write_batch(seq_txindex *x)
{
    size_t n = 0;
    seq_idset_slot *entries = NULL;
    uint8_t *bloom = NULL;
    run_info r = {.id = x->next_run_id, .slot = slot_free(x), .level = 0};
    if (seq_idset_count(&x->writing) > 0) {
        if (r.slot == SLOTS || x->listed_count == SLOTS) {
            SEQ_ERROR("txindex_error", "dir=%s op=write err=\"no free run slot\"", x->dir);
            return SEQ_ESTORE;
        }
        entries = sorted_entries(&x->writing, &n);
        r.ids = n;
        bloom = entries ? calloc(seq_bloom_lines_for(n), SEQ_BLOOM_LINE_BYTES) : NULL;
        if (!bloom) {
            free(entries);
            return SEQ_ENOMEM;
        }
    }
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    int rc = mdb_txn_begin(x->env, NULL, 0, &txn);
    if (rc) {
        free(entries);
        free(bloom);
        return mdb_err(x->dir, "txn_begin", rc);
    }
    int err = 0;
    if (n > 0) {
        /* empty already, unless a failed merge left rows behind: never trusted */
        rc = mdb_drop(txn, x->slots[r.slot], 0);
        if (!rc)
            rc = mdb_cursor_open(txn, x->slots[r.slot], &cur);
        for (size_t i = 0; !rc && i < n; i++) {
            uint64_t height;
            uint32_t index;
            loc_unpack(entries[i].value, &height, &index);
            uint8_t loc[LOC_BYTES];
            loc_encode(loc, height, index);
            MDB_val k = {.mv_size = SEQ_HASH_BYTES, .mv_data = entries[i].id.b}, v = {.mv_size = LOC_BYTES, .mv_data = loc};
            rc = mdb_cursor_put(cur, &k, &v, MDB_APPEND);
            seq_bloom_add(bloom, seq_bloom_lines_for(n), &entries[i].id);
        }
        if (cur)
            mdb_cursor_close(cur);
        err = rc ? mdb_err(x->dir, "write", rc) : run_list(x, txn, &r, bloom, seq_bloom_lines_for(n));
    }
    free(entries);
    free(bloom);
    if (!err)
        err = height_put(x, txn, x->writing_height);
    if (err) {
        mdb_txn_abort(txn);
        return err;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return mdb_err(x->dir, "commit", rc);
    if (n > 0) {
        x->listed[x->listed_count++] = r;
        x->next_run_id++;
    }
    return 0;
}

/* ---- the worker: merges ------------------------------------------------------------- */

/* Whether level holds FANOUT listed runs; with `in`, its oldest FANOUT. */
static bool level_full(const seq_txindex *x, uint32_t level, run_info in[FANOUT])
{
    uint32_t found = 0;
    for (uint32_t i = 0; i < x->listed_count && found < FANOUT; i++) /* listed oldest first */
        if (x->listed[i].level == level) {
            if (in)
                in[found] = x->listed[i];
            found++;
        }
    return found == FANOUT;
}

/* The lowest level with merge work (going on, or due), or LEVELS. Lower
 * levels go first: their merges are small and their runs pile up fastest, so
 * a long merge of big runs never lets the small ones accumulate. */
static uint32_t merge_level(const seq_txindex *x)
{
    for (uint32_t l = 0; l + 1 < LEVELS; l++)
        if (x->merges[l].active || level_full(x, l, NULL))
            return l;
    return LEVELS;
}

static bool merge_wanted(seq_txindex *x)
{
    return !x->error && !x->stopping && merge_level(x) < LEVELS;
}

static int merge_start(seq_txindex *x, uint32_t level)
{
    merge_state *m = &x->merges[level];
    if (!level_full(x, level, m->in))
        return 0;
    uint64_t ids = 0;
    for (uint32_t i = 0; i < FANOUT; i++)
        ids += m->in[i].ids;
    m->out_slot = slot_free(x);
    if (m->out_slot == SLOTS) {
        SEQ_ERROR("txindex_error", "dir=%s op=merge err=\"no free run slot\"", x->dir);
        return SEQ_ESTORE;
    }
    m->bloom_lines = seq_bloom_lines_for(ids);
    m->bloom = calloc(m->bloom_lines, SEQ_BLOOM_LINE_BYTES);
    if (!m->bloom)
        return SEQ_ENOMEM;
    m->level = level + 1;
    m->moved_any = false;
    m->moved = 0;
    m->active = true;
    return 0;
}

/* Positions each input's cursor on its first id after the last one moved;
 * done[i] when input i has none left. */
static int merge_cursors(seq_txindex *x, merge_state *m, MDB_txn *txn, MDB_cursor *cur[FANOUT], bool done[FANOUT])
{
    for (uint32_t i = 0; i < FANOUT; i++) {
        int rc = mdb_cursor_open(txn, x->slots[m->in[i].slot], &cur[i]);
        if (rc)
            return mdb_err(x->dir, "merge_cursor", rc);
        MDB_val k = {.mv_size = SEQ_HASH_BYTES, .mv_data = m->last.b}, v;
        rc = m->moved_any ? mdb_cursor_get(cur[i], &k, &v, MDB_SET_RANGE) : mdb_cursor_get(cur[i], &k, &v, MDB_FIRST);
        if (rc == 0 && m->moved_any && memcmp(k.mv_data, m->last.b, SEQ_HASH_BYTES) == 0)
            rc = mdb_cursor_get(cur[i], &k, &v, MDB_NEXT);
        if (rc && rc != MDB_NOTFOUND)
            return mdb_err(x->dir, "merge_seek", rc);
        done[i] = rc == MDB_NOTFOUND;
    }
    return 0;
}

/* *best: the input holding the smallest current id (the lowest location
 * among equal ids: an id indexed twice keeps its first occurrence); FANOUT
 * when all are done. An input that cannot be read is an error, never "done":
 * the merge's end empties its inputs. */
static int merge_smallest(MDB_cursor *cur[FANOUT], const bool done[FANOUT], MDB_val *k, MDB_val *v, uint32_t *best_out)
{
    uint32_t best = FANOUT;
    for (uint32_t i = 0; i < FANOUT; i++) {
        if (done[i])
            continue;
        MDB_val ki, vi;
        int rc = mdb_cursor_get(cur[i], &ki, &vi, MDB_GET_CURRENT);
        if (rc)
            return rc;
        int c = best == FANOUT ? -1 : memcmp(ki.mv_data, k->mv_data, SEQ_HASH_BYTES);
        if (c < 0 || (c == 0 && memcmp(vi.mv_data, v->mv_data, LOC_BYTES) < 0)) {
            best = i;
            *k = ki;
            *v = vi;
        }
    }
    *best_out = best;
    return 0;
}

/* Moves up to MERGE_CHUNK_IDS ids into the output; *finished when the inputs
 * are exhausted. Runs inside the caller's transaction. */
static int merge_chunk(seq_txindex *x, merge_state *m, MDB_txn *txn, bool *finished)
{
    MDB_cursor *cur[FANOUT] = {0}, *out = NULL;
    bool done[FANOUT];
    int err = merge_cursors(x, m, txn, cur, done);
    int rc = 0;
    if (!err && !m->moved_any && (rc = mdb_drop(txn, x->slots[m->out_slot], 0)) != 0)
        err = mdb_err(x->dir, "merge_clear", rc); /* see write_batch */
    if (!err && (rc = mdb_cursor_open(txn, x->slots[m->out_slot], &out)) != 0)
        err = mdb_err(x->dir, "merge_out", rc);
    uint32_t moved = 0;
    *finished = false;
    while (!err && moved < MERGE_CHUNK_IDS) {
        MDB_val k = {0}, v = {0};
        uint32_t i;
        if ((rc = merge_smallest(cur, done, &k, &v, &i)) != 0) {
            err = mdb_err(x->dir, "merge_read", rc);
            break;
        }
        if (i == FANOUT) {
            *finished = true;
            break;
        }
        if (k.mv_size != SEQ_HASH_BYTES || v.mv_size != LOC_BYTES) {
            err = SEQ_ECORRUPT;
            break;
        }
        seq_hash id;
        memcpy(id.b, k.mv_data, SEQ_HASH_BYTES);
        uint8_t loc[LOC_BYTES];
        memcpy(loc, v.mv_data, LOC_BYTES);
        /* every input holding this id steps past it */
        for (uint32_t j = 0; j < FANOUT; j++) {
            MDB_val kj, vj;
            if (done[j])
                continue;
            if ((rc = mdb_cursor_get(cur[j], &kj, &vj, MDB_GET_CURRENT)) != 0) {
                err = mdb_err(x->dir, "merge_read", rc);
                break;
            }
            if (memcmp(kj.mv_data, id.b, SEQ_HASH_BYTES) != 0)
                continue;
            rc = mdb_cursor_get(cur[j], &kj, &vj, MDB_NEXT);
            done[j] = rc == MDB_NOTFOUND;
            if (rc && rc != MDB_NOTFOUND)
                err = mdb_err(x->dir, "merge_next", rc);
        }
        MDB_val ko = {.mv_size = SEQ_HASH_BYTES, .mv_data = id.b}, vo = {.mv_size = LOC_BYTES, .mv_data = loc};
        if (!err && (rc = mdb_cursor_put(out, &ko, &vo, MDB_APPEND)) != 0)
            err = mdb_err(x->dir, "merge_put", rc);
        if (!err) {
            seq_bloom_add(m->bloom, m->bloom_lines, &id);
            m->last = id;
            m->moved_any = true;
            m->moved++;
            moved++;
        }
    }
    for (uint32_t i = 0; i < FANOUT; i++)
        if (cur[i])
            mdb_cursor_close(cur[i]);
    if (out)
        mdb_cursor_close(out);
    return err;
}

/* Lists the output and unlists and empties the inputs. */
static int merge_finish(seq_txindex *x, merge_state *m, MDB_txn *txn, run_info *made)
{
    *made = (run_info){.id = x->next_run_id, .slot = m->out_slot, .level = m->level, .ids = m->moved};
    /* the filter was sized for every input id (duplicates make the run
     * smaller): kept as it is, its size is in the entry */
    int err = run_list(x, txn, made, m->bloom, m->bloom_lines);
    for (uint32_t i = 0; !err && i < FANOUT; i++) {
        uint8_t key[RUN_ID_BYTES];
        seq_put_u32be(key, m->in[i].id);
        MDB_val k = {.mv_size = sizeof key, .mv_data = key};
        int rc = mdb_del(txn, x->runs, &k, NULL);
        if (!rc)
            rc = mdb_drop(txn, x->slots[m->in[i].slot], 0);
        if (rc)
            err = mdb_err(x->dir, "merge_unlist", rc);
    }
    return err;
}

static void merge_reset(merge_state *m)
{
    free(m->bloom);
    *m = (merge_state){0};
}

/* The listed runs after a merge: its inputs out, its output in. */
static void merge_relist(seq_txindex *x, const merge_state *m, const run_info *made)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < x->listed_count; i++) {
        bool input = false;
        for (uint32_t j = 0; j < FANOUT; j++)
            input |= x->listed[i].id == m->in[j].id;
        if (!input)
            x->listed[kept++] = x->listed[i];
    }
    x->listed[kept++] = *made;
    x->listed_count = kept;
    x->next_run_id++;
}

/* One merge transaction, for the lowest level with merge work (starting its
 * merge first when one is due). */
static int merge_step(seq_txindex *x)
{
    uint32_t level = merge_level(x);
    if (level == LEVELS)
        return 0;
    merge_state *m = &x->merges[level];
    if (!m->active) {
        int err = merge_start(x, level);
        if (err || !m->active)
            return err;
    }
    MDB_txn *txn;
    int rc = mdb_txn_begin(x->env, NULL, 0, &txn);
    if (rc)
        return mdb_err(x->dir, "txn_begin", rc);
    bool finished = false;
    run_info made;
    int err = merge_chunk(x, m, txn, &finished);
    if (!err && finished)
        err = merge_finish(x, m, txn, &made);
    if (!err && (rc = mdb_txn_commit(txn)) != 0)
        err = mdb_err(x->dir, "merge_commit", rc);
    else if (err)
        mdb_txn_abort(txn);
    if (err) {
        merge_reset(m); /* the output's slot is emptied at the next open */
        return err;
    }
    if (finished) {
        merge_relist(x, m, &made);
        SEQ_DEBUG("txindex_merged", "dir=%s level=%u ids=%llu runs=%u", x->dir, made.level,
                  (unsigned long long)made.ids, x->listed_count);
        merge_reset(m);
    }
    return 0;
}

static uint32_t slots_free(const seq_txindex *x)
{
    uint32_t used = x->listed_count;
    for (uint32_t l = 0; l < LEVELS; l++)
        used += x->merges[l].active;
    return used < SLOTS ? SLOTS - used : 0;
}

/* With the lock held: writes the handed-over batch (unlocked meanwhile). */
static void worker_write(seq_txindex *x)
{
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

/* With the lock held: one merge chunk (unlocked meanwhile), then a rest. */
static void worker_merge(seq_txindex *x, bool urgent)
{
    uint64_t started = mono_ns();
    pthread_mutex_unlock(&x->lock);
    int err = merge_step(x);
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
        x->merging = merge_wanted(x);
        bool urgent = x->merging && slots_free(x) < SLOTS_RESERVE;
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

/* ---- lookups ------------------------------------------------------------------------ */

static int loc_decode(const MDB_val *v, uint64_t *height, uint32_t *index)
{
    if (v->mv_size != LOC_BYTES)
        return SEQ_ECORRUPT;
    *height = seq_get_u64be(v->mv_data);
    *index = seq_get_u32be((const uint8_t *)v->mv_data + 8);
    return 0;
}

/* Looks ids up in every listed run of one snapshot, newest run first; a
 * filter that rules an id out saves its B-tree search. With `lowest`, every
 * run is searched and the lowest location kept (an id indexed twice answers
 * with its first occurrence); else the first hit ends an id's search. */
static int runs_find(seq_txindex *x, MDB_txn *txn, const seq_hash *ids, size_t n, bool *found, bool lowest,
                     uint64_t *height, uint32_t *index)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, x->runs, &c);
    if (rc)
        return mdb_err(x->dir, "runs_cursor", rc);
    MDB_val k, v;
    int err = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_LAST); rc == 0 && !err; rc = mdb_cursor_get(c, &k, &v, MDB_PREV)) {
        run_entry e;
        if ((err = run_entry_parse(&k, &v, &e)) != 0)
            break;
        for (size_t i = 0; i < n && !err; i++) {
            if ((found[i] && !lowest) || !seq_bloom_maybe(e.bloom, e.bloom_lines, &ids[i]))
                continue;
            MDB_val ik = {.mv_size = SEQ_HASH_BYTES, .mv_data = (void *)ids[i].b}, iv;
            int got = mdb_get(txn, x->slots[e.slot], &ik, &iv);
            if (got == MDB_NOTFOUND)
                continue;
            if (got) {
                err = mdb_err(x->dir, "get", got);
                break;
            }
            uint64_t h;
            uint32_t at;
            if ((err = loc_decode(&iv, &h, &at)) != 0)
                break;
            if (height && (!found[i] || h < *height)) {
                *height = h;
                *index = at;
            }
            found[i] = true;
        }
    }
    mdb_cursor_close(c);
    if (!err && rc != MDB_NOTFOUND)
        err = mdb_err(x->dir, "runs_walk", rc);
    if (err == SEQ_ECORRUPT)
        SEQ_ERROR("txindex_error", "dir=%s op=get err=\"corrupt run\"", x->dir);
    return err;
}

int seq_txindex_find(seq_txindex *x, const seq_hash *id, uint64_t *height, uint32_t *index)
{
    void *loc = NULL;
    pthread_mutex_lock(&x->lock);
    bool in_memory = seq_idset_get(&x->pending, id, &loc) || seq_idset_get(&x->writing, id, &loc);
    pthread_mutex_unlock(&x->lock);
    if (in_memory) {
        loc_unpack(loc, height, index);
        return 0;
    }
    if (!x->present)
        return SEQ_ENOTFOUND;
    MDB_txn *txn;
    int rc = mdb_txn_begin(x->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return mdb_err(x->dir, "read_begin", rc);
    bool found = false;
    int err = runs_find(x, txn, id, 1, &found, true, height, index);
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
        return mdb_err(x->dir, "read_begin", rc);
    int err = runs_find(x, txn, ids, n, found, false, NULL, NULL);
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

/* ---- open / close ---------------------------------------------------------------- */

static void slot_name(char out[16], uint32_t slot) { snprintf(out, 16, "run%02u", slot); }

/* Read-write: drops the single B-tree of earlier versions (the store indexes
 * every block again: the height goes back to 0). */
static int legacy_drop(seq_txindex *x, MDB_txn *txn)
{
    MDB_dbi legacy;
    int rc = mdb_dbi_open(txn, LEGACY_TABLE, 0, &legacy);
    if (rc == MDB_NOTFOUND)
        return 0;
    uint8_t zero[8] = {0};
    MDB_val k = {.mv_size = strlen(KEY_HEIGHT), .mv_data = KEY_HEIGHT}, v = {.mv_size = 8, .mv_data = zero};
    if (!rc)
        rc = mdb_drop(txn, legacy, 1);
    if (!rc)
        rc = mdb_put(txn, x->state, &k, &v, 0);
    if (rc)
        return rc;
    x->height = 0;
    SEQ_INFO("txindex_upgrade", "dir=%s layout=runs (the store indexes its blocks again)", x->dir);
    return 0;
}

/* Read-write: learns the listed runs, empties the slots none of them uses. */
static int runs_load(seq_txindex *x, MDB_txn *txn)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, x->runs, &c);
    if (rc)
        return rc;
    MDB_val k, v;
    int err = 0;
    x->next_run_id = 1;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        run_entry e;
        if ((err = run_entry_parse(&k, &v, &e)) != 0 || x->listed_count == SLOTS || slot_listed(x, e.slot)) {
            err = SEQ_ECORRUPT;
            break;
        }
        x->listed[x->listed_count++] = (run_info){.id = e.id, .slot = e.slot, .level = e.level, .ids = e.ids};
        x->next_run_id = e.id + 1;
    }
    mdb_cursor_close(c);
    if (err)
        return err;
    if (rc != MDB_NOTFOUND)
        return rc;
    for (uint32_t s = 0; s < SLOTS; s++)
        if (!slot_listed(x, s) && (rc = mdb_drop(txn, x->slots[s], 0)) != 0)
            return rc;
    return 0;
}

static int tables_open(seq_txindex *x, MDB_txn *txn)
{
    unsigned flags = x->read_only ? 0 : MDB_CREATE;
    int rc = mdb_dbi_open(txn, "runs", flags, &x->runs);
    if (!rc)
        rc = mdb_dbi_open(txn, "state", flags, &x->state);
    for (uint32_t s = 0; !rc && s < SLOTS; s++) {
        char name[16];
        slot_name(name, s);
        rc = mdb_dbi_open(txn, name, flags, &x->slots[s]);
    }
    return rc;
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
        rc = tables_open(x, txn);
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
        rc = legacy_drop(x, txn);
    if (!rc && !x->read_only)
        rc = runs_load(x, txn);
    if (txn)
        rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
    if (rc == SEQ_ECORRUPT) {
        SEQ_ERROR("txindex_error", "dir=%s op=open err=\"corrupt run list\"", x->dir);
        return rc;
    }
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
        x->merging = merge_wanted(x); /* seq_txindex_settle before the worker's first look */
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
        merge_reset(&x->merges[l]);
    pthread_cond_destroy(&x->cond);
    pthread_mutex_destroy(&x->lock);
    free(x);
}
