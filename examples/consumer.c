/* A rollup's consumer, built against an installed libseqclient only:
 *
 *     cc consumer.c -o consumer $(pkg-config --cflags --libs seqclient)
 *
 * Follows one namespace from a height, every batch verified against the
 * network's genesis file, and prints it: one line per batch, one per
 * transaction. When the node goes away it reconnects (at most
 * RECONNECTS_MAX times in a row) and resumes after the last verified batch,
 * so the stream it prints has no gap and no duplicate. A batch that fails
 * verification stops it with the reason (exit 1): a rollup must not apply
 * what it cannot verify. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <seqclient/seqclient.h>

#define CONNECT_TIMEOUT_MS 5000u
#define BATCH_WAIT_MS 1000u
#define RECONNECTS_MAX 5
#define PREVIEW_BYTES 48 /* of each payload, printed */

static const char USAGE[] =
    "usage: consumer --ns N [--api HOST:PORT] [--from H] [--genesis FILE] [--count K]\n"
    "\n"
    "Prints namespace N's finalized batches from height H (default 1), each\n"
    "verified against the genesis FILE (default genesis.json) before it is\n"
    "printed. --api defaults to 127.0.0.1:7700; --count K stops after K batches.\n";

typedef struct {
    const char *api;
    const char *genesis;
    seq_ns ns;
    uint64_t from;
    uint64_t count; /* 0: no limit */
} options;

static int parse_options(int argc, char **argv, options *o)
{
    static const struct option longs[] = {
        { "api", required_argument, NULL, 'a' },   { "ns", required_argument, NULL, 'n' },
        { "from", required_argument, NULL, 'f' },  { "genesis", required_argument, NULL, 'g' },
        { "count", required_argument, NULL, 'c' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    *o = (options){ .api = "127.0.0.1:7700", .genesis = "genesis.json", .from = 1 };
    int have_ns = 0, opt;
    while ((opt = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (opt) {
        case 'a': o->api = optarg; break;
        case 'n': o->ns = strtoull(optarg, NULL, 10); have_ns = 1; break;
        case 'f': o->from = strtoull(optarg, NULL, 10); break;
        case 'g': o->genesis = optarg; break;
        case 'c': o->count = strtoull(optarg, NULL, 10); break;
        case 'h': fputs(USAGE, stdout); exit(0);
        default: fputs(USAGE, stderr); return 2;
        }
    }
    if (!have_ns || o->from == 0 || optind != argc) {
        fputs(USAGE, stderr);
        return 2;
    }
    return 0;
}

static void print_batch(const seq_batch *b)
{
    char hash[2 * SEQ_HASH_BYTES + 1];
    seq_hex(hash, b->block_hash.b, SEQ_HASH_BYTES);
    printf("height %" PRIu64 " ns %" PRIu64 " block %.16s txs %u (verified)\n", b->header.height, b->ns, hash,
           b->tx_count);
    for (uint32_t i = 0; i < b->tx_count; i++) {
        const seq_tx *t = &b->txs[i];
        char id[2 * SEQ_HASH_BYTES + 1], preview[PREVIEW_BYTES + 1];
        seq_hex(id, t->id.b, SEQ_HASH_BYTES);
        uint32_t n = t->len < PREVIEW_BYTES ? t->len : PREVIEW_BYTES;
        for (uint32_t k = 0; k < n; k++)
            preview[k] = (t->data[k] >= 0x20 && t->data[k] < 0x7F) ? (char)t->data[k] : '.';
        preview[n] = '\0';
        printf("  tx %.16s %u bytes: %s\n", id, t->len, preview);
    }
    fflush(stdout);
}

/* One connection: subscribe (or resume after *last), print until the node
 * goes away (0: reconnect), the count is reached (0, *done), or an error. */
static int follow(const options *o, uint64_t *printed, int *done, int *have_last, uint64_t *last_height,
                  seq_hash *last_hash)
{
    seq_client *c;
    char err[512];
    if (seq_client_connect(&c, o->api, CONNECT_TIMEOUT_MS, err, sizeof err) != 0) {
        fprintf(stderr, "consumer: %s\n", err);
        return 0; /* try again */
    }
    int rc = seq_client_verify_genesis(c, o->genesis, err, sizeof err);
    if (rc) {
        fprintf(stderr, "consumer: %s\n", err);
        seq_client_close(c);
        return rc;
    }
    rc = *have_last ? seq_client_subscribe_resume(c, &o->ns, 1, *last_height, last_hash)
                    : seq_client_subscribe(c, &o->ns, 1, o->from);
    while (rc == 0 && !(o->count && *printed >= o->count)) {
        seq_batch *b;
        rc = seq_client_next_batch(c, &b, BATCH_WAIT_MS);
        if (rc == SEQ_ETIMEOUT) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        print_batch(b);
        (*printed)++;
        seq_batch_free(b);
        *have_last = seq_client_resume_point(c, last_height, last_hash) == 0;
    }
    *done = rc == 0;
    if (rc == SEQ_ECLOSED || rc == SEQ_EIO || rc == SEQ_ETIMEOUT) {
        fprintf(stderr, "consumer: %s; reconnecting\n", seq_client_last_error(c));
        rc = 0;
    } else if (rc) {
        fprintf(stderr, "consumer: %s (%s)\n", seq_strerror(rc), seq_client_last_error(c));
    }
    seq_client_close(c);
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_options(argc, argv, &o);
    if (rc)
        return rc;
    uint64_t printed = 0, last_height = 0;
    seq_hash last_hash;
    int done = 0, have_last = 0;
    for (int attempt = 0; attempt <= RECONNECTS_MAX && !done; attempt++) {
        uint64_t before = printed;
        if ((rc = follow(&o, &printed, &done, &have_last, &last_height, &last_hash)) != 0)
            return 1;
        if (printed > before)
            attempt = 0; /* progress: the budget is for failures in a row */
        if (!done)
            sleep(1);
    }
    if (!done) {
        fprintf(stderr, "consumer: gave up after %d reconnects\n", RECONNECTS_MAX);
        return 1;
    }
    return 0;
}
