/*
 * calibrate.c - static activation scales: optimum-quanto's Calibration over token chunks
 * (cquanto/lm.h states the rule; llama.c's linear() observes), the accessors of the scales, and
 * the writer of a calibrated quanto folder: the source folder copied shard by shard with every
 * "<module>.input_scale" / ".output_scale" tensor replaced by the model's values, and its side
 * files by `cquanto quantize`'s rule.
 */
#include "lm/lm_internal.h"

cq_calib_opts cq_calib_default_opts(void) {
    cq_calib_opts o = {0, 0, 0.9, -1, NULL, NULL};
    return o;
}

cq_status cq_lm_calibrate(cq_lm *lm, const int32_t *tokens, int64_t n, const cq_calib_opts *opts, cq_err *err) {
    CQ__ARG(lm);
    CQ__ARG(tokens);
    cq_calib_opts o = opts ? *opts : cq_calib_default_opts();
    int64_t ctx = o.n_ctx > 0 ? o.n_ctx : lm->context < 256 ? lm->context : 256;
    if (ctx > lm->batch || ctx > lm->context)
        return cq_err_set(err, CQ_E_ARG,
                          "calibrate: chunks of %lld tokens exceed the batch (%lld) or context (%lld) the model was loaded "
                          "with: quanto observes each forward call whole",
                          (long long)ctx, (long long)lm->batch, (long long)lm->context);
    if (!(o.momentum >= 0.0 && o.momentum <= 1.0))
        return cq_err_set(err, CQ_E_ARG, "calibrate: momentum %g outside [0, 1]", o.momentum);
    if (n < ctx) return cq_err_set(err, CQ_E_ARG, "calibrate: %lld tokens, fewer than one chunk of %lld", (long long)n, (long long)ctx);
    bool any = false;
    for (int64_t i = 0; cq__lm_linear_at(lm, i); i++) any |= cq__lm_linear_at(lm, i)->act != CQ_QNONE;
    if (!any) return cq_err_set(err, CQ_E_ARG, "calibrate: no module quantizes its activations");
    int64_t chunks = n / ctx;
    if (o.max_chunks > 0 && o.max_chunks < chunks) chunks = o.max_chunks;
    int32_t *ids = cq__malloc((size_t)ctx * sizeof *ids, err, "calibration chunk");
    if (!ids) return CQ_E_NOMEM;
    /* torch multiplies an f32 tensor by Python floats: each factor is rounded to f32 once, and
     * (1 - momentum) is computed in double first */
    lm->momentum = (float)o.momentum;
    lm->one_minus = (float)(1.0 - o.momentum);
    lm->calibrating = true;
    cq_status st = CQ_OK;
    for (int64_t c = 0; !st && c < chunks; c++) {
        memcpy(ids, tokens + c * ctx, (size_t)ctx * sizeof *ids);
        if (o.bos >= 0) ids[0] = o.bos;
        cq_lm_reset(lm);
        st = cq_lm_forward(lm, ids, ctx, NULL, ctx, err);
        if (!st && o.progress) o.progress(o.user, c + 1, chunks);
    }
    lm->calibrating = false;
    cq_lm_reset(lm);
    free(ids);
    return st;
}

int64_t cq_lm_activation_scales(const cq_lm *lm, int64_t i, const char **name, float *input_scale, float *output_scale) {
    if (!lm) return 0;
    int64_t count = 0;
    for (int64_t j = 0; cq__lm_linear_at(lm, j); j++) {
        const lm_linear *l = cq__lm_linear_at(lm, j);
        if (l->act == CQ_QNONE) continue;
        if (count == i) {
            if (name) *name = l->name;
            if (input_scale) *input_scale = l->in_scale;
            if (output_scale) *output_scale = l->out_scale;
        }
        count++;
    }
    return count;
}

/* The linear whose "<name>.input_scale" or ".output_scale" tensor this is, and which. */
static const lm_linear *scale_owner(const cq_lm *lm, const char *tensor, bool *input) {
    for (int64_t j = 0; cq__lm_linear_at(lm, j); j++) {
        const lm_linear *l = cq__lm_linear_at(lm, j);
        size_t n = strlen(l->name);
        if (l->act == CQ_QNONE || strncmp(tensor, l->name, n) || tensor[n] != '.') continue;
        if (!strcmp(tensor + n + 1, "input_scale")) return *input = true, l;
        if (!strcmp(tensor + n + 1, "output_scale")) return *input = false, l;
    }
    return NULL;
}

static cq_status write_shard(const cq_lm *lm, const cq_st_file *f, const char *path, cq_err *err) {
    cq_st_writer *w = NULL;
    CQ__TRY(cq_st_writer_open(path, &w, err));
    cq_status st = CQ_OK;
    for (int64_t k = 0; !st && k < cq_st_metadata_count(f); k++)
        st = cq_st_writer_add_metadata(w, cq_st_metadata_key(f, k), cq_st_metadata_value(f, k), err);
    for (int64_t i = 0; !st && i < cq_st_count(f); i++) {
        const cq_tensor *t = cq_st_tensor(f, i);
        st = cq_st_writer_declare(w, cq_st_name(f, i), t->dtype, t->ndim, t->shape, err);
    }
    for (int64_t i = 0; !st && i < cq_st_count(f); i++) {
        const cq_tensor *t = cq_st_tensor(f, i);
        bool input = false;
        const lm_linear *l = scale_owner(lm, cq_st_name(f, i), &input);
        if (l && cq_tensor_numel(t) == 1) {
            uint8_t v[8] = {0};
            cq_store_f32(v, t->dtype, 0, input ? l->in_scale : l->out_scale);
            st = cq_st_writer_write(w, cq_st_name(f, i), v, cq_tensor_nbytes(t), err);
        } else {
            st = cq_st_writer_write(w, cq_st_name(f, i), t->data, cq_tensor_nbytes(t), err);
        }
    }
    if (!st) st = cq_st_writer_commit(w, err);
    cq_st_writer_free(w);
    return st;
}

cq_status cq_lm_save_calibrated(const cq_lm *lm, const char *out_dir, bool overwrite, cq_err *err) {
    CQ__ARG(lm);
    CQ__ARG(out_dir);
    if (lm->qmods.n == 0)
        return cq_err_set(err, CQ_E_ARG, "save calibrated: the model was not loaded from a quanto folder "
                          "(quantize it with `cquanto quantize --activations int8` first)");
    if (cq_fs_exists(out_dir) && !overwrite)
        return cq_err_set(err, CQ_E_EXISTS, "%s exists (overwrite to replace it)", out_dir);
    const char *src = cq_ckpt_dir(lm->ckpt);
    char *tmp = NULL;
    CQ__TRY(cq_fs_temp_dir(out_dir, &tmp, err));
    cq_status st = CQ_OK;
    /* the shards, then every other regular file of the folder (config, qmap, index, tokenizer) */
    for (int s = 0; !st && s < cq_ckpt_shard_count(lm->ckpt); s++) {
        if (!cq_ckpt_shard(lm->ckpt, s)) { /* a .gguf: its folder exists only in memory */
            st = cq_err_set(err, CQ_E_UNSUPPORTED, "%s: write the model as a folder first (cquanto convert), then "
                            "calibrate that", src);
            break;
        }
        char *p = cq_path_join(tmp, cq_ckpt_shard_file(lm->ckpt, s));
        st = p ? write_shard(lm, cq_ckpt_shard(lm->ckpt, s), p, err) : cq_err_set(err, CQ_E_NOMEM, "out of memory");
        free(p);
    }
    /* the side files by quantize's rule, and the files that rule leaves to the writer */
    cq_convert_opts co = cq_convert_default_opts();
    if (!st) st = cq__copy_side_files(src, tmp, &co, err);
    const char *own[] = {"config.json", "quanto_qmap.json", NULL};
    const char *index = cq_ckpt_index_path(lm->ckpt);
    if (index) own[2] = strrchr(index, '/') ? strrchr(index, '/') + 1 : index;
    for (size_t i = 0; !st && i < CQ_ARRAY_LEN(own); i++) {
        if (!own[i]) continue;
        char *from = cq_path_join(src, own[i]), *to = cq_path_join(tmp, own[i]);
        if (!from || !to) st = cq_err_set(err, CQ_E_NOMEM, "out of memory");
        else if (cq_fs_exists(from)) st = cq_fs_copy_file(from, to, err);
        free(from);
        free(to);
    }
    if (!st) st = cq_fs_commit_dir(tmp, out_dir, overwrite, err);
    if (st) cq_fs_remove_tree(tmp, NULL);
    free(tmp);
    return st;
}
