/* Mempool: dedup, limits with exact codes, FIFO, fairness and rotation of the
 * builder, byte budget, exclusion, finalization and the recent set, scale. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "idset.h"
#include "mempool.h"
#include "types.h"

#define PAYLOAD_BYTES 8 /* the default payload: 8 hex digits of its index */
#define OUT_MAX 4096

static seq_tx out[OUT_MAX];

static seq_mempool *pool_new(uint32_t txs_max, uint64_t bytes_max, uint32_t ns_max, uint32_t recent_max)
{
    seq_mempool_limits l = {.txs_max = txs_max, .bytes_max = bytes_max, .tx_bytes_max = 256,
                            .namespaces_max = ns_max, .recent_max = recent_max};
    seq_mempool *mp = NULL;
    assert_int_equal(seq_mempool_new(&mp, &l), 0);
    assert_non_null(mp);
    return mp;
}

static seq_mempool *pool_default(void)
{
    return pool_new(200000, 1u << 30, 1000, 1000);
}

static int add_index(seq_mempool *mp, seq_ns ns, uint32_t index, seq_hash *id)
{
    char buf[PAYLOAD_BYTES + 1];
    snprintf(buf, sizeof buf, "%08x", index);
    return seq_mempool_add(mp, ns, (const uint8_t *)buf, PAYLOAD_BYTES, id);
}

static seq_hash add_ok(seq_mempool *mp, seq_ns ns, uint32_t index)
{
    seq_hash id;
    assert_int_equal(add_index(mp, ns, index, &id), 0);
    return id;
}

/* Adds a payload of len bytes, all equal to fill. */
static int add_sized(seq_mempool *mp, seq_ns ns, uint8_t fill, uint32_t len, seq_hash *id)
{
    uint8_t buf[512];
    assert_true(len <= sizeof buf);
    memset(buf, fill, len);
    return seq_mempool_add(mp, ns, buf, len, id);
}

static uint32_t payload_index(const seq_tx *tx)
{
    char buf[PAYLOAD_BYTES + 1];
    assert_int_equal(tx->len, PAYLOAD_BYTES);
    memcpy(buf, tx->data, PAYLOAD_BYTES);
    buf[PAYLOAD_BYTES] = 0;
    return (uint32_t)strtoul(buf, NULL, 16);
}

static uint32_t build(seq_mempool *mp, uint32_t txs_max, uint64_t bytes_max)
{
    uint32_t n = 12345;
    assert_true(txs_max <= OUT_MAX);
    assert_int_equal(seq_mempool_build(mp, txs_max, bytes_max, NULL, NULL, out, &n), 0);
    return n;
}

static void remove_built(seq_mempool *mp, uint32_t n)
{
    seq_hash ids[OUT_MAX];
    for (uint32_t i = 0; i < n; i++)
        ids[i] = out[i].id;
    seq_mempool_remove_finalized(mp, ids, n);
}

static uint32_t ns_count(const seq_mempool *mp, seq_ns ns)
{
    uint32_t count;
    uint64_t bytes;
    seq_mempool_ns_usage(mp, ns, &count, &bytes);
    return count;
}

/* Each zero or out-of-format limit is refused with SEQ_EINVAL. */
static void test_new_rejects_bad_limits(void **state)
{
    (void)state;
    const seq_mempool_limits good = {.txs_max = 10, .bytes_max = 100, .tx_bytes_max = 10,
                                     .namespaces_max = 2, .recent_max = 5};
    seq_mempool_limits bad[7];
    for (int i = 0; i < 7; i++)
        bad[i] = good;
    bad[0].txs_max = 0;
    bad[1].bytes_max = 0;
    bad[2].tx_bytes_max = 0;
    bad[3].namespaces_max = 0;
    bad[4].recent_max = 0;
    bad[5].tx_bytes_max = SEQ_TX_PAYLOAD_BYTES_MAX + 1;
    bad[6].recent_max = SEQ_MEMPOOL_RECENT_LIMIT_MAX + 1;
    for (int i = 0; i < 7; i++) {
        seq_mempool *mp = NULL;
        assert_int_equal(seq_mempool_new(&mp, &bad[i]), SEQ_EINVAL);
        assert_null(mp);
    }
    seq_mempool *mp = NULL;
    assert_int_equal(seq_mempool_new(&mp, &good), 0);
    seq_mempool_free(mp);
}

/* add copies the payload, returns the id of the canonical encoding, and counts it. */
static void test_add_counts_and_returns_id(void **state)
{
    (void)state;
    seq_mempool *mp = pool_default();
    uint8_t payload[3] = {1, 2, 3};
    seq_hash id;
    assert_int_equal(seq_mempool_add(mp, 7, payload, sizeof payload, &id), 0);
    seq_tx tx = {.ns = 7, .len = sizeof payload, .data = payload};
    seq_tx_compute_id(&tx);
    assert_memory_equal(id.b, tx.id.b, SEQ_HASH_BYTES);
    payload[0] = 99; /* the mempool holds its own copy */
    assert_true(seq_mempool_contains(mp, &id));
    assert_false(seq_mempool_recent_contains(mp, &id));
    assert_int_equal(seq_mempool_count(mp), 1);
    assert_int_equal(seq_mempool_bytes(mp), 3);
    uint32_t count;
    uint64_t bytes;
    seq_mempool_ns_usage(mp, 7, &count, &bytes);
    assert_int_equal(count, 1);
    assert_int_equal(bytes, 3);
    seq_mempool_ns_usage(mp, 8, &count, &bytes);
    assert_int_equal(count, 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(build(mp, 10, 1000), 1);
    assert_int_equal(out[0].ns, 7);
    assert_int_equal(out[0].data[0], 1);
    /* An empty payload is a transaction too. */
    assert_int_equal(seq_mempool_add(mp, 7, NULL, 0, &id), 0);
    assert_int_equal(seq_mempool_add(mp, 7, NULL, 1, &id), SEQ_EINVAL);
    assert_int_equal(seq_mempool_count(mp), 2);
    seq_mempool_free(mp);
}

/* The same (namespace, payload) is a duplicate while pending; the same payload
 * in another namespace is a different transaction. */
static void test_duplicate_pending(void **state)
{
    (void)state;
    seq_mempool *mp = pool_default();
    seq_hash id1 = add_ok(mp, 1, 42), id2;
    assert_int_equal(add_index(mp, 1, 42, &id2), SEQ_EDUPLICATE);
    assert_memory_equal(id1.b, id2.b, SEQ_HASH_BYTES);
    assert_int_equal(seq_mempool_count(mp), 1);
    assert_int_equal(seq_mempool_bytes(mp), PAYLOAD_BYTES);
    seq_hash id3 = add_ok(mp, 2, 42);
    assert_memory_not_equal(id1.b, id3.b, SEQ_HASH_BYTES);
    assert_int_equal(seq_mempool_count(mp), 2);
    seq_mempool_free(mp);
}

typedef struct {
    uint32_t count;
    uint64_t bytes;
    uint32_t ns1, ns2, ns3;
} snapshot;

static snapshot snap(const seq_mempool *mp)
{
    return (snapshot){seq_mempool_count(mp), seq_mempool_bytes(mp), ns_count(mp, 1),
                      ns_count(mp, 2), ns_count(mp, 3)};
}

static void assert_unchanged(const seq_mempool *mp, snapshot before)
{
    snapshot now = snap(mp);
    assert_int_equal(now.count, before.count);
    assert_int_equal(now.bytes, before.bytes);
    assert_int_equal(now.ns1, before.ns1);
    assert_int_equal(now.ns2, before.ns2);
    assert_int_equal(now.ns3, before.ns3);
}

/* Each rejection returns its exact code and changes nothing. */
static void test_rejections_exact_codes_change_nothing(void **state)
{
    (void)state;
    /* tx_bytes_max 256; count limit 3, bytes limit 100, two namespaces. */
    seq_mempool *mp = pool_new(3, 100, 2, 10);
    seq_hash id;
    assert_int_equal(add_sized(mp, 1, 0xaa, 40, &id), 0);
    snapshot s = snap(mp);

    assert_int_equal(add_sized(mp, 1, 0xbb, 257, &id), SEQ_ETOOBIG);
    assert_unchanged(mp, s);
    assert_int_equal(add_sized(mp, 2, 0xbb, 61, &id), SEQ_EFULL); /* 40 + 61 > 100 */
    assert_unchanged(mp, s);
    assert_false(seq_mempool_contains(mp, &id));
    assert_int_equal(add_sized(mp, 2, 0xbb, 60, &id), 0); /* exactly 100 */
    s = snap(mp);
    assert_int_equal(add_sized(mp, 3, 0xcc, 0, &id), SEQ_ENS_FULL);
    assert_unchanged(mp, s);
    assert_false(seq_mempool_contains(mp, &id));
    assert_int_equal(add_sized(mp, 1, 0xcc, 0, &id), 0); /* 3 txs, 100 bytes */
    s = snap(mp);
    assert_int_equal(add_sized(mp, 2, 0xdd, 0, &id), SEQ_EFULL); /* count */
    assert_unchanged(mp, s);
    /* Duplicate is reported before full. */
    assert_int_equal(add_sized(mp, 1, 0xaa, 40, &id), SEQ_EDUPLICATE);
    assert_unchanged(mp, s);
    seq_mempool_free(mp);
}

/* A full pool: the namespace holding the most gives way, newest first, to
 * one holding at least two fewer, until the two are level; the evicted ids
 * are handed out once, in eviction order; the flooding namespace itself is
 * refused (it is the biggest). */
static void test_full_pool_evicts_biggest_namespace(void **state)
{
    (void)state;
    seq_mempool *mp = pool_new(10, 1u << 20, 10, 10);
    seq_hash flood[10], id;
    for (uint8_t i = 0; i < 10; i++)
        assert_int_equal(add_sized(mp, 1, (uint8_t)(0x10 + i), 8, &flood[i]), 0);
    assert_int_equal(add_sized(mp, 1, 0x99, 8, &id), SEQ_EFULL);
    seq_hash evicted[SEQ_MEMPOOL_EVICTED_MAX];
    assert_int_equal(seq_mempool_take_evicted(mp, evicted, SEQ_MEMPOOL_EVICTED_MAX, NULL), 0);
    for (uint8_t k = 0; k < 5; k++) {
        assert_int_equal(add_sized(mp, 2, (uint8_t)(0x20 + k), 8, &id), 0);
        assert_true(seq_mempool_contains(mp, &id));
    }
    assert_int_equal(add_sized(mp, 2, 0x2f, 8, &id), SEQ_EFULL); /* level: 5 and 5 */
    assert_int_equal(ns_count(mp, 1), 5);
    assert_int_equal(ns_count(mp, 2), 5);
    assert_int_equal(seq_mempool_count(mp), 10);
    uint64_t unreported = 7;
    assert_int_equal(seq_mempool_take_evicted(mp, evicted, SEQ_MEMPOOL_EVICTED_MAX, &unreported), 5);
    assert_int_equal(unreported, 0);
    for (uint32_t k = 0; k < 5; k++) {
        assert_memory_equal(evicted[k].b, flood[9 - k].b, SEQ_HASH_BYTES); /* newest first */
        assert_false(seq_mempool_contains(mp, &flood[9 - k]));
        assert_true(seq_mempool_contains(mp, &flood[k])); /* the oldest stay */
    }
    assert_int_equal(seq_mempool_take_evicted(mp, evicted, SEQ_MEMPOOL_EVICTED_MAX, NULL), 0);
    seq_mempool_free(mp);
}

/* Full by bytes: one larger transaction evicts as many of the biggest
 * namespace's newest as it needs, and no more. */
static void test_full_bytes_evicts_enough(void **state)
{
    (void)state;
    seq_mempool *mp = pool_new(100, 100, 10, 10);
    seq_hash id;
    for (uint8_t i = 0; i < 10; i++)
        assert_int_equal(add_sized(mp, 1, (uint8_t)(0x10 + i), 10, &id), 0);
    assert_int_equal(add_sized(mp, 2, 0x55, 35, &id), 0); /* 100 + 35 - 4 * 10 <= 100 */
    assert_int_equal(ns_count(mp, 1), 6);
    assert_int_equal(seq_mempool_bytes(mp), 95);
    seq_hash evicted[8];
    assert_int_equal(seq_mempool_take_evicted(mp, evicted, 8, NULL), 4);
    seq_mempool_free(mp);
}

/* Inside one namespace the batch keeps arrival order; namespaces come sorted. */
static void test_fifo_and_sorted_output(void **state)
{
    (void)state;
    seq_mempool *mp = pool_default();
    /* Arrivals interleave namespaces 9, 3, 5. */
    for (uint32_t i = 0; i < 20; i++) {
        add_ok(mp, 9, 100 + i);
        add_ok(mp, 3, 200 + i);
        add_ok(mp, 5, 300 + i);
    }
    uint32_t n = build(mp, 60, UINT64_MAX);
    assert_int_equal(n, 60);
    for (uint32_t i = 0; i < 20; i++) {
        assert_int_equal(out[i].ns, 3);
        assert_int_equal(payload_index(&out[i]), 200 + i);
        assert_int_equal(out[20 + i].ns, 5);
        assert_int_equal(payload_index(&out[20 + i]), 300 + i);
        assert_int_equal(out[40 + i].ns, 9);
        assert_int_equal(payload_index(&out[40 + i]), 100 + i);
    }
    /* Building does not remove. */
    assert_int_equal(seq_mempool_count(mp), 60);
    seq_mempool_free(mp);
}

/* A with 1000 pending and B, C with 10: a 30-tx batch takes 10 from each. */
static void test_fair_across_namespaces(void **state)
{
    (void)state;
    seq_mempool *mp = pool_default();
    for (uint32_t i = 0; i < 1000; i++)
        add_ok(mp, 1, i);
    for (uint32_t i = 0; i < 10; i++) {
        add_ok(mp, 2, i);
        add_ok(mp, 3, i);
    }
    uint32_t n = build(mp, 30, UINT64_MAX);
    assert_int_equal(n, 30);
    for (uint32_t k = 0; k < 3; k++)
        for (uint32_t i = 0; i < 10; i++) {
            assert_int_equal(out[k * 10 + i].ns, k + 1);
            assert_int_equal(payload_index(&out[k * 10 + i]), i);
        }
    seq_mempool_free(mp);
}

/* With A 100x B, build+remove cycles include all of B while A still waits,
 * and every cycle takes as many from B as from A while B has some. */
static void test_heavy_namespace_does_not_starve_light(void **state)
{
    (void)state;
    seq_mempool *mp = pool_default();
    for (uint32_t i = 0; i < 1000; i++)
        add_ok(mp, 1, i);
    for (uint32_t i = 0; i < 10; i++)
        add_ok(mp, 2, i);
    uint32_t cycles = 0;
    while (ns_count(mp, 2) > 0) {
        assert_true(++cycles <= 5);
        uint32_t n = build(mp, 4, UINT64_MAX);
        assert_int_equal(n, 4);
        uint32_t from_b = 0;
        for (uint32_t i = 0; i < n; i++)
            from_b += out[i].ns == 2;
        assert_int_equal(from_b, 2);
        remove_built(mp, n);
    }
    assert_int_equal(cycles, 5);
    assert_int_equal(ns_count(mp, 1), 990);
    seq_mempool_free(mp);
}

/* One-tx batches rotate the starting namespace: A, B, C, A, ... */
static void test_single_tx_batches_rotate(void **state)
{
    (void)state;
    seq_mempool *mp = pool_default();
    for (uint32_t i = 0; i < 3; i++) {
        add_ok(mp, 10, i);
        add_ok(mp, 20, i);
        add_ok(mp, 30, i);
    }
    const seq_ns expect[7] = {10, 20, 30, 10, 20, 30, 10};
    for (int k = 0; k < 7; k++) {
        assert_int_equal(build(mp, 1, UINT64_MAX), 1);
        assert_int_equal(out[0].ns, expect[k]);
        assert_int_equal(payload_index(&out[0]), 0); /* not removed: head again */
    }
    /* The next start is 20; when 20 leaves entirely, 30 starts instead. */
    seq_hash ids[3];
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(add_index(mp, 20, i, &ids[i]), SEQ_EDUPLICATE); /* its ids */
    seq_mempool_remove_finalized(mp, ids, 3);
    assert_int_equal(ns_count(mp, 20), 0);
    const seq_ns expect_after[3] = {30, 10, 30};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(build(mp, 1, UINT64_MAX), 1);
        assert_int_equal(out[0].ns, expect_after[k]);
    }
    seq_mempool_free(mp);
}

/* bytes_max is never exceeded; a tx over the remaining budget stops its own
 * namespace for this batch while the others go on. */
static void test_bytes_max_honoured(void **state)
{
    (void)state;
    seq_mempool *mp = pool_default();
    seq_hash id;
    assert_int_equal(add_sized(mp, 1, 0x01, 100, &id), 0);
    assert_int_equal(add_sized(mp, 1, 0x02, 10, &id), 0); /* behind the big one */
    for (uint8_t i = 0; i < 4; i++)
        assert_int_equal(add_sized(mp, 2, (uint8_t)(0x10 + i), 10, &id), 0);
    uint32_t n = build(mp, 100, 50);
    assert_int_equal(n, 4); /* B's four: 40 bytes; A's 10-byte tx may not overtake */
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(out[i].ns, 2);
        assert_int_equal(out[i].data[0], 0x10 + i);
    }
    /* 130 bytes: A 100, B 10, then A 10, B 10 fill it exactly. */
    n = build(mp, 100, 130);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += out[i].len;
    assert_true(total <= 130);
    assert_int_equal(n, 4); /* A:100, B:10, A:10, B:10 */
    assert_int_equal(total, 130);
    assert_int_equal(build(mp, 100, 9), 0);
    seq_mempool_free(mp);
}

typedef struct {
    seq_idset excluded;
    uint32_t calls;
} exclude_ctx;

static bool exclude_cb(void *ctx, const seq_hash *id)
{
    exclude_ctx *x = ctx;
    x->calls++;
    return seq_idset_get(&x->excluded, id, NULL);
}

/* Excluded txs stay pending and out of the batch; the next ones are taken. */
static void test_exclude_leaves_pending(void **state)
{
    (void)state;
    seq_mempool *mp = pool_default();
    exclude_ctx x = {.calls = 0};
    seq_idset_init(&x.excluded);
    seq_hash ids[6];
    for (uint32_t i = 0; i < 6; i++)
        ids[i] = add_ok(mp, 1, i);
    assert_int_equal(seq_idset_put(&x.excluded, &ids[0], NULL), 0);
    assert_int_equal(seq_idset_put(&x.excluded, &ids[2], NULL), 0);
    uint32_t n = 0;
    assert_int_equal(seq_mempool_build(mp, 3, UINT64_MAX, exclude_cb, &x, out, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(payload_index(&out[0]), 1);
    assert_int_equal(payload_index(&out[1]), 3);
    assert_int_equal(payload_index(&out[2]), 4);
    assert_int_equal(x.calls, 5);
    assert_int_equal(seq_mempool_count(mp), 6);
    assert_true(seq_mempool_contains(mp, &ids[0]));
    assert_true(seq_mempool_contains(mp, &ids[2]));
    seq_idset_free(&x.excluded);
    seq_mempool_free(mp);
}

/* A namespace walks past at most SEQ_MEMPOOL_EXCLUDED_SKIPS_MAX excluded txs
 * per build; other namespaces are still served. */
static void test_exclude_skips_bounded(void **state)
{
    (void)state;
    seq_mempool *mp = pool_default();
    exclude_ctx x = {.calls = 0};
    seq_idset_init(&x.excluded);
    const uint32_t skips = SEQ_MEMPOOL_EXCLUDED_SKIPS_MAX;
    for (uint32_t i = 0; i < skips + 10; i++) {
        seq_hash id = add_ok(mp, 1, i);
        if (i < skips)
            assert_int_equal(seq_idset_put(&x.excluded, &id, NULL), 0);
    }
    add_ok(mp, 2, 0);
    uint32_t n = 0;
    assert_int_equal(seq_mempool_build(mp, 100, UINT64_MAX, exclude_cb, &x, out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].ns, 2);
    assert_int_equal(x.calls, skips + 1);

    /* One excluded tx fewer: the namespace reaches its first free tx. */
    add_ok(mp, 3, 0);
    seq_idset_free(&x.excluded);
    seq_idset_init(&x.excluded);
    for (uint32_t i = 0; i < skips - 1; i++) {
        seq_hash id;
        assert_int_equal(add_index(mp, 1, i, &id), SEQ_EDUPLICATE); /* recover its id */
        assert_int_equal(seq_idset_put(&x.excluded, &id, NULL), 0);
    }
    assert_int_equal(seq_mempool_build(mp, 100, UINT64_MAX, exclude_cb, &x, out, &n), 0);
    uint32_t from_1 = 0;
    for (uint32_t i = 0; i < n; i++)
        if (out[i].ns == 1) {
            assert_int_equal(payload_index(&out[i]), skips - 1 + from_1);
            from_1++;
        }
    assert_int_equal(from_1, 11); /* tx skips-1, then the 10 free ones */
    seq_idset_free(&x.excluded);
    seq_mempool_free(mp);
}

/* Finalized txs leave the pool; a late copy is a duplicate, also of an id
 * that was never pending here. */
static void test_remove_finalized_then_duplicate(void **state)
{
    (void)state;
    seq_mempool *mp = pool_new(100, 10000, 1, 100);
    seq_hash a = add_ok(mp, 1, 1);
    seq_hash b = add_ok(mp, 1, 2);
    seq_tx never = {.ns = 2, .len = 3, .data = (const uint8_t *)"abc"};
    seq_tx_compute_id(&never);
    seq_hash ids[2] = {a, never.id};
    seq_mempool_remove_finalized(mp, ids, 2);
    assert_int_equal(seq_mempool_count(mp), 1);
    assert_int_equal(seq_mempool_bytes(mp), PAYLOAD_BYTES);
    assert_false(seq_mempool_contains(mp, &a));
    assert_true(seq_mempool_recent_contains(mp, &a));
    assert_true(seq_mempool_contains(mp, &b));
    seq_hash id;
    assert_int_equal(add_index(mp, 1, 1, &id), SEQ_EDUPLICATE);
    assert_int_equal(seq_mempool_add(mp, 2, never.data, never.len, &id), SEQ_EDUPLICATE);
    /* The last tx of namespace 1 leaves: its namespace slot frees up. */
    seq_mempool_remove_finalized(mp, &b, 1);
    assert_int_equal(seq_mempool_count(mp), 0);
    assert_int_equal(build(mp, 10, UINT64_MAX), 0);
    add_ok(mp, 5, 1); /* namespaces_max is 1 */
    seq_mempool_free(mp);
}

/* lookup gives each pending id's transaction (namespace, length, payload,
 * id), borrowed from the mempool, in the order asked (the same id twice
 * too); an id not pending (never added, or finalized and removed) comes back
 * all zero and is counted. */
static void test_lookup_pending_and_missing(void **state)
{
    (void)state;
    seq_mempool *mp = pool_default();
    seq_hash a = add_ok(mp, 3, 1), b = add_ok(mp, 1, 2), c = add_ok(mp, 3, 3), gone = add_ok(mp, 2, 4);
    seq_hash e;
    assert_int_equal(add_sized(mp, 9, 0x77, 0, &e), 0); /* an empty payload */
    seq_tx never = {.ns = 4, .len = 3, .data = (const uint8_t *)"abc"};
    seq_tx_compute_id(&never);
    seq_mempool_remove_finalized(mp, &gone, 1);
    assert_false(seq_mempool_contains(mp, &gone));

    const seq_hash ids[7] = {c, never.id, a, gone, e, b, c};
    const seq_ns ns[7] = {3, 0, 3, 0, 9, 1, 3};
    const uint32_t index[7] = {3, 0, 1, 0, 0, 2, 3};
    const bool found[7] = {true, false, true, false, true, true, true};
    seq_tx got[7];
    memset(got, 0xee, sizeof got);
    assert_int_equal(seq_mempool_lookup(mp, ids, 7, got), 2);
    for (int i = 0; i < 7; i++) {
        if (!found[i]) {
            assert_int_equal(got[i].ns, 0);
            assert_int_equal(got[i].len, 0);
            assert_null(got[i].data);
            assert_true(seq_hash_is_zero(&got[i].id));
            continue;
        }
        assert_int_equal(got[i].ns, ns[i]);
        assert_memory_equal(got[i].id.b, ids[i].b, SEQ_HASH_BYTES);
        if (ns[i] == 9) {
            assert_int_equal(got[i].len, 0);
            continue;
        }
        assert_int_equal(got[i].len, PAYLOAD_BYTES);
        assert_int_equal(payload_index(&got[i]), index[i]);
        seq_tx check = got[i];
        seq_tx_compute_id(&check); /* the payload is the one the id names */
        assert_memory_equal(check.id.b, ids[i].b, SEQ_HASH_BYTES);
    }
    /* Borrowed, not copied: the mempool's own bytes, as build gives them. */
    assert_int_equal(build(mp, 10, UINT64_MAX), 4);
    uint32_t seen = 0;
    for (uint32_t i = 0; i < 4; i++)
        if (seq_hash_eq(&out[i].id, &a)) {
            assert_ptr_equal(out[i].data, got[2].data);
            seen++;
        }
    assert_int_equal(seen, 1);

    /* Nothing pending, nothing found; none asked, none missing. */
    seq_hash pending[4] = {a, b, c, e};
    seq_mempool_remove_finalized(mp, pending, 4);
    assert_int_equal(seq_mempool_lookup(mp, pending, 4, got), 4);
    assert_int_equal(seq_mempool_lookup(mp, NULL, 0, NULL), 0);

    /* More ids than the lookahead of the loop, every other one missing. */
    enum { MANY = 50 };
    seq_hash many[MANY];
    seq_tx many_out[MANY];
    for (uint32_t i = 0; i < MANY; i++) {
        many[i] = add_ok(mp, i % 5, 1000 + i);
        if (i % 2)
            seq_mempool_remove_finalized(mp, &many[i], 1);
    }
    assert_int_equal(seq_mempool_lookup(mp, many, MANY, many_out), MANY / 2);
    for (uint32_t i = 0; i < MANY; i++) {
        if (i % 2) {
            assert_int_equal(many_out[i].len, 0);
            assert_null(many_out[i].data);
            assert_true(seq_hash_is_zero(&many_out[i].id));
            continue;
        }
        assert_int_equal(many_out[i].ns, i % 5);
        assert_int_equal(payload_index(&many_out[i]), 1000 + i);
        assert_memory_equal(many_out[i].id.b, many[i].b, SEQ_HASH_BYTES);
    }
    seq_mempool_free(mp);
}

/* The recent set remembers exactly the last recent_max finalized ids. */
static void test_recent_forgets_after_recent_max(void **state)
{
    (void)state;
    const uint32_t recent_max = 4;
    seq_mempool *mp = pool_new(100, 10000, 10, recent_max);
    seq_hash x = add_ok(mp, 1, 0);
    seq_mempool_remove_finalized(mp, &x, 1);
    seq_mempool_remove_finalized(mp, &x, 1); /* twice is remembered once */
    for (uint32_t i = 1; i < recent_max; i++) {
        seq_hash other = add_ok(mp, 1, i);
        seq_mempool_remove_finalized(mp, &other, 1);
    }
    seq_hash id;
    assert_int_equal(add_index(mp, 1, 0, &id), SEQ_EDUPLICATE);
    seq_hash one_more = add_ok(mp, 1, 1000);
    seq_mempool_remove_finalized(mp, &one_more, 1);
    assert_false(seq_mempool_recent_contains(mp, &x));
    assert_int_equal(add_index(mp, 1, 0, &id), 0);
    assert_memory_equal(id.b, x.b, SEQ_HASH_BYTES);
    seq_mempool_free(mp);
}

/* 100k txs over 100 namespaces: add, then build+remove in 4096-tx batches
 * until empty; every tx is built exactly once, in fair shares. Not quadratic:
 * the whole test runs well under a second. */
static void test_large_scale(void **state)
{
    (void)state;
    const uint32_t total = 100000, namespaces = 100;
    seq_mempool *mp = pool_new(total, UINT64_MAX, namespaces, total);
    for (uint32_t i = 0; i < total; i++)
        add_ok(mp, i % namespaces, i);
    assert_int_equal(seq_mempool_count(mp), total);
    uint8_t *seen = calloc(total, 1);
    assert_non_null(seen);
    uint32_t built = 0, batches = 0;
    while (seq_mempool_count(mp) > 0) {
        uint32_t n = build(mp, OUT_MAX, UINT64_MAX);
        assert_true(n > 0);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t index = payload_index(&out[i]);
            assert_true(index < total && !seen[index]);
            seen[index] = 1;
        }
        remove_built(mp, n);
        built += n;
        batches++;
    }
    assert_int_equal(built, total);
    assert_int_equal(batches, (total + OUT_MAX - 1) / OUT_MAX);
    assert_int_equal(seq_mempool_bytes(mp), 0);
    free(seen);
    seq_mempool_free(mp);
}

/* Expiry: oldest first across namespaces, only those stamped at or before
 * now - ttl, bounded by max, counts updated, the same tx may come back, the
 * clock never goes back, and a finalized tx in between is not reported. */
static void test_expire_oldest_first_bounded(void **state)
{
    (void)state;
    seq_mempool *mp = pool_default();
    seq_hash ids[8], got[8];
    seq_mempool_expire(mp, 1000, 500, got, 0); /* clock = 1000 */
    ids[0] = add_ok(mp, 1, 0);
    ids[1] = add_ok(mp, 2, 1);
    ids[2] = add_ok(mp, 1, 2);
    assert_int_equal(seq_mempool_expire(mp, 1200, 500, got, 8), 0); /* clock = 1200 */
    ids[3] = add_ok(mp, 3, 3);
    seq_mempool_remove_finalized(mp, &ids[1], 1);
    /* clock back in time: ignored, nothing is old enough at 1200 */
    assert_int_equal(seq_mempool_expire(mp, 900, 500, got, 8), 0);
    /* at 1500 the three stamped 1000 are due; max 1 takes the oldest only */
    assert_int_equal(seq_mempool_expire(mp, 1500, 500, got, 1), 1);
    assert_memory_equal(got[0].b, ids[0].b, SEQ_HASH_BYTES);
    assert_int_equal(seq_mempool_expire(mp, 1500, 500, got, 8), 1);
    assert_memory_equal(got[0].b, ids[2].b, SEQ_HASH_BYTES); /* ids[1] was finalized */
    assert_int_equal(seq_mempool_count(mp), 1);
    assert_true(seq_mempool_contains(mp, &ids[3]));
    assert_false(seq_mempool_contains(mp, &ids[0]));
    uint32_t c;
    seq_mempool_ns_usage(mp, 1, &c, NULL);
    assert_int_equal(c, 0);
    /* an expired tx is not a duplicate: it may be submitted again */
    assert_int_equal(add_index(mp, 1, 0, NULL), 0);
    assert_int_equal(seq_mempool_expire(mp, 1700, 500, got, 8), 1);
    assert_memory_equal(got[0].b, ids[3].b, SEQ_HASH_BYTES);
    assert_int_equal(seq_mempool_count(mp), 1);
    seq_mempool_free(mp);
}

/* Expiry interleaved with builds and removals keeps the lists consistent. */
static void test_expire_with_builds_and_removals(void **state)
{
    (void)state;
    seq_mempool *mp = pool_default();
    seq_hash got[OUT_MAX];
    uint64_t now = 0;
    uint32_t added = 0, gone = 0;
    for (uint32_t round = 0; round < 50; round++) {
        now += 10;
        seq_mempool_expire(mp, now, 100, got, 0);
        for (uint32_t i = 0; i < 40; i++, added++)
            add_ok(mp, i % 7, added);
        uint32_t n;
        assert_int_equal(seq_mempool_build(mp, 13, 1u << 20, NULL, NULL, out, &n), 0);
        seq_hash fin[13];
        for (uint32_t i = 0; i < n; i++)
            fin[i] = out[i].id;
        seq_mempool_remove_finalized(mp, fin, n);
        gone += n;
        gone += seq_mempool_expire(mp, now, 100, got, OUT_MAX);
        assert_int_equal(seq_mempool_count(mp), added - gone);
    }
    /* far in the future every pending tx expires */
    gone += seq_mempool_expire(mp, now + 1000, 100, got, OUT_MAX);
    assert_int_equal(seq_mempool_count(mp), 0);
    assert_int_equal(seq_mempool_bytes(mp), 0);
    assert_int_equal(gone, added);
    seq_mempool_free(mp);
}

/* ns_top lists the namespaces with the most pending transactions, most
 * first (ties by namespace), with their bytes, at most cap of them; a
 * namespace emptied by finalization leaves the list and the count. */
static void test_ns_top(void **state)
{
    (void)state;
    seq_mempool *mp = pool_default();
    seq_mempool_ns_stat top[3];
    assert_int_equal(seq_mempool_ns_top(mp, top, 3), 0);
    static const struct { seq_ns ns; uint32_t n; } load[] = {{5, 2}, {9, 7}, {1, 2}, {4, 1}, {8, 4}};
    uint32_t index = 0;
    seq_hash ids_of_8[4];
    for (size_t k = 0; k < sizeof load / sizeof load[0]; k++)
        for (uint32_t i = 0; i < load[k].n; i++) {
            seq_hash id = add_ok(mp, load[k].ns, index++);
            if (load[k].ns == 8)
                ids_of_8[i] = id;
        }
    assert_int_equal(seq_mempool_namespaces(mp), 5);
    assert_int_equal(seq_mempool_ns_top(mp, top, 3), 3);
    assert_int_equal(top[0].ns, 9);
    assert_int_equal(top[0].count, 7);
    assert_int_equal(top[0].bytes, 7 * PAYLOAD_BYTES);
    assert_int_equal(top[1].ns, 8);
    assert_int_equal(top[2].ns, 1); /* 1 and 5 both have 2: the lower namespace first */
    assert_int_equal(top[2].count, 2);

    seq_mempool_remove_finalized(mp, ids_of_8, 4);
    assert_int_equal(seq_mempool_namespaces(mp), 4);
    seq_mempool_ns_stat all[8];
    assert_int_equal(seq_mempool_ns_top(mp, all, 8), 4);
    const seq_ns order[4] = {9, 1, 5, 4};
    for (int i = 0; i < 4; i++)
        assert_int_equal(all[i].ns, order[i]);
    seq_mempool_free(mp);
}

/* Freed transactions are reused for later ones of their size class (and
 * larger ones are not cached): after three rounds of adding 120 payloads of
 * sizes 0..1190 bytes and finalizing them, each round's pending payloads
 * read back exactly, none of an earlier round's bytes showing through. */
static void test_reused_allocations_hold_their_payloads(void **state)
{
    (void)state;
    seq_mempool_limits l = {.txs_max = 1000, .bytes_max = 1u << 20, .tx_bytes_max = 2048, .namespaces_max = 10,
                            .recent_max = 1000};
    seq_mempool *mp = NULL;
    assert_int_equal(seq_mempool_new(&mp, &l), 0);
    static uint8_t payload[120][1200];
    seq_hash ids[120];
    seq_tx got[120];
    for (uint8_t round = 0; round < 3; round++) {
        for (uint32_t i = 0; i < 120; i++) {
            uint32_t len = (i * 10 + round * 7) % 1200;
            memset(payload[i], 'a' + round, len);
            if (len > 0)
                payload[i][len - 1] = (uint8_t)i;
            assert_int_equal(seq_mempool_add(mp, 1 + i % 3, payload[i], len, &ids[i]), 0);
        }
        assert_int_equal(seq_mempool_lookup(mp, ids, 120, got), 0);
        for (uint32_t i = 0; i < 120; i++) {
            uint32_t len = (i * 10 + round * 7) % 1200;
            assert_int_equal(got[i].len, len);
            assert_memory_equal(got[i].data, payload[i], len);
        }
        seq_mempool_remove_finalized(mp, ids, 120);
        assert_int_equal(seq_mempool_count(mp), 0);
    }
    seq_mempool_free(mp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_limits),
        cmocka_unit_test(test_add_counts_and_returns_id),
        cmocka_unit_test(test_duplicate_pending),
        cmocka_unit_test(test_rejections_exact_codes_change_nothing),
        cmocka_unit_test(test_fifo_and_sorted_output),
        cmocka_unit_test(test_fair_across_namespaces),
        cmocka_unit_test(test_heavy_namespace_does_not_starve_light),
        cmocka_unit_test(test_single_tx_batches_rotate),
        cmocka_unit_test(test_bytes_max_honoured),
        cmocka_unit_test(test_exclude_leaves_pending),
        cmocka_unit_test(test_exclude_skips_bounded),
        cmocka_unit_test(test_remove_finalized_then_duplicate),
        cmocka_unit_test(test_lookup_pending_and_missing),
        cmocka_unit_test(test_recent_forgets_after_recent_max),
        cmocka_unit_test(test_reused_allocations_hold_their_payloads),
        cmocka_unit_test(test_large_scale),
        cmocka_unit_test(test_expire_oldest_first_bounded),
        cmocka_unit_test(test_expire_with_builds_and_removals),
        cmocka_unit_test(test_ns_top),
        cmocka_unit_test(test_full_pool_evicts_biggest_namespace),
        cmocka_unit_test(test_full_bytes_evicts_enough),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
