/* Unit tests of namespace proofs (lib/nsproof.h): pinned vectors checked
 * against a second, byte-level model of the types.h tree; every namespace and
 * every range of blocks of 0..40 transactions; and tampering of each part of
 * a proof, which must always be refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errors.h"
#include "nmt.h"
#include "nsproof.h"
#include "types.h"

#define N_MAX 40
#define PAYLOAD_CHARS 16

/* ---- helpers --------------------------------------------------------------- */

static void assert_hex(const void *data, size_t len, const char *want)
{
    char hex[2 * SEQ_HASH_BYTES + 1];
    assert_true(len <= SEQ_HASH_BYTES);
    seq_hex(hex, data, len);
    assert_string_equal(hex, want);
}

/* Namespaces in runs of 1, 3, 2, 5, 1, 4, ... transactions: 10, 20, 30, ...
 * so that 5, 15, 25, ... are absent between them. */
static seq_ns runs_ns(uint32_t i)
{
    static const uint32_t runs[] = {1, 3, 2, 5, 1, 4};
    uint32_t run = 0;
    while (i >= runs[run % 6])
        i -= runs[run % 6], run++;
    return 10 * (seq_ns)(run + 1);
}

static seq_ns single_ns(uint32_t i)
{
    (void)i;
    return 10;
}

/* A block of n transactions "tx-<i>" whose namespaces come from ns_of. */
static seq_block *make_block(uint32_t n, seq_ns (*ns_of)(uint32_t))
{
    char payloads[N_MAX][PAYLOAD_CHARS];
    seq_tx txs[N_MAX];
    assert_true(n <= N_MAX);
    for (uint32_t i = 0; i < n; i++) {
        snprintf(payloads[i], PAYLOAD_CHARS, "tx-%u", i);
        txs[i] = (seq_tx){.ns = ns_of(i), .len = (uint32_t)strlen(payloads[i]), .data = (uint8_t *)payloads[i]};
    }
    seq_header tmpl = {.chain_id = 7, .height = 1};
    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, &tmpl, txs, n), 0);
    return b;
}

/* An exact-size heap copy of b->txs[start .. start+count), so that ASan
 * catches a verifier reading past the range (NULL for an empty range). */
static seq_tx *range_copy(const seq_block *b, uint32_t start, uint32_t count)
{
    if (count == 0)
        return NULL;
    seq_tx *out = malloc(count * sizeof *out);
    assert_non_null(out);
    memcpy(out, b->txs + start, count * sizeof *out);
    return out;
}

static seq_tx make_tx(seq_ns ns, const char *payload)
{
    seq_tx tx = {.ns = ns, .len = (uint32_t)strlen(payload), .data = (const uint8_t *)payload};
    seq_tx_compute_id(&tx);
    return tx;
}

/* ---- an independent model of the types.h tree, straight on libsodium ------- */

typedef struct {
    uint64_t min, max;
    uint8_t d[32];
} ref_node;

static void be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void ref_tx_id(uint8_t out[32], uint64_t ns, const char *payload)
{
    uint8_t buf[12 + PAYLOAD_CHARS];
    size_t len = strlen(payload);
    be64(buf, ns);
    buf[8] = 0, buf[9] = 0, buf[10] = 0, buf[11] = (uint8_t)len;
    memcpy(buf + 12, payload, len);
    crypto_generichash(out, 32, buf, 12 + len, NULL, 0);
}

static ref_node ref_leaf(uint64_t ns, const char *payload)
{
    uint8_t buf[1 + 8 + 32];
    buf[0] = 0x00;
    be64(buf + 1, ns);
    ref_tx_id(buf + 9, ns, payload);
    ref_node n = {.min = ns, .max = ns};
    crypto_generichash(n.d, 32, buf, sizeof buf, NULL, 0);
    return n;
}

static void ref_put(uint8_t *p, const ref_node *n)
{
    be64(p, n->min);
    be64(p + 8, n->max);
    memcpy(p + 16, n->d, 32);
}

static ref_node ref_inner(ref_node l, ref_node r)
{
    uint8_t buf[1 + 48 + 48];
    buf[0] = 0x01;
    ref_put(buf + 1, &l);
    ref_put(buf + 49, &r);
    ref_node n = {.min = l.min < r.min ? l.min : r.min, .max = l.max > r.max ? l.max : r.max};
    crypto_generichash(n.d, 32, buf, sizeof buf, NULL, 0);
    return n;
}

static void ref_root(uint8_t out[32], ref_node top)
{
    uint8_t buf[1 + 48];
    buf[0] = 0x02;
    ref_put(buf + 1, &top);
    crypto_generichash(out, 32, buf, sizeof buf, NULL, 0);
}

static void assert_node_is(const seq_nmt_node *got, const ref_node *want, const char *digest_hex)
{
    assert_int_equal(got->min, want->min);
    assert_int_equal(got->max, want->max);
    assert_memory_equal(got->digest.b, want->d, 32);
    assert_hex(got->digest.b, SEQ_HASH_BYTES, digest_hex);
}

/* ---- known answers ------------------------------------------------------------- */

#define KAT_N 7
static const seq_ns kat_ns[KAT_N] = {1, 1, 2, 3, 3, 3, 5};
static const char *const kat_payloads[KAT_N] = {"a", "b", "c", "d", "e", "f", "g"};

static seq_block *kat_block(void)
{
    seq_tx txs[KAT_N];
    for (int i = 0; i < KAT_N; i++)
        txs[i] = make_tx(kat_ns[i], kat_payloads[i]);
    seq_header tmpl = {.chain_id = 7, .height = 1};
    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, &tmpl, txs, KAT_N), 0);
    return b;
}

/* Seven transactions in namespaces 1,1,2,3,3,3,5 (split 4|3, then 2|2 and
 * 2|1): the root, the proof of namespace 3 (nodes [0,2), [2,3), [6,7)) and
 * the absence proof of namespace 4 (nodes [0,4), [4,6), [6,7)) equal both the
 * pinned hex and the byte-level model above. */
static void test_known_answers(void **state)
{
    (void)state;
    ref_node leaf[KAT_N];
    for (int i = 0; i < KAT_N; i++)
        leaf[i] = ref_leaf(kat_ns[i], kat_payloads[i]);
    ref_node n01 = ref_inner(leaf[0], leaf[1]), n23 = ref_inner(leaf[2], leaf[3]);
    ref_node n45 = ref_inner(leaf[4], leaf[5]);
    ref_node n03 = ref_inner(n01, n23), n46 = ref_inner(n45, leaf[6]);
    uint8_t want_root[32];
    ref_root(want_root, ref_inner(n03, n46));

    seq_block *b = kat_block();
    assert_memory_equal(b->h.payload_root.b, want_root, 32);
    assert_hex(b->h.payload_root.b, SEQ_HASH_BYTES,
               "f2a18c17d204cf519d37c0ace659ee065ea33b5f4264411c3a0ca93bb6f0ec72");

    seq_nsproof p;
    assert_int_equal(seq_nsproof_build(b, 3, &p), 0);
    assert_int_equal(p.start, 3);
    assert_int_equal(p.count, 3);
    assert_int_equal(p.node_count, 3);
    assert_node_is(&p.nodes[0], &n01, "ae9e0dbadc9dbdb872bc74fc1c5e14b6728ad28dc28bd49fd29778ac21f053cf");
    assert_node_is(&p.nodes[1], &leaf[2], "2cac87987499c51f92d2bf89a5c8a9892cb49902a532182938ca318da45617d6");
    assert_node_is(&p.nodes[2], &leaf[6], "822ddd22861f5af78692d5886ab3ff9b04abcb865d6acc15309af5b879181b45");
    assert_int_equal(seq_nsproof_verify_ns(&b->h, 3, b->txs + 3, &p), 0);

    assert_int_equal(seq_nsproof_build(b, 4, &p), 0);
    assert_int_equal(p.start, 6);
    assert_int_equal(p.count, 0);
    assert_int_equal(p.node_count, 3);
    assert_node_is(&p.nodes[0], &n03, "d2977c9fea7a459a607a0b6cba9d5a81f8366dda81951e03b30cb3395f67660b");
    assert_node_is(&p.nodes[1], &n45, "7307e118c03758fe361f33fd41be0579e78a4994fd632264537e0e4e00d5357e");
    assert_node_is(&p.nodes[2], &leaf[6], "822ddd22861f5af78692d5886ab3ff9b04abcb865d6acc15309af5b879181b45");
    assert_int_equal(seq_nsproof_verify_ns(&b->h, 4, NULL, &p), 0);

    /* The empty payload's root is BLAKE2b-256(0x03). */
    uint8_t tag = 0x03, want_empty[32];
    crypto_generichash(want_empty, 32, &tag, 1, NULL, 0);
    seq_hash empty;
    seq_nmt_empty_root(&empty);
    assert_memory_equal(empty.b, want_empty, 32);
    seq_block_free(b);
}

/* ---- every namespace, every range ----------------------------------------------- */

static uint32_t count_below(const seq_block *b, seq_ns ns)
{
    uint32_t k = 0;
    while (k < b->tx_count && b->txs[k].ns < ns)
        k++;
    return k;
}

/* Namespace ns of b: the proof names exactly its run, verifies from the
 * run's transactions alone, and a strict part of the run does not pass as
 * the whole namespace. */
static void check_namespace(const seq_block *b, seq_ns ns)
{
    uint32_t start = count_below(b, ns);
    uint32_t count = 0;
    while (start + count < b->tx_count && b->txs[start + count].ns == ns)
        count++;
    seq_nsproof p;
    assert_int_equal(seq_nsproof_build(b, ns, &p), 0);
    assert_int_equal(p.start, start);
    assert_int_equal(p.count, count);
    assert_true(p.node_count <= 2 * SEQ_NMT_DEPTH_MAX);
    seq_tx *txs = range_copy(b, start, count);
    assert_int_equal(seq_nsproof_verify_ns(&b->h, ns, txs, &p), 0);
    assert_int_equal(seq_nsproof_verify_ns_payloads(&b->h, ns, txs, &p), 0);
    if (count > 0) {
        assert_int_equal(seq_nsproof_verify_ns(&b->h, ns + 1, txs, &p), SEQ_EPROOF);
        /* An honest inclusion proof of all but the first, or all but the
         * last, transaction hides one: the namespace bounds refuse it. */
        seq_nsproof part;
        if (count > 1) {
            assert_int_equal(seq_nsproof_build_range(b, start, count - 1, &part), 0);
            assert_int_equal(seq_nsproof_verify_range(&b->h, txs, &part), 0);
            assert_int_equal(seq_nsproof_verify_ns(&b->h, ns, txs, &part), SEQ_EPROOF);
            assert_int_equal(seq_nsproof_build_range(b, start + 1, count - 1, &part), 0);
            assert_int_equal(seq_nsproof_verify_ns(&b->h, ns, txs + 1, &part), SEQ_EPROOF);
        }
        /* Nor does an empty range at the run's start (an absence claim). */
        assert_int_equal(seq_nsproof_build(b, ns - 1, &part), 0);
        assert_int_equal(part.start, start);
        assert_int_equal(seq_nsproof_verify_ns(&b->h, ns, NULL, &part), SEQ_EPROOF);
    }
    free(txs);
}

/* Every range [start, start+count) of b: inclusion proof round trip. */
static void check_all_ranges(const seq_block *b)
{
    for (uint32_t start = 0; start < b->tx_count; start++) {
        for (uint32_t count = 1; start + count <= b->tx_count; count++) {
            seq_nsproof p;
            assert_int_equal(seq_nsproof_build_range(b, start, count, &p), 0);
            assert_int_equal(p.start, start);
            assert_int_equal(p.count, count);
            assert_true(p.node_count <= 2 * SEQ_NMT_DEPTH_MAX);
            seq_tx *txs = range_copy(b, start, count);
            assert_int_equal(seq_nsproof_verify_range(&b->h, txs, &p), 0);
            free(txs);
        }
    }
}

/* For n = 0..40 and two namespace layouts: the block root equals
 * seq_payload_root, every namespace present (10, 20, ...) and absent (0, 5,
 * 15, ..., past the last, UINT64_MAX) round-trips build -> verify, and so
 * does every range. */
static void test_every_namespace_and_range(void **state)
{
    (void)state;
    seq_ns (*layouts[])(uint32_t) = {runs_ns, single_ns};
    for (size_t l = 0; l < 2; l++) {
        for (uint32_t n = 0; n <= N_MAX; n++) {
            seq_block *b = make_block(n, layouts[l]);
            seq_hash root;
            assert_int_equal(seq_payload_root(b->txs, n, &root), 0);
            assert_true(seq_hash_eq(&root, &b->h.payload_root));
            seq_ns last = n ? b->txs[n - 1].ns : 0;
            for (seq_ns ns = 0; ns <= last + 10; ns += 5)
                check_namespace(b, ns);
            check_namespace(b, UINT64_MAX);
            check_all_ranges(b);
            seq_block_free(b);
        }
    }
}

/* ---- tampering --------------------------------------------------------------------- */

/* 13 transactions: ns 10 at [0], 20 at [1,4), 30 at [4,6), 40 at [6,11),
 * 50 at [11], 60 at [12]. */
#define TAMPER_N 13
#define TAMPER_NS 40
#define TAMPER_START 6
#define TAMPER_COUNT 5

/* A macro so that a failure names the caller's line. */
#define expect_refused(h, ns, txs, p, want) assert_int_equal(seq_nsproof_verify_ns((h), (ns), (txs), (p)), (want))

/* Each node's digest, min and max flipped, nodes added, dropped or swapped,
 * and start moved are refused (SEQ_EPROOF), and malformed proofs are
 * SEQ_EINVAL. */
static void test_tampered_nodes_and_start(void **state)
{
    (void)state;
    seq_block *b = make_block(TAMPER_N, runs_ns);
    seq_nsproof good;
    assert_int_equal(seq_nsproof_build(b, TAMPER_NS, &good), 0);
    assert_int_equal(good.start, TAMPER_START);
    assert_int_equal(good.count, TAMPER_COUNT);
    const seq_tx *txs = b->txs + TAMPER_START;
    expect_refused(&b->h, TAMPER_NS, txs, &good, 0);
    assert_true(good.node_count >= 2);

    for (uint32_t i = 0; i < good.node_count; i++) {
        seq_nsproof p = good;
        p.nodes[i].digest.b[i % SEQ_HASH_BYTES] ^= 0x80;
        expect_refused(&b->h, TAMPER_NS, txs, &p, SEQ_EPROOF);
        p = good;
        p.nodes[i].min ^= 1;
        expect_refused(&b->h, TAMPER_NS, txs, &p, SEQ_EPROOF);
        p = good;
        p.nodes[i].max ^= 1;
        expect_refused(&b->h, TAMPER_NS, txs, &p, SEQ_EPROOF);
    }
    seq_nsproof p = good;
    p.start--;
    expect_refused(&b->h, TAMPER_NS, txs, &p, SEQ_EPROOF);
    p = good;
    p.start++;
    expect_refused(&b->h, TAMPER_NS, txs, &p, SEQ_EPROOF);
    p = good;
    p.start = TAMPER_N;
    expect_refused(&b->h, TAMPER_NS, txs, &p, SEQ_EINVAL);

    p = good;
    p.nodes[p.node_count] = p.nodes[0];
    p.node_count++;
    expect_refused(&b->h, TAMPER_NS, txs, &p, SEQ_EPROOF);
    p = good;
    p.node_count--;
    expect_refused(&b->h, TAMPER_NS, txs, &p, SEQ_EPROOF);
    p = good;
    p.nodes[0] = good.nodes[1];
    p.nodes[1] = good.nodes[0];
    expect_refused(&b->h, TAMPER_NS, txs, &p, SEQ_EPROOF);
    p = good;
    p.node_count = SEQ_NSPROOF_NODES_MAX + 1;
    expect_refused(&b->h, TAMPER_NS, txs, &p, SEQ_EINVAL);
    seq_block_free(b);
}

/* A transaction removed (first, middle, last), added, replaced, two
 * reordered, one of another namespace, and a wrong tx_count or root in the
 * header are all refused. */
static void test_tampered_transactions_and_header(void **state)
{
    (void)state;
    seq_block *b = make_block(TAMPER_N, runs_ns);
    seq_nsproof good;
    assert_int_equal(seq_nsproof_build(b, TAMPER_NS, &good), 0);
    seq_tx txs[TAMPER_COUNT + 1];
    memcpy(txs, b->txs + TAMPER_START, TAMPER_COUNT * sizeof *txs);
    seq_tx work[TAMPER_COUNT + 1];
    seq_nsproof p = good;

    /* removed */
    p.count = TAMPER_COUNT - 1;
    expect_refused(&b->h, TAMPER_NS, txs + 1, &p, SEQ_EPROOF);
    expect_refused(&b->h, TAMPER_NS, txs, &p, SEQ_EPROOF);
    memcpy(work, txs, 2 * sizeof *work);
    memcpy(work + 2, txs + 3, 2 * sizeof *work);
    expect_refused(&b->h, TAMPER_NS, work, &p, SEQ_EPROOF);

    /* added: a new tx of the namespace at the end, or a repeat */
    p.count = TAMPER_COUNT + 1;
    memcpy(work, txs, TAMPER_COUNT * sizeof *work);
    work[TAMPER_COUNT] = make_tx(TAMPER_NS, "extra");
    expect_refused(&b->h, TAMPER_NS, work, &p, SEQ_EPROOF);
    work[TAMPER_COUNT] = txs[0];
    expect_refused(&b->h, TAMPER_NS, work, &p, SEQ_EPROOF);

    /* replaced, reordered, of another namespace */
    p.count = TAMPER_COUNT;
    memcpy(work, txs, TAMPER_COUNT * sizeof *work);
    work[2] = make_tx(TAMPER_NS, "replaced");
    expect_refused(&b->h, TAMPER_NS, work, &p, SEQ_EPROOF);
    memcpy(work, txs, TAMPER_COUNT * sizeof *work);
    work[1] = txs[2];
    work[2] = txs[1];
    expect_refused(&b->h, TAMPER_NS, work, &p, SEQ_EPROOF);
    memcpy(work, txs, TAMPER_COUNT * sizeof *work);
    work[4] = b->txs[TAMPER_START + TAMPER_COUNT]; /* the ns 50 tx that follows */
    expect_refused(&b->h, TAMPER_NS, work, &p, SEQ_EPROOF);
    expect_refused(&b->h, TAMPER_NS + 10, txs, &p, SEQ_EPROOF);

    /* a payload changed under its old id: the plain check trusts ids, the
     * payload check does not */
    memcpy(work, txs, TAMPER_COUNT * sizeof *work);
    work[3].data = (const uint8_t *)"tx-X";
    expect_refused(&b->h, TAMPER_NS, work, &p, 0);
    assert_int_equal(seq_nsproof_verify_ns_payloads(&b->h, TAMPER_NS, work, &p), SEQ_EPROOF);

    /* header */
    seq_header h = b->h;
    static const uint32_t wrong_counts[] = {TAMPER_N - 2, TAMPER_N - 1, 17, 100};
    for (size_t i = 0; i < sizeof wrong_counts / sizeof wrong_counts[0]; i++) {
        h.tx_count = wrong_counts[i];
        expect_refused(&h, TAMPER_NS, txs, &p, SEQ_EPROOF);
    }
    /* 14 to 16 leaves split 8|(4|rest) as 13 does: every path the proof
     * takes has the same shape, the last node standing for [12,14) instead
     * of [12,13), so the same root comes back. The proof cannot bind tx_count;
     * the header's hash, which the certificate signs, does. */
    h.tx_count = TAMPER_N + 1;
    expect_refused(&h, TAMPER_NS, txs, &p, 0);
    h.tx_count = TAMPER_START + TAMPER_COUNT - 1;
    expect_refused(&h, TAMPER_NS, txs, &p, SEQ_EINVAL);
    h.tx_count = SEQ_BLOCK_TXS_MAX + 1;
    expect_refused(&h, TAMPER_NS, txs, &p, SEQ_EINVAL);
    h = b->h;
    h.payload_root.b[5] ^= 1;
    expect_refused(&h, TAMPER_NS, txs, &p, SEQ_EPROOF);
    seq_block_free(b);
}

/* An absence proof (ns 45, between 40 and 50) passes, and is refused with a
 * node or start changed, or for a namespace that is present. */
static void test_tampered_absence(void **state)
{
    (void)state;
    seq_block *b = make_block(TAMPER_N, runs_ns);
    seq_nsproof good;
    assert_int_equal(seq_nsproof_build(b, 45, &good), 0);
    assert_int_equal(good.start, TAMPER_START + TAMPER_COUNT);
    assert_int_equal(good.count, 0);
    expect_refused(&b->h, 45, NULL, &good, 0);
    expect_refused(&b->h, 41, NULL, &good, 0);
    expect_refused(&b->h, 49, NULL, &good, 0);
    expect_refused(&b->h, 40, NULL, &good, SEQ_EPROOF);
    expect_refused(&b->h, 50, NULL, &good, SEQ_EPROOF);
    for (uint32_t i = 0; i < good.node_count; i++) {
        seq_nsproof p = good;
        p.nodes[i].digest.b[31] ^= 1;
        expect_refused(&b->h, 45, NULL, &p, SEQ_EPROOF);
        p = good;
        p.nodes[i].min++;
        expect_refused(&b->h, 45, NULL, &p, SEQ_EPROOF);
    }
    seq_nsproof p = good;
    p.start--;
    expect_refused(&b->h, 45, NULL, &p, SEQ_EPROOF);
    p.start += 2;
    expect_refused(&b->h, 45, NULL, &p, SEQ_EPROOF);
    /* Absence claimed with the namespace's real transactions dropped. */
    assert_int_equal(seq_nsproof_build(b, 35, &p), 0);
    expect_refused(&b->h, 40, NULL, &p, SEQ_EPROOF);
    seq_block_free(b);
}

/* An inclusion proof refuses another transaction, another index and an empty
 * range; building refuses ranges outside the block. */
static void test_inclusion_refusals(void **state)
{
    (void)state;
    seq_block *b = make_block(TAMPER_N, runs_ns);
    seq_nsproof p;
    assert_int_equal(seq_nsproof_build_range(b, 3, 1, &p), 0);
    assert_int_equal(seq_nsproof_verify_range(&b->h, &b->txs[3], &p), 0);
    assert_int_equal(seq_nsproof_verify_range(&b->h, &b->txs[2], &p), SEQ_EPROOF);
    p.start = 2;
    assert_int_equal(seq_nsproof_verify_range(&b->h, &b->txs[2], &p), SEQ_EPROOF);
    p.start = 3;
    p.count = 0;
    assert_int_equal(seq_nsproof_verify_range(&b->h, &b->txs[3], &p), SEQ_EINVAL);

    assert_int_equal(seq_nsproof_build_range(b, 0, 0, &p), SEQ_EINVAL);
    assert_int_equal(seq_nsproof_build_range(b, TAMPER_N, 1, &p), SEQ_EINVAL);
    assert_int_equal(seq_nsproof_build_range(b, 5, TAMPER_N, &p), SEQ_EINVAL);
    assert_int_equal(seq_nsproof_build_range(b, UINT32_MAX, 2, &p), SEQ_EINVAL);
    seq_block_free(b);
}

/* An empty block: every namespace is absent with no nodes; the root must be
 * the empty tag, and a start or node is refused. */
static void test_empty_block(void **state)
{
    (void)state;
    seq_block *b = make_block(0, runs_ns);
    seq_nsproof p;
    assert_int_equal(seq_nsproof_build(b, 9, &p), 0);
    assert_int_equal(p.start, 0);
    assert_int_equal(p.count, 0);
    assert_int_equal(p.node_count, 0);
    expect_refused(&b->h, 9, NULL, &p, 0);
    seq_header h = b->h;
    h.payload_root.b[0] ^= 1;
    expect_refused(&h, 9, NULL, &p, SEQ_EPROOF);
    p.node_count = 1;
    expect_refused(&b->h, 9, NULL, &p, SEQ_EPROOF);
    p.node_count = 0;
    p.start = 1;
    expect_refused(&b->h, 9, NULL, &p, SEQ_EINVAL);
    seq_block_free(b);
}

/* The largest block (SEQ_BLOCK_TXS_MAX transactions, 17 levels): proofs of a
 * namespace, an absence and the range with the most nodes stay within
 * SEQ_NSPROOF_NODES_MAX and verify. */
static void test_largest_block(void **state)
{
    (void)state;
    const uint32_t n = SEQ_BLOCK_TXS_MAX;
    seq_tx *txs = calloc(n, sizeof *txs);
    uint32_t *payloads = calloc(n, sizeof *payloads);
    assert_non_null(txs);
    assert_non_null(payloads);
    for (uint32_t i = 0; i < n; i++) {
        payloads[i] = i;
        txs[i] = (seq_tx){.ns = 2 * (seq_ns)(i / 1000), .len = 4, .data = (uint8_t *)&payloads[i]};
    }
    seq_header tmpl = {.chain_id = 7};
    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, &tmpl, txs, n), 0);
    free(txs);
    free(payloads);

    seq_nsproof p;
    assert_int_equal(seq_nsproof_build(b, 2 * 37, &p), 0);
    assert_int_equal(p.count, 1000);
    assert_int_equal(seq_nsproof_verify_ns(&b->h, 2 * 37, b->txs + p.start, &p), 0);
    assert_int_equal(seq_nsproof_build(b, 2 * 37 + 1, &p), 0);
    assert_int_equal(seq_nsproof_verify_ns(&b->h, 2 * 37 + 1, NULL, &p), 0);
    /* Leaves 65535 and 65536 straddle the root's split (65536 | 34464): 16
     * nodes on the left path, 15 + 1 on the right. */
    assert_int_equal(seq_nsproof_build_range(b, 65535, 2, &p), 0);
    assert_int_equal(p.node_count, 32);
    assert_int_equal(seq_nsproof_verify_range(&b->h, b->txs + 65535, &p), 0);
    seq_block_free(b);
}

int main(void)
{
    if (seq_crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_every_namespace_and_range),
        cmocka_unit_test(test_tampered_nodes_and_start),
        cmocka_unit_test(test_tampered_transactions_and_header),
        cmocka_unit_test(test_tampered_absence),
        cmocka_unit_test(test_inclusion_refusals),
        cmocka_unit_test(test_empty_block),
        cmocka_unit_test(test_largest_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
