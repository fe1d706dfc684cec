/*
 * fnmatch.c - the one module-name matcher: Python's fnmatch.fnmatchcase, as CPython 3.11's
 * fnmatch.translate defines it, for cq_quantize's include/exclude lists and the checkpoint
 * planner alike (quanto selects modules with it). Unlike fnmatch(3) there are no backslash
 * escapes, an unclosed '[' is a literal, and a set is read as translate reads it:
 *   '[!...]' negates; a ']' right after '[' or '[!' is a member; "x-y" is a range and a range
 *   whose ends are reversed (y < x) is dropped with both ends; a '-' first, last, or right
 *   after a range is a member; an empty set matches nothing, a negated empty set anything.
 * Python compares code points, so both strings are read as UTF-8 and a byte that is not part
 * of a valid sequence stands for U+DC80..U+DCFF, as os.fsdecode's surrogateescape makes it.
 * Stars match greedily with backtracking to the last star, which gives the same answers as
 * translate's atomic ".*?" groups (each fixed run takes its leftmost place).
 */
#include "core/internal.h"

/* The code point at *p (advanced past it); invalid bytes become U+DC80 + (byte - 0x80). */
static uint32_t next_cp(const unsigned char **p) {
    const unsigned char *s = *p;
    uint32_t c = s[0];
    int len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (len == 1) {
        *p = s + 1;
        return c;
    }
    uint32_t cp = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) {
            len = 0;
            break;
        }
        cp = cp << 6 | (s[k] & 0x3F);
    }
    /* overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8 */
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) len = 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) len = 0;
    if (!len) {
        *p = s + 1;
        return 0xDC00 + c;
    }
    *p = s + len;
    return cp;
}

/* The set at p (just after its '['): sets *end past the closing ']' and returns whether c is
 * in it, or returns false with *end NULL when no ']' closes it. */
static bool match_set(const unsigned char *p, uint32_t c, const unsigned char **end) {
    bool negate = *p == '!';
    const unsigned char *first = p + negate, *q = first;
    if (*q == ']') q++;
    while (*q && *q != ']') q++;
    if (!*q) {
        *end = NULL;
        return false;
    }
    *end = q + 1;
    bool in = false;
    for (const unsigned char *s = first; s < q;) {
        uint32_t a = next_cp(&s);
        const unsigned char *t = s;
        if (t < q && *t == '-' && t + 1 < q) { /* "a-b" */
            t++;
            uint32_t b = next_cp(&t);
            s = t;
            if (a <= c && c <= b) in = true;
        } else if (a == c) {
            in = true;
        }
    }
    return in != negate;
}

bool cq__fnmatchcase(const char *pattern, const char *name) {
    const unsigned char *p = (const unsigned char *)pattern, *n = (const unsigned char *)name;
    const unsigned char *star_p = NULL, *star_n = NULL;
    while (*n) {
        if (*p == '*') {
            while (*p == '*') p++;
            star_p = p;
            star_n = n;
            continue;
        }
        const unsigned char *next_n = n, *next_p = p;
        uint32_t c = next_cp(&next_n);
        bool ok = false;
        if (*p == '?') {
            ok = true;
            next_p = p + 1;
        } else if (*p == '[') {
            const unsigned char *after;
            ok = match_set(p + 1, c, &after);
            if (after) next_p = after;
            else ok = c == '[', next_p = p + 1; /* unclosed: a literal '[' */
        } else if (*p) {
            ok = next_cp(&next_p) == c;
        }
        if (ok) {
            p = next_p;
            n = next_n;
        } else if (star_p) {
            p = star_p;
            next_cp(&star_n); /* the star takes one more character */
            n = star_n;
        } else {
            return false;
        }
    }
    while (*p == '*') p++;
    return *p == '\0';
}
