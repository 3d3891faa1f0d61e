/* seqd's configuration: one table in lib/config.c defines every setting
 * (section, name, type, bounds, default, description). Loading (libinih),
 * validation, defaults and the commented example file all come from it, so
 * config/seqd.conf.example can be regenerated and checked for drift. */
#ifndef SEQ_CONFIG_H
#define SEQ_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "assert.h"

#define SEQ_PATH_BYTES 512  /* a path setting, with its NUL */
#define SEQ_ADDR_BYTES 128  /* "host:port", with its NUL */
#define SEQ_CONFIG_FILE "seqd.conf" /* name of the config file in a node home */

typedef struct {
    /* [node] paths are relative to the directory of the config file */
    char key_file[SEQ_PATH_BYTES];     /* identity key, default "key" */
    char genesis_file[SEQ_PATH_BYTES]; /* default "genesis.json" */
    char data_dir[SEQ_PATH_BYTES];     /* LMDB directory, default "data" */
    char log_level[16];                /* debug|info|warn|error, default info */
    /* [p2p] */
    char p2p_listen[SEQ_ADDR_BYTES];   /* default "0.0.0.0:7600" */
    uint32_t p2p_frame_bytes_max;      /* default 16 MiB */
    uint32_t p2p_handshake_timeout_ms; /* default 5000 */
    uint32_t p2p_reconnect_min_ms;     /* default 100 */
    uint32_t p2p_reconnect_max_ms;     /* default 5000 */
    uint32_t p2p_send_queue_bytes_max; /* per peer, default 256 MiB */
    /* [api] */
    char api_listen[SEQ_ADDR_BYTES];   /* default "127.0.0.1:7700" */
    uint32_t api_frame_bytes_max;      /* default 16 MiB */
    uint32_t api_clients_max;          /* default 1024 */
    uint32_t api_send_queue_bytes_max; /* per client, default 16 MiB */
    uint32_t api_subscriber_stall_ms;  /* default 30000 */
    /* [http] */
    char http_listen[SEQ_ADDR_BYTES];  /* default "127.0.0.1:7800" */
    /* [consensus] */
    uint32_t view_timeout_ms;          /* default 1000 */
    uint32_t block_txs_max;            /* default 4000 */
    uint32_t block_bytes_max;          /* default 4 MiB */
    uint32_t empty_block_delay_ms;     /* default 200 */
    uint32_t block_interval_min_ms;    /* default 10 */
    bool compact_proposals;            /* proposals carry tx ids, default true */
    /* [mempool] */
    uint32_t mempool_txs_max;          /* default 100000 */
    uint64_t mempool_bytes_max;        /* default 1 GiB */
    uint32_t tx_bytes_max;             /* default 64 KiB */
    uint32_t mempool_namespaces_max;   /* default 65536 */
    uint32_t mempool_recent_max;       /* default 100000 */
    uint32_t tx_ttl_ms;                /* default 120000, 0 = never */
    uint32_t gossip_flush_ms;          /* default 2 */
    /* [sync] */
    uint32_t sync_range_blocks;        /* blocks per range request, default 64 */
    uint32_t sync_ranges_inflight;     /* default 4 */
    /* [store] */
    uint64_t store_map_bytes;          /* default 16 GiB */
    bool store_durable;                /* fsync every commit, default true */
} seq_config;

/* Fills every setting with its default from the table. */
void seq_config_defaults(seq_config *c);

/* Loads path over the defaults (libinih). Every key must be known, in its
 * section, and within bounds. On error returns SEQ_ECONFIG (or SEQ_ENOTFOUND for
 * a missing file, SEQ_EIO for an unreadable one) and writes one message to err
 * naming the file, line and key, e.g.
 *   "node1/seqd.conf:12: [api] clients_max: 0 is below the minimum 1".
 * *out holds the defaults plus whatever was read before the error. */
int seq_config_load(seq_config *out, const char *path, char *err, size_t err_len) SEQ_MUST_CHECK;

/* Writes c as a complete config file: every section and setting, each
 * preceded by its description, bounds and default as comments. With the
 * defaults, this is config/seqd.conf.example byte for byte. */
int seq_config_write(const seq_config *c, FILE *f) SEQ_MUST_CHECK;

/* Resolves a path setting against the directory holding the config file:
 * absolute paths are kept. SEQ_ETOOBIG when out is too small. */
int seq_config_path(char *out, size_t out_len, const char *config_path, const char *setting) SEQ_MUST_CHECK;

/* Splits "host:port" (IPv4 dotted quad, "localhost", or "[v6]:port");
 * port 1..65535. SEQ_EADDR on anything else. host gets at least 64 bytes. */
int seq_hostport_parse(const char *s, char *host, size_t host_len, uint16_t *port) SEQ_MUST_CHECK;

#endif
