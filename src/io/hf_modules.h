/*
 * hf_modules.h - module kinds from outside the state dict, which cannot tell an nn.Embedding
 * from a bias-less nn.Linear: a --module-kinds file (JSON, module -> kind name) and the
 * per-architecture tables of the model families cquanto knows. Shared by the checkpoint planner
 * (src/convert/plan.c) and by the runtime that will build those models, so the two agree on
 * what each module is. Private; never installed.
 */
#ifndef CQ_IO_HF_MODULES_H
#define CQ_IO_HF_MODULES_H

#include "core/internal.h"
#include "core/strmap.h"

/* The rank of a kind's weight (0: any rank, for OTHER and UNKNOWN). */
int cq__layer_kind_weight_rank(cq_layer_kind k);

/* ---- architecture tables ---- */

typedef struct cq__arch cq__arch; /* static, never freed */

/* The family of a config.json: by model_type, else by the first "architectures" class name
 * with a known prefix (LlamaForCausalLM -> llama). NULL for NULL or an unknown family. */
const cq__arch *cq__arch_for_config(const cq_hfconfig *c);
const char *cq__arch_name(const cq__arch *a); /* "llama", "mistral", "qwen2", "bert", "gpt2" */
/* The kind the family's table gives module, UNKNOWN when it names none. *output_head (may be
 * NULL) says the module is the output projection that tie_word_embeddings ties to the input
 * embedding. */
cq_layer_kind cq__arch_kind(const cq__arch *a, const char *module, bool *output_head);

/* ---- --module-kinds files: {"<module>": "<kind name>", ...} ---- */

typedef struct cq__module_kinds {
    char *label;          /* the file, for messages */
    char **module;        /* n names, file order */
    cq_layer_kind *kind;  /* never UNKNOWN */
    int64_t n;
    cq__strmap index;     /* module -> i */
} cq__module_kinds;

/* Fails with CQ_E_FORMAT (one line naming the file, and the module where one is at fault) for
 * anything but an object of kind names (cq_layer_kind_name's, "unknown" excluded). */
cq_status cq__module_kinds_parse(const char *text, size_t n, const char *label, cq__module_kinds *out, cq_err *err);
cq_status cq__module_kinds_load(const char *path, cq__module_kinds *out, cq_err *err);
void cq__module_kinds_free(cq__module_kinds *k); /* re-zeroes it */
/* The file's kind for module, UNKNOWN when the file does not name it. */
cq_layer_kind cq__module_kinds_get(const cq__module_kinds *k, const char *module);

#endif
