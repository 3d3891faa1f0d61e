/* Certificates: what they prove beyond the view ring (nullified runs, notarized
 * blocks), the packed archive, and answering peers that ask for them or lag. */
#include "consensus_internal.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

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
const view_run *cs_nullified_run(const seq_consensus *c, uint64_t u)
{
    for (uint32_t i = 0; i < c->nullified_count; i++)
        if (c->nullified[i].from <= u && u <= c->nullified[i].to)
            return &c->nullified[i];
    return NULL;
}

const seq_hash *cs_notarized_hash(const seq_consensus *c, uint64_t u)
{
    for (uint32_t i = 0; i < c->notarized_count; i++)
        if (c->notarized[i].view == u)
            return &c->notarized[i].hash;
    return NULL;
}

static void notarized_add(seq_consensus *c, uint64_t u, const seq_hash *hash)
{
    if (cs_notarized_hash(c, u))
        return;
    if (c->notarized_count == SEQ_BLOCKS_MAX) {
        memmove(&c->notarized[0], &c->notarized[1], (SEQ_BLOCKS_MAX - 1) * sizeof *c->notarized);
        c->notarized_count--;
    }
    c->notarized[c->notarized_count++] = (notarized_ref){u, *hash};
}

/* After a commit, facts at or below the finalized view no longer matter. */
void cs_facts_prune(seq_consensus *c)
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
void cs_certs_ask(seq_consensus *c, view_state *s, uint64_t from, uint64_t end, int to)
{
    if (!s || c->n == 1 || s->asked_from == from)
        return;
    s->asked_from = from;
    uint64_t span = end > from ? end - from : 1;
    seq_msg *m = cs_new_msg(c, SEQ_MSG_CERT_REQ);
    m->u.cert_req.view_from = from;
    m->u.cert_req.count = (uint32_t)(span < SEQ_CERT_REQ_VIEWS_MAX ? span : SEQ_CERT_REQ_VIEWS_MAX);
    cs_send_msg(c, m, to);
    for (uint32_t p = 0; p < c->n; p++)
        if (to < 0 || (uint32_t)to == p) {
            c->asked_lo[p] = from;
            c->asked_hi[p] = from + m->u.cert_req.count;
        }
}

bool cs_answers_our_ask(const seq_consensus *c, uint32_t peer, uint64_t u)
{
    return u >= c->asked_lo[peer] && u < c->asked_hi[peer];
}

/* ---- certificates ---------------------------------------------------------------- */

static void finalization_hold(seq_consensus *c, const seq_cert *cert)
{
    if (cert->view <= c->final_view || (c->pending && cert->view <= c->pending_view))
        return;
    seq_cert *copy = malloc(sizeof *copy);
    if (!copy)
        return;
    *copy = *cert;
    cs_bury_cert(c, c->pending_cert);
    c->pending_cert = copy;
    c->pending_view = cert->view;
    c->pending = true;
}

void cs_on_cert(seq_consensus *c, const seq_cert *cert, bool formed_here)
{
    int k = kind_index(cert->kind);
    if (k == K_FINALIZE)
        finalization_hold(c, cert);
    view_state *s = cs_view_get(c, cert->view, true);
    if (s && !s->certs[k]) {
        s->certs[k] = malloc(sizeof *cert);
        if (!s->certs[k])
            return;
        *s->certs[k] = *cert;
        if (formed_here)
            cs_send_cert(c, cert, -1);
    }
    if (cert->view > c->final_view)
        archive_put(c, cert);
    facts_note(c, cert);
    if (cert->view > c->max_cert_view)
        c->max_cert_view = cert->view;
    if (s && k == K_NOTARIZE)
        cs_maybe_finalize_vote(c, s);
}

/* The votes of one view and kind we hold, for a certificate of that view,
 * kind and hash. */
typedef struct {
    const view_state *s; /* NULL: none */
    int k;
    const seq_hash *hash;
    uint32_t skipped; /* signatures found among them */
} cert_votes;

/* A certificate's signature that we hold as a vote slot (same signer, kind,
 * view, hash and signature) was verified when the vote came: a certificate
 * that arrives before ours formed mostly repeats votes we have. */
static bool sig_verified_as_vote(void *ctx, uint32_t signer, const seq_sig *sig)
{
    cert_votes *cv = ctx;
    if (!cv->s)
        return false;
    const vote_slot *slot = &cv->s->slots[cv->k][signer];
    bool held = slot->has && seq_hash_eq(&slot->hash, cv->hash) && memcmp(&slot->sig, sig, sizeof *sig) == 0;
    cv->skipped += held;
    return held;
}

void cs_on_cert_msg(seq_consensus *c, uint32_t from, const seq_cert *cert)
{
    if (cert->kind < SEQ_VOTE_NOTARIZE || cert->kind > SEQ_VOTE_FINALIZE)
        { cs_drop(c, from, "malformed certificate"); return; }
    if (cert->view <= c->final_view)
        return; /* already final: nothing to learn */
    /* A certificate we hold (ring or archive) is not verified again; its facts
     * are noted again in case they were evicted. */
    int k = kind_index(cert->kind);
    const seq_cert *have = cs_cert_of(c, cert->view, k);
    seq_cert archived;
    if (!have && archive_get(c, cert->view, cert->kind, &archived))
        have = &archived;
    if (have && seq_hash_eq(&have->hash, &cert->hash) &&
        (k != K_FINALIZE || (c->pending && c->pending_view >= cert->view))) {
        facts_note(c, have);
        return;
    }
    cert_votes known = { cs_view_get(c, cert->view, false), k, &cert->hash, 0 };
    int rc = seq_cert_verify_skipping(cert, c->cfg.validators, c->cfg.chain_id, sig_verified_as_vote, &known);
    c->stats.sig_checks += seq_cert_signers(cert) - known.skipped; /* about, when it failed early */
    if (rc != 0) {
        c->stats.bad_signatures++;
        { cs_drop(c, from, "bad certificate"); return; }
    }
    cs_on_cert(c, cert, false);
}

/* ---- helping peers --------------------------------------------------------------- */

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

/* Our own signed vote again, to one peer: it contradicts nothing, and lets
 * the peer form a certificate nobody holds any more. */
static void send_own_vote(seq_consensus *c, const seq_vote *v, uint32_t to)
{
    seq_msg *m = cs_new_msg(c, SEQ_MSG_VOTE);
    m->u.vote = *v;
    cs_send_msg(c, m, (int)to);
}

/* A vote from a view below ours says its sender is stuck there: send it the
 * certificate that moved us on, or, when we no longer hold one (a restart
 * loses them), our own signed votes of that view, so that it can form the
 * certificate itself. */
void cs_laggard_help(seq_consensus *c, uint32_t peer, uint64_t u)
{
    if (u >= c->view || !peer_budget_take(c, peer))
        return;
    seq_cert cert;
    const seq_cert *have = NULL;
    for (int k = 0; k < KINDS && !have; k++)
        have = cs_cert_of(c, u, k);
    if (!have && (archive_get(c, u, SEQ_VOTE_NOTARIZE, &cert) || archive_get(c, u, SEQ_VOTE_NULLIFY, &cert)))
        have = &cert;
    if (have) {
        cs_send_cert(c, have, (int)peer);
        return;
    }
    view_state *s = cs_view_get(c, u, false);
    for (int k = 0; s && k < KINDS; k++)
        if (s->mine[k])
            send_own_vote(c, &s->my_vote[k], peer);
}

_Static_assert(STEP_MSGS_MAX >= KINDS * SEQ_CERT_REQ_VIEWS_MAX + 1, "one answer's messages fit a step");

/* Answers with the certificates we hold for the views asked: from the ring,
 * else from the archive. A kind we hold no certificate of but voted is
 * answered with our vote: after every validator restarted, the certificates
 * of the views just before are lost everywhere, and the one resend when a
 * link comes up ([R-RESTART-ALL]) may not reach everyone; the asker forms
 * them from the votes of the peers it asks in turn. At most
 * SEQ_CERT_REQS_PER_VIEW_MAX requests per peer per view of ours, so a peer
 * cannot make us repeat ourselves at will; at most 3 messages per view. */
void cs_on_cert_req(seq_consensus *c, uint32_t from, uint64_t view_from, uint32_t count)
{
    if (count == 0 || count > SEQ_CERT_REQ_VIEWS_MAX || view_from > UINT64_MAX - count) {
        cs_drop(c, from, "bad certificate request");
        return;
    }
    if (!peer_budget_take(c, from))
        return;
    if (view_from <= c->final_view && c->final_cert)
        cs_send_cert(c, c->final_cert, (int)from);
    for (uint64_t u = view_from; u < view_from + count; u++) {
        view_state *s = cs_view_get(c, u, false);
        if (s) {
            for (int k = 0; k < KINDS; k++) {
                if (s->certs[k])
                    cs_send_cert(c, s->certs[k], (int)from);
                else if (s->mine[k])
                    send_own_vote(c, &s->my_vote[k], from);
            }
            continue;
        }
        seq_cert cert;
        if (archive_get(c, u, SEQ_VOTE_NOTARIZE, &cert))
            cs_send_cert(c, &cert, (int)from);
        if (archive_get(c, u, SEQ_VOTE_NULLIFY, &cert))
            cs_send_cert(c, &cert, (int)from);
    }
}
