/*
 * test_kernels.c - the quantized matmul: repack / unpack round trips, the reference against an
 * independent statement of the spec computed from the canonical tensors, every ISA level this
 * CPU runs against the reference (bit for bit: tails of every unroll, M = 1, odd N and K,
 * misaligned buffers, canaries after outputs, zero scales, extreme values), thread-count
 * determinism, and argument errors. Needs only core + kernels.
 */
#include "test_kernels_util.h"

/* ---- weight cases ---------------------------------------------------------------------- */

typedef struct {
    cq_qtype q;
    int64_t n, k, gs; /* gs: 0 per channel */
    cq_dtype sd;
    bool unpacked;
    int bits;
    int64_t groups, nscale; /* groups per row; scale entries */
    uint8_t *codes;         /* logical [n][k]: the raw byte (8-bit) or the code */
    uint8_t *data;          /* the canonical data tensor as given to cq_mm_weight_new */
    size_t data_bytes;
    void *scale, *shift;
    cq_mm_weight *w;
} wcase;

/* The qtype's name without src/quant (these tests link only core + kernels). */
static const char *qname(cq_qtype q) {
    switch (q) {
    case CQ_QINT8: return "qint8";
    case CQ_QINT4: return "qint4";
    case CQ_QINT2: return "qint2";
    case CQ_QFLOAT8_E4M3FN: return "qfloat8_e4m3fn";
    case CQ_QFLOAT8_E5M2: return "qfloat8_e5m2";
    default: return "?";
    }
}

static int qbits(cq_qtype q) { return q == CQ_QINT4 ? 4 : q == CQ_QINT2 ? 2 : 8; }

/* A random byte that is a valid, finite code of qtype q. */
static uint8_t rand_code(krng *r, cq_qtype q, int bits) {
    for (;;) {
        uint8_t b = (uint8_t)krng_u32(r);
        if (bits < 8) return (uint8_t)(b & ((1 << bits) - 1));
        if (q == CQ_QFLOAT8_E4M3FN && (b & 0x7f) == 0x7f) continue;
        if (q == CQ_QFLOAT8_E5M2 && (b & 0x7c) == 0x7c) continue;
        return b;
    }
}

/* mode 0: random; 1: extremes (every code at its range ends); 2: zero scales everywhere;
 * 3: wild scales and shifts (huge, tiny, denormal: outside the "tame" range, so the exact
 * mode's general rounding path runs, with overflow to inf and denormal products). */
static wcase wcase_make(cq_qtype q, int64_t n, int64_t k, int64_t gs, cq_dtype sd, bool unpacked, uint64_t seed,
                        int mode) {
    wcase c = {0};
    krng r = {seed * 0x9E3779B97F4A7C15ull + 1};
    c.q = q, c.n = n, c.k = k, c.gs = gs, c.sd = sd, c.unpacked = unpacked;
    c.bits = qbits(q);
    int64_t egs = (c.bits == 8 || gs == 0) ? k : gs;
    c.groups = k / egs;
    c.nscale = n * c.groups;
    c.codes = malloc((size_t)(n * k));
    for (int64_t i = 0; i < n * k; i++) {
        uint8_t b = rand_code(&r, q, c.bits);
        if (mode == 1) {
            bool hi = krng_u32(&r) & 1;
            if (c.bits < 8) b = hi ? (uint8_t)((1 << c.bits) - 1) : 0;
            else if (q == CQ_QINT8) b = hi ? 0x7f : 0x80;
            else if (q == CQ_QFLOAT8_E4M3FN) b = hi ? 0x7e : 0xfe;
            else b = hi ? 0x7b : 0xfb;
        }
        c.codes[i] = b;
    }
    size_t se = cq_dtype_size(sd);
    c.scale = malloc((size_t)c.nscale * se);
    c.shift = c.bits < 8 ? malloc((size_t)c.nscale * se) : NULL;
    for (int64_t i = 0; i < c.nscale; i++) {
        float s = (0.002f + 0.05f * fabsf(krng_f(&r))) * (q == CQ_QFLOAT8_E5M2 ? 1e-3f : 1.0f);
        if (mode == 2 || (i % 7) == 3) s = 0.0f; /* zero scales: constant groups */
        float sh = krng_f(&r) * 0.3f;
        if (mode == 3) {
            static const float wild[] = {1e-38f, 3e38f, 1e-40f, 6e4f, 0.01f, 1e-30f, 2e37f};
            s = wild[krng_u32(&r) % 7];
            sh = wild[krng_u32(&r) % 7] * (krng_u32(&r) & 1 ? 1.0f : -1.0f);
        }
        cq_store_f32(c.scale, sd, i, s);
        if (c.shift) cq_store_f32(c.shift, sd, i, sh);
    }
    if (c.bits == 8 || unpacked) {
        c.data_bytes = (size_t)(n * k);
        c.data = malloc(c.data_bytes);
        memcpy(c.data, c.codes, c.data_bytes);
    } else {
        /* canonical packing along dim 0 of the grouped (G, gs) view: row r shares a byte
         * with rows r + R, r + 2R ... (QUANTO-FORMAT.md 3.1) */
        int64_t rows = n * c.groups, rl = egs, vpi = 8 / c.bits, R = (rows + vpi - 1) / vpi;
        c.data_bytes = (size_t)(R * rl);
        c.data = calloc(c.data_bytes, 1);
        for (int64_t gi = 0; gi < rows; gi++)
            for (int64_t j = 0; j < rl; j++) {
                int64_t nn = gi / c.groups, kk = (gi % c.groups) * egs + j;
                c.data[(gi % R) * rl + j] |= (uint8_t)(c.codes[nn * k + kk] << (c.bits * (gi / R)));
            }
    }
    cq_mm_weight_src src = {q, n, k, gs, c.data, unpacked, c.scale, c.shift, sd, CQ_DTYPE_INVALID};
    cq_err err = {0};
    if (cq_mm_weight_new(&c.w, &src, &err) != CQ_OK) printf("  wcase_make: %s\n", err.msg);
    return c;
}

static void wcase_free(wcase *c) {
    cq_mm_weight_free(c->w);
    free(c->codes);
    free(c->data);
    free(c->scale);
    free(c->shift);
}

/* ---- the spec, computed straight from the canonical tensors --------------------------- */

static float rnd(float v, cq_dtype t) { return t == CQ_F32 ? v : cq_round_to_dtype(v, t); }

static float spec_scale(const wcase *c, int64_t n, int64_t k) {
    int64_t egs = c->k / c->groups;
    return cq_load_f32(c->scale, c->sd, n * c->groups + k / egs);
}
static float spec_shift(const wcase *c, int64_t n, int64_t k) {
    int64_t egs = c->k / c->groups;
    return cq_load_f32(c->shift, c->sd, n * c->groups + k / egs);
}

static float spec_deq(const wcase *c, int64_t n, int64_t k) {
    uint8_t b = c->codes[n * c->k + k];
    float s = spec_scale(c, n, k);
    if (c->q == CQ_QFLOAT8_E4M3FN) return rnd(s * cq_f8_e4m3fn_to_f32(b), c->sd);
    if (c->q == CQ_QFLOAT8_E5M2) return rnd(s * cq_f8_e5m2_to_f32(b), c->sd);
    if (c->q == CQ_QINT8) return rnd(s * (float)(int8_t)b, c->sd);
    return rnd(rnd(s * (float)b, c->sd) - spec_shift(c, n, k), c->sd);
}

static void spec_store(float *y, int64_t i, float v, const float *bias, int64_t n, cq_dtype yt) {
    v = rnd(v, yt);
    if (bias) v = rnd(v + bias[n], yt);
    y[i] = v;
}

/* Exact mode: acc = fmaf(x, w, acc) over k. Output as f32 values (rounded to yt). */
static void spec_exact(const wcase *c, int64_t M, const float *x, int64_t ldx, const float *bias, cq_dtype yt, float *y) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < c->n; n++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < c->k; k++) acc = fmaf(x[m * ldx + k], spec_deq(c, n, k), acc);
            spec_store(y, m * c->n + n, acc, bias, n, yt);
        }
}

static void spec_w8a8(const wcase *c, int64_t M, const int8_t *x, int64_t ldx, float xs, const float *bias,
                      cq_dtype yt, float *y) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < c->n; n++) {
            int32_t acc = 0;
            for (int64_t k = 0; k < c->k; k++) acc += (int32_t)x[m * ldx + k] * (int8_t)c->codes[n * c->k + k];
            float os = rnd(xs * spec_scale(c, n, 0), c->sd);
            spec_store(y, m * c->n + n, rnd((float)acc * os, c->sd), bias, n, yt);
        }
}

/* Fast mode: blocks of the group (gs <= 256) or of 128 inside longer groups. */
static void spec_fast(const wcase *c, int64_t M, const float *x, int64_t ldx, const float *bias, cq_dtype yt,
                      float *y) {
    int64_t egs = c->k / c->groups, blk = egs <= 256 ? egs : 128;
    int8_t *q = malloc((size_t)c->k);
    int64_t nb = c->groups * ((egs + blk - 1) / blk);
    float *d = malloc((size_t)nb * sizeof(float));
    int32_t *qs = malloc((size_t)nb * sizeof(int32_t));
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * ldx;
        int64_t bi = 0;
        for (int64_t g = 0; g < c->groups; g++)
            for (int64_t k0 = g * egs; k0 < (g + 1) * egs; k0 += blk, bi++) {
                int64_t k1 = k0 + blk < (g + 1) * egs ? k0 + blk : (g + 1) * egs;
                float amax = 0;
                for (int64_t k = k0; k < k1; k++)
                    if (fabsf(xr[k]) > amax) amax = fabsf(xr[k]);
                d[bi] = 0, qs[bi] = 0;
                for (int64_t k = k0; k < k1; k++) q[k] = 0;
                if (!(amax >= 0x1p-100f)) continue;
                d[bi] = amax / 127.0f;
                float id = 1.0f / d[bi];
                for (int64_t k = k0; k < k1; k++) {
                    float v = xr[k] * id;
                    v = v != v ? -127.0f : v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v;
                    q[k] = (int8_t)nearbyintf(v);
                    qs[bi] += q[k];
                }
            }
        for (int64_t n = 0; n < c->n; n++) {
            float acc = 0.0f;
            bi = 0;
            for (int64_t g = 0; g < c->groups; g++)
                for (int64_t k0 = g * egs; k0 < (g + 1) * egs; k0 += blk, bi++) {
                    int64_t k1 = k0 + blk < (g + 1) * egs ? k0 + blk : (g + 1) * egs;
                    int32_t isum = 0;
                    for (int64_t k = k0; k < k1; k++) {
                        int cv = c->q == CQ_QINT8 ? (int8_t)c->codes[n * c->k + k] : c->codes[n * c->k + k];
                        isum += cv * q[k];
                    }
                    acc = fmaf(d[bi], spec_scale(c, n, k0) * (float)isum, acc);
                    if (c->bits < 8) acc = fmaf(-spec_shift(c, n, k0), d[bi] * (float)qs[bi], acc);
                }
            spec_store(y, m * c->n + n, acc, bias, n, yt);
        }
    }
    free(q);
    free(d);
    free(qs);
}

/* ---- running cq_matmul at a level ------------------------------------------------------ */

typedef struct {
    int64_t M, ldx, ldy;
    cq_dtype xt, yt;
    const void *x;
    const float *bias;
    cq_matmul_mode mode;
    float xs;
    size_t y_misalign; /* bytes */
} mm_call;

/* The slot of a call. */
static cq__op op_of(const mm_call *mc) {
    return mc->xt == CQ_I8 ? CQ__OP_matmul_w8a8 : mc->mode == CQ_MATMUL_FAST ? CQ__OP_matmul_fast : CQ__OP_matmul_exact;
}

/* Runs kernel k (NULL: the dispatched one, through cq_matmul) into a fresh canary-guarded y;
 * returns the y values as f32 [M][N] (malloc) or NULL on error; checks the canaries and the
 * gaps between rows. */
static float *run_with(const wcase *c, const mm_call *mc, const cq__kernel *k, int *canary_ok) {
    size_t es = cq_dtype_size(mc->yt);
    kbuf yb = kbuf_new((size_t)(mc->M * mc->ldy) * es, mc->y_misalign);
    cq_matmul_opts o = cq_matmul_default_opts();
    o.mode = mc->mode;
    o.bias = mc->bias;
    o.x_scale = mc->xs;
    o.work_size = k ? cq__matmul_work_size_with(k, c->w, mc->M, mc->xt) : cq_matmul_work_size(c->w, mc->M, mc->xt, mc->mode);
    o.work = o.work_size ? malloc(o.work_size) : NULL;
    cq_err err = {0};
    cq_status st = k ? cq__matmul_with(k, c->w, mc->M, mc->x, mc->xt, mc->ldx, yb.p, mc->yt, mc->ldy, &o, &err)
                     : cq_matmul(c->w, mc->M, mc->x, mc->xt, mc->ldx, yb.p, mc->yt, mc->ldy, &o, &err);
    free(o.work);
    float *out = NULL;
    *canary_ok = kbuf_canaries_ok(&yb);
    if (st == CQ_OK) {
        out = malloc((size_t)(mc->M * c->n) * sizeof(float) + 1);
        for (int64_t m = 0; m < mc->M; m++) {
            for (int64_t n = 0; n < c->n; n++) out[m * c->n + n] = cq_load_f32(yb.p, mc->yt, m * mc->ldy + n);
            for (int64_t n = c->n; n < mc->ldy; n++)
                for (size_t b = 0; b < es; b++)
                    if (yb.p[(size_t)(m * mc->ldy + n) * es + b] != CANARY) *canary_ok = 0;
        }
    } else {
        printf("  cq_matmul with %s: %s\n", k ? k->name : "the dispatched kernel", err.msg);
    }
    kbuf_free(&yb);
    return out;
}

static int same_bits(const float *a, const float *b, int64_t n, int64_t *where) {
    for (int64_t i = 0; i < n; i++)
        if (cq__f32_bits(a[i]) != cq__f32_bits(b[i])) {
            *where = i;
            return 0;
        }
    return 1;
}

/* Activations for a call: f32 values (bf16-exact when xt is BF16) in a misaligned buffer. */
typedef struct {
    kbuf buf;
    float *xf; /* the f32 view the spec uses, [M][ldx] */
} acts;

static acts make_acts(int64_t M, int64_t ldx, cq_dtype xt, size_t misalign, krng *r, float scale) {
    acts a;
    a.xf = malloc((size_t)(M * ldx) * sizeof(float) + 1);
    a.buf = kbuf_new((size_t)(M * ldx) * cq_dtype_size(xt), misalign);
    for (int64_t i = 0; i < M * ldx; i++) {
        float v = krng_n(r, scale);
        if (xt == CQ_I8) {
            int8_t q = (int8_t)(krng_u32(r) & 0xff);
            ((int8_t *)a.buf.p)[i] = q;
            a.xf[i] = q;
        } else {
            cq_store_f32(a.buf.p, xt, i, v);
            a.xf[i] = cq_load_f32(a.buf.p, xt, i);
        }
    }
    return a;
}

static void free_acts(acts *a) {
    kbuf_free(&a->buf);
    free(a->xf);
}

/* Runs kernel k (NULL: cq_matmul) and compares it with the reference's output. */
static int matches_ref(const wcase *c, const mm_call *mc, const cq__kernel *k, const float *ref, const char *label) {
    int canary;
    int64_t where = 0;
    const char *name = k ? k->name : "cq_matmul";
    float *got = run_with(c, mc, k, &canary);
    CHECKF(got && canary, "%s: %s run failed or overwrote canaries", label, name);
    int ok = got && canary;
    if (got && !same_bits(got, ref, mc->M * c->n, &where)) {
        CHECKF(0, "%s: %s differs from ref at [m %lld, n %lld]: %a vs %a", label, name, (long long)(where / c->n),
               (long long)(where % c->n), got[where], ref[where]);
        ok = 0;
    }
    free(got);
    return ok;
}

/* Checks one configuration: the reference kernel of its slot against the spec, every other
 * registered kernel of the slot (that the CPU runs and the cap allows) and the dispatched
 * cq_matmul against the reference. Returns 1 if all matched. */
static int check_config(const wcase *c, int64_t M, cq_dtype xt, cq_dtype yt, cq_matmul_mode mode, bool with_bias,
                        uint64_t seed, const char *label) {
    krng r = {seed + 77};
    int64_t ldx = c->k + (int64_t)(seed % 3), ldy = c->n + (int64_t)(seed % 2) * 3;
    size_t xmis = xt == CQ_I8 ? (size_t)(seed % 5) : cq_dtype_size(xt) * (seed % 3);
    acts a = make_acts(M, ldx, xt, xmis, &r, 1.5f);
    float *bias = NULL;
    if (with_bias) {
        bias = malloc((size_t)c->n * sizeof(float));
        for (int64_t n = 0; n < c->n; n++) bias[n] = krng_f(&r);
    }
    float xs = 0.01f + 0.01f * fabsf(krng_f(&r));
    mm_call mc = {M, ldx, ldy, xt, yt, a.buf.p, bias, mode, xs, cq_dtype_size(yt) * (seed % 2)};
    float *spec = malloc((size_t)(M * c->n) * sizeof(float) + 1);
    if (xt == CQ_I8) spec_w8a8(c, M, (const int8_t *)a.buf.p, ldx, xs, bias, yt, spec);
    else if (mode == CQ_MATMUL_FAST) spec_fast(c, M, a.xf, ldx, bias, yt, spec);
    else spec_exact(c, M, a.xf, ldx, bias, yt, spec);

    int ok = 1, canary;
    int64_t where = 0;
    cq__op op = op_of(&mc);
    float *ref = run_with(c, &mc, cq__kernel_at(CQ_ISA_REF, op, cq__wfmt_of(c->w)), &canary);
    CHECKF(ref && canary, "%s: reference run failed or overwrote canaries", label);
    if (!ref) ok = 0;
    if (ref && !same_bits(ref, spec, M * c->n, &where)) {
        CHECKF(0, "%s: ref differs from the spec at %lld: %a vs %a", label, (long long)where, ref[where], spec[where]);
        ok = 0;
    }
    if (ref) {
        FOR_EACH_KERNEL(k, op, cq__wfmt_of(c->w)) ok &= matches_ref(c, &mc, k, ref, label);
        ok &= matches_ref(c, &mc, NULL, ref, label); /* the dispatched kernel, through cq_matmul */
    }
    if (ok) CHECK(ok);
    free(ref);
    free(spec);
    free(bias);
    free_acts(&a);
    return ok;
}

/* ---- tests ------------------------------------------------------------------------------ */

static const cq_qtype k_qtypes[] = {CQ_QINT8, CQ_QINT4, CQ_QINT2, CQ_QFLOAT8_E4M3FN, CQ_QFLOAT8_E5M2};

TST(kernel_mm_weight_roundtrip_lossless) {
    const int64_t shapes[][3] = {{1, 1, 0}, {3, 5, 0}, {16, 32, 8}, {17, 48, 16}, {33, 96, 32}, {5, 40, 20},
                                 {50, 128, 64}, {7, 300, 0}, {2, 256, 128}, {31, 24, 3}};
    for (size_t qi = 0; qi < CQ_ARRAY_LEN(k_qtypes); qi++)
        for (size_t si = 0; si < CQ_ARRAY_LEN(shapes); si++)
            for (int unpacked = 0; unpacked < 2; unpacked++) {
                cq_qtype q = k_qtypes[qi];
                int64_t gs = qbits(q) == 8 ? 0 : shapes[si][2];
                wcase c = wcase_make(q, shapes[si][0], shapes[si][1], gs, si % 3 == 0 ? CQ_BF16 : CQ_F32, unpacked,
                                     si * 31 + qi, 0);
                CHECK(c.w != NULL);
                if (!c.w) continue;
                uint8_t *data = calloc(c.data_bytes, 1);
                size_t sb = (size_t)c.nscale * cq_dtype_size(c.sd);
                uint8_t *sc = malloc(sb), *sh = malloc(sb);
                CHECK(cq_mm_weight_unpack(c.w, unpacked, data, sc, c.shift ? sh : NULL, NULL) == CQ_OK);
                CHECK_BYTES(data, c.data, c.data_bytes, "codes after repack + unpack");
                CHECK_BYTES(sc, c.scale, sb, "scales after repack + unpack");
                if (c.shift) CHECK_BYTES(sh, c.shift, sb, "shifts after repack + unpack");
                cq_mm_weight_info info;
                cq_mm_weight_get_info(c.w, &info);
                CHECK(info.out_features == c.n && info.in_features == c.k && info.nbytes > 0);
                free(data);
                free(sc);
                free(sh);
                wcase_free(&c);
            }
}

TST(kernel_mm_weight_rejects_bad_input) {
    uint8_t d[64] = {0}, sc[64] = {0};
    cq_mm_weight *w = (cq_mm_weight *)1;
    cq_err err = {0};
    cq_mm_weight_src s = {CQ_QINT4, 4, 8, 3, d, false, sc, sc, CQ_F32, CQ_DTYPE_INVALID};
    CHECK(cq_mm_weight_new(&w, &s, &err) == CQ_E_ARG && w == NULL && strstr(err.msg, "group_size"));
    s.group_size = 4, s.shift = NULL;
    CHECK(cq_mm_weight_new(&w, &s, &err) == CQ_E_ARG && strstr(err.msg, "shift"));
    s.shift = sc, s.codes_unpacked = true;
    d[5] = 16; /* not a 4-bit code */
    CHECK(cq_mm_weight_new(&w, &s, &err) == CQ_E_ARG && strstr(err.msg, "exceeds"));
    cq_mm_weight_src f = {CQ_QFLOAT8_E4M3FN, 2, 2, 0, d, false, sc, NULL, CQ_F32, CQ_DTYPE_INVALID};
    d[0] = 0x7f;
    CHECK(cq_mm_weight_new(&w, &f, &err) == CQ_E_ARG && strstr(err.msg, "NaN"));
    f.qtype = CQ_QFLOAT8_E4M3FNUZ;
    CHECK(cq_mm_weight_new(&w, &f, &err) == CQ_E_UNSUPPORTED);
    f.qtype = CQ_QINT8, f.scale_dtype = CQ_F64;
    CHECK(cq_mm_weight_new(&w, &f, &err) == CQ_E_DTYPE);
    f.scale_dtype = CQ_F32, f.out_features = 0;
    CHECK(cq_mm_weight_new(&w, &f, &err) == CQ_E_SHAPE);
    CHECK(cq_mm_weight_new(&w, NULL, &err) == CQ_E_ARG);
    cq_mm_weight_free(NULL);
}

/* Shapes: N around the tile (16) and pair (32) sizes; K around every granule (4, 8, 16) and
 * block; M = 1 (decode) and past the panel threshold. */
static const int64_t k_ns[] = {1, 15, 16, 17, 33, 47};
static const int64_t k_ms[] = {1, 2, 5, 7, 13};

TST(kernel_matmul_exact_all_levels_match_ref) {
    const int64_t ks[][2] = {{1, 0}, {3, 0}, {7, 0}, {16, 0}, {29, 0}, {64, 32}, {96, 32}, {40, 8}, {51, 17}, {300, 0},
                             {256, 128}};
    const cq_dtype sds[] = {CQ_F32, CQ_BF16, CQ_F16};
    uint64_t seed = 1;
    for (size_t qi = 0; qi < CQ_ARRAY_LEN(k_qtypes); qi++)
        for (size_t ki = 0; ki < CQ_ARRAY_LEN(ks); ki++) {
            cq_qtype q = k_qtypes[qi];
            int64_t gs = qbits(q) == 8 ? 0 : ks[ki][1];
            for (size_t ni = 0; ni < CQ_ARRAY_LEN(k_ns); ni += 1 + (ki % 2)) {
                seed++;
                cq_dtype sd = sds[seed % 3];
                wcase c = wcase_make(q, k_ns[ni], ks[ki][0], gs, sd, seed % 2, seed,
                                     seed % 11 == 0 ? 1 : seed % 5 == 2 ? 3 : 0);
                if (!c.w) {
                    CHECK(c.w != NULL);
                    continue;
                }
                int64_t M = k_ms[seed % CQ_ARRAY_LEN(k_ms)];
                char label[128];
                snprintf(label, sizeof label, "exact %s N=%lld K=%lld gs=%lld sd=%s M=%lld", qname(q),
                         (long long)c.n, (long long)c.k, (long long)gs, cq_dtype_name(sd), (long long)M);
                cq_dtype xt = seed % 4 == 0 ? CQ_BF16 : CQ_F32;
                cq_dtype yt = seed % 5 == 0 ? CQ_BF16 : seed % 5 == 1 ? CQ_F16 : CQ_F32;
                check_config(&c, M, xt, yt, CQ_MATMUL_EXACT, seed % 3 == 0, seed, label);
                wcase_free(&c);
            }
        }
}

TST(kernel_matmul_fast_all_levels_match_ref) {
    const int64_t ks[][2] = {{1, 0}, {5, 0}, {16, 0}, {33, 0}, {64, 32}, {96, 32}, {128, 64}, {256, 128},
                             {300, 0}, {512, 256}, {640, 320}, {48, 16}};
    const cq_qtype qs[] = {CQ_QINT8, CQ_QINT4, CQ_QINT2};
    uint64_t seed = 1000;
    for (size_t qi = 0; qi < CQ_ARRAY_LEN(qs); qi++)
        for (size_t ki = 0; ki < CQ_ARRAY_LEN(ks); ki++) {
            cq_qtype q = qs[qi];
            int64_t gs = qbits(q) == 8 ? 0 : ks[ki][1];
            for (size_t ni = 0; ni < CQ_ARRAY_LEN(k_ns); ni += 1 + (ki % 2)) {
                seed++;
                cq_dtype sd = seed % 3 == 0 ? CQ_BF16 : seed % 3 == 1 ? CQ_F16 : CQ_F32;
                wcase c = wcase_make(q, k_ns[ni], ks[ki][0], gs, sd, seed % 2, seed, seed % 9 == 0 ? 1 : 0);
                if (!c.w) {
                    CHECK(c.w != NULL);
                    continue;
                }
                int64_t M = k_ms[seed % CQ_ARRAY_LEN(k_ms)];
                char label[128];
                snprintf(label, sizeof label, "fast %s N=%lld K=%lld gs=%lld M=%lld", qname(q), (long long)c.n,
                         (long long)c.k, (long long)gs, (long long)M);
                check_config(&c, M, seed % 4 == 0 ? CQ_BF16 : CQ_F32, seed % 5 == 0 ? CQ_BF16 : CQ_F32,
                             CQ_MATMUL_FAST, seed % 3 == 0, seed, label);
                wcase_free(&c);
            }
        }
}

TST(kernel_matmul_w8a8_all_levels_match_ref) {
    const int64_t ks[] = {1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 65, 130, 257};
    uint64_t seed = 5000;
    for (size_t ki = 0; ki < CQ_ARRAY_LEN(ks); ki++)
        for (size_t ni = 0; ni < CQ_ARRAY_LEN(k_ns); ni++) {
            seed++;
            cq_dtype sd = seed % 3 == 0 ? CQ_BF16 : CQ_F32;
            wcase c = wcase_make(CQ_QINT8, k_ns[ni], ks[ki], 0, sd, false, seed, seed % 7 == 0 ? 1 : 0);
            int64_t M = k_ms[seed % CQ_ARRAY_LEN(k_ms)];
            char label[128];
            snprintf(label, sizeof label, "w8a8 N=%lld K=%lld M=%lld", (long long)c.n, (long long)c.k, (long long)M);
            check_config(&c, M, CQ_I8, seed % 4 == 0 ? CQ_BF16 : CQ_F32, CQ_MATMUL_EXACT, seed % 2 == 0, seed, label);
            wcase_free(&c);
        }
}

/* The largest sums W8A8 allows (K = 65536, every product at +-128 * +-128 or 127 * 127) must
 * not overflow any variant's int32 accumulators. */
TST(kernel_matmul_w8a8_extreme_sums) {
    int64_t K = CQ_W8A8_MAX_K, N = 16;
    for (int pattern = 0; pattern < 2; pattern++) {
        uint8_t *wd = malloc((size_t)(N * K));
        float *sc = malloc((size_t)N * sizeof(float));
        for (int64_t i = 0; i < N * K; i++) wd[i] = pattern ? 0x80 : 0x7f;
        for (int64_t n = 0; n < N; n++) sc[n] = 1.0f;
        cq_mm_weight_src s = {CQ_QINT8, N, K, 0, wd, false, sc, NULL, CQ_F32, CQ_DTYPE_INVALID};
        cq_mm_weight *w = NULL;
        CHECK(cq_mm_weight_new(&w, &s, NULL) == CQ_OK);
        int8_t *x = malloc((size_t)K);
        memset(x, pattern ? 0x80 : 0x7f, (size_t)K);
        float y[16];
        const cq__kernel *ref = cq__kernel_at(CQ_ISA_REF, CQ__OP_matmul_w8a8, CQ__W_QINT8);
        for (const cq__kernel *k = ref; k; k = next_kernel(k == ref ? NULL : k, CQ__OP_matmul_w8a8, CQ__W_QINT8)) {
            cq_matmul_opts o = cq_matmul_default_opts();
            o.work_size = cq__matmul_work_size_with(k, w, 1, CQ_I8);
            o.work = malloc(o.work_size + 1);
            CHECK(cq__matmul_with(k, w, 1, x, CQ_I8, K, y, CQ_F32, N, &o, NULL) == CQ_OK);
            free(o.work);
            float want = pattern ? 1073741824.0f : (float)(127 * 127 * K);
            CHECKF(y[0] == want && y[N - 1] == want, "%s: %f vs %f", k->name, y[0], want);
        }
        free(x);
        free(wd);
        free(sc);
        cq_mm_weight_free(w);
    }
}

/* Each (N, K, gs, M) case at qint8, qint4 and qint2: W8A8 (qint8), fast mode and, if `exact`,
 * exact mode, every kernel against the reference. */
static void check_shapes(const int64_t (*cases)[4], size_t ncases, uint64_t seed, const char *tag, bool exact) {
    for (size_t i = 0; i < ncases; i++)
        for (size_t qi = 0; qi < 3; qi++) {
            seed++;
            cq_qtype q = k_qtypes[qi];
            int64_t gs = qbits(q) == 8 ? 0 : cases[i][2], M = cases[i][3];
            wcase c = wcase_make(q, cases[i][0], cases[i][1], gs, seed % 2 ? CQ_BF16 : CQ_F32, false, seed, 0);
            char label[128];
            snprintf(label, sizeof label, "%s %s N=%lld K=%lld gs=%lld M=%lld", tag, qname(q), (long long)c.n,
                     (long long)c.k, (long long)gs, (long long)M);
            if (q == CQ_QINT8) check_config(&c, M, CQ_I8, CQ_F32, CQ_MATMUL_EXACT, true, seed, label);
            check_config(&c, M, CQ_F32, seed % 3 ? CQ_F32 : CQ_BF16, CQ_MATMUL_FAST, false, seed, label);
            if (exact) check_config(&c, M, CQ_F32, CQ_F32, CQ_MATMUL_EXACT, true, seed, label);
            wcase_free(&c);
        }
}

/* Prefill-sized products exercise the panel and (on AMX machines) tile paths. */
TST(kernel_matmul_prefill_shapes_match_ref) {
    const int64_t cases[][4] = {/* N, K, gs, M */ {64, 256, 0, 40}, {48, 256, 128, 33}, {96, 128, 64, 17},
                                {40, 200, 0, 70}, {32, 512, 128, 64}, {32, 128, 64, 530}};
    check_shapes(cases, CQ_ARRAY_LEN(cases), 9000, "prefill", true);
}

/* The AMX kernels (W8A8 and fast mode, 32-row tiles) on shapes that reach the tiles (M >= 32,
 * K >= 64), their tails (M % 32, K % 64, odd N) and their hand-over to avx512. A CPU or OS
 * without AMX tiles cannot run them: the test then says so and is counted as skipped. */
TST(kernel_matmul_amx_tiles_match_ref) {
#if defined(__x86_64__) && !defined(CQ_KERNELS_REF_ONLY)
    if (!cq_isa_supported(CQ_ISA_AMX)) {
        tst_skip("this CPU (or its OS) has no AMX-INT8 tiles: the AMX kernels were not run");
        return;
    }
    const cq__kernel *amx = cq__kernel_at(CQ_ISA_AMX, CQ__OP_matmul_w8a8, CQ__W_QINT8);
    if (!amx || !cq__kernel_allowed(amx)) {
        tst_skip("the ISA cap excludes the amx level: the AMX kernels were not run");
        return;
    }
    const int64_t cases[][4] = {/* N, K, gs, M */ {32, 64, 0, 32}, {47, 208, 0, 45}, {64, 512, 128, 96},
                                {33, 256, 64, 530}, {16, 1024, 256, 64}};
    check_shapes(cases, CQ_ARRAY_LEN(cases), 9500, "amx", false);
#else
    tst_skip("not an x86-64 build: there are no AMX kernels");
#endif
}

/* Fast mode quantizes activations to int8 per block; against exact it stays within a few
 * parts per thousand of the output scale on random data (docs/KERNELS.md). */
TST(kernel_matmul_fast_error_vs_exact) {
    const cq_qtype qs[] = {CQ_QINT8, CQ_QINT4, CQ_QINT2};
    for (size_t qi = 0; qi < 3; qi++) {
        wcase c = wcase_make(qs[qi], 64, 1024, qbits(qs[qi]) == 8 ? 0 : 128, CQ_F32, false, 42 + qi, 0);
        krng r = {5};
        float *x = malloc(1024 * sizeof(float)), ye[64], yf[64];
        for (int i = 0; i < 1024; i++) x[i] = krng_n(&r, 1.0f);
        cq_matmul_opts o = cq_matmul_default_opts();
        size_t we = cq_matmul_work_size(c.w, 1, CQ_F32, CQ_MATMUL_EXACT);
        o.work_size = cq_matmul_work_size(c.w, 1, CQ_F32, CQ_MATMUL_FAST);
        if (we > o.work_size) o.work_size = we;
        o.work = malloc(o.work_size + 1);
        CHECK(cq_matmul(c.w, 1, x, CQ_F32, 1024, ye, CQ_F32, 64, &o, NULL) == CQ_OK);
        o.mode = CQ_MATMUL_FAST;
        CHECK(cq_matmul(c.w, 1, x, CQ_F32, 1024, yf, CQ_F32, 64, &o, NULL) == CQ_OK);
        double num = 0, den = 0;
        for (int n = 0; n < 64; n++) {
            num += (double)(ye[n] - yf[n]) * (ye[n] - yf[n]);
            den += (double)ye[n] * ye[n];
        }
        CHECKF(sqrt(num / den) < 0.02, "%s: relative rms error %g", qname(qs[qi]), sqrt(num / den));
        free(o.work);
        free(x);
        wcase_free(&c);
    }
}

/* Same bytes for 1 and 2 threads, with shapes large enough to be split. */
TST(kernel_matmul_thread_count_does_not_change_bytes) {
    const cq_qtype qs[] = {CQ_QINT8, CQ_QINT4, CQ_QINT2, CQ_QFLOAT8_E4M3FN};
    int saved = cq_get_num_threads();
    for (size_t qi = 0; qi < CQ_ARRAY_LEN(qs); qi++)
        for (int mi = 0; mi < 2; mi++) {
            int64_t M = mi ? 37 : 1, N = 200, K = 1024;
            wcase c = wcase_make(qs[qi], N, K, qbits(qs[qi]) == 8 ? 0 : 64, CQ_BF16, false, 7 + qi, 0);
            krng r = {9};
            acts a = make_acts(M, K, CQ_F32, 0, &r, 1.0f);
            int8_t *xi = malloc((size_t)(M * K));
            for (int64_t i = 0; i < M * K; i++) xi[i] = (int8_t)krng_u32(&r);
            for (int mode = 0; mode < 3; mode++) {
                if (mode == 2 && qs[qi] != CQ_QINT8) continue;
                if (mode == 1 && qs[qi] == CQ_QFLOAT8_E4M3FN) continue;
                cq_dtype xt = mode == 2 ? CQ_I8 : CQ_F32;
                const void *x = mode == 2 ? (const void *)xi : (const void *)a.buf.p;
                float *y[2];
                for (int t = 0; t < 2; t++) {
                    cq_set_num_threads(t + 1);
                    cq_matmul_opts o = cq_matmul_default_opts();
                    o.mode = mode == 1 ? CQ_MATMUL_FAST : CQ_MATMUL_EXACT;
                    o.x_scale = 0.02f;
                    o.work_size = cq_matmul_work_size(c.w, M, xt, o.mode);
                    o.work = malloc(o.work_size + 1);
                    y[t] = malloc((size_t)(M * N) * sizeof(float));
                    CHECK(cq_matmul(c.w, M, x, xt, K, y[t], CQ_F32, N, &o, NULL) == CQ_OK);
                    free(o.work);
                }
                CHECKF(!memcmp(y[0], y[1], (size_t)(M * N) * sizeof(float)), "%s M=%lld mode %d",
                       qname(qs[qi]), (long long)M, mode);
                free(y[0]);
                free(y[1]);
            }
            free(xi);
            free_acts(&a);
            wcase_free(&c);
        }
    cq_set_num_threads(saved);
}

TST(kernel_matmul_rejects_bad_arguments) {
    wcase c4 = wcase_make(CQ_QINT4, 8, 48, 24, CQ_F32, false, 3, 0);
    wcase c8 = wcase_make(CQ_QINT8, 8, 48, 0, CQ_F32, false, 3, 0);
    float x[48] = {0}, y[8];
    int8_t xi[48] = {0};
    cq_err err = {0};
    cq_matmul_opts o = cq_matmul_default_opts();
    CHECK(cq_matmul(NULL, 1, x, CQ_F32, 48, y, CQ_F32, 8, &o, &err) == CQ_E_ARG);
    CHECK(cq_matmul(c4.w, 1, xi, CQ_I8, 48, y, CQ_F32, 8, &o, &err) == CQ_E_UNSUPPORTED && strstr(err.msg, "qint4"));
    CHECK(cq_matmul(c4.w, 1, x, CQ_F64, 48, y, CQ_F32, 8, &o, &err) == CQ_E_DTYPE);
    CHECK(cq_matmul(c4.w, 1, x, CQ_F32, 47, y, CQ_F32, 8, &o, &err) == CQ_E_ARG && strstr(err.msg, "ldx"));
    CHECK(cq_matmul(c4.w, 1, x, CQ_F32, 48, y, CQ_I32, 8, &o, &err) == CQ_E_DTYPE);
    o.mode = CQ_MATMUL_FAST; /* group 24 is not a multiple of 16 */
    CHECK(cq_matmul(c4.w, 1, x, CQ_F32, 48, y, CQ_F32, 8, &o, &err) == CQ_E_UNSUPPORTED);
    CHECK(cq_matmul(c8.w, -1, x, CQ_F32, 48, y, CQ_F32, 8, &o, &err) == CQ_E_ARG);
    CHECK(cq_matmul(c8.w, 0, NULL, CQ_F32, 48, NULL, CQ_F32, 8, &o, &err) == CQ_OK);
    size_t need = cq_matmul_work_size(c8.w, 1, CQ_F32, CQ_MATMUL_FAST);
    CHECK(need > 0);
    o.work = malloc(need);
    o.work_size = need / 2;
    CHECK(cq_matmul(c8.w, 1, x, CQ_F32, 48, y, CQ_F32, 8, &o, &err) == CQ_E_ARG && strstr(err.msg, "scratch"));
    free(o.work);
    wcase_free(&c4);
    wcase_free(&c8);
}

/* The registry's own rules: unique names that end in their level, the reference in every slot
 * and first there, tiles in gemm names, and the public report agreeing with dispatch. */
TST(kernel_registry_is_consistent) {
    int n = cq__kernel_count(), chosen = 0;
    CHECK(n == cq_kernel_count() && n > 0);
    for (int i = 0; i < n; i++) {
        const cq__kernel *k = cq__kernel_get(i);
        const char *sep = strstr(k->name, "__");
        CHECKF(sep && !strncmp(sep + 2, cq_isa_name(k->isa), strlen(cq_isa_name(k->isa))), "%s: level %s", k->name,
               cq_isa_name(k->isa));
        for (int j = 0; j < i; j++) CHECKF(strcmp(k->name, cq__kernel_get(j)->name) != 0, "%s registered twice", k->name);
        bool mm = k->op == CQ__OP_matmul_w8a8 || k->op == CQ__OP_matmul_exact || k->op == CQ__OP_matmul_fast;
        CHECKF(mm == (k->wfmt != CQ__W_NONE), "%s: weight format", k->name);
        if (mm) {
            char tile[32];
            snprintf(tile, sizeof tile, "_%dx%d__", k->mr, k->nr);
            CHECKF(strstr(k->name, tile) && !strncmp(k->name, "gemm_", 5), "%s: tile %dx%d", k->name, k->mr, k->nr);
        }
        const cq__kernel *ref = cq__kernel_at(CQ_ISA_REF, k->op, k->wfmt);
        CHECKF(ref && kernel_index(ref) <= i, "%s: no reference kernel registered before it", k->name);
        cq_kernel_info info;
        CHECK(cq_kernel_get(i, &info, NULL) == CQ_OK && !strcmp(info.name, k->name));
        CHECK(info.chosen == (cq__kernel_pick(k->op, k->wfmt) == k));
        chosen += info.chosen;
    }
    CHECK(chosen == cq_kernel_slot_count());
    cq_err err = {0};
    cq_kernel_info info;
    CHECK(cq_kernel_get(n, &info, &err) == CQ_E_ARG && strstr(err.msg, "index"));
    CHECK(cq_kernel_get(-1, &info, NULL) == CQ_E_ARG);
}

/* Dispatch runs, per slot, the last registered kernel the CPU can run and the cap allows: so the
 * AVX512-BF16 exact-mode kernels replace the plain avx512 ones exactly where the CPU has the
 * feature. */
TST(kernel_dispatch_picks_last_allowed) {
    for (int i = 0; i < cq__kernel_count(); i++) {
        const cq__kernel *k = cq__kernel_get(i), *want = NULL;
        for (int j = 0; j < cq__kernel_count(); j++) {
            const cq__kernel *o = cq__kernel_get(j);
            if (o->op == k->op && o->wfmt == k->wfmt && cq__kernel_allowed(o)) want = o;
        }
        CHECKF(cq__kernel_pick(k->op, k->wfmt) == want, "slot of %s: picks %s, expected %s", k->name,
               cq__kernel_pick(k->op, k->wfmt)->name, want ? want->name : "none");
    }
#if defined(__x86_64__) && !defined(CQ_KERNELS_REF_ONLY)
    const char *exact = cq__kernel_pick(CQ__OP_matmul_exact, CQ__W_QINT4)->name;
    bool bf16 = cq_cpu_get_info()->avx512_bf16 && cq_isa_active() >= CQ_ISA_AVX512;
    CHECKF(bf16 == (strstr(exact, "__avx512bf16") != NULL), "exact qint4 runs %s", exact);
#endif
}

TST(kernel_dispatch_report_and_cap) {
    cq_isa saved = cq_get_isa_cap(), isa;
    CHECK(cq_isa_parse("AVX512", &isa, NULL) == CQ_OK && isa == CQ_ISA_AVX512);
    cq_err err = {0};
    CHECK(cq_isa_parse("sse9", &isa, &err) == CQ_E_ARG && strstr(err.msg, "sse9"));
    CHECK(cq_set_isa_cap(CQ_ISA_REF, NULL) == CQ_OK && cq_isa_active() == CQ_ISA_REF);
    for (int i = 0; i < cq_kernel_count(); i++) {
        cq_kernel_info k;
        CHECK(cq_kernel_get(i, &k, NULL) == CQ_OK);
        CHECKF(k.chosen == (k.isa == CQ_ISA_REF), "%s chosen under the ref cap: %d", k.name, k.chosen);
    }
    /* a level of the other architecture leaves only the reference */
#if defined(__x86_64__)
    CHECK(cq_set_isa_cap(CQ_ISA_NEON, NULL) == CQ_OK && cq_isa_active() == CQ_ISA_REF);
#else
    CHECK(cq_set_isa_cap(CQ_ISA_AVX2, NULL) == CQ_OK && cq_isa_active() == CQ_ISA_REF);
#endif
    CHECK(cq_set_isa_cap(CQ_ISA_COUNT, NULL) == CQ_OK && cq_isa_active() == cq_isa_best());
    cq_set_isa_cap(saved, NULL);
    const cq_cpu_info *ci = cq_cpu_get_info();
    CHECK(ci && ci->arch[0]);
}
