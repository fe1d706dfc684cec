#!/usr/bin/env python3
"""gen_st_fixtures.py - writes the safetensors fixtures in tests/data/st/ with the reference tools.

What it writes (all small, committed; `make test` never runs this):
  mixed.safetensors       every dtype safetensors 0.5.3 has from torch, scalars, empty tensors,
                          names needing JSON escapes, one metadata key
  nometa.safetensors      a few tensors, no __metadata__
  multimeta.safetensors   several metadata keys (their order is whatever Rust's HashMap gave)
  empty.safetensors       no tensors at all
  quanto_mlp/             optimum-quanto quantize + freeze of a small MLP (qint4 grouped,
                          qint4 per-channel, qint2, qint8, qfloat8 weights, int8 activations):
                          model.safetensors (the state_dict) + quanto_qmap.json (json.dump indent=4)
  quanto_llama_sharded/   a tiny Llama quantized with QuantizedModelForCausalLM (qint4, lm_head
                          excluded), saved by transformers with max_shard_size so it is sharded:
                          config.json, model-0000k-of-0000N.safetensors, the index, quanto_qmap.json
  json/                   reference JSON texts: a quanto map with every qtype and non-ASCII names
                          (json.dump indent=4), the sharded config with transformers' QuantoConfig
                          added (to_json_string style), and 2,000 doubles of every magnitude as
                          json.dumps(indent=2, sort_keys=True) writes them
  manifest.json           per file: every tensor's dtype, shape and FNV-1a 64 of its bytes; per
                          quanto checkpoint: each module's effective bits per weight, computed
                          from the quantized state_dict and the float model it came from

Environment (pinned): a venv with
    python3 -m venv /root/qvenv && /root/qvenv/bin/pip install torch==2.6.0 \
        optimum-quanto==0.2.7 safetensors==0.5.3 numpy==2.2.4 transformers==4.50.3 accelerate==1.5.2
then run:  /root/qvenv/bin/python tools/gen_st_fixtures.py
"""
import json
import os
import shutil
import struct
import sys

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "st")


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def describe(path):
    """[name, dtype, shape, fnv] for every tensor, read straight from the bytes (file order)."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n :]
    rows = []
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        b, e = info["data_offsets"]
        rows.append([name, info["dtype"], info["shape"], fnv1a64(data[b:e])])
    return rows


def gen_plain():
    g = torch.Generator().manual_seed(0)
    mixed = {
        "w.f32": torch.randn(3, 5, generator=g),
        "w.f16": torch.randn(2, 3, generator=g).half(),
        "w.bf16": torch.randn(7, generator=g).bfloat16(),
        "w.f64": torch.randn(2, 2, generator=g).double(),
        "w.f8_e4m3": torch.randn(5, generator=g).to(torch.float8_e4m3fn),
        "w.f8_e5m2": torch.randn(3, generator=g).to(torch.float8_e5m2),
        "i.i64": torch.arange(-3, 4, dtype=torch.int64),
        "i.i32": torch.arange(5, dtype=torch.int32) * -7,
        "i.i16": torch.tensor([1, -2, 300], dtype=torch.int16),
        "i.i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "i.u8": torch.tensor([0, 1, 255, 7], dtype=torch.uint8),
        "b.bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5),
        "scalar.i64": torch.tensor(42, dtype=torch.int64),
        "empty": torch.zeros(0, 4),
        "empty.u8": torch.zeros(2, 0, dtype=torch.uint8),
        'odd "name"\\ é/\t€': torch.ones(1),
        "a.same_dtype_sorted_by_name": torch.zeros(2),
        "z.same_dtype_sorted_by_name": torch.zeros(2),
        "conv.weight": torch.randn(4, 3, 2, 2, generator=g),
    }
    save_file(mixed, os.path.join(OUT, "mixed.safetensors"), metadata={"format": "pt"})
    save_file(
        {"fc.weight": torch.randn(4, 8, generator=g), "fc.bias": torch.randn(4, generator=g)},
        os.path.join(OUT, "nometa.safetensors"),
    )
    save_file(
        {"x": torch.arange(6, dtype=torch.float32).reshape(2, 3)},
        os.path.join(OUT, "multimeta.safetensors"),
        metadata={"format": "pt", "author": "cquanto tests", "note": "line\nbreak \"quoted\" ü"},
    )
    save_file({}, os.path.join(OUT, "empty.safetensors"))


def weight_bits(state, module, numel):
    """Effective bits per weight: bytes of the module's weight tensors * 8 / original elements."""
    prefix = module + ".weight"
    nbytes = sum(t.numel() * t.element_size() for k, t in state.items() if k == prefix or k.startswith(prefix + "."))
    return nbytes * 8 / numel


def gen_quanto_mlp():
    from optimum.quanto import freeze, qfloat8, qint2, qint4, qint8, quantization_map, quantize

    torch.manual_seed(0)
    model = torch.nn.Sequential()
    model.add_module("fc1", torch.nn.Linear(256, 16))  # qint4, group size 128
    model.add_module("fc2", torch.nn.Linear(16, 12))  # qint4 per-channel (in <= 128), odd rows
    model.add_module("fc3", torch.nn.Linear(12, 8))  # qint2 per-channel
    model.add_module("fc4", torch.nn.Linear(8, 8))  # qint8 weights, int8 activations
    model.add_module("fc5", torch.nn.Linear(8, 4))  # qfloat8 weights
    model.add_module("head", torch.nn.Linear(4, 2))  # left in float
    numel = {n: m.weight.numel() for n, m in model.named_children()}
    quantize(model, weights=qint4, include=["fc1", "fc2"])
    quantize(model, weights=qint2, include="fc3")
    quantize(model, weights=qint8, activations=qint8, include="fc4")
    quantize(model, weights=qfloat8, include="fc5")
    freeze(model)
    d = os.path.join(OUT, "quanto_mlp")
    os.makedirs(d, exist_ok=True)
    state = model.state_dict()
    save_file(state, os.path.join(d, "model.safetensors"))
    qmap = quantization_map(model)
    with open(os.path.join(d, "quanto_qmap.json"), "w", encoding="utf8") as f:
        json.dump(qmap, f, indent=4)
    return {m: weight_bits(state, m, numel[m]) for m in qmap}


def gen_quanto_llama():
    from optimum.quanto import QuantizedModelForCausalLM, qint4, quantization_map
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=96, hidden_size=32, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False, torch_dtype="float32",
    )
    model = LlamaForCausalLM(cfg).eval()
    numel = {n: m.weight.numel() for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    qmodel = QuantizedModelForCausalLM.quantize(model, weights=qint4, exclude="lm_head")
    d = os.path.join(OUT, "quanto_llama_sharded")
    shutil.rmtree(d, ignore_errors=True)
    # What QuantizedTransformersModel.save_pretrained does, with a shard size small enough to shard.
    qmodel._wrapped.save_pretrained(d, safe_serialization=True, max_shard_size="40KB")
    qmap = quantization_map(qmodel._wrapped)
    with open(os.path.join(d, "quanto_qmap.json"), "w", encoding="utf8") as f:
        json.dump(qmap, f, indent=4)
    state = qmodel._wrapped.state_dict()
    return {m: weight_bits(state, m, numel[m]) for m in qmap}


def gen_json():
    import random

    from optimum.quanto import qtypes
    from transformers import QuantoConfig

    d = os.path.join(OUT, "json")
    os.makedirs(d, exist_ok=True)
    names = ["qint2", "qint4", "qint8", "qfloat8_e4m3fn", "qfloat8_e5m2", "qfloat8_e4m3fnuz", "none"]
    qmap = {}
    for i, w in enumerate(names):
        a = ["none", "qint8", "qfloat8_e4m3fn", "qfloat8_e5m2"][i % 4]
        qmap[f"blocks.{i}.caf\u00e9.\u5c64.\U0001F600.proj"] = {"weights": w, "activations": a}
    assert all(n == "none" or n in qtypes for n in names)
    with open(os.path.join(d, "qmap_all_qtypes.json"), "w", encoding="utf8") as f:
        json.dump(qmap, f, indent=4)
    # transformers' config.json with a QuantoConfig, as PretrainedConfig.to_json_string writes it.
    cfg = json.load(open(os.path.join(OUT, "quanto_llama_sharded", "config.json")))
    q = QuantoConfig(weights="int4", modules_to_not_convert=["lm_head"]).to_dict()
    q["quant_method"] = str(q["quant_method"].value)
    cfg["quantization_config"] = q
    with open(os.path.join(d, "config_quantized.json"), "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    rng = random.Random(0)
    floats = [0.1, 1e-05, 1e-4, 1e16, 1e15, 123456789012345678.0, 5e-324, 2.2250738585072014e-308,
              1.7976931348623157e308, -0.0, 0.0, 1.0, -2.5, 100.0, 1 / 3, 2 / 3, 9007199254740993.0]
    while len(floats) < 2000:
        floats.append(rng.uniform(-1, 1) * 10.0 ** rng.randint(-320, 308))
    with open(os.path.join(d, "floats.json"), "w") as f:
        f.write(json.dumps({"floats": floats}, indent=2, sort_keys=True) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    gen_plain()
    bits = {"quanto_mlp": gen_quanto_mlp(), "quanto_llama_sharded": gen_quanto_llama()}
    gen_json()
    files = {}
    for root, _, names in sorted(os.walk(OUT)):
        for n in sorted(names):
            if n.endswith(".safetensors"):
                p = os.path.join(root, n)
                files[os.path.relpath(p, OUT)] = describe(p)
    manifest = {"versions": {"torch": torch.__version__, "safetensors": __import__("safetensors").__version__},
                "files": files, "bits_per_weight": bits}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    # Plain-text expectations for the CLI test: "<checkpoint> <module> <bits>".
    with open(os.path.join(OUT, "bits_per_weight.txt"), "w") as f:
        for ckpt, mods in bits.items():
            for m, b in mods.items():
                f.write(f"{ckpt} {m} {b:.3f}\n")
    print("wrote", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
