/* Wires consensus, mempool and store into one validator, and carries out the
 * consensus actions in order: a vote is persisted before anything after it is
 * sent (etcd's Ready rule), finalized blocks are committed in one write
 * transaction per step, then removed from the mempool.
 *
 * Happy path of one event: seq_consensus_step -> actions; first the step's
 * own votes are written in one LMDB transaction, then SEND/BROADCAST go to
 * io->send in order, then DELIVER blocks are committed together; BUILD and
 * VERIFY are answered with follow-up
 * events (PAYLOAD, VERIFIED) after the list is done, since the action
 * pointers only live until the next step. */
#include "replica.h"

#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "errors.h"
#include "idset.h"
#include "log.h"
#include "votelog.h"

/* A step's own votes and the blocks they notarize go to the vote log in one
 * append (seq_store_write_votes). */
_Static_assert(SEQ_ACTIONS_MAX <= SEQ_VOTELOG_APPEND_MAX, "a step's votes must fit one vote log append");

#define FOLLOWUPS_MAX 256      /* BUILD/VERIFY answers waiting; far above one step's few */
#define FOLLOWUPS_PER_CALL 32  /* answered per call; the rest wait for seq_replica_continue */
#define GOSSIP_BYTES_MAX (64u << 20)
#define MEMPOOL_PREFETCH_AHEAD 8 /* transactions of a gossip frame or client batch prefetched ahead of adding */

typedef struct {
    seq_ns ns;
    uint32_t len;
    size_t offset;
    seq_hash id; /* hashed once, when submitted */
} gossip_entry;

/* Answers to BUILD / VERIFY, queued while an action list is carried out and
 * fed back as events afterwards (the list's pointers die with the next step). */
typedef struct {
    seq_event_kind kind; /* SEQ_EV_PAYLOAD or SEQ_EV_VERIFIED */
    uint64_t view;
    seq_hash hash; /* PAYLOAD: the parent; VERIFIED: the block */
} followup;

/* A compact proposal that named transactions we lack, waiting for the
 * whole block asked of its leader (one per leader: its newest). */
typedef struct {
    bool used;
    seq_hash hash;
    seq_vote vote;
} parked_proposal;

#define COMPACT_SEEN_MAX 8 /* compact proposals remembered as handled (repeats cost nothing) */

struct seq_replica {
    seq_replica_config cfg;
    seq_replica_io io;
    seq_consensus *consensus;
    seq_mempool *mempool;
    seq_actions *actions;
    seq_tx *batch;          /* block_txs_max, for the builder */
    seq_store_final *finals; /* SEQ_ACTIONS_MAX, for one commit */
    seq_vote *step_votes;     /* SEQ_ACTIONS_MAX, own votes of one step */
    const seq_block **step_keep; /* SEQ_ACTIONS_MAX, blocks those votes notarize */
    seq_hash *final_ids;
    size_t final_ids_cap;
    followup followups[FOLLOWUPS_MAX]; /* ring */
    uint32_t followup_head;
    uint32_t followup_count;
    gossip_entry *gossip;
    uint32_t gossip_count;
    uint8_t *gossip_buf;
    size_t gossip_len;
    size_t gossip_cap;
    uint64_t finalized_txs;
    uint64_t gossip_dropped;
    uint64_t expired_txs;
    uint64_t evicted_txs;
    followup held;             /* a BUILD held back for lack of transactions */
    uint64_t held_since_ms;
    uint64_t held_until_ms;    /* the held BUILD's parent is old enough then */
    seq_hash last_final_hash;  /* the newest finalized block, whose header */
    uint64_t last_final_ts_ms; /* consensus may no longer hold: its timestamp */
    bool holding;
    parked_proposal *parked;   /* per validator, as leader */
    seq_hash compact_seen[COMPACT_SEEN_MAX]; /* ring */
    uint32_t compact_seen_next;
    seq_tx *rebuild;           /* a compact proposal's transactions, from the mempool */
    uint32_t rebuild_cap;
    uint64_t proposals_rebuilt;
    uint64_t proposals_fetched;
    uint64_t *block_req_view;  /* per peer: our view when it last asked for a block */
    uint32_t *block_req_count; /* per peer: requests served in that view */
    bool failed;
};

/* ---- ancestry ------------------------------------------------------------------ */

/* Ids of every transaction in `from` and its unfinalized ancestors held by the
 * consensus (finalized ones are in the store's tx index instead). */
static int ancestor_ids(seq_replica *r, const seq_hash *from, seq_idset *ids)
{
    const seq_block *b = seq_consensus_block_find(r->consensus, from);
    for (uint32_t depth = 0; b && depth < SEQ_BLOCKS_MAX; depth++) {
        for (uint32_t i = 0; i < b->tx_count; i++) {
            int rc = seq_idset_put(ids, &b->txs[i].id, NULL);
            if (rc != 0 && rc != SEQ_EEXISTS)
                return rc;
        }
        b = seq_consensus_block_find(r->consensus, &b->h.parent);
    }
    return 0;
}

static bool excluded(void *ctx, const seq_hash *id)
{
    return seq_idset_get(ctx, id, NULL);
}

/* ---- BUILD and VERIFY answers --------------------------------------------------- */

static void followup_add(seq_replica *r, seq_event_kind kind, uint64_t view, const seq_hash *hash)
{
    if (r->followup_count == FOLLOWUPS_MAX) { /* costs at most that view */
        SEQ_WARN("followups_full", "view=%llu", (unsigned long long)view);
        return;
    }
    r->followups[(r->followup_head + r->followup_count++) % FOLLOWUPS_MAX] = (followup){kind, view, *hash};
}

/* The leader's payload: fair batch from the mempool, minus what the parent
 * chain already carries (no re-proposal of notarized, unfinalized txs). */
/* Drops from the batch (and the mempool) transactions already finalized:
 * gossip is admitted against the mempool's memory of recent finalized ids
 * only, so an old one replayed past that window is caught here, in one store
 * lookup per proposal instead of one per gossiped transaction on every node. */
static uint32_t drop_finalized(seq_replica *r, uint32_t n)
{
    if (n == 0)
        return 0;
    if (n > r->final_ids_cap) {
        seq_hash *grown = realloc(r->final_ids, n * sizeof *grown);
        if (!grown)
            return 0;
        r->final_ids = grown;
        r->final_ids_cap = n;
    }
    bool *found = calloc(n, sizeof *found);
    for (uint32_t i = 0; found && i < n; i++)
        r->final_ids[i] = r->batch[i].id;
    if (!found || seq_store_txs_finalized(r->cfg.store, r->final_ids, n, found) != 0) {
        free(found);
        return 0; /* propose nothing rather than something unchecked */
    }
    uint32_t kept = 0, gone = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (found[i])
            r->final_ids[gone++] = r->batch[i].id;
        else
            r->batch[kept++] = r->batch[i];
    }
    if (gone)
        seq_mempool_remove_finalized(r->mempool, r->final_ids, gone);
    free(found);
    return kept;
}

static uint32_t build_payload(seq_replica *r, const seq_hash *parent)
{
    seq_idset ids;
    seq_idset_init(&ids);
    uint32_t n = 0;
    if (ancestor_ids(r, parent, &ids) != 0 ||
        seq_mempool_build(r->mempool, r->cfg.block_txs_max, r->cfg.block_bytes_max, excluded, &ids, r->batch,
                          &n) != 0)
        n = 0;
    seq_idset_free(&ids);
    return drop_finalized(r, n);
}

/* A proposal's transactions are acceptable when within our limits, none is
 * finalized already and none is in the block's unfinalized ancestors. */
static bool payload_valid(seq_replica *r, const seq_block *b)
{
    if (b->tx_count > r->cfg.block_txs_max || b->payload_bytes > r->cfg.block_bytes_max)
        return false;
    for (uint32_t i = 0; i < b->tx_count; i++)
        if (b->txs[i].len > r->cfg.mempool.tx_bytes_max)
            return false;
    if (b->tx_count == 0)
        return true;
    seq_hash *ids = malloc(b->tx_count * sizeof *ids);
    bool *found = malloc(b->tx_count * sizeof *found);
    seq_idset anc;
    seq_idset_init(&anc);
    bool ok = ids && found;
    if (ok) {
        for (uint32_t i = 0; i < b->tx_count; i++)
            ids[i] = b->txs[i].id;
        ok = seq_store_txs_finalized(r->cfg.store, ids, b->tx_count, found) == 0;
    }
    for (uint32_t i = 0; ok && i < b->tx_count; i++)
        ok = !found[i];
    ok = ok && ancestor_ids(r, &b->h.parent, &anc) == 0;
    for (uint32_t i = 0; ok && i < b->tx_count; i++)
        ok = !seq_idset_get(&anc, &b->txs[i].id, NULL);
    seq_idset_free(&anc);
    free(ids);
    free(found);
    return ok;
}

/* ---- carrying out actions ---------------------------------------------------------- */

static int fail(seq_replica *r, int rc, const char *what)
{
    r->failed = true;
    SEQ_ERROR("node_fatal", "what=%s err=%s", what, seq_strerror(rc));
    if (r->io.fatal)
        r->io.fatal(r->io.ctx, rc, what);
    return rc;
}

/* A finalized block is out of the mempool for good, and announced. */
static int forget_finalized(seq_replica *r, const seq_block *b, const seq_cert *cert)
{
    if (b->tx_count > r->final_ids_cap) {
        seq_hash *grown = realloc(r->final_ids, b->tx_count * sizeof *grown);
        if (!grown)
            return fail(r, SEQ_ENOMEM, "mempool cleanup");
        r->final_ids = grown;
        r->final_ids_cap = b->tx_count;
    }
    for (uint32_t t = 0; t < b->tx_count; t++)
        r->final_ids[t] = b->txs[t].id;
    seq_mempool_remove_finalized(r->mempool, r->final_ids, b->tx_count);
    r->finalized_txs += b->tx_count;
    if (r->io.delivered)
        r->io.delivered(r->io.ctx, b, cert);
    return 0;
}

/* Drops the leading blocks range sync already stored (the consensus learns of
 * them only later). Returns how many to skip, or a negative error when a stored
 * block at that height is another one: two finalized blocks at one height. */
static int already_stored(seq_replica *r, uint32_t n)
{
    seq_store_tip tip;
    int rc = seq_store_tip_get(r->cfg.store, &tip);
    if (rc != 0)
        return fail(r, rc, "read store tip");
    uint32_t skip = 0;
    while (skip < n && r->finals[skip].block->h.height <= tip.height) {
        uint64_t height;
        const seq_block *b = r->finals[skip].block;
        if (seq_store_height_of(r->cfg.store, &b->hash, &height) != 0 || height != b->h.height)
            return fail(r, SEQ_EMISMATCH, "finalized block conflicts with the stored one");
        skip++;
    }
    return (int)skip;
}

/* Phase one of a step: its own votes, all in one store transaction, before
 * anything of the step is sent (persist before send for the whole list; a
 * failed write leaves the step silent). */
static int persist_votes(seq_replica *r)
{
    uint32_t nv = 0, nk = 0;
    for (uint32_t i = 0; i < r->actions->count; i++) {
        const seq_action *a = &r->actions->items[i];
        if (a->kind != SEQ_ACT_PERSIST_VOTE)
            continue;
        r->step_votes[nv++] = a->u.vote;
        /* the block we vote to notarize is kept until finalized (store.h) */
        const seq_block *b = a->u.vote.kind == SEQ_VOTE_NOTARIZE
                                 ? seq_consensus_block_find(r->consensus, &a->u.vote.hash)
                                 : NULL;
        if (b)
            r->step_keep[nk++] = b;
    }
    if (nv == 0)
        return 0;
    int rc = seq_store_write_votes(r->cfg.store, r->step_votes, nv, r->step_keep, nk);
    if (rc != 0)
        return fail(r, rc, "persist own vote");
    for (uint32_t i = 0; i < nv && r->io.signed_vote; i++)
        r->io.signed_vote(r->io.ctx, &r->step_votes[i]);
    return 0;
}

/* Phase three: the finalized blocks of the step, after its messages are out
 * (peers need our votes more than we need the block on disk first).
 * Delivered (subscribers, mempool cleanup) before they are committed: the
 * quorum's certificate, not our disk, makes a block final, so subscribers
 * need not wait for our fsync (p99 at 27k tx/s: 8 ms less with the commit's
 * sync out of the way). A crash between the two loses nothing a subscriber
 * relies on: range sync fetches the same block and certificate again. */
static int commit_finals(seq_replica *r)
{
    uint32_t nf = 0;
    for (uint32_t i = 0; i < r->actions->count; i++) {
        const seq_action *a = &r->actions->items[i];
        if (a->kind == SEQ_ACT_DELIVER) {
            r->finals[nf].block = a->u.deliver.block;
            r->finals[nf].cert = a->u.deliver.cert;
            nf++;
        }
    }
    if (nf == 0)
        return 0;
    int skip = already_stored(r, nf);
    if (skip < 0)
        return skip;
    if ((uint32_t)skip == nf)
        return 0;
    int rc = 0;
    for (uint32_t i = (uint32_t)skip; i < nf; i++)
        if ((rc = forget_finalized(r, r->finals[i].block, r->finals[i].cert)) != 0)
            return rc;
    if ((rc = seq_store_commit_finalized(r->cfg.store, r->finals + skip, nf - (uint32_t)skip)) != 0)
        return fail(r, rc, "commit finalized blocks");
    r->last_final_hash = r->finals[nf - 1].block->hash;
    r->last_final_ts_ms = r->finals[nf - 1].block->h.timestamp_ms;
    return 0;
}

/* Our proposal goes out compact (header and tx ids) behind the gossip still
 * queued: on each link every transaction it names was offered before it. */
static void send_compact_if_proposal(seq_replica *r, uint32_t to, const seq_msg *m)
{
    if (m->kind != SEQ_MSG_PROPOSE || !r->cfg.compact_proposals) {
        r->io.send(r->io.ctx, to, m);
        return;
    }
    seq_replica_gossip_flush(r);
    seq_msg compact = *m;
    compact.u.propose.ids_only = true;
    r->io.send(r->io.ctx, to, &compact);
}

/* Phase two: the rest of the list, in order; then phase three. */
static int run_actions(seq_replica *r)
{
    int rc = persist_votes(r);
    if (rc != 0)
        return rc;
    for (uint32_t i = 0; i < r->actions->count; i++) {
        const seq_action *a = &r->actions->items[i];
        switch (a->kind) {
        case SEQ_ACT_BROADCAST:
            send_compact_if_proposal(r, SEQ_TO_ALL, a->u.send.msg);
            break;
        case SEQ_ACT_SEND:
            send_compact_if_proposal(r, a->u.send.to, a->u.send.msg);
            break;
        case SEQ_ACT_SET_TIMER:
            r->io.set_timer(r->io.ctx, a->u.deadline_ms);
            break;
        case SEQ_ACT_BUILD:
            followup_add(r, SEQ_EV_PAYLOAD, a->u.build.view, a->u.build.parent);
            break;
        case SEQ_ACT_VERIFY:
            /* judged after this step's commit, against the updated store */
            followup_add(r, SEQ_EV_VERIFIED, a->u.block->h.view, &a->u.block->hash);
            break;
        case SEQ_ACT_PERSIST_VOTE: /* done in persist_votes */
        case SEQ_ACT_DELIVER:      /* done in commit_finals */
        case SEQ_ACT_EQUIVOCATION: /* logged and kept by the consensus */
            break;
        }
    }
    return commit_finals(r);
}

static int step_once(seq_replica *r, const seq_event *ev)
{
    int rc = seq_consensus_step(r->consensus, ev, r->actions);
    SEQ_ASSERT(rc == 0);
    return run_actions(r);
}

/* Answers up to FOLLOWUPS_PER_CALL queued BUILD/VERIFY requests, each judged
 * now (after earlier commits). The bound keeps one call short even when every
 * answer leads to another (a single validator finalizes a block per answer). */
/* Feeds the consensus the answer to one queued BUILD or VERIFY. */
static int answer(seq_replica *r, const followup *f, uint64_t now)
{
    seq_event ev = {.kind = f->kind, .now_ms = now};
    if (f->kind == SEQ_EV_PAYLOAD) {
        ev.u.payload.view = f->view;
        ev.u.payload.txs = r->batch;
        ev.u.payload.count = build_payload(r, &f->hash);
    } else {
        const seq_block *b = seq_consensus_block_find(r->consensus, &f->hash);
        ev.u.verified.view = f->view;
        ev.u.verified.hash = f->hash;
        ev.u.verified.ok = b && payload_valid(r, b);
    }
    return step_once(r, &ev);
}

/* When a BUILD on this parent may be answered: once the parent is
 * block_interval_min_ms old by its timestamp, but never later than that long
 * from now (a leader whose clock runs ahead cannot hold us up longer). */
static uint64_t build_not_before(const seq_replica *r, const seq_hash *parent, uint64_t now)
{
    if (r->cfg.block_interval_min_ms == 0)
        return now;
    const seq_block *p = seq_consensus_block_find(r->consensus, parent);
    uint64_t ts;
    if (p)
        ts = p->h.timestamp_ms;
    else if (seq_hash_eq(parent, &r->last_final_hash))
        ts = r->last_final_ts_ms;
    else
        return now;
    uint64_t due = ts + r->cfg.block_interval_min_ms, latest = now + r->cfg.block_interval_min_ms;
    return due < latest ? due : latest;
}

/* Whether the held BUILD must wait still: for its parent to age, or, with
 * an empty mempool, for a transaction (up to empty_block_delay_ms). */
static bool build_waits(const seq_replica *r, uint64_t now)
{
    if (now < r->held_until_ms)
        return true;
    return r->cfg.empty_block_delay_ms > 0 && seq_mempool_count(r->mempool) == 0 &&
           now < r->held_since_ms + r->cfg.empty_block_delay_ms;
}

static int drain(seq_replica *r, uint64_t now)
{
    for (uint32_t done = 0; done < FOLLOWUPS_PER_CALL && r->followup_count > 0; done++) {
        followup f = r->followups[r->followup_head];
        r->followup_head = (r->followup_head + 1) % FOLLOWUPS_MAX;
        r->followup_count--;
        if (f.kind == SEQ_EV_PAYLOAD) {
            r->held = f; /* a newer BUILD supersedes an older one: that view is over */
            r->held_since_ms = now;
            r->held_until_ms = build_not_before(r, &f.hash, now);
            r->holding = build_waits(r, now);
            if (r->holding)
                continue;
        }
        int rc = answer(r, &f, now);
        if (rc != 0)
            return rc;
    }
    return 0;
}

const char *seq_drop_reason_name(int reason)
{
    switch (reason) {
    case SEQ_DROP_EXPIRED:
        return "expired";
    case SEQ_DROP_EVICTED:
        return "evicted";
    case SEQ_DROP_INVALID:
        return "invalid";
    default:
        return "unknown";
    }
}

static void expire_pending(seq_replica *r, uint64_t now_ms)
{
    if (r->cfg.tx_ttl_ms == 0)
        return;
    seq_hash expired[256];
    for (uint32_t done = 0; done < SEQ_EXPIRE_PER_TICK;) {
        uint32_t n = seq_mempool_expire(r->mempool, now_ms, r->cfg.tx_ttl_ms, expired, 256);
        if (n == 0)
            break;
        r->expired_txs += n;
        if (r->io.dropped)
            r->io.dropped(r->io.ctx, expired, n, SEQ_DROP_EXPIRED);
        done += n;
    }
}

int seq_replica_tick(seq_replica *r, uint64_t now_ms)
{
    if (r->failed)
        return SEQ_EIO;
    expire_pending(r, now_ms);
    if (!r->holding || build_waits(r, now_ms))
        return 0;
    r->holding = false;
    int rc = answer(r, &r->held, now_ms);
    return rc != 0 ? rc : drain(r, now_ms);
}

/* One event, then the follow-ups it led to. */
static int step(seq_replica *r, const seq_event *ev)
{
    if (r->failed)
        return SEQ_EIO;
    int rc = step_once(r, ev);
    return rc != 0 ? rc : drain(r, ev->now_ms);
}

/* ---- public ------------------------------------------------------------------------ */

int seq_replica_start(seq_replica *r, uint64_t now_ms)
{
    seq_event ev = {.kind = SEQ_EV_START, .now_ms = now_ms};
    return step(r, &ev);
}

bool seq_replica_pending(const seq_replica *r) { return !r->failed && r->followup_count > 0; }

int seq_replica_continue(seq_replica *r, uint64_t now_ms)
{
    return r->failed ? SEQ_EIO : drain(r, now_ms);
}

int seq_replica_timeout(seq_replica *r, uint64_t now_ms)
{
    seq_event ev = {.kind = SEQ_EV_TIMEOUT, .now_ms = now_ms};
    return step(r, &ev);
}

/* Serves a block from memory or the store, within a per-peer budget per view
 * so that one peer cannot keep us reading and sending blocks at will. */
static void serve_block(seq_replica *r, uint32_t to, const seq_hash *hash)
{
    seq_consensus_status st;
    seq_consensus_status_get(r->consensus, &st);
    if (r->block_req_view[to] != st.view) {
        r->block_req_view[to] = st.view;
        r->block_req_count[to] = 0;
    }
    if (r->block_req_count[to]++ >= SEQ_BLOCK_REQS_PER_VIEW_MAX)
        return;
    const seq_block *held = seq_consensus_block_find(r->consensus, hash);
    seq_block *stored = NULL;
    uint64_t height;
    if (!held && seq_store_height_of(r->cfg.store, hash, &height) == 0 &&
        seq_store_block_get(r->cfg.store, height, &stored) == 0)
        held = stored;
    if (!held && seq_store_kept_get(r->cfg.store, hash, &stored) == 0)
        held = stored; /* notarized, not finalized: kept across restarts */
    if (held) {
        seq_msg m = {.kind = SEQ_MSG_BLOCK, .u.block.block = (seq_block *)held};
        r->io.send(r->io.ctx, to, &m);
    }
    seq_block_free(stored);
}

/* Transactions a full mempool evicted for another namespace's: dropped. */
static void report_evicted(seq_replica *r)
{
    seq_hash ids[64];
    uint32_t n;
    uint64_t unreported = 0;
    while ((n = seq_mempool_take_evicted(r->mempool, ids, 64, &unreported)) > 0) {
        r->evicted_txs += n;
        if (r->io.dropped)
            r->io.dropped(r->io.ctx, ids, n, SEQ_DROP_EVICTED);
    }
    r->evicted_txs += unreported;
}

/* Gossiped transactions go into the mempool, which refuses ids pending or
 * recently finalized; an older finalized one is dropped when a proposal is
 * built (drop_finalized), and a peer's proposal with one is refused (VERIFY). */
static void accept_gossip(seq_replica *r, const seq_msg *m)
{
    const seq_tx *txs = m->u.txs.txs;
    uint32_t n = m->u.txs.count;
    for (uint32_t i = 0; i < n && i < MEMPOOL_PREFETCH_AHEAD; i++)
        seq_mempool_prefetch(r->mempool, &txs[i].id);
    for (uint32_t i = 0; i < n; i++) {
        if (i + MEMPOOL_PREFETCH_AHEAD < n)
            seq_mempool_prefetch(r->mempool, &txs[i + MEMPOOL_PREFETCH_AHEAD].id);
        (void)seq_mempool_add_tx(r->mempool, &txs[i]); /* ids computed by seq_msg_decode */
    }
    report_evicted(r);
}

static int step_message(seq_replica *r, uint64_t now_ms, uint32_t from, const seq_msg *m)
{
    seq_event ev = {.kind = SEQ_EV_MESSAGE, .now_ms = now_ms};
    ev.u.message.from = from;
    ev.u.message.msg = m;
    return step(r, &ev);
}

static int step_proposal(seq_replica *r, uint64_t now_ms, uint32_t from, seq_block *b, const seq_vote *vote)
{
    seq_msg m = {.kind = SEQ_MSG_PROPOSE, .u.propose = {.block = b, .vote = *vote}};
    return step_message(r, now_ms, from, &m);
}

/* Asks the leader for the whole block of a compact proposal we could not
 * rebuild. Each leader has one slot, its newest proposal, so no other
 * validator can push an honest leader's out. */
static void park_and_fetch(seq_replica *r, uint32_t from, const seq_msg *m)
{
    r->parked[from] = (parked_proposal){.used = true, .hash = m->u.propose_ids.hash, .vote = m->u.propose_ids.vote};
    r->proposals_fetched++;
    seq_msg req = {.kind = SEQ_MSG_BLOCK_REQ, .u.block_req.hash = m->u.propose_ids.hash};
    r->io.send(r->io.ctx, from, &req);
}

/* The parked proposal this block completes, taken out; false if none. */
static bool unpark(seq_replica *r, const seq_block *b, uint32_t *leader, seq_vote *vote)
{
    for (uint32_t i = 0; i < r->cfg.consensus.validators->n; i++) {
        if (r->parked[i].used && seq_hash_eq(&r->parked[i].hash, &b->hash)) {
            r->parked[i].used = false;
            *leader = i;
            *vote = r->parked[i].vote;
            return true;
        }
    }
    return false;
}

static bool rebuild_reserve(seq_replica *r, uint32_t n)
{
    if (n <= r->rebuild_cap)
        return true;
    seq_tx *grown = realloc(r->rebuild, n * sizeof *grown);
    if (!grown)
        return false;
    r->rebuild = grown;
    r->rebuild_cap = n;
    return true;
}

/* Before any work on a compact proposal: sent by its view's leader itself,
 * for a view the consensus would take a vote of, within our block limits,
 * and not one we handled already; true also records it as handled.
 * Rebuilding copies every payload named, so this keeps a small frame from
 * costing a large copy: only the leader can make us rebuild, once per
 * proposal. */
static bool compact_admit_first(seq_replica *r, uint32_t from, const seq_msg *m)
{
    const seq_vote *v = &m->u.propose_ids.vote;
    if (v->signer != from || seq_leader_of(r->cfg.consensus.validators, v->view) != from)
        return false;
    if (m->u.propose_ids.header.tx_count > r->cfg.block_txs_max)
        return false; /* a block VERIFY would refuse anyway */
    seq_consensus_status st;
    seq_consensus_status_get(r->consensus, &st);
    if (v->view <= st.final_view || v->view > st.view + SEQ_VOTE_VIEWS_AHEAD_MAX)
        return false;
    for (uint32_t i = 0; i < COMPACT_SEEN_MAX; i++)
        if (seq_hash_eq(&r->compact_seen[i], &m->u.propose_ids.hash))
            return false;
    r->compact_seen[r->compact_seen_next] = m->u.propose_ids.hash;
    r->compact_seen_next = (r->compact_seen_next + 1) % COMPACT_SEEN_MAX;
    return true;
}

/* The compact proposal's transactions from our mempool, into r->rebuild:
 * false when one is missing, or they exceed our block byte limit (then
 * *too_big). */
static bool rebuild_lookup(seq_replica *r, const seq_msg *m, bool *too_big)
{
    uint32_t n = m->u.propose_ids.header.tx_count;
    *too_big = false;
    if (!rebuild_reserve(r, n) || seq_mempool_lookup(r->mempool, m->u.propose_ids.ids, n, r->rebuild) > 0)
        return false;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n; i++)
        bytes += r->rebuild[i].len;
    *too_big = bytes > r->cfg.block_bytes_max;
    return !*too_big;
}

/* A compact proposal becomes the leader's block again from the transactions
 * our mempool holds (ids we computed ourselves, so the rebuilt block's
 * payload root checks the header); with any missing, the block is fetched. */
static int receive_compact(seq_replica *r, uint64_t now_ms, uint32_t from, const seq_msg *m)
{
    if (!compact_admit_first(r, from, m))
        return 0;
    bool too_big;
    if (!rebuild_lookup(r, m, &too_big)) {
        if (!too_big)
            park_and_fetch(r, from, m);
        return 0;
    }
    seq_block *b;
    int rc = seq_block_new_ided(&b, &m->u.propose_ids.header, r->rebuild, m->u.propose_ids.header.tx_count);
    if (rc == SEQ_ENOMEM) {
        park_and_fetch(r, from, m);
        return 0;
    }
    if (rc != 0) { /* ids that do not make the header's block: the leader lies */
        SEQ_DEBUG("compact_proposal_refused", "from=%u view=%llu err=%s", from,
                  (unsigned long long)m->u.propose_ids.header.view, seq_strerror(rc));
        return 0;
    }
    r->proposals_rebuilt++;
    rc = step_proposal(r, now_ms, from, b, &m->u.propose_ids.vote);
    seq_block_free(b);
    return rc;
}

/* A block: the proposal a parked compact one was waiting for, then also a
 * block (the consensus may have asked for it too, as a parent, and a
 * proposal it refused leaves that fetch open). */
static int receive_block(seq_replica *r, uint64_t now_ms, uint32_t from, const seq_msg *m)
{
    uint32_t leader;
    seq_vote parked_vote;
    if (unpark(r, m->u.block.block, &leader, &parked_vote)) {
        int rc = step_proposal(r, now_ms, leader, m->u.block.block, &parked_vote);
        if (rc != 0)
            return rc;
    }
    return step_message(r, now_ms, from, m);
}

int seq_replica_receive(seq_replica *r, uint64_t now_ms, uint32_t from, const seq_msg *m)
{
    if (r->failed)
        return SEQ_EIO;
    if (from >= r->cfg.consensus.validators->n || from == r->cfg.consensus.self)
        return 0;
    switch (m->kind) {
    case SEQ_MSG_BLOCK_REQ:
        serve_block(r, from, &m->u.block_req.hash);
        return 0;
    case SEQ_MSG_TXS:
        accept_gossip(r, m);
        return 0;
    case SEQ_MSG_PROPOSE_IDS:
        return receive_compact(r, now_ms, from, m);
    case SEQ_MSG_BLOCK:
        return receive_block(r, now_ms, from, m);
    default:
        return step_message(r, now_ms, from, m);
    }
}

static bool gossip_queue(seq_replica *r, const seq_tx *tx)
{
    uint32_t len = tx->len;
    if (r->gossip_count == SEQ_GOSSIP_PENDING_MAX || r->gossip_len + len > GOSSIP_BYTES_MAX)
        return false;
    if (seq_bytes_reserve(&r->gossip_buf, &r->gossip_cap, r->gossip_len + len, 4096) != 0)
        return false;
    if (len)
        memcpy(r->gossip_buf + r->gossip_len, tx->data, len);
    r->gossip[r->gossip_count++] = (gossip_entry){tx->ns, len, r->gossip_len, tx->id};
    r->gossip_len += len;
    return true;
}

/* A client's transaction, shaped and hashed: SEQ_EINVAL, SEQ_ETOOBIG (before
 * hashing it) or 0 with tx->id set. Hashed here once: the mempool and the
 * gossip queue take the id as it is (each hashing it again cost two BLAKE2b
 * passes per submitted tx). */
static int submit_shape(const seq_replica *r, seq_tx *tx)
{
    if (!tx->data && tx->len)
        return SEQ_EINVAL;
    if (tx->len > r->cfg.mempool.tx_bytes_max)
        return SEQ_ETOOBIG;
    seq_tx_compute_id(tx);
    return 0;
}

/* A shaped transaction the store does not hold finalized: into the mempool
 * and the gossip queue. */
static int submit_admit(seq_replica *r, const seq_tx *tx)
{
    int rc = seq_mempool_add_tx(r->mempool, tx);
    report_evicted(r);
    if (rc != 0)
        return rc;
    if (!gossip_queue(r, tx))
        r->gossip_dropped++; /* peers get it inside our proposal, or fetch its block (compact) */
    return 0;
}

int seq_replica_submit(seq_replica *r, seq_ns ns, const uint8_t *payload, uint32_t len, seq_hash *id)
{
    if (r->failed)
        return SEQ_EIO;
    seq_tx tx = {.ns = ns, .len = len, .data = payload};
    int rc = submit_shape(r, &tx);
    if (rc != 0)
        return rc;
    if (id)
        *id = tx.id;
    bool finalized = false;
    if (seq_store_txs_finalized(r->cfg.store, &tx.id, 1, &finalized) == 0 && finalized)
        return SEQ_EDUPLICATE;
    return submit_admit(r, &tx);
}

/* Which of the batch's ids the store holds finalized: one lookup for all
 * (the index prefetches across them); if that fails, one each, so that a
 * failing lookup admits only its own transaction unchecked, as one by one. */
static void submit_finalized(seq_replica *r, const seq_hash *ids, uint32_t n, bool *finalized)
{
    if (seq_store_txs_finalized(r->cfg.store, ids, n, finalized) == 0)
        return;
    for (uint32_t i = 0; i < n; i++)
        if (seq_store_txs_finalized(r->cfg.store, &ids[i], 1, &finalized[i]) != 0)
            finalized[i] = false;
}

static void submit_refuse_all(uint32_t n, int rc, int *rcs, seq_hash *ids)
{
    for (uint32_t i = 0; i < n; i++) {
        rcs[i] = rc;
        memset(&ids[i], 0, sizeof ids[i]);
    }
}

void seq_replica_submit_many(seq_replica *r, const seq_tx *txs, uint32_t n, int *rcs, seq_hash *ids)
{
    if (r->failed) {
        submit_refuse_all(n, SEQ_EIO, rcs, ids);
        return;
    }
    seq_tx *shaped = malloc((n ? n : 1) * sizeof *shaped);
    bool *finalized = calloc(n ? n : 1, sizeof *finalized);
    if (!shaped || !finalized) {
        submit_refuse_all(n, SEQ_ENOMEM, rcs, ids);
        free(shaped);
        free(finalized);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        shaped[i] = (seq_tx){.ns = txs[i].ns, .len = txs[i].len, .data = txs[i].data};
        rcs[i] = submit_shape(r, &shaped[i]);
        ids[i] = shaped[i].id; /* zero when refused before hashing */
    }
    submit_finalized(r, ids, n, finalized);
    for (uint32_t i = 0; i < n && i < MEMPOOL_PREFETCH_AHEAD; i++)
        seq_mempool_prefetch(r->mempool, &ids[i]);
    for (uint32_t i = 0; i < n; i++) {
        if (i + MEMPOOL_PREFETCH_AHEAD < n)
            seq_mempool_prefetch(r->mempool, &ids[i + MEMPOOL_PREFETCH_AHEAD]);
        if (rcs[i] == 0)
            rcs[i] = finalized[i] ? SEQ_EDUPLICATE : submit_admit(r, &shaped[i]);
    }
    free(shaped);
    free(finalized);
}

void seq_replica_gossip_flush(seq_replica *r)
{
    seq_tx *txs = malloc((r->gossip_count < SEQ_GOSSIP_TXS_MAX ? r->gossip_count : SEQ_GOSSIP_TXS_MAX) *
                         sizeof *txs + 1);
    if (!txs)
        return;
    for (uint32_t start = 0; start < r->gossip_count; start += SEQ_GOSSIP_TXS_MAX) {
        uint32_t n = r->gossip_count - start;
        if (n > SEQ_GOSSIP_TXS_MAX)
            n = SEQ_GOSSIP_TXS_MAX;
        for (uint32_t i = 0; i < n; i++) {
            const gossip_entry *g = &r->gossip[start + i];
            txs[i] = (seq_tx){.ns = g->ns, .len = g->len, .data = r->gossip_buf + g->offset, .id = g->id};
        }
        seq_msg m = {.kind = SEQ_MSG_TXS, .u.txs = {.count = n, .txs = txs}};
        r->io.send(r->io.ctx, SEQ_TO_ALL, &m);
    }
    free(txs);
    r->gossip_count = 0;
    r->gossip_len = 0;
}

int seq_replica_peer_up(seq_replica *r, uint32_t peer)
{
    if (r->failed)
        return SEQ_EIO;
    if (peer >= r->cfg.consensus.validators->n || peer == r->cfg.consensus.self)
        return SEQ_EINVAL;
    seq_vote *votes = malloc(SEQ_RESTORE_VOTES_MAX * sizeof *votes);
    if (!votes)
        return SEQ_ENOMEM;
    size_t n = 0;
    int rc = seq_store_votes_load(r->cfg.store, votes, SEQ_RESTORE_VOTES_MAX, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        seq_msg m = {.kind = SEQ_MSG_VOTE, .u.vote = votes[i]};
        r->io.send(r->io.ctx, peer, &m);
    }
    free(votes);
    return rc;
}

bool seq_replica_contains(const seq_replica *r, const seq_hash *id)
{
    return seq_mempool_contains(r->mempool, id);
}

const seq_mempool *seq_replica_mempool(const seq_replica *r)
{
    return r->mempool;
}

void seq_replica_status_get(const seq_replica *r, seq_replica_status *out)
{
    seq_consensus_status_get(r->consensus, &out->consensus);
    out->mempool_txs = seq_mempool_count(r->mempool);
    out->mempool_bytes = seq_mempool_bytes(r->mempool);
    out->finalized_txs = r->finalized_txs;
    out->gossip_dropped = r->gossip_dropped;
    out->expired_txs = r->expired_txs;
    out->evicted_txs = r->evicted_txs;
    out->proposals_rebuilt = r->proposals_rebuilt;
    out->proposals_fetched = r->proposals_fetched;
}

/* ---- life cycle -------------------------------------------------------------------- */

static int restore_load(seq_replica *r, seq_consensus_restore *rs, seq_vote *votes, seq_cert *final_cert)
{
    seq_store_tip tip;
    int rc = seq_store_tip_get(r->cfg.store, &tip);
    if (rc != 0)
        return rc;
    memset(rs, 0, sizeof *rs);
    rs->final_height = tip.height;
    rs->final_view = tip.view;
    rs->final_hash = tip.hash;
    if (tip.height > 0) {
        seq_block *b;
        if ((rc = seq_store_block_get(r->cfg.store, tip.height, &b)) != 0)
            return rc;
        rs->final_timestamp_ms = b->h.timestamp_ms;
        seq_block_free(b);
        if ((rc = seq_store_cert_get(r->cfg.store, tip.height, final_cert)) != 0)
            return rc;
        rs->final_cert = final_cert;
    }
    size_t n = 0;
    if ((rc = seq_store_votes_load(r->cfg.store, votes, SEQ_RESTORE_VOTES_MAX, &n)) != 0)
        return rc;
    rs->votes = votes;
    rs->vote_count = (uint32_t)n;
    return 0;
}

int seq_replica_new(seq_replica **out, const seq_replica_config *cfg, const seq_replica_io *io)
{
    if (!cfg->store || !io->send || !io->set_timer || cfg->block_txs_max == 0 ||
        cfg->block_txs_max > SEQ_BLOCK_TXS_MAX || cfg->block_bytes_max > SEQ_BLOCK_BYTES_MAX)
        return SEQ_EINVAL;
    int rc = SEQ_ENOMEM;
    seq_replica *r = calloc(1, sizeof *r);
    if (!r)
        return SEQ_ENOMEM;
    r->cfg = *cfg;
    r->io = *io;
    r->actions = malloc(sizeof *r->actions);
    r->batch = malloc(cfg->block_txs_max * sizeof *r->batch);
    r->finals = malloc(SEQ_ACTIONS_MAX * sizeof *r->finals);
    r->step_votes = malloc(SEQ_ACTIONS_MAX * sizeof *r->step_votes);
    r->step_keep = malloc(SEQ_ACTIONS_MAX * sizeof *r->step_keep);
    r->gossip = malloc(SEQ_GOSSIP_PENDING_MAX * sizeof *r->gossip);
    seq_vote *votes = malloc(SEQ_RESTORE_VOTES_MAX * sizeof *votes);
    r->block_req_view = calloc(cfg->consensus.validators->n, sizeof *r->block_req_view);
    r->block_req_count = calloc(cfg->consensus.validators->n, sizeof *r->block_req_count);
    r->parked = calloc(cfg->consensus.validators->n, sizeof *r->parked);
    if (!r->actions || !r->batch || !r->finals || !r->step_votes || !r->step_keep || !r->gossip || !votes || !r->block_req_view ||
        !r->block_req_count || !r->parked)
        goto err_after_alloc;
    if ((rc = seq_mempool_new(&r->mempool, &cfg->mempool)) != 0)
        goto err_after_alloc;
    seq_consensus_restore rs;
    seq_cert *final_cert = malloc(sizeof *final_cert);
    if (!final_cert || (rc = restore_load(r, &rs, votes, final_cert)) != 0) {
        free(final_cert);
        rc = rc ? rc : SEQ_ENOMEM;
        goto err_after_alloc;
    }
    rc = seq_consensus_new(&r->consensus, &cfg->consensus, &rs);
    free(final_cert);
    if (rc != 0)
        goto err_after_alloc;
    free(votes);
    *out = r;
    return 0;

err_after_alloc:
    free(votes);
    seq_replica_free(r);
    return rc;
}

/* A consensus restored from what the store now holds, replacing the old one.
 * Queued BUILD/VERIFY answers were for the old one's views: dropped. */
static int consensus_rebuild(seq_replica *r)
{
    seq_vote *votes = malloc(SEQ_RESTORE_VOTES_MAX * sizeof *votes);
    seq_cert *final_cert = malloc(sizeof *final_cert);
    seq_consensus *fresh = NULL;
    seq_consensus_restore rs;
    int rc = SEQ_ENOMEM;
    if (votes && final_cert && (rc = restore_load(r, &rs, votes, final_cert)) == 0)
        rc = seq_consensus_new(&fresh, &r->cfg.consensus, &rs);
    free(votes);
    free(final_cert);
    if (rc != 0)
        return rc;
    seq_consensus_free(r->consensus);
    r->consensus = fresh;
    r->followup_head = 0;
    r->followup_count = 0;
    r->holding = false;
    return 0;
}

int seq_replica_commit_synced(seq_replica *r, uint64_t now_ms, const seq_store_final *items, uint32_t n)
{
    if (r->failed)
        return SEQ_EIO;
    if (n == 0)
        return 0;
    int rc = seq_store_commit_finalized(r->cfg.store, items, n);
    if (rc != 0)
        return rc; /* the store refused the batch whole: nothing changed */
    for (uint32_t i = 0; i < n; i++)
        if ((rc = forget_finalized(r, items[i].block, items[i].cert)) != 0)
            return rc;
    seq_consensus_status st;
    seq_consensus_status_get(r->consensus, &st);
    if (items[n - 1].block->h.height <= st.final_height)
        return 0;
    if ((rc = consensus_rebuild(r)) != 0)
        return fail(r, rc, "restore consensus after sync");
    return seq_replica_start(r, now_ms);
}

void seq_replica_free(seq_replica *r)
{
    if (!r)
        return;
    seq_consensus_free(r->consensus);
    seq_mempool_free(r->mempool);
    free(r->actions);
    free(r->batch);
    free(r->finals);
    free(r->step_votes);
    free(r->step_keep);
    free(r->final_ids);
    free(r->rebuild);
    free(r->gossip);
    free(r->gossip_buf);
    free(r->block_req_view);
    free(r->block_req_count);
    free(r->parked);
    free(r);
}
