/* Messages between validators, as the core sees them (decoded and checked for
 * shape; signatures are checked by the consensus). lib/wire.c maps them to
 * and from the protobuf schema in proto/seq.proto. */
#ifndef SEQ_MSG_H
#define SEQ_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "types.h"

#define SEQ_CERT_REQ_VIEWS_MAX 64 /* views asked for in one certificate request */
#define SEQ_GOSSIP_TXS_MAX 4096   /* transactions in one gossip frame */

typedef enum {
    SEQ_MSG_PROPOSE = 1, /* leader's block + its notarize vote */
    SEQ_MSG_VOTE,        /* notarize / nullify / finalize */
    SEQ_MSG_CERT,        /* notarization / nullification / finalization */
    SEQ_MSG_BLOCK_REQ,   /* "send me the block with this hash" */
    SEQ_MSG_BLOCK,       /* a block, answering BLOCK_REQ */
    SEQ_MSG_CERT_REQ,    /* "send me what certificates you have for these views" */
    SEQ_MSG_TXS,         /* gossip: pending transactions */
    SEQ_MSG_SYNC_REQ,    /* range sync: "send me finalized blocks from this height" */
    SEQ_MSG_SYNC_RESP,   /* range sync: finalized blocks with their certificates */
    SEQ_MSG_PROPOSE_IDS, /* a proposal as received compact: header, tx ids, vote */
} seq_msg_kind;

#define SEQ_SYNC_BLOCKS_MAX 1024 /* blocks in one range sync response */

typedef struct {
    seq_msg_kind kind;
    union {
        struct {
            seq_block *block;
            seq_vote vote; /* the leader's notarize vote for block */
            /* Encoded as a CompactProposal (header and tx ids only): what
             * an honest leader sends once its gossip is out. */
            bool ids_only;
        } propose;
        /* Decoded from a CompactProposal; the replica rebuilds the block
         * from its mempool and hands the consensus a SEQ_MSG_PROPOSE. */
        struct {
            seq_header header;
            seq_hash hash;  /* of header */
            seq_hash *ids;  /* header.tx_count, in block order */
            seq_vote vote;  /* a notarize vote for (header.view, hash) */
        } propose_ids;
        seq_vote vote;
        seq_cert cert;
        struct {
            seq_hash hash;
        } block_req;
        struct {
            seq_block *block;
        } block;
        struct {
            uint64_t view_from; /* inclusive */
            uint32_t count;     /* 1..SEQ_CERT_REQ_VIEWS_MAX */
        } cert_req;
        struct {
            uint32_t count;
            seq_tx *txs;
        } txs;
        struct {
            uint64_t from_height; /* >= 1 */
            uint32_t count;       /* 0: only asks for the peer's finalized height */
        } sync_req;
        struct {
            uint64_t tip_height;  /* the sender's finalized height */
            uint32_t count;       /* <= SEQ_SYNC_BLOCKS_MAX */
            seq_block **blocks;   /* heights ascending */
            seq_cert *certs;      /* certs[i]: the certificate stored for blocks[i] */
        } sync_resp;
    } u;
    /* Set by seq_msg_decode: block / txs (and their payloads) belong to the
     * message and seq_msg_release frees them. Otherwise they are borrowed.
     * A decoded TXS message keeps its seq_tx array and all payloads in the one
     * allocation txs_arena (u.txs.txs points at its start). */
    bool owned;
    uint8_t *txs_arena;
} seq_msg;

/* Frees what a decoded message owns; no-op for a borrowed one. */
void seq_msg_release(seq_msg *m);

#endif
