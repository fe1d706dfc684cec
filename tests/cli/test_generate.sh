#!/usr/bin/env bash
# test_generate.sh - `cquanto generate`: the greedy continuation of "Once upon a time" by
# data/stories260K equals transformers' (tests/data/lm/stories260K_greedy.txt, written by
# tools/gen_lm_golden.py), at any thread count, and optimum-quanto's at each weight qtype; seeded sampling is reproducible; usage errors
# exit 2 and unusable models exit 1 with one line naming the problem.
. "$(dirname "$0")/lib.sh"
M=data/stories260K
printf '%s\n' "$(cat tests/data/lm/stories260K_greedy.txt)" >"$T/want"

check "generate greedy" "$CQUANTO" generate $M -p "Once upon a time" -n 64 --temp 0
expect "greedy text equals transformers'" cmp -s "$T/out" "$T/want"
expect "timings on stderr" grep -q "decode .* tokens/s" "$T/err"
check "generate greedy, 1 thread, quiet" "$CQUANTO" generate $M -p "Once upon a time" -n 64 --temp 0 --threads 1 -q
expect "1 thread: the same text" cmp -s "$T/out" "$T/want"
expect "--quiet: nothing on stderr" test ! -s "$T/err"

# Quantize-on-load at each quanto weight qtype: optimum-quanto's greedy text (tools/gen_lm_golden.py).
for q in int8 int4 int2 float8; do
    printf '%s\n' "$(cat tests/data/lm/stories260K_greedy_q$q.txt)" >"$T/want_$q"
    check "generate --weights $q" "$CQUANTO" generate $M -p "Once upon a time" -n 64 --temp 0 --weights $q -q
    expect "--weights $q: optimum-quanto's greedy text" cmp -s "$T/out" "$T/want_$q"
done

check "seeded sampling" "$CQUANTO" generate $M -p "Tom" -n 40 --temp 1 --seed 7 -q
cp "$T/out" "$T/s1"
check "seeded sampling again" "$CQUANTO" generate $M -p "Tom" -n 40 --temp 1 --seed 7 -q --threads 2
expect "a seed reproduces the text" cmp -s "$T/out" "$T/s1"
expect "the text starts with the prompt" grep -q "^Tom" "$T/s1"
check "empty prompt starts from BOS" "$CQUANTO" generate $M -n 16 --temp 0 -q
expect "something was generated" test -s "$T/out"

check "--help" "$CQUANTO" generate --help
expect "--help shows usage" grep -q "^usage: cquanto generate MODEL" "$T/out"
check_rc "no model" 2 "$CQUANTO" generate
check_rc "bad option" 2 "$CQUANTO" generate $M --bogus
check_rc "bad temperature" 2 "$CQUANTO" generate $M --temp x
check_rc "bad top-p" 2 "$CQUANTO" generate $M --top-p 0
check_rc "bad mode" 2 "$CQUANTO" generate $M --mode turbo
check_rc "bad --head" 2 "$CQUANTO" generate $M --head int3
check "--weights int4 --head int8" "$CQUANTO" generate $M -p "Once upon a time" -n 16 --temp 0 --weights int4 --head int8 -q
expect "--head int8: some text" grep -q "^Once upon a time" "$T/out"
check_rc "missing model" 1 "$CQUANTO" generate "$T/nothing" -p hi
expect "missing model named" grep -q "nothing" "$T/err"
check_rc "context too small" 1 "$CQUANTO" generate $M -p "Once upon a time" -n 64 --context 16
expect "context error explains" grep -q "exceed the context of 16" "$T/err"
mkdir -p "$T/notok" && cp $M/config.json $M/model.safetensors "$T/notok/"
check_rc "no tokenizer" 1 "$CQUANTO" generate "$T/notok" -p hi
expect "no tokenizer explained" grep -q "no tokenizer" "$T/err"
check "--tokenizer names one" "$CQUANTO" generate "$T/notok" -p "Once upon a time" -n 64 --temp 0 -q --tokenizer $M/tok512.bin
expect "--tokenizer: the same text" cmp -s "$T/out" "$T/want"

# Quantized: a quanto folder from `cquanto quantize` runs as quantize-on-load does, bit for bit.
check "quantize to int4" "$CQUANTO" quantize $M --weights int4 -o "$T/q4"
check "generate from the quanto folder" "$CQUANTO" generate "$T/q4" -p "Once upon a time" -n 32 --temp 0 -q --tokenizer $M/tok512.bin
cp "$T/out" "$T/q4.txt"
check "generate with --weights int4" "$CQUANTO" generate $M -p "Once upon a time" -n 32 --temp 0 --weights int4
expect "quanto folder and quantize-on-load agree" cmp -s "$T/out" "$T/q4.txt"
expect "stderr names the qtype" grep -q "35 Linears qint4" "$T/err"
check "fast mode runs" "$CQUANTO" generate $M -p "Once upon a time" -n 32 --temp 0 --weights int8 --mode fast -q
expect "fast mode writes text" grep -q "^Once upon a time" "$T/out"
check_rc "bad --weights" 2 "$CQUANTO" generate $M --weights int3
check "quantize with float8 activations" "$CQUANTO" quantize $M --weights int8 --activations float8 -o "$T/f8"
check_rc "float8 activations refused" 1 "$CQUANTO" generate "$T/f8" -p hi --tokenizer $M/tok512.bin
expect "refusal names the module and the activations" grep -q "module 'model.layers.0.self_attn.q_proj' has qfloat8_e4m3fn activations" "$T/err"
finish
