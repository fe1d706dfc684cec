#!/usr/bin/env python3
"""gguf_reference.py - references for a GGUF model converted by `cquanto convert`.

Usage: gguf_reference.py MODEL.gguf CONVERTED_FOLDER OUT_DIR [--text wiki.test.raw]

With the pinned venv (torch 2.6.0, transformers 4.50.3, tokenizers 0.21.4, gguf 0.17.1,
safetensors 0.5.3, numpy 2.2.4) it writes into OUT_DIR:
  weights.txt      every tensor of CONVERTED_FOLDER against transformers' own GGUF loader
                   (from_pretrained(gguf_file=...), which dequantizes with the gguf package and
                   undoes llama.cpp's q/k permutation itself): max |difference| per tensor
  golden.safetensors  transformers' LlamaForCausalLM on the converted folder, float32: the ids
                   of PROMPT, 64 greedy tokens (model.generate, do_sample=False), and the logits
                   of two rows of prompt + greedy (listed in "rows": the prompt's last, the
                   last step's), small enough to commit
  tokens.txt       sha256 and count of the ids the `tokenizers` library gives for --text with
                   the converted tokenizer.json (no special tokens), one line
The check itself is tests/cli/test_gguf.sh --full.
"""
import argparse
import hashlib
import os
import sys

import numpy as np
import torch
from safetensors.numpy import load_file
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

PROMPT = "Once upon a time"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("folder")
    ap.add_argument("out")
    ap.add_argument("--text")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)

    ours = load_file(os.path.join(a.folder, "model.safetensors"))
    theirs = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(os.path.abspath(a.gguf)), gguf_file=os.path.basename(a.gguf), torch_dtype=torch.float32
    ).state_dict()
    worst = 0.0
    with open(os.path.join(a.out, "weights.txt"), "w") as f:
        for name, t in ours.items():
            ref = theirs[name].float().numpy()
            d = float(np.max(np.abs(t.astype(np.float32) - ref))) if t.size else 0.0
            worst = max(worst, d)
            f.write(f"{name}\t{d:.3g}\n")
    print(f"weights: {len(ours)} tensors, max |ours - transformers' GGUF loader| = {worst:.3g}")

    model = AutoModelForCausalLM.from_pretrained(a.folder, torch_dtype=torch.float32).eval()
    tok = Tokenizer.from_file(os.path.join(a.folder, "tokenizer.json"))
    ids = tok.encode(PROMPT, add_special_tokens=True).ids
    x = torch.tensor([ids])
    with torch.no_grad():
        g = model.generate(x, max_new_tokens=64, do_sample=False, eos_token_id=None, pad_token_id=0)
        seq = g[0]
        logits = model(seq[None]).logits[0].float()
    rows = [len(ids) - 1, len(seq) - 2]  # the prompt's last row and the last generated step's
    save_file(
        {
            "prompt_ids": torch.tensor(ids, dtype=torch.int32),
            "greedy_ids": seq[len(ids):].to(torch.int32).contiguous(),
            "rows": torch.tensor(rows, dtype=torch.int32),
            "logits": logits[rows].contiguous(),
        },
        os.path.join(a.out, "golden.safetensors"),
    )
    print("greedy:", tok.decode(seq.tolist()))
    if a.text:
        with open(a.text, "rb") as f:  # bytes: text mode would turn "\r\n" into "\n"
            text = f.read().decode("utf-8")
        ids = tok.encode(text, add_special_tokens=False).ids
        digest = hashlib.sha256(("\n".join(map(str, ids)) + "\n").encode()).hexdigest()
        with open(os.path.join(a.out, "tokens.txt"), "w") as f:
            f.write(f"{digest} {len(ids)}\n")
        print(f"tokens: {len(ids)} ids of {a.text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
