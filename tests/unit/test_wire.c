/* Tests of the wire codec (lib/wire.c, lib/msg.c) and framing (lib/frame.c):
 * exact round trips of every peer message, strict shape checks on decode,
 * a seeded fuzz loop, and the framer on split, merged and oversized input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "pbconv.h"
#include "seq.pb-c.h"
#include "types.h"
#include "wire.h"

#define CHAIN_ID 7u
#define N_VALIDATORS 4u
#define FUZZ_RANDOM_BUFFERS 20000
#define FUZZ_MUTATIONS 20000
#define FUZZ_BUFFER_BYTES_MAX 512

/* ---- fixture: real keys, a validator set ------------------------------------ */

static seq_keypair *keys[N_VALIDATORS];
static seq_validators vs;

static int group_setup(void **state)
{
    (void)state;
    if (seq_crypto_init() != 0)
        return -1;
    seq_pubkey pks[N_VALIDATORS];
    for (uint32_t i = 0; i < N_VALIDATORS; i++) {
        uint8_t seed[SEQ_SEED_BYTES];
        memset(seed, (int)(i + 1), sizeof seed);
        if (seq_keypair_from_seed(&keys[i], seed) != 0)
            return -1;
        pks[i] = keys[i]->pk;
    }
    return seq_validators_init(&vs, pks, N_VALIDATORS) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < N_VALIDATORS; i++)
        seq_keypair_free(keys[i]);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* xorshift64*: small, seeded, reproducible. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static seq_vote make_vote(int kind, uint64_t view, const seq_hash *hash, uint32_t signer)
{
    seq_vote v = {.kind = (uint8_t)kind, .view = view, .signer = signer};
    if (kind != SEQ_VOTE_NULLIFY)
        v.hash = *hash;
    seq_vote_sign(&v, keys[signer], CHAIN_ID);
    return v;
}

/* b proposed by `signer` with its notarize vote; ids_only: to travel compact. */
static seq_msg proposal_of(seq_block *b, uint32_t signer, bool ids_only)
{
    seq_msg m = {.kind = SEQ_MSG_PROPOSE};
    m.u.propose.block = b;
    m.u.propose.vote = make_vote(SEQ_VOTE_NOTARIZE, b->h.view, &b->hash, signer);
    m.u.propose.ids_only = ids_only;
    return m;
}

/* A block of 7 transactions in 3 namespaces, given out of namespace order. */
static seq_block *make_block(uint64_t view)
{
    static const char *payloads[] = {"alpha", "b", "", "delta-delta", "echo", "f0x", "golf"};
    static const seq_ns nss[] = {30, 10, 20, 10, 30, 20, 10};
    seq_tx txs[7];
    for (int i = 0; i < 7; i++)
        txs[i] = (seq_tx){.ns = nss[i], .len = (uint32_t)strlen(payloads[i]),
                          .data = (const uint8_t *)payloads[i]};
    seq_header tmpl = {.chain_id = CHAIN_ID, .height = 5, .view = view, .parent_view = view - 1,
                       .leader = 1, .timestamp_ms = 1700000000123ull};
    memset(tmpl.parent.b, 0xab, SEQ_HASH_BYTES);
    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, &tmpl, txs, 7), 0);
    return b;
}

static void assert_blocks_equal(const seq_block *a, const seq_block *b)
{
    assert_memory_equal(a->hash.b, b->hash.b, SEQ_HASH_BYTES);
    assert_int_equal(a->h.chain_id, b->h.chain_id);
    assert_int_equal(a->h.height, b->h.height);
    assert_int_equal(a->h.view, b->h.view);
    assert_memory_equal(a->h.parent.b, b->h.parent.b, SEQ_HASH_BYTES);
    assert_int_equal(a->h.parent_view, b->h.parent_view);
    assert_int_equal(a->h.leader, b->h.leader);
    assert_int_equal(a->h.timestamp_ms, b->h.timestamp_ms);
    assert_memory_equal(a->h.payload_root.b, b->h.payload_root.b, SEQ_HASH_BYTES);
    assert_int_equal(a->h.tx_count, b->h.tx_count);
    assert_int_equal(a->tx_count, b->tx_count);
    for (uint32_t i = 0; i < a->tx_count; i++) {
        assert_int_equal(a->txs[i].ns, b->txs[i].ns);
        assert_int_equal(a->txs[i].len, b->txs[i].len);
        assert_memory_equal(a->txs[i].data, b->txs[i].data, a->txs[i].len);
        assert_memory_equal(a->txs[i].id.b, b->txs[i].id.b, SEQ_HASH_BYTES);
    }
}

static void assert_votes_equal(const seq_vote *a, const seq_vote *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->view, b->view);
    assert_memory_equal(a->hash.b, b->hash.b, SEQ_HASH_BYTES);
    assert_int_equal(a->signer, b->signer);
    assert_memory_equal(a->sig.b, b->sig.b, SEQ_SIG_BYTES);
}

/* Encodes m and decodes it again into out (caller releases out). */
static void round_trip(const seq_msg *m, seq_msg *out)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(seq_msg_encode(m, &buf, &len), 0);
    assert_int_equal(seq_msg_decode(out, buf, len), 0);
    free(buf);
    assert_int_equal(out->kind, m->kind);
    assert_true(out->owned);
}

/* Packs a hand-built PeerMessage (to put malformed fields on the wire) and
 * returns what seq_msg_decode says about it. */
static int decode_pb(const Seq__PeerMessage *pm)
{
    size_t len = seq__peer_message__get_packed_size(pm);
    uint8_t *buf = malloc(len + 1);
    assert_non_null(buf);
    assert_int_equal(seq__peer_message__pack(pm, buf), len);
    seq_msg m;
    int rc = seq_msg_decode(&m, buf, len);
    free(buf);
    if (rc == 0)
        seq_msg_release(&m);
    return rc;
}

static ProtobufCBinaryData bin(const void *p, size_t n)
{
    return (ProtobufCBinaryData){.len = n, .data = (uint8_t *)p};
}

/* ---- round trips ------------------------------------------------------------- */

/* Every vote kind survives encode/decode field for field, and the decoded
 * signature still verifies (so nothing was altered on the way). */
static void test_round_trip_votes(void **state)
{
    (void)state;
    seq_hash h;
    memset(h.b, 0x5c, SEQ_HASH_BYTES);
    for (int kind = SEQ_VOTE_NOTARIZE; kind <= SEQ_VOTE_FINALIZE; kind++) {
        seq_msg m = {.kind = SEQ_MSG_VOTE};
        m.u.vote = make_vote(kind, 42 + (uint64_t)kind, &h, (uint32_t)kind);
        seq_msg out;
        round_trip(&m, &out);
        assert_votes_equal(&m.u.vote, &out.u.vote);
        assert_int_equal(seq_vote_verify(&out.u.vote, &vs, CHAIN_ID), 0);
        seq_msg_release(&out);
    }
}

/* A notarization from 3 of 4 validators comes back identical and verifies. */
static void test_round_trip_cert(void **state)
{
    (void)state;
    seq_hash h;
    memset(h.b, 0x77, SEQ_HASH_BYTES);
    seq_vote votes[3] = {make_vote(SEQ_VOTE_NOTARIZE, 9, &h, 3), make_vote(SEQ_VOTE_NOTARIZE, 9, &h, 0),
                         make_vote(SEQ_VOTE_NOTARIZE, 9, &h, 2)};
    seq_msg m = {.kind = SEQ_MSG_CERT};
    assert_int_equal(seq_cert_build(&m.u.cert, &vs, votes, 3), 0);
    seq_msg out;
    round_trip(&m, &out);
    assert_int_equal(out.u.cert.kind, SEQ_VOTE_NOTARIZE);
    assert_int_equal(out.u.cert.view, 9);
    assert_memory_equal(out.u.cert.hash.b, h.b, SEQ_HASH_BYTES);
    assert_memory_equal(out.u.cert.bitmap, m.u.cert.bitmap, SEQ_BITMAP_BYTES);
    assert_int_equal(out.u.cert.sig_count, 3);
    assert_memory_equal(out.u.cert.sigs, m.u.cert.sigs, 3 * sizeof(seq_sig));
    assert_int_equal(seq_cert_verify(&out.u.cert, &vs, CHAIN_ID), 0);
    seq_msg_release(&out);
}

/* A nullification (no hash on the wire) comes back with the zero hash and verifies. */
static void test_round_trip_nullification(void **state)
{
    (void)state;
    seq_vote votes[3] = {make_vote(SEQ_VOTE_NULLIFY, 11, NULL, 0), make_vote(SEQ_VOTE_NULLIFY, 11, NULL, 1),
                         make_vote(SEQ_VOTE_NULLIFY, 11, NULL, 2)};
    seq_msg m = {.kind = SEQ_MSG_CERT};
    assert_int_equal(seq_cert_build(&m.u.cert, &vs, votes, 3), 0);
    seq_msg out;
    round_trip(&m, &out);
    assert_int_equal(out.u.cert.kind, SEQ_VOTE_NULLIFY);
    assert_true(seq_hash_is_zero(&out.u.cert.hash));
    assert_int_equal(seq_cert_verify(&out.u.cert, &vs, CHAIN_ID), 0);
    seq_msg_release(&out);
}

/* A proposal with a multi-namespace block keeps header, hash, order and every tx. */
static void test_round_trip_propose(void **state)
{
    (void)state;
    seq_block *b = make_block(21);
    assert_int_equal(b->tx_count, 7);
    seq_msg m = proposal_of(b, 1, false);
    seq_msg out;
    round_trip(&m, &out);
    assert_blocks_equal(b, out.u.propose.block);
    assert_votes_equal(&m.u.propose.vote, &out.u.propose.vote);
    /* Block order is by namespace: 10,10,10,20,20,30,30. */
    assert_int_equal(out.u.propose.block->txs[0].ns, 10);
    assert_int_equal(out.u.propose.block->txs[6].ns, 30);
    seq_msg_release(&out);
    assert_null(out.u.propose.block);
    seq_block_free(b);
}

/* A block answer, and an empty block, come back identical. */
static void test_round_trip_block(void **state)
{
    (void)state;
    seq_block *b = make_block(3);
    seq_msg m = {.kind = SEQ_MSG_BLOCK};
    m.u.block.block = b;
    seq_msg out;
    round_trip(&m, &out);
    assert_blocks_equal(b, out.u.block.block);
    seq_msg_release(&out);
    seq_block_free(b);

    seq_header tmpl = {.chain_id = CHAIN_ID, .height = 1, .view = 1};
    assert_int_equal(seq_block_build(&b, &tmpl, NULL, 0), 0);
    m.u.block.block = b;
    round_trip(&m, &out);
    assert_blocks_equal(b, out.u.block.block);
    assert_int_equal(out.u.block.block->tx_count, 0);
    seq_msg_release(&out);
    seq_block_free(b);
}

/* A block at the format's limit of SEQ_BLOCK_TXS_MAX transactions, all
 * empty (the most protobuf structs per byte a valid block can have), still
 * fits the unpack memory budget and comes back identical. */
static void test_round_trip_block_at_tx_limit(void **state)
{
    (void)state;
    seq_tx *txs = calloc(SEQ_BLOCK_TXS_MAX, sizeof *txs);
    assert_non_null(txs);
    for (uint32_t i = 0; i < SEQ_BLOCK_TXS_MAX; i++)
        txs[i].ns = i;
    seq_header tmpl = {.chain_id = CHAIN_ID, .height = 2, .view = 2};
    seq_block *b;
    assert_int_equal(seq_block_build(&b, &tmpl, txs, SEQ_BLOCK_TXS_MAX), 0);
    free(txs);
    seq_msg m = {.kind = SEQ_MSG_BLOCK};
    m.u.block.block = b;
    seq_msg out;
    round_trip(&m, &out);
    assert_int_equal(out.u.block.block->tx_count, SEQ_BLOCK_TXS_MAX);
    assert_blocks_equal(b, out.u.block.block);
    seq_msg_release(&out);
    seq_block_free(b);
}

/* A block of n transactions of one byte each, namespaces 0..n-1 (distinct
 * ids), at height. */
static seq_block *tiny_tx_block(uint32_t n, uint64_t height)
{
    static const uint8_t one = 0x5a;
    seq_tx *txs = calloc(n, sizeof *txs);
    assert_non_null(txs);
    for (uint32_t i = 0; i < n; i++)
        txs[i] = (seq_tx){.ns = i, .len = 1, .data = &one};
    seq_header tmpl = {.chain_id = CHAIN_ID, .height = height, .view = height};
    seq_block *b;
    assert_int_equal(seq_block_build(&b, &tmpl, txs, n), 0);
    free(txs);
    return b;
}

/* One-byte payloads cost protobuf-c a struct and a payload copy each, the
 * most allocations per byte after empty ones: a block at the tx limit of
 * them, and a sync response of two blocks of 60,000 (serve_sync adds blocks
 * while the count is under the limit), still fit the unpack budget. */
static void test_round_trip_tiny_payloads_fit_budget(void **state)
{
    (void)state;
    seq_block *b = tiny_tx_block(SEQ_BLOCK_TXS_MAX, 2);
    seq_msg m = {.kind = SEQ_MSG_BLOCK}, out;
    m.u.block.block = b;
    round_trip(&m, &out);
    assert_blocks_equal(b, out.u.block.block);
    seq_msg_release(&out);
    seq_block_free(b);

    seq_block *blocks[2] = {tiny_tx_block(60000, 3), tiny_tx_block(60000, 4)};
    seq_cert certs[2];
    for (int i = 0; i < 2; i++) {
        seq_vote votes[3];
        for (uint32_t v = 0; v < 3; v++)
            votes[v] = make_vote(SEQ_VOTE_FINALIZE, blocks[i]->h.view, &blocks[i]->hash, v);
        assert_int_equal(seq_cert_build(&certs[i], &vs, votes, 3), 0);
    }
    seq_msg resp = {.kind = SEQ_MSG_SYNC_RESP,
                    .u.sync_resp = {.tip_height = 4, .count = 2, .blocks = blocks, .certs = certs}};
    round_trip(&resp, &out);
    assert_int_equal(out.u.sync_resp.count, 2);
    assert_blocks_equal(out.u.sync_resp.blocks[0], blocks[0]);
    assert_blocks_equal(out.u.sync_resp.blocks[1], blocks[1]);
    seq_msg_release(&out);
    seq_block_free(blocks[0]);
    seq_block_free(blocks[1]);
}

/* Block and certificate requests keep their exact fields. */
static void test_round_trip_requests(void **state)
{
    (void)state;
    seq_msg m = {.kind = SEQ_MSG_BLOCK_REQ};
    for (int i = 0; i < SEQ_HASH_BYTES; i++)
        m.u.block_req.hash.b[i] = (uint8_t)(i * 7);
    seq_msg out;
    round_trip(&m, &out);
    assert_memory_equal(out.u.block_req.hash.b, m.u.block_req.hash.b, SEQ_HASH_BYTES);
    seq_msg_release(&out);

    m = (seq_msg){.kind = SEQ_MSG_CERT_REQ};
    m.u.cert_req.view_from = UINT64_MAX - (SEQ_CERT_REQ_VIEWS_MAX - 1);
    m.u.cert_req.count = SEQ_CERT_REQ_VIEWS_MAX;
    round_trip(&m, &out);
    assert_int_equal(out.u.cert_req.view_from, UINT64_MAX - (SEQ_CERT_REQ_VIEWS_MAX - 1));
    assert_int_equal(out.u.cert_req.count, SEQ_CERT_REQ_VIEWS_MAX);
    seq_msg_release(&out);
}

/* A gossip batch comes back with every payload in one arena and each id
 * equal to the id of the original transaction. */
static void test_round_trip_txs(void **state)
{
    (void)state;
    uint8_t big[3000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 13);
    seq_tx txs[3] = {{.ns = 99, .len = 3, .data = (const uint8_t *)"abc"},
                     {.ns = 1, .len = 0, .data = NULL},
                     {.ns = UINT64_MAX, .len = sizeof big, .data = big}};
    for (int i = 0; i < 3; i++)
        seq_tx_compute_id(&txs[i]);
    seq_msg m = {.kind = SEQ_MSG_TXS};
    m.u.txs.count = 3;
    m.u.txs.txs = txs;
    seq_msg out;
    round_trip(&m, &out);
    assert_int_equal(out.u.txs.count, 3);
    assert_ptr_equal((void *)out.u.txs.txs, (void *)out.txs_arena);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(out.u.txs.txs[i].ns, txs[i].ns);
        assert_int_equal(out.u.txs.txs[i].len, txs[i].len);
        assert_memory_equal(out.u.txs.txs[i].data, txs[i].data, txs[i].len);
        assert_memory_equal(out.u.txs.txs[i].id.b, txs[i].id.b, SEQ_HASH_BYTES);
    }
    seq_msg_release(&out);
    assert_null(out.txs_arena);
    seq_msg_release(&out); /* a second release is a no-op */
}

/* ---- decode rejects -------------------------------------------------------------- */

/* Range sync: a request, a probe (count 0), and a response of two
 * consecutive blocks with their certificates come back field for field. */
static void test_round_trip_sync(void **state)
{
    (void)state;
    seq_msg req = {.kind = SEQ_MSG_SYNC_REQ, .u.sync_req = {.from_height = 17, .count = 64}}, out;
    round_trip(&req, &out);
    assert_int_equal(out.u.sync_req.from_height, 17);
    assert_int_equal(out.u.sync_req.count, 64);
    req.u.sync_req.count = 0;
    round_trip(&req, &out);
    assert_int_equal(out.u.sync_req.count, 0);

    seq_block *b0 = make_block(8);
    seq_header next = b0->h;
    next.height = b0->h.height + 1;
    next.view = 9;
    next.parent = b0->hash;
    seq_block *b1 = NULL;
    assert_int_equal(seq_block_build(&b1, &next, b0->txs, 2), 0);
    seq_vote votes[3] = {make_vote(SEQ_VOTE_FINALIZE, 9, &b1->hash, 0),
                         make_vote(SEQ_VOTE_FINALIZE, 9, &b1->hash, 1),
                         make_vote(SEQ_VOTE_FINALIZE, 9, &b1->hash, 3)};
    seq_cert certs[2];
    assert_int_equal(seq_cert_build(&certs[0], &vs, votes, 3), 0);
    certs[1] = certs[0];
    seq_block *blocks[2] = {b0, b1};
    seq_msg resp = {.kind = SEQ_MSG_SYNC_RESP,
                    .u.sync_resp = {.tip_height = 99, .count = 2, .blocks = blocks, .certs = certs}};
    round_trip(&resp, &out);
    assert_int_equal(out.u.sync_resp.tip_height, 99);
    assert_int_equal(out.u.sync_resp.count, 2);
    assert_blocks_equal(out.u.sync_resp.blocks[0], b0);
    assert_blocks_equal(out.u.sync_resp.blocks[1], b1);
    assert_int_equal(seq_cert_verify(&out.u.sync_resp.certs[1], &vs, CHAIN_ID), 0);
    seq_msg_release(&out);

    /* Heights that do not follow each other are malformed. */
    blocks[0] = b1;
    blocks[1] = b0;
    uint8_t *buf;
    size_t len;
    assert_int_equal(seq_msg_encode(&resp, &buf, &len), 0);
    assert_int_equal(seq_msg_decode(&out, buf, len), SEQ_EDECODE);
    free(buf);
    seq_block_free(b0);
    seq_block_free(b1);
}

/* Nothing at all, an unset oneof, a field unknown to the schema and a range
 * sync request from height 0 are all SEQ_EDECODE. */
static void test_decode_rejects_empty_and_unknown(void **state)
{
    (void)state;
    seq_msg m;
    assert_int_equal(seq_msg_decode(&m, NULL, 0), SEQ_EDECODE);
    static const uint8_t nothing[1];
    assert_int_equal(seq_msg_decode(&m, nothing, 0), SEQ_EDECODE);
    /* Field 15, varint 1: valid protobuf, no body. */
    static const uint8_t unknown_field[] = {0x78, 0x01};
    assert_int_equal(seq_msg_decode(&m, unknown_field, sizeof unknown_field), SEQ_EDECODE);
    Seq__SyncRequest sync = SEQ__SYNC_REQUEST__INIT;
    sync.count = 1; /* from_height 0: there is no block 0 */
    Seq__PeerMessage pm = SEQ__PEER_MESSAGE__INIT;
    pm.body_case = SEQ__PEER_MESSAGE__BODY_SYNC_REQ;
    pm.sync_req = &sync;
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
}

/* A hash of 31 or 33 bytes is refused in a block request, a vote and a header. */
static void test_decode_rejects_bad_hash_length(void **state)
{
    (void)state;
    uint8_t bytes[SEQ_SIG_BYTES + 1];
    memset(bytes, 0x11, sizeof bytes);
    Seq__BlockRequest req = SEQ__BLOCK_REQUEST__INIT;
    Seq__PeerMessage pm = SEQ__PEER_MESSAGE__INIT;
    pm.body_case = SEQ__PEER_MESSAGE__BODY_BLOCK_REQ;
    pm.block_req = &req;
    req.hash = bin(bytes, SEQ_HASH_BYTES);
    assert_int_equal(decode_pb(&pm), 0); /* the control: 32 bytes pass */
    req.hash = bin(bytes, 31);
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
    req.hash = bin(bytes, 33);
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);

    Seq__Vote v = SEQ__VOTE__INIT;
    v.kind = SEQ_VOTE_FINALIZE;
    v.sig = bin(bytes, SEQ_SIG_BYTES);
    v.hash = bin(bytes, SEQ_HASH_BYTES);
    pm.body_case = SEQ__PEER_MESSAGE__BODY_VOTE;
    pm.vote = &v;
    assert_int_equal(decode_pb(&pm), 0);
    v.hash = bin(bytes, 31);
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);

    seq_block *b = make_block(4);
    seq_msg msg = {.kind = SEQ_MSG_BLOCK};
    msg.u.block.block = b;
    uint8_t *buf;
    size_t len;
    assert_int_equal(seq_msg_encode(&msg, &buf, &len), 0);
    Seq__PeerMessage *up = seq__peer_message__unpack(NULL, len, buf);
    assert_non_null(up);
    assert_int_equal(decode_pb(up), 0);
    up->block->block->header->parent.len = 31;
    assert_int_equal(decode_pb(up), SEQ_EDECODE);
    up->block->block->header->parent.len = 32;
    up->block->block->header->payload_root.len = 31;
    assert_int_equal(decode_pb(up), SEQ_EDECODE);
    seq__peer_message__free_unpacked(up, NULL);
    free(buf);
    seq_block_free(b);
}

/* A signature of 63 or 65 bytes is refused in a vote and in a certificate. */
static void test_decode_rejects_bad_sig_length(void **state)
{
    (void)state;
    uint8_t bytes[SEQ_SIG_BYTES + 1];
    memset(bytes, 0x22, sizeof bytes);
    Seq__Vote v = SEQ__VOTE__INIT;
    v.kind = SEQ_VOTE_NOTARIZE;
    v.hash = bin(bytes, SEQ_HASH_BYTES);
    Seq__PeerMessage pm = SEQ__PEER_MESSAGE__INIT;
    pm.body_case = SEQ__PEER_MESSAGE__BODY_VOTE;
    pm.vote = &v;
    v.sig = bin(bytes, 63);
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
    v.sig = bin(bytes, 65);
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);

    uint8_t bitmap[SEQ_BITMAP_BYTES] = {0x01};
    ProtobufCBinaryData sigs[1] = {bin(bytes, 63)};
    Seq__Certificate c = SEQ__CERTIFICATE__INIT;
    c.kind = SEQ_VOTE_NOTARIZE;
    c.hash = bin(bytes, SEQ_HASH_BYTES);
    c.signers = bin(bitmap, sizeof bitmap);
    c.n_sigs = 1;
    c.sigs = sigs;
    pm.body_case = SEQ__PEER_MESSAGE__BODY_CERT;
    pm.cert = &c;
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
    sigs[0] = bin(bytes, SEQ_SIG_BYTES);
    assert_int_equal(decode_pb(&pm), 0);
}

/* A certificate whose signature count differs from its bitmap's popcount, an
 * empty one, and one whose bitmap is not exactly SEQ_BITMAP_BYTES are refused. */
static void test_decode_rejects_cert_shape(void **state)
{
    (void)state;
    uint8_t hash[SEQ_HASH_BYTES] = {1};
    uint8_t sig[SEQ_SIG_BYTES] = {2};
    uint8_t bitmap[SEQ_BITMAP_BYTES + 1] = {0x0b}; /* validators 0, 1, 3 */
    ProtobufCBinaryData sigs[5];
    for (int i = 0; i < 5; i++)
        sigs[i] = bin(sig, sizeof sig);
    Seq__Certificate c = SEQ__CERTIFICATE__INIT;
    c.kind = SEQ_VOTE_FINALIZE;
    c.view = 3;
    c.hash = bin(hash, sizeof hash);
    c.signers = bin(bitmap, SEQ_BITMAP_BYTES);
    c.sigs = sigs;
    Seq__PeerMessage pm = SEQ__PEER_MESSAGE__INIT;
    pm.body_case = SEQ__PEER_MESSAGE__BODY_CERT;
    pm.cert = &c;
    c.n_sigs = 3;
    assert_int_equal(decode_pb(&pm), 0);
    c.n_sigs = 4;
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
    c.n_sigs = 2;
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
    c.n_sigs = 3;
    c.signers = bin(bitmap, SEQ_BITMAP_BYTES - 1);
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
    c.signers = bin(bitmap, SEQ_BITMAP_BYTES + 1);
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
    memset(bitmap, 0, sizeof bitmap);
    c.signers = bin(bitmap, SEQ_BITMAP_BYTES);
    c.n_sigs = 0;
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
}

/* Vote kinds 0 and 4 are refused in votes and certificates; 1..3 pass. */
static void test_decode_rejects_bad_kind(void **state)
{
    (void)state;
    uint8_t bytes[SEQ_SIG_BYTES] = {0};
    Seq__Vote v = SEQ__VOTE__INIT;
    v.sig = bin(bytes, SEQ_SIG_BYTES);
    Seq__PeerMessage pm = SEQ__PEER_MESSAGE__INIT;
    pm.body_case = SEQ__PEER_MESSAGE__BODY_VOTE;
    pm.vote = &v;
    for (uint32_t kind = 0; kind <= 4; kind++) {
        v.kind = kind;
        v.hash = bin(bytes, kind == SEQ_VOTE_NULLIFY ? 0 : SEQ_HASH_BYTES);
        assert_int_equal(decode_pb(&pm), kind >= 1 && kind <= 3 ? 0 : SEQ_EDECODE);
    }

    uint8_t bitmap[SEQ_BITMAP_BYTES] = {0x01};
    ProtobufCBinaryData sigs[1] = {bin(bytes, SEQ_SIG_BYTES)};
    Seq__Certificate c = SEQ__CERTIFICATE__INIT;
    c.hash = bin(bytes, SEQ_HASH_BYTES);
    c.signers = bin(bitmap, sizeof bitmap);
    c.n_sigs = 1;
    c.sigs = sigs;
    pm.body_case = SEQ__PEER_MESSAGE__BODY_CERT;
    pm.cert = &c;
    c.kind = 0;
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
    c.kind = 4;
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
    c.kind = SEQ_VOTE_FINALIZE;
    assert_int_equal(decode_pb(&pm), 0);
}

/* A nullify vote accepts an empty or all-zero hash only; a signer index
 * beyond the format's validator limit is refused. */
static void test_decode_nullify_hash_and_signer(void **state)
{
    (void)state;
    uint8_t zero[SEQ_HASH_BYTES] = {0};
    uint8_t one[SEQ_HASH_BYTES] = {0};
    one[31] = 1;
    uint8_t sig[SEQ_SIG_BYTES] = {0};
    Seq__Vote v = SEQ__VOTE__INIT;
    v.kind = SEQ_VOTE_NULLIFY;
    v.sig = bin(sig, sizeof sig);
    Seq__PeerMessage pm = SEQ__PEER_MESSAGE__INIT;
    pm.body_case = SEQ__PEER_MESSAGE__BODY_VOTE;
    pm.vote = &v;
    v.hash = bin(zero, SEQ_HASH_BYTES);
    assert_int_equal(decode_pb(&pm), 0);
    v.hash = bin(one, SEQ_HASH_BYTES);
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
    v.hash = bin(zero, 5);
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
    v.hash = bin(NULL, 0);
    v.signer = SEQ_VALIDATORS_MAX - 1;
    assert_int_equal(decode_pb(&pm), 0);
    v.signer = SEQ_VALIDATORS_MAX;
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);

    /* Encoding refuses a nullify that carries a hash rather than dropping it. */
    seq_msg m = {.kind = SEQ_MSG_VOTE};
    m.u.vote.kind = SEQ_VOTE_NULLIFY;
    m.u.vote.hash.b[0] = 1;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(seq_msg_encode(&m, &buf, &len), SEQ_EINVAL);
    assert_null(buf);
}

/* A block whose header names a wrong payload root, or whose transactions are
 * not in namespace order, or whose tx_count is off, is refused. */
static void test_decode_rejects_bad_block(void **state)
{
    (void)state;
    seq_block *b = make_block(8);
    seq_msg m = {.kind = SEQ_MSG_BLOCK};
    m.u.block.block = b;
    uint8_t *buf;
    size_t len;
    assert_int_equal(seq_msg_encode(&m, &buf, &len), 0);
    Seq__PeerMessage *up = seq__peer_message__unpack(NULL, len, buf);
    assert_non_null(up);
    Seq__Block *pb = up->block->block;

    pb->header->payload_root.data[0] ^= 1;
    assert_int_equal(decode_pb(up), SEQ_EMISMATCH);
    pb->header->payload_root.data[0] ^= 1;
    assert_int_equal(decode_pb(up), 0);

    pb->txs[0]->payload.data[0] ^= 1; /* "b" -> "c": a different id, same order */
    assert_int_equal(decode_pb(up), SEQ_EMISMATCH);
    pb->txs[0]->payload.data[0] ^= 1;

    Seq__Tx *first = pb->txs[0];
    pb->txs[0] = pb->txs[6];
    pb->txs[6] = first;
    assert_int_equal(decode_pb(up), SEQ_EORDER);
    pb->txs[6] = pb->txs[0];
    pb->txs[0] = first;

    pb->header->tx_count = 6;
    assert_int_equal(decode_pb(up), SEQ_EMISMATCH);
    pb->header->tx_count = 7;

    Seq__Block *saved = up->block->block;
    up->block->block = NULL;
    assert_int_equal(decode_pb(up), SEQ_EDECODE);
    up->block->block = saved;
    Seq__BlockHeader *saved_header = saved->header;
    saved->header = NULL;
    assert_int_equal(decode_pb(up), SEQ_EDECODE);
    saved->header = saved_header;

    seq__peer_message__free_unpacked(up, NULL);
    free(buf);
    seq_block_free(b);
}

/* A proposal whose vote is not a notarize of exactly its block is refused. */
static void test_decode_rejects_bad_proposal(void **state)
{
    (void)state;
    seq_block *b = make_block(30);
    seq_hash other;
    memset(other.b, 0x33, SEQ_HASH_BYTES);
    struct {
        seq_vote vote;
        int rc;
    } cases[] = {
        {make_vote(SEQ_VOTE_NOTARIZE, 30, &b->hash, 2), 0},
        {make_vote(SEQ_VOTE_NOTARIZE, 30, &other, 2), SEQ_EMISMATCH},
        {make_vote(SEQ_VOTE_NOTARIZE, 31, &b->hash, 2), SEQ_EMISMATCH},
        {make_vote(SEQ_VOTE_FINALIZE, 30, &b->hash, 2), SEQ_EDECODE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        seq_msg m = {.kind = SEQ_MSG_PROPOSE};
        m.u.propose.block = b;
        m.u.propose.vote = cases[i].vote;
        uint8_t *buf;
        size_t len;
        assert_int_equal(seq_msg_encode(&m, &buf, &len), 0);
        seq_msg out;
        int rc = seq_msg_decode(&out, buf, len);
        free(buf);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0)
            seq_msg_release(&out);
        else
            assert_false(out.owned);
    }
    seq_block_free(b);
}

/* Certificate requests: count 0 or over SEQ_CERT_REQ_VIEWS_MAX, or a range
 * that wraps past the last view, are refused. */
static void test_decode_rejects_bad_cert_req(void **state)
{
    (void)state;
    Seq__CertRequest req = SEQ__CERT_REQUEST__INIT;
    Seq__PeerMessage pm = SEQ__PEER_MESSAGE__INIT;
    pm.body_case = SEQ__PEER_MESSAGE__BODY_CERT_REQ;
    pm.cert_req = &req;
    req.view_from = 100;
    req.count = 1;
    assert_int_equal(decode_pb(&pm), 0);
    req.count = 0;
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
    req.count = SEQ_CERT_REQ_VIEWS_MAX + 1;
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
    req.view_from = UINT64_MAX - 1;
    req.count = 2;
    assert_int_equal(decode_pb(&pm), 0);
    req.count = 3;
    assert_int_equal(decode_pb(&pm), SEQ_EDECODE);
}

/* Gossip batches over SEQ_GOSSIP_TXS_MAX transactions, or with a payload
 * over SEQ_TX_PAYLOAD_BYTES_MAX, are SEQ_ETOOBIG; at the limits they pass. */
static void test_decode_rejects_oversized_txs(void **state)
{
    (void)state;
    size_t n = SEQ_GOSSIP_TXS_MAX + 1;
    Seq__Tx *items = calloc(n, sizeof *items);
    Seq__Tx **ptrs = calloc(n, sizeof *ptrs);
    uint8_t *payload = calloc(1, SEQ_TX_PAYLOAD_BYTES_MAX + 1);
    assert_non_null(items);
    assert_non_null(ptrs);
    assert_non_null(payload);
    for (size_t i = 0; i < n; i++) {
        items[i] = (Seq__Tx)SEQ__TX__INIT;
        items[i].ns = i;
        ptrs[i] = &items[i];
    }
    Seq__TxBatch batch = SEQ__TX_BATCH__INIT;
    batch.txs = ptrs;
    Seq__PeerMessage pm = SEQ__PEER_MESSAGE__INIT;
    pm.body_case = SEQ__PEER_MESSAGE__BODY_TXS;
    pm.txs = &batch;
    batch.n_txs = SEQ_GOSSIP_TXS_MAX;
    assert_int_equal(decode_pb(&pm), 0);
    batch.n_txs = SEQ_GOSSIP_TXS_MAX + 1;
    assert_int_equal(decode_pb(&pm), SEQ_ETOOBIG);

    batch.n_txs = 1;
    items[0].payload = bin(payload, SEQ_TX_PAYLOAD_BYTES_MAX);
    assert_int_equal(decode_pb(&pm), 0);
    items[0].payload = bin(payload, SEQ_TX_PAYLOAD_BYTES_MAX + 1);
    assert_int_equal(decode_pb(&pm), SEQ_ETOOBIG);
    free(payload);
    free(ptrs);
    free(items);
}

/* Four megabytes of empty repeated transactions (2 bytes each on the wire,
 * ~56 bytes each unpacked) exceed protobuf-c's allocation budget and are
 * refused while unpacking (SEQ_EDECODE), before the count check would run. */
static void test_decode_bounds_unpack_memory(void **state)
{
    (void)state;
    size_t n = 2u << 20;
    size_t body = 2 * n;
    uint8_t *buf = malloc(body + 16);
    assert_non_null(buf);
    /* PeerMessage field 7 (TxBatch), length-delimited, varint length. */
    size_t off = 0;
    buf[off++] = (7 << 3) | 2;
    for (size_t v = body;; v >>= 7) {
        buf[off++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f)
            break;
    }
    for (size_t i = 0; i < n; i++) {
        buf[off++] = (1 << 3) | 2; /* TxBatch.txs, empty Tx */
        buf[off++] = 0;
    }
    seq_msg m;
    assert_int_equal(seq_msg_decode(&m, buf, off), SEQ_EDECODE);
    free(buf);
}

/* ---- fuzz --------------------------------------------------------------------- */

static bool rc_is_decode_error(int rc)
{
    return rc == SEQ_EDECODE || rc == SEQ_ETOOBIG || rc == SEQ_EMISMATCH || rc == SEQ_EORDER ||
           rc == SEQ_EDUPLICATE;
}

/* Decodes buf; a success must re-encode, a failure must be a decode error. */
static int fuzz_one(const uint8_t *buf, size_t len)
{
    seq_msg m;
    int rc = seq_msg_decode(&m, buf, len);
    if (rc != 0) {
        if (!rc_is_decode_error(rc))
            fail_msg("unexpected decode error %s", seq_errname(rc));
        assert_false(m.owned);
        return rc;
    }
    uint8_t *again;
    size_t again_len;
    assert_int_equal(seq_msg_encode(&m, &again, &again_len), 0);
    free(again);
    seq_msg_release(&m);
    return 0;
}

/* Valid encodings of every kind, for the mutation loop. */
static size_t valid_encodings(uint8_t *bufs[], size_t lens[], seq_block **block)
{
    seq_hash h;
    memset(h.b, 0x44, SEQ_HASH_BYTES);
    *block = make_block(12);
    seq_vote votes[3] = {make_vote(SEQ_VOTE_FINALIZE, 12, &(*block)->hash, 0),
                         make_vote(SEQ_VOTE_FINALIZE, 12, &(*block)->hash, 1),
                         make_vote(SEQ_VOTE_FINALIZE, 12, &(*block)->hash, 3)};
    seq_tx txs[2] = {{.ns = 5, .len = 4, .data = (const uint8_t *)"tx-a"},
                     {.ns = 6, .len = 4, .data = (const uint8_t *)"tx-b"}};
    seq_msg ms[7] = {{.kind = SEQ_MSG_PROPOSE}, {.kind = SEQ_MSG_VOTE},     {.kind = SEQ_MSG_CERT},
                     {.kind = SEQ_MSG_BLOCK_REQ}, {.kind = SEQ_MSG_BLOCK}, {.kind = SEQ_MSG_CERT_REQ},
                     {.kind = SEQ_MSG_TXS}};
    ms[0].u.propose.block = *block;
    ms[0].u.propose.vote = make_vote(SEQ_VOTE_NOTARIZE, 12, &(*block)->hash, 0);
    ms[1].u.vote = make_vote(SEQ_VOTE_NULLIFY, 13, NULL, 2);
    assert_int_equal(seq_cert_build(&ms[2].u.cert, &vs, votes, 3), 0);
    ms[3].u.block_req.hash = h;
    ms[4].u.block.block = *block;
    ms[5].u.cert_req.view_from = 10;
    ms[5].u.cert_req.count = 5;
    ms[6].u.txs.txs = txs;
    ms[6].u.txs.count = 2;
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(seq_msg_encode(&ms[i], &bufs[i], &lens[i]), 0);
    return 7;
}

static void mutate(uint8_t *buf, size_t *len)
{
    switch (rng_next() % 4) {
    case 0: /* flip bits */
        for (int k = 1 + (int)(rng_next() % 4); k > 0 && *len > 0; k--)
            buf[rng_next() % *len] ^= (uint8_t)(1u << (rng_next() % 8));
        break;
    case 1: /* truncate */
        *len = *len ? rng_next() % *len : 0;
        break;
    case 2: /* overwrite a byte with an extreme value */
        if (*len > 0)
            buf[rng_next() % *len] = (rng_next() & 1) ? 0xff : 0x00;
        break;
    default: /* flip then truncate */
        if (*len > 0) {
            buf[rng_next() % *len] ^= 0x80;
            *len -= rng_next() % (*len < 8 ? *len : 8);
        }
        break;
    }
}

/* 20000 random buffers and 20000 mutations of valid encodings of every kind
 * decode to an error or to a valid message; never a crash or a leak (run it
 * under ASan). Prints the seed; SEQ_TEST_SEED=N reproduces a run. */
static void test_decode_fuzz(void **state)
{
    (void)state;
    const char *env = getenv("SEQ_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : 0x5eed5eedull;
    print_message("test_wire fuzz seed=%llu\n", (unsigned long long)seed);
    rng_state = seed ? seed : 1;

    uint8_t buf[FUZZ_BUFFER_BYTES_MAX];
    for (int i = 0; i < FUZZ_RANDOM_BUFFERS; i++) {
        size_t len = rng_next() % sizeof buf;
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)rng_next();
        /* Half of them start with a valid PeerMessage field tag, to get past
         * the first byte more often. */
        if (len > 0 && (i & 1))
            buf[0] = (uint8_t)(((1 + rng_next() % 9) << 3) | 2);
        (void)fuzz_one(buf, len);
    }

    uint8_t *bufs[7];
    size_t lens[7];
    seq_block *block;
    size_t kinds = valid_encodings(bufs, lens, &block);
    int accepted = 0, refused = 0;
    for (int i = 0; i < FUZZ_MUTATIONS; i++) {
        size_t k = (size_t)i % kinds;
        uint8_t *copy = malloc(lens[k] ? lens[k] : 1);
        assert_non_null(copy);
        memcpy(copy, bufs[k], lens[k]);
        size_t len = lens[k];
        mutate(copy, &len);
        if (fuzz_one(copy, len) == 0)
            accepted++;
        else
            refused++;
        free(copy);
    }
    /* The loop exercised both outcomes (else the mutations were useless). */
    assert_true(accepted > 100);
    assert_true(refused > 100);
    for (size_t k = 0; k < kinds; k++)
        free(bufs[k]);
    seq_block_free(block);
}

/* ---- compact proposals -------------------------------------------------------- */

static void assert_headers_equal(const seq_header *a, const seq_header *b)
{
    uint8_t ea[SEQ_HEADER_BYTES], eb[SEQ_HEADER_BYTES];
    seq_header_encode(a, ea);
    seq_header_encode(b, eb);
    assert_memory_equal(ea, eb, SEQ_HEADER_BYTES);
}

/* out is the compact form of the proposal of block b with vote v. */
static void assert_compact_of(const seq_msg *out, const seq_block *b, const seq_vote *v)
{
    assert_int_equal(out->kind, SEQ_MSG_PROPOSE_IDS);
    assert_true(out->owned);
    assert_headers_equal(&out->u.propose_ids.header, &b->h);
    assert_int_equal(out->u.propose_ids.header.tx_count, b->tx_count);
    assert_memory_equal(out->u.propose_ids.hash.b, b->hash.b, SEQ_HASH_BYTES);
    assert_non_null(out->u.propose_ids.ids);
    for (uint32_t i = 0; i < b->tx_count; i++)
        assert_memory_equal(out->u.propose_ids.ids[i].b, b->txs[i].id.b, SEQ_HASH_BYTES);
    assert_votes_equal(&out->u.propose_ids.vote, v);
}

/* Encodes m and checks the bytes are exactly want's. */
static void assert_encodes_to(const seq_msg *m, const uint8_t *want, size_t want_len)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(seq_msg_encode(m, &buf, &len), 0);
    assert_int_equal(len, want_len);
    assert_memory_equal(buf, want, len);
    free(buf);
}

/* A proposal with ids_only goes out as a CompactProposal (the block's tx ids,
 * 32 bytes each, no payloads) and comes back as SEQ_MSG_PROPOSE_IDS: the
 * block's header and hash, its tx ids in block order, the same vote (whose
 * signature still verifies). The decoded message, and one put together by
 * hand from the block, re-encode to the very same bytes; release frees the
 * ids. Without ids_only the same proposal is a full one, as before. */
static void test_round_trip_compact_proposal(void **state)
{
    (void)state;
    seq_block *b = make_block(21);
    seq_msg m = proposal_of(b, 1, true);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(seq_msg_encode(&m, &buf, &len), 0);

    Seq__PeerMessage *up = seq__peer_message__unpack(NULL, len, buf);
    assert_non_null(up);
    assert_int_equal(up->body_case, SEQ__PEER_MESSAGE__BODY_COMPACT_PROPOSAL);
    assert_non_null(up->compact_proposal);
    assert_int_equal(up->compact_proposal->tx_ids.len, 7 * SEQ_HASH_BYTES);
    seq__peer_message__free_unpacked(up, NULL);

    seq_msg out, again;
    assert_int_equal(seq_msg_decode(&out, buf, len), 0);
    assert_compact_of(&out, b, &m.u.propose.vote);
    assert_int_equal(seq_vote_verify(&out.u.propose_ids.vote, &vs, CHAIN_ID), 0);
    assert_encodes_to(&out, buf, len);
    /* Decoded again while out still holds its ids: this copy cannot land in
     * the allocation the encoder just freed with the same ids in it. */
    assert_int_equal(seq_msg_decode(&again, buf, len), 0);
    assert_compact_of(&again, b, &m.u.propose.vote);
    seq_msg_release(&again);

    seq_hash ids[7];
    for (uint32_t i = 0; i < 7; i++)
        ids[i] = b->txs[i].id;
    seq_msg by_hand = {.kind = SEQ_MSG_PROPOSE_IDS};
    by_hand.u.propose_ids.header = b->h;
    by_hand.u.propose_ids.hash = b->hash;
    by_hand.u.propose_ids.ids = ids;
    by_hand.u.propose_ids.vote = m.u.propose.vote;
    assert_encodes_to(&by_hand, buf, len);

    seq_msg_release(&out);
    assert_null(out.u.propose_ids.ids);
    seq_msg_release(&out); /* a second release is a no-op */

    /* The same proposal without ids_only: a full one, payloads and all. */
    m.u.propose.ids_only = false;
    seq_msg full;
    round_trip(&m, &full);
    assert_blocks_equal(b, full.u.propose.block);
    assert_votes_equal(&m.u.propose.vote, &full.u.propose.vote);
    seq_msg_release(&full);
    free(buf);
    seq_block_free(b);
}

/* An empty block's compact proposal (tx_count 0, no id bytes) round-trips
 * and re-encodes to the same bytes. */
static void test_round_trip_compact_proposal_empty(void **state)
{
    (void)state;
    seq_header tmpl = {.chain_id = CHAIN_ID, .height = 3, .view = 6, .parent_view = 5, .leader = 2};
    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, &tmpl, NULL, 0), 0);
    seq_msg m = proposal_of(b, 2, true);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(seq_msg_encode(&m, &buf, &len), 0);
    seq_msg out;
    assert_int_equal(seq_msg_decode(&out, buf, len), 0);
    assert_compact_of(&out, b, &m.u.propose.vote);
    assert_int_equal(out.u.propose_ids.header.tx_count, 0);
    assert_encodes_to(&out, buf, len);
    seq_msg_release(&out);
    free(buf);
    seq_block_free(b);
}

/* A CompactProposal put together by hand from its parts (backing storage
 * included), for decode_pb. Not to be copied once set: it points into itself. */
typedef struct {
    Seq__PeerMessage pm;
    Seq__CompactProposal cp;
    Seq__BlockHeader header;
    Seq__Vote vote;
    seq_header h;
    seq_vote v;
} compact_pb;

static void compact_pb_set(compact_pb *c, const seq_header *h, const void *ids, size_t ids_len, const seq_vote *v)
{
    c->h = *h;
    c->v = *v;
    seq_pb_header_set(&c->header, &c->h);
    c->vote = (Seq__Vote)SEQ__VOTE__INIT;
    c->vote.kind = v->kind;
    c->vote.view = v->view;
    c->vote.signer = v->signer;
    c->vote.hash = bin(c->v.hash.b, v->kind == SEQ_VOTE_NULLIFY ? 0 : SEQ_HASH_BYTES);
    c->vote.sig = bin(c->v.sig.b, SEQ_SIG_BYTES);
    c->cp = (Seq__CompactProposal)SEQ__COMPACT_PROPOSAL__INIT;
    c->cp.header = &c->header;
    c->cp.tx_ids = bin(ids, ids_len);
    c->cp.vote = &c->vote;
    c->pm = (Seq__PeerMessage)SEQ__PEER_MESSAGE__INIT;
    c->pm.body_case = SEQ__PEER_MESSAGE__BODY_COMPACT_PROPOSAL;
    c->pm.compact_proposal = &c->cp;
}

/* Malformed compact proposals, each one fault away from a valid one (the
 * control, packed exactly as seq_msg_encode packs it): tx_ids not exactly
 * 32 bytes per header.tx_count, a nullify or finalize vote, no header or no
 * vote are SEQ_EDECODE; a vote for another hash or view, or a header changed
 * under its vote, SEQ_EMISMATCH; tx_count over SEQ_BLOCK_TXS_MAX (ids and
 * vote consistent with it) SEQ_ETOOBIG, while exactly at the limit passes. */
static void test_decode_rejects_bad_compact_proposal(void **state)
{
    (void)state;
    seq_block *b = make_block(30);
    const size_t n = b->tx_count;
    uint8_t ids[8 * SEQ_HASH_BYTES];
    memset(ids, 0x5a, sizeof ids);
    for (uint32_t i = 0; i < n; i++)
        memcpy(ids + i * SEQ_HASH_BYTES, b->txs[i].id.b, SEQ_HASH_BYTES);
    const seq_vote good = make_vote(SEQ_VOTE_NOTARIZE, 30, &b->hash, 1);
    compact_pb c;

    compact_pb_set(&c, &b->h, ids, n * SEQ_HASH_BYTES, &good);
    assert_int_equal(decode_pb(&c.pm), 0);
    seq_msg m = {.kind = SEQ_MSG_PROPOSE};
    m.u.propose.block = b;
    m.u.propose.vote = good;
    m.u.propose.ids_only = true;
    size_t packed_len = seq__peer_message__get_packed_size(&c.pm);
    uint8_t *packed = malloc(packed_len);
    assert_non_null(packed);
    assert_int_equal(seq__peer_message__pack(&c.pm, packed), packed_len);
    assert_encodes_to(&m, packed, packed_len);
    free(packed);

    const size_t bad_lens[] = {0, SEQ_HASH_BYTES - 1, (n - 1) * SEQ_HASH_BYTES, n * SEQ_HASH_BYTES - 1,
                               n * SEQ_HASH_BYTES + 1, (n + 1) * SEQ_HASH_BYTES};
    for (size_t i = 0; i < sizeof bad_lens / sizeof bad_lens[0]; i++) {
        compact_pb_set(&c, &b->h, ids, bad_lens[i], &good);
        assert_int_equal(decode_pb(&c.pm), SEQ_EDECODE);
    }

    seq_hash other = b->hash;
    other.b[31] ^= 1;
    const struct {
        seq_vote vote;
        int rc;
    } votes[] = {
        {make_vote(SEQ_VOTE_NULLIFY, 30, NULL, 1), SEQ_EDECODE},
        {make_vote(SEQ_VOTE_FINALIZE, 30, &b->hash, 1), SEQ_EDECODE},
        {make_vote(SEQ_VOTE_NOTARIZE, 30, &other, 1), SEQ_EMISMATCH},
        {make_vote(SEQ_VOTE_NOTARIZE, 31, &b->hash, 1), SEQ_EMISMATCH},
        {make_vote(SEQ_VOTE_NOTARIZE, 29, &b->hash, 1), SEQ_EMISMATCH},
    };
    for (size_t i = 0; i < sizeof votes / sizeof votes[0]; i++) {
        compact_pb_set(&c, &b->h, ids, n * SEQ_HASH_BYTES, &votes[i].vote);
        assert_int_equal(decode_pb(&c.pm), votes[i].rc);
    }

    /* A header changed under the leader's vote: the vote is not for it. */
    seq_header later = b->h;
    later.timestamp_ms++;
    compact_pb_set(&c, &later, ids, n * SEQ_HASH_BYTES, &good);
    assert_int_equal(decode_pb(&c.pm), SEQ_EMISMATCH);

    /* No header, where an all-zero one (tx_count 0, no ids, a vote for
     * it) would pass: a missing header is not read as the default one. */
    seq_header zero_h;
    memset(&zero_h, 0, sizeof zero_h);
    seq_hash zero_hash;
    seq_header_hash(&zero_h, &zero_hash);
    seq_vote zero_vote = make_vote(SEQ_VOTE_NOTARIZE, 0, &zero_hash, 1);
    compact_pb_set(&c, &zero_h, ids, 0, &zero_vote);
    assert_int_equal(decode_pb(&c.pm), 0);
    c.cp.header = NULL;
    assert_int_equal(decode_pb(&c.pm), SEQ_EDECODE);

    compact_pb_set(&c, &b->h, ids, n * SEQ_HASH_BYTES, &good);
    c.cp.vote = NULL;
    assert_int_equal(decode_pb(&c.pm), SEQ_EDECODE);
    c.cp.vote = &c.vote;
    c.header.parent.len = SEQ_HASH_BYTES - 1;
    assert_int_equal(decode_pb(&c.pm), SEQ_EDECODE);
    c.header.parent.len = SEQ_HASH_BYTES;
    assert_int_equal(decode_pb(&c.pm), 0); /* every fault above was undone */

    /* The tx limit: ids (unchecked by the codec) and vote consistent with
     * the header's count, so that only the count can be refused. */
    uint8_t *many = calloc(SEQ_BLOCK_TXS_MAX + 1, SEQ_HASH_BYTES);
    assert_non_null(many);
    seq_header big = b->h;
    big.tx_count = SEQ_BLOCK_TXS_MAX;
    seq_hash big_hash;
    seq_header_hash(&big, &big_hash);
    seq_vote big_vote = make_vote(SEQ_VOTE_NOTARIZE, 30, &big_hash, 1);
    compact_pb_set(&c, &big, many, (size_t)SEQ_BLOCK_TXS_MAX * SEQ_HASH_BYTES, &big_vote);
    assert_int_equal(decode_pb(&c.pm), 0);
    big.tx_count = SEQ_BLOCK_TXS_MAX + 1;
    seq_header_hash(&big, &big_hash);
    big_vote = make_vote(SEQ_VOTE_NOTARIZE, 30, &big_hash, 1);
    compact_pb_set(&c, &big, many, (size_t)(SEQ_BLOCK_TXS_MAX + 1) * SEQ_HASH_BYTES, &big_vote);
    assert_int_equal(decode_pb(&c.pm), SEQ_ETOOBIG);
    big.tx_count = UINT32_MAX;
    seq_header_hash(&big, &big_hash);
    big_vote = make_vote(SEQ_VOTE_NOTARIZE, 30, &big_hash, 1);
    compact_pb_set(&c, &big, many, SEQ_HASH_BYTES, &big_vote);
    assert_int_equal(decode_pb(&c.pm), SEQ_ETOOBIG);
    free(many);
    seq_block_free(b);
}

/* Mutations of a valid compact proposal decode to an error or to a message
 * that re-encodes; never a crash or a leak (under ASan). */
static void test_decode_fuzz_compact_proposal(void **state)
{
    (void)state;
    rng_state = 0xc0ac7ull;
    seq_block *b = make_block(12);
    seq_msg m = proposal_of(b, 0, true);
    uint8_t *buf;
    size_t len;
    assert_int_equal(seq_msg_encode(&m, &buf, &len), 0);
    int accepted = 0, refused = 0;
    for (int i = 0; i < 5000; i++) {
        uint8_t *copy = malloc(len);
        assert_non_null(copy);
        memcpy(copy, buf, len);
        size_t mlen = len;
        mutate(copy, &mlen);
        if (fuzz_one(copy, mlen) == 0)
            accepted++;
        else
            refused++;
        free(copy);
    }
    assert_true(accepted > 100);
    assert_true(refused > 100);
    free(buf);
    seq_block_free(b);
}

/* ---- framing ------------------------------------------------------------------- */

/* Writes header + payload for each message into one stream; returns its length. */
static size_t frame_stream(uint8_t *out, uint8_t *const payloads[], const size_t lens[], size_t n)
{
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        seq_frame_header(out + off, (uint32_t)lens[i]);
        off += SEQ_FRAME_HEADER_BYTES;
        memcpy(out + off, payloads[i], lens[i]);
        off += lens[i];
    }
    return off;
}

/* Frames of every message kind fed one byte at a time come out whole, in
 * order, each exactly once, and decode. */
static void test_framer_byte_by_byte(void **state)
{
    (void)state;
    uint8_t *bufs[7];
    size_t lens[7];
    seq_block *block;
    size_t n = valid_encodings(bufs, lens, &block);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += SEQ_FRAME_HEADER_BYTES + lens[i];
    uint8_t *stream = malloc(total);
    assert_non_null(stream);
    assert_int_equal(frame_stream(stream, bufs, lens, n), total);

    seq_framer f;
    seq_framer_init(&f, SEQ_FRAME_BYTES_MAX_DEFAULT);
    size_t got = 0;
    for (size_t i = 0; i < total; i++) {
        assert_int_equal(seq_framer_feed(&f, &stream[i], 1), 0);
        const uint8_t *p;
        size_t len;
        while (seq_framer_next(&f, &p, &len) == 1) {
            assert_true(got < n);
            assert_int_equal(len, lens[got]);
            assert_memory_equal(p, bufs[got], len);
            /* A frame is complete exactly when its last byte arrives. */
            seq_msg m;
            assert_int_equal(seq_msg_decode(&m, p, len), 0);
            assert_int_equal(m.kind, (seq_msg_kind)(got + 1));
            seq_msg_release(&m);
            got++;
        }
    }
    assert_int_equal(got, n);
    const uint8_t *p;
    size_t len;
    assert_int_equal(seq_framer_next(&f, &p, &len), 0);
    seq_framer_free(&f);
    free(stream);
    for (size_t i = 0; i < n; i++)
        free(bufs[i]);
    seq_block_free(block);
}

/* Several frames in one feed, then a frame split across two feeds with the
 * split inside its header: all come out in order. */
static void test_framer_several_frames_per_feed(void **state)
{
    (void)state;
    uint8_t a[] = "first", b[] = "second!", c[] = "third frame";
    uint8_t *payloads[3] = {a, b, c};
    size_t lens[3] = {sizeof a, sizeof b, sizeof c};
    uint8_t stream[64];
    size_t total = frame_stream(stream, payloads, lens, 3);
    size_t split = SEQ_FRAME_HEADER_BYTES * 2 + sizeof a + sizeof b + 2;

    seq_framer f;
    seq_framer_init(&f, 64);
    assert_int_equal(seq_framer_feed(&f, stream, split), 0);
    const uint8_t *p;
    size_t len;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(seq_framer_next(&f, &p, &len), 1);
        assert_int_equal(len, lens[i]);
        assert_memory_equal(p, payloads[i], len);
    }
    assert_int_equal(seq_framer_next(&f, &p, &len), 0);
    assert_int_equal(seq_framer_feed(&f, stream + split, total - split), 0);
    assert_int_equal(seq_framer_next(&f, &p, &len), 1);
    assert_int_equal(len, sizeof c);
    assert_memory_equal(p, c, len);
    assert_int_equal(seq_framer_next(&f, &p, &len), 0);
    /* Everything was taken out: the buffer holds nothing. */
    assert_int_equal(f.len - f.off, 0);
    seq_framer_free(&f);
}

/* A header announcing one byte over the limit is SEQ_ETOOBIG as soon as its
 * 4 bytes arrive, even behind a valid frame in the same feed; the error is
 * sticky. A frame of exactly the limit passes. */
static void test_framer_oversize(void **state)
{
    (void)state;
    enum { LIMIT = 100 };
    seq_framer f;
    seq_framer_init(&f, LIMIT);
    uint8_t hdr[SEQ_FRAME_HEADER_BYTES];
    seq_frame_header(hdr, LIMIT + 1);
    assert_int_equal(seq_framer_feed(&f, hdr, 3), 0);
    assert_int_equal(seq_framer_feed(&f, hdr + 3, 1), SEQ_ETOOBIG);
    assert_int_equal(seq_framer_feed(&f, (const uint8_t *)"x", 1), SEQ_ETOOBIG);
    const uint8_t *p;
    size_t len;
    assert_int_equal(seq_framer_next(&f, &p, &len), 0);
    seq_framer_free(&f);

    uint8_t stream[2 * SEQ_FRAME_HEADER_BYTES + LIMIT];
    memset(stream, 0xee, sizeof stream);
    seq_frame_header(stream, LIMIT);
    seq_frame_header(stream + SEQ_FRAME_HEADER_BYTES + LIMIT, UINT32_MAX);
    seq_framer_init(&f, LIMIT);
    assert_int_equal(seq_framer_feed(&f, stream, SEQ_FRAME_HEADER_BYTES + LIMIT), 0);
    assert_int_equal(seq_framer_next(&f, &p, &len), 1);
    assert_int_equal(len, LIMIT);
    seq_framer_free(&f);
    seq_framer_init(&f, LIMIT);
    assert_int_equal(seq_framer_feed(&f, stream, sizeof stream), SEQ_ETOOBIG);
    seq_framer_free(&f);
}

/* A zero-length frame is allowed by the framer and yields an empty payload,
 * which seq_msg_decode refuses; the frame after it still comes out. */
static void test_framer_zero_length(void **state)
{
    (void)state;
    uint8_t one[] = "x";
    uint8_t *payloads[2] = {one, one};
    size_t lens[2] = {0, 1};
    uint8_t stream[16];
    size_t total = frame_stream(stream, payloads, lens, 2);
    seq_framer f;
    seq_framer_init(&f, 16);
    assert_int_equal(seq_framer_feed(&f, stream, total), 0);
    const uint8_t *p = NULL;
    size_t len = 99;
    assert_int_equal(seq_framer_next(&f, &p, &len), 1);
    assert_int_equal(len, 0);
    seq_msg m;
    assert_int_equal(seq_msg_decode(&m, p, len), SEQ_EDECODE);
    assert_int_equal(seq_framer_next(&f, &p, &len), 1);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], 'x');
    assert_int_equal(seq_framer_next(&f, &p, &len), 0);
    seq_framer_free(&f);
}

/* After a large frame is taken out, the next feed gives its buffer back, so
 * an idle link does not keep a frame-sized allocation. */
static void test_framer_releases_big_buffer(void **state)
{
    (void)state;
    size_t big = 4 * SEQ_FRAMER_IDLE_BYTES_MAX;
    uint8_t *stream = calloc(1, SEQ_FRAME_HEADER_BYTES + big);
    assert_non_null(stream);
    seq_frame_header(stream, (uint32_t)big);
    seq_framer f;
    seq_framer_init(&f, SEQ_FRAME_BYTES_MAX_DEFAULT);
    assert_int_equal(seq_framer_feed(&f, stream, SEQ_FRAME_HEADER_BYTES + big), 0);
    assert_true(f.cap >= big);
    const uint8_t *p;
    size_t len;
    assert_int_equal(seq_framer_next(&f, &p, &len), 1);
    assert_int_equal(len, big);
    uint8_t hdr[SEQ_FRAME_HEADER_BYTES];
    seq_frame_header(hdr, 0);
    assert_int_equal(seq_framer_feed(&f, hdr, sizeof hdr), 0);
    assert_true(f.cap <= SEQ_FRAMER_IDLE_BYTES_MAX);
    assert_int_equal(seq_framer_next(&f, &p, &len), 1);
    assert_int_equal(len, 0);
    seq_framer_free(&f);
    free(stream);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_votes),
        cmocka_unit_test(test_round_trip_cert),
        cmocka_unit_test(test_round_trip_nullification),
        cmocka_unit_test(test_round_trip_propose),
        cmocka_unit_test(test_round_trip_block),
        cmocka_unit_test(test_round_trip_block_at_tx_limit),
        cmocka_unit_test(test_round_trip_tiny_payloads_fit_budget),
        cmocka_unit_test(test_round_trip_requests),
        cmocka_unit_test(test_round_trip_txs),
        cmocka_unit_test(test_round_trip_sync),
        cmocka_unit_test(test_decode_rejects_empty_and_unknown),
        cmocka_unit_test(test_decode_rejects_bad_hash_length),
        cmocka_unit_test(test_decode_rejects_bad_sig_length),
        cmocka_unit_test(test_decode_rejects_cert_shape),
        cmocka_unit_test(test_decode_rejects_bad_kind),
        cmocka_unit_test(test_decode_nullify_hash_and_signer),
        cmocka_unit_test(test_decode_rejects_bad_block),
        cmocka_unit_test(test_decode_rejects_bad_proposal),
        cmocka_unit_test(test_decode_rejects_bad_cert_req),
        cmocka_unit_test(test_decode_rejects_oversized_txs),
        cmocka_unit_test(test_decode_bounds_unpack_memory),
        cmocka_unit_test(test_decode_fuzz),
        cmocka_unit_test(test_round_trip_compact_proposal),
        cmocka_unit_test(test_round_trip_compact_proposal_empty),
        cmocka_unit_test(test_decode_rejects_bad_compact_proposal),
        cmocka_unit_test(test_decode_fuzz_compact_proposal),
        cmocka_unit_test(test_framer_byte_by_byte),
        cmocka_unit_test(test_framer_several_frames_per_feed),
        cmocka_unit_test(test_framer_oversize),
        cmocka_unit_test(test_framer_zero_length),
        cmocka_unit_test(test_framer_releases_big_buffer),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
