/* Unit tests of lib/reader.c: a real writer process commits finalized blocks
 * with real certificates into an LMDB store over time while this process
 * reads them read-only through the reader, verified against a genesis file;
 * plus a node home, verification failures, resuming and the tip wait. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "config.h"
#include "errors.h"
#include "genesis.h"
#include "home.h"
#include "log.h"
#include "reader.h"
#include "store.h"
#include "types.h"

#define DIR_BYTES_MAX 64
#define PATH_BYTES_MAX 256
#define CHAIN_ID 23
#define N_VALIDATORS 4
#define QUORUM 3
#define CHAIN_MAX 96
#define NS_A 4      /* two txs in every block */
#define NS_B 8      /* one tx every third block */
#define NS_OTHER 2  /* read by nobody */
#define PAYLOAD_BYTES_MAX 48
#define WRITER_BLOCKS 90
#define WRITER_PAUSE_US 4000   /* between the writer's commits: the reader catches up */
#define READ_WAIT_MS 10000     /* per batch: the writer is never that slow */
#define GROUP_MAX 4

typedef struct {
    char dir[DIR_BYTES_MAX];
    char data_dir[PATH_BYTES_MAX];
    char genesis[PATH_BYTES_MAX];
    pid_t child;
    seq_block *blocks[CHAIN_MAX + 1]; /* [0] unused */
    seq_cert certs[CHAIN_MAX + 1];    /* as stored for each height */
    uint32_t n;
} fixture;

static seq_keypair *keys[N_VALIDATORS];
static seq_validators vs;

/* ---- the chain both processes build ----------------------------------------------- */

static uint32_t payload_fill(uint8_t *p, uint64_t height, uint32_t i)
{
    uint32_t len = (uint32_t)(1 + (height * 5 + i) % PAYLOAD_BYTES_MAX);
    for (uint32_t k = 0; k < len; k++)
        p[k] = (uint8_t)(height * 13 + i * 29 + k);
    return len;
}

static int block_build(seq_block **out, uint64_t height, const seq_hash *parent)
{
    uint8_t payloads[4][PAYLOAD_BYTES_MAX];
    seq_tx txs[4];
    uint32_t n = 0;
    for (uint32_t k = 0; k < 2; k++, n++)
        txs[n] = (seq_tx){.ns = NS_A, .len = payload_fill(payloads[n], height, n), .data = payloads[n]};
    txs[n] = (seq_tx){.ns = NS_OTHER, .len = payload_fill(payloads[n], height, n), .data = payloads[n]};
    n++;
    if (height % 3 == 0) {
        txs[n] = (seq_tx){.ns = NS_B, .len = payload_fill(payloads[n], height, n), .data = payloads[n]};
        n++;
    }
    seq_header hd = {.chain_id = CHAIN_ID, .height = height, .view = 2 * height, .parent = *parent,
                     .parent_view = height > 1 ? 2 * (height - 1) : 0, .leader = (uint32_t)(height % N_VALIDATORS),
                     .timestamp_ms = 1700000000000ull + 10 * height};
    return seq_block_build(out, &hd, txs, n);
}

static int cert_sign(seq_cert *c, const seq_block *b)
{
    seq_vote votes[QUORUM];
    for (uint32_t i = 0; i < QUORUM; i++)
        votes[i] = seq_test_vote(SEQ_VOTE_FINALIZE, b->h.view, &b->hash, i, keys[i], CHAIN_ID);
    return seq_cert_build(c, &vs, votes, QUORUM);
}

/* Heights are committed in groups of these sizes, cycling (groups
 * [1] [2-4] [5] [6-7] [8-11] [12] [13] [14-15] [16] ...): the last block's
 * certificate is stored for each height of its group. */
static const uint32_t group_sizes[] = {1, 3, 1, 2, 4, 1, 1, 2};
#define GROUP_SIZES_N (sizeof group_sizes / sizeof group_sizes[0])

/* Builds heights 1..n and the certificates stored for them. 0 or an error. */
static int chain_build(fixture *fx, uint32_t n)
{
    seq_hash parent = {{0}};
    for (uint32_t h = 1; h <= n; h++) {
        int rc = block_build(&fx->blocks[h], h, &parent);
        if (rc)
            return rc;
        parent = fx->blocks[h]->hash;
        fx->n = h;
    }
    for (uint32_t h = 1, g = 0; h <= n; g++) {
        uint32_t size = group_sizes[g % GROUP_SIZES_N];
        uint32_t last = h + size - 1 < n ? h + size - 1 : n;
        int rc = cert_sign(&fx->certs[last], fx->blocks[last]);
        if (rc)
            return rc;
        for (uint32_t k = h; k < last; k++)
            fx->certs[k] = fx->certs[last];
        h = last + 1;
    }
    return 0;
}

/* Commits heights from..to (from a group's first height to a group's last)
 * one group per commit; pause_us between commits. */
static int chain_commit(const fixture *fx, seq_store *s, uint32_t from, uint32_t to, unsigned pause_us)
{
    for (uint32_t h = from; h <= to;) {
        seq_store_final items[GROUP_MAX];
        size_t n = 0;
        bool group_end;
        do { /* a group ends where the stored certificate names its own block */
            items[n++] = (seq_store_final){.block = fx->blocks[h], .cert = &fx->certs[h]};
            group_end = seq_hash_eq(&fx->certs[h].hash, &fx->blocks[h]->hash);
            h++;
        } while (!group_end && h <= to && n < GROUP_MAX);
        int rc = seq_store_commit_finalized(s, items, n);
        if (rc)
            return rc;
        if (pause_us)
            usleep(pause_us);
    }
    return 0;
}

/* ---- fixture ------------------------------------------------------------------------ */

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

static int genesis_write(const char *path)
{
    seq_genesis *g = calloc(1, sizeof *g);
    if (!g)
        return -1;
    g->chain_id = CHAIN_ID;
    g->genesis_time_ms = 1700000000000ull;
    g->n = N_VALIDATORS;
    for (uint32_t i = 0; i < N_VALIDATORS; i++) {
        snprintf(g->validators[i].name, sizeof g->validators[i].name, "node%u", i);
        g->validators[i].key = keys[i]->pk;
        snprintf(g->validators[i].address, sizeof g->validators[i].address, "127.0.0.1:%u", 7600 + i);
    }
    int rc = seq_genesis_save(g, path);
    free(g);
    return rc;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx || seq_test_tmpdir(fx->dir, sizeof fx->dir, "reader") != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    snprintf(fx->data_dir, sizeof fx->data_dir, "%s/data", fx->dir);
    snprintf(fx->genesis, sizeof fx->genesis, "%s/genesis.json", fx->dir);
    if (mkdir(fx->data_dir, 0700) != 0 || genesis_write(fx->genesis) != 0)
        return -1;
    return chain_build(fx, WRITER_BLOCKS) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    if (fx->child > 0) { /* a failed test left its writer running */
        kill(fx->child, SIGKILL);
        waitpid(fx->child, NULL, 0);
    }
    for (uint32_t h = 1; h <= fx->n; h++)
        seq_block_free(fx->blocks[h]);
    int rc = seq_test_rmtree(fx->dir);
    free(fx);
    return rc;
}

static seq_store *store_open_rw(const char *dir)
{
    seq_store_opts o = {.chain_id = CHAIN_ID, .map_bytes = 64u << 20};
    seq_store *s = NULL;
    assert_int_equal(seq_store_open(&s, dir, &o), 0);
    return s;
}

static seq_reader *reader_open(const fixture *fx, const seq_ns *ns, uint32_t ns_count, uint64_t from)
{
    seq_reader_opts o = {.data_dir = fx->data_dir, .genesis_file = fx->genesis, .ns = ns, .ns_count = ns_count,
                         .from_height = from};
    seq_reader *r = NULL;
    char err[256] = "";
    int rc = seq_reader_open(&r, &o, err, sizeof err);
    if (rc)
        fail_msg("reader open: %s", err);
    return r;
}

/* b is namespace ns's part of stored height h: header, slice and payloads. */
static void assert_batch_of(const fixture *fx, const seq_batch *b, uint64_t h, seq_ns ns)
{
    const seq_block *block = fx->blocks[h];
    assert_int_equal(b->header.height, h);
    assert_int_equal(b->ns, ns);
    assert_true(seq_hash_eq(&b->block_hash, &block->hash));
    uint32_t k = 0;
    for (uint32_t i = 0; i < block->tx_count; i++) {
        if (block->txs[i].ns != ns)
            continue;
        assert_true(k < b->tx_count);
        assert_true(seq_hash_eq(&b->txs[k].id, &block->txs[i].id));
        assert_memory_equal(b->txs[k].data, block->txs[i].data, block->txs[i].len);
        k++;
    }
    assert_int_equal(b->tx_count, k);
}

/* Heights 1-4 stored as built, height 5 (a group of its own) with a forged
 * signature in its certificate; the writer stays open. */
static seq_store *store_with_forged_5(const fixture *fx)
{
    seq_store *w = store_open_rw(fx->data_dir);
    assert_int_equal(chain_commit(fx, w, 1, 4, 0), 0);
    seq_cert forged = fx->certs[5];
    assert_true(seq_hash_eq(&forged.hash, &fx->blocks[5]->hash));
    forged.sigs[0].b[5] ^= 1;
    seq_store_final item = {.block = fx->blocks[5], .cert = &forged};
    assert_int_equal(seq_store_commit_finalized(w, &item, 1), 0);
    return w;
}

/* The next read is refused at height 5, and again: the reader stays there. */
static void assert_stays_refused_at_5(seq_reader *r)
{
    seq_batch *b = NULL;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(seq_reader_next(r, &b), SEQ_EBADSIG);
        assert_null(b);
        assert_non_null(strstr(seq_reader_last_error(r), "height 5"));
        assert_int_equal(seq_reader_height(r), 5);
    }
}

/* ---- tests --------------------------------------------------------------------------- */

/* A writer process commits WRITER_BLOCKS heights in groups over time (so
 * many batches carry certificate paths); the reader in this process sees
 * every height of both namespaces exactly once, in order, verified, and
 * waits at the tip in between. */
static void test_reads_while_other_process_writes(void **state)
{
    fixture *fx = *state;
    fx->child = fork();
    assert_true(fx->child >= 0);
    if (fx->child == 0) { /* the writer: its own store handle, opened after fork */
        seq_store_opts o = {.chain_id = CHAIN_ID, .map_bytes = 64u << 20};
        seq_store *w = NULL;
        int rc = seq_store_open(&w, fx->data_dir, &o);
        if (!rc)
            rc = chain_commit(fx, w, 1, WRITER_BLOCKS, WRITER_PAUSE_US);
        seq_store_close(w);
        _exit(rc ? 1 : 0);
    }
    const seq_ns ns[] = {NS_B, NS_A};
    seq_reader *r = reader_open(fx, ns, 2, 1);
    uint32_t tip_waits = 0, paths = 0;
    for (uint64_t h = 1; h <= WRITER_BLOCKS; h++) {
        for (uint32_t k = 0; k < 2; k++) {
            seq_batch *b = NULL;
            int rc = seq_reader_next(r, &b);
            if (rc == SEQ_ENOTFOUND) {
                tip_waits++;
                rc = seq_reader_wait(r, &b, READ_WAIT_MS);
            }
            if (rc)
                fail_msg("height %llu: %s: %s", (unsigned long long)h, seq_strerror(rc), seq_reader_last_error(r));
            assert_batch_of(fx, b, h, ns[k]);
            paths += b->path_len > 0;
            seq_batch_free(b);
        }
    }
    assert_int_equal(seq_reader_batches(r), 2 * WRITER_BLOCKS);
    assert_int_equal(seq_reader_height(r), WRITER_BLOCKS + 1);
    int status = 0;
    assert_int_equal(waitpid(fx->child, &status, 0), fx->child);
    fx->child = 0;
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    seq_batch *b = NULL;
    assert_int_equal(seq_reader_next(r, &b), SEQ_ENOTFOUND); /* nothing above the tip */
    assert_null(b);
    assert_true(tip_waits > 0); /* it really read while the writer wrote */
    assert_true(paths > 0);     /* and checked certificate paths */
    seq_reader_close(r);
}

/* Given a node home, the reader finds the data dir and genesis file its
 * config names, and starts at any height. */
static void test_open_by_home(void **state)
{
    fixture *fx = *state;
    char home[PATH_BYTES_MAX], err[256] = "", path[PATH_BYTES_MAX + 32];
    snprintf(home, sizeof home, "%s/home", fx->dir);
    seq_config c;
    seq_config_defaults(&c);
    assert_int_equal(seq_home_init(home, &c, NULL, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/genesis.json", home);
    assert_int_equal(genesis_write(path), 0);
    snprintf(path, sizeof path, "%s/data", home);
    seq_store *w = store_open_rw(path);
    assert_int_equal(chain_commit(fx, w, 1, 12, 0), 0);
    seq_store_close(w);

    const seq_ns ns[] = {NS_A};
    seq_reader_opts o = {.home = home, .ns = ns, .ns_count = 1, .from_height = 5};
    seq_reader *r = NULL;
    assert_int_equal(seq_reader_open(&r, &o, err, sizeof err), 0);
    for (uint64_t h = 5; h <= 12; h++) {
        seq_batch *b = NULL;
        assert_int_equal(seq_reader_next(r, &b), 0);
        assert_batch_of(fx, b, h, NS_A);
        seq_batch_free(b);
    }
    seq_batch *b = NULL;
    assert_int_equal(seq_reader_next(r, &b), SEQ_ENOTFOUND);
    seq_reader_close(r);
}

/* Verification is on by default: a block committed with a forged
 * certificate is refused (and stays refused); no_verify hands it out. */
static void test_forged_certificate_refused(void **state)
{
    fixture *fx = *state;
    seq_store *w = store_with_forged_5(fx);
    seq_store_close(w);

    const seq_ns ns[] = {NS_A};
    seq_reader *r = reader_open(fx, ns, 1, 4);
    seq_batch *b = NULL;
    assert_int_equal(seq_reader_next(r, &b), 0);
    seq_batch_free(b);
    assert_stays_refused_at_5(r);
    seq_reader_close(r);

    seq_reader_opts o = {.data_dir = fx->data_dir, .genesis_file = fx->genesis, .ns = ns, .ns_count = 1,
                         .from_height = 5, .no_verify = true};
    assert_int_equal(seq_reader_open(&r, &o, NULL, 0), 0);
    assert_int_equal(seq_reader_next(r, &b), 0);
    assert_int_equal(b->header.height, 5);
    seq_batch_free(b);
    seq_reader_close(r);
}

/* Catch-up runs (verify_runs): heights 1..11 of two namespaces, height 5
 * with a forged certificate. With later heights stored, the run's last
 * certificate (height 11) proves 5 final: every batch comes out, 5's with
 * final_by 11. With 5 the newest stored height, its certificate is the
 * run's last: heights 1-4 come out checked one by one, then 5 is refused,
 * and stays refused. */
static void test_verify_runs(void **state)
{
    fixture *fx = *state;
    seq_store *w = store_with_forged_5(fx);

    const seq_ns ns[] = {NS_A, NS_B};
    seq_reader_opts o = {.data_dir = fx->data_dir, .genesis_file = fx->genesis, .ns = ns, .ns_count = 2,
                         .from_height = 1, .verify_runs = true};
    seq_reader *r = NULL;
    seq_batch *b = NULL;
    assert_int_equal(seq_reader_open(&r, &o, NULL, 0), 0);
    for (uint64_t h = 1; h <= 4; h++) {
        for (uint32_t k = 0; k < 2; k++) {
            assert_int_equal(seq_reader_height(r), h);
            int rc = seq_reader_next(r, &b);
            if (rc)
                fail_msg("height %llu: %s", (unsigned long long)h, seq_reader_last_error(r));
            assert_batch_of(fx, b, h, ns[k]);
            assert_int_equal(b->final_by, 0);
            seq_batch_free(b);
        }
    }
    assert_stays_refused_at_5(r);
    assert_int_equal(seq_reader_batches(r), 8);
    seq_reader_close(r);

    assert_int_equal(chain_commit(fx, w, 6, 11, 0), 0);
    seq_store_close(w);
    assert_int_equal(seq_reader_open(&r, &o, NULL, 0), 0);
    for (uint64_t h = 1; h <= 11; h++) {
        for (uint32_t k = 0; k < 2; k++) {
            int rc = seq_reader_next(r, &b);
            if (rc)
                fail_msg("height %llu: %s", (unsigned long long)h, seq_reader_last_error(r));
            assert_batch_of(fx, b, h, ns[k]);
            assert_int_equal(b->final_by, h == 11 ? 0 : 11);
            seq_batch_free(b);
        }
    }
    assert_int_equal(seq_reader_next(r, &b), SEQ_ENOTFOUND);
    assert_int_equal(seq_reader_batches(r), 22);
    assert_int_equal(seq_reader_height(r), 12);
    seq_reader_close(r);
}

/* Resuming with prev_hash: the first batch must continue the rollup's last
 * block; a hash of another block is a gap. */
static void test_resume_checks_prev_hash(void **state)
{
    fixture *fx = *state;
    seq_store *w = store_open_rw(fx->data_dir);
    assert_int_equal(chain_commit(fx, w, 1, 11, 0), 0);
    seq_store_close(w);
    const seq_ns ns[] = {NS_A};
    seq_reader_opts o = {.data_dir = fx->data_dir, .genesis_file = fx->genesis, .ns = ns, .ns_count = 1,
                         .from_height = 6, .prev_hash = &fx->blocks[5]->hash};
    seq_reader *r = NULL;
    seq_batch *b = NULL;
    assert_int_equal(seq_reader_open(&r, &o, NULL, 0), 0);
    assert_int_equal(seq_reader_next(r, &b), 0);
    assert_int_equal(b->header.height, 6);
    seq_batch_free(b);
    seq_reader_close(r);

    o.prev_hash = &fx->blocks[4]->hash;
    assert_int_equal(seq_reader_open(&r, &o, NULL, 0), 0);
    assert_int_equal(seq_reader_next(r, &b), SEQ_EGAP);
    assert_null(b);
    seq_reader_close(r);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#define WAIT_TIMEOUT_MS 120
#define WAIT_SLACK_MS 2000

/* Before the node created its store, and at the tip, there is nothing new:
 * next says so at once, wait gives up after its timeout. */
static void test_nothing_new_and_wait_timeout(void **state)
{
    fixture *fx = *state;
    const seq_ns ns[] = {NS_A};
    seq_reader *r = reader_open(fx, ns, 1, 1);
    seq_batch *b = NULL;
    assert_int_equal(seq_reader_next(r, &b), SEQ_ENOTFOUND); /* no store yet */
    assert_non_null(strstr(seq_reader_last_error(r), "no store yet"));
    uint64_t t0 = now_ms();
    assert_int_equal(seq_reader_wait(r, &b, WAIT_TIMEOUT_MS), SEQ_ETIMEOUT);
    uint64_t took = now_ms() - t0;
    assert_true(took >= WAIT_TIMEOUT_MS && took < WAIT_TIMEOUT_MS + WAIT_SLACK_MS);

    seq_store *w = store_open_rw(fx->data_dir);
    assert_int_equal(chain_commit(fx, w, 1, 1, 0), 0);
    seq_store_close(w);
    assert_int_equal(seq_reader_wait(r, &b, WAIT_TIMEOUT_MS), 0);
    assert_int_equal(b->header.height, 1);
    seq_batch_free(b);
    assert_int_equal(seq_reader_next(r, &b), SEQ_ENOTFOUND); /* at the tip */
    assert_non_null(strstr(seq_reader_last_error(r), "not finalized yet"));
    seq_reader_close(r);
}

/* Bad options and paths are refused with a message naming them. */
static void test_open_refusals(void **state)
{
    fixture *fx = *state;
    const seq_ns ns[] = {NS_A, NS_A};
    char missing[PATH_BYTES_MAX], err[256];
    snprintf(missing, sizeof missing, "%s/nope", fx->dir);
    seq_reader *r = NULL;
    seq_reader_opts o = {.data_dir = missing, .genesis_file = fx->genesis, .ns = ns, .ns_count = 1, .from_height = 1};
    assert_int_equal(seq_reader_open(&r, &o, err, sizeof err), SEQ_ENOTFOUND);
    assert_non_null(strstr(err, missing));
    o.data_dir = fx->data_dir;
    o.genesis_file = missing;
    assert_int_equal(seq_reader_open(&r, &o, err, sizeof err), SEQ_ENOTFOUND);
    assert_non_null(strstr(err, missing));
    o.genesis_file = fx->genesis;
    o.ns_count = 2;
    assert_int_equal(seq_reader_open(&r, &o, err, sizeof err), SEQ_EINVAL);
    assert_non_null(strstr(err, "given twice"));
    o.ns_count = 1;
    o.from_height = 0;
    assert_int_equal(seq_reader_open(&r, &o, err, sizeof err), SEQ_EINVAL);
    o.from_height = 1;
    o.home = fx->dir;
    assert_int_equal(seq_reader_open(&r, &o, err, sizeof err), SEQ_EINVAL); /* home and data dir */
    o.data_dir = NULL;
    assert_int_equal(seq_reader_open(&r, &o, err, sizeof err), SEQ_ENOTFOUND); /* no seqd.conf there */
    assert_null(r);
}

int main(void)
{
    seq_log_set_level(SEQ_LOG_OFF); /* expected failures would log; the asserts say it all */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reads_while_other_process_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_by_home, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_certificate_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_checks_prev_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_new_and_wait_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
