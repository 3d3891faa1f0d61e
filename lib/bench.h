/* Pieces of `seqctl bench` worth testing on their own: the stamped payload a
 * load generator sends (so a subscriber can measure latency and spot
 * duplicates) and a bounded latency histogram. */
#ifndef SEQ_BENCH_H
#define SEQ_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assert.h"

/* Payload: send time (CLOCK_MONOTONIC ns) u64 BE || run nonce u64 BE ||
 * sequence u64 BE || filler up to the payload size. */
#define SEQ_BENCH_STAMP_BYTES 24

/* Writes the stamp and a filler derived from seq into out[0..len); len must be
 * at least SEQ_BENCH_STAMP_BYTES. */
void seq_bench_stamp(uint8_t *out, size_t len, uint64_t send_ns, uint64_t nonce, uint64_t seq);
/* Reads a stamp; false when the payload is too short to carry one. */
bool seq_bench_unstamp(const uint8_t *in, size_t len, uint64_t *send_ns, uint64_t *nonce, uint64_t *seq);

/* Log-linear histogram of non-negative values (e.g. ns): values below
 * 2^SUB_BITS are exact, larger ones fall into buckets 1/2^(SUB_BITS-1) of
 * their magnitude wide, so any quantile is within 0.8% of the truth. Fixed
 * size (about 60 KiB), no allocation. */
#define SEQ_HIST_SUB_BITS 8
#define SEQ_HIST_BUCKETS ((1u << SEQ_HIST_SUB_BITS) + (64u - SEQ_HIST_SUB_BITS) * (1u << (SEQ_HIST_SUB_BITS - 1)))

typedef struct {
    uint64_t counts[SEQ_HIST_BUCKETS];
    uint64_t n;
    uint64_t max;
} seq_hist;

void seq_hist_init(seq_hist *h);
void seq_hist_add(seq_hist *h, uint64_t v);
/* Value at quantile q in [0, 1] (q = 0.99 for p99): the largest value added
 * for the top rank, else the midpoint of the bucket holding that rank (never
 * above the largest value); 0 when empty. */
uint64_t seq_hist_quantile(const seq_hist *h, double q);

#endif
