/* The vote log (lib/votelog.c) on real files in a temporary directory:
 * what is appended is read back after reopen, a torn tail ends the records
 * and nothing before it is lost, compaction keeps exactly what is held and
 * switches files only once the new one is whole, records of a file's earlier
 * epoch are never read, and a log holding two different votes for one
 * (view, kind) is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "types.h"
#include "votelog.h"

#define CHAIN_ID 7
#define TXS_PER_BLOCK 4
#define HDR_TEST_BYTES 21 /* a record's type, length and check: the flip lands in x's body */

typedef struct {
    char dir[PATH_MAX];
    seq_votelog *log;
} fixture;

static const seq_votelog_opts durable = {.durable = true};
static const seq_votelog_opts not_durable = {.durable = false};

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx || seq_test_tmpdir(fx->dir, sizeof fx->dir, "votelog") != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    seq_votelog_close(fx->log);
    int rc = seq_test_rmtree(fx->dir);
    free(fx);
    return rc;
}

static void log_open(fixture *fx)
{
    seq_votelog_close(fx->log);
    fx->log = NULL;
    assert_int_equal(seq_votelog_open(&fx->log, fx->dir, &durable), 0);
}

static char *log_path(const char *dir, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, name);
    return out;
}

/* Size of the active file of a log that has not been compacted. */
static uint64_t file_bytes(const fixture *fx)
{
    char path[PATH_MAX + 16];
    struct stat st;
    assert_int_equal(stat(log_path(fx->dir, SEQ_VOTELOG_FILE_A, path, sizeof path), &st), 0);
    return (uint64_t)st.st_size;
}

/* Flips one byte of a file at off. */
static void byte_flip(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, (off_t)off), 1);
    byte ^= 0xff;
    assert_int_equal(pwrite(fd, &byte, 1, (off_t)off), 1);
    close(fd);
}

static seq_vote vote_make(uint8_t kind, uint64_t view, uint8_t fill)
{
    seq_vote v = {.kind = kind, .view = view, .signer = 1};
    if (kind != SEQ_VOTE_NULLIFY)
        memset(v.hash.b, fill, SEQ_HASH_BYTES);
    memset(v.sig.b, fill ^ 0x5a, SEQ_SIG_BYTES);
    return v;
}

/* A block at height (view = height) with payload_bytes in each of its txs. */
static seq_block *block_make(uint64_t height, size_t payload_bytes)
{
    static uint8_t payload[TXS_PER_BLOCK][1 << 20];
    seq_tx txs[TXS_PER_BLOCK];
    assert_true(payload_bytes <= sizeof payload[0]);
    for (uint32_t i = 0; i < TXS_PER_BLOCK; i++) {
        memset(payload[i], (int)(height * 7 + i), payload_bytes);
        snprintf((char *)payload[i], payload_bytes, "h=%llu i=%u", (unsigned long long)height, i);
        txs[i] = (seq_tx){.ns = 1 + i % 2, .len = (uint32_t)payload_bytes, .data = payload[i]};
    }
    seq_hash parent;
    memset(parent.b, (int)height, SEQ_HASH_BYTES);
    seq_header tmpl = {.chain_id = CHAIN_ID, .height = height, .view = height, .parent = parent,
                       .parent_view = height - 1, .timestamp_ms = 1700000000000ull + height};
    seq_block *b = NULL;
    assert_int_equal(seq_block_build(&b, &tmpl, txs, TXS_PER_BLOCK), 0);
    return b;
}

static void assert_held(seq_votelog *log, const seq_block *b)
{
    seq_block *got = NULL;
    assert_int_equal(seq_votelog_kept_get(log, &b->hash, &got), 0);
    assert_memory_equal(got->hash.b, b->hash.b, SEQ_HASH_BYTES);
    assert_int_equal(got->tx_count, b->tx_count);
    for (uint32_t i = 0; i < b->tx_count; i++) {
        assert_int_equal(got->txs[i].len, b->txs[i].len);
        assert_memory_equal(got->txs[i].data, b->txs[i].data, b->txs[i].len);
    }
    seq_block_free(got);
}

static void assert_not_held(seq_votelog *log, const seq_block *b)
{
    seq_block *got = NULL;
    assert_int_equal(seq_votelog_kept_get(log, &b->hash, &got), SEQ_ENOTFOUND);
    assert_null(got);
}

/* Notarize votes for blocks 1..3 each with its block, a nullify for view 4:
 * all read back after reopen, in order, with the highest view. */
static void test_append_reads_back_after_reopen(void **state)
{
    fixture *fx = *state;
    log_open(fx);
    seq_block *b[4] = {NULL};
    seq_vote v[4];
    for (uint64_t h = 1; h <= 3; h++) {
        b[h] = block_make(h, 300);
        v[h - 1] = vote_make(SEQ_VOTE_NOTARIZE, h, (uint8_t)h);
        v[h - 1].hash = b[h]->hash;
        const seq_block *keep[1] = {b[h]};
        assert_int_equal(seq_votelog_append(fx->log, &v[h - 1], 1, keep, 1), 0);
    }
    v[3] = vote_make(SEQ_VOTE_NULLIFY, 4, 4);
    assert_int_equal(seq_votelog_append(fx->log, &v[3], 1, NULL, 0), 0);
    assert_int_equal(seq_votelog_bytes(fx->log), file_bytes(fx));

    log_open(fx);
    seq_vote got[8];
    assert_int_equal(seq_votelog_votes(fx->log, got, 8), 4);
    for (int i = 0; i < 4; i++)
        seq_test_assert_vote_equal(&got[i], &v[i]);
    assert_int_equal(seq_votelog_votes(fx->log, got, 2), 2); /* the newest two */
    seq_test_assert_vote_equal(&got[0], &v[2]);
    seq_test_assert_vote_equal(&got[1], &v[3]);
    assert_int_equal(seq_votelog_highest_view(fx->log), 4);
    for (uint64_t h = 1; h <= 3; h++) {
        assert_held(fx->log, b[h]);
        seq_block_free(b[h]);
    }
}

/* The identical vote again and a held block again write nothing; a different
 * vote for a held (view, kind), even beside fresh ones, fails the whole call
 * and writes nothing either. */
static void test_retry_is_noop_and_conflict_writes_nothing(void **state)
{
    fixture *fx = *state;
    log_open(fx);
    seq_block *b1 = block_make(1, 100), *b2 = block_make(2, 100);
    seq_vote nz = vote_make(SEQ_VOTE_NOTARIZE, 1, 1);
    nz.hash = b1->hash;
    const seq_block *keep[1] = {b1};
    assert_int_equal(seq_votelog_append(fx->log, &nz, 1, keep, 1), 0);
    uint64_t bytes = file_bytes(fx);
    assert_int_equal(seq_votelog_append(fx->log, &nz, 1, keep, 1), 0);
    assert_int_equal(file_bytes(fx), bytes);

    seq_vote fresh = vote_make(SEQ_VOTE_NOTARIZE, 2, 2), twin = vote_make(SEQ_VOTE_NOTARIZE, 1, 9);
    fresh.hash = b2->hash;
    const seq_vote both[2] = {fresh, twin};
    const seq_block *keep2[1] = {b2};
    assert_int_equal(seq_votelog_append(fx->log, both, 2, keep2, 1), SEQ_EEXISTS);
    assert_int_equal(file_bytes(fx), bytes);
    assert_not_held(fx->log, b2);
    /* two different votes for one (view, kind) within one call */
    seq_vote pair[2] = {fresh, fresh};
    pair[1].hash.b[0] ^= 1;
    assert_int_equal(seq_votelog_append(fx->log, pair, 2, NULL, 0), SEQ_EEXISTS);
    seq_vote bad = vote_make(0, 5, 5);
    assert_int_equal(seq_votelog_append(fx->log, &bad, 1, NULL, 0), SEQ_EINVAL);
    assert_int_equal(file_bytes(fx), bytes);
    seq_vote got[4];
    assert_int_equal(seq_votelog_votes(fx->log, got, 4), 1);
    seq_block_free(b1);
    seq_block_free(b2);
}

/* A crash in the middle of an append leaves part of its records: reopen
 * ends the records at the last whole one, keeps everything before it, and
 * appends after it again. Also when the cut falls inside a block's payload,
 * which only its hash checks, and when the file's length reached the disk
 * but a block's bytes did not. */
static void test_torn_tail_ends_records(void **state)
{
    fixture *fx = *state;
    log_open(fx);
    const uint64_t start = seq_votelog_bytes(fx->log); /* the epoch record */
    seq_vote first = vote_make(SEQ_VOTE_NULLIFY, 1, 1);
    assert_int_equal(seq_votelog_append(fx->log, &first, 1, NULL, 0), 0);
    const uint64_t whole = file_bytes(fx), vote_bytes = whole - start;
    seq_block *b = block_make(2, 4096);
    seq_vote nz = vote_make(SEQ_VOTE_NOTARIZE, 2, 2);
    nz.hash = b->hash;
    const seq_block *keep[1] = {b};
    assert_int_equal(seq_votelog_append(fx->log, &nz, 1, keep, 1), 0);
    uint64_t full = file_bytes(fx);
    seq_votelog_close(fx->log);
    fx->log = NULL;

    char path[PATH_MAX + 16];
    log_path(fx->dir, SEQ_VOTELOG_FILE_A, path, sizeof path);
    const uint64_t cuts[] = {full - 1, full - 2000, whole + 60};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        assert_int_equal(truncate(path, (off_t)cuts[i]), 0);
        log_open(fx);
        seq_vote got[4];
        size_t n = seq_votelog_votes(fx->log, got, 4);
        assert_not_held(fx->log, b);
        bool nz_whole = cuts[i] >= whole + vote_bytes;
        assert_int_equal(n, nz_whole ? 2 : 1);
        seq_test_assert_vote_equal(&got[0], &first);
        if (nz_whole)
            seq_test_assert_vote_equal(&got[1], &nz);
        assert_int_equal(seq_votelog_bytes(fx->log), nz_whole ? whole + vote_bytes : whole);
        /* appends go on after the last whole record */
        assert_int_equal(seq_votelog_append(fx->log, &nz, 1, keep, 1), 0);
        log_open(fx);
        assert_held(fx->log, b);
        assert_int_equal(seq_votelog_votes(fx->log, got, 4), 2);
        full = seq_votelog_bytes(fx->log);
        assert_int_equal(full, file_bytes(fx));
        seq_votelog_close(fx->log);
        fx->log = NULL;
    }
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t zeros[100] = {0};
    assert_int_equal(pwrite(fd, zeros, sizeof zeros, (off_t)(full - 1000)), (ssize_t)sizeof zeros);
    close(fd);
    log_open(fx);
    assert_not_held(fx->log, b);
    seq_vote two[4];
    assert_int_equal(seq_votelog_votes(fx->log, two, 4), 2);
    assert_int_equal(seq_votelog_bytes(fx->log), whole + vote_bytes);
    seq_votelog_close(fx->log);
    fx->log = NULL;

    /* a flipped byte in the first record's checked bytes ends the records there */
    byte_flip(path, whole - 3); /* the first vote's signature */
    log_open(fx);
    seq_vote got[4];
    assert_int_equal(seq_votelog_votes(fx->log, got, 4), 0);
    assert_int_equal(seq_votelog_bytes(fx->log), start);
    seq_block_free(b);
}

/* Neither file with a valid epoch record: a new log when that record is all a
 * file could hold (a crash while the log was created), refused when more. */
static void test_unreadable_epoch(void **state)
{
    fixture *fx = *state;
    log_open(fx);
    const uint64_t start = seq_votelog_bytes(fx->log);
    seq_votelog_close(fx->log);
    fx->log = NULL;
    char path[PATH_MAX + 16];
    log_path(fx->dir, SEQ_VOTELOG_FILE_A, path, sizeof path);
    byte_flip(path, start - 1);
    log_open(fx); /* a torn first epoch record: starts anew */
    seq_vote v = vote_make(SEQ_VOTE_NULLIFY, 3, 3);
    assert_int_equal(seq_votelog_append(fx->log, &v, 1, NULL, 0), 0);
    seq_votelog_close(fx->log);
    fx->log = NULL;
    byte_flip(path, start - 1);
    assert_int_equal(seq_votelog_open(&fx->log, fx->dir, &durable), SEQ_ECORRUPT);
    assert_null(fx->log);
}

/* Settling forgets votes at or below the tip's view and blocks at or below
 * its height; compaction rewrites the file with what is held and the highest
 * view, and the rewritten file reads back the same. */
static void test_settle_and_compact(void **state)
{
    fixture *fx = *state;
    log_open(fx);
    seq_block *b[7] = {NULL};
    for (uint64_t h = 1; h <= 6; h++) {
        b[h] = block_make(h, 2000);
        seq_vote nz = vote_make(SEQ_VOTE_NOTARIZE, h, (uint8_t)h);
        nz.hash = b[h]->hash;
        const seq_block *keep[1] = {b[h]};
        assert_int_equal(seq_votelog_append(fx->log, &nz, 1, keep, 1), 0);
    }
    seq_vote late = vote_make(SEQ_VOTE_NULLIFY, 9, 9);
    assert_int_equal(seq_votelog_append(fx->log, &late, 1, NULL, 0), 0);
    seq_votelog_settle(fx->log, 9, 4); /* finalized at view 9, height 4 */
    seq_vote got[8];
    assert_int_equal(seq_votelog_votes(fx->log, got, 8), 0);
    assert_not_held(fx->log, b[4]);
    assert_held(fx->log, b[5]);
    uint64_t before = seq_votelog_bytes(fx->log);
    assert_false(seq_votelog_compact_due(fx->log));
    assert_int_equal(seq_votelog_compact(fx->log), 0);
    assert_true(seq_votelog_bytes(fx->log) < before / 2);
    assert_held(fx->log, b[5]); /* read at its new place, in the other file */
    assert_held(fx->log, b[6]);

    seq_vote next = vote_make(SEQ_VOTE_NULLIFY, 10, 10);
    assert_int_equal(seq_votelog_append(fx->log, &next, 1, NULL, 0), 0);
    log_open(fx);
    assert_int_equal(seq_votelog_highest_view(fx->log), 10);
    assert_int_equal(seq_votelog_votes(fx->log, got, 8), 1);
    seq_test_assert_vote_equal(&got[0], &next);
    for (uint64_t h = 1; h <= 4; h++)
        assert_not_held(fx->log, b[h]);
    assert_held(fx->log, b[5]);
    assert_held(fx->log, b[6]);

    /* back into the first file, over its records of epoch 1: the highest view
     * survives a compaction that holds no vote at all, and none of the
     * earlier epoch's votes or blocks is read back */
    seq_votelog_settle(fx->log, 10, 6);
    assert_int_equal(seq_votelog_compact(fx->log), 0);
    log_open(fx);
    assert_int_equal(seq_votelog_highest_view(fx->log), 10);
    assert_int_equal(seq_votelog_votes(fx->log, got, 8), 0);
    for (uint64_t h = 1; h <= 6; h++)
        assert_not_held(fx->log, b[h]);
    assert_true(file_bytes(fx) > seq_votelog_bytes(fx->log)); /* they are still there */
    for (uint64_t h = 1; h <= 6; h++)
        seq_block_free(b[h]);
}

/* A file used again holds its earlier epoch's records past the new end,
 * here even aligned on the new records' boundaries (the same layout, fewer
 * votes): they are never read back. */
static void test_stale_epoch_records_never_read(void **state)
{
    fixture *fx = *state;
    log_open(fx);
    seq_vote v[5];
    for (int i = 0; i < 5; i++)
        v[i] = vote_make(SEQ_VOTE_NULLIFY, (uint64_t)i + 1, (uint8_t)(i + 1));
    assert_int_equal(seq_votelog_append(fx->log, v, 5, NULL, 0), 0);
    assert_int_equal(seq_votelog_compact(fx->log), 0); /* b, epoch 2 */
    assert_int_equal(seq_votelog_compact(fx->log), 0); /* a, epoch 3: view, v1..v5 */
    seq_votelog_settle(fx->log, 3, 0);
    assert_int_equal(seq_votelog_compact(fx->log), 0); /* b, epoch 4 */
    assert_int_equal(seq_votelog_compact(fx->log), 0); /* a, epoch 5: view, v4, v5, then epoch 3's v3.. */
    log_open(fx);
    seq_vote got[8];
    assert_int_equal(seq_votelog_votes(fx->log, got, 8), 2);
    seq_test_assert_vote_equal(&got[0], &v[3]);
    seq_test_assert_vote_equal(&got[1], &v[4]);
}

/* A compaction whose epoch record never reached the disk (a crash): the
 * file it compacted stays in force, with everything in it. */
static void test_compaction_cut_short_keeps_old_file(void **state)
{
    fixture *fx = *state;
    log_open(fx);
    const uint64_t start = seq_votelog_bytes(fx->log);
    seq_vote v[3] = {vote_make(SEQ_VOTE_NULLIFY, 1, 1), vote_make(SEQ_VOTE_NULLIFY, 2, 2),
                     vote_make(SEQ_VOTE_NULLIFY, 3, 3)};
    assert_int_equal(seq_votelog_append(fx->log, v, 3, NULL, 0), 0);
    seq_votelog_settle(fx->log, 2, 0);
    assert_int_equal(seq_votelog_compact(fx->log), 0);
    seq_vote got[4];
    assert_int_equal(seq_votelog_votes(fx->log, got, 4), 1);
    seq_votelog_close(fx->log);
    fx->log = NULL;
    char path[PATH_MAX + 16];
    byte_flip(log_path(fx->dir, SEQ_VOTELOG_FILE_B, path, sizeof path), start - 1);
    log_open(fx);
    assert_int_equal(seq_votelog_votes(fx->log, got, 4), 3); /* the first file's, unsettled again */
    for (int i = 0; i < 3; i++)
        seq_test_assert_vote_equal(&got[i], &v[i]);
}

/* Past SEQ_VOTELOG_COMPACT_BYTES of settled blocks compaction is due; after
 * it, it is not (a non-durable log: this writes ~70 MB). */
static void test_compaction_due_past_threshold(void **state)
{
    fixture *fx = *state;
    assert_int_equal(seq_votelog_open(&fx->log, fx->dir, &not_durable), 0);
    seq_block *b = NULL;
    uint64_t h = 0;
    while (!seq_votelog_compact_due(fx->log)) {
        seq_block_free(b);
        b = block_make(++h, 1 << 20);
        const seq_block *keep[1] = {b};
        assert_int_equal(seq_votelog_append(fx->log, NULL, 0, keep, 1), 0);
        assert_true(h < 100);
    }
    assert_true(seq_votelog_bytes(fx->log) > SEQ_VOTELOG_COMPACT_BYTES);
    seq_votelog_settle(fx->log, h - 1, h - 1);
    assert_int_equal(seq_votelog_compact(fx->log), 0);
    assert_false(seq_votelog_compact_due(fx->log));
    assert_true(seq_votelog_bytes(fx->log) < 5u << 20);
    assert_held(fx->log, b);
    seq_block_free(b);
}

/* More votes above the tip than are held: the newest SEQ_VOTELOG_VOTES_MAX. */
static void test_votes_capped_newest_kept(void **state)
{
    fixture *fx = *state;
    assert_int_equal(seq_votelog_open(&fx->log, fx->dir, &not_durable), 0);
    const uint64_t total = SEQ_VOTELOG_VOTES_MAX + 10;
    for (uint64_t view = 1; view <= total; view++) {
        seq_vote v = vote_make(SEQ_VOTE_NULLIFY, view, (uint8_t)view);
        assert_int_equal(seq_votelog_append(fx->log, &v, 1, NULL, 0), 0);
    }
    seq_vote *got = calloc(SEQ_VOTELOG_VOTES_MAX + 1, sizeof *got);
    assert_non_null(got);
    assert_int_equal(seq_votelog_votes(fx->log, got, SEQ_VOTELOG_VOTES_MAX + 1), SEQ_VOTELOG_VOTES_MAX);
    assert_int_equal(got[0].view, total - SEQ_VOTELOG_VOTES_MAX + 1);
    assert_int_equal(got[SEQ_VOTELOG_VOTES_MAX - 1].view, total);
    free(got);
}

/* Two different votes for one (view, kind) in the log: the second was
 * written after the first was settled (the tip passed its view), when the
 * log no longer held it to compare. Opening with a tip below that view
 * refuses the log rather than pick one; with the tip at or above it, both
 * are settled and the log opens. */
static void test_conflicting_votes_in_file_refused(void **state)
{
    fixture *fx = *state;
    log_open(fx);
    seq_vote va = vote_make(SEQ_VOTE_NOTARIZE, 3, 1), vb = vote_make(SEQ_VOTE_NOTARIZE, 3, 2);
    assert_int_equal(seq_votelog_append(fx->log, &va, 1, NULL, 0), 0);
    assert_int_equal(seq_votelog_append(fx->log, &vb, 1, NULL, 0), SEQ_EEXISTS);
    seq_votelog_settle(fx->log, 5, 0);
    assert_int_equal(seq_votelog_append(fx->log, &vb, 1, NULL, 0), 0); /* settled: not compared */
    seq_votelog_close(fx->log);
    fx->log = NULL;
    assert_int_equal(seq_votelog_open(&fx->log, fx->dir, &durable), SEQ_ECORRUPT);
    assert_null(fx->log);
    seq_votelog_opts settled = {.durable = true, .settled_view = 3};
    assert_int_equal(seq_votelog_open(&fx->log, fx->dir, &settled), 0);
    seq_vote got[2];
    assert_int_equal(seq_votelog_votes(fx->log, got, 2), 0);
    assert_int_equal(seq_votelog_highest_view(fx->log), 3);
}

/* A torn append whose second record reached the disk and whose first did
 * not: reopen ends the records at the first; an append of the same length
 * there does not make the second one read back (it was never acknowledged,
 * never sent, and may contradict what the node votes after). */
static void test_torn_successor_never_revived(void **state)
{
    fixture *fx = *state;
    log_open(fx);
    const uint64_t start = seq_votelog_bytes(fx->log);
    seq_vote xy[2] = {vote_make(SEQ_VOTE_NOTARIZE, 7, 1), vote_make(SEQ_VOTE_FINALIZE, 7, 1)};
    assert_int_equal(seq_votelog_append(fx->log, xy, 2, NULL, 0), 0);
    seq_votelog_close(fx->log);
    fx->log = NULL;
    char path[PATH_MAX + 16];
    byte_flip(log_path(fx->dir, SEQ_VOTELOG_FILE_A, path, sizeof path), start + HDR_TEST_BYTES + 2);
    log_open(fx);
    seq_vote got[4];
    assert_int_equal(seq_votelog_votes(fx->log, got, 4), 0);
    seq_vote z = vote_make(SEQ_VOTE_NULLIFY, 7, 9); /* as long as x */
    assert_int_equal(seq_votelog_append(fx->log, &z, 1, NULL, 0), 0);
    log_open(fx);
    assert_int_equal(seq_votelog_votes(fx->log, got, 4), 1);
    seq_test_assert_vote_equal(&got[0], &z);
}

/* A compaction cut short before its epoch record, then done again at the
 * same epoch with fewer records: the first attempt's records past the second
 * one's end never read back. */
static void test_retried_compaction_leaves_nothing_behind(void **state)
{
    fixture *fx = *state;
    log_open(fx);
    const uint64_t start = seq_votelog_bytes(fx->log);
    seq_vote v[6];
    for (int i = 0; i < 6; i++)
        v[i] = vote_make(SEQ_VOTE_NULLIFY, (uint64_t)i + 1, (uint8_t)(i + 1));
    assert_int_equal(seq_votelog_append(fx->log, v, 6, NULL, 0), 0);
    assert_int_equal(seq_votelog_compact(fx->log), 0); /* into b, epoch 2: view, v1..v6 */
    seq_votelog_close(fx->log);
    fx->log = NULL;
    char path[PATH_MAX + 16];
    byte_flip(log_path(fx->dir, SEQ_VOTELOG_FILE_B, path, sizeof path), start - 1); /* never durable */
    log_open(fx);                                                                    /* a is in force */
    seq_votelog_settle(fx->log, 4, 0);
    assert_int_equal(seq_votelog_compact(fx->log), 0); /* into b again, epoch 2: view, v5, v6 */
    log_open(fx);
    seq_vote got[8];
    assert_int_equal(seq_votelog_votes(fx->log, got, 8), 2);
    seq_test_assert_vote_equal(&got[0], &v[4]);
    seq_test_assert_vote_equal(&got[1], &v[5]);
}

/* A second open of the same log (another process, or a second seqd on the
 * same home) is refused while the first holds it. */
static void test_second_open_refused(void **state)
{
    fixture *fx = *state;
    log_open(fx);
    seq_votelog *other = NULL;
    assert_int_equal(seq_votelog_open(&other, fx->dir, &durable), SEQ_EIO);
    assert_null(other);
    assert_true(seq_votelog_fresh(fx->log));
    log_open(fx);
    assert_false(seq_votelog_fresh(fx->log));
}

/* A raised view is durable and only rises. */
static void test_raise_view(void **state)
{
    fixture *fx = *state;
    log_open(fx);
    assert_int_equal(seq_votelog_raise_view(fx->log, 40), 0);
    assert_int_equal(seq_votelog_raise_view(fx->log, 20), 0);
    assert_int_equal(seq_votelog_highest_view(fx->log), 40);
    seq_vote v = vote_make(SEQ_VOTE_NULLIFY, 41, 1);
    assert_int_equal(seq_votelog_append(fx->log, &v, 1, NULL, 0), 0);
    log_open(fx);
    assert_int_equal(seq_votelog_highest_view(fx->log), 41);
    seq_vote got[2];
    assert_int_equal(seq_votelog_votes(fx->log, got, 2), 1);
}

int main(void)
{
    seq_log_set_level(SEQ_LOG_OFF); /* torn tails and conflicts log by design */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_reads_back_after_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_is_noop_and_conflict_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_ends_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_cut_short_keeps_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_epoch_records_never_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settle_and_compact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_due_past_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_votes_capped_newest_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicting_votes_in_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_successor_never_revived, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retried_compaction_leaves_nothing_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_open_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raise_view, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
