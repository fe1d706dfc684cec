/*
 * pack.c - quanto's canonical PackedTensor layout for 2- and 4-bit codes (tensor/packed.py):
 * packing runs along dim 0, and the N rows are cut into 8/bits consecutive chunks of
 * R = ceil(N / (8/bits)) rows, chunk i landing in bit field i, so byte row r holds rows
 * r, r+R, r+2R, ... (not adjacent rows). This is the only layout written to files;
 * kernel-friendly layouts are the kernels' business.
 */
#include "quant_internal.h"

/* One byte row whose vpi source rows all exist, with constant shifts so that it vectorizes. */
static void pack_full_row(const uint8_t *codes, int64_t r, int64_t R, int64_t row_len, int bits, uint8_t *dst) {
    const uint8_t *a = codes + cq_packed_row_of(r, 0, R) * row_len, *b = codes + cq_packed_row_of(r, 1, R) * row_len;
    if (bits == 4) {
#pragma omp simd
        for (int64_t c = 0; c < row_len; c++) dst[c] = (uint8_t)((a[c] & 15u) | (uint8_t)((b[c] & 15u) << 4));
        return;
    }
    const uint8_t *c2 = codes + cq_packed_row_of(r, 2, R) * row_len, *c3 = codes + cq_packed_row_of(r, 3, R) * row_len;
#pragma omp simd
    for (int64_t c = 0; c < row_len; c++)
        dst[c] = (uint8_t)((a[c] & 3u) | (uint8_t)((b[c] & 3u) << 2) | (uint8_t)((c2[c] & 3u) << 4) |
                           (uint8_t)((c3[c] & 3u) << 6));
}

void cq_pack_codes(const uint8_t *codes, int64_t n_rows, int64_t row_len, int bits, uint8_t *packed) {
    if (!codes || !packed || (bits != 2 && bits != 4)) return;
    int64_t vpi = 8 / bits, R = cq_packed_rows(n_rows, bits);
    uint8_t mask = (uint8_t)((1u << bits) - 1u);
#pragma omp parallel for schedule(static) num_threads(cq_get_num_threads()) if (R * row_len > 65536)
    for (int64_t r = 0; r < R; r++) {
        uint8_t *dst = packed + r * row_len;
        if (cq_packed_row_of(r, (int)vpi - 1, R) < n_rows) { /* every bit field has its row (all but the last few) */
            pack_full_row(codes, r, R, row_len, bits, dst);
            continue;
        }
        memset(dst, 0, (size_t)row_len);
        for (int i = 0; i < vpi && cq_packed_row_of(r, i, R) < n_rows; i++) {
            const uint8_t *src = codes + cq_packed_row_of(r, i, R) * row_len;
            int sh = bits * i;
            for (int64_t c = 0; c < row_len; c++) dst[c] |= (uint8_t)((src[c] & mask) << sh);
        }
    }
}

void cq_unpack_codes(const uint8_t *packed, int64_t n_rows, int64_t row_len, int bits, uint8_t *codes) {
    if (!packed || !codes || (bits != 2 && bits != 4)) return;
    int64_t R = cq_packed_rows(n_rows, bits);
    uint8_t mask = (uint8_t)((1u << bits) - 1u);
#pragma omp parallel for schedule(static) num_threads(cq_get_num_threads()) if (n_rows * row_len > 65536)
    for (int64_t row = 0; row < n_rows; row++) {
        const uint8_t *src = packed + cq_packed_byte_row(row, R) * row_len;
        uint8_t *dst = codes + row * row_len;
        int sh = bits * cq_packed_field(row, R);
        for (int64_t c = 0; c < row_len; c++) dst[c] = (uint8_t)((src[c] >> sh) & mask);
    }
}

static cq_status check_bits(int bits, cq_err *err) {
    if (bits != 2 && bits != 4) return cq_err_set(err, CQ_E_ARG, "packing: bits must be 2 or 4, got %d", bits);
    return CQ_OK;
}

cq_status cq_pack(const cq_tensor *codes, int bits, cq_tensor **packed, cq_err *err) {
    CQ__ARG(packed);
    *packed = NULL;
    CQ__ARG(codes);
    cq_status s = check_bits(bits, err);
    if (s) return s;
    if (codes->dtype != CQ_U8)
        return cq_err_set(err, CQ_E_DTYPE, "packing: codes have dtype %s; expected U8", cq_dtype_name(codes->dtype));
    if (codes->ndim < 1) return cq_err_set(err, CQ_E_SHAPE, "packing: codes must have at least one dim");
    int64_t n = codes->shape[0], row_len = cq_shape_numel(codes->ndim - 1, codes->shape + 1);
    const uint8_t *c = codes->data;
    int64_t total = n * row_len;
    for (int64_t i = 0; i < total; i++)
        if (c[i] >> bits)
            return cq_err_set(err, CQ_E_ARG, "packing: code %u at element %lld does not fit in %d bits", c[i],
                              (long long)i, bits);
    int64_t shape[CQ_MAX_DIMS];
    memcpy(shape, codes->shape, sizeof shape);
    shape[0] = cq_packed_rows(n, bits);
    s = cq_tensor_new(packed, CQ_U8, codes->ndim, shape, err);
    if (s) return s;
    cq_pack_codes(c, n, row_len, bits, (*packed)->data);
    return CQ_OK;
}

cq_status cq_unpack(const cq_tensor *packed, int bits, int64_t n_rows, cq_tensor **codes, cq_err *err) {
    CQ__ARG(codes);
    *codes = NULL;
    CQ__ARG(packed);
    cq_status s = check_bits(bits, err);
    if (s) return s;
    if (packed->dtype != CQ_U8)
        return cq_err_set(err, CQ_E_DTYPE, "unpacking: packed data has dtype %s; expected U8",
                          cq_dtype_name(packed->dtype));
    if (packed->ndim < 1) return cq_err_set(err, CQ_E_SHAPE, "unpacking: packed data must have at least one dim");
    if (n_rows < 0 || cq_packed_rows(n_rows, bits) != packed->shape[0])
        return cq_err_set(err, CQ_E_SHAPE, "unpacking: %lld packed rows cannot hold %lld rows of %d-bit codes "
                          "(expected %lld)", (long long)packed->shape[0], (long long)n_rows, bits,
                          (long long)cq_packed_rows(n_rows < 0 ? 0 : n_rows, bits));
    int64_t shape[CQ_MAX_DIMS];
    memcpy(shape, packed->shape, sizeof shape);
    shape[0] = n_rows;
    s = cq_tensor_new(codes, CQ_U8, packed->ndim, shape, err);
    if (s) return s;
    cq_unpack_codes(packed->data, n_rows, cq_shape_numel(packed->ndim - 1, packed->shape + 1), bits,
                    (*codes)->data);
    return CQ_OK;
}
