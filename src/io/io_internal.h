/*
 * io_internal.h - helpers shared by the io/ files and never installed: the atomic output file
 * (temp file next to the target, renamed on commit), a JSON emitter that writes jansson trees
 * the way Python's json module and Rust's serde_json do (so our files match theirs byte for
 * byte), and a strict UTF-8 check. Parsing is always jansson's; nothing here parses JSON.
 */
#ifndef CQ_IO_INTERNAL_H
#define CQ_IO_INTERNAL_H

#include "core/internal.h"
#include "io/source.h"

#include <jansson.h>

/* ---- atomic output files ---------------------------------------------------------------- */

typedef struct cq__afile {
    char *final_path;
    char *tmp_path;
    int fd;
} cq__afile;

/* Creates "<dir>/.<name>.tmp-XXXXXX" (mode 0666 minus umask). */
cq_status cq__afile_open(cq__afile *af, const char *path, cq_err *err);
/* The same with the permission bits given (umask still applies). */
cq_status cq__afile_open_mode(cq__afile *af, const char *path, unsigned mode, cq_err *err);
/* Sequential write at the current position / positioned write; both retry short writes. */
cq_status cq__afile_write(cq__afile *af, const void *data, size_t n, cq_err *err);
cq_status cq__afile_pwrite(cq__afile *af, const void *data, size_t n, uint64_t offset, cq_err *err);
/* fsync + close + rename onto the final path (+ best-effort fsync of the folder). On failure
 * the temp file is removed. Either way the afile is released. */
cq_status cq__afile_commit(cq__afile *af, cq_err *err);
/* Closes and removes the temp file; safe on a zeroed or already released afile. */
void cq__afile_abort(cq__afile *af);

/* A name for a sibling temp entry: "<dir>/.<base>.<tag>-<host>-<pid>-<start>-<unique>"
 * (malloc'd; the owner fields let cq__remove_stale_temps prove it dead later). */
char *cq__sibling_temp_name(const char *path, const char *tag);

/* ---- safetensors (safetensors_read.c, safetensors_write.c) ---------------------------- */

/* shape's byte size for dtype t; false on overflow (of uint64_t or of size_t). */
bool cq__st_shape_nbytes(cq_dtype t, int ndim, const int64_t *shape, uint64_t *out);

/* ---- JSON text output -------------------------------------------------------------------- */

typedef struct cq__json_style {
    int indent;           /* < 0: one line; >= 0: newline + indent spaces per level (Python indent=) */
    const char *item_sep; /* between items on one line: "," (serde) or ", " (Python) */
    const char *key_sep;  /* ":" (serde) or ": " (Python) */
    bool ensure_ascii;    /* Python's default: non-ASCII as \uXXXX (surrogate pairs) */
    bool sort_keys;
} cq__json_style;

/* serde_json::to_string: compact, UTF-8 kept, insertion order. */
extern const cq__json_style cq__json_serde_compact;
/* json.dump(obj, f, indent=4) (quanto_qmap.json). */
extern const cq__json_style cq__json_python_indent4;
/* json.dumps(obj, indent=2, sort_keys=True) (transformers config.json and the shard index). */
extern const cq__json_style cq__json_python_indent2_sorted;

/* Serializes v; *out is malloc'd and NUL-terminated, *n (may be NULL) its length. Floats are
 * written in Python's repr (shortest round-trip); NaN/inf as Python's NaN/Infinity. */
cq_status cq__json_emit(const json_t *v, const cq__json_style *style, char **out, size_t *n, cq_err *err);

/* Parses n bytes as a JSON object (duplicate keys rejected, arrays and objects nested at most
 * CQ__JSON_MAX_DEPTH deep), with errors as "<label>: not valid JSON: <reason> (line L, column C)".
 * The depth cap keeps a re-written file (config.json, indented per level) from growing with
 * the square of a small input's nesting. */
#define CQ__JSON_MAX_DEPTH 64
cq_status cq__json_parse_object(const char *text, size_t n, const char *label, json_t **out, cq_err *err);

/* String i of the top-level array key of a config.json ("architectures"), NULL when the key is
 * absent or not an array, or item i is missing or not a string. */
const char *cq__hfconfig_str_at(const cq_hfconfig *c, const char *key, size_t i);
/* The integers key holds: one integer, or the integers of an array (eos_token_id is either);
 * up to cap of them into out; returns how many were stored (0 when absent or of another type). */
int cq__hfconfig_ints(const cq_hfconfig *c, const char *key, int64_t *out, int cap);

/* Replaces control characters in err->msg with '?': messages quote names and JSON text taken
 * from files, and must stay one line whatever a file holds. */
void cq__err_one_line(cq_err *err);

/* ---- UTF-8 ----------------------------------------------------------------------------- */

/* True when s[0..n) is valid UTF-8 (no overlongs, surrogates or code points > U+10FFFF);
 * otherwise *bad_at (if not NULL) gets the offset of the first bad byte. */
bool cq__utf8_valid(const char *s, size_t n, size_t *bad_at);

#endif
