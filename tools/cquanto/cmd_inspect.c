/*
 * cmd_inspect.c - `cquanto inspect PATH`: what a safetensors file, checkpoint folder or GGUF file
 * holds. Lists each tensor (name, dtype, shape, elements, bytes, shard) with totals per dtype, and
 * for a quanto checkpoint (quanto_qmap.json beside it) each quantized module's qtypes and
 * effective bits per weight: the bytes of its weight tensors (weight, or weight._data/_scale/_shift
 * and the packed weight._data._data) * 8 / the original weight's element count. A GGUF file
 * (llama.cpp's format) lists its version, alignment and metadata, then each tensor with its ggml
 * type, Hugging Face shape and bits per weight, with totals per type. Reads only; the library
 * validates everything, so a bad input is one line on stderr and exit 1.
 */
#include "cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: cquanto inspect [--summary] [--qmap FILE] PATH\n\n"
            "PATH is a .safetensors file, a *.safetensors.index.json, a folder holding a checkpoint\n"
            "(model.safetensors, shards with an index, or a single .safetensors file), or a GGUF file.\n\n"
            "Prints every tensor's name, dtype, shape, element count and bytes, then totals per dtype.\n"
            "When quanto_qmap.json sits beside the checkpoint (or --qmap names one), also prints each\n"
            "quantized module's weight and activation qtypes and its effective bits per weight:\n"
            "bytes of the module's weight tensors * 8 / elements of the original weight.\n"
            "A GGUF file: its version, alignment and metadata (long arrays abbreviated), then every\n"
            "tensor's ggml type, shape (Hugging Face order), elements, bytes and bits per weight.\n\n"
            "  --summary     skip the per-tensor table\n"
            "  --qmap FILE   the quantization map to use (default: PATH's folder/quanto_qmap.json)\n"
            "  -h, --help    this help\n\n"
            "exit status: 0 ok, 1 unreadable or malformed input, 2 usage error\n");
}

/* Names and metadata are free text: control characters are shown escaped so each entry stays
 * on one line and the table stays aligned. */
static void escape_text(const char *s, char *out, size_t n) {
    size_t o = 0;
    for (; *s && o + 5 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n') o += (size_t)snprintf(out + o, n - o, "\\n");
        else if (c == '\t') o += (size_t)snprintf(out + o, n - o, "\\t");
        else if (c < 0x20 || c == 0x7F) o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
        else out[o++] = (char)c;
    }
    out[o] = '\0';
}

/* Terminal columns of UTF-8 text, counting one per code point. */
static int text_width(const char *s) {
    int w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void print_padded(const char *s, int width) {
    fputs(s, stdout);
    for (int i = text_width(s); i < width; i++) putchar(' ');
}

static int digits(uint64_t v) {
    int n = 1;
    while (v >= 10) v /= 10, n++;
    return n;
}

static int max_int(int a, int b) { return a > b ? a : b; }

static void print_tensors(const cq_ckpt *c) {
    int64_t n = cq_ckpt_count(c);
    bool sharded = cq_ckpt_shard_count(c) > 1;
    int wname = 4, wshape = 5, wel = 8, wbytes = 5;
    char shape[256], name[1024];
    for (int64_t i = 0; i < n; i++) {
        const cq_tensor *t = cq_ckpt_tensor(c, i);
        escape_text(cq_ckpt_name(c, i), name, sizeof name);
        wname = max_int(wname, text_width(name));
        wshape = max_int(wshape, (int)strlen(cq_shape_str(t->ndim, t->shape, shape, sizeof shape)));
        wel = max_int(wel, digits((uint64_t)cq_tensor_numel(t)));
        wbytes = max_int(wbytes, digits(cq_tensor_nbytes(t)));
    }
    printf("%-*s  %-11s  %-*s  %*s  %*s%s\n", wname, "name", "dtype", wshape, "shape", wel, "elements", wbytes, "bytes",
           sharded ? "  shard" : "");
    for (int64_t i = 0; i < n; i++) {
        const cq_tensor *t = cq_ckpt_tensor(c, i);
        escape_text(cq_ckpt_name(c, i), name, sizeof name);
        print_padded(name, wname);
        printf("  %-11s  %-*s  %*" PRId64 "  %*zu", cq_dtype_name(t->dtype), wshape,
               cq_shape_str(t->ndim, t->shape, shape, sizeof shape), wel, cq_tensor_numel(t), wbytes,
               cq_tensor_nbytes(t));
        if (sharded) printf("  %5d", cq_ckpt_tensor_shard(c, i) + 1);
        printf("\n");
    }
    printf("\n");
}

static void print_totals(const cq_ckpt *c) {
    int64_t count[CQ_DTYPE_COUNT] = {0}, elems[CQ_DTYPE_COUNT] = {0};
    uint64_t bytes[CQ_DTYPE_COUNT] = {0}, total_bytes = 0;
    int64_t total_elems = 0;
    for (int64_t i = 0; i < cq_ckpt_count(c); i++) {
        const cq_tensor *t = cq_ckpt_tensor(c, i);
        count[t->dtype]++;
        elems[t->dtype] += cq_tensor_numel(t);
        bytes[t->dtype] += cq_tensor_nbytes(t);
        total_elems += cq_tensor_numel(t);
        total_bytes += cq_tensor_nbytes(t);
    }
    char human[32];
    for (int d = 1; d < CQ_DTYPE_COUNT; d++)
        if (count[d])
            printf("  %-11s %6" PRId64 " tensors  %14" PRId64 " elements  %14" PRIu64 " bytes\n", cq_dtype_name((cq_dtype)d),
                   count[d], elems[d], bytes[d]);
    printf("total: %" PRId64 " tensors, %" PRId64 " elements, %" PRIu64 " bytes (%s)\n", cq_ckpt_count(c), total_elems,
           total_bytes, cli_human_bytes((double)total_bytes, human, sizeof human));
}

/* One quantized module's weight storage, from the checkpoint's tensors. */
typedef struct module_weight {
    uint64_t bytes;     /* all tensors named <module>.weight or <module>.weight.* */
    int64_t elements;   /* of the original (unquantized) weight; 0 if unknown */
} module_weight;

static const cq_tensor *find(const cq_ckpt *c, const char *module, const char *suffix) {
    char name[1024];
    snprintf(name, sizeof name, "%s%s", module, suffix);
    int64_t i = cq_ckpt_find(c, name);
    return i < 0 ? NULL : cq_ckpt_tensor(c, i);
}

/* The bytes of every map module's tensors named <module>.weight or <module>.weight.*, in one
 * pass over the checkpoint (NULL when out of memory). */
static uint64_t *weight_bytes_by_module(const cq_ckpt *c, const cq_qmap *m) {
    uint64_t *bytes = calloc((size_t)cq_qmap_count(m) + 1, sizeof *bytes);
    for (int64_t i = 0; bytes && i < cq_ckpt_count(c); i++) {
        const char *n = cq_ckpt_name(c, i);
        for (const char *p = strstr(n, ".weight"); p; p = strstr(p + 1, ".weight")) {
            if (p[7] && p[7] != '.') continue;
            char *module = strndup(n, (size_t)(p - n));
            int64_t k = module ? cq_qmap_find(m, module) : -1;
            free(module);
            if (k >= 0) bytes[k] += cq_tensor_nbytes(cq_ckpt_tensor(c, i));
        }
    }
    return bytes;
}

static module_weight measure_module(const cq_ckpt *c, const char *module, cq_qtype wq, uint64_t bytes) {
    module_weight mw = {bytes, 0};
    const cq_tensor *plain = find(c, module, ".weight"), *data = find(c, module, ".weight._data"),
                    *packed = find(c, module, ".weight._data._data"), *scale = find(c, module, ".weight._scale");
    if (plain) {
        mw.elements = cq_tensor_numel(plain); /* not frozen, or weights left in float */
    } else if (data) {
        mw.elements = cq_tensor_numel(data); /* 8-bit: codes keep the weight's shape */
    } else if (packed && scale && scale->ndim >= 1 && packed->ndim >= 1) {
        /* Packed rows share bytes; the scale has one row per original row (or group), each
         * as long as a packed row: (G, 1) scale with (ceil(G/k), gs) data. */
        mw.elements = scale->shape[0] * (packed->ndim > 1 ? cq_shape_numel(packed->ndim - 1, packed->shape + 1) : 1);
    } else if (packed && cq_qtype_get(wq)) {
        mw.elements = cq_tensor_numel(packed) * (8 / cq_qtype_get(wq)->bits);
    }
    return mw;
}

static void print_quanto(const cq_ckpt *c, const cq_qmap *m, const char *qmap_path) {
    int64_t n = cq_qmap_count(m);
    printf("\nquantization map %s: %" PRId64 " modules\n", qmap_path, n);
    int wmod = 6;
    char name[1024];
    for (int64_t i = 0; i < n; i++) {
        escape_text(cq_qmap_module(m, i), name, sizeof name);
        wmod = max_int(wmod, text_width(name));
    }
    printf("%-*s  %-16s  %-16s  %14s  %12s  %11s\n", wmod, "module", "weights", "activations", "weight elements",
           "weight bytes", "bits/weight");
    uint64_t all_bytes = 0;
    int64_t all_elems = 0, missing = 0;
    uint64_t *bytes = weight_bytes_by_module(c, m);
    if (!bytes) {
        fprintf(stderr, "cquanto inspect: out of memory\n");
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const char *mod = cq_qmap_module(m, i);
        module_weight mw = measure_module(c, mod, cq_qmap_weights(m, i), bytes[i]);
        escape_text(mod, name, sizeof name);
        print_padded(name, wmod);
        printf("  %-16s  %-16s  ", cq_qtype_name(cq_qmap_weights(m, i)),
               cq_qtype_name(cq_qmap_activations(m, i)));
        if (mw.elements > 0) {
            printf("%14" PRId64 "  %12" PRIu64 "  %11.3f\n", mw.elements, mw.bytes, (double)mw.bytes * 8.0 / (double)mw.elements);
            all_bytes += mw.bytes;
            all_elems += mw.elements;
        } else {
            printf("%14s  %12" PRIu64 "  %11s\n", "-", mw.bytes, "(no weight)");
            missing++;
        }
    }
    if (all_elems > 0)
        printf("overall: %.3f bits per weight over %" PRId64 " weights of %" PRId64 " modules (%" PRIu64 " bytes)\n",
               (double)all_bytes * 8.0 / (double)all_elems, all_elems, n - missing, all_bytes);
    if (missing) printf("note: %" PRId64 " modules in the map have no weight tensors in the checkpoint\n", missing);
    free(bytes);
}

/* ---- GGUF files -------------------------------------------------------------------------- */

/* A file that starts with the GGUF magic or is named *.gguf (so a damaged one still gets the GGUF
 * reader's verdict), as the library's tensor source chooses. */
int cli_is_gguf(const char *path) {
    size_t n = strlen(path);
    if (cq_fs_is_dir(path)) return false;
    if (n >= 5 && !strcmp(path + n - 5, ".gguf")) return true;
    FILE *f = fopen(path, "rb");
    char magic[4];
    bool yes = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
    if (f) fclose(f);
    return yes;
}

/* Quantizing a GGUF model in place would need llama.cpp's tensor names mapped to a Hugging Face
 * model's, which `cquanto convert` does (and dequantizes block types on the way). */
int cli_refuse_gguf(const char *cmd, const char *path) {
    fprintf(stderr,
            "cquanto %s: %s: a GGUF file (llama.cpp's format); convert it to a Hugging Face folder first: "
            "cquanto convert %s -o FOLDER\n",
            cmd, path, path);
    return 1;
}

/* A float as Python's repr prints it: the fewest significant digits that read back as the same
 * float (or double), positional from 1e-4 to 1e16 with a ".0" on whole numbers ("10000.0"),
 * scientific outside ("2.5e-06"). */
static void shortest_real(double v, bool single, char *out, size_t n) {
    int p = 1;
    for (; p <= 17; p++) { /* 17 digits read back as any double */
        snprintf(out, n, "%.*g", p, v);
        double back = strtod(out, NULL);
        if (p == 17 || (single ? (float)back == (float)v : back == v)) break;
    }
    if (!isfinite(v)) return;
    int e = v == 0 ? 0 : (int)floor(log10(fabs(v)));
    if (v == 0 || (e >= -4 && e < 16)) snprintf(out, n, "%.*f", p - 1 - e > 0 ? p - 1 - e : 0, v);
    if (!strpbrk(out, ".e")) snprintf(out + strlen(out), n - strlen(out), ".0");
}

#define GGUF_SHOWN_ITEMS 8   /* array items printed before "..." */
#define GGUF_SHOWN_CHARS 120 /* of a string value, before "... (N bytes)" */

/* Element j of metadata key k as text (strings escaped, cut to GGUF_SHOWN_CHARS, quoted inside
 * arrays). */
static void gguf_value(const cq_gguf *g, int64_t k, int64_t j, bool quote, char *out, size_t n) {
    cq_gguf_type t = cq_gguf_kv_elem_type(g, k);
    int64_t iv;
    double dv;
    if (t == CQ_GGUF_STRING) {
        const char *v = cq_gguf_kv_str(g, k, j);
        char esc[4 * GGUF_SHOWN_CHARS + 8];
        size_t len = strlen(v);
        char cut[GGUF_SHOWN_CHARS + 1];
        snprintf(cut, sizeof cut, "%s", v);
        escape_text(cut, esc, sizeof esc);
        if (len > GGUF_SHOWN_CHARS) snprintf(out, n, "%s%s...%s (%zu bytes)", quote ? "\"" : "", esc, quote ? "\"" : "", len);
        else snprintf(out, n, "%s%s%s", quote ? "\"" : "", esc, quote ? "\"" : "");
    } else if (t == CQ_GGUF_BOOL && cq_gguf_kv_int(g, k, j, &iv)) {
        snprintf(out, n, "%s", iv ? "true" : "false");
    } else if (t != CQ_GGUF_FLOAT32 && t != CQ_GGUF_FLOAT64 && cq_gguf_kv_int(g, k, j, &iv)) {
        snprintf(out, n, "%" PRId64, iv);
    } else if (cq_gguf_kv_real(g, k, j, &dv)) {
        shortest_real(dv, t == CQ_GGUF_FLOAT32, out, n); /* a u64 above INT64_MAX lands here */
    } else {
        snprintf(out, n, "?");
    }
}

static void print_gguf_metadata(const cq_gguf *g) {
    char key[256], item[1024];
    for (int64_t k = 0; k < cq_gguf_kv_count(g); k++) {
        escape_text(cq_gguf_kv_key(g, k), key, sizeof key);
        const char *et = cq_gguf_type_name(cq_gguf_kv_elem_type(g, k));
        if (cq_gguf_kv_type(g, k) != CQ_GGUF_ARRAY) {
            gguf_value(g, k, 0, false, item, sizeof item);
            printf("  metadata %s (%s) = %s\n", key, et, item);
            continue;
        }
        int64_t len = cq_gguf_kv_len(g, k);
        printf("  metadata %s (arr[%s], %" PRId64 " items) = [", key, et, len);
        for (int64_t j = 0; j < len && j < GGUF_SHOWN_ITEMS; j++) {
            gguf_value(g, k, j, true, item, sizeof item);
            printf("%s%s", j ? ", " : "", item);
        }
        printf("%s]\n", len > GGUF_SHOWN_ITEMS ? ", ..." : "");
    }
}

/* A tensor's shape as Hugging Face (and cquanto) order it: ggml's ne reversed. */
static const char *gguf_shape(const cq_gguf_tensor *t, char *buf, size_t n) {
    int64_t shape[4];
    for (int d = 0; d < t->ndim; d++) shape[d] = t->ne[t->ndim - 1 - d];
    return cq_shape_str(t->ndim, shape, buf, n);
}

static double bits_per_weight(uint64_t bytes, int64_t elements) {
    return elements > 0 ? (double)bytes * 8.0 / (double)elements : 0.0;
}

static void print_gguf_tensors(const cq_gguf *g) {
    int64_t n = cq_gguf_tensor_count(g);
    int wname = 4, wshape = 5, wel = 8, wbytes = 5;
    char shape[256], name[1024];
    for (int64_t i = 0; i < n; i++) {
        const cq_gguf_tensor *t = cq_gguf_tensor_at(g, i);
        escape_text(t->name, name, sizeof name);
        wname = max_int(wname, text_width(name));
        wshape = max_int(wshape, (int)strlen(gguf_shape(t, shape, sizeof shape)));
        wel = max_int(wel, digits((uint64_t)t->numel));
        wbytes = max_int(wbytes, digits(t->nbytes));
    }
    printf("%-*s  %-7s  %-*s  %*s  %*s  %11s\n", wname, "name", "type", wshape, "shape", wel, "elements", wbytes,
           "bytes", "bits/weight");
    for (int64_t i = 0; i < n; i++) {
        const cq_gguf_tensor *t = cq_gguf_tensor_at(g, i);
        escape_text(t->name, name, sizeof name);
        print_padded(name, wname);
        printf("  %-7s  %-*s  %*" PRId64 "  %*" PRIu64 "  %11.3f\n", cq_ggml_type_name((int)t->type), wshape,
               gguf_shape(t, shape, sizeof shape), wel, t->numel, wbytes, t->nbytes,
               bits_per_weight(t->nbytes, t->numel));
    }
    printf("\n");
}

/* Totals per ggml type, in type-code order (ggml defines codes below 64). */
static void print_gguf_totals(const cq_gguf *g) {
    enum { NTYPES = 64 };
    int64_t count[NTYPES] = {0}, elems[NTYPES] = {0}, total_elems = 0;
    uint64_t bytes[NTYPES] = {0}, total_bytes = 0;
    for (int64_t i = 0; i < cq_gguf_tensor_count(g); i++) {
        const cq_gguf_tensor *t = cq_gguf_tensor_at(g, i);
        int ty = (int)t->type < NTYPES ? (int)t->type : NTYPES - 1; /* the reader admits only ggml's codes */
        count[ty]++;
        elems[ty] += t->numel;
        bytes[ty] += t->nbytes;
        total_elems += t->numel;
        total_bytes += t->nbytes;
    }
    for (int ty = 0; ty < NTYPES; ty++)
        if (count[ty])
            printf("  %-7s %6" PRId64 " tensors  %14" PRId64 " elements  %14" PRIu64 " bytes  %7.3f bits/weight\n",
                   cq_ggml_type_name(ty), count[ty], elems[ty], bytes[ty], bits_per_weight(bytes[ty], elems[ty]));
    char human[32];
    printf("total: %" PRId64 " tensors, %" PRId64 " elements, %" PRIu64 " bytes (%s), %.3f bits per weight\n",
           cq_gguf_tensor_count(g), total_elems, total_bytes, cli_human_bytes((double)total_bytes, human, sizeof human),
           bits_per_weight(total_bytes, total_elems));
}

static int inspect_gguf(const char *path, bool summary) {
    cq_err err = {0};
    cq_gguf *g = NULL;
    if (cq_gguf_open(path, &g, &err) != CQ_OK) return cli_fail("inspect", &err);
    printf("%s: GGUF version %" PRIu32 ", %" PRId64 " tensors, %" PRId64 " metadata keys (alignment %" PRIu64
           ", data at byte %" PRIu64 ")\n",
           path, cq_gguf_version(g), cq_gguf_tensor_count(g), cq_gguf_kv_count(g), cq_gguf_alignment(g),
           cq_gguf_data_offset(g));
    print_gguf_metadata(g);
    printf("\n");
    if (!summary) print_gguf_tensors(g);
    print_gguf_totals(g);
    cq_gguf_close(g);
    return 0;
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL, *qmap_arg = NULL;
    bool summary = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--summary")) {
            summary = true;
        } else if (!strcmp(argv[i], "--qmap")) {
            if (++i >= argc) return cli_usage_error("inspect", "--qmap needs a file");
            qmap_arg = argv[i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("inspect", "unknown option '%s'", argv[i]);
        } else if (path) {
            return cli_usage_error("inspect", "one PATH only (got '%s' and '%s')", path, argv[i]);
        } else {
            path = argv[i];
        }
    }
    if (!path) return cli_usage_error("inspect", "missing PATH");
    if (cli_is_gguf(path)) {
        if (qmap_arg) return cli_usage_error("inspect", "--qmap applies to safetensors checkpoints, not to GGUF files");
        return inspect_gguf(path, summary);
    }

    cq_err err = {0};
    cq_ckpt *c = NULL;
    if (cq_ckpt_open(path, &c, &err) != CQ_OK) return cli_fail("inspect", &err);
    char *qmap_path = NULL;
    cq_qmap *m = NULL;
    int rc = 0;
    if (qmap_arg ? !(qmap_path = strdup(qmap_arg)) : cq_ckpt_folder_file(c, "quanto_qmap.json", &qmap_path, &err) != CQ_OK)
        rc = cli_fail("inspect", &err);
    else if (qmap_path && cq_qmap_load(qmap_path, &m, &err) != CQ_OK)
        rc = cli_fail("inspect", &err);
    if (rc == 0) {
        int nshards = cq_ckpt_shard_count(c);
        if (cq_ckpt_index_path(c))
            printf("%s: %d shards (%s), %" PRId64 " tensors\n", path, nshards, cq_ckpt_index_path(c), cq_ckpt_count(c));
        else
            printf("%s: %" PRId64 " tensors\n", path, cq_ckpt_count(c));
        for (int s = 0; s < nshards; s++) {
            const cq_st_file *f = cq_ckpt_shard(c, s);
            if (nshards > 1)
                printf("  shard %d  %s  %" PRId64 " tensors  %" PRIu64 " bytes\n", s + 1, cq_ckpt_shard_file(c, s),
                       cq_st_count(f), 8 + cq_st_header_size(f) + cq_st_data_size(f));
            for (int64_t k = 0; k < cq_st_metadata_count(f); k++) {
                char key[256], value[1024];
                escape_text(cq_st_metadata_key(f, k), key, sizeof key);
                escape_text(cq_st_metadata_value(f, k), value, sizeof value);
                printf("  metadata %s%s%s = %s\n", nshards > 1 ? cq_ckpt_shard_file(c, s) : "", nshards > 1 ? ": " : "",
                       key, value);
            }
        }
        printf("\n");
        if (!summary) print_tensors(c);
        print_totals(c);
        if (m) print_quanto(c, m, qmap_path);
    }
    cq_qmap_free(m);
    free(qmap_path);
    cq_ckpt_close(c);
    return rc;
}
