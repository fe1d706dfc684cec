/*
 * cquanto.h - the stable public API of cquanto, a C11 quantization toolkit that follows
 * optimum-quanto's design and on-disk format.
 *
 * Worked example (the optimum-quanto workflow in C):
 *
 *     cq_err err = {0};
 *     cq_model *m = NULL;
 *     if (cq_lenet_new(&m, &err) != CQ_OK) die(err.msg);
 *     cq_model_load_safetensors(m, "data/lenet_mnist.safetensors", &err);
 *     cq_quantize_opts q = cq_quantize_default_opts();
 *     q.weights = CQ_QINT8; q.activations = CQ_QINT8;
 *     cq_quantize(m, &q, &err);
 *     cq_calibrate_begin(m, 0.9, &err);   ... forward passes ...   cq_calibrate_end(m);
 *     cq_freeze(m, &err);
 *     cq_model_save(m, "out/lenet-int8", &err);     // model.safetensors + quanto_qmap.json
 *
 * Conventions
 *  - Every fallible call returns a cq_status and takes a `cq_err *err` last (may be NULL). On
 *    failure err->msg names the file, tensor or argument at fault; the status is only ever the
 *    return value, the same with or without a record. Nothing aborts on bad input, and a NULL
 *    pointer argument is refused with CQ_E_ARG; functions without a status (getters, kernels)
 *    return a neutral value (0, NULL, "", false) or do nothing for a NULL object.
 *  - Ownership on failure: a call documented as taking ownership of an argument takes it on
 *    every return, success or failure (on failure it frees it), so the caller never frees what
 *    it passed: cq_model_new (root), cq_module_add (child), cq_state_dict_add (t). The one
 *    exception is an argument that was not the caller's to give (a module already in a tree
 *    or a model, or one that contains the parent; a tensor already in the state dict): it is
 *    refused and left as it is.
 *  - Constructors use out-parameters and set *out = NULL on failure; every _new/_open pairs
 *    with a _free/_close that accepts NULL.
 *  - Shapes and element counts are int64_t, byte sizes are size_t.
 *  - Enum values are append-only: they may end up in files.
 *
 * Layers (each header includes only those below it):
 *   cquanto/core.h     status, errors, dtypes, tensors, threads, qtypes
 *   cquanto/quant.h    quantization math, packing, optimizers, quantized tensors
 *   cquanto/kernels.h  CPU dispatch, elementwise kernels, quantized matmul
 *   cquanto/io.h       safetensors, checkpoints, quanto map, config.json, data sets
 *   cquanto/convert.h  streaming checkpoint quantize / dequantize / report
 *   cquanto/nn.h       tape, ops, optimizers, modules, quantization workflow
 *   cquanto/models.h   LeNet, MLP
 * The transformer runtime will add cquanto/lm.h. cquanto/experimental.h (not included here)
 * holds exported but unstable helpers.
 */
#ifndef CQUANTO_H
#define CQUANTO_H

#include "cquanto/core.h"
#include "cquanto/quant.h"
#include "cquanto/kernels.h"
#include "cquanto/io.h"
#include "cquanto/convert.h"
#include "cquanto/nn.h"
#include "cquanto/models.h"
#include "cquanto/lm.h"

#endif /* CQUANTO_H */
