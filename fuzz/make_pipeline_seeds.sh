#!/usr/bin/env bash
# make_pipeline_seeds.sh - writes the seed inputs of fuzz_pipeline.c into fuzz/corpus/pipeline:
# small checkpoint folders packed as the target reads them (an options byte, then per file a
# name index, a 16-bit little-endian length and the bytes). Needs a built cquanto (CQUANTO,
# default build/release/cquanto) for the quantized seeds. Run from the repository root.
set -eu
CQUANTO=${CQUANTO:-build/release/cquanto}
OUT=fuzz/corpus/pipeline
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$OUT"

le() { # N BYTES: N as BYTES little-endian bytes
    local n=$1 k
    for ((k = 0; k < $2; k++)); do printf "\\x$(printf %02x $(((n >> (8 * k)) & 255)))"; done
}
# st FILE "name:DTYPE:dims:nbytes" ...: a safetensors file whose tensors hold a fixed pattern
st() {
    local f=$1 h='{' off=0 sep='' t name dt dims nb
    shift
    for t in "$@"; do
        IFS=: read -r name dt dims nb <<<"$t"
        h="$h$sep\"$name\":{\"dtype\":\"$dt\",\"shape\":[$dims],\"data_offsets\":[$off,$((off + nb))]}"
        off=$((off + nb)) sep=,
    done
    h="$h}"
    while [ $((${#h} % 8)) -ne 0 ]; do h="$h "; done
    { le ${#h} 8; printf '%s' "$h"; for ((k = 0; k < off / 4; k++)); do
          if ((k % 3)); then printf '\x00\x00\xc0\x3f'; else printf '\xcd\xcc\x4c\xbe'; fi; done
      head -c $((off % 4)) /dev/zero; } >"$f"
}
# pack SEED OPTS INDEX:FILE ...: one corpus file (name indices as in fuzz_pipeline.c)
pack() {
    local seed=$1 opts=$2 e i f
    shift 2
    { printf "\\x$(printf %02x "$opts")"
      for e in "$@"; do
          i=${e%%:*} f=${e#*:}
          printf "\\x$(printf %02x "$i")"; le "$(stat -c %s "$f")" 2; cat "$f"
      done; } >"$OUT/$seed"
}

echo '{"model_type": "llama", "hidden_size": 8, "vocab_size": 16}' >"$W/config.json"
st "$W/linear.st" "fc.weight:F32:4,8:128" "fc.bias:F32:4:16" "emb.embed_tokens.weight:F32:16,8:512"
pack linear_int4 1 "0:$W/linear.st" "4:$W/config.json"
pack linear_int8_act 10 "0:$W/linear.st" "4:$W/config.json"
pack linear_hqq_group 97 "0:$W/linear.st"
st "$W/norm.st" "blk.ln.weight:F32:8:32" "blk.ln.bias:F32:8:32" "blk.fc.weight:BF16:8,8:128"
pack norm_bf16_float8 19 "0:$W/norm.st" "4:$W/config.json" "6:$W/config.json"
st "$W/conv.st" "conv.weight:F32:4,2,3,3:288" "conv.bias:F32:4:16" "head.weight:F16:2,16:64"
pack conv_int2 0 "0:$W/conv.st"
st "$W/s1.st" "a.weight:F32:4,8:128"
st "$W/s2.st" "b.weight:F16:8,4:64" "b.bias:F16:8:16"
printf '{"metadata": {"total_size": 208}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors", "b.bias": "model-00002-of-00002.safetensors"}}\n' >"$W/index.json"
pack sharded_int4 1 "1:$W/index.json" "2:$W/s1.st" "3:$W/s2.st" "4:$W/config.json"
# Quantized checkpoints of our own, to be dequantized (and re-quantized: refused).
mkdir -p "$W/lin" && cp "$W/linear.st" "$W/lin/model.safetensors" && cp "$W/config.json" "$W/lin/"
for q in int4 int8 float8; do
    "$CQUANTO" quantize "$W/lin" -o "$W/q_$q" --weights $q --quiet
    pack "quantized_$q" 2 "0:$W/q_$q/model.safetensors" "5:$W/q_$q/quanto_qmap.json" "4:$W/q_$q/config.json"
done
echo "wrote $(ls "$OUT" | wc -l) seeds to $OUT"
