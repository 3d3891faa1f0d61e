/* The node: wires the replica to libuv, peers, range sync and the API.
 *
 * Time: the consensus stamps blocks and judges peers' stamps with the wall
 * clock in ms (CLOCK_REALTIME); timers are armed as "deadline minus now".
 * Each peer frame is decoded (lib/wire.c) and handed to the replica, or to
 * range sync; BUILD/VERIFY answers still queued after a call are continued on
 * the next loop iteration (an idle handle), so one busy peer cannot starve
 * the others. */
#include "node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "api.h"
#include "crypto.h"
#include "errors.h"
#include "genesis.h"
#include "http.h"
#include "log.h"
#include "mempool.h"
#include "metrics.h"
#include "net.h"
#include "replica.h"
#include "store.h"
#include "sync.h"
#include "txtrack.h"
#include "wire.h"

#define SYNC_TICK_MS 100
#define SYNC_PROBE_MS 500     /* how often we ask peers for their height */
#define SYNC_LAG_BLOCKS 8     /* this far behind a peer, fetch ranges at once */
#define TXTRACK_KEYS_MAX 262144u    /* client keys remembered (about 100 bytes each) */
#define TXTRACK_DROPPED_MAX 262144u /* dropped transactions remembered */
#define SYNC_REQUESTS_PER_TICK_MAX 64 /* served per peer per sync tick */
#define INDEX_FLUSH_MS 1000   /* tx ids of finalized blocks reach the LMDB index this often */
#define HTTP_HEADER_BYTES_MAX (16u << 10) /* request line and headers on the HTTP port */
#define HTTP_REQUEST_TIMEOUT_MS 10000u    /* a request must arrive within this (also keep-alive idle) */
#define HTTP_HEARTBEAT_MS 15000u          /* comment line on an idle event stream */
#define METRICS_SAMPLE_MS 1000u           /* rates and views per block: one sample a second ... */
#define METRICS_SAMPLES 11u               /* ... over the last ten seconds */

/* What /metrics reports as recent rates: finalized totals at one moment. */
typedef struct {
    uint64_t ms;      /* uv_now: monotonic */
    uint64_t height;
    uint64_t view;
    uint64_t txs;
    uint64_t bytes;
} metrics_sample;

struct seq_node {
    uv_loop_t *loop;
    seq_config cfg;
    seq_genesis *genesis;
    seq_keypair *key;
    uint32_t self;
    seq_store *store;
    seq_replica *replica;
    seq_net *net;
    seq_api *api;
    seq_http *http;
    seq_txtrack *txtrack;       /* client keys and dropped transactions */
    seq_sync sync;
    uv_timer_t consensus_timer;
    uv_timer_t gossip_timer;
    uv_timer_t sync_timer;
    uv_idle_t continue_idle;
    const char *addresses[SEQ_VALIDATORS_MAX];
    uint32_t handles_open;
    uint64_t last_probe_ms;
    uint64_t last_index_flush_ms;
    uint64_t tip_seen;          /* store height at the last sync tick */
    uint64_t tip_changed_ms;    /* when it last moved */
    uint32_t sync_served[SEQ_VALIDATORS_MAX]; /* this tick */
    bool stopping;
    int stop_rc;
    uint32_t parts_closing;
    seq_node_stopped_fn stopped;
    void *stopped_ctx;
    /* metrics the pure core does not count */
    uint64_t started_ms;        /* uv_now at start */
    uint64_t finalized_blocks, finalized_txs, finalized_bytes; /* since start */
    metrics_sample samples[METRICS_SAMPLES]; /* ring, one per METRICS_SAMPLE_MS */
    uint32_t sample_next, sample_count;
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t store_height(seq_node *n, seq_hash *hash)
{
    seq_store_tip tip;
    if (seq_store_tip_get(n->store, &tip) != 0)
        return 0;
    if (hash)
        *hash = tip.hash;
    return tip.height;
}

/* ---- replica io ----------------------------------------------------------------- */

static void io_send(void *ctx, uint32_t to, const seq_msg *m)
{
    seq_node *n = ctx;
    uint8_t *buf;
    size_t len;
    int rc = seq_msg_encode(m, &buf, &len);
    if (rc != 0) {
        SEQ_WARN("encode_failed", "kind=%d err=%s", m->kind, seq_strerror(rc));
        return;
    }
    if (to == SEQ_TO_ALL)
        seq_net_broadcast(n->net, buf, len);
    else if (seq_net_send(n->net, to, buf, len) != 0)
        SEQ_DEBUG("peer_send_dropped", "peer=%u kind=%d", to, m->kind); /* the protocol asks again */
    free(buf);
}

static void consensus_timer_cb(uv_timer_t *t);

static void io_set_timer(void *ctx, uint64_t deadline_ms)
{
    seq_node *n = ctx;
    uint64_t now = wall_ms();
    uint64_t in = deadline_ms > now ? deadline_ms - now : 0;
    (void)uv_timer_start(&n->consensus_timer, consensus_timer_cb, in, 0);
}

static void io_delivered(void *ctx, const seq_block *b, const seq_cert *cert)
{
    seq_node *n = ctx;
    SEQ_DEBUG("finalized", "height=%llu view=%llu txs=%u hash=%s", (unsigned long long)b->h.height,
              (unsigned long long)b->h.view, b->tx_count, seq_hash_short(&b->hash));
    n->finalized_blocks++;
    n->finalized_txs += b->tx_count;
    n->finalized_bytes += b->payload_bytes;
    if (n->api)
        seq_api_delivered(n->api, b, cert);
    if (n->http)
        seq_http_delivered(n->http, b, cert);
}

static void io_fatal(void *ctx, int err, const char *what)
{
    seq_node *n = ctx;
    SEQ_ERROR("node_stopping", "reason=\"%s\" err=%s", what, seq_strerror(err));
    seq_node_stop(n, err);
}

static void io_dropped(void *ctx, const seq_hash *ids, uint32_t count, int reason)
{
    seq_node *n = ctx;
    for (uint32_t i = 0; i < count; i++)
        seq_txtrack_dropped_put(n->txtrack, &ids[i], reason);
    SEQ_DEBUG("txs_dropped", "count=%u reason=%s", count, seq_drop_reason_name(reason));
}

/* ---- metrics (GET /metrics, /status on the HTTP port) ---------------------------- */

static void metrics_sample_take(seq_node *n, uint64_t tip)
{
    uint64_t now = uv_now(n->loop);
    const metrics_sample *last = &n->samples[(n->sample_next + METRICS_SAMPLES - 1) % METRICS_SAMPLES];
    if (n->sample_count > 0 && now < last->ms + METRICS_SAMPLE_MS)
        return;
    seq_replica_status st;
    seq_replica_status_get(n->replica, &st);
    n->samples[n->sample_next] = (metrics_sample){.ms = now, .height = tip, .view = st.consensus.view,
                                                  .txs = n->finalized_txs, .bytes = n->finalized_bytes};
    n->sample_next = (n->sample_next + 1) % METRICS_SAMPLES;
    if (n->sample_count < METRICS_SAMPLES)
        n->sample_count++;
}

/* Rates between the oldest sample kept and now. */
static void metrics_rates(seq_node *n, seq_metrics *m)
{
    if (n->sample_count == 0)
        return;
    uint32_t oldest = n->sample_count < METRICS_SAMPLES ? 0 : n->sample_next;
    const metrics_sample *o = &n->samples[oldest];
    uint64_t ms = uv_now(n->loop) - o->ms;
    if (m->height > o->height)
        m->views_per_block = (double)(m->view - o->view) / (double)(m->height - o->height);
    if (ms > 0) {
        m->finalized_txs_per_second = (double)(n->finalized_txs - o->txs) * 1000.0 / (double)ms;
        m->finalized_bytes_per_second = (double)(n->finalized_bytes - o->bytes) * 1000.0 / (double)ms;
    }
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    int got = f ? fscanf(f, "%llu %llu", &size, &resident) : 0;
    if (f)
        fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return got == 2 && page > 0 ? (uint64_t)resident * (uint64_t)page : 0;
}

static void metrics_mempool(seq_node *n, seq_metrics *m)
{
    const seq_mempool *mp = seq_replica_mempool(n->replica);
    seq_mempool_ns_stat top[SEQ_METRICS_NS_MAX];
    m->mempool_namespaces = seq_mempool_namespaces(mp);
    m->ns_count = seq_mempool_ns_top(mp, top, SEQ_METRICS_NS_MAX);
    for (uint32_t i = 0; i < m->ns_count; i++)
        m->ns[i] = (seq_metrics_ns){.ns = top[i].ns, .txs = top[i].count, .bytes = top[i].bytes};
}

static void http_metrics(void *ctx, seq_metrics *m)
{
    seq_node *n = ctx;
    seq_replica_status st;
    seq_replica_status_get(n->replica, &st);
    m->chain_id = n->genesis->chain_id;
    m->self = n->self;
    snprintf(m->name, sizeof m->name, "%s", n->genesis->validators[n->self].name);
    m->validators = n->genesis->n;
    m->uptime_seconds = (uv_now(n->loop) - n->started_ms) / 1000u;
    m->height = store_height(n, NULL);
    m->view = st.consensus.view;
    m->leader = seq_leader_of(&n->genesis->set, st.consensus.view);
    m->timeouts_total = st.consensus.timeouts;
    m->msgs_dropped_total = st.consensus.msgs_dropped;
    m->equivocations_total = st.consensus.equivocations;
    m->signature_checks_total = st.consensus.sig_checks;
    m->finalized_blocks_total = n->finalized_blocks;
    m->finalized_txs_total = n->finalized_txs;
    m->finalized_bytes_total = n->finalized_bytes;
    metrics_rates(n, m);
    m->mempool_txs = st.mempool_txs;
    m->mempool_bytes = st.mempool_bytes;
    metrics_mempool(n, m);
    m->expired_txs_total = st.expired_txs;
    m->evicted_txs_total = st.evicted_txs;
    m->gossip_dropped_total = st.gossip_dropped;
    m->proposals_rebuilt_total = st.proposals_rebuilt;
    m->proposals_fetched_total = st.proposals_fetched;
    uint64_t target = seq_sync_target(&n->sync);
    m->sync_lag_blocks = target > m->height ? target - m->height : 0;
    if (n->net) {
        seq_net_stats ns;
        seq_net_stats_get(n->net, &ns);
        m->peers_connected = seq_net_peers_up(n->net);
        m->p2p_bytes_in_total = ns.bytes_in;
        m->p2p_bytes_out_total = ns.bytes_out;
        m->p2p_frames_dropped_total = ns.frames_dropped;
    }
    if (n->api) {
        m->api_clients = seq_api_clients(n->api);
        m->api_subscribers = seq_api_subscribers(n->api);
    }
    size_t used = 0, map = 0;
    if (seq_store_usage(n->store, &used, &map) == 0) {
        m->store_used_bytes = used;
        m->store_map_bytes = map;
    }
    m->rss_bytes = rss_bytes();
}

/* ---- driving the replica -------------------------------------------------------- */

static void continue_idle_cb(uv_idle_t *h);

/* After every call into the replica: answer what it still has queued on the
 * next loop iteration. */
static void after_replica(seq_node *n, int rc)
{
    if (rc != 0 || n->stopping)
        return; /* io_fatal already stopped the node */
    if (seq_replica_pending(n->replica) && !uv_is_active((uv_handle_t *)&n->continue_idle))
        (void)uv_idle_start(&n->continue_idle, continue_idle_cb);
}

static void continue_idle_cb(uv_idle_t *h)
{
    seq_node *n = h->data;
    uv_idle_stop(h);
    if (!n->stopping)
        after_replica(n, seq_replica_continue(n->replica, wall_ms()));
}

static void consensus_timer_cb(uv_timer_t *t)
{
    seq_node *n = t->data;
    if (!n->stopping)
        after_replica(n, seq_replica_timeout(n->replica, wall_ms()));
}

static void gossip_timer_cb(uv_timer_t *t)
{
    seq_node *n = t->data;
    if (n->stopping)
        return;
    seq_replica_gossip_flush(n->replica);
    after_replica(n, seq_replica_tick(n->replica, wall_ms()));
}

/* ---- range sync ----------------------------------------------------------------- */

static void send_msg(seq_node *n, uint32_t to, const seq_msg *m) { io_send(n, to, m); }

/* Answers a range request from the store: blocks from `from`, within the
 * message's block, transaction and byte limits, continued past `count` until
 * a block whose certificate names itself, so the answer proves its own end. */
static void serve_sync(seq_node *n, uint32_t peer, const seq_msg *req)
{
    if (n->sync_served[peer]++ >= SYNC_REQUESTS_PER_TICK_MAX)
        return;
    uint64_t tip = store_height(n, NULL);
    seq_block **blocks = calloc(SEQ_SYNC_BLOCKS_MAX, sizeof *blocks);
    seq_cert *certs = malloc(SEQ_SYNC_BLOCKS_MAX * sizeof *certs);
    uint32_t count = 0;
    if (!blocks || !certs)
        goto out;
    uint64_t txs = 0, bytes = 0;
    for (uint64_t h = req->u.sync_req.from_height; h <= tip && count < SEQ_SYNC_BLOCKS_MAX; h++) {
        bool want_more = count < req->u.sync_req.count && txs < SEQ_BLOCK_TXS_MAX &&
                         bytes < SEQ_SYNC_RESP_BYTES_MAX;
        bool self_certified = count > 0 && seq_hash_eq(&certs[count - 1].hash, &blocks[count - 1]->hash);
        if (!want_more && (self_certified || count == 0))
            break;
        if (seq_store_block_get(n->store, h, &blocks[count]) != 0 ||
            seq_store_cert_get(n->store, h, &certs[count]) != 0) {
            seq_block_free(blocks[count]);
            blocks[count] = NULL;
            break;
        }
        txs += blocks[count]->tx_count;
        bytes += blocks[count]->payload_bytes;
        count++;
    }
    seq_msg resp = {.kind = SEQ_MSG_SYNC_RESP,
                    .u.sync_resp = {.tip_height = tip, .count = count, .blocks = blocks, .certs = certs}};
    send_msg(n, peer, &resp);
out:
    for (uint32_t i = 0; i < count; i++)
        seq_block_free(blocks[i]);
    free(blocks);
    free(certs);
}

static void sync_send_requests(seq_node *n, uint64_t now)
{
    seq_sync_request reqs[SEQ_SYNC_INFLIGHT_MAX];
    uint32_t k = seq_sync_plan(&n->sync, now, store_height(n, NULL), reqs, SEQ_SYNC_INFLIGHT_MAX);
    for (uint32_t i = 0; i < k; i++) {
        seq_msg m = {.kind = SEQ_MSG_SYNC_REQ,
                     .u.sync_req = {.from_height = reqs[i].from, .count = reqs[i].count}};
        send_msg(n, reqs[i].peer, &m);
        SEQ_DEBUG("sync_request", "peer=%u from=%llu count=%u", reqs[i].peer, (unsigned long long)reqs[i].from,
                  reqs[i].count);
    }
}

/* Checks and commits every held answer that continues our tip. */
static void sync_apply(seq_node *n)
{
    seq_sync_slot *slot;
    uint64_t tip = store_height(n, NULL);
    n->sync.tip = tip;
    while (!n->stopping && (slot = seq_sync_ready(&n->sync)) != NULL) {
        seq_hash tip_hash;
        tip = store_height(n, &tip_hash);
        uint32_t accepted = 0;
        seq_msg *r = &slot->resp;
        int rc = seq_sync_check(&n->genesis->set, n->genesis->chain_id, tip, &tip_hash, r->u.sync_resp.blocks,
                                r->u.sync_resp.certs, r->u.sync_resp.count, &accepted);
        if (rc != 0) {
            SEQ_WARN("sync_invalid", "peer=%u from=%llu err=%s", slot->peer, (unsigned long long)slot->from,
                     seq_strerror(rc));
            seq_sync_peer(&n->sync, slot->peer, false); /* ask the others */
            if (rc != SEQ_EORDER) /* a stale answer is not the peer's fault */
                seq_net_drop(n->net, slot->peer, "sent invalid sync data");
        } else if (accepted > 0) {
            seq_store_final *items = malloc(accepted * sizeof *items);
            if (items) {
                for (uint32_t i = 0; i < accepted; i++)
                    items[i] = (seq_store_final){r->u.sync_resp.blocks[i], &r->u.sync_resp.certs[i]};
                rc = seq_replica_commit_synced(n->replica, wall_ms(), items, accepted);
                free(items);
                if (rc == 0)
                    SEQ_INFO("synced", "peer=%u from=%llu blocks=%u", slot->peer, (unsigned long long)slot->from,
                             accepted);
                else
                    SEQ_WARN("sync_commit", "err=%s", seq_strerror(rc));
                after_replica(n, 0);
            }
        }
        seq_sync_release(&n->sync, slot);
        n->sync.tip = store_height(n, NULL);
        if (n->sync.tip == tip)
            break; /* nothing moved: ask again on the next tick */
    }
}

static void sync_probe(seq_node *n, uint64_t now)
{
    if (now < n->last_probe_ms + SYNC_PROBE_MS)
        return;
    n->last_probe_ms = now;
    seq_msg m = {.kind = SEQ_MSG_SYNC_REQ, .u.sync_req = {.from_height = store_height(n, NULL) + 1, .count = 0}};
    send_msg(n, SEQ_TO_ALL, &m);
}

/* Range sync runs when a peer is well ahead of us, or ahead at all while our
 * own finalized height has not moved for two view timeouts. Otherwise the
 * consensus fetches the few blocks it misses by itself. */
static bool sync_wanted(seq_node *n, uint64_t now, uint64_t tip)
{
    uint64_t target = seq_sync_target(&n->sync);
    if (target <= tip)
        return false;
    return target - tip >= SYNC_LAG_BLOCKS || now >= n->tip_changed_ms + 2ull * n->cfg.view_timeout_ms;
}

static void sync_timer_cb(uv_timer_t *t)
{
    seq_node *n = t->data;
    if (n->stopping)
        return;
    uint64_t now = wall_ms();
    uint64_t tip = store_height(n, NULL);
    metrics_sample_take(n, tip);
    if (tip != n->tip_seen) {
        n->tip_seen = tip;
        n->tip_changed_ms = now;
    }
    memset(n->sync_served, 0, sizeof n->sync_served);
    if (now >= n->last_index_flush_ms + INDEX_FLUSH_MS) {
        n->last_index_flush_ms = now;
        int rc = seq_store_index_flush(n->store);
        if (rc != 0) {
            io_fatal(n, rc, "write the tx index");
            return;
        }
    }
    sync_probe(n, now);
    if (sync_wanted(n, now, tip))
        sync_send_requests(n, now);
    else
        seq_sync_plan(&n->sync, now, tip, NULL, 0); /* drops stale slots */
}

/* ---- peers ---------------------------------------------------------------------- */

static void on_peer_frame(void *ctx, uint32_t from, const uint8_t *data, size_t len)
{
    seq_node *n = ctx;
    if (n->stopping)
        return;
    seq_msg m;
    int rc = seq_msg_decode(&m, data, len);
    if (rc != 0) {
        SEQ_WARN("peer_bad_message", "peer=%u bytes=%zu err=%s", from, len, seq_strerror(rc));
        return;
    }
    if (m.kind == SEQ_MSG_SYNC_REQ) {
        serve_sync(n, from, &m);
    } else if (m.kind == SEQ_MSG_SYNC_RESP) {
        SEQ_DEBUG("sync_answer", "peer=%u tip=%llu blocks=%u", from, (unsigned long long)m.u.sync_resp.tip_height,
                  m.u.sync_resp.count);
        if (seq_sync_answer(&n->sync, from, &m))
            sync_apply(n);
        if (sync_wanted(n, wall_ms(), store_height(n, NULL)))
            sync_send_requests(n, wall_ms());
    } else {
        after_replica(n, seq_replica_receive(n->replica, wall_ms(), from, &m));
    }
    seq_msg_release(&m);
}

static void on_peer(void *ctx, uint32_t peer, bool up)
{
    seq_node *n = ctx;
    SEQ_INFO(up ? "peer_up" : "peer_down", "peer=%u name=%s", peer, n->genesis->validators[peer].name);
    seq_sync_peer(&n->sync, peer, up);
    if (up && !n->stopping) {
        int rc = seq_replica_peer_up(n->replica, peer);
        if (rc != 0)
            SEQ_WARN("peer_votes_resend", "peer=%u err=%s", peer, seq_strerror(rc));
    }
}

/* ---- API hooks ------------------------------------------------------------------ */

int seq_node_submit(seq_node *n, seq_ns ns, const uint8_t *data, uint32_t len, const uint8_t *key,
                    size_t key_len, seq_hash *id)
{
    if (n->stopping)
        return SEQ_EIO;
    if (key_len == 0) {
        int rc = seq_replica_submit(n->replica, ns, data, len, id);
        if (rc == 0)
            seq_txtrack_dropped_forget(n->txtrack, id);
        return rc;
    }
    seq_tx tx = {.ns = ns, .len = len, .data = data};
    seq_tx_compute_id(&tx);
    *id = tx.id;
    int rc = seq_txtrack_key_check(n->txtrack, key, key_len, &tx.id);
    if (rc != 0)
        return rc;
    rc = seq_replica_submit(n->replica, ns, data, len, id);
    return seq_txtrack_key_commit(n->txtrack, key, key_len, &tx.id, rc);
}

void seq_node_submit_many(seq_node *n, const seq_tx *txs, uint32_t count, int *rcs, seq_hash *ids)
{
    if (n->stopping) {
        for (uint32_t i = 0; i < count; i++) {
            rcs[i] = SEQ_EIO;
            memset(&ids[i], 0, sizeof ids[i]);
        }
        return;
    }
    seq_replica_submit_many(n->replica, txs, count, rcs, ids);
    /* Only those still pending: one a later transaction of the same batch
     * evicted keeps the dropped record the eviction just wrote. */
    for (uint32_t i = 0; i < count; i++)
        if (rcs[i] == 0 && seq_replica_contains(n->replica, &ids[i]))
            seq_txtrack_dropped_forget(n->txtrack, &ids[i]);
}

int seq_node_tx_fate(seq_node *n, const seq_hash *id, int *reason)
{
    if (seq_replica_contains(n->replica, id))
        return SEQ_TX_PENDING;
    if (seq_txtrack_dropped_get(n->txtrack, id, reason))
        return SEQ_TX_DROPPED;
    return SEQ_TX_UNKNOWN;
}

bool seq_node_key_lookup(seq_node *n, const uint8_t *key, size_t key_len, seq_hash *id)
{
    return seq_txtrack_key_get(n->txtrack, key, key_len, id);
}

static int api_submit(void *ctx, seq_ns ns, const uint8_t *data, uint32_t len, const uint8_t *key,
                      size_t key_len, seq_hash *id)
{
    return seq_node_submit(ctx, ns, data, len, key, key_len, id);
}

static int api_tx_fate(void *ctx, const seq_hash *id, int *reason) { return seq_node_tx_fate(ctx, id, reason); }

static bool api_key_lookup(void *ctx, const uint8_t *key, size_t key_len, seq_hash *id)
{
    return seq_node_key_lookup(ctx, key, key_len, id);
}

static void api_submit_many(void *ctx, const seq_tx *txs, uint32_t n, int *rcs, seq_hash *ids)
{
    seq_node_submit_many(ctx, txs, n, rcs, ids);
}

/* One set for both client ports. */
#define NODE_TX_HOOKS                                                                                             \
    {.submit = api_submit, .submit_many = api_submit_many, .tx_fate = api_tx_fate, .key_lookup = api_key_lookup}

static void api_status(void *ctx, seq_node_status *out) { seq_node_status_get(ctx, out); }

void seq_node_status_get(seq_node *n, seq_node_status *out)
{
    seq_replica_status st;
    seq_replica_status_get(n->replica, &st);
    memset(out, 0, sizeof *out);
    out->height = store_height(n, NULL);
    out->view = st.consensus.view;
    out->leader = seq_leader_of(&n->genesis->set, st.consensus.view);
    out->peers = n->net ? seq_net_peers_up(n->net) : 0;
    out->mempool_txs = st.mempool_txs;
    out->mempool_bytes = st.mempool_bytes;
}

/* ---- start ---------------------------------------------------------------------- */

static int load_identity(seq_node *n, const char *config_path, char *err, size_t err_len)
{
    char path[SEQ_PATH_BYTES];
    int rc = seq_config_path(path, sizeof path, config_path, n->cfg.genesis_file);
    if (rc == 0)
        rc = seq_genesis_load(n->genesis, path, err, err_len);
    if (rc == SEQ_ENOTFOUND) {
        size_t used = strlen(err);
        snprintf(err + used, err_len - used,
                 " (copy the network's genesis.json there or set [node] genesis_file; for a local "
                 "network: seqctl testnet --validators 4 --out DIR)");
    }
    if (rc != 0)
        return rc;
    if ((rc = seq_config_path(path, sizeof path, config_path, n->cfg.key_file)) != 0 ||
        (rc = seq_keyfile_load(&n->key, path)) != 0) {
        snprintf(err, err_len, "%s: cannot load the identity key: %s", path, seq_strerror(rc));
        return rc;
    }
    int self = seq_genesis_find(n->genesis, &n->key->pk);
    if (self < 0) {
        char hex[2 * SEQ_PUBKEY_BYTES + 1];
        seq_hex(hex, n->key->pk.b, SEQ_PUBKEY_BYTES);
        snprintf(err, err_len,
                 "our public key %s (from %s) is not a validator in the genesis file %s: "
                 "add it there, or point key_file at a validator's key",
                 hex, path, n->cfg.genesis_file);
        return SEQ_EUNKNOWN_SIGNER;
    }
    n->self = (uint32_t)self;
    return 0;
}

static int open_store(seq_node *n, const char *config_path, char *err, size_t err_len)
{
    char path[SEQ_PATH_BYTES];
    int rc = seq_config_path(path, sizeof path, config_path, n->cfg.data_dir);
    if (rc != 0)
        return rc;
    seq_store_opts opts = {.chain_id = n->genesis->chain_id, .map_bytes = n->cfg.store_map_bytes,
                           .no_sync = !n->cfg.store_durable};
    if ((rc = seq_store_open(&n->store, path, &opts)) != 0) {
        if (rc == SEQ_ECHAIN_ID)
            snprintf(err, err_len,
                     "%s holds the store of another chain than genesis chain_id %llu: "
                     "use a fresh data_dir for this network",
                     path, (unsigned long long)n->genesis->chain_id);
        else if (rc == SEQ_ELOCKED)
            snprintf(err, err_len,
                     "%s is in use by another process (its pid is in %s/writer.lock): "
                     "stop that seqd first, or give this node its own data_dir",
                     path, path);
        else
            snprintf(err, err_len, "%s: cannot open the store: %s", path, seq_strerror(rc));
    }
    return rc;
}

static int start_replica(seq_node *n)
{
    seq_replica_config rc_cfg = {
        .consensus = {.chain_id = n->genesis->chain_id, .validators = &n->genesis->set, .self = n->self,
                      .key = n->key, .view_timeout_ms = n->cfg.view_timeout_ms},
        .mempool = {.txs_max = n->cfg.mempool_txs_max, .bytes_max = n->cfg.mempool_bytes_max,
                    .tx_bytes_max = n->cfg.tx_bytes_max, .namespaces_max = n->cfg.mempool_namespaces_max,
                    .recent_max = n->cfg.mempool_recent_max},
        .block_txs_max = n->cfg.block_txs_max,
        .block_bytes_max = n->cfg.block_bytes_max,
        .store = n->store,
        .empty_block_delay_ms = n->cfg.empty_block_delay_ms,
        .block_interval_min_ms = n->cfg.block_interval_min_ms,
        .tx_ttl_ms = n->cfg.tx_ttl_ms,
        .compact_proposals = n->cfg.compact_proposals,
    };
    seq_replica_io io = {.ctx = n, .send = io_send, .set_timer = io_set_timer, .delivered = io_delivered,
                         .dropped = io_dropped, .fatal = io_fatal};
    return seq_replica_new(&n->replica, &rc_cfg, &io);
}

static int start_net(seq_node *n)
{
    for (uint32_t i = 0; i < n->genesis->n; i++)
        n->addresses[i] = n->genesis->validators[i].address;
    seq_net_config nc = {
        .loop = n->loop, .chain_id = n->genesis->chain_id, .validators = &n->genesis->set,
        .addresses = n->addresses, .self = n->self, .key = n->key, .listen = n->cfg.p2p_listen,
        .frame_bytes_max = n->cfg.p2p_frame_bytes_max, .handshake_timeout_ms = n->cfg.p2p_handshake_timeout_ms,
        .reconnect_min_ms = n->cfg.p2p_reconnect_min_ms, .reconnect_max_ms = n->cfg.p2p_reconnect_max_ms,
        .send_queue_bytes_max = n->cfg.p2p_send_queue_bytes_max,
    };
    seq_net_callbacks cb = {.ctx = n, .on_frame = on_peer_frame, .on_peer = on_peer};
    return seq_net_start(&n->net, &nc, &cb);
}

static int start_api(seq_node *n)
{
    seq_api_config ac = {
        .loop = n->loop, .listen = n->cfg.api_listen, .frame_bytes_max = n->cfg.api_frame_bytes_max,
        .clients_max = n->cfg.api_clients_max, .send_queue_bytes_max = n->cfg.api_send_queue_bytes_max,
        .subscriber_stall_ms = n->cfg.api_subscriber_stall_ms,
        .store = n->store,
        .hooks = {.ctx = n, .tx = NODE_TX_HOOKS,
                  .status = api_status},
    };
    return seq_api_start(&n->api, &ac);
}

static int start_http(seq_node *n)
{
    seq_http_config hc = {
        .loop = n->loop, .listen = n->cfg.http_listen, .clients_max = n->cfg.api_clients_max,
        .header_bytes_max = HTTP_HEADER_BYTES_MAX, .body_bytes_max = n->cfg.api_frame_bytes_max,
        .request_timeout_ms = HTTP_REQUEST_TIMEOUT_MS, .heartbeat_ms = HTTP_HEARTBEAT_MS,
        .send_queue_bytes_max = n->cfg.api_send_queue_bytes_max, .store = n->store,
        .hooks = {.ctx = n, .tx = NODE_TX_HOOKS,
                  .metrics = http_metrics},
    };
    return seq_http_start(&n->http, &hc);
}

static void init_handles(seq_node *n)
{
    uv_timer_init(n->loop, &n->consensus_timer);
    uv_timer_init(n->loop, &n->gossip_timer);
    uv_timer_init(n->loop, &n->sync_timer);
    uv_idle_init(n->loop, &n->continue_idle);
    n->consensus_timer.data = n->gossip_timer.data = n->sync_timer.data = n;
    n->continue_idle.data = n;
    n->handles_open = 4;
}

static void node_free(seq_node *n)
{
    seq_sync_reset(&n->sync);
    seq_replica_free(n->replica);
    seq_txtrack_free(n->txtrack);
    seq_store_close(n->store);
    seq_keypair_free(n->key);
    free(n->genesis);
    free(n);
}

int seq_node_start(seq_node **out, uv_loop_t *loop, const seq_config *cfg, const char *config_path,
                   seq_node_stopped_fn stopped, void *ctx, char *err, size_t err_len)
{
    seq_node *n = calloc(1, sizeof *n);
    if (!n || !(n->genesis = calloc(1, sizeof *n->genesis))) {
        free(n);
        snprintf(err, err_len, "out of memory");
        return SEQ_ENOMEM;
    }
    n->loop = loop;
    n->cfg = *cfg;
    n->stopped = stopped;
    n->stopped_ctx = ctx;
    int rc = load_identity(n, config_path, err, err_len);
    if (rc == 0)
        rc = open_store(n, config_path, err, err_len);
    if (rc == 0 && (rc = seq_txtrack_new(&n->txtrack, TXTRACK_KEYS_MAX, TXTRACK_DROPPED_MAX)) != 0)
        snprintf(err, err_len, "cannot allocate the client key table: %s", seq_strerror(rc));
    if (rc == 0 && (rc = start_replica(n)) != 0)
        snprintf(err, err_len, "cannot restore the consensus from the store: %s", seq_strerror(rc));
    if (rc != 0) {
        node_free(n);
        return rc;
    }
    seq_sync_init(&n->sync, n->genesis->n, n->self, cfg->sync_range_blocks, cfg->sync_ranges_inflight,
                  2ull * cfg->view_timeout_ms + 1000);
    init_handles(n);
    if ((rc = start_net(n)) != 0)
        snprintf(err, err_len, "cannot listen for peers on %s: %s", cfg->p2p_listen, seq_strerror(rc));
    else if ((rc = start_api(n)) != 0)
        snprintf(err, err_len, "cannot listen for clients on %s: %s", cfg->api_listen, seq_strerror(rc));
    else if ((rc = start_http(n)) != 0)
        snprintf(err, err_len, "cannot listen for HTTP on %s ([http] listen): %s", cfg->http_listen,
                 seq_strerror(rc));
    if (rc != 0) {
        n->stopped = NULL;
        seq_node_stop(n, rc); /* frees n once its handles are closed */
        return rc;
    }
    n->tip_seen = store_height(n, NULL);
    n->tip_changed_ms = wall_ms();
    /* A random phase: nodes sharing a machine (a local cluster) do not all
     * write their index batch in the same instant. */
    n->last_index_flush_ms = n->tip_changed_ms - randombytes_uniform(INDEX_FLUSH_MS);
    n->started_ms = uv_now(loop);
    (void)uv_timer_start(&n->gossip_timer, gossip_timer_cb, cfg->gossip_flush_ms, cfg->gossip_flush_ms);
    (void)uv_timer_start(&n->sync_timer, sync_timer_cb, SYNC_TICK_MS, SYNC_TICK_MS);
    SEQ_INFO("node_started", "self=%u name=%s chain_id=%llu height=%llu p2p=%s api=%s http=%s validators=%u",
             n->self, n->genesis->validators[n->self].name, (unsigned long long)n->genesis->chain_id,
             (unsigned long long)n->tip_seen, cfg->p2p_listen, cfg->api_listen, cfg->http_listen, n->genesis->n);
    after_replica(n, seq_replica_start(n->replica, wall_ms()));
    *out = n;
    return 0;
}

/* ---- stop ----------------------------------------------------------------------- */

static void part_closed(void *ctx)
{
    seq_node *n = ctx;
    if (--n->parts_closing > 0)
        return;
    seq_node_stopped_fn stopped = n->stopped;
    void *sctx = n->stopped_ctx;
    int rc = n->stop_rc;
    SEQ_INFO("node_stopped", "height=%llu", (unsigned long long)(n->store ? store_height(n, NULL) : 0));
    node_free(n);
    if (stopped)
        stopped(sctx, rc);
}

static void handle_closed(uv_handle_t *h) { part_closed(h->data); }

void seq_node_stop(seq_node *n, int rc)
{
    if (n->stopping)
        return;
    n->stopping = true;
    n->stop_rc = rc;
    SEQ_INFO("node_stopping", "rc=%d", rc);
    n->parts_closing = n->handles_open + (n->net ? 1 : 0) + (n->api ? 1 : 0) + (n->http ? 1 : 0);
    uv_close((uv_handle_t *)&n->consensus_timer, handle_closed);
    uv_close((uv_handle_t *)&n->gossip_timer, handle_closed);
    uv_close((uv_handle_t *)&n->sync_timer, handle_closed);
    uv_close((uv_handle_t *)&n->continue_idle, handle_closed);
    if (n->api)
        seq_api_close(n->api, part_closed, n);
    if (n->http)
        seq_http_close(n->http, part_closed, n);
    if (n->net)
        seq_net_close(n->net, part_closed, n);
}
