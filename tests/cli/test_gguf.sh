#!/usr/bin/env bash
# test_gguf.sh - GGUF models end to end on the stories260K fixtures llama.cpp's converter made
# (tests/data/gguf): `cquanto convert` writes a folder that `cquanto generate` and
# `cquanto quantize` take, `cquanto generate`/`tokenize` run the .gguf directly with the text and
# ids of the folder it came from, and usage errors exit 2, unusable files 1, naming the problem.
# With --full: SmolLM2-135M (scripts/get-model.sh smollm2-135m): its ids over the whole of
# WikiText-2 equal those of llama.cpp's llama-tokenize (tests/data/gguf/smollm2_wikitext_ids.sha256),
# its perplexity is llama-perplexity's within 0.5%, and convert -> quantize int4 -> perplexity runs.
. "$(dirname "$0")/lib.sh"
G=tests/data/gguf/stories260K-F32.gguf
M=data/stories260K

check "convert" "$CQUANTO" convert $G -o "$T/hf"
expect "summary names the output" grep -q "$T/hf: converted" "$T/out"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json generation_config.json; do
    expect "convert wrote $f" test -s "$T/hf/$f"
done
check_rc "existing output refused" 1 "$CQUANTO" convert $G -o "$T/hf"
expect "existing output named" grep -q "$T/hf" "$T/err"
check "--force replaces it" "$CQUANTO" convert $G -o "$T/hf" --force --dtype f16 -q
expect "--quiet: nothing on stdout" test ! -s "$T/out"
expect "no temp folder left" [ "$(ls "$T" | grep -c tmp)" -eq 0 ]

check "generate from the folder" "$CQUANTO" generate $M -p "Once upon a time" -n 64 --temp 0 -q
cp "$T/out" "$T/want"
check "generate from the .gguf" "$CQUANTO" generate $G -p "Once upon a time" -n 64 --temp 0 -q
expect ".gguf: the folder's greedy text" cmp -s "$T/out" "$T/want"
check "convert f32" "$CQUANTO" convert $G -o "$T/hf32" -q
check "generate from the converted folder" "$CQUANTO" generate "$T/hf32" -p "Once upon a time" -n 64 --temp 0 -q
expect "converted folder: the same text" cmp -s "$T/out" "$T/want"
check "quantize the converted folder" "$CQUANTO" quantize "$T/hf32" -o "$T/q4" --weights int4 -q
check "generate from its int4 quanto folder" "$CQUANTO" generate "$T/q4" -p "Once upon a time" -n 16 --temp 0 -q
expect "int4: some text" test -s "$T/out"

head -c 20000 data/wikitext-2/wiki.test.raw >"$T/wiki"
check "tokenize with the folder's tokenizer" "$CQUANTO" tokenize $M -f "$T/wiki"
cp "$T/out" "$T/ids_folder"
check "tokenize with the .gguf's" "$CQUANTO" tokenize $G -f "$T/wiki"
expect "the same ids" cmp -s "$T/out" "$T/ids_folder"
expect "thousands of ids" [ "$(wc -l <"$T/out")" -gt 1000 ]
check "tokenize --pieces" "$CQUANTO" tokenize $G -p "Once upon" --pieces
expect "--pieces: id, tab, token" grep -qP '^\d+\t' "$T/out"

check "convert --help" "$CQUANTO" convert --help
expect "--help shows usage" grep -q "^usage: cquanto convert MODEL.gguf" "$T/out"
check "tokenize --help" "$CQUANTO" tokenize --help
check_rc "convert: no -o" 2 "$CQUANTO" convert $G
check_rc "convert: bad dtype" 2 "$CQUANTO" convert $G -o "$T/x" --dtype f8
check_rc "convert: a safetensors file" 1 "$CQUANTO" convert $M/model.safetensors -o "$T/x"
expect "one line naming the file" [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "model.safetensors" "$T/err"
expect "nothing written" test ! -e "$T/x"
check_rc "tokenize: no text" 2 "$CQUANTO" tokenize $G

if [ "${1:-}" = "--full" ]; then
    if S=$(scripts/get-model.sh smollm2-135m 2>"$T/fetch" | tail -n 1) && [ -f "$S" ]; then
        check "SmolLM2: tokenize WikiText-2" "$CQUANTO" tokenize "$S" -f data/wikitext-2/wiki.test.raw
        expect "SmolLM2: llama-tokenize's ids" [ "$(sha256sum <"$T/out" | cut -d' ' -f1)" = "$(cut -d' ' -f1 tests/data/gguf/smollm2_wikitext_ids.sha256)" ]
        # llama-perplexity's running estimate after 10 chunks of 512 (tests/data/gguf/smollm2_llama_cpp_reference.txt)
        want=$(grep -o '\[10\][0-9.]*' tests/data/gguf/smollm2_llama_cpp_reference.txt | head -n 1 | cut -d']' -f2)
        check "SmolLM2: perplexity of the .gguf, 10 chunks" "$CQUANTO" perplexity "$S" -f data/wikitext-2/wiki.test.raw --chunks 10 -q
        got=$(sed -n 's/.*PPL = \([0-9.]*\).*/\1/p' "$T/out" | tail -n 1)
        expect "SmolLM2: PPL $got within 0.5% of llama-perplexity's $want" awk -v a="$got" -v b="$want" 'BEGIN { d = a / b - 1; exit !(b > 0 && d < 0.005 && d > -0.005) }'
        check "SmolLM2: convert" "$CQUANTO" convert "$S" -o "$T/smol" -q
        check "SmolLM2: quantize int4" "$CQUANTO" quantize "$T/smol" -o "$T/smol4" --weights int4 -q
        check "SmolLM2: perplexity of the int4 model" "$CQUANTO" perplexity "$T/smol4" -f data/wikitext-2/wiki.test.raw --chunks 2 -q
        expect "SmolLM2: a perplexity" grep -q "PPL" "$T/out"
    else
        echo "  skip SmolLM2: scripts/get-model.sh smollm2-135m failed: $(tail -n 1 "$T/fetch")"
    fi
fi
finish
