/* What both client-facing ports (the API port, lib/api.c, and the HTTP port,
 * lib/http.c) need of the node for transactions; the node wires one set for
 * both (lib/node.c). Every hook runs on the node's loop thread. */
#ifndef SEQ_TXHOOKS_H
#define SEQ_TXHOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

typedef struct {
    /* A client's transaction, with an optional client key (key NULL,
     * key_len 0: none): 0 or the verdict of seq_node_submit (lib/node.h),
     * SEQ_EEXISTS for a key already used for another transaction; *id is
     * the transaction's id. */
    int (*submit)(void *ctx, seq_ns ns, const uint8_t *data, uint32_t len, const uint8_t *key, size_t key_len,
                  seq_hash *id);
    /* Optional: a batch without client keys, each as submit would give it
     * (rcs[i], ids[i]; ids zero when refused before hashing) but in one go,
     * so the node looks all the ids up at once. NULL: submit, one by one. */
    void (*submit_many)(void *ctx, const seq_tx *txs, uint32_t n, int *rcs, seq_hash *ids);
    /* Where a transaction the store does not hold is: SEQ_TX_PENDING,
     * SEQ_TX_DROPPED (with *reason, a SEQ_DROP_*) or SEQ_TX_UNKNOWN
     * (lib/client.h seq_tx_state). */
    int (*tx_fate)(void *ctx, const seq_hash *id, int *reason);
    /* The transaction a client key was used for; false when unknown.
     * Optional for the HTTP port (NULL: lookups by key answer 501). */
    bool (*key_lookup)(void *ctx, const uint8_t *key, size_t key_len, seq_hash *id);
} seq_tx_hooks;

#endif
