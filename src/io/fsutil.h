/*
 * fsutil.h - the file-system rules every reader and writer in the library follows, stated once
 * (docs/CLI.md, "Files read and written", says them for users):
 *  - only regular files are read, and opening one never blocks (a FIFO or a device is refused);
 *  - a file of a checkpoint folder is read only when it resolves (symlinks followed) to a place
 *    inside that folder, or, for a Hugging Face cache snapshot (<repo>/snapshots/<rev>/), inside
 *    that repo's blobs/ folder, where the cache keeps the files its snapshots link to;
 *  - an output is never, never holds, and never lies inside one of the inputs (compared by
 *    device and inode after resolving symlinks, so hard links and symlinked folders count), is
 *    not a symbolic link, and its folder exists; all checked before any work;
 *  - temp outputs carry their creator's host, pid and start time in their name, so a later run
 *    can remove the ones whose creator is provably dead (killed with SIGKILL, a power cut).
 * Private to the library (io/ and convert/); POSIX.
 */
#ifndef CQ_IO_FSUTIL_H
#define CQ_IO_FSUTIL_H

#include "core/internal.h"

#include <sys/stat.h>

/* Opens path read-only when it is a regular file (O_NONBLOCK for the open itself, so a FIFO
 * cannot hang it, then cleared); *fd is -1 on failure. st (may be NULL) gets its fstat. */
cq_status cq__open_regular(const char *path, int *fd, struct stat *st, cq_err *err);

/* Maps the regular file at path (cq__open_regular's rules) read-only and private: *base and
 * *size (NULL and 0 for an empty file, which mmap refuses). The readers of mapped formats
 * (safetensors, GGUF) share it, so the open rules and messages are the same for both. Undo with
 * cq__unmap_file. */
cq_status cq__map_file(const char *path, const uint8_t **base, size_t *size, cq_err *err);
void cq__unmap_file(const uint8_t *base, size_t size); /* accepts NULL / 0 */

/* Whether path, resolved, lies inside folder dir (resolved) or in the blobs/ folder of the
 * Hugging Face cache repo whose snapshot dir is. *why (may be NULL) gets the resolved path
 * (malloc'd) when it does not, for the message. */
bool cq__resolves_inside(const char *path, const char *dir, char **why);

/* The output rules above for out against n input paths (files or folders, each existing).
 * CQ_E_ARG with a one-line message naming both on a violation. */
cq_status cq__check_output(const char *out, const char *const *inputs, int n_inputs, cq_err *err);

/* A notice: a one-line message about something done that does not stop the work. */
typedef void (*cq__notice_fn)(const char *msg, void *user);

/* Removes the temp outputs of final_path ("<dir>/.<base>.tmp-*", "<dir>/.<base>.old-*") whose
 * creator ran on this host and no longer exists, calling notice (may be NULL) for each. */
void cq__remove_stale_temps(const char *final_path, cq__notice_fn notice, void *user);

#endif
