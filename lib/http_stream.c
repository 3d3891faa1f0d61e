/* Server-sent events of one namespace's batches (lib/http.h), the HTTP twin
 * of the API port's subscriptions (lib/api.c): a stream that keeps up gets
 * each finalized block as it is delivered; one whose unsent bytes are over
 * send_queue_bytes_max is skipped then and fed from the store by a catch-up
 * timer once it drained to half, at most CATCHUP_EVENTS_PER_TICK events per
 * stream per tick, so neither a slow reader nor a far-behind one holds the
 * loop (and the consensus on it) for long.
 *
 * An event is "id: <height>\ndata: <batch JSON on one line>\n\n"; a few
 * recent events are cached so that streams of one namespace share the
 * batch's proof, path and encoding. A stream whose queue did not move for a
 * whole heartbeat interval is closed: the client resumes with Last-Event-ID. */
#include "http_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batch_json.h"
#include "errors.h"
#include "log.h"

#define CATCHUP_INTERVAL_MS 2
#define CATCHUP_EVENTS_PER_TICK 32
#define RETRY_MS 1000 /* EventSource's reconnect delay we ask for */

/* ---- events ------------------------------------------------------------------ */

static void event_clear(http_event *e)
{
    free(e->text);
    *e = (http_event){0};
}

void http_events_free(seq_http *h)
{
    for (uint32_t i = 0; i < HTTP_EVENT_CACHE_SLOTS; i++)
        event_clear(&h->events[i]);
}

static int event_format(const seq_batch *b, uint64_t height, char **text, size_t *len)
{
    json_t *j = seq_batch_to_json(b, false);
    char *data = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!data)
        return SEQ_ENOMEM;
    int n = asprintf(text, "id: %" PRIu64 "\ndata: %s\n\n", height, data);
    free(data);
    if (n < 0)
        return SEQ_ENOMEM;
    *len = (size_t)n;
    return 0;
}

/* The event of ns at height: from the cache, else built from block b and
 * cert when given (a live delivery) or from the store. *text is a fresh
 * copy owned by the caller. SEQ_ENOTFOUND above the tip. */
static int event_get(seq_http *h, const seq_block *b, const seq_cert *cert, uint64_t height, seq_ns ns,
                     char **text, size_t *len)
{
    for (uint32_t i = 0; i < HTTP_EVENT_CACHE_SLOTS; i++) {
        const http_event *e = &h->events[i];
        if (e->text && e->height == height && e->ns == ns) {
            if (!(*text = malloc(e->len)))
                return SEQ_ENOMEM;
            memcpy(*text, e->text, e->len);
            *len = e->len;
            return 0;
        }
    }
    seq_batch *batch = NULL;
    int rc = b ? seq_batch_make(h->cfg.store, b, cert, ns, &batch) : seq_batch_load(h->cfg.store, height, ns, &batch);
    if (rc == 0)
        rc = event_format(batch, height, text, len);
    seq_batch_free(batch);
    if (rc || *len > HTTP_EVENT_CACHE_BYTES_MAX)
        return rc;
    http_event *slot = &h->events[h->event_next];
    h->event_next = (h->event_next + 1) % HTTP_EVENT_CACHE_SLOTS;
    event_clear(slot);
    char *copy = malloc(*len);
    if (copy) { /* no room to cache is no error */
        memcpy(copy, *text, *len);
        *slot = (http_event){.height = height, .ns = ns, .text = copy, .len = *len};
    }
    return 0;
}

static int send_event(http_conn *c, const seq_block *b, const seq_cert *cert)
{
    char *text;
    size_t len;
    int rc = event_get(c->srv, b, cert, c->next_height, c->stream_ns, &text, &len);
    if (rc)
        return rc;
    rc = http_write(c, text, len, NULL, 0);
    if (rc == 0) {
        c->next_height++;
        if (b)
            c->srv->events_live++;
        else
            c->srv->events_stored++;
    }
    return rc;
}

/* ---- catching up ------------------------------------------------------------- */

static uint64_t tip_height(seq_http *h)
{
    seq_store_tip tip;
    return seq_store_tip_get(h->cfg.store, &tip) == 0 ? tip.height : 0;
}

static bool lagging(const http_conn *c, uint64_t tip)
{
    return c->streaming && !c->closing && c->next_height <= tip;
}

static bool has_room(const http_conn *c) { return c->queued < c->srv->cfg.send_queue_bytes_max / 2; }

static void catchup_start(seq_http *h)
{
    if (!h->closing && !uv_is_active((uv_handle_t *)&h->catchup))
        (void)uv_timer_start(&h->catchup, http_streams_catchup_cb, CATCHUP_INTERVAL_MS, CATCHUP_INTERVAL_MS);
}

static void stream_fail(http_conn *c, int rc)
{
    SEQ_WARN("http_stream_closed", "ns=%" PRIu64 " height=%" PRIu64 " err=%s", c->stream_ns, c->next_height,
             seq_strerror(rc));
    http_conn_close(c, seq_strerror(rc));
}

static void catchup_one(http_conn *c, uint64_t tip)
{
    for (uint32_t k = 0; k < CATCHUP_EVENTS_PER_TICK && lagging(c, tip) && has_room(c); k++) {
        int rc = send_event(c, NULL, NULL);
        if (rc == SEQ_ENOTFOUND)
            return; /* a path header not stored yet: next tick */
        if (rc) {
            stream_fail(c, rc);
            return;
        }
    }
}

void http_streams_catchup_cb(uv_timer_t *t)
{
    seq_http *h = t->data;
    uint64_t tip = tip_height(h);
    bool any = false;
    for (http_conn *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (!lagging(c, tip))
            continue;
        catchup_one(c, tip);
        any |= lagging(c, tip) && has_room(c); /* a full one restarts the timer when it drains */
    }
    if (!any)
        uv_timer_stop(t);
}

void http_stream_drained(http_conn *c)
{
    if (lagging(c, tip_height(c->srv)) && has_room(c))
        catchup_start(c->srv);
}

void seq_http_delivered(seq_http *h, const seq_block *b, const seq_cert *cert)
{
    bool behind = false;
    for (http_conn *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (!c->streaming || c->closing)
            continue;
        if (c->next_height == b->h.height && c->queued < h->cfg.send_queue_bytes_max) {
            int rc = send_event(c, b, cert);
            if (rc == SEQ_ENOTFOUND)
                behind = true;
            else if (rc)
                stream_fail(c, rc);
        } else if (c->next_height <= b->h.height) {
            behind = true;
        }
    }
    if (behind)
        catchup_start(h);
}

/* ---- lifecycle ---------------------------------------------------------------- */

void http_stream_start(http_conn *c, seq_ns ns, uint64_t from)
{
    seq_http *h = c->srv;
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
                               "Connection: close\r\n\r\n";
    char *text = NULL;
    int n = asprintf(&text, "%sretry: %u\n\n", head, RETRY_MS);
    if (n < 0) {
        http_conn_close(c, "out of memory");
        return;
    }
    h->requests++;
    if (http_write(c, text, (size_t)n, NULL, 0) != 0)
        return;
    c->streaming = true;
    h->stream_count++;
    c->stream_ns = ns;
    c->next_height = from ? from : tip_height(h) + 1;
    c->written_seen = c->written;
    uv_timer_set_repeat(&c->timer, h->cfg.heartbeat_ms);
    (void)uv_timer_again(&c->timer);
    SEQ_INFO("http_stream", "ns=%" PRIu64 " from=%" PRIu64, ns, c->next_height);
    catchup_start(h);
}

void http_stream_tick(http_conn *c)
{
    if (c->queued > 0 && c->written == c->written_seen) {
        SEQ_INFO("http_stream_closed", "ns=%" PRIu64 " height=%" PRIu64 " reason=\"not reading\"", c->stream_ns,
                 c->next_height);
        http_conn_close(c, "stream stalled");
        return;
    }
    c->written_seen = c->written;
    if (http_now_ms() - c->last_send_ms + 5 < c->srv->cfg.heartbeat_ms)
        return;
    static const char beat[] = ": heartbeat\n\n";
    char *text = malloc(sizeof beat - 1);
    if (!text) {
        http_conn_close(c, "out of memory");
        return;
    }
    memcpy(text, beat, sizeof beat - 1);
    (void)http_write(c, text, sizeof beat - 1, NULL, 0);
}
