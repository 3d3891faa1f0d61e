/* The load generator's payload stamp and latency histogram (lib/bench.h). */
#include "bench.h"

#include <math.h>
#include <string.h>

#include "codec.h"

_Static_assert(SEQ_HIST_SUB_BITS >= 2 && SEQ_HIST_SUB_BITS < 32, "sub-bucket bits in range");

void seq_bench_stamp(uint8_t *out, size_t len, uint64_t send_ns, uint64_t nonce, uint64_t seq)
{
    SEQ_ASSERT(out && len >= SEQ_BENCH_STAMP_BYTES);
    seq_put_u64be(out, send_ns);
    seq_put_u64be(out + 8, nonce);
    seq_put_u64be(out + 16, seq);
    /* Filler varies with seq so payloads do not compress to nothing. */
    uint64_t x = seq * 0x9E3779B97F4A7C15ull + nonce;
    for (size_t i = SEQ_BENCH_STAMP_BYTES; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[i] = (uint8_t)x;
    }
}

bool seq_bench_unstamp(const uint8_t *in, size_t len, uint64_t *send_ns, uint64_t *nonce, uint64_t *seq)
{
    SEQ_ASSERT(send_ns && nonce && seq);
    if (!in || len < SEQ_BENCH_STAMP_BYTES)
        return false;
    *send_ns = seq_get_u64be(in);
    *nonce = seq_get_u64be(in + 8);
    *seq = seq_get_u64be(in + 16);
    return true;
}

void seq_hist_init(seq_hist *h)
{
    SEQ_ASSERT(h);
    memset(h, 0, sizeof *h);
}

#define SUB_COUNT (1u << SEQ_HIST_SUB_BITS)
#define HALF_COUNT (SUB_COUNT / 2)

/* Values below SUB_COUNT have their own bucket; above, the top SUB_BITS bits
 * of the value pick one of HALF_COUNT buckets per power of two. */
static uint32_t bucket_of(uint64_t v)
{
    if (v < SUB_COUNT)
        return (uint32_t)v;
    uint32_t msb = 63u - (uint32_t)__builtin_clzll(v);
    uint32_t shift = msb - (SEQ_HIST_SUB_BITS - 1);
    uint32_t top = (uint32_t)(v >> shift); /* in [HALF_COUNT, SUB_COUNT) */
    uint32_t b = SUB_COUNT + (shift - 1) * HALF_COUNT + (top - HALF_COUNT);
    SEQ_ASSERT(b < SEQ_HIST_BUCKETS);
    return b;
}

/* Midpoint of the values of bucket b. */
static uint64_t bucket_mid(uint32_t b)
{
    if (b < SUB_COUNT)
        return b;
    uint32_t shift = (b - SUB_COUNT) / HALF_COUNT + 1;
    uint64_t top = (b - SUB_COUNT) % HALF_COUNT + HALF_COUNT;
    uint64_t lo = top << shift;
    return lo + ((1ull << shift) - 1) / 2;
}

void seq_hist_add(seq_hist *h, uint64_t v)
{
    SEQ_ASSERT(h);
    h->counts[bucket_of(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

uint64_t seq_hist_quantile(const seq_hist *h, double q)
{
    SEQ_ASSERT(h);
    if (h->n == 0)
        return 0;
    q = q < 0 ? 0 : (q > 1 ? 1 : q);
    uint64_t rank = (uint64_t)ceil(q * (double)h->n);
    if (rank == 0)
        rank = 1;
    if (rank >= h->n)
        return h->max; /* the top rank is known exactly */
    uint64_t seen = 0;
    for (uint32_t b = 0; b < SEQ_HIST_BUCKETS; b++) {
        seen += h->counts[b];
        if (seen >= rank) {
            uint64_t mid = bucket_mid(b);
            return mid > h->max ? h->max : mid;
        }
    }
    return h->max;
}
