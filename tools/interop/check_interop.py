#!/usr/bin/env python3
"""check_interop.py - proves cquanto's checkpoints load in the real optimum-quanto and transformers.

Interop direction (a), live (make test covers the same through tests/data/interop without Python):
for each qtype, `cquanto quantize data/stories260K` is run, then
  1. optimum-quanto's `requantize` loads the output into a fresh LlamaForCausalLM; every quantized
     module's dequantize() must equal, bit for bit, the weight `cquanto dequantize` writes;
  2. `QuantizedModelForCausalLM.from_pretrained(OUT)` (transformers + accelerate underneath) loads the
     folder as is; its logits on a fixed prompt are compared with those of our dequantized model:
     transformers' float LlamaForCausalLM with the state dict of `cquanto dequantize`'s file, i.e.
     the float model optimum-quanto's weights dequantize to, run in torch;
  3. optimum-quanto quantizes the same float model itself (quantize + freeze); its state dict must
     equal cquanto's output tensor for tensor, byte for byte.
The reverse direction (b) is tools/interop/make_fixtures.py plus the C tests.

Environment (pinned): python3 -m venv /root/qvenv && /root/qvenv/bin/pip install -r tools/interop/requirements.txt
Run from the repository root after building:
    /root/qvenv/bin/python tools/interop/check_interop.py [--cquanto build/release/cquanto]
        [--model FLOAT_FOLDER] [--weights int8,int4,...]
--model runs the same checks on another float Llama folder, e.g. SmolLM2-135M as
`cquanto convert` writes it from its GGUF.
Exit status 0 when every check passes; prints a Markdown table of the results.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM

from optimum.quanto import QuantizedModelForCausalLM, freeze, quantize, requantize

STORIES = "data/stories260K"
PROMPT = [1, 403, 407, 261, 378, 290, 269, 353, 17, 480, 2, 99]  # fixed token ids (vocab 512)
QTYPES = [("int8", "qint8"), ("int4", "qint4"), ("int2", "qint2"), ("float8", "qfloat8_e4m3fn"),
          ("float8_e5m2", "qfloat8_e5m2")]


def bits_equal(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return torch.equal(a.reshape(-1).contiguous().view(torch.uint8), b.reshape(-1).contiguous().view(torch.uint8))


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr}")


def qmodules(model):
    return {n: m for n, m in model.named_modules() if getattr(m, "weight_qtype", None) is not None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cquanto", default="build/release/cquanto")
    ap.add_argument("--model", default=STORIES,
                    help="float Llama folder (default data/stories260K; e.g. `cquanto convert`'s SmolLM2-135M)")
    ap.add_argument("--weights", default=",".join(c for c, _ in QTYPES), help="comma-separated subset of the qtypes")
    a = ap.parse_args()
    model_dir = a.model
    n_linear = 7 * AutoConfig.from_pretrained(model_dir).num_hidden_layers
    wanted = a.weights.split(",")
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="cq_interop_")
    ids = torch.tensor([PROMPT])
    rows, ok_all = [], True
    for cli, qname in [q for q in QTYPES if q[0] in wanted]:
        out, deq = os.path.join(tmp, cli), os.path.join(tmp, cli + ".safetensors")
        run([a.cquanto, "quantize", model_dir, "-o", out, "--weights", cli, "--quiet"])
        run([a.cquanto, "dequantize", out, "-o", deq, "--quiet"])
        ours = load_file(deq)

        # 1. requantize into a fresh model, dequantize there, compare bits.
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir), torch_dtype=torch.float32)
        with open(os.path.join(out, "quanto_qmap.json")) as f:
            requantize(model, load_file(os.path.join(out, "model.safetensors")), json.load(f), device=torch.device("cpu"))
        mods = qmodules(model)
        same = sum(bits_equal(m.weight.dequantize(), ours[n + ".weight"]) for n, m in mods.items())

        # 2. from_pretrained on the folder; logits against our dequantized float model.
        qm = QuantizedModelForCausalLM.from_pretrained(out)
        qmods = qmodules(qm._wrapped)
        same_fp = sum(bits_equal(m.weight.dequantize(), ours[n + ".weight"]) for n, m in qmods.items())
        ref = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
        missing, unexpected = ref.load_state_dict(ours, strict=False)
        assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
        ref.tie_weights()
        with torch.no_grad():
            lq = qm(ids).logits
            lr = ref(ids).logits
        diff = float((lq - lr).abs().max())
        exact = torch.equal(lq, lr)

        # 3. optimum-quanto's own quantization of the same model, tensor for tensor.
        theirs_model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
        quantize(theirs_model, weights=qname, exclude="lm_head")
        freeze(theirs_model)
        theirs = {k: v for k, v in theirs_model.state_dict().items() if k != "lm_head.weight"}
        mine = load_file(os.path.join(out, "model.safetensors"))
        same_q = sum(k in mine and bits_equal(v, mine[k]) for k, v in theirs.items())

        ok = same == len(mods) == n_linear and same_fp == len(qmods) == n_linear and exact and same_q == len(theirs) == len(mine)
        ok_all &= ok
        rows.append((cli, f"{same}/{len(mods)}", f"{same_fp}/{len(qmods)}", f"{diff:.3g}", "yes" if exact else "no",
                     f"{same_q}/{len(theirs)}", "PASS" if ok else "FAIL"))

    print("| --weights | requantize: dequantized weights bit-identical | from_pretrained: bit-identical "
          "| logits max abs diff | logits identical | quanto's own quantization: tensors byte-identical | |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\nmodel: {model_dir}; prompt: {len(PROMPT)} fixed token ids; torch {torch.__version__}, "
          f"optimum-quanto {__import__('optimum.quanto').quanto.__version__}, "
          f"transformers {__import__('transformers').__version__}")
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
