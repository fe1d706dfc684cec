/*
 * cquanto/experimental.h - UNSTABLE: exported by the library but outside the stable API;
 * any of it may change or vanish in any release. cquanto.h does not include it.
 * It holds the helpers the CLI, the examples and the tests share (files and folders, the
 * bundled data set readers, the report chart) and tuning knobs for tests.
 */
#ifndef CQUANTO_EXPERIMENTAL_H
#define CQUANTO_EXPERIMENTAL_H

#include "cquanto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- files and folders ------------------------------------------------------------------
 * Outputs are never written in place: a temp file (or folder) next to the target is filled,
 * fsynced and renamed over it, and removed on any failure. */
/* malloc'd "a/b" ("b" alone if a is empty or b is absolute); NULL on allocation failure. */
CQ_API char *cq_path_join(const char *a, const char *b);
CQ_API bool cq_fs_exists(const char *path);
CQ_API bool cq_fs_is_dir(const char *path);
CQ_API cq_status cq_fs_file_size(const char *path, uint64_t *out, cq_err *err);
CQ_API cq_status cq_fs_mkdir_p(const char *path, cq_err *err);
/* Reads a whole file (malloc'd, NUL appended, *n excludes it). max_bytes guards huge inputs. */
CQ_API cq_status cq_fs_read_file(const char *path, size_t max_bytes, char **out, size_t *n, cq_err *err);
CQ_API cq_status cq_fs_write_file_atomic(const char *path, const void *data, size_t n, cq_err *err);
CQ_API cq_status cq_fs_copy_file(const char *src, const char *dst, cq_err *err); /* atomic */
/* Creates an empty temp folder next to final_path ("<dir>/.<name>.tmp-XXXXXX"); malloc'd path. */
CQ_API cq_status cq_fs_temp_dir(const char *final_path, char **out, cq_err *err);
/* Renames a finished temp folder to final_path. An existing final_path is CQ_E_EXISTS unless
 * overwrite, in which case it is replaced (moved aside, then removed after the rename). */
CQ_API cq_status cq_fs_commit_dir(const char *tmp_dir, const char *final_path, bool overwrite, cq_err *err);
/* Removes a file or a folder tree (does not follow symlinks). Missing path is CQ_OK. */
CQ_API cq_status cq_fs_remove_tree(const char *path, cq_err *err);

/* --- data set readers (the bundled MNIST IDX and scikit-learn digits CSV, gzip) ------ */
/* MNIST from its two IDX files (gzip-compressed or plain); names the file and what is wrong. */
CQ_API cq_status cq_dataset_load_mnist(cq_dataset **out, const char *images_path, const char *labels_path, cq_err *err);
/* data/digits.csv.gz: rows of 64 pixels (0..16) then the label. */
CQ_API cq_status cq_dataset_load_digits(cq_dataset **out, const char *csv_path, cq_err *err);
CQ_API void cq_dataset_free(cq_dataset *ds);

/* --- convert: the report chart --------------------------------------------------------- */
/* An SVG chart of SNR per module in checkpoint order (bars colored by the module's last name
 * component: q_proj, k_proj, ...), written atomically. */
CQ_API cq_status cq_report_write_svg(const cq_report *r, const char *title, const char *path, cq_err *err);

/* --- tuning knobs that tests turn to reach edge cases ---------------------------------- */
/* Each setter returns the knob's previous value; a positive value replaces it, any other only
 * reads it. No result ever depends on a knob. */
/* Elements HQQ reduces per chunk (default 65536). */
CQ_API int64_t cq_experimental_set_hqq_chunk_elems(int64_t elems);
/* Input bytes one convert work item covers (default 1 MiB); output bytes never depend on it. */
CQ_API size_t cq_experimental_set_convert_item_bytes(size_t bytes);

#ifdef __cplusplus
}
#endif
#endif /* CQUANTO_EXPERIMENTAL_H */
