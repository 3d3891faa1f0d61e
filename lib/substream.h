/* Subscriptions served on their own thread and libuv loop.
 *
 * Why: serving a subscriber costs a batch build and a socket write per height
 * (on loopback, a write also runs the receiver's TCP processing); with 200
 * subscribers that was ~5 ms per block on the node's loop, inside the step
 * that committed the block, i.e. on the consensus' critical path. Here the
 * API port hands a connection over once it has subscribed (after a subscribe
 * the connection carries only batches), and this thread streams batches to it
 * from the store and the shared batch cache, so consensus never waits for a
 * subscriber and a 2-core machine uses its second core for them.
 *
 * Per subscriber: one NamespaceBatch per height and subscribed namespace, in
 * height order, from its next height on; at most CATCHUP_BLOCKS_PER_TICK
 * heights per tick while its queued bytes are under half of
 * send_queue_bytes_max, so a slow reader costs a bounded queue and is served
 * from the store when it drains; one behind of whose queued bytes none could
 * be written for stall_ms is sent SEQ_ESLOW and disconnected.
 *
 * Threads: start, adopt, tip, the counters and stop are called from the
 * node's loop thread; everything else runs on the stream thread, which only
 * reads the store (LMDB read transactions, MDB_NOTLS). */
#ifndef SEQ_SUBSTREAM_H
#define SEQ_SUBSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "assert.h"
#include "store.h"
#include "types.h"

typedef struct {
    seq_store *store;            /* borrowed; outlives the stream */
    size_t send_queue_bytes_max; /* per subscriber */
    uint32_t stall_ms;           /* 0: never disconnect a stalled subscriber */
    size_t cache_bytes;          /* encoded batches kept for all subscribers */
    size_t block_cache_bytes;    /* delivered blocks kept for subscribers behind, and waiting to be taken */
} seq_substream_config;

typedef struct seq_substream seq_substream;

/* Starts the thread. SEQ_ENOMEM, SEQ_EIO (thread or loop creation). */
int seq_substream_start(seq_substream **out, const seq_substream_config *cfg) SEQ_MUST_CHECK;
/* Takes over the connected socket fd (owned by the stream from now on, even
 * on error): its batches are the ones of ns[0..ns_count) from next_height on,
 * each tagged with request_id. SEQ_ECLOSED once stopping (fd closed). */
int seq_substream_adopt(seq_substream *s, int fd, uint64_t request_id, const seq_ns *ns, uint32_t ns_count,
                        uint64_t next_height) SEQ_MUST_CHECK;
/* Block b (with its certificate) was committed to the store: it becomes the
 * tip. A copy goes to the stream thread so the batches of its height are
 * built without reading and re-checking it from the store (best effort: on
 * ENOMEM only the height is announced). */
void seq_substream_tip(seq_substream *s, const seq_block *b, const seq_cert *cert);
uint32_t seq_substream_count(const seq_substream *s);
uint64_t seq_substream_slow_disconnects(const seq_substream *s);
/* Closes every subscriber, ends and joins the thread, frees s. */
void seq_substream_stop(seq_substream *s);

#endif
