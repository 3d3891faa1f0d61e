/* Strict u64 decimal parsing (lib/decimal.h). */
#include "decimal.h"

bool seq_u64_parse(const char *s, size_t len, uint64_t *out)
{
    if (!s || len == 0 || len > SEQ_U64_DIGITS_MAX)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}
