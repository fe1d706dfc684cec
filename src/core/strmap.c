/*
 * strmap.c - the string hash map (strmap.h). FNV-1a 64 over the key bytes; the stored hash
 * makes a probe compare strings only on a full-hash match.
 */
#include "core/strmap.h"

static uint64_t hash_key(const char *s) {
    uint64_t h = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) h = (h ^ *p) * 1099511628211ull;
    return h;
}

void cq__strmap_free(cq__strmap *m) {
    if (!m) return;
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static cq__strmap_slot *probe(const cq__strmap_slot *slots, size_t cap, const char *key, uint64_t h) {
    size_t i = (size_t)h & (cap - 1);
    while (slots[i].key && (slots[i].hash != h || strcmp(slots[i].key, key))) i = (i + 1) & (cap - 1);
    return (cq__strmap_slot *)&slots[i];
}

int64_t cq__strmap_get(const cq__strmap *m, const char *key) {
    if (!m || !m->cap || !key) return -1;
    const cq__strmap_slot *s = probe(m->slots, m->cap, key, hash_key(key));
    return s->key ? s->value : -1;
}

static cq_status grow(cq__strmap *m, size_t cap, cq_err *err) {
    cq__strmap_slot *slots = cq__calloc(cap, sizeof *slots, err, "a name index");
    if (!slots) return CQ_E_NOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) *probe(slots, cap, m->slots[i].key, m->slots[i].hash) = m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return CQ_OK;
}

cq_status cq__strmap_reserve(cq__strmap *m, size_t n, cq_err *err) {
    size_t cap = m->cap ? m->cap : 16;
    while (cap / 2 < n) {
        if (cap > SIZE_MAX / 4 / sizeof(cq__strmap_slot)) return cq_err_set(err, CQ_E_NOMEM, "a name index too large");
        cap *= 2;
    }
    return cap == m->cap ? CQ_OK : grow(m, cap, err);
}

cq_status cq__strmap_put(cq__strmap *m, const char *key, int64_t value, int64_t *existing, cq_err *err) {
    if (existing) *existing = -1;
    cq_status s = cq__strmap_reserve(m, m->n + 1, err);
    if (s) return s;
    uint64_t h = hash_key(key);
    cq__strmap_slot *slot = probe(m->slots, m->cap, key, h);
    if (slot->key) {
        if (existing) *existing = slot->value;
        return CQ_OK;
    }
    *slot = (cq__strmap_slot){key, h, value};
    m->n++;
    return CQ_OK;
}
