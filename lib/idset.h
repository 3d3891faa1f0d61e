/* A hash map keyed by 32-byte ids (tx ids, block hashes): open addressing with
 * linear probing and backward-shift deletion (no tombstones), growing on demand. */
#ifndef SEQ_IDSET_H
#define SEQ_IDSET_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"

/* Slots hold an id and an optional value; values are borrowed, never freed. */
typedef struct {
    seq_hash id;
    void *value;
} seq_idset_slot;

/* Embeddable; zero-initialised (or seq_idset_init) is an empty set. The ids
 * must be uniform hashes: the first 8 bytes are used as the hash. */
typedef struct {
    seq_idset_slot *slots; /* cap slots, all-zero id = empty */
    uint64_t *tags;        /* cap: 0 = empty, else the id's first 8 bytes | 1 (probed instead of slots) */
    uint32_t cap;          /* 0 or a power of two */
    uint32_t count;        /* entries, including the zero id */
    bool zero_present;     /* the all-zero id lives outside the table */
    void *zero_value;
} seq_idset;

/* Most entries a set may hold (keeps the table size within uint32_t). */
#define SEQ_IDSET_ENTRIES_MAX (1u << 29)

void seq_idset_init(seq_idset *s);
/* Frees the table (not the values); the set is empty and usable again. */
void seq_idset_free(seq_idset *s);

/* Makes room for n entries in total, so that inserts up to n entries never
 * allocate. SEQ_ETOOBIG over SEQ_IDSET_ENTRIES_MAX, SEQ_ENOMEM. */
int seq_idset_reserve(seq_idset *s, uint32_t n) SEQ_MUST_CHECK;

/* Inserts id -> value. SEQ_EEXISTS if id is present (set unchanged),
 * SEQ_ENOMEM / SEQ_ETOOBIG when it cannot grow (set unchanged). */
int seq_idset_put(seq_idset *s, const seq_hash *id, void *value) SEQ_MUST_CHECK;

/* True if present; then *value (if value is not NULL) is its value. */
bool seq_idset_get(const seq_idset *s, const seq_hash *id, void **value);

/* Removes id; true if it was present, then *value (if not NULL) was its value. */
bool seq_idset_remove(seq_idset *s, const seq_hash *id, void **value);

static inline uint32_t seq_idset_count(const seq_idset *s) { return s->count; }
/* Asks the CPU to start loading the lines a lookup of id reads first (its
 * home tag and slot). A loop over many ids calls it a few ids ahead, so that
 * the cache misses of a large table overlap instead of following one
 * another. Changes nothing. */
void seq_idset_prefetch(const seq_idset *s, const seq_hash *id);

#endif
