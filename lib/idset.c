/* Id hash map: linear probing, backward-shift deletion, load factor <= 3/4.
 * The all-zero id marks an empty slot, so that id itself is kept aside.
 * Probing reads a parallel array of 8-byte tags (a slot is 40 bytes), so a
 * probe run of a large table touches one or two cache lines instead of one
 * per slot; the full id is compared only when the tag matches. */
#include "idset.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

#define CAP_MIN 16u
/* Grow when count would exceed cap * LOAD_NUM / LOAD_DEN. */
#define LOAD_NUM 3u
#define LOAD_DEN 4u

_Static_assert((CAP_MIN & (CAP_MIN - 1)) == 0, "CAP_MIN must be a power of two");
_Static_assert((uint64_t)SEQ_IDSET_ENTRIES_MAX * 2 <= UINT32_MAX,
               "the table for SEQ_IDSET_ENTRIES_MAX entries must fit uint32_t");

/* Ids are BLAKE2b outputs: any 8 bytes are already uniform. The tag is
 * never 0 (empty); the home slot comes from its upper half, which the low
 * bit forced to 1 does not touch. */
static uint64_t tag_of(const seq_hash *id)
{
    uint64_t h;
    memcpy(&h, id->b, sizeof h);
    return h | 1u;
}

static uint32_t home_of(uint64_t tag, uint32_t mask)
{
    return (uint32_t)(tag >> 32) & mask;
}

static bool slot_empty(const seq_idset *s, uint32_t i)
{
    return s->tags[i] == 0;
}

/* Index of id's slot, or of the empty slot where it would go. */
static uint32_t probe(const seq_idset *s, const seq_hash *id)
{
    uint32_t mask = s->cap - 1;
    uint64_t tag = tag_of(id);
    uint32_t i = home_of(tag, mask);
    /* The load factor bound guarantees an empty slot, so this terminates. */
    while (s->tags[i] != 0 && (s->tags[i] != tag || !seq_hash_eq(&s->slots[i].id, id)))
        i = (i + 1) & mask;
    return i;
}

void seq_idset_prefetch(const seq_idset *s, const seq_hash *id)
{
    if (s->cap == 0)
        return;
    uint32_t i = home_of(tag_of(id), s->cap - 1);
    __builtin_prefetch(&s->tags[i]);
    __builtin_prefetch(&s->slots[i]);
}

void seq_idset_init(seq_idset *s)
{
    memset(s, 0, sizeof *s);
}

void seq_idset_free(seq_idset *s)
{
    free(s->slots);
    free(s->tags);
    seq_idset_init(s);
}

static uint32_t table_entries(const seq_idset *s)
{
    return s->count - (s->zero_present ? 1u : 0u);
}

static int rehash(seq_idset *s, uint32_t cap)
{
    seq_idset_slot *slots = calloc(cap, sizeof *slots);
    uint64_t *tags = calloc(cap, sizeof *tags);
    if (!slots || !tags) {
        free(slots);
        free(tags);
        return SEQ_ENOMEM;
    }
    seq_idset_slot *old = s->slots;
    uint64_t *old_tags = s->tags;
    uint32_t old_cap = s->cap;
    s->slots = slots;
    s->tags = tags;
    s->cap = cap;
    for (uint32_t i = 0; i < old_cap; i++) {
        if (old_tags[i] == 0)
            continue;
        uint32_t j = probe(s, &old[i].id);
        SEQ_ASSERT(slot_empty(s, j));
        s->slots[j] = old[i];
        s->tags[j] = old_tags[i];
    }
    free(old);
    free(old_tags);
    return 0;
}

int seq_idset_reserve(seq_idset *s, uint32_t n)
{
    if (n > SEQ_IDSET_ENTRIES_MAX)
        return SEQ_ETOOBIG;
    uint32_t cap = s->cap ? s->cap : CAP_MIN;
    /* Strictly below the bound, so one slot always stays empty. */
    while ((uint64_t)n * LOAD_DEN >= (uint64_t)cap * LOAD_NUM)
        cap *= 2;
    if (cap == s->cap)
        return 0;
    return rehash(s, cap);
}

int seq_idset_put(seq_idset *s, const seq_hash *id, void *value)
{
    if (seq_hash_is_zero(id)) {
        if (s->zero_present)
            return SEQ_EEXISTS;
        s->zero_present = true;
        s->zero_value = value;
        s->count++;
        return 0;
    }
    if (s->cap) {
        uint32_t i = probe(s, id);
        if (!slot_empty(s, i))
            return SEQ_EEXISTS;
    }
    int rc = seq_idset_reserve(s, table_entries(s) + 1);
    if (rc)
        return rc;
    uint32_t i = probe(s, id);
    SEQ_ASSERT(slot_empty(s, i));
    s->slots[i].id = *id;
    s->slots[i].value = value;
    s->tags[i] = tag_of(id);
    s->count++;
    return 0;
}

bool seq_idset_get(const seq_idset *s, const seq_hash *id, void **value)
{
    if (seq_hash_is_zero(id)) {
        if (s->zero_present && value)
            *value = s->zero_value;
        return s->zero_present;
    }
    if (!s->cap)
        return false;
    uint32_t i = probe(s, id);
    if (slot_empty(s, i))
        return false;
    if (value)
        *value = s->slots[i].value;
    return true;
}

/* Closes the hole at i: every later entry of the probe run that may live at
 * the hole moves back into it (Knuth's algorithm R), so no tombstones. */
static void backward_shift(seq_idset *s, uint32_t hole)
{
    uint32_t mask = s->cap - 1;
    uint32_t j = hole;
    for (;;) {
        j = (j + 1) & mask;
        if (slot_empty(s, j))
            break;
        uint32_t home = home_of(s->tags[j], mask);
        /* j may move to the hole unless its home lies cyclically in (hole, j]. */
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            s->slots[hole] = s->slots[j];
            s->tags[hole] = s->tags[j];
            hole = j;
        }
    }
    memset(&s->slots[hole], 0, sizeof s->slots[hole]);
    s->tags[hole] = 0;
}

bool seq_idset_remove(seq_idset *s, const seq_hash *id, void **value)
{
    if (seq_hash_is_zero(id)) {
        if (!s->zero_present)
            return false;
        if (value)
            *value = s->zero_value;
        s->zero_present = false;
        s->zero_value = NULL;
        s->count--;
        return true;
    }
    if (!s->cap)
        return false;
    uint32_t i = probe(s, id);
    if (slot_empty(s, i))
        return false;
    if (value)
        *value = s->slots[i].value;
    backward_shift(s, i);
    SEQ_ASSERT(s->count > 0);
    s->count--;
    return true;
}
