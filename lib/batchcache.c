/* The subscription batch cache of lib/batchcache.h: a few whole blocks with
 * their trees, and a direct-mapped table of encoded batches. */
#include "batchcache.h"

#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "errors.h"
#include "nmt_tree.h"
#include "pbconv.h"
#include "seq.pb-c.h"

typedef struct {
    uint64_t height; /* 0: empty */
    seq_block *block;
    seq_cert cert;
} block_slot;

typedef struct {
    uint64_t height; /* 0: empty */
    seq_ns ns;
    uint8_t *bytes;
    size_t len;
    uint32_t txs;
} batch_slot;

struct seq_batch_cache {
    seq_store *store;
    size_t bytes_max;
    size_t bytes;
    size_t block_bytes_max;
    size_t block_bytes;
    block_slot blocks[SEQ_BATCH_CACHE_BLOCKS]; /* height h in blocks[h % SEQ_BATCH_CACHE_BLOCKS] */
    block_slot old;   /* a block older than its ring slot's (a replay from far back) */
    batch_slot slots[SEQ_BATCH_CACHE_SLOTS];
    uint8_t *uncached; /* the last batch too large to keep */
};

int seq_batch_cache_new(seq_batch_cache **out, seq_store *s, size_t bytes_max, size_t block_bytes_max)
{
    SEQ_ASSERT(out && s);
    seq_batch_cache *c = calloc(1, sizeof *c);
    if (!c)
        return SEQ_ENOMEM;
    c->store = s;
    c->bytes_max = bytes_max;
    c->block_bytes_max = block_bytes_max;
    *out = c;
    return 0;
}

static void block_slot_clear(seq_batch_cache *c, block_slot *b)
{
    if (b->block)
        c->block_bytes -= seq_block_mem_bytes(b->block);
    seq_block_free(b->block);
    memset(b, 0, sizeof *b);
}

static void batch_slot_clear(seq_batch_cache *c, batch_slot *s)
{
    c->bytes -= s->len;
    free(s->bytes);
    memset(s, 0, sizeof *s);
}

void seq_batch_cache_free(seq_batch_cache *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < SEQ_BATCH_CACHE_BLOCKS; i++)
        block_slot_clear(c, &c->blocks[i]);
    block_slot_clear(c, &c->old);
    for (uint32_t i = 0; i < SEQ_BATCH_CACHE_SLOTS; i++)
        batch_slot_clear(c, &c->slots[i]);
    free(c->uncached);
    free(c);
}

size_t seq_batch_cache_block_bytes(const seq_batch_cache *c) { return c->block_bytes; }

/* ---- blocks --------------------------------------------------------------- */

/* Blocks of the last SEQ_BATCH_CACHE_BLOCKS heights, one slot per height:
 * subscribers that fall behind under load (60-120 heights at an 80k tx/s
 * offer) are then served from blocks delivered with their ids and tree, not
 * from the store, where each block is decoded and hashed again (its ids and
 * its tree: ~2 ms for a 2,700-tx block, per block and node). */
static block_slot *block_find(seq_batch_cache *c, uint64_t height)
{
    block_slot *slot = &c->blocks[height % SEQ_BATCH_CACHE_BLOCKS];
    if (slot->height == height && slot->block)
        return slot;
    return c->old.height == height && c->old.block ? &c->old : NULL;
}

/* Over the byte bound: drops the lowest heights, never `keep`. */
static void blocks_trim(seq_batch_cache *c, const block_slot *keep)
{
    for (uint32_t i = 0; c->block_bytes > c->block_bytes_max && i < SEQ_BATCH_CACHE_BLOCKS; i++) {
        block_slot *lowest = NULL;
        for (uint32_t k = 0; k < SEQ_BATCH_CACHE_BLOCKS; k++) {
            block_slot *b = &c->blocks[k];
            if (b->block && b != keep && (!lowest || b->height < lowest->height))
                lowest = b;
        }
        if (!lowest)
            return;
        block_slot_clear(c, lowest);
    }
}

/* Takes ownership of b. A block older than the one in its ring slot goes to
 * the side slot: a replay from far back must not push out the recent blocks
 * the subscribers near the tip need. */
static void block_keep(seq_batch_cache *c, seq_block *b, const seq_cert *cert, block_slot **out)
{
    block_slot *slot = &c->blocks[b->h.height % SEQ_BATCH_CACHE_BLOCKS];
    if (slot->block && slot->height > b->h.height)
        slot = &c->old;
    block_slot_clear(c, slot);
    slot->height = b->h.height;
    slot->block = b;
    slot->cert = *cert;
    c->block_bytes += seq_block_mem_bytes(b);
    blocks_trim(c, slot);
    *out = slot;
}

void seq_batch_cache_adopt(seq_batch_cache *c, seq_block *b, const seq_cert *cert)
{
    if (block_find(c, b->h.height)) {
        seq_block_free(b);
        return;
    }
    block_slot *slot;
    block_keep(c, b, cert, &slot);
}

static int block_get(seq_batch_cache *c, uint64_t height, block_slot **out)
{
    if ((*out = block_find(c, height)) != NULL)
        return 0;
    seq_block *b = NULL;
    seq_cert cert;
    int rc = seq_store_block_get(c->store, height, &b);
    if (rc == 0)
        rc = seq_store_cert_get(c->store, height, &cert);
    if (rc) {
        seq_block_free(b);
        return rc;
    }
    block_keep(c, b, &cert, out);
    return 0;
}

/* ---- encoding ------------------------------------------------------------- */

/* One batch's NamespaceBatch encoding; *out malloc'd, owned by the caller. */
static int encode_pb(const seq_batch *b, uint8_t **out, size_t *len)
{
    Seq__Tx *txs = calloc(b->tx_count + 1, sizeof *txs);
    Seq__Tx **tx_ptrs = calloc(b->tx_count + 1, sizeof *tx_ptrs);
    Seq__BlockHeader *path = calloc(b->path_len + 1, sizeof *path);
    Seq__BlockHeader **path_ptrs = calloc(b->path_len + 1, sizeof *path_ptrs);
    Seq__NmtNode nodes[SEQ_NSPROOF_NODES_MAX];
    Seq__NmtNode *node_ptrs[SEQ_NSPROOF_NODES_MAX];
    ProtobufCBinaryData sigs[SEQ_VALIDATORS_MAX];
    int rc = SEQ_ENOMEM;
    if (!txs || !tx_ptrs || !path || !path_ptrs)
        goto out;
    for (uint32_t i = 0; i < b->tx_count; i++) {
        txs[i] = (Seq__Tx)SEQ__TX__INIT;
        txs[i].ns = b->txs[i].ns;
        txs[i].payload = (ProtobufCBinaryData){.len = b->txs[i].len, .data = (uint8_t *)b->txs[i].data};
        tx_ptrs[i] = &txs[i];
    }
    for (uint32_t i = 0; i < b->path_len; i++) {
        seq_pb_header_set(&path[i], &b->cert_path[i]);
        path_ptrs[i] = &path[i];
    }
    SEQ_ASSERT(b->proof.node_count <= SEQ_NSPROOF_NODES_MAX);
    for (uint32_t i = 0; i < b->proof.node_count; i++) {
        const seq_nmt_node *n = &b->proof.nodes[i];
        nodes[i] = (Seq__NmtNode)SEQ__NMT_NODE__INIT;
        nodes[i].min = n->min;
        nodes[i].max = n->max;
        nodes[i].digest = (ProtobufCBinaryData){.len = SEQ_HASH_BYTES, .data = (uint8_t *)n->digest.b};
        node_ptrs[i] = &nodes[i];
    }
    Seq__NamespaceProof proof = SEQ__NAMESPACE_PROOF__INIT;
    proof.start = b->proof.start;
    proof.n_nodes = b->proof.node_count;
    proof.nodes = node_ptrs;
    Seq__BlockHeader header;
    Seq__Certificate cert;
    seq_pb_header_set(&header, &b->header);
    if ((rc = seq_pb_cert_set(&cert, sigs, &b->cert)) != 0)
        goto out;
    Seq__NamespaceBatch pb = SEQ__NAMESPACE_BATCH__INIT;
    pb.header = &header;
    pb.ns = b->ns;
    pb.n_txs = b->tx_count;
    pb.txs = tx_ptrs;
    pb.cert = &cert;
    pb.prev_batch_hash = (ProtobufCBinaryData){.len = SEQ_HASH_BYTES, .data = (uint8_t *)b->prev_batch_hash.b};
    pb.proof = &proof;
    pb.n_cert_path = b->path_len;
    pb.cert_path = path_ptrs;
    *len = seq__namespace_batch__get_packed_size(&pb);
    rc = SEQ_ENOMEM;
    if ((*out = malloc(*len + 1)) != NULL) {
        seq__namespace_batch__pack(&pb, *out);
        rc = 0;
    }
out:
    free(txs);
    free(tx_ptrs);
    free(path);
    free(path_ptrs);
    return rc;
}

/* ---- batches -------------------------------------------------------------- */

static uint32_t slot_of(uint64_t height, seq_ns ns)
{
    uint64_t z = height * 0x9e3779b97f4a7c15ull ^ (ns + 0xbf58476d1ce4e5b9ull);
    z = (z ^ (z >> 31)) * 0x94d049bb133111ebull;
    return (uint32_t)(z >> 40) % SEQ_BATCH_CACHE_SLOTS;
}

static int build_encoded(seq_batch_cache *c, uint64_t height, seq_ns ns, uint8_t **bytes, size_t *len,
                         uint32_t *txs)
{
    block_slot *blk;
    int rc = block_get(c, height, &blk);
    if (rc == 0)
        rc = seq_block_tree_keep(blk->block); /* hashed when built or checked (lib/types.h) */
    if (rc)
        return rc;
    const seq_block *b = blk->block;
    uint32_t first = 0, hi = b->tx_count; /* sorted by namespace: first index >= ns */
    while (first < hi) {
        uint32_t mid = first + (hi - first) / 2;
        if (b->txs[mid].ns < ns)
            first = mid + 1;
        else
            hi = mid;
    }
    uint32_t end = first;
    while (end < b->tx_count && b->txs[end].ns == ns)
        end++;
    seq_nsproof proof;
    seq_nmt_tree_proof(b->tree, first, end - first, &proof);
    *txs = end - first;
    seq_batch *batch = NULL;
    if ((rc = seq_batch_make_proved(c->store, b, &blk->cert, ns, &proof, &batch)) != 0)
        return rc;
    rc = encode_pb(batch, bytes, len);
    seq_batch_free(batch);
    return rc;
}

int seq_batch_cache_get(seq_batch_cache *c, uint64_t height, seq_ns ns, const uint8_t **bytes, size_t *len,
                        uint32_t *txs)
{
    batch_slot *s = &c->slots[slot_of(height, ns)];
    if (s->height == height && s->ns == ns && s->bytes) {
        *bytes = s->bytes;
        *len = s->len;
        *txs = s->txs;
        return 0;
    }
    uint8_t *enc;
    size_t enc_len;
    int rc = build_encoded(c, height, ns, &enc, &enc_len, txs);
    if (rc)
        return rc;
    if (enc_len > c->bytes_max / 4) {
        free(c->uncached);
        c->uncached = enc;
        *bytes = enc;
        *len = enc_len;
        return 0;
    }
    batch_slot_clear(c, s);
    /* over budget: evict slots in table order until the new one fits */
    for (uint32_t i = 0; c->bytes + enc_len > c->bytes_max && i < SEQ_BATCH_CACHE_SLOTS; i++)
        batch_slot_clear(c, &c->slots[(slot_of(height, ns) + 1 + i) % SEQ_BATCH_CACHE_SLOTS]);
    *s = (batch_slot){.height = height, .ns = ns, .bytes = enc, .len = enc_len, .txs = *txs};
    c->bytes += enc_len;
    *bytes = enc;
    *len = enc_len;
    return 0;
}
