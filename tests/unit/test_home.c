/* home: init creates the directory (with parents), a 0600 key that loads,
 * a config that loads back equal and an empty data directory; a second init,
 * or one over a lone config, refuses and changes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "crypto.h"
#include "errors.h"
#include "home.h"
#include "log.h"
#include "testutil.h"

#define PATH_BYTES 512
#define ERR_BYTES 512

typedef struct {
    char dir[PATH_BYTES - 64];
    char home[PATH_BYTES - 32]; /* dir/a/b/node0: parents to create */
    char err[ERR_BYTES];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (seq_test_tmpdir(fx->dir, sizeof fx->dir, "home") != 0) {
        free(fx);
        return -1;
    }
    snprintf(fx->home, sizeof fx->home, "%s/a/b/node0", fx->dir);
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

static void path_in(const fixture *fx, const char *name, char out[PATH_BYTES])
{
    snprintf(out, PATH_BYTES, "%s/%s", fx->home, name);
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* Init writes key, config and data dir with the documented modes. */
static void test_init_creates_home(void **state)
{
    fixture *fx = *state;
    seq_config c, back;
    seq_config_defaults(&c);
    c.api_clients_max = 17;
    strcpy(c.genesis_file, "../genesis.json");
    seq_pubkey pk;
    int rc = seq_home_init(fx->home, &c, &pk, fx->err, sizeof fx->err);
    if (rc)
        fail_msg("init: %s", fx->err);

    char key[PATH_BYTES], conf[PATH_BYTES], data[PATH_BYTES];
    path_in(fx, "key", key);
    path_in(fx, SEQ_CONFIG_FILE, conf);
    path_in(fx, "data", data);
    assert_int_equal(mode_of(fx->home), 0700);
    assert_int_equal(mode_of(key), 0600);
    assert_int_equal(mode_of(data), 0700);
    struct stat st;
    assert_int_equal(stat(data, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    seq_keypair *kp;
    assert_int_equal(seq_keyfile_load(&kp, key), 0);
    assert_memory_equal(kp->pk.b, pk.b, SEQ_PUBKEY_BYTES);
    seq_keypair_free(kp);

    rc = seq_config_load(&back, conf, fx->err, sizeof fx->err);
    if (rc)
        fail_msg("config: %s", fx->err);
    assert_memory_equal(&back, &c, sizeof c);
    assert_int_equal(back.api_clients_max, 17);
}

/* A second init refuses with SEQ_EEXISTS and leaves the key as it was. */
static void test_second_init_refuses(void **state)
{
    fixture *fx = *state;
    seq_config c;
    seq_config_defaults(&c);
    seq_pubkey first, second;
    assert_int_equal(seq_home_init(fx->home, &c, &first, fx->err, sizeof fx->err), 0);
    memset(&second, 0, sizeof second);
    assert_int_equal(seq_home_init(fx->home, &c, &second, fx->err, sizeof fx->err), SEQ_EEXISTS);
    assert_non_null(strstr(fx->err, fx->home));

    char key[PATH_BYTES];
    path_in(fx, "key", key);
    seq_keypair *kp;
    assert_int_equal(seq_keyfile_load(&kp, key), 0);
    assert_memory_equal(kp->pk.b, first.b, SEQ_PUBKEY_BYTES);
    seq_keypair_free(kp);
}

/* A directory holding only a config is a home too: no key gets added. */
static void test_lone_config_refuses(void **state)
{
    fixture *fx = *state;
    char conf[PATH_BYTES], key[PATH_BYTES];
    snprintf(conf, sizeof conf, "%s/%s", fx->dir, SEQ_CONFIG_FILE);
    snprintf(key, sizeof key, "%s/key", fx->dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fclose(f);
    seq_config c;
    seq_config_defaults(&c);
    assert_int_equal(seq_home_init(fx->dir, &c, NULL, fx->err, sizeof fx->err), SEQ_EEXISTS);
    assert_int_equal(access(key, F_OK), -1);
    struct stat st;
    assert_int_equal(stat(conf, &st), 0);
    assert_int_equal(st.st_size, 0);
}

/* A config the writer refuses leaves no key behind. */
static void test_failed_config_leaves_nothing(void **state)
{
    fixture *fx = *state;
    seq_config c;
    seq_config_defaults(&c);
    strcpy(c.data_dir, "x ;y"); /* libinih would cut it at " ;" */
    assert_int_equal(seq_home_init(fx->home, &c, NULL, fx->err, sizeof fx->err), SEQ_EINVAL);
    char key[PATH_BYTES], conf[PATH_BYTES];
    path_in(fx, "key", key);
    path_in(fx, SEQ_CONFIG_FILE, conf);
    assert_int_equal(access(key, F_OK), -1);
    assert_int_equal(access(conf, F_OK), -1);
}

int main(void)
{
    seq_log_set_level(SEQ_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_creates_home, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_init_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lone_config_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_config_leaves_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
