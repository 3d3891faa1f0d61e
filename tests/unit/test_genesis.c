/* genesis: save then load round-trips real keys in the documented key order,
 * every malformed file is SEQ_EGENESIS with a message naming the problem,
 * and config/genesis.example.json loads. Run with --write-example PATH to
 * write a 4-validator example with fresh keys (secrets discarded). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "crypto.h"
#include "errors.h"
#include "genesis.h"
#include "testutil.h"

#define EXAMPLE_PATH "config/genesis.example.json"
#define PATH_BYTES 512
#define ERR_BYTES 512
#define TEXT_BYTES (64 * 1024)
#define KEYS_N 4
#define HEX_BYTES (2 * SEQ_PUBKEY_BYTES + 1)

typedef struct {
    char dir[PATH_BYTES - 32];
    char path[PATH_BYTES]; /* dir/genesis.json */
    char err[ERR_BYTES];
    seq_keypair *keys[KEYS_N];
    char hex[KEYS_N][HEX_BYTES];
    char text[TEXT_BYTES];
    seq_genesis g;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (seq_test_keys_make(fx->keys, KEYS_N) != 0 || seq_test_tmpdir(fx->dir, sizeof fx->dir, "genesis") != 0) {
        free(fx);
        return -1;
    }
    for (int i = 0; i < KEYS_N; i++)
        seq_hex(fx->hex[i], fx->keys[i]->pk.b, SEQ_PUBKEY_BYTES);
    snprintf(fx->path, sizeof fx->path, "%s/genesis.json", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    seq_test_keys_free(fx->keys, KEYS_N);
    int rc = seq_test_rmtree(fx->dir);
    free(fx);
    return rc;
}

static void file_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* A genesis g of n validators node<i> at 127.0.0.1:7600+i with the test keys. */
static void genesis_make(seq_genesis *g, seq_keypair *const *keys, uint32_t n)
{
    memset(g, 0, sizeof *g);
    g->chain_id = 7;
    g->genesis_time_ms = 1764000000000ull;
    g->n = n;
    seq_pubkey pks[SEQ_VALIDATORS_MAX];
    for (uint32_t i = 0; i < n; i++) {
        snprintf(g->validators[i].name, SEQ_NAME_BYTES, "node%u", i);
        snprintf(g->validators[i].address, SEQ_ADDR_BYTES, "127.0.0.1:%u", 7600 + i);
        g->validators[i].key = keys[i]->pk;
        pks[i] = keys[i]->pk;
    }
    assert_int_equal(seq_validators_init(&g->set, pks, n), 0);
}

/* A validator object; any field NULL is left out. */
static void validator_text(char *out, size_t cap, const char *name, const char *key, const char *addr)
{
    int n = snprintf(out, cap, "{");
    if (name)
        n += snprintf(out + n, cap - (size_t)n, "\"name\": %s,", name);
    if (key)
        n += snprintf(out + n, cap - (size_t)n, "\"public_key\": %s,", key);
    if (addr)
        n += snprintf(out + n, cap - (size_t)n, "\"address\": %s,", addr);
    if (out[n - 1] == ',')
        n--;
    snprintf(out + n, cap - (size_t)n, "}");
}

/* Loads text; expects SEQ_EGENESIS with "path: " and needle in the message. */
static void expect_bad(fixture *fx, const char *text, const char *needle)
{
    file_write(fx->path, text);
    int rc = seq_genesis_load(&fx->g, fx->path, fx->err, sizeof fx->err);
    if (rc != SEQ_EGENESIS)
        fail_msg("want SEQ_EGENESIS for:\n%s\ngot %d (%s)", text, rc, fx->err);
    if (strncmp(fx->err, fx->path, strlen(fx->path)) != 0)
        fail_msg("error \"%s\" does not name the file", fx->err);
    if (getenv("SEQ_TEST_VERBOSE"))
        fprintf(stderr, "%s\n", fx->err);
    if (!strstr(fx->err, needle))
        fail_msg("error \"%s\" lacks \"%s\"", fx->err, needle);
    assert_int_equal(fx->g.n, 0);
}

/* One validators entry changed from a valid 2-validator file. */
static void expect_bad_validator(fixture *fx, const char *name, const char *key, const char *addr, const char *needle)
{
    char good[512], bad[512], quoted[HEX_BYTES + 2];
    snprintf(quoted, sizeof quoted, "\"%s\"", fx->hex[0]);
    validator_text(good, sizeof good, "\"node0\"", quoted, "\"127.0.0.1:7600\"");
    validator_text(bad, sizeof bad, name, key, addr);
    snprintf(fx->text, sizeof fx->text, "{\"chain_id\": 1, \"genesis_time_ms\": 0, \"validators\": [%s, %s]}", good,
             bad);
    expect_bad(fx, fx->text, needle);
}

/* Saved and loaded back: every field, the set, file mode 0644 and key order. */
static void test_round_trip(void **state)
{
    fixture *fx = *state;
    seq_genesis g;
    genesis_make(&g, fx->keys, KEYS_N);
    g.chain_id = INT64_MAX;
    assert_int_equal(seq_genesis_save(&g, fx->path), 0);
    int rc = seq_genesis_load(&fx->g, fx->path, fx->err, sizeof fx->err);
    if (rc)
        fail_msg("load: %s", fx->err);
    assert_int_equal(fx->g.chain_id, INT64_MAX);
    assert_int_equal(fx->g.genesis_time_ms, 1764000000000ull);
    assert_int_equal(fx->g.n, KEYS_N);
    assert_int_equal(fx->g.set.n, KEYS_N);
    assert_int_equal(fx->g.set.q, 3);
    for (uint32_t i = 0; i < KEYS_N; i++) {
        assert_string_equal(fx->g.validators[i].name, g.validators[i].name);
        assert_string_equal(fx->g.validators[i].address, g.validators[i].address);
        assert_memory_equal(fx->g.validators[i].key.b, fx->keys[i]->pk.b, SEQ_PUBKEY_BYTES);
        assert_memory_equal(fx->g.set.keys[i].b, fx->keys[i]->pk.b, SEQ_PUBKEY_BYTES);
        assert_int_equal(seq_genesis_find(&fx->g, &fx->keys[i]->pk), (int)i);
    }
    seq_pubkey stranger;
    memset(&stranger, 0x5a, sizeof stranger);
    assert_int_equal(seq_genesis_find(&fx->g, &stranger), -1);

    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    FILE *f = fopen(fx->path, "r");
    assert_non_null(f);
    size_t len = fread(fx->text, 1, sizeof fx->text - 1, f);
    fclose(f);
    fx->text[len] = '\0';
    char *chain = strstr(fx->text, "\"chain_id\": 9223372036854775807");
    char *time = strstr(fx->text, "\"genesis_time_ms\"");
    char *vals = strstr(fx->text, "\"validators\"");
    char *name = strstr(fx->text, "\"name\": \"node0\"");
    char *key = strstr(fx->text, fx->hex[0]);
    char *addr = strstr(fx->text, "\"address\": \"127.0.0.1:7600\"");
    assert_true(chain && time && vals && name && key && addr);
    assert_true(chain < time && time < vals && vals < name && name < key && key < addr);
    assert_true(fx->text[len - 1] == '\n');
}

/* Values jansson or the header cannot represent are refused on save. */
static void test_save_refuses_unrepresentable(void **state)
{
    fixture *fx = *state;
    seq_genesis g;
    genesis_make(&g, fx->keys, 1);
    g.chain_id = (uint64_t)INT64_MAX + 1;
    assert_int_equal(seq_genesis_save(&g, fx->path), SEQ_EINVAL);
    g.chain_id = 0;
    assert_int_equal(seq_genesis_save(&g, fx->path), SEQ_EINVAL);
    char dir_path[PATH_BYTES + 16];
    snprintf(dir_path, sizeof dir_path, "%s/no/such/dir.json", fx->dir);
    g.chain_id = 1;
    assert_int_equal(seq_genesis_save(&g, dir_path), SEQ_EIO);
}

/* Top-level problems: syntax (with line:column), shape, keys, numbers. */
static void test_bad_top_level(void **state)
{
    fixture *fx = *state;
    expect_bad(fx, "{\n  \"chain_id\": 7,\n  oops\n}\n", "genesis.json:3:");
    expect_bad(fx, "", "genesis.json:1:");
    expect_bad(fx, "[]", "not a JSON object");
    expect_bad(fx, "{\"chain_id\": 7, \"genesis_time_ms\": 0, \"validators\": [], \"extra\": 1}",
               "unknown key \"extra\"");
    expect_bad(fx, "{\"chain_id\": 7, \"chain_id\": 8, \"genesis_time_ms\": 0, \"validators\": []}",
               "duplicate object key");
    const char *bad_chain[] = {"0", "-1", "\"7\"", "1.5", "9223372036854775808"};
    for (size_t i = 0; i < sizeof bad_chain / sizeof bad_chain[0]; i++) {
        snprintf(fx->text, sizeof fx->text, "{\"chain_id\": %s, \"genesis_time_ms\": 0, \"validators\": []}",
                 bad_chain[i]);
        /* jansson itself refuses integers over INT64_MAX, as a syntax error. */
        expect_bad(fx, fx->text, i == 4 ? "too big" : "chain_id");
    }
    expect_bad(fx, "{\"genesis_time_ms\": 0, \"validators\": []}", "chain_id");
    expect_bad(fx, "{\"chain_id\": 7, \"genesis_time_ms\": -5, \"validators\": []}", "genesis_time_ms");
    expect_bad(fx, "{\"chain_id\": 7, \"validators\": []}", "genesis_time_ms");
    expect_bad(fx, "{\"chain_id\": 7, \"genesis_time_ms\": 0, \"validators\": []}", "validators: want an array");
    expect_bad(fx, "{\"chain_id\": 7, \"genesis_time_ms\": 0, \"validators\": {}}", "validators: want an array");
    expect_bad(fx, "{\"chain_id\": 7, \"genesis_time_ms\": 0}", "validators: want an array");

    /* One more than SEQ_VALIDATORS_MAX. */
    int n = snprintf(fx->text, sizeof fx->text, "{\"chain_id\": 7, \"genesis_time_ms\": 0, \"validators\": [");
    for (int i = 0; i <= SEQ_VALIDATORS_MAX; i++)
        n += snprintf(fx->text + n, sizeof fx->text - (size_t)n, "%s{}", i ? "," : "");
    snprintf(fx->text + n, sizeof fx->text - (size_t)n, "]}");
    expect_bad(fx, fx->text, "1..128 validators");
}

/* A bad validator entry names its index and field. */
static void test_bad_validator(void **state)
{
    fixture *fx = *state;
    char k1[HEX_BYTES + 2], k0[HEX_BYTES + 2], short_key[HEX_BYTES + 2], junk_key[HEX_BYTES + 2];
    snprintf(k0, sizeof k0, "\"%s\"", fx->hex[0]);
    snprintf(k1, sizeof k1, "\"%s\"", fx->hex[1]);
    snprintf(short_key, sizeof short_key, "\"%.63s\"", fx->hex[1]);
    snprintf(junk_key, sizeof junk_key, "\"%.63sg\"", fx->hex[1]);
    const char *addr = "\"127.0.0.1:7601\"";

    expect_bad_validator(fx, NULL, k1, addr, "validators[1].name");
    expect_bad_validator(fx, "\"\"", k1, addr, "validators[1].name");
    expect_bad_validator(fx, "\"node 1\"", k1, addr, "validators[1].name");
    expect_bad_validator(fx, "\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\"", k1, addr,
                         "validators[1].name");
    expect_bad_validator(fx, "7", k1, addr, "validators[1].name");
    expect_bad_validator(fx, "\"node1\"", NULL, addr, "validators[1].public_key: want 64 hex digits");
    expect_bad_validator(fx, "\"node1\"", short_key, addr, "validators[1].public_key");
    expect_bad_validator(fx, "\"node1\"", junk_key, addr, "validators[1].public_key");
    expect_bad_validator(fx, "\"node1\"", k1, NULL, "validators[1].address");
    expect_bad_validator(fx, "\"node1\"", k1, "\"127.0.0.1\"", "validators[1].address: want HOST:PORT");
    expect_bad_validator(fx, "\"node1\"", k1, "\"127.0.0.1:0\"", "validators[1].address");
    expect_bad_validator(fx, "\"node0\"", k1, addr, "validators[1].name \"node0\" repeats validators[0]");
    expect_bad_validator(fx, "\"node1\"", k0, addr, "validators[1].public_key repeats validators[0]");
    expect_bad_validator(fx, "\"node1\"", k1, "\"127.0.0.1:7600\"",
                         "validators[1].address 127.0.0.1:7600 repeats validators[0]");

    snprintf(fx->text, sizeof fx->text,
             "{\"chain_id\": 1, \"genesis_time_ms\": 0, \"validators\": [{\"name\": \"a\", \"public_key\": %s, "
             "\"address\": %s, \"stake\": 1}]}",
             k1, addr);
    expect_bad(fx, fx->text, "validators[0]: unknown key \"stake\"");
    expect_bad(fx, "{\"chain_id\": 1, \"genesis_time_ms\": 0, \"validators\": [\"node0\"]}",
               "validators[0]: not an object");
}

/* A missing file is SEQ_ENOTFOUND, named in the message. */
static void test_missing_file(void **state)
{
    fixture *fx = *state;
    assert_int_equal(seq_genesis_load(&fx->g, fx->path, fx->err, sizeof fx->err), SEQ_ENOTFOUND);
    assert_non_null(strstr(fx->err, fx->path));
    /* A directory is no genesis file. */
    assert_int_equal(seq_genesis_load(&fx->g, fx->dir, fx->err, sizeof fx->err), SEQ_EGENESIS);
}

/* The shipped example is a valid 4-validator genesis. */
static void test_example_loads(void **state)
{
    fixture *fx = *state;
    int rc = seq_genesis_load(&fx->g, EXAMPLE_PATH, fx->err, sizeof fx->err);
    if (rc)
        fail_msg("%s (run the tests from the repository root): %s", EXAMPLE_PATH, fx->err);
    assert_int_equal(fx->g.n, 4);
    assert_int_equal(fx->g.set.q, 3);
}

/* Writes an example genesis with fresh random keys whose secrets are dropped. */
static int write_example(const char *path)
{
    seq_keypair *keys[KEYS_N];
    for (int i = 0; i < KEYS_N; i++)
        if (seq_keypair_generate(&keys[i]) != 0)
            return 1;
    seq_genesis g;
    memset(&g, 0, sizeof g);
    g.chain_id = 7;
    g.genesis_time_ms = 1764000000000ull;
    g.n = KEYS_N;
    for (uint32_t i = 0; i < KEYS_N; i++) {
        snprintf(g.validators[i].name, SEQ_NAME_BYTES, "node%u", i);
        snprintf(g.validators[i].address, SEQ_ADDR_BYTES, "127.0.0.1:%u", 7600 + i);
        g.validators[i].key = keys[i]->pk;
        seq_keypair_free(keys[i]);
    }
    return seq_genesis_save(&g, path) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-example") == 0)
        return write_example(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_refuses_unrepresentable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_top_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_validator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_example_loads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
