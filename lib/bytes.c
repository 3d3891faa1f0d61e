/* Growing byte buffers (lib/bytes.h). */
#include "bytes.h"

#include <stdlib.h>

#include "errors.h"

int seq_bytes_reserve(uint8_t **buf, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t grown = *cap ? *cap : (first ? first : 1);
    while (grown < need)
        grown = grown > SIZE_MAX / 2 ? need : grown * 2;
    uint8_t *b = realloc(*buf, grown);
    if (!b)
        return SEQ_ENOMEM;
    *buf = b;
    *cap = grown;
    return 0;
}
