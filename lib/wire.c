/* seq_msg <-> PeerMessage (proto/seq.proto). Decoding is the network's front
 * door: it checks the shape of every field (sizes, counts, kinds) so the core
 * only ever sees well-formed messages, and it bounds the memory protobuf-c may
 * allocate for one message.
 *
 * Shape rules (decisions documented here and in wire.h):
 * - hashes exactly SEQ_HASH_BYTES, signatures exactly SEQ_SIG_BYTES;
 * - a nullify vote or nullification carries an empty hash (what we send) or
 *   SEQ_HASH_BYTES zero bytes; either decodes to the zero hash;
 * - a certificate's signer bitmap is exactly SEQ_BITMAP_BYTES (one canonical
 *   form, no zero-extension), has at least one bit set, and the number of
 *   signatures equals its popcount;
 * - a proposal's vote is a notarize vote for exactly that block (view, hash);
 * - a compact proposal carries exactly 32 bytes of id per header.tx_count. */
#include "wire.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "pbconv.h"
#include "seq.pb-c.h"

_Static_assert(SEQ_BITMAP_BYTES * 8 == SEQ_VALIDATORS_MAX, "bitmap holds one bit per validator");
_Static_assert(SEQ_GOSSIP_TXS_MAX <= SEQ_BLOCK_TXS_MAX, "a gossip batch fits in a block");

/* What protobuf-c may allocate while unpacking one message, beyond twice its
 * length (payload copies): enough for one block of SEQ_BLOCK_TXS_MAX empty
 * transactions, measured at about 92 bytes each (the Tx struct, its pointer,
 * protobuf-c's scan slabs), so a frame of tiny repeated elements cannot make
 * us allocate tens of bytes per byte received. A message carrying several
 * blocks (range sync) needs its budget scaled by its block count. */
#define DECODE_ALLOC_BYTES_PER_TX 128u
#define DECODE_ALLOC_SLACK_BYTES ((size_t)SEQ_BLOCK_TXS_MAX * DECODE_ALLOC_BYTES_PER_TX + (1u << 20))

/* ---- encoding --------------------------------------------------------------- */

/* The protobuf-c structs of one outgoing message; they point into the seq_msg
 * (no copies) and live until it is packed. */
typedef struct encode_scratch {
    Seq__Proposal proposal;
    Seq__CompactProposal compact;
    uint8_t *ids; /* compact proposal of a block: its tx ids gathered, malloc'd */
    Seq__Vote vote;
    Seq__Certificate cert;
    ProtobufCBinaryData sigs[SEQ_VALIDATORS_MAX];
    Seq__BlockRequest block_req;
    Seq__BlockResponse block_resp;
    Seq__CertRequest cert_req;
    Seq__TxBatch batch;
    Seq__BlockHeader header;
    Seq__Block block;
    Seq__Tx *tx_items; /* malloc'd */
    Seq__Tx **tx_ptrs; /* malloc'd */
    Seq__SyncRequest sync_req;
    Seq__SyncResponse sync_resp;
    struct encode_scratch *parts; /* sync response: one scratch per block, malloc'd */
    Seq__FinalizedBlock *finals;  /* malloc'd */
    Seq__FinalizedBlock **final_ptrs;
    uint32_t part_count;
} encode_scratch;

static ProtobufCBinaryData bin(const void *p, size_t n)
{
    return (ProtobufCBinaryData){ .len = n, .data = (uint8_t *)p };
}

static bool kind_valid(uint32_t kind)
{
    return kind >= SEQ_VOTE_NOTARIZE && kind <= SEQ_VOTE_FINALIZE;
}

/* The hash field of a vote or certificate: empty for nullify. */
static int vote_hash_to_pb(ProtobufCBinaryData *out, uint32_t kind, const seq_hash *h)
{
    if (!kind_valid(kind))
        return SEQ_EINVAL;
    if (kind == SEQ_VOTE_NULLIFY) {
        if (!seq_hash_is_zero(h))
            return SEQ_EINVAL;
        *out = bin(NULL, 0);
        return 0;
    }
    *out = bin(h->b, SEQ_HASH_BYTES);
    return 0;
}

static int vote_to_pb(Seq__Vote *pb, const seq_vote *v)
{
    *pb = (Seq__Vote)SEQ__VOTE__INIT;
    pb->kind = v->kind;
    pb->view = v->view;
    pb->signer = v->signer;
    pb->sig = bin(v->sig.b, SEQ_SIG_BYTES);
    return vote_hash_to_pb(&pb->hash, v->kind, &v->hash);
}

static int cert_to_pb(encode_scratch *s, const seq_cert *c)
{
    if (c->sig_count > SEQ_VALIDATORS_MAX)
        return SEQ_EINVAL;
    s->cert = (Seq__Certificate)SEQ__CERTIFICATE__INIT;
    s->cert.kind = c->kind;
    s->cert.view = c->view;
    s->cert.signers = bin(c->bitmap, SEQ_BITMAP_BYTES);
    for (uint32_t i = 0; i < c->sig_count; i++)
        s->sigs[i] = bin(c->sigs[i].b, SEQ_SIG_BYTES);
    s->cert.n_sigs = c->sig_count;
    s->cert.sigs = c->sig_count ? s->sigs : NULL;
    return vote_hash_to_pb(&s->cert.hash, c->kind, &c->hash);
}

/* Points s->tx_items / s->tx_ptrs at txs. */
static int txs_to_pb(encode_scratch *s, const seq_tx *txs, uint32_t n)
{
    if (n == 0)
        return 0;
    SEQ_ASSERT(txs);
    s->tx_items = malloc(n * sizeof *s->tx_items);
    s->tx_ptrs = malloc(n * sizeof *s->tx_ptrs);
    if (!s->tx_items || !s->tx_ptrs)
        return SEQ_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        s->tx_items[i] = (Seq__Tx)SEQ__TX__INIT;
        s->tx_items[i].ns = txs[i].ns;
        s->tx_items[i].payload = bin(txs[i].data, txs[i].len);
        s->tx_ptrs[i] = &s->tx_items[i];
    }
    return 0;
}

static int block_to_pb(encode_scratch *s, const seq_block *b)
{
    if (!b)
        return SEQ_EINVAL;
    seq_pb_header_set(&s->header, &b->h);
    s->block = (Seq__Block)SEQ__BLOCK__INIT;
    s->block.header = &s->header;
    int rc = txs_to_pb(s, b->txs, b->tx_count);
    if (rc)
        return rc;
    s->block.n_txs = b->tx_count;
    s->block.txs = s->tx_ptrs;
    return 0;
}

static void scratch_release(encode_scratch *s)
{
    for (uint32_t i = 0; i < s->part_count; i++)
        scratch_release(&s->parts[i]);
    free(s->parts);
    free(s->finals);
    free(s->final_ptrs);
    free(s->tx_items);
    free(s->tx_ptrs);
    free(s->ids);
}

_Static_assert(sizeof(seq_hash) == SEQ_HASH_BYTES, "an id array is its bytes back to back");

/* A CompactProposal: from a block (its ids gathered into s->ids) or from a
 * SEQ_MSG_PROPOSE_IDS (its id array as it is; tests build them). */
static int compact_to_pb(Seq__PeerMessage *pm, encode_scratch *s, const seq_header *h, const seq_hash *ids,
                         const seq_vote *v)
{
    s->compact = (Seq__CompactProposal)SEQ__COMPACT_PROPOSAL__INIT;
    seq_pb_header_set(&s->header, h);
    s->compact.header = &s->header;
    s->compact.vote = &s->vote;
    s->compact.tx_ids = bin(ids, (size_t)h->tx_count * SEQ_HASH_BYTES);
    pm->body_case = SEQ__PEER_MESSAGE__BODY_COMPACT_PROPOSAL;
    pm->compact_proposal = &s->compact;
    return vote_to_pb(&s->vote, v);
}

static int block_compact_to_pb(Seq__PeerMessage *pm, encode_scratch *s, const seq_msg *m)
{
    const seq_block *b = m->u.propose.block;
    if (!b)
        return SEQ_EINVAL;
    if (!(s->ids = malloc((size_t)b->tx_count * SEQ_HASH_BYTES + 1)))
        return SEQ_ENOMEM;
    for (uint32_t i = 0; i < b->tx_count; i++)
        memcpy(s->ids + (size_t)i * SEQ_HASH_BYTES, b->txs[i].id.b, SEQ_HASH_BYTES);
    return compact_to_pb(pm, s, &b->h, (const seq_hash *)(void *)s->ids, &m->u.propose.vote);
}

/* A range sync response: one scratch per block for its header, txs and cert. */
static int sync_resp_to_pb(encode_scratch *s, const seq_msg *m)
{
    uint32_t n = m->u.sync_resp.count;
    if (n > SEQ_SYNC_BLOCKS_MAX)
        return SEQ_EINVAL;
    s->sync_resp = (Seq__SyncResponse)SEQ__SYNC_RESPONSE__INIT;
    s->sync_resp.tip_height = m->u.sync_resp.tip_height;
    if (n == 0)
        return 0;
    s->parts = calloc(n, sizeof *s->parts);
    s->finals = calloc(n, sizeof *s->finals);
    s->final_ptrs = calloc(n, sizeof *s->final_ptrs);
    if (!s->parts || !s->finals || !s->final_ptrs)
        return SEQ_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        encode_scratch *part = &s->parts[i];
        s->part_count = i + 1;
        int rc = block_to_pb(part, m->u.sync_resp.blocks[i]);
        if (!rc)
            rc = cert_to_pb(part, &m->u.sync_resp.certs[i]);
        if (rc)
            return rc;
        s->finals[i] = (Seq__FinalizedBlock)SEQ__FINALIZED_BLOCK__INIT;
        s->finals[i].block = &part->block;
        s->finals[i].cert = &part->cert;
        s->final_ptrs[i] = &s->finals[i];
    }
    s->sync_resp.n_blocks = n;
    s->sync_resp.blocks = s->final_ptrs;
    return 0;
}

/* Sets pm's body from m; pm then points into s and m. */
static int msg_to_pb(Seq__PeerMessage *pm, encode_scratch *s, const seq_msg *m)
{
    int rc;
    switch (m->kind) {
    case SEQ_MSG_PROPOSE_IDS:
        return compact_to_pb(pm, s, &m->u.propose_ids.header, m->u.propose_ids.ids, &m->u.propose_ids.vote);
    case SEQ_MSG_PROPOSE:
        if (m->u.propose.ids_only)
            return block_compact_to_pb(pm, s, m);
        s->proposal = (Seq__Proposal)SEQ__PROPOSAL__INIT;
        s->proposal.block = &s->block;
        s->proposal.vote = &s->vote;
        pm->body_case = SEQ__PEER_MESSAGE__BODY_PROPOSAL;
        pm->proposal = &s->proposal;
        rc = vote_to_pb(&s->vote, &m->u.propose.vote);
        return rc ? rc : block_to_pb(s, m->u.propose.block);
    case SEQ_MSG_VOTE:
        pm->body_case = SEQ__PEER_MESSAGE__BODY_VOTE;
        pm->vote = &s->vote;
        return vote_to_pb(&s->vote, &m->u.vote);
    case SEQ_MSG_CERT:
        pm->body_case = SEQ__PEER_MESSAGE__BODY_CERT;
        pm->cert = &s->cert;
        return cert_to_pb(s, &m->u.cert);
    case SEQ_MSG_BLOCK_REQ:
        s->block_req = (Seq__BlockRequest)SEQ__BLOCK_REQUEST__INIT;
        s->block_req.hash = bin(m->u.block_req.hash.b, SEQ_HASH_BYTES);
        pm->body_case = SEQ__PEER_MESSAGE__BODY_BLOCK_REQ;
        pm->block_req = &s->block_req;
        return 0;
    case SEQ_MSG_BLOCK:
        s->block_resp = (Seq__BlockResponse)SEQ__BLOCK_RESPONSE__INIT;
        s->block_resp.block = &s->block;
        pm->body_case = SEQ__PEER_MESSAGE__BODY_BLOCK;
        pm->block = &s->block_resp;
        return block_to_pb(s, m->u.block.block);
    case SEQ_MSG_CERT_REQ:
        s->cert_req = (Seq__CertRequest)SEQ__CERT_REQUEST__INIT;
        s->cert_req.view_from = m->u.cert_req.view_from;
        s->cert_req.count = m->u.cert_req.count;
        pm->body_case = SEQ__PEER_MESSAGE__BODY_CERT_REQ;
        pm->cert_req = &s->cert_req;
        return 0;
    case SEQ_MSG_TXS:
        s->batch = (Seq__TxBatch)SEQ__TX_BATCH__INIT;
        pm->body_case = SEQ__PEER_MESSAGE__BODY_TXS;
        pm->txs = &s->batch;
        if ((rc = txs_to_pb(s, m->u.txs.txs, m->u.txs.count)))
            return rc;
        s->batch.n_txs = m->u.txs.count;
        s->batch.txs = s->tx_ptrs;
        return 0;
    case SEQ_MSG_SYNC_REQ:
        s->sync_req = (Seq__SyncRequest)SEQ__SYNC_REQUEST__INIT;
        s->sync_req.from_height = m->u.sync_req.from_height;
        s->sync_req.count = m->u.sync_req.count;
        pm->body_case = SEQ__PEER_MESSAGE__BODY_SYNC_REQ;
        pm->sync_req = &s->sync_req;
        return 0;
    case SEQ_MSG_SYNC_RESP:
        pm->body_case = SEQ__PEER_MESSAGE__BODY_SYNC_RESP;
        pm->sync_resp = &s->sync_resp;
        return sync_resp_to_pb(s, m);
    }
    return SEQ_EINVAL;
}

int seq_msg_encode(const seq_msg *m, uint8_t **out, size_t *len)
{
    SEQ_ASSERT(m && out && len);
    Seq__PeerMessage pm = SEQ__PEER_MESSAGE__INIT;
    encode_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return SEQ_ENOMEM;
    int rc = msg_to_pb(&pm, s, m);
    if (rc)
        goto err_after_scratch;
    size_t n = seq__peer_message__get_packed_size(&pm);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        rc = SEQ_ENOMEM;
        goto err_after_scratch;
    }
    size_t written = seq__peer_message__pack(&pm, buf);
    SEQ_ASSERT(written == n);
    *out = buf;
    *len = n;
err_after_scratch:
    scratch_release(s);
    free(s);
    return rc;
}

/* ---- decoding --------------------------------------------------------------- */

/* A protobuf-c allocator that refuses to hand out more than a budget. */
typedef seq_pb_budget alloc_budget;

static void *budget_alloc(void *ctx, size_t size)
{
    alloc_budget *b = ctx;
    if (size > b->left)
        return NULL;
    b->left -= size;
    return malloc(size);
}

static void budget_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

void seq_pb_budget_init(seq_pb_budget *b, size_t frame_len)
{
    b->left = SIZE_MAX;
    if (frame_len <= (SIZE_MAX - DECODE_ALLOC_SLACK_BYTES) / 2)
        b->left = 2 * frame_len + DECODE_ALLOC_SLACK_BYTES;
    b->allocator = (ProtobufCAllocator){.alloc = budget_alloc, .free = budget_free, .allocator_data = b};
}

struct seq_pb_chunk {
    seq_pb_chunk *next;
    size_t cap, used;
    max_align_t data[]; /* cap bytes */
};

#define ARENA_ALIGN (_Alignof(max_align_t))
#define ARENA_FIRST_CHUNK_MIN (16u << 10)

/* The budget is charged what protobuf-c asks for, as seq_pb_budget does (the
 * padding to alignment is the arena's, less than malloc's own overhead): a
 * message that fits one fits the other. */
static void *arena_alloc(void *ctx, size_t size)
{
    seq_pb_arena *a = ctx;
    size_t need = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (need < size || size > a->left)
        return NULL;
    seq_pb_chunk *c = a->head;
    if (!c || c->cap - c->used < need) {
        size_t cap = a->next_bytes;
        if (cap > a->left + need)
            cap = a->left + need; /* chunks grow no further than the budget can use */
        if (cap < need)
            cap = need;
        if (!(c = malloc(sizeof *c + cap)))
            return NULL;
        *c = (seq_pb_chunk){.next = a->head, .cap = cap};
        a->head = c;
        a->next_bytes = cap <= SIZE_MAX / 2 ? 2 * cap : cap;
    }
    void *p = (uint8_t *)c->data + c->used;
    c->used += need;
    a->left -= size;
    return p;
}

static void arena_free(void *ctx, void *p)
{
    (void)ctx;
    (void)p; /* released all at once */
}

/* The first chunk fits the payload copies of a frame of frame_len bytes and
 * some structs: most frames need one chunk. */
void seq_pb_arena_init(seq_pb_arena *a, size_t frame_len)
{
    seq_pb_budget b;
    seq_pb_budget_init(&b, frame_len);
    size_t first = frame_len + frame_len / 2;
    *a = (seq_pb_arena){.left = b.left, .next_bytes = first > ARENA_FIRST_CHUNK_MIN ? first : ARENA_FIRST_CHUNK_MIN};
    a->allocator = (ProtobufCAllocator){.alloc = arena_alloc, .free = arena_free, .allocator_data = a};
}

void seq_pb_arena_release(seq_pb_arena *a)
{
    while (a->head) {
        seq_pb_chunk *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

static int hash_from_pb(seq_hash *out, const ProtobufCBinaryData *in)
{
    if (in->len != SEQ_HASH_BYTES)
        return SEQ_EDECODE;
    memcpy(out->b, in->data, SEQ_HASH_BYTES);
    return 0;
}

static int sig_from_pb(seq_sig *out, const ProtobufCBinaryData *in)
{
    if (in->len != SEQ_SIG_BYTES)
        return SEQ_EDECODE;
    memcpy(out->b, in->data, SEQ_SIG_BYTES);
    return 0;
}

static bool bytes_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* kind must be valid; a nullify's hash is empty or zero, others are 32 bytes. */
static int vote_hash_from_pb(seq_hash *out, uint32_t kind, const ProtobufCBinaryData *in)
{
    if (!kind_valid(kind))
        return SEQ_EDECODE;
    if (kind != SEQ_VOTE_NULLIFY)
        return hash_from_pb(out, in);
    memset(out, 0, sizeof *out);
    if (in->len == 0)
        return 0;
    if (in->len == SEQ_HASH_BYTES && bytes_all_zero(in->data, in->len))
        return 0;
    return SEQ_EDECODE;
}

static int vote_from_pb(seq_vote *v, const Seq__Vote *pb)
{
    if (!pb || pb->signer >= SEQ_VALIDATORS_MAX)
        return SEQ_EDECODE;
    int rc = vote_hash_from_pb(&v->hash, pb->kind, &pb->hash);
    if (rc)
        return rc;
    v->kind = (uint8_t)pb->kind;
    v->view = pb->view;
    v->signer = pb->signer;
    return sig_from_pb(&v->sig, &pb->sig);
}

static uint32_t popcount_bytes(const uint8_t *p, size_t n)
{
    uint32_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += (uint32_t)__builtin_popcount(p[i]);
    return count;
}

static int cert_from_pb(seq_cert *c, const Seq__Certificate *pb)
{
    if (!pb || pb->signers.len != SEQ_BITMAP_BYTES)
        return SEQ_EDECODE;
    uint32_t signers = popcount_bytes(pb->signers.data, SEQ_BITMAP_BYTES);
    if (signers == 0 || pb->n_sigs != signers)
        return SEQ_EDECODE;
    SEQ_ASSERT(signers <= SEQ_VALIDATORS_MAX);
    int rc = vote_hash_from_pb(&c->hash, pb->kind, &pb->hash);
    if (rc)
        return rc;
    c->kind = (uint8_t)pb->kind;
    c->view = pb->view;
    memcpy(c->bitmap, pb->signers.data, SEQ_BITMAP_BYTES);
    c->sig_count = signers;
    for (uint32_t i = 0; i < signers; i++)
        if ((rc = sig_from_pb(&c->sigs[i], &pb->sigs[i])))
            return rc;
    return 0;
}

static int header_from_pb(seq_header *h, const Seq__BlockHeader *pb)
{
    if (!pb)
        return SEQ_EDECODE;
    h->chain_id = pb->chain_id;
    h->height = pb->height;
    h->view = pb->view;
    h->parent_view = pb->parent_view;
    h->leader = pb->leader;
    h->timestamp_ms = pb->timestamp_ms;
    h->tx_count = pb->tx_count;
    int rc = hash_from_pb(&h->parent, &pb->parent);
    return rc ? rc : hash_from_pb(&h->payload_root, &pb->payload_root);
}

/* Borrows each payload of pb into txs[i] (valid while pb lives). Ids are left
 * to seq_block_new, which never trusts given ones. */
static int txs_from_pb(seq_tx *txs, Seq__Tx *const *pb, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!pb[i])
            return SEQ_EDECODE;
        /* Checked here too, before the length is narrowed to 32 bits. */
        if (pb[i]->payload.len > SEQ_TX_PAYLOAD_BYTES_MAX)
            return SEQ_ETOOBIG;
        txs[i] = (seq_tx){ .ns = pb[i]->ns, .len = (uint32_t)pb[i]->payload.len,
                           .data = pb[i]->payload.data };
    }
    return 0;
}

/* A received block, checked (sizes, order, duplicates, payload root) and
 * copied by seq_block_new. */
static int block_from_pb(seq_block **out, const Seq__Block *pb)
{
    if (!pb)
        return SEQ_EDECODE;
    seq_header h;
    int rc = header_from_pb(&h, pb->header);
    if (rc)
        return rc;
    if (pb->n_txs > SEQ_BLOCK_TXS_MAX)
        return SEQ_ETOOBIG;
    seq_tx *txs = NULL;
    if (pb->n_txs > 0 && !(txs = malloc(pb->n_txs * sizeof *txs)))
        return SEQ_ENOMEM;
    rc = txs_from_pb(txs, pb->txs, pb->n_txs);
    if (!rc)
        rc = seq_block_new(out, &h, txs, (uint32_t)pb->n_txs);
    free(txs);
    return rc;
}

static int proposal_from_pb(seq_msg *m, const Seq__Proposal *pb)
{
    if (!pb)
        return SEQ_EDECODE;
    seq_vote *v = &m->u.propose.vote;
    int rc = vote_from_pb(v, pb->vote);
    if (rc)
        return rc;
    if (v->kind != SEQ_VOTE_NOTARIZE)
        return SEQ_EDECODE;
    seq_block *b;
    if ((rc = block_from_pb(&b, pb->block)))
        return rc;
    if (v->view != b->h.view || !seq_hash_eq(&v->hash, &b->hash)) {
        seq_block_free(b);
        return SEQ_EMISMATCH;
    }
    m->u.propose.block = b;
    return 0;
}

/* A compact proposal: the ids are copied out (the rebuild is the replica's,
 * from its mempool); the vote must be the leader's notarize of this header. */
static int compact_from_pb(seq_msg *m, const Seq__CompactProposal *pb)
{
    if (!pb)
        return SEQ_EDECODE;
    seq_vote *v = &m->u.propose_ids.vote;
    seq_header *h = &m->u.propose_ids.header;
    int rc = vote_from_pb(v, pb->vote);
    if (!rc)
        rc = header_from_pb(h, pb->header);
    if (rc)
        return rc;
    if (v->kind != SEQ_VOTE_NOTARIZE)
        return SEQ_EDECODE;
    if (h->tx_count > SEQ_BLOCK_TXS_MAX)
        return SEQ_ETOOBIG;
    if (pb->tx_ids.len != (size_t)h->tx_count * SEQ_HASH_BYTES)
        return SEQ_EDECODE;
    seq_header_hash(h, &m->u.propose_ids.hash);
    if (v->view != h->view || !seq_hash_eq(&v->hash, &m->u.propose_ids.hash))
        return SEQ_EMISMATCH;
    if (!(m->u.propose_ids.ids = malloc(pb->tx_ids.len + 1)))
        return SEQ_ENOMEM;
    if (pb->tx_ids.len)
        memcpy(m->u.propose_ids.ids, pb->tx_ids.data, pb->tx_ids.len);
    return 0;
}

static int cert_req_from_pb(seq_msg *m, const Seq__CertRequest *pb)
{
    if (!pb || pb->count < 1 || pb->count > SEQ_CERT_REQ_VIEWS_MAX)
        return SEQ_EDECODE;
    if (pb->view_from > UINT64_MAX - (pb->count - 1))
        return SEQ_EDECODE; /* the range would wrap around */
    m->u.cert_req.view_from = pb->view_from;
    m->u.cert_req.count = pb->count;
    return 0;
}

/* Gossip batch: the seq_tx array and all payloads in one allocation,
 * m->txs_arena (array first, so it is aligned). */
static int tx_batch_from_pb(seq_msg *m, const Seq__TxBatch *pb)
{
    if (!pb)
        return SEQ_EDECODE;
    if (pb->n_txs > SEQ_GOSSIP_TXS_MAX)
        return SEQ_ETOOBIG;
    if (pb->n_txs == 0)
        return 0;
    size_t n = pb->n_txs;
    size_t payload_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!pb->txs[i])
            return SEQ_EDECODE;
        if (pb->txs[i]->payload.len > SEQ_TX_PAYLOAD_BYTES_MAX)
            return SEQ_ETOOBIG;
        payload_bytes += pb->txs[i]->payload.len;
    }
    uint8_t *arena = malloc(n * sizeof(seq_tx) + payload_bytes);
    if (!arena)
        return SEQ_ENOMEM;
    seq_tx *txs = (seq_tx *)(void *)arena;
    uint8_t *payloads = arena + n * sizeof(seq_tx);
    for (size_t i = 0; i < n; i++) {
        const ProtobufCBinaryData *p = &pb->txs[i]->payload;
        if (p->len > 0)
            memcpy(payloads, p->data, p->len);
        txs[i].ns = pb->txs[i]->ns;
        txs[i].len = (uint32_t)p->len;
        txs[i].data = payloads;
        seq_tx_compute_id(&txs[i]);
        payloads += p->len;
    }
    m->txs_arena = arena;
    m->u.txs.txs = txs;
    m->u.txs.count = (uint32_t)n;
    return 0;
}

static int sync_req_from_pb(seq_msg *m, const Seq__SyncRequest *pb)
{
    if (!pb || pb->from_height == 0 || pb->count > SEQ_SYNC_BLOCKS_MAX)
        return SEQ_EDECODE;
    m->u.sync_req.from_height = pb->from_height;
    m->u.sync_req.count = pb->count;
    return 0;
}

/* Blocks checked by seq_block_new, certificates for shape; consecutive
 * heights. On error nothing is left allocated in m. */
static int sync_resp_from_pb(seq_msg *m, const Seq__SyncResponse *pb)
{
    if (!pb)
        return SEQ_EDECODE;
    if (pb->n_blocks > SEQ_SYNC_BLOCKS_MAX)
        return SEQ_ETOOBIG;
    m->u.sync_resp.tip_height = pb->tip_height;
    if (pb->n_blocks == 0)
        return 0;
    m->u.sync_resp.blocks = calloc(pb->n_blocks, sizeof *m->u.sync_resp.blocks);
    m->u.sync_resp.certs = calloc(pb->n_blocks, sizeof *m->u.sync_resp.certs);
    int rc = SEQ_ENOMEM;
    if (!m->u.sync_resp.blocks || !m->u.sync_resp.certs)
        goto err;
    for (size_t i = 0; i < pb->n_blocks; i++) {
        const Seq__FinalizedBlock *f = pb->blocks[i];
        rc = f ? block_from_pb(&m->u.sync_resp.blocks[i], f->block) : SEQ_EDECODE;
        if (rc)
            goto err;
        m->u.sync_resp.count = (uint32_t)i + 1;
        if ((rc = cert_from_pb(&m->u.sync_resp.certs[i], f->cert)))
            goto err;
        if (i > 0 && m->u.sync_resp.blocks[i]->h.height != m->u.sync_resp.blocks[i - 1]->h.height + 1) {
            rc = SEQ_EDECODE;
            goto err;
        }
    }
    return 0;
err:
    m->kind = SEQ_MSG_SYNC_RESP;
    m->owned = true;
    seq_msg_release(m);
    return rc;
}

/* Fills m from pm; on error m owns nothing. */
static int msg_from_pb(seq_msg *m, const Seq__PeerMessage *pm)
{
    switch (pm->body_case) {
    case SEQ__PEER_MESSAGE__BODY_PROPOSAL:
        m->kind = SEQ_MSG_PROPOSE;
        return proposal_from_pb(m, pm->proposal);
    case SEQ__PEER_MESSAGE__BODY_COMPACT_PROPOSAL:
        m->kind = SEQ_MSG_PROPOSE_IDS;
        return compact_from_pb(m, pm->compact_proposal);
    case SEQ__PEER_MESSAGE__BODY_VOTE:
        m->kind = SEQ_MSG_VOTE;
        return vote_from_pb(&m->u.vote, pm->vote);
    case SEQ__PEER_MESSAGE__BODY_CERT:
        m->kind = SEQ_MSG_CERT;
        return cert_from_pb(&m->u.cert, pm->cert);
    case SEQ__PEER_MESSAGE__BODY_BLOCK_REQ:
        m->kind = SEQ_MSG_BLOCK_REQ;
        return pm->block_req ? hash_from_pb(&m->u.block_req.hash, &pm->block_req->hash)
                             : SEQ_EDECODE;
    case SEQ__PEER_MESSAGE__BODY_BLOCK:
        m->kind = SEQ_MSG_BLOCK;
        return pm->block ? block_from_pb(&m->u.block.block, pm->block->block) : SEQ_EDECODE;
    case SEQ__PEER_MESSAGE__BODY_CERT_REQ:
        m->kind = SEQ_MSG_CERT_REQ;
        return cert_req_from_pb(m, pm->cert_req);
    case SEQ__PEER_MESSAGE__BODY_TXS:
        m->kind = SEQ_MSG_TXS;
        return tx_batch_from_pb(m, pm->txs);
    case SEQ__PEER_MESSAGE__BODY_SYNC_REQ:
        m->kind = SEQ_MSG_SYNC_REQ;
        return sync_req_from_pb(m, pm->sync_req);
    case SEQ__PEER_MESSAGE__BODY_SYNC_RESP:
        m->kind = SEQ_MSG_SYNC_RESP;
        return sync_resp_from_pb(m, pm->sync_resp);
    default:
        /* Not set or unknown. */
        return SEQ_EDECODE;
    }
}

int seq_msg_decode(seq_msg *out, const uint8_t *buf, size_t len)
{
    SEQ_ASSERT(out);
    SEQ_ASSERT(buf || len == 0);
    memset(out, 0, sizeof *out);
    static const uint8_t empty[1];
    seq_pb_arena arena;
    seq_pb_arena_init(&arena, len);
    Seq__PeerMessage *pm = seq__peer_message__unpack(&arena.allocator, len, buf ? buf : empty);
    int rc = pm ? msg_from_pb(out, pm) : SEQ_EDECODE;
    seq_pb_arena_release(&arena); /* pm with it: msg_from_pb copied what out keeps */
    if (rc) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->owned = true;
    return 0;
}

/* ---- conversions shared with the client API ---------------------------------- */

void seq_pb_header_set(Seq__BlockHeader *pb, const seq_header *h)
{
    *pb = (Seq__BlockHeader)SEQ__BLOCK_HEADER__INIT;
    pb->chain_id = h->chain_id;
    pb->height = h->height;
    pb->view = h->view;
    pb->parent = bin(h->parent.b, SEQ_HASH_BYTES);
    pb->parent_view = h->parent_view;
    pb->leader = h->leader;
    pb->timestamp_ms = h->timestamp_ms;
    pb->payload_root = bin(h->payload_root.b, SEQ_HASH_BYTES);
    pb->tx_count = h->tx_count;
}

int seq_pb_header_get(seq_header *h, const Seq__BlockHeader *pb) { return header_from_pb(h, pb); }

int seq_pb_cert_set(Seq__Certificate *pb, ProtobufCBinaryData sigs[SEQ_VALIDATORS_MAX], const seq_cert *c)
{
    if (c->sig_count > SEQ_VALIDATORS_MAX)
        return SEQ_EINVAL;
    *pb = (Seq__Certificate)SEQ__CERTIFICATE__INIT;
    pb->kind = c->kind;
    pb->view = c->view;
    pb->signers = bin(c->bitmap, SEQ_BITMAP_BYTES);
    for (uint32_t i = 0; i < c->sig_count; i++)
        sigs[i] = bin(c->sigs[i].b, SEQ_SIG_BYTES);
    pb->n_sigs = c->sig_count;
    pb->sigs = c->sig_count ? sigs : NULL;
    return vote_hash_to_pb(&pb->hash, c->kind, &c->hash);
}

int seq_pb_cert_get(seq_cert *c, const Seq__Certificate *pb) { return cert_from_pb(c, pb); }

int seq_pb_block_get(seq_block **out, const Seq__Block *pb) { return block_from_pb(out, pb); }
