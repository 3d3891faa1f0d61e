/* What the node remembers for clients about transactions it did not order
 * (or not yet): the client keys of idempotent submits and the transactions
 * it dropped, with the reason. Both are bounded rings: the oldest entries are
 * forgotten first. Pure: no I/O, no clock. */
#ifndef SEQ_TXTRACK_H
#define SEQ_TXTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assert.h"
#include "types.h"

#define SEQ_CLIENT_KEY_BYTES_MAX 64
#define SEQ_TXTRACK_ENTRIES_MAX (1u << 22)

typedef struct seq_txtrack seq_txtrack;

/* keys_max and dropped_max: 1..SEQ_TXTRACK_ENTRIES_MAX (SEQ_EINVAL);
 * memory is allocated up front (about 100 bytes per entry). */
int seq_txtrack_new(seq_txtrack **out, uint32_t keys_max, uint32_t dropped_max) SEQ_MUST_CHECK;
void seq_txtrack_free(seq_txtrack *t);

/* A keyed submit, before the mempool sees it: 0 when the key is new or names
 * this same transaction id; SEQ_EEXISTS when it names another transaction;
 * SEQ_EINVAL for a key of 0 or more than SEQ_CLIENT_KEY_BYTES_MAX bytes. */
int seq_txtrack_key_check(const seq_txtrack *t, const uint8_t *key, size_t len, const seq_hash *id) SEQ_MUST_CHECK;
/* After the mempool's verdict rc: accepted (0) or already known
 * (SEQ_EDUPLICATE: pending or finalized) both become 0, the key is
 * remembered for id and a dropped record of id is forgotten; any other
 * verdict is returned unchanged and the key is not remembered. */
int seq_txtrack_key_commit(seq_txtrack *t, const uint8_t *key, size_t len, const seq_hash *id, int rc);
/* The transaction a key was used for. */
bool seq_txtrack_key_get(const seq_txtrack *t, const uint8_t *key, size_t len, seq_hash *id);

/* id left the mempool unordered for reason (SEQ_DROP_*). */
void seq_txtrack_dropped_put(seq_txtrack *t, const seq_hash *id, int reason);
/* id was accepted again: no longer dropped. */
void seq_txtrack_dropped_forget(seq_txtrack *t, const seq_hash *id);
bool seq_txtrack_dropped_get(const seq_txtrack *t, const seq_hash *id, int *reason);

#endif
