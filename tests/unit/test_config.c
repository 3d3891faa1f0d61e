/* config: the example file matches the code, a written config loads back
 * equal, every load error names file, line and key, and the host:port and
 * path helpers. Run with --write-example to print the example file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ini.h>

#include "config.h"
#include "errors.h"
#include "testutil.h"

#define EXAMPLE_PATH "config/seqd.conf.example"
#define REGENERATE_HINT                                                                                  \
    "regenerate it from the repository root with: make build/tests/test_config && "                               \
    "build/tests/test_config --write-example > " EXAMPLE_PATH " (or scripts/gen-config-example.sh)"
#define PATH_BYTES 512
#define ERR_BYTES 512
#define FILE_BYTES_MAX (256 * 1024)

typedef struct {
    char dir[PATH_BYTES - 32];
    char path[PATH_BYTES]; /* dir/seqd.conf */
    char err[ERR_BYTES];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (seq_test_tmpdir(fx->dir, sizeof fx->dir, "config") != 0) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof fx->path, "%s/%s", fx->dir, SEQ_CONFIG_FILE);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    int rc = seq_test_rmtree(fx->dir);
    free(fx);
    return rc;
}

static void file_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Reads a whole file into a malloc'd NUL-terminated buffer, or NULL. */
static char *file_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = malloc(FILE_BYTES_MAX + 1);
    size_t n = buf ? fread(buf, 1, FILE_BYTES_MAX, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/* Loads text as fx->path; returns the code, message in fx->err. */
static int load_text(fixture *fx, const char *text, seq_config *c)
{
    file_write(fx->path, text);
    return seq_config_load(c, fx->path, fx->err, sizeof fx->err);
}

/* Expects SEQ_ECONFIG with "path:line:" and every needle in the message. */
static void expect_error(fixture *fx, const char *text, unsigned line, const char *needle1, const char *needle2)
{
    seq_config c;
    int rc = load_text(fx, text, &c);
    if (rc != SEQ_ECONFIG)
        fail_msg("want SEQ_ECONFIG for:\n%s\ngot %d (%s)", text, rc, fx->err);
    char where[PATH_BYTES + 16];
    snprintf(where, sizeof where, "%s:%u: ", fx->path, line);
    if (strncmp(fx->err, where, strlen(where)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", fx->err, where);
    if (needle1 && !strstr(fx->err, needle1))
        fail_msg("error \"%s\" lacks \"%s\"", fx->err, needle1);
    if (needle2 && !strstr(fx->err, needle2))
        fail_msg("error \"%s\" lacks \"%s\"", fx->err, needle2);
}

/* seq_config_write of the defaults is config/seqd.conf.example byte for byte. */
static void test_example_file_matches_defaults(void **state)
{
    (void)state;
    seq_config c;
    seq_config_defaults(&c);
    char *written = NULL;
    size_t written_len = 0;
    FILE *mem = open_memstream(&written, &written_len);
    assert_non_null(mem);
    assert_int_equal(seq_config_write(&c, mem), 0);
    assert_int_equal(fclose(mem), 0);

    size_t example_len = 0;
    char *example = file_read(EXAMPLE_PATH, &example_len);
    if (!example)
        fail_msg("%s is missing (run the tests from the repository root); " REGENERATE_HINT, EXAMPLE_PATH);
    bool same = example_len == written_len && memcmp(example, written, written_len) == 0;
    free(example);
    free(written);
    if (!same)
        fail_msg("%s differs from seq_config_write(defaults); " REGENERATE_HINT, EXAMPLE_PATH);
}

/* Every setting changed from its default survives write then load. */
static void test_written_config_loads_back_equal(void **state)
{
    fixture *fx = *state;
    seq_config c, back;
    seq_config_defaults(&c);
    memset(c.key_file, 0, sizeof c.key_file);
    strcpy(c.key_file, "/etc/seqd/node.key");
    memset(c.data_dir, 0, sizeof c.data_dir);
    strcpy(c.data_dir, "../store");
    memset(c.log_level, 0, sizeof c.log_level);
    strcpy(c.log_level, "debug");
    memset(c.p2p_listen, 0, sizeof c.p2p_listen);
    strcpy(c.p2p_listen, "[::1]:9000");
    c.p2p_reconnect_min_ms = 250;
    c.api_clients_max = 7;
    c.view_timeout_ms = 333;
    c.mempool_bytes_max = 5ull << 32;
    c.tx_bytes_max = 1000;
    c.sync_ranges_inflight = 9;
    c.store_map_bytes = 3ull << 40;
    c.store_durable = false;

    FILE *f = fopen(fx->path, "w");
    assert_non_null(f);
    assert_int_equal(seq_config_write(&c, f), 0);
    assert_int_equal(fclose(f), 0);
    int rc = seq_config_load(&back, fx->path, fx->err, sizeof fx->err);
    if (rc)
        fail_msg("load: %s", fx->err);
    assert_string_equal(back.key_file, "/etc/seqd/node.key");
    assert_string_equal(back.p2p_listen, "[::1]:9000");
    assert_int_equal(back.mempool_bytes_max, 5ull << 32);
    assert_int_equal(back.store_map_bytes, 3ull << 40);
    assert_false(back.store_durable);
    assert_memory_equal(&back, &c, sizeof c);
}

/* A file that sets nothing (or only comments) gives the defaults. */
static void test_empty_file_gives_defaults(void **state)
{
    fixture *fx = *state;
    seq_config c, d;
    seq_config_defaults(&d);
    assert_int_equal(load_text(fx, "# nothing\n\n[api]\n; also nothing\n", &c), 0);
    assert_memory_equal(&c, &d, sizeof c);
    assert_string_equal(c.api_listen, "127.0.0.1:7700");
    assert_int_equal(c.p2p_frame_bytes_max, 16u << 20);
    assert_true(c.store_durable);
}

/* Unknown keys and sections, keys outside sections and duplicates name the
 * file, line and key. */
static void test_unknown_and_duplicate_keys(void **state)
{
    fixture *fx = *state;
    expect_error(fx, "[api]\nclients_max = 5\nclientsmax = 6\n", 3, "[api] clientsmax", "unknown setting");
    expect_error(fx, "[node]\nlog_level = warn\n\n[apl]\nlisten = 1.2.3.4:5\n", 5, "unknown section [apl]", "listen");
    expect_error(fx, "key_file = k\n", 1, "key_file", "outside any section");
    expect_error(fx, "[p2p]\nlisten = 1.2.3.4:5\n# again\nlisten = 1.2.3.4:6\n", 4, "[p2p] listen",
                 "duplicate setting (first set on line 2)");
    /* The same name in another section is another setting. */
    seq_config c;
    assert_int_equal(load_text(fx, "[p2p]\nlisten = 1.2.3.4:5\n[api]\nlisten = 1.2.3.4:6\n", &c), 0);
    assert_string_equal(c.api_listen, "1.2.3.4:6");
}

/* Numbers: bounds are named in the message; junk and overflow are refused. */
static void test_numbers_and_bounds(void **state)
{
    fixture *fx = *state;
    expect_error(fx, "[api]\nclients_max = 0\n", 2, "[api] clients_max: 0 is below the minimum 1", NULL);
    expect_error(fx, "[api]\nclients_max = 65537\n", 2, "65537 is above the maximum 65536", NULL);
    expect_error(fx, "[consensus]\nblock_bytes_max = 67108865\n", 2, "[consensus] block_bytes_max",
                 "above the maximum 67108864");
    expect_error(fx, "[consensus]\nblock_txs_max = 100001\n", 2, "above the maximum 100000", NULL);
    expect_error(fx, "[mempool]\ntx_bytes_max = 1048577\n", 2, "above the maximum 1048576", NULL);
    expect_error(fx, "[mempool]\nrecent_max = 4194305\n", 2, "above the maximum 4194304", NULL);
    expect_error(fx, "[sync]\nrange_blocks = 12x\n", 2, "'12x' is not a number", NULL);
    expect_error(fx, "[sync]\nrange_blocks = -1\n", 2, "'-1' is not a number", NULL);
    expect_error(fx, "[sync]\nrange_blocks = \n", 2, "[sync] range_blocks", "not a number");
    expect_error(fx, "[store]\nmap_bytes = 99999999999999999999999\n", 2, "[store] map_bytes",
                 "above the maximum");
    expect_error(fx, "[store]\ndurable = yes\n", 2, "[store] durable: 'yes' is not true or false", NULL);
    seq_config c;
    assert_int_equal(load_text(fx, "[sync]\nrange_blocks = 1024\n[store]\ndurable = false\n", &c), 0);
    assert_int_equal(c.sync_range_blocks, 1024);
    assert_false(c.store_durable);
}

/* Addresses, log levels and string lengths. */
static void test_strings(void **state)
{
    fixture *fx = *state;
    expect_error(fx, "[p2p]\nlisten = 7600\n", 2, "[p2p] listen: '7600' is not HOST:PORT", NULL);
    expect_error(fx, "[api]\n\nlisten = example.com:80\n", 3, "[api] listen", "not HOST:PORT");
    expect_error(fx, "[node]\nlog_level = loud\n", 2, "[node] log_level: 'loud' is not a log level", NULL);
    expect_error(fx, "[node]\nlog_level = debugdebugdebugdebug\n", 2, "[node] log_level: value is too long",
                 "at most 15");
    expect_error(fx, "[node]\ndata_dir =\n", 2, "[node] data_dir: empty path", NULL);
}

/* Relations between settings name the setting the file set last. */
static void test_cross_checks(void **state)
{
    fixture *fx = *state;
    expect_error(fx, "[p2p]\nreconnect_min_ms = 6000\n", 2, "[p2p] reconnect_min_ms: 6000 is above",
                 "reconnect_max_ms 5000");
    expect_error(fx, "[p2p]\nreconnect_min_ms = 300\nreconnect_max_ms = 200\n", 3,
                 "[p2p] reconnect_max_ms: 200 is below [p2p] reconnect_min_ms 300", NULL);
    expect_error(fx, "[mempool]\ntx_bytes_max = 1048576\n[consensus]\nblock_bytes_max = 1024\n", 4,
                 "[consensus] block_bytes_max: 1024 is below [mempool] tx_bytes_max 1048576", NULL);
    expect_error(fx, "[api]\nsend_queue_bytes_max = 65536\n", 2, "[api] send_queue_bytes_max",
                 "below [api] frame_bytes_max");
}

/* Syntax errors and lines longer than libinih's buffer. */
static void test_syntax_errors(void **state)
{
    fixture *fx = *state;
    expect_error(fx, "[node]\nlog_level = info\nthis is not a setting\n", 3, "syntax error", NULL);
    expect_error(fx, "[node\nlog_level = info\n", 1, "syntax error", NULL);
    char text[600];
    int n = snprintf(text, sizeof text, "[node]\ndata_dir = %0400d\n", 7);
    assert_true(n > 0 && (size_t)n < sizeof text);
    expect_error(fx, text, 2, "line is longer than", NULL);
    /* The longest line libinih holds (INI_MAX_LINE with its newline and NUL) loads; one more does not. */
    int value_len = INI_MAX_LINE - 2 - (int)strlen("data_dir = ");
    snprintf(text, sizeof text, "[node]\ndata_dir = %0*d\n", value_len, 7);
    seq_config c;
    int rc = load_text(fx, text, &c);
    if (rc)
        fail_msg("a %d-character line: %s", INI_MAX_LINE - 2, fx->err);
    assert_int_equal(strlen(c.data_dir), (size_t)value_len);
    snprintf(text, sizeof text, "[node]\ndata_dir = %0*d\n", value_len + 1, 7);
    expect_error(fx, text, 2, "line is longer than 198 characters", NULL);
}

/* A missing file is SEQ_ENOTFOUND and the message names it. */
static void test_missing_file(void **state)
{
    fixture *fx = *state;
    char path[PATH_BYTES + 16];
    snprintf(path, sizeof path, "%s/nope.conf", fx->dir);
    seq_config c;
    assert_int_equal(seq_config_load(&c, path, fx->err, sizeof fx->err), SEQ_ENOTFOUND);
    assert_non_null(strstr(fx->err, path));
    assert_non_null(strstr(fx->err, "no such config file"));
}

/* Path settings resolve against the config file's directory. */
static void test_config_path(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(seq_config_path(out, sizeof out, "node1/seqd.conf", "key"), 0);
    assert_string_equal(out, "node1/key");
    assert_int_equal(seq_config_path(out, sizeof out, "/a/b/seqd.conf", "../data"), 0);
    assert_string_equal(out, "/a/b/../data");
    assert_int_equal(seq_config_path(out, sizeof out, "node1/seqd.conf", "/abs/key"), 0);
    assert_string_equal(out, "/abs/key");
    assert_int_equal(seq_config_path(out, sizeof out, "seqd.conf", "key"), 0);
    assert_string_equal(out, "key");
    assert_int_equal(seq_config_path(out, sizeof out, "/seqd.conf", "key"), 0);
    assert_string_equal(out, "/key");
    char small[8];
    assert_int_equal(seq_config_path(small, sizeof small, "node1/seqd.conf", "key"), SEQ_ETOOBIG);
    assert_int_equal(seq_config_path(small, sizeof small, "x", "/abcdefgh"), SEQ_ETOOBIG);
    assert_int_equal(seq_config_path(out, sizeof out, "x", ""), SEQ_EINVAL);
}

/* HOST:PORT: IPv4, localhost and [IPv6] with a port 1..65535, nothing else. */
static void test_hostport_parse(void **state)
{
    (void)state;
    char host[64];
    uint16_t port = 0;
    assert_int_equal(seq_hostport_parse("127.0.0.1:7600", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 7600);
    assert_int_equal(seq_hostport_parse("localhost:1", host, sizeof host, &port), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 1);
    assert_int_equal(seq_hostport_parse("[::1]:80", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 80);
    assert_int_equal(seq_hostport_parse("0.0.0.0:65535", host, sizeof host, &port), 0);
    assert_int_equal(port, 65535);

    const char *bad[] = {"", "host", ":80", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:x", "1.2.3.4:", "1.2.3:80",
                         "example.com:80", "::1:80", "[::1]80", "[1.2.3.4]:80", "1.2.3.4:+80", "1.2.3.4:80 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (seq_hostport_parse(bad[i], host, sizeof host, &port) != SEQ_EADDR)
            fail_msg("\"%s\" was accepted", bad[i]);
    char long_addr[SEQ_ADDR_BYTES + 8];
    memset(long_addr, '1', sizeof long_addr);
    memcpy(long_addr + sizeof long_addr - 4, ":80", 4);
    assert_int_equal(seq_hostport_parse(long_addr, host, sizeof host, &port), SEQ_EADDR);
}

/* A value libinih could not read back as written is refused by the writer. */
static void test_write_refuses_unloadable_values(void **state)
{
    (void)state;
    seq_config c;
    seq_config_defaults(&c);
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    strcpy(c.data_dir, "a ;b");
    assert_int_equal(seq_config_write(&c, devnull), SEQ_EINVAL);
    memset(c.data_dir, 'd', 300);
    c.data_dir[300] = '\0';
    assert_int_equal(seq_config_write(&c, devnull), SEQ_ETOOBIG);
    fclose(devnull);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--write-example") == 0) {
        seq_config c;
        seq_config_defaults(&c);
        return seq_config_write(&c, stdout) == 0 ? 0 : 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_file_matches_defaults),
        cmocka_unit_test_setup_teardown(test_written_config_loads_back_equal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_gives_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_and_duplicate_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers_and_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test(test_config_path),
        cmocka_unit_test(test_hostport_parse),
        cmocka_unit_test(test_write_refuses_unloadable_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
