/* Prometheus text exposition format 0.0.4 (lib/metrics.h): per family one
 * "# HELP" and one "# TYPE" line, then its samples "name{k="v",...} value".
 * HELP text escapes backslash and newline; label values also the double
 * quote. A writer over the caller's buffer records overflow once. */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"

typedef struct {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
} writer;

typedef struct {
    const char *key;
    const char *value;
} label;

static void w_printf(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void w_printf(writer *w, const char *fmt, ...)
{
    if (w->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->buf + w->len, w->cap - w->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= w->cap - w->len)
        w->overflow = true;
    else
        w->len += (size_t)n;
}

static void w_char(writer *w, char c) { w_printf(w, "%c", c); }

/* HELP text: \ and newline escaped; label values: also ". */
static void w_escaped(writer *w, const char *s, bool quote)
{
    for (; *s && !w->overflow; s++) {
        if (*s == '\\')
            w_printf(w, "\\\\");
        else if (*s == '\n')
            w_printf(w, "\\n");
        else if (*s == '"' && quote)
            w_printf(w, "\\\"");
        else
            w_char(w, *s);
    }
}

/* Our own names are constants: a bad one is a programmer error. */
static bool name_valid(const char *name)
{
    if (strncmp(name, "seq_", 4) != 0)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void family(writer *w, const char *name, const char *type, const char *help)
{
    SEQ_ASSERT(name_valid(name));
    SEQ_ASSERT(ends_with(name, "_total") == (strcmp(type, "counter") == 0));
    w_printf(w, "# HELP %s ", name);
    w_escaped(w, help, false);
    w_printf(w, "\n# TYPE %s %s\n", name, type);
}

static void sample_start(writer *w, const char *name, const label *labels, size_t n)
{
    w_printf(w, "%s", name);
    for (size_t i = 0; i < n; i++) {
        SEQ_ASSERT(labels[i].key[0] >= 'a' && labels[i].key[0] <= 'z');
        w_printf(w, "%c%s=\"", i == 0 ? '{' : ',', labels[i].key);
        w_escaped(w, labels[i].value, true);
        w_char(w, '"');
    }
    if (n > 0)
        w_char(w, '}');
}

static void sample_u64(writer *w, const char *name, const label *labels, size_t n, uint64_t v)
{
    sample_start(w, name, labels, n);
    w_printf(w, " %" PRIu64 "\n", v);
}

static void sample_f64(writer *w, const char *name, double v)
{
    sample_start(w, name, NULL, 0);
    w_printf(w, " %.6g\n", v == v ? v : 0.0); /* NaN would read as a value nobody meant */
}

static void gauge(writer *w, const char *name, const char *help, uint64_t v)
{
    family(w, name, "gauge", help);
    sample_u64(w, name, NULL, 0, v);
}

static void gauge_f64(writer *w, const char *name, const char *help, double v)
{
    family(w, name, "gauge", help);
    sample_f64(w, name, v);
}

static void counter(writer *w, const char *name, const char *help, uint64_t v)
{
    family(w, name, "counter", help);
    sample_u64(w, name, NULL, 0, v);
}

static void render_identity(writer *w, const seq_metrics *m)
{
    char chain[24], self[16];
    snprintf(chain, sizeof chain, "%" PRIu64, m->chain_id);
    snprintf(self, sizeof self, "%" PRIu32, m->self);
    char name[SEQ_METRICS_NAME_BYTES];
    snprintf(name, sizeof name, "%.*s", (int)strnlen(m->name, sizeof m->name), m->name);
    label info[] = {{"chain_id", chain}, {"validator", self}, {"name", name}};
    family(w, "seq_node_info", "gauge", "Always 1; the labels name the chain and this validator.");
    sample_u64(w, "seq_node_info", info, 3, 1);
    gauge(w, "seq_validators", "Validators in the genesis.", m->validators);
    gauge(w, "seq_uptime_seconds", "Seconds since the node started.", m->uptime_seconds);
}

static void render_consensus(writer *w, const seq_metrics *m)
{
    gauge(w, "seq_height", "Height of the last finalized block.", m->height);
    gauge(w, "seq_view", "Current consensus view.", m->view);
    gauge(w, "seq_leader", "Validator index leading the current view.", m->leader);
    counter(w, "seq_view_timeouts_total", "Views this node voted to skip (nullify) since start.", m->timeouts_total);
    counter(w, "seq_consensus_msgs_dropped_total", "Invalid or out-of-window consensus messages dropped.",
            m->msgs_dropped_total);
    counter(w, "seq_equivocations_total", "Double votes seen (evidence kept).", m->equivocations_total);
    counter(w, "seq_consensus_signature_checks_total",
            "Vote signatures verified (peers' votes and certificate signatures not already held as votes).",
            m->signature_checks_total);
    counter(w, "seq_finalized_blocks_total", "Blocks finalized since start.", m->finalized_blocks_total);
    counter(w, "seq_finalized_txs_total", "Transactions finalized since start.", m->finalized_txs_total);
    counter(w, "seq_finalized_bytes_total", "Payload bytes finalized since start.", m->finalized_bytes_total);
    gauge_f64(w, "seq_views_per_finalized_block",
              "Views per finalized block over the recent window (1 when no view is skipped).", m->views_per_block);
    gauge_f64(w, "seq_finalized_txs_per_second", "Transactions finalized per second over the recent window.",
              m->finalized_txs_per_second);
    gauge_f64(w, "seq_finalized_bytes_per_second", "Payload bytes finalized per second over the recent window.",
              m->finalized_bytes_per_second);
}

static void render_mempool(writer *w, const seq_metrics *m)
{
    SEQ_ASSERT(m->ns_count <= SEQ_METRICS_NS_MAX);
    gauge(w, "seq_mempool_pending_txs", "Pending transactions in the mempool, all namespaces.", m->mempool_txs);
    gauge(w, "seq_mempool_pending_bytes", "Pending payload bytes in the mempool, all namespaces.", m->mempool_bytes);
    gauge(w, "seq_mempool_namespaces", "Namespaces with pending transactions.", m->mempool_namespaces);
    const char *names[2] = {"seq_mempool_txs", "seq_mempool_bytes"};
    const char *helps[2] = {"Pending transactions of a namespace (the namespaces with the most).",
                            "Pending payload bytes of a namespace (the namespaces with the most transactions)."};
    for (int k = 0; k < 2; k++) {
        family(w, names[k], "gauge", helps[k]);
        for (uint32_t i = 0; i < m->ns_count; i++) {
            char ns[24];
            snprintf(ns, sizeof ns, "%" PRIu64, m->ns[i].ns);
            label l = {"ns", ns};
            sample_u64(w, names[k], &l, 1, k == 0 ? m->ns[i].txs : m->ns[i].bytes);
        }
    }
    counter(w, "seq_mempool_expired_txs_total", "Pending transactions dropped unordered (expired).",
            m->expired_txs_total);
    counter(w, "seq_mempool_evicted_txs_total",
            "Pending transactions dropped unordered: evicted from a full mempool for another namespace's.",
            m->evicted_txs_total);
    counter(w, "seq_gossip_dropped_total", "Accepted transactions not gossiped: the gossip queue was full.",
            m->gossip_dropped_total);
}

static void render_network(writer *w, const seq_metrics *m)
{
    gauge(w, "seq_peers_connected", "Authenticated links to other validators.", m->peers_connected);
    gauge(w, "seq_sync_lag_blocks", "Finalized height peers report beyond ours.", m->sync_lag_blocks);
    counter(w, "seq_p2p_received_bytes_total", "Bytes received from peers.", m->p2p_bytes_in_total);
    counter(w, "seq_p2p_sent_bytes_total", "Bytes sent to peers.", m->p2p_bytes_out_total);
    counter(w, "seq_p2p_frames_dropped_total", "Frames to peers dropped: a send queue was full.",
            m->p2p_frames_dropped_total);
    label rebuilt = {"outcome", "rebuilt"}, fetched = {"outcome", "fetched"};
    family(w, "seq_compact_proposals_total", "counter",
           "Compact proposals from their leaders: rebuilt from the mempool, or the whole block asked of the leader "
           "(a transaction was missing, or memory to rebuild it).");
    sample_u64(w, "seq_compact_proposals_total", &rebuilt, 1, m->proposals_rebuilt_total);
    sample_u64(w, "seq_compact_proposals_total", &fetched, 1, m->proposals_fetched_total);
}

static void render_clients(writer *w, const seq_metrics *m)
{
    label api = {"port", "api"}, http = {"port", "http"};
    family(w, "seq_clients", "gauge", "Client connections, by port.");
    sample_u64(w, "seq_clients", &api, 1, m->api_clients);
    sample_u64(w, "seq_clients", &http, 1, m->http_connections);
    family(w, "seq_subscribers", "gauge", "Clients following namespaces, by port (http: server-sent events).");
    sample_u64(w, "seq_subscribers", &api, 1, m->api_subscribers);
    sample_u64(w, "seq_subscribers", &http, 1, m->http_streams);
    counter(w, "seq_http_requests_total", "HTTP requests answered.", m->http_requests_total);
    label live = {"source", "live"}, stored = {"source", "store"};
    family(w, "seq_http_stream_events_total", "counter",
           "Server-sent batches: as blocks finalized (live) or read back from the store (store).");
    sample_u64(w, "seq_http_stream_events_total", &live, 1, m->http_events_live_total);
    sample_u64(w, "seq_http_stream_events_total", &stored, 1, m->http_events_stored_total);
}

static void render_resources(writer *w, const seq_metrics *m)
{
    gauge(w, "seq_store_used_bytes", "Bytes of the LMDB map in use.", m->store_used_bytes);
    gauge(w, "seq_store_map_bytes", "Size of the LMDB map: the most the store can hold.", m->store_map_bytes);
    gauge(w, "seq_resident_memory_bytes", "Resident set size of the process.", m->rss_bytes);
}

int seq_metrics_render(const seq_metrics *m, char *out, size_t cap, size_t *len)
{
    SEQ_ASSERT(m && out && len && cap > 0);
    writer w = {.buf = out, .cap = cap};
    render_identity(&w, m);
    render_consensus(&w, m);
    render_mempool(&w, m);
    render_network(&w, m);
    render_clients(&w, m);
    render_resources(&w, m);
    if (w.overflow)
        return SEQ_ETOOBIG;
    *len = w.len;
    return 0;
}
