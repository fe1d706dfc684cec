/*
 * json.c - JSON text output in the exact spelling of Python's json module and Rust's
 * serde_json, plus the parse entry point and a strict UTF-8 check. Parsing is jansson's; this
 * file only decides how a jansson tree is written, because our files must match the ones the
 * Python tools write byte for byte (safetensors headers, quanto_qmap.json, config.json, shard
 * indexes), and jansson's own dumper differs in float spelling, escapes and separators.
 */
#include "io/io_internal.h"

#include <math.h>

const cq__json_style cq__json_serde_compact = {-1, ",", ":", false, false};
const cq__json_style cq__json_python_indent4 = {4, ",", ": ", true, false};
const cq__json_style cq__json_python_indent2_sorted = {2, ",", ": ", true, true};

/* ---- UTF-8 ------------------------------------------------------------------------------ */

bool cq__utf8_valid(const char *s, size_t n, size_t *bad_at) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            goto bad;
        }
        if (n - i < len) goto bad;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) goto bad;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) goto bad;
        i += len;
    }
    return true;
bad:
    if (bad_at) *bad_at = i;
    return false;
}

void cq__err_one_line(cq_err *err) {
    if (!err) return;
    for (char *p = err->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F) *p = '?';
}

/* ---- output buffer ---------------------------------------------------------------------- */

typedef struct strbuf {
    char *p;
    size_t n, cap;
    bool oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_puts(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_newline(strbuf *b, int indent, int level) {
    sb_put(b, "\n", 1);
    for (int i = 0; i < indent * level; i++) sb_put(b, " ", 1);
}

/* ---- scalars ---------------------------------------------------------------------------- */

static void emit_string(strbuf *b, const char *s, size_t n, bool ensure_ascii) {
    sb_put(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        char esc[16];
        const char *named = NULL;
        switch (c) {
        case '"': named = "\\\""; break;
        case '\\': named = "\\\\"; break;
        case '\b': named = "\\b"; break;
        case '\f': named = "\\f"; break;
        case '\n': named = "\\n"; break;
        case '\r': named = "\\r"; break;
        case '\t': named = "\\t"; break;
        default: break;
        }
        if (named) {
            sb_puts(b, named);
            i++;
        } else if (c < 0x20 || (ensure_ascii && c == 0x7F)) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_puts(b, esc);
            i++;
        } else if (c < 0x80 || !ensure_ascii) {
            sb_put(b, (const char *)p + i, 1);
            i++;
        } else {
            /* jansson only holds valid UTF-8, so the sequence is complete. */
            size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
            uint32_t cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
            for (size_t k = 1; k < len && i + k < n; k++) cp = (cp << 6) | (p[i + k] & 0x3F);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            } else {
                snprintf(esc, sizeof esc, "\\u%04x", cp);
            }
            sb_puts(b, esc);
            i += len;
        }
    }
    sb_put(b, "\"", 1);
}

/* Python's float repr: the shortest digits that read back to x, positional when the decimal
 * exponent is in [-4, 16), else d.ddde+XX. */
static void emit_real(strbuf *b, double x) {
    if (isnan(x) || isinf(x) || x == 0) {
        sb_puts(b, isnan(x) ? "NaN" : isinf(x) ? (x < 0 ? "-Infinity" : "Infinity") : signbit(x) ? "-0.0" : "0.0");
        return;
    }
    char sci[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec - 1, x);
        if (strtod(sci, NULL) == x) break;
    }
    /* sci is "[-]d[.ddd]e[+-]XX": split into sign, digits and exponent. */
    const char *p = sci;
    bool neg = *p == '-';
    if (neg) p++;
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    int exp10 = atoi(p + 1);
    int decpt = exp10 + 1; /* value = 0.DIGITS x 10^decpt */
    char out[64];
    int o = 0;
    if (neg) out[o++] = '-';
    if (decpt <= -4 || decpt > 16) {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++) out[o++] = digits[i];
        }
        o += snprintf(out + o, sizeof out - (size_t)o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (decpt <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -decpt; i++) out[o++] = '0';
        for (int i = 0; i < nd; i++) out[o++] = digits[i];
    } else {
        for (int i = 0; i < decpt; i++) out[o++] = i < nd ? digits[i] : '0';
        out[o++] = '.';
        if (decpt >= nd) out[o++] = '0';
        for (int i = decpt; i < nd; i++) out[o++] = digits[i];
    }
    out[o] = '\0';
    sb_puts(b, out);
}

/* ---- containers ------------------------------------------------------------------------- */

static int cmp_keys(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static void emit_value(strbuf *b, const json_t *v, const cq__json_style *st, int level);

static void emit_separator(strbuf *b, const cq__json_style *st, int level, bool first) {
    if (!first) sb_puts(b, st->indent >= 0 ? "," : st->item_sep);
    if (st->indent >= 0) sb_newline(b, st->indent, level);
}

static void emit_object(strbuf *b, const json_t *v, const cq__json_style *st, int level) {
    size_t n = json_object_size(v);
    if (n == 0) {
        sb_puts(b, "{}");
        return;
    }
    const char **keys = malloc(n * sizeof *keys);
    if (!keys) {
        b->oom = true;
        return;
    }
    size_t k = 0;
    const char *key;
    json_t *item;
    json_object_foreach((json_t *)v, key, item) keys[k++] = key;
    if (st->sort_keys) qsort(keys, n, sizeof *keys, cmp_keys);
    sb_put(b, "{", 1);
    for (size_t i = 0; i < n; i++) {
        emit_separator(b, st, level + 1, i == 0);
        emit_string(b, keys[i], strlen(keys[i]), st->ensure_ascii);
        sb_puts(b, st->key_sep);
        emit_value(b, json_object_get(v, keys[i]), st, level + 1);
    }
    if (st->indent >= 0) sb_newline(b, st->indent, level);
    sb_put(b, "}", 1);
    free(keys);
}

static void emit_array(strbuf *b, const json_t *v, const cq__json_style *st, int level) {
    size_t n = json_array_size(v);
    if (n == 0) {
        sb_puts(b, "[]");
        return;
    }
    sb_put(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        emit_separator(b, st, level + 1, i == 0);
        emit_value(b, json_array_get(v, i), st, level + 1);
    }
    if (st->indent >= 0) sb_newline(b, st->indent, level);
    sb_put(b, "]", 1);
}

static void emit_value(strbuf *b, const json_t *v, const cq__json_style *st, int level) {
    char num[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: emit_object(b, v, st, level); break;
    case JSON_ARRAY: emit_array(b, v, st, level); break;
    case JSON_STRING: emit_string(b, json_string_value(v), json_string_length(v), st->ensure_ascii); break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        sb_puts(b, num);
        break;
    case JSON_REAL: emit_real(b, json_real_value(v)); break;
    case JSON_TRUE: sb_puts(b, "true"); break;
    case JSON_FALSE: sb_puts(b, "false"); break;
    case JSON_NULL: sb_puts(b, "null"); break;
    }
}

cq_status cq__json_emit(const json_t *v, const cq__json_style *style, char **out, size_t *n, cq_err *err) {
    strbuf b = {0};
    emit_value(&b, v, style, 0);
    sb_put(&b, "", 0);
    if (b.oom || !b.p) {
        free(b.p);
        *out = NULL;
        return cq_err_set(err, CQ_E_NOMEM, "out of memory writing JSON");
    }
    *out = b.p;
    if (n) *n = b.n;
    return CQ_OK;
}

/* The first place where text[0..n) nests arrays and objects deeper than CQ__JSON_MAX_DEPTH,
 * as a 1-based line and column; false when it never does. Strings are skipped. */
static bool too_deep(const char *text, size_t n, int *line, int *column) {
    int depth = 0;
    bool in_string = false;
    size_t line_start = 0;
    *line = 1;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > CQ__JSON_MAX_DEPTH) {
                *column = (int)(i - line_start + 1);
                return true;
            }
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == '\n') {
            (*line)++;
            line_start = i + 1;
        }
    }
    return false;
}

cq_status cq__json_parse_object(const char *text, size_t n, const char *label, json_t **out, cq_err *err) {
    *out = NULL;
    int line, column;
    if (too_deep(text, n, &line, &column))
        return cq_err_set(err, CQ_E_FORMAT, "%s: JSON nested deeper than %d levels (line %d, column %d)", label,
                          CQ__JSON_MAX_DEPTH, line, column);
    json_error_t e;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &e);
    if (!root) {
        if (json_error_code(&e) == json_error_duplicate_key)
            return cq_err_set(err, CQ_E_FORMAT, "%s: duplicate key in JSON: %s (line %d, column %d)", label, e.text,
                              e.line, e.column);
        return cq_err_set(err, CQ_E_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", label, e.text, e.line,
                          e.column);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return cq_err_set(err, CQ_E_FORMAT, "%s: top level is not a JSON object", label);
    }
    *out = root;
    return CQ_OK;
}
