/*
 * cquanto/convert.h - whole-checkpoint quantize, dequantize and error report, streaming one
 * tensor at a time.
 */
#ifndef CQUANTO_CONVERT_H
#define CQUANTO_CONVERT_H

#include "cquanto/quant.h"
#include "cquanto/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================================
 * convert: whole-checkpoint quantize, dequantize and error report (streaming)
 * ====================================================================================== */

/* --- convert: options, progress, statistics ---------------------------------------------
 * The checkpoint tools of the `cquanto quantize / dequantize / report` commands. They take a
 * .safetensors file, a Hugging Face folder or a sharded folder (whatever cq_ckpt_open takes),
 * map it, work one tensor at a time and stream their output, so memory stays near the largest
 * tensor whatever the model size. Outputs appear only when complete (temp name + rename). */
typedef struct cq_convert_progress {
    int64_t tensors_done, tensors_total;
    uint64_t bytes_done, bytes_total; /* input bytes */
    double seconds;                   /* since the start */
    const char *current;              /* the tensor just finished (borrowed for the call) */
} cq_convert_progress;

typedef struct cq_convert_opts {
    cq_qtype weights;            /* QINT2, QINT4, QINT8, QFLOAT8_E4M3FN or QFLOAT8_E5M2 */
    cq_qtype activations;        /* QNONE (default), QINT8, QFLOAT8_E4M3FN, QFLOAT8_E5M2 */
    cq_optimizer_kind optimizer; /* DEFAULT: absmax at 8 bits, max below */
    int64_t group_size;          /* -1 (default): quanto's module rule; > 0: that size (qint2/4) */
    const char *const *include;  /* quanto's fnmatch patterns on module names; n_include of them */
    int n_include;
    const char *const *exclude;
    int n_exclude;
    /* A JSON file {"<module>": "<kind>"} (cq_layer_kind_name's names) that decides the kinds of
     * the modules it names, before any other evidence; NULL: none. */
    const char *module_kinds;
    int threads;                 /* 0: cq_get_num_threads() */
    bool overwrite;              /* replace an existing output (else CQ_E_EXISTS) */
    /* dequantize: a checkpoint whose "<m>.weight" shapes fill in what a quanto file cannot tell
     * (grouped int2/int4 weights without cquanto's shape record); NULL: none. */
    const char *like;
    /* Polled between chunks; when it reads non-zero the call stops, removes its temp output and
     * returns CQ_E_IO ("interrupted"). Set it from a signal handler. */
    const volatile int *cancel;
    /* Called after each tensor, one call at a time, from one of the worker threads. */
    void (*progress)(const cq_convert_progress *p, void *user);
    void *progress_user;
    /* May be NULL. Called with progress_user and a one-line notice of something done that does
     * not stop the work: a temp output left by a killed run removed, a side file not copied. */
    void (*notice)(const char *msg, void *user);
} cq_convert_opts;
CQ_API cq_convert_opts cq_convert_default_opts(void); /* QINT8, no activations, group -1, all modules */

/* Fails (one line naming both) when the output path out is, holds or lies inside a file or
 * folder that reading any of the n checkpoints touches (compared by device and inode, after
 * symlinks), is a symbolic link, or names a folder that does not exist. Every writing call
 * checks this itself before any work; commands that write other files (report --plot) call it. */
CQ_API cq_status cq_convert_check_output(const char *out, const char *const *checkpoints, int n, cq_err *err);

typedef struct cq_convert_stats {
    int64_t tensors;          /* tensors read */
    int64_t modules;          /* modules quantized */
    int64_t weights;          /* elements of the quantized weights */
    uint64_t bytes_in;        /* tensor bytes read */
    uint64_t bytes_out;       /* tensor bytes written */
    uint64_t qweight_bytes;   /* bytes of the quantized weights (data + scale + shift) */
    double bits_per_weight;   /* 8 * qweight_bytes / weights (0 when nothing was quantized) */
    double seconds;
} cq_convert_stats;

/* --- convert: the quantization plan ---------------------------------------------------------
 * Which modules get quantized. Every "<module>.weight" of rank 2 or 4 is a candidate (and, with
 * activations, every rank-1 weight of a norm layer). Each gets a kind (cquanto/io.h), decided by
 * the first of:
 *   1. the opts.module_kinds file, when it names the module;
 *   2. structure: running_mean/running_var/num_batches_tracked beside it make a BatchNorm; a
 *      bias whose length is not the weight's dim 0 rules out Linear and Conv2d (it is a GPT-2
 *      Conv1D or a ConvTranspose2d), and, without a table, a bias rules out an embedding;
 *   3. the table of the config.json's family (llama, bert, gpt2);
 *   4. with no config.json and no kinds file, the name/rank guess: rank 4 is a Conv2d, rank 2 a
 *      Linear unless its name says embedding (Llama/BERT/GPT-2/OPT/T5 names, any last component
 *      containing "embed") or GPT-2 Conv1D (c_attn, c_proj, c_fc); a rank-1 weight with a bias of
 *      its size and "norm"/"ln" in its name is a LayerNorm;
 *   5. otherwise the kind stays unknown and the module float (CQ_PLAN_SKIP_UNDECIDED).
 * Linear and Conv2d weights are quantized; with activations LayerNorms get quanto's QLayerNorm
 * state (weights none). An output head tied to the input embedding (config.json
 * tie_word_embeddings) is skipped. include/exclude follow optimum-quanto: Python fnmatch on the
 * module name; with include patterns a module must match one; it must match no exclude pattern. */
typedef enum cq_plan_action {
    CQ_PLAN_QUANTIZE = 0,      /* weights quantized (and activations if asked) */
    CQ_PLAN_ACTIVATIONS_ONLY,  /* a LayerNorm given activation scales, weight kept */
    CQ_PLAN_SKIP_EMBEDDING,
    CQ_PLAN_SKIP_TIED_HEAD,
    CQ_PLAN_SKIP_CONV1D,
    CQ_PLAN_SKIP_EXCLUDED,     /* matched an exclude pattern */
    CQ_PLAN_SKIP_NOT_INCLUDED, /* include patterns given, none matched */
    CQ_PLAN_SKIP_KIND,         /* a kind optimum-quanto never converts (EmbeddingBag, BatchNorm ...) */
    CQ_PLAN_SKIP_UNDECIDED     /* the kind is unknown: left in float rather than guessed */
} cq_plan_action;
CQ_API const char *cq_plan_action_name(cq_plan_action a); /* "quantize", "embedding", "tied head" ... */

typedef struct cq_plan_entry {
    const char *module;        /* "model.layers.0.mlp.down_proj" (borrowed from the plan) */
    cq_dtype dtype;            /* of the float weight */
    int ndim;
    int64_t shape[CQ_MAX_DIMS];
    cq_plan_action action;
    cq_qtype weights;          /* QNONE unless quantized */
    cq_qtype activations;
    int64_t group_size;        /* 0: per output channel */
    uint64_t bytes_before;     /* the module's weight as stored */
    uint64_t bytes_after;      /* its quantized tensors, input_scale and output_scale included */
    cq_layer_kind kind;
    /* How the kind was decided: "kinds-file", "structure", "config:<family>", "name/rank guess"
     * or "undecided" (borrowed from the plan). */
    const char *decided_by;
} cq_plan_entry;

typedef struct cq_plan cq_plan;

/* Opens the checkpoint and its config.json (if any) and decides. Fails with CQ_E_DTYPE when a
 * module to quantize is not F32/F16/BF16, CQ_E_ARG when an include pattern is empty, when the
 * patterns leave nothing to quantize or an explicit group size does not divide a module's
 * in_features, CQ_E_FORMAT when the input is already a quanto checkpoint or the module_kinds file
 * is malformed, names an unknown kind, a kind its module's weight rank contradicts, or a Linear or
 * Conv2d (with activations a LayerNorm) whose weight the checkpoint lacks. */
CQ_API cq_status cq_plan_build(const char *in, const cq_convert_opts *opts, cq_plan **out, cq_err *err);
CQ_API void cq_plan_free(cq_plan *p); /* accepts NULL */
CQ_API int64_t cq_plan_count(const cq_plan *p);                            /* candidates, file order */
CQ_API const cq_plan_entry *cq_plan_entry_at(const cq_plan *p, int64_t i); /* NULL out of range */
/* Whole-checkpoint totals: every tensor's bytes before and after, and the quantized count. */
CQ_API void cq_plan_totals(const cq_plan *p, uint64_t *bytes_before, uint64_t *bytes_after, int64_t *n_quantized);

/* --- convert: the streaming commands -----------------------------------------------------------
 * cq_convert_quantize writes folder `out`: the input's safetensors file(s) with each planned
 * module's "<m>.weight" replaced by quanto's frozen state ("<m>.weight._data[._data]",
 * "<m>.weight._scale", "<m>.weight._shift", "<m>.input_scale", "<m>.output_scale" = 1.0 in the
 * weight dtype), every other tensor copied unchanged; the input's file names and sharding (with
 * an updated index); quanto_qmap.json; config.json with a transformers quantization_config; the
 * input folder's other small files. Bytes never depend on opts->threads. */
CQ_API cq_status cq_convert_quantize(const char *in, const char *out, const cq_convert_opts *opts,
                                     cq_convert_stats *stats, cq_err *err);
/* Turns a quanto checkpoint (quanto_qmap.json beside it) into one float safetensors file: each
 * quantized module's "<m>.weight" dequantized in its scale dtype, activation scales dropped,
 * everything else copied. opts (NULL: defaults) gives threads, overwrite, cancel, progress. */
CQ_API cq_status cq_convert_dequantize(const char *in, const char *out_file, const cq_convert_opts *opts,
                                       cq_convert_stats *stats, cq_err *err);

/* --- convert: GGUF to a Hugging Face folder ----------------------------------------------------
 * cq_gguf_convert reads a llama.cpp GGUF model (architectures llama and qwen2) and writes the
 * float Hugging Face folder it stands for: config.json from the "<arch>.*" metadata,
 * model.safetensors with transformers' tensor names (llama.cpp's q/k row permutation undone,
 * block formats dequantized bit-exactly as the gguf package does, then rounded to the chosen
 * dtype), tokenizer.json from "tokenizer.ggml.*" (byte-level BPE with llama.cpp's pre-tokenizer,
 * or SentencePiece BPE with byte fallback), generation_config.json. transformers loads it and
 * `cquanto quantize` takes it. One tensor is in memory at a time; the folder appears only when
 * complete. What cannot be carried over exactly is refused by name (docs/GGUF.md). */
typedef struct cq_gguf_convert_opts {
    cq_dtype dtype;             /* F32, F16 or BF16; CQ_DTYPE_INVALID (default): F16/BF16/F32
                                   tensors keep their type, block formats become F32 */
    bool overwrite;             /* replace an existing output (else CQ_E_EXISTS) */
    const volatile int *cancel; /* as cq_convert_opts */
    void (*progress)(const cq_convert_progress *p, void *user); /* after each tensor */
    void *progress_user;
} cq_gguf_convert_opts;
CQ_API cq_gguf_convert_opts cq_gguf_convert_default_opts(void);
CQ_API cq_status cq_gguf_convert(const char *gguf, const char *out_dir, const cq_gguf_convert_opts *opts, cq_err *err);

/* --- convert: error report ---------------------------------------------------------------------
 * Quantization error of each quantized module of a quanto checkpoint against the float
 * checkpoint it came from, computed in double over the weight's elements x and their
 * dequantized values y: snr_db = 10 log10(sum x^2 / sum (x-y)^2) (+inf when exact),
 * rel_rms = sqrt(sum (x-y)^2 / sum x^2), max_abs = max |x-y|. */
typedef struct cq_error_stats {
    int64_t n;
    double sum_sq_ref;  /* sum x^2 */
    double sum_sq_err;  /* sum (x-y)^2 */
    double max_abs;     /* NaN when any difference is NaN */
    double snr_db, rel_rms;
} cq_error_stats;
/* Accumulates n elements (x, y of F32/F16/BF16, any mix) into s; call cq_error_stats_finish after
 * the last chunk. Start from a zeroed struct. */
CQ_API void cq_error_stats_add(cq_error_stats *s, const void *x, cq_dtype xt, const void *y, cq_dtype yt, int64_t n);
CQ_API void cq_error_stats_finish(cq_error_stats *s);
/* The same for two whole tensors of equal element count (CQ_E_SHAPE otherwise). */
CQ_API cq_status cq_error_stats_tensors(const cq_tensor *ref, const cq_tensor *approx, cq_error_stats *out,
                                        cq_err *err);

typedef struct cq_report_entry {
    const char *module;         /* borrowed from the report */
    int64_t order;              /* position in the quantized checkpoint (the plot's x axis) */
    cq_qtype qtype;
    int64_t group_size;         /* 0: per channel */
    int ndim;
    int64_t shape[CQ_MAX_DIMS];
    double bits_per_weight;     /* 8 * (data + scale + shift bytes) / elements */
    cq_error_stats err;
} cq_report_entry;

typedef struct cq_report cq_report;
/* Compares every module of quant_in's quanto_qmap.json that has quantized weights with
 * "<m>.weight" of float_in (same shape required). opts: threads, cancel, progress (NULL ok). */
CQ_API cq_status cq_report_build(const char *float_in, const char *quant_in, const cq_convert_opts *opts,
                                 cq_report **out, cq_err *err);
CQ_API void cq_report_free(cq_report *r); /* accepts NULL */
CQ_API int64_t cq_report_count(const cq_report *r);
/* Entries sorted worst first (lowest SNR; ties by name). */
CQ_API const cq_report_entry *cq_report_entry_at(const cq_report *r, int64_t i);
/* Over all modules together: SNR of the summed energies, and bits per weight. */
CQ_API void cq_report_overall(const cq_report *r, cq_error_stats *err, double *bits_per_weight);

#ifdef __cplusplus
}
#endif
#endif /* CQUANTO_CONVERT_H */
