#!/usr/bin/env bash
# test_inspect.sh - `cquanto inspect` end to end: usage and exit codes; every tensor of the
# bundled models listed with the dtype and shape their own headers give; quanto checkpoints
# (single file and transformers-sharded) with qtypes and the bits per weight that
# tools/gen_st_fixtures.py computed in Python (tests/data/st/bits_per_weight.txt).
. "$(dirname "$0")/lib.sh"

# The JSON header of a safetensors file, as text.
st_header() { local n; n=$(od -An -tu8 -N8 "$1" | tr -d ' '); tail -c +9 "$1" | head -c "$n"; }

# Every row of inspect's tensor table must match the file's header, and all tensors appear.
check_listing() {
    local name=$1 path=$2 file=$3
    check "$name: runs" "$CQUANTO" inspect "$path"
    local out=$T/$name.out; cp "$T/out" "$out"
    local hdr; hdr=$(st_header "$file")
    local want; want=$(grep -o '"data_offsets"' <<<"$hdr" | wc -l)
    local rows; rows=$(awk '/^name /{t=1; next} t && NF==0 {t=0} t' "$out")
    expect "$name: $want tensors listed" [ "$(wc -l <<<"$rows")" -eq "$want" ]
    expect "$name: header line" grep -q "^$path: $want tensors" "$out"
    local bad=0 n dt shape
    while read -r n dt shape; do
        shape=$(sed -E 's/ +[0-9]+ +[0-9]+$//; s/ //g' <<<"$shape")
        grep -qF "\"$n\":{\"dtype\":\"$dt\",\"shape\":$shape" <<<"$hdr" || { bad=1; echo "  mismatch: $n $dt $shape"; }
    done <<<"$rows"
    expect "$name: names, dtypes and shapes match the header" [ $bad -eq 0 ]
}

check_listing silero data/silero_vad_16k.safetensors data/silero_vad_16k.safetensors
check_listing stories data/stories260K data/stories260K/model.safetensors
expect "silero: totals" grep -q "^total: 15 tensors, 309633 elements, 1238532 bytes" "$T/silero.out"

# Usage and exit codes.
check "--help" "$CQUANTO" inspect --help
expect "--help prints usage to stdout" grep -q "usage: cquanto inspect" "$T/out"
check_rc "no PATH" 2 "$CQUANTO" inspect
check_rc "unknown option" 2 "$CQUANTO" inspect --frobnicate data/stories260K
check_rc "two paths" 2 "$CQUANTO" inspect data/stories260K data/silero_vad_16k.safetensors
check_rc "--qmap without file" 2 "$CQUANTO" inspect data/stories260K --qmap
check_rc "missing path" 1 "$CQUANTO" inspect "$T/nope.safetensors"
expect "missing path: one line naming it" [ "$(wc -l <"$T/err")" -eq 1 ]
expect "missing path: named" grep -q "nope.safetensors" "$T/err"
check_rc "empty folder" 1 "$CQUANTO" inspect "$T"
check_rc "missing --qmap file" 1 "$CQUANTO" inspect --qmap "$T/q.json" data/stories260K
expect "missing --qmap file: named" grep -q "q.json" "$T/err"
printf '{"fc1": {"weights": "qint3", "activations": "none"}}' >"$T/bad_qmap.json"
check_rc "bad qmap" 1 "$CQUANTO" inspect --qmap "$T/bad_qmap.json" tests/data/st/quanto_mlp
expect "bad qmap: names file, module and value" grep -q "bad_qmap.json: module 'fc1': unknown weights qtype \"qint3\"" "$T/err"
check "--summary" "$CQUANTO" inspect --summary data/silero_vad_16k.safetensors
expect "--summary has no table" bash -c "! grep -q '^name ' '$T/out' && grep -q '^total: 15 tensors' '$T/out'"

# Quanto checkpoints: qtypes and bits per weight as Python computed them.
check_bits() {
    local ckpt=$1 out=$2 bad=0 c m b
    while read -r c m b; do
        [ "$c" = "$ckpt" ] || continue
        awk -v m="$m" -v b="$b" '$1==m && $NF==b {f=1} END {exit !f}' "$out" || { bad=1; echo "  $ckpt $m: want $b"; }
    done <tests/data/st/bits_per_weight.txt
    expect "$ckpt: bits per weight match Python" [ $bad -eq 0 ]
}
check "quanto_mlp" "$CQUANTO" inspect tests/data/st/quanto_mlp
cp "$T/out" "$T/mlp.out"
check_bits quanto_mlp "$T/mlp.out"
expect "quanto_mlp: qtypes" grep -Eq '^fc4 +qint8 +qint8 ' "$T/mlp.out"
expect "quanto_mlp: float8" grep -Eq '^fc5 +qfloat8_e4m3fn +none ' "$T/mlp.out"
expect "quanto_mlp: overall line" grep -q "^overall: 4.871 bits per weight over 4480 weights of 5 modules" "$T/mlp.out"
check "quanto_mlp file" "$CQUANTO" inspect tests/data/st/quanto_mlp/model.safetensors
expect "quanto_mlp file: finds the qmap beside it" grep -q "quantization map" "$T/out"
check "sharded" "$CQUANTO" inspect tests/data/st/quanto_llama_sharded
cp "$T/out" "$T/sharded.out"
check_bits quanto_llama_sharded "$T/sharded.out"
expect "sharded: shards listed" grep -q "2 shards" "$T/sharded.out"
expect "sharded: shard column" grep -Eq '^lm_head.weight +F32 +\[96, 32\] +3072 +12288 +2$' "$T/sharded.out"
check "sharded via index" "$CQUANTO" inspect tests/data/st/quanto_llama_sharded/model.safetensors.index.json
expect "sharded via index: same listing" cmp -s "$T/out" <(sed 's#^tests/data/st/quanto_llama_sharded:#tests/data/st/quanto_llama_sharded/model.safetensors.index.json:#' "$T/sharded.out")
finish
