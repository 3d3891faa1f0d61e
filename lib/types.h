/* The data the network agrees on: transactions, blocks, votes, certificates,
 * the validator set, and their canonical encodings (docs/design.md §Encodings).
 * Hashes and signatures are computed over these encodings, never over protobuf. */
#ifndef SEQ_TYPES_H
#define SEQ_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

typedef uint64_t seq_ns;

/* Hard limits of the format; configured limits are at or below these. */
#define SEQ_VALIDATORS_MAX 128
#define SEQ_TX_PAYLOAD_BYTES_MAX (1u << 20)
#define SEQ_BLOCK_TXS_MAX 100000u
#define SEQ_BLOCK_BYTES_MAX (64u << 20)
#define SEQ_HEADER_BYTES 112 /* canonical header encoding, fixed size */
#define SEQ_TX_HEADER_BYTES 12 /* ns u64 + len u32 before the payload */

/* ---- transactions ---------------------------------------------------------
 * Canonical encoding: ns (u64 BE) || len (u32 BE) || payload.
 * id = BLAKE2b-256(canonical encoding). */
typedef struct {
    seq_ns ns;
    uint32_t len;
    const uint8_t *data; /* borrowed: owned by whoever holds the seq_tx */
    seq_hash id;
} seq_tx;

/* Fills tx->id from ns, len, data. */
void seq_tx_compute_id(seq_tx *tx);

/* ---- blocks ----------------------------------------------------------------
 * Canonical header encoding (SEQ_HEADER_BYTES, all big-endian):
 * chain_id u64 || height u64 || view u64 || parent 32 || parent_view u64 ||
 * leader u32 || timestamp_ms u64 || payload_root 32 || tx_count u32.
 * block hash = BLAKE2b-256(canonical header encoding). */
typedef struct {
    uint64_t chain_id;
    uint64_t height;
    uint64_t view;
    seq_hash parent;
    uint64_t parent_view;
    uint32_t leader;
    uint64_t timestamp_ms;
    seq_hash payload_root;
    uint32_t tx_count;
} seq_header;

void seq_header_encode(const seq_header *h, uint8_t out[SEQ_HEADER_BYTES]);
/* len must be exactly SEQ_HEADER_BYTES, else SEQ_EDECODE. */
int seq_header_decode(seq_header *h, const uint8_t *in, size_t len) SEQ_MUST_CHECK;
void seq_header_hash(const seq_header *h, seq_hash *out);

/* Payload root: a namespaced Merkle tree over the block's transactions in block
 * order (sorted by namespace, arrival order inside a namespace).
 *   leaf  = (ns, ns, BLAKE2b-256(0x00 || ns u64 || tx id))
 *   inner = (min(l.min,r.min), max(l.max,r.max),
 *            BLAKE2b-256(0x01 || l.min || l.max || l.digest || r.min || r.max || r.digest))
 * split as RFC 6962 (left subtree holds the largest power of two < n);
 * payload_root = BLAKE2b-256(0x02 || root.min u64 || root.max u64 || root.digest);
 * an empty payload's root = BLAKE2b-256(0x03). Leaves carry the namespace so a
 * later proof can show a rollup all of its transactions and nothing missing.
 * Uses txs[i].id, which must already be computed. Scratch is heap-allocated:
 * SEQ_ENOMEM, SEQ_ETOOBIG for n > SEQ_BLOCK_TXS_MAX. */
int seq_payload_root(const seq_tx *txs, uint32_t n, seq_hash *out) SEQ_MUST_CHECK;

struct seq_nmt_tree;

/* A block: header, its hash, and the transactions, whose payloads live in one
 * arena owned by the block. It also keeps the namespaced Merkle tree hashed
 * to compute or check its payload root (lib/nmt_tree.h): namespace proofs
 * for subscribers then cost no hashing (the tree is about 2 nodes of 48
 * bytes per transaction). */
typedef struct {
    seq_header h;
    seq_hash hash;
    uint32_t tx_count;
    seq_tx *txs;
    uint8_t *arena;
    size_t payload_bytes; /* sum of tx payload lengths */
    struct seq_nmt_tree *tree;
} seq_block;

/* Builds a new block from the fields of tmpl except payload_root and tx_count,
 * which are computed; txs are copied and stably sorted by namespace, their
 * ids computed (the caller's id fields are ignored). SEQ_ETOOBIG /
 * SEQ_EDUPLICATE as seq_block_new, so a built block always passes it.
 * *out is owned by the caller (seq_block_free). */
int seq_block_build(seq_block **out, const seq_header *tmpl, const seq_tx *txs, uint32_t n) SEQ_MUST_CHECK;
/* seq_block_build for transactions whose id fields the caller computed
 * (seq_tx_compute_id) from these very payloads: the ids are copied, not
 * hashed again. For the leader, whose mempool hashed each transaction when it
 * came: the ids were 40% of building a 4,000-transaction block (1.6 of 4 ms),
 * on the path of every view. A wrong id makes a block its peers refuse
 * (seq_block_new hashes the payloads), never a wrong block accepted. */
int seq_block_build_ided(seq_block **out, const seq_header *tmpl, const seq_tx *txs, uint32_t n) SEQ_MUST_CHECK;
/* Checks and copies a received block: tx_count and payload_root must match the
 * transactions, which must be sorted by namespace and free of duplicate ids,
 * each payload within SEQ_TX_PAYLOAD_BYTES_MAX. SEQ_EDECODE / SEQ_EMISMATCH /
 * SEQ_ETOOBIG / SEQ_EDUPLICATE / SEQ_EORDER on bad input: SEQ_EMISMATCH for a
 * wrong tx_count or payload_root, SEQ_ETOOBIG for too many txs, a payload over
 * the limit or an encoding over SEQ_BLOCK_BYTES_MAX. Tx ids are recomputed
 * from the contents (the caller's id fields are ignored).
 * *out is owned by the caller (seq_block_free). */
int seq_block_new(seq_block **out, const seq_header *h, const seq_tx *txs, uint32_t n) SEQ_MUST_CHECK;
/* seq_block_new for transactions whose ids the caller computed from these
 * very payloads (a validator's own mempool): the ids are copied, not hashed
 * again; everything else is checked as seq_block_new checks it. For blocks
 * rebuilt from a compact proposal, whose ids name mempool entries. */
int seq_block_new_ided(seq_block **out, const seq_header *h, const seq_tx *txs, uint32_t n) SEQ_MUST_CHECK;
/* Deep copy, or NULL when out of memory. */
seq_block *seq_block_clone(const seq_block *b);
/* Hashes and keeps b's tree when it has none (every built, checked or
 * cloned block has one already). SEQ_ENOMEM. */
int seq_block_tree_keep(seq_block *b) SEQ_MUST_CHECK;
/* Heap bytes b holds (payloads, tx array, kept tree), for memory bounds. */
size_t seq_block_mem_bytes(const seq_block *b);
void seq_block_free(seq_block *b);

/* Canonical block encoding: header (112) || each tx canonical encoding.
 * encoded_size gives the exact size; encode writes it into out. */
size_t seq_block_encoded_size(const seq_block *b);
void seq_block_encode(const seq_block *b, uint8_t *out);
/* Decodes and checks as seq_block_new (payloads are copied: in may be freed
 * afterwards). SEQ_EDECODE for truncated or trailing bytes, SEQ_ETOOBIG over
 * SEQ_BLOCK_BYTES_MAX. *out owned by the caller. */
int seq_block_decode(seq_block **out, const uint8_t *in, size_t len) SEQ_MUST_CHECK;

/* ---- validators ------------------------------------------------------------ */
typedef struct {
    uint32_t n; /* validators */
    uint32_t f; /* (n-1)/3 faults tolerated */
    uint32_t q; /* quorum n-f */
    seq_pubkey keys[SEQ_VALIDATORS_MAX];
} seq_validators;

/* SEQ_EINVAL for n == 0 or n > SEQ_VALIDATORS_MAX, SEQ_EDUPLICATE for a
 * repeated key. */
int seq_validators_init(seq_validators *vs, const seq_pubkey *keys, uint32_t n) SEQ_MUST_CHECK;
/* Index of pk, or -1. */
int seq_validators_find(const seq_validators *vs, const seq_pubkey *pk);
/* Round-robin leader of a view. */
static inline uint32_t seq_leader_of(const seq_validators *vs, uint64_t view)
{
    return (uint32_t)(view % vs->n);
}

/* ---- votes -----------------------------------------------------------------
 * Signing preimage: "seq/" kind "/v1" || chain_id u64 || view u64 [|| hash],
 * kind one of "notarize", "nullify", "finalize"; nullify has no hash. */
typedef enum {
    SEQ_VOTE_NOTARIZE = 1,
    SEQ_VOTE_NULLIFY = 2,
    SEQ_VOTE_FINALIZE = 3,
} seq_vote_kind;

#define SEQ_PREIMAGE_BYTES_MAX 64

typedef struct {
    uint8_t kind;   /* seq_vote_kind */
    uint64_t view;
    seq_hash hash;  /* all zero for nullify */
    uint32_t signer;
    seq_sig sig;
} seq_vote;

const char *seq_vote_kind_name(int kind);
/* Writes the preimage; returns its length (<= SEQ_PREIMAGE_BYTES_MAX). */
size_t seq_vote_preimage(uint8_t out[SEQ_PREIMAGE_BYTES_MAX], int kind, uint64_t chain_id,
                         uint64_t view, const seq_hash *hash);
/* Fills v->sig (kind, view, hash, signer already set). */
void seq_vote_sign(seq_vote *v, const seq_keypair *kp, uint64_t chain_id);
/* SEQ_EINVAL bad kind, SEQ_EMISMATCH for a nullify with a non-zero hash (the
 * hash is not signed), SEQ_EUNKNOWN_SIGNER, SEQ_EBADSIG. */
int seq_vote_verify(const seq_vote *v, const seq_validators *vs, uint64_t chain_id) SEQ_MUST_CHECK;

/* ---- certificates ----------------------------------------------------------
 * q or more votes of one kind on one (view, hash): a signer bitmap (bit i of
 * byte i/8, LSB first, is validator i) and the signatures in ascending signer
 * order. */
#define SEQ_BITMAP_BYTES (SEQ_VALIDATORS_MAX / 8)

typedef struct {
    uint8_t kind; /* seq_vote_kind */
    uint64_t view;
    seq_hash hash; /* zero for nullification */
    uint8_t bitmap[SEQ_BITMAP_BYTES];
    uint32_t sig_count;
    seq_sig sigs[SEQ_VALIDATORS_MAX];
} seq_cert;

/* Builds a certificate from votes already verified, all of the same kind, view
 * and hash. SEQ_EDUP_SIGNER on a repeated signer, SEQ_EMISMATCH on mixed
 * votes, SEQ_EQUORUM below vs->q, SEQ_EUNKNOWN_SIGNER for signer >= vs->n,
 * SEQ_EINVAL for a bad kind. On error *out's contents are unspecified. */
int seq_cert_build(seq_cert *out, const seq_validators *vs, const seq_vote *votes, uint32_t n) SEQ_MUST_CHECK;
/* Verifies everything: kind valid (else SEQ_EINVAL; a nullification with a
 * non-zero hash is SEQ_EMISMATCH), sig_count == popcount(bitmap) (else
 * SEQ_EDECODE), no bit >= vs->n (SEQ_EUNKNOWN_SIGNER),
 * popcount >= q (SEQ_EQUORUM), each signature over (kind, chain_id, view, hash)
 * (SEQ_EBADSIG — which is what a wrong chain id, view, hash or kind yields).
 * Checks in that order; allocates nothing, verifies each signature once. */
int seq_cert_verify(const seq_cert *c, const seq_validators *vs, uint64_t chain_id) SEQ_MUST_CHECK;
/* seq_cert_verify, except that a signature for which known(ctx, signer,
 * sig) is true is not verified again: the caller has verified that very
 * signature on that very vote (same kind, view and hash) before. */
typedef bool (*seq_cert_sig_known_fn)(void *ctx, uint32_t signer, const seq_sig *sig);
int seq_cert_verify_skipping(const seq_cert *c, const seq_validators *vs, uint64_t chain_id,
                             seq_cert_sig_known_fn known, void *ctx) SEQ_MUST_CHECK;
uint32_t seq_cert_signers(const seq_cert *c);
static inline bool seq_bitmap_get(const uint8_t *bm, uint32_t i) { return (bm[i / 8] >> (i % 8)) & 1u; }
static inline void seq_bitmap_set(uint8_t *bm, uint32_t i) { bm[i / 8] |= (uint8_t)(1u << (i % 8)); }

/* Canonical certificate encoding (for the store): kind u8 || view u64 ||
 * hash 32 || bitmap (SEQ_BITMAP_BYTES) || sig_count u32 || sigs. */
size_t seq_cert_encoded_size(const seq_cert *c);
void seq_cert_encode(const seq_cert *c, uint8_t *out);
/* Exact length required. SEQ_EDECODE for a truncated or over-long input, a bad
 * kind or sig_count > SEQ_VALIDATORS_MAX; signatures are checked only by
 * seq_cert_verify. c is untouched on error. */
int seq_cert_decode(seq_cert *c, const uint8_t *in, size_t len) SEQ_MUST_CHECK;

#endif
