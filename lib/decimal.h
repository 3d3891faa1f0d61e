/* Strict decimal text for u64 values in text inputs (JSON strings, URL paths
 * and queries): digits only, no sign, no spaces, no leading '+', at most 20
 * digits, no overflow. strtoull accepts all of those, and wraps. */
#ifndef SEQ_DECIMAL_H
#define SEQ_DECIMAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEQ_U64_DIGITS_MAX 20

/* s[0..len) (not NUL-terminated) into *out; false when it is not a u64. */
bool seq_u64_parse(const char *s, size_t len, uint64_t *out);

#endif
