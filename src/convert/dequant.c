/*
 * dequant.c - cq_convert_dequantize: an optimum-quanto checkpoint (ours or quanto's) back to one
 * float safetensors file. Each module quanto_qmap.json quantizes becomes "<m>.weight" in its
 * scale dtype, placed where its state first appeared; activation scales are dropped; every other
 * tensor is copied. Weights are dequantized whole (one per thread at a time) by src/quant and
 * written in checkpoint order on the ordered pipeline, so the output never depends on threads.
 */
#include "convert_internal.h"

#define COPY_ITEM_BYTES ((size_t)8 << 20)

typedef struct deq_item {
    int64_t tensor; /* checkpoint index of a copied tensor, or -1 */
    int64_t module; /* module to dequantize, or -1 */
    int64_t a, b;   /* byte range of a copy */
} deq_item;

typedef struct deq_job {
    const cq_ckpt *ckpt;
    const cq__qmodules *qm;
    const cq_convert_opts *opts;
    cq_st_writer *w;
    deq_item *items;
    int64_t n_items;
    int64_t done, total;
    uint64_t bytes_done, bytes_total;
    double t0;
    cq_convert_stats *stats;
} deq_job;

static char *weight_name(const cq__qmodule *m) {
    size_t n = strlen(m->prefix) + sizeof "weight";
    char *s = malloc(n);
    if (s) snprintf(s, n, "%sweight", m->prefix);
    return s;
}

static cq_status deq_compute(void *ctx, int64_t i, void **result, cq_err *err) {
    deq_job *j = ctx;
    const deq_item *it = &j->items[i];
    if (it->module < 0) return CQ_OK;
    const cq__qmodule *m = &j->qm->mods[it->module];
    cq_qweight *qw = NULL;
    cq_tensor *w = NULL;
    cq_status s = cq__qmodule_weight(j->ckpt, m, &qw, err);
    if (!s && (s = cq_qweight_dequantize(qw, CQ_DTYPE_INVALID, &w, err))) cq_err_prefix(err, s, "%s: ", m->module);
    cq_qweight_free(qw);
    cq__ckpt_release(j->ckpt, m->data_idx, 0, UINT64_MAX);
    *result = w;
    return s;
}

static void deq_free(void *ctx, int64_t i, void *result) {
    CQ_UNUSED(ctx);
    CQ_UNUSED(i);
    cq_tensor_free(result);
}

static void progress(deq_job *j, const char *name, uint64_t bytes) {
    j->done++;
    j->bytes_done += bytes;
    cq__report_progress(j->opts, j->done, j->total, j->bytes_done, j->bytes_total, j->t0, name);
}

static cq_status deq_write(void *ctx, int64_t i, void *result, cq_err *err) {
    deq_job *j = ctx;
    const deq_item *it = &j->items[i];
    if (it->module >= 0) {
        const cq__qmodule *m = &j->qm->mods[it->module];
        char *name = weight_name(m);
        if (!name) return cq_err_set(err, CQ_E_NOMEM, "out of memory");
        cq_status s = cq_st_writer_write_tensor(j->w, name, result, err);
        if (!s) {
            j->stats->modules++;
            j->stats->weights += cq_tensor_numel(result);
            j->stats->bytes_out += cq_tensor_nbytes(result);
            progress(j, name, cq_tensor_nbytes(cq_ckpt_tensor(j->ckpt, m->data_idx)));
        }
        free(name);
        return s;
    }
    const char *name = cq_ckpt_name(j->ckpt, it->tensor);
    const uint8_t *src = cq_ckpt_tensor(j->ckpt, it->tensor)->data;
    cq_status s = cq_st_writer_write(j->w, name, src + it->a, (size_t)(it->b - it->a), err);
    uint64_t nb = cq_tensor_nbytes(cq_ckpt_tensor(j->ckpt, it->tensor));
    if (!s && (uint64_t)it->b == nb) {
        cq__ckpt_release(j->ckpt, it->tensor, 0, UINT64_MAX);
        j->stats->bytes_out += nb;
        progress(j, name, nb);
    }
    return s;
}

static cq_status push(deq_job *j, int64_t *cap, deq_item item, cq_err *err) {
    if (j->n_items == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        deq_item *p = realloc(j->items, (size_t)*cap * sizeof *p);
        if (!p) return cq_err_set(err, CQ_E_NOMEM, "out of memory");
        j->items = p;
    }
    j->items[j->n_items++] = item;
    return CQ_OK;
}

/* Declares the output and lists the work in checkpoint order. */
static cq_status plan_output(deq_job *j, cq_err *err) {
    const cq_ckpt *c = j->ckpt;
    int64_t n = cq_ckpt_count(c), cap = 0;
    bool *placed = cq__calloc((size_t)(j->qm->n ? j->qm->n : 1), sizeof *placed, err, "a module map");
    if (!placed) return CQ_E_NOMEM;
    cq_status s = cq_st_writer_add_metadata(j->w, "format", "pt", err);
    for (int64_t i = 0; !s && i < n; i++) {
        int64_t o = j->qm->owner[i];
        const cq_tensor *t = cq_ckpt_tensor(c, i);
        j->bytes_total += cq_tensor_nbytes(t);
        if (o < 0) {
            s = cq_st_writer_declare(j->w, cq_ckpt_name(c, i), t->dtype, t->ndim, t->shape, err);
            int64_t nb = (int64_t)cq_tensor_nbytes(t);
            for (int64_t a = 0; !s && (a < nb || (a == 0 && nb == 0)); a += (int64_t)COPY_ITEM_BYTES)
                s = push(j, &cap,
                         (deq_item){i, -1, a, a + (int64_t)COPY_ITEM_BYTES < nb ? a + (int64_t)COPY_ITEM_BYTES : nb}, err);
            j->total++;
            continue;
        }
        const cq__qmodule *m = &j->qm->mods[o];
        if (placed[o] || !cq_qtype_get(m->weights)) continue; /* activation scales are dropped */
        placed[o] = true;
        char *name = weight_name(m);
        if (!name) s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
        cq_dtype dt = cq_ckpt_tensor(c, m->scale_idx)->dtype;
        if (!s) s = cq_st_writer_declare(j->w, name, dt, m->ndim, m->shape, err);
        free(name);
        if (!s) s = push(j, &cap, (deq_item){-1, o, 0, 0}, err);
        j->total++;
    }
    free(placed);
    return s;
}

cq_status cq_convert_dequantize(const char *in, const char *out_file, const cq_convert_opts *opts,
                                cq_convert_stats *stats, cq_err *err) {
    cq_convert_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    cq_convert_opts defaults = cq_convert_default_opts();
    if (!opts) opts = &defaults;
    if (!in || !out_file || !*out_file) return cq_err_set(err, CQ_E_ARG, "cq_convert_dequantize: missing path");
    double t0 = cq__now();
    deq_job j;
    memset(&j, 0, sizeof j);
    j.opts = opts;
    j.t0 = t0;
    j.stats = stats;
    cq_ckpt *c = NULL, *like = NULL;
    cq__qmodules qm;
    memset(&qm, 0, sizeof qm);
    cq_status s = cq_ckpt_open(in, &c, err);
    if (!s && opts->like) {
        s = cq_ckpt_open(opts->like, &like, err);
        if (s) cq_err_prefix(err, s, "--like: ");
    }
    if (!s) {
        const char *ins[2] = {in, opts->like};
        const cq_ckpt *cks[2] = {c, like};
        s = cq__guard_output(out_file, ins, cks, 2, opts, err);
    }
    if (!s && cq_fs_is_dir(out_file))
        s = cq_err_set(err, CQ_E_ARG, "%s: is a folder; give a .safetensors file name", out_file);
    if (!s) s = cq__qmodules_find(c, like, &qm, err);
    if (!s) cq__ckpt_sequential(c);
    j.ckpt = c;
    j.qm = &qm;
    if (!s) s = cq_st_writer_open(out_file, &j.w, err);
    if (!s) s = plan_output(&j, err);
    if (!s) {
        static const cq__pipe_ops ops = {deq_compute, deq_write, deq_free, NULL};
        s = cq__pipe_run(j.n_items, opts->threads > 0 ? opts->threads : cq_get_num_threads(), opts, &j, &ops, err);
    }
    if (!s && cq__cancelled(opts)) s = cq_err_set(err, CQ_E_IO, "interrupted");
    if (!s) s = cq_st_writer_commit(j.w, err);
    cq_st_writer_free(j.w); /* removes the temp file unless committed */
    if (!s) {
        stats->tensors = cq_ckpt_count(c);
        stats->bytes_in = j.bytes_total;
        stats->seconds = cq__now() - t0;
    }
    free(j.items);
    cq__qmodules_free(&qm);
    cq_ckpt_close(like);
    cq_ckpt_close(c);
    return s;
}
