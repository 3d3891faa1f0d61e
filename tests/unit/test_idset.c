/* idset: put/get/remove semantics, the all-zero id, reserve, and backward-shift
 * deletion under heavy collisions that wrap around the table's end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "idset.h"

#define IDS_N 1000u
#define OPS_N 60000u
#define VERIFY_EVERY 997u

/* Id i whose hash prefix (first 8 bytes) is prefix: many ids share a home. */
static seq_hash make_id(uint32_t i, uint64_t prefix)
{
    seq_hash id;
    memset(&id, 0, sizeof id);
    memcpy(id.b, &prefix, sizeof prefix);
    memcpy(id.b + 8, &i, sizeof i);
    id.b[12] = 1; /* never the all-zero id */
    return id;
}

/* put stores, get finds, a second put is SEQ_EEXISTS and keeps the first value,
 * remove returns the value once; the all-zero id is an ordinary key. */
static void test_basic_semantics(void **state)
{
    (void)state;
    seq_idset s;
    seq_idset_init(&s);
    int a = 1, b = 2, z = 3;
    seq_hash id = make_id(7, 0x1234), zero;
    memset(&zero, 0, sizeof zero);
    void *v = NULL;
    seq_idset_prefetch(&s, &id); /* an empty set has no table: a no-op */
    assert_false(seq_idset_get(&s, &id, &v));
    assert_false(seq_idset_remove(&s, &id, &v));
    assert_int_equal(seq_idset_put(&s, &id, &a), 0);
    seq_idset_prefetch(&s, &id);
    assert_int_equal(seq_idset_count(&s), 1);
    assert_int_equal(seq_idset_put(&s, &id, &b), SEQ_EEXISTS);
    assert_true(seq_idset_get(&s, &id, &v));
    assert_ptr_equal(v, &a);
    assert_false(seq_idset_get(&s, &zero, NULL));
    assert_int_equal(seq_idset_put(&s, &zero, &z), 0);
    assert_int_equal(seq_idset_put(&s, &zero, &a), SEQ_EEXISTS);
    assert_int_equal(seq_idset_count(&s), 2);
    assert_true(seq_idset_remove(&s, &zero, &v));
    assert_ptr_equal(v, &z);
    assert_false(seq_idset_get(&s, &zero, NULL));
    assert_true(seq_idset_remove(&s, &id, &v));
    assert_ptr_equal(v, &a);
    assert_false(seq_idset_remove(&s, &id, NULL));
    assert_int_equal(seq_idset_count(&s), 0);
    assert_int_equal(seq_idset_reserve(&s, SEQ_IDSET_ENTRIES_MAX + 1), SEQ_ETOOBIG);
    seq_idset_free(&s);
}

/* After reserve(n), n puts never reallocate the table. */
static void test_reserve_prevents_growth(void **state)
{
    (void)state;
    seq_idset s;
    seq_idset_init(&s);
    assert_int_equal(seq_idset_reserve(&s, 1000), 0);
    const seq_idset_slot *table = s.slots;
    uint32_t cap = s.cap;
    for (uint32_t i = 0; i < 1000; i++) {
        seq_hash id = make_id(i, (uint64_t)i * 0x9e3779b97f4a7c15ull);
        assert_int_equal(seq_idset_put(&s, &id, NULL), 0);
    }
    assert_ptr_equal(s.slots, table);
    assert_int_equal(s.cap, cap);
    assert_int_equal(seq_idset_count(&s), 1000);
    seq_idset_free(&s);
}

static uint32_t xorshift(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void verify_all(const seq_idset *s, const seq_hash *ids, const uint8_t *present,
                       uint32_t *tags)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < IDS_N; i++) {
        void *v = NULL;
        bool found = seq_idset_get(s, &ids[i], &v);
        assert_int_equal(found, present[i]);
        if (found)
            assert_ptr_equal(v, &tags[i]);
        count += present[i];
    }
    assert_int_equal(seq_idset_count(s), count);
}

/* Random inserts and deletes of ids crowded onto four homes, two of them at
 * the table's last slots so probe runs wrap, always agree with a reference. */
static void test_clustered_deletes_match_reference(void **state)
{
    (void)state;
    static seq_hash ids[IDS_N];
    static uint8_t present[IDS_N];
    static uint32_t tags[IDS_N];
    const uint64_t prefixes[4] = {UINT64_MAX, UINT64_MAX - 1, 0, 5};
    for (uint32_t i = 0; i < IDS_N; i++)
        ids[i] = make_id(i, prefixes[i % 4]);
    memset(present, 0, sizeof present);
    seq_idset s;
    seq_idset_init(&s);
    uint32_t rng = 0x2545f491u;
    for (uint32_t op = 0; op < OPS_N; op++) {
        /* Bias towards inserting for the first half, deleting after. */
        uint32_t i = xorshift(&rng) % IDS_N;
        bool want_insert = (xorshift(&rng) % 4) < (op < OPS_N / 2 ? 3u : 1u);
        if (want_insert && !present[i]) {
            assert_int_equal(seq_idset_put(&s, &ids[i], &tags[i]), 0);
            present[i] = 1;
        } else if (!want_insert && present[i]) {
            void *v = NULL;
            assert_true(seq_idset_remove(&s, &ids[i], &v));
            assert_ptr_equal(v, &tags[i]);
            present[i] = 0;
        }
        if (op % VERIFY_EVERY == 0)
            verify_all(&s, ids, present, tags);
    }
    verify_all(&s, ids, present, tags);
    seq_idset_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_semantics),
        cmocka_unit_test(test_reserve_prevents_growth),
        cmocka_unit_test(test_clustered_deletes_match_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
