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
#include "consensus_internal.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"

#define PROGRESS_ROUNDS_MAX 64 /* fixpoint rounds per step */

/* ---- small helpers --------------------------------------------------------------- */

seq_action *cs_emit(seq_consensus *c, seq_action_kind kind)
{
    SEQ_ASSERT(c->out->count < SEQ_ACTIONS_MAX);
    seq_action *a = &c->out->items[c->out->count++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    return a;
}

seq_msg *cs_new_msg(seq_consensus *c, seq_msg_kind kind)
{
    SEQ_ASSERT(c->msg_count < STEP_MSGS_MAX);
    seq_msg *m = &c->msgs[c->msg_count++];
    m->kind = kind;
    m->owned = false;
    m->txs_arena = NULL;
    return m;
}

void cs_send_msg(seq_consensus *c, const seq_msg *m, int to /* -1: all */)
{
    seq_action *a = cs_emit(c, to < 0 ? SEQ_ACT_BROADCAST : SEQ_ACT_SEND);
    a->u.send.to = to < 0 ? 0 : (uint32_t)to;
    a->u.send.msg = m;
}

void cs_send_cert(seq_consensus *c, const seq_cert *cert, int to)
{
    seq_msg *m = cs_new_msg(c, SEQ_MSG_CERT);
    m->u.cert = *cert;
    cs_send_msg(c, m, to);
}

uint32_t cs_next_peer(seq_consensus *c)
{
    SEQ_ASSERT(c->n > 1);
    uint32_t p;
    do {
        p = c->fetch_rr++ % c->n;
    } while (p == c->cfg.self);
    return p;
}

/* ---- view ring ------------------------------------------------------------------- */

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
view_state *cs_view_get(seq_consensus *c, uint64_t view, bool create)
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

const seq_cert *cs_cert_of(seq_consensus *c, uint64_t view, int k)
{
    view_state *s = cs_view_get(c, view, false);
    return s ? s->certs[k] : NULL;
}

/* ---- views ----------------------------------------------------------------------- */

static void timer_arm(seq_consensus *c)
{
    c->deadline = c->now + c->cfg.view_timeout_ms;
    cs_emit(c, SEQ_ACT_SET_TIMER)->u.deadline_ms = c->deadline;
}

/* [R-ADVANCE] a certificate for view u (notarization, nullification or
 * finalization) moves us to u+1 when we are at or below u. */
static bool advance(seq_consensus *c)
{
    if (c->max_cert_view < c->view)
        return false;
    c->view = c->max_cert_view + 1;
    timer_arm(c);
    cs_blocks_prune(c);
    return true;
}

/* ---- messages -------------------------------------------------------------------- */

void cs_drop(seq_consensus *c, uint32_t from, const char *why)
{
    c->stats.msgs_dropped++;
    SEQ_DEBUG("msg_dropped", "node=%u from=%u reason=\"%s\"", c->cfg.self, from, why);
}

static void on_message(seq_consensus *c, uint32_t from, const seq_msg *m)
{
    if (from >= c->n || from == c->cfg.self)
        { cs_drop(c, from, "unknown sender"); return; }
    switch (m->kind) {
    case SEQ_MSG_PROPOSE:
        cs_on_propose(c, from, m);
        return;
    case SEQ_MSG_VOTE:
        cs_on_vote(c, from, &m->u.vote);
        return;
    case SEQ_MSG_CERT:
        cs_on_cert_msg(c, from, &m->u.cert);
        return;
    case SEQ_MSG_BLOCK:
        cs_on_block(c, from, m->u.block.block);
        return;
    case SEQ_MSG_CERT_REQ:
        cs_on_cert_req(c, from, m->u.cert_req.view_from, m->u.cert_req.count);
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
        cs_emit(c, SEQ_ACT_SET_TIMER)->u.deadline_ms = c->deadline;
        return;
    }
    view_state *s = cs_view_get(c, c->view, true);
    SEQ_ASSERT(s);
    if (!s->mine[K_NULLIFY] && !s->mine[K_FINALIZE]) {
        c->stats.timeouts++;
        cs_vote_cast(c, s, SEQ_VOTE_NULLIFY, NULL, false, NULL);
    } else if (s->mine[K_NULLIFY]) {
        seq_msg *m = cs_new_msg(c, SEQ_MSG_VOTE);
        m->u.vote = s->my_vote[K_NULLIFY];
        cs_send_msg(c, m, -1);
    }
    if (s->mine[K_NOTARIZE]) { /* peers that lost it may still complete the notarization */
        seq_msg *m = cs_new_msg(c, SEQ_MSG_VOTE);
        m->u.vote = s->my_vote[K_NOTARIZE];
        cs_send_msg(c, m, -1);
    }
    for (int k = 0; k < KINDS; k++) {
        const seq_cert *entry = cs_cert_of(c, c->view - 1, k);
        if (entry)
            cs_send_cert(c, entry, -1);
    }
    if (c->final_cert)
        cs_send_cert(c, c->final_cert, -1);
    for (uint32_t i = 0; i < FETCHES_MAX; i++)
        if (c->fetches[i].used)
            cs_fetch_ask(c, &c->fetches[i], -1);
    timer_arm(c);
}

/* ---- step ---------------------------------------------------------------------------------- */

static void progress(seq_consensus *c)
{
    for (int round = 0; round < PROGRESS_ROUNDS_MAX; round++) {
        bool changed = advance(c);
        changed |= cs_commit_try(c);
        cs_propose_try(c);
        cs_vote_try(c);
        if (!changed)
            return;
    }
}

int seq_consensus_step(seq_consensus *c, const seq_event *ev, seq_actions *out)
{
    SEQ_ASSERT(c && ev && out);
    cs_empty_graves(c);
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
        cs_on_payload(c, ev);
        break;
    case SEQ_EV_VERIFIED:
        cs_on_verified(c, ev);
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
        if (v->signer != c->cfg.self || !cs_vote_shape_ok(c, v))
            return SEQ_EINVAL;
        if (v->view <= c->final_view)
            continue;
        view_state *s = cs_view_get(c, v->view, true);
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
    c->asked_lo = calloc(c->n, sizeof *c->asked_lo);
    c->asked_hi = calloc(c->n, sizeof *c->asked_hi);
    if (!c->cert_req_view || !c->cert_req_count || !c->asked_lo || !c->asked_hi)
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
    cs_empty_graves(c);
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
    free(c->asked_lo);
    free(c->asked_hi);
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
    return cs_block_find(c, hash);
}

uint32_t seq_consensus_evidence(const seq_consensus *c, const seq_vote **pairs_out)
{
    *pairs_out = c->evidence;
    return c->evidence_count < SEQ_EVIDENCE_MAX ? c->evidence_count : SEQ_EVIDENCE_MAX;
}
