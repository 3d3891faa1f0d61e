/* Framing of a byte stream: 4-byte big-endian length, then the payload.
 * The framer buffers bytes, checks every length against the limit as soon as
 * its header is complete, and hands out whole frames without copying. */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "codec.h"
#include "errors.h"

void seq_frame_header(uint8_t out[SEQ_FRAME_HEADER_BYTES], uint32_t len)
{
    SEQ_ASSERT(out);
    seq_put_u32be(out, len);
}

void seq_framer_init(seq_framer *f, uint32_t frame_bytes_max)
{
    SEQ_ASSERT(f);
    memset(f, 0, sizeof *f);
    f->frame_bytes_max = frame_bytes_max;
}

void seq_framer_free(seq_framer *f)
{
    if (!f)
        return;
    free(f->buf);
    memset(f, 0, sizeof *f);
}

/* Moves the frames not yet taken out to the front of the buffer, or frees an
 * oversized buffer that holds nothing any more. */
static void compact(seq_framer *f)
{
    SEQ_ASSERT(f->off <= f->scan && f->scan <= f->len);
    if (f->off == f->len && f->cap > SEQ_FRAMER_IDLE_BYTES_MAX) {
        free(f->buf);
        f->buf = NULL;
        f->cap = 0;
    }
    if (f->off == 0)
        return;
    size_t keep = f->len - f->off;
    if (keep > 0)
        memmove(f->buf, f->buf + f->off, keep);
    f->len = keep;
    f->scan -= f->off;
    f->off = 0;
}

static int reserve(seq_framer *f, size_t extra)
{
    if (extra <= f->cap - f->len)
        return 0;
    return seq_bytes_reserve(&f->buf, &f->cap, f->len + extra, 256);
}

/* Checks every header that is complete in the buffer and steps over frames
 * that are complete; stops at the first partial one. */
static int check_headers(seq_framer *f)
{
    while (f->len - f->scan >= SEQ_FRAME_HEADER_BYTES) {
        uint32_t n = seq_get_u32be(f->buf + f->scan);
        if (n > f->frame_bytes_max)
            return SEQ_ETOOBIG;
        if (f->len - f->scan - SEQ_FRAME_HEADER_BYTES < n)
            break;
        f->scan += SEQ_FRAME_HEADER_BYTES + (size_t)n;
    }
    return 0;
}

static void fail(seq_framer *f, int err)
{
    free(f->buf);
    f->buf = NULL;
    f->len = f->cap = f->off = f->scan = 0;
    f->err = err;
}

int seq_framer_feed(seq_framer *f, const uint8_t *data, size_t len)
{
    SEQ_ASSERT(f);
    SEQ_ASSERT(data || len == 0);
    if (f->err)
        return f->err;
    compact(f);
    int rc = reserve(f, len);
    if (rc) {
        fail(f, rc);
        return rc;
    }
    if (len > 0)
        memcpy(f->buf + f->len, data, len);
    f->len += len;
    rc = check_headers(f);
    if (rc)
        fail(f, rc);
    return rc;
}

int seq_framer_next(seq_framer *f, const uint8_t **payload, size_t *len)
{
    SEQ_ASSERT(f && payload && len);
    if (f->err || f->len - f->off < SEQ_FRAME_HEADER_BYTES)
        return 0;
    uint32_t n = seq_get_u32be(f->buf + f->off);
    /* feed checked every complete header, this one included. */
    SEQ_ASSERT(n <= f->frame_bytes_max);
    if (f->len - f->off - SEQ_FRAME_HEADER_BYTES < n)
        return 0;
    *payload = f->buf + f->off + SEQ_FRAME_HEADER_BYTES;
    *len = n;
    f->off += SEQ_FRAME_HEADER_BYTES + (size_t)n;
    SEQ_ASSERT(f->off <= f->scan);
    return 1;
}
