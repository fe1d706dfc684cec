#!/usr/bin/env bash
# test_perplexity.sh - `cquanto perplexity`: llama-perplexity's output shape (running [i]ppl per
# chunk, "Final estimate: PPL = x +/- y"), the same numbers at any thread count, the KL
# divergence block with --reference (alias --base; zero divergence of a model from itself),
# usage errors (exit 2) and unusable inputs (exit 1). The numbers themselves are checked against
# transformers in tests/test_lm.c.
. "$(dirname "$0")/lib.sh"
M=data/stories260K
W=data/wikitext-2/wiki.test.raw

check "perplexity, 8 chunks of 128" "$CQUANTO" perplexity $M -f $W -c 128 --chunks 8
expect "running perplexity per chunk" grep -q "^\[1\][0-9.]*,\[2\]" "$T/out"
expect "final estimate line" grep -Eq "^Final estimate: PPL = [0-9]+\.[0-9]{4} \+/- [0-9]+\.[0-9]{5}$" "$T/out"
expect "scored positions reported" grep -q "8 chunks of 128 tokens, 504 scored" "$T/err"
grep "^Final" "$T/out" >"$T/final2"
check "perplexity on 1 thread" "$CQUANTO" perplexity $M -f $W -c 128 --chunks 8 --threads 1 -q
expect "1 thread: the same estimate" cmp -s "$T/out" "$T/final2"

check "KL divergence of int4 from float" "$CQUANTO" perplexity $M -f $W -c 128 --chunks 8 --weights int4 --reference $M -q
for k in "Base PPL" "Mean KLD" "99.0%   KLD" "Median  KLD" "RMS     dp" "Same top"; do
    expect "--reference prints $k" grep -q "^$k" "$T/out"
done
expect "int4 diverges" sh -c "awk '/^Mean KLD/ { exit !(\$3 > 0.01) }' '$T/out'"
check "a model against itself" "$CQUANTO" perplexity $M -f $W -c 128 --chunks 4 --base $M -q
expect "zero divergence, same top everywhere" sh -c "grep -q '^Mean KLD  *0.000000' '$T/out' && grep -q '^Same top  *100.0000 %' '$T/out'"

check "--help" "$CQUANTO" perplexity --help
expect "--help shows usage" grep -q "^usage: cquanto perplexity MODEL -f TEXT" "$T/out"
check_rc "no text" 2 "$CQUANTO" perplexity $M
check_rc "bad ctx" 2 "$CQUANTO" perplexity $M -f $W -c 2
check_rc "unknown option" 2 "$CQUANTO" perplexity $M -f $W --bogus
check_rc "missing text" 1 "$CQUANTO" perplexity $M -f "$T/none.txt"
expect "missing text named" grep -q "none.txt" "$T/err"
head -c 300 $W >"$T/short.txt"
check_rc "text too short" 1 "$CQUANTO" perplexity $M -f "$T/short.txt" -c 128
expect "too short explained" grep -q "needs at least 256" "$T/err"
check_rc "ctx beyond the model" 1 "$CQUANTO" perplexity $M -f $W -c 1024
expect "context limit named" grep -q "outside 4..512" "$T/err"
finish
