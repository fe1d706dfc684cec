/*
 * fuzz_pipeline.c - libFuzzer target for the whole checkpoint pipeline, not one parser: the
 * input is a small checkpoint folder (an options byte, then entries of a name index, a 16-bit
 * length and the file's bytes: model.safetensors, a shard index and two shards, config.json,
 * quanto_qmap.json, a side file), written to a fresh folder and run through what `inspect`,
 * `quantize`, `dequantize` and `report` do. Checked for every input: a failure explains itself
 * and leaves nothing at the output path and no temp beside it; the input folder is never
 * modified; a quantized output reads back (inspect, dequantize, report). Corpus:
 * fuzz/corpus/pipeline (fuzz/make_pipeline_seeds.sh made the seeds).
 */
#include "cquanto.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const g_names[] = {
    "model.safetensors", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors", "config.json", "quanto_qmap.json", "tokenizer.json"};
enum { N_NAMES = sizeof g_names / sizeof g_names[0], MAX_ENTRIES = 8 };

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)ftw;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_tree(const char *p) { nftw(p, rm_entry, 8, FTW_DEPTH | FTW_PHYS); }

/* A fingerprint of a folder's regular files (names, sizes and bytes), to see it unchanged. */
static unsigned long folder_hash(const char *dir) {
    unsigned long h = 5381;
    for (int i = 0; i < N_NAMES; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, g_names[i]);
        FILE *f = fopen(p, "rb");
        if (!f) continue;
        h = h * 33 + (unsigned long)i;
        int c;
        while ((c = fgetc(f)) != EOF) h = h * 33 + (unsigned long)c;
        fclose(f);
    }
    return h;
}

/* Nothing but the finished outputs in the scratch folder: no temp left by a failed step. */
static void assert_no_temps(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp-") || strstr(e->d_name, ".old-")) abort();
    if (d) closedir(d);
}

/* CQ_FUZZ_VERBOSE=1 prints each step's outcome (to see what a corpus reaches). */
static void failed_cleanly(cq_status s, const cq_err *err, const char *out) {
    struct stat st;
    if (getenv("CQ_FUZZ_VERBOSE")) fprintf(stderr, "  %s: %s\n", out ? out : "open", s ? err->msg : "ok");
    if (!s) return;
    if (!err->msg[0]) abort();                      /* a failure explains itself */
    if (out && lstat(out, &st) == 0) abort();        /* and leaves nothing at the output */
}

/* What `inspect` reads: every tensor's bytes, names found again, the quanto map if any. */
static void inspect(const char *path) {
    cq_err err = {0};
    cq_ckpt *c = NULL;
    cq_status s = cq_ckpt_open(path, &c, &err);
    failed_cleanly(s, &err, NULL);
    if (s) return;
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < cq_ckpt_count(c); i++) {
        const cq_tensor *t = cq_ckpt_tensor(c, i);
        for (size_t k = 0, n = cq_tensor_nbytes(t); k < n; k++) sink ^= ((const uint8_t *)t->data)[k];
        if (cq_ckpt_find(c, cq_ckpt_name(c, i)) != i) abort();
    }
    (void)sink; /* read only to make every byte load happen */
    char *qmap = NULL;
    cq_qmap *m = NULL;
    if (cq_ckpt_folder_file(c, "quanto_qmap.json", &qmap, &err) == CQ_OK && qmap &&
        cq_qmap_load(qmap, &m, &err) == CQ_OK)
        (void)cq_qmap_count(m);
    cq_qmap_free(m);
    free(qmap);
    cq_ckpt_close(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    cq_set_num_threads(1);
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char root[4096], in[4200], q[4200], deq[4200], deq2[4200];
    snprintf(root, sizeof root, "%s/cq_fuzz_pipeline.XXXXXX", base);
    if (!mkdtemp(root)) return 0;
    snprintf(in, sizeof in, "%s/in", root);
    snprintf(q, sizeof q, "%s/q", root);
    snprintf(deq, sizeof deq, "%s/deq.safetensors", root);
    snprintf(deq2, sizeof deq2, "%s/deq2.safetensors", root);
    mkdir(in, 0700);

    /* The options byte: weights qtype, optimizer, activations, group size. */
    static const cq_qtype weights[] = {CQ_QINT2, CQ_QINT4, CQ_QINT8, CQ_QFLOAT8_E4M3FN, CQ_QFLOAT8_E5M2};
    static const cq_qtype acts[] = {CQ_QNONE, CQ_QNONE, CQ_QINT8, CQ_QFLOAT8_E4M3FN};
    uint8_t opt = data[0];
    cq_convert_opts o = cq_convert_default_opts();
    o.weights = weights[opt % 5];
    o.activations = acts[(opt >> 3) & 3];
    bool low = o.weights == CQ_QINT2 || o.weights == CQ_QINT4;
    o.optimizer = low && (opt & 0x20) ? CQ_OPT_HQQ : CQ_OPT_DEFAULT;
    o.group_size = low && (opt & 0x40) ? 4 : -1;
    o.threads = 1;

    size_t pos = 1;
    for (int e = 0; e < MAX_ENTRIES && pos + 3 <= size; e++) {
        const char *name = g_names[data[pos] % N_NAMES];
        size_t len = (size_t)data[pos + 1] | (size_t)data[pos + 2] << 8;
        pos += 3;
        if (len > size - pos) len = size - pos;
        char p[4300];
        snprintf(p, sizeof p, "%s/%s", in, name);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            if (write(fd, data + pos, len) != (ssize_t)len) abort();
            close(fd);
        }
        pos += len;
    }
    unsigned long before = folder_hash(in);

    inspect(in);
    cq_err err = {0};
    cq_plan *plan = NULL;
    cq_status s = cq_plan_build(in, &o, &plan, &err);
    failed_cleanly(s, &err, NULL);
    cq_plan_free(plan);

    memset(&err, 0, sizeof err);
    cq_convert_stats st;
    s = cq_convert_quantize(in, q, &o, &st, &err);
    failed_cleanly(s, &err, q);
    if (!s) {
        /* Our own output reads back, whole. */
        inspect(q);
        memset(&err, 0, sizeof err);
        if (cq_convert_dequantize(q, deq2, &o, NULL, &err) != CQ_OK) abort();
        memset(&err, 0, sizeof err);
        cq_report *r = NULL;
        if (cq_report_build(in, q, &o, &r, &err) != CQ_OK) abort();
        cq_report_free(r);
    }
    /* The input as a quanto checkpoint (a qmap of its own, or none). */
    memset(&err, 0, sizeof err);
    s = cq_convert_dequantize(in, deq, &o, NULL, &err);
    failed_cleanly(s, &err, deq);
    /* The output rules: never into the input. */
    char inner[4300];
    snprintf(inner, sizeof inner, "%s/model.safetensors", in);
    o.overwrite = true;
    memset(&err, 0, sizeof err);
    if (cq_convert_dequantize(in, inner, &o, NULL, &err) == CQ_OK) abort();

    if (folder_hash(in) != before) abort(); /* inputs are never modified */
    assert_no_temps(root);
    assert_no_temps(in);
    rm_tree(root);
    return 0;
}
