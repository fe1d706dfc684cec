#!/usr/bin/env bash
# test_quantize.sh - `cquanto quantize`, `dequantize` and `report` end to end on the bundled models
# (data/stories260K, data/lenet_mnist.safetensors) and on the optimum-quanto fixtures
# (tests/data/interop): outputs, exit codes, messages, no partial output, thread invariance.
# Usage errors exit 2; contradictory options and runtime failures exit 1.
. "$(dirname "$0")/lib.sh"

S=data/stories260K
I=tests/data/interop

# ---- the round trip on stories260K, every qtype ---------------------------------------------------
for q in int2 int4 int8 float8 float8_e5m2; do
    check "quantize $q" "$CQUANTO" quantize "$S" -o "$T/s_$q" --weights "$q"
    expect "$q: summary line" grep -q "35 modules quantized" "$T/out"
    for f in model.safetensors quanto_qmap.json config.json tok512.bin; do
        expect "$q: $f written" [ -s "$T/s_$q/$f" ]
    done
    expect "$q: no temp folder left" [ -z "$(ls -A "$T" | grep '\.tmp-')" ]
    check "dequantize $q" "$CQUANTO" dequantize "$T/s_$q" -o "$T/s_$q.safetensors"
    check "report $q" "$CQUANTO" report "$S" "$T/s_$q"
    expect "$q: report lists 35 modules" [ "$(grep -c '^model\.layers\.' "$T/out")" -eq 35 ]
    expect "$q: report has the overall line" grep -q "^overall: SNR" "$T/out"
    check "inspect $q" "$CQUANTO" inspect "$T/s_$q"
done
expect "config.json: transformers QuantoConfig" grep -q '"quant_method": "quanto"' "$T/s_int4/config.json"
expect "config.json: weights int4" grep -q '"weights": "int4"' "$T/s_int4/config.json"
expect "qmap: quanto names" grep -q '"weights": "qint4"' "$T/s_int4/quanto_qmap.json"
expect "float8_e5m2: no QuantoConfig spelling, config.json left without one" \
    bash -c "! grep -q quantization_config '$T/s_float8_e5m2/config.json'"
# The worst modules come first in the report.
"$CQUANTO" report "$S" "$T/s_int2" >"$T/rep"
expect "report: worst first" bash -c "awk '/^model/ {print \$5}' '$T/rep' | sort -g -c"

# ---- --plot ---------------------------------------------------------------------------------------
check "report --plot" "$CQUANTO" report "$S" "$T/s_int4" --plot "$T/snr.svg"
expect "svg written" grep -q "<svg" "$T/snr.svg"
expect "svg has 35 bars" [ "$(grep -c '<title>' "$T/snr.svg")" -eq 35 ]

# ---- --dry-run: the plan, nothing written -------------------------------------------------------
check "dry run" "$CQUANTO" quantize "$S" -o "$T/dry" --weights int4 --dry-run
expect "dry run writes nothing" [ ! -e "$T/dry" ]
expect "plan: embedding skipped" grep -q "model.embed_tokens .*skip (embedding)" "$T/out"
expect "plan: q_proj quantized per channel" grep -q "model.layers.0.self_attn.q_proj .*quantize *qint4 *channel" "$T/out"
expect "plan: totals" grep -q "35 of 36 candidate modules quantized to qint4" "$T/out"
check "dry run with include" "$CQUANTO" quantize "$S" --weights int8 --dry-run --include '*.mlp.*' --exclude '*down_proj'
expect "include/exclude: 10 modules" grep -q "10 of 36 candidate modules" "$T/out"

# ---- LeNet: a bare file with Conv2d and Linear layers ---------------------------------------------
check "lenet int8" "$CQUANTO" quantize data/lenet_mnist.safetensors -o "$T/lenet" --weights int8
check "lenet dequantize" "$CQUANTO" dequantize "$T/lenet" -o "$T/lenet.safetensors"
check "lenet report" "$CQUANTO" report data/lenet_mnist.safetensors "$T/lenet"
check "lenet int4 grouped conv shapes recorded" "$CQUANTO" quantize data/lenet_mnist.safetensors -o "$T/lenet4" --weights int4
check "lenet int4 dequantize without --like" "$CQUANTO" dequantize "$T/lenet4" -o "$T/lenet4.safetensors"

# ---- optimum-quanto's own checkpoints load (interop direction b) ---------------------------------
check "inspect quanto's int4" "$CQUANTO" inspect "$I/stories_int4"
check "dequantize quanto's int4" "$CQUANTO" dequantize "$I/stories_int4" -o "$T/q4.safetensors"
check "report on quanto's int4" "$CQUANTO" report "$S" "$I/stories_int4"
check "dequantize quanto's tiny int4 with --like" "$CQUANTO" dequantize "$I/tiny_bf16_int4" -o "$T/t4.safetensors" \
    --like "$I/tiny_bf16.safetensors"
check_rc "tiny int4 without --like: shape unknown" 1 "$CQUANTO" dequantize "$I/tiny_bf16_int4" -o "$T/t4b.safetensors"
expect "  ...says to use --like" grep -q -- "--like" "$T/err"
expect "  ...and writes nothing" [ ! -e "$T/t4b.safetensors" ]
# A grouped Conv2d's codes are the bytes of a Linear's: (6,32,3,3) must not come back as (6,288).
check_rc "grouped Conv2d without --like: rank unknown" 1 "$CQUANTO" dequantize "$I/conv_f32_int4" -o "$T/g4.safetensors"
expect "  ...one line naming the module and --like" \
    bash -c "[ \$(wc -l <'$T/err') -eq 1 ] && grep -q 'grouped: .*--like' '$T/err'"
expect "  ...and writes nothing" [ -z "$(ls -A "$T" | grep 'g4\.safetensors')" ]
check "grouped Conv2d with --like" "$CQUANTO" dequantize "$I/conv_f32_int4" -o "$T/g4.safetensors" \
    --like "$I/conv_f32.safetensors"
"$CQUANTO" inspect "$T/g4.safetensors" >"$T/g4.txt" 2>&1
expect "  ...gives [6, 32, 3, 3]" grep -q "grouped.weight .*\[6, 32, 3, 3\]" "$T/g4.txt"
check "dequantize quanto's HQQ Conv2d ((O,I,kh,1) shifts)" "$CQUANTO" dequantize "$I/conv_f32_int4_hqq" \
    -o "$T/c4.safetensors" --like "$I/conv_f32.safetensors"
check "report on quanto's HQQ Conv2d" "$CQUANTO" report "$I/conv_f32.safetensors" "$I/conv_f32_int4_hqq"
check "report on quanto's tiny float8" "$CQUANTO" report "$I/tiny_bf16.safetensors" "$I/tiny_bf16_float8"

# ---- the same bytes for any thread count ------------------------------------------------------------
for t in 1 2 3; do
    check "threads $t" "$CQUANTO" quantize "$S" -o "$T/thr$t" --weights int4 --threads "$t"
done
expect "threads 1 = 2" cmp -s "$T/thr1/model.safetensors" "$T/thr2/model.safetensors"
expect "threads 1 = 3" cmp -s "$T/thr1/model.safetensors" "$T/thr3/model.safetensors"

# ---- existing output ------------------------------------------------------------------------------
check_rc "existing OUT refused" 1 "$CQUANTO" quantize "$S" -o "$T/s_int4" --weights int4
expect "  ...says --force" grep -q -- "--force" "$T/err"
check "--force replaces it" "$CQUANTO" quantize "$S" -o "$T/s_int4" --weights int8 --force
expect "  ...now int8" grep -q '"weights": "qint8"' "$T/s_int4/quanto_qmap.json"
check_rc "dequantize onto an existing file" 1 "$CQUANTO" dequantize "$T/s_int2" -o "$T/s_int2.safetensors"

# ---- usage errors: exit 2 -------------------------------------------------------------------------
check_rc "no arguments" 2 "$CQUANTO" quantize
check_rc "missing --weights" 2 "$CQUANTO" quantize "$S" -o "$T/x"
check_rc "unknown qtype" 2 "$CQUANTO" quantize "$S" -o "$T/x" --weights int3
expect "  ...names it" grep -q "int3" "$T/err"
check_rc "e4m3fnuz cannot be stored" 2 "$CQUANTO" quantize "$S" -o "$T/x" --weights float8_e4m3fnuz
check_rc "activations int4" 2 "$CQUANTO" quantize "$S" -o "$T/x" --weights int8 --activations int4
check_rc "unknown option" 2 "$CQUANTO" quantize "$S" -o "$T/x" --weights int8 --bogus
check_rc "missing -o" 2 "$CQUANTO" quantize "$S" --weights int8
check_rc "bad --threads" 2 "$CQUANTO" quantize "$S" -o "$T/x" --weights int8 --threads 0
check_rc "bad --group-size" 2 "$CQUANTO" quantize "$S" -o "$T/x" --weights int4 --group-size -3
check_rc "two inputs" 2 "$CQUANTO" quantize "$S" "$S" -o "$T/x" --weights int8
check_rc "report needs two checkpoints" 2 "$CQUANTO" report "$S"
check_rc "dequantize needs -o" 2 "$CQUANTO" dequantize "$T/s_int2"
check "quantize --help" "$CQUANTO" quantize --help
expect "  ...to stdout" grep -q "usage: cquanto quantize" "$T/out"
expect "nothing was written by the usage errors" [ ! -e "$T/x" ]

# ---- contradictory options and bad inputs: exit 1, a clear message, nothing written -------------
fails() { # NAME FRAGMENT CMD...: exit 1, FRAGMENT on stderr, no $T/x
    local n=$1 frag=$2; shift 2
    check_rc "$n" 1 "$@"
    expect "$n: says '$frag'" grep -qF -- "$frag" "$T/err"
    expect "$n: nothing at OUT" [ ! -e "$T/x" ]
    expect "$n: no temp folder" [ -z "$(ls -A "$T" | grep '\.x\.tmp-')" ]
}
fails "group size with int8" "conflicting options" "$CQUANTO" quantize "$S" -o "$T/x" --weights int8 --group-size 64
fails "absmax with int4" "conflicting options" "$CQUANTO" quantize "$S" -o "$T/x" --weights int4 --optimizer absmax
fails "hqq with int8" "conflicting options" "$CQUANTO" quantize "$S" -o "$T/x" --weights int8 --optimizer hqq
fails "include = exclude" "conflicting options" "$CQUANTO" quantize "$S" -o "$T/x" --weights int8 --include '*' --exclude '*'
fails "empty include" "empty" "$CQUANTO" quantize "$S" -o "$T/x" --weights int8 --include ''
fails "include matching nothing" "match no quantizable module" "$CQUANTO" quantize "$S" -o "$T/x" --weights int8 --include 'nothing.*'
fails "group size not dividing" "does not divide" "$CQUANTO" quantize "$S" -o "$T/x" --weights int4 --group-size 48
fails "missing input" "no such file" "$CQUANTO" quantize "$T/no-such-model" -o "$T/x" --weights int8
fails "already quantized" "already quantized" "$CQUANTO" quantize "$I/stories_int4" -o "$T/x" --weights int8

# A sharded folder with a missing shard, a corrupt shard, an index naming a missing file.
mkdir -p "$T/sh"
cp "$S/config.json" "$T/sh/"
cp "$S/model.safetensors" "$T/sh/model-00001-of-00001.safetensors"
printf '{"metadata": {"total_size": 0}, "weight_map": {"model.norm.weight": "model-00001-of-00002.safetensors"}}\n' \
    >"$T/sh/model.safetensors.index.json"
fails "index naming a missing file" "model-00001-of-00002.safetensors" "$CQUANTO" quantize "$T/sh" -o "$T/x" --weights int8
head -c 50000 "$S/model.safetensors" >"$T/sh/model-00001-of-00002.safetensors"
fails "corrupt (truncated) shard" "model-00001-of-00002.safetensors" "$CQUANTO" quantize "$T/sh" -o "$T/x" --weights int8

# A weight in a dtype quantization does not take (F64), via a hand-made safetensors file.
hdr='{"fc.weight":{"dtype":"F64","shape":[2,4],"data_offsets":[0,64]}}'
while [ $(( ${#hdr} % 8 )) -ne 0 ]; do hdr="$hdr "; done
{ printf "$(printf '\\x%02x' $(( ${#hdr} & 255 )) $(( (${#hdr} >> 8) & 255 )) 0 0 0 0 0 0)"; printf '%s' "$hdr"; head -c 64 /dev/zero; } >"$T/f64.safetensors"
fails "unsupported dtype" "F64" "$CQUANTO" quantize "$T/f64.safetensors" -o "$T/x" --weights int8
fails "report against the wrong model" "no tensor" "$CQUANTO" report data/lenet_mnist.safetensors "$T/s_int2"

# ---- an interrupted run (SIGINT) leaves nothing at OUT ----------------------------------------
# A 32 MB bf16 file of finite values (every byte mapped into 0x3c-0x3f / 0xbc-0xbf), quantized with
# HQQ (slow enough to interrupt).
big_hdr='{"__metadata__":{"format":"pt"}'
for k in 0 1 2 3; do
    big_hdr="$big_hdr,\"l$k.weight\":{\"dtype\":\"BF16\",\"shape\":[1024,4096],\"data_offsets\":[$((k * 8388608)),$(((k + 1) * 8388608))]}"
done
big_hdr="$big_hdr}"
while [ $(( ${#big_hdr} % 8 )) -ne 0 ]; do big_hdr="$big_hdr "; done
safe=$(printf '<=>?\274\275\276\277%.0s' $(seq 32))
{ printf "$(printf '\\x%02x' $(( ${#big_hdr} & 255 )) $(( (${#big_hdr} >> 8) & 255 )) 0 0 0 0 0 0)"; printf '%s' "$big_hdr"
  head -c 33554432 /dev/urandom | tr '\000-\377' "$safe"; } >"$T/big.safetensors"
"$CQUANTO" quantize "$T/big.safetensors" -o "$T/intr" --weights int4 --optimizer hqq --threads 1 >"$T/out" 2>"$T/err" &
pid=$!
sleep 0.4
kill -INT $pid
wait $pid
expect "SIGINT: exit 1" [ $? -eq 1 ]
expect "SIGINT: says interrupted" grep -q "interrupted" "$T/err"
expect "SIGINT: nothing at OUT" [ ! -e "$T/intr" ]
expect "SIGINT: no temp folder" [ -z "$(ls -A "$T" | grep '\.intr\.tmp-')" ]

finish
