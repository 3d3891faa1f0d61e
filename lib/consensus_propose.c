/* Proposals: as leader, picking the parent [R-PARENT] and proposing the
 * driver's payload; as replica, checking a proposal [R-PROPOSAL] and voting. */
#include "consensus_internal.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

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
        const seq_hash *nz = cs_notarized_hash(c, u);
        if (nz) {
            const seq_block *b = cs_block_find(c, nz);
            if (!b) {
                cs_block_request(c, nz, -1);
                return 0;
            }
            *out = (parent_ref){b->hash, u, b->h.height, b->h.timestamp_ms};
            return 1;
        }
        const view_run *run = cs_nullified_run(c, u);
        if (!run) {
            /* the gap may reach further down: ask for the views ending at u */
            uint64_t from = u >= c->final_view + SEQ_CERT_REQ_VIEWS_MAX ? u + 1 - SEQ_CERT_REQ_VIEWS_MAX
                                                                         : c->final_view + 1;
            if (c->n > 1)
                cs_certs_ask(c, cs_view_get(c, v, true), from, u + 1, (int)cs_next_peer(c));
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

void cs_propose_try(seq_consensus *c)
{
    uint64_t v = c->view;
    if (seq_leader_of(c->cfg.validators, v) != c->cfg.self)
        return;
    view_state *s = cs_view_get(c, v, true);
    if (!s || s->build_requested || s->mine[K_NOTARIZE] || s->mine[K_NULLIFY])
        return;
    parent_ref p;
    if (parent_pick(c, v, &p) != 1 || cs_chain_complete(c, &p.hash, -1) != 1)
        return;
    s->build_requested = true;
    s->build_parent = p.hash;
    seq_action *a = cs_emit(c, SEQ_ACT_BUILD);
    a->u.build.view = v;
    a->u.build.parent = &s->build_parent;
}

void cs_on_payload(seq_consensus *c, const seq_event *ev)
{
    uint64_t v = ev->u.payload.view;
    view_state *s = cs_view_get(c, v, false);
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
    if (seq_block_build_ided(&b, &tmpl, ev->u.payload.txs, ev->u.payload.count) != 0) {
        SEQ_WARN("propose_failed", "node=%u view=%llu", c->cfg.self, (unsigned long long)v);
        return;
    }
    if (c->block_count == SEQ_BLOCKS_MAX)
        cs_blocks_prune(c);
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
    cs_vote_cast(c, s, SEQ_VOTE_NOTARIZE, &b->hash, true, b);
}

/* ---- voting on a proposal ------------------------------------------------------------ */

/* [R-PROPOSAL] a proposal for view v is voted for when its parent p is the last
 * finalized block or a notarized block of view p, its height is the parent's
 * plus one, and every view in (p, v) is nullified. Missing pieces are asked
 * from the leader, who must have had them to propose. */
void cs_vote_try(seq_consensus *c)
{
    view_state *s = cs_view_get(c, c->view, false);
    if (!s || s->prop_state != PROP_WAITING || s->mine[K_NOTARIZE] || s->mine[K_NULLIFY])
        return;
    seq_block *b = cs_block_find(c, &s->proposal);
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
        const seq_hash *nz = cs_notarized_hash(c, h->parent_view);
        const seq_block *pb = cs_block_find(c, &h->parent);
        if (nz && !seq_hash_eq(nz, &h->parent)) {
            s->prop_state = PROP_INVALID;
            return;
        }
        if (!nz) {
            cs_certs_ask(c, s, h->parent_view, h->view, (int)leader);
            return;
        }
        if (!pb) {
            cs_block_request(c, &h->parent, (int)leader);
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
        const view_run *run = cs_nullified_run(c, u);
        if (run) {
            u = run->to + 1;
            continue;
        }
        cs_certs_ask(c, s, u, h->view, (int)leader);
        return;
    }
    int chain = cs_chain_complete(c, &h->parent, (int)leader);
    if (chain < 0)
        s->prop_state = PROP_INVALID;
    if (chain != 1)
        return;
    s->prop_state = PROP_VERIFYING;
    cs_emit(c, SEQ_ACT_VERIFY)->u.block = b;
}

void cs_on_verified(seq_consensus *c, const seq_event *ev)
{
    view_state *s = cs_view_get(c, ev->u.verified.view, false);
    if (!s || s->prop_state != PROP_VERIFYING || !seq_hash_eq(&s->proposal, &ev->u.verified.hash))
        return;
    if (!ev->u.verified.ok) {
        s->prop_state = PROP_INVALID;
        return;
    }
    s->prop_state = PROP_DONE;
    /* [R-VOTE1] one notarize per view, and none after we nullified it. */
    if (s->view == c->view && !s->mine[K_NOTARIZE] && !s->mine[K_NULLIFY])
        cs_vote_cast(c, s, SEQ_VOTE_NOTARIZE, &s->proposal, false, NULL);
}

void cs_on_propose(seq_consensus *c, uint32_t from, const seq_msg *m)
{
    const seq_block *b = m->u.propose.block;
    const seq_vote *v = &m->u.propose.vote;
    uint64_t view = b->h.view;
    uint32_t leader = seq_leader_of(c->cfg.validators, view);
    if (b->h.chain_id != c->cfg.chain_id || !cs_vote_shape_ok(c, v))
        { cs_drop(c, from, "proposal for another chain or malformed"); return; }
    if (v->kind != SEQ_VOTE_NOTARIZE || v->view != view || v->signer != leader || b->h.leader != leader ||
        !seq_hash_eq(&v->hash, &b->hash))
        { cs_drop(c, from, "proposal not signed by the view's leader"); return; }
    if (!cs_vote_in_window(c, view) || b->h.height <= c->final_height)
        { cs_drop(c, from, "proposal outside window or below our finalized height"); return; }
    view_state *s = cs_view_get(c, view, true);
    if (s && s->has_proposal && seq_hash_eq(&s->proposal, &b->hash))
        return; /* duplicate */
    c->stats.sig_checks++;
    if (seq_vote_verify(v, c->cfg.validators, c->cfg.chain_id) != 0) {
        c->stats.bad_signatures++;
        { cs_drop(c, from, "bad proposal signature"); return; }
    }
    if (!s)
        return;
    if (!s->has_proposal && cs_block_keep(c, b)) {
        s->has_proposal = true;
        s->proposal = b->hash;
        s->prop_state = PROP_WAITING;
    }
    cs_vote_record(c, v); /* a second proposal of the leader shows up as evidence here */
}
