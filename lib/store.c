/* The LMDB store (lib/store.h): one environment per data directory, named
 * databases for blocks, certificates, the namespace and tx indexes, the tip and
 * the node's own votes. No consensus rule lives here, only storage invariants.
 *
 * Layout (all integers big-endian, so LMDB's byte order is numeric order):
 *   meta   "magic" -> "seq-store", "version" -> u32, "chain_id" -> u64
 *   blocks height u64 -> canonical block encoding
 *   certs  height u64 -> canonical certificate encoding
 *   hashes block hash -> height u64
 *   ns     ns u64 || height u64 -> first index u32 || count u32 (the block's
 *          transactions are sorted by namespace: one entry per namespace run)
 *   state  "tip" -> height u64 || view u64 || hash, "vote_log" -> u64 1
 *   votes, kept and state "voted_view": own votes and the blocks they
 *          notarize, as versions before the vote log wrote them; open moves
 *          them into the log and empties them (legacy_votes_move)
 * The tx id index lives in its own environment, DIR/txindex, written in the
 * background (lib/txindex.h says why); open indexes again the blocks above
 * the height it is complete up to. Own votes and the blocks they notarize
 * live in the vote log, DIR/votes-a.log and votes-b.log (lib/votelog.h: one
 * device flush per vote, where an LMDB commit takes two). */
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "assert.h"
#include "codec.h"
#include "errors.h"
#include "log.h"
#include "txindex.h"
#include "votelog.h"

_Static_assert(SEQ_STORE_KEPT_MAX == SEQ_VOTELOG_KEPT_MAX, "the store's documented cap is the vote log's");

#define STORE_MAGIC "seq-store"
#define STORE_DBS_MAX 8
#define STORE_FILE_MODE 0600
#define STORE_DIR_BYTES_MAX PATH_MAX
#define STORE_DATA_FILE "data.mdb"
#define STORE_LOCK_FILE "writer.lock" /* flock'ed by the one writing process; holds its pid */

#define HEIGHT_BYTES 8
#define NS_KEY_BYTES (8 + 8)
#define NS_RUN_BYTES (4 + 4)
#define VOTE_KEY_BYTES (8 + 1)
#define TIP_BYTES (8 + 8 + SEQ_HASH_BYTES)
#define CERT_BYTES_MAX \
    (1 + 8 + SEQ_HASH_BYTES + SEQ_BITMAP_BYTES + 4 + SEQ_VALIDATORS_MAX * SEQ_SIG_BYTES)

enum { DB_META, DB_BLOCKS, DB_CERTS, DB_HASHES, DB_NS, DB_VOTES, DB_STATE, DB_KEPT, DB_COUNT };
_Static_assert(DB_COUNT <= STORE_DBS_MAX, "raise STORE_DBS_MAX");

static const char *const db_names[DB_COUNT] = {
    "meta", "blocks", "certs", "hashes", "ns", "votes", "state", "kept",
};

#define KEY_MAGIC "magic"
#define KEY_VERSION "version"
#define KEY_CHAIN_ID "chain_id"
#define KEY_TIP "tip"
#define KEY_VOTED_VIEW "voted_view"
#define KEY_VOTE_LOG "vote_log" /* the vote log exists (its files must too) */


struct seq_store {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    uint64_t chain_id;
    bool read_only;
    char dir[STORE_DIR_BYTES_MAX];
    seq_txindex *txindex;
    seq_votelog *votelog; /* NULL when read-only */
    int writer_fd;        /* STORE_LOCK_FILE, locked; -1 when read-only */
};

/* ---- errors ----------------------------------------------------------------- */

static int mdb_to_seq(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_MAP_FULL:
        return SEQ_EMAP_FULL;
    case MDB_CORRUPTED:
    case MDB_INVALID:
    case MDB_PAGE_NOTFOUND:
        return SEQ_ECORRUPT;
    case MDB_VERSION_MISMATCH:
        return SEQ_EVERSION;
    case MDB_NOTFOUND:
    case ENOENT:
        return SEQ_ENOTFOUND;
    case ENOMEM:
        return SEQ_ENOMEM;
    default:
        return SEQ_ESTORE;
    }
}

/* Logs one line naming the directory and LMDB's reason; returns our code. */
static int store_fail(const char *dir, const char *op, int rc)
{
    int err = mdb_to_seq(rc);
    SEQ_ASSERT(err != 0);
    seq_log_level level = err == SEQ_ENOTFOUND ? SEQ_LOG_WARN : SEQ_LOG_ERROR;
    seq_log(level, "store_error", "dir=%s op=%s err=%s reason=\"%s\"", dir, op,
            seq_errname(err), mdb_strerror(rc));
    return err;
}

/* Stored bytes we cannot make sense of. */
static int store_corrupt(const char *dir, const char *what)
{
    SEQ_ERROR("store_corrupt", "dir=%s what=\"%s\" err=ECORRUPT", dir, what);
    return SEQ_ECORRUPT;
}

static int store_foreign(const char *dir, const char *why)
{
    SEQ_ERROR("store_foreign", "dir=%s why=\"%s\" err=EFOREIGN", dir, why);
    return SEQ_EFOREIGN;
}

/* ---- small LMDB helpers --------------------------------------------------------- */

/* 0, SEQ_ENOTFOUND (not logged: absence is an ordinary answer) or a logged error.
 * val points into the map, valid until the transaction ends. */
static int db_get(const seq_store *s, MDB_txn *txn, int db, const void *key, size_t klen,
                  MDB_val *val)
{
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
    int rc = mdb_get(txn, s->dbi[db], &k, val);
    if (rc == MDB_NOTFOUND)
        return SEQ_ENOTFOUND;
    return rc ? store_fail(s->dir, db_names[db], rc) : 0;
}

/* SEQ_EEXISTS (not logged; val then holds the existing item) when flags has
 * MDB_NOOVERWRITE and the key is present. */
static int db_put(const seq_store *s, MDB_txn *txn, int db, const void *key, size_t klen,
                  MDB_val *val, unsigned flags)
{
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
    int rc = mdb_put(txn, s->dbi[db], &k, val, flags);
    if (rc == MDB_KEYEXIST)
        return SEQ_EEXISTS;
    return rc ? store_fail(s->dir, db_names[db], rc) : 0;
}

static int read_begin(const seq_store *s, MDB_txn **txn)
{
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    return rc ? store_fail(s->dir, "read_begin", rc) : 0;
}

/* A read transaction with a cursor on one database; on error neither is left
 * open. Close with mdb_cursor_close then mdb_txn_abort. */
static int read_cursor_begin(const seq_store *s, int db, const char *what, MDB_txn **txn, MDB_cursor **c)
{
    int err = read_begin(s, txn);
    if (err)
        return err;
    int rc = mdb_cursor_open(*txn, s->dbi[db], c);
    if (rc) {
        mdb_txn_abort(*txn);
        return store_fail(s->dir, what, rc);
    }
    return 0;
}

static int write_begin(const seq_store *s, MDB_txn **txn)
{
    int rc = mdb_txn_begin(s->env, NULL, 0, txn);
    return rc ? store_fail(s->dir, "write_begin", rc) : 0;
}

/* Commits or, when err is set, aborts; returns the first error. */
static int write_end(const seq_store *s, MDB_txn *txn, int err)
{
    if (err) {
        mdb_txn_abort(txn);
        return err;
    }
    int rc = mdb_txn_commit(txn);
    return rc ? store_fail(s->dir, "commit", rc) : 0;
}

static int get_u64(const seq_store *s, MDB_txn *txn, int db, const char *key, uint64_t *out)
{
    MDB_val v;
    int err = db_get(s, txn, db, key, strlen(key), &v);
    if (err)
        return err;
    if (v.mv_size != sizeof(uint64_t))
        return store_corrupt(s->dir, key);
    *out = seq_get_u64be(v.mv_data);
    return 0;
}

static int put_u64(const seq_store *s, MDB_txn *txn, int db, const char *key, uint64_t value)
{
    uint8_t b[sizeof(uint64_t)];
    seq_put_u64be(b, value);
    MDB_val v = {.mv_size = sizeof b, .mv_data = b};
    return db_put(s, txn, db, key, strlen(key), &v, 0);
}

/* ---- open ---------------------------------------------------------------------- */

static bool data_file_exists(const char *dir)
{
    char path[STORE_DIR_BYTES_MAX + sizeof "/" STORE_DATA_FILE];
    snprintf(path, sizeof path, "%s/%s", dir, STORE_DATA_FILE);
    struct stat st;
    return stat(path, &st) == 0;
}

/* One writing process per store, taken before anything is opened: LMDB lets
 * several processes write, and a second seqd on the same home would catch
 * up the tx index and move legacy votes while the first runs (the vote log's
 * own lock came later). The pid is written for the operator's message. */
static int writer_lock(seq_store *s)
{
    char path[STORE_DIR_BYTES_MAX + sizeof "/" STORE_LOCK_FILE];
    snprintf(path, sizeof path, "%s/%s", s->dir, STORE_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, STORE_FILE_MODE);
    if (fd < 0) {
        int e = errno, err = e == ENOENT ? SEQ_ENOTFOUND : SEQ_EIO;
        SEQ_ERROR("store_error", "dir=%s op=lock err=%s reason=\"%s\"", s->dir, seq_errname(err), strerror(e));
        return err;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[24] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e != EWOULDBLOCK) {
            SEQ_ERROR("store_error", "dir=%s op=lock err=EIO reason=\"%s\" hint=\"the data directory must be on "
                      "a filesystem with flock(2), not NFS\"", s->dir, strerror(e));
            return SEQ_EIO;
        }
        SEQ_ERROR("store_locked", "dir=%s pid=%s err=ELOCKED hint=\"another process (pid %s, a seqd?) writes "
                  "this store: stop it first, or give this node its own data directory\"",
                  s->dir, pid[0] ? pid : "?", pid[0] ? pid : "?");
        return SEQ_ELOCKED;
    }
    char pid[24];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        SEQ_WARN("store_lock_pid", "dir=%s reason=\"%s\"", s->dir, strerror(errno)); /* the lock holds anyway */
    s->writer_fd = fd;
    return 0;
}

static int env_open(seq_store *s, const seq_store_opts *opts)
{
    int rc = mdb_env_create(&s->env);
    if (rc)
        return store_fail(s->dir, "env_create", rc);
    size_t map_bytes = opts->map_bytes ? opts->map_bytes : SEQ_STORE_MAP_BYTES_DEFAULT;
    /* NOTLS: read transactions are not tied to a thread, so any thread (and
     * several per thread) may read. */
    unsigned flags = MDB_NOTLS;
    if (opts->read_only)
        flags |= MDB_RDONLY;
    if (opts->no_sync)
        flags |= MDB_NOSYNC;
    rc = mdb_env_set_maxdbs(s->env, STORE_DBS_MAX);
    if (!rc)
        rc = mdb_env_set_maxreaders(s->env, SEQ_STORE_READERS_MAX);
    if (!rc)
        rc = mdb_env_set_mapsize(s->env, map_bytes);
    if (!rc)
        rc = mdb_env_open(s->env, s->dir, flags, STORE_FILE_MODE);
    if (rc) {
        int err = store_fail(s->dir, "env_open", rc);
        mdb_env_close(s->env);
        return err;
    }
    return 0;
}

static int meta_write(const seq_store *s, MDB_txn *txn)
{
    MDB_val magic = {.mv_size = strlen(STORE_MAGIC), .mv_data = (void *)STORE_MAGIC};
    int err = db_put(s, txn, DB_META, KEY_MAGIC, strlen(KEY_MAGIC), &magic, 0);
    if (!err)
        err = put_u64(s, txn, DB_META, KEY_VERSION, SEQ_STORE_VERSION);
    if (!err)
        err = put_u64(s, txn, DB_META, KEY_CHAIN_ID, s->chain_id);
    return err;
}

static int meta_check(const seq_store *s, MDB_txn *txn)
{
    MDB_val v;
    int err = db_get(s, txn, DB_META, KEY_MAGIC, strlen(KEY_MAGIC), &v);
    if (err == SEQ_ENOTFOUND)
        return store_foreign(s->dir, "meta has no magic");
    if (err)
        return err;
    if (v.mv_size != strlen(STORE_MAGIC) || memcmp(v.mv_data, STORE_MAGIC, v.mv_size) != 0)
        return store_foreign(s->dir, "magic differs");
    uint64_t version, chain_id;
    err = get_u64(s, txn, DB_META, KEY_VERSION, &version);
    if (!err)
        err = get_u64(s, txn, DB_META, KEY_CHAIN_ID, &chain_id);
    if (err)
        return err == SEQ_ENOTFOUND ? store_corrupt(s->dir, "meta record incomplete") : err;
    if (version != SEQ_STORE_VERSION && version != SEQ_STORE_VERSION_BEFORE_VOTE_LOG) {
        SEQ_ERROR("store_version", "dir=%s found=%llu want=%d err=EVERSION", s->dir,
                  (unsigned long long)version, SEQ_STORE_VERSION);
        return SEQ_EVERSION;
    }
    if (chain_id != s->chain_id) {
        SEQ_ERROR("store_chain_id", "dir=%s found=%llu want=%llu err=ECHAIN_ID", s->dir,
                  (unsigned long long)chain_id, (unsigned long long)s->chain_id);
        return SEQ_ECHAIN_ID;
    }
    return 0;
}

/* Opens every database but meta; flags is MDB_CREATE for a new store. */
static int dbs_open(seq_store *s, MDB_txn *txn, unsigned flags)
{
    for (int i = DB_META + 1; i < DB_COUNT; i++) {
        int rc = mdb_dbi_open(txn, db_names[i], flags, &s->dbi[i]);
        if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE)
            return store_corrupt(s->dir, db_names[i]);
        if (rc)
            return store_fail(s->dir, db_names[i], rc);
    }
    return 0;
}

/* No meta database: a brand-new environment becomes a store (writer), an
 * empty one means the writer has not created it yet (reader), anything else
 * belongs to somebody else. */
static int store_create(seq_store *s, MDB_txn *txn)
{
    MDB_dbi main_dbi;
    MDB_stat st;
    int rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (!rc)
        rc = mdb_stat(txn, main_dbi, &st);
    if (rc)
        return store_fail(s->dir, "main_db", rc);
    if (st.ms_entries > 0)
        return store_foreign(s->dir, "no meta database");
    if (s->read_only)
        return SEQ_ENOTFOUND;
    rc = mdb_dbi_open(txn, db_names[DB_META], MDB_CREATE, &s->dbi[DB_META]);
    if (rc)
        return store_fail(s->dir, db_names[DB_META], rc);
    int err = dbs_open(s, txn, MDB_CREATE);
    if (!err)
        err = meta_write(s, txn);
    if (!err)
        SEQ_INFO("store_created", "dir=%s chain_id=%llu", s->dir, (unsigned long long)s->chain_id);
    return err;
}

/* Finds or creates the databases and checks the meta record. The handles stay
 * valid after the (also read-only) transaction commits. */
static int dbs_attach(seq_store *s)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, s->read_only ? MDB_RDONLY : 0, &txn);
    if (rc)
        return store_fail(s->dir, "open_txn", rc);
    int err;
    rc = mdb_dbi_open(txn, db_names[DB_META], 0, &s->dbi[DB_META]);
    if (rc == MDB_NOTFOUND)
        err = store_create(s, txn);
    else if (rc == MDB_INCOMPATIBLE)
        err = store_foreign(s->dir, "meta is not a database");
    else if (rc)
        err = store_fail(s->dir, db_names[DB_META], rc);
    else {
        err = meta_check(s, txn);
        if (!err)
            err = dbs_open(s, txn, 0);
    }
    return write_end(s, txn, err);
}

static int block_load(const seq_store *s, MDB_txn *txn, uint64_t height, seq_block **out);
static int tip_read(const seq_store *s, MDB_txn *txn, seq_store_tip *tip);

/* Blocks committed after the tx index's last durable batch (a crash) are
 * indexed again, waiting for it. */
static int index_catch_up(seq_store *s)
{
    MDB_txn *txn;
    int err = read_begin(s, &txn);
    if (err)
        return err;
    seq_store_tip tip;
    err = tip_read(s, txn, &tip);
    uint64_t from = seq_txindex_height(s->txindex) + 1;
    for (uint64_t h = from; !err && h <= tip.height; h++) {
        seq_block *b = NULL;
        if ((err = block_load(s, txn, h, &b)) == 0)
            err = seq_txindex_add(s->txindex, b);
        seq_block_free(b);
    }
    mdb_txn_abort(txn);
    if (!err && tip.height >= from)
        SEQ_INFO("store_index_catch_up", "dir=%s from=%llu to=%llu", s->dir, (unsigned long long)from,
                 (unsigned long long)tip.height);
    return err ? err : seq_txindex_sync(s->txindex);
}

static int votelog_open(seq_store *s, const seq_store_opts *opts);

int seq_store_open(seq_store **out, const char *dir, const seq_store_opts *opts)
{
    if (!out || !dir || !opts || strlen(dir) >= STORE_DIR_BYTES_MAX)
        return SEQ_EINVAL;
    /* Checked first: a read-only open must not even create lock.mdb here. */
    if (opts->read_only && !data_file_exists(dir))
        return SEQ_ENOTFOUND;
    seq_store *s = calloc(1, sizeof *s);
    if (!s)
        return SEQ_ENOMEM;
    memcpy(s->dir, dir, strlen(dir) + 1);
    s->chain_id = opts->chain_id;
    s->read_only = opts->read_only;
    s->writer_fd = -1;
    int err = s->read_only ? 0 : writer_lock(s);
    if (err)
        goto err_after_alloc;
    err = env_open(s, opts);
    if (err)
        goto err_after_lock;
    err = dbs_attach(s);
    if (err)
        goto err_after_env;
    err = seq_txindex_open(&s->txindex, s->dir, opts->map_bytes ? opts->map_bytes : SEQ_STORE_MAP_BYTES_DEFAULT,
                           s->read_only);
    if (err)
        goto err_after_env;
    if (!s->read_only && ((err = index_catch_up(s)) != 0 || (err = votelog_open(s, opts)) != 0)) {
        seq_txindex_close(s->txindex);
        goto err_after_env;
    }
    *out = s;
    return 0;

err_after_env:
    mdb_env_close(s->env);
err_after_lock:
    if (s->writer_fd >= 0)
        close(s->writer_fd);
err_after_alloc:
    free(s);
    return err;
}

void seq_store_close(seq_store *s)
{
    if (!s)
        return;
    seq_txindex_close(s->txindex); /* writes what is pending */
    seq_votelog_close(s->votelog);
    mdb_env_close(s->env);
    if (s->writer_fd >= 0)
        close(s->writer_fd); /* the lock goes last, after everything is written */
    free(s);
}

/* ---- tip ---------------------------------------------------------------------- */

static int tip_read(const seq_store *s, MDB_txn *txn, seq_store_tip *tip)
{
    memset(tip, 0, sizeof *tip);
    MDB_val v;
    int err = db_get(s, txn, DB_STATE, KEY_TIP, strlen(KEY_TIP), &v);
    if (err == SEQ_ENOTFOUND)
        return 0;
    if (err)
        return err;
    if (v.mv_size != TIP_BYTES)
        return store_corrupt(s->dir, "tip");
    const uint8_t *p = v.mv_data;
    tip->height = seq_get_u64be(p);
    tip->view = seq_get_u64be(p + 8);
    memcpy(tip->hash.b, p + 16, SEQ_HASH_BYTES);
    return 0;
}

static int tip_write(const seq_store *s, MDB_txn *txn, const seq_store_tip *tip)
{
    uint8_t b[TIP_BYTES];
    seq_put_u64be(b, tip->height);
    seq_put_u64be(b + 8, tip->view);
    memcpy(b + 16, tip->hash.b, SEQ_HASH_BYTES);
    MDB_val v = {.mv_size = sizeof b, .mv_data = b};
    return db_put(s, txn, DB_STATE, KEY_TIP, strlen(KEY_TIP), &v, 0);
}

int seq_store_tip_get(seq_store *s, seq_store_tip *out)
{
    if (!s || !out)
        return SEQ_EINVAL;
    MDB_txn *txn;
    int err = read_begin(s, &txn);
    if (err)
        return err;
    err = tip_read(s, txn, out);
    mdb_txn_abort(txn);
    return err;
}

/* ---- commit -------------------------------------------------------------------- */

static void ns_key(uint8_t key[NS_KEY_BYTES], seq_ns ns, uint64_t height)
{
    seq_put_u64be(key, ns);
    seq_put_u64be(key + 8, height);
}

/* Storage invariants only: heights continue the tip and each block links to
 * the one below it (which any chain of finalized blocks does). */
static int order_check(const seq_store *s, const seq_store_tip *tip, const seq_block *b)
{
    if (b->h.chain_id != s->chain_id) {
        SEQ_WARN("store_reject", "dir=%s height=%llu chain_id=%llu err=ECHAIN_ID", s->dir,
                 (unsigned long long)b->h.height, (unsigned long long)b->h.chain_id);
        return SEQ_ECHAIN_ID;
    }
    if (tip->height == UINT64_MAX || b->h.height != tip->height + 1) {
        SEQ_WARN("store_reject", "dir=%s height=%llu tip=%llu err=EORDER", s->dir,
                 (unsigned long long)b->h.height, (unsigned long long)tip->height);
        return SEQ_EORDER;
    }
    if (tip->height > 0 && !seq_hash_eq(&b->h.parent, &tip->hash)) {
        SEQ_WARN("store_reject", "dir=%s height=%llu parent=%s tip_hash=%s err=EMISMATCH", s->dir,
                 (unsigned long long)b->h.height, seq_hash_short(&b->h.parent),
                 seq_hash_short(&tip->hash));
        return SEQ_EMISMATCH;
    }
    return 0;
}

/* Encodes straight into the map (MDB_RESERVE): no copy of a large block. */
static int block_put(const seq_store *s, MDB_txn *txn, const seq_block *b)
{
    uint8_t key[HEIGHT_BYTES];
    seq_put_u64be(key, b->h.height);
    MDB_val v = {.mv_size = seq_block_encoded_size(b)};
    int err = db_put(s, txn, DB_BLOCKS, key, sizeof key, &v, MDB_NOOVERWRITE | MDB_RESERVE);
    if (err == SEQ_EEXISTS)
        return store_corrupt(s->dir, "a block above the tip exists");
    if (err)
        return err;
    seq_block_encode(b, v.mv_data);
    return 0;
}

static int cert_put(const seq_store *s, MDB_txn *txn, uint64_t height, const seq_cert *c)
{
    uint8_t key[HEIGHT_BYTES];
    seq_put_u64be(key, height);
    size_t len = seq_cert_encoded_size(c);
    SEQ_ASSERT(len <= CERT_BYTES_MAX);
    MDB_val v = {.mv_size = len};
    int err = db_put(s, txn, DB_CERTS, key, sizeof key, &v, MDB_RESERVE);
    if (err)
        return err;
    seq_cert_encode(c, v.mv_data);
    return 0;
}

static int hash_put(const seq_store *s, MDB_txn *txn, const seq_block *b)
{
    uint8_t height[HEIGHT_BYTES];
    seq_put_u64be(height, b->h.height);
    MDB_val v = {.mv_size = sizeof height, .mv_data = height};
    return db_put(s, txn, DB_HASHES, b->hash.b, SEQ_HASH_BYTES, &v, 0);
}

/* A tx id finalized twice (a leader may re-include one) keeps its first
 * location: the commit of a finalized block must not fail over it. */
/* One namespace-index entry per run of a namespace in the block: a write per
 * namespace per block, not per transaction. */
static int tx_indexes_put(const seq_store *s, MDB_txn *txn, const seq_block *b)
{
    for (uint32_t first = 0, end; first < b->tx_count; first = end) {
        seq_ns ns = b->txs[first].ns;
        for (end = first + 1; end < b->tx_count && b->txs[end].ns == ns;)
            end++;
        uint8_t key[NS_KEY_BYTES], run[NS_RUN_BYTES];
        ns_key(key, ns, b->h.height);
        seq_put_u32be(run, first);
        seq_put_u32be(run + 4, end - first);
        MDB_val v = {.mv_size = sizeof run, .mv_data = run};
        int err = db_put(s, txn, DB_NS, key, sizeof key, &v, 0);
        if (err)
            return err;
    }
    return 0;
}

static int final_put(const seq_store *s, MDB_txn *txn, seq_store_tip *tip, const seq_store_final *f)
{
    const seq_block *b = f->block;
    int err = order_check(s, tip, b);
    if (!err)
        err = block_put(s, txn, b);
    if (!err)
        err = cert_put(s, txn, b->h.height, f->cert);
    if (!err)
        err = hash_put(s, txn, b);
    if (!err)
        err = tx_indexes_put(s, txn, b);
    if (err)
        return err;
    tip->height = b->h.height;
    tip->view = b->h.view;
    tip->hash = b->hash;
    return 0;
}

static int items_check(const seq_store_final *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!items[i].block || !items[i].cert)
            return SEQ_EINVAL;
    return 0;
}

int seq_store_index_flush(seq_store *s)
{
    return s ? seq_txindex_flush(s->txindex) : SEQ_EINVAL;
}

int seq_store_index_sync(seq_store *s)
{
    return s ? seq_txindex_sync(s->txindex) : SEQ_EINVAL;
}

size_t seq_store_index_pending(seq_store *s) { return seq_txindex_unwritten(s->txindex); }

/* Commits a transaction of finalized blocks. It syncs the data pages and
 * writes the meta page unsynced (LMDB's MDB_NOMETASYNC): the store stays
 * intact, and a power loss can at worst forget the last blocks, which range
 * sync fetches again. The next commit's data flush carries the meta page;
 * the vote log's compaction forces it first (votes_settle). */
static int commit_finalized_txn(seq_store *s, MDB_txn *txn, int err)
{
    if (err)
        return write_end(s, txn, err);
    mdb_env_set_flags(s->env, MDB_NOMETASYNC, 1);
    err = write_end(s, txn, err);
    mdb_env_set_flags(s->env, MDB_NOMETASYNC, 0);
    return err;
}

/* The tip moved: the vote log forgets what is settled, and is compacted once
 * it has grown; what compaction drops must stay dropped, so the tip it was
 * settled at is made durable (meta page synced) first. */
static int votes_settle(seq_store *s, const seq_store_tip *tip)
{
    seq_votelog_settle(s->votelog, tip->view, tip->height);
    if (!seq_votelog_compact_due(s->votelog))
        return 0;
    int rc = mdb_env_sync(s->env, 1);
    if (rc)
        return store_fail(s->dir, "sync", rc);
    return seq_votelog_compact(s->votelog);
}

int seq_store_commit_finalized(seq_store *s, const seq_store_final *items, size_t n)
{
    if (!s || (n > 0 && !items))
        return SEQ_EINVAL;
    if (s->read_only)
        return SEQ_EREADONLY;
    int err = items_check(items, n);
    if (err || n == 0)
        return err;
    MDB_txn *txn;
    err = write_begin(s, &txn);
    if (err)
        return err;
    seq_store_tip tip;
    err = tip_read(s, txn, &tip);
    for (size_t i = 0; !err && i < n; i++)
        err = final_put(s, txn, &tip, &items[i]);
    if (!err)
        err = tip_write(s, txn, &tip);
    if ((err = commit_finalized_txn(s, txn, err)) != 0)
        return err;
    for (size_t i = 0; !err && i < n; i++)
        err = seq_txindex_add(s->txindex, items[i].block);
    return err ? err : votes_settle(s, &tip);
}


/* ---- block reads ------------------------------------------------------------------ */

/* Decodes the stored block at height; *out owned by the caller. */
static int block_load(const seq_store *s, MDB_txn *txn, uint64_t height, seq_block **out)
{
    uint8_t key[HEIGHT_BYTES];
    seq_put_u64be(key, height);
    MDB_val v;
    int err = db_get(s, txn, DB_BLOCKS, key, sizeof key, &v);
    if (err)
        return err;
    err = seq_block_decode(out, v.mv_data, v.mv_size);
    if (err == SEQ_ENOMEM)
        return err;
    return err ? store_corrupt(s->dir, "block does not decode") : 0;
}

int seq_store_block_get(seq_store *s, uint64_t height, seq_block **out)
{
    if (!s || !out)
        return SEQ_EINVAL;
    MDB_txn *txn;
    int err = read_begin(s, &txn);
    if (err)
        return err;
    err = block_load(s, txn, height, out);
    mdb_txn_abort(txn);
    return err;
}

/* Decodes the value stored at a height into out; false when it does not decode. */
typedef bool (*height_value_decode)(const MDB_val *v, void *out);

/* The value at height in db, decoded inside one read transaction (LMDB values
 * live only as long as it). `what` names the value in a corruption error. */
static int height_value_get(seq_store *s, int db, uint64_t height, height_value_decode decode, void *out,
                            const char *what)
{
    MDB_txn *txn;
    int err = read_begin(s, &txn);
    if (err)
        return err;
    uint8_t key[HEIGHT_BYTES];
    seq_put_u64be(key, height);
    MDB_val v;
    err = db_get(s, txn, db, key, sizeof key, &v);
    if (!err && !decode(&v, out))
        err = store_corrupt(s->dir, what);
    mdb_txn_abort(txn);
    return err;
}

static bool cert_value_decode(const MDB_val *v, void *out) { return seq_cert_decode(out, v->mv_data, v->mv_size) == 0; }

/* The canonical block encoding starts with the fixed-size header. */
static bool header_value_decode(const MDB_val *v, void *out)
{
    return v->mv_size >= SEQ_HEADER_BYTES && seq_header_decode(out, v->mv_data, SEQ_HEADER_BYTES) == 0;
}

int seq_store_cert_get(seq_store *s, uint64_t height, seq_cert *out)
{
    if (!s || !out)
        return SEQ_EINVAL;
    return height_value_get(s, DB_CERTS, height, cert_value_decode, out, "certificate does not decode");
}

int seq_store_header_get(seq_store *s, uint64_t height, seq_header *out)
{
    if (!s || !out)
        return SEQ_EINVAL;
    return height_value_get(s, DB_BLOCKS, height, header_value_decode, out, "block header does not decode");
}

int seq_store_height_of(seq_store *s, const seq_hash *block_hash, uint64_t *height)
{
    if (!s || !block_hash || !height)
        return SEQ_EINVAL;
    MDB_txn *txn;
    int err = read_begin(s, &txn);
    if (err)
        return err;
    MDB_val v;
    err = db_get(s, txn, DB_HASHES, block_hash->b, SEQ_HASH_BYTES, &v);
    if (!err && v.mv_size != HEIGHT_BYTES)
        err = store_corrupt(s->dir, "hash index value");
    if (!err)
        *height = seq_get_u64be(v.mv_data);
    mdb_txn_abort(txn);
    return err;
}

/* ---- tx reads ---------------------------------------------------------------------- */


int seq_store_tx_find(seq_store *s, const seq_hash *id, uint64_t *height, uint32_t *index)
{
    if (!s || !id || !height || !index)
        return SEQ_EINVAL;
    return seq_txindex_find(s->txindex, id, height, index);
}

int seq_store_txs_finalized(seq_store *s, const seq_hash *ids, size_t n, bool *found)
{
    if (!s || (n > 0 && (!ids || !found)))
        return SEQ_EINVAL;
    return n ? seq_txindex_find_many(s->txindex, ids, n, found) : 0;
}

/* Walks the ns index from (ns, from_height, 0); decodes each block once and
 * yields the indexed transactions from it. */
static int ns_walk(const seq_store *s, MDB_txn *txn, MDB_cursor *c, seq_ns ns, uint64_t from_height,
                   size_t limit, seq_store_ns_cb cb, void *ctx)
{
    uint8_t start[NS_KEY_BYTES];
    ns_key(start, ns, from_height);
    MDB_val k = {.mv_size = sizeof start, .mv_data = start}, v;
    size_t yielded = 0;
    int err = 0;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && !err && (limit == 0 || yielded < limit)) {
        if (k.mv_size != NS_KEY_BYTES || v.mv_size != NS_RUN_BYTES)
            return store_corrupt(s->dir, "ns index entry");
        if (seq_get_u64be(k.mv_data) != ns)
            break;
        uint64_t height = seq_get_u64be((const uint8_t *)k.mv_data + 8);
        uint32_t first = seq_get_u32be(v.mv_data), count = seq_get_u32be((const uint8_t *)v.mv_data + 4);
        seq_block *blk = NULL;
        err = block_load(s, txn, height, &blk);
        if (err)
            return err == SEQ_ENOTFOUND ? store_corrupt(s->dir, "ns index names a missing block") : err;
        if (count == 0 || first > blk->tx_count || count > blk->tx_count - first || blk->txs[first].ns != ns ||
            blk->txs[first + count - 1].ns != ns)
            err = store_corrupt(s->dir, "ns index names wrong txs");
        for (uint32_t i = first; !err && i < first + count && (limit == 0 || yielded < limit); i++) {
            yielded++;
            err = cb(ctx, height, i, &blk->txs[i]);
        }
        seq_block_free(blk);
        if (!err)
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (!err && rc && rc != MDB_NOTFOUND)
        err = store_fail(s->dir, "ns_walk", rc);
    return err;
}

int seq_store_ns_each(seq_store *s, seq_ns ns, uint64_t from_height, size_t limit,
                      seq_store_ns_cb cb, void *ctx)
{
    if (!s || !cb)
        return SEQ_EINVAL;
    MDB_txn *txn;
    MDB_cursor *c;
    int err = read_cursor_begin(s, DB_NS, "ns_cursor", &txn, &c);
    if (err)
        return err;
    err = ns_walk(s, txn, c, ns, from_height, limit, cb, ctx);
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return err;
}

/* ---- own votes ----------------------------------------------------------------------- */

int seq_store_write_votes(seq_store *s, const seq_vote *votes, size_t nv, const seq_block *const *keep, size_t nk)
{
    if (!s || (nv > 0 && !votes) || (nk > 0 && !keep))
        return SEQ_EINVAL;
    if (s->read_only)
        return SEQ_EREADONLY;
    return seq_votelog_append(s->votelog, votes, nv, keep, nk);
}

int seq_store_vote_put(seq_store *s, const seq_vote *own)
{
    if (!s || !own)
        return SEQ_EINVAL;
    return seq_store_write_votes(s, own, 1, NULL, 0);
}

int seq_store_kept_get(seq_store *s, const seq_hash *hash, seq_block **out)
{
    if (!s || !hash || !out)
        return SEQ_EINVAL;
    if (s->read_only)
        return SEQ_EREADONLY;
    int err = seq_votelog_kept_get(s->votelog, hash, out);
    if (err == SEQ_ECORRUPT)
        return store_corrupt(s->dir, "kept block in the vote log does not decode");
    return err;
}

int seq_store_votes_load(seq_store *s, seq_vote *out, size_t cap, size_t *n)
{
    if (!s || !n || (cap > 0 && !out))
        return SEQ_EINVAL;
    *n = 0;
    if (s->read_only)
        return SEQ_EREADONLY;
    *n = seq_votelog_votes(s->votelog, out, cap);
    return 0;
}

int seq_store_highest_view(seq_store *s, uint64_t *view)
{
    if (!s || !view)
        return SEQ_EINVAL;
    if (s->read_only)
        return SEQ_EREADONLY;
    *view = seq_votelog_highest_view(s->votelog);
    return 0;
}

/* ---- votes written by earlier versions ------------------------------------------------ */

static int legacy_vote_decode(seq_vote *v, const MDB_val *val)
{
    seq_dec d;
    seq_dec_init(&d, val->mv_data, val->mv_size);
    v->kind = seq_dec_u8(&d);
    v->view = seq_dec_u64(&d);
    seq_dec_bytes(&d, v->hash.b, SEQ_HASH_BYTES);
    v->signer = seq_dec_u32(&d);
    seq_dec_bytes(&d, v->sig.b, SEQ_SIG_BYTES);
    return seq_dec_done(&d) ? 0 : SEQ_EDECODE;
}

/* Appends the legacy votes above the tip (the newest SEQ_VOTELOG_VOTES_MAX)
 * to the log, SEQ_VOTELOG_APPEND_MAX at a time, oldest first. */
static int legacy_votes_append(seq_store *s, MDB_txn *txn, const seq_store_tip *tip, size_t *moved)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->dbi[DB_VOTES], &c);
    if (rc)
        return store_fail(s->dir, "votes_cursor", rc);
    seq_vote *votes = malloc(SEQ_VOTELOG_VOTES_MAX * sizeof *votes);
    size_t n = 0;
    int err = votes ? 0 : SEQ_ENOMEM;
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_LAST); !err && rc == 0 && n < SEQ_VOTELOG_VOTES_MAX;
         rc = mdb_cursor_get(c, &k, &v, MDB_PREV)) {
        if (k.mv_size != VOTE_KEY_BYTES || legacy_vote_decode(&votes[n], &v) != 0)
            err = store_corrupt(s->dir, "legacy vote");
        else if (seq_get_u64be(k.mv_data) <= tip->view)
            break;
        else
            n++;
    }
    mdb_cursor_close(c);
    for (size_t i = 0; i < n / 2; i++) { /* oldest first */
        seq_vote t = votes[i];
        votes[i] = votes[n - 1 - i];
        votes[n - 1 - i] = t;
    }
    for (size_t at = 0; !err && at < n; at += SEQ_VOTELOG_APPEND_MAX) {
        size_t chunk = n - at < SEQ_VOTELOG_APPEND_MAX ? n - at : SEQ_VOTELOG_APPEND_MAX;
        err = seq_votelog_append(s->votelog, votes + at, chunk, NULL, 0);
    }
    free(votes);
    *moved += err ? 0 : n;
    return err;
}

/* Appends the legacy kept blocks above the tip to the log, one at a time. */
static int legacy_kept_append(seq_store *s, MDB_txn *txn, const seq_store_tip *tip, size_t *moved)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->dbi[DB_KEPT], &c);
    if (rc)
        return store_fail(s->dir, "kept_cursor", rc);
    MDB_val k, v;
    int err = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !err && rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        seq_block *b = NULL;
        if (v.mv_size < HEIGHT_BYTES)
            err = store_corrupt(s->dir, "legacy kept block");
        else if (seq_get_u64be(v.mv_data) <= tip->height)
            continue;
        else if (seq_block_decode(&b, (const uint8_t *)v.mv_data + HEIGHT_BYTES, v.mv_size - HEIGHT_BYTES) != 0)
            err = store_corrupt(s->dir, "legacy kept block does not decode");
        else if ((err = seq_votelog_append(s->votelog, NULL, 0, (const seq_block *const *)&b, 1)) == 0)
            (*moved)++;
        seq_block_free(b);
    }
    mdb_cursor_close(c);
    return err;
}

static int legacy_empty(seq_store *s)
{
    MDB_txn *txn;
    int err = write_begin(s, &txn);
    if (err)
        return err;
    int rc = mdb_drop(txn, s->dbi[DB_VOTES], 0);
    if (!rc)
        rc = mdb_drop(txn, s->dbi[DB_KEPT], 0);
    MDB_val k = {.mv_size = strlen(KEY_VOTED_VIEW), .mv_data = (void *)KEY_VOTED_VIEW};
    if (!rc && (rc = mdb_del(txn, s->dbi[DB_STATE], &k, NULL)) == MDB_NOTFOUND)
        rc = 0;
    if (rc)
        err = store_fail(s->dir, "legacy_empty", rc);
    return write_end(s, txn, err);
}

static bool legacy_present(const seq_store *s, MDB_txn *txn)
{
    MDB_stat votes, kept;
    MDB_val v;
    return (mdb_stat(txn, s->dbi[DB_VOTES], &votes) == 0 && votes.ms_entries > 0) ||
           (mdb_stat(txn, s->dbi[DB_KEPT], &kept) == 0 && kept.ms_entries > 0) ||
           db_get(s, txn, DB_STATE, KEY_VOTED_VIEW, strlen(KEY_VOTED_VIEW), &v) == 0;
}

/* Versions before the vote log kept own votes and kept blocks in LMDB: they
 * move into the log (durably), with the highest voted view, and then the
 * tables are emptied. A crash in between moves them again at the next open:
 * the log takes the identical vote and a block it holds as no-ops. Votes and
 * blocks at or below the tip are settled and not moved. */
static int legacy_votes_move(seq_store *s, const seq_store_tip *tip)
{
    MDB_txn *txn;
    int err = read_begin(s, &txn);
    if (err || !legacy_present(s, txn)) {
        if (!err)
            mdb_txn_abort(txn);
        return err;
    }
    size_t votes = 0, kept = 0;
    uint64_t voted_view = 0;
    err = legacy_votes_append(s, txn, tip, &votes);
    if (!err)
        err = legacy_kept_append(s, txn, tip, &kept);
    if (!err && (err = get_u64(s, txn, DB_STATE, KEY_VOTED_VIEW, &voted_view)) == SEQ_ENOTFOUND)
        err = 0;
    mdb_txn_abort(txn);
    if (!err)
        err = seq_votelog_raise_view(s->votelog, voted_view);
    if (!err)
        err = legacy_empty(s);
    if (!err)
        SEQ_INFO("store_votes_moved", "dir=%s votes=%zu kept=%zu to=vote_log", s->dir, votes, kept);
    return err;
}

/* The marker says a vote log was made for this store: if open then finds
 * none (its files deleted or lost), starting a new one would forget which
 * views this node voted in, and it could vote again in them: refuse. */
static int vote_log_marker_check(seq_store *s)
{
    MDB_txn *txn;
    int err = read_begin(s, &txn);
    if (err)
        return err;
    uint64_t marked = 0;
    err = get_u64(s, txn, DB_STATE, KEY_VOTE_LOG, &marked);
    mdb_txn_abort(txn);
    if (err == SEQ_ENOTFOUND)
        return 0;
    if (!err && seq_votelog_fresh(s->votelog)) {
        SEQ_ERROR("store_vote_log_missing", "dir=%s err=ECORRUPT hint=\"this store had a vote log (votes-a.log, "
                  "votes-b.log) and it is gone: restore it; starting without it is only safe for a node that "
                  "never voted on this chain (then move the store away and let the node sync)\"", s->dir);
        return SEQ_ECORRUPT;
    }
    return err;
}

/* Writes the marker and the version that has the vote log (synced). */
static int vote_log_mark(seq_store *s)
{
    MDB_txn *txn;
    int err = write_begin(s, &txn);
    if (err)
        return err;
    err = put_u64(s, txn, DB_STATE, KEY_VOTE_LOG, 1);
    if (!err)
        err = put_u64(s, txn, DB_META, KEY_VERSION, SEQ_STORE_VERSION);
    return write_end(s, txn, err);
}

static int votelog_open(seq_store *s, const seq_store_opts *opts)
{
    seq_store_tip tip;
    int err = seq_store_tip_get(s, &tip);
    if (err)
        return err;
    seq_votelog_opts vo = {.durable = !opts->no_sync, .compact_bytes = opts->vote_log_compact_bytes,
                           .settled_view = tip.view, .settled_height = tip.height};
    if ((err = seq_votelog_open(&s->votelog, s->dir, &vo)) != 0)
        return err;
    err = vote_log_marker_check(s);
    if (!err)
        err = legacy_votes_move(s, &tip);
    if (!err)
        err = vote_log_mark(s);
    if (err) {
        seq_votelog_close(s->votelog);
        s->votelog = NULL;
    }
    return err;
}


/* ---- usage ------------------------------------------------------------------------------- */

int seq_store_usage(seq_store *s, size_t *used_bytes, size_t *map_bytes)
{
    if (!s || !used_bytes || !map_bytes)
        return SEQ_EINVAL;
    MDB_envinfo info;
    MDB_stat st;
    int rc = mdb_env_info(s->env, &info);
    if (!rc)
        rc = mdb_env_stat(s->env, &st);
    if (rc)
        return store_fail(s->dir, "usage", rc);
    *used_bytes = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
    *map_bytes = info.me_mapsize;
    return 0;
}
