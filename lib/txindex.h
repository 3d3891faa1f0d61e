/* The tx id index of a store (id -> height, index of its first finalized
 * occurrence), kept apart from the blocks and written in the background.
 *
 * Why: a tx id is a uniform hash, so every id inserted into a B-tree dirties
 * its own leaf page. Written with each block, that is about one 4 KiB page
 * written and fsync'd per transaction on the path every finalized block (and
 * every vote after it) waits on. Here, ids of committed blocks wait in memory,
 * where every lookup sees them at once, and a worker thread writes them in one
 * transaction per batch into its own LMDB environment (DIR/txindex), so
 * neither its writer lock nor its fsync ever stalls the node's votes. Each
 * batch is written as a sorted run (sequential pages, not one random leaf
 * per id); runs are merged in the background (lib/txindex.c).
 * The environment records the height it is complete up to; the store indexes
 * the blocks above it again at open, so a crash loses nothing. Used only by
 * lib/store.c. */
#ifndef SEQ_TXINDEX_H
#define SEQ_TXINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assert.h"
#include "types.h"

#define SEQ_TXINDEX_DIR "txindex"
#define SEQ_TXINDEX_PENDING_MAX 262144u /* ids held before a commit waits for the worker */

typedef struct seq_txindex seq_txindex;

/* Opens (creates, unless read_only) DIR/txindex. A read-only open of a store
 * without one gives an index that finds nothing. */
int seq_txindex_open(seq_txindex **out, const char *store_dir, size_t map_bytes, bool read_only) SEQ_MUST_CHECK;
/* Writes what is pending, waits for it, stops the worker. */
void seq_txindex_close(seq_txindex *x);
/* Height up to which the environment is complete (durable). */
uint64_t seq_txindex_height(seq_txindex *x);

/* The ids of a committed block (heights ascending). Hands a full batch to the
 * worker, waiting for it when it is still busy with the previous one. */
int seq_txindex_add(seq_txindex *x, const seq_block *b) SEQ_MUST_CHECK;
/* Hands what is pending to the worker unless it is busy; never waits.
 * Returns the worker's last error (sticky), else 0. */
int seq_txindex_flush(seq_txindex *x) SEQ_MUST_CHECK;
/* Hands over what is pending and waits until it is durable. */
int seq_txindex_sync(seq_txindex *x) SEQ_MUST_CHECK;
/* Ids in memory (pending or being written). */
size_t seq_txindex_unwritten(seq_txindex *x);

/* Waits until the worker has nothing left to do: no batch, no merge due.
 * Returns the worker's last error (sticky), else 0. */
int seq_txindex_settle(seq_txindex *x) SEQ_MUST_CHECK;
/* Runs the index is made of now (each a sorted table with a filter; merged
 * four into one as they pile up), for tests and metrics. Any thread. */
size_t seq_txindex_runs(seq_txindex *x);

/* SEQ_ENOTFOUND, or 0 with the location. Any thread. */
int seq_txindex_find(seq_txindex *x, const seq_hash *id, uint64_t *height, uint32_t *index) SEQ_MUST_CHECK;

/* found[i]: whether ids[i] is indexed (any thread). */
int seq_txindex_find_many(seq_txindex *x, const seq_hash *ids, size_t n, bool *found) SEQ_MUST_CHECK;

#endif
