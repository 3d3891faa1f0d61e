/* seqctl: the operator's and the rollup's tool for a seqd network. Talks to
 * a node's API port (lib/client.h): submit transactions, follow namespaces,
 * read a node's status, generate load; and writes local testnets (node homes
 * and a genesis file).
 *
 * Exit codes: 0 success, 1 failure (a refusal, a rejected transaction, the
 * node gone), 2 usage error (unknown flag, missing value, bad number). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "batch_json.h"
#include "bench.h"
#include "client.h"
#include "config.h"
#include "errors.h"
#include "genesis.h"
#include "handshake.h"
#include "home.h"
#include "log.h"
#include "msg.h"
#include "reader.h"
#include "seq.pb-c.h"
#include "types.h"
#include "wire.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

#define CONNECT_TIMEOUT_MS 5000u
#define REPLY_TIMEOUT_MS 10000u
#define SUBMIT_LINES_BATCH_MAX 1024u              /* txs per SubmitRequest with --lines */
#define SUBMIT_LINES_BATCH_BYTES_MAX (8u << 20)   /* payload bytes per SubmitRequest with --lines */
#define BATCH_WAIT_MS 1000u                       /* subscribe: one wait for the next batch */

/* ---- flags -------------------------------------------------------------------
 * Each subcommand lists its flags in a table; parse_flags fills in the values
 * and names the flag in every usage error. */

typedef struct {
    const char *name;    /* without the leading "--" */
    bool takes_value;
    const char *value;   /* set by parse_flags */
    bool present;
} flag;

static const char *g_cmd = "seqctl";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", g_cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see %s --help)\n", g_cmd);
    return EXIT_USAGE;
}

static int failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int failure(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", g_cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAIL;
}

static flag *find_flag(flag *flags, size_t n, const char *name, size_t name_len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(flags[i].name) == name_len && strncmp(flags[i].name, name, name_len) == 0)
            return &flags[i];
    return NULL;
}

/* Accepts "--name value" and "--name=value". Returns 0, EXIT_USAGE, or -1 when
 * --help was asked for. */
static int parse_flags(int argc, char **argv, flag *flags, size_t n)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return -1;
        if (strncmp(a, "--", 2) != 0)
            return usage_error("unexpected argument '%s'", a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        flag *f = find_flag(flags, n, name, name_len);
        if (!f)
            return usage_error("unknown flag --%.*s", (int)name_len, name);
        if (f->present)
            return usage_error("--%s given twice", f->name);
        f->present = true;
        if (!f->takes_value) {
            if (eq)
                return usage_error("--%s takes no value", f->name);
            continue;
        }
        if (eq) {
            f->value = eq + 1;
        } else {
            if (i + 1 >= argc)
                return usage_error("--%s needs a value", f->name);
            f->value = argv[++i];
        }
    }
    return 0;
}

/* Parses a decimal unsigned number within [min, max], naming the flag. */
static int parse_u64(const char *flag_name, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return usage_error("--%s: '%s' is not a number", flag_name, s ? s : "");
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return usage_error("--%s: '%s' is not a number", flag_name, s);
    if (v < min || v > max)
        return usage_error("--%s: %llu is outside %" PRIu64 "..%" PRIu64, flag_name, v, min, max);
    *out = v;
    return 0;
}

static int require(const flag *f)
{
    return f->present ? 0 : usage_error("--%s is required", f->name);
}

static int connect_api(seq_client **c, const char *api)
{
    char err[256];
    int rc = seq_client_connect(c, api, CONNECT_TIMEOUT_MS, err, sizeof err);
    if (rc)
        return failure("%s", err);
    return 0;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void hex_of(char *out, const void *p, size_t n)
{
    seq_hex(out, p, n);
}

/* ---- submit ------------------------------------------------------------------ */

static const char SUBMIT_HELP[] =
    "usage: seqctl submit --api HOST:PORT --ns N [--data STR | --file F] [--lines] [--key K]\n"
    "\n"
    "Submits one transaction to namespace N: the bytes of --data, of file F, or of\n"
    "standard input. Prints 'accepted id=<hex>' or 'rejected reason=<text>'; exits 1\n"
    "when the node rejects it.\n"
    "  --lines   every line of the input (file or stdin) is one transaction (empty\n"
    "            lines are skipped), sent in requests of up to 1024; one output line\n"
    "            per transaction; exits 1 when any is rejected.\n"
    "  --key K   a client key (1..64 bytes) for an idempotent retry: submitting\n"
    "            again with the same key gets the first answer, and\n"
    "            'seqctl tx --key K' finds the transaction (not with --lines).\n";

/* Prints one verdict; returns true when accepted. */
static bool print_verdict(const seq_submit_result *r)
{
    if (r->status == 0) {
        char hex[2 * SEQ_HASH_BYTES + 1];
        hex_of(hex, r->id.b, SEQ_HASH_BYTES);
        printf("accepted id=%s\n", hex);
        return true;
    }
    printf("rejected reason=%s\n", r->reason[0] ? r->reason : seq_strerror(r->status));
    return false;
}

/* Reads all of f, up to SEQ_TX_PAYLOAD_BYTES_MAX bytes. *out is malloc'd. */
static int read_all(FILE *f, const char *what, uint8_t **out, size_t *len)
{
    size_t cap = SEQ_TX_PAYLOAD_BYTES_MAX + 1;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return failure("out of memory");
    size_t n = fread(buf, 1, cap, f);
    if (ferror(f)) {
        free(buf);
        return failure("%s: read error", what);
    }
    if (n > SEQ_TX_PAYLOAD_BYTES_MAX) {
        free(buf);
        return failure("%s: over %u bytes, the largest transaction", what, SEQ_TX_PAYLOAD_BYTES_MAX);
    }
    *out = buf;
    *len = n;
    return 0;
}

static int submit_one(seq_client *c, seq_ns ns, const uint8_t *data, size_t len, const char *key)
{
    seq_tx tx = { .ns = ns, .len = (uint32_t)len, .data = data };
    seq_client_key k = { (const uint8_t *)key, key ? (uint32_t)strlen(key) : 0 };
    seq_submit_result r;
    int rc = seq_client_submit_keyed(c, &tx, key ? &k : NULL, 1, &r, REPLY_TIMEOUT_MS);
    if (rc)
        return failure("submit: %s (%s)", seq_strerror(rc), seq_client_last_error(c));
    return print_verdict(&r) ? 0 : EXIT_FAIL;
}

/* The transactions of one --lines request: their payloads are owned here. */
typedef struct {
    seq_tx txs[SUBMIT_LINES_BATCH_MAX];
    uint8_t *payloads[SUBMIT_LINES_BATCH_MAX];
    seq_submit_result results[SUBMIT_LINES_BATCH_MAX];
    uint32_t n;
    size_t bytes;
} line_batch;

/* Sends the batch, prints its verdicts; *rejected counts the rejections. */
static int line_batch_flush(seq_client *c, line_batch *b, uint64_t *rejected)
{
    if (b->n == 0)
        return 0;
    int rc = seq_client_submit(c, b->txs, b->n, b->results, REPLY_TIMEOUT_MS);
    if (rc == 0)
        for (uint32_t i = 0; i < b->n; i++)
            *rejected += !print_verdict(&b->results[i]);
    for (uint32_t i = 0; i < b->n; i++)
        free(b->payloads[i]);
    b->n = 0;
    b->bytes = 0;
    fflush(stdout);
    if (rc)
        return failure("submit: %s (%s)", seq_strerror(rc), seq_client_last_error(c));
    return 0;
}

static int submit_lines(seq_client *c, seq_ns ns, FILE *in)
{
    line_batch *b = calloc(1, sizeof *b);
    if (!b)
        return failure("out of memory");
    char *line = NULL;
    size_t cap = 0;
    uint64_t rejected = 0, lineno = 0;
    int rc = 0;
    ssize_t got;
    while (rc == 0 && (got = getline(&line, &cap, in)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (len == 0)
            continue;
        if (len > SEQ_TX_PAYLOAD_BYTES_MAX) {
            rc = failure("line %" PRIu64 ": over %u bytes, the largest transaction", lineno,
                         SEQ_TX_PAYLOAD_BYTES_MAX);
            break;
        }
        if (b->n == SUBMIT_LINES_BATCH_MAX || b->bytes + len > SUBMIT_LINES_BATCH_BYTES_MAX)
            if ((rc = line_batch_flush(c, b, &rejected)))
                break;
        uint8_t *copy = malloc(len);
        if (!copy) {
            rc = failure("out of memory");
            break;
        }
        memcpy(copy, line, len);
        b->payloads[b->n] = copy;
        b->txs[b->n++] = (seq_tx){ .ns = ns, .len = (uint32_t)len, .data = copy };
        b->bytes += len;
    }
    if (rc == 0 && ferror(in))
        rc = failure("read error on input");
    if (rc == 0)
        rc = line_batch_flush(c, b, &rejected);
    for (uint32_t i = 0; i < b->n; i++)
        free(b->payloads[i]);
    free(b);
    free(line);
    if (rc == 0 && rejected > 0)
        rc = EXIT_FAIL;
    return rc;
}

static int cmd_submit(int argc, char **argv)
{
    enum { F_API, F_NS, F_DATA, F_FILE, F_LINES, F_KEY, F_N };
    flag flags[F_N] = { { "api", true },  { "ns", true },     { "data", true },
                        { "file", true }, { "lines", false }, { "key", true } };
    int rc = parse_flags(argc, argv, flags, F_N);
    if (rc < 0) {
        fputs(SUBMIT_HELP, stdout);
        return 0;
    }
    uint64_t ns;
    if (rc || (rc = require(&flags[F_API])) || (rc = require(&flags[F_NS])) ||
        (rc = parse_u64("ns", flags[F_NS].value, 0, UINT64_MAX, &ns)))
        return rc;
    if (flags[F_DATA].present && flags[F_FILE].present)
        return usage_error("--data and --file exclude each other");
    if (flags[F_DATA].present && flags[F_LINES].present)
        return usage_error("--lines reads a file or stdin, not --data");
    const char *key = flags[F_KEY].value;
    if (key && flags[F_LINES].present)
        return usage_error("--key names one transaction, not --lines");
    if (key && (!key[0] || strlen(key) > SEQ_CLIENT_KEY_BYTES_MAX))
        return usage_error("--key: 1..%u bytes", SEQ_CLIENT_KEY_BYTES_MAX);
    FILE *in = stdin;
    const char *what = "stdin";
    if (flags[F_FILE].present) {
        what = flags[F_FILE].value;
        if (!(in = fopen(what, "rb")))
            return failure("%s: %s", what, strerror(errno));
    }
    seq_client *c;
    if ((rc = connect_api(&c, flags[F_API].value)) == 0) {
        if (flags[F_LINES].present) {
            rc = submit_lines(c, ns, in);
        } else if (flags[F_DATA].present) {
            const char *d = flags[F_DATA].value;
            rc = strlen(d) > SEQ_TX_PAYLOAD_BYTES_MAX ? failure("--data: over %u bytes", SEQ_TX_PAYLOAD_BYTES_MAX)
                                                      : submit_one(c, ns, (const uint8_t *)d, strlen(d), key);
        } else {
            uint8_t *buf = NULL;
            size_t len = 0;
            if ((rc = read_all(in, what, &buf, &len)) == 0) {
                rc = submit_one(c, ns, buf, len, key);
                free(buf);
            }
        }
        seq_client_close(c);
    }
    if (in != stdin)
        fclose(in);
    return rc;
}

/* ---- subscribe --------------------------------------------------------------- */

static const char SUBSCRIBE_HELP[] =
    "usage: seqctl subscribe --api HOST:PORT[,HOST:PORT...] --ns N[,M...] --from H [--count K]\n"
    "                        [--skip-empty] [--genesis FILE | --no-verify] [--verify-runs]\n"
    "                        [--reconnect-every K]\n"
    "\n"
    "Follows namespaces from height H (>= 1) on: one JSON line per finalized block\n"
    "and namespace, flushed as it comes (the form of lib/batch_json.h):\n"
    "  {\"height\":..,\"ns\":..,\"block_hash\":\"hex\",\"prev_batch_hash\":\"hex\",\n"
    "   \"tx_count\":..,\"txs\":[{\"id\":\"hex\",\"index\":..,\"data\":\"base64\"}],\n"
    "   \"header\":{..},\"cert\":{..},\"cert_path\":[..],\"proof\":{..},\"verified\":true}\n"
    "Every batch is verified against the genesis validators before it is printed:\n"
    "its finalization certificate, header hash, namespace proof (all of the\n"
    "namespace's transactions, none left out) and link to the previous batch. A\n"
    "batch that fails stops the command with the reason and exit code 1.\n"
    "  --genesis FILE  the network's genesis file; default $SEQ_GENESIS, else\n"
    "                  ./genesis.json\n"
    "  --no-verify     print batches unchecked (\"verified\":false); for debugging\n"
    "  --verify-runs   catching up, batches that arrived together are checked as a run:\n"
    "                  per namespace only the last one's certificate; the earlier ones\n"
    "                  are proven final by it and say so (\"final_by\":H), their own\n"
    "                  certificates unchecked (seq_client_verify_runs)\n"
    "  --count K       exit after K batches (with --skip-empty, K non-empty ones)\n"
    "  --skip-empty    print only batches with transactions\n"
    "A lost connection is resumed on the next --api node (round robin) from the\n"
    "last verified height and block hash: no gap, no duplicate.\n"
    "  --reconnect-every K  also reconnect after every K batches (for testing)\n";

/* The genesis file to verify against: --genesis, else $SEQ_GENESIS, else
 * ./genesis.json when it exists (where `seqctl testnet --out .` writes it).
 * NULL when none is named or found. */
static const char *genesis_lookup(const flag *genesis_flag)
{
    if (genesis_flag->present)
        return genesis_flag->value;
    const char *env = getenv("SEQ_GENESIS");
    if (env && env[0])
        return env;
    struct stat st;
    return stat("genesis.json", &st) == 0 ? "genesis.json" : NULL;
}

/* Loads path into *g (malloc'd, the caller frees). */
static int genesis_read(const char *path, seq_genesis **g)
{
    char err[512] = "";
    if (!(*g = malloc(sizeof **g)))
        return failure("out of memory");
    if (seq_genesis_load(*g, path, err, sizeof err) != 0) {
        free(*g);
        *g = NULL;
        return failure("%s", err);
    }
    return 0;
}

static int print_json_line(json_t *j);

/* Parses "1,2,3" into ns (at most SEQ_CLIENT_SUBSCRIBE_NS_MAX). */
static int parse_ns_list(const char *s, seq_ns *ns, uint32_t *count)
{
    char buf[SEQ_CLIENT_SUBSCRIBE_NS_MAX * 24];
    if (strlen(s) >= sizeof buf)
        return usage_error("--ns: list too long");
    strcpy(buf, s);
    *count = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*count == SEQ_CLIENT_SUBSCRIBE_NS_MAX)
            return usage_error("--ns: more than %d namespaces", SEQ_CLIENT_SUBSCRIBE_NS_MAX);
        uint64_t v;
        int rc = parse_u64("ns", tok, 0, UINT64_MAX, &v);
        if (rc)
            return rc;
        ns[(*count)++] = v;
    }
    if (*count == 0)
        return usage_error("--ns: no namespace given");
    return 0;
}

/* jansson integers are signed 64-bit: larger values are written as strings. */
static json_t *json_u64(uint64_t v)
{
    if (v <= INT64_MAX)
        return json_integer((json_int_t)v);
    char s[24];
    snprintf(s, sizeof s, "%" PRIu64, v);
    return json_string(s);
}

/* One subscription across connections: --api may name several nodes; after
 * a lost connection (or every --reconnect-every batches, for testers) it
 * reconnects to the next one and resumes from the last verified height and
 * block hash, so the stream has no gap and no duplicate across connections. */
#define SUB_ADDRS_MAX 16
#define SUB_RETRIES_MAX 20     /* consecutive failed reconnects before giving up */
#define SUB_RETRY_MS 250

typedef struct {
    char list[1024];
    const char *addrs[SUB_ADDRS_MAX];
    uint32_t naddrs, next;
    const seq_genesis *g;      /* NULL: --no-verify */
    bool verify_runs;
    seq_ns ns[SEQ_CLIENT_SUBSCRIBE_NS_MAX];
    uint64_t printed_to[SEQ_CLIENT_SUBSCRIBE_NS_MAX]; /* last height printed per namespace */
    uint32_t ns_count;
    uint64_t from;
    seq_client *c;
    bool have_point;
    uint64_t point_height;
    seq_hash point_hash;
    uint64_t reconnects;
} sub_session;

/* "host:port,host:port" into s->addrs. */
static int sub_addrs_parse(sub_session *s, const char *list)
{
    if (strlen(list) >= sizeof s->list)
        return usage_error("--api: list too long");
    snprintf(s->list, sizeof s->list, "%s", list);
    char *save = NULL;
    s->naddrs = 0;
    for (char *tok = strtok_r(s->list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (s->naddrs == SUB_ADDRS_MAX)
            return usage_error("--api: at most %d HOST:PORT", SUB_ADDRS_MAX);
        s->addrs[s->naddrs++] = tok;
    }
    return s->naddrs ? 0 : usage_error("--api: no HOST:PORT given");
}

static int sub_open(sub_session *s)
{
    const char *addr = s->addrs[s->next++ % s->naddrs];
    int rc = connect_api(&s->c, addr);
    if (rc)
        return rc;
    if (s->g && ((rc = seq_client_verify_with(s->c, &s->g->set, s->g->chain_id)) != 0 ||
                 (rc = seq_client_verify_runs(s->c, s->verify_runs)) != 0))
        return failure("verify: %s", seq_strerror(rc));
    rc = s->have_point ? seq_client_subscribe_resume(s->c, s->ns, s->ns_count, s->point_height, &s->point_hash)
                       : seq_client_subscribe(s->c, s->ns, s->ns_count, s->from);
    if (rc)
        return failure("subscribe at %s: %s (%s)", addr, seq_strerror(rc), seq_client_last_error(s->c));
    if (s->reconnects)
        fprintf(stderr, "%s: reconnected to %s, resuming after height %" PRIu64 " (reconnect %" PRIu64 ")\n",
                g_cmd, addr, s->point_height, s->reconnects);
    return 0;
}

/* Closes the connection, remembering where to resume. */
static void sub_close(sub_session *s)
{
    if (!s->c)
        return;
    uint64_t old_height = s->point_height;
    seq_hash old_hash = s->point_hash;
    if (seq_client_resume_point(s->c, &s->point_height, &s->point_hash) == 0) {
        s->have_point = true;
    } else { /* no batch on this connection: resume where the last one did */
        s->point_height = old_height;
        s->point_hash = old_hash;
    }
    seq_client_close(s->c);
    s->c = NULL;
}

static int sub_reconnect(sub_session *s)
{
    sub_close(s);
    s->reconnects++;
    for (int tries = 0;; tries++) {
        if (sub_open(s) == 0)
            return 0;
        sub_close(s);
        if (tries + 1 == SUB_RETRIES_MAX)
            return failure("gave up after %d failed reconnects", SUB_RETRIES_MAX);
        struct timespec ts = {0, SUB_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Prints b unless a namespace that was ahead at a resume sees it again. */
static int sub_print(sub_session *s, const seq_batch *b, bool skip_empty, uint64_t *printed)
{
    for (uint32_t i = 0; i < s->ns_count; i++) {
        if (s->ns[i] != b->ns)
            continue;
        if (b->header.height <= s->printed_to[i])
            return 0;
        s->printed_to[i] = b->header.height;
    }
    if (skip_empty && b->tx_count == 0)
        return 0;
    (*printed)++;
    return print_json_line(seq_batch_to_json(b, s->g != NULL));
}

static int follow(sub_session *s, uint64_t count, bool has_count, bool skip_empty, uint64_t reconnect_every)
{
    uint64_t printed = 0, since_connect = 0;
    while (!has_count || printed < count) {
        if (reconnect_every && since_connect == reconnect_every) {
            since_connect = 0;
            int rc = sub_reconnect(s);
            if (rc)
                return rc;
        }
        seq_batch *b;
        int rc = seq_client_next_batch(s->c, &b, BATCH_WAIT_MS);
        if (rc == SEQ_ETIMEOUT)
            continue;
        if (rc == SEQ_ECLOSED || rc == SEQ_EIO) {
            fprintf(stderr, "%s: connection lost (%s)\n", g_cmd, seq_client_last_error(s->c));
            if ((rc = sub_reconnect(s)) != 0)
                return rc;
            since_connect = 0;
            continue;
        }
        if (rc)
            return failure("subscription: %s (%s)", seq_strerror(rc), seq_client_last_error(s->c));
        since_connect++;
        rc = sub_print(s, b, skip_empty, &printed);
        seq_batch_free(b);
        if (rc)
            return rc;
    }
    return 0;
}

static int cmd_subscribe(int argc, char **argv)
{
    enum { F_API, F_NS, F_FROM, F_COUNT, F_SKIP, F_GENESIS, F_NO_VERIFY, F_RECONNECT, F_RUNS, F_N };
    flag flags[F_N] = { { "api", true },         { "ns", true },      { "from", true },       { "count", true },
                        { "skip-empty", false }, { "genesis", true }, { "no-verify", false }, { "reconnect-every", true },
                        { "verify-runs", false } };
    int rc = parse_flags(argc, argv, flags, F_N);
    if (rc < 0) {
        fputs(SUBSCRIBE_HELP, stdout);
        return 0;
    }
    sub_session *s = calloc(1, sizeof *s);
    if (!s)
        return failure("out of memory");
    uint64_t count = 0, reconnect_every = 0;
    if (rc || (rc = require(&flags[F_API])) || (rc = require(&flags[F_NS])) || (rc = require(&flags[F_FROM])) ||
        (rc = parse_ns_list(flags[F_NS].value, s->ns, &s->ns_count)) ||
        (rc = parse_u64("from", flags[F_FROM].value, 1, UINT64_MAX, &s->from)) ||
        (flags[F_COUNT].present && (rc = parse_u64("count", flags[F_COUNT].value, 1, UINT64_MAX, &count))) ||
        (flags[F_RECONNECT].present &&
         (rc = parse_u64("reconnect-every", flags[F_RECONNECT].value, 1, UINT64_MAX, &reconnect_every))))
        goto out;
    if (flags[F_GENESIS].present && flags[F_NO_VERIFY].present) {
        rc = usage_error("--genesis and --no-verify exclude each other");
        goto out;
    }
    if (flags[F_RUNS].present && flags[F_NO_VERIFY].present) {
        rc = usage_error("--verify-runs and --no-verify exclude each other");
        goto out;
    }
    s->verify_runs = flags[F_RUNS].present;
    if ((rc = sub_addrs_parse(s, flags[F_API].value)) != 0)
        goto out;
    seq_genesis *g = NULL;
    const char *genesis = flags[F_NO_VERIFY].present ? NULL : genesis_lookup(&flags[F_GENESIS]);
    if (!genesis && !flags[F_NO_VERIFY].present) {
        rc = failure("no genesis file to verify batches against: pass --genesis FILE (the network's "
                     "genesis.json) or set SEQ_GENESIS, or --no-verify to print them unchecked");
        goto out;
    }
    if (genesis && (rc = genesis_read(genesis, &g)))
        goto out;
    if (g)
        fprintf(stderr, "%s: verifying against genesis %s (chain %" PRIu64 ", %u validators)\n", g_cmd, genesis,
                g->chain_id, g->n);
    else
        fprintf(stderr, "%s: warning: --no-verify: batches are NOT verified (\"verified\":false); "
                        "for debugging only\n", g_cmd);
    s->g = g;
    rc = sub_open(s);
    if (rc == 0)
        rc = follow(s, count, flags[F_COUNT].present, flags[F_SKIP].present, reconnect_every);
    sub_close(s);
    free(g);
out:
    free(s);
    return rc;
}

/* ---- tx ---------------------------------------------------------------------- */

static const char TX_HELP[] =
    "usage: seqctl tx --api HOST:PORT (ID | --key K) [--genesis FILE]\n"
    "\n"
    "Asks a node where a transaction is, by its id (64 hex digits) or by the\n"
    "client key it was submitted with (seqctl submit --key), and prints one JSON\n"
    "object: {\"id\":\"hex\",\"status\":\"unknown|pending|dropped|finalized\",..}.\n"
    "dropped adds \"reason\" (expired, evicted, invalid); finalized adds height,\n"
    "index, block_hash, ns, header, cert, cert_path and proof (lib/batch_json.h\n"
    "forms) and \"verified\": whether the certificate was checked against the\n"
    "genesis validators and the inclusion proof against the header. A proof that\n"
    "fails prints the reason and exits 1.\n"
    "  --genesis FILE  default $SEQ_GENESIS, else ./genesis.json; with none, a\n"
    "                  finalized status is printed unchecked (\"verified\":false)\n";

static const char *tx_state_name(seq_tx_state s)
{
    switch (s) {
    case SEQ_TX_PENDING:
        return "pending";
    case SEQ_TX_FINALIZED:
        return "finalized";
    case SEQ_TX_DROPPED:
        return "dropped";
    default:
        return "unknown";
    }
}

/* The finalized part: where, and what proves it. false when out of memory. */
static bool tx_proof_json(json_t *o, const seq_tx_status *st, bool verified)
{
    char hash[2 * SEQ_HASH_BYTES + 1];
    hex_of(hash, st->block_hash.b, SEQ_HASH_BYTES);
    json_t *path = json_array();
    bool ok = path != NULL;
    for (uint32_t i = 0; ok && i < st->path_len; i++)
        ok = json_array_append_new(path, seq_header_to_json(&st->cert_path[i])) == 0;
    ok = json_object_set_new(o, "height", json_u64(st->height)) == 0 && ok;
    ok = json_object_set_new(o, "index", json_integer(st->index)) == 0 && ok;
    ok = json_object_set_new(o, "block_hash", json_string(hash)) == 0 && ok;
    ok = json_object_set_new(o, "ns", json_u64(st->ns)) == 0 && ok;
    ok = json_object_set_new(o, "header", seq_header_to_json(&st->header)) == 0 && ok;
    ok = json_object_set_new(o, "cert", seq_cert_to_json(&st->cert)) == 0 && ok;
    ok = json_object_set_new(o, "cert_path", path) == 0 && ok;
    ok = json_object_set_new(o, "proof", seq_nsproof_to_json(&st->proof)) == 0 && ok;
    return json_object_set_new(o, "verified", json_boolean(verified)) == 0 && ok;
}

/* NULL when out of memory. */
static json_t *tx_status_json(const seq_tx_status *st, bool verified)
{
    char id[2 * SEQ_HASH_BYTES + 1];
    hex_of(id, st->id.b, SEQ_HASH_BYTES);
    json_t *o = json_object();
    bool ok = o && json_object_set_new(o, "id", json_string(id)) == 0 &&
              json_object_set_new(o, "status", json_string(tx_state_name(st->state))) == 0;
    if (ok && st->state == SEQ_TX_DROPPED)
        ok = json_object_set_new(o, "reason", json_string(st->reason)) == 0;
    if (ok && st->state == SEQ_TX_FINALIZED)
        ok = tx_proof_json(o, st, verified);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Checks a finalized status against the genesis at path (when there is one)
 * and says so on stderr. *verified: it passed. */
static int tx_verify(const seq_tx_status *st, const char *path, bool *verified)
{
    *verified = false;
    if (!path) {
        fprintf(stderr, "%s: not verified: no genesis file (pass --genesis FILE or set SEQ_GENESIS)\n", g_cmd);
        return 0;
    }
    seq_genesis *g;
    int rc = genesis_read(path, &g);
    if (rc)
        return rc;
    char why[256] = "";
    rc = seq_client_tx_status_verify(st, &g->set, g->chain_id, why, sizeof why);
    if (rc == 0)
        fprintf(stderr, "%s: verified against genesis %s (chain %" PRIu64 ", %u validators): finalized at height %"
                PRIu64 " index %u\n", g_cmd, path, g->chain_id, g->n, st->height, st->index);
    else
        rc = failure("the node's proof does NOT verify against genesis %s: %s (%s)", path, why, seq_strerror(rc));
    *verified = rc == 0;
    free(g);
    return rc;
}

static int tx_ask(const char *api, const char *id_hex, const char *key, const char *genesis)
{
    seq_hash id;
    if (id_hex && (strlen(id_hex) != 2 * SEQ_HASH_BYTES || seq_unhex(id.b, SEQ_HASH_BYTES, id_hex) != 0))
        return usage_error("ID: '%s' is not 64 hex digits", id_hex);
    seq_client *c;
    int rc = connect_api(&c, api);
    if (rc)
        return rc;
    seq_tx_status *st = NULL;
    rc = id_hex ? seq_client_tx_status(c, &id, &st, REPLY_TIMEOUT_MS)
                : seq_client_tx_status_by_key(c, (const uint8_t *)key, (uint32_t)strlen(key), &st, REPLY_TIMEOUT_MS);
    if (rc)
        rc = failure("tx status: %s (%s)", seq_strerror(rc), seq_client_last_error(c));
    seq_client_close(c);
    if (rc)
        return rc;
    bool verified = false;
    if (st->state == SEQ_TX_FINALIZED)
        rc = tx_verify(st, genesis, &verified);
    int printed = print_json_line(tx_status_json(st, verified));
    seq_tx_status_free(st);
    return rc ? rc : printed;
}

/* Takes the one positional argument out of argv (it may stand anywhere among
 * the flags; a flag's separate value is not one). */
static int take_positional(int *argc, char **argv, flag *flags, size_t n, const char **pos)
{
    int kept = 0;
    for (int i = 0; i < *argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) == 0 || strcmp(a, "-h") == 0) {
            argv[kept++] = argv[i];
            const flag *f = find_flag(flags, n, a + 2, strcspn(a + 2, "="));
            if (f && f->takes_value && !strchr(a, '=') && i + 1 < *argc)
                argv[kept++] = argv[++i];
        } else if (*pos) {
            return usage_error("unexpected argument '%s'", a);
        } else {
            *pos = a;
        }
    }
    *argc = kept;
    return 0;
}

static int cmd_tx(int argc, char **argv)
{
    enum { F_API, F_KEY, F_GENESIS, F_N };
    flag flags[F_N] = { { "api", true }, { "key", true }, { "genesis", true } };
    const char *id_hex = NULL;
    int rc = take_positional(&argc, argv, flags, F_N, &id_hex);
    if (rc)
        return rc;
    rc = parse_flags(argc, argv, flags, F_N);
    if (rc < 0) {
        fputs(TX_HELP, stdout);
        return 0;
    }
    if (rc || (rc = require(&flags[F_API])))
        return rc;
    const char *key = flags[F_KEY].value;
    if (!id_hex == !key)
        return usage_error("give a transaction ID or --key K (one of them)");
    if (key && (!key[0] || strlen(key) > SEQ_CLIENT_KEY_BYTES_MAX))
        return usage_error("--key: 1..%u bytes", SEQ_CLIENT_KEY_BYTES_MAX);
    return tx_ask(flags[F_API].value, id_hex, key, genesis_lookup(&flags[F_GENESIS]));
}

/* ---- status ------------------------------------------------------------------ */

static const char STATUS_HELP[] =
    "usage: seqctl status --api HOST:PORT [--json]\n"
    "\n"
    "Prints the node's last finalized height, current view and its leader, peer\n"
    "links up, and the mempool's transactions and bytes (--json: one JSON object).\n";

static int cmd_status(int argc, char **argv)
{
    enum { F_API, F_JSON, F_N };
    flag flags[F_N] = { { "api", true }, { "json", false } };
    int rc = parse_flags(argc, argv, flags, F_N);
    if (rc < 0) {
        fputs(STATUS_HELP, stdout);
        return 0;
    }
    if (rc || (rc = require(&flags[F_API])))
        return rc;
    seq_client *c;
    if ((rc = connect_api(&c, flags[F_API].value)))
        return rc;
    seq_node_status st;
    rc = seq_client_status(c, &st, REPLY_TIMEOUT_MS);
    if (rc) {
        rc = failure("status: %s (%s)", seq_strerror(rc), seq_client_last_error(c));
        seq_client_close(c);
        return rc;
    }
    seq_client_close(c);
    if (flags[F_JSON].present) {
        json_t *o = json_object();
        if (!o)
            return failure("out of memory");
        json_object_set_new(o, "height", json_u64(st.height));
        json_object_set_new(o, "view", json_u64(st.view));
        json_object_set_new(o, "leader", json_integer(st.leader));
        json_object_set_new(o, "peers", json_integer(st.peers));
        json_object_set_new(o, "mempool_txs", json_u64(st.mempool_txs));
        json_object_set_new(o, "mempool_bytes", json_u64(st.mempool_bytes));
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!s)
            return failure("out of memory");
        puts(s);
        free(s);
        return 0;
    }
    printf("height         %" PRIu64 "\n", st.height);
    printf("view           %" PRIu64 "\n", st.view);
    printf("leader         %u\n", st.leader);
    printf("peers          %u\n", st.peers);
    printf("mempool_txs    %" PRIu64 "\n", st.mempool_txs);
    printf("mempool_bytes  %" PRIu64 "\n", st.mempool_bytes);
    return 0;
}

/* ---- testnet ----------------------------------------------------------------- */

static const char TESTNET_HELP[] =
    "usage: seqctl testnet --validators N --out DIR [--base-port P] [--chain-id C]\n"
    "                      [--view-timeout-ms T]\n"
    "\n"
    "Writes a local network of N validators: DIR/genesis.json and one node home\n"
    "DIR/node<i>/ (key, seqd.conf, data/) per validator. Node i listens for peers\n"
    "on 127.0.0.1:P+10*i, for clients on 127.0.0.1:P+10*i+1 and for HTTP on\n"
    "127.0.0.1:P+10*i+2 (P defaults to 7600); its config names ../genesis.json.\n"
    "The chain id is random unless\n"
    "given. Refuses a DIR that already holds a genesis.json or a node home.\n"
    "Start node i with: seqd start --home DIR/node<i>\n";

#define TESTNET_PORT_STRIDE 10
#define TESTNET_PORT_DEFAULT 7600

typedef struct {
    uint64_t n, base_port, chain_id, view_timeout_ms;
    bool view_timeout_set;
    const char *out;
} testnet_opts;

/* Every path the testnet would write, checked before anything is written. */
static int testnet_check_free(const testnet_opts *o, char *genesis_path, size_t len)
{
    if ((size_t)snprintf(genesis_path, len, "%s/genesis.json", o->out) >= len)
        return failure("%s: path too long", o->out);
    struct stat st;
    if (stat(genesis_path, &st) == 0)
        return failure("%s already exists; not touching it (pick another --out)", genesis_path);
    for (uint64_t i = 0; i < o->n; i++) {
        char p[SEQ_PATH_BYTES];
        const char *files[2] = { "key", SEQ_CONFIG_FILE };
        for (int k = 0; k < 2; k++) {
            snprintf(p, sizeof p, "%s/node%" PRIu64 "/%s", o->out, i, files[k]);
            if (stat(p, &st) == 0)
                return failure("%s already exists; not touching it (pick another --out)", p);
        }
    }
    return 0;
}

static int testnet_node(const testnet_opts *o, uint32_t i, seq_genesis *g)
{
    seq_config cfg;
    seq_config_defaults(&cfg);
    snprintf(cfg.genesis_file, sizeof cfg.genesis_file, "../genesis.json");
    unsigned p2p = (unsigned)(o->base_port + TESTNET_PORT_STRIDE * i);
    snprintf(cfg.p2p_listen, sizeof cfg.p2p_listen, "127.0.0.1:%u", p2p);
    snprintf(cfg.api_listen, sizeof cfg.api_listen, "127.0.0.1:%u", p2p + 1);
    snprintf(cfg.http_listen, sizeof cfg.http_listen, "127.0.0.1:%u", p2p + 2);
    if (o->view_timeout_set)
        cfg.view_timeout_ms = (uint32_t)o->view_timeout_ms;
    char dir[SEQ_PATH_BYTES], err[512];
    if ((size_t)snprintf(dir, sizeof dir, "%s/node%u", o->out, i) >= sizeof dir)
        return failure("%s: path too long", o->out);
    seq_genesis_validator *v = &g->validators[i];
    int rc = seq_home_init(dir, &cfg, &v->key, err, sizeof err);
    if (rc)
        return failure("%s", err);
    snprintf(v->name, sizeof v->name, "node%u", i);
    snprintf(v->address, sizeof v->address, "%s", cfg.p2p_listen);
    char pk[2 * SEQ_PUBKEY_BYTES + 1];
    hex_of(pk, v->key.b, SEQ_PUBKEY_BYTES);
    printf("%u %s pubkey=%.16s p2p=%s api=%s http=%s home=%s\n", i, v->name, pk, cfg.p2p_listen, cfg.api_listen,
           cfg.http_listen, dir);
    return 0;
}

static int testnet_write(const testnet_opts *o)
{
    char genesis_path[SEQ_PATH_BYTES];
    int rc = testnet_check_free(o, genesis_path, sizeof genesis_path);
    if (rc)
        return rc;
    if (mkdir(o->out, 0755) != 0 && errno != EEXIST)
        return failure("%s: %s", o->out, strerror(errno));
    seq_genesis *g = calloc(1, sizeof *g);
    if (!g)
        return failure("out of memory");
    g->chain_id = o->chain_id;
    g->genesis_time_ms = (uint64_t)time(NULL) * 1000u;
    g->n = (uint32_t)o->n;
    for (uint32_t i = 0; i < g->n && rc == 0; i++)
        rc = testnet_node(o, i, g);
    if (rc == 0) {
        seq_pubkey keys[SEQ_VALIDATORS_MAX];
        for (uint32_t i = 0; i < g->n; i++)
            keys[i] = g->validators[i].key;
        if (seq_validators_init(&g->set, keys, g->n) != 0)
            rc = failure("generated keys collide (retry)");
    }
    if (rc == 0 && (rc = seq_genesis_save(g, genesis_path)) != 0)
        rc = failure("%s: cannot write: %s", genesis_path, seq_strerror(rc));
    if (rc == 0)
        printf("genesis %s chain_id=%" PRIu64 " validators=%u\n", genesis_path, g->chain_id, g->n);
    free(g);
    return rc;
}

static int cmd_testnet(int argc, char **argv)
{
    enum { F_VALIDATORS, F_OUT, F_PORT, F_CHAIN, F_VIEW_TIMEOUT, F_N };
    flag flags[F_N] = { { "validators", true }, { "out", true }, { "base-port", true }, { "chain-id", true },
                        { "view-timeout-ms", true } };
    int rc = parse_flags(argc, argv, flags, F_N);
    if (rc < 0) {
        fputs(TESTNET_HELP, stdout);
        return 0;
    }
    testnet_opts o = { .base_port = TESTNET_PORT_DEFAULT };
    if (rc || (rc = require(&flags[F_VALIDATORS])) || (rc = require(&flags[F_OUT])) ||
        (rc = parse_u64("validators", flags[F_VALIDATORS].value, 1, SEQ_VALIDATORS_MAX, &o.n)))
        return rc;
    o.out = flags[F_OUT].value;
    if (!o.out[0])
        return usage_error("--out: empty path");
    uint64_t port_span = TESTNET_PORT_STRIDE * (o.n - 1) + 2; /* the last node's http port */
    if (flags[F_PORT].present &&
        (rc = parse_u64("base-port", flags[F_PORT].value, 1, 65535 - port_span, &o.base_port)))
        return rc;
    if (o.base_port + port_span > 65535)
        return usage_error("--base-port: %" PRIu64 " validators need ports up to %" PRIu64, o.n,
                           o.base_port + port_span);
    if (flags[F_CHAIN].present && (rc = parse_u64("chain-id", flags[F_CHAIN].value, 1, INT64_MAX, &o.chain_id)))
        return rc;
    if (flags[F_VIEW_TIMEOUT].present &&
        (rc = parse_u64("view-timeout-ms", flags[F_VIEW_TIMEOUT].value, 10, 600000, &o.view_timeout_ms)))
        return rc;
    o.view_timeout_set = flags[F_VIEW_TIMEOUT].present;
    if (seq_crypto_init() != 0)
        return failure("libsodium failed to initialise");
    while (o.chain_id == 0) /* random, non-zero, and a JSON integer */
        o.chain_id = (uint64_t)randombytes_random() << 31 ^ randombytes_random();
    return testnet_write(&o);
}

/* ---- peer-check -------------------------------------------------------------- */

static const char PEER_CHECK_HELP[] =
    "usage: seqctl peer-check --p2p HOST:PORT --genesis FILE [--key FILE] [--timeout-ms T]\n"
    "\n"
    "Is this node reachable, and is my key in its network's genesis? Dials the\n"
    "node's peer port and runs the dialer's half of the peer handshake with the\n"
    "identity key in FILE (default: a fresh random key, i.e. an outsider), against\n"
    "the chain id and validators of the genesis FILE. Prints one line:\n"
    "  peer-check: accepted peer=<index> name=<name>    exit 0: the node took us\n"
    "      as its peer <index> (our key's validator in the genesis): it answered\n"
    "      our Hello with its signed half, which it does only for a key in its\n"
    "      genesis, and proved it holds its own genesis key\n"
    "  peer-check: refused reason=\"<text>\"              exit 1: the node closed\n"
    "      the connection, or its half of the handshake failed our checks\n"
    "  peer-check: error <text>                         exit 1: unreachable,\n"
    "      timed out, or an unreadable genesis or key file\n"
    "T (default 5000 ms) bounds the whole check. With a validator's real key the\n"
    "node briefly holds a second link to that validator and may swap it for the\n"
    "live one (duplicate-link rule); the validator then reconnects by itself.\n";

#define PEER_CHECK_TIMEOUT_MS_DEFAULT 5000u
#define PEER_CHECK_TIMEOUT_MS_MAX 600000u
#define PEER_CHECK_READ_BYTES 4096u /* one recv; keeps the framer's buffer small */

typedef enum { IO_OK = 0, IO_CLOSED, IO_TIMEOUT, IO_FAILED, IO_TOOBIG } io_rc;

typedef struct {
    int fd;
    uint64_t deadline_ns;
    uint32_t timeout_ms;
    seq_framer framer;
    const seq_genesis *g;
    const seq_keypair *key;
    int self;       /* our key's index in the genesis, or -1 for an outsider */
    seq_hs *hs;
    int saved_errno; /* for IO_FAILED */
} peer_check;

/* One verdict line on stdout; returns the exit code. */
static int pc_refused(const char *reason)
{
    printf("peer-check: refused reason=\"%s\"\n", reason);
    return EXIT_FAIL;
}

static int pc_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int pc_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("peer-check: error ", stdout);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    return EXIT_FAIL;
}

/* Waits until fd is ready for events or the deadline passes. */
static io_rc pc_wait(peer_check *pc, short events)
{
    for (;;) {
        uint64_t now = mono_ns();
        if (now >= pc->deadline_ns)
            return IO_TIMEOUT;
        uint64_t ms = (pc->deadline_ns - now + 999999u) / 1000000u;
        struct pollfd p = { .fd = pc->fd, .events = events };
        int rc = poll(&p, 1, (int)ms);
        if (rc > 0)
            return IO_OK;
        if (rc < 0 && errno != EINTR) {
            pc->saved_errno = errno;
            return IO_FAILED;
        }
    }
}

/* Non-blocking connect, so the deadline holds; the socket stays non-blocking
 * and every later wait is a poll. */
static io_rc pc_connect(peer_check *pc, const char *hostport)
{
    struct sockaddr_storage sa;
    if (seq_addr_resolve(hostport, &sa) != 0) {
        pc->saved_errno = EINVAL;
        return IO_FAILED;
    }
    socklen_t sa_len = sa.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    pc->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (pc->fd < 0 || (connect(pc->fd, (struct sockaddr *)&sa, sa_len) != 0 && errno != EINPROGRESS)) {
        pc->saved_errno = errno;
        return IO_FAILED;
    }
    io_rc rc = pc_wait(pc, POLLOUT);
    if (rc != IO_OK)
        return rc;
    int err = 0;
    socklen_t err_len = sizeof err;
    if (getsockopt(pc->fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0 || err != 0) {
        pc->saved_errno = err ? err : errno;
        return IO_FAILED;
    }
    return IO_OK;
}

static io_rc pc_write_all(peer_check *pc, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(pc->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
            return IO_CLOSED;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            pc->saved_errno = errno;
            return IO_FAILED;
        }
        io_rc rc = pc_wait(pc, POLLOUT);
        if (rc != IO_OK)
            return rc;
    }
    return IO_OK;
}

/* Sends, framed, every handshake frame seq_hs has queued. */
static io_rc pc_send_hs(peer_check *pc)
{
    const uint8_t *f;
    size_t len;
    while (seq_hs_pop(pc->hs, &f, &len)) {
        SEQ_ASSERT(len <= SEQ_HS_FRAME_BYTES_MAX);
        uint8_t out[SEQ_FRAME_HEADER_BYTES + SEQ_HS_FRAME_BYTES_MAX];
        seq_frame_header(out, (uint32_t)len);
        memcpy(out + SEQ_FRAME_HEADER_BYTES, f, len);
        io_rc rc = pc_write_all(pc, out, SEQ_FRAME_HEADER_BYTES + len);
        if (rc != IO_OK)
            return rc;
    }
    return IO_OK;
}

/* The node's next whole frame (borrowed until the next call). A partial frame
 * longer than any handshake frame is refused, as lib/net.c does, so at most
 * one read plus one handshake frame is ever buffered. */
static io_rc pc_next_frame(peer_check *pc, const uint8_t **f, size_t *len)
{
    uint8_t buf[PEER_CHECK_READ_BYTES];
    for (;;) {
        if (seq_framer_next(&pc->framer, f, len))
            return IO_OK;
        if (pc->framer.len - pc->framer.off > SEQ_FRAME_HEADER_BYTES + SEQ_HS_FRAME_BYTES_MAX)
            return IO_TOOBIG;
        io_rc rc = pc_wait(pc, POLLIN);
        if (rc != IO_OK)
            return rc;
        ssize_t n = recv(pc->fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return IO_CLOSED;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (n < 0) {
            pc->saved_errno = errno;
            return IO_FAILED;
        }
        if (seq_framer_feed(&pc->framer, buf, (size_t)n) != 0)
            return IO_TOOBIG;
    }
}

/* Which validator the node's Hello claims to be, or -1 (unknown or
 * malformed: the handshake itself then says why). */
static int pc_hello_index(const peer_check *pc, const uint8_t *f, size_t len)
{
    Seq__Hello *h = seq__hello__unpack(NULL, len, f);
    if (!h)
        return -1;
    int idx = -1;
    if (h->identity_pubkey.len == SEQ_PUBKEY_BYTES) {
        seq_pubkey id;
        memcpy(id.b, h->identity_pubkey.data, SEQ_PUBKEY_BYTES);
        idx = seq_genesis_find(pc->g, &id);
    }
    seq__hello__free_unpacked(h, NULL);
    return idx;
}

/* seq_hs needs a validator index for us: ours, or for an outsider any index
 * but the node's, so its own-key check does not trip on our stand-in. */
static uint32_t pc_self_index(const peer_check *pc, int node_index)
{
    if (pc->self >= 0)
        return (uint32_t)pc->self;
    return node_index == 0 && pc->g->n > 1 ? 1u : 0u;
}

/* Maps an I/O failure to the verdict line and exit code. */
static int pc_io_verdict(const peer_check *pc, io_rc rc, const char *when)
{
    char reason[256];
    switch (rc) {
    case IO_CLOSED:
        snprintf(reason, sizeof reason, "node closed the connection %s%s", when,
                 pc->self < 0 ? " (our key is not in the genesis)" : "");
        return pc_refused(reason);
    case IO_TOOBIG:
        return pc_refused("node sent a frame too large for the handshake");
    case IO_TIMEOUT:
        return pc_error("timeout after %u ms %s", pc->timeout_ms, when);
    case IO_FAILED:
        return pc_error("%s %s", strerror(pc->saved_errno), when);
    case IO_OK:
        break;
    }
    SEQ_UNREACHABLE();
    return EXIT_FAIL;
}

/* Happy path: the node sends its Hello on accept; we answer with ours, check
 * its Hello, send HelloAuth and our stream header, then read its HelloAuth
 * (which it sends only once our Hello passed its checks) and its header. */
static int pc_handshake(peer_check *pc)
{
    const uint8_t *f;
    size_t len;
    io_rc io = pc_next_frame(pc, &f, &len);
    if (io != IO_OK)
        return pc_io_verdict(pc, io, "before its Hello");
    uint32_t self = pc_self_index(pc, pc_hello_index(pc, f, len));
    if (seq_hs_new(&pc->hs, SEQ_HS_DIALER, pc->g->chain_id, pc->key, &pc->g->set, self) != 0)
        return pc_error("out of memory");
    if ((io = pc_send_hs(pc)) != IO_OK)
        return pc_io_verdict(pc, io, "before our Hello went out");
    while (!seq_hs_established(pc->hs)) {
        if (seq_hs_feed(pc->hs, f, len) != 0) {
            char reason[160];
            snprintf(reason, sizeof reason, "node failed our check: %s", seq_hs_fail_str(seq_hs_failure(pc->hs)));
            return pc_refused(reason);
        }
        if ((io = pc_send_hs(pc)) != IO_OK)
            return pc_io_verdict(pc, io, "after our Hello");
        if (seq_hs_established(pc->hs))
            break;
        if ((io = pc_next_frame(pc, &f, &len)) != IO_OK)
            return pc_io_verdict(pc, io, "after our Hello");
    }
    /* The verdict names us as the node now knows us: its peer <index>. */
    SEQ_ASSERT(seq_hs_peer(pc->hs) < pc->g->n);
    if (pc->self < 0) /* a node that accepts a key our genesis lacks has another genesis */
        printf("peer-check: accepted peer=? name=? (our key is not in --genesis: the node's genesis differs)\n");
    else
        printf("peer-check: accepted peer=%d name=%s\n", pc->self, pc->g->validators[pc->self].name);
    return 0;
}

/* Loads the genesis and the key (or makes an outsider's), then checks. */
static int pc_run(peer_check *pc, const char *p2p, const char *genesis_path, const char *key_path)
{
    seq_genesis *g = calloc(1, sizeof *g);
    if (!g)
        return pc_error("out of memory");
    char err[512];
    seq_keypair *key = NULL;
    int rc;
    if (seq_genesis_load(g, genesis_path, err, sizeof err) != 0) {
        rc = pc_error("%s", err);
    } else if (key_path && (rc = seq_keyfile_load(&key, key_path)) != 0) {
        rc = pc_error("%s: %s", key_path, seq_strerror(rc));
    } else if (!key_path && seq_keypair_generate(&key) != 0) {
        rc = pc_error("cannot generate a key");
    } else {
        pc->g = g;
        pc->key = key;
        pc->self = seq_genesis_find(g, &key->pk);
        io_rc io = pc_connect(pc, p2p);
        rc = io == IO_OK ? pc_handshake(pc) : pc_io_verdict(pc, io, "connecting to the node");
    }
    if (pc->fd >= 0)
        close(pc->fd);
    seq_hs_free(pc->hs);
    seq_keypair_free(key);
    free(g);
    return rc;
}

static int cmd_peer_check(int argc, char **argv)
{
    enum { F_P2P, F_GENESIS, F_KEY, F_TIMEOUT, F_N };
    flag flags[F_N] = { { "p2p", true }, { "genesis", true }, { "key", true }, { "timeout-ms", true } };
    int rc = parse_flags(argc, argv, flags, F_N);
    if (rc < 0) {
        fputs(PEER_CHECK_HELP, stdout);
        return 0;
    }
    uint64_t timeout_ms = PEER_CHECK_TIMEOUT_MS_DEFAULT;
    if (rc || (rc = require(&flags[F_P2P])) || (rc = require(&flags[F_GENESIS])))
        return rc;
    if (flags[F_TIMEOUT].present &&
        (rc = parse_u64("timeout-ms", flags[F_TIMEOUT].value, 1, PEER_CHECK_TIMEOUT_MS_MAX, &timeout_ms)))
        return rc;
    struct sockaddr_storage sa;
    if (seq_addr_resolve(flags[F_P2P].value, &sa) != 0)
        return usage_error("--p2p: '%s' is not HOST:PORT (an IP address or localhost)", flags[F_P2P].value);
    if (seq_crypto_init() != 0)
        return pc_error("libsodium failed to initialise");
    peer_check pc = { .fd = -1, .timeout_ms = (uint32_t)timeout_ms };
    pc.deadline_ns = mono_ns() + timeout_ms * 1000000u;
    /* Any frame the node may send; pc_next_frame bounds what is buffered. */
    seq_framer_init(&pc.framer, SEQ_FRAME_BYTES_MAX_DEFAULT + SEQ_HS_SEAL_BYTES);
    rc = pc_run(&pc, flags[F_P2P].value, flags[F_GENESIS].value, flags[F_KEY].present ? flags[F_KEY].value : NULL);
    seq_framer_free(&pc.framer);
    return rc;
}

/* ---- bench ------------------------------------------------------------------- */

static const char BENCH_HELP[] =
    "usage: seqctl bench --api H:P[,H:P...] --rate R --size B --namespaces K --duration S\n"
    "                    [--warmup S] [--batch N]\n"
    "\n"
    "Open-loop load: R transactions per second in total, split evenly over one\n"
    "sender per node, each sending every 1 ms what is due (up to N per request,\n"
    "default 1024) without waiting for replies. Payloads are B bytes (>= 24):\n"
    "intended send time, run nonce, sequence, filler; namespaces 1..K round robin.\n"
    "A subscriber on the first node follows all K namespaces and measures\n"
    "send-to-finalized latency and duplicates. The first S seconds of --warmup are\n"
    "sent but not counted. After --duration, waits up to 5 s for every accepted\n"
    "transaction to finalize, then prints a report whose last line is\n"
    "  bench: finalized_tx_per_s=X p50_ms=Y p99_ms=Z offered_tx_per_s=W\n"
    "X counts this run's transactions the subscriber saw finalized in blocks built\n"
    "(header timestamp) during the measured window, so a subscription served late\n"
    "does not count its lag as lost throughput.\n"
    "While it runs, one progress line a second on stderr: counts so far, p99_ms so\n"
    "far, and max_ms, the worst latency seen in that second alone (a stall shows).\n"
    "Exits 1 when a connection failed or a transaction was finalized twice.\n";

#define BENCH_TARGETS_MAX 64
#define BENCH_TICK_NS 1000000ull            /* senders wake every 1 ms */
#define BENCH_REQUESTS_INFLIGHT_MAX 4096u   /* unanswered requests per sender */
#define BENCH_REQUEST_BYTES_MAX (15u << 20) /* under the node's default 16 MiB API frame */
#define BENCH_TX_OVERHEAD_BYTES 16          /* protobuf bytes around one tx */
#define BENCH_DRAIN_NS 5000000000ull        /* wait for stragglers after the run */
#define BENCH_SEQ_MAX (1ull << 32)          /* bound of the dedup bitmap (512 MiB) */
#define BENCH_POLL_MS 100u                  /* subscriber's wait for a batch */

typedef enum { REJ_TOOBIG, REJ_FULL, REJ_DUPLICATE, REJ_INVALID, REJ_OTHER, REJ_N } reject_kind;
static const char *const REJECT_NAMES[REJ_N] = { "too_large", "mempool_full", "duplicate", "invalid", "other" };

typedef struct bench bench;

typedef struct {
    bench *b;
    const char *api;
    uint32_t index;
    pthread_t thread;
    double rate;          /* tx/s of this sender */
    uint64_t planned;     /* txs this sender sends in warmup + duration */
    int failed;           /* exit code when the sender gave up */
} bench_sender;

struct bench {
    /* options */
    uint64_t rate, size, namespaces, duration_s, warmup_s, batch;
    uint32_t targets;
    bench_sender senders[BENCH_TARGETS_MAX];
    char api_list[4096];    /* --api, split in place */
    /* run */
    uint64_t nonce;
    _Atomic uint64_t t0_ns;      /* start of sending; 0 until the subscription is up */
    _Atomic uint64_t measure_ns; /* t0 + warmup: txs stamped from here on count */
    _Atomic uint64_t next_seq;
    _Atomic uint64_t offered, accepted, rejected;
    _Atomic uint64_t rejects[REJ_N];
    _Atomic uint64_t finalized, finalized_bytes, duplicates, foreign;
    _Atomic uint64_t finalized_in_window; /* any tx of this run in a block built while the measured window was open */
    _Atomic uint64_t seen_in_window;      /* any tx of this run seen while the measured window was open */
    _Atomic bool subscribed, sub_failed, stop;
    _Atomic uint64_t senders_done;
    uint64_t seq_cap;        /* bits in seen */
    uint8_t *seen;           /* dedup bitmap by sequence */
    seq_hist hist;           /* latency in ns, subscriber thread only until joined */
    uint64_t second_max_ns;  /* worst latency since the last progress line (subscriber thread) */
    seq_hist hist_wait;      /* send -> the leader built the block (its header timestamp) */
    seq_hist hist_commit;    /* block built -> finalized and seen by the subscriber */
    int64_t wall_minus_mono_ns; /* to compare header timestamps (wall ms) with stamps (monotonic) */
};

static void sleep_until_ns(uint64_t t)
{
    struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ull), .tv_nsec = (long)(t % 1000000000ull) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Due at or before the end of the warmup (tx k is due at (k + 1) / rate, so a
 * sender counts exactly rate x duration transactions). */
static bool in_warmup(bench *b, uint64_t send_ns)
{
    return send_ns <= atomic_load(&b->measure_ns);
}

static reject_kind reject_kind_of(int status)
{
    switch (status) {
    case SEQ_ETOOBIG: return REJ_TOOBIG;
    case SEQ_EFULL: return REJ_FULL;
    case SEQ_EDUPLICATE: return REJ_DUPLICATE;
    case SEQ_EINVAL: return REJ_INVALID;
    default: return REJ_OTHER;
    }
}

/* Requests sent and not yet answered, oldest first (a ring). */
typedef struct {
    uint32_t n[BENCH_REQUESTS_INFLIGHT_MAX];
    uint32_t warm[BENCH_REQUESTS_INFLIGHT_MAX]; /* leading txs stamped in the warmup */
    uint32_t head, len;
} inflight_ring;

/* Counts the verdicts of the txs after the first `warm` (warmup) ones, so
 * accepted and finalized count exactly the same transactions. */
static void count_results(bench *b, const seq_submit_result *r, uint32_t n, uint32_t warm)
{
    for (uint32_t i = warm; i < n; i++) {
        if (r[i].status == 0) {
            atomic_fetch_add(&b->accepted, 1);
        } else {
            atomic_fetch_add(&b->rejected, 1);
            atomic_fetch_add(&b->rejects[reject_kind_of(r[i].status)], 1);
        }
    }
}

/* Takes the replies that are there (timeout_ms 0) or waits for one. */
static int drain_replies(bench_sender *s, seq_client *c, inflight_ring *q, seq_submit_result *res, uint32_t timeout_ms)
{
    while (q->len > 0) {
        uint32_t n = 0;
        int rc = seq_client_submit_recv(c, res, (uint32_t)s->b->batch, &n, NULL, timeout_ms);
        if (rc == SEQ_ETIMEOUT)
            return 0;
        if (rc) {
            fprintf(stderr, "bench: node %s: %s (%s)\n", s->api, seq_strerror(rc), seq_client_last_error(c));
            return rc;
        }
        if (n != q->n[q->head]) {
            fprintf(stderr, "bench: node %s: %u results for %u transactions\n", s->api, n, q->n[q->head]);
            return SEQ_EPROTOCOL;
        }
        count_results(s->b, res, n, q->warm[q->head]);
        q->head = (q->head + 1) % BENCH_REQUESTS_INFLIGHT_MAX;
        q->len--;
        timeout_ms = 0;
    }
    return 0;
}

/* Builds and sends n txs whose intended send times follow the schedule. */
static int send_due(bench_sender *s, seq_client *c, inflight_ring *q, seq_tx *txs, uint8_t *payloads,
                    uint64_t first_local, uint32_t n)
{
    bench *b = s->b;
    uint64_t seq0 = atomic_fetch_add(&b->next_seq, n);
    uint32_t warm = 0;
    for (uint32_t i = 0; i < n; i++) {
        /* The intended time, not the actual one: a sender that falls behind
         * cannot hide its own delay from the latency figures. */
        /* Tx k (0-based) of this sender is due at (k + 1) / rate. */
        uint64_t send_ns = b->t0_ns + (uint64_t)((double)(first_local + i + 1) * 1e9 / s->rate);
        uint8_t *p = payloads + (size_t)i * b->size;
        seq_bench_stamp(p, b->size, send_ns, b->nonce, seq0 + i);
        txs[i] = (seq_tx){ .ns = (seq0 + i) % b->namespaces + 1, .len = (uint32_t)b->size, .data = p };
        warm += in_warmup(b, send_ns);
    }
    int rc = seq_client_submit_send(c, txs, n, NULL);
    if (rc) {
        fprintf(stderr, "bench: node %s: %s (%s)\n", s->api, seq_strerror(rc), seq_client_last_error(c));
        return rc;
    }
    atomic_fetch_add(&b->offered, n - warm);
    uint32_t tail = (q->head + q->len) % BENCH_REQUESTS_INFLIGHT_MAX;
    q->n[tail] = n;
    q->warm[tail] = warm;
    q->len++;
    return 0;
}

typedef struct {
    seq_tx *txs;
    uint8_t *payloads;
    seq_submit_result *res;
    inflight_ring *q;
} sender_bufs;

static int sender_loop(bench_sender *s, seq_client *c, sender_bufs *sb)
{
    bench *b = s->b;
    uint64_t sent = 0, tick = b->t0_ns;
    while (sent < s->planned) {
        tick += BENCH_TICK_NS;
        sleep_until_ns(tick);
        double elapsed_s = (double)(mono_ns() - b->t0_ns) / 1e9;
        uint64_t due = (uint64_t)(elapsed_s * s->rate);
        if (due > s->planned)
            due = s->planned;
        while (sent < due) {
            /* A full ring means the node answers slower than we send: wait for
             * it rather than grow without bound. */
            int rc = drain_replies(s, c, sb->q, sb->res, sb->q->len == BENCH_REQUESTS_INFLIGHT_MAX ? REPLY_TIMEOUT_MS : 0);
            if (rc)
                return rc;
            if (sb->q->len == BENCH_REQUESTS_INFLIGHT_MAX) {
                fprintf(stderr, "bench: node %s: no reply for %u ms\n", s->api, REPLY_TIMEOUT_MS);
                return SEQ_ETIMEOUT;
            }
            uint32_t n = (uint32_t)(due - sent < b->batch ? due - sent : b->batch);
            if ((rc = send_due(s, c, sb->q, sb->txs, sb->payloads, sent, n)))
                return rc;
            sent += n;
        }
        int rc = drain_replies(s, c, sb->q, sb->res, 0);
        if (rc)
            return rc;
    }
    /* The last replies, each within the reply timeout. */
    while (sb->q->len > 0) {
        uint32_t before = sb->q->len;
        int rc = drain_replies(s, c, sb->q, sb->res, REPLY_TIMEOUT_MS);
        if (rc)
            return rc;
        if (sb->q->len == before) {
            fprintf(stderr, "bench: node %s: %u requests unanswered\n", s->api, before);
            return SEQ_ETIMEOUT;
        }
    }
    return 0;
}

static void *sender_main(void *arg)
{
    bench_sender *s = arg;
    bench *b = s->b;
    seq_client *c = NULL;
    char err[256];
    sender_bufs sb = { .txs = calloc(b->batch, sizeof(seq_tx)), .payloads = malloc(b->batch * b->size),
                       .res = calloc(b->batch, sizeof(seq_submit_result)), .q = calloc(1, sizeof(inflight_ring)) };
    if (!sb.txs || !sb.payloads || !sb.res || !sb.q) {
        fprintf(stderr, "bench: out of memory\n");
        s->failed = EXIT_FAIL;
    } else if (seq_client_connect(&c, s->api, CONNECT_TIMEOUT_MS, err, sizeof err) != 0) {
        fprintf(stderr, "bench: %s\n", err);
        s->failed = EXIT_FAIL;
    } else if (sender_loop(s, c, &sb) != 0) {
        s->failed = EXIT_FAIL;
    }
    seq_client_close(c);
    free(sb.txs);
    free(sb.payloads);
    free(sb.res);
    free(sb.q);
    atomic_fetch_add(&b->senders_done, 1);
    return NULL;
}

static double ms_of(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* Splits one latency at `built`, when the leader built the block (its header
 * timestamp on our monotonic clock): waiting for a proposal, then the
 * consensus and delivery. Millisecond granularity. */
static void bench_split(bench *b, uint64_t send_ns, uint64_t now, int64_t built)
{
    int64_t wait = built - (int64_t)send_ns, commit = (int64_t)now - built;
    seq_hist_add(&b->hist_wait, wait > 0 ? (uint64_t)wait : 0);
    seq_hist_add(&b->hist_commit, commit > 0 ? (uint64_t)commit : 0);
}

/* One finalized transaction seen by the subscriber. */
static void bench_observe(bench *b, const seq_tx *tx, uint64_t now, uint64_t block_ts_ms)
{
    uint64_t send_ns, nonce, seq;
    if (!seq_bench_unstamp(tx->data, tx->len, &send_ns, &nonce, &seq) || nonce != b->nonce || seq >= b->seq_cap) {
        atomic_fetch_add(&b->foreign, 1);
        return;
    }
    uint8_t bit = (uint8_t)(1u << (seq % 8));
    if (b->seen[seq / 8] & bit) {
        atomic_fetch_add(&b->duplicates, 1);
        return;
    }
    b->seen[seq / 8] |= bit;
    uint64_t window_start = atomic_load(&b->measure_ns), window_end = window_start + b->duration_s * 1000000000ull;
    /* the header timestamp is the leader's wall clock; same machine, same clock */
    int64_t built = (int64_t)block_ts_ms * 1000000 - b->wall_minus_mono_ns; /* monotonic ns */
    if (window_start && built > (int64_t)window_start && built <= (int64_t)window_end)
        atomic_fetch_add(&b->finalized_in_window, 1);
    if (window_start && now > window_start && now <= window_end)
        atomic_fetch_add(&b->seen_in_window, 1);
    if (in_warmup(b, send_ns))
        return;
    uint64_t latency = now > send_ns ? now - send_ns : 0;
    seq_hist_add(&b->hist, latency);
    if (latency > b->second_max_ns)
        b->second_max_ns = latency;
    bench_split(b, send_ns, now, built);
    atomic_fetch_add(&b->finalized, 1);
    atomic_fetch_add(&b->finalized_bytes, tx->len);
}

/* One line a second; max_ms is the worst latency seen in that second alone,
 * which shows when a stall happened (p99_ms is of the whole run so far). */
static void bench_progress(bench *b, uint64_t now)
{
    fprintf(stderr, "bench: t=%" PRIu64 "s offered=%" PRIu64 " accepted=%" PRIu64 " finalized=%" PRIu64
            " p99_ms=%.1f max_ms=%.1f\n",
            (uint64_t)((now - atomic_load(&b->t0_ns)) / 1000000000u), atomic_load(&b->offered), atomic_load(&b->accepted),
            atomic_load(&b->finalized), ms_of(seq_hist_quantile(&b->hist, 0.99)), ms_of(b->second_max_ns));
    b->second_max_ns = 0;
}

static int subscriber_loop(bench *b, seq_client *c)
{
    uint64_t next_progress = 0;
    while (!atomic_load(&b->stop)) {
        seq_batch *batch;
        int rc = seq_client_next_batch(c, &batch, BENCH_POLL_MS);
        uint64_t now = mono_ns();
        if (rc == 0) {
            for (uint32_t i = 0; i < batch->tx_count; i++)
                bench_observe(b, &batch->txs[i], now, batch->header.timestamp_ms);
            seq_batch_free(batch);
        } else if (rc != SEQ_ETIMEOUT) {
            fprintf(stderr, "bench: subscription: %s (%s)\n", seq_strerror(rc), seq_client_last_error(c));
            return rc;
        }
        uint64_t t0 = atomic_load(&b->t0_ns);
        if (t0 && now >= t0) {
            if (next_progress == 0)
                next_progress = t0 + 1000000000ull;
            if (now >= next_progress) {
                bench_progress(b, now);
                next_progress += 1000000000ull;
            }
        }
    }
    return 0;
}

static void *subscriber_main(void *arg)
{
    bench *b = arg;
    seq_client *c = NULL;
    char err[256];
    seq_node_status st;
    seq_ns ns[SEQ_CLIENT_SUBSCRIBE_NS_MAX];
    for (uint64_t i = 0; i < b->namespaces; i++)
        ns[i] = i + 1;
    int rc = seq_client_connect(&c, b->senders[0].api, CONNECT_TIMEOUT_MS, err, sizeof err);
    if (rc) {
        fprintf(stderr, "bench: %s\n", err);
    } else if ((rc = seq_client_status(c, &st, REPLY_TIMEOUT_MS)) != 0 ||
               (rc = seq_client_subscribe(c, ns, (uint32_t)b->namespaces, st.height + 1)) != 0) {
        fprintf(stderr, "bench: subscribe: %s (%s)\n", seq_strerror(rc), seq_client_last_error(c));
    }
    if (rc) {
        atomic_store(&b->sub_failed, true);
    } else {
        atomic_store(&b->subscribed, true);
        if (subscriber_loop(b, c) != 0)
            atomic_store(&b->sub_failed, true);
    }
    seq_client_close(c);
    return NULL;
}

static int bench_parse(bench *b, int argc, char **argv)
{
    enum { F_API, F_RATE, F_SIZE, F_NS, F_DURATION, F_WARMUP, F_BATCH, F_N };
    flag flags[F_N] = { { "api", true }, { "rate", true }, { "size", true }, { "namespaces", true },
                        { "duration", true }, { "warmup", true }, { "batch", true } };
    int rc = parse_flags(argc, argv, flags, F_N);
    if (rc)
        return rc;
    for (int i = 0; i < F_N; i++)
        if (i != F_WARMUP && i != F_BATCH && (rc = require(&flags[i])))
            return rc;
    b->batch = 1024;
    if ((rc = parse_u64("rate", flags[F_RATE].value, 1, 100000000, &b->rate)) ||
        (rc = parse_u64("size", flags[F_SIZE].value, SEQ_BENCH_STAMP_BYTES, SEQ_TX_PAYLOAD_BYTES_MAX, &b->size)) ||
        (rc = parse_u64("namespaces", flags[F_NS].value, 1, SEQ_CLIENT_SUBSCRIBE_NS_MAX, &b->namespaces)) ||
        (rc = parse_u64("duration", flags[F_DURATION].value, 1, 86400, &b->duration_s)) ||
        (flags[F_WARMUP].present && (rc = parse_u64("warmup", flags[F_WARMUP].value, 0, 86400, &b->warmup_s))) ||
        (flags[F_BATCH].present && (rc = parse_u64("batch", flags[F_BATCH].value, 1, SEQ_GOSSIP_TXS_MAX, &b->batch))))
        return rc;
    /* One request stays under the node's default API frame limit. */
    uint64_t fit = BENCH_REQUEST_BYTES_MAX / (b->size + BENCH_TX_OVERHEAD_BYTES);
    if (fit == 0)
        fit = 1;
    if (b->batch > fit)
        b->batch = fit;
    if (b->rate * (b->duration_s + b->warmup_s) >= BENCH_SEQ_MAX)
        return usage_error("--rate x (--duration + --warmup) must stay under %llu transactions", BENCH_SEQ_MAX);
    /* Targets. */
    if (strlen(flags[F_API].value) >= sizeof b->api_list)
        return usage_error("--api: list too long");
    strcpy(b->api_list, flags[F_API].value);
    char *save = NULL;
    for (char *tok = strtok_r(b->api_list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (b->targets == BENCH_TARGETS_MAX)
            return usage_error("--api: more than %d nodes", BENCH_TARGETS_MAX);
        b->senders[b->targets++] = (bench_sender){ .b = b, .api = tok, .index = b->targets };
    }
    if (b->targets == 0)
        return usage_error("--api: no node given");
    return 0;
}

static void bench_report(bench *b, uint64_t lost)
{
    double d = (double)b->duration_s;
    uint64_t offered = atomic_load(&b->offered), finalized = atomic_load(&b->finalized);
    printf("bench: nodes=%u rate=%" PRIu64 " size=%" PRIu64 " namespaces=%" PRIu64 " duration_s=%" PRIu64
           " warmup_s=%" PRIu64 " batch=%" PRIu64 "\n",
           b->targets, b->rate, b->size, b->namespaces, b->duration_s, b->warmup_s, b->batch);
    printf("bench: offered=%" PRIu64 " accepted=%" PRIu64 " rejected=%" PRIu64, offered, atomic_load(&b->accepted),
           atomic_load(&b->rejected));
    for (int k = 0; k < REJ_N; k++)
        if (atomic_load(&b->rejects[k]))
            printf(" rejected_%s=%" PRIu64, REJECT_NAMES[k], atomic_load(&b->rejects[k]));
    printf("\nbench: finalized=%" PRIu64 " not_seen=%" PRIu64 " duplicates=%" PRIu64 " foreign=%" PRIu64 "\n",
           finalized, lost, atomic_load(&b->duplicates), atomic_load(&b->foreign));
    /* The rate is what the cluster finalized in blocks built while the
     * window was open (by the header's timestamp), not everything sent
     * finally finalizing during the drain: over capacity, the two differ by
     * the backlog. Counted by when the block was built, not when our
     * subscription saw it: a subscription served late (a node busy serving
     * many subscribers) would otherwise shift finalized blocks out of the
     * window and count its own lag as lost throughput. */
    uint64_t in_window = atomic_load(&b->finalized_in_window);
    printf("bench: finalized_in_window=%" PRIu64 " (in blocks built during the %" PRIu64
           " s measured; %" PRIu64 " seen by the subscriber during them)\n",
           in_window, b->duration_s, atomic_load(&b->seen_in_window));
    printf("bench: offered_tx_per_s=%.0f finalized_tx_per_s=%.0f finalized_mb_per_s=%.2f\n", (double)offered / d,
           (double)in_window / d, (double)in_window * (double)b->size / d / 1e6);
    printf("bench: latency_ms p50=%.1f p90=%.1f p99=%.1f max=%.1f samples=%" PRIu64 "\n",
           ms_of(seq_hist_quantile(&b->hist, 0.50)), ms_of(seq_hist_quantile(&b->hist, 0.90)),
           ms_of(seq_hist_quantile(&b->hist, 0.99)), ms_of(b->hist.max), b->hist.n);
    printf("bench: latency_split_ms until_proposed p50=%.1f p99=%.1f proposed_to_seen p50=%.1f p99=%.1f\n",
           ms_of(seq_hist_quantile(&b->hist_wait, 0.50)), ms_of(seq_hist_quantile(&b->hist_wait, 0.99)),
           ms_of(seq_hist_quantile(&b->hist_commit, 0.50)), ms_of(seq_hist_quantile(&b->hist_commit, 0.99)));
    printf("bench: finalized_tx_per_s=%" PRIu64 " p50_ms=%.1f p99_ms=%.1f offered_tx_per_s=%" PRIu64 "\n",
           (uint64_t)((double)in_window / d + 0.5), ms_of(seq_hist_quantile(&b->hist, 0.50)),
           ms_of(seq_hist_quantile(&b->hist, 0.99)), (uint64_t)((double)offered / d + 0.5));
    fflush(stdout);
}

/* Waits (bounded) for the subscriber to be subscribed before the clock starts. */
static int bench_wait_subscribed(bench *b)
{
    uint64_t deadline = mono_ns() + (uint64_t)(CONNECT_TIMEOUT_MS + REPLY_TIMEOUT_MS) * 1000000ull;
    while (!atomic_load(&b->subscribed)) {
        if (atomic_load(&b->sub_failed) || mono_ns() > deadline)
            return EXIT_FAIL;
        sleep_until_ns(mono_ns() + BENCH_TICK_NS);
    }
    return 0;
}

static int bench_run(bench *b)
{
    pthread_t sub;
    if (pthread_create(&sub, NULL, subscriber_main, b) != 0)
        return failure("cannot start a thread");
    int rc = bench_wait_subscribed(b);
    uint32_t started = 0;
    if (rc == 0) {
        uint64_t t0 = mono_ns();
        atomic_store(&b->measure_ns, t0 + b->warmup_s * 1000000000ull);
        atomic_store(&b->t0_ns, t0);
        double share = (double)b->rate / b->targets;
        uint64_t total_s = b->warmup_s + b->duration_s;
        for (; started < b->targets; started++) {
            bench_sender *s = &b->senders[started];
            s->rate = share;
            s->planned = (uint64_t)(share * (double)total_s);
            if (pthread_create(&s->thread, NULL, sender_main, s) != 0) {
                rc = failure("cannot start a thread");
                break;
            }
        }
    }
    for (uint32_t i = 0; i < started; i++) {
        pthread_join(b->senders[i].thread, NULL);
        if (b->senders[i].failed)
            rc = EXIT_FAIL;
    }
    /* Stragglers: accepted transactions still on their way to finality. */
    uint64_t end = mono_ns() + BENCH_DRAIN_NS;
    while (rc == 0 && !atomic_load(&b->sub_failed) && atomic_load(&b->finalized) < atomic_load(&b->accepted) &&
           mono_ns() < end)
        sleep_until_ns(mono_ns() + 10 * BENCH_TICK_NS);
    atomic_store(&b->stop, true);
    pthread_join(sub, NULL);
    if (atomic_load(&b->sub_failed))
        rc = EXIT_FAIL;
    uint64_t accepted = atomic_load(&b->accepted), finalized = atomic_load(&b->finalized);
    if (b->t0_ns)
        bench_report(b, accepted > finalized ? accepted - finalized : 0);
    if (atomic_load(&b->duplicates) > 0)
        rc = failure("%" PRIu64 " transactions finalized more than once", atomic_load(&b->duplicates));
    return rc;
}

static int cmd_bench(int argc, char **argv)
{
    bench *b = calloc(1, sizeof *b);
    if (!b)
        return failure("out of memory");
    int rc = bench_parse(b, argc, argv);
    if (rc < 0) {
        fputs(BENCH_HELP, stdout);
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    if (seq_crypto_init() != 0) {
        rc = failure("libsodium failed to initialise");
        goto out;
    }
    randombytes_buf(&b->nonce, sizeof b->nonce);
    b->seq_cap = b->rate * (b->duration_s + b->warmup_s) + 1;
    b->seen = calloc(b->seq_cap / 8 + 1, 1);
    if (!b->seen) {
        rc = failure("out of memory for %" PRIu64 " sequence bits", b->seq_cap);
        goto out;
    }
    seq_hist_init(&b->hist);
    seq_hist_init(&b->hist_wait);
    seq_hist_init(&b->hist_commit);
    struct timespec wall, mono;
    clock_gettime(CLOCK_REALTIME, &wall);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    b->wall_minus_mono_ns = ((int64_t)wall.tv_sec - (int64_t)mono.tv_sec) * 1000000000 +
                            ((int64_t)wall.tv_nsec - (int64_t)mono.tv_nsec);
    rc = bench_run(b);
out:
    free(b->seen);
    free(b);
    return rc;
}

/* ---- read --------------------------------------------------------------------- */

static const char READ_HELP[] =
    "usage: seqctl read --home DIR --ns N[,M...] --from H [--follow] [--limit L] [--no-verify]\n"
    "\n"
    "Reads namespaces straight from the store of the node whose home is DIR\n"
    "(read-only, beside the running node; no API port needed), from height H\n"
    "(>= 1) on: one JSON line per height and namespace (lib/batch_json.h):\n"
    "  {\"height\":..,\"ns\":..,\"block_hash\":\"hex\",\"prev_batch_hash\":\"hex\",\n"
    "   \"tx_count\":..,\"txs\":[{\"id\":\"hex\",\"index\":..,\"data\":\"base64\"}],\n"
    "   \"header\":{..},\"cert\":{..},\"cert_path\":[..],\"proof\":{..},\"verified\":true}\n"
    "Each batch is verified against the genesis validators (certificate,\n"
    "namespace proof, no gap) before it is printed; a batch that fails stops\n"
    "the read with exit code 1.\n"
    "  --follow     at the last finalized height, wait for more (polls the store)\n"
    "  --limit L    exit after L batches\n"
    "  --no-verify  print batches unchecked (\"verified\":false)\n"
    "  --verify-runs  catching up, up to 64 batches are read ahead and checked as a run:\n"
    "               per namespace only the last one's certificate; the earlier ones are\n"
    "               proven final by it and say so (\"final_by\":H), their own\n"
    "               certificates unchecked\n";

#define READ_WAIT_MS 1000u /* --follow: one wait for the next batch */

static int print_json_line(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!s)
        return failure("out of memory");
    puts(s);
    free(s);
    return fflush(stdout) == 0 ? 0 : failure("stdout: %s", strerror(errno));
}

static int cmd_read(int argc, char **argv)
{
    enum { F_HOME, F_NS, F_FROM, F_FOLLOW, F_LIMIT, F_NO_VERIFY, F_RUNS, F_N };
    flag flags[F_N] = { { "home", true }, { "ns", true }, { "from", true }, { "follow", false }, { "limit", true },
                        { "no-verify", false }, { "verify-runs", false } };
    int rc = parse_flags(argc, argv, flags, F_N);
    if (rc < 0) {
        fputs(READ_HELP, stdout);
        return 0;
    }
    seq_ns ns[SEQ_CLIENT_SUBSCRIBE_NS_MAX];
    seq_reader_opts o = {.home = flags[F_HOME].value, .ns = ns, .no_verify = flags[F_NO_VERIFY].present,
                         .verify_runs = flags[F_RUNS].present};
    uint64_t limit = UINT64_MAX;
    if (rc || (rc = require(&flags[F_HOME])) || (rc = require(&flags[F_NS])) || (rc = require(&flags[F_FROM])) ||
        (rc = parse_ns_list(flags[F_NS].value, ns, &o.ns_count)) ||
        (rc = parse_u64("from", flags[F_FROM].value, 1, UINT64_MAX, &o.from_height)) ||
        (flags[F_LIMIT].present && (rc = parse_u64("limit", flags[F_LIMIT].value, 1, UINT64_MAX, &limit))))
        return rc;
    if (o.no_verify && o.verify_runs)
        return usage_error("--verify-runs and --no-verify exclude each other");
    if (seq_crypto_init() != 0)
        return failure("libsodium failed to initialise");
    seq_reader *r;
    char err[512] = "";
    if ((rc = seq_reader_open(&r, &o, err, sizeof err)) != 0)
        return failure("%s", err[0] ? err : seq_strerror(rc));
    for (uint64_t printed = 0; printed < limit;) {
        seq_batch *b;
        rc = flags[F_FOLLOW].present ? seq_reader_wait(r, &b, READ_WAIT_MS) : seq_reader_next(r, &b);
        if (rc == SEQ_ETIMEOUT)
            continue;
        if (rc == SEQ_ENOTFOUND) { /* at the tip without --follow: done */
            rc = 0;
            break;
        }
        if (rc) {
            rc = failure("%s", seq_reader_last_error(r));
            break;
        }
        rc = print_json_line(seq_batch_to_json(b, !o.no_verify));
        seq_batch_free(b);
        if (rc)
            break;
        printed++;
    }
    seq_reader_close(r);
    return rc;
}

/* ---- fanout ------------------------------------------------------------------ */

static const char FANOUT_HELP[] =
    "usage: seqctl fanout --api HOST:PORT[,HOST:PORT...] --subscribers N [--ns-first NS] [--duration S]\n"
    "\n"
    "Load for the node side of subscriptions: N subscriptions (1..1000), one per namespace\n"
    "NS-first .. NS-first+N-1 (default 1), spread over the given nodes, each from the next\n"
    "height on, read as fast as they come for S seconds (default 10, counted once all are\n"
    "attached) and not verified: the point is what serving them costs the nodes. Says\n"
    "  fanout: attached N subscriptions in T ms\n"
    "on stderr once all are attached (start the load after it), and at the end prints:\n"
    "  fanout: subscribers=N batches=B bytes=Y mb_per_s=M lost=L gaps=G min_heights=H max_behind=K\n"
    "lost counts subscriptions the node closed or that failed, gaps heights that did\n"
    "not follow the one before, min_heights the heights the least served one got,\n"
    "max_behind how many heights the first node's tip was ahead of the furthest\n"
    "behind subscription at the end;\n"
    "exits 1 when lost or gaps is not 0.\n";

#define FANOUT_MAX 1000

static int fanout_connect(seq_client **cs, const char *apis, uint64_t n, uint64_t ns_first)
{
    char list[1024];
    const char *addrs[64];
    uint32_t naddrs = 0;
    snprintf(list, sizeof list, "%s", apis);
    for (char *tok = strtok(list, ","); tok && naddrs < 64; tok = strtok(NULL, ","))
        addrs[naddrs++] = tok;
    if (naddrs == 0)
        return usage_error("--api needs at least one HOST:PORT");
    for (uint64_t i = 0; i < n; i++) {
        int rc = connect_api(&cs[i], addrs[i % naddrs]);
        if (rc)
            return rc;
        seq_ns ns = ns_first + i;
        seq_node_status st;
        if ((rc = seq_client_status(cs[i], &st, 5000)) != 0)
            return failure("status of %s: %s", addrs[i % naddrs], seq_strerror(rc));
        if ((rc = seq_client_subscribe(cs[i], &ns, 1, st.height + 1)) != 0)
            return failure("subscribe %" PRIu64 ": %s", ns, seq_strerror(rc));
    }
    return 0;
}

typedef struct {
    uint64_t batches, bytes, lost, gaps;
    uint64_t min_heights; /* heights the least served subscription got */
    uint64_t min_last;    /* lowest last height a subscription got */
} fanout_totals;

/* Reads one subscription's batches that have arrived; false when it is lost. */
static bool fanout_drain(seq_client *c, uint64_t *last, uint64_t *got, fanout_totals *t)
{
    seq_batch *b;
    int rc;
    while ((rc = seq_client_next_batch(c, &b, 0)) == 0) {
        t->batches++;
        (*got)++;
        t->gaps += *last && b->header.height != *last + 1;
        *last = b->header.height;
        for (uint32_t k = 0; k < b->tx_count; k++)
            t->bytes += b->txs[k].len;
        seq_batch_free(b);
    }
    return rc == SEQ_ETIMEOUT;
}

/* Reads every subscription that has data until the deadline; a subscription
 * whose heights are not consecutive counts as a gap. epoll, not poll: a
 * poll(2) over every subscription per wake-up was a fifth of this process's
 * CPU, taken from the nodes it shares the machine with. */
static void fanout_read(seq_client **cs, uint64_t n, uint64_t deadline_ns, fanout_totals *t)
{
    static uint64_t last[FANOUT_MAX], got[FANOUT_MAX];
    struct epoll_event ready[FANOUT_MAX];
    memset(last, 0, sizeof last);
    memset(got, 0, sizeof got);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (uint64_t i = 0; ep >= 0 && i < n; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, seq_client_fd(cs[i]), &ev) != 0)
            t->lost++; /* not read: counted as lost, so the run fails */
    }
    while (ep >= 0 && mono_ns() < deadline_ns) {
        int k = epoll_wait(ep, ready, (int)n, 100);
        for (int j = 0; j < k; j++) {
            uint64_t i = ready[j].data.u64;
            if (!fanout_drain(cs[i], &last[i], &got[i], t)) {
                (void)epoll_ctl(ep, EPOLL_CTL_DEL, seq_client_fd(cs[i]), NULL); /* it closes with the client */
                t->lost++;
            }
        }
    }
    if (ep < 0) {
        fprintf(stderr, "fanout: epoll_create1: %s\n", strerror(errno));
        t->lost = n;
    } else {
        close(ep);
    }
    t->min_heights = t->min_last = n ? UINT64_MAX : 0;
    for (uint64_t i = 0; i < n; i++) {
        t->min_heights = got[i] < t->min_heights ? got[i] : t->min_heights;
        t->min_last = last[i] < t->min_last ? last[i] : t->min_last;
    }
}

/* The finalized height of the first node in apis (0 when it does not
 * answer): a subscription connection carries nothing else, so a new one. */
static uint64_t fanout_tip(const char *apis)
{
    char first[256];
    snprintf(first, sizeof first, "%s", apis);
    first[strcspn(first, ",")] = '\0';
    seq_client *c = NULL;
    seq_node_status st = {0};
    if (connect_api(&c, first) != 0)
        return 0;
    if (seq_client_status(c, &st, 5000) != 0)
        st.height = 0;
    seq_client_close(c);
    return st.height;
}

static int cmd_fanout(int argc, char **argv)
{
    enum { F_API, F_SUBS, F_NS_FIRST, F_DURATION, F_N };
    flag flags[F_N] = { { "api", true }, { "subscribers", true }, { "ns-first", true }, { "duration", true } };
    int rc = parse_flags(argc, argv, flags, F_N);
    if (rc < 0) {
        fputs(FANOUT_HELP, stdout);
        return 0;
    }
    uint64_t n = 0, ns_first = 1, duration = 10;
    if (rc || (rc = require(&flags[F_API])) || (rc = require(&flags[F_SUBS])) ||
        (rc = parse_u64("subscribers", flags[F_SUBS].value, 1, FANOUT_MAX, &n)) ||
        (flags[F_NS_FIRST].present && (rc = parse_u64("ns-first", flags[F_NS_FIRST].value, 0, UINT64_MAX - FANOUT_MAX, &ns_first))) ||
        (flags[F_DURATION].present && (rc = parse_u64("duration", flags[F_DURATION].value, 1, 86400, &duration))))
        return rc;
    seq_client **cs = calloc(n, sizeof *cs);
    if (!cs)
        return failure("out of memory");
    fanout_totals t = {0};
    uint64_t t_connect = mono_ns();
    rc = fanout_connect(cs, flags[F_API].value, n, ns_first);
    if (rc == 0) {
        /* A load generator started after this line measures the nodes with
         * every subscription attached, not while they are being attached. */
        uint64_t t0 = mono_ns();
        fprintf(stderr, "fanout: attached %" PRIu64 " subscriptions in %" PRIu64 " ms\n", n,
                (t0 - t_connect) / 1000000u);
        fanout_read(cs, n, t0 + duration * 1000000000ull, &t);
        double secs = (double)(mono_ns() - t0) / 1e9;
        uint64_t tip = fanout_tip(flags[F_API].value);
        printf("fanout: subscribers=%" PRIu64 " batches=%" PRIu64 " bytes=%" PRIu64 " mb_per_s=%.2f lost=%" PRIu64
               " gaps=%" PRIu64 " min_heights=%" PRIu64 " max_behind=%" PRIu64 "\n",
               n, t.batches, t.bytes, (double)t.bytes / 1e6 / secs, t.lost, t.gaps, t.min_heights,
               tip > t.min_last ? tip - t.min_last : 0);
        rc = t.lost || t.gaps ? 1 : 0;
    }
    for (uint64_t i = 0; i < n; i++)
        if (cs[i])
            seq_client_close(cs[i]);
    free(cs);
    return rc;
}

/* ---- main -------------------------------------------------------------------- */

static const char MAIN_HELP[] =
    "usage: seqctl <command> [flags]   (seqctl <command> --help for its flags)\n"
    "\n"
    "commands:\n"
    "  submit     submit a transaction (or one per input line)\n"
    "  subscribe  follow namespaces: one verified JSON line per finalized batch\n"
    "  tx         where a transaction is (by id or client key), with its proof checked\n"
    "  read       read namespaces from a local node's store, verified (no API port)\n"
    "  status     a node's height, view, leader, peers and mempool\n"
    "  testnet    write a local testnet (genesis and node homes)\n"
    "  bench      open-loop load with latency and throughput report\n"
    "  fanout     many subscriptions at once, read and counted (subscription load)\n"
    "  peer-check dial a node's peer port: is it reachable, is a key in its genesis\n"
    "\n"
    "exit codes: 0 success, 1 failure, 2 usage error\n";

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
} command;

static const command COMMANDS[] = {
    { "submit", cmd_submit },   { "subscribe", cmd_subscribe }, { "status", cmd_status },
    { "testnet", cmd_testnet }, { "bench", cmd_bench }, { "peer-check", cmd_peer_check },
    { "fanout", cmd_fanout },   { "tx", cmd_tx },
    { "read", cmd_read },
};

int main(int argc, char **argv)
{
    seq_log_set_level(SEQ_LOG_WARN);
    if (argc < 2) {
        fputs(MAIN_HELP, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(MAIN_HELP, stdout);
        return 0;
    }
    static char cmd_name[64];
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++) {
        if (strcmp(argv[1], COMMANDS[i].name) == 0) {
            snprintf(cmd_name, sizeof cmd_name, "seqctl %s", COMMANDS[i].name);
            g_cmd = cmd_name;
            return COMMANDS[i].run(argc - 2, argv + 2);
        }
    }
    fprintf(stderr, "seqctl: unknown command '%s'\n\n%s", argv[1], MAIN_HELP);
    return EXIT_USAGE;
}
