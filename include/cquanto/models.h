/*
 * cquanto/models.h - the bundled architectures built from nn modules.
 */
#ifndef CQUANTO_MODELS_H
#define CQUANTO_MODELS_H

#include "cquanto/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* LeNet for MNIST (the PyTorch tutorial net, data/lenet_mnist.safetensors): conv1 (1->10, 5x5),
 * conv2 (10->20, 5x5), fc1 (320->50), fc2 (50->10); forward: relu(maxpool2(conv1(x))),
 * relu(maxpool2(conv2(x))), flatten, relu(fc1), fc2, log_softmax. Input [N, 1, 28, 28] of
 * pixel/255; output log-probabilities [N, 10]. Dropout is left out (eval behaviour). */
CQ_API cq_status cq_lenet_new(cq_model **out, cq_err *err);
/* An MLP of Linear layers "layers.0" ... "layers.<n_layers-1>" with sizes[0] inputs and
 * sizes[i+1] outputs for layer i, ReLU between layers, logits out. Random init from seed. */
CQ_API cq_status cq_mlp_new(cq_model **out, int n_layers, const int64_t *sizes, uint64_t seed, cq_err *err);

#ifdef __cplusplus
}
#endif
#endif /* CQUANTO_MODELS_H */
