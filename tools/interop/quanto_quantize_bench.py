#!/usr/bin/env python3
"""quanto_quantize_bench.py - the optimum-quanto side of bench/bench_quantize.sh.

Does what a user of optimum-quanto does to quantize a checkpoint on this CPU, timing each step:
load the model (transformers, in its stored dtype), quantize (optimum.quanto.quantize), freeze,
and save (safetensors save_file of the state dict plus quanto_qmap.json). Prints one JSON line
with the seconds per step and the total, so the shell benchmark can compute the ratio against
`cquanto quantize` on the same input.

Environment: tools/interop/requirements.txt (pinned). Run:
    /root/qvenv/bin/python tools/interop/quanto_quantize_bench.py CKPT_DIR OUT_DIR \
        --weights qint4 --optimizer max [--threads N] [--exclude lm_head]
"""
import argparse
import json
import os
import time

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

from optimum.quanto import HqqOptimizer, MaxOptimizer, freeze, quantization_map, quantize


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("out")
    ap.add_argument("--weights", default="qint4")
    ap.add_argument("--optimizer", default="default", choices=["default", "max", "hqq"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--exclude", default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    opt = {"default": None, "max": MaxOptimizer(), "hqq": HqqOptimizer()}[a.optimizer]
    t = {}
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(a.ckpt, torch_dtype="auto", low_cpu_mem_usage=True)
    t["load"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    quantize(model, weights=a.weights, optimizer=opt, exclude=a.exclude)
    t["quantize"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    freeze(model)
    t["freeze"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    os.makedirs(a.out, exist_ok=True)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings and "lm_head.weight" in sd:
        del sd["lm_head.weight"]
    save_file(sd, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(a.out, "quanto_qmap.json"), "w") as f:
        json.dump(quantization_map(model), f, indent=4)
    t["save"] = time.perf_counter() - t3
    t["total"] = time.perf_counter() - t0
    t["threads"] = torch.get_num_threads()
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in t.items()}))


if __name__ == "__main__":
    main()
