/* Lifetime of decoded peer messages: what seq_msg_decode allocated and how it
 * is given back. */
#include "msg.h"

#include <stdlib.h>

void seq_msg_release(seq_msg *m)
{
    if (!m || !m->owned)
        return;
    switch (m->kind) {
    case SEQ_MSG_PROPOSE:
        if (m->u.propose.block)
            seq_block_free(m->u.propose.block);
        m->u.propose.block = NULL;
        break;
    case SEQ_MSG_PROPOSE_IDS:
        free(m->u.propose_ids.ids);
        m->u.propose_ids.ids = NULL;
        break;
    case SEQ_MSG_BLOCK:
        if (m->u.block.block)
            seq_block_free(m->u.block.block);
        m->u.block.block = NULL;
        break;
    case SEQ_MSG_SYNC_RESP:
        for (uint32_t i = 0; i < m->u.sync_resp.count; i++)
            seq_block_free(m->u.sync_resp.blocks[i]);
        free(m->u.sync_resp.blocks);
        free(m->u.sync_resp.certs);
        m->u.sync_resp.blocks = NULL;
        m->u.sync_resp.certs = NULL;
        m->u.sync_resp.count = 0;
        break;
    case SEQ_MSG_TXS:
        /* The seq_tx array and the payloads both live in txs_arena. */
        m->u.txs.txs = NULL;
        m->u.txs.count = 0;
        break;
    default:
        break;
    }
    free(m->txs_arena);
    m->txs_arena = NULL;
    m->owned = false;
}
