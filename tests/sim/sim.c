/* seq-sim: the deterministic simulator. N validators run the real replica
 * (consensus + mempool + LMDB store) over a seeded simulated network in
 * virtual time, with faults chosen per seed, and the safety and liveness
 * rules are checked after every event. A failing seed is printed and
 * `seq-sim --seed N` replays it exactly.
 *
 * Happy path of one seed: build keys and stores -> start every replica ->
 * pop events (message delivery, timer, client submit, crash, restart, heal)
 * in (time, sequence) order -> check invariants after each -> after the heal,
 * wait (bounded) until every honest node has finalized past view V. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "errors.h"
#include "idset.h"
#include "log.h"
#include "replica.h"
#include "wire.h"

#define NODES_MAX 16
#define EVENTS_MAX (1u << 20)      /* events in flight */
#define HEIGHTS_MAX 100000         /* finalized heights tracked per seed */
#define VIEW_TIMEOUT_MS 200
#define SUBMIT_EVERY_MS 15
#define LIVENESS_SLACK_VIEWS 20
#define OUTAGE_VIEWS (SEQ_RESTORE_VOTES_MAX + 100)

/* ---- deterministic randomness (splitmix64) ---------------------------------------- */

typedef struct { uint64_t s; } rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t rng_below(rng *r, uint64_t n) { return n ? rng_next(r) % n : 0; }
static bool rng_chance(rng *r, double p) { return (double)(rng_next(r) >> 11) / (double)(1ull << 53) < p; }

/* ---- events ------------------------------------------------------------------------- */

typedef enum { EV_DELIVER, EV_TIMER, EV_SUBMIT, EV_CRASH, EV_RESTART, EV_HEAL, EV_CONTINUE } ev_kind;

typedef struct {
    uint64_t time;
    uint64_t seq;
    ev_kind kind;
    uint32_t node;
    uint32_t from;
    uint64_t gen;
    uint8_t *bytes;
    size_t len;
} event;

typedef struct {
    event *items;
    uint32_t count;
} heap;

static bool ev_before(const event *a, const event *b)
{
    return a->time != b->time ? a->time < b->time : a->seq < b->seq;
}

static bool heap_push(heap *h, event e)
{
    if (h->count == EVENTS_MAX)
        return false;
    uint32_t i = h->count++;
    h->items[i] = e;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!ev_before(&h->items[i], &h->items[p]))
            break;
        event t = h->items[i];
        h->items[i] = h->items[p];
        h->items[p] = t;
        i = p;
    }
    return true;
}

static event heap_pop(heap *h)
{
    event top = h->items[0];
    h->items[0] = h->items[--h->count];
    uint32_t i = 0;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->count && ev_before(&h->items[l], &h->items[m]))
            m = l;
        if (r < h->count && ev_before(&h->items[r], &h->items[m]))
            m = r;
        if (m == i)
            break;
        event t = h->items[i];
        h->items[i] = h->items[m];
        h->items[m] = t;
        i = m;
    }
    return top;
}

/* ---- the world ----------------------------------------------------------------------- */

enum byz_flags {
    BYZ_SILENT = 1 << 0,      /* sends nothing */
    BYZ_EQUIVOCATE = 1 << 1,  /* as leader, two blocks to two halves */
    BYZ_DOUBLE_VOTE = 1 << 2, /* notarize and finalize every proposal it sees */
    BYZ_BAD_SIG = 1 << 3,     /* corrupts signatures on some messages */
    BYZ_GARBAGE = 1 << 4,     /* sends random frames */
};

typedef struct {
    uint64_t notarize_view;
    seq_hash notarize;
    bool has_notarize, has_nullify, has_finalize;
    seq_hash finalize;
} vote_record;

struct sim;

typedef struct {
    struct sim *sim;
    uint32_t idx;
    bool byz;
    uint32_t byz_flags;
    bool up;
    seq_keypair *key;
    seq_store *store;
    seq_replica *replica;
    char dir[256];
    uint64_t timer_gen;
    bool continue_scheduled;
    uint64_t final_height;
    uint64_t final_view;
    uint32_t group; /* partition side */
    bool compact;   /* proposes compactly (tx ids); most nodes do, as seqd by default */
    seq_idset votes; /* view (as id) -> vote_record*, honest nodes only */
} node;

typedef struct {
    double drop_p;
    double dup_p;
    uint32_t delay_ms;
    uint32_t jitter_ms;
    bool partition;
    bool outage; /* messages slower than the view timeout, for more views than
                    the consensus holds in memory: every view is nullified */
    uint64_t outage_from, outage_to;
    uint64_t partition_from, partition_to;
    uint32_t crashes;
    bool crash_all;
} faults;

typedef struct sim {
    uint64_t seed;
    uint32_t n;
    uint32_t byz_count;
    uint64_t views_target;
    bool verbose;
    bool plant_amnesia; /* planted bug: a restarted node forgets its store */
    rng r;
    uint64_t now;
    uint64_t seq;
    heap events;
    faults f;
    bool healed;
    uint64_t phase_ms; /* faults end (heal) at this virtual time */
    uint64_t heal_time;
    uint64_t heal_height;
    node nodes[NODES_MAX];
    seq_validators vs;
    char root[256];
    /* checks */
    seq_hash *height_hash; /* first honest block seen at each height */
    bool *height_known;
    seq_idset submitted;   /* id -> (void*)1 */
    seq_idset finalized;   /* id -> height (as pointer-sized int) */
    uint64_t tx_counter;
    const char *violation;
    char detail[256];
    bool liveness_failed;
} sim;

static void violate(sim *s, const char *rule, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void violate(sim *s, const char *rule, const char *fmt, ...)
{
    if (s->violation)
        return;
    s->violation = rule;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof s->detail, fmt, ap);
    va_end(ap);
}

static void schedule(sim *s, event e)
{
    e.seq = s->seq++;
    if (!heap_push(&s->events, e)) {
        free(e.bytes);
        violate(s, "bounded-events", "more than %u events in flight", EVENTS_MAX);
    }
}

/* ---- network ---------------------------------------------------------------------------- */

static bool link_cut(sim *s, uint32_t a, uint32_t b)
{
    if (s->healed || !s->f.partition || s->now < s->f.partition_from || s->now >= s->f.partition_to)
        return false;
    return s->nodes[a].group != s->nodes[b].group;
}

static void transmit_bytes(sim *s, uint32_t from, uint32_t to, const uint8_t *bytes, size_t len)
{
    if (to == from || link_cut(s, from, to))
        return;
    int copies = 1;
    if (!s->healed) {
        if (rng_chance(&s->r, s->f.drop_p))
            return;
        if (rng_chance(&s->r, s->f.dup_p))
            copies = 2;
    }
    for (int c = 0; c < copies; c++) {
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
            abort();
        memcpy(copy, bytes, len);
        uint64_t delay = s->f.delay_ms + rng_below(&s->r, s->f.jitter_ms + 1);
        if (!s->healed && s->f.outage && s->now >= s->f.outage_from && s->now < s->f.outage_to)
            delay += VIEW_TIMEOUT_MS * 3 / 2;
        schedule(s, (event){.time = s->now + delay, .kind = EV_DELIVER, .node = to, .from = from,
                            .bytes = copy, .len = len});
    }
}

static void transmit_msg(sim *s, uint32_t from, uint32_t to, const seq_msg *m)
{
    uint8_t *bytes;
    size_t len;
    if (seq_msg_encode(m, &bytes, &len) != 0) {
        violate(s, "encode", "node %u could not encode a message of kind %d", from, m->kind);
        return;
    }
    if (to == SEQ_TO_ALL) {
        for (uint32_t i = 0; i < s->n; i++)
            transmit_bytes(s, from, i, bytes, len);
    } else {
        transmit_bytes(s, from, to, bytes, len);
    }
    free(bytes);
}

/* ---- Byzantine behaviour ----------------------------------------------------------------- */

static void byz_vote(sim *s, node *b, int kind, uint64_t view, const seq_hash *hash, uint32_t to)
{
    seq_msg m = {.kind = SEQ_MSG_VOTE};
    m.u.vote.kind = (uint8_t)kind;
    m.u.vote.view = view;
    m.u.vote.hash = *hash;
    m.u.vote.signer = b->idx;
    seq_vote_sign(&m.u.vote, b->key, 1);
    transmit_msg(s, b->idx, to, &m);
}

/* An equivocating leader: block A to one half of the honest nodes, a
 * different block B (one transaction fewer, or a later timestamp) to the
 * other half, both to its Byzantine friends. */
static void byz_equivocate(sim *s, node *b, const seq_msg *m)
{
    const seq_block *a = m->u.propose.block;
    seq_header tmpl = a->h;
    uint32_t count = a->tx_count;
    if (count > 0)
        count--;
    else
        tmpl.timestamp_ms++;
    seq_block *alt;
    if (seq_block_build(&alt, &tmpl, a->txs, count) != 0)
        return;
    seq_msg m2 = {.kind = SEQ_MSG_PROPOSE};
    m2.u.propose.block = alt;
    m2.u.propose.ids_only = m->u.propose.ids_only; /* both compact: rebuilt from the mempool */
    m2.u.propose.vote = m->u.propose.vote;
    m2.u.propose.vote.hash = alt->hash;
    seq_vote_sign(&m2.u.propose.vote, b->key, 1);
    uint32_t honest_seen = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (i == b->idx)
            continue;
        if (s->nodes[i].byz) {
            transmit_msg(s, b->idx, i, m);
            transmit_msg(s, b->idx, i, &m2);
        } else {
            transmit_msg(s, b->idx, i, honest_seen++ % 2 == 0 ? m : &m2);
        }
    }
    /* Colluding: the leader also finalizes both, so each half can complete
     * a finalization with the Byzantine votes (only possible beyond f). */
    byz_vote(s, b, SEQ_VOTE_FINALIZE, a->h.view, &a->hash, SEQ_TO_ALL);
    byz_vote(s, b, SEQ_VOTE_FINALIZE, alt->h.view, &alt->hash, SEQ_TO_ALL);
    seq_block_free(alt);
}

static void byz_corrupt(sim *s, seq_msg *m)
{
    uint8_t bit = (uint8_t)(1u << rng_below(&s->r, 8));
    if (m->kind == SEQ_MSG_VOTE)
        m->u.vote.sig.b[rng_below(&s->r, SEQ_SIG_BYTES)] ^= bit;
    else if (m->kind == SEQ_MSG_PROPOSE)
        m->u.propose.vote.sig.b[rng_below(&s->r, SEQ_SIG_BYTES)] ^= bit;
    else if (m->kind == SEQ_MSG_CERT && m->u.cert.sig_count > 0)
        m->u.cert.sigs[0].b[rng_below(&s->r, SEQ_SIG_BYTES)] ^= bit;
}

static void byz_send(sim *s, node *b, uint32_t to, const seq_msg *m)
{
    if (b->byz_flags & BYZ_SILENT)
        return;
    if ((b->byz_flags & BYZ_GARBAGE) && rng_chance(&s->r, 0.2)) {
        uint8_t junk[64];
        size_t len = rng_below(&s->r, sizeof junk + 1);
        for (size_t i = 0; i < len; i++)
            junk[i] = (uint8_t)rng_next(&s->r);
        for (uint32_t i = 0; i < s->n; i++)
            transmit_bytes(s, b->idx, i, junk, len);
    }
    if ((b->byz_flags & BYZ_EQUIVOCATE) && m->kind == SEQ_MSG_PROPOSE && to == SEQ_TO_ALL) {
        byz_equivocate(s, b, m);
        return;
    }
    if ((b->byz_flags & BYZ_BAD_SIG) && rng_chance(&s->r, 0.3)) {
        seq_msg bad = *m;
        byz_corrupt(s, &bad);
        transmit_msg(s, b->idx, to, &bad);
        return;
    }
    transmit_msg(s, b->idx, to, m);
}

/* A double voter notarizes and finalizes every proposal it sees, full or
 * compact (it needs no payload to vote). */
static void byz_on_receive(sim *s, node *b, const seq_msg *m)
{
    if (!(b->byz_flags & BYZ_DOUBLE_VOTE) || (b->byz_flags & BYZ_SILENT))
        return;
    uint64_t view;
    const seq_hash *hash;
    if (m->kind == SEQ_MSG_PROPOSE) {
        view = m->u.propose.block->h.view;
        hash = &m->u.propose.block->hash;
    } else if (m->kind == SEQ_MSG_PROPOSE_IDS) {
        view = m->u.propose_ids.header.view;
        hash = &m->u.propose_ids.hash;
    } else {
        return;
    }
    byz_vote(s, b, SEQ_VOTE_NOTARIZE, view, hash, SEQ_TO_ALL);
    byz_vote(s, b, SEQ_VOTE_FINALIZE, view, hash, SEQ_TO_ALL);
}

/* ---- replica callbacks and checks ------------------------------------------------------------ */

static void io_send(void *ctx, uint32_t to, const seq_msg *m)
{
    node *nd = ctx;
    if (nd->byz)
        byz_send(nd->sim, nd, to, m);
    else
        transmit_msg(nd->sim, nd->idx, to, m);
}

static void io_set_timer(void *ctx, uint64_t deadline)
{
    node *nd = ctx;
    nd->timer_gen++;
    schedule(nd->sim, (event){.time = deadline, .kind = EV_TIMER, .node = nd->idx, .gen = nd->timer_gen});
}

static void io_fatal(void *ctx, int err, const char *what)
{
    node *nd = ctx;
    violate(nd->sim, "store", "node %u: %s: %s", nd->idx, what, seq_strerror(err));
}

/* [no honest double vote] across restarts too: the record lives in the
 * simulator, the node only has its store. */
static void io_signed_vote(void *ctx, const seq_vote *v)
{
    node *nd = ctx;
    sim *s = nd->sim;
    if (nd->byz)
        return;
    seq_hash key = {{0}};
    seq_put_u64be(key.b, v->view);
    key.b[31] = 1; /* never the all-zero id */
    void *p = NULL;
    vote_record *rec;
    if (seq_idset_get(&nd->votes, &key, &p)) {
        rec = p;
    } else {
        rec = calloc(1, sizeof *rec);
        if (!rec || seq_idset_put(&nd->votes, &key, rec) != 0)
            abort();
    }
    const char *clash = NULL;
    if (v->kind == SEQ_VOTE_NOTARIZE) {
        if (rec->has_notarize && !seq_hash_eq(&rec->notarize, &v->hash))
            clash = "two notarize votes";
        rec->has_notarize = true;
        rec->notarize = v->hash;
    } else if (v->kind == SEQ_VOTE_FINALIZE) {
        if ((rec->has_finalize && !seq_hash_eq(&rec->finalize, &v->hash)) || rec->has_nullify)
            clash = "finalize conflicts with an earlier finalize or nullify";
        rec->has_finalize = true;
        rec->finalize = v->hash;
    } else {
        if (rec->has_finalize)
            clash = "nullify after finalize";
        rec->has_nullify = true;
    }
    if (clash)
        violate(s, "no-honest-double-vote", "node %u view %" PRIu64 ": %s", nd->idx, v->view, clash);
}

/* [agreement] one block per height; [exactly once] each finalized tx was
 * submitted and sits at one height only. */
static void io_delivered(void *ctx, const seq_block *b, const seq_cert *cert)
{
    (void)cert;
    node *nd = ctx;
    sim *s = nd->sim;
    if (b->h.height != nd->final_height + 1)
        violate(s, "height-order", "node %u delivered height %" PRIu64 " after %" PRIu64, nd->idx,
                b->h.height, nd->final_height);
    nd->final_height = b->h.height;
    nd->final_view = b->h.view;
    if (nd->byz)
        return;
    if (b->h.height >= HEIGHTS_MAX) {
        violate(s, "bounded-heights", "height %" PRIu64 " beyond the simulator's table", b->h.height);
        return;
    }
    if (s->height_known[b->h.height] && !seq_hash_eq(&s->height_hash[b->h.height], &b->hash))
        violate(s, "agreement", "height %" PRIu64 ": node %u finalized %s, another node %s", b->h.height,
                nd->idx, seq_hash_short(&b->hash), seq_hash_short(&s->height_hash[b->h.height]));
    s->height_known[b->h.height] = true;
    s->height_hash[b->h.height] = b->hash;
    for (uint32_t i = 0; i < b->tx_count; i++) {
        const seq_hash *id = &b->txs[i].id;
        if (!seq_idset_get(&s->submitted, id, NULL))
            violate(s, "finalized-was-submitted", "height %" PRIu64 " holds a tx nobody submitted",
                    b->h.height);
        void *at = NULL;
        if (seq_idset_get(&s->finalized, id, &at)) {
            if ((uint64_t)(uintptr_t)at != b->h.height)
                violate(s, "finalized-once", "tx %s finalized at heights %" PRIu64 " and %" PRIu64,
                        seq_hash_short(id), (uint64_t)(uintptr_t)at, b->h.height);
        } else if (seq_idset_put(&s->finalized, id, (void *)(uintptr_t)b->h.height) != 0) {
            abort();
        }
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes a node's data directory (no shell: the simulator runs it per seed). */
static void rm_tree(const char *dir)
{
    if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        fprintf(stderr, "sim: could not remove %s: %s\n", dir, strerror(errno));
}

/* ---- node life cycle ------------------------------------------------------------------------ */

static int node_boot(sim *s, node *nd)
{
    if (s->plant_amnesia && mkdir(nd->dir, 0700) != 0) { /* exists: this is a restart */
        rm_tree(nd->dir);
        if (mkdir(nd->dir, 0700) != 0)
            return SEQ_EIO;
        nd->final_height = 0;
    }
    seq_store_opts so = {.chain_id = 1, .map_bytes = 64u << 20, .no_sync = true};
    int rc = seq_store_open(&nd->store, nd->dir, &so);
    if (rc != 0)
        return rc;
    seq_replica_config cfg = {
        .consensus = {.chain_id = 1, .validators = &s->vs, .self = nd->idx, .key = nd->key,
                      .view_timeout_ms = VIEW_TIMEOUT_MS},
        .mempool = {.txs_max = 10000, .bytes_max = 8u << 20, .tx_bytes_max = 4096, .namespaces_max = 64,
                    .recent_max = 20000},
        .block_txs_max = 64,
        .block_bytes_max = 1u << 20,
        .store = nd->store,
        .compact_proposals = nd->compact,
    };
    seq_replica_io io = {.ctx = nd, .send = io_send, .set_timer = io_set_timer, .delivered = io_delivered,
                         .signed_vote = io_signed_vote, .fatal = io_fatal};
    if ((rc = seq_replica_new(&nd->replica, &cfg, &io)) != 0) {
        seq_store_close(nd->store);
        nd->store = NULL;
        return rc;
    }
    seq_store_tip tip;
    if (seq_store_tip_get(nd->store, &tip) == 0) {
        nd->final_height = tip.height;
        nd->final_view = tip.view;
    }
    nd->up = true;
    rc = seq_replica_start(nd->replica, s->now);
    /* Its links come up: both ends send their durable votes (seqd does this
     * on every link up; after a restart of every node it is what re-forms the
     * certificates that died with their memory). */
    for (uint32_t p = 0; rc == 0 && p < s->n; p++) {
        node *peer = &s->nodes[p];
        if (p == nd->idx || !peer->up)
            continue;
        if (seq_replica_peer_up(nd->replica, p) != 0 || seq_replica_peer_up(peer->replica, nd->idx) != 0)
            rc = SEQ_ESTORE;
    }
    return rc;
}

static void node_crash(node *nd)
{
    if (!nd->up)
        return;
    seq_replica_free(nd->replica);
    seq_store_close(nd->store);
    nd->replica = NULL;
    nd->store = NULL;
    nd->up = false;
    nd->timer_gen++; /* pending timers are void */
}

/* ---- one seed ------------------------------------------------------------------------------ */

static void faults_pick(sim *s)
{
    static const double drops[] = {0, 0, 0.01, 0.05, 0.2};
    s->f.drop_p = drops[rng_below(&s->r, 5)];
    s->f.dup_p = rng_chance(&s->r, 0.3) ? 0.05 : 0;
    s->f.delay_ms = 1 + (uint32_t)rng_below(&s->r, 10);
    s->f.jitter_ms = (uint32_t)rng_below(&s->r, 40);
    s->f.partition = rng_chance(&s->r, 0.3);
    uint64_t phase = s->views_target * VIEW_TIMEOUT_MS / 2;
    /* Now and then a long slow period: messages take longer than the view
     * timeout, so view after view is nullified, for more views than the
     * consensus holds in memory and more own votes than a restart loads; then
     * a restart right after it. Progress must resume after the heal. */
    s->f.outage = rng_chance(&s->r, 1.0 / 40);
    if (s->f.outage) {
        s->f.outage_from = rng_below(&s->r, phase);
        s->f.outage_to = s->f.outage_from + OUTAGE_VIEWS * 3 * VIEW_TIMEOUT_MS;
        for (uint32_t i = 0; i < s->n; i++)
            if (!s->nodes[i].byz) {
                schedule(s, (event){.time = s->f.outage_to, .kind = EV_CRASH, .node = i});
                schedule(s, (event){.time = s->f.outage_to + 1, .kind = EV_RESTART, .node = i});
                break;
            }
        phase = s->f.outage_to + VIEW_TIMEOUT_MS;
    }
    s->phase_ms = phase;
    s->f.partition_from = rng_below(&s->r, phase);
    s->f.partition_to = s->f.partition_from + rng_below(&s->r, phase);
    for (uint32_t i = 0; i < s->n; i++)
        s->nodes[i].group = (uint32_t)rng_below(&s->r, 2);
    s->f.crashes = rng_chance(&s->r, 0.4) ? 1 + (uint32_t)rng_below(&s->r, 2) : 0;
    if (s->plant_amnesia)
        s->f.crashes = 4;
    /* Now and then every honest node crashes at once (an operator restarting
     * the whole network): whatever lived only in memory is gone everywhere. */
    /* Not after a long slow period: a whole-network crash then loses the
     * nullification certificates of more views than the consensus window
     * holds, and nothing rebuilds them yet (docs/design.md, known limits). */
    s->f.crash_all = !s->plant_amnesia && !s->f.outage && rng_chance(&s->r, 1.0 / 10);
    if (s->f.crash_all) {
        uint64_t at = rng_below(&s->r, phase);
        for (uint32_t i = 0; i < s->n; i++)
            if (!s->nodes[i].byz) {
                schedule(s, (event){.time = at, .kind = EV_CRASH, .node = i});
                schedule(s, (event){.time = at + 1 + rng_below(&s->r, VIEW_TIMEOUT_MS), .kind = EV_RESTART,
                                    .node = i});
            }
    }
    /* Crash and restart honest nodes in the fault phase; all are back by the heal. */
    for (uint32_t c = 0; c < s->f.crashes; c++) {
        uint32_t victim = (uint32_t)rng_below(&s->r, s->n);
        if (s->nodes[victim].byz)
            continue;
        uint64_t at = rng_below(&s->r, phase);
        uint64_t back = at + 1 + rng_below(&s->r, s->plant_amnesia ? VIEW_TIMEOUT_MS : phase - at);
        schedule(s, (event){.time = at, .kind = EV_CRASH, .node = victim});
        schedule(s, (event){.time = back, .kind = EV_RESTART, .node = victim});
    }
    schedule(s, (event){.time = phase, .kind = EV_HEAL});
    /* Compact proposals meet dropped and late gossip here, so their rebuild
     * and whole-block fetch run under every fault; full ones stay covered. */
    for (uint32_t i = 0; i < s->n; i++)
        s->nodes[i].compact = !rng_chance(&s->r, 0.25);
}

static void byzantine_pick(sim *s)
{
    for (uint32_t placed = 0; placed < s->byz_count;) {
        node *nd = &s->nodes[rng_below(&s->r, s->n)];
        if (nd->byz)
            continue;
        nd->byz = true;
        do
            nd->byz_flags = (uint32_t)rng_below(&s->r, 32);
        while (nd->byz_flags == 0);
        placed++;
    }
}

static void client_submit(sim *s)
{
    uint32_t target = (uint32_t)rng_below(&s->r, s->n);
    node *nd = &s->nodes[target];
    uint32_t burst = 1 + (uint32_t)rng_below(&s->r, 4);
    for (uint32_t i = 0; nd->up && i < burst; i++) {
        uint8_t payload[48];
        int len = snprintf((char *)payload, sizeof payload, "seed%" PRIu64 "-tx%" PRIu64, s->seed, s->tx_counter++);
        seq_ns ns = 1 + rng_below(&s->r, 4);
        seq_hash id;
        if (seq_replica_submit(nd->replica, ns, payload, (uint32_t)len, &id) == 0 &&
            seq_idset_put(&s->submitted, &id, (void *)1) != 0 && !seq_idset_get(&s->submitted, &id, NULL))
            abort();
    }
    if (nd->up)
        seq_replica_gossip_flush(nd->replica);
    schedule(s, (event){.time = s->now + SUBMIT_EVERY_MS, .kind = EV_SUBMIT});
}

static void deliver(sim *s, const event *e)
{
    node *nd = &s->nodes[e->node];
    if (!nd->up)
        return;
    seq_msg m;
    if (seq_msg_decode(&m, e->bytes, e->len) != 0)
        return; /* a garbage frame: dropped, as a peer link would */
    if (nd->byz)
        byz_on_receive(s, nd, &m);
    int rc = seq_replica_receive(nd->replica, s->now, e->from, &m);
    seq_msg_release(&m);
    if (rc != 0)
        node_crash(nd);
}

static uint64_t honest_min(sim *s, bool height)
{
    uint64_t min = UINT64_MAX;
    for (uint32_t i = 0; i < s->n; i++)
        if (!s->nodes[i].byz) {
            uint64_t v = height ? s->nodes[i].final_height : s->nodes[i].final_view;
            if (v < min)
                min = v;
        }
    return min;
}

static uint64_t honest_max_height(sim *s)
{
    uint64_t max = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (!s->nodes[i].byz && s->nodes[i].final_height > max)
            max = s->nodes[i].final_height;
    return max;
}

static void run_event(sim *s, event *e)
{
    node *nd = &s->nodes[e->node];
    switch (e->kind) {
    case EV_DELIVER:
        deliver(s, e);
        break;
    case EV_TIMER:
        if (nd->up && e->gen == nd->timer_gen && seq_replica_timeout(nd->replica, s->now) != 0)
            node_crash(nd);
        break;
    case EV_SUBMIT:
        client_submit(s);
        break;
    case EV_CRASH:
        if (s->verbose)
            printf("t=%" PRIu64 " crash node=%u\n", s->now, e->node);
        node_crash(nd);
        break;
    case EV_RESTART:
        if (!nd->up) {
            if (s->verbose)
                printf("t=%" PRIu64 " restart node=%u\n", s->now, e->node);
            int rc = node_boot(s, nd);
            if (rc != 0)
                violate(s, "restart", "node %u could not restart from its store: %s", e->node, seq_strerror(rc));
        }
        break;
    case EV_CONTINUE:
        nd->continue_scheduled = false;
        if (nd->up && seq_replica_continue(nd->replica, s->now) != 0)
            node_crash(nd);
        break;
    case EV_HEAL:
        s->healed = true;
        s->heal_time = s->now;
        s->heal_height = honest_max_height(s);
        for (uint32_t i = 0; i < s->n; i++)
            if (!s->nodes[i].up && !s->nodes[i].byz && node_boot(s, &s->nodes[i]) != 0)
                violate(s, "restart", "node %u could not restart at heal", i);
        break;
    }
    free(e->bytes);
    e->bytes = NULL;
    /* A replica with queued answers gets to finish them in this same tick. */
    for (uint32_t i = 0; i < s->n; i++)
        if (s->nodes[i].up && seq_replica_pending(s->nodes[i].replica) && !s->nodes[i].continue_scheduled) {
            s->nodes[i].continue_scheduled = true;
            schedule(s, (event){.time = s->now, .kind = EV_CONTINUE, .node = i});
        }
}

typedef struct {
    bool safety;
    bool liveness;
    uint64_t finalized_min;
    uint64_t final_view_min;
    uint64_t events;
    uint64_t compact_rebuilt; /* compact proposals the nodes up at the end rebuilt */
    uint64_t compact_fetched; /* ... and fetched whole */
} seed_result;

static int seed_setup(sim *s)
{
    for (uint32_t i = 0; i < s->n; i++) {
        node *nd = &s->nodes[i];
        memset(nd, 0, sizeof *nd);
        nd->sim = s;
        nd->idx = i;
        uint8_t seed_bytes[SEQ_SEED_BYTES] = {0};
        seq_put_u64be(seed_bytes, s->seed);
        seq_put_u32be(seed_bytes + 8, i);
        seed_bytes[12] = 0x5e;
        if (seq_keypair_from_seed(&nd->key, seed_bytes) != 0)
            return SEQ_ENOMEM;
        snprintf(nd->dir, sizeof nd->dir, "%.200s/seed%" PRIu64 "-node%u", s->root, s->seed, i);
        rm_tree(nd->dir);
        if (mkdir(nd->dir, 0700) != 0)
            return SEQ_EIO;
    }
    seq_pubkey keys[NODES_MAX];
    for (uint32_t i = 0; i < s->n; i++)
        keys[i] = s->nodes[i].key->pk;
    return seq_validators_init(&s->vs, keys, s->n);
}

static void seed_teardown(sim *s)
{
    while (s->events.count > 0) {
        event e = heap_pop(&s->events);
        free(e.bytes);
    }
    for (uint32_t i = 0; i < s->n; i++) {
        node *nd = &s->nodes[i];
        node_crash(nd);
        seq_keypair_free(nd->key);
        for (uint32_t k = 0; k < nd->votes.cap; k++)
            free(nd->votes.slots[k].value);
        if (nd->votes.zero_present)
            free(nd->votes.zero_value);
        seq_idset_free(&nd->votes);
        rm_tree(nd->dir);
    }
    seq_idset_free(&s->submitted);
    seq_idset_free(&s->finalized);
}

static seed_result run_seed(sim *s, uint64_t seed)
{
    seed_result res = {0};
    s->seed = seed;
    s->r.s = seed * 0x2545F4914F6CDD1Dull + 1;
    s->now = 0;
    s->seq = 0;
    s->healed = false;
    s->violation = NULL;
    s->detail[0] = 0;
    s->liveness_failed = false;
    s->tx_counter = 0;
    memset(s->height_known, 0, HEIGHTS_MAX * sizeof *s->height_known);
    seq_idset_init(&s->submitted);
    seq_idset_init(&s->finalized);
    if (seed_setup(s) != 0) {
        fprintf(stderr, "sim: seed=%" PRIu64 " setup failed\n", seed);
        res.safety = true;
        return res;
    }
    byzantine_pick(s);
    faults_pick(s);
    for (uint32_t i = 0; i < s->n; i++)
        if (node_boot(s, &s->nodes[i]) != 0)
            violate(s, "boot", "node %u did not start", i);
    schedule(s, (event){.time = 1, .kind = EV_SUBMIT});

    uint64_t deadline = s->phase_ms + (s->views_target + LIVENESS_SLACK_VIEWS) * VIEW_TIMEOUT_MS * 2;
    while (!s->violation && s->events.count > 0) {
        event e = heap_pop(&s->events);
        s->now = e.time;
        res.events++;
        run_event(s, &e);
        if (s->healed && honest_min(s, false) >= s->views_target && honest_min(s, true) > s->heal_height)
            break;
        if (s->now > deadline) {
            s->liveness_failed = true;
            break;
        }
    }
    res.safety = s->violation != NULL;
    res.liveness = s->liveness_failed && !res.safety;
    res.finalized_min = honest_min(s, true);
    res.final_view_min = honest_min(s, false);
    if (res.safety)
        printf("seed=%" PRIu64 " violation=%s %s\n", seed, s->violation, s->detail);
    if (res.liveness)
        printf("seed=%" PRIu64 " liveness_failure: honest nodes stuck at final view %" PRIu64
               " (target %" PRIu64 ") %" PRIu64 " ms after the heal\n",
               seed, res.final_view_min, s->views_target, s->now - s->heal_time);
    fflush(stdout); /* a failure shows up at once, even when stdout is a file */
    for (uint32_t i = 0; i < s->n; i++) {
        node *nd = &s->nodes[i];
        seq_replica_status st = {0};
        if (nd->up)
            seq_replica_status_get(nd->replica, &st);
        res.compact_rebuilt += st.proposals_rebuilt;
        res.compact_fetched += st.proposals_fetched;
        if (!res.liveness && !s->verbose)
            continue;
        printf("  node=%u %s%s view=%" PRIu64 " final_height=%" PRIu64 " final_view=%" PRIu64
               " blocks_held=%u dropped=%" PRIu64 " byz_flags=%u\n",
               i, nd->up ? "up" : "down", nd->byz ? " byzantine" : "", st.consensus.view, nd->final_height,
               nd->final_view, st.consensus.blocks_held, st.consensus.msgs_dropped, nd->byz_flags);
    }
    if (s->verbose)
        printf("seed=%" PRIu64 " events=%" PRIu64 " finalized_min=%" PRIu64 " txs_submitted=%u txs_finalized=%u"
               " drop=%.2f partition=%d crashes=%u crash_all=%d outage=%d\n",
               seed, res.events, res.finalized_min, seq_idset_count(&s->submitted), seq_idset_count(&s->finalized),
               s->f.drop_p, s->f.partition, s->f.crashes, s->f.crash_all, s->f.outage);
    seed_teardown(s);
    return res;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: seq-sim [--seeds K] [--seed S] [--nodes N] [--byzantine B] [--views V] [--verbose]\n"
            "               [--plant amnesia]\n"
            "  Runs K seeds starting at S (default: K=1, S=1) of an N-node cluster (default 4,\n"
            "  at most %d) with B Byzantine validators (default (N-1)/3), each run lasting until\n"
            "  every honest node has finalized a block at view V (default 30) after the network heals.\n"
            "  A failing seed is printed as seed=N; `seq-sim --seed N` replays it exactly.\n"
            "  Exit status 0 only when no safety violation and no liveness failure was found.\n"
            "  --plant amnesia plants a bug to show the checker works: crashed nodes restart\n"
            "  with an empty store, forgetting their votes; it must be reported.\n",
            NODES_MAX);
}

static bool parse_u64(const char *arg, const char *name, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || *end || end == arg || v < lo || v > hi) {
        fprintf(stderr, "seq-sim: --%s must be an integer in [%" PRIu64 ", %" PRIu64 "], got '%s'\n", name, lo, hi,
                arg);
        return false;
    }
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    uint64_t seeds = 1, first = 1, nodes = 4, byz = UINT64_MAX, views = 30;
    bool verbose = false, amnesia = false;
    static const struct option opts[] = {
        {"seeds", required_argument, 0, 'k'}, {"seed", required_argument, 0, 's'},
        {"nodes", required_argument, 0, 'n'}, {"byzantine", required_argument, 0, 'b'},
        {"views", required_argument, 0, 'v'}, {"verbose", no_argument, 0, 'V'},
        {"plant", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'k': ok = parse_u64(optarg, "seeds", 1, 1000000, &seeds); break;
        case 's': ok = parse_u64(optarg, "seed", 0, UINT64_MAX / 2, &first); break;
        case 'n': ok = parse_u64(optarg, "nodes", 1, NODES_MAX, &nodes); break;
        case 'b': ok = parse_u64(optarg, "byzantine", 0, NODES_MAX, &byz); break;
        case 'v': ok = parse_u64(optarg, "views", 4, 10000, &views); break;
        case 'V': verbose = true; break;
        case 'p':
            if (strcmp(optarg, "amnesia") != 0) {
                fprintf(stderr, "seq-sim: --plant knows only 'amnesia', got '%s'\n", optarg);
                return 2;
            }
            amnesia = true;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (!ok)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "seq-sim: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (byz == UINT64_MAX)
        byz = (nodes - 1) / 3;
    if (byz >= nodes) {
        fprintf(stderr, "seq-sim: --byzantine must be below --nodes\n");
        return 2;
    }
    if (seq_crypto_init() != 0)
        return 1;
    seq_log_set_level(verbose ? SEQ_LOG_WARN : SEQ_LOG_OFF);

    sim *s = calloc(1, sizeof *s);
    if (!s)
        return 1;
    s->n = (uint32_t)nodes;
    s->byz_count = (uint32_t)byz;
    s->views_target = views;
    s->verbose = verbose;
    s->plant_amnesia = amnesia;
    s->events.items = malloc(EVENTS_MAX * sizeof(event));
    s->height_hash = malloc(HEIGHTS_MAX * sizeof *s->height_hash);
    s->height_known = malloc(HEIGHTS_MAX * sizeof *s->height_known);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->root, sizeof s->root, "%s/seq-sim-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!s->events.items || !s->height_hash || !s->height_known || !mkdtemp(s->root)) {
        fprintf(stderr, "seq-sim: cannot set up (memory or temporary directory)\n");
        return 1;
    }

    uint64_t safety = 0, liveness = 0, finalized_min = UINT64_MAX, views_sum = 0, rebuilt = 0, fetched = 0;
    for (uint64_t i = 0; i < seeds; i++) {
        seed_result r = run_seed(s, first + i);
        safety += r.safety;
        liveness += r.liveness;
        if (r.finalized_min < finalized_min)
            finalized_min = r.finalized_min;
        views_sum += r.final_view_min;
        rebuilt += r.compact_rebuilt;
        fetched += r.compact_fetched;
        if (!verbose && seeds >= 100 && (i + 1) % (seeds / 10) == 0)
            fprintf(stderr, "sim: %" PRIu64 "/%" PRIu64 " seeds, %" PRIu64 " violations so far\n", i + 1, seeds,
                    safety + liveness);
    }
    rm_tree(s->root);
    printf("sim: views_finalized_avg=%.1f (lowest final view among honest nodes, averaged over seeds)\n",
           (double)views_sum / (double)seeds);
    printf("sim: compact_proposals rebuilt=%" PRIu64 " fetched=%" PRIu64
           " (received by the nodes up at each seed's end)\n", rebuilt, fetched);
    printf("sim: seeds=%" PRIu64 " nodes=%" PRIu64 " byzantine=%" PRIu64 " safety_violations=%" PRIu64
           " liveness_failures=%" PRIu64 " finalized_min=%" PRIu64 "\n",
           seeds, nodes, byz, safety, liveness, finalized_min == UINT64_MAX ? 0 : finalized_min);
    free(s->events.items);
    free(s->height_hash);
    free(s->height_known);
    free(s);
    return safety == 0 && liveness == 0 ? 0 : 1;
}
