/* LMDB storage of one node: finalized blocks, their certificates, the
 * namespace and tx indexes, and the consensus safety state (own votes).
 * Readers (also in other processes, read-only) never block the writer. */
#ifndef SEQ_STORE_H
#define SEQ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

/* 2: the tx id index moved to DIR/txindex; 3: own votes and kept blocks
 * moved to the vote log (a writer upgrades a version 2 store at open; a
 * version 2 binary then refuses it, instead of voting again in views whose
 * votes it cannot see). */
#define SEQ_STORE_VERSION 3
#define SEQ_STORE_VERSION_BEFORE_VOTE_LOG 2
#define SEQ_STORE_MAP_BYTES_DEFAULT (1ull << 30)
#define SEQ_STORE_READERS_MAX 126

typedef struct seq_store seq_store;

typedef struct {
    uint64_t chain_id;
    size_t map_bytes;  /* LMDB map size; 0 means SEQ_STORE_MAP_BYTES_DEFAULT */
    bool read_only;    /* open an existing store with MDB_RDONLY (another process may write) */
    bool no_sync;      /* simulator only: skip fsync (MDB_NOSYNC); commits stay atomic */
    uint64_t vote_log_compact_bytes; /* 0: SEQ_VOTELOG_COMPACT_BYTES (lib/votelog.h) */
} seq_store_opts;

/* Opens (creating when missing and not read-only) the store in directory dir,
 * which must exist. Checks the meta record: SEQ_EFOREIGN for an LMDB that is
 * not ours, SEQ_EVERSION, SEQ_ECHAIN_ID for another chain, SEQ_ECORRUPT for an
 * unreadable file or a store whose vote log is gone (its files deleted),
 * SEQ_ENOTFOUND when read-only and no store exists; SEQ_ELOCKED when another
 * process (or another writable open in this one) holds dir/writer.lock, which
 * a writable open flocks before anything else and fills with its pid (SEQ_EIO
 * when the filesystem cannot flock); the vote log's errors (lib/votelog.h).
 * *out is owned by the caller (seq_store_close).
 * Details: a data.mdb that is not an LMDB file at all (garbage) is
 * SEQ_ECORRUPT and is left untouched; an LMDB environment without our "meta"
 * database (or with another magic) is SEQ_EFOREIGN. A missing dir is
 * SEQ_ENOTFOUND. Read-only: creates nothing when there is no data.mdb, and
 * gives SEQ_ENOTFOUND for an environment the writer has not initialised yet
 * (retry later). The read-only map is opts->map_bytes (or the default) wide;
 * if the writer later grows the data past it, reads fail with SEQ_ESTORE and
 * the reader must reopen. Failures log one line naming dir.
 * Threads: any thread may call the read functions concurrently (MDB_NOTLS);
 * the write functions (commit_finalized, vote_put) serialise on LMDB's writer
 * lock. Never use a store across fork(): open a new one in the child. */
int seq_store_open(seq_store **out, const char *dir, const seq_store_opts *opts) SEQ_MUST_CHECK;
void seq_store_close(seq_store *s);

/* The last finalized block: height 0 and all-zero hash/view when none. */
typedef struct {
    uint64_t height;
    uint64_t view;
    seq_hash hash;
} seq_store_tip;

int seq_store_tip_get(seq_store *s, seq_store_tip *out) SEQ_MUST_CHECK;

/* One finalized block and the certificate that finalized it (for a block
 * finalized as an ancestor this is its descendant's certificate). */
typedef struct {
    const seq_block *block;
    const seq_cert *cert;
} seq_store_final;

/* Writes n finalized blocks in one write transaction (data pages synced, the
 * meta page written unsynced: a power loss can forget the last blocks, never
 * corrupt the store): blocks by height, hash -> height, certificates, the
 * namespace index (ns, height, index) and the tx index (id -> height, index);
 * moves the tip; the vote log forgets own votes at or below the last block's
 * view and kept blocks at or below its height. Heights must continue the tip (tip+1, tip+2, ...;
 * SEQ_EORDER otherwise). SEQ_EMAP_FULL leaves the store unchanged.
 * Also: every block's chain id must be the store's (SEQ_ECHAIN_ID) and, above
 * height 1, its parent must be the previous block's hash (SEQ_EMISMATCH). Any
 * error aborts the transaction: nothing of the batch is written. A tx id
 * finalized again later keeps its first location in the tx index. n == 0 is a
 * no-op; SEQ_EREADONLY on a read-only store. Items are only read. */
int seq_store_commit_finalized(seq_store *s, const seq_store_final *items, size_t n) SEQ_MUST_CHECK;

/* Own votes, and the blocks our notarize votes among them name, durable in
 * one append to the vote log (DIR/votes-a.log and votes-b.log,
 * lib/votelog.h: one device flush, where an LMDB commit takes two). A
 * notarized block lives only in the validators' memory until it is
 * finalized: if every validator restarted then, nobody could serve it and
 * the chain could never build on it again. So each validator keeps the
 * blocks it voted to notarize until a commit finalizes past their height (at
 * most SEQ_STORE_KEPT_MAX, lowest dropped first), and serves them to peers
 * (seq_store_kept_get). A commit that finds the vote log grown compacts it
 * (lib/votelog.h); a failed compaction fails that commit (the blocks are
 * committed, but the node must stop: the log takes no more votes). */
#define SEQ_STORE_KEPT_MAX 512
int seq_store_write_votes(seq_store *s, const seq_vote *votes, size_t nv, const seq_block *const *keep,
                          size_t nk) SEQ_MUST_CHECK;
/* A kept block by hash; *out owned by the caller. SEQ_ENOTFOUND when absent,
 * SEQ_EREADONLY on a read-only store (kept blocks are the writer's). */
int seq_store_kept_get(seq_store *s, const seq_hash *hash, seq_block **out) SEQ_MUST_CHECK;

/* Transaction ids of committed blocks reach the tx index (seq_store_tx_find,
 * seq_store_txs_finalized) at once through memory, and LMDB in batches
 * written by a background thread (lib/txindex.h). index_flush hands the ids
 * gathered so far to it without waiting (call it every few seconds) and
 * returns its last error; index_sync waits until they are durable. Close
 * syncs; a store reopened after a crash indexes what was lost. A read-only
 * reader (another process) finds an id once it is written. */
int seq_store_index_flush(seq_store *s) SEQ_MUST_CHECK;
int seq_store_index_sync(seq_store *s) SEQ_MUST_CHECK;
size_t seq_store_index_pending(seq_store *s);

/* Block at height; *out owned by the caller. SEQ_ENOTFOUND when absent.
 * cert_get fills the caller's *out. SEQ_ECORRUPT when stored bytes do not
 * decode. */
int seq_store_block_get(seq_store *s, uint64_t height, seq_block **out) SEQ_MUST_CHECK;
int seq_store_cert_get(seq_store *s, uint64_t height, seq_cert *out) SEQ_MUST_CHECK;
int seq_store_height_of(seq_store *s, const seq_hash *block_hash, uint64_t *height) SEQ_MUST_CHECK;
/* Only the header of the stored block at height (the value's first
 * SEQ_HEADER_BYTES), without decoding its transactions: certificate paths
 * need headers of many heights. SEQ_ENOTFOUND when absent, SEQ_ECORRUPT when
 * the stored bytes are shorter than a header or do not decode. */
int seq_store_header_get(seq_store *s, uint64_t height, seq_header *out) SEQ_MUST_CHECK;

/* Where a finalized transaction is. SEQ_ENOTFOUND when it is not finalized. */
int seq_store_tx_find(seq_store *s, const seq_hash *id, uint64_t *height, uint32_t *index) SEQ_MUST_CHECK;
/* found[i] = whether ids[i] is finalized; one read transaction for all. */
int seq_store_txs_finalized(seq_store *s, const seq_hash *ids, size_t n, bool *found) SEQ_MUST_CHECK;

/* Calls cb for each transaction of namespace ns at height >= from_height, in
 * (height, index) order, at most limit of them (0 = no limit). tx is valid only
 * during the call. cb returning non-zero stops the walk and is returned.
 * One read transaction spans the walk (and each block is decoded once per
 * height), so keep limit bounded: a long walk holds old pages from reuse. */
typedef int (*seq_store_ns_cb)(void *ctx, uint64_t height, uint32_t index, const seq_tx *tx);
int seq_store_ns_each(seq_store *s, seq_ns ns, uint64_t from_height, size_t limit,
                      seq_store_ns_cb cb, void *ctx) SEQ_MUST_CHECK;

/* ---- safety state -----------------------------------------------------------
 * The node's own votes, durable before they are sent (etcd's persist-then-send).
 * Any error from seq_store_vote_put is fatal for the node: the caller must stop
 * rather than send a vote that may not be on disk.
 * Putting the identical vote again is a no-op success; a different vote with
 * the same (view, kind) is refused with SEQ_EEXISTS (it would be our own
 * equivocation). Also raises the highest voted view. SEQ_EREADONLY on a
 * read-only store, SEQ_EINVAL for an unknown kind. */
int seq_store_vote_put(seq_store *s, const seq_vote *own) SEQ_MUST_CHECK;
/* The newest cap own votes with view > the tip's view, in ascending (view,
 * kind) order; *n is how many were written. A restart needs only the newest:
 * the node resumes in its highest voted view and never votes below it.
 * votes_load and highest_view are SEQ_EREADONLY on a read-only store. */
int seq_store_votes_load(seq_store *s, seq_vote *out, size_t cap, size_t *n) SEQ_MUST_CHECK;
/* Highest view the node voted in (0 when none); pruning votes does not lower it. */
int seq_store_highest_view(seq_store *s, uint64_t *view) SEQ_MUST_CHECK;

/* Bytes of the map in use and the map size, for metrics and "map full" advice. */
int seq_store_usage(seq_store *s, size_t *used_bytes, size_t *map_bytes) SEQ_MUST_CHECK;

#endif
