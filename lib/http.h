/* The node's HTTP/1.1 port, for operators and for rollups in languages
 * without a protobuf client: health, status (JSON), Prometheus metrics, and a
 * JSON mirror of the client API (submit, transaction status, a namespace's
 * batches, and a live stream of them as server-sent events). libuv, on the
 * node's loop; requests are parsed by Debian's http-parser library; JSON is
 * jansson, and a batch is always lib/batch_json.h's one JSON form.
 *
 *   GET  /healthz                              200 {"ok":true}
 *   GET  /status                               node status (JSON)
 *   GET  /metrics                              Prometheus text (lib/metrics.h)
 *   POST /v1/tx                                {"ns":N,"data":"<base64>","client_key":"..."}
 *                                              or {"txs":[{...}, ...]}: per-tx verdicts
 *   GET  /v1/tx/{id}                           transaction status (id: 64 hex)
 *   GET  /v1/tx?client_key=K                   the same, by the key it was submitted with
 *   GET  /v1/blocks/{height}?ns=N              namespace N's batch of that block
 *   GET  /v1/namespaces/{ns}/batches?from=H&limit=L   batches from height H
 *   GET  /v1/namespaces/{ns}/stream?from=H     text/event-stream: one event per height
 *
 * Errors are JSON {"error": "<what was wrong>", "code": <HTTP status>}: 400
 * for a bad parameter, body or malformed request, 404 for an unknown path or
 * height, 405 for a known path with another method, 408 when a request does
 * not arrive within request_timeout_ms, 413 for a body over body_bytes_max,
 * 414/431 for a URL or headers over their bounds, 503 when the connection
 * limit is reached. After a malformed request (and 408, 413, 414, 431) the
 * connection is closed; otherwise it is kept alive as HTTP/1.1 says.
 *
 * Bounds: clients_max connections; per connection one request's URL, headers
 * and body, and send_queue_bytes_max of unsent replies (past it the node
 * stops reading that connection's further requests until it drains).
 *
 * Streams behave as the API port's subscriptions (lib/api.h): one event per
 * finalized height from the requested one on, empty batches included, "id:"
 * the height (a client resumes with Last-Event-ID), a comment line every
 * heartbeat_ms while idle. A stream that keeps up is fed as blocks finalize;
 * one that falls behind (its queue over the bound) is served from the store
 * once it drains, so a slow reader costs at most send_queue_bytes_max and
 * never blocks consensus. */
#ifndef SEQ_HTTP_H
#define SEQ_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "assert.h"
#include "metrics.h"
#include "store.h"
#include "txhooks.h"
#include "types.h"

/* What the port needs of the node. Every hook runs on the loop's thread. */
typedef struct {
    void *ctx;
    seq_tx_hooks tx;
    /* Everything /status and /metrics show; http_* fields are filled by the
     * port itself afterwards. */
    void (*metrics)(void *ctx, seq_metrics *out);
} seq_http_hooks;

typedef struct {
    uv_loop_t *loop;
    const char *listen;           /* "host:port" */
    uint32_t clients_max;         /* connections; one more gets 503 and is closed */
    uint32_t header_bytes_max;    /* request line and headers (431 / 414 beyond) */
    uint32_t body_bytes_max;      /* request body (413 beyond) */
    uint32_t request_timeout_ms;  /* a request must arrive within this; also the keep-alive idle limit */
    uint32_t heartbeat_ms;        /* comment line on an idle stream */
    size_t send_queue_bytes_max;  /* unsent bytes per connection */
    seq_store *store;             /* borrowed, open for the port's lifetime */
    seq_http_hooks hooks;
} seq_http_config;

typedef struct seq_http seq_http;

/* Binds and listens. SEQ_EADDR (unparsable address), SEQ_EIO (bind or listen
 * failed; logged with the address), SEQ_EINVAL (a zero bound), SEQ_ENOMEM.
 * *out is owned by the caller: seq_http_close. */
int seq_http_start(seq_http **out, const seq_http_config *cfg) SEQ_MUST_CHECK;

/* The port bound (useful with port 0 in tests). */
uint16_t seq_http_port(const seq_http *h);

/* A block was finalized and stored: feeds the streams that are caught up. */
void seq_http_delivered(seq_http *h, const seq_block *b, const seq_cert *cert);

typedef struct {
    uint32_t connections;
    uint32_t streams;
    uint64_t requests;            /* answered since start */
    uint64_t events_live;         /* stream events sent as their block was delivered */
    uint64_t events_stored;       /* stream events read back from the store */
} seq_http_stats;

void seq_http_stats_get(const seq_http *h, seq_http_stats *out);

/* Stops listening and closes every connection; done(ctx) once every handle
 * is closed and h is freed. */
void seq_http_close(seq_http *h, void (*done)(void *ctx), void *ctx);

#endif
