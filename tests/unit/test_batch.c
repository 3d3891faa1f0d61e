/* Unit tests of the node side of batches (lib/batch_make.c) and their JSON
 * form (lib/batch_json.c): a real LMDB store in a temp dir holding a chain
 * finalized with real certificates of four validators, some heights
 * finalized as ancestors of a later block (a certificate path). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "batch.h"
#include "batch_json.h"
#include "errors.h"
#include "log.h"
#include "store.h"
#include "types.h"

#define DIR_BYTES_MAX 64
#define CHAIN_ID 11
#define N_VALIDATORS 4
#define QUORUM 3
#define CHAIN_LEN 9
#define NS_A 5       /* in every block */
#define NS_B 9       /* only in even blocks */
#define NS_NONE 7    /* in no block: absence proofs */
#define PAYLOAD_BYTES_MAX 64

/* Heights finalized each by its own certificate, then a group whose last
 * block's certificate finalizes them all (stored for each of them). */
#define OWN_CERT_LAST 4
#define GROUP_FIRST 5
#define GROUP_LAST 8

typedef struct {
    char dir[DIR_BYTES_MAX];
    seq_store *s;
    seq_block *blocks[CHAIN_LEN + 1]; /* [0] unused */
    seq_cert certs[CHAIN_LEN + 1];    /* as stored for each height */
} fixture;

static seq_keypair *keys[N_VALIDATORS];
static seq_validators vs;

/* ---- chain ---------------------------------------------------------------------- */

/* Payloads are binary (zero bytes, high bytes) so the JSON form must encode them. */
static uint32_t payload_fill(uint8_t *p, uint64_t height, uint32_t i)
{
    uint32_t len = (uint32_t)(3 + (height * 7 + i) % 20);
    for (uint32_t k = 0; k < len; k++)
        p[k] = (uint8_t)(height * 31 + i * 17 + k * 251);
    p[0] = 0;
    return len;
}

static seq_block *block_make(uint64_t height, const seq_hash *parent)
{
    uint8_t payloads[4][PAYLOAD_BYTES_MAX];
    seq_tx txs[4];
    uint32_t n = 0;
    /* Given out of namespace order: the block sort puts them in order. */
    if (height % 2 == 0) {
        txs[n] = (seq_tx){.ns = NS_B, .len = payload_fill(payloads[n], height, n), .data = payloads[n]};
        n++;
    }
    for (uint32_t k = 0; k < 2; k++, n++)
        txs[n] = (seq_tx){.ns = NS_A, .len = payload_fill(payloads[n], height, n), .data = payloads[n]};
    txs[n] = (seq_tx){.ns = 1, .len = payload_fill(payloads[n], height, n), .data = payloads[n]};
    n++;
    seq_header hd = {.chain_id = CHAIN_ID, .height = height, .view = 3 * height, .parent = *parent,
                     .parent_view = height > 1 ? 3 * (height - 1) : 0, .leader = (uint32_t)(height % N_VALIDATORS),
                     .timestamp_ms = 1700000000000ull + height};
    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, &hd, txs, n), 0);
    return b;
}

static void cert_make(seq_cert *c, const seq_block *b)
{
    seq_vote votes[QUORUM];
    for (uint32_t i = 0; i < QUORUM; i++)
        votes[i] = seq_test_vote(SEQ_VOTE_FINALIZE, b->h.view, &b->hash, i + 1, keys[i + 1], CHAIN_ID);
    assert_int_equal(seq_cert_build(c, &vs, votes, QUORUM), 0);
}

/* Heights 1..OWN_CERT_LAST one commit each with their own certificate;
 * GROUP_FIRST..GROUP_LAST in one commit under GROUP_LAST's certificate;
 * then the rest one by one. */
static void chain_commit(fixture *fx)
{
    seq_hash parent = {{0}};
    for (uint32_t h = 1; h <= CHAIN_LEN; h++) {
        fx->blocks[h] = block_make(h, &parent);
        parent = fx->blocks[h]->hash;
        cert_make(&fx->certs[h], fx->blocks[h]);
    }
    for (uint32_t h = GROUP_FIRST; h < GROUP_LAST; h++)
        fx->certs[h] = fx->certs[GROUP_LAST];
    for (uint32_t h = 1; h <= CHAIN_LEN;) {
        uint32_t last = h == GROUP_FIRST ? GROUP_LAST : h;
        seq_store_final items[GROUP_LAST - GROUP_FIRST + 1];
        size_t n = 0;
        for (uint32_t k = h; k <= last; k++)
            items[n++] = (seq_store_final){.block = fx->blocks[k], .cert = &fx->certs[k]};
        assert_int_equal(seq_store_commit_finalized(fx->s, items, n), 0);
        h = last + 1;
    }
}

static int setup_group(void **state)
{
    (void)state;
    if (seq_test_keys_make(keys, N_VALIDATORS) != 0)
        return -1;
    seq_pubkey pks[N_VALIDATORS];
    for (int i = 0; i < N_VALIDATORS; i++)
        pks[i] = keys[i]->pk;
    return seq_validators_init(&vs, pks, N_VALIDATORS) == 0 ? 0 : -1;
}

static int teardown_group(void **state)
{
    (void)state;
    seq_test_keys_free(keys, N_VALIDATORS);
    return 0;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (seq_test_tmpdir(fx->dir, sizeof fx->dir, "batch") != 0) {
        free(fx);
        return -1;
    }
    seq_store_opts o = {.chain_id = CHAIN_ID, .map_bytes = 16u << 20};
    if (seq_store_open(&fx->s, fx->dir, &o) != 0) {
        seq_test_rmtree(fx->dir);
        free(fx);
        return -1;
    }
    *state = fx;
    chain_commit(fx);
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    seq_store_close(fx->s);
    for (uint32_t h = 1; h <= CHAIN_LEN; h++)
        seq_block_free(fx->blocks[h]);
    int rc = seq_test_rmtree(fx->dir);
    free(fx);
    return rc;
}

/* ---- helpers ---------------------------------------------------------------------- */

static void assert_header_equal(const seq_header *a, const seq_header *b)
{
    seq_hash ha, hb;
    seq_header_hash(a, &ha);
    seq_header_hash(b, &hb);
    assert_true(seq_hash_eq(&ha, &hb));
}

/* b holds exactly block's ns transactions, in block order, with copied payloads. */
static void assert_slice(const seq_batch *b, const seq_block *block, seq_ns ns)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < block->tx_count; i++) {
        const seq_tx *t = &block->txs[i];
        if (t->ns != ns)
            continue;
        assert_true(k < b->tx_count);
        assert_int_equal(b->txs[k].ns, ns);
        assert_int_equal(b->txs[k].len, t->len);
        assert_true(seq_hash_eq(&b->txs[k].id, &t->id));
        assert_ptr_not_equal(b->txs[k].data, t->data);
        assert_memory_equal(b->txs[k].data, t->data, t->len);
        if (k == 0)
            assert_int_equal(b->proof.start, i);
        k++;
    }
    assert_int_equal(b->tx_count, k);
    assert_int_equal(b->proof.count, k);
}

/* b passes the rollup's checks against the validators alone. */
static void assert_checks(const seq_batch *b)
{
    char why[160] = "";
    int rc = seq_batch_check(b, &vs, CHAIN_ID, why, sizeof why);
    if (rc)
        fail_msg("height %llu ns %llu: %s (%s)", (unsigned long long)b->header.height, (unsigned long long)b->ns,
                 seq_strerror(rc), why);
}

/* Expected batch of ns at height h: header, hashes, certificate, slice, path. */
static void assert_batch(const fixture *fx, const seq_batch *b, uint64_t h, seq_ns ns)
{
    const seq_block *block = fx->blocks[h];
    assert_int_equal(b->ns, ns);
    assert_header_equal(&b->header, &block->h);
    assert_true(seq_hash_eq(&b->block_hash, &block->hash));
    assert_true(seq_hash_eq(&b->prev_batch_hash, &block->h.parent));
    assert_memory_equal(&b->cert, &fx->certs[h], sizeof b->cert);
    assert_slice(b, block, ns);
    assert_int_equal(seq_nsproof_verify_ns(&b->header, ns, b->txs, &b->proof), 0);
    assert_checks(b);
    uint64_t certified = h >= GROUP_FIRST && h <= GROUP_LAST ? GROUP_LAST : h;
    assert_int_equal(b->path_len, certified - h);
    for (uint32_t i = 0; i < b->path_len; i++)
        assert_header_equal(&b->cert_path[i], &fx->blocks[h + 1 + i]->h);
}

/* ---- tests ------------------------------------------------------------------------ */

/* seq_store_header_get gives each stored block's header, nothing above the tip. */
static void test_header_get(void **state)
{
    fixture *fx = *state;
    for (uint32_t h = 1; h <= CHAIN_LEN; h++) {
        seq_header hd;
        assert_int_equal(seq_store_header_get(fx->s, h, &hd), 0);
        assert_header_equal(&hd, &fx->blocks[h]->h);
        assert_int_equal(hd.height, h);
        assert_int_equal(hd.tx_count, fx->blocks[h]->tx_count);
    }
    seq_header hd;
    assert_int_equal(seq_store_header_get(fx->s, CHAIN_LEN + 1, &hd), SEQ_ENOTFOUND);
    assert_int_equal(seq_store_header_get(fx->s, 0, &hd), SEQ_ENOTFOUND);
}

/* Every height and namespace loads as its block's slice with the stored
 * certificate; heights finalized as ancestors carry the path to the
 * certified block, the others none; an absent namespace gives no txs. */
static void test_load_every_height(void **state)
{
    fixture *fx = *state;
    const seq_ns nss[] = {NS_A, NS_B, NS_NONE, 1};
    for (uint32_t h = 1; h <= CHAIN_LEN; h++) {
        for (size_t k = 0; k < sizeof nss / sizeof nss[0]; k++) {
            seq_batch *b = NULL;
            assert_int_equal(seq_batch_load(fx->s, h, nss[k], &b), 0);
            assert_batch(fx, b, h, nss[k]);
            if (nss[k] == NS_NONE || (nss[k] == NS_B && h % 2))
                assert_int_equal(b->tx_count, 0);
            seq_batch_free(b);
        }
    }
    seq_batch *b = NULL;
    assert_int_equal(seq_batch_load(fx->s, CHAIN_LEN + 1, NS_A, &b), SEQ_ENOTFOUND);
    assert_null(b);
}

/* A stream of loaded batches of two namespaces passes the stream verifier
 * from height 1 (continuity included); a batch whose path lost a header or
 * whose payload changed is refused. */
static void test_loaded_stream_verifies(void **state)
{
    fixture *fx = *state;
    seq_verifier *v = malloc(sizeof *v);
    assert_non_null(v);
    seq_verifier_init(v, &vs, CHAIN_ID);
    const seq_ns nss[] = {NS_A, NS_B};
    for (uint32_t h = 1; h <= CHAIN_LEN; h++)
        for (size_t k = 0; k < 2; k++) {
            seq_batch *b = NULL;
            assert_int_equal(seq_batch_load(fx->s, h, nss[k], &b), 0);
            char why[160] = "";
            int rc = seq_verifier_check(v, b, why, sizeof why);
            if (rc)
                fail_msg("height %u: %s (%s)", h, seq_strerror(rc), why);
            seq_batch_free(b);
        }
    assert_int_equal(v->verified, 2 * CHAIN_LEN);
    free(v);

    seq_batch *b = NULL;
    char why[160];
    assert_int_equal(seq_batch_load(fx->s, GROUP_FIRST, NS_A, &b), 0);
    assert_true(b->path_len == GROUP_LAST - GROUP_FIRST);
    b->path_len--; /* the path stops short of the certified block */
    assert_int_not_equal(seq_batch_check(b, &vs, CHAIN_ID, why, sizeof why), 0);
    b->path_len++;
    /* a payload that is not the one the block committed to (its id computed
     * from the bytes, as every builder of a batch does) */
    assert_int_equal(seq_batch_check(b, &vs, CHAIN_ID, why, sizeof why), 0);
    seq_hash committed_id = b->txs[0].id;
    ((uint8_t *)b->txs[0].data)[0] ^= 1;
    seq_tx_compute_id(&b->txs[0]);
    assert_int_not_equal(seq_batch_check(b, &vs, CHAIN_ID, why, sizeof why), 0);
    /* filled by hand, no builder vouching for the ids: the check hashes the
     * payloads itself, so a stale id does not hide the changed bytes */
    b->txs[0].id = committed_id;
    b->ids_from_payloads_ = false;
    assert_int_not_equal(seq_batch_check(b, &vs, CHAIN_ID, why, sizeof why), 0);
    seq_batch_free(b);
}

/* seq_batch_make refuses a certificate the store cannot connect to the
 * block: an unknown hash (ENOTFOUND), a certified block below it or the
 * block's own height with another hash (EMISMATCH). */
static void test_make_bad_certificate(void **state)
{
    fixture *fx = *state;
    const seq_block *block = fx->blocks[GROUP_FIRST];
    seq_batch *b = NULL;
    seq_cert c = fx->certs[GROUP_FIRST];
    c.hash.b[0] ^= 1;
    assert_int_equal(seq_batch_make(fx->s, block, &c, NS_A, &b), SEQ_ENOTFOUND);
    c = fx->certs[2]; /* certifies an ancestor */
    assert_int_equal(seq_batch_make(fx->s, block, &c, NS_A, &b), SEQ_EMISMATCH);
    assert_null(b);
    /* The block in hand is not the stored one at its height: the path from
     * it never reaches the certified block. */
    seq_block *fork = seq_block_clone(block);
    assert_non_null(fork);
    fork->hash.b[1] ^= 1;
    assert_int_equal(seq_batch_make(fx->s, fork, &fx->certs[GROUP_FIRST], NS_A, &b), SEQ_EMISMATCH);
    assert_null(b);
    seq_block_free(fork);
}


/* ---- JSON ------------------------------------------------------------------------- */

static void assert_cert_equal(const seq_cert *a, const seq_cert *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->view, b->view);
    assert_true(seq_hash_eq(&a->hash, &b->hash));
    assert_memory_equal(a->bitmap, b->bitmap, SEQ_BITMAP_BYTES);
    assert_int_equal(a->sig_count, b->sig_count);
    assert_memory_equal(a->sigs, b->sigs, a->sig_count * sizeof a->sigs[0]);
}

static void assert_batches_equal(const seq_batch *a, const seq_batch *b)
{
    assert_header_equal(&a->header, &b->header);
    assert_true(seq_hash_eq(&a->block_hash, &b->block_hash));
    assert_true(seq_hash_eq(&a->prev_batch_hash, &b->prev_batch_hash));
    assert_int_equal(a->ns, b->ns);
    assert_int_equal(a->tx_count, b->tx_count);
    for (uint32_t i = 0; i < a->tx_count; i++) {
        assert_int_equal(a->txs[i].ns, b->txs[i].ns);
        assert_int_equal(a->txs[i].len, b->txs[i].len);
        assert_true(seq_hash_eq(&a->txs[i].id, &b->txs[i].id));
        if (a->txs[i].len)
            assert_memory_equal(a->txs[i].data, b->txs[i].data, a->txs[i].len);
    }
    assert_cert_equal(&a->cert, &b->cert);
    assert_int_equal(a->path_len, b->path_len);
    for (uint32_t i = 0; i < a->path_len; i++)
        assert_header_equal(&a->cert_path[i], &b->cert_path[i]);
    assert_int_equal(a->proof.start, b->proof.start);
    assert_int_equal(a->proof.count, b->proof.count);
    assert_int_equal(a->proof.node_count, b->proof.node_count);
    assert_memory_equal(a->proof.nodes, b->proof.nodes, a->proof.node_count * sizeof a->proof.nodes[0]);
}

/* Through text, as the HTTP port serves it and a client reads it. */
static seq_batch *json_round_trip(const seq_batch *b, bool verified_in)
{
    json_t *j = seq_batch_to_json(b, verified_in);
    assert_non_null(j);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    assert_non_null(text);
    json_error_t jerr;
    json_t *back = json_loads(text, 0, &jerr);
    free(text);
    assert_non_null(back);
    seq_batch *out = NULL;
    bool verified = !verified_in;
    char err[128] = "";
    int rc = seq_batch_from_json(back, &out, &verified, err, sizeof err);
    if (rc)
        fprintf(stderr, "from_json: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(verified, verified_in);
    json_decref(back);
    return out;
}

/* Every batch of the store survives to_json -> text -> from_json unchanged,
 * including certificate paths and absence proofs. */
static void test_json_round_trip(void **state)
{
    fixture *fx = *state;
    const seq_ns nss[] = {NS_A, NS_B, NS_NONE};
    for (uint32_t h = 1; h <= CHAIN_LEN; h++) {
        for (size_t k = 0; k < sizeof nss / sizeof nss[0]; k++) {
            seq_batch *b = NULL;
            assert_int_equal(seq_batch_load(fx->s, h, nss[k], &b), 0);
            seq_batch *back = json_round_trip(b, h % 2 == 0);
            assert_batches_equal(b, back);
            assert_checks(back); /* what a client verifies from the HTTP port */
            seq_batch_free(back);
            seq_batch_free(b);
        }
    }
}

/* The form itself: lowercase hex hashes, base64 data, block indices, signer
 * indices, one header per path entry. */
static void test_json_fields(void **state)
{
    fixture *fx = *state;
    seq_batch *b = NULL;
    assert_int_equal(seq_batch_load(fx->s, GROUP_FIRST, NS_A, &b), 0);
    json_t *j = seq_batch_to_json(b, true);
    assert_non_null(j);
    char hex[2 * SEQ_HASH_BYTES + 1];
    seq_hex(hex, b->block_hash.b, SEQ_HASH_BYTES);
    assert_string_equal(json_string_value(json_object_get(j, "block_hash")), hex);
    for (const char *p = hex; *p; p++)
        assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
    assert_int_equal(json_integer_value(json_object_get(j, "height")), GROUP_FIRST);
    assert_int_equal(json_integer_value(json_object_get(j, "tx_count")), b->tx_count);
    const json_t *tx0 = json_array_get(json_object_get(j, "txs"), 0);
    assert_int_equal(json_integer_value(json_object_get(tx0, "index")), b->proof.start);
    uint8_t data[PAYLOAD_BYTES_MAX];
    size_t len;
    const char *b64 = json_string_value(json_object_get(tx0, "data"));
    assert_int_equal(sodium_base642bin(data, sizeof data, b64, strlen(b64), NULL, &len, NULL,
                                       sodium_base64_VARIANT_ORIGINAL), 0);
    assert_int_equal(len, b->txs[0].len);
    assert_memory_equal(data, b->txs[0].data, len);
    const json_t *cert = json_object_get(j, "cert");
    assert_string_equal(json_string_value(json_object_get(cert, "kind")), "finalize");
    const json_t *signers = json_object_get(cert, "signers");
    assert_int_equal(json_array_size(signers), QUORUM);
    for (size_t i = 0; i < QUORUM; i++)
        assert_int_equal(json_integer_value(json_array_get(signers, i)), i + 1);
    assert_int_equal(json_array_size(json_object_get(j, "cert_path")), GROUP_LAST - GROUP_FIRST);
    assert_true(json_is_true(json_object_get(j, "verified")));
    json_decref(j);
    seq_batch_free(b);
}

/* final_by (a catch-up run's batch proven final by a later one) appears only
 * when set, and survives the round trip. */
static void test_json_final_by(void **state)
{
    fixture *fx = *state;
    seq_batch *b = NULL;
    assert_int_equal(seq_batch_load(fx->s, GROUP_FIRST, NS_A, &b), 0);
    json_t *j = seq_batch_to_json(b, true);
    assert_null(json_object_get(j, "final_by"));
    json_decref(j);
    seq_batch *back = json_round_trip(b, true);
    assert_int_equal(back->final_by, 0);
    seq_batch_free(back);
    b->final_by = GROUP_FIRST + 5;
    j = seq_batch_to_json(b, true);
    assert_int_equal(json_integer_value(json_object_get(j, "final_by")), GROUP_FIRST + 5);
    json_decref(j);
    back = json_round_trip(b, true);
    assert_int_equal(back->final_by, GROUP_FIRST + 5);
    seq_batch_free(back);
    seq_batch_free(b);
}

/* Namespaces and heights above INT64_MAX travel as decimal strings; an
 * empty payload as "". Built by hand: no store holds such a batch. */
static void test_json_big_numbers_and_empty_payload(void **state)
{
    (void)state;
    seq_batch *b;
    uint8_t *payloads;
    assert_int_equal(seq_batch_alloc(&b, 2, 3, 1, &payloads), 0);
    b->ns = UINT64_MAX - 1;
    b->header = (seq_header){.chain_id = CHAIN_ID, .height = (uint64_t)INT64_MAX + 5, .view = UINT64_MAX,
                             .tx_count = 7};
    seq_header_hash(&b->header, &b->block_hash);
    b->cert_path[0] = (seq_header){.chain_id = CHAIN_ID, .height = b->header.height + 1, .parent = b->block_hash};
    memcpy(payloads, "\x00\xff\x80", 3);
    b->txs[0] = (seq_tx){.ns = b->ns, .len = 0, .data = payloads};
    b->txs[1] = (seq_tx){.ns = b->ns, .len = 3, .data = payloads};
    seq_tx_compute_id(&b->txs[0]);
    seq_tx_compute_id(&b->txs[1]);
    b->cert.kind = SEQ_VOTE_FINALIZE;
    b->proof = (seq_nsproof){.start = 4, .count = 2, .node_count = 1,
                             .nodes = {{.min = UINT64_MAX, .max = UINT64_MAX}}};
    json_t *j = seq_batch_to_json(b, false);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "ns")), "18446744073709551614");
    assert_true(json_is_string(json_object_get(j, "height")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "txs"), 0), "data")), "");
    json_decref(j);
    seq_batch *back = json_round_trip(b, false);
    assert_batches_equal(b, back);
    seq_batch_free(back);
    seq_batch_free(b);
}

/* One change to a valid JSON batch; from_json must refuse it with err
 * containing want. */
typedef void (*json_edit)(json_t *j);

static void assert_refused(const seq_batch *b, json_edit edit, int want_rc, const char *want)
{
    json_t *j = seq_batch_to_json(b, true);
    assert_non_null(j);
    edit(j);
    seq_batch *out = NULL;
    char err[160] = "";
    assert_int_equal(seq_batch_from_json(j, &out, NULL, err, sizeof err), want_rc);
    assert_null(out);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not name \"%s\"", err, want);
    json_decref(j);
}

static json_t *tx_of(json_t *j, size_t i) { return json_array_get(json_object_get(j, "txs"), i); }
static json_t *cert_of(json_t *j) { return json_object_get(j, "cert"); }

static void drop_proof(json_t *j) { json_object_del(j, "proof"); }
static void add_unknown(json_t *j) { json_object_set_new(json_object_get(j, "header"), "extra", json_true()); }
static void bad_base64(json_t *j) { json_object_set_new(tx_of(j, 1), "data", json_string("no!t")); }
static void data_changed(json_t *j) { json_object_set_new(tx_of(j, 0), "data", json_string("AAAA")); }
static void index_changed(json_t *j) { json_object_set_new(tx_of(j, 0), "index", json_integer(0)); }
static void tx_count_off(json_t *j) { json_object_set_new(j, "tx_count", json_integer(1)); }
static void height_off(json_t *j) { json_object_set_new(j, "height", json_integer(1)); }
static void negative_view(json_t *j) { json_object_set_new(json_object_get(j, "header"), "view", json_integer(-1)); }
static void hash_short(json_t *j) { json_object_set_new(j, "prev_batch_hash", json_string("abcd")); }
static void block_hash_off(json_t *j)
{
    json_object_set_new(j, "block_hash", json_string("00000000000000000000000000000000"
                                                     "00000000000000000000000000000000"));
}
static void header_changed(json_t *j)
{
    json_object_set_new(json_object_get(j, "header"), "timestamp_ms", json_integer(1));
}
static void signers_unordered(json_t *j)
{
    json_t *s = json_object_get(cert_of(j), "signers");
    json_array_set_new(s, 0, json_integer(3));
}
static void sig_missing(json_t *j) { json_array_remove(json_object_get(cert_of(j), "sigs"), 0); }
static void kind_unknown(json_t *j) { json_object_set_new(cert_of(j), "kind", json_string("approve")); }
static void path_not_array(json_t *j) { json_object_set_new(j, "cert_path", json_object()); }
static void path_entry_bad(json_t *j) { json_array_set_new(json_object_get(j, "cert_path"), 1, json_integer(3)); }
static void node_missing_digest(json_t *j)
{
    json_t *nodes = json_object_get(json_object_get(j, "proof"), "nodes");
    json_object_del(json_array_get(nodes, 0), "digest");
}
static void verified_string(json_t *j) { json_object_set_new(j, "verified", json_string("yes")); }
static void final_by_not_above(json_t *j) { json_object_set(j, "final_by", json_object_get(j, "height")); }
static void final_by_string(json_t *j) { json_object_set_new(j, "final_by", json_string("later")); }
static void too_many_nodes(json_t *j)
{
    json_t *nodes = json_object_get(json_object_get(j, "proof"), "nodes");
    json_t *n0 = json_array_get(nodes, 0);
    while (json_array_size(nodes) <= SEQ_NSPROOF_NODES_MAX)
        json_array_append(nodes, n0);
}

/* Each malformed field is refused and named. */
static void test_json_refuses_bad_shapes(void **state)
{
    fixture *fx = *state;
    seq_batch *b = NULL;
    assert_int_equal(seq_batch_load(fx->s, GROUP_FIRST + 1, NS_A, &b), 0);
    assert_true(b->tx_count >= 2 && b->path_len >= 2 && b->proof.node_count >= 1);
    assert_refused(b, drop_proof, SEQ_EDECODE, "proof: missing");
    assert_refused(b, add_unknown, SEQ_EDECODE, "header.extra: unknown key");
    assert_refused(b, bad_base64, SEQ_EDECODE, "txs[1].data: not base64");
    assert_refused(b, data_changed, SEQ_EDECODE, "txs[0].id: not the hash");
    assert_refused(b, index_changed, SEQ_EDECODE, "txs[0].index");
    assert_refused(b, tx_count_off, SEQ_EDECODE, "tx_count: not the number of txs");
    assert_refused(b, height_off, SEQ_EDECODE, "height: not header.height");
    assert_refused(b, negative_view, SEQ_EDECODE, "header.view: not an unsigned integer");
    assert_refused(b, hash_short, SEQ_EDECODE, "prev_batch_hash: not 64 hex digits");
    assert_refused(b, block_hash_off, SEQ_EDECODE, "block_hash: not the hash of header");
    assert_refused(b, header_changed, SEQ_EDECODE, "block_hash: not the hash of header");
    assert_refused(b, signers_unordered, SEQ_EDECODE, "cert.signers[1]: signers not in ascending order");
    assert_refused(b, sig_missing, SEQ_EDECODE, "cert.sigs: not one per signer");
    assert_refused(b, kind_unknown, SEQ_EDECODE, "cert.kind");
    assert_refused(b, path_not_array, SEQ_EDECODE, "cert_path: not an array");
    assert_refused(b, path_entry_bad, SEQ_EDECODE, "cert_path[1]: not an object");
    assert_refused(b, node_missing_digest, SEQ_EDECODE, "proof.nodes[0].digest: missing");
    assert_refused(b, verified_string, SEQ_EDECODE, "verified: not true or false");
    assert_refused(b, final_by_not_above, SEQ_EDECODE, "final_by: not above height");
    assert_refused(b, final_by_string, SEQ_EDECODE, "final_by");
    assert_refused(b, too_many_nodes, SEQ_EDECODE, "proof.nodes: more than");
    seq_batch_free(b);

    json_t *arr = json_array();
    seq_batch *out = NULL;
    char err[64];
    assert_int_equal(seq_batch_from_json(arr, &out, NULL, err, sizeof err), SEQ_EDECODE);
    assert_string_equal(err, "batch: not an object");
    json_decref(arr);
}

int main(void)
{
    seq_log_set_level(SEQ_LOG_OFF); /* expected failures would log; the asserts say it all */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_header_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_every_height, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loaded_stream_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_make_bad_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_final_by, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_big_numbers_and_empty_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_refuses_bad_shapes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
