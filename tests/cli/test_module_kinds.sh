#!/usr/bin/env bash
# test_module_kinds.sh - module kinds are known, not guessed into data loss (issue 10 item 7), on
# tests/data/module_kinds: with --module-kinds its plan and its output quantize exactly the
# modules optimum-quanto does (quanto.json); without, structure still keeps the ConvTranspose2d
# and the BatchNorm out; a config.json decides through its family's table and leaves unknown
# modules in float; a bad kinds file fails with one line naming it and the module, writing nothing.
. "$(dirname "$0")/lib.sh"

M=tests/data/module_kinds
K=$M/kinds.json

# quanto.json's modules for qtype $1 with their plan action: "conv quantize", "norm activations".
quanto_plan() {
    awk -v q="\"$1\":" '$1 == q { on = 1; next } on && /}/ { on = 0 } on { gsub(/[",:]/, ""); print $1, $2 == "QLayerNorm" ? "activations" : "quantize" }' \
        "$M/quanto.json" | sort
}
# The plan's modules that become quanto modules, from a --dry-run listing in $T/out.
plan_quanto() { rows | awk 'match($0, /F(32|16) +(quantize|activations) /) { split(substr($0, RSTART, RLENGTH), a, " "); print $1, a[2] }' | sort; }
# The plan's rows (the header and the summary left out) from $T/out.
rows() { awk 'NR > 1 && NF == 0 { exit } NR > 1' "$T/out"; }

expect "quanto.json lists 5 modules per qtype" [ "$(quanto_plan qint8 | wc -l)" -eq 5 ]

# ---- with the kinds file: exactly quanto's modules, norm scales on norm and final only ----------
for q in int4 int8; do
    check "dry run $q with --module-kinds" "$CQUANTO" quantize "$M/model.safetensors" --weights "$q" \
        --activations int8 --module-kinds "$K" --dry-run
    expect "$q: the plan converts quanto.json's modules, as quanto does" [ "$(plan_quanto)" = "$(quanto_plan "q$q")" ]
    expect "$q: every module decided by the kinds file" \
        [ "$(rows | grep -vc 'kinds-file$')" -eq 0 ]
done
expect "tokens: skip (embedding)" grep -q "^tokens .*skip (embedding) .*embedding *kinds-file$" "$T/out"
expect "bag: skip (embedding_bag)" grep -q "^bag .*skip (embedding_bag)" "$T/out"
expect "up: skip (conv_transpose2d)" grep -q "^up .*skip (conv_transpose2d)" "$T/out"
expect "bn, gn: no norm scales" bash -c "grep -q '^bn .*skip (batchnorm)' '$T/out' && grep -q '^gn .*skip (groupnorm)' '$T/out'"

check "quantize int4 with --module-kinds" "$CQUANTO" quantize "$M/model.safetensors" -o "$T/q4" --weights int4 \
    --activations int8 --module-kinds "$K"
check "inspect the output" "$CQUANTO" inspect "$T/q4"
awk '/\.weight\._data/ { sub(/\.weight\._data.*/, "", $1); print $1 }' "$T/out" | sort -u >"$T/qw"
awk '/\.input_scale / { sub(/\.input_scale$/, "", $1); print $1 }' "$T/out" | sort -u >"$T/qs"
expect "output: quantized weights are quanto's QLinear/QConv2d" \
    [ "$(cat "$T/qw")" = "$(quanto_plan qint4 | awk '$2 == "quantize" { print $1 }')" ]
expect "output: activation scales on quanto's modules only" [ "$(cat "$T/qs")" = "$(quanto_plan qint4 | awk '{ print $1 }')" ]
expect "output: tokens, bag and up kept in float" \
    bash -c "grep -q '^tokens.weight ' '$T/out' && grep -q '^bag.weight ' '$T/out' && grep -q '^up.weight ' '$T/out'"
expect "qmap: quanto's modules" [ "$(grep -o '^    "[a-z_]*"' "$T/q4/quanto_qmap.json" | tr -d ' "' | sort | tr '\n' ' ')" = \
    "$(quanto_plan qint4 | awk '{ print $1 }' | tr '\n' ' ')" ]

# ---- no kinds file, no config.json: the name/rank guess, checked by structure ----------------------
check "dry run without kinds" "$CQUANTO" quantize "$M/model.safetensors" --weights int8 --activations int8 --dry-run
expect "up: a bias of dim 1 rules out Conv2d, float" grep -q "^up .*skip (kind unknown) .*structure -> float$" "$T/out"
expect "pos_embed_proj: its bias rules out an embedding, quantized" grep -q "^pos_embed_proj .* quantize .*linear *structure$" "$T/out"
expect "bn: running statistics make a BatchNorm" grep -q "^bn .*skip (batchnorm) .*structure$" "$T/out"
expect "conv, head: guessed and quantized" \
    bash -c "grep -q '^conv .* quantize .*name/rank guess$' '$T/out' && grep -q '^head .* quantize .*name/rank guess$' '$T/out'"
# The limit of guessing: an Embedding and a bias-less Linear hold the same tensors.
expect "tokens: still guessed a Linear (documented limitation)" \
    grep -q "^tokens .* quantize .*name/rank guess$" "$T/out"

# ---- config.json: the family's table ------------------------------------------------------------
mkdir -p "$T/llama" && cp data/stories260K/model.safetensors "$T/llama/"
printf '{"architectures": ["LlamaForCausalLM"], "tie_word_embeddings": true}\n' >"$T/llama/config.json"
check "llama by its architectures" "$CQUANTO" quantize "$T/llama" --weights int4 --dry-run
expect "  ...35 of 36 quantized" grep -q "35 of 36 candidate modules" "$T/out"
expect "  ...each decided by config:llama" [ "$(rows | grep -vc 'config:llama$')" -eq 0 ]
mkdir -p "$T/mk" && cp "$M/model.safetensors" "$T/mk/" && printf '{"model_type": "llama"}\n' >"$T/mk/config.json"
check_rc "llama config, modules not in its table: nothing guessed" 1 "$CQUANTO" quantize "$T/mk" -o "$T/mk_q" --weights int8
expect "  ...says so and names --module-kinds" grep -q "not in cquanto's llama table.*--module-kinds" "$T/err"
expect "  ...writes nothing" [ ! -e "$T/mk_q" ]
check "  ...the kinds file still decides" "$CQUANTO" quantize "$T/mk" --weights int8 --activations int8 --dry-run --module-kinds "$K"
expect "  ...as quanto does" [ "$(plan_quanto)" = "$(quanto_plan qint8)" ]
printf '{"head": "linear"}' >"$T/head.json"
check "llama config, a kinds file naming only head" "$CQUANTO" quantize "$T/mk" -o "$T/mk_h" --weights int8 --module-kinds "$T/head.json"
expect "  ...only head quantized" [ "$(grep -o '^    "[a-z_]*"' "$T/mk_h/quanto_qmap.json" | tr -d ' "')" = head ]
# Not listed in modules_to_not_convert: transformers matches those names as substrings ("up" would
# keep every up_proj from loading its quantized state); a Linear it converts loads the float weight.
expect "  ...undecided modules not in modules_to_not_convert" bash -c "! grep -q modules_to_not_convert.*tokens '$T/mk_h/config.json' && ! grep -q '\"up\"' '$T/mk_h/config.json'"
printf '{"model_type": "mystery"}\n' >"$T/mk/config.json"
check_rc "unknown family: nothing guessed" 1 "$CQUANTO" quantize "$T/mk" -o "$T/mk_q" --weights int8
expect "  ...names the model_type" grep -q "model_type 'mystery' has no cquanto table" "$T/err"

# ---- bad kinds files: one line naming the file (and the module), exit 1, nothing written ----------
bad_kinds() { # NAME JSON WANT...
    local n=$1 json=$2; shift 2
    printf '%s' "$json" >"$T/k.json"
    check_rc "$n: exit 1" 1 "$CQUANTO" quantize "$M/model.safetensors" -o "$T/bad" --weights int8 --module-kinds "$T/k.json"
    expect "$n: one line" [ "$(wc -l <"$T/err")" -eq 1 ]
    expect "$n: names the file" grep -qF "$T/k.json" "$T/err"
    for w in "$@"; do expect "$n: says '$w'" grep -qF -- "$w" "$T/err"; done
    expect "$n: nothing written" [ ! -e "$T/bad" ]
}
bad_kinds "unknown kind" '{"head": "linear", "up": "lstm"}' "'up'" '"lstm"' "conv_transpose2d"
bad_kinds "not JSON" '{"head": "linear",' "not valid JSON"
bad_kinds "not a string" '{"head": 3}' "'head'" "not a string"
bad_kinds "kind against the rank" '{"head": "conv2d"}' "'head'" "rank-4" "[24, 32]"
bad_kinds "a Linear the checkpoint lacks" '{"hed": "linear"}' "'hed'" "no 'hed.weight'"
bad_kinds "not an object" '["head"]' "not"
check_rc "missing kinds file" 1 "$CQUANTO" quantize "$M/model.safetensors" -o "$T/bad" --weights int8 --module-kinds "$T/none.json"
expect "  ...names it" grep -qF "$T/none.json" "$T/err"
check_rc "--module-kinds without a file" 2 "$CQUANTO" quantize "$M/model.safetensors" --weights int8 --dry-run --module-kinds
# The kinds file is an input: an output that would replace it is refused.
check "a quantized folder" "$CQUANTO" quantize "$M/model.safetensors" -o "$T/kq" --weights int8 --module-kinds "$K"
cp "$K" "$T/kq/kinds.json"
check_rc "output holding the kinds file refused" 1 "$CQUANTO" quantize "$M/model.safetensors" -o "$T/kq" --weights int8 \
    --force --module-kinds "$T/kq/kinds.json"
expect "  ...the kinds file is still there" cmp -s "$K" "$T/kq/kinds.json"

finish
