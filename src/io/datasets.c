/*
 * datasets.c - the two bundled image data sets, read into memory: MNIST in IDX format
 * (gzip-compressed, magic 0x803 images / 0x801 labels) and the scikit-learn digits CSV
 * (gzip-compressed, 64 pixel values 0..16 then the label, per row). zlib reads plain
 * uncompressed files transparently as well. Pixels stay as bytes; cq_dataset_batch scales a
 * slice to f32 (pixel / pixel_max) the way torchvision's ToTensor does for MNIST.
 * This is not a general data loader: no shuffling, no augmentation, no other formats.
 */
#include "core/internal.h"
#include "io/fsutil.h"

#include <errno.h>
#include <unistd.h>
#include <zlib.h>

/* Upper bounds that keep a malformed header from asking for absurd allocations. */
#define MAX_SAMPLES (1 << 24)
#define MAX_SAMPLE_PIXELS (1 << 20)

void cq_dataset_free(cq_dataset *ds) {
    if (!ds) return;
    free(ds->pixels);
    free(ds->labels);
    free(ds);
}

static cq_status open_gz(const char *path, gzFile *out, cq_err *err) {
    int fd;
    cq_status s = cq__open_regular(path, &fd, NULL, err);
    if (s) return s;
    *out = gzdopen(fd, "rb");
    if (!*out) {
        close(fd);
        return cq_err_set(err, CQ_E_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "zlib error");
    }
    return CQ_OK;
}

/* Reads exactly n bytes; a short read is a truncated (or corrupt) file. */
static cq_status read_exact(gzFile f, void *buf, size_t n, const char *path, const char *what, cq_err *err) {
    uint8_t *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, p, chunk);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            return cq_err_set(err, CQ_E_FORMAT, "%s: reading %s: %s", path, what, msg);
        }
        if (got == 0) return cq_err_set(err, CQ_E_FORMAT, "%s: truncated while reading %s", path, what);
        p += got;
        n -= (size_t)got;
    }
    return CQ_OK;
}

static cq_status expect_eof(gzFile f, const char *path, cq_err *err) {
    uint8_t extra;
    int got = gzread(f, &extra, 1);
    if (got < 0) {
        int zerr;
        return cq_err_set(err, CQ_E_FORMAT, "%s: %s", path, gzerror(f, &zerr));
    }
    if (got > 0) return cq_err_set(err, CQ_E_FORMAT, "%s: unexpected bytes after the last item", path);
    return CQ_OK;
}

static uint32_t be32(const uint8_t *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Reads one IDX file of unsigned bytes with `ndim` dimensions into a malloc'd buffer. */
static cq_status read_idx_u8(const char *path, int ndim, uint32_t *dims, uint8_t **data, cq_err *err) {
    *data = NULL;
    gzFile f;
    cq_status s = open_gz(path, &f, err);
    if (s) return s;
    uint8_t head[4 + 4 * 3];
    s = read_exact(f, head, 4, path, "the IDX magic", err);
    if (s) goto done;
    uint32_t magic = be32(head), want = 0x800u | (uint32_t)ndim;
    if (magic != want) {
        s = cq_err_set(err, CQ_E_FORMAT, "%s: IDX magic 0x%08x, expected 0x%08x (unsigned bytes, %d dims)",
                       path, magic, want, ndim);
        goto done;
    }
    s = read_exact(f, head + 4, 4 * (size_t)ndim, path, "the IDX dimensions", err);
    if (s) goto done;
    uint64_t total = 1;
    for (int i = 0; i < ndim; i++) {
        dims[i] = be32(head + 4 + 4 * i);
        uint32_t limit = i == 0 ? MAX_SAMPLES : MAX_SAMPLE_PIXELS;
        if (dims[i] == 0 || dims[i] > limit) {
            s = cq_err_set(err, CQ_E_FORMAT, "%s: IDX dimension %d is %u (allowed 1..%u)", path, i, dims[i], limit);
            goto done;
        }
        total *= dims[i];
    }
    if (ndim == 3 && (uint64_t)dims[1] * dims[2] > MAX_SAMPLE_PIXELS) {
        s = cq_err_set(err, CQ_E_FORMAT, "%s: images of %ux%u are too large", path, dims[1], dims[2]);
        goto done;
    }
    *data = cq__malloc((size_t)total, err, path);
    if (!*data) {
        s = CQ_E_NOMEM;
        goto done;
    }
    s = read_exact(f, *data, (size_t)total, path, "the IDX body", err);
    if (!s) s = expect_eof(f, path, err);
done:
    gzclose(f);
    if (s) {
        free(*data);
        *data = NULL;
    }
    return s;
}

cq_status cq_dataset_load_mnist(cq_dataset **out, const char *images_path, const char *labels_path, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_dataset_load_mnist: out is NULL");
    *out = NULL;
    if (!images_path || !labels_path)
        return cq_err_set(err, CQ_E_ARG, "cq_dataset_load_mnist: a path is NULL");
    uint32_t idims[3], ldims[1];
    uint8_t *pixels = NULL, *labels = NULL;
    cq_status s = read_idx_u8(images_path, 3, idims, &pixels, err);
    if (s) return s;
    s = read_idx_u8(labels_path, 1, ldims, &labels, err);
    if (s) goto fail;
    if (ldims[0] != idims[0]) {
        s = cq_err_set(err, CQ_E_FORMAT, "%s has %u labels but %s has %u images", labels_path, ldims[0],
                       images_path, idims[0]);
        goto fail;
    }
    for (uint32_t i = 0; i < ldims[0]; i++)
        if (labels[i] > 9) {
            s = cq_err_set(err, CQ_E_FORMAT, "%s: label %u of item %u is not a digit", labels_path, labels[i], i);
            goto fail;
        }
    cq_dataset *ds = cq__calloc(1, sizeof *ds, err, "a dataset");
    if (!ds) {
        s = CQ_E_NOMEM;
        goto fail;
    }
    ds->count = idims[0];
    ds->ndim = 3;
    ds->shape[0] = 1;
    ds->shape[1] = idims[1];
    ds->shape[2] = idims[2];
    ds->pixels = pixels;
    ds->labels = labels;
    ds->pixel_max = 255.0f;
    ds->num_classes = 10;
    *out = ds;
    return CQ_OK;
fail:
    free(pixels);
    free(labels);
    return s;
}

#define DIGITS_PIXELS 64
#define DIGITS_MAX_VALUE 16

/* Parses one CSV row of 65 small non-negative integers; the line has no trailing newline. */
static cq_status parse_digits_row(const char *line, uint8_t *pixels, uint8_t *label, const char *path, long row,
                                  cq_err *err) {
    const char *p = line;
    for (int col = 0; col <= DIGITS_PIXELS; col++) {
        if (*p < '0' || *p > '9')
            return cq_err_set(err, CQ_E_FORMAT, "%s: line %ld, column %d: expected a number", path, row, col + 1);
        long v = 0;
        while (*p >= '0' && *p <= '9' && v <= 1000) v = v * 10 + (*p++ - '0');
        long limit = col < DIGITS_PIXELS ? DIGITS_MAX_VALUE : 9;
        if (v > limit)
            return cq_err_set(err, CQ_E_FORMAT, "%s: line %ld, column %d: value %ld outside 0..%ld", path, row,
                              col + 1, v, limit);
        if (col < DIGITS_PIXELS) pixels[col] = (uint8_t)v;
        else *label = (uint8_t)v;
        char want = col < DIGITS_PIXELS ? ',' : '\0';
        if (*p != want)
            return cq_err_set(err, CQ_E_FORMAT, "%s: line %ld: %s after column %d", path, row,
                              want ? "expected ','" : "expected 65 values and the end of the line", col + 1);
        if (want) p++;
    }
    return CQ_OK;
}

cq_status cq_dataset_load_digits(cq_dataset **out, const char *csv_path, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_dataset_load_digits: out is NULL");
    *out = NULL;
    if (!csv_path) return cq_err_set(err, CQ_E_ARG, "cq_dataset_load_digits: path is NULL");
    gzFile f;
    cq_status s = open_gz(csv_path, &f, err);
    if (s) return s;
    cq_dataset *ds = cq__calloc(1, sizeof *ds, err, "a dataset");
    size_t cap = 0;
    char line[1024];
    long row = 0;
    if (!ds) {
        s = CQ_E_NOMEM;
        goto done;
    }
    while (gzgets(f, line, sizeof line)) {
        row++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            s = cq_err_set(err, CQ_E_FORMAT, "%s: line %ld is too long", csv_path, row);
            goto done;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (!len) continue; /* tolerate a blank last line */
        if (ds->count >= MAX_SAMPLES) {
            s = cq_err_set(err, CQ_E_FORMAT, "%s: more than %d rows", csv_path, MAX_SAMPLES);
            goto done;
        }
        if ((size_t)ds->count == cap) {
            size_t ncap = cap ? cap * 2 : 2048;
            uint8_t *np = realloc(ds->pixels, ncap * DIGITS_PIXELS);
            if (!np) {
                s = cq_err_set(err, CQ_E_NOMEM, "%s: out of memory", csv_path);
                goto done;
            }
            ds->pixels = np;
            uint8_t *nl = realloc(ds->labels, ncap);
            if (!nl) {
                s = cq_err_set(err, CQ_E_NOMEM, "%s: out of memory", csv_path);
                goto done;
            }
            ds->labels = nl;
            cap = ncap;
        }
        s = parse_digits_row(line, ds->pixels + ds->count * DIGITS_PIXELS, ds->labels + ds->count, csv_path, row,
                             err);
        if (s) goto done;
        ds->count++;
    }
    if (!gzeof(f)) {
        int zerr;
        s = cq_err_set(err, CQ_E_FORMAT, "%s: %s", csv_path, gzerror(f, &zerr));
        goto done;
    }
    if (ds->count == 0) {
        s = cq_err_set(err, CQ_E_FORMAT, "%s: no rows", csv_path);
        goto done;
    }
    ds->ndim = 1;
    ds->shape[0] = DIGITS_PIXELS;
    ds->pixel_max = (float)DIGITS_MAX_VALUE;
    ds->num_classes = 10;
done:
    gzclose(f);
    if (s) {
        cq_dataset_free(ds);
        return s;
    }
    *out = ds;
    return CQ_OK;
}

int64_t cq_dataset_sample_numel(const cq_dataset *ds) { return ds ? cq_shape_numel(ds->ndim, ds->shape) : 0; }

cq_status cq_dataset_batch(const cq_dataset *ds, int64_t start, int64_t count, float *x, int64_t *labels,
                           cq_err *err) {
    if (!ds || start < 0 || count < 0 || start > ds->count || count > ds->count - start)
        return cq_err_set(err, CQ_E_ARG, "cq_dataset_batch: samples [%lld, %lld) outside the data set",
                          (long long)start, (long long)(start + count));
    int64_t per = cq_dataset_sample_numel(ds);
    const uint8_t *src = ds->pixels + start * per;
    if (x)
        for (int64_t i = 0; i < count * per; i++) x[i] = (float)src[i] / ds->pixel_max;
    if (labels)
        for (int64_t i = 0; i < count; i++) labels[i] = ds->labels[start + i];
    return CQ_OK;
}

cq_status cq_dataset_batch_indexed(const cq_dataset *ds, const int64_t *indices, int64_t count, float *x,
                                   int64_t *labels, cq_err *err) {
    if (!ds || !indices || count < 0) return cq_err_set(err, CQ_E_ARG, "cq_dataset_batch_indexed: bad arguments");
    int64_t per = cq_dataset_sample_numel(ds);
    for (int64_t i = 0; i < count; i++) {
        int64_t j = indices[i];
        if (j < 0 || j >= ds->count)
            return cq_err_set(err, CQ_E_ARG, "cq_dataset_batch_indexed: index %lld outside 0..%lld", (long long)j,
                              (long long)ds->count - 1);
        if (x)
            for (int64_t k = 0; k < per; k++) x[i * per + k] = (float)ds->pixels[j * per + k] / ds->pixel_max;
        if (labels) labels[i] = ds->labels[j];
    }
    return CQ_OK;
}
