/* What lib/txindex.c (the pending sets, the worker thread, the public API)
 * and lib/txindex_runs.c (the runs on disk: writing, merging, looking up)
 * share. Not for anyone else. */
#ifndef SEQ_TXINDEX_INTERNAL_H
#define SEQ_TXINDEX_INTERNAL_H

#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "idset.h"
#include "txindex.h"

#define LOC_INDEX_BITS 17 /* see txi_loc_pack */
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

/* A location packed in an idset value: height << LOC_INDEX_BITS | index. */
static inline void *txi_loc_pack(uint64_t height, uint32_t index)
{
    return (void *)(uintptr_t)((height << LOC_INDEX_BITS) | index);
}

static inline void txi_loc_unpack(void *v, uint64_t *height, uint32_t *index)
{
    uintptr_t x = (uintptr_t)v;
    *height = x >> LOC_INDEX_BITS;
    *index = (uint32_t)(x & ((1u << LOC_INDEX_BITS) - 1));
}

/* ---- lib/txindex_runs.c -------------------------------------------------------- */

/* Logs an LMDB error of op and maps it to a SEQ_E code. */
int txi_mdb_err(const char *dir, const char *op, int rc);
/* Opens (read-write: creates) the tables. An LMDB code. */
int txi_tables_open(seq_txindex *x, MDB_txn *txn);
/* Read-write open: drops an index of the earlier single-B-tree layout (height
 * back to 0), then learns the listed runs and empties unused slots. LMDB or
 * SEQ codes. */
int txi_legacy_drop(seq_txindex *x, MDB_txn *txn);
int txi_runs_load(seq_txindex *x, MDB_txn *txn);
/* The worker's: `writing` as a new run, with its height, in one durable
 * transaction. */
int txi_write_batch(seq_txindex *x);
/* The worker's: whether a merge is going on or due; one merge transaction. */
bool txi_merge_wanted(seq_txindex *x);
int txi_merge_step(seq_txindex *x);
void txi_merge_reset(merge_state *m);
uint32_t txi_slots_free(const seq_txindex *x);
/* Looks ids up in the runs of one read snapshot (see txindex_runs.c). */
int txi_runs_find(seq_txindex *x, MDB_txn *txn, const seq_hash *ids, size_t n, bool *found, bool lowest,
                  uint64_t *height, uint32_t *index);

#endif
