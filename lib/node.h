/* One validator node on the network: the replica (consensus, mempool, store)
 * driven by libuv timers and peer frames, peer links (lib/net.c), range sync
 * (lib/sync.c), transaction gossip and the client API (lib/api.c). seqd is a
 * thin program around this. All calls on the loop's thread. */
#ifndef SEQ_NODE_H
#define SEQ_NODE_H

#include <stddef.h>
#include <uv.h>

#include "assert.h"
#include "client.h"
#include "config.h"

typedef struct seq_node seq_node;

/* Loads everything the config names (genesis, identity key, store), checks
 * that our key is a validator of the genesis and that the store belongs to
 * its chain, then binds the peer and API ports and starts the consensus.
 * On error nothing is left running and err says what to fix. */
typedef void (*seq_node_stopped_fn)(void *ctx, int rc);

int seq_node_start(seq_node **out, uv_loop_t *loop, const seq_config *cfg, const char *config_path,
                   seq_node_stopped_fn stopped, void *ctx, char *err, size_t err_len) SEQ_MUST_CHECK;

/* Clean shutdown: stop accepting, close clients and peers (every LMDB write
 * is synchronous, so none is half done), close the store, free the node; then
 * stopped(ctx, rc) with the rc given here. The node calls it itself with the
 * error on a fatal store failure. Idempotent. */
void seq_node_stop(seq_node *n, int rc);

void seq_node_status_get(seq_node *n, seq_node_status *out);

#endif
