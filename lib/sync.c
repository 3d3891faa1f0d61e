/* Range block sync: checking that fetched blocks are final, and planning
 * which ranges to fetch from whom. See lib/sync.h. */
#include "sync.h"

#include <string.h>

#include "crypto.h"
#include "errors.h"

/* ---- checking --------------------------------------------------------------- */

static int check_links(uint64_t chain_id, uint64_t tip_height, const seq_hash *tip_hash,
                       seq_block *const *blocks, uint32_t n)
{
    if (blocks[0]->h.height != tip_height + 1)
        return SEQ_EORDER;
    const seq_hash *parent = tip_hash;
    for (uint32_t i = 0; i < n; i++) {
        const seq_block *b = blocks[i];
        if (b->h.chain_id != chain_id)
            return SEQ_ECHAIN_ID;
        if (b->h.height != tip_height + 1 + i || !seq_hash_eq(&b->h.parent, parent))
            return SEQ_EMISMATCH;
        parent = &b->hash;
    }
    return 0;
}

/* Index of the block certs[i] names, at i or later, or -1 for a block beyond. */
static int64_t named_block(seq_block *const *blocks, uint32_t n, uint32_t i, const seq_cert *c)
{
    for (uint32_t j = 0; j < n; j++)
        if (seq_hash_eq(&blocks[j]->hash, &c->hash))
            return j < i ? -2 : (int64_t)j;
    return -1;
}

static bool cert_same(const seq_cert *a, const seq_cert *b)
{
    return a->kind == b->kind && a->view == b->view && seq_hash_eq(&a->hash, &b->hash) &&
           memcmp(a->bitmap, b->bitmap, sizeof a->bitmap) == 0 && a->sig_count == b->sig_count &&
           a->sig_count <= SEQ_VALIDATORS_MAX && memcmp(a->sigs, b->sigs, a->sig_count * sizeof a->sigs[0]) == 0;
}

int seq_sync_check(const seq_validators *vs, uint64_t chain_id, uint64_t tip_height, const seq_hash *tip_hash,
                   seq_block *const *blocks, seq_cert *certs, uint32_t n, uint32_t *accepted)
{
    *accepted = 0;
    if (n == 0)
        return 0;
    int rc = check_links(chain_id, tip_height, tip_hash, blocks, n);
    if (rc)
        return rc;
    int64_t best = -1;
    const seq_cert *verified = NULL; /* answers usually repeat one certificate */
    for (uint32_t i = 0; i < n; i++) {
        const seq_cert *c = &certs[i];
        if (c->kind != SEQ_VOTE_FINALIZE)
            return SEQ_EMISMATCH;
        /* Skip only an exact copy: a copy with the same hash but another
         * view, bitmap or signature must be verified on its own. */
        if (!verified || !cert_same(verified, c)) {
            if ((rc = seq_cert_verify(c, vs, chain_id)))
                return rc;
            verified = c;
        }
        int64_t j = named_block(blocks, n, i, c);
        if (j == -2)
            return SEQ_EMISMATCH; /* finalizes an ancestor, not this block */
        if (j > best)
            best = j;
    }
    if (best < 0)
        return 0;
    /* Every accepted block whose certificate names a block past the prefix
     * gets the prefix's last certificate: it finalizes a descendant. */
    const seq_cert *last = NULL;
    for (uint32_t i = 0; i <= (uint32_t)best; i++)
        if (seq_hash_eq(&certs[i].hash, &blocks[best]->hash))
            last = &certs[i];
    SEQ_ASSERT(last);
    seq_cert keep = *last;
    for (uint32_t i = 0; i <= (uint32_t)best; i++)
        if (named_block(blocks, (uint32_t)best + 1, i, &certs[i]) < 0)
            certs[i] = keep;
    *accepted = (uint32_t)best + 1;
    return 0;
}

/* ---- planning --------------------------------------------------------------- */

void seq_sync_init(seq_sync *s, uint32_t n, uint32_t self, uint32_t range, uint32_t inflight_max,
                   uint64_t timeout_ms)
{
    memset(s, 0, sizeof *s);
    SEQ_ASSERT(n <= SEQ_VALIDATORS_MAX && self < n);
    s->n = n;
    s->self = self;
    s->range = range < 1 ? 1 : range > SEQ_SYNC_BLOCKS_MAX ? SEQ_SYNC_BLOCKS_MAX : range;
    s->inflight_max = inflight_max < 1 ? 1 : inflight_max > SEQ_SYNC_INFLIGHT_MAX ? SEQ_SYNC_INFLIGHT_MAX
                                                                                  : inflight_max;
    s->timeout_ms = timeout_ms;
}

void seq_sync_release(seq_sync *s, seq_sync_slot *slot)
{
    (void)s;
    if (slot->answered)
        seq_msg_release(&slot->resp);
    memset(slot, 0, sizeof *slot);
}

void seq_sync_reset(seq_sync *s)
{
    for (uint32_t i = 0; i < SEQ_SYNC_INFLIGHT_MAX; i++)
        seq_sync_release(s, &s->slots[i]);
}

void seq_sync_peer(seq_sync *s, uint32_t peer, bool up)
{
    if (peer >= s->n || peer == s->self)
        return;
    s->peer_up[peer] = up;
    if (up)
        return;
    for (uint32_t i = 0; i < SEQ_SYNC_INFLIGHT_MAX; i++)
        if (s->slots[i].used && !s->slots[i].answered && s->slots[i].peer == peer)
            seq_sync_release(s, &s->slots[i]); /* asked again of another peer */
}

void seq_sync_peer_tip(seq_sync *s, uint32_t peer, uint64_t tip)
{
    if (peer < s->n && peer != s->self)
        s->peer_tip[peer] = tip;
}

uint64_t seq_sync_target(const seq_sync *s)
{
    uint64_t best = 0;
    for (uint32_t p = 0; p < s->n; p++)
        if (s->peer_up[p] && s->peer_tip[p] > best)
            best = s->peer_tip[p];
    return best;
}

/* Whether some slot already covers height h. */
static bool covered(const seq_sync *s, uint64_t h, uint64_t *end)
{
    for (uint32_t i = 0; i < SEQ_SYNC_INFLIGHT_MAX; i++) {
        const seq_sync_slot *sl = &s->slots[i];
        if (sl->used && h >= sl->from && h < sl->from + sl->count) {
            *end = sl->from + sl->count;
            return true;
        }
    }
    return false;
}

/* The next live peer (round robin) that has height h, or UINT32_MAX. */
static uint32_t pick_peer(seq_sync *s, uint64_t h)
{
    for (uint32_t k = 0; k < s->n; k++) {
        uint32_t p = (s->next_peer + k) % s->n;
        if (p != s->self && s->peer_up[p] && s->peer_tip[p] >= h) {
            s->next_peer = (p + 1) % s->n;
            return p;
        }
    }
    return UINT32_MAX;
}

static seq_sync_slot *free_slot(seq_sync *s)
{
    uint32_t used = 0;
    seq_sync_slot *free = NULL;
    for (uint32_t i = 0; i < SEQ_SYNC_INFLIGHT_MAX; i++) {
        if (s->slots[i].used)
            used++;
        else if (!free)
            free = &s->slots[i];
    }
    return used < s->inflight_max ? free : NULL;
}

static void expire(seq_sync *s, uint64_t now_ms, uint64_t tip)
{
    for (uint32_t i = 0; i < SEQ_SYNC_INFLIGHT_MAX; i++) {
        seq_sync_slot *sl = &s->slots[i];
        if (!sl->used)
            continue;
        /* A slot starting at or below the tip can never be applied (its
         * answer does not start at tip+1), even when the tip landed inside
         * it: drop it and ask for the rest again. */
        bool stale = sl->from <= tip;
        bool late = !sl->answered && now_ms >= sl->sent_ms + s->timeout_ms;
        if (late) {
            s->timeouts++;
            s->next_peer = (sl->peer + 1) % s->n; /* ask the next peer, not the late one again */
        }
        if (stale || late)
            seq_sync_release(s, sl);
    }
}

uint32_t seq_sync_plan(seq_sync *s, uint64_t now_ms, uint64_t tip, seq_sync_request *out, uint32_t cap)
{
    s->tip = tip;
    expire(s, now_ms, tip);
    uint64_t target = seq_sync_target(s);
    uint32_t planned = 0;
    uint64_t h = tip + 1;
    while (h <= target && planned < cap) {
        uint64_t end;
        if (covered(s, h, &end)) {
            h = end;
            continue;
        }
        seq_sync_slot *sl = free_slot(s);
        uint32_t peer = sl ? pick_peer(s, h) : UINT32_MAX;
        if (peer == UINT32_MAX)
            break;
        uint64_t count = target - h + 1 < s->range ? target - h + 1 : s->range;
        /* stop short of a slot further up, so ranges never overlap */
        for (uint32_t i = 0; i < SEQ_SYNC_INFLIGHT_MAX; i++)
            if (s->slots[i].used && s->slots[i].from > h && s->slots[i].from - h < count)
                count = s->slots[i].from - h;
        *sl = (seq_sync_slot){.from = h, .count = (uint32_t)count, .peer = peer, .sent_ms = now_ms, .used = true};
        out[planned++] = (seq_sync_request){.peer = peer, .from = h, .count = (uint32_t)count};
        s->requests_sent++;
        h += count;
    }
    return planned;
}

bool seq_sync_answer(seq_sync *s, uint32_t peer, seq_msg *resp)
{
    SEQ_ASSERT(resp->kind == SEQ_MSG_SYNC_RESP);
    seq_sync_peer_tip(s, peer, resp->u.sync_resp.tip_height);
    if (resp->u.sync_resp.count == 0)
        return false;
    uint64_t first = resp->u.sync_resp.blocks[0]->h.height;
    for (uint32_t i = 0; i < SEQ_SYNC_INFLIGHT_MAX; i++) {
        seq_sync_slot *sl = &s->slots[i];
        if (sl->used && !sl->answered && sl->peer == peer && sl->from == first) {
            sl->resp = *resp;
            sl->answered = true;
            memset(resp, 0, sizeof *resp);
            return true;
        }
    }
    return false;
}

seq_sync_slot *seq_sync_ready(seq_sync *s)
{
    for (uint32_t i = 0; i < SEQ_SYNC_INFLIGHT_MAX; i++)
        if (s->slots[i].answered && s->slots[i].from == s->tip + 1)
            return &s->slots[i];
    return NULL;
}
