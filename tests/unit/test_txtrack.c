/* Client keys and dropped records: verdicts of keyed submits, bounded
 * memory (oldest forgotten first), forgetting a dropped tx accepted again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "replica.h"
#include "txtrack.h"

static seq_hash id_of(uint32_t i)
{
    seq_hash h;
    seq_hash_compute(&h, (const uint8_t *)&i, sizeof i);
    return h;
}

static void test_keyed_submit_verdicts(void **state)
{
    (void)state;
    seq_txtrack *t = NULL;
    assert_int_equal(seq_txtrack_new(&t, 16, 16), 0);
    const uint8_t key[] = "order-17";
    seq_hash a = id_of(1), b = id_of(2), got;
    assert_int_equal(seq_txtrack_key_check(t, key, sizeof key, &a), 0);
    /* a refused submit does not claim the key */
    assert_int_equal(seq_txtrack_key_commit(t, key, sizeof key, &a, SEQ_EFULL), SEQ_EFULL);
    assert_false(seq_txtrack_key_get(t, key, sizeof key, NULL));
    assert_int_equal(seq_txtrack_key_commit(t, key, sizeof key, &a, 0), 0);
    assert_true(seq_txtrack_key_get(t, key, sizeof key, &got));
    assert_memory_equal(got.b, a.b, SEQ_HASH_BYTES);
    /* the retry of the same tx is fine, even when the mempool calls it a duplicate */
    assert_int_equal(seq_txtrack_key_check(t, key, sizeof key, &a), 0);
    assert_int_equal(seq_txtrack_key_commit(t, key, sizeof key, &a, SEQ_EDUPLICATE), 0);
    /* the same key for another tx is refused */
    assert_int_equal(seq_txtrack_key_check(t, key, sizeof key, &b), SEQ_EEXISTS);
    /* bad keys */
    uint8_t big[SEQ_CLIENT_KEY_BYTES_MAX + 1] = {0};
    assert_int_equal(seq_txtrack_key_check(t, big, sizeof big, &a), SEQ_EINVAL);
    assert_int_equal(seq_txtrack_key_check(t, key, 0, &a), SEQ_EINVAL);
    assert_int_equal(seq_txtrack_key_check(t, big, SEQ_CLIENT_KEY_BYTES_MAX, &a), 0);
    seq_txtrack_free(t);
}

static void test_rings_forget_oldest(void **state)
{
    (void)state;
    seq_txtrack *t = NULL;
    assert_int_equal(seq_txtrack_new(&t, 4, 3), 0);
    for (uint32_t i = 0; i < 10; i++) {
        char key[16];
        int len = snprintf(key, sizeof key, "k%u", i);
        seq_hash id = id_of(i);
        assert_int_equal(seq_txtrack_key_commit(t, (const uint8_t *)key, (size_t)len, &id, 0), 0);
        seq_txtrack_dropped_put(t, &id, SEQ_DROP_EXPIRED);
    }
    for (uint32_t i = 0; i < 10; i++) {
        char key[16];
        int len = snprintf(key, sizeof key, "k%u", i);
        seq_hash id = id_of(i);
        int reason = 0;
        assert_int_equal(seq_txtrack_key_get(t, (const uint8_t *)key, (size_t)len, NULL), i >= 6);
        assert_int_equal(seq_txtrack_dropped_get(t, &id, &reason), i >= 7);
        if (i >= 7)
            assert_int_equal(reason, SEQ_DROP_EXPIRED);
    }
    seq_txtrack_free(t);
}

/* A dropped tx submitted again with its key is no longer reported dropped;
 * the hole it leaves is reused without losing newer entries. */
static void test_accepted_again_forgets_dropped(void **state)
{
    (void)state;
    seq_txtrack *t = NULL;
    assert_int_equal(seq_txtrack_new(&t, 8, 3), 0);
    seq_hash a = id_of(1), b = id_of(2), c = id_of(3), d = id_of(4);
    seq_txtrack_dropped_put(t, &a, SEQ_DROP_EXPIRED);
    seq_txtrack_dropped_put(t, &b, SEQ_DROP_EXPIRED);
    assert_int_equal(seq_txtrack_key_commit(t, (const uint8_t *)"x", 1, &a, 0), 0);
    assert_false(seq_txtrack_dropped_get(t, &a, NULL));
    seq_txtrack_dropped_put(t, &c, SEQ_DROP_EXPIRED);
    seq_txtrack_dropped_put(t, &d, SEQ_DROP_EXPIRED); /* takes a's old slot */
    assert_true(seq_txtrack_dropped_get(t, &b, NULL));
    assert_true(seq_txtrack_dropped_get(t, &c, NULL));
    assert_true(seq_txtrack_dropped_get(t, &d, NULL));
    seq_hash e = id_of(5);
    seq_txtrack_dropped_put(t, &e, SEQ_DROP_EXPIRED); /* forgets b, the oldest */
    assert_false(seq_txtrack_dropped_get(t, &b, NULL));
    assert_true(seq_txtrack_dropped_get(t, &e, NULL));
    seq_txtrack_free(t);
}

static void test_new_rejects_bad_sizes(void **state)
{
    (void)state;
    seq_txtrack *t = NULL;
    assert_int_equal(seq_txtrack_new(&t, 0, 4), SEQ_EINVAL);
    assert_int_equal(seq_txtrack_new(&t, 4, SEQ_TXTRACK_ENTRIES_MAX + 1), SEQ_EINVAL);
    assert_null(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyed_submit_verdicts),
        cmocka_unit_test(test_rings_forget_oldest),
        cmocka_unit_test(test_accepted_again_forgets_dropped),
        cmocka_unit_test(test_new_rejects_bad_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
