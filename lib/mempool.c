/* The mempool: pending transactions indexed by id, one FIFO queue per
 * namespace in a rotation ring, the recently finalized ids, the fair builder. */
#include "mempool.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "idset.h"

_Static_assert(SEQ_MEMPOOL_TXS_LIMIT_MAX <= SEQ_IDSET_ENTRIES_MAX, "pending ids must fit an idset");
_Static_assert(SEQ_MEMPOOL_RECENT_LIMIT_MAX <= SEQ_IDSET_ENTRIES_MAX, "recent ids must fit an idset");
_Static_assert(SEQ_MEMPOOL_EXCLUDED_SKIPS_MAX > 0, "a namespace must be able to skip one excluded tx");

#define EVICT_SCAN_MAX 64   /* namespaces looked at for a victim when the hint is stale */
#define EVICT_PER_ADD_MAX 16 /* transactions one add may evict */
#define SPARE_CLASS_BYTES 64u /* transaction allocations are rounded up to this */
#define SPARE_CLASSES 16u     /* classes kept for reuse: allocations up to 1 KiB */
#define SPARE_MAX 8192u       /* freed transactions kept for reuse, all classes */

struct nsq;

/* One pending transaction: header and payload in one allocation. */
typedef struct mtx {
    struct mtx *prev, *next; /* FIFO queue of its namespace */
    struct mtx *older, *newer; /* mempool-wide arrival list, for expiry */
    struct nsq *q;
    uint64_t arrival; /* mempool-wide arrival order: the sort key inside a namespace */
    uint64_t added_ms; /* the mempool's clock when it arrived (seq_mempool_expire sets it) */
    seq_hash id;
    uint32_t len;
    uint8_t payload[];
} mtx;

/* The pending transactions of one namespace; exists while it has any, so
 * namespaces_max bounds the namespaces with pending transactions. */
typedef struct nsq {
    seq_ns ns;
    mtx *head, *tail;
    uint32_t count;
    uint64_t bytes;
    struct nsq *ring_prev, *ring_next; /* the builder's rotation order */
    /* Per-build state, valid only while build_epoch == the mempool's. */
    uint64_t build_epoch;
    mtx *candidate;         /* next transaction this namespace offers */
    uint32_t skipped;       /* excluded transactions passed over */
    struct nsq *live_next;  /* list of namespaces that gave in the last round */
} nsq;

/* Namespace -> queue, linear probing; a NULL q marks an empty slot. */
typedef struct {
    seq_ns ns;
    nsq *q;
} ns_slot;

typedef struct {
    ns_slot *slots;
    uint32_t cap; /* 0 or a power of two */
    uint32_t count;
} ns_map;

#define NS_MAP_CAP_MIN 16u

/* The last cap finalized ids: a ring, oldest first, plus a set for lookups.
 * Both are allocated at creation so remembering never fails. */
typedef struct {
    seq_hash *ring;
    uint32_t cap;
    uint32_t count;
    uint32_t oldest;
    seq_idset ids;
} recent_ids;

struct seq_mempool {
    seq_mempool_limits limits;
    seq_idset pending; /* id -> mtx */
    ns_map namespaces;
    nsq *start; /* where the next build starts in the ring; NULL when empty */
    uint32_t count;
    uint64_t bytes;
    uint64_t arrivals;
    uint64_t build_epoch;
    recent_ids recent;
    mtx *oldest, *newest; /* arrival list */
    uint64_t now_ms;      /* last time given to seq_mempool_expire */
    nsq *biggest;         /* hint: the namespace with the most pending (see victim) */
    seq_hash evicted[SEQ_MEMPOOL_EVICTED_MAX]; /* until seq_mempool_take_evicted */
    uint32_t evicted_count;
    uint64_t evicted_unreported; /* evicted while `evicted` was full */
    struct spare *spares[SPARE_CLASSES]; /* freed transactions kept for reuse, by size class */
    uint32_t spare_count;
};

/* ---- transaction allocations -------------------------------------------- */

/* A finalized block frees thousands of transactions at once, and malloc's
 * bins then coalesce and split them again for the next arrivals: freeing
 * them was ~4% of a node's loop thread at 90k tx/s. Allocations up to
 * SPARE_CLASSES * SPARE_CLASS_BYTES are rounded up to a class, and freed
 * ones are kept (at most SPARE_MAX, so at most 8 MiB) for the next of their
 * class. */
typedef struct spare {
    struct spare *next;
} spare;

/* Under AddressSanitizer a kept allocation stays poisoned past its link, so
 * a payload pointer used after its transaction left the mempool is still
 * caught, as it was when every allocation went back to malloc. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SPARE_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SPARE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SPARE_POISON(p, n) ((void)(p), (void)(n))
#define SPARE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static size_t spare_bytes(uint32_t c)
{
    return (size_t)(c + 1) * SPARE_CLASS_BYTES;
}

static uint32_t spare_class(uint32_t len)
{
    return (uint32_t)((sizeof(mtx) + len + SPARE_CLASS_BYTES - 1) / SPARE_CLASS_BYTES) - 1;
}

static mtx *mtx_alloc(seq_mempool *mp, uint32_t len)
{
    uint32_t c = spare_class(len);
    if (c >= SPARE_CLASSES)
        return malloc(sizeof(mtx) + len);
    spare *s = mp->spares[c];
    if (!s)
        return malloc(spare_bytes(c));
    mp->spares[c] = s->next;
    mp->spare_count--;
    SPARE_UNPOISON(s, spare_bytes(c));
    /* Spares are cold (freed about a block ago): start loading the next
     * one now, or popping it stalls on its link. */
    if (s->next)
        __builtin_prefetch(s->next, 1);
    return (mtx *)(void *)s;
}

static void mtx_release(seq_mempool *mp, mtx *m)
{
    uint32_t c = spare_class(m->len);
    if (c >= SPARE_CLASSES || mp->spare_count >= SPARE_MAX) {
        free(m);
        return;
    }
    spare *s = (spare *)(void *)m;
    s->next = mp->spares[c];
    SPARE_POISON((uint8_t *)s + sizeof *s, spare_bytes(c) - sizeof *s);
    mp->spares[c] = s;
    mp->spare_count++;
}

static void spares_free(seq_mempool *mp)
{
    for (uint32_t c = 0; c < SPARE_CLASSES; c++)
        while (mp->spares[c]) {
            spare *next = mp->spares[c]->next;
            SPARE_UNPOISON(mp->spares[c], spare_bytes(c));
            free(mp->spares[c]);
            mp->spares[c] = next;
        }
    mp->spare_count = 0;
}

/* ---- namespace map ----------------------------------------------------- */

/* Namespaces are small sequential numbers, so mix them (splitmix64). */
static uint32_t ns_home(seq_ns ns, uint32_t mask)
{
    uint64_t z = ns + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)(z ^ (z >> 31)) & mask;
}

static uint32_t ns_probe(const ns_map *m, seq_ns ns)
{
    uint32_t mask = m->cap - 1;
    uint32_t i = ns_home(ns, mask);
    while (m->slots[i].q && m->slots[i].ns != ns)
        i = (i + 1) & mask;
    return i;
}

static nsq *ns_map_find(const ns_map *m, seq_ns ns)
{
    return m->cap ? m->slots[ns_probe(m, ns)].q : NULL;
}

/* Room for n entries with one slot always empty (load factor < 3/4). */
static int ns_map_reserve(ns_map *m, uint32_t n)
{
    uint32_t cap = m->cap ? m->cap : NS_MAP_CAP_MIN;
    while ((uint64_t)n * 4 >= (uint64_t)cap * 3)
        cap *= 2;
    if (cap == m->cap)
        return 0;
    ns_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return SEQ_ENOMEM;
    ns_map grown = {.slots = slots, .cap = cap, .count = m->count};
    for (uint32_t i = 0; i < m->cap; i++)
        if (m->slots[i].q)
            grown.slots[ns_probe(&grown, m->slots[i].ns)] = m->slots[i];
    free(m->slots);
    *m = grown;
    return 0;
}

static void ns_map_put(ns_map *m, nsq *q)
{
    SEQ_ASSERT(m->cap && (uint64_t)(m->count + 1) * 4 < (uint64_t)m->cap * 3);
    uint32_t i = ns_probe(m, q->ns);
    SEQ_ASSERT(!m->slots[i].q);
    m->slots[i] = (ns_slot){.ns = q->ns, .q = q};
    m->count++;
}

/* Backward-shift deletion, as in idset.c: no tombstones. */
static void ns_map_remove(ns_map *m, seq_ns ns)
{
    uint32_t mask = m->cap - 1;
    uint32_t hole = ns_probe(m, ns);
    SEQ_ASSERT(m->slots[hole].q);
    for (uint32_t j = (hole + 1) & mask; m->slots[j].q; j = (j + 1) & mask) {
        uint32_t home = ns_home(m->slots[j].ns, mask);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole] = (ns_slot){0};
    m->count--;
}

/* ---- recent ids -------------------------------------------------------- */

static int recent_init(recent_ids *r, uint32_t cap)
{
    seq_idset_init(&r->ids);
    r->ring = malloc((size_t)cap * sizeof *r->ring);
    if (!r->ring)
        return SEQ_ENOMEM;
    int rc = seq_idset_reserve(&r->ids, cap);
    if (rc) {
        free(r->ring);
        return rc;
    }
    r->cap = cap;
    r->count = 0;
    r->oldest = 0;
    return 0;
}

static void recent_free(recent_ids *r)
{
    seq_idset_free(&r->ids);
    free(r->ring);
}

/* Remembers id, forgetting the oldest when cap are remembered already. */
static void recent_remember(recent_ids *r, const seq_hash *id)
{
    if (seq_idset_get(&r->ids, id, NULL))
        return;
    if (r->count == r->cap) {
        bool was = seq_idset_remove(&r->ids, &r->ring[r->oldest], NULL);
        SEQ_ASSERT(was);
        r->ring[r->oldest] = *id;
        r->oldest = (r->oldest + 1) % r->cap;
    } else {
        r->ring[(r->oldest + r->count) % r->cap] = *id;
        r->count++;
    }
    int rc = seq_idset_put(&r->ids, id, NULL);
    SEQ_ASSERT(rc == 0); /* reserved for cap ids at creation */
    SEQ_ASSERT(seq_idset_count(&r->ids) == r->count);
}

/* ---- life cycle -------------------------------------------------------- */

static bool limits_valid(const seq_mempool_limits *l)
{
    return l->txs_max >= 1 && l->txs_max <= SEQ_MEMPOOL_TXS_LIMIT_MAX &&
           l->bytes_max >= 1 &&
           l->tx_bytes_max >= 1 && l->tx_bytes_max <= SEQ_TX_PAYLOAD_BYTES_MAX &&
           l->namespaces_max >= 1 && l->namespaces_max <= SEQ_MEMPOOL_NAMESPACES_LIMIT_MAX &&
           l->recent_max >= 1 && l->recent_max <= SEQ_MEMPOOL_RECENT_LIMIT_MAX;
}

int seq_mempool_new(seq_mempool **out, const seq_mempool_limits *limits)
{
    SEQ_ASSERT(out && limits);
    if (!limits_valid(limits))
        return SEQ_EINVAL;
    seq_mempool *mp = calloc(1, sizeof *mp);
    if (!mp)
        return SEQ_ENOMEM;
    mp->limits = *limits;
    seq_idset_init(&mp->pending);
    int rc = recent_init(&mp->recent, limits->recent_max);
    if (rc)
        goto err_after_alloc;
    *out = mp;
    return 0;

err_after_alloc:
    free(mp);
    return rc;
}

void seq_mempool_free(seq_mempool *mp)
{
    if (!mp)
        return;
    nsq *q = mp->start;
    for (uint32_t i = 0; i < mp->namespaces.count; i++) {
        nsq *next = q->ring_next;
        for (mtx *m = q->head, *m_next; m; m = m_next) {
            m_next = m->next;
            free(m);
        }
        free(q);
        q = next;
    }
    free(mp->namespaces.slots);
    seq_idset_free(&mp->pending);
    recent_free(&mp->recent);
    spares_free(mp);
    free(mp);
}

/* ---- add ----------------------------------------------------------------- */

/* A new namespace joins the ring just before the start, i.e. last in the
 * current rotation. */
static void ring_insert(seq_mempool *mp, nsq *q)
{
    if (!mp->start) {
        q->ring_prev = q->ring_next = q;
        mp->start = q;
        return;
    }
    q->ring_next = mp->start;
    q->ring_prev = mp->start->ring_prev;
    q->ring_prev->ring_next = q;
    mp->start->ring_prev = q;
}

static void ring_remove(seq_mempool *mp, nsq *q)
{
    if (mp->start == q)
        mp->start = q->ring_next == q ? NULL : q->ring_next;
    q->ring_prev->ring_next = q->ring_next;
    q->ring_next->ring_prev = q->ring_prev;
}

static nsq *namespace_new(seq_mempool *mp, seq_ns ns)
{
    if (ns_map_reserve(&mp->namespaces, mp->namespaces.count + 1))
        return NULL;
    nsq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->ns = ns;
    ns_map_put(&mp->namespaces, q);
    ring_insert(mp, q);
    return q;
}

static void namespace_free(seq_mempool *mp, nsq *q)
{
    SEQ_ASSERT(q->count == 0 && !q->head && !q->tail);
    if (mp->biggest == q)
        mp->biggest = NULL;
    ns_map_remove(&mp->namespaces, q->ns);
    ring_remove(mp, q);
    free(q);
}

/* Limits are checked: allocates, links, counts. SEQ_ENOMEM leaves no trace. */
static int insert(seq_mempool *mp, nsq *q, const seq_tx *tx)
{
    int rc = seq_idset_reserve(&mp->pending, mp->count + 1);
    if (rc)
        return rc;
    mtx *m = mtx_alloc(mp, tx->len);
    if (!m)
        return SEQ_ENOMEM;
    if (!q && !(q = namespace_new(mp, tx->ns))) {
        m->len = tx->len;
        mtx_release(mp, m);
        return SEQ_ENOMEM;
    }
    *m = (mtx){.prev = q->tail, .older = mp->newest, .q = q, .arrival = mp->arrivals++,
               .added_ms = mp->now_ms, .id = tx->id, .len = tx->len};
    if (mp->newest)
        mp->newest->newer = m;
    else
        mp->oldest = m;
    mp->newest = m;
    if (tx->len)
        memcpy(m->payload, tx->data, tx->len);
    rc = seq_idset_put(&mp->pending, &m->id, m);
    SEQ_ASSERT(rc == 0); /* absent (checked) and reserved */
    if (q->tail)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    q->count++;
    q->bytes += tx->len;
    mp->count++;
    mp->bytes += tx->len;
    if (!mp->biggest || q->count > mp->biggest->count)
        mp->biggest = q;
    return 0;
}

static void drop_pending(seq_mempool *mp, mtx *m);

static bool fits(const seq_mempool *mp, uint32_t len)
{
    return mp->count < mp->limits.txs_max && len <= mp->limits.bytes_max - mp->bytes;
}

/* The namespace to evict from for one holding `mine`: the biggest, if it has
 * at least two more. The hint is exact until evictions and removals shrink
 * it; then up to EVICT_SCAN_MAX namespaces of the ring are looked at (a
 * bounded cost per add, however many namespaces: the choice is then the
 * biggest of those, not always of all). NULL when none qualifies. */
static nsq *victim(seq_mempool *mp, uint32_t mine)
{
    nsq *v = mp->biggest;
    if (!v || v->count < mine + 2) {
        nsq *q = mp->start;
        for (uint32_t i = 0; q && i < EVICT_SCAN_MAX; i++) {
            if (!v || q->count > v->count)
                v = q;
            q = q->ring_next;
            if (q == mp->start)
                break;
        }
        mp->biggest = v;
    }
    return v && v->count >= mine + 2 ? v : NULL;
}

static void evict(seq_mempool *mp, mtx *m)
{
    if (mp->evicted_count < SEQ_MEMPOOL_EVICTED_MAX)
        mp->evicted[mp->evicted_count++] = m->id;
    else
        mp->evicted_unreported++;
    bool was = seq_idset_remove(&mp->pending, &m->id, NULL);
    SEQ_ASSERT(was);
    drop_pending(mp, m);
}

/* A full mempool makes room for a namespace holding fewer transactions than
 * the biggest one: that one gives way, newest transaction first, so one
 * rollup's flood can fill the pool but cannot keep the others out of it.
 * At most EVICT_PER_ADD_MAX evictions (a large payload needing more is
 * refused). False: no room. */
static bool make_room(seq_mempool *mp, const nsq *q, uint32_t len)
{
    uint32_t mine = q ? q->count : 0;
    for (uint32_t i = 0; i < EVICT_PER_ADD_MAX && !fits(mp, len); i++) {
        nsq *v = victim(mp, mine);
        if (!v || v == q)
            return false;
        evict(mp, v->tail);
    }
    return fits(mp, len);
}

int seq_mempool_add(seq_mempool *mp, seq_ns ns, const uint8_t *payload, uint32_t len, seq_hash *id)
{
    static const uint8_t empty[1];
    SEQ_ASSERT(mp);
    if (len > mp->limits.tx_bytes_max)
        return SEQ_ETOOBIG;
    if (!payload && len)
        return SEQ_EINVAL;
    seq_tx tx = {.ns = ns, .len = len, .data = payload ? payload : empty};
    seq_tx_compute_id(&tx);
    if (id)
        *id = tx.id;
    return seq_mempool_add_tx(mp, &tx);
}

int seq_mempool_add_tx(seq_mempool *mp, const seq_tx *in)
{
    static const uint8_t empty[1];
    SEQ_ASSERT(mp && in);
    if (in->len > mp->limits.tx_bytes_max)
        return SEQ_ETOOBIG;
    if (!in->data && in->len)
        return SEQ_EINVAL;
    seq_tx tx = *in;
    if (!tx.data)
        tx.data = empty;
    seq_ns ns = tx.ns;
    uint32_t len = tx.len;
    if (seq_idset_get(&mp->pending, &tx.id, NULL) || seq_idset_get(&mp->recent.ids, &tx.id, NULL))
        return SEQ_EDUPLICATE;
    SEQ_ASSERT(mp->bytes <= mp->limits.bytes_max);
    nsq *q = ns_map_find(&mp->namespaces, ns);
    if (!q && mp->namespaces.count >= mp->limits.namespaces_max) /* checked before evicting anything */
        return fits(mp, len) ? SEQ_ENS_FULL : SEQ_EFULL;
    if (!fits(mp, len) && !make_room(mp, q, len)) /* never evicts from q, never frees a namespace */
        return SEQ_EFULL;
    return insert(mp, q, &tx);
}

void seq_mempool_prefetch(const seq_mempool *mp, const seq_hash *id)
{
    seq_idset_prefetch(&mp->pending, id);
    seq_idset_prefetch(&mp->recent.ids, id);
}

/* ---- build --------------------------------------------------------------- */

typedef struct {
    seq_mempool *mp;
    uint32_t txs_max;
    uint64_t bytes_left;
    seq_mempool_exclude_fn exclude;
    void *ctx;
    seq_tx *out;
    uint32_t taken;
    nsq *live;     /* namespaces that gave in the last round, in ring order */
    nsq *last_giver;
} builder;

/* One visit: takes q's next transaction if the rule allows (see mempool.h);
 * false when q offers nothing more in this build. */
static bool offer(builder *b, nsq *q)
{
    if (q->build_epoch != b->mp->build_epoch) {
        q->build_epoch = b->mp->build_epoch;
        q->candidate = q->head;
        q->skipped = 0;
    }
    while (q->candidate) {
        mtx *m = q->candidate;
        if (b->exclude && b->exclude(b->ctx, &m->id)) {
            q->candidate = ++q->skipped < SEQ_MEMPOOL_EXCLUDED_SKIPS_MAX ? m->next : NULL;
            continue;
        }
        if (m->len > b->bytes_left) {
            q->candidate = NULL; /* later ones must not overtake m */
            return false;
        }
        q->candidate = m->next;
        b->bytes_left -= m->len;
        b->out[b->taken++] = (seq_tx){.ns = q->ns, .len = m->len, .data = m->payload, .id = m->id};
        b->last_giver = q;
        return true;
    }
    return false;
}

/* Round 1: every namespace once, in ring order from the start. */
static void first_round(builder *b)
{
    nsq **live_tail = &b->live;
    nsq *q = b->mp->start;
    for (uint32_t i = 0; i < b->mp->namespaces.count && b->taken < b->txs_max; i++) {
        if (offer(b, q)) {
            q->live_next = NULL;
            *live_tail = q;
            live_tail = &q->live_next;
        }
        q = q->ring_next;
    }
}

/* Later rounds: those that gave last round; each visit takes one or drops one. */
static void later_rounds(builder *b)
{
    while (b->live && b->taken < b->txs_max) {
        nsq **link = &b->live;
        while (*link && b->taken < b->txs_max) {
            nsq *q = *link;
            if (offer(b, q))
                link = &q->live_next;
            else
                *link = q->live_next;
        }
    }
}

static const mtx *mtx_of(const seq_tx *tx)
{
    return (const mtx *)(const void *)(tx->data - offsetof(mtx, payload));
}

/* Namespace, then arrival: a total order, so qsort's instability is harmless. */
static int by_ns_then_arrival(const void *a, const void *b)
{
    const seq_tx *x = a, *y = b;
    if (x->ns != y->ns)
        return x->ns < y->ns ? -1 : 1;
    uint64_t ax = mtx_of(x)->arrival, ay = mtx_of(y)->arrival;
    return (ax > ay) - (ax < ay);
}

int seq_mempool_build(seq_mempool *mp, uint32_t txs_max, uint64_t bytes_max,
                      seq_mempool_exclude_fn exclude, void *ctx, seq_tx *out, uint32_t *n)
{
    SEQ_ASSERT(mp && n && (out || txs_max == 0));
    *n = 0;
    if (!mp->start || txs_max == 0)
        return 0;
    mp->build_epoch++;
    builder b = {.mp = mp, .txs_max = txs_max, .bytes_left = bytes_max,
                 .exclude = exclude, .ctx = ctx, .out = out};
    first_round(&b);
    later_rounds(&b);
    SEQ_ASSERT(b.taken <= txs_max && b.taken <= mp->count);
    if (b.last_giver)
        mp->start = b.last_giver->ring_next;
    qsort(out, b.taken, sizeof *out, by_ns_then_arrival);
    *n = b.taken;
    return 0;
}

/* ---- remove and queries -------------------------------------------------- */

static void drop_pending(seq_mempool *mp, mtx *m)
{
    nsq *q = m->q;
    SEQ_ASSERT(q->count > 0 && mp->count > 0);
    if (m->prev)
        m->prev->next = m->next;
    else
        q->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        q->tail = m->prev;
    if (m->older)
        m->older->newer = m->newer;
    else
        mp->oldest = m->newer;
    if (m->newer)
        m->newer->older = m->older;
    else
        mp->newest = m->older;
    q->count--;
    q->bytes -= m->len;
    mp->count--;
    mp->bytes -= m->len;
    mtx_release(mp, m);
    if (q->count == 0)
        namespace_free(mp, q);
}

/* Ids ahead whose hash-set lines are prefetched in a batch operation: each
 * lookup in a set of 10^5 ids is a cache miss, and a block's ids are known
 * up front, so the misses can overlap (about 8 keep enough in flight). */
#define PREFETCH_AHEAD 8

/* Starts loading the lines finalizing ids[i] will touch: its pending and
 * recent slots, and the recent id it will push out of a full ring. */
static void finalized_prefetch(const seq_mempool *mp, const seq_hash *ids, size_t n, size_t i)
{
    if (i >= n)
        return;
    seq_idset_prefetch(&mp->pending, &ids[i]);
    seq_idset_prefetch(&mp->recent.ids, &ids[i]);
    const recent_ids *r = &mp->recent;
    if (r->count == r->cap)
        seq_idset_prefetch(&r->ids, &r->ring[(r->oldest + i) % r->cap]);
}

void seq_mempool_remove_finalized(seq_mempool *mp, const seq_hash *ids, size_t n)
{
    SEQ_ASSERT(mp && (ids || n == 0));
    for (size_t i = 0; i < PREFETCH_AHEAD; i++)
        finalized_prefetch(mp, ids, n, i);
    for (size_t i = 0; i < n; i++) {
        finalized_prefetch(mp, ids, n, i + PREFETCH_AHEAD);
        void *m;
        if (seq_idset_remove(&mp->pending, &ids[i], &m))
            drop_pending(mp, m);
        recent_remember(&mp->recent, &ids[i]);
    }
}

uint32_t seq_mempool_expire(seq_mempool *mp, uint64_t now_ms, uint64_t ttl_ms, seq_hash *expired, uint32_t max)
{
    SEQ_ASSERT(mp && (expired || max == 0));
    if (now_ms > mp->now_ms)
        mp->now_ms = now_ms;
    uint32_t n = 0;
    while (n < max && mp->oldest && mp->oldest->added_ms + ttl_ms <= mp->now_ms) {
        mtx *m = mp->oldest;
        expired[n++] = m->id;
        bool was = seq_idset_remove(&mp->pending, &m->id, NULL);
        SEQ_ASSERT(was);
        drop_pending(mp, m);
    }
    return n;
}

uint32_t seq_mempool_take_evicted(seq_mempool *mp, seq_hash *out, uint32_t max, uint64_t *unreported)
{
    SEQ_ASSERT(mp && (out || max == 0));
    uint32_t n = mp->evicted_count < max ? mp->evicted_count : max;
    memcpy(out, mp->evicted, n * sizeof *out);
    memmove(mp->evicted, mp->evicted + n, (mp->evicted_count - n) * sizeof *out);
    mp->evicted_count -= n;
    if (unreported) {
        *unreported = mp->evicted_unreported;
        mp->evicted_unreported = 0;
    }
    return n;
}

bool seq_mempool_contains(const seq_mempool *mp, const seq_hash *id)
{
    return seq_idset_get(&mp->pending, id, NULL);
}

uint32_t seq_mempool_lookup(const seq_mempool *mp, const seq_hash *ids, uint32_t n, seq_tx *out)
{
    SEQ_ASSERT(mp && ((ids && out) || n == 0));
    uint32_t missing = 0;
    for (uint32_t i = 0; i < n && i < PREFETCH_AHEAD; i++)
        seq_idset_prefetch(&mp->pending, &ids[i]);
    for (uint32_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n)
            seq_idset_prefetch(&mp->pending, &ids[i + PREFETCH_AHEAD]);
        void *value;
        if (!seq_idset_get(&mp->pending, &ids[i], &value)) {
            out[i] = (seq_tx){0};
            missing++;
            continue;
        }
        const mtx *m = value;
        out[i] = (seq_tx){.ns = m->q->ns, .len = m->len, .data = m->payload, .id = m->id};
    }
    return missing;
}

bool seq_mempool_recent_contains(const seq_mempool *mp, const seq_hash *id)
{
    return seq_idset_get(&mp->recent.ids, id, NULL);
}

uint32_t seq_mempool_count(const seq_mempool *mp)
{
    return mp->count;
}

uint64_t seq_mempool_bytes(const seq_mempool *mp)
{
    return mp->bytes;
}

void seq_mempool_ns_usage(const seq_mempool *mp, seq_ns ns, uint32_t *count, uint64_t *bytes)
{
    const nsq *q = ns_map_find(&mp->namespaces, ns);
    if (count)
        *count = q ? q->count : 0;
    if (bytes)
        *bytes = q ? q->bytes : 0;
}

uint32_t seq_mempool_namespaces(const seq_mempool *mp)
{
    return mp->namespaces.count;
}

static bool ns_stat_before(const seq_mempool_ns_stat *a, const nsq *q)
{
    return a->count > q->count || (a->count == q->count && a->ns < q->ns);
}

uint32_t seq_mempool_ns_top(const seq_mempool *mp, seq_mempool_ns_stat *out, uint32_t cap)
{
    uint32_t n = 0;
    const nsq *q = mp->start;
    for (uint32_t seen = 0; q && cap > 0 && seen < mp->namespaces.count; seen++, q = q->ring_next) {
        if (n == cap && ns_stat_before(&out[n - 1], q))
            continue;
        uint32_t i = n < cap ? n++ : cap - 1; /* the last one drops out */
        for (; i > 0 && !ns_stat_before(&out[i - 1], q); i--)
            out[i] = out[i - 1];
        out[i] = (seq_mempool_ns_stat){.ns = q->ns, .count = q->count, .bytes = q->bytes};
    }
    return n;
}
