/* The subscription thread of lib/substream.h: its own libuv loop, an inbox
 * of adopted sockets and the latest tip (guarded by a mutex, announced with a
 * uv_async), the subscribers, and the batch cache they share. */
#include "substream.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "batchcache.h"
#include "client.h"
#include "bytes.h"
#include "errors.h"
#include "log.h"
#include "seq.pb-c.h"
#include "wire.h"

#define TICK_MS 2                  /* catch-up pace while a subscriber is behind */
#define CATCHUP_BLOCKS_PER_TICK 32 /* heights per subscriber per tick */
#define MERGE_HEIGHTS 256          /* a subscriber this close behind another catches up to it */
#define WRITE_BYTES_MAX (256u << 10) /* frames gathered into one write */
#define READ_BYTES 4096            /* what an adopted socket's reads go into */
#define REQUEST_BYTES_MAX (64u << 10) /* a request on a subscribed connection, at most */
#define SUBSCRIBER_NICE 10         /* below the node's loop, above the tx index writer (19) */
#define FRESH_MAX 64               /* delivered blocks waiting for the stream thread (and a byte bound) */
#define HEARTBEAT_HOLD_MS 50       /* empty batches wait this long for company */

typedef struct sub sub;
typedef struct write_req write_req;

struct sub {
    uv_tcp_t tcp;
    seq_substream *s;
    sub *prev, *next;
    size_t queued;            /* bytes handed to libuv, not yet written */
    bool closing;
    uint64_t request_id;
    uint64_t next_height;
    uint64_t last_written_ms; /* loop time a write last completed */
    seq_framer framer;        /* requests sent after subscribing: refused */
    write_req *out;           /* frames gathered, not yet handed to libuv */
    uint64_t out_since_ms;    /* loop time the first of them was gathered */
    bool out_has_txs;         /* one of them carries transactions */
    uint64_t sweep_end;       /* height this sweep stops before (sweep_plan) */
    uint32_t ns_count;
    seq_ns ns[SEQ_CLIENT_SUBSCRIBE_NS_MAX];
};

/* An adoption waiting in the inbox. */
typedef struct adopt {
    struct adopt *next;
    int fd;
    uint64_t request_id;
    uint64_t next_height;
    uint32_t ns_count;
    seq_ns ns[SEQ_CLIENT_SUBSCRIBE_NS_MAX];
} adopt;

struct seq_substream {
    seq_substream_config cfg;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    seq_batch_cache *cache;
    sub *subs;
    sub **heap; /* the sweep's, grown to the number of subscribers */
    size_t heap_cap;
    uint64_t tip;             /* stream thread's view of the store's height */
    /* shared with the node's thread, under lock */
    uv_mutex_t lock;
    adopt *inbox;
    uint64_t tip_in;
    seq_block *fresh[FRESH_MAX]; /* delivered blocks not yet taken by the stream thread */
    seq_cert fresh_cert[FRESH_MAX];
    uint32_t fresh_count;
    size_t fresh_bytes;
    bool stopping;
    /* read by the node's thread */
    atomic_uint count;
    atomic_ullong slow;
    uint8_t read_buf[READ_BYTES];
};

/* One write: several frames back to back in one buffer, so a subscriber
 * that is sent many heights at once costs one syscall, not one per batch (on
 * loopback each write also runs the receiver's TCP processing). */
struct write_req {
    uv_write_t req;
    sub *c;
    size_t len, cap;
    uint8_t *data;
};

static void sub_close(sub *c, const char *why);
static void tick_cb(uv_timer_t *t);
static bool lagging(const sub *c);
static void tick_arm(seq_substream *s);
static bool has_room(const sub *c);

/* ---- writing ------------------------------------------------------------------ */

static void write_req_free(write_req *w)
{
    if (w) {
        free(w->data);
        free(w);
    }
}

static void write_cb(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    sub *c = w->c;
    c->queued -= w->len;
    c->last_written_ms = uv_now(&c->s->loop);
    write_req_free(w);
    if (status < 0)
        sub_close(c, uv_strerror(status));
    else if (lagging(c))
        tick_arm(c->s); /* its next heights go with everyone else's */
}

static size_t varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* Appends one frame to *wp (created on first use): for a batch, the cached
 * NamespaceBatch bytes inside a ClientResponse envelope written by hand
 * (field 1 request_id, field 3 batch), so S subscribers of one batch cost S
 * copies, not S encodings; otherwise body is a whole ClientResponse. */
static int frame_append(sub *c, write_req **wp, const uint8_t *body, size_t len, bool is_batch)
{
    uint8_t head[1 + 10 + 1 + 10];
    size_t h = 0;
    if (is_batch) {
        head[h++] = 0x08; /* ClientResponse.request_id, varint */
        h += varint_put(head + h, c->request_id);
        head[h++] = 0x1a; /* ClientResponse.batch, length-delimited */
        h += varint_put(head + h, len);
    }
    size_t n = h + len;
    if (n > SEQ_CLIENT_FRAME_BYTES_MAX)
        return SEQ_ETOOBIG;
    write_req *w = *wp;
    if (!w && !(w = *wp = calloc(1, sizeof *w)))
        return SEQ_ENOMEM;
    size_t need = w->len + SEQ_FRAME_HEADER_BYTES + n;
    if (seq_bytes_reserve(&w->data, &w->cap, need, 4096) != 0)
        return SEQ_ENOMEM;
    uint8_t *out = w->data + w->len;
    seq_frame_header(out, (uint32_t)n);
    memcpy(out + SEQ_FRAME_HEADER_BYTES, head, h);
    memcpy(out + SEQ_FRAME_HEADER_BYTES + h, body, len);
    w->len = need;
    return 0;
}

/* Hands the frames gathered in w to libuv as one write (w may be NULL). */
static int frames_send(sub *c, write_req *w)
{
    if (!w || w->len == 0) {
        write_req_free(w);
        return 0;
    }
    if (c->closing) {
        write_req_free(w);
        return SEQ_ECLOSED;
    }
    w->c = c;
    uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, write_cb);
    if (rc < 0) {
        write_req_free(w);
        sub_close(c, uv_strerror(rc));
        return SEQ_EIO;
    }
    c->queued += w->len;
    return 0;
}

/* An Error frame: why a subscriber is cut off (best effort: it may not read),
 * or why a request on a subscribed connection is refused. */
static void send_error(sub *c, uint64_t request_id, int err, const char *what)
{
    Seq__Error e = SEQ__ERROR__INIT;
    e.code = (uint32_t)-err;
    e.message = (char *)what;
    Seq__ClientResponse resp = SEQ__CLIENT_RESPONSE__INIT;
    resp.request_id = request_id;
    resp.body_case = SEQ__CLIENT_RESPONSE__BODY_ERROR;
    resp.error = &e;
    uint8_t buf[512];
    size_t n = seq__client_response__get_packed_size(&resp);
    write_req *w = NULL;
    if (n <= sizeof buf) {
        seq__client_response__pack(&resp, buf);
        if (frame_append(c, &w, buf, n, false) == 0) {
            (void)frames_send(c, w);
            return;
        }
    }
    write_req_free(w);
}

/* ---- serving ------------------------------------------------------------------ */

static bool lagging(const sub *c)
{
    return !c->closing && c->next_height <= c->s->tip;
}

/* Every subscribed namespace's batch of the subscriber's next height, into
 * w, or none of them. SEQ_ENOTFOUND: the height is announced but neither
 * adopted nor stored yet (the node delivers a finalized block before its own
 * commit; section 9 of docs/design.md): not an error, the tick tries again. */
static int append_height(sub *c, write_req **w)
{
    size_t mark = *w ? (*w)->len : 0;
    uint32_t txs = 0;
    for (uint32_t i = 0; i < c->ns_count; i++) {
        const uint8_t *bytes;
        size_t len;
        uint32_t n = 0;
        int rc = seq_batch_cache_get(c->s->cache, c->next_height, c->ns[i], &bytes, &len, &n);
        if (rc == 0)
            rc = frame_append(c, w, bytes, len, true);
        if (rc) {
            if (*w)
                (*w)->len = mark; /* never half a height */
            return rc;
        }
        txs += n;
    }
    if (mark == 0)
        c->out_since_ms = uv_now(&c->s->loop);
    c->out_has_txs |= txs > 0;
    c->next_height++;
    return 0;
}

/* Gathered frames go out at once when one carries transactions; frames of
 * only empty batches (heartbeats: this height had nothing for the
 * subscriber) wait up to HEARTBEAT_HOLD_MS to share a write with the next
 * ones. A subscriber of an idle namespace then costs a write (and a wakeup
 * of its reader) per 50 ms instead of per height: with 200 subscriptions at
 * ~150 heights/s, the per-height writes were most of what serving them cost.
 * Transactions are never held back, and every height still arrives in
 * order, so silence stays distinguishable from loss. */
static void out_flush(sub *c, uint64_t now)
{
    if (!c->out)
        return;
    if (!c->out_has_txs && now < c->out_since_ms + HEARTBEAT_HOLD_MS && has_room(c))
        return;
    write_req *w = c->out;
    c->out = NULL;
    c->out_has_txs = false;
    (void)frames_send(c, w); /* complete heights only */
}

/* Room left in a subscriber's send queue, counting what this sweep has
 * gathered for it: a sweep stops adding to it at half the queue's bound. */
static bool has_room(const sub *c)
{
    size_t gathered = c->out ? c->out->len : 0;
    return c->queued + gathered < c->s->cfg.send_queue_bytes_max / 2 && gathered < WRITE_BYTES_MAX;
}

static bool servable(const sub *c) { return lagging(c) && has_room(c); }

/* ---- the sweep: subscribers behind, served in height order ----------------------- */

/* A binary min-heap of subscribers by next height (an array sorted by it is
 * one already). */
static void heap_swap(sub **h, size_t i, size_t j)
{
    sub *t = h[i];
    h[i] = h[j];
    h[j] = t;
}

static void heap_push(sub **h, size_t *n, sub *c)
{
    size_t i = (*n)++;
    h[i] = c;
    for (; i > 0 && h[(i - 1) / 2]->next_height > h[i]->next_height; i = (i - 1) / 2)
        heap_swap(h, i, (i - 1) / 2);
}

static sub *heap_pop(sub **h, size_t *n)
{
    sub *top = h[0];
    h[0] = h[--*n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && h[l]->next_height < h[m]->next_height)
            m = l;
        if (r < *n && h[r]->next_height < h[m]->next_height)
            m = r;
        if (m == i)
            break;
        heap_swap(h, i, m);
        i = m;
    }
    return top;
}

static int by_next_height(const void *a, const void *b)
{
    uint64_t x = (*(sub *const *)a)->next_height, y = (*(sub *const *)b)->next_height;
    return (x > y) - (x < y);
}

/* The servable subscribers, sorted by next height, into s->heap, each with
 * the height its sweep ends before: CATCHUP_BLOCKS_PER_TICK past the highest
 * of its cluster (subscribers each at most MERGE_HEIGHTS below the next).
 * One sweep so brings a cluster to one height, and from then on its members
 * share every block read; a subscriber far from all others (a replay from
 * an old height) neither holds them back nor is held back by them. */
static int sweep_plan(seq_substream *s, size_t *n)
{
    size_t count = 0;
    for (sub *c = s->subs; c; c = c->next)
        count++;
    if (count > s->heap_cap) {
        sub **grown = realloc(s->heap, count * sizeof *grown);
        if (!grown)
            return SEQ_ENOMEM;
        s->heap = grown;
        s->heap_cap = count;
    }
    *n = 0;
    for (sub *c = s->subs; c; c = c->next)
        if (servable(c))
            s->heap[(*n)++] = c;
    qsort(s->heap, *n, sizeof *s->heap, by_next_height);
    uint64_t top = 0;
    for (size_t i = *n; i-- > 0;) {
        sub *c = s->heap[i];
        if (i + 1 == *n || s->heap[i + 1]->next_height - c->next_height > MERGE_HEIGHTS)
            top = c->next_height;
        c->sweep_end = top + CATCHUP_BLOCKS_PER_TICK;
    }
    return 0;
}

/* Serves the subscribers behind the tip as sweep_plan says, one height at a
 * time in height order across all of them: a block (and, from the store, its
 * decode) serves every subscriber at that height together. Serving each
 * subscriber its own run of heights read a block once per subscriber: with
 * 50 subscribers behind, 50 reads, decodes and tree builds of every block,
 * which under load took CPU consensus needed. A subscriber's
 * heights go out in one write as the sweep ends. Bounded: each subscriber
 * gets at most its cluster's spread plus CATCHUP_BLOCKS_PER_TICK heights, and
 * what fits half its send queue. */
static void sweep(seq_substream *s)
{
    size_t n;
    if (sweep_plan(s, &n) != 0)
        return; /* out of memory: the tick tries again */
    uint64_t missing = UINT64_MAX; /* announced, not yet stored: nor is any above */
    while (n > 0) {
        sub *c = heap_pop(s->heap, &n);
        if (c->next_height >= missing)
            continue;
        int rc = append_height(c, &c->out);
        if (rc == SEQ_ENOTFOUND) {
            missing = c->next_height;
        } else if (rc) {
            write_req_free(c->out);
            c->out = NULL;
            c->out_has_txs = false;
            sub_close(c, seq_strerror(rc));
        } else if (c->next_height < c->sweep_end && servable(c)) {
            heap_push(s->heap, &n, c);
        }
    }
    uint64_t now = uv_now(&s->loop);
    for (sub *c = s->subs; c; c = c->next)
        out_flush(c, now);
}

/* The tick runs every TICK_MS while a subscriber is behind (catch-up pace),
 * every HEARTBEAT_HOLD_MS / 2 while heartbeats are only held (new heights
 * flush them too; the tick covers a quiet chain), and not at all otherwise:
 * a 2 ms tick for held heartbeats alone cost a context switch every 2 ms. */
static void tick_arm(seq_substream *s)
{
    uint64_t period = 0;
    for (sub *c = s->subs; c && period != TICK_MS; c = c->next)
        if (lagging(c))
            period = TICK_MS;
        else if (c->out)
            period = HEARTBEAT_HOLD_MS / 2;
    if (period == 0) {
        uv_timer_stop(&s->tick);
        return;
    }
    if (!uv_is_active((uv_handle_t *)&s->tick) || uv_timer_get_repeat(&s->tick) != period)
        (void)uv_timer_start(&s->tick, tick_cb, period, period);
}

/* A lagging subscriber none of whose queued bytes went out for stall_ms
 * (the kernel's buffers are full: it does not read) is told why and cut off;
 * it can resume from its last height. */
static void check_stalled(sub *c, uint64_t now)
{
    seq_substream *s = c->s;
    if (s->cfg.stall_ms == 0 || c->queued == 0 || now < c->last_written_ms + s->cfg.stall_ms)
        return;
    char why[160];
    snprintf(why, sizeof why, "subscriber read nothing for %u ms with %zu bytes queued; resume from height %llu",
             s->cfg.stall_ms, c->queued, (unsigned long long)c->next_height);
    SEQ_WARN("api_subscriber_slow", "queued=%zu next_height=%llu", c->queued, (unsigned long long)c->next_height);
    atomic_fetch_add(&s->slow, 1);
    send_error(c, c->request_id, SEQ_ESLOW, why);
    sub_close(c, why);
}

static void tick_cb(uv_timer_t *t)
{
    seq_substream *s = t->data;
    uint64_t now = uv_now(&s->loop);
    sweep(s);
    for (sub *c = s->subs, *next; c; c = next) {
        next = c->next;
        if (lagging(c))
            check_stalled(c, now);
    }
    tick_arm(s);
}

/* A new tip, or new subscribers: serve now, and keep the tick going while
 * anyone is behind or has heartbeats held. */
static void serve_all(seq_substream *s)
{
    sweep(s);
    tick_arm(s);
}

/* ---- subscribers ----------------------------------------------------------------- */

static void sub_closed_cb(uv_handle_t *h)
{
    sub *c = h->data;
    seq_substream *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->subs = c->next;
    if (c->next)
        c->next->prev = c->prev;
    atomic_fetch_sub(&s->count, 1);
    seq_framer_free(&c->framer);
    write_req_free(c->out);
    free(c);
}

static void sub_close(sub *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    SEQ_DEBUG("api_subscriber_closed", "reason=\"%s\"", why);
    if (strcmp(why, "client closed") != 0 && !c->s->stopping)
        SEQ_INFO("api_subscriber_closed", "reason=\"%s\"", why);
    uv_close((uv_handle_t *)&c->tcp, sub_closed_cb);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    sub *c = h->data;
    *buf = uv_buf_init((char *)c->s->read_buf, READ_BYTES);
}

/* After subscribing a client only reads batches: a request it still sends
 * gets an Error (a connection carries one subscription and nothing else);
 * reading is also how its going away is noticed. */
static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sub *c = st->data;
    if (nread < 0) {
        sub_close(c, nread == UV_EOF ? "client closed" : uv_strerror((int)nread));
        return;
    }
    if (seq_framer_feed(&c->framer, (const uint8_t *)buf->base, (size_t)nread) != 0) {
        sub_close(c, "request frame over the limit");
        return;
    }
    const uint8_t *frame;
    size_t len;
    while (!c->closing && seq_framer_next(&c->framer, &frame, &len) == 1) {
        Seq__ClientRequest *req = seq__client_request__unpack(NULL, len, frame);
        if (!req) {
            sub_close(c, "malformed request frame");
            return;
        }
        send_error(c, req->request_id, SEQ_EINVAL,
                   "this connection carries a subscription; open another one for other requests");
        seq__client_request__free_unpacked(req, NULL);
    }
}

static void take_over(seq_substream *s, adopt *a)
{
    sub *c = calloc(1, sizeof *c);
    if (!c) {
        close(a->fd);
        atomic_fetch_sub(&s->count, 1);
        return;
    }
    c->s = s;
    c->tcp.data = c;
    c->request_id = a->request_id;
    c->next_height = a->next_height;
    c->ns_count = a->ns_count;
    memcpy(c->ns, a->ns, a->ns_count * sizeof c->ns[0]);
    c->last_written_ms = uv_now(&s->loop);
    seq_framer_init(&c->framer, REQUEST_BYTES_MAX);
    uv_tcp_init(&s->loop, &c->tcp);
    c->next = s->subs;
    if (s->subs)
        s->subs->prev = c;
    s->subs = c;
    if (uv_tcp_open(&c->tcp, a->fd) != 0) {
        close(a->fd);
        sub_close(c, "cannot take over the socket");
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0)
        sub_close(c, "cannot read the socket");
}

static void close_all(seq_substream *s)
{
    for (sub *c = s->subs; c; c = c->next)
        sub_close(c, "node stopping");
    uv_close((uv_handle_t *)&s->wake, NULL);
    uv_close((uv_handle_t *)&s->tick, NULL);
}

/* The node's thread announced adoptions, a new tip or the stop. */
static void wake_cb(uv_async_t *h)
{
    seq_substream *s = h->data;
    uv_mutex_lock(&s->lock);
    adopt *in = s->inbox;
    s->inbox = NULL;
    uint64_t tip = s->tip_in;
    bool stopping = s->stopping;
    seq_block *fresh[FRESH_MAX];
    /* Only what waits: a certificate is 8 KiB, FRESH_MAX of them 0.5 MiB. */
    uint32_t waiting = s->fresh_count;
    seq_cert *fresh_cert = waiting ? malloc(waiting * sizeof *fresh_cert) : NULL;
    uint32_t fresh_count = fresh_cert ? waiting : 0;
    for (uint32_t i = 0; i < fresh_count; i++) {
        fresh[i] = s->fresh[i];
        fresh_cert[i] = s->fresh_cert[i];
    }
    if (fresh_cert) {
        s->fresh_count = 0;
        s->fresh_bytes = 0;
    }
    uv_mutex_unlock(&s->lock);
    for (uint32_t i = 0; i < fresh_count; i++) {
        if (stopping)
            seq_block_free(fresh[i]);
        else
            seq_batch_cache_adopt(s->cache, fresh[i], &fresh_cert[i]);
    }
    free(fresh_cert);
    while (in) {
        adopt *next = in->next;
        if (stopping) {
            close(in->fd);
            atomic_fetch_sub(&s->count, 1);
        } else {
            take_over(s, in);
        }
        free(in);
        in = next;
    }
    if (stopping) {
        close_all(s);
        return;
    }
    if (tip > s->tip)
        s->tip = tip;
    serve_all(s);
}

static void thread_main(void *arg)
{
    seq_substream *s = arg;
    (void)pthread_setname_np(pthread_self(), "seq-subscribers"); /* top -H, perf */
    /* Consensus first: under full CPU this thread gets what the node's loop
     * leaves (a thread is its own scheduling entity on Linux; failure is
     * harmless). Subscribers then fall behind and are served from the store. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SUBSCRIBER_NICE);
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

/* ---- the node's side ----------------------------------------------------------- */

int seq_substream_start(seq_substream **out, const seq_substream_config *cfg)
{
    SEQ_ASSERT(out && cfg && cfg->store);
    seq_substream *s = calloc(1, sizeof *s);
    if (!s)
        return SEQ_ENOMEM;
    s->cfg = *cfg;
    seq_store_tip tip;
    s->tip = s->tip_in = seq_store_tip_get(cfg->store, &tip) == 0 ? tip.height : 0;
    if (seq_batch_cache_new(&s->cache, cfg->store, cfg->cache_bytes, cfg->block_cache_bytes) != 0) {
        free(s);
        return SEQ_ENOMEM;
    }
    if (uv_loop_init(&s->loop) != 0 || uv_mutex_init(&s->lock) != 0) {
        seq_batch_cache_free(s->cache);
        free(s);
        return SEQ_EIO;
    }
    uv_async_init(&s->loop, &s->wake, wake_cb);
    uv_timer_init(&s->loop, &s->tick);
    s->wake.data = s->tick.data = s;
    if (uv_thread_create(&s->thread, thread_main, s) != 0) {
        uv_close((uv_handle_t *)&s->wake, NULL);
        uv_close((uv_handle_t *)&s->tick, NULL);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
        uv_mutex_destroy(&s->lock);
        seq_batch_cache_free(s->cache);
        free(s);
        return SEQ_EIO;
    }
    *out = s;
    return 0;
}

int seq_substream_adopt(seq_substream *s, int fd, uint64_t request_id, const seq_ns *ns, uint32_t ns_count,
                        uint64_t next_height)
{
    SEQ_ASSERT(ns_count >= 1 && ns_count <= SEQ_CLIENT_SUBSCRIBE_NS_MAX);
    adopt *a = malloc(sizeof *a);
    if (!a) {
        close(fd);
        return SEQ_ENOMEM;
    }
    *a = (adopt){.fd = fd, .request_id = request_id, .next_height = next_height, .ns_count = ns_count};
    memcpy(a->ns, ns, ns_count * sizeof ns[0]);
    uv_mutex_lock(&s->lock);
    bool stopping = s->stopping;
    if (!stopping) {
        a->next = s->inbox;
        s->inbox = a;
    }
    uv_mutex_unlock(&s->lock);
    if (stopping) {
        close(fd);
        free(a);
        return SEQ_ECLOSED;
    }
    atomic_fetch_add(&s->count, 1);
    uv_async_send(&s->wake);
    return 0;
}

void seq_substream_tip(seq_substream *s, const seq_block *b, const seq_cert *cert)
{
    seq_block *copy = atomic_load(&s->count) > 0 ? seq_block_clone(b) : NULL;
    size_t bytes = copy ? seq_block_mem_bytes(copy) : 0;
    uv_mutex_lock(&s->lock);
    if (b->h.height > s->tip_in)
        s->tip_in = b->h.height;
    /* A starved stream thread takes them in a batch later: they wait, within
     * the block cache's bound, rather than being read back from the store. */
    if (copy && s->fresh_count < FRESH_MAX && s->fresh_bytes + bytes <= s->cfg.block_cache_bytes) {
        s->fresh[s->fresh_count] = copy;
        s->fresh_cert[s->fresh_count++] = *cert;
        s->fresh_bytes += bytes;
        copy = NULL;
    }
    uv_mutex_unlock(&s->lock);
    seq_block_free(copy); /* the stream thread is behind: it reads the store */
    uv_async_send(&s->wake);
}

uint32_t seq_substream_count(const seq_substream *s) { return atomic_load(&s->count); }

uint64_t seq_substream_slow_disconnects(const seq_substream *s) { return atomic_load(&s->slow); }

void seq_substream_stop(seq_substream *s)
{
    if (!s)
        return;
    uv_mutex_lock(&s->lock);
    s->stopping = true;
    uv_mutex_unlock(&s->lock);
    uv_async_send(&s->wake);
    uv_thread_join(&s->thread);
    for (uint32_t i = 0; i < s->fresh_count; i++)
        seq_block_free(s->fresh[i]);
    uv_loop_close(&s->loop);
    uv_mutex_destroy(&s->lock);
    seq_batch_cache_free(s->cache);
    free(s->heap);
    free(s);
}
