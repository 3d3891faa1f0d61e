/* seqd's configuration: the one settings table, and the loader (libinih),
 * validator, defaults and commented writer built from it (Redis's
 * static_configs[] idea: the example file cannot drift from the code).
 *
 * Happy path of a load: defaults, then libinih calls handler() once per
 * "name = value" line; handler finds the row, parses and bounds-checks the
 * value and stores it at the row's offset; after the file, cross_check()
 * tests the relations between settings. The first error stops the load. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include "client.h"
#include "errors.h"
#include "log.h" /* seq_log_level_parse */
#include "mempool.h"
#include "types.h"

#define KIB (1024ull)
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)
#define TIB (1024ull * GIB)

#define HOST_BYTES_MIN 64 /* seq_hostport_parse's promise to callers */
#define FRAME_BYTES_MIN (64u * 1024u)
/* A p2p frame carries at most one block plus its certificate and framing. */
#define P2P_FRAME_BYTES_LIMIT (2u * SEQ_BLOCK_BYTES_MAX)
#define TIMEOUT_MS_MAX 600000u /* ten minutes */

typedef enum { T_PATH, T_ADDR, T_LOGLEVEL, T_U32, T_U64, T_BOOL } setting_type;

typedef struct {
    const char *section;
    const char *name;
    setting_type type;
    size_t offset;       /* into seq_config */
    size_t size;         /* of the field; strings: capacity with the NUL */
    uint64_t min, max;   /* numbers only */
    uint64_t def_num;    /* numbers and bools */
    const char *def_str; /* strings */
    const char *desc;    /* one or more lines, '\n' between them */
} setting;

#define FIELD_SIZE(field) sizeof(((seq_config *)0)->field)
#define STR(sec, nm, type, field, def, desc) \
    { sec, nm, type, offsetof(seq_config, field), FIELD_SIZE(field), 0, 0, 0, def, desc }
#define NUM(sec, nm, type, field, lo, hi, def, desc) \
    { sec, nm, type, offsetof(seq_config, field), FIELD_SIZE(field), lo, hi, def, NULL, desc }
#define BOOL(sec, nm, field, def, desc) \
    { sec, nm, T_BOOL, offsetof(seq_config, field), FIELD_SIZE(field), 0, 1, def, NULL, desc }

/* Sections appear in the written file in table order. */
static const setting settings[] = {
    STR("node", "key_file", T_PATH, key_file, "key",
        "Identity key file (ed25519; `seqd init` writes it with mode 0600)."),
    STR("node", "genesis_file", T_PATH, genesis_file, "genesis.json",
        "Genesis file of the network (chain id and validators); the same on every node."),
    STR("node", "data_dir", T_PATH, data_dir, "data", "Directory of the LMDB store."),
    STR("node", "log_level", T_LOGLEVEL, log_level, "info", "Log level: debug, info, warn or error."),

    STR("p2p", "listen", T_ADDR, p2p_listen, "0.0.0.0:7600",
        "Address the validator-to-validator listener binds (HOST:PORT)."),
    NUM("p2p", "frame_bytes_max", T_U32, p2p_frame_bytes_max, FRAME_BYTES_MIN, P2P_FRAME_BYTES_LIMIT, 16 * MIB,
        "Largest frame a peer may send, in bytes; a larger one closes the connection."),
    NUM("p2p", "handshake_timeout_ms", T_U32, p2p_handshake_timeout_ms, 100, TIMEOUT_MS_MAX, 5000,
        "A peer must finish the handshake within this many milliseconds."),
    NUM("p2p", "reconnect_min_ms", T_U32, p2p_reconnect_min_ms, 1, TIMEOUT_MS_MAX, 100,
        "First delay before redialing a lost peer, in milliseconds; it doubles per failure."),
    NUM("p2p", "reconnect_max_ms", T_U32, p2p_reconnect_max_ms, 1, TIMEOUT_MS_MAX, 5000,
        "Longest delay between redials, in milliseconds (at least reconnect_min_ms)."),
    NUM("p2p", "send_queue_bytes_max", T_U32, p2p_send_queue_bytes_max, FRAME_BYTES_MIN, UINT32_MAX, 256 * MIB,
        "Bytes queued to one peer; frames beyond are dropped (at least frame_bytes_max)."),

    STR("api", "listen", T_ADDR, api_listen, "127.0.0.1:7700",
        "Address the client API listener binds (HOST:PORT)."),
    NUM("api", "frame_bytes_max", T_U32, api_frame_bytes_max, FRAME_BYTES_MIN, SEQ_CLIENT_FRAME_BYTES_MAX, 16 * MIB,
        "Largest frame a client may send, in bytes; a larger one closes the connection."),
    NUM("api", "clients_max", T_U32, api_clients_max, 1, 65536, 1024,
        "Client connections served at once; more are closed at once."),
    NUM("api", "send_queue_bytes_max", T_U32, api_send_queue_bytes_max, FRAME_BYTES_MIN, UINT32_MAX, 16 * MIB,
        "Bytes queued to one client; a subscriber over it is served from the store once it drains\n"
        "(at least frame_bytes_max). With clients_max it bounds the memory clients can cost."),
    NUM("api", "subscriber_stall_ms", T_U32, api_subscriber_stall_ms, 100, TIMEOUT_MS_MAX, 30000,
        "A subscriber that is behind and to which no byte could be written for this long (it does\n"
        "not read) is told why and disconnected; it resumes from its last height."),

    STR("http", "listen", T_ADDR, http_listen, "127.0.0.1:7800",
        "Address the HTTP port binds (HOST:PORT): /healthz, /status, /metrics (Prometheus) and the\n"
        "JSON API with server-sent events (README). Connections, body size and per-connection queue\n"
        "take the [api] bounds (clients_max, frame_bytes_max, send_queue_bytes_max)."),

    NUM("consensus", "view_timeout_ms", T_U32, view_timeout_ms, 10, TIMEOUT_MS_MAX, 1000,
        "Milliseconds without progress before a validator votes to skip the view's leader."),
    NUM("consensus", "block_txs_max", T_U32, block_txs_max, 1, SEQ_BLOCK_TXS_MAX, 4000,
        "Transactions in one block, at most. Views are short (milliseconds), so small blocks\n"
        "cost little; a large one under overload takes every validator long enough to verify\n"
        "that views time out (4 nodes on 2 cores: 29.5k tx/s finalized with 20000, 39.5k with 4000)."),
    NUM("consensus", "block_bytes_max", T_U32, block_bytes_max, 1 * KIB, SEQ_BLOCK_BYTES_MAX, 4 * MIB,
        "Payload bytes in one block, at most (at least tx_bytes_max)."),
    NUM("consensus", "empty_block_delay_ms", T_U32, empty_block_delay_ms, 0, TIMEOUT_MS_MAX, 200,
        "A leader with no pending transaction waits up to this long for one before proposing\n"
        "an empty block (0: never waits); below view_timeout_ms. Keeps an idle chain from\n"
        "writing hundreds of empty blocks a second."),
    NUM("consensus", "block_interval_min_ms", T_U32, block_interval_min_ms, 0, TIMEOUT_MS_MAX, 10,
        "A leader proposes no sooner than this long after the block it extends (by that block's\n"
        "timestamp; 0: at once); below view_timeout_ms. Fewer, fuller blocks at moderate load:\n"
        "4 nodes on 2 cores at 40k tx/s, p99 30-44 ms with 10 against 36-54 ms with 0."),
    BOOL("consensus", "compact_proposals", compact_proposals, 1,
        "A leader sends its proposal as the block header and transaction ids, after gossiping\n"
        "the transactions still queued; validators rebuild the block from their mempools and\n"
        "fetch the whole block from the leader when they lack any transaction. false sends\n"
        "every payload again inside the proposal (received compact proposals work either way).\n"
        "Nodes built before compact proposals cannot read them: upgrade every node first."),

    NUM("mempool", "txs_max", T_U32, mempool_txs_max, 1, SEQ_MEMPOOL_TXS_LIMIT_MAX, 100000,
        "Pending transactions held, at most (about 1 s of a 4-node local cluster's peak\n"
        "rate). When full, the namespace with the most pending gives way (its newest are\n"
        "evicted) to one with fewer; otherwise more are refused as full. A longer queue\n"
        "only adds waiting: past ~200k, a saturated cluster finalized less (51k vs 65k tx/s)."),
    NUM("mempool", "bytes_max", T_U64, mempool_bytes_max, 1 * KIB, 1 * TIB, 1 * GIB,
        "Pending payload bytes held, at most (at least tx_bytes_max)."),
    NUM("mempool", "tx_bytes_max", T_U32, tx_bytes_max, 1, SEQ_TX_PAYLOAD_BYTES_MAX, 64 * KIB,
        "Payload bytes of one transaction, at most (at most block_bytes_max)."),
    NUM("mempool", "namespaces_max", T_U32, mempool_namespaces_max, 1, SEQ_MEMPOOL_NAMESPACES_LIMIT_MAX, 65536,
        "Namespaces with pending transactions, at most."),
    NUM("mempool", "recent_max", T_U32, mempool_recent_max, 1, SEQ_MEMPOOL_RECENT_LIMIT_MAX, 100000,
        "Finalized transaction ids the mempool remembers (about 140 bytes each, allocated at start);\n"
        "older ones are refused through the store's tx index, so this only saves lookups."),
    NUM("mempool", "tx_ttl_ms", T_U32, tx_ttl_ms, 0, 24u * 3600 * 1000, 120000,
        "Milliseconds a pending transaction may wait to be ordered; then it is dropped from the\n"
        "mempool and its status says expired (0: never)."),
    NUM("mempool", "gossip_flush_ms", T_U32, gossip_flush_ms, 1, 1000, 2,
        "Milliseconds new transactions wait to be gossiped to peers in one batch."),

    NUM("sync", "range_blocks", T_U32, sync_range_blocks, 1, 1024, 64,
        "Blocks asked for in one range request while catching up."),
    NUM("sync", "ranges_inflight", T_U32, sync_ranges_inflight, 1, 64, 4,
        "Range requests outstanding at once while catching up."),

    NUM("store", "map_bytes", T_U64, store_map_bytes, 1 * MIB, 64 * TIB, 16 * GIB,
        "LMDB map size in bytes: the most the store can ever hold (sparse on disk)."),
    BOOL("store", "durable", store_durable, 1,
         "Fsync every commit (true). false is faster and may lose recent blocks on a crash."),
};

#define SETTINGS_N (sizeof settings / sizeof settings[0])

/* ---- table access ------------------------------------------------------- */

static void *field_of(seq_config *c, const setting *s)
{
    return (char *)c + s->offset;
}

static const void *field_of_const(const seq_config *c, const setting *s)
{
    return (const char *)c + s->offset;
}

static uint64_t number_get(const seq_config *c, const setting *s)
{
    const void *p = field_of_const(c, s);
    switch (s->type) {
    case T_U32: return *(const uint32_t *)p;
    case T_U64: return *(const uint64_t *)p;
    case T_BOOL: return *(const bool *)p;
    default: SEQ_UNREACHABLE();
    }
    return 0;
}

static void number_set(seq_config *c, const setting *s, uint64_t v)
{
    void *p = field_of(c, s);
    switch (s->type) {
    case T_U32: SEQ_ASSERT(v <= UINT32_MAX); *(uint32_t *)p = (uint32_t)v; break;
    case T_U64: *(uint64_t *)p = v; break;
    case T_BOOL: *(bool *)p = v != 0; break;
    default: SEQ_UNREACHABLE();
    }
}

static bool is_string(const setting *s)
{
    return s->type == T_PATH || s->type == T_ADDR || s->type == T_LOGLEVEL;
}

static const setting *setting_find(const char *section, const char *name)
{
    for (size_t i = 0; i < SETTINGS_N; i++)
        if (strcmp(settings[i].section, section) == 0 && strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

static bool section_known(const char *section)
{
    for (size_t i = 0; i < SETTINGS_N; i++)
        if (strcmp(settings[i].section, section) == 0)
            return true;
    return false;
}

/* The table is our own code: a row whose field size does not match its type
 * or whose default is outside its bounds is a programmer error. */
static void table_check(void)
{
    for (size_t i = 0; i < SETTINGS_N; i++) {
        const setting *s = &settings[i];
        switch (s->type) {
        case T_U32: SEQ_ASSERT(s->size == sizeof(uint32_t) && s->max <= UINT32_MAX); break;
        case T_U64: SEQ_ASSERT(s->size == sizeof(uint64_t)); break;
        case T_BOOL: SEQ_ASSERT(s->size == sizeof(bool)); break;
        default: SEQ_ASSERT(s->def_str && strlen(s->def_str) < s->size); break;
        }
        if (!is_string(s))
            SEQ_ASSERT(s->min <= s->def_num && s->def_num <= s->max);
    }
}

void seq_config_defaults(seq_config *c)
{
    SEQ_ASSERT(c);
    table_check();
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < SETTINGS_N; i++) {
        const setting *s = &settings[i];
        if (is_string(s))
            memcpy(field_of(c, s), s->def_str, strlen(s->def_str) + 1);
        else
            number_set(c, s, s->def_num);
    }
}

/* ---- host:port ---------------------------------------------------------- */

/* "1".."65535", decimal digits only. */
static bool port_parse(const char *s, uint16_t *port)
{
    size_t len = strlen(s);
    if (len == 0 || len > 5)
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

int seq_hostport_parse(const char *s, char *host, size_t host_len, uint16_t *port)
{
    SEQ_ASSERT(s && host && port && host_len >= HOST_BYTES_MIN);
    if (strnlen(s, SEQ_ADDR_BYTES) >= SEQ_ADDR_BYTES)
        return SEQ_EADDR;
    char buf[SEQ_ADDR_BYTES];
    strcpy(buf, s);

    const char *h;
    char *colon;
    bool v6 = buf[0] == '[';
    if (v6) {
        char *close = strchr(buf, ']');
        if (!close || close[1] != ':')
            return SEQ_EADDR;
        *close = '\0';
        h = buf + 1;
        colon = close + 1;
    } else {
        colon = strrchr(buf, ':');
        if (!colon)
            return SEQ_EADDR;
        *colon = '\0';
        h = buf;
    }
    if (!port_parse(colon + 1, port))
        return SEQ_EADDR;

    unsigned char addr[sizeof(struct in6_addr)];
    bool ok = v6 ? inet_pton(AF_INET6, h, addr) == 1
                 : strcmp(h, "localhost") == 0 || inet_pton(AF_INET, h, addr) == 1;
    if (!ok || strlen(h) >= host_len)
        return SEQ_EADDR;
    strcpy(host, h);
    return 0;
}

/* ---- loading ------------------------------------------------------------ */

typedef struct {
    seq_config *c;
    const char *path;
    FILE *f;
    unsigned line;                /* of the line libinih is working on */
    unsigned seen_line[SETTINGS_N]; /* where each setting was set; 0: not */
    bool failed;
    unsigned failed_line;
    char *err;
    size_t err_len;
} load_ctx;

static void fail(load_ctx *x, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first error only: "path:line: message". */
static void fail(load_ctx *x, unsigned line, const char *fmt, ...)
{
    if (x->failed)
        return;
    x->failed = true;
    x->failed_line = line;
    if (!x->err || x->err_len == 0)
        return;
    int n = line ? snprintf(x->err, x->err_len, "%s:%u: ", x->path, line)
                 : snprintf(x->err, x->err_len, "%s: ", x->path);
    if (n < 0 || (size_t)n >= x->err_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err + n, x->err_len - (size_t)n, fmt, ap);
    va_end(ap);
}

/* libinih's line reader, counting lines. Debian's libinih is built without
 * INI_HANDLER_LINENO, so this count is how errors name their line. A line
 * longer than libinih's buffer would be split into two bogus lines: refuse it. */
static char *reader(char *str, int num, void *stream)
{
    load_ctx *x = stream;
    if (x->failed || !fgets(str, num, x->f))
        return NULL;
    x->line++;
    size_t len = strlen(str);
    if (len > 0 && str[len - 1] != '\n') {
        int next = getc(x->f);
        if (next != EOF) {
            fail(x, x->line, "line is longer than %d characters", num - 2); /* num holds the newline and NUL */
            return NULL;
        }
    }
    return str;
}

/* Decimal digits only; false on anything else or on overflow. */
static bool u64_parse(const char *s, uint64_t *out)
{
    if (*s == '\0')
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool is_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static int value_number(load_ctx *x, const setting *s, const char *value, unsigned line)
{
    uint64_t v;
    if (!u64_parse(value, &v)) {
        if (is_digits(value))
            fail(x, line, "[%s] %s: %s is above the maximum %" PRIu64, s->section, s->name, value, s->max);
        else
            fail(x, line, "[%s] %s: '%s' is not a number (want a decimal integer)", s->section, s->name, value);
        return SEQ_ECONFIG;
    }
    if (v < s->min) {
        fail(x, line, "[%s] %s: %" PRIu64 " is below the minimum %" PRIu64, s->section, s->name, v, s->min);
        return SEQ_ECONFIG;
    }
    if (v > s->max) {
        fail(x, line, "[%s] %s: %" PRIu64 " is above the maximum %" PRIu64, s->section, s->name, v, s->max);
        return SEQ_ECONFIG;
    }
    number_set(x->c, s, v);
    return 0;
}

static int value_bool(load_ctx *x, const setting *s, const char *value, unsigned line)
{
    if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
        fail(x, line, "[%s] %s: '%s' is not true or false", s->section, s->name, value);
        return SEQ_ECONFIG;
    }
    number_set(x->c, s, strcmp(value, "true") == 0);
    return 0;
}

static bool log_level_ok(const char *value)
{
    int level = seq_log_level_parse(value);
    return level >= SEQ_LOG_DEBUG && level <= SEQ_LOG_ERROR;
}

static int value_string(load_ctx *x, const setting *s, const char *value, unsigned line)
{
    size_t len = strlen(value);
    if (len >= s->size) {
        fail(x, line, "[%s] %s: value is too long (%zu bytes, at most %zu)", s->section, s->name, len, s->size - 1);
        return SEQ_ECONFIG;
    }
    char host[HOST_BYTES_MIN];
    uint16_t port;
    if (s->type == T_PATH && len == 0) {
        fail(x, line, "[%s] %s: empty path", s->section, s->name);
        return SEQ_ECONFIG;
    }
    if (s->type == T_ADDR && seq_hostport_parse(value, host, sizeof host, &port) != 0) {
        fail(x, line, "[%s] %s: '%s' is not HOST:PORT (IPv4, localhost or [IPv6]; port 1..65535)", s->section,
             s->name, value);
        return SEQ_ECONFIG;
    }
    if (s->type == T_LOGLEVEL && !log_level_ok(value)) {
        fail(x, line, "[%s] %s: '%s' is not a log level (debug, info, warn or error)", s->section, s->name, value);
        return SEQ_ECONFIG;
    }
    /* Zero the whole field: equal configs are equal byte for byte. */
    memset(field_of(x->c, s), 0, s->size);
    memcpy(field_of(x->c, s), value, len + 1);
    return 0;
}

/* libinih calls this for every "name = value"; 1 means go on. */
static int handler(void *user, const char *section, const char *name, const char *value)
{
    load_ctx *x = user;
    unsigned line = x->line;
    if (x->failed)
        return 0;
    if (section[0] == '\0') {
        fail(x, line, "%s: setting outside any section (put it under its [section])", name);
        return 0;
    }
    if (!section_known(section)) {
        fail(x, line, "[%s] %s: unknown section [%s] (known: node, p2p, api, http, consensus, mempool, sync, store)",
             section, name, section);
        return 0;
    }
    const setting *s = setting_find(section, name);
    if (!s) {
        fail(x, line, "[%s] %s: unknown setting in [%s]", section, name, section);
        return 0;
    }
    size_t i = (size_t)(s - settings);
    if (x->seen_line[i]) {
        fail(x, line, "[%s] %s: duplicate setting (first set on line %u)", section, name, x->seen_line[i]);
        return 0;
    }
    x->seen_line[i] = line;
    int rc = is_string(s) ? value_string(x, s, value, line)
             : s->type == T_BOOL ? value_bool(x, s, value, line)
                                 : value_number(x, s, value, line);
    return rc == 0;
}

static const setting *must_find(const char *section, const char *name)
{
    const setting *s = setting_find(section, name);
    SEQ_ASSERT(s);
    return s;
}

/* Requires a <= b; blames whichever of the two the file set last (a when
 * the file set neither). */
static int check_le(load_ctx *x, const setting *a, const setting *b)
{
    uint64_t va = number_get(x->c, a), vb = number_get(x->c, b);
    if (va <= vb)
        return 0;
    unsigned la = x->seen_line[a - settings], lb = x->seen_line[b - settings];
    if (lb > la)
        fail(x, lb, "[%s] %s: %" PRIu64 " is below [%s] %s %" PRIu64, b->section, b->name, vb, a->section, a->name,
             va);
    else
        fail(x, la, "[%s] %s: %" PRIu64 " is above [%s] %s %" PRIu64, a->section, a->name, va, b->section, b->name,
             vb);
    return SEQ_ECONFIG;
}

/* Relations between settings; single bounds (the SEQ_*_MAX format and
 * mempool caps) are already the table's bounds. */
static int cross_check(load_ctx *x)
{
    const setting *pairs[][2] = {
        {must_find("p2p", "reconnect_min_ms"), must_find("p2p", "reconnect_max_ms")},
        /* A frame must fit in the queue that holds it, or it is never sent. */
        {must_find("p2p", "frame_bytes_max"), must_find("p2p", "send_queue_bytes_max")},
        {must_find("api", "frame_bytes_max"), must_find("api", "send_queue_bytes_max")},
        /* A transaction larger than a block, or than the mempool, could never be ordered. */
        {must_find("mempool", "tx_bytes_max"), must_find("consensus", "block_bytes_max")},
        {must_find("mempool", "tx_bytes_max"), must_find("mempool", "bytes_max")},
        /* A leader waiting longer than the view lasts would be skipped. */
        {must_find("consensus", "empty_block_delay_ms"), must_find("consensus", "view_timeout_ms")},
        {must_find("consensus", "block_interval_min_ms"), must_find("consensus", "view_timeout_ms")},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        int rc = check_le(x, pairs[i][0], pairs[i][1]);
        if (rc)
            return rc;
    }
    return 0;
}


int seq_config_load(seq_config *out, const char *path, char *err, size_t err_len)
{
    SEQ_ASSERT(out && path);
    seq_config_defaults(out);
    if (err && err_len)
        err[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        seq_err_set(err, err_len, "%s: %s", path, e == ENOENT ? "no such config file" : strerror(e));
        return e == ENOENT ? SEQ_ENOTFOUND : SEQ_EIO;
    }
    load_ctx x = {.c = out, .path = path, .f = f, .err = err, .err_len = err_len};
    int parsed = ini_parse_stream(reader, &x, handler, &x);
    bool read_error = ferror(f) != 0;
    fclose(f);

    if (read_error) {
        seq_err_set(err, err_len, "%s: read error", path);
        return SEQ_EIO;
    }
    /* libinih returns the first bad line: a syntax error before our own
     * first error (we stop reading at ours) is the one to report. */
    if (parsed > 0 && (!x.failed || (unsigned)parsed < x.failed_line)) {
        x.failed = false;
        fail(&x, (unsigned)parsed, "syntax error (want [section], name = value, or a # comment)");
    }
    if (parsed < 0 && !x.failed) {
        seq_err_set(err, err_len, "%s: out of memory while parsing", path);
        return SEQ_ENOMEM;
    }
    if (!x.failed)
        (void)cross_check(&x);
    /* No log here: the caller prints the message, which says more. */
    return x.failed ? SEQ_ECONFIG : 0;
}

/* ---- writing ------------------------------------------------------------ */

static void write_comment(FILE *f, const char *text)
{
    fputs("# ", f);
    for (const char *p = text; *p; p++) {
        fputc(*p, f);
        if (*p == '\n')
            fputs("# ", f);
    }
    fputc('\n', f);
}

static void write_bounds(FILE *f, const setting *s)
{
    switch (s->type) {
    case T_U32:
    case T_U64:
        fprintf(f, "# default: %" PRIu64 ", range: %" PRIu64 "..%" PRIu64 "\n", s->def_num, s->min, s->max);
        break;
    case T_BOOL: fprintf(f, "# default: %s, one of: true, false\n", s->def_num ? "true" : "false"); break;
    case T_LOGLEVEL: fprintf(f, "# default: %s, one of: debug, info, warn, error\n", s->def_str); break;
    case T_ADDR: fprintf(f, "# default: %s, HOST:PORT\n", s->def_str); break;
    case T_PATH: fprintf(f, "# default: %s\n", s->def_str); break;
    }
}

/* libinih would trim surrounding blanks, cut at " ;", and cannot hold a line
 * longer than INI_MAX_LINE: a value that would not load back as written is
 * refused rather than silently changed. */
static int string_writable(const setting *s, const char *v)
{
    size_t len = strnlen(v, s->size);
    if (len == s->size)
        return SEQ_EINVAL; /* not terminated within its field */
    if (strlen(s->name) + 3 + len + 1 >= INI_MAX_LINE)
        return SEQ_ETOOBIG;
    if (strpbrk(v, "\n\r") || strstr(v, " ;") || strstr(v, "\t;"))
        return SEQ_EINVAL;
    if (len > 0 && (v[0] == ' ' || v[0] == '\t' || v[len - 1] == ' ' || v[len - 1] == '\t'))
        return SEQ_EINVAL;
    return 0;
}

static int write_setting(FILE *f, const seq_config *c, const setting *s)
{
    write_comment(f, s->desc);
    write_bounds(f, s);
    if (is_string(s)) {
        const char *v = field_of_const(c, s);
        int rc = string_writable(s, v);
        if (rc)
            return rc;
        fprintf(f, "%s = %s\n", s->name, v);
    } else if (s->type == T_BOOL) {
        fprintf(f, "%s = %s\n", s->name, number_get(c, s) ? "true" : "false");
    } else {
        fprintf(f, "%s = %" PRIu64 "\n", s->name, number_get(c, s));
    }
    return 0;
}

int seq_config_write(const seq_config *c, FILE *f)
{
    SEQ_ASSERT(c && f);
    table_check();
    fputs("# seqd configuration. Every setting, its default and bounds are listed below;\n"
          "# a setting left out takes its default. Sizes are in bytes, times in\n"
          "# milliseconds. Paths are relative to the directory of this file.\n"
          "# Written by seq_config_write (lib/config.c) from its settings table.\n",
          f);
    const char *section = "";
    for (size_t i = 0; i < SETTINGS_N; i++) {
        const setting *s = &settings[i];
        if (strcmp(s->section, section) != 0) {
            section = s->section;
            fprintf(f, "\n[%s]\n", section);
        } else {
            fputc('\n', f);
        }
        int rc = write_setting(f, c, s);
        if (rc)
            return rc;
    }
    if (fflush(f) != 0 || ferror(f))
        return SEQ_EIO;
    return 0;
}

/* ---- paths -------------------------------------------------------------- */

int seq_config_path(char *out, size_t out_len, const char *config_path, const char *setting_value)
{
    SEQ_ASSERT(out && config_path && setting_value);
    if (setting_value[0] == '\0')
        return SEQ_EINVAL;
    const char *slash = strrchr(config_path, '/');
    int n;
    if (setting_value[0] == '/' || !slash)
        n = snprintf(out, out_len, "%s", setting_value);
    else
        n = snprintf(out, out_len, "%.*s/%s", (int)(slash - config_path), config_path, setting_value);
    if (n < 0 || (size_t)n >= out_len)
        return SEQ_ETOOBIG;
    return 0;
}
