/*
 * quantize_stream.c - the tensor stream of cq_convert_quantize: one pass over each input shard
 * that writes optimum-quanto's frozen state for every planned module and copies every other
 * tensor. The folder around the shards (temporary folder, side files, rename) is
 * quantize_folder.c's.
 *
 * Per output shard the tensors are declared up front (the plan gives every size), then cut into
 * work items in file order: slices of copied tensors, blocks of packed rows of quantized ones,
 * and a tail per quantized tensor that writes its scales. Items run on the ordered pipeline
 * (stream.c): computed on any thread, written in order, so the bytes never depend on the thread
 * count. A block of packed rows reads the vpi (= 8/bits) row ranges that share those bytes (the
 * canonical packing pairs row r with rows r+R, r+2R...), so nothing but the scales is held per
 * tensor. HQQ's stopping rule looks at the whole tensor's error, so an HQQ weight first gets
 * one exclusive item that computes all its parameters (streaming, in src/quant), then the same
 * blocks; single-row weights, which quanto treats per tensor, are quantized whole. Input pages
 * are dropped once a tensor is done. The math is src/quant's; this file only slices and
 * schedules.
 */
#include "convert_internal.h"

#include <jansson.h>
#include <inttypes.h>

#ifdef _OPENMP
#include <omp.h>
#endif


/* Input bytes per work item: big enough to amortise the per-item calls, small enough that a
 * block's input and output stay in the caches between compute and write. Tests lower it to cut
 * small tensors into many blocks. */
CQ__TEST_KNOB(size_t, cq__convert_item_bytes, (size_t)1 << 20, cq_experimental_set_convert_item_bytes)
#define COPY_ITEM_BYTES ((size_t)8 << 20)

typedef enum item_kind { ITEM_COPY, ITEM_PARAMS, ITEM_BLOCK, ITEM_WHOLE, ITEM_TAIL } item_kind;

typedef struct work_item {
    item_kind kind;
    int64_t tensor; /* index into plan->tensors */
    int64_t a, b;   /* COPY: byte range; BLOCK: packed-row (or row) range */
} work_item;

/* Per quantized tensor, shared by its items. */
typedef struct qtensor_state {
    const cq_plan_entry *e;
    char *names[CQ__MAX_OUT_SPECS]; /* full output names */
    cq__out_spec specs[CQ__MAX_OUT_SPECS];
    int n_specs;
    int64_t rows, row_len; /* logical code rows and their length */
    int64_t packed_rows;   /* R (== rows for 8-bit) */
    int bits;
    bool packed;           /* the qtype's codes are packed (qtype table) */
    bool whole;            /* quantized in one piece (single rows) */
    bool params_first;     /* HQQ: the whole tensor's (scale, shift) before its blocks */
    bool params_ready;     /* ... computed before the shard was declared (their shape decides) */
    int64_t shift_per_row; /* shifts per code row: 1, or I*kh after HQQ on an ungrouped Conv2d */
    pthread_mutex_t *mu;   /* guards the lazy allocation below */
    void *scale, *shift;   /* whole-tensor parameter buffers, filled by the blocks */
    cq_qweight *qw;        /* ITEM_WHOLE result, kept until the tail */
} qtensor_state;

/* A block's output bytes live in its thread's scratch buffer: the thread that computes an item
 * also writes it before taking the next one, so one buffer per thread suffices and nothing is
 * allocated per block. */
typedef struct block_result {
    const uint8_t *data;
    size_t nbytes;
} block_result;

typedef struct scratch {
    uint8_t *out, *codes;
    size_t out_cap, codes_cap;
    block_result result;
} scratch;

typedef struct shard_job {
    cq_plan *plan;
    const cq_convert_opts *opts;
    cq_hqq_opts hqq; /* quanto's defaults, stopping on opts->cancel */
    cq_st_writer *writer;
    work_item *items;
    int64_t n_items, cap_items;
    int64_t first, last; /* this shard's plan tensors (the plan lists them shard by shard) */
    qtensor_state *qs; /* per plan tensor (only those of this shard are used) */
    pthread_mutex_t mu;
    scratch *scratch; /* one per worker thread */
    int n_scratch;
    /* progress */
    int64_t *tensors_done;
    uint64_t *bytes_done;
    uint64_t bytes_total;
    double t0;
    cq_convert_stats *stats;
} shard_job;

/* The plan's tensors are zero-copy views of the checkpoint's sources. */
static const uint8_t *tensor_bytes(const cq__plan_tensor *pt) { return pt->t->data; }

/* The page-release hook: bytes [off, off + n) of plan tensor ti are consumed. */
static void release(const shard_job *j, int64_t ti, uint64_t off, uint64_t n) {
    cq__ckpt_release(j->plan->ckpt, ti, off, n);
}

static cq_status push_item(shard_job *j, item_kind k, int64_t tensor, int64_t a, int64_t b, cq_err *err) {
    if (j->n_items == j->cap_items) {
        int64_t nc = j->cap_items ? 2 * j->cap_items : 1024;
        work_item *w = realloc(j->items, (size_t)nc * sizeof *w);
        if (!w) return cq_err_set(err, CQ_E_NOMEM, "out of memory scheduling the work");
        j->items = w;
        j->cap_items = nc;
    }
    j->items[j->n_items++] = (work_item){k, tensor, a, b};
    return CQ_OK;
}

/* ---- computing ----------------------------------------------------------------------------- */

static uint8_t *scratch_get(uint8_t **buf, size_t *cap, size_t n, cq_err *err) {
    if (n > *cap) {
        free(*buf);
        *buf = cq__malloc(n, err, "a work buffer");
        *cap = *buf ? n : 0;
    }
    return *buf;
}

static int worker_index(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Scale and shift values of `n` logical rows starting at `row` into the tensor-wide buffers. */
static void store_params(qtensor_state *q, int64_t row, int64_t n, const cq_tensor *scale, const cq_tensor *shift,
                         int64_t skip) {
    size_t ds = cq_dtype_size(q->e->dtype);
    memcpy((uint8_t *)q->scale + (size_t)row * ds, (const uint8_t *)scale->data + (size_t)skip * ds, (size_t)n * ds);
    if (shift) memcpy((uint8_t *)q->shift + (size_t)row * ds, (const uint8_t *)shift->data + (size_t)skip * ds, (size_t)n * ds);
}

/* Quantizes logical rows [r0, r0+n) (n >= 1) into codes (n rows of row_len) and the tensor's
 * parameter buffers. A single row is computed with its neighbour, because quanto treats a
 * one-row tensor per tensor, not per row. */
/* int8 rows straight through the vectorised kernels: AbsmaxOptimizer's scale (max|x| / 127,
 * rounded to the weight dtype) and quantize_symmetric, row by row; the same bytes as
 * cq_absmax_scale + cq_quantize_symmetric, several times faster. */
static void quantize_rows_i8(qtensor_state *q, const uint8_t *src, int64_t r0, int64_t n, int8_t *codes) {
    const cq_plan_entry *e = q->e;
    size_t ds = cq_dtype_size(e->dtype), row_bytes = (size_t)q->row_len * ds;
    for (int64_t r = 0; r < n; r++) {
        const uint8_t *row = src + (size_t)(r0 + r) * row_bytes;
        float scale = cq_round_to_dtype(cq_vec_absmax(row, e->dtype, q->row_len) / 127.0f, e->dtype);
        cq_vec_quantize_i8(row, e->dtype, q->row_len, scale, codes + r * q->row_len);
        cq_store_f32(q->scale, e->dtype, r0 + r, scale);
    }
}

/* Affine codes of rows [r0, r0+n) under the parameters an ITEM_PARAMS already stored. */
static cq_status quantize_rows_given(qtensor_state *q, const uint8_t *src, int64_t r0, int64_t n, uint8_t *codes,
                                     cq_err *err) {
    const cq_plan_entry *e = q->e;
    size_t ds = cq_dtype_size(e->dtype);
    /* Rows as (n, k, row_len / k) with k shifts per row, the scale broadcast over them. */
    int64_t k = q->shift_per_row, shape[3] = {n, k, q->row_len / k}, sshape[3] = {n, 1, 1}, hshape[3] = {n, k, 1};
    cq_tensor *x = NULL, *scale = NULL, *shift = NULL, *out = NULL;
    cq_status s = cq_tensor_view(&x, e->dtype, 3, shape, (void *)(src + (size_t)r0 * (size_t)q->row_len * ds), err);
    if (!s) s = cq_tensor_view(&scale, e->dtype, 3, sshape, (uint8_t *)q->scale + (size_t)r0 * ds, err);
    if (!s) s = cq_tensor_view(&shift, e->dtype, 3, hshape, (uint8_t *)q->shift + (size_t)(r0 * k) * ds, err);
    if (!s) s = cq_quantize_affine(x, q->bits, 0, 0, scale, shift, &out, err);
    if (!s) memcpy(codes, out->data, (size_t)(n * q->row_len));
    cq_tensor_free(x);
    cq_tensor_free(scale);
    cq_tensor_free(shift);
    cq_tensor_free(out);
    return s;
}

static cq_status quantize_rows(shard_job *j, qtensor_state *q, const uint8_t *src, int64_t r0, int64_t n,
                               uint8_t *codes, cq_err *err) {
    const cq_plan_entry *e = q->e;
    size_t ds = cq_dtype_size(e->dtype);
    if (cq_qtype_family_of(e->weights) == CQ_QFAMILY_SYMMETRIC) { /* qint8 */
        quantize_rows_i8(q, src, r0, n, (int8_t *)codes);
        return CQ_OK;
    }
    if (q->params_first) return quantize_rows_given(q, src, r0, n, codes, err);
    int64_t first = r0, count = n, skip = 0;
    if (n == 1) {
        first = r0 > 0 ? r0 - 1 : r0;
        count = 2;
        skip = r0 - first;
    }
    int64_t shape[2] = {count, q->row_len};
    cq_tensor *x = NULL, *scale = NULL, *shift = NULL, *out = NULL;
    cq_status s = cq_tensor_view(&x, e->dtype, 2, shape, (void *)(src + (size_t)first * (size_t)q->row_len * ds), err);
    if (!s && cq_qtype_family_of(e->weights) == CQ_QFAMILY_AFFINE) {
        s = cq_affine_optimize(x, e->weights, 0, 0, j->opts->optimizer, &j->hqq, &scale, &shift, err);
        if (!s) s = cq_quantize_affine(x, q->bits, 0, 0, scale, shift, &out, err);
    } else if (!s) {
        s = cq_absmax_scale(x, e->weights, 0, &scale, err);
        if (!s) s = cq_quantize_symmetric(x, cq_qtype_get(e->weights)->dtype, 0, scale, &out, err);
    }
    if (!s) {
        memcpy(codes, (const uint8_t *)out->data + (size_t)skip * (size_t)q->row_len, (size_t)(n * q->row_len));
        store_params(q, r0, n, scale, shift, skip);
    }
    cq_tensor_free(x);
    cq_tensor_free(scale);
    cq_tensor_free(shift);
    cq_tensor_free(out);
    return s;
}

static cq_status ensure_params(qtensor_state *q, cq_err *err) {
    cq_status s = CQ_OK;
    pthread_mutex_lock(q->mu);
    if (!q->scale) {
        size_t nb = (size_t)q->rows * cq_dtype_size(q->e->dtype);
        q->scale = cq__malloc(nb ? nb : 1, err, "scales");
        if (q->scale && cq_qtype_family_of(q->e->weights) == CQ_QFAMILY_AFFINE) q->shift = cq__malloc(nb ? nb : 1, err, "shifts");
        if (!q->scale || (cq_qtype_family_of(q->e->weights) == CQ_QFAMILY_AFFINE && !q->shift)) s = CQ_E_NOMEM;
    }
    pthread_mutex_unlock(q->mu);
    return s;
}

/* The optimizer's parameters must be one per code row, as planned. */
static cq_status check_param_size(const qtensor_state *q, const cq_tensor *scale, cq_err *err) {
    if (cq_tensor_numel(scale) != q->rows || scale->dtype != q->e->dtype)
        return cq_err_set(err, CQ_E_SHAPE, "the optimizer gave %lld %s parameters for %lld planned rows",
                          (long long)cq_tensor_numel(scale), cq_dtype_name(scale->dtype), (long long)q->rows);
    return CQ_OK;
}

static cq_status compute_block(shard_job *j, const work_item *it, void **result, cq_err *err) {
    const cq__plan_tensor *pt = &j->plan->tensors[it->tensor];
    qtensor_state *q = &j->qs[it->tensor];
    cq_status s = ensure_params(q, err);
    if (s) return s;
    const uint8_t *src = tensor_bytes(pt);
    int64_t k = it->b - it->a;
    scratch *sc = &j->scratch[worker_index()];
    block_result *r = &sc->result;
    r->nbytes = (size_t)(k * q->row_len);
    uint8_t *out = scratch_get(&sc->out, &sc->out_cap, r->nbytes, err);
    r->data = out;
    if (!out) return CQ_E_NOMEM;
    if (!q->packed) {
        s = quantize_rows(j, q, src, it->a, k, out, err);
    } else if (!s) {
        /* Packed rows [a, b) hold logical rows [a + i*R, b + i*R) in bit field i. */
        int vpi = 8 / q->bits;
        size_t piece = (size_t)(k * q->row_len);
        uint8_t *codes = scratch_get(&sc->codes, &sc->codes_cap, (size_t)vpi * piece, err);
        if (!codes) return CQ_E_NOMEM;
        for (int i = 0; !s && i < vpi; i++) {
            int64_t lo = cq_packed_row_of(it->a, i, q->packed_rows), hi = cq_packed_row_of(it->b, i, q->packed_rows);
            if (hi > q->rows) hi = q->rows;
            if (lo >= hi) {
                /* Rows past the end pack as zeros, as in quanto's padding. */
                memset(codes + (size_t)i * piece, 0, (size_t)(vpi - i) * piece);
                break;
            }
            s = quantize_rows(j, q, src, lo, hi - lo, codes + (size_t)i * piece, err);
            if (hi - lo < k) memset(codes + (size_t)i * piece + (size_t)((hi - lo) * q->row_len), 0,
                                    (size_t)((k - (hi - lo)) * q->row_len));
        }
        if (!s) cq_pack_codes(codes, vpi * k, q->row_len, q->bits, out);
    }
    if (s) return cq_err_prefix(err, s, "%s: ", pt->name);
    *result = r;
    return CQ_OK;
}

static cq_status compute_whole(shard_job *j, const work_item *it, cq_err *err) {
    const cq__plan_tensor *pt = &j->plan->tensors[it->tensor];
    qtensor_state *q = &j->qs[it->tensor];
    const cq_plan_entry *e = q->e;
    cq_tensor *w = NULL;
    cq_status s = cq_tensor_view(&w, e->dtype, e->ndim, e->shape, (void *)tensor_bytes(pt), err);
    if (!s) s = cq_qweight_quantize_ex(w, e->weights, 0, j->opts->optimizer, e->group_size, &j->hqq, &q->qw, err);
    if (s) cq_err_prefix(err, s, "%s: ", pt->name);
    if (!s && e->weights == CQ_QINT4) cq_qweight_apply_tinygemm_roundtrip(q->qw);
    if (w) release(j, it->tensor, 0, cq_tensor_nbytes(w));
    cq_tensor_free(w);
    return s;
}

/* HQQ's stopping rule looks at the whole tensor's error, so its (scale, shift) come from one
 * pass over the whole tensor (src/quant streams it in chunks) before the blocks make the codes.
 * An ungrouped N-D weight goes in its own shape: its shift is one per row of the last dim. */
static cq_status compute_params(shard_job *j, int64_t ti, cq_err *err) {
    const cq__plan_tensor *pt = &j->plan->tensors[ti];
    qtensor_state *q = &j->qs[ti];
    cq_status s = ensure_params(q, err);
    int64_t shape[2] = {q->rows, q->row_len};
    bool whole_shape = q->e->group_size == 0;
    cq_tensor *w = NULL, *scale = NULL, *shift = NULL;
    if (!s) s = cq_tensor_view(&w, q->e->dtype, whole_shape ? q->e->ndim : 2, whole_shape ? q->e->shape : shape,
                               (void *)tensor_bytes(pt), err);
    if (!s) s = cq_affine_optimize(w, q->e->weights, 0, 0, j->opts->optimizer, &j->hqq, &scale, &shift, err);
    if (!s) s = check_param_size(q, scale, err);
    if (!s && cq_tensor_numel(shift) != q->rows) {
        free(q->shift);
        q->shift = cq__malloc(cq_tensor_nbytes(shift), err, "shifts");
        if (!q->shift) s = CQ_E_NOMEM;
    }
    if (!s) {
        memcpy(q->scale, scale->data, cq_tensor_nbytes(scale));
        memcpy(q->shift, shift->data, cq_tensor_nbytes(shift));
        q->shift_per_row = cq_tensor_numel(shift) / q->rows;
        if (q->shift_per_row == 1 && q->e->ndim > 2 && q->e->group_size == 0) {
            if (!j->plan->shift_kept)
                j->plan->shift_kept = cq__calloc((size_t)j->plan->n_entries, sizeof(bool), err, "the plan");
            if (!j->plan->shift_kept) s = CQ_E_NOMEM;
            else j->plan->shift_kept[pt->entry] = true;
        }
    }
    if (s) cq_err_prefix(err, s, "%s: ", pt->name);
    cq_tensor_free(w);
    cq_tensor_free(scale);
    cq_tensor_free(shift);
    return s;
}

/* Whole-tensor passes (HQQ's parameters, single rows) run alone with every thread inside. */
static bool item_exclusive(void *ctx, int64_t i) {
    const shard_job *j = ctx;
    return j->items[i].kind == ITEM_WHOLE || j->items[i].kind == ITEM_PARAMS;
}

static cq_status item_compute(void *ctx, int64_t i, void **result, cq_err *err) {
    shard_job *j = ctx;
    const work_item *it = &j->items[i];
    switch (it->kind) {
    case ITEM_BLOCK: return compute_block(j, it, result, err);
    case ITEM_WHOLE: return compute_whole(j, it, err);
    case ITEM_PARAMS: return compute_params(j, it->tensor, err);
    default: return CQ_OK;
    }
}

/* ---- writing ------------------------------------------------------------------------------ */

static cq_status write_spec(shard_job *j, qtensor_state *q, int k, const void *data, cq_err *err) {
    return cq_st_writer_write(j->writer, q->names[k], data, (size_t)q->specs[k].nbytes, err);
}

/* The shapes the quant layer produced must be the ones declared from the plan. */
static cq_status check_against_spec(const qtensor_state *q, int k, const cq_tensor *t, cq_err *err) {
    const cq__out_spec *sp = &q->specs[k];
    bool same = t->dtype == sp->dtype && cq_tensor_nbytes(t) == sp->nbytes;
    if (!same)
        return cq_err_set(err, CQ_E_SHAPE, "%s: quantized as %s (%zu bytes) but planned as %s (%" PRIu64 " bytes)",
                          q->names[k], cq_dtype_name(t->dtype), cq_tensor_nbytes(t), cq_dtype_name(sp->dtype),
                          sp->nbytes);
    return CQ_OK;
}

static cq_status write_unit_scales(shard_job *j, qtensor_state *q, int first, cq_err *err) {
    uint8_t one[4];
    cq_store_f32(one, q->e->dtype, 0, 1.0f);
    cq_status s = CQ_OK;
    for (int k = first; !s && k < q->n_specs; k++) s = write_spec(j, q, k, one, err);
    return s;
}

static void tensor_done(shard_job *j, const cq__plan_tensor *pt) {
    (*j->tensors_done)++;
    *j->bytes_done += cq_tensor_nbytes(pt->t);
    cq__report_progress(j->opts, *j->tensors_done, j->plan->n_tensors, *j->bytes_done, j->bytes_total, j->t0,
                        pt->name);
}

/* quanto freezes bf16 qint4 group-128 weights through TinyGemm on CPU, which rewrites the shift
 * (QUANTO-FORMAT.md 8.1); the quant layer knows when and how. */
static void tinygemm_roundtrip(qtensor_state *q) {
    const cq_plan_entry *e = q->e;
    if (e->weights != CQ_QINT4) return;
    cq_qweight w;
    memset(&w, 0, sizeof w);
    w.qtype = e->weights;
    w.axis = 0;
    w.group_size = e->group_size;
    w.ndim = e->ndim;
    for (int i = 0; i < e->ndim; i++) w.shape[i] = e->shape[i];
    cq_tensor scale = {e->dtype, q->specs[1].ndim, {0}, q->scale, false};
    cq_tensor shift = {e->dtype, q->specs[2].ndim, {0}, q->shift, false};
    for (int i = 0; i < scale.ndim; i++) scale.shape[i] = shift.shape[i] = q->specs[1].shape[i];
    cq_tensor data = {CQ_U8, q->specs[0].ndim, {0}, NULL, false};
    for (int i = 0; i < data.ndim; i++) data.shape[i] = q->specs[0].shape[i];
    w.data = &data;
    w.scale = &scale;
    w.shift = &shift;
    cq_qweight_apply_tinygemm_roundtrip(&w);
}

static cq_status item_write(void *ctx, int64_t i, void *result, cq_err *err) {
    shard_job *j = ctx;
    const work_item *it = &j->items[i];
    const cq__plan_tensor *pt = &j->plan->tensors[it->tensor];
    qtensor_state *q = &j->qs[it->tensor];
    cq_status s = CQ_OK;
    switch (it->kind) {
    case ITEM_COPY: {
        const uint8_t *src = tensor_bytes(pt);
        s = cq_st_writer_write(j->writer, pt->name, src + it->a, (size_t)(it->b - it->a), err);
        release(j, it->tensor, (uint64_t)it->a, (uint64_t)(it->b - it->a));
        if (!s && it->b == (int64_t)cq_tensor_nbytes(pt->t)) {
            if (pt->entry >= 0) s = write_unit_scales(j, q, 0, err); /* a LayerNorm given activations */
            tensor_done(j, pt);
        }
        return s;
    }
    case ITEM_PARAMS: return CQ_OK;
    case ITEM_BLOCK: {
        const block_result *r = result;
        return cq_st_writer_write(j->writer, q->names[0], r->data, r->nbytes, err);
    }
    case ITEM_WHOLE: {
        const cq_tensor *parts[3] = {q->qw->data, q->qw->scale, q->qw->shift};
        for (int k = 0; !s && k < (q->qw->shift ? 3 : 2); k++) {
            s = check_against_spec(q, k, parts[k], err);
            if (!s) s = write_spec(j, q, k, parts[k]->data, err);
        }
        if (!s) s = write_unit_scales(j, q, q->qw->shift ? 3 : 2, err);
        cq_qweight_free(q->qw);
        q->qw = NULL;
        if (!s) {
            j->stats->weights += cq_shape_numel(q->e->ndim, q->e->shape);
            tensor_done(j, pt);
        }
        return s;
    }
    case ITEM_TAIL: {
        tinygemm_roundtrip(q);
        s = write_spec(j, q, 1, q->scale, err);
        if (!s && cq_qtype_family_of(q->e->weights) == CQ_QFAMILY_AFFINE) s = write_spec(j, q, 2, q->shift, err);
        if (!s) s = write_unit_scales(j, q, cq_qtype_family_of(q->e->weights) == CQ_QFAMILY_AFFINE ? 3 : 2, err);
        free(q->scale);
        free(q->shift);
        q->scale = q->shift = NULL;
        /* The tensor's input pages go once it is done: one release per tensor (not per block) keeps
         * the TLB shootdowns few, and residency stays below one tensor. */
        release(j, it->tensor, 0, cq_tensor_nbytes(pt->t));
        if (!s) {
            j->stats->weights += cq_shape_numel(q->e->ndim, q->e->shape);
            tensor_done(j, pt);
        }
        return s;
    }
    }
    return s;
}

/* ---- one shard ------------------------------------------------------------------------------- */

static cq_status plan_quantized(shard_job *j, int64_t ti, cq_err *err) {
    const cq__plan_tensor *pt = &j->plan->tensors[ti];
    qtensor_state *q = &j->qs[ti];
    q->e = &j->plan->entries[pt->entry];
    q->mu = &j->mu;
    q->n_specs = cq__plan_out_specs(j->plan, q->e, q->specs);
    const char *prefix = j->plan->entry_prefix[pt->entry];
    for (int k = 0; k < q->n_specs; k++) {
        size_t n = strlen(prefix) + strlen(q->specs[k].suffix) + 1;
        q->names[k] = cq__malloc(n, err, "a tensor name");
        if (!q->names[k]) return CQ_E_NOMEM;
        snprintf(q->names[k], n, "%s%s", prefix, q->specs[k].suffix);
    }
    if (q->e->action != CQ_PLAN_QUANTIZE) return CQ_OK;
    const cq_qtype_info *qi = cq_qtype_get(q->e->weights);
    q->bits = qi->bits;
    q->packed = qi->packed;
    cq__plan_code_layout(q->e, &q->rows, &q->row_len);
    q->packed_rows = q->packed ? cq_packed_rows(q->rows, q->bits) : q->rows;
    q->whole = q->rows < 2;
    q->params_first = !q->whole && j->opts->optimizer == CQ_OPT_HQQ && q->packed;
    q->shift_per_row = 1;
    /* quanto's HQQ shift of an ungrouped N-D weight has the shape its data gives it: compute it
     * before the shard's header is written. */
    if (q->params_first && q->e->group_size == 0 && q->e->ndim > 2) {
        cq_status s = compute_params(j, ti, err);
        if (s) return s;
        q->params_ready = true;
        q->n_specs = cq__plan_out_specs(j->plan, q->e, q->specs);
    }
    return CQ_OK;
}

static cq_status schedule(shard_job *j, cq_err *err) {
    cq_status s = CQ_OK;
    for (int64_t ti = j->first; !s && ti < j->last; ti++) {
        const cq__plan_tensor *pt = &j->plan->tensors[ti];
        const cq_plan_entry *e = pt->entry >= 0 ? &j->plan->entries[pt->entry] : NULL;
        if (!e || e->action == CQ_PLAN_ACTIVATIONS_ONLY) {
            int64_t n = (int64_t)cq_tensor_nbytes(pt->t);
            if (n == 0) s = push_item(j, ITEM_COPY, ti, 0, 0, err);
            for (int64_t a = 0; !s && a < n; a += (int64_t)COPY_ITEM_BYTES)
                s = push_item(j, ITEM_COPY, ti, a, a + (int64_t)COPY_ITEM_BYTES < n ? a + (int64_t)COPY_ITEM_BYTES : n, err);
            continue;
        }
        qtensor_state *q = &j->qs[ti];
        if (q->whole) {
            s = push_item(j, ITEM_WHOLE, ti, 0, 0, err);
            continue;
        }
        size_t in_row_bytes = (size_t)q->row_len * cq_dtype_size(e->dtype) * (size_t)(8 / q->bits);
        int64_t per = (int64_t)(cq__convert_item_bytes / (in_row_bytes ? in_row_bytes : 1));
        if (per < 1) per = 1;
        if (q->params_first && !q->params_ready) s = push_item(j, ITEM_PARAMS, ti, 0, 0, err);
        for (int64_t a = 0; !s && a < q->packed_rows; a += per)
            s = push_item(j, ITEM_BLOCK, ti, a, a + per < q->packed_rows ? a + per : q->packed_rows, err);
        if (!s) s = push_item(j, ITEM_TAIL, ti, 0, 0, err);
    }
    return s;
}

/* The float shapes of this shard's int2/int4 weights that quanto's layout leaves ambiguous, as
 * safetensors metadata (quanto ignores it; cquanto dequantize and inspect read it). */
static cq_status add_shape_records(shard_job *j, cq_err *err) {
    json_t *rec = json_object();
    if (!rec) return cq_err_set(err, CQ_E_NOMEM, "out of memory");
    for (int64_t ti = j->first; ti < j->last; ti++) {
        const cq__plan_tensor *pt = &j->plan->tensors[ti];
        if (pt->entry < 0) continue;
        const cq_plan_entry *e = &j->plan->entries[pt->entry];
        if (e->action != CQ_PLAN_QUANTIZE) continue;
        char bias[2048];
        snprintf(bias, sizeof bias, "%sbias", j->plan->entry_prefix[pt->entry]);
        int64_t bi = cq_ckpt_find(j->plan->ckpt, bias);
        const cq_tensor *b = bi >= 0 ? cq_ckpt_tensor(j->plan->ckpt, bi) : NULL;
        if (!cq__shape_needs_record(e, b && b->ndim == 1 ? b->shape[0] : -1)) continue;
        json_t *dims = json_array();
        for (int d = 0; dims && d < e->ndim; d++) json_array_append_new(dims, json_integer(e->shape[d]));
        if (!dims || json_object_set_new(rec, e->module, dims)) {
            json_decref(rec);
            return cq_err_set(err, CQ_E_NOMEM, "out of memory");
        }
    }
    cq_status s = CQ_OK;
    if (json_object_size(rec)) {
        char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
        s = text ? cq_st_writer_add_metadata(j->writer, CQ__SHAPES_METADATA_KEY, text, err)
                 : cq_err_set(err, CQ_E_NOMEM, "out of memory");
        free(text);
    }
    json_decref(rec);
    return s;
}

static cq_status declare_shard(shard_job *j, cq_err *err) {
    cq_status s = cq_st_writer_add_metadata(j->writer, "format", "pt", err);
    if (!s) s = add_shape_records(j, err);
    for (int64_t ti = j->first; !s && ti < j->last; ti++) {
        const cq__plan_tensor *pt = &j->plan->tensors[ti];
        const cq_plan_entry *e = pt->entry >= 0 ? &j->plan->entries[pt->entry] : NULL;
        if (!e || e->action == CQ_PLAN_ACTIVATIONS_ONLY)
            s = cq_st_writer_declare(j->writer, pt->name, pt->t->dtype, pt->t->ndim, pt->t->shape, err);
        if (!s && e) s = plan_quantized(j, ti, err);
        for (int o = 0; !s && e && o < j->qs[ti].n_specs; o++)
            s = cq_st_writer_declare(j->writer, j->qs[ti].names[o], j->qs[ti].specs[o].dtype, j->qs[ti].specs[o].ndim,
                                     j->qs[ti].specs[o].shape, err);
    }
    return s;
}

static int thread_count(const cq_convert_opts *o) { return o->threads > 0 ? o->threads : cq_get_num_threads(); }

/* Streams one shard into a writer left uncommitted in *pending (the caller commits it in the
 * background, so the fsync of one shard overlaps the work on the next). */
static cq_status quantize_shard(cq_plan *p, const cq_convert_opts *o, int64_t first, int64_t last, qtensor_state *qs,
                                const char *out_path, int64_t *tensors_done, uint64_t *bytes_done,
                                double t0, cq_convert_stats *stats, cq_st_writer **pending, cq_err *err) {
    shard_job j;
    memset(&j, 0, sizeof j);
    j.plan = p;
    j.opts = o;
    j.first = first;
    j.last = last;
    j.qs = qs;
    j.hqq = cq_hqq_default_opts();
    j.hqq.cancel = o->cancel;
    j.tensors_done = tensors_done;
    j.bytes_done = bytes_done;
    j.bytes_total = p->bytes_before;
    j.t0 = t0;
    j.stats = stats;
    pthread_mutex_init(&j.mu, NULL);
    j.n_scratch = thread_count(o);
    j.scratch = cq__calloc((size_t)j.n_scratch, sizeof *j.scratch, err, "the work buffers");
    cq_status s = j.scratch ? CQ_OK : CQ_E_NOMEM;
    if (!s) s = cq_st_writer_open(out_path, &j.writer, err);
    if (!s) s = declare_shard(&j, err);
    if (!s) s = schedule(&j, err);
    if (!s) {
        static const cq__pipe_ops ops = {item_compute, item_write, NULL, item_exclusive};
        s = cq__pipe_run(j.n_items, thread_count(o), o, &j, &ops, err);
    }
    if (!s) *pending = j.writer;
    else cq_st_writer_free(j.writer);
    for (int64_t ti = first; ti < last; ti++) {
        qtensor_state *q = &qs[ti];
        for (int k = 0; k < CQ__MAX_OUT_SPECS; k++) free(q->names[k]);
        free(q->scale);
        free(q->shift);
        cq_qweight_free(q->qw);
    }
    for (int t = 0; j.scratch && t < j.n_scratch; t++) {
        free(j.scratch[t].out);
        free(j.scratch[t].codes);
    }
    free(j.scratch);
    free(j.items);
    pthread_mutex_destroy(&j.mu);
    return s;
}

/* A shard's commit (fsync + rename) on its own thread. */
typedef struct committer {
    cq_st_writer *w;
    pthread_t thread;
    bool started;
    cq_status status;
    cq_err err;
} committer;

static void *commit_main(void *arg) {
    committer *c = arg;
    c->status = cq_st_writer_commit(c->w, &c->err);
    return NULL;
}

static void commit_start(committer *c) {
    c->started = pthread_create(&c->thread, NULL, commit_main, c) == 0;
    if (!c->started) commit_main(c); /* no thread to be had: commit here */
}

/* Waits for every commit; returns the first failure. Frees the writers. */
static cq_status commit_join(committer *c, int n, cq_status s, cq_err *err) {
    for (int i = 0; i < n; i++) {
        if (!c[i].w) continue;
        if (c[i].started) pthread_join(c[i].thread, NULL);
        if (!s && c[i].status) {
            s = c[i].status;
            if (err) *err = c[i].err;
        }
        cq_st_writer_free(c[i].w);
        c[i].w = NULL;
    }
    return s;
}

cq_status cq__quantize_shards(cq_plan *p, const cq_convert_opts *opts, const char *dir, bool single_file, double t0,
                              cq_convert_stats *stats, cq_err *err) {
    cq_status s = CQ_OK;
    int64_t tensors_done = 0;
    uint64_t bytes_done = 0;
    int nshards = cq_ckpt_shard_count(p->ckpt);
    committer *commits = cq__calloc((size_t)(nshards ? nshards : 1), sizeof *commits, err, "the shard commits");
    qtensor_state *qs = cq__calloc((size_t)(p->n_tensors ? p->n_tensors : 1), sizeof *qs, err, "the shard state");
    if (!commits || !qs) s = CQ_E_NOMEM;
    /* The plan lists tensors shard by shard, so each shard is one range and no shard walks the
     * others' tensors. */
    for (int64_t first = 0, last = 0, shard = 0; !s && shard < nshards; shard++, first = last) {
        while (last < p->n_tensors && p->tensors[last].shard == shard) last++;
        char *path = cq_path_join(dir, single_file ? "model.safetensors" : cq_ckpt_shard_file(p->ckpt, shard));
        if (!path) s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
        else s = quantize_shard(p, opts, first, last, qs, path, &tensors_done, &bytes_done, t0, stats, &commits[shard].w,
                                err);
        if (!s) commit_start(&commits[shard]);
        free(path);
    }
    if (commits) s = commit_join(commits, nshards, s, err);
    free(commits);
    free(qs);
    return s;
}
