/*
 * eval.c - perplexity and KL divergence by llama.cpp's protocol (cquanto/lm.h states it). Each
 * chunk's scored positions are turned into per-position values (NLL, KLD, ...) in parallel, then
 * summed one by one in position order, so the thread count never changes a result.
 */
#include "lm/lm_internal.h"

#include <math.h>

cq_ppl_opts cq_ppl_default_opts(void) {
    cq_ppl_opts o = {0, 0, -1, NULL, NULL};
    return o;
}

/* log(sum exp(l)) of one row, in double around its maximum; *arg gets the argmax. */
static double log_sum_exp(const float *l, int64_t n, int64_t *arg) {
    int64_t a = 0;
    for (int64_t i = 1; i < n; i++)
        if (l[i] > l[a]) a = i;
    double mx = l[a], s = 0.0;
    for (int64_t i = 0; i < n; i++) s += exp((double)l[i] - mx);
    *arg = a;
    return mx + log(s);
}

typedef struct {
    double nll, nll_base, kld, dp;
    bool same_top;
} position_stats;

static void score_position(const float *lq, const float *lb, int64_t V, int32_t target, position_stats *p) {
    int64_t aq, ab = 0;
    double zq = log_sum_exp(lq, V, &aq);
    p->nll = zq - (double)lq[target];
    if (!lb) return;
    double zb = log_sum_exp(lb, V, &ab);
    p->nll_base = zb - (double)lb[target];
    double kld = 0.0;
    for (int64_t i = 0; i < V; i++) {
        double lpb = (double)lb[i] - zb;
        kld += exp(lpb) * (lpb - ((double)lq[i] - zq));
    }
    p->kld = kld > 0.0 ? kld : 0.0; /* rounding can leave a tiny negative for identical rows */
    p->dp = exp(-p->nll) - exp(-p->nll_base);
    p->same_top = aq == ab;
}

/* Mean and standard error of the mean from a sum and a sum of squares of n values. */
static void mean_err(double s, double s2, int64_t n, double *mean, double *err) {
    *mean = s / (double)n;
    double var = s2 / (double)n - *mean * *mean;
    *err = n > 1 && var > 0.0 ? sqrt(var / (double)(n - 1)) : 0.0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* llama.cpp's percentile: linear interpolation between the sorted values around f * (n - 1). */
static double percentile(const double *v, int64_t n, double f) {
    double p = f * (double)(n - 1);
    int64_t i = (int64_t)p;
    double t = p - (double)i;
    return i + 1 < n ? (1.0 - t) * v[i] + t * v[i + 1] : v[n - 1];
}

cq_status cq_lm_perplexity(cq_lm *lm, cq_lm *base, const int32_t *tokens, int64_t n, const cq_ppl_opts *opts,
                           cq_ppl_result *out, cq_err *err) {
    CQ__ARG(lm);
    CQ__ARG(tokens);
    CQ__ARG(out);
    memset(out, 0, sizeof *out);
    cq_ppl_opts o = opts ? *opts : cq_ppl_default_opts();
    int64_t ctx = o.n_ctx > 0 ? o.n_ctx : lm->context < 512 ? lm->context : 512;
    if (ctx < 4 || ctx > lm->context || (base && ctx > base->context))
        return cq_err_set(err, CQ_E_ARG, "perplexity: a context of %lld tokens is outside 4..%lld", (long long)ctx,
                          (long long)(base && base->context < lm->context ? base->context : lm->context));
    if (base && base->vocab != lm->vocab)
        return cq_err_set(err, CQ_E_ARG, "perplexity: the base model has %lld tokens in its vocabulary, the model %lld",
                          (long long)base->vocab, (long long)lm->vocab);
    if (n < 2 * ctx)
        return cq_err_set(err, CQ_E_ARG, "perplexity: %lld tokens; a context of %lld needs at least %lld", (long long)n,
                          (long long)ctx, (long long)(2 * ctx));
    if (o.bos >= lm->vocab) return cq_err_set(err, CQ_E_ARG, "perplexity: BOS %d is outside the vocabulary", o.bos);
    int64_t chunks = n / ctx;
    if (o.max_chunks > 0 && o.max_chunks < chunks) chunks = o.max_chunks;
    int64_t first = ctx / 2, per = ctx - 1 - first, V = lm->vocab;
    size_t rows = (size_t)(ctx - first) * (size_t)V;
    float *lq = cq__malloc(rows * sizeof(float), err, "logits");
    float *lb = base && lq ? cq__malloc(rows * sizeof(float), err, "base logits") : NULL;
    int32_t *ids = (lq && (!base || lb)) ? cq__malloc((size_t)ctx * sizeof(int32_t), err, "chunk") : NULL;
    position_stats *ps = ids ? cq__calloc((size_t)per, sizeof *ps, err, "scores") : NULL;
    double *klds = ps && base ? cq__malloc((size_t)(chunks * per) * sizeof(double), err, "KL values") : NULL;
    cq_status st = (!ps || (base && !klds)) ? CQ_E_NOMEM : CQ_OK;
    double s_nll = 0, s_nll2 = 0, s_b = 0, s_b2 = 0, s_d = 0, s_d2 = 0, s_k = 0, s_k2 = 0, s_dp = 0, s_dp2 = 0;
    int64_t count = 0, same = 0;
    for (int64_t c = 0; !st && c < chunks; c++) {
        memcpy(ids, tokens + c * ctx, (size_t)ctx * sizeof(int32_t));
        if (o.bos >= 0) ids[0] = o.bos;
        cq_lm_reset(lm);
        st = cq_lm_forward(lm, ids, ctx, lq, first, err);
        if (!st && base) {
            cq_lm_reset(base);
            st = cq_lm_forward(base, ids, ctx, lb, first, err);
        }
        if (st) break;
        int nt = per * V < 65536 ? 1 : cq_get_num_threads();
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t j = 0; j < per; j++)
            score_position(lq + (size_t)j * (size_t)V, base ? lb + (size_t)j * (size_t)V : NULL, V,
                           tokens[c * ctx + first + j + 1], &ps[j]);
        for (int64_t j = 0; j < per; j++) {
            const position_stats *p = &ps[j];
            s_nll += p->nll, s_nll2 += p->nll * p->nll;
            if (base) {
                double d = p->nll - p->nll_base;
                s_b += p->nll_base, s_b2 += p->nll_base * p->nll_base;
                s_d += d, s_d2 += d * d;
                s_k += p->kld, s_k2 += p->kld * p->kld;
                s_dp += p->dp, s_dp2 += p->dp * p->dp;
                same += p->same_top;
                klds[count] = p->kld;
            }
            count++;
        }
        if (o.progress) o.progress(o.user, c + 1, chunks, exp(s_nll / (double)count));
    }
    if (!st) {
        double m;
        out->n_ctx = ctx, out->chunks = chunks, out->scored = count;
        mean_err(s_nll, s_nll2, count, &m, &out->ppl_err);
        out->ppl = exp(m);
        out->ppl_err *= out->ppl;
        if (base) {
            mean_err(s_b, s_b2, count, &m, &out->base_ppl_err);
            out->base_ppl = exp(m);
            out->base_ppl_err *= out->base_ppl;
            mean_err(s_d, s_d2, count, &out->ln_ratio, &out->ln_ratio_err);
            mean_err(s_k, s_k2, count, &out->kld, &out->kld_err);
            mean_err(s_dp, s_dp2, count, &out->dp_mean, &m);
            out->dp_rms = sqrt(s_dp2 / (double)count);
            out->same_top = (double)same / (double)count;
            qsort(klds, (size_t)count, sizeof *klds, cmp_double);
            out->kld_max = klds[count - 1];
            out->kld_p999 = percentile(klds, count, 0.999);
            out->kld_p99 = percentile(klds, count, 0.99);
            out->kld_p90 = percentile(klds, count, 0.90);
            out->kld_median = percentile(klds, count, 0.5);
        }
    }
    free(lq);
    free(lb);
    free(ids);
    free(ps);
    free(klds);
    return st;
}
