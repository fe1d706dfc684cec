/*
 * fuzz_fnmatch.c - libFuzzer target for the module-name matcher (cq__fnmatchcase): the input
 * is "pattern\0name" (no NUL: the input is both). Any bytes, valid UTF-8 or not, never read
 * past either string; a pattern without '*', '?' or '[' matches exactly itself; and a match
 * survives a '*' added at either end. Corpus: fuzz/corpus/fnmatch.
 */
#include "core/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(2 * size + 4);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *pattern = buf, *name = memchr(buf, '\0', size) ? buf + strlen(buf) + 1 : buf;
    bool hit = cq__fnmatchcase(pattern, name);
    if (!strpbrk(pattern, "*?[") && hit != !strcmp(pattern, name)) abort();
    char *starred = buf + size + 1;
    size_t np = strlen(pattern);
    starred[0] = '*';
    memcpy(starred + 1, pattern, np + 1);
    if (hit && !cq__fnmatchcase(starred, name)) abort();
    memcpy(starred, pattern, np);
    memcpy(starred + np, "*", 2);
    if (hit && !cq__fnmatchcase(starred, name)) abort();
    free(buf);
    return 0;
}
