/* Conversions between lib/types.h structs and their protobuf messages, shared
 * by the peer wire (lib/wire.c, which implements them), the client API server
 * (lib/api.c) and the client library (lib/client.c). Setters point the
 * protobuf struct into the given struct (no copies); getters check shape
 * exactly as seq_msg_decode does. */
#ifndef SEQ_PBCONV_H
#define SEQ_PBCONV_H

#include "seq.pb-c.h"
#include "types.h"

void seq_pb_header_set(Seq__BlockHeader *pb, const seq_header *h);
/* SEQ_EDECODE for a NULL message or a hash that is not 32 bytes. */
int seq_pb_header_get(seq_header *h, const Seq__BlockHeader *pb);
/* sigs: scratch the certificate points into. SEQ_EINVAL for a bad kind. */
int seq_pb_cert_set(Seq__Certificate *pb, ProtobufCBinaryData sigs[SEQ_VALIDATORS_MAX], const seq_cert *c);
int seq_pb_cert_get(seq_cert *c, const Seq__Certificate *pb);
/* A block checked and copied by seq_block_new (payload root, order, sizes). */
int seq_pb_block_get(seq_block **out, const Seq__Block *pb);

/* An allocator for unpacking one frame of frame_len bytes that refuses to
 * allocate more than about twice the frame plus one block's structs, so tiny
 * repeated elements cannot make us allocate many bytes per byte received. */
typedef struct {
    ProtobufCAllocator allocator;
    size_t left;
} seq_pb_budget;

void seq_pb_budget_init(seq_pb_budget *b, size_t frame_len);

/* The same budget for a message unpacked, used and freed within one call
 * (a peer message, a request), as bump allocations in a few large chunks
 * released at once: protobuf-c allocates each transaction's struct and
 * payload copy separately, and the malloc/free of those was ~7% of a
 * saturated node's CPU. seq_pb_arena_release frees everything; the
 * allocator's free does nothing. */
typedef struct seq_pb_chunk seq_pb_chunk;
typedef struct {
    ProtobufCAllocator allocator;
    size_t left;        /* budget */
    size_t next_bytes;  /* size of the next chunk */
    seq_pb_chunk *head; /* newest chunk, the one allocated from */
} seq_pb_arena;

void seq_pb_arena_init(seq_pb_arena *a, size_t frame_len);
void seq_pb_arena_release(seq_pb_arena *a);

#endif
