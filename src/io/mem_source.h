/*
 * mem_source.h - a tensor source (source.h) over tensors held in memory, and a checkpoint
 * (cq_ckpt) over one such source: how a model made in memory (a GGUF file converted to the
 * Hugging Face layout at load) reaches the code that reads checkpoints, unchanged. Private to
 * the library; never installed.
 */
#ifndef CQ_IO_MEM_SOURCE_H
#define CQ_IO_MEM_SOURCE_H

#include "io/source.h"

/* An empty source of up to cap tensors; label names it in messages. */
cq_status cq__mem_source_new(const char *label, int64_t cap, cq__source **out, cq_err *err);
/* Appends a tensor (unique name) and hands back its zeroed, aligned bytes to fill. The source
 * owns them; releasing the whole tensor (source.h) frees them. */
cq_status cq__mem_source_add(cq__source *s, const char *name, cq_dtype dt, int ndim, const int64_t *shape,
                             void **data, cq_err *err);
/* A checkpoint of the one source src (owned from here on, closed on failure too). Its
 * cq_ckpt_dir is label, and it has no folder files (no config.json beside it). */
cq_status cq__ckpt_from_source(cq__source *src, const char *label, cq_ckpt **out, cq_err *err);

#endif
