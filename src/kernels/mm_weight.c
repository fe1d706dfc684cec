/*
 * mm_weight.c - the repacked weight of cq_matmul: validates the canonical quanto tensors,
 * lays them out in the kernels' tile format once (kernels_internal.h describes it), and
 * writes them back unchanged (cq_mm_weight_unpack). This is a constructor, so it allocates;
 * the matmul kernels never do. It holds no arithmetic beyond moving codes and scales.
 */
#include "kernels/kernels_internal.h"

#include <math.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* The qtype's bits (the qtype table), 0 for CQ_QNONE or an invalid value. */
static int weight_bits(cq_qtype q) {
    const cq_qtype_info *qi = cq_qtype_get(q);
    return qi ? qi->bits : 0;
}

static cq_status validate_shape(const cq_mm_weight_src *s, cq_err *err) {
    if (s->out_features < 1 || s->in_features < 1)
        return cq_err_set(err, CQ_E_SHAPE, "cq_mm_weight_new: shape [%lld, %lld] must be positive",
                          (long long)s->out_features, (long long)s->in_features);
    if (s->out_features > ((int64_t)1 << 40) || s->in_features > ((int64_t)1 << 30))
        return cq_err_set(err, CQ_E_OVERFLOW, "cq_mm_weight_new: shape [%lld, %lld] is too large",
                          (long long)s->out_features, (long long)s->in_features);
    return CQ_OK;
}

static cq_status validate(const cq_mm_weight_src *s, int bits, cq_err *err) {
    if (!s) return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_new: src is NULL");
    if (s->qtype == CQ_QFLOAT8_E4M3FNUZ)
        return cq_err_set(err, CQ_E_UNSUPPORTED, "cq_mm_weight_new: qfloat8_e4m3fnuz weights have no kernel");
    if (!bits) return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_new: qtype %d is not a weight qtype", (int)s->qtype);
    cq_status st = validate_shape(s, err);
    if (st) return st;
    if (s->scale_dtype != CQ_F32 && s->scale_dtype != CQ_F16 && s->scale_dtype != CQ_BF16)
        return cq_err_set(err, CQ_E_DTYPE, "cq_mm_weight_new: scale dtype %s is not F32, F16 or BF16",
                          cq_dtype_name(s->scale_dtype));
    if (!s->data || !s->scale) return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_new: data or scale is NULL");
    if (bits == 8) {
        if (s->group_size != 0 && s->group_size != s->in_features)
            return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_new: 8-bit weights are per channel (group_size %lld)",
                              (long long)s->group_size);
        if (s->shift) return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_new: 8-bit weights take no shift");
    } else {
        if (!s->shift) return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_new: qint%d weights need a shift", bits);
        if (s->group_size < 0 || (s->group_size > 0 && s->in_features % s->group_size != 0))
            return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_new: group_size %lld does not divide in_features %lld",
                              (long long)s->group_size, (long long)s->in_features);
    }
    return CQ_OK;
}

/* The gs codes of (row n, group g) into row[0 .. gs) (8-bit: the raw bytes), zeros up to gsp. */
static void load_group_codes(const cq_mm_weight *w, const cq_mm_weight_src *s, int64_t n, int64_t g, uint8_t *row) {
    const uint8_t *d = s->data;
    if (w->bits == 8 || s->codes_unpacked) {
        memcpy(row, d + n * w->k + g * w->gs, (size_t)w->gs);
    } else {
        /* canonical packing, one group per logical row */
        int64_t gi = n * w->groups + g, R = cq_packed_rows(w->n * w->groups, w->bits);
        const uint8_t *src = d + cq_packed_byte_row(gi, R) * w->gs;
        int shift = w->bits * cq_packed_field(gi, R);
        uint8_t mask = (uint8_t)((1 << w->bits) - 1);
        for (int64_t j = 0; j < w->gs; j++) row[j] = (uint8_t)((src[j] >> shift) & mask);
    }
    memset(row + w->gs, 0, (size_t)(w->gsp - w->gs));
}

static inline uint32_t ld32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Writes one group's code row into lane r of a tile: whole 32-bit lanes per granule. */
static void store_group_codes(const cq_mm_weight *w, uint8_t *tile, int r, int64_t g, const uint8_t *row) {
    int64_t k0 = g * w->gsp;
    if (w->is_float8) {
        for (int64_t j = 0; j < w->gsp; j++) tile[cq__tile_byte(w->bits, true, k0 + j, r)] = row[j];
        return;
    }
    int gran = cq__granule(w->bits, false);
    for (int64_t j = 0; j < w->gsp; j += gran) {
        int64_t kk = k0 + j; /* a chunk's first position: kk % 4 == 0 */
        uint32_t v = 0;
        if (w->bits == 8) {
            v = ld32(row + j) ^ 0x80808080u; /* biased: the unsigned vpdpbusd / AMX operand */
        } else { /* 4 positions per bit field; codes < 2^bits, so the fields never overlap */
            for (int q = 0; q < gran / 4; q++) v |= ld32(row + j + 4 * q) << cq__tile_shift(w->bits, kk + 4 * q);
        }
        memcpy(tile + cq__tile_byte(w->bits, false, kk, r), &v, 4);
    }
}

static bool tame(const void *p, cq_dtype t, int64_t n) {
    for (int64_t i = 0; p && i < n; i++) {
        float a = fabsf(cq_load_f32(p, t, i));
        if (a != 0.0f && !(a >= 0x1p-100f && a <= 0x1p100f)) return false;
    }
    return true;
}

static cq_status fill_layout(cq_mm_weight *w, const cq_mm_weight_src *s, cq_err *err) {
    size_t se = w->scale_elt;
    int nt = cq_get_num_threads();
    uint8_t *rows = cq__malloc((size_t)nt * (size_t)w->gsp, err, "repacking buffer");
    if (!rows) return CQ_E_NOMEM;
#pragma omp parallel for schedule(dynamic, 4) num_threads(nt) if (w->ntiles > 8)
    for (int64_t t = 0; t < w->ntiles; t++) {
#ifdef _OPENMP
        uint8_t *row = rows + (size_t)omp_get_thread_num() * (size_t)w->gsp;
#else
        uint8_t *row = rows;
#endif
        uint8_t *tile = w->codes + (size_t)t * w->tile_bytes;
        memset(tile, w->bits == 8 && !w->is_float8 ? 0x80 : 0, w->tile_bytes);
        for (int r = 0; r < CQ_TILE_ROWS; r++) {
            int64_t n = t * CQ_TILE_ROWS + r;
            if (n >= w->n) break;
            for (int64_t g = 0; g < w->groups; g++) {
                size_t dst = ((size_t)(t * w->groups + g) * CQ_TILE_ROWS + (size_t)r) * se;
                size_t src = (size_t)(n * w->groups + g) * se; /* scale index of (n, g) */
                memcpy((uint8_t *)w->scale + dst, (const uint8_t *)s->scale + src, se);
                if (w->shift) memcpy((uint8_t *)w->shift + dst, (const uint8_t *)s->shift + src, se);
                load_group_codes(w, s, n, g, row);
                store_group_codes(w, tile, r, g, row);
            }
        }
    }
    free(rows);
    return CQ_OK;
}

/* Codes out of range, and e4m3fn NaN codes, are refused before anything is allocated. The
 * scans are branch-free reductions over chunks (they run over every weight at load time);
 * only a chunk that fails is searched for the position to report. */
static cq_status check_codes(const cq_mm_weight_src *s, int bits, cq_err *err) {
    const uint8_t *d = s->data;
    int64_t n = s->out_features, k = s->in_features, total = n * k;
    bool range = bits < 8 && s->codes_unpacked, nan = s->qtype == CQ_QFLOAT8_E4M3FN;
    if (!range && !nan) return CQ_OK;
    for (int64_t c0 = 0; c0 < total; c0 += 4096) {
        int64_t c1 = c0 + 4096 < total ? c0 + 4096 : total;
        /* 8 bytes at a time: OR of the codes (range), or a set 0x80 in (b & 0x7f) + 1 exactly for
         * the bytes equal to 0x7f / 0xff (no carry can cross a byte). */
        uint64_t acc = 0;
        int64_t i = c0;
        for (; i + 8 <= c1; i += 8) {
            uint64_t v;
            memcpy(&v, d + i, 8);
            acc |= range ? v : ((v & 0x7f7f7f7f7f7f7f7full) + 0x0101010101010101ull) & 0x8080808080808080ull;
        }
        for (; i < c1; i++) acc |= range ? d[i] : ((d[i] & 0x7f) == 0x7f) << 7;
        bool bad = range ? (acc & (0x0101010101010101ull * (uint8_t)(0xff << bits))) != 0 : acc != 0;
        if (!bad) continue;
        for (i = c0; i < c1; i++) {
            if (range && d[i] >> bits)
                return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_new: code %u at [%lld, %lld] exceeds %d bits", d[i],
                                  (long long)(i / k), (long long)(i % k), bits);
            if (nan && (d[i] & 0x7f) == 0x7f)
                return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_new: qfloat8_e4m3fn weight is NaN at [%lld, %lld]",
                                  (long long)(i / k), (long long)(i % k));
        }
    }
    return CQ_OK;
}

/* A float weight (qtype CQ_QNONE): the values are moved, unchanged, into the k-major tiles. */
static cq_status new_float(cq_mm_weight **out, const cq_mm_weight_src *s, cq_err *err) {
    cq_status st = validate_shape(s, err);
    if (st) return st;
    cq_dtype t = s->weight_dtype;
    if (t != CQ_F32 && t != CQ_F16 && t != CQ_BF16)
        return cq_err_set(err, CQ_E_DTYPE, "cq_mm_weight_new: float weight dtype %s is not F32, F16 or BF16",
                          cq_dtype_name(t));
    if (!s->data) return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_new: data is NULL");
    if (s->group_size != 0 && s->group_size != s->in_features)
        return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_new: float weights have no groups (group_size %lld)",
                          (long long)s->group_size);
    cq_mm_weight *w = cq__calloc(1, sizeof *w, err, "matmul weight");
    if (!w) return CQ_E_NOMEM;
    size_t elt = cq_dtype_size(t);
    w->qtype = CQ_QNONE;
    w->is_float = true;
    w->wdtype = t;
    w->bits = (int)(8 * elt);
    w->n = s->out_features;
    w->k = s->in_features;
    w->gs = w->gsp = w->kp = w->k;
    w->groups = 1;
    w->ntiles = cq__ceil_div(w->n, CQ_TILE_ROWS);
    w->tile_bytes = (size_t)w->k * CQ_TILE_ROWS * elt;
    w->scale_dtype = t;
    w->scale_elt = elt;
    w->blk = w->nblk = 1;
    w->params_tame = true;
    uint64_t code_bytes;
    if (cq__mul_overflow_u64((uint64_t)w->ntiles, (uint64_t)w->tile_bytes, &code_bytes)) {
        free(w);
        return cq_err_set(err, CQ_E_OVERFLOW, "cq_mm_weight_new: weight too large");
    }
    size_t total = (size_t)code_bytes + CQ_CODES_SLACK;
    w->codes = cq_aligned_alloc(total);
    if (!w->codes) {
        free(w);
        return cq_err_set(err, CQ_E_NOMEM, "cq_mm_weight_new: out of memory (%zu bytes)", total);
    }
    w->alloc_bytes = total;
    w->nbytes = (size_t)(w->n * w->k) * elt;
    memset(w->codes, 0, total); /* the padding rows of the last tile stay zero */
    const uint8_t *src = s->data;
#pragma omp parallel for schedule(static) if (w->ntiles > 8)
    for (int64_t tl = 0; tl < w->ntiles; tl++) {
        uint8_t *tile = w->codes + (size_t)tl * w->tile_bytes;
        for (int r = 0; r < CQ_TILE_ROWS && tl * CQ_TILE_ROWS + r < w->n; r++) {
            const uint8_t *row = src + (size_t)(tl * CQ_TILE_ROWS + r) * (size_t)w->k * elt;
            for (int64_t k = 0; k < w->k; k++) memcpy(tile + cq__tile_float_index(k, r) * elt, row + (size_t)k * elt, elt);
        }
    }
    *out = w;
    return CQ_OK;
}

cq_status cq_mm_weight_new(cq_mm_weight **out, const cq_mm_weight_src *s, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_new: out is NULL");
    *out = NULL;
    if (s && s->qtype == CQ_QNONE) return new_float(out, s, err);
    int bits = s ? weight_bits(s->qtype) : 0;
    cq_status st = validate(s, bits, err);
    if (st) return st;
    st = check_codes(s, bits, err);
    if (st) return st;

    cq_mm_weight *w = cq__calloc(1, sizeof *w, err, "matmul weight");
    if (!w) return CQ_E_NOMEM;
    w->qtype = s->qtype;
    w->bits = bits;
    w->is_float8 = s->qtype == CQ_QFLOAT8_E4M3FN || s->qtype == CQ_QFLOAT8_E5M2;
    w->n = s->out_features;
    w->k = s->in_features;
    w->gs = (bits == 8 || s->group_size == 0) ? w->k : s->group_size;
    w->groups = w->k / w->gs;
    w->gsp = cq__round_up(w->gs, cq__granule(bits, w->is_float8));
    w->kp = w->groups * w->gsp;
    w->ntiles = cq__ceil_div(w->n, CQ_TILE_ROWS);
    w->tile_bytes = (size_t)w->kp * CQ_TILE_ROWS * (size_t)bits / 8;
    w->scale_dtype = s->scale_dtype;
    w->scale_elt = cq_dtype_size(s->scale_dtype);
    w->fast_ok = !w->is_float8 && (w->groups == 1 || w->gs % 16 == 0);
    w->blk = w->gs <= CQ_FAST_MAX_BLOCK ? w->gs : CQ_FAST_LONG_BLOCK;
    w->nblk = cq__ceil_div(w->gs, w->blk);

    uint64_t code_bytes, scale_bytes;
    if (cq__mul_overflow_u64((uint64_t)w->ntiles, (uint64_t)w->tile_bytes, &code_bytes) ||
        cq__mul_overflow_u64((uint64_t)(w->ntiles * CQ_TILE_ROWS) * (uint64_t)w->groups, w->scale_elt, &scale_bytes)) {
        free(w);
        return cq_err_set(err, CQ_E_OVERFLOW, "cq_mm_weight_new: weight too large");
    }
    size_t scale_pad = (size_t)cq__round_up((int64_t)scale_bytes, 64);
    /* + CQ_CODES_SLACK zero bytes: kernels may read whole 64-k AMX tiles past the last code. */
    size_t total = (size_t)code_bytes + scale_pad * (bits < 8 ? 2 : 1) + CQ_CODES_SLACK;
    w->codes = cq_aligned_alloc(total);
    w->alloc_bytes = total;
    if (!w->codes) {
        free(w);
        return cq_err_set(err, CQ_E_NOMEM, "cq_mm_weight_new: out of memory (%zu bytes)", total);
    }
    memset(w->codes + code_bytes, 0, total - (size_t)code_bytes);
    w->scale = w->codes + code_bytes;
    w->shift = bits < 8 ? (uint8_t *)w->scale + scale_pad : NULL;
    w->nbytes = (size_t)code_bytes + (size_t)scale_bytes * (bits < 8 ? 2 : 1);
    w->params_tame = tame(s->scale, s->scale_dtype, w->n * w->groups) && tame(s->shift, s->scale_dtype, w->n * w->groups);
    st = fill_layout(w, s, err);
    if (st) {
        cq_mm_weight_free(w);
        return st;
    }
    *out = w;
    return CQ_OK;
}

void cq_mm_weight_free(cq_mm_weight *w) {
    if (!w) return;
    cq_aligned_free(w->codes);
    free(w);
}

cq_status cq_mm_weight_clone(const cq_mm_weight *w, cq_mm_weight **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_clone: out is NULL");
    *out = NULL;
    if (!w) return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_clone: weight is NULL");
    cq_mm_weight *c = cq__malloc(sizeof *c, err, "matmul weight");
    if (!c) return CQ_E_NOMEM;
    *c = *w;
    size_t total = w->alloc_bytes;
    c->codes = cq_aligned_alloc(total);
    if (!c->codes) {
        free(c);
        return cq_err_set(err, CQ_E_NOMEM, "cq_mm_weight_clone: out of memory (%zu bytes)", total);
    }
    memcpy(c->codes, w->codes, total);
    c->scale = w->scale ? c->codes + ((uint8_t *)w->scale - w->codes) : NULL; /* float weights: none */
    c->shift = w->shift ? c->codes + ((uint8_t *)w->shift - w->codes) : NULL;
    *out = c;
    return CQ_OK;
}

void cq_mm_weight_get_info(const cq_mm_weight *w, cq_mm_weight_info *info) {
    if (!w || !info) return;
    info->qtype = w->qtype;
    info->out_features = w->n;
    info->in_features = w->k;
    info->group_size = w->gs;
    info->scale_dtype = w->scale_dtype;
    info->fast_ok = w->fast_ok;
    info->nbytes = w->nbytes;
    info->weight_dtype = w->is_float ? w->wdtype : CQ_DTYPE_INVALID;
}

cq_status cq_mm_weight_unpack(const cq_mm_weight *w, bool codes_unpacked, void *data, void *scale, void *shift,
                              cq_err *err) {
    if (w && data && w->is_float) {
        size_t elt = cq_dtype_size(w->wdtype);
        for (int64_t n = 0; n < w->n; n++) {
            const uint8_t *tile = w->codes + (size_t)(n / CQ_TILE_ROWS) * w->tile_bytes;
            for (int64_t k = 0; k < w->k; k++)
                memcpy((uint8_t *)data + (size_t)(n * w->k + k) * elt,
                       tile + cq__tile_float_index(k, (int)(n % CQ_TILE_ROWS)) * elt, elt);
        }
        return CQ_OK;
    }
    if (!w || !data || !scale || (w->bits < 8 && !shift))
        return cq_err_set(err, CQ_E_ARG, "cq_mm_weight_unpack: NULL argument");
    size_t se = w->scale_elt;
    int64_t groups_total = w->n * w->groups;
    bool packed = w->bits < 8 && !codes_unpacked;
    int64_t R = cq_packed_rows(groups_total, w->bits);
    if (packed) memset(data, 0, (size_t)R * (size_t)w->gs);
    for (int64_t n = 0; n < w->n; n++) {
        int64_t t = n / CQ_TILE_ROWS;
        int r = (int)(n % CQ_TILE_ROWS);
        for (int64_t g = 0; g < w->groups; g++) {
            size_t src = ((size_t)(t * w->groups + g) * CQ_TILE_ROWS + (size_t)r) * se;
            size_t dst = (size_t)(n * w->groups + g) * se;
            memcpy((uint8_t *)scale + dst, (const uint8_t *)w->scale + src, se);
            if (w->bits < 8) memcpy((uint8_t *)shift + dst, (const uint8_t *)w->shift + src, se);
        }
        for (int64_t k = 0; k < w->k; k++) {
            int c = cq__w_code(w, n, k);
            if (!packed) {
                ((uint8_t *)data)[n * w->k + k] = (uint8_t)c;
                continue;
            }
            int64_t gi = n * w->groups + k / w->gs;
            ((uint8_t *)data)[cq_packed_byte_row(gi, R) * w->gs + k % w->gs] |=
                (uint8_t)(c << (w->bits * cq_packed_field(gi, R)));
        }
    }
    return CQ_OK;
}
