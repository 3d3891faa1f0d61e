/* A node home directory: creates the directory, a fresh identity key, the
 * commented config file and the empty data directory (`seqd init`). */
#include "home.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "errors.h"
#include "log.h"

#define HOME_KEY_FILE "key"
#define HOME_DATA_DIR "data"


/* mkdir -p with mode 0700 for every directory it creates. */
static int mkdir_parents(const char *dir)
{
    char path[SEQ_PATH_BYTES];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path)
        return SEQ_EINVAL;
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return SEQ_EIO;
        path[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return SEQ_EIO;
    return 0;
}

static int join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? SEQ_ETOOBIG : 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 || errno != ENOENT;
}

/* O_EXCL: a config appearing between our check and this write is not replaced. */
static int config_create(const char *path, const seq_config *c)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? SEQ_EEXISTS : SEQ_EIO;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(path);
        return SEQ_EIO;
    }
    int rc = seq_config_write(c, f);
    if (fclose(f) != 0 && rc == 0)
        rc = SEQ_EIO;
    if (rc)
        unlink(path);
    return rc;
}

int seq_home_init(const char *dir, const seq_config *c, seq_pubkey *pk_out, char *err, size_t err_len)
{
    SEQ_ASSERT(dir && c);
    char key_path[SEQ_PATH_BYTES], conf_path[SEQ_PATH_BYTES], data_path[SEQ_PATH_BYTES];
    if (join(key_path, sizeof key_path, dir, HOME_KEY_FILE) || join(conf_path, sizeof conf_path, dir, SEQ_CONFIG_FILE) ||
        join(data_path, sizeof data_path, dir, HOME_DATA_DIR)) {
        seq_err_set(err, err_len, "%s: path too long", dir);
        return SEQ_ETOOBIG;
    }
    if (exists(key_path) || exists(conf_path)) {
        seq_err_set(err, err_len, "%s: already a node home (holds %s or %s); not touching it", dir, HOME_KEY_FILE,
                SEQ_CONFIG_FILE);
        return SEQ_EEXISTS;
    }
    int rc = mkdir_parents(dir);
    if (rc) {
        seq_err_set(err, err_len, "%s: cannot create directory: %s", dir, strerror(errno));
        return rc;
    }

    seq_keypair *kp;
    rc = seq_keypair_generate(&kp);
    if (rc) {
        seq_err_set(err, err_len, "cannot generate a key: %s", seq_strerror(rc));
        return rc;
    }
    rc = seq_keyfile_save(kp, key_path);
    seq_pubkey pk = kp->pk;
    seq_keypair_free(kp);
    if (rc) {
        seq_err_set(err, err_len, "%s: cannot write key: %s", key_path, seq_strerror(rc));
        return rc;
    }
    rc = config_create(conf_path, c);
    if (rc) {
        seq_err_set(err, err_len, "%s: cannot write config: %s", conf_path, seq_strerror(rc));
        goto err_after_key;
    }
    struct stat st;
    if ((mkdir(data_path, 0700) != 0 && errno != EEXIST) || stat(data_path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        seq_err_set(err, err_len, "%s: cannot create directory: %s", data_path, strerror(errno));
        rc = SEQ_EIO;
        goto err_after_config;
    }
    if (pk_out)
        *pk_out = pk;
    SEQ_INFO("home_init", "dir=%s", dir);
    return 0;

err_after_config:
    unlink(conf_path);
err_after_key:
    /* A key that no genesis names yet: leave the directory as we found it. */
    unlink(key_path);
    return rc;
}
