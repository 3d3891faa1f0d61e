/* The node's metrics in Prometheus text exposition format (version 0.0.4):
 * the HTTP port's GET /metrics. Pure: the node fills a seq_metrics, the
 * renderer writes text into the caller's buffer; no I/O, no allocation.
 *
 * Every name starts with seq_. Counters end in _total and only go up while
 * the process runs (a restart starts them at 0, as Prometheus expects);
 * gauges are what they are now. Per-namespace mempool figures carry the
 * label ns (seq_mempool_txs{ns="7"}); label values are escaped as the format
 * demands (backslash, double quote, newline). */
#ifndef SEQ_METRICS_H
#define SEQ_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "assert.h"
#include "types.h"

/* Namespaces listed one by one: those with the most pending transactions
 * (the rest are only counted in seq_mempool_namespaces). Bounds a scrape. */
#define SEQ_METRICS_NS_MAX 64
#define SEQ_METRICS_NAME_BYTES 64
/* Room that always holds the rendered text of any seq_metrics. */
#define SEQ_METRICS_TEXT_BYTES_MAX (64u << 10)

typedef struct {
    seq_ns ns;
    uint64_t txs;
    uint64_t bytes;
} seq_metrics_ns;

typedef struct {
    /* who (seq_node_info, value 1) */
    uint64_t chain_id;
    uint32_t self;                       /* validator index */
    char name[SEQ_METRICS_NAME_BYTES];   /* validator name from the genesis */
    uint32_t validators;
    uint64_t uptime_seconds;
    /* consensus */
    uint64_t height;                     /* last finalized */
    uint64_t view;
    uint32_t leader;                     /* of view */
    uint64_t timeouts_total;             /* views this node voted to skip */
    uint64_t msgs_dropped_total;         /* invalid or out-of-window consensus messages */
    uint64_t equivocations_total;
    uint64_t signature_checks_total;
    /* finalized since start, and over the node's recent window */
    uint64_t finalized_blocks_total;
    uint64_t finalized_txs_total;
    uint64_t finalized_bytes_total;      /* payload bytes */
    double views_per_block;              /* views per finalized block; 0 when none finalized */
    double finalized_txs_per_second;
    double finalized_bytes_per_second;
    /* mempool */
    uint64_t mempool_txs;
    uint64_t mempool_bytes;
    uint32_t mempool_namespaces;         /* namespaces with pending transactions */
    uint32_t ns_count;                   /* entries of ns[] */
    seq_metrics_ns ns[SEQ_METRICS_NS_MAX];
    uint64_t expired_txs_total;          /* dropped from the mempool unordered: expired */
    uint64_t evicted_txs_total;          /* ... and evicted (full, for another namespace) */
    uint64_t gossip_dropped_total;
    uint64_t proposals_rebuilt_total;    /* compact proposals rebuilt from the mempool */
    uint64_t proposals_fetched_total;    /* ... whose whole block was asked of the leader */
    /* peers and sync */
    uint32_t peers_connected;
    uint64_t sync_lag_blocks;            /* best height peers report minus ours */
    uint64_t p2p_bytes_in_total;
    uint64_t p2p_bytes_out_total;
    uint64_t p2p_frames_dropped_total;
    /* clients */
    uint32_t api_clients;                /* protobuf API connections */
    uint32_t api_subscribers;
    uint32_t http_connections;
    uint32_t http_streams;               /* server-sent event subscribers */
    uint64_t http_requests_total;
    uint64_t http_events_live_total;     /* stream events sent as their block finalized */
    uint64_t http_events_stored_total;   /* stream events read back from the store (catching up) */
    /* resources */
    uint64_t store_used_bytes;
    uint64_t store_map_bytes;
    uint64_t rss_bytes;
} seq_metrics;

/* Writes m as Prometheus text into out (cap bytes; NUL-terminated) and its
 * length (without the NUL) into *len. SEQ_ETOOBIG when cap is too small
 * (never with SEQ_METRICS_TEXT_BYTES_MAX); out is then unspecified. Asserts
 * ns_count <= SEQ_METRICS_NS_MAX. */
int seq_metrics_render(const seq_metrics *m, char *out, size_t cap, size_t *len) SEQ_MUST_CHECK;

#endif
