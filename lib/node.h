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

/* A client's transaction (API and HTTP ports): the mempool's verdict
 * (lib/replica.h). With a client key (key_len 1..SEQ_CLIENT_KEY_BYTES_MAX)
 * a retry of the same transaction is 0 (accepted) even when it is pending or
 * finalized already, and the key used for another transaction is
 * SEQ_EEXISTS. *id is always the transaction's id. */
int seq_node_submit(seq_node *n, seq_ns ns, const uint8_t *data, uint32_t len, const uint8_t *key,
                    size_t key_len, seq_hash *id);
/* seq_node_submit for a batch without client keys: rcs[i], ids[i] as that
 * gives (seq_replica_submit_many). */
void seq_node_submit_many(seq_node *n, const seq_tx *txs, uint32_t count, int *rcs, seq_hash *ids);
/* Where a transaction not in the store is (lib/client.h's seq_tx_state):
 * SEQ_TX_PENDING, SEQ_TX_DROPPED (*reason a SEQ_DROP_* of lib/replica.h) or
 * SEQ_TX_UNKNOWN. */
int seq_node_tx_fate(seq_node *n, const seq_hash *id, int *reason);
/* The transaction a client key was used for (the last TXTRACK_KEYS_MAX keys). */
bool seq_node_key_lookup(seq_node *n, const uint8_t *key, size_t key_len, seq_hash *id);

#endif
