/* The read-only reader of a node's store (lib/reader.h).
 *
 * Happy path of seq_reader_next: open the store read-only if not yet; load
 * the block and certificate of the current height once (kept while its
 * namespaces are handed out); cut the current namespace's batch
 * (seq_batch_make); verify it; move to the next namespace, or height. */
#include "reader.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "batch.h"
#include "config.h"
#include "errors.h"
#include "genesis.h"
#include "store.h"

#define RUN_BATCHES_MAX 64       /* batches cut ahead and verified together (verify_runs) */
#define RUN_BYTES_MAX (8u << 20) /* and their payloads, at most */

struct seq_reader {
    char data_dir[SEQ_PATH_BYTES];
    uint64_t chain_id;
    size_t map_bytes;
    seq_store *store;          /* NULL until the first read finds it */
    bool verify;
    seq_verifier verifier;
    uint32_t ns_count;
    seq_ns ns[SEQ_READER_NS_MAX];
    uint64_t height;           /* next batch: (height, ns[ns_next]) */
    uint32_t ns_next;
    seq_block *block;          /* block at height while its namespaces are read */
    seq_cert cert;
    uint64_t batches;
    bool verify_runs;
    seq_batch *run[RUN_BATCHES_MAX]; /* verified, not yet handed out: run[run_pos..run_len) */
    uint32_t run_len, run_pos;
    char err[SEQ_READER_ERR_BYTES];
};

static int fail(seq_reader *r, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(seq_reader *r, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- open ------------------------------------------------------------------------ */

static int opts_check(const seq_reader_opts *o, char *err, size_t err_len)
{
    if (!o->home && !(o->data_dir && o->genesis_file)) {
        seq_err_set(err, err_len, "reader: give a node home, or a data dir and a genesis file");
        return SEQ_EINVAL;
    }
    if (o->home && o->data_dir) {
        seq_err_set(err, err_len, "reader: give a node home or a data dir, not both");
        return SEQ_EINVAL;
    }
    if (!o->ns || o->ns_count == 0 || o->ns_count > SEQ_READER_NS_MAX) {
        seq_err_set(err, err_len, "reader: 1 to %d namespaces, not %" PRIu32, SEQ_READER_NS_MAX, o->ns_count);
        return SEQ_EINVAL;
    }
    for (uint32_t i = 0; i < o->ns_count; i++)
        for (uint32_t k = 0; k < i; k++)
            if (o->ns[i] == o->ns[k]) {
                seq_err_set(err, err_len, "reader: namespace %" PRIu64 " given twice", o->ns[i]);
                return SEQ_EINVAL;
            }
    if (o->from_height == 0) {
        seq_err_set(err, err_len, "reader: heights start at 1");
        return SEQ_EINVAL;
    }
    return 0;
}

/* With a home: the data dir, genesis path and map size its config names. */
static int paths_from_home(const seq_reader_opts *o, char *data_dir, char *genesis, size_t *map_bytes, char *err,
                           size_t err_len)
{
    char config_path[SEQ_PATH_BYTES];
    if (snprintf(config_path, sizeof config_path, "%s/%s", o->home, SEQ_CONFIG_FILE) >= (int)sizeof config_path) {
        seq_err_set(err, err_len, "reader: home path too long: %s", o->home);
        return SEQ_ETOOBIG;
    }
    seq_config *cfg = malloc(sizeof *cfg);
    if (!cfg)
        return SEQ_ENOMEM;
    int rc = seq_config_load(cfg, config_path, err, err_len);
    if (!rc && (rc = seq_config_path(data_dir, SEQ_PATH_BYTES, config_path, cfg->data_dir)) != 0)
        seq_err_set(err, err_len, "%s: data_dir path too long", config_path);
    if (!rc && o->genesis_file)
        snprintf(genesis, SEQ_PATH_BYTES, "%s", o->genesis_file);
    else if (!rc && (rc = seq_config_path(genesis, SEQ_PATH_BYTES, config_path, cfg->genesis_file)) != 0)
        seq_err_set(err, err_len, "%s: genesis_file path too long", config_path);
    if (!rc && !o->map_bytes)
        *map_bytes = (size_t)cfg->store_map_bytes;
    free(cfg);
    return rc;
}

static int genesis_apply(seq_reader *r, const char *path, char *err, size_t err_len)
{
    seq_genesis *g = malloc(sizeof *g);
    if (!g)
        return SEQ_ENOMEM;
    int rc = seq_genesis_load(g, path, err, err_len);
    if (!rc) {
        r->chain_id = g->chain_id;
        seq_verifier_init(&r->verifier, &g->set, g->chain_id);
    }
    free(g);
    return rc;
}

static int data_dir_check(const char *dir, char *err, size_t err_len)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        seq_err_set(err, err_len, "%s: %s (the node's data_dir)", dir, strerror(errno));
        return errno == ENOENT ? SEQ_ENOTFOUND : SEQ_EIO;
    }
    if (!S_ISDIR(st.st_mode)) {
        seq_err_set(err, err_len, "%s: not a directory (the node's data_dir)", dir);
        return SEQ_EINVAL;
    }
    return 0;
}

static int expectations_set(seq_reader *r, const seq_reader_opts *o, char *err, size_t err_len)
{
    for (uint32_t i = 0; i < o->ns_count; i++) {
        int rc = seq_verifier_expect(&r->verifier, o->ns[i], o->from_height, o->prev_hash);
        if (rc) {
            seq_err_set(err, err_len, "reader: namespace %" PRIu64 ": %s", o->ns[i], seq_strerror(rc));
            return rc;
        }
        r->ns[i] = o->ns[i];
    }
    r->ns_count = o->ns_count;
    return 0;
}

int seq_reader_open(seq_reader **out, const seq_reader_opts *o, char *err, size_t err_len)
{
    if (!out || !o)
        return SEQ_EINVAL;
    *out = NULL;
    int rc = opts_check(o, err, err_len);
    if (rc)
        return rc;
    seq_reader *r = calloc(1, sizeof *r);
    char genesis[SEQ_PATH_BYTES];
    if (!r)
        return SEQ_ENOMEM;
    r->map_bytes = o->map_bytes ? o->map_bytes : SEQ_STORE_MAP_BYTES_DEFAULT;
    if (o->home) {
        rc = paths_from_home(o, r->data_dir, genesis, &r->map_bytes, err, err_len);
    } else if (snprintf(r->data_dir, sizeof r->data_dir, "%s", o->data_dir) >= (int)sizeof r->data_dir ||
               snprintf(genesis, sizeof genesis, "%s", o->genesis_file) >= (int)sizeof genesis) {
        seq_err_set(err, err_len, "reader: data dir or genesis path too long");
        rc = SEQ_ETOOBIG;
    }
    if (!rc)
        rc = genesis_apply(r, genesis, err, err_len);
    if (!rc)
        rc = data_dir_check(r->data_dir, err, err_len);
    if (!rc)
        rc = expectations_set(r, o, err, err_len);
    if (rc) {
        free(r);
        return rc;
    }
    r->verify = !o->no_verify;
    r->verify_runs = r->verify && o->verify_runs;
    r->height = o->from_height;
    *out = r;
    return 0;
}

void seq_reader_close(seq_reader *r)
{
    if (!r)
        return;
    seq_block_free(r->block);
    seq_store_close(r->store);
    for (uint32_t i = r->run_pos; i < r->run_len; i++)
        seq_batch_free(r->run[i]);
    free(r);
}

/* ---- reading ----------------------------------------------------------------------- */

static int store_ensure(seq_reader *r)
{
    if (r->store)
        return 0;
    seq_store_opts so = {.chain_id = r->chain_id, .map_bytes = r->map_bytes, .read_only = true};
    int rc = seq_store_open(&r->store, r->data_dir, &so);
    if (rc == SEQ_ENOTFOUND)
        return fail(r, rc, "%s: no store yet (the node has not initialised it)", r->data_dir);
    if (rc == SEQ_ECHAIN_ID)
        return fail(r, rc, "%s: the store of another chain than the genesis's %" PRIu64, r->data_dir, r->chain_id);
    if (rc)
        return fail(r, rc, "%s: cannot open the store read-only: %s", r->data_dir, seq_strerror(rc));
    return 0;
}

/* The writer's data outgrew our map: reopen wider (lib/store.h). */
static bool store_widen(seq_reader *r)
{
    if (r->map_bytes >= SEQ_READER_MAP_BYTES_MAX / 2)
        return false;
    seq_store_close(r->store);
    r->store = NULL;
    r->map_bytes *= 2;
    return true;
}

/* Block and certificate of r->height, kept until its namespaces are read. */
static int block_ensure(seq_reader *r)
{
    if (r->block)
        return 0;
    int rc = seq_store_block_get(r->store, r->height, &r->block);
    if (rc == SEQ_ENOTFOUND)
        return fail(r, rc, "height %" PRIu64 " not finalized yet", r->height);
    if (rc)
        return fail(r, rc, "block %" PRIu64 ": %s", r->height, seq_strerror(rc));
    /* Committed in the transaction that stored the block: absence is damage. */
    rc = seq_store_cert_get(r->store, r->height, &r->cert);
    if (rc) {
        seq_block_free(r->block);
        r->block = NULL;
        return fail(r, rc == SEQ_ENOTFOUND ? SEQ_ECORRUPT : rc, "certificate of height %" PRIu64 ": %s", r->height,
                    seq_strerror(rc));
    }
    return 0;
}

static void advance(seq_reader *r)
{
    if (++r->ns_next < r->ns_count)
        return;
    r->ns_next = 0;
    r->height++;
    seq_block_free(r->block);
    r->block = NULL;
}

/* The batch at the reader's position, cut from the store, not verified;
 * the position moves on only on success. */
static int cut_one(seq_reader *r, seq_batch **out)
{
    int rc;
    if ((rc = store_ensure(r)) || (rc = block_ensure(r)))
        return rc;
    seq_ns ns = r->ns[r->ns_next];
    rc = seq_batch_make(r->store, r->block, &r->cert, ns, out);
    if (rc)  /* the path's headers were committed with the block: absence is damage too */
        return fail(r, rc == SEQ_ENOTFOUND ? SEQ_ECORRUPT : rc, "batch of height %" PRIu64 " ns %" PRIu64 ": %s",
                    r->height, ns, seq_strerror(rc));
    advance(r);
    return 0;
}

/* Back to the batch of b (cut ahead, then refused): the next read is it. */
static void rewind_to(seq_reader *r, const seq_batch *b)
{
    uint32_t i = 0;
    while (i + 1 < r->ns_count && r->ns[i] != b->ns)
        i++;
    if (r->height != b->header.height) {
        seq_block_free(r->block);
        r->block = NULL;
    }
    r->height = b->header.height;
    r->ns_next = i;
}

static int refused(seq_reader *r, const seq_batch *b, int rc, const char *why)
{
    return fail(r, rc, "height %" PRIu64 " ns %" PRIu64 " fails verification: %s (%s)", b->header.height, b->ns,
                seq_strerror(rc), why);
}

/* verify_runs: cuts up to RUN_BATCHES_MAX batches (RUN_BYTES_MAX of
 * payloads) ahead, up to the store's tip, and checks them as one run
 * (seq_verifier_check_run); the ones that pass wait in r->run. A refused
 * batch and those after it are dropped and the reader is put back at it,
 * so it is read (and refused) again next: the reader stays at that batch. */
static int run_fill(seq_reader *r)
{
    uint32_t n = 0;
    size_t bytes = 0;
    int rc = 0;
    while (n < RUN_BATCHES_MAX && bytes < RUN_BYTES_MAX && (rc = cut_one(r, &r->run[n])) == 0) {
        for (uint32_t i = 0; i < r->run[n]->tx_count; i++)
            bytes += r->run[n]->txs[i].len;
        n++;
    }
    if (n == 0)
        return rc; /* nothing new, or the error at this batch */
    r->err[0] = '\0'; /* an error past the run is met again when it comes */
    char why[SEQ_READER_ERR_BYTES / 2] = "";
    uint32_t passed = 0;
    rc = seq_verifier_check_run(&r->verifier, r->run, n, &passed, why, sizeof why);
    if (rc) {
        rewind_to(r, r->run[passed]);
        refused(r, r->run[passed], rc, why);
        for (uint32_t i = passed; i < n; i++)
            seq_batch_free(r->run[i]);
    }
    r->run_len = passed;
    r->run_pos = 0;
    return passed ? 0 : rc;
}

static int read_one(seq_reader *r, seq_batch **out)
{
    if (r->verify_runs) {
        if (r->run_pos == r->run_len) {
            int rc = run_fill(r);
            if (rc)
                return rc;
        }
        *out = r->run[r->run_pos++];
        r->batches++;
        return 0;
    }
    seq_batch *b;
    int rc = cut_one(r, &b);
    if (rc)
        return rc;
    char why[SEQ_READER_ERR_BYTES / 2] = "";
    if (r->verify && (rc = seq_verifier_check(&r->verifier, b, why, sizeof why)) != 0) {
        rewind_to(r, b);
        refused(r, b, rc, why);
        seq_batch_free(b);
        return rc;
    }
    r->batches++;
    *out = b;
    return 0;
}

int seq_reader_next(seq_reader *r, seq_batch **out)
{
    if (!r || !out)
        return SEQ_EINVAL;
    *out = NULL;
    r->err[0] = '\0';
    int rc = read_one(r, out);
    if (rc == SEQ_ESTORE && r->store && store_widen(r))
        rc = read_one(r, out);
    return rc;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int seq_reader_wait(seq_reader *r, seq_batch **out, uint32_t timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int rc = seq_reader_next(r, out);
        if (rc != SEQ_ENOTFOUND)
            return rc;
        uint64_t now = now_ms();
        if (now >= deadline)
            return SEQ_ETIMEOUT;
        uint64_t nap = deadline - now < SEQ_READER_POLL_MS ? deadline - now : SEQ_READER_POLL_MS;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)nap * 1000000L};
        nanosleep(&ts, NULL);
    }
}

uint64_t seq_reader_height(const seq_reader *r)
{
    return r->run_pos < r->run_len ? r->run[r->run_pos]->header.height : r->height;
}
uint64_t seq_reader_batches(const seq_reader *r) { return r->batches; }
const char *seq_reader_last_error(const seq_reader *r) { return r->err; }
