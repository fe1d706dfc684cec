#!/usr/bin/env python3
"""make_fixtures.py - writes tests/data/interop/: checkpoints quantized by the real optimum-quanto.

Interop direction (b): a checkpoint written by optimum-quanto (quantize, freeze, save_file plus
quantization_map) must load in cquanto with bit-identical dequantized weights. This script makes
those checkpoints and records what optimum-quanto itself dequantizes them to, so `make test`
checks both directions without Python:

  * cquanto dequantize <fixture> must give, tensor for tensor, the bytes optimum-quanto's
    dequantize() gives after re-loading the file (stored as CRC-32 + byte count + sum in
    expected.json, since the full float tensors would not fit the fixture budget);
  * cquanto quantize <source> with the same options must write the same tensors, byte for byte,
    as optimum-quanto's save_file (the fixture's model.safetensors).

Models:
  * stories260K (data/stories260K, float32, tied embeddings): qint4 and qint8, lm_head excluded
    (it is the tied embedding table). Its shapes never trigger grouping (in_features 64 and 172).
  * "tiny": a hand-made module tree (seed 0) with Linear layers whose in_features select group
    sizes 128, 96, 64 and 32, one with no valid group (172), one with out_features 1, grouped and
    per-channel Conv2d, a LayerNorm and an Embedding; stored as float32, bfloat16 and float16
    sources (tiny_f32/bf16/f16.safetensors) and quantized to every qtype the CLI offers. bf16
    qint4 with group 128 goes through quanto's TinyGemm layout on CPU, whose saved shift differs
    from the optimizer's (QUANTO-FORMAT.md 8.1).

Environment (pinned; recreate with):
    python3 -m venv /root/qvenv
    /root/qvenv/bin/pip install -r tools/interop/requirements.txt
Run from the repository root:
    /root/qvenv/bin/python tools/interop/make_fixtures.py [--out tests/data/interop]
The output is deterministic for these versions on a CPU (torch.manual_seed(0)).
"""
import argparse
import json
import os
import shutil
import zlib

import torch
from safetensors.torch import load_file, save_file

from optimum.quanto import freeze, quantization_map, quantize, requantize

STORIES = "data/stories260K"

QTYPE_CLI = {  # quanto qtype name -> cquanto --weights / --activations spelling
    "qint2": "int2", "qint4": "int4", "qint8": "int8",
    "qfloat8_e4m3fn": "float8", "qfloat8_e5m2": "float8_e5m2", "none": "none",
}


class Tiny(torch.nn.Module):
    """Shapes chosen to walk the group-size rule and the packing corner cases."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(40, 16)      # never quantized (not a quanto module)
        self.g128 = torch.nn.Linear(256, 16)         # group 128
        self.g96 = torch.nn.Linear(288, 8, bias=False)  # group 96
        self.g64 = torch.nn.Linear(320, 8)           # group 64
        self.g32 = torch.nn.Linear(160, 12)          # group 32
        self.odd = torch.nn.Linear(172, 5)           # no group divides 172; 5 rows pad the packing
        self.one = torch.nn.Linear(64, 1)            # out_features 1: per-tensor scale at 8 bits
        self.conv = torch.nn.Conv2d(32, 6, 3)        # in_features 288: grouped Conv2d
        self.conv_pc = torch.nn.Conv2d(3, 5, 3)      # in_features 27: per-channel Conv2d
        self.norm = torch.nn.LayerNorm(16)           # copied (a QLayerNorm only with activations)
        with torch.no_grad():
            # A constant row: zero range, the zero-scale divergence must not appear in a fixture
            # that quanto itself produces, so keep every row non-constant but make one row tiny.
            self.g32.weight[3].mul_(1e-3)


def crc_entry(t):
    t = t.contiguous()
    raw = t.reshape(-1).view(torch.uint8).numpy().tobytes()
    return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "nbytes": len(raw),
            "crc32": zlib.crc32(raw) & 0xFFFFFFFF, "sum": float(t.double().sum())}


def dequantized_weights(model):
    """What optimum-quanto dequantizes every quantized module's weight to."""
    out = {}
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        if hasattr(m, "weight_qtype") and m.weight_qtype is not None and w is not None:
            out[name + ".weight"] = w.dequantize()
    return out


def save_fixture(dst, state_dict, qmap, reload_model, opts, config=None):
    os.makedirs(dst, exist_ok=True)
    save_file(state_dict, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(dst, "quanto_qmap.json"), "w") as f:
        json.dump(qmap, f, indent=4)
    if config:
        shutil.copy(config, os.path.join(dst, "config.json"))
    # Re-load through quanto's own loading path (requantize), then dequantize.
    sd = load_file(os.path.join(dst, "model.safetensors"))
    with open(os.path.join(dst, "quanto_qmap.json")) as f:
        qmap_loaded = json.load(f)
    requantize(reload_model, sd, qmap_loaded, device=torch.device("cpu"))
    deq = dequantized_weights(reload_model)
    expected = {"cquanto_options": opts, "dequantized": {k: crc_entry(v) for k, v in sorted(deq.items())}}
    with open(os.path.join(dst, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


def stories_fixtures(out):
    from transformers import AutoConfig, AutoModelForCausalLM

    for qname in ("qint4", "qint8"):
        model = AutoModelForCausalLM.from_pretrained(STORIES, torch_dtype=torch.float32)
        quantize(model, weights=qname, exclude="lm_head")
        freeze(model)
        sd = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}  # tied
        fresh = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(STORIES), torch_dtype=torch.float32)
        save_fixture(os.path.join(out, f"stories_{QTYPE_CLI[qname]}"), sd, quantization_map(model), fresh,
                     {"source": STORIES, "weights": QTYPE_CLI[qname], "activations": "none"},
                     config=os.path.join(STORIES, "config.json"))


def tiny_model(dtype):
    torch.manual_seed(0)
    return Tiny().to(dtype)


TINY_VARIANTS = [  # (source dtype, weights, activations)
    ("f32", "qint4", "none"),
    ("bf16", "qint4", "none"),
    ("f16", "qint4", "none"),
    ("f32", "qint2", "none"),
    ("bf16", "qint2", "none"),
    ("f32", "qint8", "none"),
    ("bf16", "qint8", "none"),
    ("f32", "qfloat8_e4m3fn", "none"),
    ("bf16", "qfloat8_e4m3fn", "none"),
    ("f16", "qfloat8_e5m2", "none"),
    ("f32", "qint8", "qint8"),
]
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def tiny_fixtures(out):
    for tag, dt in DTYPES.items():
        save_file({k: v.contiguous() for k, v in tiny_model(dt).state_dict().items()},
                  os.path.join(out, f"tiny_{tag}.safetensors"), metadata={"format": "pt"})
    for tag, qname, aname in TINY_VARIANTS:
        model = tiny_model(DTYPES[tag])
        quantize(model, weights=qname, activations=None if aname == "none" else aname)
        freeze(model)
        name = f"tiny_{tag}_{QTYPE_CLI[qname]}" + ("" if aname == "none" else f"_a{QTYPE_CLI[aname]}")
        save_fixture(os.path.join(out, name), model.state_dict(), quantization_map(model),
                     tiny_model(DTYPES[tag]),
                     {"source": f"tests/data/interop/tiny_{tag}.safetensors", "weights": QTYPE_CLI[qname],
                      "activations": QTYPE_CLI[aname]})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/data/interop")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    stories_fixtures(args.out)
    tiny_fixtures(args.out)
    names = sorted(d for d in os.listdir(args.out) if os.path.isdir(os.path.join(args.out, d)))
    with open(os.path.join(args.out, "fixtures.json"), "w") as f:
        json.dump({"fixtures": names}, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(r, n)) for r, _, fs in os.walk(args.out) for n in fs)
    print(f"{len(names)} fixtures, {total / 1e6:.2f} MB in {args.out}")


if __name__ == "__main__":
    main()
