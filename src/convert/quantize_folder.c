/*
 * quantize_folder.c - cq_convert_quantize: the output folder around the tensor stream
 * (quantize_stream.c). Everything is written into a temporary folder beside OUT (the shards,
 * the shard index, quanto_qmap.json, config.json with transformers' quantization_config, the
 * input's small side files) and renamed over OUT only when all of it succeeded.
 */
#include "convert_internal.h"
#include "io/fsutil.h"

#include <dirent.h>
#include <sys/stat.h>

/* Other files of the input folder are copied up to this size (tokenizers, generation configs). */
#define SMALL_FILE_MAX ((uint64_t)256 << 20)

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Other weight formats are never copied: the output would carry the float model twice. Tokenizer
 * and config files (tokenizer.json, tokenizer.model, llama2.c's tok512.bin ...) are. */
static bool is_weight_file(const char *name) {
    static const char *const ext[] = {".safetensors", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf",
                                      ".onnx", ".pb", ".tflite", ".npz", ".index.json"};
    static const char *const bin_prefix[] = {"pytorch_model", "diffusion_pytorch_model", "model-", "model.", "optimizer"};
    for (size_t i = 0; i < CQ_ARRAY_LEN(ext); i++)
        if (cq__str_has_suffix(name, ext[i])) return true;
    for (size_t i = 0; cq__str_has_suffix(name, ".bin") && i < CQ_ARRAY_LEN(bin_prefix); i++)
        if (!strncmp(name, bin_prefix[i], strlen(bin_prefix[i]))) return true;
    return false;
}

static void notice(const cq_convert_opts *o, const char *fmt, const char *a, const char *b) {
    char msg[1024];
    if (!o->notice) return;
    snprintf(msg, sizeof msg, fmt, a, b);
    o->notice(msg, o->progress_user);
}

/* Side files follow the rule for every file of a checkpoint folder (io/fsutil.h): a link that
 * resolves outside the folder is not followed, and only regular files are read. Being optional,
 * such files are left out with a notice rather than stopping the run. The copy keeps the
 * source's permission bits (cq_fs_copy_file). */
cq_status cq__copy_side_files(const char *in_dir, const char *tmp, const cq_convert_opts *o, cq_err *err) {
    DIR *d = opendir(in_dir);
    if (!d) return CQ_OK; /* nothing to copy */
    cq_status s = CQ_OK;
    struct dirent *de;
    while (!s && (de = readdir(d))) {
        const char *n = de->d_name;
        if (n[0] == '.' || is_weight_file(n) || !strcmp(n, "config.json") || !strcmp(n, "quanto_qmap.json")) continue;
        char *src = cq_path_join(in_dir, n), *dst = cq_path_join(tmp, n), *real = NULL;
        struct stat st;
        if (!src || !dst) s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
        else if (!cq__resolves_inside(src, in_dir, &real))
            notice(o, "%s: not copied: a link to %s, outside the input folder", src, real);
        else if (stat(src, &st) != 0 || S_ISDIR(st.st_mode) || (uint64_t)st.st_size > SMALL_FILE_MAX)
            ; /* folders, dangling links and large files are not side files */
        else if (!S_ISREG(st.st_mode))
            notice(o, "%s: not copied: not a regular file%s", src, "");
        else
            s = cq_fs_copy_file(src, dst, err);
        free(real);
        free(src);
        free(dst);
    }
    closedir(d);
    return s;
}

static cq_status write_qmap(const cq_plan *p, const char *tmp, cq_err *err) {
    cq_qmap *m = NULL;
    cq_status s = cq_qmap_new(&m, err);
    for (int64_t i = 0; !s && i < p->n_entries; i++) {
        const cq_plan_entry *e = &p->entries[i];
        if (e->action == CQ_PLAN_QUANTIZE || e->action == CQ_PLAN_ACTIVATIONS_ONLY)
            s = cq_qmap_set(m, e->module, e->weights, e->activations, err);
    }
    char *path = s ? NULL : cq_path_join(tmp, "quanto_qmap.json");
    if (!s && !path) s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
    if (!s) s = cq_qmap_save(m, path, err);
    free(path);
    cq_qmap_free(m);
    return s;
}

/* config.json: the input's (or an empty one) with transformers' quantization_config. The
 * modules left as Linear are listed in modules_to_not_convert. float8_e5m2 has no QuantoConfig
 * spelling: then the config is copied without it (quanto_qmap.json still says everything), and
 * an input without a config gets none. */
static cq_status write_config(const cq_plan *p, const char *tmp, cq_err *err) {
    cq_hfconfig *c = NULL;
    cq_status s;
    bool expressible = p->opts.weights != CQ_QFLOAT8_E5M2 && p->opts.activations != CQ_QFLOAT8_E5M2;
    if (!p->config && !expressible) return CQ_OK;
    if (p->config) {
        char *text = NULL;
        s = cq_hfconfig_to_json(p->config, &text, err);
        if (!s) s = cq_hfconfig_parse(text, strlen(text), "config.json", &c, err);
        free(text);
    } else {
        s = cq_hfconfig_parse("{}", 2, "config.json", &c, err);
    }
    const char **skip = NULL;
    if (!s && expressible) {
        skip = cq__calloc((size_t)p->n_entries + 1, sizeof *skip, err, "a module list");
        if (!skip) s = CQ_E_NOMEM;
        int64_t n = 0;
        for (int64_t i = 0; skip && i < p->n_entries; i++) {
            cq_plan_action a = p->entries[i].action;
            if (a == CQ_PLAN_SKIP_EXCLUDED || a == CQ_PLAN_SKIP_NOT_INCLUDED || a == CQ_PLAN_SKIP_CONV1D)
                skip[n++] = p->entries[i].module;
        }
        if (!s) s = cq_hfconfig_set_quantization(c, p->opts.weights, p->opts.activations, n ? skip : NULL, err);
    }
    char *path = s ? NULL : cq_path_join(tmp, "config.json");
    if (!s && !path) s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
    if (!s) s = cq_hfconfig_save(c, path, err);
    free(path);
    free(skip);
    cq_hfconfig_free(c);
    return s;
}

static cq_status write_index(const cq_plan *p, const char *tmp, cq_err *err) {
    const char *index = cq_ckpt_index_path(p->ckpt);
    if (!index) return CQ_OK;
    int64_t cap = p->n_tensors * CQ__MAX_OUT_SPECS + 1, n = 0;
    const char **names = calloc((size_t)cap, sizeof *names), **files = calloc((size_t)cap, sizeof *files);
    char **owned = calloc((size_t)cap, sizeof *owned);
    cq_status s = names && files && owned ? CQ_OK : cq_err_set(err, CQ_E_NOMEM, "out of memory");
    int64_t total = 0;
    for (int64_t ti = 0; !s && ti < p->n_tensors; ti++) {
        const cq__plan_tensor *pt = &p->tensors[ti];
        const char *file = cq_ckpt_shard_file(p->ckpt, pt->shard);
        const cq_plan_entry *e = pt->entry >= 0 ? &p->entries[pt->entry] : NULL;
        if (!e || e->action == CQ_PLAN_ACTIVATIONS_ONLY) {
            names[n] = pt->name;
            files[n++] = file;
            total += (int64_t)cq_tensor_nbytes(pt->t);
        }
        cq__out_spec specs[CQ__MAX_OUT_SPECS];
        int ns = e ? cq__plan_out_specs(p, e, specs) : 0;
        for (int k = 0; !s && k < ns; k++) {
            size_t len = strlen(p->entry_prefix[pt->entry]) + strlen(specs[k].suffix) + 1;
            owned[n] = cq__malloc(len, err, "a tensor name");
            if (!owned[n]) {
                s = CQ_E_NOMEM;
                break;
            }
            snprintf(owned[n], len, "%s%s", p->entry_prefix[pt->entry], specs[k].suffix);
            names[n] = owned[n];
            files[n++] = file;
            total += (int64_t)specs[k].nbytes;
        }
    }
    char *path = s ? NULL : cq_path_join(tmp, base_name(index));
    if (!s && !path) s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
    if (!s) s = cq_ckpt_write_index(path, total, n, names, files, err);
    for (int64_t i = 0; owned && i < n; i++) free(owned[i]);
    free(owned);
    free(names);
    free(files);
    free(path);
    return s;
}

/* --force replaces an existing OUT only when losing it cannot hurt: an empty folder or an earlier
 * quantized checkpoint (quanto_qmap.json inside). That it is no input, holds none and is no
 * link is cq__guard_output's to say. */
static cq_status check_replaceable(const char *out, cq_err *err) {
    struct stat st;
    if (lstat(out, &st) != 0) return CQ_OK;
    if (!S_ISDIR(st.st_mode))
        return cq_err_set(err, CQ_E_EXISTS, "%s: exists and is not a folder; remove it first", out);
    char *qmap = cq_path_join(out, "quanto_qmap.json");
    bool is_output = qmap && cq_fs_exists(qmap);
    free(qmap);
    DIR *d = opendir(out);
    bool empty = d != NULL;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) empty = false;
    if (d) closedir(d);
    if (!is_output && !empty)
        return cq_err_set(err, CQ_E_EXISTS,
                          "%s: refusing to replace a folder that is not a quantized checkpoint (no quanto_qmap.json); "
                          "remove it first",
                          out);
    return CQ_OK;
}

cq_status cq_convert_quantize(const char *in, const char *out, const cq_convert_opts *opts, cq_convert_stats *stats,
                              cq_err *err) {
    cq_convert_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!in || !out || !opts) return cq_err_set(err, CQ_E_ARG, "cq_convert_quantize: NULL argument");
    if (!*out) return cq_err_set(err, CQ_E_ARG, "the output folder path is empty");
    double t0 = cq__now();
    cq_plan *p = NULL;
    cq_status s = cq_plan_build(in, opts, &p, err);
    if (s) return s;
    /* The kinds file is an input too: never replaced by the output. */
    const char *ins[] = {in, opts->module_kinds};
    const cq_ckpt *cks[] = {p->ckpt, NULL};
    s = cq__guard_output(out, ins, cks, opts->module_kinds ? 2 : 1, opts, err);
    if (!s) s = check_replaceable(out, err);
    if (s) {
        cq_plan_free(p);
        return s;
    }
    char *tmp = NULL;
    cq__ckpt_sequential(p->ckpt);
    s = cq_fs_temp_dir(out, &tmp, err);
    bool single_file = !cq_ckpt_index_path(p->ckpt) && !cq_fs_is_dir(in);
    if (!s) s = cq__quantize_shards(p, opts, tmp, single_file, t0, stats, err);
    if (!s) s = write_index(p, tmp, err);
    if (!s) s = write_qmap(p, tmp, err);
    if (!s) s = write_config(p, tmp, err);
    if (!s && cq_fs_is_dir(in)) s = cq__copy_side_files(cq_ckpt_dir(p->ckpt), tmp, opts, err);
    if (!s && cq__cancelled(opts)) s = cq_err_set(err, CQ_E_IO, "interrupted");
    if (!s) s = cq_fs_commit_dir(tmp, out, opts->overwrite, err);
    if (s && tmp) cq_fs_remove_tree(tmp, NULL);
    if (!s) {
        stats->tensors = p->n_tensors;
        stats->modules = p->n_quantized;
        stats->bytes_in = p->bytes_before;
        stats->bytes_out = p->bytes_after;
        for (int64_t i = 0; i < p->n_entries; i++) {
            const cq_plan_entry *e = &p->entries[i];
            if (e->action != CQ_PLAN_QUANTIZE) continue;
            cq__out_spec specs[CQ__MAX_OUT_SPECS];
            int n = cq__plan_out_specs(p, e, specs);
            for (int k = 0; k < n - 2; k++) stats->qweight_bytes += specs[k].nbytes; /* not the activation scales */
        }
        stats->bits_per_weight = stats->weights ? 8.0 * (double)stats->qweight_bytes / (double)stats->weights : 0.0;
        stats->seconds = cq__now() - t0;
    }
    free(tmp);
    cq_plan_free(p);
    return s;
}
