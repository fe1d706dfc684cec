/*
 * fsutil.c - files and folders for the io layer: path joining, mkdir -p, whole-file reads,
 * and atomic outputs. An output is always built under a temp name in the target's own folder
 * (same file system, so rename is atomic), fsynced, then renamed over the target; on any
 * failure the temp is removed, so a reader never sees a partial file. This is not a general
 * file-system library: no globbing, no locking, POSIX only.
 */
#include "io/io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

char *cq_path_join(const char *a, const char *b) {
    if (!a || !b) return NULL;
    size_t na = strlen(a), nb = strlen(b);
    bool plain_b = na == 0 || b[0] == '/';
    bool need_slash = !plain_b && a[na - 1] != '/';
    size_t total = (plain_b ? 0 : na) + (need_slash ? 1 : 0) + nb + 1;
    char *p = malloc(total);
    if (!p) return NULL;
    if (plain_b) memcpy(p, b, nb + 1);
    else snprintf(p, total, "%s%s%s", a, need_slash ? "/" : "", b);
    return p;
}

bool cq_fs_exists(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0;
}

bool cq_fs_is_dir(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

cq_status cq_fs_file_size(const char *path, uint64_t *out, cq_err *err) {
    struct stat st;
    if (stat(path, &st) != 0) return cq_err_set(err, CQ_E_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return cq_err_set(err, CQ_E_IO, "%s: not a regular file", path);
    *out = (uint64_t)st.st_size;
    return CQ_OK;
}

cq_status cq_fs_mkdir_p(const char *path, cq_err *err) {
    if (!path || !*path) return cq_err_set(err, CQ_E_ARG, "mkdir: empty path");
    char *p = cq__strdup(path, err);
    if (!p) return CQ_E_NOMEM;
    cq_status s = CQ_OK;
    /* Create each prefix ending before a '/', then the whole path. */
    for (char *c = p + 1;; c++) {
        bool end = *c == '\0';
        if (*c != '/' && !end) continue;
        char saved = *c;
        *c = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            s = cq_err_set(err, CQ_E_IO, "%s: cannot create folder: %s", p, strerror(errno));
        } else if (!cq_fs_is_dir(p)) {
            s = cq_err_set(err, CQ_E_IO, "%s: exists and is not a folder", p);
        }
        *c = saved;
        if (s || end) break;
    }
    free(p);
    return s;
}

cq_status cq_fs_read_file(const char *path, size_t max_bytes, char **out, size_t *n, cq_err *err) {
    *out = NULL;
    if (n) *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cq_err_set(err, CQ_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    cq_status s = CQ_OK;
    char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        s = cq_err_set(err, CQ_E_IO, "%s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        s = cq_err_set(err, CQ_E_IO, "%s: not a regular file", path);
    } else if ((uint64_t)st.st_size > max_bytes) {
        s = cq_err_set(err, CQ_E_FORMAT, "%s: %lld bytes, more than the %zu this file may have", path,
                       (long long)st.st_size, max_bytes);
    } else if (!(buf = cq__malloc((size_t)st.st_size + 1, err, path))) {
        s = CQ_E_NOMEM;
    } else {
        size_t got = 0, want = (size_t)st.st_size;
        while (got < want) {
            ssize_t r = read(fd, buf + got, want - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                s = cq_err_set(err, CQ_E_IO, "%s: read failed: %s", path, r < 0 ? strerror(errno) : "file shrank");
                break;
            }
            got += (size_t)r;
        }
        if (!s) {
            buf[want] = '\0';
            if (n) *n = want;
        }
    }
    close(fd);
    if (s) free(buf);
    else *out = buf;
    return s;
}

/* ---- temp names ------------------------------------------------------------------------ */

char *cq__sibling_temp_name(const char *path, const char *tag) {
    static atomic_uint counter;
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = slash ? slash + 1 : path;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned unique = (unsigned)getpid() * 2654435761u ^ (unsigned)ts.tv_nsec ^
                      (atomic_fetch_add(&counter, 1) * 40503u);
    size_t total = dir_len + strlen(base) + strlen(tag) + 32;
    char *p = malloc(total);
    if (!p) return NULL;
    snprintf(p, total, "%.*s.%s.%s-%08x", (int)dir_len, path, base, tag, unique);
    return p;
}

/* ---- atomic files ---------------------------------------------------------------------- */

cq_status cq__afile_open(cq__afile *af, const char *path, cq_err *err) {
    memset(af, 0, sizeof *af);
    af->fd = -1;
    if (!path || !*path) return cq_err_set(err, CQ_E_ARG, "output path is empty");
    size_t len = strlen(path);
    if (path[len - 1] == '/') return cq_err_set(err, CQ_E_ARG, "%s: output path names a folder", path);
    if (cq_fs_is_dir(path)) return cq_err_set(err, CQ_E_IO, "%s: is a folder", path);
    af->final_path = cq__strdup(path, err);
    if (!af->final_path) return CQ_E_NOMEM;
    for (int attempt = 0; attempt < 100; attempt++) {
        af->tmp_path = cq__sibling_temp_name(path, "tmp");
        if (!af->tmp_path) {
            cq__afile_abort(af);
            return cq_err_set(err, CQ_E_NOMEM, "out of memory");
        }
        af->fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (af->fd >= 0) return CQ_OK;
        int e = errno;
        free(af->tmp_path);
        af->tmp_path = NULL;
        if (e != EEXIST) {
            cq__afile_abort(af);
            return cq_err_set(err, CQ_E_IO, "%s: cannot create a temp file next to it: %s", path, strerror(e));
        }
    }
    cq__afile_abort(af);
    return cq_err_set(err, CQ_E_IO, "%s: cannot find a free temp file name", path);
}

cq_status cq__afile_write(cq__afile *af, const void *data, size_t n, cq_err *err) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(af->fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return cq_err_set(err, CQ_E_IO, "%s: write failed: %s", af->final_path, strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return CQ_OK;
}

cq_status cq__afile_pwrite(cq__afile *af, const void *data, size_t n, uint64_t offset, cq_err *err) {
    const char *p = data;
    if (offset > (uint64_t)INT64_MAX - n)
        return cq_err_set(err, CQ_E_OVERFLOW, "%s: write offset overflows", af->final_path);
    while (n > 0) {
        ssize_t w = pwrite(af->fd, p, n, (off_t)offset);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return cq_err_set(err, CQ_E_IO, "%s: write failed: %s", af->final_path, strerror(errno));
        p += w;
        n -= (size_t)w;
        offset += (uint64_t)w;
    }
    return CQ_OK;
}

static void release(cq__afile *af) {
    free(af->final_path);
    free(af->tmp_path);
    af->final_path = af->tmp_path = NULL;
    af->fd = -1;
}

static void fsync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some file systems refuse fsync on folders */
        close(fd);
    }
}

cq_status cq__afile_commit(cq__afile *af, cq_err *err) {
    cq_status s = CQ_OK;
    if (fsync(af->fd) != 0)
        s = cq_err_set(err, CQ_E_IO, "%s: fsync failed: %s", af->final_path, strerror(errno));
    if (close(af->fd) != 0 && !s)
        s = cq_err_set(err, CQ_E_IO, "%s: close failed: %s", af->final_path, strerror(errno));
    af->fd = -1;
    if (!s && rename(af->tmp_path, af->final_path) != 0)
        s = cq_err_set(err, CQ_E_IO, "%s: cannot rename the finished temp file into place: %s", af->final_path,
                       strerror(errno));
    if (s) {
        unlink(af->tmp_path);
    } else {
        fsync_parent(af->final_path);
    }
    release(af);
    return s;
}

void cq__afile_abort(cq__afile *af) {
    if (!af) return;
    if (af->fd >= 0) close(af->fd);
    if (af->tmp_path) unlink(af->tmp_path);
    release(af);
}

cq_status cq_fs_write_file_atomic(const char *path, const void *data, size_t n, cq_err *err) {
    cq__afile af;
    cq_status s = cq__afile_open(&af, path, err);
    if (s) return s;
    s = cq__afile_write(&af, data, n, err);
    if (s) {
        cq__afile_abort(&af);
        return s;
    }
    return cq__afile_commit(&af, err);
}

cq_status cq_fs_copy_file(const char *src, const char *dst, cq_err *err) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return cq_err_set(err, CQ_E_IO, "%s: cannot open: %s", src, strerror(errno));
    cq__afile af;
    cq_status s = cq__afile_open(&af, dst, err);
    if (s) {
        close(in);
        return s;
    }
    enum { CHUNK = 1 << 20 };
    char *buf = cq__malloc(CHUNK, err, "a copy buffer");
    if (!buf) s = CQ_E_NOMEM;
    while (!s) {
        ssize_t r = read(in, buf, CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) s = cq_err_set(err, CQ_E_IO, "%s: read failed: %s", src, strerror(errno));
        if (r <= 0) break;
        s = cq__afile_write(&af, buf, (size_t)r, err);
    }
    free(buf);
    close(in);
    if (s) {
        cq__afile_abort(&af);
        return s;
    }
    return cq__afile_commit(&af, err);
}

/* ---- temp folders ---------------------------------------------------------------------- */

cq_status cq_fs_temp_dir(const char *final_path, char **out, cq_err *err) {
    *out = NULL;
    if (!final_path || !*final_path) return cq_err_set(err, CQ_E_ARG, "output folder path is empty");
    char *trimmed = cq__strdup(final_path, err);
    if (!trimmed) return CQ_E_NOMEM;
    for (size_t len = strlen(trimmed); len > 1 && trimmed[len - 1] == '/'; len--) trimmed[len - 1] = '\0';
    cq_status s = CQ_OK;
    for (int attempt = 0; attempt < 100; attempt++) {
        char *p = cq__sibling_temp_name(trimmed, "tmp");
        if (!p) {
            s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
            break;
        }
        if (mkdir(p, 0777) == 0) {
            *out = p;
            break;
        }
        int e = errno;
        free(p);
        if (e != EEXIST) {
            s = cq_err_set(err, CQ_E_IO, "%s: cannot create a temp folder next to it: %s", trimmed, strerror(e));
            break;
        }
    }
    if (!s && !*out) s = cq_err_set(err, CQ_E_IO, "%s: cannot find a free temp folder name", trimmed);
    free(trimmed);
    return s;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    CQ_UNUSED(st);
    CQ_UNUSED(ftw);
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) == 0 ? 0 : -1;
}

cq_status cq_fs_remove_tree(const char *path, cq_err *err) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return CQ_OK;
        return cq_err_set(err, CQ_E_IO, "%s: %s", path, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) != 0) return cq_err_set(err, CQ_E_IO, "%s: cannot remove: %s", path, strerror(errno));
        return CQ_OK;
    }
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return cq_err_set(err, CQ_E_IO, "%s: cannot remove the folder: %s", path, strerror(errno));
    return CQ_OK;
}

cq_status cq_fs_commit_dir(const char *tmp_dir, const char *final_path, bool overwrite, cq_err *err) {
    struct stat st;
    if (lstat(final_path, &st) != 0) {
        if (rename(tmp_dir, final_path) != 0)
            return cq_err_set(err, CQ_E_IO, "%s: cannot rename the finished temp folder into place: %s",
                              final_path, strerror(errno));
        fsync_parent(final_path);
        return CQ_OK;
    }
    if (!overwrite) return cq_err_set(err, CQ_E_EXISTS, "%s: already exists (overwrite not requested)", final_path);
    /* Move the old output aside first so the target name always holds a complete output. */
    char *old = cq__sibling_temp_name(final_path, "old");
    if (!old) return cq_err_set(err, CQ_E_NOMEM, "out of memory");
    cq_status s = CQ_OK;
    if (rename(final_path, old) != 0) {
        s = cq_err_set(err, CQ_E_IO, "%s: cannot move the existing output aside: %s", final_path, strerror(errno));
    } else if (rename(tmp_dir, final_path) != 0) {
        s = cq_err_set(err, CQ_E_IO, "%s: cannot rename the finished temp folder into place: %s", final_path,
                       strerror(errno));
        (void)rename(old, final_path); /* put the previous output back */
    } else {
        fsync_parent(final_path);
        s = cq_fs_remove_tree(old, err);
    }
    free(old);
    return s;
}
