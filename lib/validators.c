/* The validator set: keys in genesis order, fault bound f and quorum q. */
#include "types.h"

#include <string.h>

#include "errors.h"

static bool pubkey_eq(const seq_pubkey *a, const seq_pubkey *b)
{
    return memcmp(a->b, b->b, SEQ_PUBKEY_BYTES) == 0;
}

int seq_validators_init(seq_validators *vs, const seq_pubkey *keys, uint32_t n)
{
    SEQ_ASSERT(vs);
    if (n == 0 || n > SEQ_VALIDATORS_MAX || !keys)
        return SEQ_EINVAL;
    /* O(n^2) over at most SEQ_VALIDATORS_MAX keys, once at startup. */
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = i + 1; j < n; j++)
            if (pubkey_eq(&keys[i], &keys[j]))
                return SEQ_EDUPLICATE;

    memset(vs, 0, sizeof *vs);
    vs->n = n;
    vs->f = (n - 1) / 3;
    vs->q = n - vs->f;
    memcpy(vs->keys, keys, (size_t)n * sizeof keys[0]);
    /* Any two quorums intersect in at least one honest validator. */
    SEQ_ASSERT(2 * vs->q > n + vs->f);
    return 0;
}

int seq_validators_find(const seq_validators *vs, const seq_pubkey *pk)
{
    SEQ_ASSERT(vs && pk && vs->n <= SEQ_VALIDATORS_MAX);
    for (uint32_t i = 0; i < vs->n; i++)
        if (pubkey_eq(&vs->keys[i], pk))
            return (int)i;
    return -1;
}
