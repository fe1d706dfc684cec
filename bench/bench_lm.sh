#!/usr/bin/env bash
# bench_lm.sh - the Llama runtime benchmark: generates a synthetic Llama folder once
# (bench/gen_synth_ckpt; bf16, by default 8 layers of TinyLlama's width: hidden 2048,
# intermediate 5632, 32 heads, 4 key/value heads, vocab 32000, 0.97 GB), runs bench_lm on it
# (prefill/decode tokens/s and decode weight GB/s against the read bandwidth measured in the same
# run), then the transformers peer bench/bench_lm_torch.py on the same folder when its venv is
# there, passing it bench_lm's bandwidth figures. The default width keeps even the int4 weights
# (318 MB per token) well above this project's machines' last-level cache, so decode streams
# from DRAM. Not a test; figures vary with machine load.
#
# usage: bench/bench_lm.sh [BUILD_DIR]
# env:   CQ_BENCH_LM_CKPT  model folder (default BUILD_DIR/bench/synth-lm, generated if missing or
#                          made with other dimensions)
#        CQ_BENCH_LM_DIMS  gen_synth_ckpt flags (default above)
#        CQ_BENCH_LM_ARGS  flags for both bench_lm and bench_lm_torch.py: --prompt P --decode D --reps R
#                          --threads T --retry K --quiet-wait S (on a shared machine, e.g.
#                          "--retry 1 --quiet-wait 90": wait for quiet, time busy rows again)
#        TORCH_PYTHON      python with torch and transformers (default /root/qvenv/bin/python; "" skips)
set -eu
B=${1:-build/release}
CK=${CQ_BENCH_LM_CKPT:-$B/bench/synth-lm}
DIMS=${CQ_BENCH_LM_DIMS:-"--layers 8 --hidden 2048 --intermediate 5632 --heads 32 --kv-heads 4 --vocab 32000"}
ARGS=${CQ_BENCH_LM_ARGS:-}
PY=${TORCH_PYTHON-/root/qvenv/bin/python}
if [ ! -x "$B/bench/bench_lm" ] || [ ! -x "$B/bench/gen_synth_ckpt" ]; then
    echo "bench_lm.sh: build first (make B=$B $B/bench/bench_lm $B/bench/gen_synth_ckpt)" >&2
    exit 1
fi
if [ -z "${CQ_BENCH_LM_CKPT:-}" ] && { [ ! -f "$CK/config.json" ] || [ "$(cat "$CK/.gen_dims" 2>/dev/null)" != "$DIMS" ]; }; then
    rm -rf "$CK"
    # shellcheck disable=SC2086
    "$B/bench/gen_synth_ckpt" "$CK" $DIMS
    echo "$DIMS" >"$CK/.gen_dims"
fi
cat "$CK"/*.safetensors >/dev/null # page cache: loads read memory, not the disk
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# shellcheck disable=SC2086
"$B/bench/bench_lm" --model "$CK" $ARGS | tee "$log"
if [ -n "$PY" ] && [ -x "$PY" ] && "$PY" -c 'import torch, transformers' 2>/dev/null; then
    bw=$(sed -n 's/.*<!-- read_bw_gbs \(.*\) -->.*/\1/p' "$log")
    echo
    # shellcheck disable=SC2086
    "$PY" bench/bench_lm_torch.py "$CK" --read-bw "$bw" $ARGS
else
    echo
    echo "(transformers peer skipped: no python with torch and transformers at '${PY}')"
fi
