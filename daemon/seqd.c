/* seqd: the shared sequencer node.
 *   seqd init  --home DIR     create a node home (key, config, data dir)
 *   seqd start --home DIR     run the node in the foreground
 * Everything it does is in lib/node.c; this file is flags, signals and exit codes. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "crypto.h"
#include "errors.h"
#include "home.h"
#include "log.h"
#include "node.h"

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: seqd <command> [options]\n"
    "\n"
    "commands:\n"
    "  init  --home DIR        create a node home: identity key (0600), a commented\n"
    "                          config file with every setting (DIR/seqd.conf) and the\n"
    "                          data directory; prints the public key for the genesis\n"
    "  start --home DIR        run the node in the foreground until SIGINT/SIGTERM\n"
    "                          (a second SIGINT exits at once)\n"
    "\n"
    "options:\n"
    "  --home DIR              node home (default: .)\n"
    "  --config FILE           config file (default: HOME/seqd.conf)\n"
    "  --log-level LEVEL       debug|info|warn|error (overrides the config)\n"
    "  -h, --help              this text\n"
    "\n"
    "A local test network: seqctl testnet --validators 4 --out DIR, or scripts/cluster.sh up.\n";

typedef struct {
    const char *command;
    const char *home;
    const char *config;
    const char *log_level;
} options;

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "seqd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nrun 'seqd --help' for usage\n");
    return EXIT_USAGE;
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->home = ".";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        }
        const char **slot = strcmp(a, "--home") == 0        ? &o->home
                            : strcmp(a, "--config") == 0    ? &o->config
                            : strcmp(a, "--log-level") == 0 ? &o->log_level
                                                            : NULL;
        if (slot) {
            if (i + 1 >= argc)
                return usage_error("%s needs a value", a);
            *slot = argv[++i];
        } else if (a[0] == '-') {
            return usage_error("unknown option %s", a);
        } else if (!o->command) {
            o->command = a;
        } else {
            return usage_error("unexpected argument %s", a);
        }
    }
    if (!o->command)
        return usage_error("%s", "no command given (init or start)");
    if (strcmp(o->command, "init") != 0 && strcmp(o->command, "start") != 0)
        return usage_error("unknown command %s (init or start)", o->command);
    if (o->log_level && seq_log_level_parse(o->log_level) < 0)
        return usage_error("bad --log-level %s (debug, info, warn or error)", o->log_level);
    return 0;
}

static int cmd_init(const options *o)
{
    seq_config c;
    seq_config_defaults(&c);
    seq_pubkey pk;
    char err[512] = "";
    int rc = seq_home_init(o->home, &c, &pk, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "seqd: init %s: %s\n", o->home, err[0] ? err : seq_strerror(rc));
        return 1;
    }
    char hex[2 * SEQ_PUBKEY_BYTES + 1];
    seq_hex(hex, pk.b, SEQ_PUBKEY_BYTES);
    printf("initialized %s\npublic_key %s\n", o->home, hex);
    printf("next: put this key and the node's p2p address into the network's genesis.json,\n"
           "place it at %s/genesis.json (or set genesis_file), then: seqd start --home %s\n",
           o->home, o->home);
    return 0;
}

/* ---- start ------------------------------------------------------------------ */

typedef struct {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    seq_node *node;
    int exit_code;
    int signals;
} daemon_state;

static void node_stopped(void *ctx, int rc)
{
    daemon_state *d = ctx;
    d->node = NULL;
    d->exit_code = rc == 0 ? 0 : 1;
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    daemon_state *d = h->data;
    if (++d->signals > 1 && signum == SIGINT) {
        fprintf(stderr, "seqd: second interrupt, exiting at once\n");
        _exit(130);
    }
    SEQ_INFO("signal", "sig=%s action=shutdown", signum == SIGINT ? "INT" : "TERM");
    if (d->node)
        seq_node_stop(d->node, 0);
}

static int cmd_start(const options *o)
{
    char config_path[PATH_MAX];
    if (o->config)
        snprintf(config_path, sizeof config_path, "%s", o->config);
    else
        snprintf(config_path, sizeof config_path, "%s/%s", o->home, SEQ_CONFIG_FILE);
    seq_config cfg;
    char err[1024] = "";
    int rc = seq_config_load(&cfg, config_path, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "seqd: %s\n", err[0] ? err : seq_strerror(rc));
        if (rc == SEQ_ENOTFOUND)
            fprintf(stderr, "seqd: create a node home first: seqd init --home %s\n", o->home);
        return 1;
    }
    seq_log_set_level((seq_log_level)seq_log_level_parse(o->log_level ? o->log_level : cfg.log_level));
    signal(SIGPIPE, SIG_IGN);
    daemon_state d = {0};
    uv_loop_init(&d.loop);
    uv_signal_init(&d.loop, &d.sigint);
    uv_signal_init(&d.loop, &d.sigterm);
    d.sigint.data = d.sigterm.data = &d;
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    rc = seq_node_start(&d.node, &d.loop, &cfg, config_path, node_stopped, &d, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "seqd: %s\n", err[0] ? err : seq_strerror(rc));
        uv_close((uv_handle_t *)&d.sigint, NULL);
        uv_close((uv_handle_t *)&d.sigterm, NULL);
        uv_run(&d.loop, UV_RUN_DEFAULT);
        uv_loop_close(&d.loop);
        return 1;
    }
    uv_run(&d.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&d.loop) != 0)
        SEQ_WARN("loop_close", "reason=handles_open");
    return d.exit_code;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    if (seq_crypto_init() != 0) {
        fprintf(stderr, "seqd: libsodium failed to initialise\n");
        return 1;
    }
    return strcmp(o.command, "init") == 0 ? cmd_init(&o) : cmd_start(&o);
}
