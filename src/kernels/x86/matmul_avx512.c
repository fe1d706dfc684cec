/*
 * matmul_avx512.c - AVX-512 (VNNI) tile kernels for cq_matmul: W8A8, weight-only exact and
 * weight-only fast, each bit-exact with ref/ref_matmul.c.
 *
 * One 512-bit vector holds 16 output rows (a tile), so each lane runs the reference's loop
 * for its own row: exact mode keeps one fused multiply-add per k in increasing k, and integer
 * sums are exact in any order. Decode (few activation rows) streams each tile once, unpacking
 * codes in registers. Prefill (M >= CQ5_PANEL_MIN_M) first expands a pair of tiles into a
 * panel in the thread's scratch (f32 weights for exact mode, unsigned bytes in the vpdpbusd
 * operand order for the integer modes) and then sweeps all activation rows over it.
 * Not here: argument checks and threading (matmul.c); the AMX prefill (matmul_amx.c).
 */
#include "kernels/x86/simd_avx512.h"

#define CQ5_PANEL_MIN_M 4
#define KIND_I8 0
#define KIND_I4 1
#define KIND_I2 2
#define KIND_E4M3 3
#define KIND_E5M2 4

static inline int kind_of(const cq_mm_weight *w) {
    if (w->is_float8) return w->qtype == CQ_QFLOAT8_E5M2 ? KIND_E5M2 : KIND_E4M3;
    return w->bits == 8 ? KIND_I8 : w->bits == 4 ? KIND_I4 : KIND_I2;
}

CQ_INLINE int kind_granule(int kind) { return kind == KIND_I8 ? 4 : kind == KIND_I4 ? 8 : kind == KIND_I2 ? 16 : 1; }

/* Byte offset, inside a tile, of the chunk holding padded position kk (a chunk start). */
CQ_INLINE size_t chunk_offset(int kind, int64_t kk) {
    switch (kind) {
    case KIND_I8: return (size_t)(kk / 4) * 64;
    case KIND_I4: return (size_t)(kk / 8) * 64;
    case KIND_I2: return (size_t)(kk / 16) * 64;
    default: return (size_t)kk * 16;
    }
}

CQ_INLINE const uint8_t *tile_ptr(const cq_mm_weight *w, int64_t t) { return w->codes + (size_t)t * w->tile_bytes; }

/* ---- fp8 decoding (as in vec_avx512.c) ------------------------------------------------------ */

/* e4m3fn -> f16 bits (magnitude << 7, sign to bit 15) is the value * 2^-8 for normal and
 * subnormal codes alike; f16 -> f32 and the power-of-two scale are exact, and no f32
 * denormal ever enters an arithmetic unit (those take microcode assists). NaN codes are
 * refused when the weight is packed. */
CQ_INLINE __m512 e4m3_to_ps(__m128i b) {
    __m256i v = _mm256_cvtepu8_epi16(b);
    __m256i h = _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x7f)), 7),
                                _mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x80)), 8));
    return _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(0x1p8f));
}

CQ_INLINE __m512 e5m2_to_ps(__m128i b) { return _mm512_cvtph_ps(_mm256_slli_epi16(_mm256_cvtepu8_epi16(b), 8)); }

/* ---- exact mode ------------------------------------------------------------------------------ */

/* Chunk data of one tile, loaded once: the 64-byte vector (integer kinds, qint8 made signed). */
CQ_INLINE __m512i load_chunk(int kind, const uint8_t *p) {
    __m512i v = _mm512_loadu_si512(p);
    return kind == KIND_I8 ? _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80)) : v;
}

/* Code j of the chunk (16 rows) as f32. */
CQ_INLINE __m512 int_code_ps(int kind, __m512i v, int j) {
    __m512i c;
    if (kind == KIND_I8) {
        c = _mm512_srai_epi32(_mm512_slli_epi32(v, 24 - 8 * j), 24);
    } else if (kind == KIND_I4) {
        int sh = j < 4 ? 8 * j : 8 * (j - 4) + 4;
        c = _mm512_and_si512(_mm512_srli_epi32(v, sh), _mm512_set1_epi32(15));
    } else {
        int sh = 8 * (j % 4) + 2 * (j / 4);
        c = _mm512_and_si512(_mm512_srli_epi32(v, sh), _mm512_set1_epi32(3));
    }
    return _mm512_cvtepi32_ps(c);
}

/* quanto's dequantization in the scale dtype sd: s*c (8-bit) or (s*c) - shift, rounded per op. */
CQ_INLINE __m512 deq(int kind, cq_dtype sd, __m512 c, __m512 s, __m512 sh) {
    __m512 v = cq5_round(_mm512_mul_ps(s, c), sd);
    if (kind == KIND_I4 || kind == KIND_I2) v = cq5_round(_mm512_sub_ps(v, sh), sd);
    return v;
}

/* Dequantized weights of `cnt` consecutive k (a chunk, or its head at a group's end) of NT
 * tiles, handed to `use(j, t, wv)`. Written as a macro-free visitor: the two callers (decode
 * FMA and panel fill) inline it with constant kind, sd and NT. */
#define FOR_CHUNK_WEIGHTS(kind, sd, NT, ptrs, cnt, s, sh, BODY)                                 \
    do {                                                                                         \
        if ((kind) == KIND_E4M3 || (kind) == KIND_E5M2) {                                       \
            for (int t = 0; t < (NT); t++) {                                                     \
                __m128i b_ = _mm_loadu_si128((const __m128i *)(ptrs)[t]);                        \
                __m512 f_ = (kind) == KIND_E4M3 ? e4m3_to_ps(b_) : e5m2_to_ps(b_);               \
                const int j = 0;                                                                 \
                __m512 wv = deq(kind, sd, f_, (s)[t], (s)[t]);                                    \
                BODY;                                                                            \
            }                                                                                    \
        } else {                                                                                 \
            __m512i v_[NT];                                                                      \
            for (int t = 0; t < (NT); t++) v_[t] = load_chunk(kind, (ptrs)[t]);                  \
            for (int j = 0; j < kind_granule(kind); j++) {                                       \
                if (j >= (cnt)) break;                                                           \
                for (int t = 0; t < (NT); t++) {                                                 \
                    __m512 wv = deq(kind, sd, int_code_ps(kind, v_[t], j), (s)[t], (sh)[t]);      \
                    BODY;                                                                        \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
    } while (0)

/* Decode: NT tiles from t0, one activation row; on-the-fly dequantization. */
CQ_INLINE void exact_decode(const cq__mm_args *a, int64_t t0, int64_t m, const int kind, const cq_dtype sd,
                            const int NT) {
    const cq_mm_weight *w = a->w;
    const float *x = a->xf + m * a->ldx;
    const int gran = kind_granule(kind);
    __m512 acc[4], s[4], sh[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t g = 0; g < w->groups; g++) {
        for (int t = 0; t < NT; t++) {
            s[t] = cq5_tile_scale(w, w->scale, t0 + t, g);
            sh[t] = w->shift ? cq5_tile_scale(w, w->shift, t0 + t, g) : s[t];
        }
        for (int64_t off = 0; off < w->gs; off += gran) {
            int cnt = w->gs - off < gran ? (int)(w->gs - off) : gran;
            const float *xk = x + g * w->gs + off;
            const uint8_t *p[4];
            for (int t = 0; t < NT; t++) p[t] = tile_ptr(w, t0 + t) + chunk_offset(kind, g * w->gsp + off);
            FOR_CHUNK_WEIGHTS(kind, sd, NT, p, cnt, s, sh,
                              acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(xk[j]), wv, acc[t]));
        }
    }
    for (int t = 0; t < NT; t++) cq5_store_out(a, m, t0 + t, acc[t], cq5_tile_mask(w, t0 + t));
}

/* Prefill: dequantizes NT tiles into panel[t][k][16] (logical k). */
CQ_INLINE void exact_fill_panel(const cq_mm_weight *w, int64_t t0, float *panel, const int kind, const cq_dtype sd,
                                const int NT) {
    const int gran = kind_granule(kind);
    __m512 s[2], sh[2];
    for (int64_t g = 0; g < w->groups; g++) {
        for (int t = 0; t < NT; t++) {
            s[t] = cq5_tile_scale(w, w->scale, t0 + t, g);
            sh[t] = w->shift ? cq5_tile_scale(w, w->shift, t0 + t, g) : s[t];
        }
        for (int64_t off = 0; off < w->gs; off += gran) {
            int cnt = w->gs - off < gran ? (int)(w->gs - off) : gran;
            int64_t k0 = g * w->gs + off;
            const uint8_t *p[2];
            for (int t = 0; t < NT; t++) p[t] = tile_ptr(w, t0 + t) + chunk_offset(kind, g * w->gsp + off);
            FOR_CHUNK_WEIGHTS(kind, sd, NT, p, cnt, s, sh,
                              _mm512_storeu_ps(panel + ((size_t)t * (size_t)w->k + (size_t)(k0 + j)) * 16, wv));
        }
    }
}

/* MR activation rows x NT panel tiles, every k in order: acc = fma(x[k], w[k], acc). */
CQ_INLINE void exact_panel_rows(const cq__mm_args *a, int64_t t0, int64_t m, const float *panel, const int MR,
                                const int NT) {
    const cq_mm_weight *w = a->w;
    __m512 acc[12][2];
    const float *x[12];
    for (int i = 0; i < MR; i++) {
        x[i] = a->xf + (m + i) * a->ldx;
        for (int t = 0; t < NT; t++) acc[i][t] = _mm512_setzero_ps();
    }
    const float *p1 = panel + (size_t)w->k * 16;
    for (int64_t k = 0; k < w->k; k++) {
        __m512 w0 = _mm512_loadu_ps(panel + k * 16), w1 = NT > 1 ? _mm512_loadu_ps(p1 + k * 16) : w0;
        for (int i = 0; i < MR; i++) {
            __m512 xv = _mm512_set1_ps(x[i][k]);
            acc[i][0] = _mm512_fmadd_ps(xv, w0, acc[i][0]);
            if (NT > 1) acc[i][1] = _mm512_fmadd_ps(xv, w1, acc[i][1]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int t = 0; t < NT; t++) cq5_store_out(a, m + i, t0 + t, acc[i][t], cq5_tile_mask(w, t0 + t));
}

static void exact_panel_all_rows(const cq__mm_args *a, int64_t t0, int64_t m0, int64_t m1, const float *panel,
                                 int nt) {
    int64_t m = m0;
    if (nt == 2) {
        for (; m + 12 <= m1; m += 12) exact_panel_rows(a, t0, m, panel, 12, 2);
        for (; m + 4 <= m1; m += 4) exact_panel_rows(a, t0, m, panel, 4, 2);
        for (; m < m1; m++) exact_panel_rows(a, t0, m, panel, 1, 2);
    } else {
        for (; m + 12 <= m1; m += 12) exact_panel_rows(a, t0, m, panel, 12, 1);
        for (; m + 4 <= m1; m += 4) exact_panel_rows(a, t0, m, panel, 4, 1);
        for (; m < m1; m++) exact_panel_rows(a, t0, m, panel, 1, 1);
    }
}

CQ_INLINE void exact_kind(const cq__mm_args *a, int64_t t0, int64_t t1, int64_t m0, int64_t m1, void *scratch,
                          const int kind, const cq_dtype sd) {
    const cq_mm_weight *w = a->w;
    if (m1 - m0 < CQ5_PANEL_MIN_M || !scratch) {
        for (int64_t m = m0; m < m1; m++) {
            int64_t t = t0;
            for (; t + 4 <= t1; t += 4) exact_decode(a, t, m, kind, sd, 4);
            for (; t < t1; t++) exact_decode(a, t, m, kind, sd, 1);
        }
        return;
    }
    float *panel = scratch;
    for (int64_t t = t0; t < t1; t += 2) {
        if (t + 2 <= t1) {
            exact_fill_panel(w, t, panel, kind, sd, 2);
            exact_panel_all_rows(a, t, m0, m1, panel, 2);
        } else {
            exact_fill_panel(w, t, panel, kind, sd, 1);
            exact_panel_all_rows(a, t, m0, m1, panel, 1);
        }
    }
}

#define EXACT_SD(kind)                                                                   \
    switch (a->w->scale_dtype) {                                                         \
    case CQ_BF16: exact_kind(a, t0, t1, m0, m1, scratch, kind, CQ_BF16); break;         \
    case CQ_F16: exact_kind(a, t0, t1, m0, m1, scratch, kind, CQ_F16); break;           \
    default: exact_kind(a, t0, t1, m0, m1, scratch, kind, CQ_F32); break;               \
    }

static void matmul_exact(const cq__mm_args *a, int64_t t0, int64_t t1, int64_t m0, int64_t m1, void *scratch) {
    switch (kind_of(a->w)) {
    case KIND_I8: EXACT_SD(KIND_I8); break;
    case KIND_I4: EXACT_SD(KIND_I4); break;
    case KIND_I2: EXACT_SD(KIND_I2); break;
    case KIND_E4M3: EXACT_SD(KIND_E4M3); break;
    default: EXACT_SD(KIND_E5M2); break;
    }
}

static size_t scratch_exact(const cq_mm_weight *w, int64_t m) {
    return m < CQ5_PANEL_MIN_M ? 0 : (size_t)w->k * 16 * sizeof(float) * 2;
}

/* ---- integer modes (W8A8 and fast) ------------------------------------------------------------
 * Both compute, per activation block, the exact int32 sums of u8 weight bytes times s8
 * activations with vpdpbusd: qint8 weights are stored biased (w + 128), so their true sum is
 * the vpdpbusd sum - 128 * (sum of the block's activations); qint2/4 codes are already
 * unsigned. Decode unpacks 2/4-bit codes in registers; prefill expands a pair of tiles to
 * bytes in scratch first. */

/* The integer operand of one chunk: for chunk c, quad q, the 64 bytes (16 rows x 4 k). */
CQ_INLINE __m512i unpack_quad(int kind, __m512i v, int q) {
    if (kind == KIND_I8) return v;
    if (kind == KIND_I4) return _mm512_and_si512(q ? _mm512_srli_epi16(v, 4) : v, _mm512_set1_epi8(0x0f));
    return _mm512_and_si512(_mm512_srli_epi16(v, 2 * q), _mm512_set1_epi8(0x03));
}

/* Per-block epilogue shared by decode and prefill (ref: cq__ref_matmul_fast). */
CQ_INLINE __m512 fast_block_acc(int kind, __m512 facc, __m512i isum, const cq__qblock *blk, __m512 s, __m512 sh) {
    if (kind == KIND_I8) isum = _mm512_sub_epi32(isum, _mm512_set1_epi32(128 * blk->qsum));
    __m512 t = _mm512_mul_ps(s, _mm512_cvtepi32_ps(isum));
    facc = _mm512_fmadd_ps(_mm512_set1_ps(blk->d), t, facc);
    if (kind != KIND_I8) facc = _mm512_fnmadd_ps(sh, _mm512_set1_ps(blk->dq), facc);
    return facc;
}

/* W8A8 epilogue: y = round_s(float(acc - 128*xsum) * round_s(x_scale * s)). */
CQ_INLINE void w8a8_store(const cq__mm_args *a, int64_t m, int64_t t, __m512i acc) {
    const cq_mm_weight *w = a->w;
    __m512i isum = _mm512_sub_epi32(acc, _mm512_set1_epi32(128 * a->xsum[m]));
    __m512 os = cq5_round(_mm512_mul_ps(_mm512_set1_ps(a->x_scale), cq5_tile_scale(w, w->scale, t, 0)), w->scale_dtype);
    __m512 v = cq5_round(_mm512_mul_ps(_mm512_cvtepi32_ps(isum), os), w->scale_dtype);
    cq5_store_out(a, m, t, v, cq5_tile_mask(w, t));
}

/* Decode W8A8: one row, NT tiles, quads unrolled by 2 with separate accumulators (exact). */
CQ_INLINE void w8a8_decode(const cq__mm_args *a, int64_t t0, int64_t m, const int NT) {
    const cq_mm_weight *w = a->w;
    const int8_t *x = a->xq + m * a->ldx;
    int64_t nq = w->kp / 4, full = w->k / 4;
    __m512i acc0[4], acc1[4];
    const uint8_t *p[4];
    for (int t = 0; t < NT; t++) {
        acc0[t] = acc1[t] = _mm512_setzero_si512();
        p[t] = tile_ptr(w, t0 + t);
    }
    int64_t j = 0;
    for (; j + 2 <= full; j += 2) {
        __m512i x0 = cq5_bcast4(x + 4 * j), x1 = cq5_bcast4(x + 4 * j + 4);
        for (int t = 0; t < NT; t++) {
            acc0[t] = _mm512_dpbusd_epi32(acc0[t], _mm512_loadu_si512(p[t] + 64 * j), x0);
            acc1[t] = _mm512_dpbusd_epi32(acc1[t], _mm512_loadu_si512(p[t] + 64 * j + 64), x1);
        }
    }
    for (; j < nq; j++) {
        int32_t xv = 0;
        memcpy(&xv, x + 4 * j, (size_t)(w->k - 4 * j < 4 ? w->k - 4 * j : 4));
        for (int t = 0; t < NT; t++)
            acc0[t] = _mm512_dpbusd_epi32(acc0[t], _mm512_loadu_si512(p[t] + 64 * j), _mm512_set1_epi32(xv));
    }
    for (int t = 0; t < NT; t++) w8a8_store(a, m, t0 + t, _mm512_add_epi32(acc0[t], acc1[t]));
}

/* Decode fast mode: one row, NT tiles. */
CQ_INLINE void fast_decode(const cq__mm_args *a, int64_t t0, int64_t m, const int kind, const int NT) {
    const cq_mm_weight *w = a->w;
    const uint8_t *row = a->xb + (size_t)m * cq__qrow_bytes(w);
    const int8_t *xq = (const int8_t *)row;
    const cq__qblock *blocks = (const cq__qblock *)(row + cq__qrow_codes_bytes(w));
    const int gran = kind_granule(kind), quads = gran / 4;
    __m512 facc[4];
    const uint8_t *base[4];
    for (int t = 0; t < NT; t++) {
        facc[t] = _mm512_setzero_ps();
        base[t] = tile_ptr(w, t0 + t);
    }
    for (int64_t g = 0; g < w->groups; g++) {
        __m512 s[4], sh[4];
        for (int t = 0; t < NT; t++) {
            s[t] = cq5_tile_scale(w, w->scale, t0 + t, g);
            sh[t] = w->shift ? cq5_tile_scale(w, w->shift, t0 + t, g) : s[t];
        }
        for (int64_t b = 0; b < w->nblk; b++) {
            int64_t k0 = g * w->gsp + b * w->blk;
            int64_t k1 = b + 1 < w->nblk ? k0 + w->blk : (g + 1) * w->gsp;
            __m512i ia[4][2];
            for (int t = 0; t < NT; t++) ia[t][0] = ia[t][1] = _mm512_setzero_si512();
            for (int64_t kk = k0; kk < k1; kk += gran) {
                for (int t = 0; t < NT; t++) {
                    __m512i v = _mm512_loadu_si512(base[t] + chunk_offset(kind, kk));
                    for (int q = 0; q < quads; q++)
                        ia[t][q & 1] = _mm512_dpbusd_epi32(ia[t][q & 1], unpack_quad(kind, v, q),
                                                            cq5_bcast4(xq + kk + 4 * q));
                }
            }
            const cq__qblock *blk = &blocks[g * w->nblk + b];
            for (int t = 0; t < NT; t++)
                facc[t] = fast_block_acc(kind, facc[t], _mm512_add_epi32(ia[t][0], ia[t][1]), blk, s[t], sh[t]);
        }
    }
    for (int t = 0; t < NT; t++) cq5_store_out(a, m, t0 + t, facc[t], cq5_tile_mask(w, t0 + t));
}

/* Prefill: the NT tiles as unsigned bytes, quad-major (64 bytes per quad per tile): qint8
 * tiles are used in place, 2/4-bit tiles are expanded into scratch. */
static const uint8_t *byte_panel(const cq_mm_weight *w, int kind, int64_t t, uint8_t *scratch) {
    if (kind == KIND_I8) return tile_ptr(w, t);
    const uint8_t *src = tile_ptr(w, t);
    int64_t chunks = w->kp / kind_granule(kind), quads = kind_granule(kind) / 4;
    for (int64_t c = 0; c < chunks; c++) {
        __m512i v = _mm512_loadu_si512(src + 64 * c);
        for (int q = 0; q < quads; q++) _mm512_storeu_si512(scratch + 64 * (c * quads + q), unpack_quad(kind, v, q));
    }
    return scratch;
}

/* MR rows x NT byte-panel tiles over quads [q0, q1): int32 sums into acc (added). x[i]
 * points at row i's activations of quad q0. */
CQ_INLINE void int_panel_quads(__m512i acc[6][2], const int8_t *const *x, const uint8_t *const *pn, int64_t q0,
                               int64_t q1, const int MR, const int NT) {
    for (int64_t q = q0; q < q1; q++) {
        __m512i w0 = _mm512_loadu_si512(pn[0] + 64 * q);
        __m512i w1 = NT > 1 ? _mm512_loadu_si512(pn[1] + 64 * q) : w0;
        for (int i = 0; i < MR; i++) {
            __m512i xv = cq5_bcast4(x[i] + 4 * (q - q0));
            acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], w0, xv);
            if (NT > 1) acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], w1, xv);
        }
    }
}

/* Prefill fast mode: MR quantized rows from m x NT tiles. */
CQ_INLINE void fast_panel_rows(const cq__mm_args *a, int64_t t0, int64_t m, const uint8_t *const *pn, const int kind,
                               const int MR, const int NT) {
    const cq_mm_weight *w = a->w;
    size_t rb = cq__qrow_bytes(w), cb = cq__qrow_codes_bytes(w);
    const int8_t *x[6];
    const cq__qblock *blocks[6];
    __m512 facc[6][2];
    for (int i = 0; i < MR; i++) {
        const uint8_t *row = a->xb + (size_t)(m + i) * rb;
        x[i] = (const int8_t *)row;
        blocks[i] = (const cq__qblock *)(row + cb);
        for (int t = 0; t < NT; t++) facc[i][t] = _mm512_setzero_ps();
    }
    for (int64_t g = 0; g < w->groups; g++) {
        __m512 s[2], sh[2];
        for (int t = 0; t < NT; t++) {
            s[t] = cq5_tile_scale(w, w->scale, t0 + t, g);
            sh[t] = w->shift ? cq5_tile_scale(w, w->shift, t0 + t, g) : s[t];
        }
        for (int64_t b = 0; b < w->nblk; b++) {
            int64_t k0 = g * w->gsp + b * w->blk;
            int64_t k1 = b + 1 < w->nblk ? k0 + w->blk : (g + 1) * w->gsp;
            __m512i acc[6][2];
            for (int i = 0; i < MR; i++)
                for (int t = 0; t < NT; t++) acc[i][t] = _mm512_setzero_si512();
            const int8_t *xb[6];
            for (int i = 0; i < MR; i++) xb[i] = x[i] + k0;
            int_panel_quads(acc, xb, pn, k0 / 4, k1 / 4, MR, NT);
            for (int i = 0; i < MR; i++) {
                const cq__qblock *blk = &blocks[i][g * w->nblk + b];
                for (int t = 0; t < NT; t++) facc[i][t] = fast_block_acc(kind, facc[i][t], acc[i][t], blk, s[t], sh[t]);
            }
        }
    }
    for (int i = 0; i < MR; i++)
        for (int t = 0; t < NT; t++) cq5_store_out(a, m + i, t0 + t, facc[i][t], cq5_tile_mask(w, t0 + t));
}

/* Prefill W8A8: MR int8 rows x NT tiles; rows are read 4 bytes at a time, so the quad that
 * straddles K is handled from a zero-padded copy. */
CQ_INLINE void w8a8_panel_rows(const cq__mm_args *a, int64_t t0, int64_t m, const uint8_t *const *pn, const int MR,
                               const int NT) {
    const cq_mm_weight *w = a->w;
    const int8_t *x[6];
    __m512i acc[6][2];
    for (int i = 0; i < MR; i++) {
        x[i] = a->xq + (m + i) * a->ldx;
        for (int t = 0; t < NT; t++) acc[i][t] = _mm512_setzero_si512();
    }
    int64_t full = w->k / 4;
    int_panel_quads(acc, x, pn, 0, full, MR, NT);
    if (full < w->kp / 4) {
        int8_t tail[6][4] = {{0}};
        const int8_t *tx[6];
        for (int i = 0; i < MR; i++) {
            memcpy(tail[i], x[i] + 4 * full, (size_t)(w->k - 4 * full));
            tx[i] = tail[i];
        }
        int_panel_quads(acc, tx, pn, full, full + 1, MR, NT);
    }
    for (int i = 0; i < MR; i++)
        for (int t = 0; t < NT; t++) w8a8_store(a, m + i, t0 + t, acc[i][t]);
}

#define ROWS_BY_6(CALL6, CALL1)                         \
    do {                                                \
        int64_t m_ = m0;                                \
        for (; m_ + 6 <= m1; m_ += 6) CALL6;           \
        for (; m_ < m1; m_++) CALL1;                    \
    } while (0)

CQ_INLINE void int_kind(const cq__mm_args *a, int64_t t0, int64_t t1, int64_t m0, int64_t m1, void *scratch,
                        const int kind, const bool w8a8) {
    const cq_mm_weight *w = a->w;
    if (m1 - m0 < CQ5_PANEL_MIN_M || (kind != KIND_I8 && !scratch)) {
        for (int64_t m = m0; m < m1; m++) {
            int64_t t = t0;
            for (; t + 2 <= t1; t += 2) {
                if (w8a8) w8a8_decode(a, t, m, 2);
                else fast_decode(a, t, m, kind, 2);
            }
            for (; t < t1; t++) {
                if (w8a8) w8a8_decode(a, t, m, 1);
                else fast_decode(a, t, m, kind, 1);
            }
        }
        return;
    }
    uint8_t *sp = scratch;
    size_t panel_bytes = (size_t)w->kp * 16;
    for (int64_t t = t0; t < t1; t += 2) {
        int nt = t + 2 <= t1 ? 2 : 1;
        const uint8_t *pn[2];
        for (int i = 0; i < nt; i++) pn[i] = byte_panel(w, kind, t + i, sp + (size_t)i * panel_bytes);
        if (w8a8) {
            if (nt == 2) ROWS_BY_6(w8a8_panel_rows(a, t, m_, pn, 6, 2), w8a8_panel_rows(a, t, m_, pn, 1, 2));
            else ROWS_BY_6(w8a8_panel_rows(a, t, m_, pn, 6, 1), w8a8_panel_rows(a, t, m_, pn, 1, 1));
        } else {
            if (nt == 2) ROWS_BY_6(fast_panel_rows(a, t, m_, pn, kind, 6, 2), fast_panel_rows(a, t, m_, pn, kind, 1, 2));
            else ROWS_BY_6(fast_panel_rows(a, t, m_, pn, kind, 6, 1), fast_panel_rows(a, t, m_, pn, kind, 1, 1));
        }
    }
}

static void matmul_w8a8(const cq__mm_args *a, int64_t t0, int64_t t1, int64_t m0, int64_t m1, void *scratch) {
    int_kind(a, t0, t1, m0, m1, scratch, KIND_I8, true);
}

static void matmul_fast(const cq__mm_args *a, int64_t t0, int64_t t1, int64_t m0, int64_t m1, void *scratch) {
    switch (kind_of(a->w)) {
    case KIND_I8: int_kind(a, t0, t1, m0, m1, scratch, KIND_I8, false); break;
    case KIND_I4: int_kind(a, t0, t1, m0, m1, scratch, KIND_I4, false); break;
    default: int_kind(a, t0, t1, m0, m1, scratch, KIND_I2, false); break;
    }
}

static size_t scratch_fast(const cq_mm_weight *w, int64_t m) {
    return m < CQ5_PANEL_MIN_M || w->bits == 8 ? 0 : (size_t)w->kp * 16 * 2;
}

/* ---- the table ----------------------------------------------------------------------------- */

void cq__avx512_f32_to_f16(const float *x, uint16_t *y, int64_t n);
void cq__avx512_f16_to_f32(const uint16_t *x, float *y, int64_t n);
void cq__avx512_f32_to_bf16(const float *x, uint16_t *y, int64_t n);
void cq__avx512_bf16_to_f32(const uint16_t *x, float *y, int64_t n);
void cq__avx512_f32_to_e4m3(const float *x, uint8_t *y, int64_t n);
void cq__avx512_e4m3_to_f32(const uint8_t *x, float *y, int64_t n);
void cq__avx512_f32_to_e5m2(const float *x, uint8_t *y, int64_t n);
void cq__avx512_e5m2_to_f32(const uint8_t *x, float *y, int64_t n);
float cq__avx512_absmax(const void *x, cq_dtype t, int64_t n);
void cq__avx512_quantize_i8(const void *x, cq_dtype t, int64_t n, float scale, int8_t *q);
void cq__avx512_dequantize_i8(const int8_t *q, int64_t n, float scale, void *y, cq_dtype t);
void cq__avx512_quantize_rows(const cq_mm_weight *w, const void *x, cq_dtype xt, int64_t ldx, int64_t m0, int64_t m1,
                              uint8_t *xb);

const cq__kernels cq__kernels_avx512 = {
    .f32_to_f16 = cq__avx512_f32_to_f16,
    .f16_to_f32 = cq__avx512_f16_to_f32,
    .f32_to_bf16 = cq__avx512_f32_to_bf16,
    .bf16_to_f32 = cq__avx512_bf16_to_f32,
    .f32_to_e4m3 = cq__avx512_f32_to_e4m3,
    .e4m3_to_f32 = cq__avx512_e4m3_to_f32,
    .f32_to_e5m2 = cq__avx512_f32_to_e5m2,
    .e5m2_to_f32 = cq__avx512_e5m2_to_f32,
    .absmax = cq__avx512_absmax,
    .quantize_i8 = cq__avx512_quantize_i8,
    .dequantize_i8 = cq__avx512_dequantize_i8,
    .quantize_rows = cq__avx512_quantize_rows,
    .matmul_w8a8 = matmul_w8a8,
    .matmul_exact = matmul_exact,
    .matmul_fast = matmul_fast,
    .scratch_exact = scratch_exact,
    .scratch_fast = scratch_fast,
};
