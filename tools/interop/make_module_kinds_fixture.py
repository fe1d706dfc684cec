"""make_module_kinds_fixture.py - the module tree of issue 10 item 7 and what optimum-quanto does with it.

Pinned: torch 2.6.0, optimum-quanto 0.2.7, safetensors 0.5.3 (tools/interop/requirements.txt).
Run from the repository root: /root/qvenv/bin/python tools/interop/make_module_kinds_fixture.py
Writes tests/data/module_kinds/: model.safetensors (the float state dict, seed 0), kinds.json (module
name -> kind, the --module-kinds file naming each module's real class) and quanto.json (per weight
qtype: the modules quanto's quantize() replaced, and their quanto class). Deterministic.
"""
import json, os
import torch
from torch import nn
from safetensors.torch import save_file
from optimum.quanto import quantize, freeze, qint4, qint8

OUT = "tests/data/module_kinds"
KIND = {nn.Linear: "linear", nn.Conv2d: "conv2d", nn.LayerNorm: "layernorm", nn.Embedding: "embedding",
        nn.EmbeddingBag: "embedding_bag", nn.ConvTranspose2d: "conv_transpose2d", nn.BatchNorm2d: "batchnorm",
        nn.GroupNorm: "groupnorm"}


def build():
    torch.manual_seed(0)
    m = nn.Module()
    m.tokens = nn.Embedding(40, 16)
    m.bag = nn.EmbeddingBag(30, 16)
    m.up = nn.ConvTranspose2d(8, 4, 3)
    m.conv = nn.Conv2d(4, 8, 3)
    m.bn = nn.BatchNorm2d(8)
    m.gn = nn.GroupNorm(2, 8)
    m.pos_embed_proj = nn.Linear(16, 32)
    m.norm = nn.LayerNorm(32)
    m.final = nn.LayerNorm(32, bias=False)
    m.head = nn.Linear(32, 24)
    return m


def main():
    os.makedirs(OUT, exist_ok=True)
    m = build()
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, f"{OUT}/model.safetensors")
    kinds = {n: KIND[type(s)] for n, s in m.named_modules() if type(s) in KIND}
    with open(f"{OUT}/kinds.json", "w") as f:
        json.dump(kinds, f, indent=1, sort_keys=True)
        f.write("\n")
    res = {}
    for name, qt in (("qint4", qint4), ("qint8", qint8)):
        q = build()
        quantize(q, weights=qt, activations=qint8)
        freeze(q)
        res[name] = {n: type(s).__name__ for n, s in q.named_modules() if type(s).__module__.startswith("optimum.quanto")}
    with open(f"{OUT}/quanto.json", "w") as f:
        json.dump({"activations": "qint8", "quantized": res}, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
