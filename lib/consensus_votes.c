/* Votes: the per-view vote slots, quorums that form certificates [R-QUORUM],
 * our own signed votes, and equivocation evidence [R-EVIDENCE]. */
#include "consensus_internal.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- evidence -------------------------------------------------------------------- */

static void evidence_report(seq_consensus *c, const seq_vote *a, const seq_vote *b)
{
    uint32_t slot = c->evidence_count % SEQ_EVIDENCE_MAX;
    c->evidence[2 * slot] = *a;
    c->evidence[2 * slot + 1] = *b;
    c->evidence_count++;
    c->stats.equivocations++;
    seq_action *act = cs_emit(c, SEQ_ACT_EQUIVOCATION);
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

/* ---- quorums and our votes ------------------------------------------------------- */

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
    cs_on_cert(c, &cert, true);
}

/* Records a vote whose signature is good (or our own). Conflicting votes of
 * one signer become evidence and are not counted twice [R-EVIDENCE]. */
void cs_vote_record(seq_consensus *c, const seq_vote *v)
{
    view_state *s = cs_view_get(c, v->view, true);
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
void cs_vote_cast(seq_consensus *c, view_state *s, int vote_kind, const seq_hash *hash, bool as_proposal,
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
    cs_emit(c, SEQ_ACT_PERSIST_VOTE)->u.vote = v;
    seq_msg *m;
    if (as_proposal) {
        m = cs_new_msg(c, SEQ_MSG_PROPOSE);
        m->u.propose.block = (seq_block *)block;
        m->u.propose.vote = v;
        m->u.propose.ids_only = false; /* the slot is reused: set, not left over; the replica decides */
    } else {
        m = cs_new_msg(c, SEQ_MSG_VOTE);
        m->u.vote = v;
    }
    cs_send_msg(c, m, -1);
    cs_vote_record(c, &v);
}

/* [R-FINALIZE] after a notarization of view u, finalize(u, h) unless we
 * nullified u: finalize and nullify of one view never both come from an
 * honest node, so q finalize votes rule out a nullification of u. */
void cs_maybe_finalize_vote(seq_consensus *c, view_state *s)
{
    const seq_cert *n = s->certs[K_NOTARIZE];
    if (!n || s->mine[K_FINALIZE] || s->mine[K_NULLIFY] || s->view < c->vote_floor)
        return;
    cs_vote_cast(c, s, SEQ_VOTE_FINALIZE, &n->hash, false, NULL);
}

/* ---- vote messages --------------------------------------------------------------- */

bool cs_vote_in_window(const seq_consensus *c, uint64_t view)
{
    return view > c->final_view && view <= c->view + SEQ_VOTE_VIEWS_AHEAD_MAX;
}

bool cs_vote_shape_ok(const seq_consensus *c, const seq_vote *v)
{
    if (v->kind < SEQ_VOTE_NOTARIZE || v->kind > SEQ_VOTE_FINALIZE || v->signer >= c->n)
        return false;
    return v->kind != SEQ_VOTE_NULLIFY || seq_hash_is_zero(&v->hash);
}

static bool vote_known(seq_consensus *c, const seq_vote *v)
{
    view_state *s = cs_view_get(c, v->view, false);
    if (!s)
        return false;
    const vote_slot *slot = &s->slots[kind_index(v->kind)][v->signer];
    return slot->has && seq_hash_eq(&slot->hash, &v->hash) && memcmp(&slot->sig, &v->sig, sizeof v->sig) == 0;
}

void cs_on_vote(seq_consensus *c, uint32_t from, const seq_vote *v)
{
    if (!cs_vote_shape_ok(c, v))
        { cs_drop(c, from, "malformed vote"); return; }
    if (!cs_vote_in_window(c, v->view))
        { cs_drop(c, from, "vote outside window"); return; }
    /* A lower-view vote says its signer is stuck there, unless it answers
     * our own certificate request (section 2, [R-RESTART-ALL]): helping
     * then would send our votes back and forth until the budget ran out. */
    if (v->view < c->view && v->signer == from && !cs_answers_our_ask(c, from, v->view))
        cs_laggard_help(c, from, v->view);
    if (vote_known(c, v))
        return;
    view_state *s = cs_view_get(c, v->view, false);
    if (s && s->slots[kind_index(v->kind)][v->signer].conflict_seen) {
        cs_drop(c, from, "more equivocation from a known equivocator");
        return;
    }
    c->stats.sig_checks++;
    if (seq_vote_verify(v, c->cfg.validators, c->cfg.chain_id) != 0) {
        c->stats.bad_signatures++;
        { cs_drop(c, from, "bad vote signature"); return; }
    }
    cs_vote_record(c, v);
}
