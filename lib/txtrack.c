/* Client keys and dropped transactions: two rings of fixed capacity, each
 * with an idset from a 32-byte id to its slot (stored as index + 1, since a
 * NULL value would be ambiguous). */
#include "txtrack.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "idset.h"

typedef struct {
    seq_hash id;    /* the key's hash, or the dropped tx id */
    seq_hash value; /* the key's tx id */
    int reason;     /* dropped: SEQ_DROP_* */
    bool used;      /* false for a never used or forgotten slot */
} entry;

typedef struct {
    entry *slots;
    uint32_t cap;
    uint32_t count;
    uint32_t next; /* where the next entry goes (oldest once full) */
    seq_idset index;
} ring;

struct seq_txtrack {
    ring keys;
    ring dropped;
};

static int ring_init(ring *r, uint32_t cap)
{
    seq_idset_init(&r->index);
    r->slots = calloc(cap, sizeof *r->slots);
    if (!r->slots)
        return SEQ_ENOMEM;
    int rc = seq_idset_reserve(&r->index, cap);
    if (rc) {
        free(r->slots);
        r->slots = NULL;
        return rc;
    }
    r->cap = cap;
    return 0;
}

static void ring_free(ring *r)
{
    seq_idset_free(&r->index);
    free(r->slots);
}

static entry *ring_find(const ring *r, const seq_hash *id)
{
    void *v;
    if (!seq_idset_get(&r->index, id, &v))
        return NULL;
    return &r->slots[(uintptr_t)v - 1];
}

/* Puts or overwrites id's entry; when full, forgets the oldest first. */
static entry *ring_put(ring *r, const seq_hash *id)
{
    entry *e = ring_find(r, id);
    if (e)
        return e;
    uint32_t slot = r->next;
    if (r->slots[slot].used) {
        bool was = seq_idset_remove(&r->index, &r->slots[slot].id, NULL);
        SEQ_ASSERT(was);
        r->count--;
    }
    r->count++;
    r->next = (r->next + 1) % r->cap;
    e = &r->slots[slot];
    *e = (entry){.id = *id, .used = true};
    int rc = seq_idset_put(&r->index, id, (void *)(uintptr_t)(slot + 1));
    SEQ_ASSERT(rc == 0); /* reserved for cap at creation */
    return e;
}

/* A forgotten entry leaves a hole in the ring, reused when its turn comes. */
static void ring_forget(ring *r, const seq_hash *id)
{
    void *v;
    if (seq_idset_remove(&r->index, id, &v)) {
        memset(&r->slots[(uintptr_t)v - 1], 0, sizeof(entry));
        r->count--;
    }
}

int seq_txtrack_new(seq_txtrack **out, uint32_t keys_max, uint32_t dropped_max)
{
    SEQ_ASSERT(out);
    if (keys_max < 1 || keys_max > SEQ_TXTRACK_ENTRIES_MAX || dropped_max < 1 ||
        dropped_max > SEQ_TXTRACK_ENTRIES_MAX)
        return SEQ_EINVAL;
    seq_txtrack *t = calloc(1, sizeof *t);
    if (!t)
        return SEQ_ENOMEM;
    int rc = ring_init(&t->keys, keys_max);
    if (rc == 0 && (rc = ring_init(&t->dropped, dropped_max)) != 0)
        ring_free(&t->keys);
    if (rc) {
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void seq_txtrack_free(seq_txtrack *t)
{
    if (!t)
        return;
    ring_free(&t->keys);
    ring_free(&t->dropped);
    free(t);
}

/* Keys are any bytes: hashed under their own domain so they index an idset. */
static bool key_hash(const uint8_t *key, size_t len, seq_hash *out)
{
    static const char domain[] = "seq/client-key/v1";
    if (!key || len == 0 || len > SEQ_CLIENT_KEY_BYTES_MAX)
        return false;
    uint8_t buf[sizeof domain + SEQ_CLIENT_KEY_BYTES_MAX];
    memcpy(buf, domain, sizeof domain);
    memcpy(buf + sizeof domain, key, len);
    seq_hash_compute(out, buf, sizeof domain + len);
    return true;
}

int seq_txtrack_key_check(const seq_txtrack *t, const uint8_t *key, size_t len, const seq_hash *id)
{
    seq_hash k;
    if (!key_hash(key, len, &k))
        return SEQ_EINVAL;
    const entry *e = ring_find(&t->keys, &k);
    if (e && memcmp(e->value.b, id->b, SEQ_HASH_BYTES) != 0)
        return SEQ_EEXISTS;
    return 0;
}

int seq_txtrack_key_commit(seq_txtrack *t, const uint8_t *key, size_t len, const seq_hash *id, int rc)
{
    seq_hash k;
    if (rc != 0 && rc != SEQ_EDUPLICATE)
        return rc;
    if (!key_hash(key, len, &k))
        return SEQ_EINVAL;
    ring_put(&t->keys, &k)->value = *id;
    seq_txtrack_dropped_forget(t, id);
    return 0;
}

bool seq_txtrack_key_get(const seq_txtrack *t, const uint8_t *key, size_t len, seq_hash *id)
{
    seq_hash k;
    if (!key_hash(key, len, &k))
        return false;
    const entry *e = ring_find(&t->keys, &k);
    if (e && id)
        *id = e->value;
    return e != NULL;
}

void seq_txtrack_dropped_put(seq_txtrack *t, const seq_hash *id, int reason)
{
    ring_put(&t->dropped, id)->reason = reason;
}

void seq_txtrack_dropped_forget(seq_txtrack *t, const seq_hash *id)
{
    ring_forget(&t->dropped, id);
}

bool seq_txtrack_dropped_get(const seq_txtrack *t, const seq_hash *id, int *reason)
{
    const entry *e = ring_find(&t->dropped, id);
    if (e && reason)
        *reason = e->reason;
    return e != NULL;
}
