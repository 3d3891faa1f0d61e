/* The reader: a co-located rollup reads its namespaces of the finalized
 * stream straight from a running node's store, read-only, with the same
 * verification data as a subscription (lib/verify.h), and no network.
 *
 *   seq_ns ns[] = {5};
 *   seq_reader_opts o = {.home = "/var/lib/seq/node1", .ns = ns, .ns_count = 1, .from_height = 1};
 *   seq_reader *r;
 *   if (seq_reader_open(&r, &o, err, sizeof err) != 0) ... err says why
 *   for (;;) {
 *       seq_batch *b;
 *       int rc = seq_reader_wait(r, &b, 1000);
 *       if (rc == SEQ_ETIMEOUT) continue;           // nothing finalized for a second
 *       if (rc) ... seq_reader_last_error(r) says why; stop
 *       apply(b);                                    // verified already
 *       seq_batch_free(b);
 *   }
 *   seq_reader_close(r);
 *
 * - Order: batches come height by height from from_height, and within one
 *   height in the order the namespaces were given (one batch per namespace
 *   per height, empty when the block has none of its transactions), so every
 *   height is seen exactly once per namespace.
 * - Verification (default on): each batch passes seq_verifier_check against
 *   the genesis validators and chain id, continuity included: the reader
 *   trusts the genesis file, not the node's store. A batch that fails is
 *   not returned; the same call fails with its code (SEQ_EBADSIG, SEQ_EGAP,
 *   SEQ_EPROOF, ...) and the reader stays at that batch.
 * - Tip: seq_reader_next never blocks. At the tip it returns SEQ_ENOTFOUND,
 *   "nothing new yet" (also before the node has initialised its store).
 *   LMDB has no change notification, so seq_reader_wait polls the tip every
 *   SEQ_READER_POLL_MS until a batch comes or timeout_ms passes; a read is a
 *   few microseconds, so a short interval costs little.
 * - The node keeps writing meanwhile: readers never block it (LMDB MVCC),
 *   but a read transaction open for long would keep old pages from reuse,
 *   so each read is a short transaction of its own.
 * - Map size: a read-only map narrower than the node's data fails reads with
 *   SEQ_ESTORE (lib/store.h); the reader then reopens the store once with a
 *   doubled map before giving up.
 * - One reader per thread: calls on one reader are not thread-safe. Never
 *   use a reader across fork() (LMDB): open a new one in the child. */
#ifndef SEQ_READER_H
#define SEQ_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assert.h"
#include "verify.h"

#define SEQ_READER_NS_MAX SEQ_VERIFIER_NS_MAX
#define SEQ_READER_POLL_MS 10u                /* seq_reader_wait's polling interval */
#define SEQ_READER_MAP_BYTES_MAX (1ull << 42) /* reopen on SEQ_ESTORE doubles the map up to this */
#define SEQ_READER_ERR_BYTES 256

typedef struct seq_reader seq_reader;

typedef struct {
    /* Where the node is, one of:
     * - home: a node home (lib/home.h); DIR/seqd.conf names the data dir,
     *   the genesis file and the map size;
     * - data_dir with genesis_file: the store directory and the network's
     *   genesis file directly.
     * genesis_file given with home overrides the config's. */
    const char *home;
    const char *data_dir;
    const char *genesis_file;
    const seq_ns *ns;          /* 1..SEQ_READER_NS_MAX distinct namespaces (copied) */
    uint32_t ns_count;
    uint64_t from_height;      /* >= 1: first height read */
    /* Optional: the block hash at from_height - 1 that the rollup already
     * applied, so the first batch must continue it (resuming). */
    const seq_hash *prev_hash;
    bool no_verify;            /* hand out batches without checking them */
    /* Catch-up runs (lib/client.h, seq_client_verify_runs): batches are cut
     * ahead (up to 64, to the tip) and checked as one run, one certificate
     * per namespace; the earlier ones carry final_by and their own
     * certificates are not checked. */
    bool verify_runs;
    size_t map_bytes;          /* 0: the config's store_map_bytes, or SEQ_STORE_MAP_BYTES_DEFAULT */
} seq_reader_opts;

/* Loads the genesis (and config with home) and checks that the data
 * directory exists; the store itself is opened read-only on the first read
 * (the node may not have created it yet). SEQ_EINVAL for bad options,
 * SEQ_ENOTFOUND for a missing home, config, genesis or data directory,
 * SEQ_ECONFIG / SEQ_EGENESIS, SEQ_ENOMEM; a message in err naming what was
 * wrong. *out is owned by the caller: seq_reader_close. */
int seq_reader_open(seq_reader **out, const seq_reader_opts *o, char *err, size_t err_len) SEQ_MUST_CHECK;
void seq_reader_close(seq_reader *r);

/* The next batch (owned by the caller: seq_batch_free), verified unless
 * no_verify. SEQ_ENOTFOUND: nothing new yet (retry later, or use
 * seq_reader_wait). Other errors (verification, SEQ_ECHAIN_ID for a store of
 * another chain, SEQ_ECORRUPT, SEQ_ESTORE) leave the reader at the same
 * batch; seq_reader_last_error says what failed. */
int seq_reader_next(seq_reader *r, seq_batch **out) SEQ_MUST_CHECK;
/* seq_reader_next, polling the tip every SEQ_READER_POLL_MS while there is
 * nothing new, for at most timeout_ms: SEQ_ETIMEOUT when nothing came. */
int seq_reader_wait(seq_reader *r, seq_batch **out, uint32_t timeout_ms) SEQ_MUST_CHECK;

/* The height the next batch comes from, and the number of batches handed
 * out so far. */
uint64_t seq_reader_height(const seq_reader *r);
uint64_t seq_reader_batches(const seq_reader *r);
/* Why the last failing call failed ("" when none); valid until the next call. */
const char *seq_reader_last_error(const seq_reader *r);

#endif
