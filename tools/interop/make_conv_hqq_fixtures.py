#!/usr/bin/env python3
"""make_conv_hqq_fixtures.py - writes tests/data/interop/conv_<dtype>_<qtype>_hqq/: Conv2d weights
quantized by the real optimum-quanto with its HqqOptimizer (and conv_f32_int4/ with its default
MaxOptimizer).

quanto's HQQ averages its shift over the last axis only (torch.mean(..., axis=-1)), so an
ungrouped Conv2d (in*kh*kw <= 128) gets a shift of shape (out, in, kh, 1) next to a scale of
shape (out, 1, 1, 1); grouped ones get (groups, 1) for both. These fixtures pin that layout:
`cquanto quantize --optimizer hqq` must write these bytes, and `cquanto dequantize` must read
them back to what quanto's own dequantize() gives (expected.json, as make_fixtures.py writes it).

Modules (seed 0): kernels 3x3 (kw 3, the scalar sum), 1x1 (a mean over one element),
2x5, 1x9 (kw >= 8: torch's vectorised inner sum) and 3x40 (several sum blocks), all ungrouped,
and one grouped 3x3 (in_features 288 -> group 96) with a bias (its file says (18, 96), which a
Linear (6, 288) would also give: without --like its shape is unknown).

Same pinned environment as make_fixtures.py (tools/interop/requirements.txt); run from the
repository root:
    /root/qvenv/bin/python tools/interop/make_conv_hqq_fixtures.py [--out tests/data/interop]
It adds its folders and rewrites fixtures.json as the list of every fixture folder (the rule
make_fixtures.py uses); it never touches the other fixtures.
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file

import optimum.quanto
from optimum.quanto import HqqOptimizer, freeze, quantization_map, quantize

import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import DTYPES, QTYPE_CLI, save_fixture

assert torch.__version__.split("+")[0] == "2.6.0", torch.__version__
assert optimum.quanto.__version__ == "0.2.7", optimum.quanto.__version__


class Convs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.k3 = torch.nn.Conv2d(3, 5, 3)                       # in 27
        self.k1 = torch.nn.Conv2d(16, 7, 1, bias=False)          # in 16, kw 1
        self.k2x5 = torch.nn.Conv2d(4, 3, (2, 5))                # in 40
        self.k1x9 = torch.nn.Conv2d(8, 4, (1, 9))                # in 72, kw 9
        self.k3x40 = torch.nn.Conv2d(1, 6, (3, 40), bias=False)  # in 120, kw 40
        self.grouped = torch.nn.Conv2d(32, 6, 3)                 # in 288: groups of 96


# Per source dtype: (qtype, optimizer). conv_f32_int4 (MaxOptimizer) is the plain grouped-Conv2d
# case: its shapes alone would read back as a Linear.
VARIANTS = {
    "f32": [("qint2", "hqq"), ("qint4", "hqq"), ("qint4", "max")],
    "bf16": [("qint2", "hqq"), ("qint4", "hqq")],
    "f16": [("qint2", "hqq"), ("qint4", "hqq")],
}


def convs(dtype):
    torch.manual_seed(0)
    return Convs().to(dtype)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/data/interop")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    for tag, dt in DTYPES.items():
        src = os.path.join(args.out, f"conv_{tag}.safetensors")
        save_file({k: v.contiguous() for k, v in convs(dt).state_dict().items()}, src, metadata={"format": "pt"})
        for qname, opt in VARIANTS[tag]:
            model = convs(dt)
            quantize(model, weights=qname, optimizer=HqqOptimizer() if opt == "hqq" else None)
            freeze(model)
            name = f"conv_{tag}_{QTYPE_CLI[qname]}" + ("_hqq" if opt == "hqq" else "")
            opts = {"source": src, "weights": QTYPE_CLI[qname], "activations": "none"}
            if opt == "hqq":
                opts["optimizer"] = "hqq"
            save_fixture(os.path.join(args.out, name), model.state_dict(), quantization_map(model), convs(dt), opts)
    names = sorted(d for d in os.listdir(args.out) if os.path.isdir(os.path.join(args.out, d)))
    with open(os.path.join(args.out, "fixtures.json"), "w") as f:
        json.dump({"fixtures": names}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
