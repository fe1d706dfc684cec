/*
 * test_workflow_datasets.c - the MNIST IDX and digits CSV readers on the bundled files and on
 * malformed copies (wrong magic, truncated, mismatched counts, bad CSV rows).
 */
#include "tst.h"

#include "cquanto.h"
#include "cquanto/experimental.h"

#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#define MNIST_IMAGES "data/mnist-t10k-images-idx3-ubyte.gz"
#define MNIST_LABELS "data/mnist-t10k-labels-idx1-ubyte.gz"

static void write_gz(const char *path, const void *data, size_t n) {
    gzFile f = gzopen(path, "wb");
    if (!f) return;
    gzwrite(f, data, (unsigned)n);
    gzclose(f);
}

TST(workflow_dataset_mnist_bundled) {
    cq_err err = {0};
    cq_dataset *ds = NULL;
    CHECKF(cq_dataset_load_mnist(&ds, MNIST_IMAGES, MNIST_LABELS, &err) == CQ_OK, "%s", err.msg);
    if (!ds) return;
    CHECK(ds->count == 10000);
    CHECK(ds->ndim == 3 && ds->shape[0] == 1 && ds->shape[1] == 28 && ds->shape[2] == 28);
    const uint8_t first[10] = {7, 2, 1, 0, 4, 1, 4, 9, 5, 9};
    CHECK(memcmp(ds->labels, first, 10) == 0);
    int64_t hist[10] = {0};
    for (int64_t i = 0; i < ds->count; i++) hist[ds->labels[i]]++;
    CHECK(hist[0] == 980 && hist[1] == 1135 && hist[9] == 1009); /* the published test-set counts */
    float x[2 * 784];
    int64_t y[2];
    CHECK(cq_dataset_batch(ds, 9998, 2, x, y, &err) == CQ_OK);
    int ok = 1;
    for (int i = 0; i < 784; i++) ok &= x[784 + i] == (float)ds->pixels[9999 * 784 + i] / 255.0f;
    CHECK(ok && y[1] == ds->labels[9999]);
    CHECK(cq_dataset_batch(ds, 9999, 2, x, y, &err) == CQ_E_ARG);
    int64_t idx[2] = {5, 10000};
    CHECK(cq_dataset_batch_indexed(ds, idx, 2, x, y, &err) == CQ_E_ARG);
    cq_dataset_free(ds);
}

TST(workflow_dataset_mnist_malformed) {
    char dir[] = "/tmp/cqdsXXXXXX";
    if (!mkdtemp(dir)) {
        tst_skip("no temp dir");
        return;
    }
    char img[64], lab[64];
    snprintf(img, sizeof img, "%s/img.gz", dir);
    snprintf(lab, sizeof lab, "%s/lab.gz", dir);
    cq_err err = {0};
    cq_dataset *ds = (cq_dataset *)1;

    /* 2 images of 2x2 and 2 labels: valid */
    uint8_t good_img[16 + 8] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 255};
    uint8_t good_lab[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 9};
    write_gz(img, good_img, sizeof good_img);
    write_gz(lab, good_lab, sizeof good_lab);
    CHECKF(cq_dataset_load_mnist(&ds, img, lab, &err) == CQ_OK, "%s", err.msg);
    CHECK(ds && ds->count == 2 && ds->shape[1] == 2 && ds->labels[1] == 9 && ds->pixels[7] == 255);
    cq_dataset_free(ds);

    /* truncated body */
    write_gz(img, good_img, sizeof good_img - 1);
    CHECK(cq_dataset_load_mnist(&ds, img, lab, &err) == CQ_E_FORMAT && ds == NULL);
    CHECK(strstr(err.msg, "truncated") && strstr(err.msg, img));
    /* trailing garbage */
    uint8_t longer[sizeof good_img + 1];
    memcpy(longer, good_img, sizeof good_img);
    longer[sizeof good_img] = 0;
    write_gz(img, longer, sizeof longer);
    CHECK(cq_dataset_load_mnist(&ds, img, lab, &err) == CQ_E_FORMAT);
    /* wrong magic: labels file given as images */
    write_gz(img, good_lab, sizeof good_lab);
    CHECK(cq_dataset_load_mnist(&ds, img, lab, &err) == CQ_E_FORMAT && strstr(err.msg, "magic"));
    /* label count differs */
    write_gz(img, good_img, sizeof good_img);
    uint8_t three_lab[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3};
    write_gz(lab, three_lab, sizeof three_lab);
    CHECK(cq_dataset_load_mnist(&ds, img, lab, &err) == CQ_E_FORMAT && strstr(err.msg, "labels"));
    /* a label that is not a digit */
    uint8_t bad_lab[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 10};
    write_gz(lab, bad_lab, sizeof bad_lab);
    CHECK(cq_dataset_load_mnist(&ds, img, lab, &err) == CQ_E_FORMAT);
    /* absurd dimension */
    uint8_t huge[16] = {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 0, 0, 0, 2};
    write_gz(img, huge, sizeof huge);
    CHECK(cq_dataset_load_mnist(&ds, img, lab, &err) == CQ_E_FORMAT);
    /* missing file */
    CHECK(cq_dataset_load_mnist(&ds, "/nonexistent/x.gz", lab, &err) == CQ_E_IO && strstr(err.msg, "/nonexistent"));
    unlink(img);
    unlink(lab);
    rmdir(dir);
}

TST(workflow_dataset_digits) {
    cq_err err = {0};
    cq_dataset *ds = NULL;
    CHECKF(cq_dataset_load_digits(&ds, "data/digits.csv.gz", &err) == CQ_OK, "%s", err.msg);
    if (!ds) return;
    CHECK(ds->count == 1797 && ds->ndim == 1 && ds->shape[0] == 64 && ds->pixel_max == 16.0f);
    CHECK(ds->labels[0] == 0 && ds->labels[1] == 1 && ds->labels[2] == 2);
    CHECK(ds->pixels[2] == 5 && ds->pixels[3] == 13);
    cq_dataset_free(ds);

    char dir[] = "/tmp/cqdsXXXXXX";
    if (!mkdtemp(dir)) return;
    char path[64];
    snprintf(path, sizeof path, "%s/d.csv.gz", dir);
    const char *bad[] = {
        "0,0,0\n",                                                      /* too few values */
        ("17,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
         "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1\n"),                    /* pixel > 16: one string */
        "a\n",                                                          /* not a number */
        "",                                                             /* empty */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_gz(path, bad[i], strlen(bad[i]));
        ds = (cq_dataset *)1;
        CHECKF(cq_dataset_load_digits(&ds, path, &err) == CQ_E_FORMAT && ds == NULL, "case %zu", i);
    }
    unlink(path);
    rmdir(dir);
}
