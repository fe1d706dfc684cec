#!/usr/bin/env python3
"""Writes the PyTorch goldens for cquanto's nn ops and optimizers (tests/data/nn_golden/).

What it writes
  ops.safetensors    inputs, upstream gradients, outputs and input gradients of F.linear,
                     F.conv2d (stride/padding/dilation/groups), F.layer_norm, F.rms_norm,
                     F.batch_norm (train, with the running-stat update, and eval), max/avg/
                     adaptive pooling, GELU (exact and tanh), SiLU, ReLU, softmax, log_softmax,
                     cross_entropy and nll_loss. Each case's parameters are a JSON object in the
                     metadata under "<case>.params"; tensors are "<case>.<name>".
  optim.safetensors  SGD (momentum, dampening, nesterov, weight decay), Adam (and amsgrad),
                     AdamW and Adadelta: two parameters, their initial values, the gradient fed
                     at each step and the parameters after each step. Options in "<case>.params".
Both carry metadata generator / format_version / torch; tests/test_nn_golden.c and
tests/test_optim.c check them. make test never runs this script.

Environment (pinned): the project venv /root/qvenv with torch 2.6.0 (CPU execution),
safetensors 0.5.3, numpy 2.2.4. Recreate it with
    python3 -m venv /root/qvenv && /root/qvenv/bin/pip install torch==2.6.0 safetensors==0.5.3 numpy==2.2.4
Run from the repository root:
    /root/qvenv/bin/python tools/gen_nn_golden.py
Everything runs on the CPU, single-threaded, with fixed seeds; the output is deterministic.
"""
import json
import os
import struct
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

FORMAT_VERSION = "1"
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "nn_golden")


def randn(gen, *shape, scale=1.0):
    return (torch.randn(*shape, generator=gen, dtype=torch.float32) * scale).contiguous()


class Writer:
    def __init__(self):
        self.tensors = {}
        self.meta = {}

    def case(self, name, params, tensors):
        self.meta[name + ".params"] = json.dumps(params, sort_keys=True)
        for k, v in tensors.items():
            self.tensors[f"{name}.{k}"] = v.detach().to(torch.float32).contiguous().clone()

    def save(self, path):
        meta = dict(self.meta)
        meta["generator"] = "tools/gen_nn_golden.py"
        meta["format_version"] = FORMAT_VERSION
        meta["torch"] = torch.__version__
        save_sorted(self.tensors, meta, path)


def save_sorted(tensors, meta, path):
    """A safetensors file with a sorted header (safetensors' save_file orders the metadata map
    differently on every run), so regenerating gives identical bytes. Checked by reading back."""
    header = {"__metadata__": dict(sorted(meta.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        data = tensors[name].numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.replace(path + ".tmp", path)
    back = load_file(path)
    assert all(torch.equal(back[k], tensors[k]) for k in tensors)


def run_op(fn, inputs, gen, loss=False):
    """Forward fn(*inputs) with grads on the float inputs; backward with a random upstream
    gradient (or 1 for a scalar loss). Returns (y, gy, grads)."""
    leaves = [t.clone().requires_grad_(True) if t is not None else None for t in inputs]
    y = fn(*leaves)
    gy = torch.ones_like(y) if loss else randn(gen, *y.shape)
    y.backward(gy)
    grads = [l.grad if l is not None else None for l in leaves]
    return y, gy, grads


def op_goldens():
    w = Writer()
    gen = torch.Generator().manual_seed(20240607)

    def add(name, params, fn, names, inputs, loss=False, extra=None):
        y, gy, grads = run_op(fn, inputs, gen, loss)
        tensors = {"y": y, "gy": gy}
        for n, t, g in zip(names, inputs, grads):
            if t is None:
                continue
            tensors[n] = t
            if g is not None:
                tensors["g" + n] = g
        tensors.update(extra or {})
        w.case(name, params, tensors)

    # Linear
    add("linear", {}, lambda x, W, b: F.linear(x, W, b), ["x", "weight", "bias"],
        [randn(gen, 4, 7), randn(gen, 5, 7, scale=0.4), randn(gen, 5)])
    add("linear_3d_nobias", {}, lambda x, W: F.linear(x, W), ["x", "weight"],
        [randn(gen, 2, 3, 6), randn(gen, 4, 6, scale=0.4)])

    # Conv2d
    def conv_case(name, x_shape, w_shape, bias, stride, padding, dilation, groups):
        params = {"stride": list(stride), "padding": list(padding), "dilation": list(dilation), "groups": groups}
        inputs = [randn(gen, *x_shape), randn(gen, *w_shape, scale=0.3), randn(gen, w_shape[0]) if bias else None]
        add(name, params, lambda x, W, b: F.conv2d(x, W, b, stride, padding, dilation, groups),
            ["x", "weight", "bias"], inputs)

    conv_case("conv2d_basic", (2, 3, 8, 8), (4, 3, 3, 3), True, (1, 1), (1, 1), (1, 1), 1)
    conv_case("conv2d_mixed", (2, 4, 9, 10), (6, 2, 3, 2), True, (2, 1), (1, 2), (2, 1), 2)
    conv_case("conv2d_depthwise", (2, 3, 7, 7), (3, 1, 3, 3), False, (2, 2), (1, 1), (1, 1), 3)
    conv_case("conv2d_5x5", (2, 1, 14, 14), (10, 1, 5, 5), True, (1, 1), (0, 0), (1, 1), 1)

    # Norms
    add("layer_norm", {"n_norm_dims": 1, "eps": 1e-5},
        lambda x, W, b: F.layer_norm(x, (8,), W, b, 1e-5), ["x", "weight", "bias"],
        [randn(gen, 3, 4, 8, scale=2.0) + 1.0, randn(gen, 8), randn(gen, 8)])
    add("layer_norm_2d_noaffine", {"n_norm_dims": 2, "eps": 1e-5},
        lambda x: F.layer_norm(x, (4, 8), None, None, 1e-5), ["x"], [randn(gen, 3, 4, 8)])
    add("rms_norm", {"eps": 1e-6}, lambda x, W: F.rms_norm(x, (9,), W, 1e-6), ["x", "weight"],
        [randn(gen, 5, 9), randn(gen, 9)])

    for training in (True, False):
        x, W, b = randn(gen, 4, 3, 5, 5, scale=1.5), randn(gen, 3), randn(gen, 3)
        rm0, rv0 = randn(gen, 3, scale=0.5), randn(gen, 3).abs() + 0.5
        rm, rv = rm0.clone(), rv0.clone()
        name = "batch_norm2d_train" if training else "batch_norm2d_eval"
        add(name, {"training": training, "momentum": 0.1, "eps": 1e-5},
            lambda x, W, b: F.batch_norm(x, rm, rv, W, b, training, 0.1, 1e-5), ["x", "weight", "bias"], [x, W, b],
            extra={"running_mean": rm0, "running_var": rv0})
        w.tensors[name + ".running_mean_after"] = rm.clone()
        w.tensors[name + ".running_var_after"] = rv.clone()

    # Pooling
    def pool_params(k, s, p, d=1, ceil=False, count_include_pad=True):
        return {"kernel": list(k), "stride": list(s), "padding": list(p), "dilation": [d, d],
                "ceil_mode": ceil, "count_include_pad": count_include_pad}

    add("max_pool2d_k3s2p1", pool_params((3, 3), (2, 2), (1, 1)),
        lambda x: F.max_pool2d(x, 3, 2, 1), ["x"], [randn(gen, 2, 3, 9, 8)])
    add("max_pool2d_k2_dil2_ceil", pool_params((2, 2), (2, 2), (0, 0), d=2, ceil=True),
        lambda x: F.max_pool2d(x, 2, 2, 0, 2, ceil_mode=True), ["x"], [randn(gen, 1, 2, 7, 7)])
    add("avg_pool2d_k3s2p1", pool_params((3, 3), (2, 2), (1, 1)),
        lambda x: F.avg_pool2d(x, 3, 2, 1), ["x"], [randn(gen, 2, 3, 9, 8)])
    add("avg_pool2d_k2_ceil_nopad", pool_params((2, 2), (2, 2), (0, 1), ceil=True, count_include_pad=False),
        lambda x: F.avg_pool2d(x, 2, 2, (0, 1), ceil_mode=True, count_include_pad=False), ["x"],
        [randn(gen, 2, 2, 5, 5)])
    add("adaptive_avg_pool2d_3x2", {"out": [3, 2]}, lambda x: F.adaptive_avg_pool2d(x, (3, 2)), ["x"],
        [randn(gen, 2, 3, 7, 5)])
    add("adaptive_avg_pool2d_1x1", {"out": [1, 1]}, lambda x: F.adaptive_avg_pool2d(x, (1, 1)), ["x"],
        [randn(gen, 2, 3, 4, 6)])

    # Activations
    add("gelu", {"approximate": "none"}, lambda x: F.gelu(x), ["x"], [randn(gen, 4, 16, scale=3.0)])
    add("gelu_tanh", {"approximate": "tanh"}, lambda x: F.gelu(x, approximate="tanh"), ["x"],
        [randn(gen, 4, 16, scale=3.0)])
    add("silu", {}, lambda x: F.silu(x), ["x"], [randn(gen, 4, 16, scale=3.0)])
    add("relu", {}, lambda x: F.relu(x), ["x"], [randn(gen, 4, 16)])
    add("softmax", {}, lambda x: F.softmax(x, dim=-1), ["x"], [randn(gen, 2, 3, 10, scale=3.0)])
    add("log_softmax", {}, lambda x: F.log_softmax(x, dim=-1), ["x"], [randn(gen, 4, 10, scale=3.0)])

    # Losses (targets stored as float; -100 is ignore_index)
    targets = torch.tensor([0, 4, -100, 2, 1, 3], dtype=torch.int64)
    add("cross_entropy", {}, lambda x: F.cross_entropy(x, targets), ["x"], [randn(gen, 6, 5, scale=2.0)], loss=True,
        extra={"targets": targets.to(torch.float32)})
    add("nll_loss", {}, lambda x: F.nll_loss(x, targets), ["x"],
        [F.log_softmax(randn(gen, 6, 5, scale=2.0), dim=-1)], loss=True,
        extra={"targets": targets.to(torch.float32)})
    return w


def optim_goldens():
    w = Writer()
    gen = torch.Generator().manual_seed(7)
    steps = 5
    p0 = [randn(gen, 3, 4), randn(gen, 5)]
    grads = [[randn(gen, 3, 4), randn(gen, 5)] for _ in range(steps)]
    cases = [
        ("sgd_plain", torch.optim.SGD, {"lr": 0.1}),
        ("sgd_momentum", torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
        ("sgd_nesterov", torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
        ("adam", torch.optim.Adam, {"lr": 0.01}),
        ("adam_amsgrad_wd", torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.01, "amsgrad": True}),
        ("adamw", torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
        ("adadelta", torch.optim.Adadelta, {}),
        ("adadelta_wd", torch.optim.Adadelta, {"lr": 0.5, "rho": 0.8, "weight_decay": 0.01}),
    ]
    shared = {"p0.0": p0[0], "p0.1": p0[1]}
    for s in range(steps):
        shared[f"grad.{s}.0"] = grads[s][0]
        shared[f"grad.{s}.1"] = grads[s][1]
    w.case("fixture", {"steps": steps}, shared)
    for name, cls, kwargs in cases:
        params = [p.clone().requires_grad_(True) for p in p0]
        opt = cls(params, foreach=False, **kwargs)
        out = {}
        for s in range(steps):
            opt.zero_grad()
            for p, g in zip(params, grads[s]):
                p.grad = g.clone()
            opt.step()
            out[f"p.{s}.0"] = params[0].detach().clone()
            out[f"p.{s}.1"] = params[1].detach().clone()
        kind = {torch.optim.SGD: "sgd", torch.optim.Adam: "adam", torch.optim.AdamW: "adamw",
                torch.optim.Adadelta: "adadelta"}[cls]
        full = dict(opt.defaults)
        full = {k: v for k, v in full.items() if isinstance(v, (int, float, bool)) or k == "betas"}
        full["kind"] = kind
        w.case(name, full, out)
    return w


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT_DIR, exist_ok=True)
    op_goldens().save(os.path.join(OUT_DIR, "ops.safetensors"))
    optim_goldens().save(os.path.join(OUT_DIR, "optim.safetensors"))
    for f in ("ops.safetensors", "optim.safetensors"):
        print(f, os.path.getsize(os.path.join(OUT_DIR, f)), "bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
