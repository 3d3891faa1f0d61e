/* The canonical encoder and decoder. */
#include "codec.h"

#include <string.h>

void seq_enc_init(seq_enc *e, uint8_t *buf, size_t cap)
{
    e->buf = buf;
    e->len = 0;
    e->cap = cap;
    e->overflow = false;
}

void seq_enc_bytes(seq_enc *e, const void *p, size_t n)
{
    if (e->overflow || n > e->cap - e->len) {
        e->overflow = true;
        return;
    }
    if (n > 0)
        memcpy(e->buf + e->len, p, n);
    e->len += n;
}

void seq_enc_u8(seq_enc *e, uint8_t v) { seq_enc_bytes(e, &v, 1); }

void seq_enc_u32(seq_enc *e, uint32_t v)
{
    uint8_t b[4];
    seq_put_u32be(b, v);
    seq_enc_bytes(e, b, sizeof b);
}

void seq_enc_u64(seq_enc *e, uint64_t v)
{
    uint8_t b[8];
    seq_put_u64be(b, v);
    seq_enc_bytes(e, b, sizeof b);
}

void seq_dec_init(seq_dec *d, const void *buf, size_t len)
{
    d->buf = buf;
    d->len = len;
    d->off = 0;
    d->err = false;
}

const uint8_t *seq_dec_ref(seq_dec *d, size_t n)
{
    if (d->err || n > d->len - d->off) {
        d->err = true;
        return NULL;
    }
    const uint8_t *p = d->buf + d->off;
    d->off += n;
    return p;
}

void seq_dec_bytes(seq_dec *d, void *out, size_t n)
{
    const uint8_t *p = seq_dec_ref(d, n);
    if (p)
        memcpy(out, p, n);
    else
        memset(out, 0, n);
}

uint8_t seq_dec_u8(seq_dec *d)
{
    const uint8_t *p = seq_dec_ref(d, 1);
    return p ? p[0] : 0;
}

uint32_t seq_dec_u32(seq_dec *d)
{
    const uint8_t *p = seq_dec_ref(d, 4);
    return p ? seq_get_u32be(p) : 0;
}

uint64_t seq_dec_u64(seq_dec *d)
{
    const uint8_t *p = seq_dec_ref(d, 8);
    return p ? seq_get_u64be(p) : 0;
}

bool seq_dec_done(const seq_dec *d) { return !d->err && d->off == d->len; }
