/* The client side of the node's API port: protobuf frames over TCP
 * (4-byte big-endian length, then one ClientRequest / ClientResponse of
 * proto/seq.proto). Blocking sockets, one connection per seq_client, no
 * threads inside: a program may use one client per thread. Requests may be
 * pipelined (send several, then receive): replies come back in request order,
 * each tagged with its request id; subscription batches carry the id of the
 * subscribe request.
 * With seq_client_verify_with, every batch is checked against the genesis
 * validators (lib/verify.h) before it is handed out: a rollup never has to
 * trust the node it reads from. Used by rollups (libseqclient, lib/seqclient.h),
 * seqctl and the tests. */
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
/* The socket, for poll(2) by programs that wait on several clients. Batches
 * may already be read and waiting in the client (several frames come in one
 * read; with seq_client_verify_runs, a whole run): after POLLIN, call
 * seq_client_next_batch with timeout 0 until it returns SEQ_ETIMEOUT. */
int seq_client_fd(const seq_client *c);

/* Outcome of one submitted transaction, in request order. status is 0
 * (accepted), or the node's reason as a lib/errors.h code: SEQ_ETOOBIG,
 * SEQ_EFULL, SEQ_EDUPLICATE, SEQ_EINVAL, ... reason is the node's text. */
typedef struct {
    seq_hash id;
    int status;
    char reason[96];
} seq_submit_result;

/* A client key: the submitter's own name for one transaction (an order id,
 * a nonce), 1..SEQ_CLIENT_KEY_BYTES_MAX bytes; len 0 means none. A retry with
 * the same key and transaction gets the first answer again (accepted, same
 * id) instead of a duplicate, and seq_client_tx_status_by_key finds it. */
#define SEQ_CLIENT_KEY_BYTES_MAX 64

typedef struct {
    const uint8_t *data;   /* borrowed for the duration of the call */
    uint32_t len;
} seq_client_key;

/* Sends one SubmitRequest of n (1..SEQ_GOSSIP_TXS_MAX) transactions without
 * waiting; *request_id (optional) identifies its reply. */
int seq_client_submit_send(seq_client *c, const seq_tx *txs, uint32_t n, uint64_t *request_id) SEQ_MUST_CHECK;
/* The same with keys[i] (keys may be NULL: none) as txs[i]'s client key.
 * SEQ_EINVAL for a key over SEQ_CLIENT_KEY_BYTES_MAX. */
int seq_client_submit_send_keyed(seq_client *c, const seq_tx *txs, const seq_client_key *keys, uint32_t n,
                                 uint64_t *request_id) SEQ_MUST_CHECK;
/* Waits (up to timeout_ms) for the next submit reply: fills up to cap
 * results, *n the count the node sent. */
int seq_client_submit_recv(seq_client *c, seq_submit_result *results, uint32_t cap, uint32_t *n,
                           uint64_t *request_id, uint32_t timeout_ms) SEQ_MUST_CHECK;
/* send + recv. */
int seq_client_submit(seq_client *c, const seq_tx *txs, uint32_t n, seq_submit_result *results,
                      uint32_t timeout_ms) SEQ_MUST_CHECK;
int seq_client_submit_keyed(seq_client *c, const seq_tx *txs, const seq_client_key *keys, uint32_t n,
                            seq_submit_result *results, uint32_t timeout_ms) SEQ_MUST_CHECK;

typedef struct {
    uint64_t height;       /* last finalized */
    uint64_t view;
    uint32_t leader;       /* of view */
    uint32_t peers;        /* peer links up */
    uint64_t mempool_txs;
    uint64_t mempool_bytes;
} seq_node_status;

int seq_client_status(seq_client *c, seq_node_status *out, uint32_t timeout_ms) SEQ_MUST_CHECK;

/* ---- subscriptions ----------------------------------------------------------
 * Verification: after seq_client_verify_with (before subscribing), every
 * batch seq_client_next_batch hands out passed seq_verifier_check: its
 * finalization certificate against vs, its header hash, its namespace proof
 * and its link to the previous batch of its namespace, and the first batch
 * of each namespace is at the subscribed height. A batch that fails is never
 * handed out: next_batch returns the check's error (text in
 * seq_client_last_error), and from then on returns it again: the connection
 * is not trusted any more (reconnect, to another node if need be, and resume
 * from the last batch that passed). */

/* vs is copied. SEQ_EINVAL after subscribing, SEQ_ENOMEM. */
int seq_client_verify_with(seq_client *c, const seq_validators *vs, uint64_t chain_id) SEQ_MUST_CHECK;
/* seq_client_verify_with the validators and chain id of a genesis file
 * (lib/genesis.h); its errors, with a message naming the file in err. */
int seq_client_verify_genesis(seq_client *c, const char *genesis_path, char *err, size_t err_len) SEQ_MUST_CHECK;
/* Catch-up mode, off by default. On, the batches that have already arrived
 * when one is asked for (up to 64; read ahead while under 8 MiB) are verified together
 * (seq_verifier_check_run): every check as above, except that of each
 * namespace's batches in the run only the last one's certificate is
 * checked; the earlier ones, linked to it by parent hashes, are final
 * because it is (a block's finality commits its ancestors), and say so in
 * final_by. Their own certificates are then not checked: a forged
 * signature on one of them is not noticed (the batch is still proven
 * final). Reading a long backlog, that is one ed25519 quorum (~150 us) per
 * run instead of per batch. A live stream, one batch at a time, is checked
 * as without it. SEQ_EINVAL without verification. */
int seq_client_verify_runs(seq_client *c, bool on) SEQ_MUST_CHECK;
bool seq_client_verifying(const seq_client *c);
/* Batches that passed verification on this connection. */
uint64_t seq_client_verified_count(const seq_client *c);

/* Starts a subscription on this connection: one batch per finalized block
 * from from_height (>= 1) on and per namespace, in height order, including
 * blocks where the namespace has no transactions (txs empty). After this call
 * the connection carries only batches. */
int seq_client_subscribe(seq_client *c, const seq_ns *ns, uint32_t ns_count, uint64_t from_height) SEQ_MUST_CHECK;
/* Resumes after a reconnect: every namespace of ns was delivered up to
 * last_height, whose block hash is *last_hash. The stream starts at
 * last_height + 1, and with verification the first batch of each namespace
 * must be that height with prev_batch_hash = *last_hash, so nothing was
 * skipped, repeated or forked across the reconnect. With several namespaces,
 * pass the lowest height all of them reached (seq_client_resume_point): a
 * namespace that was ahead sees its batches from there again. */
int seq_client_subscribe_resume(seq_client *c, const seq_ns *ns, uint32_t ns_count, uint64_t last_height,
                                const seq_hash *last_hash) SEQ_MUST_CHECK;
/* Where to resume from: the highest height every subscribed namespace was
 * delivered up to, and its block hash. SEQ_ENOTFOUND while some namespace
 * has had no batch (resume with the original subscribe then). */
int seq_client_resume_point(const seq_client *c, uint64_t *height, seq_hash *hash) SEQ_MUST_CHECK;

/* Waits up to timeout_ms for the next batch: SEQ_ETIMEOUT when none came,
 * SEQ_ECLOSED when the node closed the connection, SEQ_EDECODE for a bad
 * frame, the node's error code when it refused the subscription, or a
 * verification error (seq_batch_check / seq_verifier_check codes: SEQ_EBADSIG,
 * SEQ_EQUORUM, SEQ_EMISMATCH, SEQ_EPROOF, SEQ_EGAP, SEQ_ECHAIN_ID, ...).
 * *out is owned by the caller: seq_batch_free. */
int seq_client_next_batch(seq_client *c, seq_batch **out, uint32_t timeout_ms) SEQ_MUST_CHECK;

/* ---- transaction status ----------------------------------------------------- */

typedef enum {
    SEQ_TX_UNKNOWN = 1,    /* the node never saw it (or forgot it) */
    SEQ_TX_PENDING = 2,    /* in the mempool */
    SEQ_TX_FINALIZED = 3,  /* in a finalized block: where, and the proof */
    SEQ_TX_DROPPED = 4,    /* left the mempool unfinalized: reason says why */
} seq_tx_state;

/* One transaction's status. Owned by the caller: seq_tx_status_free;
 * cert_path points into the same allocation. */
typedef struct {
    seq_tx_state state;
    seq_hash id;              /* zero for UNKNOWN by key */
    char reason[128];         /* DROPPED: expired, evicted or invalid */
    /* FINALIZED only: */
    uint64_t height;
    uint32_t index;           /* position in the block */
    seq_hash block_hash;
    seq_ns ns;
    seq_header header;
    seq_cert cert;            /* finalizes block_hash, or the last of cert_path */
    uint32_t path_len;
    seq_header *cert_path;    /* headers height+1 .. the certified block */
    seq_nsproof proof;        /* inclusion of leaf index: start = index, count = 1 */
} seq_tx_status;

/* Asks the node where transaction id is. SEQ_EINVAL on a subscribed
 * connection, SEQ_EDECODE / SEQ_EPROTOCOL for a malformed answer (a status
 * of another id, FINALIZED without header or certificate). */
int seq_client_tx_status(seq_client *c, const seq_hash *id, seq_tx_status **out,
                         uint32_t timeout_ms) SEQ_MUST_CHECK;
/* The same by the client key it was submitted with (1..SEQ_CLIENT_KEY_BYTES_MAX
 * bytes); st->id is the id the node holds under that key. */
int seq_client_tx_status_by_key(seq_client *c, const uint8_t *key, uint32_t key_len, seq_tx_status **out,
                                uint32_t timeout_ms) SEQ_MUST_CHECK;
void seq_tx_status_free(seq_tx_status *st);
/* Checks a FINALIZED status against the genesis validators: block_hash is
 * the header's hash at height, the certificate (with its path) finalizes it,
 * and the proof puts (ns, id) at index under the header's payload root
 * (seq_tx_proof_check). A caller who asked by key compares st->id with its
 * transaction's own id. SEQ_EINVAL when not FINALIZED; the check's errors. */
int seq_client_tx_status_verify(const seq_tx_status *st, const seq_validators *vs, uint64_t chain_id, char *why,
                                size_t why_len) SEQ_MUST_CHECK;

/* Last error text from the node (an Error reply), the transport or a failed
 * verification. Valid until the next call on c. */
const char *seq_client_last_error(const seq_client *c);

#endif
