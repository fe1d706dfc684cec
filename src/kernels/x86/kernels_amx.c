/*
 * kernels_amx.c - the amx level: prefill-sized integer matmuls (W8A8 and fast mode) on AMX
 * tiles, bit-exact with the reference. Everything else, and what the tiles do not cover, runs
 * the avx512 level's kernels: decode shapes, the last M % 32 rows, W8A8's last K % 64 inputs,
 * and fast mode with activation blocks that are not whole 64-input chunks.
 *
 * Tiles: C0..C3 are a 32x32 block of int32 sums (two 16-row activation tiles A0, A1 times two
 * 16-column weight tiles B0, B1, each 64 inputs deep). A weight tile of the packed layout is
 * already a B operand (16 quads x 16 rows x 4 bytes, stride 64); 2/4-bit weights are first
 * expanded to bytes in the thread's scratch. tdpbsud multiplies signed activations by
 * unsigned weight bytes, the same products as vpdpbusd, so the epilogues are the avx512 ones.
 */
#include "kernels/x86/simd_avx512.h"

#include "kernels/simd_common.inc"

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;
_Static_assert(sizeof(tile_config) == 64, "ldtilecfg reads 64 bytes");

/* Every tile 16 rows x 64 bytes: C 16x16 int32, A 16 rows x 64 k, B 16 quads x 16 cols x 4. */
static void load_tile_config(void) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) cfg.colsb[i] = 64, cfg.rows[i] = 16;
    /* Not _tile_loadconfig(&cfg): GCC 12 declares that builtin's memory operand as 8 bytes, so
     * the optimizer may drop the stores filling the rest of cfg (llama.cpp built so dies with
     * SIGILL). This operand covers all 64 bytes. */
    __asm__ volatile("ldtilecfg %0" ::"m"(*(const struct { unsigned char b[64]; } *)&cfg));
}

#define AMX_ROWS 32 /* activation rows per block: two A tiles */

/* The avx512 kernel of the same slot, which takes what the tiles do not cover. */
static const cq__kernel *below(cq__op op, const cq_mm_weight *w) { return cq__kernel_at(CQ_ISA_AVX512, op, cq__wfmt_of(w)); }

/* Output tiles per cache block (even): their weights (16 x K bytes each) stay in L2 while
 * every 32-row activation block passes over them, so activations are read from memory once
 * per block of tiles rather than once per tile pair. */
static int64_t chunk_tiles(const cq_mm_weight *w) {
    int64_t nb = (768 << 10) / (16 * cq__round_up(w->kp, 64));
    nb = nb < 2 ? 2 : nb > 16 ? 16 : nb;
    return nb & ~(int64_t)1;
}

#define AMX_SUPER 512 /* activation rows packed at a time */
#define PREFETCH_CHUNKS 2

/* Packs `rows` (a multiple of 16) activation rows of `chunks` 64-byte chunks into tile order:
 * [16-row group][chunk][16 rows x 64 bytes], so each A tile is 1 KB of consecutive lines
 * (rows 4 KB apart would fight over a few L1 sets). */
static void pack_rows(const int8_t *src, size_t lda, int64_t rows, int64_t chunks, int8_t *dst) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < chunks; c++)
            _mm512_storeu_si512(dst + ((size_t)((r / 16) * chunks + c) * 1024) + (size_t)(r % 16) * 64,
                                _mm512_loadu_si512(src + (size_t)r * lda + 64 * (size_t)c));
}

/* A 32x32 block of sums and what its epilogue needs. For W8A8 the epilogue of a finished block
 * runs while the tile unit works on the next one, a row at a time spread over the chunks, so
 * the vector work overlaps the tile multiplies instead of following them. */
typedef struct {
    bool live;
    int64_t m, t;
    int nt;
    int32_t *cbuf;
    /* W8A8 */
    vf os[2];
    const uint8_t *B[2];
    /* fast mode: block b of group g, accumulated into facc; `last` block also stores y */
    int64_t g, b;
    vf s[2], sh[2];
    const uint8_t *rows;
    size_t rb, cb; /* row stride and block-record offset of the quantized rows */
    float *facc;
    bool last;
} pending;

#define UNITS AMX_ROWS /* epilogue units per block: one row of 16 or 32 outputs each */

/* Fast-mode block epilogue of row i (ref: cq__ref_matmul_fast). */
CQ_INLINE void fast_unit(const cq__mm_args *a, const pending *p, int i) {
    const cq_mm_weight *w = a->w;
    const cq__qblock *blk = (const cq__qblock *)(p->rows + (size_t)i * p->rb + p->cb) + p->g * w->nblk + p->b;
    bool affine = w->bits < 8;
    vf d = vf_set1(blk->d), dq = vf_set1(blk->dq);
    vi corr = vi_set1(affine ? 0 : CQ_SIMD_INT8_BIAS * blk->qsum);
    for (int j = 0; j < p->nt; j++) {
        float *f = p->facc + 512 * j + 16 * i;
        vf acc = vf_fmadd(d, vf_mul(p->s[j], vf_from_i32(vi_sub(vi_loadu(p->cbuf + 512 * j + 16 * i), corr))), vf_loadu(f));
        if (affine) acc = vf_fnmadd(p->sh[j], dq, acc);
        if (p->last) store_out(a, p->m + i, p->t + j, acc);
        else vf_storeu(f, acc);
    }
}

/* W8A8 epilogue of row i: the K % 64 tail by vpdpbusd, then
 * y = round_s(float(acc - 128 * xsum) * round_s(x_scale * s)). */
CQ_INLINE void w8a8_unit(const cq__mm_args *a, const pending *p, int i) {
    const cq_mm_weight *w = a->w;
    const int8_t *x = a->xq + (p->m + i) * a->ldx;
    vi xs = vi_set1(CQ_SIMD_INT8_BIAS * a->xsum[p->m + i]);
    for (int j = 0; j < p->nt; j++) {
        vi acc = vi_loadu(p->cbuf + 512 * j + 16 * i);
        for (int64_t q = w->k / 64 * 16; q < w->kp / 4; q++) {
            int8_t quad[4] = {0, 0, 0, 0};
            memcpy(quad, x + 4 * q, (size_t)(w->k - 4 * q < 4 ? w->k - 4 * q : 4));
            acc = vi_dp_int8(acc, vi_loadu(p->B[j] + 64 * q), vi_bcast4(quad));
        }
        store_out(a, p->m + i, p->t + j, vf_round(vf_mul(vf_from_i32(vi_sub(acc, xs)), p->os[j]), w->scale_dtype));
    }
}

CQ_INLINE void amx_block_n(const int8_t *Ap, int64_t chunks, const uint8_t *const *B, const int nt, int64_t c0,
                           int64_t c1, int32_t *cbuf, const cq__mm_args *a, pending *prev) {
    const int8_t *A1 = Ap + (size_t)chunks * 1024;
    bool spread = prev && prev->live;
    int u = 0;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t c = c0; c < c1; c++) {
        /* Tile registers are not renamed, so a tile load waits for the products still reading
         * its register: fetch the chunk after next into L1 meanwhile. */
        if (c + PREFETCH_CHUNKS < c1) {
            for (int l = 0; l < 1024; l += 64) {
                _mm_prefetch((const char *)(Ap + 1024 * (c + PREFETCH_CHUNKS) + l), _MM_HINT_T0);
                _mm_prefetch((const char *)(A1 + 1024 * (c + PREFETCH_CHUNKS) + l), _MM_HINT_T0);
                _mm_prefetch((const char *)(B[0] + 1024 * (c + PREFETCH_CHUNKS) + l), _MM_HINT_T0);
                if (nt > 1) _mm_prefetch((const char *)(B[1] + 1024 * (c + PREFETCH_CHUNKS) + l), _MM_HINT_T0);
            }
        }
        _tile_loadd(4, Ap + 1024 * c, 64);
        _tile_loadd(5, A1 + 1024 * c, 64);
        _tile_loadd(6, B[0] + 1024 * c, 64);
        _tile_dpbsud(0, 4, 6);
        _tile_dpbsud(2, 5, 6);
        if (nt > 1) {
            _tile_loadd(7, B[1] + 1024 * c, 64);
            _tile_dpbsud(1, 4, 7);
            _tile_dpbsud(3, 5, 7);
        }
        /* units spread evenly over the chunks */
        for (int64_t due = spread ? (c - c0 + 1) * UNITS / (c1 - c0) : 0; u < due; u++) w8a8_unit(a, prev, u);
    }
    for (; spread && u < UNITS; u++) w8a8_unit(a, prev, u);
    if (prev) prev->live = false;
    /* cbuf: tile j rows 0-15 then 16-31, each row 16 int32 */
    _tile_stored(0, cbuf, 64);
    _tile_stored(2, cbuf + 256, 64);
    if (nt > 1) {
        _tile_stored(1, cbuf + 512, 64);
        _tile_stored(3, cbuf + 768, 64);
    }
}

static void amx_block(const int8_t *Ap, int64_t chunks, const uint8_t *const *B, int nt, int64_t c0, int64_t c1,
                      int32_t *cbuf, const cq__mm_args *a, pending *prev) {
    if (nt > 1) amx_block_n(Ap, chunks, B, 2, c0, c1, cbuf, a, prev);
    else amx_block_n(Ap, chunks, B, 1, c0, c1, cbuf, a, prev);
}

/* ---- W8A8 ------------------------------------------------------------------------------------ */

static void amx_matmul_w8a8(const cq__mm_args *a, int64_t t0, int64_t t1, int64_t m0, int64_t m1, void *scratch) {
    const cq_mm_weight *w = a->w;
    int64_t kc = w->k / 64, ma = m0 + (m1 - m0) / AMX_ROWS * AMX_ROWS;
    if (kc == 0 || ma == m0 || !scratch) {
        below(CQ__OP_matmul_w8a8, w)->fn.matmul_w8a8(a, t0, t1, m0, m1, scratch);
        return;
    }
    int32_t *cbufs[2] = {scratch, (int32_t *)scratch + 1024}; /* double-buffered sums */
    int8_t *Ap = (int8_t *)scratch + 8192;
    int64_t nb = chunk_tiles(w);
    pending pend = {0}, next = {0};
    int buf = 0;
    load_tile_config();
    for (int64_t ms = m0; ms < ma; ms += AMX_SUPER) {
        int64_t me = ms + AMX_SUPER < ma ? ms + AMX_SUPER : ma;
        pack_rows(a->xq + ms * a->ldx, (size_t)a->ldx, me - ms, kc, Ap);
        for (int64_t tc = t0; tc < t1; tc += nb)
        for (int64_t m = ms; m < me; m += AMX_ROWS)
        for (int64_t t = tc; t < t1 && t < tc + nb; t += 2) {
            next.live = true, next.m = m, next.t = t, next.cbuf = cbufs[buf];
            next.nt = t + 2 <= t1 && t + 2 <= tc + nb ? 2 : 1;
            next.B[0] = w->codes + (size_t)t * w->tile_bytes;
            next.B[1] = w->codes + (size_t)(t + 1) * w->tile_bytes;
            for (int j = 0; j < next.nt; j++)
                next.os[j] = vf_round(vf_mul(vf_set1(a->x_scale), tile_scale(w, w->scale, t + j, 0)), w->scale_dtype);
            amx_block(Ap + (size_t)((m - ms) / 16 * kc) * 1024, kc, next.B, next.nt, 0, kc, next.cbuf, a, &pend);
            pend = next;
            buf ^= 1;
        }
    }
    for (int u = 0; pend.live && u < UNITS; u++) w8a8_unit(a, &pend, u);
    _tile_release();
    if (ma < m1) below(CQ__OP_matmul_w8a8, w)->fn.matmul_w8a8(a, t0, t1, ma, m1, scratch);
}

static size_t amx_scratch_w8a8(const cq_mm_weight *w, int64_t m) {
    if (m < AMX_ROWS) return 0;
    return 8192 + (size_t)(m < AMX_SUPER ? m : AMX_SUPER) * (size_t)(w->k / 64) * 64;
}

/* ---- fast mode ---------------------------------------------------------------------------- */

/* Activation blocks made of whole 64-input chunks (padding past the row end is zero in both
 * operands). */
static bool fast_tiles_ok(const cq_mm_weight *w) { return w->groups == 1 || (w->gsp % 64 == 0 && w->blk % 64 == 0); }

static size_t panel_bytes(const cq_mm_weight *w) { return (size_t)cq__round_up(w->kp, 64) * 16; }

/* Tile t as bytes, 64-input chunks of 1 KB, zero-padded to whole chunks: qint8 in place. */
static const uint8_t *byte_panel(const cq_mm_weight *w, int64_t t, uint8_t *out) {
    const uint8_t *src = w->codes + (size_t)t * w->tile_bytes;
    if (w->bits == 8) return src;
    int per = 8 / w->bits; /* quads per 64-byte chunk of the layout */
    int64_t chunks = w->kp * w->bits / 32;
    __m512i mask = _mm512_set1_epi8(w->bits == 4 ? 0x0f : 0x03);
    for (int64_t c = 0; c < chunks; c++) {
        __m512i v = _mm512_loadu_si512(src + 64 * c);
        for (int q = 0; q < per; q++)
            _mm512_storeu_si512(out + 64 * (c * per + q), _mm512_and_si512(_mm512_srli_epi16(v, (unsigned)cq__tile_shift(w->bits, 4 * q)), mask));
    }
    memset(out + (size_t)w->kp * 16, 0, panel_bytes(w) - (size_t)w->kp * 16);
    return out;
}

/* Fast mode: per activation block, the block's chunks on the tiles, then its epilogue row by
 * row (running it under the next block's multiplies, as W8A8 does, measured slower here: a
 * g128 block is only two chunks long). */
static void amx_matmul_fast(const cq__mm_args *a, int64_t t0, int64_t t1, int64_t m0, int64_t m1, void *scratch) {
    const cq_mm_weight *w = a->w;
    int64_t ma = m0 + (m1 - m0) / AMX_ROWS * AMX_ROWS;
    if (!fast_tiles_ok(w) || ma == m0 || !scratch) {
        below(CQ__OP_matmul_fast, w)->fn.matmul_fast(a, t0, t1, m0, m1, scratch);
        return;
    }
    int64_t nb = chunk_tiles(w), chunks = cq__ceil_div(w->kp, 64);
    uint8_t *panels = (uint8_t *)scratch + 8192;
    int8_t *Ap = (int8_t *)panels + (size_t)nb * panel_bytes(w);
    size_t rb = cq__qrow_bytes(w);
    const uint8_t *B_all[16];
    pending blk = {0};
    blk.cbuf = scratch, blk.facc = (float *)scratch + 1024;
    blk.rb = rb, blk.cb = cq__qrow_codes_bytes(w);
    load_tile_config();
    for (int64_t ms = m0; ms < ma; ms += AMX_SUPER) {
        int64_t me = ms + AMX_SUPER < ma ? ms + AMX_SUPER : ma;
        pack_rows((const int8_t *)a->xb + (size_t)ms * rb, rb, me - ms, chunks, Ap);
        for (int64_t tc = t0; tc < t1; tc += nb) {
            int64_t te = tc + nb < t1 ? tc + nb : t1;
            for (int64_t t = tc; t < te; t++) B_all[t - tc] = byte_panel(w, t, panels + (size_t)(t - tc) * panel_bytes(w));
            for (int64_t m = ms; m < me; m += AMX_ROWS)
            for (int64_t t = tc; t < te; t += 2) {
                int nt = t + 2 <= te ? 2 : 1;
                const uint8_t *B[2] = {B_all[t - tc], B_all[t - tc + nt - 1]};
                const int8_t *Am = Ap + (size_t)((m - ms) / 16 * chunks) * 1024;
                blk.m = m, blk.t = t, blk.nt = nt, blk.rows = a->xb + (size_t)m * rb;
                memset(blk.facc, 0, 4096);
                for (int64_t g = 0; g < w->groups; g++) {
                    for (int j = 0; j < nt; j++) {
                        blk.s[j] = tile_scale(w, w->scale, t + j, g);
                        blk.sh[j] = w->bits < 8 ? tile_scale(w, w->shift, t + j, g) : blk.s[j];
                    }
                    for (int64_t b = 0; b < w->nblk; b++) {
                        int64_t k0 = g * w->gsp + b * w->blk;
                        int64_t k1 = b + 1 < w->nblk ? k0 + w->blk : (g + 1) * w->gsp;
                        blk.g = g, blk.b = b, blk.last = g + 1 == w->groups && b + 1 == w->nblk;
                        amx_block(Am, chunks, B, nt, k0 / 64, cq__ceil_div(k1, 64), blk.cbuf, a, NULL);
                        for (int i = 0; i < AMX_ROWS; i++) fast_unit(a, &blk, i);
                    }
                }
            }
        }
    }
    _tile_release();
    if (ma < m1) below(CQ__OP_matmul_fast, w)->fn.matmul_fast(a, t0, t1, ma, m1, scratch);
}

static size_t amx_scratch_fast(const cq_mm_weight *w, int64_t m) {
    const cq__kernel *b = below(CQ__OP_matmul_fast, w);
    size_t vnni = b->scratch ? b->scratch(w, m) : 0;
    size_t mine = m < AMX_ROWS || !fast_tiles_ok(w)
                      ? 0
                      : 8192 + (size_t)chunk_tiles(w) * panel_bytes(w) +
                            (size_t)(m < AMX_SUPER ? m : AMX_SUPER) * (size_t)cq__round_up(w->kp, 64);
    return mine > vnni ? mine : vnni;
}

/* Only the prefill matmuls have AMX kernels; the dispatcher takes every other slot from the
 * avx512 level. */
#define AMX_GEMM(op, wfmt, act, wt, fn, scratch) \
    {CQ__GEMM_NAME(act, wt, 32, 32, "amx"), CQ__OP_##op, wfmt, CQ_ISA_AMX, 0, 32, 32, {.op = fn}, scratch},
static const cq__kernel amx_kernels[] = {
    AMX_GEMM(matmul_w8a8, CQ__W_QINT8, "qs8", "qc8w", amx_matmul_w8a8, amx_scratch_w8a8)
    AMX_GEMM(matmul_fast, CQ__W_QINT8, "qd8", "qc8w", amx_matmul_fast, amx_scratch_fast)
    AMX_GEMM(matmul_fast, CQ__W_QINT4, "qd8", "qb4w", amx_matmul_fast, amx_scratch_fast)
    AMX_GEMM(matmul_fast, CQ__W_QINT2, "qd8", "qb2w", amx_matmul_fast, amx_scratch_fast)
};

const cq__kernel_list cq__kernels_amx = {amx_kernels, (int)CQ_ARRAY_LEN(amx_kernels)};
