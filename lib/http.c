/* The HTTP port's transport (lib/http.h): listener, connections, request
 * parsing with http-parser, replies, timeouts and backpressure.
 *
 * Happy path of a request: read_cb hands the bytes to feed(); http-parser
 * calls the on_* callbacks, which keep the URL, the two headers we use and
 * the body, each within its bound; on_message_complete pauses the parser, so
 * feed() dispatches exactly one request to the router (lib/http_routes.c)
 * before parsing the next pipelined one. A connection whose unsent replies
 * exceed send_queue_bytes_max keeps its unparsed bytes and is not read until
 * the queue drains to half. A refused request (413, 414, 431, garbage) gets
 * its reply and the connection closes: the stream cannot be trusted after. */
#include "http_internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "addr.h"
#include "errors.h"
#include "log.h"

#define BODY_CAP_MIN 4096u

typedef struct {
    uv_write_t req;
    http_conn *c;
    size_t len;
    char *head;
    char *body;
} write_req;

static void conn_maybe_resume(http_conn *c);
static void feed(http_conn *c, const uint8_t *data, size_t len);
static void linger(http_conn *c);

uint64_t http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: SEQ_UNREACHABLE(); return "";
    }
}

/* ---- writing ----------------------------------------------------------------- */

static void write_cb(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    http_conn *c = w->c;
    c->queued -= w->len;
    c->written += w->len;
    free(w->head);
    free(w->body);
    free(w);
    if (status < 0) {
        http_conn_close(c, uv_strerror(status));
        return;
    }
    if (c->close_after_write && c->queued == 0) {
        linger(c);
        return;
    }
    if (c->streaming)
        http_stream_drained(c);
    else
        conn_maybe_resume(c);
}

int http_write(http_conn *c, char *head, size_t head_len, char *body, size_t body_len)
{
    write_req *w = c->closing ? NULL : malloc(sizeof *w);
    if (!w) {
        free(head);
        free(body);
        if (!c->closing)
            http_conn_close(c, "out of memory");
        return c->closing ? SEQ_ECLOSED : SEQ_ENOMEM;
    }
    *w = (write_req){.c = c, .len = head_len + body_len, .head = head, .body = body};
    uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)head_len), uv_buf_init(body, (unsigned)body_len)};
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, body_len ? 2 : 1, write_cb);
    if (rc < 0) {
        free(head);
        free(body);
        free(w);
        http_conn_close(c, uv_strerror(rc));
        return SEQ_EIO;
    }
    c->queued += w->len;
    c->last_send_ms = http_now_ms();
    return 0;
}

void http_reply(http_conn *c, int status, const char *content_type, char *body, size_t body_len,
                const char *extra_headers)
{
    c->srv->requests++;
    if (!c->keep_alive)
        c->close_after_write = true;
    char *head = NULL;
    int n = asprintf(&head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
                     "%sConnection: %s\r\n\r\n",
                     status, status_text(status), content_type, body_len, extra_headers ? extra_headers : "",
                     c->close_after_write ? "close" : "keep-alive");
    if (n < 0) {
        free(body);
        http_conn_close(c, "out of memory");
        return;
    }
    if (c->head_request) { /* the length is announced, the body never sent */
        free(body);
        body = NULL;
        body_len = 0;
    }
    (void)http_write(c, head, (size_t)n, body, body_len);
}

void http_reply_json(http_conn *c, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        c->close_after_write = true;
        http_reply(c, 500, "application/json", NULL, 0, NULL);
        return;
    }
    http_reply(c, status, "application/json", text, strlen(text), NULL);
}

void http_reply_error(http_conn *c, int status, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    SEQ_DEBUG("http_refused", "status=%d error=\"%s\"", status, msg);
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "error", json_string(msg));
        json_object_set_new(o, "code", json_integer(status));
    }
    http_reply_json(c, status, o);
}

/* A request the parser or its bounds refused: reply and close. */
static void reject(http_conn *c, int status, const char *what)
{
    c->close_after_write = true;
    http_reply_error(c, status, "%s", what);
}

/* ---- parser callbacks -------------------------------------------------------- */

static http_conn *conn_of(http_parser *p) { return p->data; }

static int refuse(http_conn *c, int status)
{
    c->reject_status = status;
    return -1;
}

static bool header_budget(http_conn *c, size_t len)
{
    c->header_bytes += len;
    return c->header_bytes <= c->srv->cfg.header_bytes_max;
}

static int on_message_begin(http_parser *p)
{
    http_conn *c = conn_of(p);
    c->in_request = true;
    c->head_request = false;
    c->url_len = c->header_bytes = c->field_len = c->body_len = 0;
    c->field_kind = HDR_OTHER;
    c->value_started = false;
    c->has_last_event_id = c->expect_continue = false;
    c->last_event_id_len = 0;
    (void)uv_timer_again(&c->timer);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn *c = conn_of(p);
    if (!header_budget(c, len) || c->url_len + len >= HTTP_URL_BYTES_MAX)
        return refuse(c, c->url_len + len >= HTTP_URL_BYTES_MAX ? 414 : 431);
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn *c = conn_of(p);
    if (!header_budget(c, len))
        return refuse(c, 431);
    if (c->value_started) { /* a new header begins */
        c->value_started = false;
        c->field_len = 0;
    }
    size_t room = HTTP_HEADER_NAME_BYTES - 1 - c->field_len;
    size_t k = len < room ? len : room;
    memcpy(c->field + c->field_len, at, k);
    c->field_len += k;
    c->field[c->field_len] = '\0';
    if (len > room)
        c->field[0] = '\0'; /* too long for any name we look for */
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn *c = conn_of(p);
    if (!header_budget(c, len))
        return refuse(c, 431);
    if (!c->value_started) {
        c->value_started = true;
        c->field_kind = strcasecmp(c->field, "Last-Event-ID") == 0 ? HDR_LAST_EVENT_ID
                        : strcasecmp(c->field, "Expect") == 0      ? HDR_EXPECT
                                                                   : HDR_OTHER;
        if (c->field_kind == HDR_LAST_EVENT_ID) {
            if (c->has_last_event_id)
                return refuse(c, 400); /* two of them: which one? */
            c->has_last_event_id = true;
            c->last_event_id_len = 0;
        }
        if (c->field_kind == HDR_EXPECT)
            c->expect_continue = len >= 12 && strncasecmp(at, "100-continue", 12) == 0;
    }
    if (c->field_kind == HDR_LAST_EVENT_ID) {
        size_t room = HTTP_HEADER_VALUE_BYTES - c->last_event_id_len;
        if (len > room) {
            c->last_event_id_len = HTTP_HEADER_VALUE_BYTES; /* too long: refused by the route */
        } else {
            memcpy(c->last_event_id + c->last_event_id_len, at, len);
            c->last_event_id_len += len;
        }
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_conn *c = conn_of(p);
    if (p->content_length != ULLONG_MAX && p->content_length > c->srv->cfg.body_bytes_max)
        return refuse(c, 413);
    if (c->expect_continue && p->content_length != ULLONG_MAX && p->content_length > 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        char *msg = malloc(sizeof cont - 1);
        if (msg) {
            memcpy(msg, cont, sizeof cont - 1);
            (void)http_write(c, msg, sizeof cont - 1, NULL, 0);
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_conn *c = conn_of(p);
    size_t max = c->srv->cfg.body_bytes_max;
    if (len > max - c->body_len)
        return refuse(c, 413); /* a chunked body past the bound */
    if (c->body_len + len > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : BODY_CAP_MIN;
        while (cap < c->body_len + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        uint8_t *grown = realloc(c->body, cap);
        if (!grown)
            return refuse(c, 500);
        c->body = grown;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn *c = conn_of(p);
    c->keep_alive = http_should_keep_alive(p) != 0 && !p->upgrade; /* no protocol switch here */
    c->head_request = p->method == HTTP_HEAD;
    http_parser_pause(p, 1); /* feed() dispatches this request before the next */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- requests ---------------------------------------------------------------- */

static void dispatch(http_conn *c)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (c->url_len == 0 || c->url[0] != '/' || http_parser_parse_url(c->url, c->url_len, 0, &u) != 0 ||
        (u.field_set & (1u << UF_FRAGMENT))) {
        reject(c, 400, "bad request target (want /path?query)");
        return;
    }
    http_request r = {.method = c->parser.method,
                      .path = c->url + u.field_data[UF_PATH].off,
                      .path_len = u.field_data[UF_PATH].len,
                      .body = c->body,
                      .body_len = c->body_len};
    if (u.field_set & (1u << UF_QUERY)) {
        r.query = c->url + u.field_data[UF_QUERY].off;
        r.query_len = u.field_data[UF_QUERY].len;
    }
    if (c->has_last_event_id) {
        r.last_event_id = c->last_event_id;
        r.last_event_id_len = c->last_event_id_len;
    }
    http_route(c, &r);
}

/* After one request: its body goes, and the idle timer starts again. */
static void request_done(http_conn *c)
{
    c->in_request = false;
    free(c->body);
    c->body = NULL;
    c->body_len = c->body_cap = 0;
    if (!c->closing && !c->streaming)
        (void)uv_timer_again(&c->timer);
}

static int parse_error_status(http_conn *c)
{
    if (c->reject_status)
        return c->reject_status;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    return e == HPE_HEADER_OVERFLOW ? 431 : 400;
}

static const char *reject_text(int status)
{
    switch (status) {
    case 413: return "request body too large";
    case 414: return "request URL too long";
    case 431: return "request headers too large";
    case 500: return "out of memory";
    default: return "malformed HTTP request";
    }
}

static bool hold(http_conn *c, const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len);
    if (!copy) {
        http_conn_close(c, "out of memory");
        return false;
    }
    memcpy(copy, data, len);
    c->held = copy;
    c->held_len = len;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    return true;
}

/* Parses and dispatches what arrived, one request at a time. */
static void feed(http_conn *c, const uint8_t *data, size_t len)
{
    while (len > 0 && !c->closing && !c->streaming && !c->close_after_write) {
        size_t used = http_parser_execute(&c->parser, &parser_settings, (const char *)data, len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            int status = parse_error_status(c);
            SEQ_DEBUG("http_bad_request", "status=%d parser=\"%s\"", status, http_errno_name(e));
            reject(c, status, reject_text(status));
            return;
        }
        data += used;
        len -= used;
        if (e == HPE_OK)
            return; /* all consumed, the request (if any) is incomplete */
        http_parser_pause(&c->parser, 0);
        dispatch(c);
        request_done(c);
        if (len > 0 && !c->closing && c->queued > c->srv->cfg.send_queue_bytes_max) {
            (void)hold(c, data, len); /* backpressure: parse the rest once replies drain */
            return;
        }
    }
}

/* ---- connections ------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    http_conn *c = h->data;
    *buf = uv_buf_init((char *)c->srv->read_buf, HTTP_READ_BUF_BYTES);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    http_conn *c = s->data;
    if (nread < 0) {
        http_conn_close(c, nread == UV_EOF ? "client closed" : uv_strerror((int)nread));
        return;
    }
    if (c->streaming || c->close_after_write)
        return; /* a stream only sends; after a refusal nothing more is read */
    feed(c, (const uint8_t *)buf->base, (size_t)nread);
}

static void conn_maybe_resume(http_conn *c)
{
    if (c->closing || c->reading || c->streaming || c->close_after_write ||
        c->queued > c->srv->cfg.send_queue_bytes_max / 2)
        return;
    if (c->held) {
        uint8_t *held = c->held;
        size_t n = c->held_len;
        c->held = NULL;
        c->held_len = 0;
        feed(c, held, n);
        free(held);
        if (c->closing || c->held || c->streaming || c->close_after_write)
            return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
        c->reading = true;
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    http_conn *c = req->data;
    if (status < 0 && status != UV_ECANCELED)
        http_conn_close(c, uv_strerror(status));
}

/* The last reply is written: shut the write side, drop what still comes
 * until the client closes or HTTP_LINGER_MS pass (timer_cb). */
static void linger(http_conn *c)
{
    if (c->lingering || c->closing)
        return;
    c->lingering = true;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, shutdown_cb) != 0) {
        http_conn_close(c, "shutdown failed");
        return;
    }
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
        c->reading = true;
    uv_timer_set_repeat(&c->timer, HTTP_LINGER_MS);
    (void)uv_timer_again(&c->timer);
}

static void timer_cb(uv_timer_t *t)
{
    http_conn *c = t->data;
    if (c->closing)
        return;
    if (c->lingering) {
        http_conn_close(c, "reply sent, closing");
    } else if (c->streaming) {
        http_stream_tick(c);
    } else if (c->in_request) {
        reject(c, 408, "request not received in time");
    } else if (c->queued > 0 && c->written != c->written_seen) {
        c->written_seen = c->written; /* a slow reader, but it reads */
    } else {
        http_conn_close(c, c->queued > 0 ? "replies not read in time" : "idle");
    }
}

static void srv_maybe_done(seq_http *h)
{
    if (h->closing && h->handles_open == 0 && h->conns == NULL) {
        void (*done)(void *) = h->done;
        void *ctx = h->done_ctx;
        http_events_free(h);
        free(h);
        if (done)
            done(ctx);
    }
}

static void conn_handle_closed(uv_handle_t *handle)
{
    http_conn *c = handle->data;
    if (--c->handles > 0)
        return;
    seq_http *h = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->conn_count--;
    free(c->body);
    free(c->held);
    free(c);
    srv_maybe_done(h);
}

void http_conn_close(http_conn *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->streaming)
        c->srv->stream_count--;
    SEQ_DEBUG("http_closed", "reason=\"%s\"", why);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void connection_cb(uv_stream_t *server, int status)
{
    seq_http *h = server->data;
    if (status < 0 || h->closing)
        return;
    http_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = h;
    c->tcp.data = c->timer.data = c->parser.data = c;
    c->keep_alive = true;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_tcp_init(h->cfg.loop, &c->tcp);
    uv_timer_init(h->cfg.loop, &c->timer);
    c->handles = 2;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->conn_count++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        http_conn_close(c, "accept failed");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    (void)uv_timer_start(&c->timer, timer_cb, h->cfg.request_timeout_ms, h->cfg.request_timeout_ms);
    if (h->conn_count > h->cfg.clients_max) {
        SEQ_WARN("http_refused", "reason=too_many_clients max=%u", h->cfg.clients_max);
        reject(c, 503, "too many connections; retry later");
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
        c->reading = true;
}

/* ---- server ------------------------------------------------------------------ */

int seq_http_start(seq_http **out, const seq_http_config *cfg)
{
    SEQ_ASSERT(out && cfg && cfg->loop && cfg->store && cfg->hooks.tx.submit && cfg->hooks.tx.tx_fate &&
               cfg->hooks.metrics);
    if (!cfg->clients_max || !cfg->header_bytes_max || !cfg->body_bytes_max || !cfg->request_timeout_ms ||
        !cfg->heartbeat_ms || !cfg->send_queue_bytes_max)
        return SEQ_EINVAL;
    struct sockaddr_storage addr;
    if (seq_addr_resolve(cfg->listen, &addr) != 0) {
        SEQ_ERROR("http_listen", "addr=%s err=%s", cfg->listen, seq_strerror(SEQ_EADDR));
        return SEQ_EADDR;
    }
    seq_http *h = calloc(1, sizeof *h);
    if (!h)
        return SEQ_ENOMEM;
    h->cfg = *cfg;
    uv_tcp_init(cfg->loop, &h->listener);
    uv_timer_init(cfg->loop, &h->catchup);
    h->listener.data = h->catchup.data = h;
    h->handles_open = 2;
    int rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->listener, 128, connection_cb);
    if (rc != 0) {
        SEQ_ERROR("http_listen", "addr=%s err=\"%s\"", cfg->listen, uv_strerror(rc));
        seq_http_close(h, NULL, NULL);
        return SEQ_EIO;
    }
    *out = h;
    return 0;
}

uint16_t seq_http_port(const seq_http *h)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void seq_http_stats_get(const seq_http *h, seq_http_stats *out)
{
    out->connections = h->conn_count;
    out->streams = h->stream_count;
    out->requests = h->requests;
    out->events_live = h->events_live;
    out->events_stored = h->events_stored;
}

static void srv_handle_closed(uv_handle_t *handle)
{
    seq_http *h = handle->data;
    h->handles_open--;
    srv_maybe_done(h);
}

void seq_http_close(seq_http *h, void (*done)(void *ctx), void *ctx)
{
    h->closing = true;
    h->done = done;
    h->done_ctx = ctx;
    for (http_conn *c = h->conns; c; c = c->next)
        http_conn_close(c, "node stopping");
    uv_close((uv_handle_t *)&h->listener, srv_handle_closed);
    uv_close((uv_handle_t *)&h->catchup, srv_handle_closed);
}
