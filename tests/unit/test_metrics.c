/* The Prometheus text renderer (lib/metrics.c): every sample belongs to a
 * family announced by HELP and TYPE, counters end in _total, label values
 * are escaped, per-namespace samples carry ns, the worst case fits the
 * documented bound, and Prometheus's own parser (promtool, from Debian's
 * prometheus package that scripts/deps.sh installs) accepts the text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "metrics.h"

static char text[SEQ_METRICS_TEXT_BYTES_MAX];

static void fill(seq_metrics *m, uint32_t ns_count)
{
    memset(m, 0, sizeof *m);
    m->chain_id = 42;
    m->self = 3;
    snprintf(m->name, sizeof m->name, "node3");
    m->validators = 4;
    m->height = 1234;
    m->view = 1300;
    m->timeouts_total = 17;
    m->finalized_txs_total = 99999;
    m->views_per_block = 1.25;
    m->finalized_txs_per_second = 31415.5;
    m->mempool_txs = 70;
    m->mempool_namespaces = ns_count + 5;
    m->ns_count = ns_count;
    for (uint32_t i = 0; i < ns_count; i++)
        m->ns[i] = (seq_metrics_ns){.ns = 7 + i, .txs = 100 - i, .bytes = 1000u * (100 - i)};
    m->http_streams = 2;
    m->rss_bytes = 123456789;
    m->proposals_rebuilt_total = 850;
    m->proposals_fetched_total = 3;
}

static void render(const seq_metrics *m, size_t *len)
{
    assert_int_equal(seq_metrics_render(m, text, sizeof text, len), 0);
    assert_int_equal(strlen(text), *len);
}

/* One declared family: its name and type. */
typedef struct {
    char name[96];
    char type[16];
} fam;

/* A strict reading of the format as this renderer must write it: comment
 * lines are exactly "# HELP name text" then "# TYPE name type"; a sample is
 * name, optional {k="v",...} with escapes \\ \" \n only, one space, a number;
 * its name is the family declared last. Returns the number of samples. */
static int check_format(const char *t)
{
    fam cur = {{0}, {0}};
    bool help_seen = false;
    int samples = 0;
    for (const char *line = t; *line;) {
        const char *end = strchr(line, '\n');
        assert_non_null(end); /* every line ends with a newline */
        char buf[512];
        size_t n = (size_t)(end - line);
        assert_true(n < sizeof buf);
        memcpy(buf, line, n);
        buf[n] = '\0';
        line = end + 1;
        if (strncmp(buf, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(buf + 7, "%95s", cur.name), 1);
            assert_memory_equal(cur.name, "seq_", 4);
            help_seen = true;
            continue;
        }
        if (strncmp(buf, "# TYPE ", 7) == 0) {
            char name[96];
            assert_true(help_seen);
            assert_int_equal(sscanf(buf + 7, "%95s %15s", name, cur.type), 2);
            assert_string_equal(name, cur.name);
            assert_true(strcmp(cur.type, "gauge") == 0 || strcmp(cur.type, "counter") == 0);
            size_t k = strlen(name);
            bool total = k > 6 && strcmp(name + k - 6, "_total") == 0;
            assert_int_equal(total, strcmp(cur.type, "counter") == 0);
            help_seen = false;
            continue;
        }
        assert_true(buf[0] != '#' && cur.type[0]);
        size_t k = strlen(cur.name);
        assert_memory_equal(buf, cur.name, k);
        const char *p = buf + k;
        if (*p == '{') {
            for (p++; *p != '}';) {
                while ((*p >= 'a' && *p <= 'z') || *p == '_')
                    p++;
                assert_true(p[0] == '=' && p[1] == '"');
                for (p += 2; *p != '"'; p++) {
                    assert_true(*p != '\0');
                    if (*p == '\\') {
                        p++;
                        assert_true(*p == '\\' || *p == '"' || *p == 'n');
                    }
                }
                p++;
                if (*p == ',')
                    p++;
                else
                    assert_int_equal(*p, '}');
            }
            p++;
        }
        assert_int_equal(*p, ' ');
        char *num_end;
        (void)strtod(p + 1, &num_end);
        assert_true(num_end != p + 1 && *num_end == '\0');
        samples++;
    }
    return samples;
}

/* The rendered text follows the format; figures appear under their names. */
static void test_format_and_values(void **state)
{
    (void)state;
    seq_metrics m;
    fill(&m, 3);
    size_t len;
    render(&m, &len);
    assert_true(check_format(text) > 30);
    assert_non_null(strstr(text, "\nseq_height 1234\n"));
    assert_non_null(strstr(text, "\nseq_view 1300\n"));
    assert_non_null(strstr(text, "# TYPE seq_view_timeouts_total counter\nseq_view_timeouts_total 17\n"));
    assert_non_null(strstr(text, "\nseq_finalized_txs_total 99999\n"));
    assert_non_null(strstr(text, "\nseq_compact_proposals_total{outcome=\"rebuilt\"} 850\n"));
    assert_non_null(strstr(text, "\nseq_compact_proposals_total{outcome=\"fetched\"} 3\n"));
    assert_non_null(strstr(text, "\nseq_views_per_finalized_block 1.25\n"));
    assert_non_null(strstr(text, "\nseq_finalized_txs_per_second 31415.5\n"));
    assert_non_null(strstr(text, "\nseq_mempool_txs{ns=\"7\"} 100\n"));
    assert_non_null(strstr(text, "\nseq_mempool_txs{ns=\"9\"} 98\n"));
    assert_non_null(strstr(text, "\nseq_mempool_bytes{ns=\"8\"} 99000\n"));
    assert_null(strstr(text, "ns=\"10\""));
    assert_non_null(strstr(text, "\nseq_mempool_namespaces 8\n"));
    assert_non_null(strstr(text, "\nseq_subscribers{port=\"http\"} 2\n"));
    assert_non_null(strstr(text, "\nseq_resident_memory_bytes 123456789\n"));
    assert_non_null(strstr(text, "seq_node_info{chain_id=\"42\",validator=\"3\",name=\"node3\"} 1\n"));
}

/* A validator name with a quote, a backslash and a newline stays one label. */
static void test_label_escaping(void **state)
{
    (void)state;
    seq_metrics m;
    fill(&m, 0);
    snprintf(m.name, sizeof m.name, "a\"b\\c\nd");
    size_t len;
    render(&m, &len);
    assert_non_null(strstr(text, "name=\"a\\\"b\\\\c\\nd\"} 1\n"));
    check_format(text);
}

/* The largest input (every namespace slot, the largest numbers, a name of
 * characters that all need escaping) fits SEQ_METRICS_TEXT_BYTES_MAX; a
 * buffer one byte short of the text is refused, never overrun. */
static void test_bounds(void **state)
{
    (void)state;
    seq_metrics m;
    fill(&m, SEQ_METRICS_NS_MAX);
    memset(m.name, '"', sizeof m.name - 1);
    m.name[sizeof m.name - 1] = '\0';
    m.chain_id = m.height = m.view = m.finalized_bytes_total = UINT64_MAX;
    for (uint32_t i = 0; i < SEQ_METRICS_NS_MAX; i++)
        m.ns[i] = (seq_metrics_ns){.ns = UINT64_MAX - i, .txs = UINT64_MAX, .bytes = UINT64_MAX};
    m.finalized_bytes_per_second = -1.7976931348623157e308;
    size_t len;
    render(&m, &len);
    check_format(text);
    assert_true(len < SEQ_METRICS_TEXT_BYTES_MAX / 2); /* room to spare */
    char *small = malloc(len);
    assert_non_null(small);
    assert_int_equal(seq_metrics_render(&m, small, len, &len), SEQ_ETOOBIG);
    free(small);
}

/* promtool check metrics (Prometheus's parser and linter) accepts the text. */
static void test_promtool_accepts(void **state)
{
    (void)state;
    if (access("/usr/bin/promtool", X_OK) != 0) {
        fprintf(stderr, "promtool missing: run scripts/deps.sh (Debian package prometheus)\n");
        fail();
    }
    seq_metrics m;
    fill(&m, 5);
    snprintf(m.name, sizeof m.name, "we\"ird\\name");
    size_t len;
    render(&m, &len);
    char path[] = "/tmp/seq-test-metrics-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096];
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    int rc = pclose(p);
    unlink(path);
    if (rc != 0 || got != 0)
        fprintf(stderr, "promtool said (exit %d):\n%s\n", rc, out);
    assert_int_equal(rc, 0);
    assert_int_equal(got, 0); /* no lint warnings either */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_values),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_promtool_accepts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
