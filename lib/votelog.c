/* Own votes and kept blocks in two append-only files used in turn
 * (lib/votelog.h says why and gives the record layout). */
#include "votelog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "bytes.h"
#include "codec.h"
#include "crypto.h"
#include "errors.h"
#include "log.h"

#define REC_VOTE 1
#define REC_KEPT 2
#define REC_VIEW 3
#define REC_EPOCH 4

#define CHECK_BYTES 16
#define HDR_BYTES (1 + 4 + CHECK_BYTES)
#define VOTE_BODY_BYTES (1 + 8 + SEQ_HASH_BYTES + 4 + SEQ_SIG_BYTES)
#define KEPT_HEAD_BYTES (SEQ_HASH_BYTES + 8)
#define VIEW_BODY_BYTES 8
#define EPOCH_BODY_BYTES (8 + 8) /* epoch u64 || salt[8] */
#define HEADER_BYTES (HDR_BYTES + EPOCH_BODY_BYTES) /* a file's epoch record, at offset 0 */
#define BUF_KEEP_BYTES (16u << 20) /* a larger scratch buffer is freed after use */
/* A record body read back is at most a block's encoding and its head; a
 * larger length is a torn or foreign header, not a record. */
#define BODY_BYTES_MAX (KEPT_HEAD_BYTES + SEQ_BLOCK_BYTES_MAX)

typedef struct {
    seq_hash hash;
    uint64_t height;
    uint64_t rec_off; /* the record's first byte in the file */
    uint32_t rec_len; /* header and body */
} kept_entry;

static const char *const file_names[2] = {SEQ_VOTELOG_FILE_A, SEQ_VOTELOG_FILE_B};

struct seq_votelog {
    int fd[2];
    int active;     /* the file appended to; the other is the spare */
    uint64_t epoch; /* the active file's */
    uint8_t chain[CHECK_BYTES]; /* check of the active file's last record */
    bool durable;
    bool fresh;  /* neither file had an epoch record at open */
    bool failed; /* a write or flush failed: the file's tail is unknown */
    uint64_t compact_bytes;
    uint64_t end; /* end of the active file's valid records: where the next one goes */
    uint64_t compacted_bytes;
    uint64_t settled_view, settled_height;
    uint64_t highest_view;
    seq_vote votes[SEQ_VOTELOG_VOTES_MAX]; /* ascending (view, kind) */
    size_t nvotes;
    kept_entry kept[SEQ_VOTELOG_KEPT_MAX];
    size_t nkept;
    uint8_t *buf; /* one append's records */
    size_t buf_cap;
    char dir[PATH_MAX];
    char path[2][PATH_MAX + sizeof "/" SEQ_VOTELOG_FILE_A];
};

static int io_fail(const seq_votelog *l, int file, const char *op)
{
    SEQ_ERROR("votelog_io", "file=%s op=%s reason=\"%s\" err=EIO", l->path[file], op, strerror(errno));
    return SEQ_EIO;
}

/* ---- records ------------------------------------------------------------------ */

/* Checks are chained: each covers the check of the record before it, back to
 * the file's epoch record, which covers its epoch and a random salt. So a
 * record checks only after exactly the records it was written after: bytes
 * left over from a file's earlier use (or from a compaction a crash cut
 * short and that was then done again), or a record of a torn append whose
 * predecessor did not reach the disk, never read back, even where a later
 * append happens to end on their boundary. */
static void record_check(const uint8_t prev[CHECK_BYTES], uint8_t type, uint32_t body_len, const uint8_t *checked,
                         size_t checked_len, uint8_t out[CHECK_BYTES])
{
    uint8_t head[CHECK_BYTES + 5];
    memcpy(head, prev, CHECK_BYTES);
    head[CHECK_BYTES] = type;
    seq_put_u32be(head + CHECK_BYTES + 1, body_len);
    seq_hasher h;
    seq_hasher_init(&h);
    seq_hasher_update(&h, head, sizeof head);
    seq_hasher_update(&h, checked, checked_len);
    seq_hash full;
    seq_hasher_final(&h, &full);
    memcpy(out, full.b, CHECK_BYTES);
}

/* Which body bytes the check covers: a block's only through its head. */
static size_t checked_len(uint8_t type, uint32_t body_len)
{
    return type == REC_KEPT ? KEPT_HEAD_BYTES : body_len;
}

/* Writes the header of the record whose body is at rec + HDR_BYTES, chained
 * to *chain, and moves *chain to its check. */
static void header_put(uint8_t *rec, uint8_t chain[CHECK_BYTES], uint8_t type, uint32_t body_len)
{
    rec[0] = type;
    seq_put_u32be(rec + 1, body_len);
    record_check(chain, type, body_len, rec + HDR_BYTES, checked_len(type, body_len), rec + 5);
    memcpy(chain, rec + 5, CHECK_BYTES);
}

static void vote_body_put(const seq_vote *v, uint8_t *p)
{
    seq_enc e;
    seq_enc_init(&e, p, VOTE_BODY_BYTES);
    seq_enc_u8(&e, v->kind);
    seq_enc_u64(&e, v->view);
    seq_enc_bytes(&e, v->hash.b, SEQ_HASH_BYTES);
    seq_enc_u32(&e, v->signer);
    seq_enc_bytes(&e, v->sig.b, SEQ_SIG_BYTES);
    SEQ_ASSERT(!e.overflow && e.len == VOTE_BODY_BYTES);
}

static bool kind_valid(uint8_t kind)
{
    return kind == SEQ_VOTE_NOTARIZE || kind == SEQ_VOTE_NULLIFY || kind == SEQ_VOTE_FINALIZE;
}

static int vote_body_get(seq_vote *v, const uint8_t *p, size_t len)
{
    seq_dec d;
    seq_dec_init(&d, p, len);
    v->kind = seq_dec_u8(&d);
    v->view = seq_dec_u64(&d);
    seq_dec_bytes(&d, v->hash.b, SEQ_HASH_BYTES);
    v->signer = seq_dec_u32(&d);
    seq_dec_bytes(&d, v->sig.b, SEQ_SIG_BYTES);
    return seq_dec_done(&d) && kind_valid(v->kind) ? 0 : SEQ_EDECODE;
}

/* ---- what is held ------------------------------------------------------------------ */

static int vote_cmp(const seq_vote *a, uint64_t view, uint8_t kind)
{
    if (a->view != view)
        return a->view < view ? -1 : 1;
    return (a->kind > kind) - (a->kind < kind);
}

/* Index of the first held vote at or after (view, kind). */
static size_t vote_lower_bound(const seq_votelog *l, uint64_t view, uint8_t kind)
{
    size_t lo = 0, hi = l->nvotes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (vote_cmp(&l->votes[mid], view, kind) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const seq_vote *vote_find(const seq_votelog *l, uint64_t view, uint8_t kind)
{
    size_t i = vote_lower_bound(l, view, kind);
    return i < l->nvotes && vote_cmp(&l->votes[i], view, kind) == 0 ? &l->votes[i] : NULL;
}

static bool vote_same(const seq_vote *a, const seq_vote *b)
{
    return a->kind == b->kind && a->view == b->view && a->signer == b->signer &&
           memcmp(a->hash.b, b->hash.b, SEQ_HASH_BYTES) == 0 && memcmp(a->sig.b, b->sig.b, SEQ_SIG_BYTES) == 0;
}

/* Holds v (not held yet) unless it is settled; at the cap the oldest goes. */
static void vote_hold(seq_votelog *l, const seq_vote *v)
{
    if (v->view > l->highest_view)
        l->highest_view = v->view;
    if (v->view <= l->settled_view)
        return;
    size_t i = vote_lower_bound(l, v->view, v->kind);
    if (l->nvotes == SEQ_VOTELOG_VOTES_MAX) {
        if (i == 0)
            return; /* older than everything held */
        memmove(&l->votes[0], &l->votes[1], (i - 1) * sizeof l->votes[0]);
        l->votes[i - 1] = *v;
        return;
    }
    memmove(&l->votes[i + 1], &l->votes[i], (l->nvotes - i) * sizeof l->votes[0]);
    l->votes[i] = *v;
    l->nvotes++;
}

static kept_entry *kept_find(seq_votelog *l, const seq_hash *hash)
{
    for (size_t i = 0; i < l->nkept; i++)
        if (memcmp(l->kept[i].hash.b, hash->b, SEQ_HASH_BYTES) == 0)
            return &l->kept[i];
    return NULL;
}

static void kept_drop(seq_votelog *l, size_t i)
{
    l->kept[i] = l->kept[--l->nkept];
}

/* Holds a block's place unless it is settled; at the cap the lowest goes. */
static void kept_hold(seq_votelog *l, const kept_entry *k)
{
    if (k->height <= l->settled_height || kept_find(l, &k->hash))
        return;
    if (l->nkept == SEQ_VOTELOG_KEPT_MAX) {
        size_t lowest = 0;
        for (size_t i = 1; i < l->nkept; i++)
            if (l->kept[i].height < l->kept[lowest].height)
                lowest = i;
        if (l->kept[lowest].height >= k->height)
            return;
        kept_drop(l, lowest);
    }
    l->kept[l->nkept++] = *k;
}

void seq_votelog_settle(seq_votelog *l, uint64_t tip_view, uint64_t tip_height)
{
    if (tip_view > l->settled_view) {
        l->settled_view = tip_view;
        size_t cut = vote_lower_bound(l, tip_view, UINT8_MAX);
        memmove(&l->votes[0], &l->votes[cut], (l->nvotes - cut) * sizeof l->votes[0]);
        l->nvotes -= cut;
    }
    if (tip_height > l->settled_height) {
        l->settled_height = tip_height;
        for (size_t i = l->nkept; i-- > 0;)
            if (l->kept[i].height <= tip_height)
                kept_drop(l, i);
    }
}

/* ---- file i/o ------------------------------------------------------------------ */

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w, n -= (size_t)w, off += (uint64_t)w;
    }
    return 0;
}

/* 1: all n bytes read; 0: the file ends first; -1: an error (errno). */
static int read_all(int fd, uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        p += r, n -= (size_t)r, off += (uint64_t)r;
    }
    return 1;
}

static int flush_fd(const seq_votelog *l, int fd)
{
    return l->durable && fdatasync(fd) != 0 ? -1 : 0;
}

/* The scratch buffer goes back to the system after a block of many MB. */
static void buf_trim(seq_votelog *l)
{
    if (l->buf_cap > BUF_KEEP_BYTES) {
        free(l->buf);
        l->buf = NULL;
        l->buf_cap = 0;
    }
}

static int buf_reserve(seq_votelog *l, size_t n)
{
    return seq_bytes_reserve(&l->buf, &l->buf_cap, n, 4096);
}

/* ---- reading a file back ------------------------------------------------------------ */

typedef enum { READ_OK, READ_TORN, READ_IO, READ_NOMEM, READ_CONFLICT } read_result;

/* Applies one record read back; READ_TORN when it does not check. */
static read_result record_apply(seq_votelog *l, uint8_t type, const uint8_t *body, uint32_t len, uint64_t off)
{
    if (type == REC_VOTE) {
        seq_vote v;
        if (vote_body_get(&v, body, len) != 0)
            return READ_TORN;
        const seq_vote *held = vote_find(l, v.view, v.kind);
        if (held && !vote_same(held, &v)) {
            SEQ_ERROR("votelog_conflict", "file=%s offset=%llu view=%llu kind=%s err=ECORRUPT",
                      l->path[l->active], (unsigned long long)off, (unsigned long long)v.view,
                      seq_vote_kind_name(v.kind));
            return READ_CONFLICT;
        }
        if (!held)
            vote_hold(l, &v);
        return READ_OK;
    }
    if (type == REC_VIEW) {
        if (len != VIEW_BODY_BYTES)
            return READ_TORN;
        uint64_t view = seq_get_u64be(body);
        if (view > l->highest_view)
            l->highest_view = view;
        return READ_OK;
    }
    if (type != REC_KEPT || len <= KEPT_HEAD_BYTES)
        return READ_TORN;
    kept_entry k = {.height = seq_get_u64be(body + SEQ_HASH_BYTES), .rec_off = off, .rec_len = HDR_BYTES + len};
    memcpy(k.hash.b, body, SEQ_HASH_BYTES);
    seq_block *b = NULL;
    int rc = seq_block_decode(&b, body + KEPT_HEAD_BYTES, len - KEPT_HEAD_BYTES);
    if (rc == SEQ_ENOMEM)
        return READ_NOMEM; /* not a torn record: the records after it must not be lost */
    bool whole = rc == 0 && memcmp(b->hash.b, k.hash.b, SEQ_HASH_BYTES) == 0 && b->h.height == k.height;
    seq_block_free(b);
    if (!whole)
        return READ_TORN;
    kept_hold(l, &k);
    return READ_OK;
}

/* Whether a record of this type may have this body length (checked before
 * a body is read, so a garbage length costs no large allocation). */
static bool length_valid(uint8_t type, uint32_t len)
{
    switch (type) {
    case REC_VOTE:
        return len == VOTE_BODY_BYTES;
    case REC_VIEW:
        return len == VIEW_BODY_BYTES;
    case REC_KEPT:
        return len > KEPT_HEAD_BYTES && len <= BODY_BYTES_MAX;
    default:
        return false; /* the epoch record is only read at offset 0 */
    }
}

/* Reads the record at off of the active file into l->buf (its body) and
 * checks it against l->chain, which then moves to its check; *type, *len
 * and *next describe it. */
static read_result record_read(seq_votelog *l, uint64_t off, uint8_t *type, uint32_t *len, uint64_t *next)
{
    uint8_t hdr[HDR_BYTES];
    int fd = l->fd[l->active];
    int r = read_all(fd, hdr, sizeof hdr, off);
    if (r <= 0)
        return r < 0 ? READ_IO : READ_TORN;
    *type = hdr[0];
    *len = seq_get_u32be(hdr + 1);
    if (!length_valid(*type, *len))
        return READ_TORN;
    if (buf_reserve(l, *len) != 0)
        return READ_NOMEM;
    if ((r = read_all(fd, l->buf, *len, off + HDR_BYTES)) <= 0)
        return r < 0 ? READ_IO : READ_TORN;
    uint8_t check[CHECK_BYTES];
    record_check(l->chain, *type, *len, l->buf, checked_len(*type, *len), check);
    if (memcmp(check, hdr + 5, CHECK_BYTES) != 0)
        return READ_TORN;
    memcpy(l->chain, check, CHECK_BYTES);
    *next = off + HDR_BYTES + *len;
    return READ_OK;
}

static const uint8_t chain_start[CHECK_BYTES];

/* A file's epoch, from its first record, and that record's check (where the
 * file's chain starts); 0 when it has none that checks. */
static uint64_t file_epoch(seq_votelog *l, int file, uint8_t chain[CHECK_BYTES])
{
    uint8_t hdr[HEADER_BYTES];
    if (read_all(l->fd[file], hdr, sizeof hdr, 0) != 1 || hdr[0] != REC_EPOCH ||
        seq_get_u32be(hdr + 1) != EPOCH_BODY_BYTES)
        return 0;
    uint8_t check[CHECK_BYTES];
    record_check(chain_start, REC_EPOCH, EPOCH_BODY_BYTES, hdr + HDR_BYTES, EPOCH_BODY_BYTES, check);
    if (memcmp(check, hdr + 5, CHECK_BYTES) != 0)
        return 0;
    memcpy(chain, check, CHECK_BYTES);
    return seq_get_u64be(hdr + HDR_BYTES);
}

/* Reads the active file's records after its epoch record. The first that
 * does not check ends them (a torn append, what is left of the file's
 * earlier use, or a record whose predecessor never reached the disk): appends
 * go on from there. */
static int read_back(seq_votelog *l)
{
    uint64_t off = HEADER_BYTES;
    size_t records = 0;
    for (;;) {
        uint8_t type = 0;
        uint32_t len = 0;
        uint64_t next = off;
        read_result r = record_read(l, off, &type, &len, &next);
        if (r == READ_OK)
            r = record_apply(l, type, l->buf, len, off);
        if (r == READ_IO)
            return io_fail(l, l->active, "read");
        if (r == READ_NOMEM || r == READ_CONFLICT)
            return r == READ_NOMEM ? SEQ_ENOMEM : SEQ_ECORRUPT;
        if (r == READ_TORN)
            break;
        off = next;
        records++;
    }
    SEQ_INFO("votelog_opened", "file=%s epoch=%llu records=%zu end=%llu", l->path[l->active],
             (unsigned long long)l->epoch, records, (unsigned long long)off);
    l->end = off;
    l->compacted_bytes = off;
    buf_trim(l);
    return 0;
}

/* ---- open and close ----------------------------------------------------------------- */

static int dir_sync(const seq_votelog *l)
{
    if (!l->durable)
        return 0;
    int fd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* An epoch record with a fresh salt; *chain becomes its check. */
static void epoch_record(uint8_t rec[HEADER_BYTES], uint64_t epoch, uint8_t chain[CHECK_BYTES])
{
    seq_put_u64be(rec + HDR_BYTES, epoch);
    randombytes_buf(rec + HDR_BYTES + 8, EPOCH_BODY_BYTES - 8);
    memcpy(chain, chain_start, CHECK_BYTES);
    header_put(rec, chain, REC_EPOCH, EPOCH_BODY_BYTES);
}

static int epoch_write(seq_votelog *l, int file, const uint8_t rec[HEADER_BYTES])
{
    return write_all(l->fd[file], rec, HEADER_BYTES, 0) == 0 && flush_fd(l, l->fd[file]) == 0 ? 0 : -1;
}

/* Neither file has an epoch: a new log, unless one holds more than a torn
 * first epoch record (then own votes would be lost: refuse). */
static int log_start(seq_votelog *l)
{
    for (int f = 0; f < 2; f++) {
        struct stat st;
        if (fstat(l->fd[f], &st) != 0)
            return io_fail(l, f, "stat");
        if (st.st_size > HEADER_BYTES) {
            SEQ_ERROR("votelog_unreadable", "file=%s bytes=%lld err=ECORRUPT hint=\"neither vote log file starts "
                      "with a valid epoch record, so this node's own votes cannot be read: restore the files "
                      "from a copy, or move the whole data directory away and let the node sync (it may then "
                      "vote again in views it voted in, which only a node that never voted may)\"",
                      l->path[f], (long long)st.st_size);
            return SEQ_ECORRUPT;
        }
    }
    l->active = 0;
    l->epoch = 1;
    l->fresh = true;
    uint8_t rec[HEADER_BYTES];
    epoch_record(rec, 1, l->chain);
    if (epoch_write(l, 0, rec) != 0)
        return io_fail(l, 0, "start");
    l->end = l->compacted_bytes = HEADER_BYTES;
    return 0;
}

/* One process at a time: two writers would each append at their own end. */
static int lock_take(seq_votelog *l)
{
    if (flock(l->fd[0], LOCK_EX | LOCK_NB) == 0)
        return 0;
    if (errno != EWOULDBLOCK)
        return io_fail(l, 0, "lock");
    SEQ_ERROR("votelog_locked", "file=%s err=EIO hint=\"another process (a second seqd?) has this node's vote "
              "log open: stop it first\"", l->path[0]);
    return SEQ_EIO;
}

static int files_open(seq_votelog *l)
{
    for (int f = 0; f < 2; f++) {
        snprintf(l->path[f], sizeof l->path[f], "%s/%s", l->dir, file_names[f]);
        if ((l->fd[f] = open(l->path[f], O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
            return io_fail(l, f, "open");
    }
    /* a file created now must stay found after a power loss */
    return dir_sync(l) == 0 ? lock_take(l) : io_fail(l, 0, "dir_sync");
}

int seq_votelog_open(seq_votelog **out, const char *dir, const seq_votelog_opts *opts)
{
    if (!out || !dir || !opts || strlen(dir) >= PATH_MAX)
        return SEQ_EINVAL;
    seq_votelog *l = calloc(1, sizeof *l);
    if (!l)
        return SEQ_ENOMEM;
    l->durable = opts->durable;
    l->compact_bytes = opts->compact_bytes ? opts->compact_bytes : SEQ_VOTELOG_COMPACT_BYTES;
    /* settled first: what is at or below the tip is not held, nor checked
     * for conflicts, while reading back */
    l->settled_view = opts->settled_view;
    l->settled_height = opts->settled_height;
    l->fd[0] = l->fd[1] = -1;
    snprintf(l->dir, sizeof l->dir, "%s", dir);
    int err = files_open(l);
    if (!err) {
        uint8_t chain[2][CHECK_BYTES];
        uint64_t e0 = file_epoch(l, 0, chain[0]), e1 = file_epoch(l, 1, chain[1]);
        l->active = e1 > e0 ? 1 : 0;
        l->epoch = e1 > e0 ? e1 : e0;
        memcpy(l->chain, chain[l->active], CHECK_BYTES);
        err = l->epoch == 0 ? log_start(l) : read_back(l);
    }
    if (err) {
        seq_votelog_close(l);
        return err;
    }
    *out = l;
    return 0;
}

void seq_votelog_close(seq_votelog *l)
{
    if (!l)
        return;
    for (int f = 0; f < 2; f++)
        if (l->fd[f] >= 0)
            close(l->fd[f]);
    free(l->buf);
    free(l);
}

/* ---- appending ---------------------------------------------------------------- */

/* Checks every vote against what is held; *fresh[i] whether votes[i] is new. */
static int votes_check(const seq_votelog *l, const seq_vote *votes, size_t nv, bool *fresh)
{
    for (size_t i = 0; i < nv; i++) {
        if (!kind_valid(votes[i].kind))
            return SEQ_EINVAL;
        const seq_vote *held = vote_find(l, votes[i].view, votes[i].kind);
        for (size_t j = 0; !held && j < i; j++)
            if (votes[j].view == votes[i].view && votes[j].kind == votes[i].kind)
                held = &votes[j];
        if (held && !vote_same(held, &votes[i])) {
            SEQ_ERROR("votelog_vote_conflict", "file=%s view=%llu kind=%s err=EEXISTS", l->path[l->active],
                      (unsigned long long)votes[i].view, seq_vote_kind_name(votes[i].kind));
            return SEQ_EEXISTS;
        }
        fresh[i] = !held;
    }
    return 0;
}

/* Whether keep[i] is new: not held, not settled, not earlier in the call. */
static bool kept_fresh(seq_votelog *l, const seq_block *const *keep, size_t i)
{
    if (keep[i]->h.height <= l->settled_height || kept_find(l, &keep[i]->hash))
        return false;
    for (size_t j = 0; j < i; j++)
        if (memcmp(keep[j]->hash.b, keep[i]->hash.b, SEQ_HASH_BYTES) == 0)
            return false;
    return true;
}

static size_t kept_record_bytes(const seq_block *b)
{
    return HDR_BYTES + KEPT_HEAD_BYTES + seq_block_encoded_size(b);
}

static size_t kept_record_put(const seq_block *b, uint8_t chain[CHECK_BYTES], uint8_t *rec)
{
    size_t enc = seq_block_encoded_size(b);
    uint8_t *body = rec + HDR_BYTES;
    memcpy(body, b->hash.b, SEQ_HASH_BYTES);
    seq_put_u64be(body + SEQ_HASH_BYTES, b->h.height);
    seq_block_encode(b, body + KEPT_HEAD_BYTES);
    header_put(rec, chain, REC_KEPT, (uint32_t)(KEPT_HEAD_BYTES + enc));
    return HDR_BYTES + KEPT_HEAD_BYTES + enc;
}

static size_t vote_record_put(const seq_vote *v, uint8_t chain[CHECK_BYTES], uint8_t *rec)
{
    vote_body_put(v, rec + HDR_BYTES);
    header_put(rec, chain, REC_VOTE, VOTE_BODY_BYTES);
    return HDR_BYTES + VOTE_BODY_BYTES;
}

/* Bytes of the call's new records; *fresh_kept[i] whether keep[i] is new. */
static size_t append_bytes(seq_votelog *l, const bool *fresh_votes, size_t nv, const seq_block *const *keep,
                           size_t nk, bool *fresh_kept)
{
    size_t total = 0;
    for (size_t i = 0; i < nv; i++)
        total += fresh_votes[i] ? HDR_BYTES + VOTE_BODY_BYTES : 0;
    for (size_t i = 0; i < nk; i++) {
        fresh_kept[i] = kept_fresh(l, keep, i);
        total += fresh_kept[i] ? kept_record_bytes(keep[i]) : 0;
    }
    return total;
}

/* Writes the first total bytes of l->buf at the active file's end and
 * flushes them; on success they are l->chain's new records. */
static int buf_append(seq_votelog *l, size_t total, const uint8_t chain[CHECK_BYTES])
{
    int fd = l->fd[l->active];
    if (write_all(fd, l->buf, total, l->end) != 0 || flush_fd(l, fd) != 0) {
        l->failed = true; /* part of it may be on disk: nothing may follow it */
        return io_fail(l, l->active, "append");
    }
    memcpy(l->chain, chain, CHECK_BYTES);
    return 0;
}

static int append_records(seq_votelog *l, const seq_vote *votes, size_t nv, const bool *fresh_votes,
                          const seq_block *const *keep, size_t nk, const bool *fresh_kept, size_t total)
{
    int err = buf_reserve(l, total);
    if (err)
        return err;
    uint8_t chain[CHECK_BYTES];
    memcpy(chain, l->chain, CHECK_BYTES);
    size_t at = 0;
    for (size_t i = 0; i < nv; i++)
        if (fresh_votes[i])
            at += vote_record_put(&votes[i], chain, l->buf + at);
    size_t kept_at[SEQ_VOTELOG_APPEND_MAX];
    for (size_t i = 0; i < nk; i++)
        if (fresh_kept[i]) {
            kept_at[i] = at;
            at += kept_record_put(keep[i], chain, l->buf + at);
        }
    SEQ_ASSERT(at == total);
    if ((err = buf_append(l, total, chain)) != 0)
        return err;
    for (size_t i = 0; i < nv; i++)
        if (fresh_votes[i])
            vote_hold(l, &votes[i]);
    for (size_t i = 0; i < nk; i++)
        if (fresh_kept[i]) {
            kept_entry k = {.hash = keep[i]->hash, .height = keep[i]->h.height, .rec_off = l->end + kept_at[i],
                            .rec_len = (uint32_t)kept_record_bytes(keep[i])};
            kept_hold(l, &k);
        }
    l->end += total;
    buf_trim(l);
    return 0;
}

int seq_votelog_append(seq_votelog *l, const seq_vote *votes, size_t nv, const seq_block *const *keep, size_t nk)
{
    if (!l || (nv > 0 && !votes) || (nk > 0 && !keep) || nv > SEQ_VOTELOG_APPEND_MAX || nk > SEQ_VOTELOG_APPEND_MAX)
        return SEQ_EINVAL;
    for (size_t i = 0; i < nk; i++)
        if (!keep[i] || seq_block_encoded_size(keep[i]) > SEQ_BLOCK_BYTES_MAX)
            return SEQ_EINVAL;
    if (l->failed)
        return SEQ_EIO;
    bool fresh_votes[SEQ_VOTELOG_APPEND_MAX], fresh_kept[SEQ_VOTELOG_APPEND_MAX];
    int err = votes_check(l, votes, nv, fresh_votes);
    if (err)
        return err;
    size_t total = append_bytes(l, fresh_votes, nv, keep, nk, fresh_kept);
    return total == 0 ? 0 : append_records(l, votes, nv, fresh_votes, keep, nk, fresh_kept, total);
}

int seq_votelog_raise_view(seq_votelog *l, uint64_t view)
{
    if (!l)
        return SEQ_EINVAL;
    if (l->failed)
        return SEQ_EIO;
    if (view <= l->highest_view)
        return 0;
    int err = buf_reserve(l, HDR_BYTES + VIEW_BODY_BYTES);
    if (err)
        return err;
    uint8_t chain[CHECK_BYTES];
    memcpy(chain, l->chain, CHECK_BYTES);
    seq_put_u64be(l->buf + HDR_BYTES, view);
    header_put(l->buf, chain, REC_VIEW, VIEW_BODY_BYTES);
    if ((err = buf_append(l, HDR_BYTES + VIEW_BODY_BYTES, chain)) != 0)
        return err;
    l->end += HDR_BYTES + VIEW_BODY_BYTES;
    l->highest_view = view;
    return 0;
}

/* ---- reads ---------------------------------------------------------------------- */

size_t seq_votelog_votes(const seq_votelog *l, seq_vote *out, size_t cap)
{
    size_t n = l->nvotes < cap ? l->nvotes : cap;
    if (n > 0)
        memcpy(out, &l->votes[l->nvotes - n], n * sizeof *out);
    return n;
}

uint64_t seq_votelog_highest_view(const seq_votelog *l) { return l->highest_view; }

uint64_t seq_votelog_bytes(const seq_votelog *l) { return l->end; }

int seq_votelog_kept_get(seq_votelog *l, const seq_hash *hash, seq_block **out)
{
    if (!l || !hash || !out)
        return SEQ_EINVAL;
    kept_entry *k = kept_find(l, hash);
    if (!k)
        return SEQ_ENOTFOUND;
    uint8_t *rec = malloc(k->rec_len);
    if (!rec)
        return SEQ_ENOMEM;
    int err = 0, r = read_all(l->fd[l->active], rec, k->rec_len, k->rec_off);
    if (r <= 0)
        err = r < 0 ? io_fail(l, l->active, "read") : SEQ_ECORRUPT;
    else if ((err = seq_block_decode(out, rec + HDR_BYTES + KEPT_HEAD_BYTES,
                                     k->rec_len - HDR_BYTES - KEPT_HEAD_BYTES)) != 0 &&
             err != SEQ_ENOMEM)
        err = SEQ_ECORRUPT;
    free(rec);
    if (!err && memcmp((*out)->hash.b, hash->b, SEQ_HASH_BYTES) != 0) {
        seq_block_free(*out);
        *out = NULL;
        err = SEQ_ECORRUPT;
    }
    return err;
}

/* ---- compaction ---------------------------------------------------------------- */

bool seq_votelog_compact_due(const seq_votelog *l)
{
    uint64_t bound = 2 * l->compacted_bytes;
    return l->end > (bound > l->compact_bytes ? bound : l->compact_bytes);
}

bool seq_votelog_fresh(const seq_votelog *l) { return l->fresh; }

/* Writes the live records into the spare file after its epoch record,
 * chained from *chain (the epoch record's check, moved to the last record's):
 * the highest view, the votes, then each kept block (read from the active
 * file); new_off[i] is where kept[i] lands. */
static int live_write(seq_votelog *l, int spare, uint8_t chain[CHECK_BYTES], uint64_t *new_off, uint64_t *end)
{
    uint8_t rec[HDR_BYTES + VOTE_BODY_BYTES];
    int fd = l->fd[spare];
    uint64_t at = HEADER_BYTES;
    seq_put_u64be(rec + HDR_BYTES, l->highest_view);
    header_put(rec, chain, REC_VIEW, VIEW_BODY_BYTES);
    if (write_all(fd, rec, HDR_BYTES + VIEW_BODY_BYTES, at) != 0)
        return -1;
    at += HDR_BYTES + VIEW_BODY_BYTES;
    for (size_t i = 0; i < l->nvotes; i++) {
        size_t n = vote_record_put(&l->votes[i], chain, rec);
        if (write_all(fd, rec, n, at) != 0)
            return -1;
        at += n;
    }
    for (size_t i = 0; i < l->nkept; i++) {
        const kept_entry *k = &l->kept[i];
        if (buf_reserve(l, k->rec_len) != 0 || read_all(l->fd[l->active], l->buf, k->rec_len, k->rec_off) != 1)
            return -1;
        header_put(l->buf, chain, REC_KEPT, k->rec_len - HDR_BYTES); /* the body is unchanged */
        if (write_all(fd, l->buf, k->rec_len, at) != 0)
            return -1;
        new_off[i] = at;
        at += k->rec_len;
    }
    *end = at;
    return 0;
}

/* The spare file becomes the active one: the live records first, then (once
 * they are durable) its epoch record, one higher than the active file's. A
 * crash before that record is durable leaves the active file in force, whole;
 * after, the spare is. Nothing is freed or renamed: the files keep their
 * size and later appends overwrite them in place (a first version renamed a
 * new file over the old one; freeing 64 MiB stalled the whole cluster). */
int seq_votelog_compact(seq_votelog *l)
{
    if (!l)
        return SEQ_EINVAL;
    if (l->failed)
        return SEQ_EIO;
    int spare = 1 - l->active;
    uint64_t epoch = l->epoch + 1, new_off[SEQ_VOTELOG_KEPT_MAX], end = 0, before = l->end;
    uint8_t head[HEADER_BYTES], chain[CHECK_BYTES];
    epoch_record(head, epoch, chain);
    int rc = live_write(l, spare, chain, new_off, &end);
    buf_trim(l);
    if (rc != 0 || flush_fd(l, l->fd[spare]) != 0 || epoch_write(l, spare, head) != 0) {
        l->failed = true; /* the spare's epoch record may have reached the disk: append no more */
        return io_fail(l, spare, "compact");
    }
    memcpy(l->chain, chain, CHECK_BYTES);
    l->active = spare;
    l->epoch = epoch;
    for (size_t i = 0; i < l->nkept; i++)
        l->kept[i].rec_off = new_off[i];
    l->end = l->compacted_bytes = end;
    SEQ_INFO("votelog_compacted", "file=%s epoch=%llu bytes_before=%llu bytes=%llu votes=%zu kept=%zu",
             l->path[spare], (unsigned long long)epoch, (unsigned long long)before, (unsigned long long)end,
             l->nvotes, l->nkept);
    return 0;
}
