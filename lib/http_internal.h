/* Shared by the HTTP port's files: lib/http.c (connections, parsing,
 * replies), lib/http_routes.c (the endpoints) and lib/http_stream.c
 * (server-sent events). Not a public interface. */
#ifndef SEQ_HTTP_INTERNAL_H
#define SEQ_HTTP_INTERNAL_H

#include <http_parser.h>
#include <jansson.h>

#include "http.h"

#define HTTP_READ_BUF_BYTES (64u << 10)
#define HTTP_URL_BYTES_MAX 2048u        /* 414 beyond */
#define HTTP_HEADER_NAME_BYTES 32u      /* names we look for are shorter */
#define HTTP_HEADER_VALUE_BYTES 64u     /* values we keep (Last-Event-ID, Expect) */
/* After a closing reply the node shuts its write side and reads (and drops)
 * what the client still sends for this long, so the client reads the reply
 * before the close: closing with unread bytes would reset the connection. */
#define HTTP_LINGER_MS 2000u

#define HTTP_EVENT_CACHE_SLOTS 8         /* (height, ns) events kept for several streams */
#define HTTP_EVENT_CACHE_BYTES_MAX (1u << 20) /* a larger event is built per stream, not kept */

typedef struct http_conn http_conn;

/* One server-sent event of namespace ns at height, as sent. */
typedef struct {
    uint64_t height;
    seq_ns ns;
    char *text;               /* NULL: empty slot */
    size_t len;
} http_event;

struct seq_http {
    seq_http_config cfg;
    uv_tcp_t listener;
    uv_timer_t catchup;       /* feeds lagging streams from the store */
    http_conn *conns;
    uint32_t conn_count;
    uint32_t stream_count;
    uint64_t requests;
    uint64_t events_live, events_stored;
    http_event events[HTTP_EVENT_CACHE_SLOTS];
    uint32_t event_next;      /* slot replaced next */
    uint32_t handles_open;
    bool closing;
    void (*done)(void *ctx);
    void *done_ctx;
    uint8_t read_buf[HTTP_READ_BUF_BYTES];
};

/* Which request header a value belongs to. */
enum { HDR_OTHER, HDR_LAST_EVENT_ID, HDR_EXPECT };

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;         /* request timeout, keep-alive idle, stream heartbeat */
    seq_http *srv;
    http_conn *prev, *next;
    http_parser parser;
    /* the request being read */
    bool in_request;
    int reject_status;        /* set by a parser callback that refused the request */
    char url[HTTP_URL_BYTES_MAX];
    size_t url_len;
    size_t header_bytes;
    char field[HTTP_HEADER_NAME_BYTES];
    size_t field_len;
    int field_kind;           /* HDR_* of the header whose value comes next */
    bool value_started;
    char last_event_id[HTTP_HEADER_VALUE_BYTES];
    size_t last_event_id_len; /* HTTP_HEADER_VALUE_BYTES: too long */
    bool has_last_event_id;
    bool expect_continue;
    uint8_t *body;
    size_t body_len, body_cap;
    bool keep_alive;          /* of the completed request */
    bool head_request;        /* the completed request is a HEAD: no reply body */
    /* output */
    size_t queued;            /* bytes handed to libuv, not yet written */
    uint64_t written;         /* bytes written so far */
    uint64_t written_seen;    /* written at the last timer tick: is the client reading? */
    bool close_after_write;
    bool lingering;           /* reply sent, write side shut: reading until EOF or HTTP_LINGER_MS */
    uv_shutdown_t shutdown;
    bool closing;
    bool reading;
    uint8_t *held;            /* bytes not parsed yet: paused by backpressure */
    size_t held_len;
    /* a stream (after its headers were sent the connection only sends) */
    bool streaming;
    seq_ns stream_ns;
    uint64_t next_height;
    uint64_t last_send_ms;
    uint32_t handles;         /* tcp and timer: freed when both closed */
};

/* One parsed request handed to the router. Pointers valid during the call. */
typedef struct {
    int method;               /* enum http_method */
    const char *path;
    size_t path_len;
    const char *query;        /* NULL when none */
    size_t query_len;
    const char *last_event_id; /* NULL when absent */
    size_t last_event_id_len;
    const uint8_t *body;
    size_t body_len;
} http_request;

/* ---- http.c: replies ---------------------------------------------------------- */

/* Queues head (owned, freed after the write) and body (owned, may be NULL).
 * On failure the connection is closed and both are freed. */
int http_write(http_conn *c, char *head, size_t head_len, char *body, size_t body_len);
/* A whole reply: status line, Content-Type, Content-Length, Connection. */
void http_reply(http_conn *c, int status, const char *content_type, char *body, size_t body_len,
                const char *extra_headers);
/* body is stolen (json_decref'd). Out of memory: a 500 without body. */
void http_reply_json(http_conn *c, int status, json_t *body);
/* {"error": message, "code": status}. */
void http_reply_error(http_conn *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void http_conn_close(http_conn *c, const char *why);
uint64_t http_now_ms(void);

/* ---- http_routes.c ------------------------------------------------------------- */

void http_route(http_conn *c, const http_request *r);

/* ---- http_stream.c ------------------------------------------------------------- */

/* Turns c into a stream of ns from height from (0: the next block). */
void http_stream_start(http_conn *c, seq_ns ns, uint64_t from);
/* The connection timer fired on a stream: heartbeat when idle. */
void http_stream_tick(http_conn *c);
/* A write of c completed: a stream that lagged may be fed again. */
void http_stream_drained(http_conn *c);
void http_streams_catchup_cb(uv_timer_t *t);
/* Frees the event cache (the server is going away). */
void http_events_free(seq_http *h);

#endif
