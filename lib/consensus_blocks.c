/* Blocks: the table of unfinalized blocks, the graveyard that frees them one
 * step late, fetching missing blocks, and committing finalized chains. */
#include "consensus_internal.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- graveyard ------------------------------------------------------------------- */

static void bury_block(seq_consensus *c, seq_block *b)
{
    SEQ_ASSERT(c->grave_block_count < SEQ_BLOCKS_MAX + 1);
    c->grave_blocks[c->grave_block_count++] = b;
}

void cs_bury_cert(seq_consensus *c, seq_cert *cert)
{
    if (!cert)
        return;
    SEQ_ASSERT(c->grave_cert_count < GRAVE_CERTS_MAX);
    c->grave_certs[c->grave_cert_count++] = cert;
}

void cs_empty_graves(seq_consensus *c)
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

seq_block *cs_block_find(const seq_consensus *c, const seq_hash *hash)
{
    int i = block_index(c, hash);
    return i < 0 ? NULL : c->blocks[i];
}

/* Takes a copy of b. False when memory or the bound says no. */
bool cs_block_keep(seq_consensus *c, const seq_block *b)
{
    if (cs_block_find(c, &b->hash))
        return true;
    if (c->block_count == SEQ_BLOCKS_MAX)
        cs_blocks_prune(c);
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
void cs_blocks_prune(seq_consensus *c)
{
    bool stale_ok = c->block_count > SEQ_BLOCKS_MAX / 2;
    bool keep[SEQ_BLOCKS_MAX] = {0}, walked[SEQ_BLOCKS_MAX] = {0};
    for (uint32_t i = 0; i < c->block_count; i++) {
        const seq_block *b = c->blocks[i];
        if (b->h.view <= c->final_view || b->h.height <= c->final_height)
            continue;
        const seq_hash *nz = cs_notarized_hash(c, b->h.view);
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

/* ---- fetching missing blocks ------------------------------------------------- */

void cs_fetch_ask(seq_consensus *c, fetch *f, int hint)
{
    seq_msg *m = cs_new_msg(c, SEQ_MSG_BLOCK_REQ);
    m->u.block_req.hash = f->hash;
    uint32_t to = hint >= 0 && (uint32_t)hint != c->cfg.self ? (uint32_t)hint : cs_next_peer(c);
    cs_send_msg(c, m, (int)to);
    f->asked_ms = c->now;
}

/* Asks for a block we need, once; retried from the timeout to other peers. */
void cs_block_request(seq_consensus *c, const seq_hash *hash, int hint)
{
    fetch *free_slot = NULL;
    for (uint32_t i = 0; i < FETCHES_MAX; i++)
        if (c->fetches[i].used && cs_block_find(c, &c->fetches[i].hash))
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
    cs_fetch_ask(c, free_slot, hint);
}

static fetch *fetch_of(seq_consensus *c, const seq_hash *hash)
{
    for (uint32_t i = 0; i < FETCHES_MAX; i++)
        if (c->fetches[i].used && seq_hash_eq(&c->fetches[i].hash, hash))
            return &c->fetches[i];
    return NULL;
}

/* ---- commit ------------------------------------------------------------------------ */

/* [R-COMMIT] a finalization of block B makes B and its unfinalized ancestors
 * final, delivered in height order. Missing ancestors are fetched first. */
bool cs_commit_try(seq_consensus *c)
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
        seq_block *b = cs_block_find(c, &cur);
        if (!b) {
            cs_block_request(c, &cur, -1);
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
    cs_bury_cert(c, c->final_cert);
    c->final_cert = c->pending_cert;
    c->pending_cert = NULL;
    c->pending = false;
    while (depth > 0) {
        seq_block *b = chain[--depth];
        seq_action *a = cs_emit(c, SEQ_ACT_DELIVER);
        a->u.deliver.block = b;
        a->u.deliver.cert = c->final_cert;
        c->final_height = b->h.height;
        c->final_view = b->h.view;
        c->final_hash = b->hash;
        c->final_ts = b->h.timestamp_ms;
    }
    cs_blocks_prune(c);
    cs_facts_prune(c);
    memset(c->fetches, 0, sizeof c->fetches);
    if (c->final_view > c->max_cert_view)
        c->max_cert_view = c->final_view;
    return true;
}

/* True when every unfinalized ancestor from `hash` down to our last finalized
 * block is in memory, so that the driver's BUILD / VERIFY can see every
 * transaction the chain already carries. Missing blocks are fetched; a chain
 * that does not reach our finalized block is reported as -1. */
int cs_chain_complete(seq_consensus *c, const seq_hash *hash, int hint)
{
    seq_hash cur = *hash;
    for (uint32_t depth = 0; depth <= SEQ_BLOCKS_MAX; depth++) {
        if (seq_hash_eq(&cur, &c->final_hash))
            return 1;
        const seq_block *b = cs_block_find(c, &cur);
        if (!b) {
            cs_block_request(c, &cur, hint);
            return 0;
        }
        if (b->h.height <= c->final_height)
            return -1;
        cur = b->h.parent;
    }
    return -1;
}

/* ---- block messages -------------------------------------------------------------- */

void cs_on_block(seq_consensus *c, uint32_t from, const seq_block *b)
{
    if (b->h.chain_id != c->cfg.chain_id)
        { cs_drop(c, from, "block for another chain"); return; }
    if (cs_block_find(c, &b->hash))
        return;
    fetch *f = fetch_of(c, &b->hash);
    if (b->h.view <= c->final_view || !f)
        { cs_drop(c, from, "block not asked for"); return; }
    /* A full table keeps the fetch open for the timeout's retry, rather than
     * asking again at once in a loop. */
    if (!cs_block_keep(c, b))
        return;
    f->used = false;
    /* Walk on to the parent at once, from the peer that just had this one:
     * a lagging node fetches a chain at network speed, not one block per
     * proposal it happens to be checking. */
    (void)cs_chain_complete(c, &b->h.parent, (int)from);
}
