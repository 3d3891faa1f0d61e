/* The Simplex state machine: views, votes, certificates, proposals and
 * finalization. Pure: no I/O, no clock; see consensus.h for the contract.
 *
 * Happy path of one view v (docs/design.md §Consensus, rules in [brackets]):
 *   enter v -> arm timer; the leader picks a parent [R-PARENT] and asks the
 *   driver for a payload (BUILD) -> PAYLOAD -> it signs notarize(v, h),
 *   persists it, broadcasts PROPOSE.
 *   a replica checks the proposal [R-PROPOSAL], asks the driver to VERIFY the
 *   transactions -> VERIFIED -> persists and broadcasts notarize(v, h) [R-VOTE1].
 *   q notarize votes -> notarization: broadcast it, enter v+1 [R-ADVANCE], and
 *   unless we nullified v, send finalize(v, h) [R-FINALIZE].
 *   q finalize votes -> finalization: deliver the block and its unfinalized
 *   ancestors in height order [R-COMMIT].
 * A view without progress times out: nullify(v) [R-TIMEOUT]; q of them ->
 * nullification -> enter v+1.
 */
#include "consensus.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"

#define STEP_MSGS_MAX (3 * SEQ_CERT_REQ_VIEWS_MAX + 64)
#define FETCHES_MAX 16        /* blocks being fetched at once */
#define PROGRESS_ROUNDS_MAX 64 /* fixpoint rounds per step */
#define GRAVE_CERTS_MAX 32

enum { K_NOTARIZE = 0, K_NULLIFY = 1, K_FINALIZE = 2, KINDS = 3 };

enum proposal_state {
    PROP_NONE = 0,
    PROP_WAITING,   /* received; parent, certificates or verification pending */
    PROP_VERIFYING, /* VERIFY emitted */
    PROP_DONE,      /* voted, or nothing more to do */
    PROP_INVALID,
};

typedef struct {
    bool has;
    bool conflict_seen; /* evidence for this signer/view/kind already kept */
    seq_hash hash;
    seq_sig sig;
} vote_slot;

typedef struct {
    uint64_t view; /* 0: slot unused */
    bool has_proposal;
    seq_hash proposal;
    uint8_t prop_state;
    vote_slot *slots[KINDS]; /* n each */
    seq_cert *certs[KINDS];  /* heap; NULL until formed or received */
    bool mine[KINDS];        /* we signed this kind in this view */
    seq_vote my_vote[KINDS];
    bool build_requested;
    uint64_t asked_from; /* first view of our last certificate request, 0: none */
    seq_hash build_parent;
} view_state;

typedef struct {
    seq_hash hash;
    uint64_t asked_ms;
    bool used;
} fetch;

typedef struct {
    uint64_t from, to; /* inclusive */
} view_run;

/* A certificate without the unused tail of its signature array. */
typedef struct packed_cert {
    uint64_t view;
    uint8_t kind;
    seq_hash hash;
    uint8_t bitmap[SEQ_BITMAP_BYTES];
    uint32_t sig_count;
    seq_sig sigs[];
} packed_cert;

typedef struct {
    uint64_t view;
    seq_hash hash;
} notarized_ref;

struct seq_consensus {
    seq_consensus_config cfg;
    uint32_t n;
    uint32_t q;
    uint64_t now;
    uint64_t view;
    uint64_t deadline;
    uint64_t max_cert_view; /* highest view with a notarization, nullification or finalization */

    uint64_t final_height;
    uint64_t final_view;
    uint64_t final_ts;
    seq_hash final_hash;
    seq_cert *final_cert; /* certificate of the last delivery */

    /* A finalization we hold but cannot deliver yet (blocks missing). */
    bool pending;
    uint64_t pending_view;
    seq_cert *pending_cert;

    view_state views[SEQ_VIEW_WINDOW];
    /* Facts about views above the last finalized one that must outlive the
     * ring: a leader may have to prove that hundreds of views in a row were
     * nullified, and may build on a notarized block from before them. */
    view_run nullified[SEQ_NULLIFIED_RUNS_MAX]; /* sorted, disjoint, not adjacent */
    uint32_t nullified_count;
    notarized_ref notarized[SEQ_BLOCKS_MAX];
    uint32_t notarized_count;
    uint64_t vote_floor; /* we never vote below this view (restart) */
    seq_block *blocks[SEQ_BLOCKS_MAX];
    uint32_t block_count;
    fetch fetches[FETCHES_MAX];
    uint32_t fetch_rr;
    uint64_t *cert_req_view;   /* per peer: our view when it last asked for certificates */
    uint32_t *cert_req_count;  /* per peer: requests answered in that view */
    /* Notarizations [0] and nullifications [1], packed, by view: the ring
     * forgets views, but a peer catching up may need to prove long runs. */
    struct packed_cert *archive[SEQ_CERT_ARCHIVE_VIEWS][2];

    /* Freed at the start of the next step: actions of this step point to them. */
    seq_block *grave_blocks[SEQ_BLOCKS_MAX + 1]; /* all held, plus the one an event adds */
    uint32_t grave_block_count;
    seq_cert *grave_certs[GRAVE_CERTS_MAX];
    uint32_t grave_cert_count;

    seq_actions *out;
    seq_msg msgs[STEP_MSGS_MAX];
    uint32_t msg_count;

    seq_vote evidence[2 * SEQ_EVIDENCE_MAX];
    uint32_t evidence_count;
    seq_consensus_status stats;
};

static void blocks_prune(seq_consensus *c);
static int chain_complete(seq_consensus *c, const seq_hash *hash, int hint);
static void laggard_help(seq_consensus *c, uint32_t peer, uint64_t u);
static const seq_hash *notarized_hash(const seq_consensus *c, uint64_t u);

/* ---- small helpers ----------------------------------------------------------- */

static int kind_index(int vote_kind) { return vote_kind - SEQ_VOTE_NOTARIZE; }

static seq_action *emit(seq_consensus *c, seq_action_kind kind)
{
    SEQ_ASSERT(c->out->count < SEQ_ACTIONS_MAX);
    seq_action *a = &c->out->items[c->out->count++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    return a;
}

static seq_msg *new_msg(seq_consensus *c, seq_msg_kind kind)
{
    SEQ_ASSERT(c->msg_count < STEP_MSGS_MAX);
    seq_msg *m = &c->msgs[c->msg_count++];
    m->kind = kind;
    m->owned = false;
    m->txs_arena = NULL;
    return m;
}

static void send_msg(seq_consensus *c, const seq_msg *m, int to /* -1: all */)
{
    seq_action *a = emit(c, to < 0 ? SEQ_ACT_BROADCAST : SEQ_ACT_SEND);
    a->u.send.to = to < 0 ? 0 : (uint32_t)to;
    a->u.send.msg = m;
}

static void send_cert(seq_consensus *c, const seq_cert *cert, int to)
{
    seq_msg *m = new_msg(c, SEQ_MSG_CERT);
    m->u.cert = *cert;
    send_msg(c, m, to);
}

static uint32_t next_peer(seq_consensus *c)
{
    SEQ_ASSERT(c->n > 1);
    uint32_t p;
    do {
        p = c->fetch_rr++ % c->n;
    } while (p == c->cfg.self);
    return p;
}

static void bury_block(seq_consensus *c, seq_block *b)
{
    SEQ_ASSERT(c->grave_block_count < SEQ_BLOCKS_MAX + 1);
    c->grave_blocks[c->grave_block_count++] = b;
}

static void bury_cert(seq_consensus *c, seq_cert *cert)
{
    if (!cert)
        return;
    SEQ_ASSERT(c->grave_cert_count < GRAVE_CERTS_MAX);
    c->grave_certs[c->grave_cert_count++] = cert;
}

static void empty_graves(seq_consensus *c)
{
    for (uint32_t i = 0; i < c->grave_block_count; i++)
        seq_block_free(c->grave_blocks[i]);
    for (uint32_t i = 0; i < c->grave_cert_count; i++)
        free(c->grave_certs[i]);
    c->grave_block_count = 0;
    c->grave_cert_count = 0;
}

/* ---- blocks held in memory ---------------------------------------------------- */

static int block_index(const seq_consensus *c, const seq_hash *hash)
{
    for (uint32_t i = 0; i < c->block_count; i++)
        if (seq_hash_eq(&c->blocks[i]->hash, hash))
            return (int)i;
    return -1;
}

static seq_block *block_find(const seq_consensus *c, const seq_hash *hash)
{
    int i = block_index(c, hash);
    return i < 0 ? NULL : c->blocks[i];
}

/* Takes a copy of b. False when memory or the bound says no. */
static bool block_keep(seq_consensus *c, const seq_block *b)
{
    if (block_find(c, &b->hash))
        return true;
    if (c->block_count == SEQ_BLOCKS_MAX)
        blocks_prune(c);
    if (c->block_count == SEQ_BLOCKS_MAX) {
        SEQ_WARN("consensus_blocks_full", "node=%u view=%llu", c->cfg.self,
                 (unsigned long long)c->view);
        return false;
    }
    seq_block *copy = seq_block_clone(b);
    if (!copy)
        return false;
    c->blocks[c->block_count++] = copy;
    return true;
}

/* Keeps block i and every ancestor of it that we hold. Each block is walked
 * from at most once, so a whole prune is O(blocks^2) at worst. */
static void keep_with_ancestors(seq_consensus *c, uint32_t i, bool *keep, bool *walked)
{
    for (uint32_t depth = 0; depth <= SEQ_BLOCKS_MAX && !walked[i]; depth++) {
        keep[i] = true;
        walked[i] = true;
        int parent = block_index(c, &c->blocks[i]->h.parent);
        if (parent < 0)
            return;
        i = (uint32_t)parent;
    }
}

/* Drops blocks that can no longer matter: at or below the finalized view;
 * and, once the table is half full, proposals that fell out of the view
 * window unnotarized (late proposals of nullified views). A block that a
 * kept block extends is kept: we may not know its own notarization, yet
 * peers catching up will ask for it. */
static void blocks_prune(seq_consensus *c)
{
    bool stale_ok = c->block_count > SEQ_BLOCKS_MAX / 2;
    bool keep[SEQ_BLOCKS_MAX] = {0}, walked[SEQ_BLOCKS_MAX] = {0};
    for (uint32_t i = 0; i < c->block_count; i++) {
        const seq_block *b = c->blocks[i];
        if (b->h.view <= c->final_view || b->h.height <= c->final_height)
            continue;
        const seq_hash *nz = notarized_hash(c, b->h.view);
        bool recent = b->h.view + SEQ_VIEW_WINDOW > c->view;
        if (!stale_ok || recent || (nz && seq_hash_eq(nz, &b->hash)))
            keep_with_ancestors(c, i, keep, walked);
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < c->block_count; i++) {
        seq_block *b = c->blocks[i];
        if (keep[i] && b->h.view > c->final_view && b->h.height > c->final_height)
            c->blocks[kept++] = b;
        else
            bury_block(c, b);
    }
    c->block_count = kept;
}

/* ---- view ring ---------------------------------------------------------------- */

static void view_reset(seq_consensus *c, view_state *s, uint64_t view)
{
    for (int k = 0; k < KINDS; k++) {
        free(s->certs[k]);
        s->certs[k] = NULL;
        if (s->slots[k])
            memset(s->slots[k], 0, c->n * sizeof(vote_slot));
        s->mine[k] = false;
    }
    s->view = view;
    s->has_proposal = false;
    s->prop_state = PROP_NONE;
    s->build_requested = false;
    s->asked_from = 0;
}

/* The state of a view; with create, (re)claims its ring slot. NULL for views
 * that are finalized or fell out of the window. */
static view_state *view_get(seq_consensus *c, uint64_t view, bool create)
{
    if (view == 0 || view <= c->final_view)
        return NULL;
    view_state *s = &c->views[view % SEQ_VIEW_WINDOW];
    if (s->view == view)
        return s;
    if (!create || s->view > view)
        return NULL;
    view_reset(c, s, view);
    return s;
}

static const seq_cert *cert_of(seq_consensus *c, uint64_t view, int k)
{
    view_state *s = view_get(c, view, false);
    return s ? s->certs[k] : NULL;
}

/* ---- nullified runs and notarized blocks ----------------------------------------- */

static void nullified_add(seq_consensus *c, uint64_t u)
{
    uint32_t i = 0;
    while (i < c->nullified_count && c->nullified[i].to + 1 < u)
        i++;
    if (i < c->nullified_count && c->nullified[i].from <= u + 1) {
        view_run *r = &c->nullified[i];
        if (u < r->from)
            r->from = u;
        if (u > r->to)
            r->to = u;
        if (i + 1 < c->nullified_count && c->nullified[i + 1].from <= r->to + 1) { /* bridge two runs */
            r->to = c->nullified[i + 1].to;
            memmove(&c->nullified[i + 1], &c->nullified[i + 2],
                    (c->nullified_count - i - 2) * sizeof *c->nullified);
            c->nullified_count--;
        }
        return;
    }
    if (c->nullified_count == SEQ_NULLIFIED_RUNS_MAX) { /* forget the oldest: costs liveness only */
        memmove(&c->nullified[0], &c->nullified[1], (SEQ_NULLIFIED_RUNS_MAX - 1) * sizeof *c->nullified);
        c->nullified_count--;
        if (i > 0)
            i--;
    }
    memmove(&c->nullified[i + 1], &c->nullified[i], (c->nullified_count - i) * sizeof *c->nullified);
    c->nullified[i] = (view_run){u, u};
    c->nullified_count++;
}

/* The run holding view u, or NULL. */
static const view_run *nullified_run(const seq_consensus *c, uint64_t u)
{
    for (uint32_t i = 0; i < c->nullified_count; i++)
        if (c->nullified[i].from <= u && u <= c->nullified[i].to)
            return &c->nullified[i];
    return NULL;
}

static const seq_hash *notarized_hash(const seq_consensus *c, uint64_t u)
{
    for (uint32_t i = 0; i < c->notarized_count; i++)
        if (c->notarized[i].view == u)
            return &c->notarized[i].hash;
    return NULL;
}

static void notarized_add(seq_consensus *c, uint64_t u, const seq_hash *hash)
{
    if (notarized_hash(c, u))
        return;
    if (c->notarized_count == SEQ_BLOCKS_MAX) {
        memmove(&c->notarized[0], &c->notarized[1], (SEQ_BLOCKS_MAX - 1) * sizeof *c->notarized);
        c->notarized_count--;
    }
    c->notarized[c->notarized_count++] = (notarized_ref){u, *hash};
}

/* After a commit, facts at or below the finalized view no longer matter. */
static void facts_prune(seq_consensus *c)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < c->nullified_count; i++) {
        view_run r = c->nullified[i];
        if (r.to <= c->final_view)
            continue;
        if (r.from <= c->final_view)
            r.from = c->final_view + 1;
        c->nullified[kept++] = r;
    }
    c->nullified_count = kept;
    kept = 0;
    for (uint32_t i = 0; i < c->notarized_count; i++)
        if (c->notarized[i].view > c->final_view)
            c->notarized[kept++] = c->notarized[i];
    c->notarized_count = kept;
}

/* Records what a certificate proves about its view, beside the ring. */
static void facts_note(seq_consensus *c, const seq_cert *cert)
{
    if (cert->view <= c->final_view)
        return;
    if (cert->kind == SEQ_VOTE_NULLIFY)
        nullified_add(c, cert->view);
    else if (cert->kind == SEQ_VOTE_NOTARIZE)
        notarized_add(c, cert->view, &cert->hash);
}

/* ---- certificate archive ------------------------------------------------------------ */

static int archive_index(int cert_kind)
{
    return cert_kind == SEQ_VOTE_NOTARIZE ? 0 : cert_kind == SEQ_VOTE_NULLIFY ? 1 : -1;
}

static void archive_put(seq_consensus *c, const seq_cert *cert)
{
    int k = archive_index(cert->kind);
    if (k < 0)
        return;
    packed_cert **slot = &c->archive[cert->view % SEQ_CERT_ARCHIVE_VIEWS][k];
    if (*slot && (*slot)->view >= cert->view)
        return;
    packed_cert *p = malloc(sizeof *p + cert->sig_count * sizeof(seq_sig));
    if (!p)
        return;
    p->view = cert->view;
    p->kind = cert->kind;
    p->hash = cert->hash;
    memcpy(p->bitmap, cert->bitmap, sizeof p->bitmap);
    p->sig_count = cert->sig_count;
    memcpy(p->sigs, cert->sigs, cert->sig_count * sizeof(seq_sig));
    free(*slot);
    *slot = p;
}

static bool archive_get(const seq_consensus *c, uint64_t view, int cert_kind, seq_cert *out)
{
    int k = archive_index(cert_kind);
    const packed_cert *p = k < 0 ? NULL : c->archive[view % SEQ_CERT_ARCHIVE_VIEWS][k];
    if (!p || p->view != view)
        return false;
    memset(out, 0, sizeof *out);
    out->kind = p->kind;
    out->view = p->view;
    out->hash = p->hash;
    memcpy(out->bitmap, p->bitmap, sizeof p->bitmap);
    out->sig_count = p->sig_count;
    memcpy(out->sigs, p->sigs, p->sig_count * sizeof(seq_sig));
    return true;
}

/* Asks `to` for the certificates of views [from, end). Asked again within one
 * view only when the first missing view has moved, i.e. the last answer
 * helped: long gaps fill in SEQ_CERT_REQ_VIEWS_MAX steps, a peer that cannot
 * help is not asked twice. */
static void certs_ask(seq_consensus *c, view_state *s, uint64_t from, uint64_t end, int to)
{
    if (!s || c->n == 1 || s->asked_from == from)
        return;
    s->asked_from = from;
    uint64_t span = end > from ? end - from : 1;
    seq_msg *m = new_msg(c, SEQ_MSG_CERT_REQ);
    m->u.cert_req.view_from = from;
    m->u.cert_req.count = (uint32_t)(span < SEQ_CERT_REQ_VIEWS_MAX ? span : SEQ_CERT_REQ_VIEWS_MAX);
    send_msg(c, m, to);
}

/* ---- evidence ------------------------------------------------------------------ */

static void evidence_report(seq_consensus *c, const seq_vote *a, const seq_vote *b)
{
    uint32_t slot = c->evidence_count % SEQ_EVIDENCE_MAX;
    c->evidence[2 * slot] = *a;
    c->evidence[2 * slot + 1] = *b;
    c->evidence_count++;
    c->stats.equivocations++;
    seq_action *act = emit(c, SEQ_ACT_EQUIVOCATION);
    act->u.equivocation.a = *a;
    act->u.equivocation.b = *b;
    SEQ_WARN("equivocation", "node=%u signer=%u view=%llu kinds=%s/%s", c->cfg.self, a->signer,
             (unsigned long long)a->view, seq_vote_kind_name(a->kind), seq_vote_kind_name(b->kind));
}

static void slot_to_vote(const vote_slot *slot, int k, uint64_t view, uint32_t signer, seq_vote *out)
{
    out->kind = (uint8_t)(k + SEQ_VOTE_NOTARIZE);
    out->view = view;
    out->hash = slot->hash;
    out->signer = signer;
    out->sig = slot->sig;
}

/* ---- certificates ---------------------------------------------------------------- */

static void on_cert(seq_consensus *c, const seq_cert *cert, bool formed_here);

/* Forms a certificate when q votes of kind k agree on hash [R-QUORUM]. */
static void quorum_check(seq_consensus *c, view_state *s, int k, const seq_hash *hash)
{
    if (s->certs[k])
        return;
    uint32_t count = 0;
    for (uint32_t i = 0; i < c->n; i++)
        if (s->slots[k][i].has && seq_hash_eq(&s->slots[k][i].hash, hash))
            count++;
    if (count < c->q)
        return;
    seq_cert cert;
    memset(&cert, 0, sizeof cert);
    cert.kind = (uint8_t)(k + SEQ_VOTE_NOTARIZE);
    cert.view = s->view;
    cert.hash = *hash;
    for (uint32_t i = 0; i < c->n; i++) {
        if (!s->slots[k][i].has || !seq_hash_eq(&s->slots[k][i].hash, hash))
            continue;
        seq_bitmap_set(cert.bitmap, i);
        cert.sigs[cert.sig_count++] = s->slots[k][i].sig;
    }
    on_cert(c, &cert, true);
}

/* Records a vote whose signature is good (or our own). Conflicting votes of
 * one signer become evidence and are not counted twice [R-EVIDENCE]. */
static void vote_record(seq_consensus *c, const seq_vote *v)
{
    view_state *s = view_get(c, v->view, true);
    if (!s)
        return;
    int k = kind_index(v->kind);
    vote_slot *slot = &s->slots[k][v->signer];
    if (slot->has) {
        if (!seq_hash_eq(&slot->hash, &v->hash) && !slot->conflict_seen) {
            seq_vote first;
            slot_to_vote(slot, k, v->view, v->signer, &first);
            evidence_report(c, &first, v);
            slot->conflict_seen = true; /* one record each: a liar cannot flush the ring */
        }
        return;
    }
    /* finalize and nullify of one view by one signer contradict each other */
    int other = k == K_FINALIZE ? K_NULLIFY : k == K_NULLIFY ? K_FINALIZE : -1;
    if (other >= 0 && s->slots[other][v->signer].has && !s->slots[other][v->signer].conflict_seen) {
        s->slots[other][v->signer].conflict_seen = true;
        seq_vote first;
        slot_to_vote(&s->slots[other][v->signer], other, v->view, v->signer, &first);
        evidence_report(c, &first, v);
    }
    slot->has = true;
    slot->hash = v->hash;
    slot->sig = v->sig;
    quorum_check(c, s, k, &v->hash);
}

/* Signs, persists, then broadcasts one of our votes: the PERSIST action comes
 * first, and the driver sends nothing after it until it is durable. */
static void vote_cast(seq_consensus *c, view_state *s, int vote_kind, const seq_hash *hash, bool as_proposal,
                      const seq_block *block)
{
    int k = kind_index(vote_kind);
    SEQ_ASSERT(s->view >= c->vote_floor);
    SEQ_ASSERT(!s->mine[k]);
    SEQ_ASSERT(!(k == K_FINALIZE && s->mine[K_NULLIFY]));
    SEQ_ASSERT(!(k == K_NULLIFY && s->mine[K_FINALIZE]));
    seq_vote v;
    memset(&v, 0, sizeof v);
    v.kind = (uint8_t)vote_kind;
    v.view = s->view;
    if (hash)
        v.hash = *hash;
    v.signer = c->cfg.self;
    seq_vote_sign(&v, c->cfg.key, c->cfg.chain_id);
    s->mine[k] = true;
    s->my_vote[k] = v;
    emit(c, SEQ_ACT_PERSIST_VOTE)->u.vote = v;
    seq_msg *m;
    if (as_proposal) {
        m = new_msg(c, SEQ_MSG_PROPOSE);
        m->u.propose.block = (seq_block *)block;
        m->u.propose.vote = v;
    } else {
        m = new_msg(c, SEQ_MSG_VOTE);
        m->u.vote = v;
    }
    send_msg(c, m, -1);
    vote_record(c, &v);
}

/* [R-FINALIZE] after a notarization of view u, finalize(u, h) unless we
 * nullified u: finalize and nullify of one view never both come from an
 * honest node, so q finalize votes rule out a nullification of u. */
static void maybe_finalize_vote(seq_consensus *c, view_state *s)
{
    const seq_cert *n = s->certs[K_NOTARIZE];
    if (!n || s->mine[K_FINALIZE] || s->mine[K_NULLIFY] || s->view < c->vote_floor)
        return;
    vote_cast(c, s, SEQ_VOTE_FINALIZE, &n->hash, false, NULL);
}

static void finalization_hold(seq_consensus *c, const seq_cert *cert)
{
    if (cert->view <= c->final_view || (c->pending && cert->view <= c->pending_view))
        return;
    seq_cert *copy = malloc(sizeof *copy);
    if (!copy)
        return;
    *copy = *cert;
    bury_cert(c, c->pending_cert);
    c->pending_cert = copy;
    c->pending_view = cert->view;
    c->pending = true;
}

static void on_cert(seq_consensus *c, const seq_cert *cert, bool formed_here)
{
    int k = kind_index(cert->kind);
    if (k == K_FINALIZE)
        finalization_hold(c, cert);
    view_state *s = view_get(c, cert->view, true);
    if (s && !s->certs[k]) {
        s->certs[k] = malloc(sizeof *cert);
        if (!s->certs[k])
            return;
        *s->certs[k] = *cert;
        if (formed_here)
            send_cert(c, cert, -1);
    }
    if (cert->view > c->final_view)
        archive_put(c, cert);
    facts_note(c, cert);
    if (cert->view > c->max_cert_view)
        c->max_cert_view = cert->view;
    if (s && k == K_NOTARIZE)
        maybe_finalize_vote(c, s);
}

/* ---- fetching missing blocks ------------------------------------------------- */

static void fetch_ask(seq_consensus *c, fetch *f, int hint)
{
    seq_msg *m = new_msg(c, SEQ_MSG_BLOCK_REQ);
    m->u.block_req.hash = f->hash;
    uint32_t to = hint >= 0 && (uint32_t)hint != c->cfg.self ? (uint32_t)hint : next_peer(c);
    send_msg(c, m, (int)to);
    f->asked_ms = c->now;
}

/* Asks for a block we need, once; retried from the timeout to other peers. */
static void block_request(seq_consensus *c, const seq_hash *hash, int hint)
{
    fetch *free_slot = NULL;
    for (uint32_t i = 0; i < FETCHES_MAX; i++)
        if (c->fetches[i].used && block_find(c, &c->fetches[i].hash))
            c->fetches[i].used = false;
    for (uint32_t i = 0; i < FETCHES_MAX; i++) {
        if (c->fetches[i].used && seq_hash_eq(&c->fetches[i].hash, hash))
            return;
        if (!c->fetches[i].used && !free_slot)
            free_slot = &c->fetches[i];
    }
    if (!free_slot || c->n == 1)
        return;
    free_slot->used = true;
    free_slot->hash = *hash;
    fetch_ask(c, free_slot, hint);
}

static fetch *fetch_of(seq_consensus *c, const seq_hash *hash)
{
    for (uint32_t i = 0; i < FETCHES_MAX; i++)
        if (c->fetches[i].used && seq_hash_eq(&c->fetches[i].hash, hash))
            return &c->fetches[i];
    return NULL;
}

/* ---- views ----------------------------------------------------------------------- */

static void timer_arm(seq_consensus *c)
{
    c->deadline = c->now + c->cfg.view_timeout_ms;
    emit(c, SEQ_ACT_SET_TIMER)->u.deadline_ms = c->deadline;
}

/* [R-ADVANCE] a certificate for view u (notarization, nullification or
 * finalization) moves us to u+1 when we are at or below u. */
static bool advance(seq_consensus *c)
{
    if (c->max_cert_view < c->view)
        return false;
    c->view = c->max_cert_view + 1;
    timer_arm(c);
    blocks_prune(c);
    return true;
}

/* ---- commit ------------------------------------------------------------------------ */

/* [R-COMMIT] a finalization of block B makes B and its unfinalized ancestors
 * final, delivered in height order. Missing ancestors are fetched first. */
static bool commit_try(seq_consensus *c)
{
    if (!c->pending)
        return false;
    if (c->pending_view <= c->final_view) {
        c->pending = false;
        return false;
    }
    seq_block *chain[SEQ_BLOCKS_MAX];
    uint32_t depth = 0;
    seq_hash cur = c->pending_cert->hash;
    for (;;) {
        seq_block *b = block_find(c, &cur);
        if (!b) {
            block_request(c, &cur, -1);
            return false;
        }
        if (depth == SEQ_BLOCKS_MAX) { /* behind by more than we hold: block sync's job */
            SEQ_WARN("commit_too_far_behind", "node=%u view=%llu", c->cfg.self, (unsigned long long)c->pending_view);
            c->pending = false;
            return false;
        }
        if (b->h.height <= c->final_height || (depth > 0 && chain[depth - 1]->h.height != b->h.height + 1)) {
            /* A certified chain that does not extend ours: more than f faults. */
            SEQ_ERROR("finalized_conflict", "node=%u view=%llu height=%llu", c->cfg.self,
                      (unsigned long long)c->pending_view, (unsigned long long)b->h.height);
            c->pending = false;
            return false;
        }
        chain[depth++] = b;
        if (b->h.height == c->final_height + 1) {
            if (!seq_hash_eq(&b->h.parent, &c->final_hash)) {
                SEQ_ERROR("finalized_conflict", "node=%u height=%llu parent mismatch", c->cfg.self,
                          (unsigned long long)b->h.height);
                c->pending = false;
                return false;
            }
            break;
        }
        cur = b->h.parent;
    }
    bury_cert(c, c->final_cert);
    c->final_cert = c->pending_cert;
    c->pending_cert = NULL;
    c->pending = false;
    while (depth > 0) {
        seq_block *b = chain[--depth];
        seq_action *a = emit(c, SEQ_ACT_DELIVER);
        a->u.deliver.block = b;
        a->u.deliver.cert = c->final_cert;
        c->final_height = b->h.height;
        c->final_view = b->h.view;
        c->final_hash = b->hash;
        c->final_ts = b->h.timestamp_ms;
    }
    blocks_prune(c);
    facts_prune(c);
    memset(c->fetches, 0, sizeof c->fetches);
    if (c->final_view > c->max_cert_view)
        c->max_cert_view = c->final_view;
    return true;
}

/* True when every unfinalized ancestor from `hash` down to our last finalized
 * block is in memory, so that the driver's BUILD / VERIFY can see every
 * transaction the chain already carries. Missing blocks are fetched; a chain
 * that does not reach our finalized block is reported as -1. */
static int chain_complete(seq_consensus *c, const seq_hash *hash, int hint)
{
    seq_hash cur = *hash;
    for (uint32_t depth = 0; depth <= SEQ_BLOCKS_MAX; depth++) {
        if (seq_hash_eq(&cur, &c->final_hash))
            return 1;
        const seq_block *b = block_find(c, &cur);
        if (!b) {
            block_request(c, &cur, hint);
            return 0;
        }
        if (b->h.height <= c->final_height)
            return -1;
        cur = b->h.parent;
    }
    return -1;
}

/* ---- proposing -------------------------------------------------------------------- */

typedef struct {
    seq_hash hash;
    uint64_t view;
    uint64_t height;
    uint64_t ts;
} parent_ref;

/* [R-PARENT] the parent of a proposal in view v is the block of the highest
 * view p < v that is notarized (or the last finalized block), with every view
 * in (p, v) nullified. Whole runs of nullified views are skipped at once.
 * Returns 1 with *out set, or 0 when a block or certificate is missing (its
 * fetch has been started). */
static int parent_pick(seq_consensus *c, uint64_t v, parent_ref *out)
{
    uint64_t u = v - 1;
    while (u > c->final_view) {
        const seq_hash *nz = notarized_hash(c, u);
        if (nz) {
            const seq_block *b = block_find(c, nz);
            if (!b) {
                block_request(c, nz, -1);
                return 0;
            }
            *out = (parent_ref){b->hash, u, b->h.height, b->h.timestamp_ms};
            return 1;
        }
        const view_run *run = nullified_run(c, u);
        if (!run) {
            /* the gap may reach further down: ask for the views ending at u */
            uint64_t from = u >= c->final_view + SEQ_CERT_REQ_VIEWS_MAX ? u + 1 - SEQ_CERT_REQ_VIEWS_MAX
                                                                         : c->final_view + 1;
            if (c->n > 1)
                certs_ask(c, view_get(c, v, true), from, u + 1, (int)next_peer(c));
            return 0;
        }
        /* Every view of the run is nullified, so it may be skipped; a notarized
         * view inside it is an equally valid parent, and the highest wins. */
        uint64_t next = run->from - 1;
        for (uint32_t i = 0; i < c->notarized_count; i++) {
            uint64_t w = c->notarized[i].view;
            if (w >= run->from && w < u && w > next)
                next = w;
        }
        u = next;
    }
    *out = (parent_ref){c->final_hash, c->final_view, c->final_height, c->final_ts};
    return 1;
}

static void propose_try(seq_consensus *c)
{
    uint64_t v = c->view;
    if (seq_leader_of(c->cfg.validators, v) != c->cfg.self)
        return;
    view_state *s = view_get(c, v, true);
    if (!s || s->build_requested || s->mine[K_NOTARIZE] || s->mine[K_NULLIFY])
        return;
    parent_ref p;
    if (parent_pick(c, v, &p) != 1 || chain_complete(c, &p.hash, -1) != 1)
        return;
    s->build_requested = true;
    s->build_parent = p.hash;
    seq_action *a = emit(c, SEQ_ACT_BUILD);
    a->u.build.view = v;
    a->u.build.parent = &s->build_parent;
}

static void on_payload(seq_consensus *c, const seq_event *ev)
{
    uint64_t v = ev->u.payload.view;
    view_state *s = view_get(c, v, false);
    if (v != c->view || !s || !s->build_requested || s->mine[K_NOTARIZE] || s->mine[K_NULLIFY])
        return;
    parent_ref p;
    if (parent_pick(c, v, &p) != 1 || !seq_hash_eq(&p.hash, &s->build_parent)) {
        s->build_requested = false; /* the world moved: build again on the new parent */
        return;
    }
    seq_header tmpl = {
        .chain_id = c->cfg.chain_id,
        .height = p.height + 1,
        .view = v,
        .parent = p.hash,
        .parent_view = p.view,
        .leader = c->cfg.self,
        .timestamp_ms = c->now > p.ts ? c->now : p.ts,
    };
    seq_block *b;
    if (seq_block_build(&b, &tmpl, ev->u.payload.txs, ev->u.payload.count) != 0) {
        SEQ_WARN("propose_failed", "node=%u view=%llu", c->cfg.self, (unsigned long long)v);
        return;
    }
    if (c->block_count == SEQ_BLOCKS_MAX)
        blocks_prune(c);
    if (c->block_count == SEQ_BLOCKS_MAX) {
        /* No room even after pruning: give this view up (it times out) rather
         * than ask to build again at once, which would loop without time. */
        seq_block_free(b);
        return;
    }
    c->blocks[c->block_count++] = b;
    s->has_proposal = true;
    s->proposal = b->hash;
    s->prop_state = PROP_DONE;
    vote_cast(c, s, SEQ_VOTE_NOTARIZE, &b->hash, true, b);
}

/* ---- voting on a proposal ------------------------------------------------------------ */

/* [R-PROPOSAL] a proposal for view v is voted for when its parent p is the last
 * finalized block or a notarized block of view p, its height is the parent's
 * plus one, and every view in (p, v) is nullified. Missing pieces are asked
 * from the leader, who must have had them to propose. */
static void vote_try(seq_consensus *c)
{
    view_state *s = view_get(c, c->view, false);
    if (!s || s->prop_state != PROP_WAITING || s->mine[K_NOTARIZE] || s->mine[K_NULLIFY])
        return;
    seq_block *b = block_find(c, &s->proposal);
    if (!b) { /* pruned: it forked below what we finalized since */
        s->prop_state = PROP_INVALID;
        return;
    }
    uint32_t leader = b->h.leader;
    const seq_header *h = &b->h;
    uint64_t parent_height, parent_ts;
    if (h->parent_view >= h->view || h->parent_view < c->final_view) {
        s->prop_state = PROP_INVALID;
        return;
    }
    if (h->parent_view == c->final_view) {
        if (!seq_hash_eq(&h->parent, &c->final_hash)) {
            s->prop_state = PROP_INVALID;
            return;
        }
        parent_height = c->final_height;
        parent_ts = c->final_ts;
    } else {
        const seq_hash *nz = notarized_hash(c, h->parent_view);
        const seq_block *pb = block_find(c, &h->parent);
        if (nz && !seq_hash_eq(nz, &h->parent)) {
            s->prop_state = PROP_INVALID;
            return;
        }
        if (!nz) {
            certs_ask(c, s, h->parent_view, h->view, (int)leader);
            return;
        }
        if (!pb) {
            block_request(c, &h->parent, (int)leader);
            return;
        }
        parent_height = pb->h.height;
        parent_ts = pb->h.timestamp_ms;
    }
    if (h->height != parent_height + 1 || h->timestamp_ms < parent_ts ||
        h->timestamp_ms > c->now + SEQ_TIMESTAMP_AHEAD_MS_MAX) {
        s->prop_state = PROP_INVALID;
        return;
    }
    for (uint64_t u = h->parent_view + 1; u < h->view;) {
        const view_run *run = nullified_run(c, u);
        if (run) {
            u = run->to + 1;
            continue;
        }
        certs_ask(c, s, u, h->view, (int)leader);
        return;
    }
    int chain = chain_complete(c, &h->parent, (int)leader);
    if (chain < 0)
        s->prop_state = PROP_INVALID;
    if (chain != 1)
        return;
    s->prop_state = PROP_VERIFYING;
    emit(c, SEQ_ACT_VERIFY)->u.block = b;
}

static void on_verified(seq_consensus *c, const seq_event *ev)
{
    view_state *s = view_get(c, ev->u.verified.view, false);
    if (!s || s->prop_state != PROP_VERIFYING || !seq_hash_eq(&s->proposal, &ev->u.verified.hash))
        return;
    if (!ev->u.verified.ok) {
        s->prop_state = PROP_INVALID;
        return;
    }
    s->prop_state = PROP_DONE;
    /* [R-VOTE1] one notarize per view, and none after we nullified it. */
    if (s->view == c->view && !s->mine[K_NOTARIZE] && !s->mine[K_NULLIFY])
        vote_cast(c, s, SEQ_VOTE_NOTARIZE, &s->proposal, false, NULL);
}

/* ---- messages ------------------------------------------------------------------------- */

static void drop(seq_consensus *c, uint32_t from, const char *why)
{
    c->stats.msgs_dropped++;
    SEQ_DEBUG("msg_dropped", "node=%u from=%u reason=\"%s\"", c->cfg.self, from, why);
}

static bool vote_in_window(const seq_consensus *c, uint64_t view)
{
    return view > c->final_view && view <= c->view + SEQ_VOTE_VIEWS_AHEAD_MAX;
}

static bool vote_shape_ok(const seq_consensus *c, const seq_vote *v)
{
    if (v->kind < SEQ_VOTE_NOTARIZE || v->kind > SEQ_VOTE_FINALIZE || v->signer >= c->n)
        return false;
    return v->kind != SEQ_VOTE_NULLIFY || seq_hash_is_zero(&v->hash);
}

static bool vote_known(seq_consensus *c, const seq_vote *v)
{
    view_state *s = view_get(c, v->view, false);
    if (!s)
        return false;
    const vote_slot *slot = &s->slots[kind_index(v->kind)][v->signer];
    return slot->has && seq_hash_eq(&slot->hash, &v->hash) && memcmp(&slot->sig, &v->sig, sizeof v->sig) == 0;
}

static void on_vote(seq_consensus *c, uint32_t from, const seq_vote *v)
{
    if (!vote_shape_ok(c, v))
        { drop(c, from, "malformed vote"); return; }
    if (!vote_in_window(c, v->view))
        { drop(c, from, "vote outside window"); return; }
    if (v->view < c->view && v->signer == from)
        laggard_help(c, from, v->view);
    if (vote_known(c, v))
        return;
    view_state *s = view_get(c, v->view, false);
    if (s && s->slots[kind_index(v->kind)][v->signer].conflict_seen) {
        drop(c, from, "more equivocation from a known equivocator");
        return;
    }
    if (seq_vote_verify(v, c->cfg.validators, c->cfg.chain_id) != 0) {
        c->stats.bad_signatures++;
        { drop(c, from, "bad vote signature"); return; }
    }
    vote_record(c, v);
}

static void on_propose(seq_consensus *c, uint32_t from, const seq_msg *m)
{
    const seq_block *b = m->u.propose.block;
    const seq_vote *v = &m->u.propose.vote;
    uint64_t view = b->h.view;
    uint32_t leader = seq_leader_of(c->cfg.validators, view);
    if (b->h.chain_id != c->cfg.chain_id || !vote_shape_ok(c, v))
        { drop(c, from, "proposal for another chain or malformed"); return; }
    if (v->kind != SEQ_VOTE_NOTARIZE || v->view != view || v->signer != leader || b->h.leader != leader ||
        !seq_hash_eq(&v->hash, &b->hash))
        { drop(c, from, "proposal not signed by the view's leader"); return; }
    if (!vote_in_window(c, view) || b->h.height <= c->final_height)
        { drop(c, from, "proposal outside window or below our finalized height"); return; }
    view_state *s = view_get(c, view, true);
    if (s && s->has_proposal && seq_hash_eq(&s->proposal, &b->hash))
        return; /* duplicate */
    if (seq_vote_verify(v, c->cfg.validators, c->cfg.chain_id) != 0) {
        c->stats.bad_signatures++;
        { drop(c, from, "bad proposal signature"); return; }
    }
    if (!s)
        return;
    if (!s->has_proposal && block_keep(c, b)) {
        s->has_proposal = true;
        s->proposal = b->hash;
        s->prop_state = PROP_WAITING;
    }
    vote_record(c, v); /* a second proposal of the leader shows up as evidence here */
}

static void on_cert_msg(seq_consensus *c, uint32_t from, const seq_cert *cert)
{
    if (cert->kind < SEQ_VOTE_NOTARIZE || cert->kind > SEQ_VOTE_FINALIZE)
        { drop(c, from, "malformed certificate"); return; }
    if (cert->view <= c->final_view)
        return; /* already final: nothing to learn */
    /* A certificate we hold (ring or archive) is not verified again; its facts
     * are noted again in case they were evicted. */
    int k = kind_index(cert->kind);
    const seq_cert *have = cert_of(c, cert->view, k);
    seq_cert archived;
    if (!have && archive_get(c, cert->view, cert->kind, &archived))
        have = &archived;
    if (have && seq_hash_eq(&have->hash, &cert->hash) &&
        (k != K_FINALIZE || (c->pending && c->pending_view >= cert->view))) {
        facts_note(c, have);
        return;
    }
    if (seq_cert_verify(cert, c->cfg.validators, c->cfg.chain_id) != 0) {
        c->stats.bad_signatures++;
        { drop(c, from, "bad certificate"); return; }
    }
    on_cert(c, cert, false);
}

static void on_block(seq_consensus *c, uint32_t from, const seq_block *b)
{
    if (b->h.chain_id != c->cfg.chain_id)
        { drop(c, from, "block for another chain"); return; }
    if (block_find(c, &b->hash))
        return;
    fetch *f = fetch_of(c, &b->hash);
    if (b->h.view <= c->final_view || !f)
        { drop(c, from, "block not asked for"); return; }
    /* A full table keeps the fetch open for the timeout's retry, rather than
     * asking again at once in a loop. */
    if (!block_keep(c, b))
        return;
    f->used = false;
    /* Walk on to the parent at once, from the peer that just had this one:
     * a lagging node fetches a chain at network speed, not one block per
     * proposal it happens to be checking. */
    (void)chain_complete(c, &b->h.parent, (int)from);
}

/* Per-peer budget of answers within one view of ours (certificate requests
 * and help for a lagging peer), so a peer cannot make us repeat ourselves. */
static bool peer_budget_take(seq_consensus *c, uint32_t peer)
{
    if (c->cert_req_view[peer] != c->view) {
        c->cert_req_view[peer] = c->view;
        c->cert_req_count[peer] = 0;
    }
    return c->cert_req_count[peer]++ < SEQ_CERT_REQS_PER_VIEW_MAX;
}

/* A vote from a view below ours says its sender is stuck there: send it the
 * certificate that moved us on, or, when we no longer hold one (a restart
 * loses them), our own signed votes of that view, so that it can form the
 * certificate itself. */
static void laggard_help(seq_consensus *c, uint32_t peer, uint64_t u)
{
    if (u >= c->view || !peer_budget_take(c, peer))
        return;
    seq_cert cert;
    const seq_cert *have = NULL;
    for (int k = 0; k < KINDS && !have; k++)
        have = cert_of(c, u, k);
    if (!have && (archive_get(c, u, SEQ_VOTE_NOTARIZE, &cert) || archive_get(c, u, SEQ_VOTE_NULLIFY, &cert)))
        have = &cert;
    if (have) {
        send_cert(c, have, (int)peer);
        return;
    }
    view_state *s = view_get(c, u, false);
    for (int k = 0; s && k < KINDS; k++)
        if (s->mine[k]) {
            seq_msg *m = new_msg(c, SEQ_MSG_VOTE);
            m->u.vote = s->my_vote[k];
            send_msg(c, m, (int)peer);
        }
}

/* Answers with the certificates we hold for the views asked: from the ring,
 * else from the archive. At most SEQ_CERT_REQS_PER_VIEW_MAX requests per peer
 * per view of ours, so a peer cannot make us repeat ourselves at will. */
static void on_cert_req(seq_consensus *c, uint32_t from, uint64_t view_from, uint32_t count)
{
    if (count == 0 || count > SEQ_CERT_REQ_VIEWS_MAX || view_from > UINT64_MAX - count) {
        drop(c, from, "bad certificate request");
        return;
    }
    if (!peer_budget_take(c, from))
        return;
    if (view_from <= c->final_view && c->final_cert)
        send_cert(c, c->final_cert, (int)from);
    for (uint64_t u = view_from; u < view_from + count; u++) {
        view_state *s = view_get(c, u, false);
        if (s) {
            for (int k = 0; k < KINDS; k++)
                if (s->certs[k])
                    send_cert(c, s->certs[k], (int)from);
            continue;
        }
        seq_cert cert;
        if (archive_get(c, u, SEQ_VOTE_NOTARIZE, &cert))
            send_cert(c, &cert, (int)from);
        if (archive_get(c, u, SEQ_VOTE_NULLIFY, &cert))
            send_cert(c, &cert, (int)from);
    }
}

static void on_message(seq_consensus *c, uint32_t from, const seq_msg *m)
{
    if (from >= c->n || from == c->cfg.self)
        { drop(c, from, "unknown sender"); return; }
    switch (m->kind) {
    case SEQ_MSG_PROPOSE:
        on_propose(c, from, m);
        return;
    case SEQ_MSG_VOTE:
        on_vote(c, from, &m->u.vote);
        return;
    case SEQ_MSG_CERT:
        on_cert_msg(c, from, &m->u.cert);
        return;
    case SEQ_MSG_BLOCK:
        on_block(c, from, m->u.block.block);
        return;
    case SEQ_MSG_CERT_REQ:
        on_cert_req(c, from, m->u.cert_req.view_from, m->u.cert_req.count);
        return;
    default:
        return; /* BLOCK_REQ and TXS are the driver's */
    }
}

/* ---- timeout ----------------------------------------------------------------------------- */

/* [R-TIMEOUT] a view without a certificate in time is nullified. While stuck,
 * every timeout repeats our nullify vote and the certificate that brought us
 * into this view, so that peers who lost messages (or were partitioned) catch
 * up once the network heals; missing blocks are asked from another peer. */
static void on_timeout(seq_consensus *c)
{
    if (c->now < c->deadline) { /* early (driver rounding): the timer must stay armed */
        emit(c, SEQ_ACT_SET_TIMER)->u.deadline_ms = c->deadline;
        return;
    }
    view_state *s = view_get(c, c->view, true);
    SEQ_ASSERT(s);
    if (!s->mine[K_NULLIFY] && !s->mine[K_FINALIZE]) {
        c->stats.timeouts++;
        vote_cast(c, s, SEQ_VOTE_NULLIFY, NULL, false, NULL);
    } else if (s->mine[K_NULLIFY]) {
        seq_msg *m = new_msg(c, SEQ_MSG_VOTE);
        m->u.vote = s->my_vote[K_NULLIFY];
        send_msg(c, m, -1);
    }
    if (s->mine[K_NOTARIZE]) { /* peers that lost it may still complete the notarization */
        seq_msg *m = new_msg(c, SEQ_MSG_VOTE);
        m->u.vote = s->my_vote[K_NOTARIZE];
        send_msg(c, m, -1);
    }
    for (int k = 0; k < KINDS; k++) {
        const seq_cert *entry = cert_of(c, c->view - 1, k);
        if (entry)
            send_cert(c, entry, -1);
    }
    if (c->final_cert)
        send_cert(c, c->final_cert, -1);
    for (uint32_t i = 0; i < FETCHES_MAX; i++)
        if (c->fetches[i].used)
            fetch_ask(c, &c->fetches[i], -1);
    timer_arm(c);
}

/* ---- step ---------------------------------------------------------------------------------- */

static void progress(seq_consensus *c)
{
    for (int round = 0; round < PROGRESS_ROUNDS_MAX; round++) {
        bool changed = advance(c);
        changed |= commit_try(c);
        propose_try(c);
        vote_try(c);
        if (!changed)
            return;
    }
}

int seq_consensus_step(seq_consensus *c, const seq_event *ev, seq_actions *out)
{
    SEQ_ASSERT(c && ev && out);
    empty_graves(c);
    out->count = 0;
    c->out = out;
    c->msg_count = 0;
    if (ev->now_ms > c->now)
        c->now = ev->now_ms;
    switch (ev->kind) {
    case SEQ_EV_START:
        timer_arm(c);
        break;
    case SEQ_EV_MESSAGE:
        if (!ev->u.message.msg)
            return SEQ_EINVAL;
        on_message(c, ev->u.message.from, ev->u.message.msg);
        break;
    case SEQ_EV_TIMEOUT:
        on_timeout(c);
        break;
    case SEQ_EV_PAYLOAD:
        on_payload(c, ev);
        break;
    case SEQ_EV_VERIFIED:
        on_verified(c, ev);
        break;
    default:
        return SEQ_EINVAL;
    }
    progress(c);
    c->out = NULL;
    return 0;
}

/* ---- life cycle --------------------------------------------------------------------------- */

static int restore_votes(seq_consensus *c, const seq_consensus_restore *r)
{
    if (r->vote_count > SEQ_RESTORE_VOTES_MAX)
        return SEQ_ETOOBIG;
    for (uint32_t i = 0; i < r->vote_count; i++) {
        const seq_vote *v = &r->votes[i];
        if (v->signer != c->cfg.self || !vote_shape_ok(c, v))
            return SEQ_EINVAL;
        if (v->view <= c->final_view)
            continue;
        view_state *s = view_get(c, v->view, true);
        if (!s)
            continue;
        int k = kind_index(v->kind);
        s->mine[k] = true;
        s->my_vote[k] = *v;
        vote_slot *slot = &s->slots[k][v->signer];
        slot->has = true;
        slot->hash = v->hash;
        slot->sig = v->sig;
        uint64_t resume = k == K_FINALIZE ? v->view + 1 : v->view;
        if (resume > c->view)
            c->view = resume;
    }
    return 0;
}

int seq_consensus_new(seq_consensus **out, const seq_consensus_config *cfg, const seq_consensus_restore *restore)
{
    if (!cfg || !cfg->validators || !cfg->key || cfg->self >= cfg->validators->n || cfg->view_timeout_ms == 0)
        return SEQ_EINVAL;
    seq_consensus *c = calloc(1, sizeof *c);
    if (!c)
        return SEQ_ENOMEM;
    c->cfg = *cfg;
    c->n = cfg->validators->n;
    c->q = cfg->validators->q;
    c->cert_req_view = calloc(c->n, sizeof *c->cert_req_view);
    c->cert_req_count = calloc(c->n, sizeof *c->cert_req_count);
    if (!c->cert_req_view || !c->cert_req_count)
        goto err_after_alloc;
    for (uint32_t i = 0; i < SEQ_VIEW_WINDOW; i++)
        for (int k = 0; k < KINDS; k++) {
            c->views[i].slots[k] = calloc(c->n, sizeof(vote_slot));
            if (!c->views[i].slots[k])
                goto err_after_alloc;
        }
    c->view = 1;
    if (restore) {
        c->final_height = restore->final_height;
        c->final_view = restore->final_view;
        c->final_hash = restore->final_hash;
        c->final_ts = restore->final_timestamp_ms;
        c->view = c->final_view + 1;
        c->max_cert_view = c->final_view;
        if (restore->final_cert) {
            c->final_cert = malloc(sizeof *c->final_cert);
            if (!c->final_cert)
                goto err_after_alloc;
            *c->final_cert = *restore->final_cert;
        }
        int rc = restore_votes(c, restore);
        if (rc != 0) {
            seq_consensus_free(c);
            return rc;
        }
        /* Only our newest votes were restored: never vote below them again. */
        c->vote_floor = c->view;
    }
    *out = c;
    return 0;

err_after_alloc:
    seq_consensus_free(c);
    return SEQ_ENOMEM;
}

void seq_consensus_free(seq_consensus *c)
{
    if (!c)
        return;
    empty_graves(c);
    for (uint32_t i = 0; i < SEQ_VIEW_WINDOW; i++)
        for (int k = 0; k < KINDS; k++) {
            free(c->views[i].slots[k]);
            free(c->views[i].certs[k]);
        }
    for (uint32_t i = 0; i < c->block_count; i++)
        seq_block_free(c->blocks[i]);
    free(c->final_cert);
    free(c->pending_cert);
    free(c->cert_req_view);
    free(c->cert_req_count);
    for (uint32_t i = 0; i < SEQ_CERT_ARCHIVE_VIEWS; i++) {
        free(c->archive[i][0]);
        free(c->archive[i][1]);
    }
    free(c);
}

void seq_consensus_status_get(const seq_consensus *c, seq_consensus_status *out)
{
    *out = c->stats;
    out->view = c->view;
    out->final_height = c->final_height;
    out->final_view = c->final_view;
    out->final_hash = c->final_hash;
    out->blocks_held = c->block_count;
}

const seq_block *seq_consensus_block_find(const seq_consensus *c, const seq_hash *hash)
{
    return block_find(c, hash);
}

uint32_t seq_consensus_evidence(const seq_consensus *c, const seq_vote **pairs_out)
{
    *pairs_out = c->evidence;
    return c->evidence_count < SEQ_EVIDENCE_MAX ? c->evidence_count : SEQ_EVIDENCE_MAX;
}
