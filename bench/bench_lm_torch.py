#!/usr/bin/env python3
"""bench_lm_torch.py - the transformers peer of bench/bench_lm.c: the same Hugging Face Llama
folder loaded with LlamaForCausalLM in bfloat16 and in float32, and in bfloat16 quantized by
optimum-quanto (quantize(weights=qint8 / qint4, exclude="lm_head"), freeze: what a quanto user
runs on a CPU), at 1 thread and at all threads
(torch.set_num_threads), timing the same work: a prefill of P pseudo-random token ids (the same
splitmix64 stream, seed 42, as bench_lm) with use_cache=True and logits_to_keep=1, then D greedy
single-token decode steps through past_key_values; median of R repetitions. Prints a markdown
table matching bench_lm's. Not a test.

usage: bench_lm_torch.py MODEL_DIR [--prompt P] [--decode D] [--reps R] [--threads T] [--retry K]
                         [--quiet-wait S] [--dtypes bfloat16,float32] [--read-bw "1=15.7 2=30.6"]
--read-bw takes bench_lm's read-bandwidth line (GB/s per thread count) for the % column;
"others' CPUs", --retry and --quiet-wait are bench_lm's (CPUs other processes kept busy during the timing).
"""
import argparse
import os
import resource
import statistics
import sys
import time

import torch
from transformers import LlamaForCausalLM

M64 = (1 << 64) - 1


def splitmix64_ids(n, vocab, seed=42):
    s, out = seed, []
    for _ in range(n):
        s = (s + 0x9E3779B97F4A7C15) & M64
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        out.append((z ^ (z >> 31)) % vocab)
    return out


def linear_weight_bytes(model):
    """Bytes of every Linear's weight (the layers' and the head): what one decode step streams.
    A quanto weight counts its data and scale (and shift) tensors."""
    total = 0
    for m in model.modules():
        if not isinstance(m, torch.nn.Linear):
            continue
        w = m.weight
        parts = [getattr(w, k) for k in ("_data", "_scale", "_shift") if isinstance(getattr(w, k, None), torch.Tensor)]
        if parts and hasattr(parts[0], "_data"):  # packed int4 data
            parts[0] = parts[0]._data
        total += sum(p.numel() * p.element_size() for p in parts) if parts else w.numel() * w.element_size()
    return total


def machine_busy_s():
    """CPU-seconds the machine has been busy (/proc/stat: user nice system irq softirq steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def self_cpu_s():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def wait_quiet(max_s):
    """As bench_lm --quiet-wait: up to max_s seconds until others keep at most 0.2 CPUs busy."""
    waited = 0.0
    while waited < max_s:
        b0, s0 = machine_busy_s(), self_cpu_s()
        time.sleep(0.5)
        waited += 0.5
        if (machine_busy_s() - b0 - (self_cpu_s() - s0)) / 0.5 <= 0.2:
            return


def run(model, ids, decode, reps, quiet_wait=0.0):
    """Median prefill and decode seconds, and the CPUs other processes kept busy meanwhile."""
    wait_quiet(quiet_wait)
    busy0, self0, w0 = machine_busy_s(), self_cpu_s(), time.perf_counter()
    tp, td = [], []
    with torch.inference_mode():
        for _ in range(reps):
            a = time.perf_counter()
            out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
            b = time.perf_counter()
            past = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(decode):
                out = model(input_ids=nxt, past_key_values=past, use_cache=True)
                past = out.past_key_values
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            e = time.perf_counter()
            tp.append(b - a)
            td.append(e - b)
    others = (machine_busy_s() - busy0 - (self_cpu_s() - self0)) / (time.perf_counter() - w0)
    return statistics.median(tp), statistics.median(td), max(others, 0.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--dtypes", default="bfloat16,float32")
    ap.add_argument("--read-bw", default="")
    ap.add_argument("--retry", type=int, default=0)
    ap.add_argument("--quiet-wait", type=float, default=0.0)
    ap.add_argument("--quanto", default="qint8,qint4",
                    help="optimum-quanto weight qtypes to run on the bfloat16 model ('' for none)")
    a = ap.parse_args()
    bw = {int(k): float(v) for k, v in (kv.split("=") for kv in a.read_bw.split())}
    threads = [1] + ([a.threads] if a.threads > 1 else [])
    print(f"## transformers peer: {a.model}\n")
    print(f"torch {torch.__version__}, transformers {__import__('transformers').__version__}, "
          f"oneDNN (mkldnn) {'available' if torch.backends.mkldnn.is_available() else 'absent'}; "
          f"prefill {a.prompt} ids (logits_to_keep=1), {a.decode} greedy decode steps with past_key_values, "
          f"median of {a.reps}.\n")
    print("| dtype | threads | load s | prefill tok/s | decode tok/s | weight MB/token | decode weight GB/s | % of read BW | others' CPUs |")
    print("|---|---|---|---|---|---|---|---|---|")
    sys.stdout.flush()
    runs = [(name, getattr(torch, name), None) for name in a.dtypes.split(",") if name]
    if a.quanto:
        import optimum.quanto as oq  # what a quanto user runs on a CPU today
        runs += [(f"bfloat16 + optimum-quanto {q}", torch.bfloat16, getattr(oq, q)) for q in a.quanto.split(",")]
    for name, dtype, qtype in runs:
        for t in threads:
            torch.set_num_threads(t)
            t0 = time.perf_counter()
            model = LlamaForCausalLM.from_pretrained(a.model, torch_dtype=dtype)
            model.eval()
            if qtype is not None:
                from optimum.quanto import freeze, quantize
                quantize(model, weights=qtype, exclude="lm_head")
                freeze(model)
            load_s = time.perf_counter() - t0
            ids = torch.tensor([splitmix64_ids(a.prompt, model.config.vocab_size)], dtype=torch.long)
            wb = linear_weight_bytes(model)
            tp, td, others = run(model, ids, a.decode, a.reps, a.quiet_wait)
            for _ in range(a.retry):  # as bench_lm --retry: time again while the machine is busy
                if others <= 0.2:
                    break
                r = run(model, ids, a.decode, a.reps, a.quiet_wait)
                if r[2] < others:
                    tp, td, others = r
            dec = a.decode / td
            gbs = wb * dec * 1e-9
            pct = f"{100 * gbs / bw[t]:.0f}%" if t in bw else "-"
            print(f"| {name} | {t} | {load_s:.2f} | {a.prompt / tp:.1f} | {dec:.2f} | {wb * 1e-6:.1f} | {gbs:.2f} | {pct} | {others:.2f} |")
            sys.stdout.flush()
            del model


if __name__ == "__main__":
    main()
