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

#endif
