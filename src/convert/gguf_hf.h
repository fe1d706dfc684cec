/*
 * gguf_hf.h - a GGUF model seen as the Hugging Face folder it was converted from (gguf_hf.c):
 * what `cquanto convert` writes and what the runtime loads a .gguf through. Private to the
 * library; never installed.
 */
#ifndef CQ_CONVERT_GGUF_HF_H
#define CQ_CONVERT_GGUF_HF_H

#include "core/internal.h"

typedef struct cq__gguf_hf cq__gguf_hf;

/* Opens and maps the GGUF at path and plans its conversion: every tensor gets transformers'
 * name and the float dtype (F32, F16, BF16; CQ_DTYPE_INVALID: F16/BF16/F32 tensors keep theirs,
 * block formats become F32). Refuses, by name, architectures, tensors and tokenizers it cannot
 * carry over exactly. */
cq_status cq__gguf_hf_open(const char *path, cq_dtype dtype, cq__gguf_hf **out, cq_err *err);
void cq__gguf_hf_free(cq__gguf_hf *h); /* accepts NULL */

/* Tensor i of the plan, in its dtype and shape, into dst (numel * dtype size bytes). */
cq_status cq__gguf_hf_tensor(const cq__gguf_hf *h, int64_t i, void *dst, cq_err *err);

/* The texts of config.json and tokenizer.json (NULL: the file has no tokenizer), each ending in a
 * newline. */
const char *cq__gguf_hf_config(const cq__gguf_hf *h);
const char *cq__gguf_hf_tokenizer(const cq__gguf_hf *h);

/* Whether path is a file that starts with GGUF's magic. */
bool cq__is_gguf_file(const char *path);
/* The whole model converted into memory, as a checkpoint (the runtime's way in). */
cq_status cq__gguf_hf_to_ckpt(const cq__gguf_hf *h, cq_ckpt **out, cq_err *err);

#endif
