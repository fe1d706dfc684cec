#!/usr/bin/env bash
# make_gguf_fixtures.sh - regenerates tests/data/gguf/: data/stories260K converted to GGUF by
# llama.cpp's own converter and quantizer, and llama.cpp's outputs on each file as the reference
# (greedy generation, perplexity). Run with --help for the options.
set -eu

usage() {
    cat <<'EOF'
usage: tools/make_gguf_fixtures.sh [--out DIR] [--threads N] [--no-full-ppl] [--k-quants]

With the llama.cpp peer (tools/build-llama-cpp.sh, built first if needed):
  1. copies data/stories260K (config.json, model.safetensors) to a temp folder named stories260K
     and adds tokenizer.model rebuilt from tok512.bin (tools/tok512_to_spm.py);
  2. convert_hf_to_gguf.py --outtype f32 / f16 / bf16   -> stories260K-F32/F16/BF16.gguf;
  3. llama-quantize F32 -> Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K; a K type is
     kept only if at least one tensor really is a K block (stories260K's rows are 64 and 172
     wide, none a multiple of 256, so every K type falls back to legacy types and none is kept);
  4. per kept file: cq-greedy (64 tokens, "Once upon a time", greedy) and llama-perplexity
     (-c 128 -b 128, 20 chunks with the per-chunk values, and the whole file unless
     --no-full-ppl; not for pad256, 8 times the work) on data/wikitext-2/wiki.test.raw;
  5. writes DIR/llama_cpp_reference.json and DIR/README.md.
--k-quants also builds stories260K-pad256: stories260K zero-padded to widths of 256 (hidden 256,
32 heads of 8, 16 kv heads, intermediate 256; norms halved and eps/4, so its float outputs equal
stories260K's) and quantizes it to the K types, which then really are K blocks.
DIR defaults to tests/data/gguf. KEEP_TMP=1 keeps the temp folder (logs, F32 sources). PYTHON (default /root/qvenv/bin/python, else python3) needs
torch, numpy, safetensors, sentencepiece (convert_hf_to_gguf.py's imports).
EOF
}

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/tests/data/gguf"
threads=2
full_ppl=1
kquants=0
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --out) out=${2:?--out needs a folder}; shift 2 ;;
        --threads|-t) threads=${2:?--threads needs a number}; shift 2 ;;
        --no-full-ppl) full_ppl=0; shift ;;
        --k-quants) kquants=1; shift ;;
        *) echo "make_gguf_fixtures.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
py=${PYTHON:-}
[ -n "$py" ] || { [ -x /root/qvenv/bin/python ] && py=/root/qvenv/bin/python || py=python3; }

bin=$(bash "$root/tools/build-llama-cpp.sh" | tail -1)
src="$(dirname "$(dirname "$bin")")/src"
[ -f "$src/convert_hf_to_gguf.py" ] || { echo "make_gguf_fixtures.sh: no convert_hf_to_gguf.py in $src" >&2; exit 1; }
export PYTHONPATH="$src/gguf-py${PYTHONPATH:+:$PYTHONPATH}"
text="$root/data/wikitext-2/wiki.test.raw"
prompt="Once upon a time"

work=$(mktemp -d)
[ -n "${KEEP_TMP:-}" ] && echo "temp folder: $work (kept)" >&2 || trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$work/stories260K" "$work/res"
cp "$root/data/stories260K/config.json" "$root/data/stories260K/model.safetensors" "$work/stories260K/"
"$py" "$root/tools/tok512_to_spm.py" "$root/data/stories260K/tok512.bin" -o "$work/stories260K/tokenizer.model"

log() { echo "== $*" >&2; }
run() { printf '%q ' "$@" | sed "s|$root/||g; s|$bin/|\$BIN/|g; s|$src/|\$SRC/|g; s|$work/|\$TMP/|g; s| $||" >> "$work/commands.txt"; echo >> "$work/commands.txt"; "$@"; }

kept=""
convert() {  # MODEL-FOLDER OUTTYPE TYPE
    log "convert $1 $3"
    run "$py" "$src/convert_hf_to_gguf.py" "$work/$1" --outtype "$2" --outfile "$work/$1-$3.gguf" \
        > "$work/res/$1-$3.convert.log" 2>&1 || { tail -5 "$work/res/$1-$3.convert.log" >&2; return 1; }
    kept="$kept $1-$3"
}
quantize() {  # name TYPE
    log "quantize $1 $2"
    run "$bin/llama-quantize" "$work/$1-F32.gguf" "$work/$1-$2.gguf" "$2" "$threads" \
        > "$work/res/$1-$2.quantize.log" 2>&1 || { tail -5 "$work/res/$1-$2.quantize.log" >&2; return 1; }
    case $2 in
        *_K*)  # keep a K type only when some tensor really is a K block
            if "$py" - "$work/$1-$2.gguf" <<'EOF'
import sys, gguf
r = gguf.GGUFReader(sys.argv[1])
sys.exit(0 if any(t.tensor_type.name.endswith("_K") for t in r.tensors) else 1)
EOF
            then kept="$kept $1-$2"; else echo "$1 $2" >> "$work/res/dropped.txt"; fi ;;
        *) kept="$kept $1-$2" ;;
    esac
}

convert stories260K f32 F32
convert stories260K f16 F16
convert stories260K bf16 BF16 || echo "stories260K BF16 convert-failed" >> "$work/res/dropped.txt"
for t in Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K; do
    quantize stories260K "$t" || echo "stories260K $t quantize-failed" >> "$work/res/dropped.txt"
done

if [ $kquants = 1 ]; then
    log "stories260K-pad256"
    mkdir -p "$work/stories260K-pad256"
    cp "$work/stories260K/tokenizer.model" "$work/stories260K-pad256/"
    "$py" - "$work/stories260K" "$work/stories260K-pad256" <<'EOF'
# Zero-pads stories260K so every matrix's row length is 256: hidden 64 -> 256, heads 8 -> 32
# (head_dim 8 kept, the new heads have zero q/k/v and zero o-columns), kv heads 4 -> 16 (head h
# still reads kv head h // 2), intermediate 172 -> 256 (zero gate/up rows and down columns).
# RMSNorm over 256 with 192 zeros: mean(x^2) is a quarter, so the norm weights are halved and
# eps divided by 4 (exact in binary): the padded model computes stories260K's function.
import json, os, sys
import numpy as np
from safetensors.numpy import load_file, save_file
s, d = sys.argv[1:]
cfg = json.load(open(os.path.join(s, "config.json")))
w = load_file(os.path.join(s, "model.safetensors"))
H, I, nh, nkv = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
hd = H // nh
HP, IP = 256, 256
nhp, nkvp = HP // hd, HP // hd // (nh // nkv)
def pad(a, shape):
    z = np.zeros(shape, dtype=np.float32)
    z[tuple(slice(0, n) for n in a.shape)] = a
    return z
o = {}
for k, v in w.items():
    v = v.astype(np.float32)
    if k.endswith("norm.weight"):
        o[k] = pad(v / 2, (HP,))
    elif k.endswith("embed_tokens.weight") or k == "lm_head.weight":
        o[k] = pad(v, (v.shape[0], HP))
    elif k.endswith(("q_proj.weight", "o_proj.weight")):
        o[k] = pad(v, (HP, HP))
    elif k.endswith(("k_proj.weight", "v_proj.weight")):
        o[k] = pad(v, (nkvp * hd, HP))
    elif k.endswith(("gate_proj.weight", "up_proj.weight")):
        o[k] = pad(v, (IP, HP))
    elif k.endswith("down_proj.weight"):
        o[k] = pad(v, (HP, IP))
    else:
        sys.exit("unexpected tensor " + k)
cfg.update(hidden_size=HP, intermediate_size=IP, num_attention_heads=nhp,
           num_key_value_heads=nkvp, head_dim=hd, rms_norm_eps=float(np.float32(cfg["rms_norm_eps"]) / 4))
json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2)
save_file(o, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
EOF
    convert stories260K-pad256 f32 F32
    for t in Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K; do
        quantize stories260K-pad256 "$t" || echo "stories260K-pad256 $t quantize-failed" >> "$work/res/dropped.txt"
    done
fi

for f in $kept; do
    g="$work/$f.gguf"
    log "reference $f"
    run "$bin/cq-greedy" -m "$g" -t "$threads" -n 64 "$prompt" > "$work/res/$f.gen" 2> "$work/res/$f.gen.err"
    run "$bin/llama-perplexity" -m "$g" -f "$text" -c 128 -b 128 --chunks 20 -t "$threads" \
        > "$work/res/$f.ppl20" 2> "$work/res/$f.ppl20.err"
    if [ $full_ppl = 1 ] && [ "${f#stories260K-pad256}" = "$f" ]; then
        run "$bin/llama-perplexity" -m "$g" -f "$text" -c 128 -b 128 -t "$threads" \
            > /dev/null 2> "$work/res/$f.pplfull.err"
    fi
done

# stories260K-pad256-F32 is only the source of its K types: not kept
mkdir -p "$out"
for f in $kept; do
    case $f in stories260K-pad256-F32) continue ;; esac
    cp "$work/$f.gguf" "$out/$f.gguf.tmp" && mv "$out/$f.gguf.tmp" "$out/$f.gguf"
done

llver=$("$bin/llama-bench" --version 2>&1 | head -1)
commit=$(cat "$src/LLAMA_CPP_COMMIT")
ggufpy=$(sed -n 's/^version = "\(.*\)"/\1/p' "$src/gguf-py/pyproject.toml")
"$py" - "$work" "$out" "$kept" "$commit" "$llver" "$ggufpy" "$threads" "$prompt" <<'EOF'
import hashlib, json, os, re, sys
import gguf
work, out, kept, commit, llver, ggufpy, threads, prompt = sys.argv[1:]
kept = kept.split()
res = os.path.join(work, "res")
def rd(p):
    return open(p, encoding="utf-8", errors="replace").read() if os.path.exists(p) else ""
def final(err):
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", err)
    return (float(m.group(1)), float(m.group(2))) if m else (None, None)
refs, dropped = [], []
for line in rd(os.path.join(res, "dropped.txt")).splitlines():
    dropped.append(line.split())
for f in kept:
    g = os.path.join(work, f + ".gguf")
    r = gguf.GGUFReader(g)
    types = {t.name: t.tensor_type.name for t in r.tensors}
    counts = {}
    for v in types.values():
        counts[v] = counts.get(v, 0) + 1
    gen = rd(os.path.join(res, f + ".gen"))
    pid = [int(x) for x in re.search(r"^prompt_ids:(.*)$", gen, re.M).group(1).split()]
    ids = [int(x) for x in re.search(r"^ids:(.*)$", gen, re.M).group(1).split()]
    txt = gen.split("\ntext: ", 1)[1][:-1] if "\ntext: " in gen else ""
    chunks = [float(x) for x in re.findall(r"\[\d+\]([0-9.]+)", rd(os.path.join(res, f + ".ppl20")))]
    p20, e20 = final(rd(os.path.join(res, f + ".ppl20.err")))
    pf, ef = final(rd(os.path.join(res, f + ".pplfull.err")))
    m = re.search(r"calculating perplexity over (\d+) chunks", rd(os.path.join(res, f + ".pplfull.err")))
    fb = len(re.findall(r"falling back", rd(os.path.join(res, f + ".quantize.log"))))
    name, typ = f.rsplit("-", 1)
    refs.append({
        "file": f + ".gguf" if not f.endswith("pad256-F32") else None,
        "model": name, "type": typ,
        "bytes": os.path.getsize(g),
        "sha256": hashlib.sha256(open(g, "rb").read()).hexdigest(),
        "tensor_types": types, "tensor_type_counts": counts,
        "quantize_fallbacks": fb,
        "generate": {"prompt": prompt, "prompt_ids": pid, "n_predict": 64, "ids": ids, "text": txt,
                     "stop": re.search(r"^stop: (\w+)$", gen, re.M).group(1)},
        "perplexity_20": {"ctx": 128, "chunks": len(chunks), "ppl": p20, "ppl_err": e20, "per_chunk": chunks},
        "perplexity_full": {"ctx": 128, "chunks": int(m.group(1)) if m else None, "ppl": pf, "ppl_err": ef},
    })
cmds = open(os.path.join(work, "commands.txt")).read().splitlines()
doc = {
    "llama_cpp": {"source": "llama-cpp-python 0.3.36 sdist (PyPI), vendor/llama.cpp", "commit": commit,
                  "version": llver, "gguf_py": ggufpy, "compiler": "clang-16, Release, GGML_NATIVE=ON, OpenMP"},
    "text": "data/wikitext-2/wiki.test.raw",
    "threads": int(threads),
    "dropped": [" ".join(d) for d in dropped],
    "fixtures": refs,
}
with open(os.path.join(out, "llama_cpp_reference.json.tmp"), "w", encoding="utf-8") as fh:
    json.dump(doc, fh, indent=1, ensure_ascii=False)
    fh.write("\n")
os.replace(os.path.join(out, "llama_cpp_reference.json.tmp"), os.path.join(out, "llama_cpp_reference.json"))
with open(os.path.join(work, "commands.md"), "w") as fh:
    fh.write("\n".join(cmds) + "\n")
rows = []
for x in refs:
    c = ", ".join("%s %d" % kv for kv in sorted(x["tensor_type_counts"].items()))
    rows.append("| %s | %s | %d | %s | %.4f ± %.4f | %s | %d |" % (
        x["file"] or "(%s-%s, not kept)" % (x["model"], x["type"]), x["type"], x["bytes"], c,
        x["perplexity_20"]["ppl"], x["perplexity_20"]["ppl_err"],
        "%.4f ± %.5f" % (x["perplexity_full"]["ppl"], x["perplexity_full"]["ppl_err"]) if x["perplexity_full"]["ppl"] else "-",
        x["quantize_fallbacks"]))
with open(os.path.join(work, "table.md"), "w") as fh:
    fh.write("\n".join(rows) + "\n")
EOF

# README: fixed text, then the generated table and the exact commands
{
cat <<EOF
# GGUF fixtures: stories260K through llama.cpp

Generated by \`tools/make_gguf_fixtures.sh$([ $kquants = 1 ] && echo ' --k-quants')\`; do not edit by hand. (Other files in this
folder, such as \`smollm2_*\`, are not written by that script.)

**Source model**: \`data/stories260K\` (llama2.c's stories260K as a Hugging Face folder, MIT) with
a SentencePiece \`tokenizer.model\` rebuilt from its \`tok512.bin\` by \`tools/tok512_to_spm.py\`
(the converter cannot read llama2.c's format; the rebuilt model encodes as llama2.c does).

**llama.cpp**: commit \`$commit\` ($llver), the copy vendored in the
llama-cpp-python 0.3.36 sdist from PyPI (sha256
\`832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e\`), built by
\`tools/build-llama-cpp.sh\` (clang-16, Release, GGML_NATIVE=ON, OpenMP) on $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //');
converter \`convert_hf_to_gguf.py\` with that tree's \`gguf-py\` ($ggufpy) on PYTHONPATH.
Greedy generation is \`cq-greedy\` (built by the same script: libllama's greedy sampler, as
\`llama-simple\`, printing the token ids too; same text as \`llama-simple -n 64\`).

**Files**: F32/F16/BF16 from the converter; the others \`llama-quantize\` from F32 with llama.cpp's
default mixture for the type. Its choices on this model: \`token_embd.weight\` (tied, so also the
output) becomes Q8_0 in every quantized file (the output's Q6_K needs rows of 256, it falls back
to Q8_0), and \`ffn_down\` (rows of 172, not a multiple of 32) stays F16 ("must use F16 due to
unusual shape"); norms stay F32. So Q8_0..Q5_1 hold the named type in the other 35 matrices.
**K types are impossible on stories260K**: no row is a multiple of 256, every K tensor falls back
(Q2_K to Q4_0, Q3_K_M to Q4_0/Q5_0/Q5_1, Q4_K_M to Q5_0/Q8_0, Q5_K_M to Q5_1/Q8_0, Q6_K to Q8_0),
so those files hold no K block and are not kept.
EOF
if [ $kquants = 1 ]; then cat <<'EOF'
The K types are covered by **stories260K-pad256**: stories260K zero-padded so every row is 256
wide (hidden 256, 32 heads of 8 of which 24 are zero, 16 kv heads, intermediate 256; norm weights
halved and eps / 4, so the float model computes stories260K's function exactly up to rounding:
its F32 reference below matches stories260K-F32's), quantized from its F32 GGUF (not kept).
EOF
fi
cat <<'EOF'

**Reference outputs** (`llama_cpp_reference.json`, one entry per file): sha256, every tensor's
GGUF type, `llama-quantize`'s fallback count; greedy generation of 64 tokens after
"Once upon a time" (BOS added; `prompt_ids`, generated `ids`, `text` = the pieces of the
generated ids); llama-perplexity on `data/wikitext-2/wiki.test.raw` at context 128
(`max_position_embeddings` is 512): the first 20 chunks with every chunk's running estimate
(`per_chunk`, as llama-perplexity prints them: `[i]` is the PPL over chunks 1..i) and the final
estimate with its ±, and the whole file. Each chunk is 128 tokens starting with BOS, from an
empty cache; the predictions of its second half are scored (63 per chunk, llama.cpp's rule).
`-b 128` makes one chunk per pass; with the default batch
(16 chunks per pass) llama.cpp's own F32 result moves in the 5th digit (121.6863 against
121.6747 over 20 chunks): the size of the change a different float order makes.

| file | type | bytes | tensor types | PPL, 20 chunks | PPL, whole file | fallbacks |
|---|---|---|---|---|---|---|
EOF
cat "$work/table.md"
if [ -s "$work/res/dropped.txt" ]; then
    echo
    echo "Not kept (no K block after fallback, or failed): $(awk '{print $1"-"$2}' "$work/res/dropped.txt" | tr '\n' ' ')"
fi
cat <<EOF

## Commands

\`\$BIN\` is the folder tools/build-llama-cpp.sh prints, \`\$SRC\` the llama.cpp tree beside it,
\`\$TMP\` the temp folder (\`\$TMP/stories260K\` = config.json, model.safetensors and
tokenizer.model), PYTHONPATH=\$SRC/gguf-py, threads $threads.

\`\`\`sh
EOF
cat "$work/commands.md"
echo '```'
} > "$out/README.md.tmp"
mv "$out/README.md.tmp" "$out/README.md"
log "wrote $(echo $kept | wc -w) references to $out/llama_cpp_reference.json"
ls -l "$out" >&2
