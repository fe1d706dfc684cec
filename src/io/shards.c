/*
 * shards.c - checkpoints as one logical set of tensors: a single .safetensors file, or the
 * shards listed by a transformers/diffusers index (`*.safetensors.index.json`:
 * {"metadata": {"total_size": N}, "weight_map": {tensor: shard file}}). Every shard is opened
 * as a tensor source (source.h: mapped and validated) up front, and the index and the shards must agree exactly. Also the
 * index writer and transformers' shard file names. Not here: choosing shard boundaries when
 * writing (the caller decides), remote downloads.
 */
#include "io/fsutil.h"
#include "io/io_internal.h"
#include "io/mem_source.h"

#include <dirent.h>
#include <inttypes.h>

#define MAX_INDEX_BYTES ((size_t)256 << 20)

typedef struct ckpt_entry {
    const cq__src_tensor *rec; /* borrowed from the shard's source */
    int shard;
    int64_t index; /* in the shard */
} ckpt_entry;

struct cq_ckpt {
    char *dir;
    char *index_path;
    int64_t total_size;
    char *single_path; /* the file, when not sharded */
    int nshards;
    cq__source **shards;
    char **shard_files;
    ckpt_entry *entries;
    int64_t count;
    int64_t *by_name;
    bool no_folder; /* made in memory (cq__ckpt_from_source): no files beside it */
};

void cq_ckpt_close(cq_ckpt *c) {
    if (!c) return;
    for (int i = 0; i < c->nshards; i++) {
        cq__source_close(c->shards[i]);
        free(c->shard_files[i]);
    }
    free(c->shards);
    free(c->shard_files);
    free(c->entries);
    free(c->by_name);
    free(c->dir);
    free(c->index_path);
    free(c->single_path);
    free(c);
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static const char *base_of(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The single entry in dir whose name ends with suffix: CQ_OK with *out set, CQ_OK with *out
 * NULL when there is none, CQ_E_ARG when several match. */
static cq_status find_unique_suffix(const char *dir, const char *suffix, char **out, cq_err *err) {
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return cq_err_set(err, CQ_E_IO, "%s: cannot list the folder", dir);
    struct dirent *e;
    cq_status s = CQ_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !cq__str_has_suffix(e->d_name, suffix)) continue;
        if (*out) {
            s = cq_err_set(err, CQ_E_ARG, "%s: holds several *%s files (%s, %s, ...); name one", dir, suffix, *out,
                           e->d_name);
            break;
        }
        *out = cq_path_join(dir, e->d_name);
        if (!*out) {
            s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
            break;
        }
    }
    closedir(d);
    if (s) {
        free(*out);
        *out = NULL;
    }
    return s;
}

/* Resolves a folder to the file that describes its checkpoint (an index or a single file). */
static cq_status resolve_folder(const char *dir, char **out, cq_err *err) {
    static const char *const preferred[] = {
        "model.safetensors.index.json", "diffusion_pytorch_model.safetensors.index.json", NULL,
        "model.safetensors", "diffusion_pytorch_model.safetensors", NULL};
    static const char *const suffixes[] = {".safetensors.index.json", ".safetensors"};
    const char *const *p = preferred;
    for (int round = 0; round < 2; round++, p++) {
        for (; *p; p++) {
            char *cand = cq_path_join(dir, *p);
            if (!cand) return cq_err_set(err, CQ_E_NOMEM, "out of memory");
            if (cq_fs_exists(cand) && !cq_fs_is_dir(cand)) {
                *out = cand;
                return CQ_OK;
            }
            free(cand);
        }
        cq_status s = find_unique_suffix(dir, suffixes[round], out, err);
        if (s || *out) return s;
    }
    return cq_err_set(err, CQ_E_NOTFOUND, "%s: no .safetensors file or *.safetensors.index.json in this folder", dir);
}

static int64_t find_entry(const cq_ckpt *c, const char *name) {
    int64_t lo = 0, hi = c->count - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int r = strcmp(c->entries[c->by_name[mid]].rec->name, name);
        if (r == 0) return c->by_name[mid];
        if (r < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static _Thread_local const ckpt_entry *g_sort_entries;
static int cmp_entry_names(const void *a, const void *b) {
    return strcmp(g_sort_entries[*(const int64_t *)a].rec->name, g_sort_entries[*(const int64_t *)b].rec->name);
}
static int cmp_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Lists the shards' tensors in order and builds the name index. */
static cq_status build_entries(cq_ckpt *c, cq_err *err) {
    int64_t total = 0;
    for (int i = 0; i < c->nshards; i++) total += cq__src_count(c->shards[i]);
    c->entries = cq__malloc((size_t)(total ? total : 1) * sizeof *c->entries, err, "checkpoint entries");
    c->by_name = cq__malloc((size_t)(total ? total : 1) * sizeof *c->by_name, err, "a name index");
    if (!c->entries || !c->by_name) return CQ_E_NOMEM;
    for (int i = 0; i < c->nshards; i++)
        for (int64_t k = 0; k < cq__src_count(c->shards[i]); k++) {
            c->entries[c->count] = (ckpt_entry){cq__src_tensor_at(c->shards[i], k), i, k};
            c->by_name[c->count] = c->count;
            c->count++;
        }
    g_sort_entries = c->entries;
    qsort(c->by_name, (size_t)c->count, sizeof *c->by_name, cmp_entry_names);
    return CQ_OK;
}

/* A shard lies beside its index: a plain file name (no folder part, not "." or ".."), which
 * must also resolve inside the index's folder (fsutil.h), so neither a name nor a symlink
 * reaches outside it. One rule for every reader. */
static bool plain_file_name(const char *f) { return *f && !strchr(f, '/') && strcmp(f, ".") && strcmp(f, ".."); }

static cq_status check_inside(const char *path, const char *dir, const char *what, cq_err *err) {
    char *real = NULL;
    if (cq__resolves_inside(path, dir, &real)) return CQ_OK;
    cq_status s = cq_err_set(err, CQ_E_FORMAT, "%s: %s is a link to %s, outside the folder %s; refusing to read it",
                             path, what, real, dir);
    free(real);
    return s;
}

static cq_status open_index(cq_ckpt *c, const char *index_path, cq_err *err) {
    char *text = NULL;
    size_t n = 0;
    json_t *root = NULL;
    cq_status s = cq_fs_read_file(index_path, MAX_INDEX_BYTES, &text, &n, err);
    if (!s) s = cq__json_parse_object(text, n, index_path, &root, err);
    free(text);
    if (s) return s;
    c->index_path = cq__strdup(index_path, err);
    c->dir = dir_of(index_path);
    if (!c->index_path || !c->dir) s = cq_err_set(err, CQ_E_NOMEM, "out of memory");

    const json_t *meta = json_object_get(root, "metadata");
    const json_t *total = meta ? json_object_get(meta, "total_size") : NULL;
    c->total_size = json_is_integer(total) ? json_integer_value(total) : json_is_real(total) ? (int64_t)json_real_value(total) : -1;
    if (!s && meta && !json_is_object(meta) && !json_is_null(meta))
        s = cq_err_set(err, CQ_E_FORMAT, "%s: \"metadata\" is not an object", index_path);
    const json_t *wm = json_object_get(root, "weight_map");
    if (!s && !json_is_object(wm))
        s = cq_err_set(err, CQ_E_FORMAT, "%s: missing \"weight_map\" object", index_path);

    /* The distinct shard files, sorted. */
    size_t nmap = s ? 0 : json_object_size(wm);
    char **files = NULL;
    size_t nfiles = 0;
    if (!s && !(files = cq__calloc(nmap ? nmap : 1, sizeof *files, err, "shard names"))) s = CQ_E_NOMEM;
    const char *key;
    json_t *v;
    if (!s) json_object_foreach((json_t *)wm, key, v) {
        if (!json_is_string(v)) {
            s = cq_err_set(err, CQ_E_FORMAT, "%s: weight_map entry '%.100s' is not a file name", index_path, key);
            break;
        }
        const char *f = json_string_value(v);
        if (!plain_file_name(f)) {
            s = cq_err_set(err, CQ_E_FORMAT, "%s: weight_map entry '%.100s' names '%.100s', not a file beside the index",
                           index_path, key, f);
            break;
        }
        files[nfiles++] = (char *)f;
    }
    if (!s) {
        qsort(files, nfiles, sizeof *files, cmp_strings);
        size_t u = 0;
        for (size_t i = 0; i < nfiles; i++)
            if (u == 0 || strcmp(files[u - 1], files[i])) files[u++] = files[i];
        nfiles = u;
        c->shards = cq__calloc(nfiles ? nfiles : 1, sizeof *c->shards, err, "shards");
        c->shard_files = cq__calloc(nfiles ? nfiles : 1, sizeof *c->shard_files, err, "shard names");
        if (!c->shards || !c->shard_files) s = CQ_E_NOMEM;
    }
    for (size_t i = 0; !s && i < nfiles; i++) {
        char *p = cq_path_join(c->dir, files[i]);
        c->shard_files[i] = cq__strdup(files[i], err);
        if (!p || !c->shard_files[i]) s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
        else c->nshards++;
        if (!s) s = check_inside(p, c->dir, "the shard", err);
        if (!s) s = cq__source_open(p, &c->shards[i], err);
        free(p);
    }
    free(files);
    if (!s) s = build_entries(c, err);

    /* Index and shards must agree both ways. */
    if (!s) json_object_foreach((json_t *)wm, key, v) {
        int64_t i = find_entry(c, key);
        if (i < 0 || strcmp(c->shard_files[c->entries[i].shard], json_string_value(v))) {
            s = cq_err_set(err, CQ_E_FORMAT, "%s: tensor '%.100s' is listed in %s, which does not hold it", index_path,
                           key, json_string_value(v));
            break;
        }
    }
    for (int64_t i = 0; !s && i < c->count; i++) {
        const json_t *f = json_object_get(wm, c->entries[i].rec->name);
        if (!f || strcmp(json_string_value(f), c->shard_files[c->entries[i].shard]))
            s = cq_err_set(err, CQ_E_FORMAT, "%s: shard %s holds tensor '%.100s', which the index %s", index_path,
                           c->shard_files[c->entries[i].shard], c->entries[i].rec->name,
                           f ? "assigns to another shard" : "does not list");
    }
    json_decref(root);
    return s;
}

static cq_status open_single(cq_ckpt *c, const char *path, cq_err *err) {
    c->total_size = -1;
    c->dir = dir_of(path);
    c->shards = cq__calloc(1, sizeof *c->shards, err, "shards");
    c->shard_files = cq__calloc(1, sizeof *c->shard_files, err, "shard names");
    c->single_path = strdup(path);
    if (!c->dir || !c->shards || !c->shard_files || !c->single_path || !(c->shard_files[0] = strdup(base_of(path))))
        return cq_err_set(err, CQ_E_NOMEM, "out of memory");
    c->nshards = 1;
    cq_status s = cq__source_open(path, &c->shards[0], err);
    if (!s) s = build_entries(c, err);
    return s;
}

cq_status cq__ckpt_from_source(cq__source *src, const char *label, cq_ckpt **out, cq_err *err) {
    *out = NULL;
    cq_ckpt *c = cq__calloc(1, sizeof *c, err, "a checkpoint");
    if (!c) {
        cq__source_close(src);
        return CQ_E_NOMEM;
    }
    c->total_size = -1;
    c->no_folder = true;
    c->shards = cq__calloc(1, sizeof *c->shards, err, "shards");
    c->shard_files = cq__calloc(1, sizeof *c->shard_files, err, "shard names");
    if (c->shards && c->shard_files) c->shards[0] = src, c->nshards = 1;
    else cq__source_close(src);
    cq_status s = CQ_OK;
    if (!c->nshards || !(c->dir = strdup(label)) || !(c->single_path = strdup(label)) ||
        !(c->shard_files[0] = strdup(base_of(label))))
        s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
    if (!s) s = build_entries(c, err);
    if (s) {
        cq_ckpt_close(c);
        return s;
    }
    *out = c;
    return CQ_OK;
}

cq_status cq_ckpt_open(const char *path, cq_ckpt **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_ckpt_open: out is NULL");
    *out = NULL;
    if (!path || !*path) return cq_err_set(err, CQ_E_ARG, "cq_ckpt_open: empty path");
    if (!cq_fs_exists(path)) return cq_err_set(err, CQ_E_IO, "%s: no such file or folder", path);
    char *target = NULL;
    cq_status s = CQ_OK;
    if (cq_fs_is_dir(path)) {
        s = resolve_folder(path, &target, err);
        if (!s) s = check_inside(target, path, "the checkpoint file", err);
    } else if (!(target = strdup(path))) {
        s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
    }
    if (s) free(target);
    if (s) return s;
    cq_ckpt *c = cq__calloc(1, sizeof *c, err, "a checkpoint");
    if (!c) s = CQ_E_NOMEM;
    else if (cq__str_has_suffix(target, ".json")) s = open_index(c, target, err);
    else s = open_single(c, target, err);
    free(target);
    if (s) {
        cq__err_one_line(err);
        cq_ckpt_close(c);
        return s;
    }
    *out = c;
    return CQ_OK;
}

int64_t cq_ckpt_count(const cq_ckpt *c) { return c ? c->count : 0; }

const char *cq_ckpt_name(const cq_ckpt *c, int64_t i) {
    return c && i >= 0 && i < c->count ? c->entries[i].rec->name : NULL;
}

const cq_tensor *cq_ckpt_tensor(const cq_ckpt *c, int64_t i) {
    return c && i >= 0 && i < c->count ? &c->entries[i].rec->t : NULL;
}

int cq_ckpt_tensor_shard(const cq_ckpt *c, int64_t i) {
    return c && i >= 0 && i < c->count ? c->entries[i].shard : -1;
}

int64_t cq_ckpt_find(const cq_ckpt *c, const char *name) { return c && name ? find_entry(c, name) : -1; }

cq_status cq_ckpt_get(const cq_ckpt *c, const char *name, const cq_tensor **out, cq_err *err) {
    if (out) *out = NULL;
    if (!c || !name || !out) return cq_err_set(err, CQ_E_ARG, "cq_ckpt_get: NULL argument");
    int64_t i = find_entry(c, name);
    if (i < 0)
        return cq_err_set(err, CQ_E_NOTFOUND, "%s: no tensor named '%s'",
                          c->index_path ? c->index_path : c->single_path, name);
    *out = &c->entries[i].rec->t;
    return CQ_OK;
}

const char *cq_ckpt_dir(const cq_ckpt *c) { return c ? c->dir : NULL; }
const char *cq_ckpt_index_path(const cq_ckpt *c) { return c ? c->index_path : NULL; }

cq_status cq_ckpt_folder_file(const cq_ckpt *c, const char *name, char **path, cq_err *err) {
    if (path) *path = NULL;
    if (!c || !name || !path) return cq_err_set(err, CQ_E_ARG, "cq_ckpt_folder_file: NULL argument");
    if (c->no_folder) return CQ_OK;
    char *p = cq_path_join(c->dir, name);
    struct stat st;
    if (!p) return cq_err_set(err, CQ_E_NOMEM, "out of memory");
    if (lstat(p, &st) != 0) {
        free(p);
        return CQ_OK;
    }
    cq_status s = check_inside(p, c->dir, name, err);
    if (s) free(p);
    else *path = p;
    return s;
}
int64_t cq_ckpt_index_total_size(const cq_ckpt *c) { return c ? c->total_size : -1; }
int cq_ckpt_shard_count(const cq_ckpt *c) { return c ? c->nshards : 0; }

const cq_st_file *cq_ckpt_shard(const cq_ckpt *c, int shard) { return cq__st_of_source(cq__ckpt_source(c, shard)); }

const cq__source *cq__ckpt_source(const cq_ckpt *c, int shard) {
    return c && shard >= 0 && shard < c->nshards ? c->shards[shard] : NULL;
}

const cq__src_tensor *cq__ckpt_record(const cq_ckpt *c, int64_t i) {
    return c && i >= 0 && i < c->count ? c->entries[i].rec : NULL;
}

void cq__ckpt_release(const cq_ckpt *c, int64_t i, uint64_t off, uint64_t n) {
    if (c && i >= 0 && i < c->count) cq__src_release(c->shards[c->entries[i].shard], c->entries[i].index, off, n);
}

void cq__ckpt_sequential(const cq_ckpt *c) {
    for (int i = 0; c && i < c->nshards; i++) cq__src_sequential(c->shards[i]);
}

const char *cq_ckpt_shard_file(const cq_ckpt *c, int shard) {
    return c && shard >= 0 && shard < c->nshards ? c->shard_files[shard] : NULL;
}

/* ---- writing ----------------------------------------------------------------------------- */

const char *cq_shard_file_name(char *buf, size_t n, const char *prefix, int shard, int nshards) {
    if (!buf || !n) return "";
    if (!prefix) prefix = "";
    snprintf(buf, n, "%s-%05d-of-%05d.safetensors", prefix, shard, nshards);
    return buf;
}

cq_status cq_ckpt_write_index(const char *path, int64_t total_size, int64_t n, const char *const *names,
                              const char *const *files, cq_err *err) {
    if (!path || n < 0 || (n && (!names || !files))) return cq_err_set(err, CQ_E_ARG, "cq_ckpt_write_index: bad arguments");
    json_t *root = json_object(), *meta = json_object(), *wm = json_object();
    cq_status s = CQ_OK;
    if (!root || !meta || !wm || json_object_set_new(meta, "total_size", json_integer(total_size)) ||
        json_object_set(root, "metadata", meta) || json_object_set(root, "weight_map", wm))
        s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
    for (int64_t i = 0; !s && i < n; i++) {
        if (!names[i] || !files[i] || !plain_file_name(files[i])) {
            s = cq_err_set(err, CQ_E_ARG, "%s: entry %" PRId64 " has no name or a bad shard file name", path, i);
        } else if (json_object_get(wm, names[i])) {
            s = cq_err_set(err, CQ_E_ARG, "%s: tensor '%s' listed twice", path, names[i]);
        } else {
            json_t *f = json_string(files[i]);
            if (!f || json_object_set_new(wm, names[i], f))
                s = cq_err_set(err, CQ_E_ARG, "%s: tensor '%.100s' or its file name is not valid UTF-8", path, names[i]);
        }
    }
    char *text = NULL;
    size_t len = 0;
    if (!s) s = cq__json_emit(root, &cq__json_python_indent2_sorted, &text, &len, err);
    if (!s) {
        char *t = realloc(text, len + 2);
        if (!t) {
            s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
        } else {
            text = t;
            text[len++] = '\n';
            text[len] = '\0';
            s = cq_fs_write_file_atomic(path, text, len, err);
        }
    }
    free(text);
    json_decref(meta);
    json_decref(wm);
    json_decref(root);
    return s;
}
