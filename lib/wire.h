/* The wire format: seq_msg <-> protobuf (proto/seq.proto), and framing.
 * A frame is a 4-byte big-endian length, then that many bytes of one protobuf
 * message. A length over the configured limit is an error that closes the
 * connection. */
#ifndef SEQ_WIRE_H
#define SEQ_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"

#define SEQ_FRAME_HEADER_BYTES 4
#define SEQ_FRAME_BYTES_MAX_DEFAULT (16u << 20)

/* Encodes m as one PeerMessage. *out is malloc'd, owned by the caller (free);
 * *len its size. SEQ_ENOMEM, SEQ_EINVAL for a message of unknown kind, a vote
 * or certificate kind outside 1..3, a nullify with a non-zero hash (it is
 * sent with an empty hash), a NULL block or sig_count > SEQ_VALIDATORS_MAX.
 * The frame limit is the caller's to check against *len. */
int seq_msg_encode(const seq_msg *m, uint8_t **out, size_t *len) SEQ_MUST_CHECK;

/* Decodes and checks the shape of one PeerMessage: sizes of hashes and
 * signatures, counts within the format's limits, blocks via seq_block_new
 * (payload root, order). On success out->owned is set and the caller calls
 * seq_msg_release. SEQ_EDECODE (or the block's error) for anything malformed;
 * nothing to release then. The rules, exactly:
 * - SEQ_EDECODE: not protobuf, no/unknown body (range sync included, until it
 *   becomes a seq_msg kind), a hash not 32 bytes, a signature not 64, a vote
 *   or certificate kind outside 1..3, a nullify hash neither empty nor zero,
 *   a signer >= SEQ_VALIDATORS_MAX, a bitmap not exactly SEQ_BITMAP_BYTES, a
 *   certificate with no signer or with sig count != popcount(bitmap), a
 *   proposal (full or compact) whose vote is not a notarize, a compact
 *   proposal whose tx_ids are not 32 bytes per header.tx_count, a cert
 *   request count outside
 *   1..SEQ_CERT_REQ_VIEWS_MAX or whose range wraps, a message whose unpacking
 *   would allocate more than about twice its size plus one block's structs;
 * - SEQ_ETOOBIG: more than SEQ_BLOCK_TXS_MAX / SEQ_GOSSIP_TXS_MAX
 *   transactions (or tx ids), a payload over SEQ_TX_PAYLOAD_BYTES_MAX;
 * - SEQ_EMISMATCH: a proposal's vote not for its block's view and hash (a
 *   compact one's: for its header's);
 * - seq_block_new's errors for a block (root, count, order, duplicates).
 * Decoded TXS messages carry ids computed here; an empty TxBatch is valid.
 * A CompactProposal decodes to SEQ_MSG_PROPOSE_IDS (its ids unchecked: the
 * rebuilt block's payload root checks them); a SEQ_MSG_PROPOSE with ids_only
 * set, or a SEQ_MSG_PROPOSE_IDS, encodes to one. */
int seq_msg_decode(seq_msg *out, const uint8_t *buf, size_t len) SEQ_MUST_CHECK;

/* Writes the 4-byte header for a payload of len bytes. */
void seq_frame_header(uint8_t out[SEQ_FRAME_HEADER_BYTES], uint32_t len);

/* Incremental frame splitter for a byte stream. Feed bytes as they arrive;
 * take whole frames out. Bounded by frame_bytes_max plus the header: every
 * header is checked as soon as its 4 bytes arrive, so the buffer holds at most
 * the frames not yet taken out, one partial frame (<= frame_bytes_max + header)
 * and the bytes of the current feed. A caller that drains seq_framer_next after
 * every feed therefore never buffers more than one frame plus one feed.
 * Zero-length frames are allowed: next yields an empty payload (which
 * seq_msg_decode then rejects as SEQ_EDECODE). */
typedef struct {
    uint32_t frame_bytes_max;
    uint8_t *buf;    /* malloc'd, grows up to frame_bytes_max + header */
    size_t len;
    size_t cap;
    size_t off;      /* start of the first frame not yet taken out */
    size_t scan;     /* next header not yet checked against the limit */
    int err;         /* sticky: once a feed failed, every later feed fails */
} seq_framer;

/* A buffer larger than this is freed when the framer becomes empty, so a
 * connection that once carried a huge frame does not keep it allocated. */
#define SEQ_FRAMER_IDLE_BYTES_MAX (64u << 10)

void seq_framer_init(seq_framer *f, uint32_t frame_bytes_max);
void seq_framer_free(seq_framer *f);
/* Appends bytes (copied). SEQ_ETOOBIG as soon as a header announces a frame
 * over the limit (the connection must be closed), SEQ_ENOMEM. After an error
 * the buffered bytes are dropped and every later feed returns the same error. */
int seq_framer_feed(seq_framer *f, const uint8_t *data, size_t len) SEQ_MUST_CHECK;
/* If a whole frame is buffered, sets *payload (borrowed until the next feed or
 * next call) and *len and returns 1; returns 0 when more bytes are needed. */
int seq_framer_next(seq_framer *f, const uint8_t **payload, size_t *len);

#endif
