/*
 * strmap.h - the library's one name index: a hash map from NUL-terminated strings to int64
 * values (usually an index into the caller's own array), so that looking a tensor, module or
 * key up by name costs the same however many there are. Keys are borrowed: the caller keeps
 * each key's bytes alive and unchanged while it is in the map. No removal (nothing needs it).
 * Open addressing with linear probing, at most half full. Private; never installed.
 */
#ifndef CQ_CORE_STRMAP_H
#define CQ_CORE_STRMAP_H

#include "core/internal.h"

typedef struct cq__strmap_slot {
    const char *key; /* NULL: empty */
    uint64_t hash;
    int64_t value;
} cq__strmap_slot;

typedef struct cq__strmap {
    cq__strmap_slot *slots;
    size_t cap, n; /* cap: 0 or a power of two */
} cq__strmap;

/* A zeroed cq__strmap is an empty map; free releases the slots (not the keys) and re-zeroes it. */
void cq__strmap_free(cq__strmap *m);
/* The value stored under key, or -1 when absent. */
int64_t cq__strmap_get(const cq__strmap *m, const char *key);
/* Stores key -> value unless key is already present; then *existing (may be NULL) gets the
 * stored value and the map is unchanged. Otherwise *existing is -1. Fails only for memory. */
cq_status cq__strmap_put(cq__strmap *m, const char *key, int64_t value, int64_t *existing, cq_err *err);
/* Makes room for n keys in all without rehashing. */
cq_status cq__strmap_reserve(cq__strmap *m, size_t n, cq_err *err);

#endif
