/*
 * tokenizer_hf.c - Hugging Face tokenizer.json with a BPE model, as the `tokenizers` library
 * runs it for Llama-family checkpoints: added tokens split out of the text first; each other
 * segment normalized (Prepend, Replace, Sequence), pre-tokenized (ByteLevel with the GPT-2
 * regex, Split on a regex or string, Digits, Metaspace, Sequence), then BPE on every piece
 * (lowest merge rank first, leftmost on ties; byte_fallback, unk and fuse_unk; ignore_merges),
 * and the template's special tokens around the result. Decoding (ByteLevel, Metaspace, or
 * Replace + ByteFallback + Fuse + Strip) is precomputed per id. Regexes run on PCRE2 in UTF +
 * Unicode-property mode. Anything else a file asks for is refused, naming it. docs/LM.md.
 */
#include "lm/tokenizer_internal.h"
#include "io/io_internal.h" /* cq__json_parse_object */

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define MAX_STEPS 16

typedef enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_WITH_PREVIOUS, SPLIT_WITH_NEXT, SPLIT_CONTIGUOUS } split_behavior;

typedef enum { PRE_BYTELEVEL, PRE_SPLIT, PRE_DIGITS, PRE_METASPACE } pre_kind;
typedef struct {
    pre_kind kind;
    pcre2_code *re;         /* BYTELEVEL (when use_regex), SPLIT with a regex */
    char *literal;          /* SPLIT on a string */
    split_behavior behavior;
    bool add_prefix_space;  /* BYTELEVEL */
    bool individual;        /* DIGITS */
    char replacement[8];    /* METASPACE (UTF-8) */
    int prepend;            /* METASPACE: 0 never, 1 first, 2 always */
    bool split;             /* METASPACE */
} pre_step;

typedef enum { NORM_PREPEND, NORM_REPLACE } norm_kind;
typedef struct {
    norm_kind kind;
    char *a, *b; /* PREPEND: a; REPLACE: a -> b */
} norm_step;

typedef struct {
    uint64_t key; /* (left << 32 | right) + 1; 0 = empty */
    int32_t rank, merged;
} merge_slot;

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    bool special;
} added_token;

struct cq__hf_tok {
    norm_step norm[MAX_STEPS];
    int n_norm;
    pre_step pre[MAX_STEPS];
    int n_pre;
    bool bytelevel;         /* pieces are byte-level mapped (encoding maps bytes to chars) */
    merge_slot *merges;
    size_t merge_cap;
    int32_t unk;            /* -1: none */
    bool byte_fallback, fuse_unk, ignore_merges;
    int32_t byte_id[256];   /* ids of <0x00> .. <0xFF>, -1 when absent */
    added_token *added;
    int n_added;
    int32_t prefix[4], suffix[4]; /* template special ids around $A */
    int n_prefix, n_suffix;
};

/* ---- byte-level alphabet (GPT-2's bytes_to_unicode) ------------------------------------------ */

static int byte_to_cp(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    int k = 0; /* the bytes outside those ranges take 256, 257 ... in order */
    for (int c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174)) k++;
    return 256 + k;
}

static size_t utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) return out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 63)), 2;
    if (cp < 0x10000)
        return out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | ((cp >> 6) & 63)), out[2] = (char)(0x80 | (cp & 63)), 3;
    out[0] = (char)(0xF0 | cp >> 18), out[1] = (char)(0x80 | ((cp >> 12) & 63));
    out[2] = (char)(0x80 | ((cp >> 6) & 63)), out[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* The code point at s (*n gets its length); a byte that starts no valid sequence is itself. */
static uint32_t utf8_get(const unsigned char *s, size_t left, size_t *n) {
    uint32_t c = s[0];
    size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (k == 0 || k > left) return *n = 1, c;
    uint32_t v = k == 1 ? c : k == 2 ? c & 31 : k == 3 ? c & 15 : c & 7;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return *n = 1, c;
        v = v << 6 | (s[i] & 63);
    }
    return *n = k, v;
}

/* ---- growable byte strings and piece lists --------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static bool sb_put(sbuf *b, const void *d, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return false;
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

/* Pieces: ranges [off, off + len) of one buffer. */
typedef struct {
    size_t off, len;
} range;
typedef struct {
    range *v;
    size_t n, cap;
} ranges;

static bool rg_put(ranges *r, size_t off, size_t len) {
    if (!len) return true;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        range *v = realloc(r->v, cap * sizeof *v);
        if (!v) return false;
        r->v = v, r->cap = cap;
    }
    r->v[r->n++] = (range){off, len};
    return true;
}

/* ---- parsing --------------------------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static cq_status compile(const char *pattern, const char *label, pcre2_code **out, cq_err *err) {
    int code;
    PCRE2_SIZE off;
    *out = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                         &code, &off, NULL);
    if (*out) return CQ_OK;
    PCRE2_UCHAR msg[160];
    pcre2_get_error_message(code, msg, sizeof msg);
    return cq_err_set(err, CQ_E_FORMAT, "%s: regex '%.60s' does not compile at %zu: %s", label, pattern, (size_t)off,
                      (const char *)msg);
}

static cq_status parse_behavior(const char *b, const char *label, split_behavior *out, cq_err *err) {
    static const struct {
        const char *name;
        split_behavior b;
    } names[] = {{"Removed", SPLIT_REMOVED}, {"Isolated", SPLIT_ISOLATED}, {"MergedWithPrevious", SPLIT_WITH_PREVIOUS},
                 {"MergedWithNext", SPLIT_WITH_NEXT}, {"Contiguous", SPLIT_CONTIGUOUS}};
    for (size_t i = 0; b && i < CQ_ARRAY_LEN(names); i++)
        if (!strcmp(b, names[i].name)) return *out = names[i].b, CQ_OK;
    return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: Split behavior '%s' is not supported", label, b ? b : "(missing)");
}

static cq_status too_many(const char *label, const char *what, cq_err *err) {
    return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: more than %d %s steps", label, MAX_STEPS, what);
}

static cq_status parse_normalizer(cq__hf_tok *h, const json_t *n, const char *label, cq_err *err) {
    if (!n || json_is_null(n)) return CQ_OK;
    const char *type = jstr(n, "type");
    if (type && !strcmp(type, "Sequence")) {
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(n, "normalizers"), i, s) CQ__TRY(parse_normalizer(h, s, label, err));
        return CQ_OK;
    }
    if (h->n_norm == MAX_STEPS) return too_many(label, "normalizer", err);
    norm_step *st = &h->norm[h->n_norm];
    if (type && !strcmp(type, "Prepend") && jstr(n, "prepend")) {
        st->kind = NORM_PREPEND;
        st->a = cq__strdup(jstr(n, "prepend"), err);
        if (!st->a) return CQ_E_NOMEM;
    } else if (type && !strcmp(type, "Replace") && jstr(json_object_get(n, "pattern"), "String") && jstr(n, "content")) {
        st->kind = NORM_REPLACE;
        st->a = cq__strdup(jstr(json_object_get(n, "pattern"), "String"), err);
        st->b = st->a ? cq__strdup(jstr(n, "content"), err) : NULL;
        if (!st->b) return CQ_E_NOMEM;
        if (!st->a[0]) return cq_err_set(err, CQ_E_FORMAT, "%s: Replace normalizer with an empty pattern", label);
    } else {
        return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: normalizer '%s' is not supported (Prepend, Replace, Sequence)",
                          label, type ? type : "(no type)");
    }
    h->n_norm++;
    return CQ_OK;
}

static int prepend_scheme(const json_t *p) {
    const char *s = jstr(p, "prepend_scheme");
    if (s) return !strcmp(s, "never") ? 0 : !strcmp(s, "first") ? 1 : 2;
    const json_t *a = json_object_get(p, "add_prefix_space"); /* older files */
    return a && json_is_false(a) ? 0 : 2;
}

static cq_status parse_pre(cq__hf_tok *h, const json_t *p, const char *label, cq_err *err) {
    if (!p || json_is_null(p)) return CQ_OK;
    const char *type = jstr(p, "type");
    if (type && !strcmp(type, "Sequence")) {
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(p, "pretokenizers"), i, s) CQ__TRY(parse_pre(h, s, label, err));
        return CQ_OK;
    }
    if (h->n_pre == MAX_STEPS) return too_many(label, "pre-tokenizer", err);
    pre_step *st = &h->pre[h->n_pre];
    memset(st, 0, sizeof *st);
    if (type && !strcmp(type, "ByteLevel")) {
        st->kind = PRE_BYTELEVEL;
        st->add_prefix_space = json_is_true(json_object_get(p, "add_prefix_space"));
        const json_t *ur = json_object_get(p, "use_regex");
        if (!ur || json_is_true(ur)) CQ__TRY(compile(GPT2_PATTERN, label, &st->re, err));
        h->bytelevel = true;
    } else if (type && !strcmp(type, "Split")) {
        st->kind = PRE_SPLIT;
        const json_t *pat = json_object_get(p, "pattern");
        if (json_is_true(json_object_get(p, "invert")))
            return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: Split with invert is not supported", label);
        CQ__TRY(parse_behavior(jstr(p, "behavior"), label, &st->behavior, err));
        if (jstr(pat, "Regex")) {
            CQ__TRY(compile(jstr(pat, "Regex"), label, &st->re, err));
        } else if (jstr(pat, "String") && jstr(pat, "String")[0]) {
            st->literal = cq__strdup(jstr(pat, "String"), err);
            if (!st->literal) return CQ_E_NOMEM;
        } else {
            return cq_err_set(err, CQ_E_FORMAT, "%s: Split pre-tokenizer without a pattern", label);
        }
    } else if (type && !strcmp(type, "Digits")) {
        st->kind = PRE_DIGITS;
        st->individual = json_is_true(json_object_get(p, "individual_digits"));
        /* tokenizers splits on Rust's char::is_numeric: the categories Nd, Nl and No ("4", "½") */
        CQ__TRY(compile("\\p{N}", label, &st->re, err));
    } else if (type && !strcmp(type, "Metaspace")) {
        st->kind = PRE_METASPACE;
        const char *r = jstr(p, "replacement");
        if (!r || !r[0] || strlen(r) >= sizeof st->replacement)
            return cq_err_set(err, CQ_E_FORMAT, "%s: Metaspace replacement missing or too long", label);
        snprintf(st->replacement, sizeof st->replacement, "%s", r);
        st->prepend = prepend_scheme(p);
        const json_t *sp = json_object_get(p, "split");
        st->split = !sp || json_is_true(sp);
    } else {
        return cq_err_set(err, CQ_E_UNSUPPORTED,
                          "%s: pre-tokenizer '%s' is not supported (ByteLevel, Split, Digits, Metaspace, Sequence)", label,
                          type ? type : "(no type)");
    }
    h->n_pre++;
    return CQ_OK;
}

static uint64_t mix(uint64_t k) {
    k ^= k >> 33, k *= 0xff51afd7ed558ccdull, k ^= k >> 33;
    return k;
}

static bool merge_put(cq__hf_tok *h, int32_t l, int32_t r, int32_t rank, int32_t merged) {
    uint64_t key = ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1;
    size_t m = h->merge_cap - 1;
    for (size_t i = mix(key) & m;; i = (i + 1) & m) {
        if (h->merges[i].key == key) return true; /* a repeated merge keeps its first rank */
        if (!h->merges[i].key) {
            h->merges[i] = (merge_slot){key, rank, merged};
            return true;
        }
    }
}

static const merge_slot *merge_get(const cq__hf_tok *h, int32_t l, int32_t r) {
    uint64_t key = ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1;
    size_t m = h->merge_cap - 1;
    for (size_t i = mix(key) & m; h->merges[i].key; i = (i + 1) & m)
        if (h->merges[i].key == key) return &h->merges[i];
    return NULL;
}

static int32_t id_of(const cq_tokenizer *t, const char *s) { return (int32_t)cq__strmap_get(&t->index, s); }

static cq_status parse_merges(cq_tokenizer *t, const json_t *merges, const char *label, cq_err *err) {
    cq__hf_tok *h = t->hf;
    size_t n = json_array_size(merges);
    h->merge_cap = 16;
    while (h->merge_cap < 2 * n + 2) h->merge_cap *= 2;
    h->merges = cq__calloc(h->merge_cap, sizeof *h->merges, err, "tokenizer merges");
    if (!h->merges) return CQ_E_NOMEM;
    sbuf both = {0};
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(merges, i);
        const char *a, *b;
        char *space = NULL;
        if (json_is_array(m) && json_array_size(m) == 2) {
            a = json_string_value(json_array_get(m, 0)), b = json_string_value(json_array_get(m, 1));
        } else if (json_is_string(m) && (space = strchr(json_string_value(m), ' '))) { /* "a b" (older files) */
            both.n = 0;
            if (!sb_put(&both, json_string_value(m), strlen(json_string_value(m)))) break;
            both.p[space - json_string_value(m)] = 0;
            a = both.p, b = both.p + (space - json_string_value(m)) + 1;
        } else {
            a = b = NULL;
        }
        if (!a || !b) {
            free(both.p);
            return cq_err_set(err, CQ_E_FORMAT, "%s: merge %zu is not a pair of strings", label, i);
        }
        int32_t l = id_of(t, a), r = id_of(t, b);
        sbuf cat = {0};
        bool ok = sb_put(&cat, a, strlen(a)) && sb_put(&cat, b, strlen(b));
        int32_t mid = ok ? id_of(t, cat.p) : -1;
        free(cat.p);
        if (!ok) break;
        if (l < 0 || r < 0 || mid < 0) {
            free(both.p);
            return cq_err_set(err, CQ_E_FORMAT, "%s: merge %zu ('%.40s' '%.40s') names a token not in the vocabulary",
                              label, i, a, b);
        }
        merge_put(h, l, r, (int32_t)i, mid);
    }
    free(both.p);
    return CQ_OK;
}

/* The template's special tokens before and after $A ("single"). */
static cq_status parse_post(cq_tokenizer *t, const json_t *p, const char *label, cq_err *err) {
    cq__hf_tok *h = t->hf;
    const char *type = jstr(p, "type");
    if (!p || json_is_null(p) || (type && (!strcmp(type, "ByteLevel")))) return CQ_OK;
    if (type && !strcmp(type, "Sequence")) {
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(p, "processors"), i, s) CQ__TRY(parse_post(t, s, label, err));
        return CQ_OK;
    }
    if (!type || strcmp(type, "TemplateProcessing"))
        return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: post-processor '%s' is not supported (TemplateProcessing, ByteLevel)",
                          label, type ? type : "(no type)");
    bool after = false;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(p, "single"), i, item) {
        const json_t *sp = json_object_get(item, "SpecialToken");
        if (json_object_get(item, "Sequence")) {
            after = true;
            continue;
        }
        const char *name = jstr(sp, "id");
        const json_t *ids = json_object_get(json_object_get(json_object_get(p, "special_tokens"), name ? name : ""), "ids");
        int32_t id = json_array_size(ids) == 1 ? (int32_t)json_integer_value(json_array_get(ids, 0)) : -1;
        if (id < 0 && name) id = id_of(t, name);
        if (id < 0 || id >= t->n || (after ? h->n_suffix : h->n_prefix) == 4)
            return cq_err_set(err, CQ_E_FORMAT, "%s: template token '%s' is not a token", label, name ? name : "?");
        if (after) h->suffix[h->n_suffix++] = id;
        else h->prefix[h->n_prefix++] = id;
    }
    return CQ_OK;
}

/* Each id's decoded bytes, by the decoder's rules. */
static cq_status make_decodings(cq_tokenizer *t, const json_t *d, const char *label, cq_err *err) {
    const char *type = jstr(d, "type");
    bool bytelevel = false, meta = false, space_rep = false, byte_fb = false;
    if (type && !strcmp(type, "ByteLevel")) bytelevel = true;
    else if (type && !strcmp(type, "Metaspace")) meta = true, t->strip_at_start = prepend_scheme(d) != 0;
    else if (type && !strcmp(type, "Sequence")) {
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(d, "decoders"), i, s) {
            const char *st = jstr(s, "type");
            if (st && !strcmp(st, "Replace") && jstr(json_object_get(s, "pattern"), "String") &&
                !strcmp(jstr(json_object_get(s, "pattern"), "String"), "\xe2\x96\x81") && jstr(s, "content") &&
                !strcmp(jstr(s, "content"), " "))
                space_rep = true;
            else if (st && !strcmp(st, "ByteFallback")) byte_fb = true;
            else if (st && !strcmp(st, "Fuse")) continue;
            else if (st && !strcmp(st, "Strip") && jstr(s, "content") && !strcmp(jstr(s, "content"), " ") &&
                     json_integer_value(json_object_get(s, "start")) == 1 && json_integer_value(json_object_get(s, "stop")) == 0)
                t->strip_at_start = true;
            else if (st && !strcmp(st, "ByteLevel")) bytelevel = true;
            else
                return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: decoder step '%s' is not supported", label, st ? st : "?");
        }
    } else if (d && !json_is_null(d)) {
        return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: decoder '%s' is not supported (ByteLevel, Metaspace, Sequence)",
                          label, type ? type : "(no type)");
    }
    int inv[512]; /* code point -> byte for the byte-level alphabet (cp < 512) */
    for (int i = 0; i < 512; i++) inv[i] = -1;
    for (int b = 0; b < 256; b++) inv[byte_to_cp(b)] = b;
    t->dec = cq__calloc((size_t)t->n, sizeof *t->dec, err, "tokenizer decodings");
    t->dec_len = t->dec ? cq__calloc((size_t)t->n, sizeof *t->dec_len, err, "tokenizer decodings") : NULL;
    if (!t->dec_len) return CQ_E_NOMEM;
    const cq__hf_tok *h = t->hf;
    for (int64_t i = 0; i < t->n; i++) {
        const char *p = t->piece[i];
        if (!p) continue;
        bool added = false;
        for (int a = 0; a < h->n_added && !added; a++) added = h->added[a].id == i;
        sbuf out = {0};
        bool ok = sb_put(&out, "", 0);
        int b = (byte_fb || meta) ? cq__tok_byte_piece(p, t->len[i]) : -1;
        if (t->control[i]) {
            /* nothing */
        } else if (added) {
            ok = sb_put(&out, p, t->len[i]); /* added tokens decode as their content */
        } else if (b >= 0) {
            char c = (char)b;
            ok = sb_put(&out, &c, 1);
        } else {
            for (size_t at = 0, n; ok && at < t->len[i]; at += n) {
                uint32_t cp = utf8_get((const unsigned char *)p + at, t->len[i] - at, &n);
                if (bytelevel && cp < 512 && inv[cp] >= 0) {
                    char c = (char)inv[cp];
                    ok = sb_put(&out, &c, 1);
                } else if ((meta || space_rep) && cp == 0x2581) {
                    ok = sb_put(&out, " ", 1);
                } else {
                    ok = sb_put(&out, p + at, n);
                }
            }
        }
        if (!ok) {
            free(out.p);
            return cq_err_set(err, CQ_E_NOMEM, "tokenizer decodings: out of memory");
        }
        t->dec[i] = out.p, t->dec_len[i] = (uint32_t)out.n;
    }
    return CQ_OK;
}

/* The id EOS most likely is: the first special added token with one of the usual names. */
static int32_t guess_eos(const cq__hf_tok *h) {
    static const char *const names[] = {"</s>", "<|endoftext|>", "<|end_of_text|>", "<|eot_id|>", "<|im_end|>"};
    for (size_t k = 0; k < CQ_ARRAY_LEN(names); k++)
        for (int a = 0; a < h->n_added; a++)
            if (h->added[a].special && !strcmp(h->added[a].content, names[k])) return h->added[a].id;
    return -1;
}

cq_status cq__hf_tok_parse(cq_tokenizer *t, const char *text, size_t size, const char *label, cq_err *err) {
    json_t *root = NULL;
    CQ__TRY(cq__json_parse_object(text, size, label, &root, err));
    cq_status st = CQ_OK;
    cq__hf_tok *h = t->hf = cq__calloc(1, sizeof *t->hf, err, "tokenizer");
    const json_t *model = json_object_get(root, "model"), *vocab = json_object_get(model, "vocab");
    const json_t *added = json_object_get(root, "added_tokens");
    const char *mtype = jstr(model, "type");
    if (!h) {
        st = CQ_E_NOMEM;
        goto done;
    }
    if (!json_is_object(vocab) || (mtype && strcmp(mtype, "BPE")) || !json_is_array(json_object_get(model, "merges"))) {
        st = cq_err_set(err, CQ_E_UNSUPPORTED, "%s: model '%s' is not supported (BPE with vocab and merges)", label,
                        mtype ? mtype : "(no type)");
        goto done;
    }
    if (jstr(model, "continuing_subword_prefix") || jstr(model, "end_of_word_suffix") ||
        (json_is_real(json_object_get(model, "dropout")) && json_real_value(json_object_get(model, "dropout")) > 0)) {
        st = cq_err_set(err, CQ_E_UNSUPPORTED,
                        "%s: BPE with continuing_subword_prefix, end_of_word_suffix or dropout is not supported", label);
        goto done;
    }
    /* ids: the vocabulary's and the added tokens' */
    int64_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= INT32_MAX) {
            st = cq_err_set(err, CQ_E_FORMAT, "%s: vocabulary entry '%.40s' has no valid id", label, key);
            goto done;
        }
        if (json_integer_value(v) >= n) n = json_integer_value(v) + 1;
    }
    size_t i;
    json_array_foreach(added, i, v) {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (!jstr(v, "content") || !jstr(v, "content")[0] || id < 0 || id >= INT32_MAX) {
            st = cq_err_set(err, CQ_E_FORMAT, "%s: added token %zu has no content or id", label, i);
            goto done;
        }
        if (id >= n) n = id + 1;
    }
    if (n < 1 || n > (1 << 24)) {
        st = cq_err_set(err, CQ_E_FORMAT, "%s: %lld ids", label, (long long)n);
        goto done;
    }
    t->n = n;
    t->piece = cq__calloc((size_t)n, sizeof *t->piece, err, "tokenizer pieces");
    t->len = t->piece ? cq__calloc((size_t)n, sizeof *t->len, err, "tokenizer pieces") : NULL;
    t->control = t->len ? cq__calloc((size_t)n, sizeof *t->control, err, "tokenizer pieces") : NULL;
    h->added = t->control ? cq__calloc(json_array_size(added) + 1, sizeof *h->added, err, "added tokens") : NULL;
    st = h->added ? cq__strmap_reserve(&t->index, (size_t)n, err) : CQ_E_NOMEM;
    if (st) goto done;
    json_object_foreach((json_t *)vocab, key, v) {
        int64_t id = json_integer_value(v);
        if (t->piece[id]) continue; /* two strings with one id: the first stays */
        if (!(t->piece[id] = cq__strdup(key, err))) {
            st = CQ_E_NOMEM;
            goto done;
        }
        t->len[id] = (uint32_t)strlen(key);
        if ((st = cq__strmap_put(&t->index, t->piece[id], id, NULL, err))) goto done;
    }
    json_array_foreach(added, i, v) {
        int32_t id = (int32_t)json_integer_value(json_object_get(v, "id"));
        const char *c = jstr(v, "content");
        if (!t->piece[id]) {
            if (!(t->piece[id] = cq__strdup(c, err))) {
                st = CQ_E_NOMEM;
                goto done;
            }
            t->len[id] = (uint32_t)strlen(c);
            if ((st = cq__strmap_put(&t->index, t->piece[id], id, NULL, err))) goto done;
        }
        added_token *a = &h->added[h->n_added++];
        a->content = t->piece[id], a->len = t->len[id], a->id = id;
        a->special = json_is_true(json_object_get(v, "special"));
        t->control[id] = a->special;
    }
    h->unk = jstr(model, "unk_token") ? id_of(t, jstr(model, "unk_token")) : -1;
    h->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    h->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
    h->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        h->byte_id[b] = id_of(t, name);
    }
    if ((st = parse_merges(t, json_object_get(model, "merges"), label, err)) ||
        (st = parse_normalizer(h, json_object_get(root, "normalizer"), label, err)) ||
        (st = parse_pre(h, json_object_get(root, "pre_tokenizer"), label, err)) ||
        (st = parse_post(t, json_object_get(root, "post_processor"), label, err)) ||
        (st = make_decodings(t, json_object_get(root, "decoder"), label, err)))
        goto done;
    t->bos = h->n_prefix ? h->prefix[0] : -1;
    t->eos = guess_eos(h);
done:
    json_decref(root);
    return st;
}

void cq__hf_tok_free(cq__hf_tok *h) {
    if (!h) return;
    for (int i = 0; i < h->n_norm; i++) free(h->norm[i].a), free(h->norm[i].b);
    for (int i = 0; i < h->n_pre; i++) {
        pcre2_code_free(h->pre[i].re);
        free(h->pre[i].literal);
    }
    free(h->merges);
    free(h->added);
    free(h);
}

/* ---- encoding -------------------------------------------------------------------------------- */

/* Normalizes seg[0 .. n) into out. */
static bool normalize(const cq__hf_tok *h, const char *seg, size_t n, sbuf *out) {
    out->n = 0;
    if (!sb_put(out, seg, n)) return false;
    sbuf tmp = {0};
    for (int s = 0; s < h->n_norm; s++) {
        const norm_step *st = &h->norm[s];
        tmp.n = 0;
        bool ok = sb_put(&tmp, "", 0);
        if (st->kind == NORM_PREPEND) {
            if (out->n) ok = sb_put(&tmp, st->a, strlen(st->a)) && sb_put(&tmp, out->p, out->n);
        } else {
            size_t la = strlen(st->a), lb = strlen(st->b);
            for (size_t i = 0; ok && i < out->n;) {
                if (out->n - i >= la && !memcmp(out->p + i, st->a, la)) ok = sb_put(&tmp, st->b, lb), i += la;
                else ok = sb_put(&tmp, out->p + i, 1), i++;
            }
        }
        if (!ok) {
            free(tmp.p);
            return false;
        }
        sbuf sw = *out;
        *out = tmp, tmp = sw;
    }
    free(tmp.p);
    return true;
}

/* The matches of step st in b->p[r.off .. +r.len), as ranges of b. */
static bool find_matches(const pre_step *st, const sbuf *b, range r, ranges *m, pcre2_match_data *md) {
    m->n = 0;
    if (st->literal) {
        size_t ll = strlen(st->literal);
        for (size_t i = r.off; i + ll <= r.off + r.len;) {
            if (!memcmp(b->p + i, st->literal, ll)) {
                if (!rg_put(m, i, ll)) return false;
                i += ll;
            } else {
                i++;
            }
        }
        return true;
    }
    PCRE2_SIZE at = 0;
    const PCRE2_SPTR subject = (PCRE2_SPTR)(b->p + r.off);
    while (at < r.len) {
        int rc = pcre2_match(st->re, subject, r.len, at, 0, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) { /* an empty match: step over one character */
            size_t n;
            utf8_get(subject + at, r.len - at, &n);
            at += n;
            continue;
        }
        if (!rg_put(m, r.off + ov[0], ov[1] - ov[0])) return false;
        at = ov[1];
    }
    return true;
}

/* Splits piece r by the matches, by behavior, into out. */
static bool split_piece(range r, const ranges *m, split_behavior beh, ranges *out) {
    size_t at = r.off, end = r.off + r.len;
    size_t pending = SIZE_MAX; /* MERGED_WITH_NEXT: start of a match waiting for its gap */
    for (size_t i = 0; i <= m->n; i++) {
        size_t ms = i < m->n ? m->v[i].off : end, ml = i < m->n ? m->v[i].len : 0;
        size_t gap_start = pending != SIZE_MAX ? pending : at;
        pending = SIZE_MAX;
        bool ok = true;
        switch (beh) {
        case SPLIT_REMOVED: ok = rg_put(out, at, ms - at); break;
        case SPLIT_ISOLATED: ok = rg_put(out, gap_start, ms - gap_start) && rg_put(out, ms, ml); break;
        case SPLIT_WITH_PREVIOUS: ok = rg_put(out, gap_start, ms + ml - gap_start); break;
        case SPLIT_WITH_NEXT:
            ok = rg_put(out, gap_start, ms - gap_start);
            if (ml) pending = ms;
            break;
        case SPLIT_CONTIGUOUS:
            ok = rg_put(out, gap_start, ms - gap_start);
            if (ml) {
                size_t ce = ms + ml;
                while (i + 1 < m->n && m->v[i + 1].off == ce) ce += m->v[++i].len;
                ok = ok && rg_put(out, ms, ce - ms);
                ml = ce - ms;
            }
            break;
        }
        if (!ok) return false;
        at = ms + ml;
        if (i == m->n) break;
    }
    return true;
}

/* Runs one pre-tokenizer step over every piece: the text of b may be rewritten (ByteLevel's
 * mapping, Metaspace's replacement), so pieces are rebuilt into a new buffer. */
static bool pre_step_run(const pre_step *st, sbuf *b, ranges *pieces, bool first_segment, pcre2_match_data *md) {
    sbuf nb = {0};
    ranges np = {0}, m = {0}, parts = {0};
    bool ok = sb_put(&nb, "", 0);
    for (size_t k = 0; ok && k < pieces->n; k++) {
        range r = pieces->v[k];
        sbuf src = {0};
        ok = sb_put(&src, "", 0);
        if (st->kind == PRE_BYTELEVEL && st->add_prefix_space && k == 0 && r.len && b->p[r.off] != ' ')
            ok = ok && sb_put(&src, " ", 1);
        if (st->kind == PRE_METASPACE) {
            /* ' ' becomes the replacement first; then it is prepended unless the piece starts with one */
            bool starts = r.len && (b->p[r.off] == ' ' || (r.len >= strlen(st->replacement) &&
                                                           !memcmp(b->p + r.off, st->replacement, strlen(st->replacement))));
            if ((st->prepend == 2 || (st->prepend == 1 && first_segment && k == 0)) && !starts)
                ok = ok && sb_put(&src, st->replacement, strlen(st->replacement));
            for (size_t i = 0; ok && i < r.len; i++)
                ok = b->p[r.off + i] == ' ' ? sb_put(&src, st->replacement, strlen(st->replacement))
                                            : sb_put(&src, b->p + r.off + i, 1);
        } else {
            ok = ok && sb_put(&src, b->p + r.off, r.len);
        }
        range whole = {0, src.n};
        parts.n = 0;
        if (!ok) {
        } else if (st->kind == PRE_METASPACE) {
            if (st->split) {
                pre_step lit = {0};
                lit.literal = (char *)st->replacement;
                ok = find_matches(&lit, &src, whole, &m, md) && split_piece(whole, &m, SPLIT_WITH_NEXT, &parts);
            } else {
                ok = rg_put(&parts, 0, src.n);
            }
        } else if (st->kind == PRE_DIGITS) {
            ok = find_matches(st, &src, whole, &m, md) &&
                 split_piece(whole, &m, st->individual ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS, &parts);
        } else if (st->re || st->literal) {
            ok = find_matches(st, &src, whole, &m, md) &&
                 split_piece(whole, &m, st->kind == PRE_BYTELEVEL ? SPLIT_ISOLATED : st->behavior, &parts);
        } else {
            ok = rg_put(&parts, 0, src.n);
        }
        for (size_t j = 0; ok && j < parts.n; j++) {
            size_t start = nb.n;
            if (st->kind == PRE_BYTELEVEL) {
                for (size_t i = 0; ok && i < parts.v[j].len; i++) {
                    char u[4];
                    ok = sb_put(&nb, u, utf8_put((uint32_t)byte_to_cp((unsigned char)src.p[parts.v[j].off + i]), u));
                }
            } else {
                ok = sb_put(&nb, src.p + parts.v[j].off, parts.v[j].len);
            }
            ok = ok && rg_put(&np, start, nb.n - start);
        }
        free(src.p);
    }
    free(m.v);
    free(parts.v);
    if (!ok) {
        free(nb.p);
        free(np.v);
        return false;
    }
    free(b->p);
    free(pieces->v);
    *b = nb, *pieces = np;
    return true;
}

static bool hf_pair(const void *ctx, int32_t l, int32_t r, double *key, int32_t *merged) {
    const merge_slot *m = merge_get(ctx, l, r);
    if (!m) return false;
    *key = -(double)m->rank, *merged = m->merged;
    return true;
}

typedef struct {
    int32_t *v;
    int64_t n, cap;
} idvec;

static bool iv_put(idvec *o, int32_t id) {
    if (o->n == o->cap) {
        int64_t cap = o->cap ? o->cap * 2 : 256;
        int32_t *v = realloc(o->v, (size_t)cap * sizeof *v);
        if (!v) return false;
        o->v = v, o->cap = cap;
    }
    o->v[o->n++] = id;
    return true;
}

/* BPE on one piece, appending its ids to out. */
static bool bpe_piece(const cq_tokenizer *t, const char *p, size_t n, idvec *out, sbuf *tmp) {
    const cq__hf_tok *h = t->hf;
    tmp->n = 0;
    if (!sb_put(tmp, p, n)) return false;
    if (h->ignore_merges) {
        int32_t whole = id_of(t, tmp->p);
        if (whole >= 0) return iv_put(out, whole);
    }
    int64_t start = out->n;
    for (size_t at = 0, cl; at < n; at += cl) {
        utf8_get((const unsigned char *)p + at, n - at, &cl);
        char ch[8];
        memcpy(ch, p + at, cl);
        ch[cl] = 0;
        int32_t id = id_of(t, ch);
        if (id >= 0) {
            if (!iv_put(out, id)) return false;
            continue;
        }
        bool bytes = h->byte_fallback;
        for (size_t j = 0; bytes && j < cl; j++) bytes = h->byte_id[(unsigned char)p[at + j]] >= 0;
        if (bytes) {
            for (size_t j = 0; j < cl; j++)
                if (!iv_put(out, h->byte_id[(unsigned char)p[at + j]])) return false;
        } else if (h->unk >= 0) {
            if (!(h->fuse_unk && out->n > start && out->v[out->n - 1] == h->unk) && !iv_put(out, h->unk)) return false;
        } /* no unk token: the character is dropped, as the tokenizers library does */
    }
    int64_t m = cq__bpe_merge(out->v + start, out->n - start, hf_pair, h);
    if (m < 0) return false;
    out->n = start + m;
    return true;
}

/* The added token matching at text[i], longest first; NULL if none. */
static const added_token *added_at(const cq__hf_tok *h, const char *text, size_t len, size_t i) {
    const added_token *best = NULL;
    for (int a = 0; a < h->n_added; a++) {
        const added_token *x = &h->added[a];
        if (x->content[0] == text[i] && x->len <= len - i && (!best || x->len > best->len) &&
            !memcmp(text + i, x->content, x->len))
            best = x;
    }
    return best;
}

static bool encode_segment(const cq_tokenizer *t, const char *seg, size_t n, bool first, idvec *out,
                           pcre2_match_data *md) {
    const cq__hf_tok *h = t->hf;
    sbuf b = {0}, tmp = {0};
    ranges pieces = {0};
    bool ok = normalize(h, seg, n, &b) && rg_put(&pieces, 0, b.n);
    for (int s = 0; ok && s < h->n_pre; s++) ok = pre_step_run(&h->pre[s], &b, &pieces, first, md);
    for (size_t k = 0; ok && k < pieces.n; k++) ok = bpe_piece(t, b.p + pieces.v[k].off, pieces.v[k].len, out, &tmp);
    free(b.p);
    free(tmp.p);
    free(pieces.v);
    return ok;
}

cq_status cq__hf_tok_encode(const cq_tokenizer *t, const char *text, size_t len, bool add_special, int32_t **ids,
                            int64_t *n, cq_err *err) {
    const cq__hf_tok *h = t->hf;
    idvec out = {0};
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    bool ok = md != NULL;
    for (int i = 0; ok && add_special && i < h->n_prefix; i++) ok = iv_put(&out, h->prefix[i]);
    size_t seg = 0;
    for (size_t i = 0; ok && i <= len;) {
        const added_token *a = i < len ? added_at(h, text, len, i) : NULL;
        if (!a && i < len) {
            i++;
            continue;
        }
        if (i > seg) ok = encode_segment(t, text + seg, i - seg, seg == 0, &out, md);
        if (!a) break;
        ok = ok && iv_put(&out, a->id);
        i += a->len;
        seg = i;
    }
    for (int i = 0; ok && add_special && i < h->n_suffix; i++) ok = iv_put(&out, h->suffix[i]);
    pcre2_match_data_free(md);
    if (!ok) {
        free(out.v);
        return cq_err_set(err, CQ_E_NOMEM, "cq_tokenizer_encode: out of memory");
    }
    if (!out.v && !(out.v = malloc(sizeof(int32_t)))) return cq_err_set(err, CQ_E_NOMEM, "cq_tokenizer_encode: out of memory");
    *ids = out.v, *n = out.n;
    return CQ_OK;
}
