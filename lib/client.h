/* The client side of the node's API port: protobuf frames over TCP
 * (4-byte big-endian length, then one ClientRequest / ClientResponse of
 * proto/seq.proto). Blocking sockets, one connection per seq_client, no
 * threads inside: a program may use one client per thread. Requests may be
 * pipelined (send several, then receive): replies come back in request order,
 * each tagged with its request id; subscription batches carry the id of the
 * subscribe request.
 * Used by seqctl and the cluster tests; issue 4 adds verification. */
#ifndef SEQ_CLIENT_H
#define SEQ_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assert.h"
#include "types.h"
#include "verify.h"

#define SEQ_CLIENT_FRAME_BYTES_MAX (64u << 20) /* largest reply accepted */
#define SEQ_CLIENT_SUBSCRIBE_NS_MAX 256        /* namespaces in one subscription */

typedef struct seq_client seq_client;

/* Connects to "host:port" within timeout_ms. SEQ_EADDR, SEQ_ETIMEOUT, SEQ_EIO
 * (message in err when non-NULL). *out owned by the caller. */
int seq_client_connect(seq_client **out, const char *hostport, uint32_t timeout_ms,
                       char *err, size_t err_len) SEQ_MUST_CHECK;
void seq_client_close(seq_client *c);
/* The socket, for poll(2) by programs that wait on several clients. */
int seq_client_fd(const seq_client *c);

/* Outcome of one submitted transaction, in request order. status is 0
 * (accepted), or the node's reason as a lib/errors.h code: SEQ_ETOOBIG,
 * SEQ_EFULL, SEQ_EDUPLICATE, SEQ_EINVAL, ... reason is the node's text. */
typedef struct {
    seq_hash id;
    int status;
    char reason[96];
} seq_submit_result;

/* Sends one SubmitRequest of n (1..SEQ_GOSSIP_TXS_MAX) transactions without
 * waiting; *request_id (optional) identifies its reply. */
int seq_client_submit_send(seq_client *c, const seq_tx *txs, uint32_t n, uint64_t *request_id) SEQ_MUST_CHECK;
/* Waits (up to timeout_ms) for the next submit reply: fills up to cap
 * results, *n the count the node sent. */
int seq_client_submit_recv(seq_client *c, seq_submit_result *results, uint32_t cap, uint32_t *n,
                           uint64_t *request_id, uint32_t timeout_ms) SEQ_MUST_CHECK;
/* send + recv. */
int seq_client_submit(seq_client *c, const seq_tx *txs, uint32_t n, seq_submit_result *results,
                      uint32_t timeout_ms) SEQ_MUST_CHECK;

typedef struct {
    uint64_t height;       /* last finalized */
    uint64_t view;
    uint32_t leader;       /* of view */
    uint32_t peers;        /* peer links up */
    uint64_t mempool_txs;
    uint64_t mempool_bytes;
} seq_node_status;

int seq_client_status(seq_client *c, seq_node_status *out, uint32_t timeout_ms) SEQ_MUST_CHECK;

/* Starts a subscription on this connection: one batch per finalized block
 * from from_height (>= 1) on and per namespace, in height order, including
 * blocks where the namespace has no transactions (txs empty). After this call
 * the connection carries only batches. */
int seq_client_subscribe(seq_client *c, const seq_ns *ns, uint32_t ns_count, uint64_t from_height) SEQ_MUST_CHECK;


/* Waits up to timeout_ms for the next batch: SEQ_ETIMEOUT when none came,
 * SEQ_ECLOSED when the node closed the connection, SEQ_EDECODE for a bad
 * frame, or the node's error code when it refused the subscription. */
int seq_client_next_batch(seq_client *c, seq_batch **out, uint32_t timeout_ms) SEQ_MUST_CHECK;

/* Last error text from the node (an Error reply) or the transport. */
const char *seq_client_last_error(const seq_client *c);

#endif
