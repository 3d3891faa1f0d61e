/* The genesis file (jansson): load with exact keys and every check the
 * consensus relies on (unique keys, names and addresses), save in the
 * documented key order. */
#include "genesis.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "errors.h"

/* 128 validators take about 32 KiB; anything far larger is not a genesis. */
#define GENESIS_FILE_BYTES_MAX (1u << 20)
#define HOST_BYTES 64


/* Every key of obj must be one of allowed (NULL-terminated). */
static const char *unknown_key(json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        (void)value;
        bool known = false;
        for (const char *const *a = allowed; *a; a++)
            known = known || strcmp(key, *a) == 0;
        if (!known)
            return key;
    }
    return NULL;
}

/* A JSON integer 0..INT64_MAX (jansson's json_int_t is long long). */
static bool uint_get(json_t *obj, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* Names show up in logs as key=value: keep them to a safe alphabet. */
static bool name_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len >= SEQ_NAME_BYTES)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                  ch == '_' || ch == '.';
        if (!ok)
            return false;
    }
    return true;
}

typedef struct {
    const char *path;
    char *err;
    size_t err_len;
} load_ctx;

static int bad(const load_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "path: message"; always SEQ_EGENESIS. */
static int bad(const load_ctx *x, const char *fmt, ...)
{
    if (x->err && x->err_len) {
        int n = snprintf(x->err, x->err_len, "%s: ", x->path);
        if (n >= 0 && (size_t)n < x->err_len) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(x->err + n, x->err_len - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return SEQ_EGENESIS;
}

static int validator_parse(const load_ctx *x, json_t *v, uint32_t i, seq_genesis_validator *out)
{
    static const char *const keys[] = {"name", "public_key", "address", NULL};
    if (!json_is_object(v))
        return bad(x, "validators[%u]: not an object", i);
    const char *extra = unknown_key(v, keys);
    if (extra)
        return bad(x, "validators[%u]: unknown key \"%s\" (want name, public_key, address)", i, extra);

    const char *name = json_string_value(json_object_get(v, "name"));
    if (!name || !name_ok(name))
        return bad(x, "validators[%u].name: want a string of 1..%d characters from A-Z a-z 0-9 . _ -", i,
                   SEQ_NAME_BYTES - 1);
    const char *hex = json_string_value(json_object_get(v, "public_key"));
    if (!hex || seq_unhex(out->key.b, SEQ_PUBKEY_BYTES, hex) != 0)
        return bad(x, "validators[%u].public_key: want %d hex digits", i, 2 * SEQ_PUBKEY_BYTES);
    const char *addr = json_string_value(json_object_get(v, "address"));
    char host[HOST_BYTES];
    uint16_t port;
    if (!addr || seq_hostport_parse(addr, host, sizeof host, &port) != 0)
        return bad(x, "validators[%u].address: want HOST:PORT (IPv4, localhost or [IPv6]; port 1..65535)", i);
    memcpy(out->name, name, strlen(name) + 1);
    memcpy(out->address, addr, strlen(addr) + 1);
    return 0;
}

/* O(n^2) over at most SEQ_VALIDATORS_MAX entries, once at startup. */
static int uniqueness_check(const load_ctx *x, const seq_genesis *g)
{
    for (uint32_t i = 0; i < g->n; i++) {
        const seq_genesis_validator *a = &g->validators[i];
        for (uint32_t j = 0; j < i; j++) {
            const seq_genesis_validator *b = &g->validators[j];
            if (strcmp(a->name, b->name) == 0)
                return bad(x, "validators[%u].name \"%s\" repeats validators[%u]", i, a->name, j);
            if (memcmp(a->key.b, b->key.b, SEQ_PUBKEY_BYTES) == 0)
                return bad(x, "validators[%u].public_key repeats validators[%u]", i, j);
            if (strcmp(a->address, b->address) == 0)
                return bad(x, "validators[%u].address %s repeats validators[%u]", i, a->address, j);
        }
    }
    return 0;
}

static int genesis_parse(const load_ctx *x, json_t *root, seq_genesis *out)
{
    static const char *const keys[] = {"chain_id", "genesis_time_ms", "validators", NULL};
    if (!json_is_object(root))
        return bad(x, "not a JSON object");
    const char *extra = unknown_key(root, keys);
    if (extra)
        return bad(x, "unknown key \"%s\" (want chain_id, genesis_time_ms, validators)", extra);
    if (!uint_get(root, "chain_id", &out->chain_id) || out->chain_id == 0)
        return bad(x, "chain_id: want an integer 1..9223372036854775807");
    if (!uint_get(root, "genesis_time_ms", &out->genesis_time_ms))
        return bad(x, "genesis_time_ms: want an integer 0..9223372036854775807");
    json_t *vs = json_object_get(root, "validators");
    if (!json_is_array(vs) || json_array_size(vs) < 1 || json_array_size(vs) > SEQ_VALIDATORS_MAX)
        return bad(x, "validators: want an array of 1..%d validators", SEQ_VALIDATORS_MAX);
    out->n = (uint32_t)json_array_size(vs);
    seq_pubkey keys_in_order[SEQ_VALIDATORS_MAX];
    for (uint32_t i = 0; i < out->n; i++) {
        int rc = validator_parse(x, json_array_get(vs, i), i, &out->validators[i]);
        if (rc)
            return rc;
        keys_in_order[i] = out->validators[i].key;
    }
    int rc = uniqueness_check(x, out);
    if (rc)
        return rc;
    /* Checked above already: a failure here is our bug, not the file's. */
    rc = seq_validators_init(&out->set, keys_in_order, out->n);
    SEQ_ASSERT(rc == 0);
    return 0;
}

/* Opens path, refusing a missing, unreadable, non-regular or oversized file. */
static int genesis_open(const load_ctx *x, FILE **out)
{
    FILE *f = fopen(x->path, "r");
    if (!f) {
        int e = errno;
        if (e == ENOENT) {
            seq_err_set(x->err, x->err_len, "%s: no such genesis file", x->path);
            return SEQ_ENOTFOUND;
        }
        return bad(x, "cannot open: %s", strerror(e));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > GENESIS_FILE_BYTES_MAX) {
        fclose(f);
        return bad(x, "not a regular file of at most %u bytes", GENESIS_FILE_BYTES_MAX);
    }
    *out = f;
    return 0;
}

int seq_genesis_load(seq_genesis *out, const char *path, char *err, size_t err_len)
{
    SEQ_ASSERT(out && path);
    memset(out, 0, sizeof *out);
    if (err && err_len)
        err[0] = '\0';
    load_ctx x = {.path = path, .err = err, .err_len = err_len};
    FILE *f = NULL;
    int rc = genesis_open(&x, &f);
    if (rc)
        return rc;
    json_error_t jerr;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    if (!root) {
        seq_err_set(err, err_len, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return SEQ_EGENESIS;
    }
    rc = genesis_parse(&x, root, out);
    json_decref(root);
    if (rc)
        memset(out, 0, sizeof *out); /* no half-loaded genesis; the caller prints err */
    return rc;
}

/* ---- saving ------------------------------------------------------------- */

static json_t *validator_json(const seq_genesis_validator *v)
{
    char hex[2 * SEQ_PUBKEY_BYTES + 1];
    seq_hex(hex, v->key.b, SEQ_PUBKEY_BYTES);
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "name", json_string(v->name)) ||
        json_object_set_new(o, "public_key", json_string(hex)) ||
        json_object_set_new(o, "address", json_string(v->address))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *genesis_json(const seq_genesis *g)
{
    json_t *root = json_object();
    json_t *vs = json_array();
    if (!root || !vs || json_object_set_new(root, "chain_id", json_integer((json_int_t)g->chain_id)) ||
        json_object_set_new(root, "genesis_time_ms", json_integer((json_int_t)g->genesis_time_ms)) ||
        json_object_set(root, "validators", vs))
        goto err;
    for (uint32_t i = 0; i < g->n; i++)
        if (json_array_append_new(vs, validator_json(&g->validators[i])))
            goto err;
    json_decref(vs);
    return root;
err:
    json_decref(vs);
    json_decref(root);
    return NULL;
}

int seq_genesis_save(const seq_genesis *g, const char *path)
{
    SEQ_ASSERT(g && path);
    SEQ_ASSERT(g->n >= 1 && g->n <= SEQ_VALIDATORS_MAX);
    /* JSON integers are signed 64-bit in jansson: larger ones cannot round trip. */
    if (g->chain_id == 0 || g->chain_id > INT64_MAX || g->genesis_time_ms > INT64_MAX)
        return SEQ_EINVAL;
    json_t *root = genesis_json(g);
    if (!root)
        return SEQ_ENOMEM;
    int rc = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || fchmod(fd, 0644) != 0 ||
        json_dumpfd(root, fd, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 || write(fd, "\n", 1) != 1)
        rc = SEQ_EIO;
    if (fd >= 0 && close(fd) != 0)
        rc = SEQ_EIO;
    json_decref(root);
    return rc;
}

int seq_genesis_find(const seq_genesis *g, const seq_pubkey *key)
{
    SEQ_ASSERT(g && key);
    for (uint32_t i = 0; i < g->n; i++)
        if (memcmp(g->validators[i].key.b, key->b, SEQ_PUBKEY_BYTES) == 0)
            return (int)i;
    return -1;
}
