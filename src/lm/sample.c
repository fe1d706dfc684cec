/*
 * sample.c - choosing the next token from logits: argmax at temperature 0, else softmax at the
 * temperature restricted to the top-k ids and the top-p nucleus, drawn from a seeded xorshift64* generator so a
 * seed reproduces a generation on every machine.
 */
#include "core/internal.h"

#include <math.h>

static double next_unit(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    *s = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) * 0x1p-53;
}

static int32_t argmax(const float *l, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return (int32_t)best;
}

typedef struct {
    double p;
    int32_t id;
} prob_id;

static int by_prob_desc(const void *a, const void *b) {
    const prob_id *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id - y->id;
}

int32_t cq_lm_sample(const float *logits, int64_t vocab, float temperature, int top_k, float top_p, uint64_t *rng) {
    if (!logits || vocab <= 0) return -1;
    if (!(temperature > 0.0f)) return argmax(logits, vocab);
    uint64_t local = 1;
    if (!rng) rng = &local;
    float mx = logits[argmax(logits, vocab)];
    prob_id *p = malloc((size_t)vocab * sizeof *p);
    if (!p) return argmax(logits, vocab); /* no memory to sample: the most likely token */
    double sum = 0.0;
    for (int64_t i = 0; i < vocab; i++) {
        p[i].p = exp((double)(logits[i] - mx) / (double)temperature);
        p[i].id = (int32_t)i;
        sum += p[i].p;
    }
    int64_t keep = vocab;
    bool cut_k = top_k > 0 && top_k < vocab, cut_p = top_p > 0.0f && top_p < 1.0f;
    if (cut_k || cut_p) {
        qsort(p, (size_t)vocab, sizeof *p, by_prob_desc);
        if (cut_k) {
            keep = top_k;
            sum = 0.0;
            for (int64_t i = 0; i < keep; i++) sum += p[i].p;
        }
        if (cut_p) {
            double mass = 0.0;
            int64_t k = 0;
            while (k < keep) {
                mass += p[k++].p / sum;
                if (mass >= top_p) break;
            }
            keep = k;
        }
        sum = 0.0;
        for (int64_t i = 0; i < keep; i++) sum += p[i].p;
    }
    double r = next_unit(rng) * sum, c = 0.0;
    int32_t id = p[keep - 1].id;
    for (int64_t i = 0; i < keep; i++) {
        c += p[i].p;
        if (r < c) {
            id = p[i].id;
            break;
        }
    }
    free(p);
    return id;
}
