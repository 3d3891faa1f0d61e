/* The in-memory tree gives the same root as seq_payload_root and, for every
 * range and namespace, the very proof seq_nsproof_build gives; every block,
 * built, decoded or cloned, keeps exactly that tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "nmt_tree.h"
#include "nsproof.h"
#include "types.h"

#define N_MAX 40

static seq_block *block_of(uint32_t n, uint32_t ns_spread)
{
    static uint8_t payloads[N_MAX][4];
    seq_tx txs[N_MAX];
    for (uint32_t i = 0; i < n; i++) {
        memcpy(payloads[i], &i, 4);
        txs[i] = (seq_tx){.ns = 10 + (i * 7) % ns_spread, .len = 4, .data = payloads[i]};
    }
    seq_header tmpl = {.chain_id = 1, .height = 1, .view = 1};
    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, &tmpl, txs, n), 0);
    return b;
}

static void assert_same_proof(const seq_nsproof *a, const seq_nsproof *b)
{
    assert_int_equal(a->start, b->start);
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->node_count, b->node_count);
    assert_memory_equal(a->nodes, b->nodes, a->node_count * sizeof a->nodes[0]);
}

static void test_tree_matches_nsproof(void **state)
{
    (void)state;
    for (uint32_t n = 0; n <= N_MAX; n++) {
        seq_block *b = block_of(n, 1 + n / 3);
        seq_nmt_tree t;
        assert_int_equal(seq_nmt_tree_build(&t, b->txs, b->tx_count), 0);
        seq_hash root, want_root;
        seq_nmt_tree_root(&t, &root);
        assert_int_equal(seq_payload_root(b->txs, b->tx_count, &want_root), 0);
        assert_memory_equal(root.b, want_root.b, SEQ_HASH_BYTES);
        assert_memory_equal(root.b, b->h.payload_root.b, SEQ_HASH_BYTES);
        for (seq_ns ns = 8; ns < 12 + n; ns++) { /* present and absent namespaces */
            seq_nsproof want, got;
            assert_int_equal(seq_nsproof_build(b, ns, &want), 0);
            seq_nmt_tree_proof(&t, want.start, want.count, &got);
            assert_same_proof(&want, &got);
            assert_int_equal(seq_nsproof_verify_ns(&b->h, ns, b->txs + got.start, &got), 0);
        }
        for (uint32_t s = 0; s < n; s++)
            for (uint32_t c = 1; s + c <= n; c++) {
                seq_nsproof want, got;
                assert_int_equal(seq_nsproof_build_range(b, s, c, &want), 0);
                seq_nmt_tree_proof(&t, s, c, &got);
                assert_same_proof(&want, &got);
            }
        seq_nmt_tree_free(&t);
        seq_block_free(b);
    }
}

static void assert_same_tree(const seq_nmt_tree *a, const seq_nmt_tree *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->levels, b->levels);
    for (uint32_t l = 0; l < a->levels; l++) {
        uint32_t width = (uint32_t)((l + 1 < a->levels ? a->level[l + 1] : a->level[l] + 1) - a->level[l]);
        assert_memory_equal(a->level[l], b->level[l], width * sizeof a->level[l][0]);
    }
}

/* A block hashes its tree once, when built or checked, and keeps it: the
 * tree of a built block, of the same block decoded from its encoding and of
 * a clone (its own copy, still whole once the original is freed) equals a
 * tree built afresh. */
static void test_block_keeps_its_tree(void **state)
{
    (void)state;
    for (uint32_t n = 0; n <= N_MAX; n += 7) {
        seq_block *b = block_of(n, 1 + n / 3);
        seq_nmt_tree fresh;
        assert_int_equal(seq_nmt_tree_build(&fresh, b->txs, b->tx_count), 0);
        assert_non_null(b->tree);
        assert_same_tree(b->tree, &fresh);

        size_t len = seq_block_encoded_size(b);
        uint8_t *enc = malloc(len);
        assert_non_null(enc);
        seq_block_encode(b, enc);
        seq_block *decoded = NULL;
        assert_int_equal(seq_block_decode(&decoded, enc, len), 0);
        free(enc);
        assert_non_null(decoded->tree);
        assert_same_tree(decoded->tree, &fresh);

        seq_block *copy = seq_block_clone(b);
        assert_non_null(copy);
        seq_block_free(b);
        assert_non_null(copy->tree);
        assert_true(n == 0 || copy->tree->mem != decoded->tree->mem);
        assert_same_tree(copy->tree, &fresh);

        seq_block_free(copy);
        seq_block_free(decoded);
        seq_nmt_tree_free(&fresh);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_matches_nsproof),
        cmocka_unit_test(test_block_keeps_its_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
