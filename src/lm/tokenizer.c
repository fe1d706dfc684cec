/*
 * tokenizer.c - the tokenizer object both formats fill (cquanto/lm.h), decoding, the BPE merge
 * engine, and llama2.c's format (tok512.bin, tokenizer.bin) with its encode(). llama2.c rescans
 * the whole sequence for the best pair after every merge (quadratic); the engine here keeps the
 * candidate pairs in a heap ordered by (priority desc, position asc), which picks the same pair
 * at every step, so a WikiText-sized text encodes in O(n log n). Hugging Face's tokenizer.json
 * is tokenizer_hf.c.
 */
#include "lm/tokenizer_internal.h"
#include "convert/gguf_hf.h" /* a .gguf carries its tokenizer in metadata */

#include <math.h>

#define TOK_MAX_FILE_BYTES ((size_t)64 << 20)
#define TOK_MAX_PIECE 65536
#define TOK_BOS 1
#define TOK_EOS 2

static bool rd(const uint8_t *d, size_t size, size_t *at, void *out, size_t n) {
    if (size - *at < n) return false;
    memcpy(out, d + *at, n);
    *at += n;
    return true;
}

void cq_tokenizer_free(cq_tokenizer *t) {
    if (!t) return;
    for (int64_t i = 0; i < t->n; i++) {
        if (t->dec && (!t->piece || t->dec[i] != t->piece[i])) free(t->dec[i]); /* llama2.c shares most */
        if (t->piece) free(t->piece[i]);
    }
    free(t->piece);
    free(t->len);
    free(t->dec);
    free(t->dec_len);
    free(t->control);
    free(t->score);
    cq__strmap_free(&t->index);
    cq__hf_tok_free(t->hf);
    free(t);
}

int cq__tok_byte_piece(const char *p, size_t len) {
    if (len != 6 || memcmp(p, "<0x", 3) || p[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = p[i];
        int h = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* ---- llama2.c's tokenizer.bin ------------------------------------------------------------- */

/* Decoded bytes of each piece: byte tokens are their byte, BOS and EOS nothing, others as stored
 * (sharing the piece's memory). */
static cq_status llama2c_decodings(cq_tokenizer *t, cq_err *err) {
    t->dec = cq__calloc((size_t)t->n, sizeof *t->dec, err, "tokenizer decodings");
    t->dec_len = t->dec ? cq__calloc((size_t)t->n, sizeof *t->dec_len, err, "tokenizer decodings") : NULL;
    t->control = t->dec_len ? cq__calloc((size_t)t->n, sizeof *t->control, err, "tokenizer decodings") : NULL;
    if (!t->control) return CQ_E_NOMEM;
    for (int64_t i = 0; i < t->n; i++) {
        int b = cq__tok_byte_piece(t->piece[i], t->len[i]);
        t->control[i] = i == TOK_BOS || i == TOK_EOS;
        if (b >= 0) {
            t->dec[i] = cq__malloc(2, err, "tokenizer decodings");
            if (!t->dec[i]) return CQ_E_NOMEM;
            t->dec[i][0] = (char)b, t->dec[i][1] = 0, t->dec_len[i] = 1;
        } else {
            t->dec[i] = t->piece[i], t->dec_len[i] = t->control[i] ? 0 : t->len[i];
        }
    }
    return CQ_OK;
}

static cq_status llama2c_parse(const uint8_t *d, size_t size, const char *label, cq_tokenizer **out, cq_err *err) {
    size_t at = 0;
    int32_t max_len;
    if (!rd(d, size, &at, &max_len, 4) || max_len < 1 || max_len > TOK_MAX_PIECE)
        return cq_err_set(err, CQ_E_FORMAT, "%s: not a llama2.c tokenizer (max_token_length %s)", label,
                          size < 4 ? "missing" : "out of range");
    /* Count the records first, so every array is allocated once. */
    int64_t n = 0;
    for (size_t p = at; p < size; n++) {
        int32_t len;
        if (size - p < 8) return cq_err_set(err, CQ_E_FORMAT, "%s: token %lld: record truncated", label, (long long)n);
        memcpy(&len, d + p + 4, 4);
        if (len < 0 || len > TOK_MAX_PIECE || (size_t)len > size - p - 8)
            return cq_err_set(err, CQ_E_FORMAT, "%s: token %lld: length %d %s", label, (long long)n, len,
                              len < 0 || len > TOK_MAX_PIECE ? "out of range" : "runs past the end of the file");
        p += 8 + (size_t)len;
    }
    if (n < 3 || n > INT32_MAX)
        return cq_err_set(err, CQ_E_FORMAT, "%s: %lld tokens (a vocabulary needs <unk>, BOS and EOS)", label,
                          (long long)n);
    cq_tokenizer *t = cq__calloc(1, sizeof *t, err, "tokenizer");
    if (!t) return CQ_E_NOMEM;
    t->kind = CQ__TOK_LLAMA2C;
    t->n = n;
    t->max_len = (uint32_t)max_len;
    t->bos = TOK_BOS, t->eos = TOK_EOS;
    t->strip_after_bos = true;
    t->piece = cq__calloc((size_t)n, sizeof *t->piece, err, "tokenizer pieces");
    t->len = t->piece ? cq__calloc((size_t)n, sizeof *t->len, err, "tokenizer lengths") : NULL;
    t->score = t->len ? cq__calloc((size_t)n, sizeof *t->score, err, "tokenizer scores") : NULL;
    cq_status st = t->score ? cq__strmap_reserve(&t->index, (size_t)n, err) : CQ_E_NOMEM;
    for (int64_t i = 0; !st && i < n; i++) {
        int32_t len = 0;
        rd(d, size, &at, &t->score[i], 4);
        rd(d, size, &at, &len, 4);
        if (!isfinite(t->score[i])) {
            st = cq_err_set(err, CQ_E_FORMAT, "%s: token %lld: score is not finite", label, (long long)i);
            break;
        }
        if (memchr(d + at, 0, (size_t)len)) {
            st = cq_err_set(err, CQ_E_FORMAT, "%s: token %lld: piece holds a NUL byte", label, (long long)i);
            break;
        }
        t->piece[i] = cq__malloc((size_t)len + 1, err, "tokenizer piece");
        if (!t->piece[i]) {
            st = CQ_E_NOMEM;
            break;
        }
        rd(d, size, &at, t->piece[i], (size_t)len);
        t->piece[i][len] = 0;
        t->len[i] = (uint32_t)len;
        if (len > 0) st = cq__strmap_put(&t->index, t->piece[i], i, NULL, err);
    }
    if (!st) st = llama2c_decodings(t, err);
    if (st) {
        cq_tokenizer_free(t);
        return st;
    }
    int64_t b0 = cq__strmap_get(&t->index, "<0x00>");
    t->byte_base = -1;
    if (b0 >= 0 && b0 + 256 <= n) {
        bool all = true;
        for (int b = 0; b < 256 && all; b++) all = cq__tok_byte_piece(t->piece[b0 + b], t->len[b0 + b]) == b;
        if (all) t->byte_base = (int32_t)b0;
    }
    t->space = (int32_t)cq__strmap_get(&t->index, " ");
    *out = t;
    return CQ_OK;
}

cq_status cq_tokenizer_parse(const void *data, size_t size, const char *label, cq_tokenizer **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__ARG(data);
    if (!label) label = "tokenizer";
    const char *s = data;
    size_t i = 0;
    while (i < size && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++;
    if (i < size && s[i] == '{') { /* tokenizer.json (a llama2.c file starts with a small int32) */
        cq_tokenizer *t = cq__calloc(1, sizeof *t, err, "tokenizer");
        if (!t) return CQ_E_NOMEM;
        t->kind = CQ__TOK_HF_BPE;
        cq_status st = cq__hf_tok_parse(t, s, size, label, err);
        if (st) {
            cq_tokenizer_free(t);
            return st;
        }
        *out = t;
        return CQ_OK;
    }
    return llama2c_parse(data, size, label, out, err);
}

cq_status cq_tokenizer_load(const char *path, cq_tokenizer **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__ARG(path);
    if (cq__is_gguf_file(path)) { /* the tokenizer.json `cquanto convert` would write */
        cq__gguf_hf *g = NULL;
        CQ__TRY(cq__gguf_hf_open(path, CQ_DTYPE_INVALID, &g, err));
        const char *json = cq__gguf_hf_tokenizer(g);
        cq_status st = json ? cq_tokenizer_parse(json, strlen(json), path, out, err)
                            : cq_err_set(err, CQ_E_NOTFOUND, "%s: the file has no tokenizer (tokenizer.ggml.model)", path);
        cq__gguf_hf_free(g);
        return st;
    }
    char *text;
    size_t n;
    CQ__TRY(cq_fs_read_file(path, TOK_MAX_FILE_BYTES, &text, &n, err));
    cq_status st = cq_tokenizer_parse(text, n, path, out, err);
    free(text);
    return st;
}

int64_t cq_tokenizer_vocab_size(const cq_tokenizer *t) { return t ? t->n : 0; }
int32_t cq_tokenizer_bos(const cq_tokenizer *t) { return t ? t->bos : -1; }
int32_t cq_tokenizer_eos(const cq_tokenizer *t) { return t ? t->eos : -1; }

const char *cq_tokenizer_token(const cq_tokenizer *t, int32_t id, size_t *len) {
    if (!t || id < 0 || id >= t->n || !t->piece[id]) return NULL;
    if (len) *len = t->len[id];
    return t->piece[id];
}

/* Decoded bytes of id; at_start: no token with a decoding has come before it (the Strip and
 * Metaspace decoders drop one leading space there), after_bos: it follows BOS. */
static const char *piece_at(const cq_tokenizer *t, int32_t id, bool at_start, bool after_bos, size_t *len) {
    if (id < 0 || id >= t->n || !t->dec[id]) return NULL;
    const char *p = t->dec[id];
    size_t n = t->dec_len[id];
    bool strip = t->strip_after_bos ? after_bos : t->strip_at_start && at_start && !t->control[id];
    if (strip && n > 0 && p[0] == ' ') p++, n--;
    *len = n;
    return p;
}

const char *cq_tokenizer_piece(const cq_tokenizer *t, int32_t prev, int32_t id, size_t *len) {
    if (!t) return NULL;
    size_t n;
    const char *p = piece_at(t, id, prev < 0 || (prev == t->bos && t->bos >= 0), prev == t->bos && prev >= 0, &n);
    if (p && len) *len = n;
    return p;
}

cq_status cq_tokenizer_decode(const cq_tokenizer *t, const int32_t *ids, int64_t n, char **text, size_t *len,
                              cq_err *err) {
    CQ__ARG(t);
    CQ__ARG(text);
    *text = NULL;
    if (n < 0 || (n > 0 && !ids)) return cq_err_set(err, CQ_E_ARG, "cq_tokenizer_decode: no ids");
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->n || !t->dec[ids[i]])
            return cq_err_set(err, CQ_E_ARG, "cq_tokenizer_decode: id %d at %lld is not a token (0..%lld)", ids[i],
                              (long long)i, (long long)t->n - 1);
    char *s = NULL;
    size_t total = 0, pl = 0;
    for (int pass = 0; pass < 2; pass++) { /* sizes, then bytes */
        size_t at = 0;
        bool start = true;
        for (int64_t i = 0; i < n; i++) {
            const char *p = piece_at(t, ids[i], start, i > 0 && ids[i - 1] == t->bos, &pl);
            if (pass) memcpy(s + at, p, pl);
            at += pl;
            start = start && t->control[ids[i]];
        }
        if (!pass) {
            total = at;
            if (!(s = cq__malloc(total + 1, err, "decoded text"))) return CQ_E_NOMEM;
        }
    }
    s[total] = 0;
    *text = s;
    if (len) *len = total;
    return CQ_OK;
}

/* ---- the BPE merge engine ------------------------------------------------------------------
 * Symbols form a doubly linked list in text order; a symbol's index orders it. A heap entry
 * proposes merging symbol l with its right neighbour r; it is stale once either changed (merged
 * away or grown), which the generation counters detect. */
typedef struct {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    uint32_t gen;
    bool dead;
} bpe_sym;

typedef struct {
    double key;
    int32_t l, r, id;
    uint32_t gl, gr;
} bpe_cand;

/* a before b: higher key, then further left. */
static inline bool cand_before(const bpe_cand *a, const bpe_cand *b) {
    return a->key > b->key || (a->key == b->key && a->l < b->l);
}

typedef struct {
    bpe_cand *v;
    size_t n, cap;
} bpe_heap;

static bool heap_push(bpe_heap *h, bpe_cand c) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        bpe_cand *v = realloc(h->v, cap * sizeof *v);
        if (!v) return false;
        h->v = v, h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && cand_before(&c, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = c;
    return true;
}

static bpe_cand heap_pop(bpe_heap *h) {
    bpe_cand top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && cand_before(&h->v[c + 1], &h->v[c])) c++;
        if (!cand_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static bool propose(const bpe_sym *s, int32_t l, cq__bpe_pair_fn pair, const void *ctx, bpe_heap *h) {
    if (l < 0 || s[l].next < 0) return true;
    int32_t r = s[l].next, merged;
    double key;
    if (!pair(ctx, s[l].id, s[r].id, &key, &merged)) return true;
    bpe_cand c = {key, l, r, merged, s[l].gen, s[r].gen};
    return heap_push(h, c);
}

int64_t cq__bpe_merge(int32_t *ids, int64_t n, cq__bpe_pair_fn pair, const void *ctx) {
    if (n < 2) return n;
    bpe_sym *s = malloc((size_t)n * sizeof *s);
    if (!s) return -1;
    for (int64_t i = 0; i < n; i++) s[i] = (bpe_sym){ids[i], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, 0, false};
    bpe_heap h = {0};
    bool ok = true;
    for (int32_t i = 0; ok && i + 1 < n; i++) ok = propose(s, i, pair, ctx, &h);
    while (ok && h.n) {
        bpe_cand c = heap_pop(&h);
        if (s[c.l].dead || s[c.r].dead || s[c.l].gen != c.gl || s[c.r].gen != c.gr || s[c.l].next != c.r) continue;
        s[c.l].id = c.id;
        s[c.l].gen++;
        s[c.r].dead = true;
        s[c.l].next = s[c.r].next;
        if (s[c.r].next >= 0) s[s[c.r].next].prev = c.l;
        ok = propose(s, s[c.l].prev, pair, ctx, &h) && propose(s, c.l, pair, ctx, &h);
    }
    free(h.v);
    int64_t k = 0;
    for (int32_t i = 0; ok && i >= 0; i = s[i].next) ids[k++] = s[i].id;
    free(s);
    return ok ? k : -1;
}

/* ---- llama2.c's encode() ------------------------------------------------------------------- */

typedef struct {
    const cq_tokenizer *t;
    char *buf; /* 2 * max_len + 1 */
} llama2c_ctx;

/* Merge when the concatenation of the two pieces is a token; its score is the priority. */
static bool llama2c_pair(const void *ctx, int32_t l, int32_t r, double *key, int32_t *merged) {
    const llama2c_ctx *c = ctx;
    const cq_tokenizer *t = c->t;
    uint32_t a = t->len[l], b = t->len[r];
    if (a + b > t->max_len) return false; /* no token is longer */
    memcpy(c->buf, t->piece[l], a);
    memcpy(c->buf + a, t->piece[r], b);
    c->buf[a + b] = 0;
    int64_t id = cq__strmap_get(&t->index, c->buf);
    if (id < 0) return false;
    *key = t->score[id], *merged = (int32_t)id;
    return true;
}

/* Length of the UTF-8 character at p (1 for a byte that does not start a valid one). */
static size_t utf8_len(const unsigned char *p, size_t left) {
    size_t n = p[0] < 0x80 ? 1 : (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 1;
    if (n > left) return 1;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 1;
    return n;
}

static cq_status llama2c_encode(const cq_tokenizer *t, const char *text, size_t len, bool add_bos, int32_t **ids,
                                int64_t *n, cq_err *err) {
    /* At most one symbol per byte, + the dummy prefix and BOS. */
    size_t cap = len + 2;
    int32_t *out = cq__malloc(cap * sizeof *out, err, "token ids");
    char *buf = out ? cq__malloc(2 * (size_t)t->max_len + 1, err, "tokenizer buffer") : NULL;
    if (!buf) {
        free(out);
        return CQ_E_NOMEM;
    }
    int64_t k = add_bos ? 1 : 0, start = k;
    if (add_bos) out[0] = TOK_BOS;
    if (len > 0 && t->space >= 0) out[k++] = t->space;
    const unsigned char *u = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        size_t cl = utf8_len(u + i, len - i);
        if (cl <= t->max_len) memcpy(buf, u + i, cl);
        buf[cl <= t->max_len ? cl : 0] = 0;
        int64_t id = memchr(u + i, 0, cl) ? -1 : cq__strmap_get(&t->index, buf);
        if (id >= 0) {
            out[k++] = (int32_t)id;
        } else {
            for (size_t j = 0; j < cl; j++) /* byte fallback; <unk> (0) without byte tokens */
                out[k++] = t->byte_base >= 0 ? t->byte_base + u[i + j] : 0;
        }
        i += cl;
    }
    llama2c_ctx ctx = {t, buf};
    int64_t m = cq__bpe_merge(out + start, k - start, llama2c_pair, &ctx);
    free(buf);
    if (m < 0) {
        free(out);
        return cq_err_set(err, CQ_E_NOMEM, "cq_tokenizer_encode: out of memory");
    }
    *ids = out, *n = start + m;
    return CQ_OK;
}

cq_status cq_tokenizer_encode(const cq_tokenizer *t, const char *text, size_t len, bool add_bos, int32_t **ids,
                              int64_t *n, cq_err *err) {
    CQ__ARG(t);
    CQ__ARG(ids);
    CQ__ARG(n);
    *ids = NULL, *n = 0;
    if (!text && len) return cq_err_set(err, CQ_E_ARG, "cq_tokenizer_encode: text is NULL");
    if (len > ((size_t)1 << 30)) return cq_err_set(err, CQ_E_ARG, "cq_tokenizer_encode: text of %zu bytes is too long", len);
    if (t->kind == CQ__TOK_HF_BPE) return cq__hf_tok_encode(t, text ? text : "", len, add_bos, ids, n, err);
    return llama2c_encode(t, text, len, add_bos, ids, n, err);
}
