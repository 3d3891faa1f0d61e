/* The node's own votes and the blocks it voted to notarize, in append-only
 * files beside the store, durable with one device flush.
 *
 * Why not LMDB: a vote must be on disk before it is sent, and an LMDB commit
 * flushes twice (its data pages, then its meta page). The notarize vote and
 * its block are on every transaction's path to finality, so that second flush
 * (and LMDB's copy-on-write of the tables) showed in the latency
 * (docs/design.md, section 4). Here one step's votes and blocks are one write
 * and one fdatasync.
 *
 * Two files, DIR/votes-a.log and DIR/votes-b.log: one is active (appended
 * to), the other is the spare that compaction writes into. Each starts with
 * an epoch record; the file with the higher valid epoch is the active one.
 * Records (integers big-endian):
 *   type u8 || body_len u32 || check[16] || body
 *   type 1, a vote:       kind u8 || view u64 || hash || signer u32 || sig
 *   type 2, a kept block: hash || height u64 || canonical block encoding
 *   type 3, a view:       the highest view voted in, u64 (written by compaction)
 *   type 4, the epoch:    epoch u64 || salt[8] (random), at offset 0
 * check is BLAKE2b (first 16 bytes) of the previous record's check || type ||
 * body_len || the body (the epoch record: of zeros || ...); for a block only
 * of its hash and height: its encoding is checked against that hash when the
 * file is read back, so the write path hashes no payload. The chain makes a
 * record check only after exactly the records it was written after.
 *
 * Opening reads the active file's records back. The first one that is cut
 * short or does not check (a write a crash interrupted, what is left of the
 * file's use in an earlier epoch, or a record of a torn append whose
 * predecessor never reached the disk) ends them; appends go on from there.
 * What was synced before is intact. One process at a time (flock).
 *
 * In memory: the newest votes above the finalized tip (for the restart and
 * for peers whose link comes up, [R-RESTART-ALL]), the kept blocks' places in
 * the active file and the highest view voted in. Compaction writes what is
 * still held into the spare, which then becomes active (the caller first
 * makes the store's tip durable, lib/store.c). Nothing is freed or renamed:
 * the files keep their size and are overwritten in place. Not thread-safe:
 * the node's loop thread owns it. */
#ifndef SEQ_VOTELOG_H
#define SEQ_VOTELOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assert.h"
#include "types.h"

#define SEQ_VOTELOG_FILE_A "votes-a.log" /* the active one of a new log */
#define SEQ_VOTELOG_FILE_B "votes-b.log"
/* Votes above the tip held in memory, the newest (older ones are far below
 * any view the node still votes in: it never votes below its highest). */
#define SEQ_VOTELOG_VOTES_MAX 4096u
/* Kept blocks held, the highest (a chain that notarizes without finalizing
 * for that long is beyond what peers can still ask for). */
#define SEQ_VOTELOG_KEPT_MAX 512u
/* Votes, and blocks, in one append at most (a consensus step's actions). */
#define SEQ_VOTELOG_APPEND_MAX 1024u
/* The default compact_bytes. */
#define SEQ_VOTELOG_COMPACT_BYTES (64u << 20)

typedef struct seq_votelog seq_votelog;

typedef struct {
    bool durable;            /* false: no fdatasync (a store opened with no_sync) */
    uint64_t compact_bytes;  /* 0: SEQ_VOTELOG_COMPACT_BYTES */
    uint64_t settled_view;   /* the store's tip: votes at or below it are not held */
    uint64_t settled_height; /* nor blocks at or below it */
} seq_votelog_opts;

/* Opens (creates) the two files, locks them and reads the active one back.
 * SEQ_EIO with a log line naming the file when one cannot be opened, read or
 * locked (another process holds it); SEQ_ECORRUPT when two records vote
 * differently for one (view, kind) above the settled view, or when neither
 * file starts with a valid epoch record but one holds more than that
 * record's bytes; SEQ_ENOMEM. */
int seq_votelog_open(seq_votelog **out, const char *dir, const seq_votelog_opts *opts) SEQ_MUST_CHECK;
void seq_votelog_close(seq_votelog *l);

/* Appends the votes and blocks in one write and one fdatasync, then holds
 * them. The identical vote again, and a block held already, are not written
 * again; a different vote for a held (view, kind) is refused with SEQ_EEXISTS
 * and nothing of the call is written. SEQ_EINVAL for an unknown vote kind or
 * more than SEQ_VOTELOG_APPEND_MAX votes or blocks.
 * SEQ_EIO when the write or the flush fails: the log then refuses every
 * further append (a vote that may not be on disk must never be sent). */
int seq_votelog_append(seq_votelog *l, const seq_vote *votes, size_t nv, const seq_block *const *keep,
                       size_t nk) SEQ_MUST_CHECK;

/* Records view as voted in (a view record, durable) when it is above the
 * highest so far: for votes moved from elsewhere without their record. */
int seq_votelog_raise_view(seq_votelog *l, uint64_t view) SEQ_MUST_CHECK;

/* Whether open found no log and started one (true also for a log whose
 * files an operator deleted: the store checks that against its marker). */
bool seq_votelog_fresh(const seq_votelog *l);

/* Forgets votes at or below tip_view and blocks at or below tip_height (the
 * finalized tip moved there). Memory only: the file keeps them until it is
 * compacted. */
void seq_votelog_settle(seq_votelog *l, uint64_t tip_view, uint64_t tip_height);

/* The newest cap held votes in ascending (view, kind) order; returns how many. */
size_t seq_votelog_votes(const seq_votelog *l, seq_vote *out, size_t cap);
/* Highest view voted in, 0 when none; settling and compaction keep it. */
uint64_t seq_votelog_highest_view(const seq_votelog *l);
/* A held block by hash; *out owned by the caller. SEQ_ENOTFOUND when not
 * held, SEQ_EIO / SEQ_ECORRUPT when its bytes cannot be read back. */
int seq_votelog_kept_get(seq_votelog *l, const seq_hash *hash, seq_block **out) SEQ_MUST_CHECK;
/* End of the active file's records, in bytes (the epoch record included). */
uint64_t seq_votelog_bytes(const seq_votelog *l);

/* Whether the active file has grown past compact_bytes (or twice its size
 * after the last compaction, when that is larger). */
bool seq_votelog_compact_due(const seq_votelog *l);
/* Writes only the highest view, the held votes and the held blocks into the
 * spare file, syncs them, then its epoch record (one higher), and makes it
 * the active file. Records it forgets must be safe to lose: the caller makes
 * the finalized tip they were settled at durable first. SEQ_EIO: then every
 * later append fails too (which file a restart finds in force is unknown). */
int seq_votelog_compact(seq_votelog *l) SEQ_MUST_CHECK;

#endif
