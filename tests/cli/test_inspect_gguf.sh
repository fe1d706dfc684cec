#!/usr/bin/env bash
# test_inspect_gguf.sh - `cquanto inspect` on GGUF files (tests/data/gguf_golden, written by
# tools/gen_gguf_golden.py with the gguf Python package): the header line, every metadata key with
# its type, long arrays abbreviated, every tensor with its ggml type, Hugging Face shape and bits
# per weight as layout.tsv (what gguf-py's GGUFReader read) says; and the checkpoint commands'
# refusal of a GGUF input. The malformed GGUF files are test_malformed.sh's.
. "$(dirname "$0")/lib.sh"

G=tests/data/gguf_golden
check "quants.gguf" "$CQUANTO" inspect "$G/quants.gguf"
cp "$T/out" "$T/q.out"
expect "header line" grep -qx "$G/quants.gguf: GGUF version 3, 13 tensors, 28 metadata keys (alignment 32, data at byte 2048)" "$T/q.out"
expect "a scalar with its type" grep -qx "  metadata test.u32 (u32) = 4000000000" "$T/q.out"
expect "a float in shortest form" grep -qx "  metadata test.f32 (f32) = 0.1" "$T/q.out"
expect "floats as Python's repr" grep -qxF "  metadata test.arr_f32 (arr[f32], 3 items) = [1.5, -0.25, 3e+38]" "$T/q.out"
expect "a double in 17 digits" grep -qx "  metadata test.f64 (f64) = 0.3333333333333333" "$T/q.out"
expect "strings escaped and quoted in arrays" grep -qxF '  metadata test.arr_str (arr[str], 4 items) = ["a", "", "ünïcöde", "two\nlines"]' "$T/q.out"
expect "a long array abbreviated" grep -qxF "  metadata test.arr_long (arr[u32], 100 items) = [0, 1, 2, 3, 4, 5, 6, 7, ...]" "$T/q.out"
expect "28 metadata lines" [ "$(grep -c '^  metadata ' "$T/q.out")" -eq 28 ]
# Every tensor row agrees with the Python reader: type, shape (ne reversed), elements, bytes.
bad=0 rows=0
while IFS=$'\t' read -r kind file name type ne numel nbytes off; do
    [ "$kind" = tensor ] && [ "$file" = quants.gguf ] || continue
    rows=$((rows + 1))
    shape=$(tr ',' '\n' <<<"$ne" | tac | paste -sd, | sed 's/,/, /g')
    bpw=$(awk -v b="$nbytes" -v n="$numel" 'BEGIN {printf "%.3f", b * 8 / n}')
    awk -v n="$name" -v t="$type" -v s="[$shape]" -v e="$numel" -v b="$nbytes" -v w="$bpw" '
        $1 == n && $2 == t { row = $0; sub(/^[^ ]+ +[^ ]+ +/, "", row); split(row, f, "  +");
                             if (f[1] == s && f[2] == e && f[3] == b && f[4] == w) ok = 1 }
        END { exit !ok }' "$T/q.out" || { bad=1; echo "  mismatch: $name $type [$shape] $numel $nbytes $bpw"; }
done <"$G/layout.tsv"
expect "13 tensor rows match the Python reader" [ $bad -eq 0 -a $rows -eq 13 ]
expect "per-type totals" grep -qE "^  Q4_K +1 tensors +1024 elements +576 bytes +4.500 bits/weight$" "$T/q.out"
expect "total line" grep -qx "total: 13 tensors, 9216 elements, 8880 bytes (8.88 kB), 7.708 bits per weight" "$T/q.out"
check "--summary" "$CQUANTO" inspect --summary "$G/v2_align64.gguf"
expect "--summary: version 2, alignment 64, no table" bash -c "grep -q 'GGUF version 2, 2 tensors, 3 metadata keys (alignment 64' '$T/out' && ! grep -q '^name ' '$T/out' && grep -q '^total: 2 tensors' '$T/out'"
# Found by its magic whatever its name.
cp "$G/align1.gguf" "$T/model.bin"
check "magic, not name" "$CQUANTO" inspect "$T/model.bin"
expect "magic, not name: listed as GGUF" grep -q "GGUF version 3, 2 tensors" "$T/out"
check_rc "--qmap with a GGUF file" 2 "$CQUANTO" inspect --qmap "$T/q.json" "$G/quants.gguf"

# The checkpoint commands refuse a GGUF input with the way forward, and write nothing.
check_rc "quantize refuses GGUF" 1 "$CQUANTO" quantize "$G/quants.gguf" --weights int8 -o "$T/out-q"
expect "quantize: names cquanto convert" grep -q "quants.gguf: a GGUF file (llama.cpp's format); convert it to a Hugging Face folder first: cquanto convert" "$T/err"
expect "quantize: nothing written" [ ! -e "$T/out-q" ]
check_rc "dequantize refuses GGUF" 1 "$CQUANTO" dequantize "$G/quants.gguf" -o "$T/d.safetensors"
expect "dequantize: one line" [ "$(wc -l <"$T/err")" -eq 1 ]
check_rc "report refuses GGUF" 1 "$CQUANTO" report data/stories260K "$G/quants.gguf"
expect "report: names the GGUF input" grep -q "cquanto report: $G/quants.gguf: a GGUF file" "$T/err"
finish
