/* Unit tests of the canonical types: tx ids, headers, the namespaced payload
 * root, blocks, validators, votes and certificates, with real ed25519 keys.
 * The known-answer hex vectors below were computed by lib/ and, separately,
 * by an independent Python (hashlib.blake2b) model of the types.h spec. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errors.h"
#include "types.h"

#define CHAIN_ID 0x5345510000000001ull
#define KEYS_N 10
#define FIXED_TXS_N 5

/* ---- helpers --------------------------------------------------------------- */

static seq_keypair *keys[KEYS_N];
static seq_validators vs4;

static int group_setup(void **state)
{
    (void)state;
    if (seq_test_keys_make(keys, KEYS_N) != 0)
        return -1;
    seq_pubkey pks[4];
    for (int i = 0; i < 4; i++)
        pks[i] = keys[i]->pk;
    return seq_validators_init(&vs4, pks, 4) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    seq_test_keys_free(keys, KEYS_N);
    return 0;
}

static void assert_hex(const void *data, size_t len, const char *want)
{
    char hex[2 * SEQ_HEADER_BYTES + 1];
    assert_true(len <= SEQ_HEADER_BYTES);
    seq_hex(hex, data, len);
    assert_string_equal(hex, want);
}

static seq_tx make_tx(seq_ns ns, const char *payload)
{
    seq_tx tx = {.ns = ns, .len = (uint32_t)strlen(payload), .data = (const uint8_t *)payload};
    seq_tx_compute_id(&tx);
    return tx;
}

/* Five transactions across four namespaces, already in block order. */
static void fixed_txs(seq_tx out[FIXED_TXS_N])
{
    out[0] = make_tx(1, "a");
    out[1] = make_tx(1, "bb");
    out[2] = make_tx(2, "ccc");
    out[3] = make_tx(7, "");
    out[4] = make_tx(UINT64_MAX, "eeeee");
}

static seq_header fixed_header(void)
{
    seq_header h = {
        .chain_id = 0x1122334455667788ull,
        .height = 42,
        .view = 43,
        .parent_view = 41,
        .leader = 3,
        .timestamp_ms = 1700000000123ull,
        .tx_count = 5,
    };
    for (int i = 0; i < SEQ_HASH_BYTES; i++) {
        h.parent.b[i] = (uint8_t)(0x20 + i);
        h.payload_root.b[i] = (uint8_t)(0x40 + i);
    }
    return h;
}

/* ---- transactions and headers ---------------------------------------------- */

/* A tx id is BLAKE2b-256(ns u64 BE || len u32 BE || payload), pinned. */
static void test_tx_id_known_answer(void **state)
{
    (void)state;
    seq_tx tx = make_tx(0x0102030405060708ull, "hello");
    assert_hex(tx.id.b, SEQ_HASH_BYTES, "e87b90ce29d9643d02e7c469d6297d3f7736a417082b8941b00f451464ac23ec");
    seq_tx other = make_tx(0x0102030405060709ull, "hello");
    assert_false(seq_hash_eq(&tx.id, &other.id));
}

/* The header encoding is exactly the 112-byte big-endian layout of types.h,
 * decodes back to the same header, and hashes to the pinned value. */
static void test_header_layout_and_hash(void **state)
{
    (void)state;
    seq_header h = fixed_header();
    uint8_t enc[SEQ_HEADER_BYTES];
    seq_header_encode(&h, enc);

    uint8_t want[SEQ_HEADER_BYTES];
    size_t off = 0;
    const uint8_t chain[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
    memcpy(want + off, chain, 8), off += 8;
    const uint8_t height[8] = {0, 0, 0, 0, 0, 0, 0, 42};
    memcpy(want + off, height, 8), off += 8;
    const uint8_t view[8] = {0, 0, 0, 0, 0, 0, 0, 43};
    memcpy(want + off, view, 8), off += 8;
    for (int i = 0; i < 32; i++)
        want[off++] = (uint8_t)(0x20 + i);
    const uint8_t parent_view[8] = {0, 0, 0, 0, 0, 0, 0, 41};
    memcpy(want + off, parent_view, 8), off += 8;
    const uint8_t leader[4] = {0, 0, 0, 3};
    memcpy(want + off, leader, 4), off += 4;
    /* 1700000000123 = 0x0000018BCFE5687B */
    const uint8_t ts[8] = {0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b};
    memcpy(want + off, ts, 8), off += 8;
    for (int i = 0; i < 32; i++)
        want[off++] = (uint8_t)(0x40 + i);
    const uint8_t count[4] = {0, 0, 0, 5};
    memcpy(want + off, count, 4), off += 4;
    assert_int_equal(off, SEQ_HEADER_BYTES);
    assert_memory_equal(enc, want, SEQ_HEADER_BYTES);

    seq_header back;
    assert_int_equal(seq_header_decode(&back, enc, sizeof enc), 0);
    uint8_t again[SEQ_HEADER_BYTES];
    seq_header_encode(&back, again);
    assert_memory_equal(again, enc, SEQ_HEADER_BYTES);
    assert_int_equal(seq_header_decode(&back, enc, sizeof enc - 1), SEQ_EDECODE);

    seq_hash hh;
    seq_header_hash(&h, &hh);
    assert_hex(hh.b, SEQ_HASH_BYTES, "1ca79487e252ec8c20b77f30b70d82d154762327451f5d314c6e047bdee8e544");
}

/* ---- payload root ----------------------------------------------------------- */

/* The payload root of 0, 1, 3 and 5 transactions equals the pinned vectors. */
static void test_payload_root_known_answers(void **state)
{
    (void)state;
    seq_tx txs[FIXED_TXS_N];
    fixed_txs(txs);
    static const struct {
        uint32_t n;
        const char *hex;
    } cases[] = {
        {0, "e88bd757ad5b9bedf372d8d3f0cf6c962a469db61a265f6418e1ffed86da29ec"},
        {1, "e81e91ad0cd0daf7dbc087d7213aa09144ffa5c5bd2833e6db26240b7647f2d9"},
        {3, "24bc8665459ff44308b8e3bc58b9d8d0c86cd8d3bcb632b2670960a806de6fc4"},
        {5, "d97def951188b2ec8a20b8ade1ec9fa2368f33ecec9a35d8353d4187f7df3ac6"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        seq_hash root;
        assert_int_equal(seq_payload_root(txs, cases[i].n, &root), 0);
        assert_hex(root.b, SEQ_HASH_BYTES, cases[i].hex);
    }
    seq_hash root;
    assert_int_equal(seq_payload_root(txs, SEQ_BLOCK_TXS_MAX + 1, &root), SEQ_ETOOBIG);
}

/* Second computation of the tree: a recursive RFC 6962 split written from the
 * spec, used to check the library's bottom-up reduction for every n. */
typedef struct {
    seq_ns min, max;
    seq_hash d;
} ref_node;

static ref_node ref_mth(const seq_tx *txs, uint32_t n)
{
    ref_node out;
    uint8_t buf[1 + 2 * (16 + SEQ_HASH_BYTES)];
    seq_enc e;
    seq_enc_init(&e, buf, sizeof buf);
    if (n == 1) {
        seq_enc_u8(&e, 0);
        seq_enc_u64(&e, txs[0].ns);
        seq_enc_bytes(&e, txs[0].id.b, SEQ_HASH_BYTES);
        out.min = out.max = txs[0].ns;
    } else {
        uint32_t k = 1;
        while (k * 2 < n)
            k *= 2;
        ref_node l = ref_mth(txs, k), r = ref_mth(txs + k, n - k);
        seq_enc_u8(&e, 1);
        seq_enc_u64(&e, l.min), seq_enc_u64(&e, l.max), seq_enc_bytes(&e, l.d.b, SEQ_HASH_BYTES);
        seq_enc_u64(&e, r.min), seq_enc_u64(&e, r.max), seq_enc_bytes(&e, r.d.b, SEQ_HASH_BYTES);
        out.min = l.min < r.min ? l.min : r.min;
        out.max = l.max > r.max ? l.max : r.max;
    }
    assert_false(e.overflow);
    seq_hash_compute(&out.d, buf, e.len);
    return out;
}

/* For every n in 1..40 the root equals the recursive RFC 6962 reference, and
 * changing one tx, or reordering two, changes the root. */
static void test_payload_root_matches_recursive_reference(void **state)
{
    (void)state;
    enum { N_MAX = 40 };
    seq_tx txs[N_MAX];
    char payloads[N_MAX][8];
    for (unsigned i = 0; i < N_MAX; i++) {
        snprintf(payloads[i], sizeof payloads[i], "p%u", i % 100u);
        txs[i] = make_tx((seq_ns)(i / 3), payloads[i]);
    }
    for (uint32_t n = 1; n <= N_MAX; n++) {
        ref_node r = ref_mth(txs, n);
        uint8_t pre[1 + 16 + SEQ_HASH_BYTES];
        pre[0] = 2;
        seq_put_u64be(pre + 1, r.min);
        seq_put_u64be(pre + 9, r.max);
        memcpy(pre + 17, r.d.b, SEQ_HASH_BYTES);
        seq_hash want, got;
        seq_hash_compute(&want, pre, sizeof pre);
        assert_int_equal(seq_payload_root(txs, n, &got), 0);
        assert_true(seq_hash_eq(&want, &got));
    }
    seq_hash base, changed;
    assert_int_equal(seq_payload_root(txs, N_MAX, &base), 0);
    seq_tx t = txs[5];
    txs[5] = txs[6];
    txs[6] = t;
    assert_int_equal(seq_payload_root(txs, N_MAX, &changed), 0);
    assert_false(seq_hash_eq(&base, &changed));
}

/* ---- blocks ------------------------------------------------------------------ */

/* build sorts by namespace keeping arrival order inside one, computes
 * tx_count, payload_root and the hash (pinned), and copies the payloads. */
static void test_block_build_sorts_stably(void **state)
{
    (void)state;
    seq_tx sorted[FIXED_TXS_N];
    fixed_txs(sorted);
    /* Same txs in arrival order 4, 0, 3, 1, 2: ns 1's "a" before "bb". */
    seq_tx arrival[FIXED_TXS_N] = {sorted[4], sorted[0], sorted[3], sorted[1], sorted[2]};
    for (int i = 0; i < FIXED_TXS_N; i++)
        memset(arrival[i].id.b, 0xee, SEQ_HASH_BYTES); /* ignored by build */
    seq_header tmpl = fixed_header();
    tmpl.tx_count = 99;
    memset(tmpl.payload_root.b, 0, SEQ_HASH_BYTES);

    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, &tmpl, arrival, FIXED_TXS_N), 0);
    assert_int_equal(b->tx_count, FIXED_TXS_N);
    assert_int_equal(b->h.tx_count, FIXED_TXS_N);
    assert_int_equal(b->payload_bytes, 1 + 2 + 3 + 0 + 5);
    for (int i = 0; i < FIXED_TXS_N; i++) {
        assert_int_equal(b->txs[i].ns, sorted[i].ns);
        assert_int_equal(b->txs[i].len, sorted[i].len);
        assert_memory_equal(b->txs[i].data, sorted[i].data, sorted[i].len);
        assert_true(seq_hash_eq(&b->txs[i].id, &sorted[i].id));
        assert_true(b->txs[i].data >= b->arena && b->txs[i].data <= b->arena + b->payload_bytes);
    }
    assert_hex(b->h.payload_root.b, SEQ_HASH_BYTES,
               "d97def951188b2ec8a20b8ade1ec9fa2368f33ecec9a35d8353d4187f7df3ac6");
    assert_hex(b->hash.b, SEQ_HASH_BYTES, "4bcee16fcb82e7df6ce23e54ca46204856214d92e1210a155a3b27beca9af485");
    seq_hash hh;
    seq_header_hash(&b->h, &hh);
    assert_true(seq_hash_eq(&hh, &b->hash));
    seq_block_free(b);
}

static void assert_blocks_equal(const seq_block *a, const seq_block *b);

/* build_ided takes the ids as given: with the right ones it gives the very
 * block build gives (same hash, pinned above); a wrong one is carried into
 * the block, and so into its payload root, instead of being hashed away, and
 * seq_block_new, as a peer receiving it, refuses the result. */
static void test_block_build_ided_takes_ids(void **state)
{
    (void)state;
    seq_tx txs[FIXED_TXS_N];
    fixed_txs(txs);
    seq_header tmpl = fixed_header();
    seq_block *hashed = NULL, *ided = NULL, *wrong = NULL, *received = NULL;
    assert_int_equal(seq_block_build(&hashed, &tmpl, txs, FIXED_TXS_N), 0);
    assert_int_equal(seq_block_build_ided(&ided, &tmpl, txs, FIXED_TXS_N), 0);
    assert_blocks_equal(ided, hashed);
    assert_true(seq_hash_eq(&ided->h.payload_root, &hashed->h.payload_root));

    memset(txs[2].id.b, 0xee, SEQ_HASH_BYTES);
    assert_int_equal(seq_block_build_ided(&wrong, &tmpl, txs, FIXED_TXS_N), 0);
    assert_false(seq_hash_eq(&wrong->h.payload_root, &hashed->h.payload_root));
    bool carried = false;
    for (uint32_t i = 0; i < wrong->tx_count; i++)
        carried |= wrong->txs[i].id.b[0] == 0xee && wrong->txs[i].id.b[31] == 0xee;
    assert_true(carried);
    assert_int_not_equal(seq_block_new(&received, &wrong->h, wrong->txs, wrong->tx_count), 0);
    assert_null(received);
    seq_block_free(hashed);
    seq_block_free(ided);
    seq_block_free(wrong);
}

static void assert_blocks_equal(const seq_block *a, const seq_block *b)
{
    assert_true(seq_hash_eq(&a->hash, &b->hash));
    assert_int_equal(a->tx_count, b->tx_count);
    assert_int_equal(a->payload_bytes, b->payload_bytes);
    for (uint32_t i = 0; i < a->tx_count; i++) {
        assert_int_equal(a->txs[i].ns, b->txs[i].ns);
        assert_int_equal(a->txs[i].len, b->txs[i].len);
        assert_memory_equal(a->txs[i].data, b->txs[i].data, a->txs[i].len);
        assert_true(seq_hash_eq(&a->txs[i].id, &b->txs[i].id));
    }
}

/* encode/decode round-trips (also for an empty block), the decoded block owns
 * its payloads, clone is deep, and truncated or trailing input is refused. */
static void test_block_encode_decode_round_trip(void **state)
{
    (void)state;
    seq_tx txs[FIXED_TXS_N];
    fixed_txs(txs);
    seq_header tmpl = fixed_header();
    for (uint32_t n = 0; n <= FIXED_TXS_N; n += FIXED_TXS_N) {
        seq_block *b = NULL, *d = NULL;
        assert_int_equal(seq_block_build(&b, &tmpl, txs, n), 0);
        size_t size = seq_block_encoded_size(b);
        assert_int_equal(size, SEQ_HEADER_BYTES + n * SEQ_TX_HEADER_BYTES + b->payload_bytes);
        uint8_t *buf = malloc(size + 1);
        assert_non_null(buf);
        seq_block_encode(b, buf);
        assert_int_equal(seq_block_decode(&d, buf, size), 0);
        assert_blocks_equal(b, d);

        for (size_t cut = 0; cut < size; cut++) {
            seq_block *bad = NULL;
            assert_int_equal(seq_block_decode(&bad, buf, cut), SEQ_EDECODE);
            assert_null(bad);
        }
        buf[size] = 0;
        seq_block *bad = NULL;
        assert_int_equal(seq_block_decode(&bad, buf, size + 1), SEQ_EDECODE);

        seq_block *c = seq_block_clone(d);
        assert_non_null(c);
        /* Neither the decoded block nor its clone borrows from the input. */
        memset(buf, 0, size);
        assert_blocks_equal(b, d);
        seq_block_free(d);
        assert_blocks_equal(b, c);
        seq_block_free(c);
        free(buf);
        seq_block_free(b);
    }
}

/* seq_block_new accepts a correct block and rejects a wrong root, a wrong
 * tx_count, unsorted namespaces, a duplicate tx and an oversize payload,
 * each with its documented code. */
static void test_block_new_rejects_bad_blocks(void **state)
{
    (void)state;
    seq_tx txs[FIXED_TXS_N];
    fixed_txs(txs);
    seq_header tmpl = fixed_header();
    seq_block *good = NULL, *b = NULL;
    assert_int_equal(seq_block_build(&good, &tmpl, txs, FIXED_TXS_N), 0);
    seq_header h = good->h;

    assert_int_equal(seq_block_new(&b, &h, txs, FIXED_TXS_N), 0);
    assert_true(seq_hash_eq(&b->hash, &good->hash));
    seq_block_free(b);
    b = NULL;

    seq_header wrong_root = h;
    wrong_root.payload_root.b[0] ^= 1;
    assert_int_equal(seq_block_new(&b, &wrong_root, txs, FIXED_TXS_N), SEQ_EMISMATCH);
    /* Also a changed payload under the original root. */
    seq_tx changed[FIXED_TXS_N];
    memcpy(changed, txs, sizeof changed);
    changed[2].data = (const uint8_t *)"ccd";
    assert_int_equal(seq_block_new(&b, &h, changed, FIXED_TXS_N), SEQ_EMISMATCH);

    seq_header wrong_count = h;
    wrong_count.tx_count = FIXED_TXS_N - 1;
    assert_int_equal(seq_block_new(&b, &wrong_count, txs, FIXED_TXS_N), SEQ_EMISMATCH);

    seq_tx unsorted[FIXED_TXS_N];
    memcpy(unsorted, txs, sizeof unsorted);
    unsorted[2] = txs[3];
    unsorted[3] = txs[2];
    assert_int_equal(seq_block_new(&b, &h, unsorted, FIXED_TXS_N), SEQ_EORDER);

    /* A duplicate under a root computed over the duplicate: only the dup
     * check can catch it. */
    seq_tx dup[3] = {txs[0], txs[1], txs[1]};
    seq_header dup_h = h;
    dup_h.tx_count = 3;
    assert_int_equal(seq_payload_root(dup, 3, &dup_h.payload_root), 0);
    assert_int_equal(seq_block_new(&b, &dup_h, dup, 3), SEQ_EDUPLICATE);
    assert_int_equal(seq_block_build(&b, &tmpl, dup, 3), SEQ_EDUPLICATE);

    uint8_t *big = calloc(1, SEQ_TX_PAYLOAD_BYTES_MAX + 1);
    assert_non_null(big);
    seq_tx over = {.ns = 1, .len = SEQ_TX_PAYLOAD_BYTES_MAX + 1, .data = big};
    seq_header over_h = h;
    over_h.tx_count = 1;
    assert_int_equal(seq_block_new(&b, &over_h, &over, 1), SEQ_ETOOBIG);
    assert_int_equal(seq_block_build(&b, &tmpl, &over, 1), SEQ_ETOOBIG);
    /* Exactly at the limit is fine. */
    over.len = SEQ_TX_PAYLOAD_BYTES_MAX;
    assert_int_equal(seq_block_build(&b, &tmpl, &over, 1), 0);
    seq_block_free(b);
    free(big);

    b = NULL;
    seq_header many = h;
    many.tx_count = SEQ_BLOCK_TXS_MAX + 1;
    assert_int_equal(seq_block_new(&b, &many, txs, SEQ_BLOCK_TXS_MAX + 1), SEQ_ETOOBIG);
    assert_null(b);
    seq_block_free(good);
}

/* seq_block_new_ided trusts the ids it is given and checks everything else:
 * with the payloads' own ids it gives the block seq_block_new gives (hash,
 * ids, payloads, its own copy of them); one wrong id changes the root it
 * computes and is SEQ_EMISMATCH where seq_block_new, hashing, accepts; ids
 * that are not the payloads' but consistent with the header (built by
 * seq_block_build_ided) are carried, not hashed again, where seq_block_new
 * refuses; order, count and duplicates give seq_block_new's codes. */
static void test_block_new_ided_trusts_ids_checks_root(void **state)
{
    (void)state;
    /* Payloads in writable buffers, to show the block keeps its own copy. */
    char bufs[FIXED_TXS_N][8] = {"a", "bb", "ccc", "", "eeeee"};
    seq_tx txs[FIXED_TXS_N];
    fixed_txs(txs);
    for (int i = 0; i < FIXED_TXS_N; i++)
        txs[i].data = (const uint8_t *)bufs[i];
    seq_header tmpl = fixed_header();
    seq_block *good = NULL, *b = NULL;
    assert_int_equal(seq_block_build(&good, &tmpl, txs, FIXED_TXS_N), 0);
    const seq_header h = good->h;

    assert_int_equal(seq_block_new_ided(&b, &h, txs, FIXED_TXS_N), 0);
    assert_blocks_equal(b, good);
    assert_true(seq_hash_eq(&b->h.payload_root, &good->h.payload_root));
    memset(bufs, 'z', sizeof bufs); /* as a mempool moves on */
    assert_blocks_equal(b, good);
    seq_block_free(b);
    b = NULL;
    for (int i = 0; i < FIXED_TXS_N; i++)
        memcpy(bufs[i], good->txs[i].data, good->txs[i].len);

    /* One id that is not its payload's: the root is computed over the ids
     * as given, so it no longer matches. seq_block_new hashes the payload
     * and never sees the wrong id. */
    seq_tx wrong[FIXED_TXS_N];
    memcpy(wrong, txs, sizeof wrong);
    wrong[2].id.b[0] ^= 1;
    assert_int_equal(seq_block_new_ided(&b, &h, wrong, FIXED_TXS_N), SEQ_EMISMATCH);
    assert_null(b);
    assert_int_equal(seq_block_new(&b, &h, wrong, FIXED_TXS_N), 0);
    assert_true(seq_hash_eq(&b->hash, &good->hash));
    seq_block_free(b);
    b = NULL;

    /* Ids that are not the payloads' at all, but are those the header's root
     * was computed over: accepted and carried as given (not hashed again). */
    seq_tx other[FIXED_TXS_N];
    memcpy(other, txs, sizeof other);
    for (int i = 0; i < FIXED_TXS_N; i++)
        memset(other[i].id.b, 0x10 + i, SEQ_HASH_BYTES);
    seq_block *odd = NULL;
    assert_int_equal(seq_block_build_ided(&odd, &tmpl, other, FIXED_TXS_N), 0);
    assert_false(seq_hash_eq(&odd->h.payload_root, &h.payload_root));
    assert_int_equal(seq_block_new_ided(&b, &odd->h, other, FIXED_TXS_N), 0);
    assert_true(seq_hash_eq(&b->hash, &odd->hash));
    for (uint32_t i = 0; i < FIXED_TXS_N; i++)
        assert_true(seq_hash_eq(&b->txs[i].id, &other[i].id));
    seq_block_free(b);
    b = NULL;
    assert_int_equal(seq_block_new(&b, &odd->h, other, FIXED_TXS_N), SEQ_EMISMATCH);
    seq_block_free(odd);

    /* Out of namespace order, a wrong count, a duplicate, too many: the
     * same codes as seq_block_new's. */
    seq_tx unsorted[FIXED_TXS_N];
    memcpy(unsorted, txs, sizeof unsorted);
    unsorted[2] = txs[3];
    unsorted[3] = txs[2];
    assert_int_equal(seq_block_new(&b, &h, unsorted, FIXED_TXS_N), SEQ_EORDER);
    assert_int_equal(seq_block_new_ided(&b, &h, unsorted, FIXED_TXS_N), SEQ_EORDER);
    seq_header wrong_count = h;
    wrong_count.tx_count = FIXED_TXS_N - 1;
    assert_int_equal(seq_block_new_ided(&b, &wrong_count, txs, FIXED_TXS_N), SEQ_EMISMATCH);
    seq_tx dup[3] = {txs[0], txs[1], txs[1]};
    seq_header dup_h = h;
    dup_h.tx_count = 3;
    assert_int_equal(seq_payload_root(dup, 3, &dup_h.payload_root), 0);
    assert_int_equal(seq_block_new_ided(&b, &dup_h, dup, 3), SEQ_EDUPLICATE);
    seq_header many = h;
    many.tx_count = SEQ_BLOCK_TXS_MAX + 1;
    assert_int_equal(seq_block_new_ided(&b, &many, txs, SEQ_BLOCK_TXS_MAX + 1), SEQ_ETOOBIG);
    assert_null(b);

    /* An empty block. */
    seq_block *empty = NULL;
    assert_int_equal(seq_block_build(&empty, &tmpl, NULL, 0), 0);
    assert_int_equal(seq_block_new_ided(&b, &empty->h, NULL, 0), 0);
    assert_true(seq_hash_eq(&b->hash, &empty->hash));
    seq_block_free(b);
    seq_block_free(empty);
    seq_block_free(good);
}

/* ---- validators -------------------------------------------------------------- */

/* init rejects n = 0, n > max and a repeated key; f = (n-1)/3 and q = n - f
 * for n = 1, 4, 7, 10; find returns the index or -1. */
static void test_validators_init(void **state)
{
    (void)state;
    seq_pubkey pks[SEQ_VALIDATORS_MAX + 1];
    memset(pks, 0, sizeof pks);
    for (uint32_t i = 0; i < SEQ_VALIDATORS_MAX + 1; i++)
        seq_put_u32be(pks[i].b, i + 1);
    seq_validators vs;
    assert_int_equal(seq_validators_init(&vs, pks, 0), SEQ_EINVAL);
    assert_int_equal(seq_validators_init(&vs, pks, SEQ_VALIDATORS_MAX + 1), SEQ_EINVAL);
    assert_int_equal(seq_validators_init(&vs, pks, SEQ_VALIDATORS_MAX), 0);
    assert_int_equal(vs.n, SEQ_VALIDATORS_MAX);

    seq_pubkey dup[4] = {pks[0], pks[1], pks[2], pks[1]};
    assert_int_equal(seq_validators_init(&vs, dup, 4), SEQ_EDUPLICATE);

    static const uint32_t ns[] = {1, 4, 7, 10};
    static const uint32_t fs[] = {0, 1, 2, 3};
    static const uint32_t qs[] = {1, 3, 5, 7};
    for (size_t i = 0; i < 4; i++) {
        seq_pubkey real[KEYS_N];
        for (uint32_t k = 0; k < ns[i]; k++)
            real[k] = keys[k]->pk;
        assert_int_equal(seq_validators_init(&vs, real, ns[i]), 0);
        assert_int_equal(vs.n, ns[i]);
        assert_int_equal(vs.f, fs[i]);
        assert_int_equal(vs.q, qs[i]);
        assert_int_equal(seq_validators_find(&vs, &keys[ns[i] - 1]->pk), (int)ns[i] - 1);
    }
    assert_int_equal(seq_validators_find(&vs4, &keys[2]->pk), 2);
    assert_int_equal(seq_validators_find(&vs4, &keys[4]->pk), -1);
    assert_int_equal(seq_leader_of(&vs4, 9), 1);
}

/* ---- votes --------------------------------------------------------------------- */

/* The notarize preimage is exactly "seq/notarize/v1" || chain BE || view BE ||
 * hash; nullify has no hash; changing kind, chain, view or hash changes it. */
static void test_vote_preimages(void **state)
{
    (void)state;
    seq_hash h1, h2;
    memset(h1.b, 0xab, SEQ_HASH_BYTES);
    memset(h2.b, 0xab, SEQ_HASH_BYTES);
    h2.b[31] = 0xac;
    uint8_t p[SEQ_PREIMAGE_BYTES_MAX];
    size_t len = seq_vote_preimage(p, SEQ_VOTE_NOTARIZE, 0x0102030405060708ull, 0x1112131415161718ull, &h1);
    assert_int_equal(len, 15 + 8 + 8 + 32);
    assert_memory_equal(p, "seq/notarize/v1", 15);
    const uint8_t nums[16] = {1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18};
    assert_memory_equal(p + 15, nums, 16);
    assert_memory_equal(p + 31, h1.b, 32);

    len = seq_vote_preimage(p, SEQ_VOTE_NULLIFY, 0x0102030405060708ull, 0x1112131415161718ull, NULL);
    assert_int_equal(len, 14 + 16);
    assert_memory_equal(p, "seq/nullify/v1", 14);
    assert_memory_equal(p + 14, nums, 16);
    len = seq_vote_preimage(p, SEQ_VOTE_FINALIZE, 1, 2, &h1);
    assert_int_equal(len, 15 + 16 + 32);
    assert_memory_equal(p, "seq/finalize/v1", 15);

    /* Every variant differs from every other. */
    enum { VARIANTS = 6 };
    uint8_t pre[VARIANTS][SEQ_PREIMAGE_BYTES_MAX];
    size_t lens[VARIANTS];
    lens[0] = seq_vote_preimage(pre[0], SEQ_VOTE_NOTARIZE, 1, 5, &h1);
    lens[1] = seq_vote_preimage(pre[1], SEQ_VOTE_FINALIZE, 1, 5, &h1);
    lens[2] = seq_vote_preimage(pre[2], SEQ_VOTE_NULLIFY, 1, 5, &h1);
    lens[3] = seq_vote_preimage(pre[3], SEQ_VOTE_NOTARIZE, 2, 5, &h1);
    lens[4] = seq_vote_preimage(pre[4], SEQ_VOTE_NOTARIZE, 1, 6, &h1);
    lens[5] = seq_vote_preimage(pre[5], SEQ_VOTE_NOTARIZE, 1, 5, &h2);
    for (int i = 0; i < VARIANTS; i++)
        for (int j = i + 1; j < VARIANTS; j++)
            assert_false(lens[i] == lens[j] && memcmp(pre[i], pre[j], lens[i]) == 0);
    assert_string_equal(seq_vote_kind_name(SEQ_VOTE_NULLIFY), "nullify");
}

static seq_vote make_vote(int kind, uint64_t view, const seq_hash *hash, uint32_t signer)
{
    seq_vote v;
    memset(&v, 0, sizeof v);
    v.kind = (uint8_t)kind;
    v.view = view;
    if (hash)
        v.hash = *hash;
    v.signer = signer;
    seq_vote_sign(&v, keys[signer], CHAIN_ID);
    return v;
}

/* A signed vote verifies; another chain, view, hash, kind, signer index or a
 * flipped signature bit fails with the documented code. */
static void test_vote_sign_verify(void **state)
{
    (void)state;
    seq_hash h;
    memset(h.b, 7, SEQ_HASH_BYTES);
    seq_vote v = make_vote(SEQ_VOTE_NOTARIZE, 10, &h, 2);
    assert_int_equal(seq_vote_verify(&v, &vs4, CHAIN_ID), 0);
    assert_int_equal(seq_vote_verify(&v, &vs4, CHAIN_ID + 1), SEQ_EBADSIG);

    seq_vote bad = v;
    bad.view++;
    assert_int_equal(seq_vote_verify(&bad, &vs4, CHAIN_ID), SEQ_EBADSIG);
    bad = v;
    bad.hash.b[0] ^= 1;
    assert_int_equal(seq_vote_verify(&bad, &vs4, CHAIN_ID), SEQ_EBADSIG);
    bad = v;
    bad.kind = SEQ_VOTE_FINALIZE;
    assert_int_equal(seq_vote_verify(&bad, &vs4, CHAIN_ID), SEQ_EBADSIG);
    bad = v;
    bad.signer = 1;
    assert_int_equal(seq_vote_verify(&bad, &vs4, CHAIN_ID), SEQ_EBADSIG);
    bad = v;
    bad.signer = 4;
    assert_int_equal(seq_vote_verify(&bad, &vs4, CHAIN_ID), SEQ_EUNKNOWN_SIGNER);
    bad = v;
    bad.sig.b[10] ^= 0x04;
    assert_int_equal(seq_vote_verify(&bad, &vs4, CHAIN_ID), SEQ_EBADSIG);
    bad = v;
    bad.kind = 0;
    assert_int_equal(seq_vote_verify(&bad, &vs4, CHAIN_ID), SEQ_EINVAL);

    seq_vote null = make_vote(SEQ_VOTE_NULLIFY, 10, NULL, 3);
    assert_int_equal(seq_vote_verify(&null, &vs4, CHAIN_ID), 0);
    null.hash.b[5] = 1;
    assert_int_equal(seq_vote_verify(&null, &vs4, CHAIN_ID), SEQ_EMISMATCH);
}

/* ---- certificates ----------------------------------------------------------------- */

static const uint64_t cert_view = 77;

static seq_hash cert_hash(void)
{
    seq_hash h;
    for (int i = 0; i < SEQ_HASH_BYTES; i++)
        h.b[i] = (uint8_t)(i * 3 + 1);
    return h;
}

/* A notarization by validators 0, 1, 3 of vs4 (q = 3), built from votes given
 * out of signer order. */
static seq_cert good_cert(void)
{
    seq_hash h = cert_hash();
    seq_vote votes[3] = {
        make_vote(SEQ_VOTE_NOTARIZE, cert_view, &h, 3),
        make_vote(SEQ_VOTE_NOTARIZE, cert_view, &h, 0),
        make_vote(SEQ_VOTE_NOTARIZE, cert_view, &h, 1),
    };
    seq_cert c;
    assert_int_equal(seq_cert_build(&c, &vs4, votes, 3), 0);
    return c;
}

/* Removes signer s's bit and signature, keeping the rest in order. */
static void cert_drop_signer(seq_cert *c, uint32_t s)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < s; i++)
        k += seq_bitmap_get(c->bitmap, i);
    assert_true(seq_bitmap_get(c->bitmap, s));
    c->bitmap[s / 8] &= (uint8_t)~(1u << (s % 8));
    memmove(&c->sigs[k], &c->sigs[k + 1], (c->sig_count - k - 1) * sizeof c->sigs[0]);
    c->sig_count--;
}

/* build orders signatures by signer and sets the bitmap; the certificate
 * verifies, and so do a full one and a nullification. */
static void test_cert_build_and_verify(void **state)
{
    (void)state;
    seq_cert c = good_cert();
    assert_int_equal(c.kind, SEQ_VOTE_NOTARIZE);
    assert_int_equal(c.view, cert_view);
    assert_int_equal(c.sig_count, 3);
    assert_int_equal(seq_cert_signers(&c), 3);
    assert_int_equal(c.bitmap[0], 0x0b);
    seq_hash h = cert_hash();
    seq_vote v0 = make_vote(SEQ_VOTE_NOTARIZE, cert_view, &h, 0);
    assert_memory_equal(c.sigs[0].b, v0.sig.b, SEQ_SIG_BYTES); /* ed25519 is deterministic */
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), 0);

    seq_vote all[4];
    for (uint32_t i = 0; i < 4; i++)
        all[i] = make_vote(SEQ_VOTE_FINALIZE, cert_view, &h, i);
    assert_int_equal(seq_cert_build(&c, &vs4, all, 4), 0);
    assert_int_equal(c.bitmap[0], 0x0f);
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), 0);

    seq_vote nulls[3];
    for (uint32_t i = 0; i < 3; i++)
        nulls[i] = make_vote(SEQ_VOTE_NULLIFY, cert_view, NULL, i + 1);
    assert_int_equal(seq_cert_build(&c, &vs4, nulls, 3), 0);
    assert_true(seq_hash_is_zero(&c.hash));
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), 0);
    c.hash.b[0] = 1;
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), SEQ_EMISMATCH);
}

/* verify rejects every bad variant of a good certificate with its code. */
static void test_cert_verify_rejects_every_bad_case(void **state)
{
    (void)state;
    const seq_cert good = good_cert();
    seq_cert c;

    for (uint32_t k = 0; k < good.sig_count; k++) {
        c = good;
        c.sigs[k].b[k * 7] ^= 0x01;
        assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), SEQ_EBADSIG);
    }

    c = good;
    cert_drop_signer(&c, 1);
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), SEQ_EQUORUM);

    /* A fourth "signer" at index 4 of a 4-validator set. */
    c = good;
    seq_bitmap_set(c.bitmap, 4);
    c.sigs[c.sig_count++] = good.sigs[0];
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), SEQ_EUNKNOWN_SIGNER);
    c = good;
    seq_bitmap_set(c.bitmap, SEQ_VALIDATORS_MAX - 1);
    c.sigs[c.sig_count++] = good.sigs[0];
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), SEQ_EUNKNOWN_SIGNER);

    c = good;
    c.sig_count++;
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), SEQ_EDECODE);
    c = good;
    c.sig_count--;
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), SEQ_EDECODE);
    c = good;
    c.sig_count = UINT32_MAX;
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), SEQ_EDECODE);

    assert_int_equal(seq_cert_verify(&good, &vs4, CHAIN_ID + 1), SEQ_EBADSIG);
    c = good;
    c.view++;
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), SEQ_EBADSIG);
    c = good;
    c.hash.b[31] ^= 0x80;
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), SEQ_EBADSIG);
    c = good;
    c.kind = SEQ_VOTE_FINALIZE;
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), SEQ_EBADSIG);
    c = good;
    c.kind = 9;
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), SEQ_EINVAL);

    /* Signatures must be in ascending signer order. */
    c = good;
    seq_sig t = c.sigs[0];
    c.sigs[0] = c.sigs[1];
    c.sigs[1] = t;
    assert_int_equal(seq_cert_verify(&c, &vs4, CHAIN_ID), SEQ_EBADSIG);

    /* The untouched certificate still verifies: the cases above were real. */
    assert_int_equal(seq_cert_verify(&good, &vs4, CHAIN_ID), 0);
}

/* build rejects a repeated signer, mixed kind/view/hash, too few votes and an
 * unknown signer. */
static void test_cert_build_rejects(void **state)
{
    (void)state;
    seq_hash h = cert_hash(), other = cert_hash();
    other.b[0] ^= 1;
    seq_cert c;
    seq_vote votes[3] = {
        make_vote(SEQ_VOTE_NOTARIZE, cert_view, &h, 0),
        make_vote(SEQ_VOTE_NOTARIZE, cert_view, &h, 1),
        make_vote(SEQ_VOTE_NOTARIZE, cert_view, &h, 0),
    };
    assert_int_equal(seq_cert_build(&c, &vs4, votes, 3), SEQ_EDUP_SIGNER);

    votes[2] = make_vote(SEQ_VOTE_NOTARIZE, cert_view, &other, 2);
    assert_int_equal(seq_cert_build(&c, &vs4, votes, 3), SEQ_EMISMATCH);
    votes[2] = make_vote(SEQ_VOTE_NOTARIZE, cert_view + 1, &h, 2);
    assert_int_equal(seq_cert_build(&c, &vs4, votes, 3), SEQ_EMISMATCH);
    votes[2] = make_vote(SEQ_VOTE_FINALIZE, cert_view, &h, 2);
    assert_int_equal(seq_cert_build(&c, &vs4, votes, 3), SEQ_EMISMATCH);

    votes[2] = make_vote(SEQ_VOTE_NOTARIZE, cert_view, &h, 2);
    assert_int_equal(seq_cert_build(&c, &vs4, votes, 2), SEQ_EQUORUM);
    assert_int_equal(seq_cert_build(&c, &vs4, votes, 0), SEQ_EQUORUM);
    votes[1] = make_vote(SEQ_VOTE_NOTARIZE, cert_view, &h, 5);
    assert_int_equal(seq_cert_build(&c, &vs4, votes, 3), SEQ_EUNKNOWN_SIGNER);
}

/* encode/decode round-trips exactly; every truncation, a trailing byte, a bad
 * kind and an impossible sig_count are SEQ_EDECODE. */
static void test_cert_encode_decode(void **state)
{
    (void)state;
    const seq_cert good = good_cert();
    size_t size = seq_cert_encoded_size(&good);
    assert_int_equal(size, 1 + 8 + 32 + SEQ_BITMAP_BYTES + 4 + 3 * SEQ_SIG_BYTES);
    uint8_t buf[1 + 8 + 32 + SEQ_BITMAP_BYTES + 4 + 3 * SEQ_SIG_BYTES + 1];
    seq_cert_encode(&good, buf);
    assert_int_equal(buf[0], SEQ_VOTE_NOTARIZE);
    assert_int_equal(seq_get_u64be(buf + 1), cert_view);
    assert_int_equal(buf[41], 0x0b);
    assert_int_equal(seq_get_u32be(buf + 41 + SEQ_BITMAP_BYTES), 3);

    seq_cert back;
    assert_int_equal(seq_cert_decode(&back, buf, size), 0);
    assert_int_equal(back.kind, good.kind);
    assert_int_equal(back.view, good.view);
    assert_true(seq_hash_eq(&back.hash, &good.hash));
    assert_memory_equal(back.bitmap, good.bitmap, SEQ_BITMAP_BYTES);
    assert_int_equal(back.sig_count, good.sig_count);
    assert_memory_equal(back.sigs, good.sigs, 3 * sizeof good.sigs[0]);
    assert_int_equal(seq_cert_verify(&back, &vs4, CHAIN_ID), 0);

    for (size_t cut = 0; cut < size; cut++)
        assert_int_equal(seq_cert_decode(&back, buf, cut), SEQ_EDECODE);
    buf[size] = 0;
    assert_int_equal(seq_cert_decode(&back, buf, size + 1), SEQ_EDECODE);

    uint8_t bad[sizeof buf];
    memcpy(bad, buf, size);
    bad[0] = 0;
    assert_int_equal(seq_cert_decode(&back, bad, size), SEQ_EDECODE);
    memcpy(bad, buf, size);
    seq_put_u32be(bad + 41 + SEQ_BITMAP_BYTES, SEQ_VALIDATORS_MAX + 1);
    assert_int_equal(seq_cert_decode(&back, bad, size), SEQ_EDECODE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tx_id_known_answer),
        cmocka_unit_test(test_header_layout_and_hash),
        cmocka_unit_test(test_payload_root_known_answers),
        cmocka_unit_test(test_payload_root_matches_recursive_reference),
        cmocka_unit_test(test_block_build_sorts_stably),
        cmocka_unit_test(test_block_build_ided_takes_ids),
        cmocka_unit_test(test_block_encode_decode_round_trip),
        cmocka_unit_test(test_block_new_rejects_bad_blocks),
        cmocka_unit_test(test_block_new_ided_trusts_ids_checks_root),
        cmocka_unit_test(test_validators_init),
        cmocka_unit_test(test_vote_preimages),
        cmocka_unit_test(test_vote_sign_verify),
        cmocka_unit_test(test_cert_build_and_verify),
        cmocka_unit_test(test_cert_verify_rejects_every_bad_case),
        cmocka_unit_test(test_cert_build_rejects),
        cmocka_unit_test(test_cert_encode_decode),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
