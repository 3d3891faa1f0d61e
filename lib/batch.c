/* seq_batch memory: one arena per batch holding its transaction array, the
 * payloads and the certificate path, so a batch is freed in one call. */
#include "batch.h"

#include <stdlib.h>

#include "errors.h"

#define ALIGN_UP(x) (((x) + 15u) & ~(size_t)15u)

int seq_batch_alloc(seq_batch **out, uint32_t tx_count, size_t payload_bytes, uint32_t path_len,
                    uint8_t **payloads)
{
    SEQ_ASSERT(out && payloads);
    if (tx_count > SEQ_BLOCK_TXS_MAX || payload_bytes > SEQ_BLOCK_BYTES_MAX || path_len > SEQ_CERT_PATH_MAX)
        return SEQ_ETOOBIG;
    size_t txs_bytes = ALIGN_UP((size_t)tx_count * sizeof(seq_tx));
    size_t path_bytes = ALIGN_UP((size_t)path_len * sizeof(seq_header));
    seq_batch *b = calloc(1, sizeof *b);
    uint8_t *arena = malloc(txs_bytes + path_bytes + payload_bytes + 1);
    if (!b || !arena) {
        free(b);
        free(arena);
        return SEQ_ENOMEM;
    }
    b->arena_ = arena;
    b->tx_count = tx_count;
    b->txs = tx_count ? (seq_tx *)arena : NULL;
    b->path_len = path_len;
    b->cert_path = path_len ? (seq_header *)(arena + txs_bytes) : NULL;
    *payloads = arena + txs_bytes + path_bytes;
    *out = b;
    return 0;
}

void seq_batch_free(seq_batch *b)
{
    if (!b)
        return;
    free(b->arena_);
    free(b);
}
