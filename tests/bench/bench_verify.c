/* Verification throughput on one core: what a rollup following one
 * namespace spends to check the stream without trusting the node.
 *
 * Builds a realistic chain once (4 validators with real keys; blocks of
 * --txs transactions of --bytes bytes over --namespaces namespaces, each
 * finalized by a quorum certificate of signed votes), keeps one namespace's
 * batch and one absent namespace's (empty, absence proof) batch per block,
 * then times seq_verifier_check over them, best of --passes. Last lines:
 *   verify: batches_per_s=X txs_per_s=Y validators=4 txs_per_batch=Z
 *   verify-empty: batches_per_s=X validators=4 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "errors.h"
#include "nsproof.h"
#include "types.h"
#include "verify.h"

#define VALIDATORS_N 4
#define CHAIN_ID 0x5345510000000b01ull
#define BENCH_NS 1
#define ABSENT_NS 1000000
#define BLOCKS_LIMIT 100000u
#define PASSES_LIMIT 100u
#define BENCH_RUN 64 /* the client library's run (RUN_BATCHES_MAX in lib/client.c) */

typedef struct {
    uint32_t blocks;
    uint32_t txs;
    uint32_t bytes;
    uint32_t namespaces;
    uint32_t passes;
} bench_cfg;

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_verify: %s: %s\n", what, rc ? seq_strerror(rc) : "failed");
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t parse_u32(const char *flag, const char *s, uint32_t lo, uint32_t hi)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (!s[0] || *end || v < lo || v > hi) {
        fprintf(stderr, "bench_verify: %s wants %u..%u\n", flag, lo, hi);
        exit(2);
    }
    return (uint32_t)v;
}

static bench_cfg parse_args(int argc, char **argv)
{
    bench_cfg c = {.blocks = 2000, .txs = 4000, .bytes = 256, .namespaces = 8, .passes = 3};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--blocks"))
            c.blocks = parse_u32(argv[i], argv[i + 1], 1, BLOCKS_LIMIT);
        else if (!strcmp(argv[i], "--txs"))
            c.txs = parse_u32(argv[i], argv[i + 1], 1, SEQ_BLOCK_TXS_MAX);
        else if (!strcmp(argv[i], "--bytes"))
            c.bytes = parse_u32(argv[i], argv[i + 1], 16, 1u << 16);
        else if (!strcmp(argv[i], "--namespaces"))
            c.namespaces = parse_u32(argv[i], argv[i + 1], 1, 1u << 16);
        else if (!strcmp(argv[i], "--passes"))
            c.passes = parse_u32(argv[i], argv[i + 1], 1, PASSES_LIMIT);
        else {
            fprintf(stderr, "usage: seq-bench-verify [--blocks N] [--txs N] [--bytes N] [--namespaces N] [--passes N]\n");
            exit(2);
        }
    }
    if (argc % 2 == 0) {
        fprintf(stderr, "bench_verify: %s needs a value\n", argv[argc - 1]);
        exit(2);
    }
    return c;
}

/* ---- building the stream ------------------------------------------------------ */

typedef struct {
    seq_keypair *keys[VALIDATORS_N];
    seq_validators vs;
    uint8_t *payloads; /* txs * bytes, rewritten per block */
    seq_tx *txs;
} chain_builder;

static void builder_init(chain_builder *cb, const bench_cfg *cfg)
{
    int rc = seq_crypto_init();
    if (rc)
        die("crypto init", rc);
    seq_pubkey pks[VALIDATORS_N];
    for (int i = 0; i < VALIDATORS_N; i++) {
        uint8_t seed[SEQ_SEED_BYTES] = {(uint8_t)(i + 1), 0xbe};
        rc = seq_keypair_from_seed(&cb->keys[i], seed);
        if (rc)
            die("key", rc);
        pks[i] = cb->keys[i]->pk;
    }
    rc = seq_validators_init(&cb->vs, pks, VALIDATORS_N);
    if (rc)
        die("validators", rc);
    cb->payloads = malloc((size_t)cfg->txs * cfg->bytes);
    cb->txs = malloc((size_t)cfg->txs * sizeof *cb->txs);
    if (!cb->payloads || !cb->txs)
        die("payload buffers", SEQ_ENOMEM);
}

/* Block k: tx i in namespace 1 + i % namespaces, its payload unique (block
 * and index first, then filler). */
static seq_block *build_block(chain_builder *cb, const bench_cfg *cfg, uint32_t k, const seq_hash *parent)
{
    for (uint32_t i = 0; i < cfg->txs; i++) {
        uint8_t *p = cb->payloads + (size_t)i * cfg->bytes;
        memset(p, (int)(i * 31u + k), cfg->bytes);
        memcpy(p, &k, sizeof k);
        memcpy(p + sizeof k, &i, sizeof i);
        cb->txs[i] = (seq_tx){.ns = 1 + i % cfg->namespaces, .len = cfg->bytes, .data = p};
    }
    seq_header tmpl = {
        .chain_id = CHAIN_ID,
        .height = k + 1,
        .view = k + 1,
        .parent = *parent,
        .parent_view = k,
        .leader = (k + 1) % VALIDATORS_N,
        .timestamp_ms = 1700000000000ull + 50ull * k,
    };
    seq_block *b = NULL;
    int rc = seq_block_build(&b, &tmpl, cb->txs, cfg->txs);
    if (rc)
        die("block build", rc);
    return b;
}

/* A quorum (q of the validators, the least a node forms) of finalize votes. */
static void finalize_cert(const chain_builder *cb, const seq_block *b, seq_cert *out)
{
    seq_vote votes[VALIDATORS_N];
    for (uint32_t s = 0; s < cb->vs.q; s++) {
        votes[s] = (seq_vote){.kind = SEQ_VOTE_FINALIZE, .view = b->h.view, .hash = b->hash, .signer = s};
        seq_vote_sign(&votes[s], cb->keys[s], CHAIN_ID);
    }
    int rc = seq_cert_build(out, &cb->vs, votes, cb->vs.q);
    if (rc)
        die("cert build", rc);
}

/* ns's batch of b, as a client holds it after decoding a frame. */
static seq_batch *make_batch(const seq_block *b, const seq_cert *cert, seq_ns ns)
{
    seq_nsproof proof;
    int rc = seq_nsproof_build(b, ns, &proof);
    if (rc)
        die("proof build", rc);
    size_t bytes = 0;
    for (uint32_t i = 0; i < proof.count; i++)
        bytes += b->txs[proof.start + i].len;
    seq_batch *out = NULL;
    uint8_t *payloads = NULL;
    rc = seq_batch_alloc(&out, proof.count, bytes, 0, &payloads);
    if (rc)
        die("batch alloc", rc);
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
    out->proof = proof;
    return out;
}

/* ---- timing ------------------------------------------------------------------- */

/* Seconds for one pass of a fresh verifier over the batches (every one must
 * pass). */
/* Seconds for one pass of a fresh verifier over the batches (every one must
 * pass): one at a time (run 1: seq_verifier_check, what a live stream
 * costs), or in runs of `run` (seq_verifier_check_run, what the client
 * library does with batches already received: a catch-up). */
static double time_pass(const seq_validators *vs, seq_batch **batches, uint32_t n, uint32_t run)
{
    seq_verifier *v = malloc(sizeof *v);
    if (!v)
        die("verifier", SEQ_ENOMEM);
    seq_verifier_init(v, vs, CHAIN_ID);
    char why[160];
    double t0 = now_s();
    for (uint32_t i = 0; i < n; i += run) {
        uint32_t len = n - i < run ? n - i : run, passed = 0;
        int rc = run == 1 ? seq_verifier_check(v, batches[i], why, sizeof why)
                          : seq_verifier_check_run(v, batches + i, len, &passed, why, sizeof why);
        if (rc) {
            fprintf(stderr, "bench_verify: batch %u refused: %s\n", i + passed, why);
            exit(1);
        }
    }
    double dt = now_s() - t0;
    free(v);
    return dt;
}

static double best_pass(const seq_validators *vs, seq_batch **batches, uint32_t n, uint32_t passes, uint32_t run)
{
    double best = 0;
    for (uint32_t p = 0; p < passes; p++) {
        double dt = time_pass(vs, batches, n, run);
        if (p == 0 || dt < best)
            best = dt;
    }
    return best;
}

/* Where one batch's time goes, each part timed alone over every batch: the
 * certificate's q ed25519 verifications, the tx ids recomputed from the
 * payloads, the namespace proof from given ids (leaf and inner hashes), and
 * the whole seq_batch_check. */
static void time_parts(const seq_validators *vs, seq_batch **batches, uint32_t n)
{
    double t0 = now_s();
    for (uint32_t i = 0; i < n; i++)
        if (seq_cert_verify(&batches[i]->cert, vs, CHAIN_ID) != 0)
            die("cert verify", SEQ_EBADSIG);
    double t_cert = now_s() - t0;

    t0 = now_s();
    volatile uint8_t sink = 0; /* keeps the hashing from being optimized away */
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < batches[i]->tx_count; j++) {
            seq_tx tx = batches[i]->txs[j];
            seq_tx_compute_id(&tx);
            sink ^= tx.id.b[0];
        }
    }
    double t_ids = now_s() - t0;

    t0 = now_s();
    for (uint32_t i = 0; i < n; i++) {
        seq_nsproof p = batches[i]->proof;
        p.count = batches[i]->tx_count;
        if (seq_nsproof_verify_ns(&batches[i]->header, batches[i]->ns, batches[i]->txs, &p) != 0)
            die("proof verify", SEQ_EPROOF);
    }
    double t_tree = now_s() - t0;

    t0 = now_s();
    for (uint32_t i = 0; i < n; i++)
        if (seq_batch_check(batches[i], vs, CHAIN_ID, NULL, 0) != 0)
            die("batch check", SEQ_EPROOF);
    double t_all = now_s() - t0;
    (void)sink;
    printf("verify-parts: per batch cert_us=%.1f (%u ed25519) ids_us=%.1f tree_us=%.1f batch_check_us=%.1f\n",
           1e6 * t_cert / n, vs->q, 1e6 * t_ids / n, 1e6 * t_tree / n, 1e6 * t_all / n);
}

int main(int argc, char **argv)
{
    bench_cfg cfg = parse_args(argc, argv);
    chain_builder cb;
    builder_init(&cb, &cfg);
    seq_batch **full = calloc(cfg.blocks, sizeof *full);
    seq_batch **empty = calloc(cfg.blocks, sizeof *empty);
    if (!full || !empty)
        die("batch arrays", SEQ_ENOMEM);

    double t0 = now_s();
    seq_hash parent = {{0}};
    uint64_t txs_total = 0;
    for (uint32_t k = 0; k < cfg.blocks; k++) {
        seq_block *b = build_block(&cb, &cfg, k, &parent);
        seq_cert cert;
        finalize_cert(&cb, b, &cert);
        full[k] = make_batch(b, &cert, BENCH_NS);
        empty[k] = make_batch(b, &cert, ABSENT_NS);
        txs_total += full[k]->tx_count;
        parent = b->hash;
        seq_block_free(b);
    }
    printf("bench_verify: built %u blocks of %u txs x %u bytes over %u namespaces in %.1f s\n", cfg.blocks,
           cfg.txs, cfg.bytes, cfg.namespaces, now_s() - t0);

    time_parts(&cb.vs, full, cfg.blocks);
    double dt_empty = best_pass(&cb.vs, empty, cfg.blocks, cfg.passes, 1);
    double dt_full = best_pass(&cb.vs, full, cfg.blocks, cfg.passes, 1);
    printf("verify: batches_per_s=%.0f txs_per_s=%.0f validators=%d txs_per_batch=%.0f\n", cfg.blocks / dt_full,
           (double)txs_total / dt_full, VALIDATORS_N, (double)txs_total / cfg.blocks);
    printf("verify-empty: batches_per_s=%.0f validators=%d\n", cfg.blocks / dt_empty, VALIDATORS_N);
    double dt_run = best_pass(&cb.vs, full, cfg.blocks, cfg.passes, BENCH_RUN);
    double dt_run_empty = best_pass(&cb.vs, empty, cfg.blocks, cfg.passes, BENCH_RUN);
    printf("verify-run: batches_per_s=%.0f empty_batches_per_s=%.0f txs_per_s=%.0f run=%d (catch-up: one certificate per run)\n",
           cfg.blocks / dt_run, cfg.blocks / dt_run_empty, (double)txs_total / dt_run, BENCH_RUN);

    for (uint32_t k = 0; k < cfg.blocks; k++) {
        seq_batch_free(full[k]);
        seq_batch_free(empty[k]);
    }
    free(full);
    free(empty);
    free(cb.payloads);
    free(cb.txs);
    for (int i = 0; i < VALIDATORS_N; i++)
        seq_keypair_free(cb.keys[i]);
    return 0;
}
