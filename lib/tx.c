/* Transaction identity: id = BLAKE2b-256(ns u64 BE || len u32 BE || payload). */
#include "types.h"

#include "codec.h"

void seq_tx_compute_id(seq_tx *tx)
{
    SEQ_ASSERT(tx);
    SEQ_ASSERT(tx->data || tx->len == 0);
    uint8_t head[SEQ_TX_HEADER_BYTES];
    seq_put_u64be(head, tx->ns);
    seq_put_u32be(head + 8, tx->len);

    seq_hasher h;
    seq_hasher_init(&h);
    seq_hasher_update(&h, head, sizeof head);
    if (tx->len > 0)
        seq_hasher_update(&h, tx->data, tx->len);
    seq_hasher_final(&h, &tx->id);
}
