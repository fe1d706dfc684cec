#!/usr/bin/env python3
"""gen_lenet_ref.py - PyTorch's reference outputs of the bundled float LeNet on MNIST.

Writes into tests/data/lenet_ref/, for the C tests to compare against:
  lenet_ref.safetensors
    pred      U8  [10000]   PyTorch's top-1 class for each of the 10,000 MNIST test images
    logprobs  F32 [64, 10]  log_softmax outputs of the first 64 images (a closer forward check)
    labels_ok I64 []        how many of the 10,000 predictions equal the label (9761 expected)
  quanto_mixed/{model.safetensors, quanto_qmap.json}
    optimum-quanto's frozen checkpoint of the same LeNet with weights only: conv1 qfloat8,
    conv2 qint4 (per channel: 250 inputs fit no group), fc1 qint4 (group 64), fc2 qint2
  quanto_w8a8/{model.safetensors, quanto_qmap.json}
    qint8 weights and activations, calibrated (Calibration(), momentum 0.9) on one batch:
    the first 250 images; then frozen

The network is the PyTorch FGSM tutorial's LeNet (see data/README.md): x = pixel/255,
relu(maxpool2(conv1(x))), relu(maxpool2(conv2(x))) (dropout off: eval), flatten to 320,
relu(fc1), fc2, log_softmax. Only torch and safetensors are used, no torchvision.

Environment (pinned): Python 3 venv with torch==2.6.0, safetensors==0.5.3 and
optimum-quanto==0.2.7, e.g.
    python3 -m venv /root/qvenv
    /root/qvenv/bin/pip install torch==2.6.0 safetensors==0.5.3 optimum-quanto==0.2.7
Run from the repository root:
    /root/qvenv/bin/python tools/gen_lenet_ref.py
make test never runs this script; its output is committed.
"""
import gzip
import os
import struct
import sys

import json

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data")
OUT_DIR = os.path.join(ROOT, "tests", "data", "lenet_ref")


def read_idx(path, magic, ndim):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    got_magic, = struct.unpack(">I", raw[:4])
    if got_magic != magic:
        sys.exit(f"{path}: magic {got_magic:#x}, expected {magic:#x}")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(dims)


def lenet_forward(sd, x):
    x = F.relu(F.max_pool2d(F.conv2d(x, sd["conv1.weight"], sd["conv1.bias"]), 2))
    x = F.relu(F.max_pool2d(F.conv2d(x, sd["conv2.weight"], sd["conv2.bias"]), 2))
    x = x.reshape(-1, 320)
    x = F.relu(F.linear(x, sd["fc1.weight"], sd["fc1.bias"]))
    x = F.linear(x, sd["fc2.weight"], sd["fc2.bias"])
    return F.log_softmax(x, dim=1)


class LeNet(nn.Module):
    """The tutorial's Net with its dropout left out (both only act in training)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        if hasattr(x, "dequantize"):
            x = x.dequantize()
        return F.log_softmax(x, dim=1)


def save_quanto(model, name):
    from optimum.quanto import quantization_map

    out = os.path.join(OUT_DIR, name)
    os.makedirs(out, exist_ok=True)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(out, "model.safetensors"))
    with open(os.path.join(out, "quanto_qmap.json"), "w") as f:
        json.dump(quantization_map(model), f, indent=4)


def quanto_checkpoints(sd, x):
    from optimum.quanto import Calibration, freeze, qfloat8, qint2, qint4, qint8, quantize

    model = LeNet()
    model.load_state_dict(sd)
    model.eval()
    quantize(model, weights=qfloat8, include="conv1")
    quantize(model, weights=qint4, include=["conv2", "fc1"])
    quantize(model, weights=qint2, include="fc2")
    freeze(model)
    save_quanto(model, "quanto_mixed")

    model = LeNet()
    model.load_state_dict(sd)
    model.eval()
    quantize(model, weights=qint8, activations=qint8)
    with torch.no_grad(), Calibration():
        model(x[:250])
    freeze(model)
    save_quanto(model, "quanto_w8a8")


def main():
    torch.set_num_threads(1)
    images = read_idx(os.path.join(DATA, "mnist-t10k-images-idx3-ubyte.gz"), 0x803, 3)
    labels = read_idx(os.path.join(DATA, "mnist-t10k-labels-idx1-ubyte.gz"), 0x801, 1)
    sd = load_file(os.path.join(DATA, "lenet_mnist.safetensors"))
    x = images.to(torch.float32).div(255.0).unsqueeze(1)
    with torch.no_grad():
        logprobs = torch.cat([lenet_forward(sd, x[i:i + 500]) for i in range(0, len(x), 500)])
    pred = logprobs.argmax(dim=1)
    correct = int((pred == labels.long()).sum())
    os.makedirs(OUT_DIR, exist_ok=True)
    save_file({"pred": pred.to(torch.uint8).contiguous(),
               "logprobs": logprobs[:64].contiguous(),
               "labels_ok": torch.tensor(correct, dtype=torch.int64)},
              os.path.join(OUT_DIR, "lenet_ref.safetensors"))
    print(f"torch {torch.__version__}: {correct}/10000 correct ({correct / 100:.2f}%)")
    quanto_checkpoints(sd, x)


if __name__ == "__main__":
    main()
