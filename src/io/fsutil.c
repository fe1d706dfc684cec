/*
 * fsutil.c - files and folders for the io layer: path joining, mkdir -p, whole-file reads,
 * atomic outputs, and the rules of fsutil.h (regular files only, nothing read from outside a
 * checkpoint folder, outputs apart from inputs, stale temps). An output is always built under
 * a temp name in the target's own folder (same file system, so rename is atomic), fsynced,
 * then renamed over the target; on any failure the temp is removed, so a reader never sees a
 * partial file. This is not a general file-system library: no globbing, no locking, POSIX only.
 */
#include "io/fsutil.h"
#include "io/io_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
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
    CQ__ARG(path);
    CQ__ARG(out);
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

cq_status cq__open_regular(const char *path, int *fd, struct stat *st, cq_err *err) {
    struct stat local;
    if (!st) st = &local;
    *fd = -1;
    if (!path) return cq_err_set(err, CQ_E_ARG, "open: path is NULL");
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (f < 0) return cq_err_set(err, CQ_E_IO, "%s: cannot open: %s", path, strerror(errno));
    cq_status s = CQ_OK;
    int flags;
    if (fstat(f, st) != 0)
        s = cq_err_set(err, CQ_E_IO, "%s: %s", path, strerror(errno));
    else if (S_ISDIR(st->st_mode))
        s = cq_err_set(err, CQ_E_IO, "%s: is a folder, not a file", path);
    else if (!S_ISREG(st->st_mode))
        s = cq_err_set(err, CQ_E_IO, "%s: not a regular file (a FIFO, device or socket); refusing to read it", path);
    else if ((flags = fcntl(f, F_GETFL)) < 0 || fcntl(f, F_SETFL, flags & ~O_NONBLOCK) < 0)
        s = cq_err_set(err, CQ_E_IO, "%s: %s", path, strerror(errno));
    if (s) close(f);
    else *fd = f;
    return s;
}

cq_status cq__map_file(const char *path, const uint8_t **base, size_t *size, cq_err *err) {
    *base = NULL;
    *size = 0;
    int fd;
    struct stat st;
    CQ__TRY(cq__open_regular(path, &fd, &st, err));
    cq_status s = CQ_OK;
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            s = cq_err_set(err, CQ_E_IO, "%s: cannot map the file: %s", path, strerror(errno));
        } else {
            *base = p;
            *size = (size_t)st.st_size;
        }
    }
    close(fd);
    return s;
}

void cq__unmap_file(const uint8_t *base, size_t size) {
    if (base && size) munmap((void *)base, size);
}

cq_status cq_fs_read_file(const char *path, size_t max_bytes, char **out, size_t *n, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    if (n) *n = 0;
    CQ__ARG(path);
    int fd;
    struct stat st;
    cq_status s = cq__open_regular(path, &fd, &st, err);
    if (s) return s;
    char *buf = NULL;
    if ((uint64_t)st.st_size > max_bytes) {
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

/* Who made a temp: a hash of the host name, the pid and the process start time (clock ticks
 * since boot, /proc/<pid>/stat field 22; 0 where there is no /proc). */
typedef struct temp_owner {
    unsigned host;
    long pid;
    unsigned long long start;
} temp_owner;

static unsigned host_hash(void) {
    char name[256] = "";
    (void)gethostname(name, sizeof name - 1);
    unsigned h = 2166136261u; /* FNV-1a */
    for (const char *c = name; *c; c++) h = (h ^ (unsigned char)*c) * 16777619u;
    return h;
}

/* The start time of process pid, or 0 when unknown; *exists says whether /proc lists it. */
static unsigned long long process_start(long pid, bool *exists) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    *exists = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    *exists = true;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    for (int field = 2; p && field < 22; field++) p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

static temp_owner self_owner(void) {
    bool exists;
    return (temp_owner){host_hash(), (long)getpid(), process_start((long)getpid(), &exists)};
}

/* A temp's owner is dead when it ran here and its pid is gone or now names a newer process. */
static bool owner_dead(const temp_owner *o) {
    if (o->host != host_hash() || o->pid <= 0) return false;
    bool exists;
    unsigned long long start = process_start(o->pid, &exists);
    if (exists) return start != o->start;
    return kill((pid_t)o->pid, 0) != 0 && errno == ESRCH;
}

char *cq__sibling_temp_name(const char *path, const char *tag) {
    static atomic_uint counter;
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = slash ? slash + 1 : path;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    temp_owner me = self_owner();
    unsigned unique = (unsigned)ts.tv_nsec ^ (atomic_fetch_add(&counter, 1) * 40503u);
    size_t total = dir_len + strlen(base) + strlen(tag) + 80;
    char *p = malloc(total);
    if (!p) return NULL;
    snprintf(p, total, "%.*s.%s.%s-%08x-%ld-%llu-%08x", (int)dir_len, path, base, tag, me.host, me.pid, me.start,
             unique);
    return p;
}

/* Parses the owner out of a temp's name after "<tag>-"; false for names not made above. */
static bool parse_owner(const char *s, temp_owner *o) {
    unsigned unique;
    int used = 0;
    return sscanf(s, "%8x-%ld-%llu-%8x%n", &o->host, &o->pid, &o->start, &unique, &used) == 4 && s[used] == '\0';
}

/* ---- atomic files ---------------------------------------------------------------------- */

cq_status cq__afile_open(cq__afile *af, const char *path, cq_err *err) {
    return cq__afile_open_mode(af, path, 0666, err);
}

cq_status cq__afile_open_mode(cq__afile *af, const char *path, unsigned mode, cq_err *err) {
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
        af->fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
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
    CQ__ARG(path);
    if (!data && n) return cq_err_set(err, CQ_E_ARG, "%s: data is NULL", path);
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

/* The copy gets the source's permission bits (less the umask), so a file is never published
 * more widely than it was readable. */
cq_status cq_fs_copy_file(const char *src, const char *dst, cq_err *err) {
    int in;
    struct stat st;
    cq_status s = cq__open_regular(src, &in, &st, err);
    if (s) return s;
    cq__afile af;
    s = cq__afile_open_mode(&af, dst, st.st_mode & 0777, err);
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
    CQ__ARG(out);
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
    CQ__ARG(path);
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
    CQ__ARG(tmp_dir);
    CQ__ARG(final_path);
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

/* ---- where files are, by device and inode ------------------------------------------------ */

typedef struct file_id {
    dev_t dev;
    ino_t ino;
} file_id;

/* The ids of a resolved (absolute, symlink-free) path and of each folder above it, the path
 * itself first; NULL when out of memory or a component cannot be stat'ed. */
static file_id *id_chain(const char *resolved, int *n) {
    int cap = 2;
    for (const char *c = resolved; *c; c++) cap += *c == '/';
    file_id *ids = malloc((size_t)cap * sizeof *ids);
    char *p = strdup(resolved);
    *n = 0;
    bool ok = ids && p;
    while (ok) {
        struct stat st;
        if (stat(p, &st) != 0) {
            ok = false;
            break;
        }
        ids[(*n)++] = (file_id){st.st_dev, st.st_ino};
        char *slash = strrchr(p, '/');
        if (!slash || slash == p) {
            if (strcmp(p, "/") && stat("/", &st) == 0) ids[(*n)++] = (file_id){st.st_dev, st.st_ino};
            break;
        }
        *slash = '\0';
    }
    free(p);
    if (!ok) {
        free(ids);
        return NULL;
    }
    return ids;
}

static bool chain_has(const file_id *ids, int n, int from, file_id id) {
    for (int i = from; i < n; i++)
        if (ids[i].dev == id.dev && ids[i].ino == id.ino) return true;
    return false;
}

static bool id_of(const char *path, file_id *out) {
    struct stat st;
    if (stat(path, &st) != 0) return false;
    *out = (file_id){st.st_dev, st.st_ino};
    return true;
}

static char *parent_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

bool cq__resolves_inside(const char *path, const char *dir, char **why) {
    if (why) *why = NULL;
    char *rp = realpath(path, NULL), *rd = realpath(dir, NULL);
    if (!rp || !rd) { /* a dangling link or a missing file: opening it will say so */
        free(rp);
        free(rd);
        return true;
    }
    int n = 0;
    file_id *ids = id_chain(rp, &n), root;
    bool inside = ids && id_of(rd, &root) && chain_has(ids, n, 0, root);
    if (!inside && ids) {
        /* <repo>/snapshots/<rev>/ links into <repo>/blobs/ */
        char *snapshots = parent_of(rd), *repo = parent_of(snapshots);
        const char *s = strrchr(snapshots, '/');
        char *blobs = cq_path_join(repo, "blobs");
        if (s && !strcmp(s + 1, "snapshots") && blobs && id_of(blobs, &root)) inside = chain_has(ids, n, 0, root);
        free(snapshots);
        free(repo);
        free(blobs);
    }
    free(ids);
    if (!inside && why) *why = rp;
    else free(rp);
    free(rd);
    return inside;
}

static char *trim_slashes(const char *path) {
    char *p = strdup(path);
    for (size_t len = p ? strlen(p) : 0; len > 1 && p[len - 1] == '/'; len--) p[len - 1] = '\0';
    return p;
}

cq_status cq__check_output(const char *out, const char *const *inputs, int n_inputs, cq_err *err) {
    if (!out || !*out) return cq_err_set(err, CQ_E_ARG, "the output path is empty");
    if (n_inputs < 0 || (n_inputs && !inputs)) return cq_err_set(err, CQ_E_ARG, "cq__check_output: bad inputs");
    char *o = trim_slashes(out), *parent = o ? parent_of(o) : NULL, *rparent = NULL;
    cq_status s = o && parent ? CQ_OK : cq_err_set(err, CQ_E_NOMEM, "out of memory");
    struct stat st;
    bool exists = false;
    file_id out_id = {0, 0}, *out_chain = NULL;
    int n_out = 0;
    if (!s && lstat(o, &st) == 0) {
        exists = true;
        out_id = (file_id){st.st_dev, st.st_ino};
        if (S_ISLNK(st.st_mode))
            s = cq_err_set(err, CQ_E_ARG, "%s: the output is a symbolic link; give the path it points to, or remove it",
                           out);
    }
    if (!s && stat(parent, &st) != 0)
        s = cq_err_set(err, CQ_E_IO, "%s: the folder %s does not exist", out, parent);
    else if (!s && !S_ISDIR(st.st_mode))
        s = cq_err_set(err, CQ_E_IO, "%s: %s is not a folder", out, parent);
    if (!s && (!(rparent = realpath(parent, NULL)) || !(out_chain = id_chain(rparent, &n_out))))
        s = cq_err_set(err, CQ_E_IO, "%s: cannot resolve its folder %s: %s", out, parent, strerror(errno));
    for (int i = 0; !s && i < n_inputs; i++) {
        char *rin = inputs[i] ? realpath(inputs[i], NULL) : NULL;
        int n_in = 0;
        file_id *in_chain = rin ? id_chain(rin, &n_in) : NULL;
        if (in_chain && exists && chain_has(in_chain, 1, 0, out_id))
            s = cq_err_set(err, CQ_E_ARG, "%s: the output is the input %s (inputs are never modified)", out, inputs[i]);
        else if (in_chain && exists && chain_has(in_chain, n_in, 1, out_id))
            s = cq_err_set(err, CQ_E_ARG, "%s: the output holds the input %s (inputs are never modified)", out,
                           inputs[i]);
        else if (in_chain && chain_has(out_chain, n_out, 0, in_chain[0]))
            s = cq_err_set(err, CQ_E_ARG, "%s: the output lies inside the input %s (inputs are never modified)", out,
                           inputs[i]);
        free(in_chain);
        free(rin);
    }
    free(out_chain);
    free(rparent);
    free(parent);
    free(o);
    return s;
}

/* ---- stale temps --------------------------------------------------------------------------- */

void cq__remove_stale_temps(const char *final_path, cq__notice_fn notice, void *user) {
    char *target = final_path ? trim_slashes(final_path) : NULL, *dir = target ? parent_of(target) : NULL;
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        free(dir);
        free(target);
        return;
    }
    const char *slash = strrchr(target, '/'), *base = slash ? slash + 1 : target;
    size_t nb = strlen(base);
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *n = de->d_name, *tag = n + 1 + nb;
        temp_owner o;
        if (n[0] != '.' || strncmp(n + 1, base, nb) || (strncmp(tag, ".tmp-", 5) && strncmp(tag, ".old-", 5)) ||
            !parse_owner(tag + 5, &o) || !owner_dead(&o))
            continue;
        char *path = cq_path_join(dir, n), msg[1024];
        struct stat st;
        if (!path) break;
        if (!strncmp(tag, ".old-", 5) && lstat(target, &st) != 0 && rename(path, target) == 0) {
            /* killed between moving the previous output aside and putting the new one in place */
            snprintf(msg, sizeof msg, "%s: put back the previous output, moved aside by a run that was killed (pid %ld)",
                     target, o.pid);
        } else if (cq_fs_remove_tree(path, NULL) == CQ_OK) {
            snprintf(msg, sizeof msg, "removed %s, left by a run that was killed (pid %ld)", path, o.pid);
        } else {
            snprintf(msg, sizeof msg, "cannot remove %s, left by a run that was killed (pid %ld)", path, o.pid);
        }
        if (notice) notice(msg, user);
        free(path);
    }
    closedir(d);
    free(dir);
    free(target);
}
