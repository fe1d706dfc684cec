/*
 * tokenizer.c - llama2.c's tokenizer (tok512.bin, tokenizer.bin): the file reader, SentencePiece
 * BPE encoding as llama2.c's encode() states it, and decoding. llama2.c rescans the whole
 * sequence for the best pair after every merge (quadratic); here the candidate pairs sit in a
 * heap ordered by (score desc, position asc), which picks the same pair at every step, so a
 * WikiText-sized text encodes in O(n log n). cquanto/lm.h states the rules.
 */
#include "core/internal.h"
#include "core/strmap.h"

#include <math.h>

#define TOK_MAX_FILE_BYTES ((size_t)64 << 20)
#define TOK_MAX_PIECE 65536
#define TOK_BOS 1
#define TOK_EOS 2

struct cq_tokenizer {
    int64_t n;
    char **piece;       /* n NUL-terminated pieces as stored */
    uint32_t *len;      /* their byte lengths */
    float *score;
    cq__strmap index;   /* piece -> id (the first id of a duplicated piece) */
    int32_t byte_base;  /* id of <0x00> when the 256 byte tokens follow it in order, else -1 */
    int32_t space;      /* id of " " (the dummy prefix), -1 if absent */
    uint32_t max_len;
    char bytes[256][2]; /* decoded byte tokens */
};

static bool rd(const uint8_t *d, size_t size, size_t *at, void *out, size_t n) {
    if (size - *at < n) return false;
    memcpy(out, d + *at, n);
    *at += n;
    return true;
}

void cq_tokenizer_free(cq_tokenizer *t) {
    if (!t) return;
    for (int64_t i = 0; t->piece && i < t->n; i++) free(t->piece[i]);
    free(t->piece);
    free(t->len);
    free(t->score);
    cq__strmap_free(&t->index);
    free(t);
}

/* "<0xXX>" with two upper-case hex digits: its byte, else -1. */
static int byte_piece(const char *p, uint32_t len) {
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

cq_status cq_tokenizer_parse(const void *data, size_t size, const char *label, cq_tokenizer **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__ARG(data);
    if (!label) label = "tokenizer";
    const uint8_t *d = data;
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
    t->n = n;
    t->max_len = (uint32_t)max_len;
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
    if (st) {
        cq_tokenizer_free(t);
        return st;
    }
    int64_t b0 = cq__strmap_get(&t->index, "<0x00>");
    t->byte_base = -1;
    if (b0 >= 0 && b0 + 256 <= n) {
        bool all = true;
        for (int b = 0; b < 256 && all; b++) all = byte_piece(t->piece[b0 + b], t->len[b0 + b]) == b;
        if (all) t->byte_base = (int32_t)b0;
    }
    for (int b = 0; b < 256; b++) t->bytes[b][0] = (char)b;
    t->space = (int32_t)cq__strmap_get(&t->index, " ");
    *out = t;
    return CQ_OK;
}

cq_status cq_tokenizer_load(const char *path, cq_tokenizer **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__ARG(path);
    char *text;
    size_t n;
    CQ__TRY(cq_fs_read_file(path, TOK_MAX_FILE_BYTES, &text, &n, err));
    cq_status st = cq_tokenizer_parse(text, n, path, out, err);
    free(text);
    return st;
}

int64_t cq_tokenizer_vocab_size(const cq_tokenizer *t) { return t ? t->n : 0; }
int32_t cq_tokenizer_bos(const cq_tokenizer *t) { return t ? TOK_BOS : -1; }
int32_t cq_tokenizer_eos(const cq_tokenizer *t) { return t ? TOK_EOS : -1; }

const char *cq_tokenizer_token(const cq_tokenizer *t, int32_t id, size_t *len) {
    if (!t || id < 0 || id >= t->n) return NULL;
    if (len) *len = t->len[id];
    return t->piece[id];
}

const char *cq_tokenizer_piece(const cq_tokenizer *t, int32_t prev, int32_t id, size_t *len) {
    if (!t || id < 0 || id >= t->n) return NULL;
    const char *p = t->piece[id];
    size_t n = t->len[id];
    int b = byte_piece(p, t->len[id]);
    if (id == TOK_BOS || id == TOK_EOS) {
        n = 0; /* control tokens (SentencePiece decodes them to nothing) */
    } else if (b >= 0) {
        p = t->bytes[b], n = 1;
    } else if (prev == TOK_BOS && n > 0 && p[0] == ' ') {
        p++, n--; /* SentencePiece strips the dummy prefix after BOS */
    }
    if (len) *len = n;
    return p;
}

cq_status cq_tokenizer_decode(const cq_tokenizer *t, const int32_t *ids, int64_t n, char **text, size_t *len,
                              cq_err *err) {
    CQ__ARG(t);
    CQ__ARG(text);
    *text = NULL;
    if (n < 0 || (n > 0 && !ids)) return cq_err_set(err, CQ_E_ARG, "cq_tokenizer_decode: no ids");
    size_t total = 0, pl;
    for (int64_t i = 0; i < n; i++) {
        if (!cq_tokenizer_piece(t, i ? ids[i - 1] : -1, ids[i], &pl))
            return cq_err_set(err, CQ_E_ARG, "cq_tokenizer_decode: id %d at %lld is not in 0..%lld", ids[i],
                              (long long)i, (long long)t->n - 1);
        total += pl;
    }
    char *s = cq__malloc(total + 1, err, "decoded text");
    if (!s) return CQ_E_NOMEM;
    size_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        const char *p = cq_tokenizer_piece(t, i ? ids[i - 1] : -1, ids[i], &pl);
        memcpy(s + at, p, pl);
        at += pl;
    }
    s[at] = 0;
    *text = s;
    if (len) *len = at;
    return CQ_OK;
}

/* ---- encoding -------------------------------------------------------------------------------
 * Symbols form a doubly linked list in text order; sym[i].pos (the byte offset of its first
 * character) orders them. A heap entry proposes merging symbol l with its right neighbour r
 * into `id`; it is stale once either symbol changed (merged away or grown), which the
 * generation counters detect. */
typedef struct {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    uint32_t gen;
    bool dead;
} tok_sym;

typedef struct {
    float score;
    int32_t l, r, id;
    uint32_t gl, gr;
} tok_cand;

/* a before b: higher score, then further left (llama2.c's first maximum). */
static inline bool cand_before(const tok_cand *a, const tok_cand *b) {
    return a->score > b->score || (a->score == b->score && a->l < b->l);
}

typedef struct {
    tok_cand *v;
    size_t n, cap;
} tok_heap;

static cq_status heap_push(tok_heap *h, tok_cand c, cq_err *err) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        tok_cand *v = realloc(h->v, cap * sizeof *v);
        if (!v) return cq_err_set(err, CQ_E_NOMEM, "cq_tokenizer_encode: out of memory");
        h->v = v, h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && cand_before(&c, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = c;
    return CQ_OK;
}

static tok_cand heap_pop(tok_heap *h) {
    tok_cand top = h->v[0], last = h->v[--h->n];
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

/* Proposes merging l with its right neighbour when the concatenation is a token. */
static cq_status propose(const cq_tokenizer *t, const tok_sym *s, int32_t l, char *buf, tok_heap *h, cq_err *err) {
    int32_t r = s[l].next;
    if (l < 0 || r < 0) return CQ_OK;
    uint32_t a = t->len[s[l].id], b = t->len[s[r].id];
    if (a + b > t->max_len) return CQ_OK; /* no token is longer */
    memcpy(buf, t->piece[s[l].id], a);
    memcpy(buf + a, t->piece[s[r].id], b);
    buf[a + b] = 0;
    int64_t id = cq__strmap_get(&t->index, buf);
    if (id < 0) return CQ_OK;
    tok_cand c = {t->score[id], l, r, (int32_t)id, s[l].gen, s[r].gen};
    return heap_push(h, c, err);
}

/* Length of the UTF-8 character at p (1 for a byte that does not start a valid one). */
static size_t utf8_len(const unsigned char *p, size_t left) {
    size_t n = p[0] < 0x80 ? 1 : (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 1;
    if (n > left) return 1;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 1;
    return n;
}

cq_status cq_tokenizer_encode(const cq_tokenizer *t, const char *text, size_t len, bool add_bos, int32_t **ids,
                              int64_t *n, cq_err *err) {
    CQ__ARG(t);
    CQ__ARG(ids);
    CQ__ARG(n);
    *ids = NULL, *n = 0;
    if (!text && len) return cq_err_set(err, CQ_E_ARG, "cq_tokenizer_encode: text is NULL");
    if (len > ((size_t)1 << 30)) return cq_err_set(err, CQ_E_ARG, "cq_tokenizer_encode: text of %zu bytes is too long", len);
    /* At most one symbol per byte, + the dummy prefix. */
    size_t cap = len + 2;
    tok_sym *s = cq__malloc(cap * sizeof *s, err, "tokenizer symbols");
    char *buf = s ? cq__malloc(2 * (size_t)t->max_len + 1, err, "tokenizer buffer") : NULL;
    int32_t *out = buf ? cq__malloc(cap * sizeof *out, err, "token ids") : NULL;
    if (!out) {
        free(s);
        free(buf);
        return CQ_E_NOMEM;
    }
    int32_t ns = 0;
    if (len > 0 && t->space >= 0) s[ns++] = (tok_sym){t->space, -1, -1, 0, false};
    const unsigned char *u = (const unsigned char *)text;
    cq_status st = CQ_OK;
    for (size_t i = 0; i < len;) {
        size_t cl = utf8_len(u + i, len - i);
        if (cl <= t->max_len) memcpy(buf, u + i, cl);
        buf[cl <= t->max_len ? cl : 0] = 0;
        int64_t id = memchr(u + i, 0, cl) ? -1 : cq__strmap_get(&t->index, buf);
        if (id >= 0) {
            s[ns++] = (tok_sym){(int32_t)id, -1, -1, 0, false};
        } else {
            for (size_t j = 0; j < cl; j++) /* byte fallback; <unk> (0) without byte tokens */
                s[ns++] = (tok_sym){t->byte_base >= 0 ? t->byte_base + u[i + j] : 0, -1, -1, 0, false};
        }
        i += cl;
    }
    for (int32_t i = 0; i < ns; i++) s[i].prev = i - 1, s[i].next = i + 1 < ns ? i + 1 : -1;
    tok_heap h = {0};
    for (int32_t i = 0; !st && i + 1 < ns; i++) st = propose(t, s, i, buf, &h, err);
    while (!st && h.n) {
        tok_cand c = heap_pop(&h);
        if (s[c.l].dead || s[c.r].dead || s[c.l].gen != c.gl || s[c.r].gen != c.gr || s[c.l].next != c.r) continue;
        s[c.l].id = c.id;
        s[c.l].gen++;
        s[c.r].dead = true;
        s[c.l].next = s[c.r].next;
        if (s[c.r].next >= 0) s[s[c.r].next].prev = c.l;
        st = propose(t, s, s[c.l].prev, buf, &h, err);
        if (!st) st = propose(t, s, c.l, buf, &h, err);
    }
    free(h.v);
    int64_t k = 0;
    if (!st) {
        if (add_bos) out[k++] = TOK_BOS;
        for (int32_t i = ns ? 0 : -1; i >= 0; i = s[i].next) out[k++] = s[i].id;
    }
    free(s);
    free(buf);
    if (st) {
        free(out);
        return st;
    }
    *ids = out, *n = k;
    return CQ_OK;
}
