/* Unit tests of batch verification (lib/verify.h) on real data: 4 validators
 * with real ed25519 keys, a chain of real blocks (seq_block_build) finalized
 * by certificates built from signed votes, and batches built by hand. Every
 * forged or broken part must be refused with the right code and a why that
 * names it; valid batches, certificate paths and absence batches pass. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "errors.h"
#include "nsproof.h"
#include "types.h"
#include "verify.h"

#define CHAIN_ID 0x5345510000000004ull
#define VALIDATORS_N 4
#define BLOCKS_N 6
#define TXS_MAX 16
#define WHY_BYTES 160
#define NS_ABSENT 9

static seq_keypair *keys[VALIDATORS_N];
static seq_validators vs;
static seq_block *blocks[BLOCKS_N];
/* Finalizations of each block: by validators 0, 1, 2 (exactly a quorum), and
 * by all four. */
static seq_cert certs3[BLOCKS_N];
static seq_cert certs4[BLOCKS_N];
static seq_cert notarization0;

/* ---- fixtures ------------------------------------------------------------------ */

static int cert_of(seq_cert *out, uint8_t kind, const seq_block *b, uint32_t signers, uint64_t chain_id)
{
    seq_vote votes[VALIDATORS_N];
    for (uint32_t s = 0; s < signers; s++)
        votes[s] = seq_test_vote(kind, b->h.view, &b->hash, s, keys[s], chain_id);
    return seq_cert_build(out, &vs, votes, signers);
}

/* Block k (height k+1, view 2k+1): ns 1 three txs, ns 2 two txs except in
 * block 2, ns 3 one tx; block 4 holds no transaction at all. */
static int make_block(uint32_t k, const seq_hash *parent, uint64_t parent_view, seq_block **out)
{
    static char payloads[TXS_MAX][32];
    seq_tx txs[TXS_MAX];
    uint32_t n = 0;
    static const struct {
        seq_ns ns;
        uint32_t count;
    } runs[] = {{3, 1}, {1, 3}, {2, 2}};
    for (size_t r = 0; r < 3 && k != 4; r++) {
        if (runs[r].ns == 2 && k == 2)
            continue;
        for (uint32_t i = 0; i < runs[r].count; i++, n++) {
            snprintf(payloads[n], sizeof payloads[n], "block %u ns %u tx %u", k, (unsigned)runs[r].ns, i);
            txs[n] = (seq_tx){.ns = runs[r].ns, .len = (uint32_t)strlen(payloads[n]), .data = (uint8_t *)payloads[n]};
        }
    }
    seq_header tmpl = {
        .chain_id = CHAIN_ID,
        .height = k + 1,
        .view = 2 * k + 1,
        .parent = *parent,
        .parent_view = parent_view,
        .leader = (uint32_t)((2 * k + 1) % VALIDATORS_N),
        .timestamp_ms = 1700000000000ull + k,
    };
    return seq_block_build(out, &tmpl, txs, n);
}

static int group_setup(void **state)
{
    (void)state;
    if (seq_test_keys_make(keys, VALIDATORS_N) != 0)
        return -1;
    seq_pubkey pks[VALIDATORS_N];
    for (int i = 0; i < VALIDATORS_N; i++)
        pks[i] = keys[i]->pk;
    if (seq_validators_init(&vs, pks, VALIDATORS_N) != 0)
        return -1;
    seq_hash parent = {{0}};
    uint64_t parent_view = 0;
    for (uint32_t k = 0; k < BLOCKS_N; k++) {
        if (make_block(k, &parent, parent_view, &blocks[k]) != 0)
            return -1;
        if (cert_of(&certs3[k], SEQ_VOTE_FINALIZE, blocks[k], 3, CHAIN_ID) != 0 ||
            cert_of(&certs4[k], SEQ_VOTE_FINALIZE, blocks[k], 4, CHAIN_ID) != 0)
            return -1;
        parent = blocks[k]->hash;
        parent_view = blocks[k]->h.view;
    }
    return cert_of(&notarization0, SEQ_VOTE_NOTARIZE, blocks[0], 4, CHAIN_ID);
}

static int group_teardown(void **state)
{
    (void)state;
    for (uint32_t k = 0; k < BLOCKS_N; k++)
        seq_block_free(blocks[k]);
    seq_test_keys_free(keys, VALIDATORS_N);
    return 0;
}

/* Namespace ns's batch of block k as a node would send it, certified by
 * cert, which finalizes block cert_k (k <= cert_k; the path holds the
 * headers of k+1 .. cert_k). */
static seq_batch *make_batch(uint32_t k, seq_ns ns, const seq_cert *cert, uint32_t cert_k)
{
    const seq_block *b = blocks[k];
    seq_nsproof proof;
    assert_int_equal(seq_nsproof_build(b, ns, &proof), 0);
    size_t bytes = 0;
    for (uint32_t i = 0; i < proof.count; i++)
        bytes += b->txs[proof.start + i].len;
    seq_batch *out = NULL;
    uint8_t *payloads = NULL;
    assert_int_equal(seq_batch_alloc(&out, proof.count, bytes, cert_k - k, &payloads), 0);
    for (uint32_t i = 0; i < proof.count; i++) {
        const seq_tx *tx = &b->txs[proof.start + i];
        memcpy(payloads, tx->data, tx->len);
        out->txs[i] = (seq_tx){.ns = tx->ns, .len = tx->len, .data = payloads, .id = tx->id};
        payloads += tx->len;
    }
    out->header = b->h;
    out->block_hash = b->hash;
    out->ns = ns;
    out->cert = *cert;
    out->prev_batch_hash = b->h.parent;
    for (uint32_t j = k + 1; j <= cert_k; j++)
        out->cert_path[j - k - 1] = blocks[j]->h;
    out->proof = proof;
    return out;
}

static seq_batch *plain_batch(uint32_t k, seq_ns ns)
{
    return make_batch(k, ns, &certs3[k], k);
}

/* seq_batch_check gives want, and its why contains why_part. */
static void expect_batch(const seq_batch *b, uint64_t chain_id, int want, const char *why_part)
{
    char why[WHY_BYTES] = "";
    int rc = seq_batch_check(b, &vs, chain_id, why, sizeof why);
    if (rc != want || (why_part && !strstr(why, why_part)))
        print_error("check gave %s (%s), wanted %s with \"%s\"\n", seq_errname(rc), why, seq_errname(want),
                    why_part ? why_part : "");
    assert_int_equal(rc, want);
    if (why_part)
        assert_non_null(strstr(why, why_part));
}

/* ---- accepted --------------------------------------------------------------------- */

/* Every namespace's batch of every block passes (present, absent, and the
 * empty block), with a 3- or a 4-signer certificate. */
static void test_valid_batches_pass(void **state)
{
    (void)state;
    static const seq_ns namespaces[] = {1, 2, 3, NS_ABSENT};
    for (uint32_t k = 0; k < BLOCKS_N; k++) {
        for (size_t i = 0; i < sizeof namespaces / sizeof namespaces[0]; i++) {
            seq_batch *b = plain_batch(k, namespaces[i]);
            expect_batch(b, CHAIN_ID, 0, NULL);
            b->cert = certs4[k];
            expect_batch(b, CHAIN_ID, 0, NULL);
            seq_batch_free(b);
        }
    }
    seq_batch *b = plain_batch(1, 1);
    assert_int_equal(b->tx_count, 3);
    seq_batch_free(b);
    b = plain_batch(2, 2);
    assert_int_equal(b->tx_count, 0);
    seq_batch_free(b);
    b = plain_batch(4, 1);
    assert_int_equal(b->header.tx_count, 0);
    seq_batch_free(b);
}

/* A later block's certificate with the headers in between certifies the
 * batch's block (2 via 3 and 4), for a present and an absent namespace. */
static void test_cert_path_to_descendant_passes(void **state)
{
    (void)state;
    seq_batch *b = make_batch(1, 1, &certs3[3], 3);
    assert_int_equal(b->path_len, 2);
    expect_batch(b, CHAIN_ID, 0, NULL);
    seq_batch_free(b);
    b = make_batch(2, 2, &certs4[5], 5);
    expect_batch(b, CHAIN_ID, 0, NULL);
    seq_batch_free(b);
}

/* ---- certificates ------------------------------------------------------------------- */

/* A flipped signature, a removed signer, a bitmap that disagrees with the
 * signatures, an unknown signer, votes signed for another chain, and a
 * notarization instead of a finalization are refused. */
static void test_forged_certificates_refused(void **state)
{
    (void)state;
    seq_batch *b = plain_batch(1, 1);

    b->cert.sigs[1].b[7] ^= 0x01;
    expect_batch(b, CHAIN_ID, SEQ_EBADSIG, "certificate: bad signature from validator 1");

    /* Signer 2 removed from the 3-signer certificate: below quorum. */
    b->cert = certs3[1];
    b->cert.bitmap[0] &= (uint8_t)~(1u << 2);
    b->cert.sig_count = 2;
    expect_batch(b, CHAIN_ID, SEQ_EQUORUM, "certificate: 2 signers, quorum is 3");

    /* Bit cleared but signature kept, and the other way round. */
    b->cert = certs4[1];
    b->cert.bitmap[0] &= (uint8_t)~(1u << 3);
    expect_batch(b, CHAIN_ID, SEQ_EDECODE, "bitmap names 3 signers, 4 signatures");
    b->cert = certs3[1];
    b->cert.sig_count = 2;
    expect_batch(b, CHAIN_ID, SEQ_EDECODE, "bitmap names 3 signers, 2 signatures");

    b->cert = certs3[1];
    seq_bitmap_set(b->cert.bitmap, 5);
    b->cert.sigs[b->cert.sig_count++] = certs4[1].sigs[3];
    expect_batch(b, CHAIN_ID, SEQ_EUNKNOWN_SIGNER, "beyond the 4 validators");

    assert_int_equal(cert_of(&b->cert, SEQ_VOTE_FINALIZE, blocks[1], 3, CHAIN_ID + 1), 0);
    expect_batch(b, CHAIN_ID, SEQ_EBADSIG, "bad signature from validator 0");

    seq_batch_free(b);
    b = plain_batch(0, 1);
    b->cert = notarization0;
    expect_batch(b, CHAIN_ID, SEQ_EMISMATCH, "kind notarize, expected finalize");
    seq_batch_free(b);
}

/* ---- headers, hashes, links ------------------------------------------------------------ */

/* Another chain id (ours or the header's), a header field changed with or
 * without block_hash following, a wrong block_hash, another block's
 * certificate and a wrong prev_batch_hash are refused. */
static void test_header_and_links_refused(void **state)
{
    (void)state;
    seq_batch *b = plain_batch(3, 1);
    expect_batch(b, CHAIN_ID + 1, SEQ_ECHAIN_ID, "header: chain id");
    b->header.chain_id = CHAIN_ID + 1;
    seq_header_hash(&b->header, &b->block_hash);
    expect_batch(b, CHAIN_ID, SEQ_ECHAIN_ID, "header: chain id");

    b->header = blocks[3]->h;
    b->header.timestamp_ms++;
    expect_batch(b, CHAIN_ID, SEQ_EMISMATCH, "is not the header's hash");
    seq_header_hash(&b->header, &b->block_hash);
    expect_batch(b, CHAIN_ID, SEQ_EMISMATCH, "certificate: finalizes");

    b->header = blocks[3]->h;
    b->block_hash = blocks[2]->hash;
    expect_batch(b, CHAIN_ID, SEQ_EMISMATCH, "is not the header's hash");

    b->block_hash = blocks[3]->hash;
    b->cert = certs3[4];
    expect_batch(b, CHAIN_ID, SEQ_EMISMATCH, "certificate: finalizes");
    b->cert = certs3[2];
    expect_batch(b, CHAIN_ID, SEQ_EMISMATCH, "certificate: finalizes");
    b->cert = certs3[3];
    b->cert.view++;
    expect_batch(b, CHAIN_ID, SEQ_EMISMATCH, "certificate: view");

    b->cert = certs3[3];
    b->prev_batch_hash.b[0] ^= 1;
    expect_batch(b, CHAIN_ID, SEQ_EGAP, "prev_batch_hash");
    b->prev_batch_hash = blocks[3]->h.parent;
    expect_batch(b, CHAIN_ID, 0, NULL);
    seq_batch_free(b);
}

/* A certificate path with a wrong parent, a skipped or repeated height, a
 * missing header, a header of another chain, or ending short of the
 * certified block is refused. */
static void test_broken_cert_path_refused(void **state)
{
    (void)state;
    seq_batch *b = make_batch(1, 1, &certs3[4], 4);
    assert_int_equal(b->path_len, 3);
    expect_batch(b, CHAIN_ID, 0, NULL);

    b->cert_path[1] = blocks[1]->h; /* wrong parent */
    expect_batch(b, CHAIN_ID, SEQ_EMISMATCH, "cert_path[1]: parent");
    b->cert_path[1] = blocks[3]->h;
    b->cert_path[0].height++; /* parent right, height skips */
    expect_batch(b, CHAIN_ID, SEQ_EMISMATCH, "cert_path[0]: height 4, expected 3");
    b->cert_path[0] = blocks[2]->h;
    b->cert_path[0].chain_id++;
    expect_batch(b, CHAIN_ID, SEQ_ECHAIN_ID, "cert_path[0]: chain id");
    b->cert_path[0] = blocks[2]->h;
    b->path_len = 2; /* stops at block 3; the cert names 4 */
    expect_batch(b, CHAIN_ID, SEQ_EMISMATCH, "certificate: finalizes");
    b->path_len = 3;
    b->cert_path[2] = blocks[4]->h;
    b->cert_path[1] = blocks[2]->h; /* header 3 missing: 2, 2, 4 */
    expect_batch(b, CHAIN_ID, SEQ_EMISMATCH, "cert_path[1]: parent");
    seq_batch_free(b);

    /* The path skips block 3: 2 -> 4 has the wrong parent. */
    b = make_batch(1, 1, &certs3[3], 3);
    b->cert_path[0] = blocks[3]->h;
    b->path_len = 1;
    expect_batch(b, CHAIN_ID, SEQ_EMISMATCH, "cert_path[0]: parent");
    b->path_len = SEQ_CERT_PATH_MAX + 1;
    expect_batch(b, CHAIN_ID, SEQ_EINVAL, "cert_path");
    seq_batch_free(b);
}

/* ---- proofs and transactions ---------------------------------------------------------- */

/* A tampered proof node or start, a missing, extra, replaced (payload under
 * its old id) or reordered tx, and a tx of another namespace are refused;
 * so is an absence batch for a namespace the block holds. */
static void test_proof_and_txs_refused(void **state)
{
    (void)state;
    seq_batch *b = plain_batch(3, 1);
    assert_int_equal(b->tx_count, 3);
    b->proof.nodes[0].digest.b[3] ^= 0x10;
    expect_batch(b, CHAIN_ID, SEQ_EPROOF, "proof: root mismatch");
    seq_nsproof good;
    assert_int_equal(seq_nsproof_build(blocks[3], 1, &good), 0);
    b->proof = good;
    b->proof.start++;
    expect_batch(b, CHAIN_ID, SEQ_EPROOF, "proof: root mismatch");
    b->proof = good;
    b->proof.count = 99; /* not on the wire: the batch's txs give it */
    expect_batch(b, CHAIN_ID, 0, NULL);
    b->proof = good;

    b->tx_count = 2;
    expect_batch(b, CHAIN_ID, SEQ_EPROOF, "proof: root mismatch");
    b->tx_count = 3;

    seq_tx saved = b->txs[1];
    b->txs[1] = b->txs[2];
    b->txs[2] = saved;
    expect_batch(b, CHAIN_ID, SEQ_EPROOF, "proof: root mismatch");
    b->txs[2] = b->txs[1];
    b->txs[1] = saved;
    expect_batch(b, CHAIN_ID, 0, NULL);

    /* Same length, other bytes, old id kept: ids are recomputed. */
    ((uint8_t *)b->txs[1].data)[0] ^= 0x20;
    expect_batch(b, CHAIN_ID, SEQ_EPROOF, "proof: root mismatch");
    ((uint8_t *)b->txs[1].data)[0] ^= 0x20;

    b->txs[2].ns = 2;
    expect_batch(b, CHAIN_ID, SEQ_EPROOF, "tx 2: namespace 2, batch is of 1");
    seq_batch_free(b);

    /* One tx more: the first tx of ns 2 appended to ns 1's batch, relabelled. */
    seq_batch *more = NULL;
    uint8_t *payloads = NULL;
    b = plain_batch(3, 1);
    assert_int_equal(seq_batch_alloc(&more, 4, 0, 0, &payloads), 0);
    memcpy(more->txs, b->txs, 3 * sizeof *b->txs);
    more->txs[3] = blocks[3]->txs[4];
    more->txs[3].ns = 1;
    more->header = b->header;
    more->block_hash = b->block_hash;
    more->ns = 1;
    more->cert = b->cert;
    more->prev_batch_hash = b->prev_batch_hash;
    more->proof = b->proof;
    expect_batch(more, CHAIN_ID, SEQ_EPROOF, "proof: root mismatch");
    seq_batch_free(more);
    seq_batch_free(b);

    /* Absence claimed for ns 1 with the proof of absent ns 0 (same start). */
    b = plain_batch(3, 0);
    assert_int_equal(b->tx_count, 0);
    b->ns = 1;
    expect_batch(b, CHAIN_ID, SEQ_EPROOF, "proof: root mismatch");
    b->proof.node_count = SEQ_NSPROOF_NODES_MAX + 1;
    expect_batch(b, CHAIN_ID, SEQ_EINVAL, "proof: malformed");
    seq_batch_free(b);
}

/* A fresh stream verifier of the test chain (free() it). */
static seq_verifier *verifier_new(void)
{
    seq_verifier *v = malloc(sizeof *v);
    assert_non_null(v);
    seq_verifier_init(v, &vs, CHAIN_ID);
    return v;
}

/* ---- the stream verifier ----------------------------------------------------------------- */

static int verify(seq_verifier *v, seq_batch *b, char *why)
{
    int rc = seq_verifier_check(v, b, why, WHY_BYTES);
    seq_batch_free(b);
    return rc;
}

/* Two namespaces in order pass; a skipped height, a repeated batch and a
 * batch of another fork are refused without moving the expectation. */
static void test_verifier_continuity(void **state)
{
    (void)state;
    seq_verifier *v = verifier_new();
    char why[WHY_BYTES];
    for (uint32_t k = 0; k < 3; k++) {
        assert_int_equal(verify(v, plain_batch(k, 1), why), 0);
        assert_int_equal(verify(v, plain_batch(k, NS_ABSENT), why), 0);
    }
    assert_int_equal(v->verified, 6);

    assert_int_equal(verify(v, plain_batch(4, 1), why), SEQ_EGAP);
    assert_string_equal(why, "gap: expected height 4, got 5");
    assert_int_equal(verify(v, plain_batch(2, 1), why), SEQ_EGAP);
    assert_string_equal(why, "gap: expected height 4, got 3");

    /* Height 4 of another fork: a block on block 2's hash instead of 3's. */
    seq_block *fork = NULL;
    assert_int_equal(make_block(3, &blocks[1]->hash, blocks[1]->h.view, &fork), 0);
    seq_batch *fb = plain_batch(3, 1);
    fb->header = fork->h;
    fb->block_hash = fork->hash;
    fb->prev_batch_hash = fork->h.parent;
    assert_int_equal(cert_of(&fb->cert, SEQ_VOTE_FINALIZE, fork, 3, CHAIN_ID), 0);
    assert_int_equal(seq_nsproof_build(fork, 1, &fb->proof), 0);
    expect_batch(fb, CHAIN_ID, 0, NULL);
    assert_int_equal(verify(v, fb, why), SEQ_EGAP);
    assert_non_null(strstr(why, "gap: height 4 follows"));
    seq_block_free(fork);

    assert_int_equal(verify(v, plain_batch(3, 1), why), 0);
    assert_int_equal(verify(v, plain_batch(3, NS_ABSENT), why), 0);
    assert_int_equal(v->verified, 8);
    free(v);
}

/* Resuming: seq_verifier_expect with the right height and hash lets the next
 * batch pass; a wrong hash or height refuses it; the table is bounded. */
static void test_verifier_resume(void **state)
{
    (void)state;
    seq_verifier *v = verifier_new();
    char why[WHY_BYTES];
    seq_hash wrong = blocks[1]->hash;
    assert_int_equal(seq_verifier_expect(v, 1, 4, &wrong), 0);
    assert_int_equal(verify(v, plain_batch(3, 1), why), SEQ_EGAP);
    assert_non_null(strstr(why, "gap: height 4 follows"));
    assert_int_equal(seq_verifier_expect(v, 1, 5, &blocks[2]->hash), 0);
    assert_int_equal(verify(v, plain_batch(3, 1), why), SEQ_EGAP);
    assert_string_equal(why, "gap: expected height 5, got 4");
    assert_int_equal(seq_verifier_expect(v, 1, 4, &blocks[2]->hash), 0);
    assert_int_equal(verify(v, plain_batch(3, 1), why), 0);
    assert_int_equal(verify(v, plain_batch(4, 1), why), 0);

    /* Without a hash only the height is known; the batch then sets it. */
    assert_int_equal(seq_verifier_expect(v, 2, 2, NULL), 0);
    assert_int_equal(verify(v, plain_batch(1, 2), why), 0);
    assert_int_equal(verify(v, plain_batch(2, 2), why), 0);

    for (seq_ns ns = 100; v->ns_count < SEQ_VERIFIER_NS_MAX; ns++)
        assert_int_equal(seq_verifier_expect(v, ns, 1, NULL), 0);
    assert_int_equal(seq_verifier_expect(v, 99, 1, NULL), SEQ_EFULL);
    assert_int_equal(verify(v, plain_batch(0, 3), why), SEQ_EFULL);
    assert_int_equal(verify(v, plain_batch(5, 1), why), 0);
    free(v);
}

/* The verifier verifies a certificate once: with its validator keys then
 * spoiled, the identical certificate still passes (skipped) while any other
 * one, even of the same block, view and hash, is verified and refused. */
static void test_verifier_cert_cache(void **state)
{
    (void)state;
    seq_verifier *v = verifier_new();
    char why[WHY_BYTES];
    assert_int_equal(verify(v, plain_batch(0, 1), why), 0);
    assert_true(v->have_cert);
    assert_true(seq_hash_eq(&v->cert_hash, &blocks[0]->hash));
    assert_int_equal(v->cert_view, blocks[0]->h.view);

    v->vs.keys[1].b[0] ^= 1;
    assert_int_equal(verify(v, plain_batch(0, 2), why), 0);
    assert_int_equal(verify(v, plain_batch(0, 3), why), 0);
    seq_batch *b = plain_batch(0, NS_ABSENT);
    b->cert = certs4[0];
    assert_int_equal(verify(v, b, why), SEQ_EBADSIG);
    assert_string_equal(why, "certificate: bad signature from validator 1");
    b = plain_batch(0, NS_ABSENT);
    b->cert.sigs[2].b[0] ^= 1;
    assert_int_equal(verify(v, b, why), SEQ_EBADSIG);
    free(v);
}

/* ---- transaction status proofs ------------------------------------------------------------ */

/* A tx's inclusion proof passes with its block's certificate or a
 * descendant's through a path, and is refused for another tx, another
 * index, a bad certificate or another chain. */
static void test_tx_proof_check(void **state)
{
    (void)state;
    const seq_block *b = blocks[1];
    char why[WHY_BYTES];
    seq_nsproof p;
    assert_int_equal(seq_nsproof_build_range(b, 2, 1, &p), 0);
    const seq_tx *tx = &b->txs[2];
    assert_int_equal(seq_tx_proof_check(&b->h, &certs3[1], NULL, 0, tx, &p, &vs, CHAIN_ID, why, sizeof why), 0);
    seq_header path[2] = {blocks[2]->h, blocks[3]->h};
    assert_int_equal(seq_tx_proof_check(&b->h, &certs4[3], path, 2, tx, &p, &vs, CHAIN_ID, why, sizeof why), 0);

    assert_int_equal(seq_tx_proof_check(&b->h, &certs3[1], NULL, 0, &b->txs[3], &p, &vs, CHAIN_ID, why, sizeof why),
                     SEQ_EPROOF);
    assert_non_null(strstr(why, "proof: root mismatch"));
    seq_nsproof moved = p;
    moved.start = 3;
    assert_int_equal(seq_tx_proof_check(&b->h, &certs3[1], NULL, 0, tx, &moved, &vs, CHAIN_ID, why, sizeof why),
                     SEQ_EPROOF);
    moved.start = b->h.tx_count;
    assert_int_equal(seq_tx_proof_check(&b->h, &certs3[1], NULL, 0, tx, &moved, &vs, CHAIN_ID, why, sizeof why),
                     SEQ_EINVAL);
    seq_cert bad = certs3[1];
    bad.sigs[0].b[9] ^= 4;
    assert_int_equal(seq_tx_proof_check(&b->h, &bad, NULL, 0, tx, &p, &vs, CHAIN_ID, why, sizeof why), SEQ_EBADSIG);
    assert_string_equal(why, "certificate: bad signature from validator 0");
    assert_int_equal(seq_tx_proof_check(&b->h, &certs3[2], NULL, 0, tx, &p, &vs, CHAIN_ID, why, sizeof why),
                     SEQ_EMISMATCH);
    assert_int_equal(seq_tx_proof_check(&b->h, &certs3[1], NULL, 0, tx, &p, &vs, CHAIN_ID + 1, why, sizeof why),
                     SEQ_ECHAIN_ID);
    assert_int_equal(seq_tx_proof_check(&b->h, &certs3[1], NULL, 0, tx, &p, &vs, CHAIN_ID, NULL, 0), 0);
}

/* ---- runs ------------------------------------------------------------------------ */

/* Batches of blocks 0..BLOCKS_N-1 for each of nss, interleaved by height as
 * a subscription to all of them sends them. */
static uint32_t run_of(seq_batch **run, const seq_ns *nss, uint32_t ns_count)
{
    uint32_t n = 0;
    for (uint32_t k = 0; k < BLOCKS_N; k++)
        for (uint32_t i = 0; i < ns_count; i++)
            run[n++] = plain_batch(k, nss[i]);
    return n;
}

static void run_free(seq_batch **run, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        seq_batch_free(run[i]);
}

/* One certificate per namespace and run: the earlier batches' own
 * certificates are not checked (one with a forged signature passes inside
 * the run, and is refused alone), each names the last batch as what proves
 * it final, and the verifier then expects the height after the run. */
static void test_run_checks_the_last_certificate_per_namespace(void **state)
{
    (void)state;
    static const seq_ns nss[] = {1, NS_ABSENT};
    seq_batch *run[BLOCKS_N * 2];
    uint32_t n = run_of(run, nss, 2);
    run[4]->cert.sigs[1].b[3] ^= 8; /* block 2, ns 1 */
    seq_verifier *v = verifier_new();
    char why[WHY_BYTES] = "";
    uint32_t passed = 0;
    assert_int_equal(seq_verifier_check_run(v, run, n, &passed, why, sizeof why), 0);
    assert_int_equal(passed, n);
    assert_int_equal(v->verified, n);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(run[i]->final_by, i >= n - 2 ? 0 : BLOCKS_N);
    expect_batch(run[4], CHAIN_ID, SEQ_EBADSIG, "bad signature from validator 1");

    seq_batch *again = plain_batch(BLOCKS_N - 1, 1);
    assert_int_equal(seq_verifier_check(v, again, why, sizeof why), SEQ_EGAP);
    seq_batch_free(again);
    run_free(run, n);
    free(v);
}

/* A bad last certificate: the run is checked again one batch at a time, each
 * with its own certificate; all before the last pass, the last is refused
 * as seq_verifier_check refuses it, and the verifier stands before it. */
static void test_run_with_a_bad_last_certificate(void **state)
{
    (void)state;
    static const seq_ns ns = 1;
    seq_batch *run[BLOCKS_N];
    uint32_t n = run_of(run, &ns, 1);
    run[n - 1]->cert.sigs[0].b[5] ^= 1;
    seq_verifier *v = verifier_new();
    char why[WHY_BYTES] = "";
    uint32_t passed = 0;
    assert_int_equal(seq_verifier_check_run(v, run, n, &passed, why, sizeof why), SEQ_EBADSIG);
    assert_int_equal(passed, n - 1);
    assert_string_equal(why, "certificate: bad signature from validator 0");
    for (uint32_t i = 0; i < n - 1; i++)
        assert_int_equal(run[i]->final_by, 0);
    assert_int_equal(v->verified, n - 1);
    seq_batch *good = plain_batch(n - 1, 1);
    assert_int_equal(seq_verifier_check(v, good, why, sizeof why), 0);
    seq_batch_free(good);
    run_free(run, n);
    free(v);
}

/* Each namespace's own last batch carries the proof: a namespace with one
 * batch in a run has its certificate checked even when another
 * namespace's batches follow it (a forged one is refused), and a run past
 * SEQ_VERIFIER_RUN_MAX batches is refused whole. */
static void test_run_single_batch_namespace(void **state)
{
    (void)state;
    seq_batch *run[3] = {plain_batch(0, 1), plain_batch(0, 2), plain_batch(1, 1)};
    run[1]->cert = certs4[0];
    run[1]->cert.sigs[3].b[1] ^= 1;
    seq_verifier *v = verifier_new();
    char why[WHY_BYTES] = "";
    uint32_t passed = 9;
    assert_int_equal(seq_verifier_check_run(v, run, 3, &passed, why, sizeof why), SEQ_EBADSIG);
    assert_int_equal(passed, 1);
    assert_string_equal(why, "certificate: bad signature from validator 3");
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(run[i]->final_by, 0);
    assert_int_equal(seq_verifier_check_run(v, run, SEQ_VERIFIER_RUN_MAX + 1, &passed, why, sizeof why), SEQ_EINVAL);
    assert_int_equal(passed, 0);
    run_free(run, 3);
    free(v);
}

/* A break inside the run (a batch whose proof does not match, a skipped
 * height) stops it at that batch, with the batches before it passed on
 * their own certificates. */
static void test_run_broken_in_the_middle(void **state)
{
    (void)state;
    static const seq_ns ns = 1;
    seq_batch *run[BLOCKS_N];
    uint32_t n = run_of(run, &ns, 1);
    ((uint8_t *)run[3]->txs[1].data)[0] ^= 1;
    run[3]->ids_from_payloads_ = false;
    seq_verifier *v = verifier_new();
    char why[WHY_BYTES] = "";
    uint32_t passed = 0;
    assert_int_equal(seq_verifier_check_run(v, run, n, &passed, why, sizeof why), SEQ_EPROOF);
    assert_int_equal(passed, 3);
    assert_non_null(strstr(why, "proof: root mismatch"));
    assert_int_equal(run[0]->final_by, 0);
    run_free(run, n);

    seq_verifier_init(v, &vs, CHAIN_ID);
    n = run_of(run, &ns, 1);
    seq_batch *skipped = run[2];
    memmove(&run[2], &run[3], (n - 3) * sizeof run[0]);
    assert_int_equal(seq_verifier_check_run(v, run, n - 1, &passed, why, sizeof why), SEQ_EGAP);
    assert_int_equal(passed, 2);
    seq_batch_free(skipped);
    run_free(run, n - 1);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_batches_pass),
        cmocka_unit_test(test_cert_path_to_descendant_passes),
        cmocka_unit_test(test_forged_certificates_refused),
        cmocka_unit_test(test_header_and_links_refused),
        cmocka_unit_test(test_broken_cert_path_refused),
        cmocka_unit_test(test_proof_and_txs_refused),
        cmocka_unit_test(test_verifier_continuity),
        cmocka_unit_test(test_verifier_resume),
        cmocka_unit_test(test_verifier_cert_cache),
        cmocka_unit_test(test_tx_proof_check),
        cmocka_unit_test(test_run_checks_the_last_certificate_per_namespace),
        cmocka_unit_test(test_run_with_a_bad_last_certificate),
        cmocka_unit_test(test_run_broken_in_the_middle),
        cmocka_unit_test(test_run_single_batch_namespace),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
