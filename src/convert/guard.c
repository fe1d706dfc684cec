/*
 * guard.c - what a conversion checks before it writes anything: the output rules of
 * io/fsutil.h against every file the conversion reads (so no command ever modifies one of its
 * inputs), the refusal of an existing output without overwrite, and the removal of the stale
 * temp outputs that killed runs left beside it.
 */
#include "convert_internal.h"
#include "io/fsutil.h"

#include <sys/stat.h>

typedef struct path_list {
    char **p;
    int n, cap;
} path_list;

static cq_status list_add(path_list *l, const char *dir, const char *name, cq_err *err) {
    if (l->n == l->cap) {
        int nc = l->cap ? 2 * l->cap : 16;
        char **p = realloc(l->p, (size_t)nc * sizeof *p);
        if (!p) return cq_err_set(err, CQ_E_NOMEM, "out of memory");
        l->p = p;
        l->cap = nc;
    }
    if (!(l->p[l->n] = dir ? cq_path_join(dir, name) : strdup(name))) return cq_err_set(err, CQ_E_NOMEM, "out of memory");
    l->n++;
    return CQ_OK;
}

/* What reading checkpoint c (opened from `in`) touches: `in` itself, its index and shards, and
 * the folder files beside a file input (a folder input covers its own). */
static cq_status list_inputs(path_list *l, const char *in, const cq_ckpt *c, cq_err *err) {
    cq_status s = list_add(l, NULL, in, err);
    if (!c) return s;
    if (!s && cq_ckpt_index_path(c)) s = list_add(l, NULL, cq_ckpt_index_path(c), err);
    for (int i = 0; !s && i < cq_ckpt_shard_count(c); i++) {
        const cq_st_file *f = cq_ckpt_shard(c, i); /* NULL for a shard of another format */
        if (f) s = list_add(l, NULL, cq_st_path(f), err);
        else if (cq_ckpt_index_path(c)) s = list_add(l, cq_ckpt_dir(c), cq_ckpt_shard_file(c, i), err);
    }
    static const char *const beside[] = {"quanto_qmap.json", "config.json"};
    for (size_t i = 0; !s && i < CQ_ARRAY_LEN(beside); i++) {
        char *p = cq_path_join(cq_ckpt_dir(c), beside[i]);
        if (!p) s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
        else if (cq_fs_exists(p)) s = list_add(l, NULL, p, err);
        free(p);
    }
    return s;
}

static cq_status check(const char *out, const char *const *in, const cq_ckpt *const *c, int n, cq_err *err) {
    path_list l = {0};
    cq_status s = CQ_OK;
    for (int i = 0; !s && i < n; i++)
        if (in[i]) s = list_inputs(&l, in[i], c ? c[i] : NULL, err);
    if (!s) s = cq__check_output(out, (const char *const *)l.p, l.n, err);
    for (int i = 0; i < l.n; i++) free(l.p[i]);
    free(l.p);
    return s;
}

cq_status cq__guard_output(const char *out, const char *const *in, const cq_ckpt *const *c, int n,
                           const cq_convert_opts *o, cq_err *err) {
    cq_status s = check(out, in, c, n, err);
    struct stat st;
    if (!s && !o->overwrite && lstat(out, &st) == 0)
        s = cq_err_set(err, CQ_E_EXISTS, "%s: already exists (use --force to replace it)", out);
    if (!s) cq__remove_stale_temps(out, o->notice, o->progress_user);
    return s;
}

cq_status cq_convert_check_output(const char *out, const char *const *checkpoints, int n, cq_err *err) {
    if (!out || n < 0 || (n && !checkpoints)) return cq_err_set(err, CQ_E_ARG, "cq_convert_check_output: bad arguments");
    cq_ckpt **c = cq__calloc((size_t)(n ? n : 1), sizeof *c, err, "checkpoints");
    if (!c) return CQ_E_NOMEM;
    /* A checkpoint that does not open lists only its own path; the command reading it fails anyway. */
    for (int i = 0; i < n; i++)
        if (checkpoints[i] && cq_ckpt_open(checkpoints[i], &c[i], NULL) != CQ_OK) c[i] = NULL;
    cq_status s = check(out, checkpoints, (const cq_ckpt *const *)c, n, err);
    for (int i = 0; i < n; i++) cq_ckpt_close(c[i]);
    free(c);
    return s;
}
