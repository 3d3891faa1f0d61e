/* The tx index's runs on disk (lib/txindex.h, lib/txindex_internal.h).
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
 */
#include "txindex_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bloom.h"
#include "codec.h"
#include "crypto.h"
#include "errors.h"
#include "log.h"

int txi_mdb_err(const char *dir, const char *op, int rc)
{
    SEQ_ERROR("txindex_error", "dir=%s op=%s err=\"%s\"", dir, op, mdb_strerror(rc));
    return rc == MDB_MAP_FULL ? SEQ_EMAP_FULL : rc == MDB_CORRUPTED || rc == MDB_INVALID ? SEQ_ECORRUPT : SEQ_ESTORE;
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
        return txi_mdb_err(x->dir, "run_list", rc);
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
    return rc ? txi_mdb_err(x->dir, "height_put", rc) : 0;
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
int txi_write_batch(seq_txindex *x)
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
        return txi_mdb_err(x->dir, "txn_begin", rc);
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
            txi_loc_unpack(entries[i].value, &height, &index);
            uint8_t loc[LOC_BYTES];
            loc_encode(loc, height, index);
            MDB_val k = {.mv_size = SEQ_HASH_BYTES, .mv_data = entries[i].id.b}, v = {.mv_size = LOC_BYTES, .mv_data = loc};
            rc = mdb_cursor_put(cur, &k, &v, MDB_APPEND);
            seq_bloom_add(bloom, seq_bloom_lines_for(n), &entries[i].id);
        }
        if (cur)
            mdb_cursor_close(cur);
        err = rc ? txi_mdb_err(x->dir, "write", rc) : run_list(x, txn, &r, bloom, seq_bloom_lines_for(n));
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
        return txi_mdb_err(x->dir, "commit", rc);
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

bool txi_merge_wanted(seq_txindex *x)
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
            return txi_mdb_err(x->dir, "merge_cursor", rc);
        MDB_val k = {.mv_size = SEQ_HASH_BYTES, .mv_data = m->last.b}, v;
        rc = m->moved_any ? mdb_cursor_get(cur[i], &k, &v, MDB_SET_RANGE) : mdb_cursor_get(cur[i], &k, &v, MDB_FIRST);
        if (rc == 0 && m->moved_any && memcmp(k.mv_data, m->last.b, SEQ_HASH_BYTES) == 0)
            rc = mdb_cursor_get(cur[i], &k, &v, MDB_NEXT);
        if (rc && rc != MDB_NOTFOUND)
            return txi_mdb_err(x->dir, "merge_seek", rc);
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
        err = txi_mdb_err(x->dir, "merge_clear", rc); /* see txi_write_batch */
    if (!err && (rc = mdb_cursor_open(txn, x->slots[m->out_slot], &out)) != 0)
        err = txi_mdb_err(x->dir, "merge_out", rc);
    uint32_t moved = 0;
    *finished = false;
    while (!err && moved < MERGE_CHUNK_IDS) {
        MDB_val k = {0}, v = {0};
        uint32_t i;
        if ((rc = merge_smallest(cur, done, &k, &v, &i)) != 0) {
            err = txi_mdb_err(x->dir, "merge_read", rc);
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
                err = txi_mdb_err(x->dir, "merge_read", rc);
                break;
            }
            if (memcmp(kj.mv_data, id.b, SEQ_HASH_BYTES) != 0)
                continue;
            rc = mdb_cursor_get(cur[j], &kj, &vj, MDB_NEXT);
            done[j] = rc == MDB_NOTFOUND;
            if (rc && rc != MDB_NOTFOUND)
                err = txi_mdb_err(x->dir, "merge_next", rc);
        }
        MDB_val ko = {.mv_size = SEQ_HASH_BYTES, .mv_data = id.b}, vo = {.mv_size = LOC_BYTES, .mv_data = loc};
        if (!err && (rc = mdb_cursor_put(out, &ko, &vo, MDB_APPEND)) != 0)
            err = txi_mdb_err(x->dir, "merge_put", rc);
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
            err = txi_mdb_err(x->dir, "merge_unlist", rc);
    }
    return err;
}

void txi_merge_reset(merge_state *m)
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
int txi_merge_step(seq_txindex *x)
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
        return txi_mdb_err(x->dir, "txn_begin", rc);
    bool finished = false;
    run_info made;
    int err = merge_chunk(x, m, txn, &finished);
    if (!err && finished)
        err = merge_finish(x, m, txn, &made);
    if (!err && (rc = mdb_txn_commit(txn)) != 0)
        err = txi_mdb_err(x->dir, "merge_commit", rc);
    else if (err)
        mdb_txn_abort(txn);
    if (err) {
        txi_merge_reset(m); /* the output's slot is emptied at the next open */
        return err;
    }
    if (finished) {
        merge_relist(x, m, &made);
        SEQ_DEBUG("txindex_merged", "dir=%s level=%u ids=%llu runs=%u", x->dir, made.level,
                  (unsigned long long)made.ids, x->listed_count);
        txi_merge_reset(m);
    }
    return 0;
}

uint32_t txi_slots_free(const seq_txindex *x)
{
    uint32_t used = x->listed_count;
    for (uint32_t l = 0; l < LEVELS; l++)
        used += x->merges[l].active;
    return used < SLOTS ? SLOTS - used : 0;
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

/* Filter lines requested ahead of the lookups (seq_bloom_prefetch): each
 * check of a large filter is a cache miss; overlapped, a proposal's ids cost
 * 20-40% less (30-32 vs 38-55 ns a check over 8 filters of 2^20 ids in a
 * microbenchmark on the 2-core bench machine). */
#define BLOOM_PREFETCH_AHEAD 8

/* Looks ids up in every listed run of one snapshot, newest run first; a
 * filter that rules an id out saves its B-tree search. With `lowest`, every
 * run is searched and the lowest location kept (an id indexed twice answers
 * with its first occurrence); else the first hit ends an id's search. */
int txi_runs_find(seq_txindex *x, MDB_txn *txn, const seq_hash *ids, size_t n, bool *found, bool lowest,
                     uint64_t *height, uint32_t *index)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, x->runs, &c);
    if (rc)
        return txi_mdb_err(x->dir, "runs_cursor", rc);
    MDB_val k, v;
    int err = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_LAST); rc == 0 && !err; rc = mdb_cursor_get(c, &k, &v, MDB_PREV)) {
        run_entry e;
        if ((err = run_entry_parse(&k, &v, &e)) != 0)
            break;
        for (size_t i = 0; i < n && i < BLOOM_PREFETCH_AHEAD; i++)
            seq_bloom_prefetch(e.bloom, e.bloom_lines, &ids[i]);
        for (size_t i = 0; i < n && !err; i++) {
            if (i + BLOOM_PREFETCH_AHEAD < n)
                seq_bloom_prefetch(e.bloom, e.bloom_lines, &ids[i + BLOOM_PREFETCH_AHEAD]);
            if ((found[i] && !lowest) || !seq_bloom_maybe(e.bloom, e.bloom_lines, &ids[i]))
                continue;
            MDB_val ik = {.mv_size = SEQ_HASH_BYTES, .mv_data = (void *)ids[i].b}, iv;
            int got = mdb_get(txn, x->slots[e.slot], &ik, &iv);
            if (got == MDB_NOTFOUND)
                continue;
            if (got) {
                err = txi_mdb_err(x->dir, "get", got);
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
        err = txi_mdb_err(x->dir, "runs_walk", rc);
    if (err == SEQ_ECORRUPT)
        SEQ_ERROR("txindex_error", "dir=%s op=get err=\"corrupt run\"", x->dir);
    return err;
}

/* ---- open / close ---------------------------------------------------------------- */

static void slot_name(char out[16], uint32_t slot) { snprintf(out, 16, "run%02u", slot); }

/* Read-write: drops the single B-tree of earlier versions (the store indexes
 * every block again: the height goes back to 0). */
int txi_legacy_drop(seq_txindex *x, MDB_txn *txn)
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
int txi_runs_load(seq_txindex *x, MDB_txn *txn)
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

int txi_tables_open(seq_txindex *x, MDB_txn *txn)
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

