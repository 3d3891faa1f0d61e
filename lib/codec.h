/* Canonical byte encoding: fixed-width big-endian integers and raw bytes.
 * Everything we hash or sign is encoded with these, never with protobuf. */
#ifndef SEQ_CODEC_H
#define SEQ_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writer over a caller-owned buffer. Writing past cap sets overflow and
 * writes nothing more; check it once at the end. */
typedef struct {
    uint8_t *buf;
    size_t len;
    size_t cap;
    bool overflow;
} seq_enc;

void seq_enc_init(seq_enc *e, uint8_t *buf, size_t cap);
void seq_enc_u8(seq_enc *e, uint8_t v);
void seq_enc_u32(seq_enc *e, uint32_t v);
void seq_enc_u64(seq_enc *e, uint64_t v);
void seq_enc_bytes(seq_enc *e, const void *p, size_t n);

/* Reader over borrowed bytes. Reading past the end sets err and yields zeros. */
typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t off;
    bool err;
} seq_dec;

void seq_dec_init(seq_dec *d, const void *buf, size_t len);
uint8_t seq_dec_u8(seq_dec *d);
uint32_t seq_dec_u32(seq_dec *d);
uint64_t seq_dec_u64(seq_dec *d);
/* Copies n bytes into out. */
void seq_dec_bytes(seq_dec *d, void *out, size_t n);
/* Returns a pointer to the next n bytes inside the input (borrowed), or NULL. */
const uint8_t *seq_dec_ref(seq_dec *d, size_t n);
/* True when all input was consumed without error. */
bool seq_dec_done(const seq_dec *d);

static inline void seq_put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline uint32_t seq_get_u32be(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void seq_put_u64be(uint8_t *p, uint64_t v)
{
    seq_put_u32be(p, (uint32_t)(v >> 32));
    seq_put_u32be(p + 4, (uint32_t)v);
}
static inline uint64_t seq_get_u64be(const uint8_t *p)
{
    return ((uint64_t)seq_get_u32be(p) << 32) | seq_get_u32be(p + 4);
}

#endif
