/* The client API port: protobuf frames over TCP (proto/seq.proto
 * ClientRequest / ClientResponse; 4-byte big-endian length first). Submit,
 * subscribe, get block, transaction status, node status. libuv, on the node's
 * loop; what it needs of the node comes through seq_api_hooks, so it never
 * touches the consensus.
 *
 * Subscriptions: one NamespaceBatch per finalized height and subscribed
 * namespace (empty ones too), from the requested height on, in height order.
 * Old heights are read from the store; a subscriber that keeps up gets new
 * blocks as they are finalized; one whose send queue is over its bound is
 * served from the store again once it drains, so a slow reader costs the node
 * at most send_queue_bytes_max of memory and never blocks consensus. */
#ifndef SEQ_API_H
#define SEQ_API_H

#include <stdint.h>
#include <uv.h>

#include "assert.h"
#include "client.h"
#include "store.h"
#include "txhooks.h"

typedef struct {
    void *ctx;
    seq_tx_hooks tx; /* key_lookup required here */
    void (*status)(void *ctx, seq_node_status *out);
} seq_api_hooks;

typedef struct {
    uv_loop_t *loop;
    const char *listen;             /* "host:port" */
    uint32_t frame_bytes_max;       /* largest request accepted */
    uint32_t clients_max;           /* connections beyond are closed at once */
    size_t send_queue_bytes_max;    /* per client */
    /* A subscriber that is behind and has bytes queued of which none could
     * be written for this long is disconnected (Error SEQ_ESLOW first);
     * 0: never. */
    uint32_t subscriber_stall_ms;
    seq_store *store;               /* borrowed */
    seq_api_hooks hooks;
} seq_api_config;

typedef struct seq_api seq_api;

/* SEQ_EADDR / SEQ_EIO (bind failed; logged with the address). */
int seq_api_start(seq_api **out, const seq_api_config *cfg) SEQ_MUST_CHECK;
/* A block was finalized and stored: feeds subscribers that are caught up. */
void seq_api_delivered(seq_api *a, const seq_block *b, const seq_cert *cert);
uint32_t seq_api_clients(const seq_api *a);
uint32_t seq_api_subscribers(const seq_api *a);
/* Subscribers disconnected for stalling, since start. */
uint64_t seq_api_slow_disconnects(const seq_api *a);
/* Closes the listener and every client; done(ctx) once all handles closed. */
void seq_api_close(seq_api *a, void (*done)(void *ctx), void *ctx);

#endif
