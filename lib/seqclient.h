/* libseqclient: the one header a rollup includes to talk to a seqd network.
 * Installed as <seqclient/seqclient.h> (make install; pkg-config seqclient).
 *
 * What it gives a rollup, without trusting the node it talks to:
 * - submit transactions to its namespace, with optional client keys so a
 *   retry after a timeout is answered, not refused as a duplicate
 *   (seq_client_submit_keyed);
 * - subscribe to its namespace from a height and receive one batch per
 *   finalized block, each checked before it is handed out
 *   (seq_client_verify_with / seq_client_verify_genesis): the finalization
 *   certificate against the genesis validators, the header hash, the
 *   namespace proof (these are all of the namespace's transactions in the
 *   block) and the link to the previous batch (no gap, no fork). A batch that
 *   fails is an error, never a batch. After a reconnect,
 *   seq_client_subscribe_resume proves the stream went on where it stopped.
 *   Reading a backlog, seq_client_verify_runs checks one certificate per
 *   namespace for the batches that arrived together (the earlier ones are
 *   proven final by the later one: final_by);
 * - ask where a transaction is (pending, finalized with its proof, dropped
 *   with the reason) and check a finalized one's proof
 *   (seq_client_tx_status, seq_client_tx_status_verify).
 *
 * Errors are negative codes (errors.h, seq_strerror); text for the last one
 * of a connection is seq_client_last_error. One seq_client is one blocking
 * TCP connection: use one per thread. Memory handed out (batches, statuses)
 * is the caller's to free with the matching _free function.
 *
 * Example: follow namespace 7 from height 1, verified (error handling cut
 * short; examples/consumer.c is the whole program):
 *
 *     #include <seqclient/seqclient.h>
 *
 *     seq_client *c;
 *     char err[256];
 *     if (seq_client_connect(&c, "127.0.0.1:7700", 5000, err, sizeof err) != 0 ||
 *         seq_client_verify_genesis(c, "genesis.json", err, sizeof err) != 0)
 *         die(err);
 *     seq_ns ns = 7;
 *     if (seq_client_subscribe(c, &ns, 1, 1) != 0)
 *         die(seq_client_last_error(c));
 *     for (;;) {
 *         seq_batch *b;
 *         int rc = seq_client_next_batch(c, &b, 1000);
 *         if (rc == SEQ_ETIMEOUT)
 *             continue;
 *         if (rc != 0)              // the node closed, or a batch failed verification
 *             die(seq_client_last_error(c));
 *         for (uint32_t i = 0; i < b->tx_count; i++)
 *             apply(b->header.height, b->txs[i].data, b->txs[i].len);
 *         seq_batch_free(b);
 *     }
 *
 * Build: cc app.c $(pkg-config --cflags --libs seqclient)
 */
#ifndef SEQCLIENT_H
#define SEQCLIENT_H

#define SEQCLIENT_VERSION "0.5.0"

#include "errors.h"   /* SEQ_E* codes, seq_strerror */
#include "types.h"    /* seq_tx, seq_header, seq_cert, seq_validators */
#include "genesis.h"  /* seq_genesis_load: chain id and validators of a genesis file */
#include "verify.h"   /* seq_batch, seq_batch_check, seq_verifier, seq_tx_proof_check */
#include "client.h"   /* seq_client_*: connect, submit, subscribe, verify, tx status */

#endif
