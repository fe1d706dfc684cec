/*
 * convert_internal.h - what the files of src/convert/ share: the plan's private side (which
 * output tensors each input tensor becomes), the ordered pipeline, and progress bookkeeping.
 * Tensor bytes are read through the checkpoint's sources (io/source.h), which also take back
 * the pages of a consumed tensor.
 * Private; never installed. The math lives in src/quant and src/kernels, the file formats in
 * src/io; this layer only decides, schedules and streams.
 */
#ifndef CQ_CONVERT_INTERNAL_H
#define CQ_CONVERT_INTERNAL_H

#include "core/internal.h"
#include "io/hf_modules.h"
#include "io/source.h"

#include <pthread.h>

/* One output tensor of a planned module. */
typedef struct cq__out_spec {
    char suffix[24]; /* appended to the module prefix: "weight._data._data", "input_scale" ... */
    cq_dtype dtype;
    int ndim;
    int64_t shape[CQ_MAX_DIMS];
    uint64_t nbytes;
} cq__out_spec;

enum { CQ__MAX_OUT_SPECS = 5 };

/* The tensors that replace (QUANTIZE) or join (ACTIVATIONS_ONLY) a planned module's weight:
 * for QUANTIZE data, scale, [shift,] input_scale, output_scale in that order; for
 * ACTIVATIONS_ONLY input_scale, output_scale. Returns how many (0 for skipped entries). */
int cq__plan_out_specs(const cq_plan *p, const cq_plan_entry *e, cq__out_spec out[CQ__MAX_OUT_SPECS]);

/* The quantized layout of a QUANTIZE entry: logical code rows (grouped rows, or output
 * channels when not grouped) and the elements per row. */
void cq__plan_code_layout(const cq_plan_entry *e, int64_t *rows, int64_t *row_len);

/* What the streamer needs beyond the public entries. */
typedef struct cq__plan_tensor {
    const char *name;    /* borrowed from the checkpoint */
    const cq_tensor *t;  /* borrowed from the checkpoint */
    int shard;
    int64_t entry;       /* the plan entry whose weight this is (QUANTIZE / ACTIVATIONS_ONLY), or -1 */
} cq__plan_tensor;

struct cq_plan {
    cq_ckpt *ckpt;       /* owned */
    cq_hfconfig *config; /* owned; NULL when the input has no config.json */
    cq_convert_opts opts;
    cq__module_kinds kinds; /* the opts.module_kinds file (have_kinds), owned */
    bool have_kinds;
    const cq__arch *arch;   /* config.json's family, NULL when none is known */
    char config_label[32];  /* "config:<family>", what decided the kinds the table gave */
    cq_plan_entry *entries;
    char **entry_prefix; /* "<module>." ("" for the root module), owned */
    int64_t n_entries;
    cq__plan_tensor *tensors; /* every input tensor, checkpoint order */
    int64_t n_tensors;
    uint64_t bytes_before, bytes_after;
    int64_t n_quantized;
    /* Per entry, set by the streamer: HQQ kept no step, so an ungrouped N-D weight's shift is
     * still the Max optimizer's (O,1,1,1) (NULL: none such). */
    bool *shift_kept;
};

/* The ordered pipeline: items 0..n-1 are computed on `threads` threads (each holds at most one
 * finished result), then written one at a time in item order. write may be NULL (compute-only
 * work such as the report). The first failure in item order is the one reported; a cancel
 * request stops it between items. free_result (may be NULL) releases a computed result. */
typedef struct cq__pipe_ops {
    cq_status (*compute)(void *ctx, int64_t item, void **result, cq_err *err);
    cq_status (*write)(void *ctx, int64_t item, void *result, cq_err *err);
    void (*free_result)(void *ctx, int64_t item, void *result);
    /* May be NULL. An exclusive item runs alone, after every earlier item is written, on the
     * calling thread with the library's thread count, so its own parallel loops use every
     * thread and only one such working set exists at a time (HQQ's parameter pass, single-row
     * weights). */
    bool (*exclusive)(void *ctx, int64_t item);
} cq__pipe_ops;
cq_status cq__pipe_run(int64_t n_items, int threads, const cq_convert_opts *opts, void *ctx,
                       const cq__pipe_ops *ops, cq_err *err);

/* ---- optimum-quanto module state in a checkpoint (qstate.c) ---- */

/* safetensors metadata key under which cquanto records the float shapes of int2/int4 weights
 * that quanto's layout leaves ambiguous: a JSON object {"<module>": [dims...]}. */
#define CQ__SHAPES_METADATA_KEY "cquanto_weight_shapes"

typedef struct cq__qmodule {
    char *module;    /* owned; the prefix lives in the same allocation */
    char *prefix;    /* "<module>." ("" for the root module) */
    cq_qtype weights, activations;
    int64_t data_idx, scale_idx, shift_idx, weight_idx; /* checkpoint indices, -1 when absent */
    int ndim;        /* the float weight's shape (quantized modules only) */
    int64_t shape[CQ_MAX_DIMS];
} cq__qmodule;

typedef struct cq__qmodules {
    cq_qmap *qmap;
    cq__qmodule *mods;
    int64_t n;
    int64_t *owner; /* per checkpoint tensor: the module whose quanto state it is, or -1 */
} cq__qmodules;

/* Reads quanto_qmap.json beside the checkpoint and locates every module's state; `like` (may be
 * NULL) is a checkpoint whose "<m>.weight" tensors give the float shapes. */
cq_status cq__qmodules_find(const cq_ckpt *c, const cq_ckpt *like, cq__qmodules *out, cq_err *err);
void cq__qmodules_free(cq__qmodules *q);
/* The module's quantized weight over the checkpoint's bytes (views, no copy). */
cq_status cq__qmodule_weight(const cq_ckpt *c, const cq__qmodule *m, cq_qweight **out, cq_err *err);
/* Whether a planned int2/int4 weight's shape must be recorded for readers to recover it from
 * the file alone (bias_out: the module's bias length, or -1). */
bool cq__shape_needs_record(const cq_plan_entry *e, int64_t bias_out);

/* Quantizes every shard of the plan into `dir` (single_file: as model.safetensors), each
 * committed (fsync + rename) on its own thread while the next is streamed
 * (quantize_stream.c). Adds the quantized weight count to stats->weights. */
cq_status cq__quantize_shards(cq_plan *p, const cq_convert_opts *opts, const char *dir, bool single_file, double t0,
                              cq_convert_stats *stats, cq_err *err);

/* Copies the input folder's side files (tokenizers, generation configs ...) into tmp: every small
 * regular file that is no weight file, index, config.json or quanto_qmap.json; a link leading
 * outside the folder is left out with a notice through o (quantize_folder.c). */
cq_status cq__copy_side_files(const char *in_dir, const char *tmp, const cq_convert_opts *o, cq_err *err);

/* Monotonic seconds. */
double cq__now(void);

/* The first n_tensors' names and sizes for progress; the progress callback wrapper. */
void cq__report_progress(const cq_convert_opts *o, int64_t done, int64_t total, uint64_t bytes_done,
                         uint64_t bytes_total, double t0, const char *current);

/* Before any work (guard.c): out against the n checkpoints in[i] (c[i] opened from it; either
 * may be NULL) by the rules of io/fsutil.h, CQ_E_EXISTS for an existing out without
 * o->overwrite, then the stale temps of killed runs removed (told through o->notice). */
cq_status cq__guard_output(const char *out, const char *const *in, const cq_ckpt *const *c, int n,
                           const cq_convert_opts *o, cq_err *err);

/* The index of tensor "<prefix[0..prefix_len)><suffix>" in c, -1 if absent (or if the name would
 * exceed 2 KB, which no module path does). */
static inline int64_t cq__ckpt_find_member(const cq_ckpt *c, const char *prefix, size_t prefix_len,
                                           const char *suffix) {
    char name[2048];
    if ((size_t)snprintf(name, sizeof name, "%.*s%s", (int)prefix_len, prefix, suffix) >= sizeof name) return -1;
    return cq_ckpt_find(c, name);
}

/* Reads opts->cancel. */
static inline bool cq__cancelled(const cq_convert_opts *o) { return o && o->cancel && *o->cancel; }

#endif
