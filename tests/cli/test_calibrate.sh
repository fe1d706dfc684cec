#!/usr/bin/env bash
# test_calibrate.sh - `cquanto calibrate`: static int8 activation scales for a quanto folder
# written with scales of 1 (`cquanto quantize --activations int8`), measured on WikiText-2 and
# written into a copy (the input untouched); the calibrated W8A8 model then generates the float
# model's greedy text start and has a perplexity near the float one, where the uncalibrated one
# does not; a float model is quantized first, to the same scales; refusals exit 1 with a reason,
# usage errors 2. The scales themselves are checked
# against optimum-quanto in tests/test_lm.c.
. "$(dirname "$0")/lib.sh"
M=data/stories260K
W=data/wikitext-2/wiki.test.raw

check "quantize with int8 activations" "$CQUANTO" quantize $M --weights int8 --activations int8 -o "$T/a8"
cp $M/tok512.bin "$T/a8/"
sum_before=$(cat "$T/a8"/* | cksum)
check "calibrate 8 chunks" "$CQUANTO" calibrate "$T/a8" -f $W -o "$T/a8c" -c 128 --chunks 8
expect "a table of the scales" sh -c "grep -q '^model.layers.4.mlp.down_proj ' '$T/out' && [ \$(grep -c '^model.layers' '$T/out') -eq 35 ]"
expect "no scale left at 1" sh -c "! awk 'NR > 1 && (\$2 == 1 || \$3 == 1)' '$T/out' | grep -q ."
expect "the input folder is unchanged" test "$(cat "$T/a8"/* | cksum)" = "$sum_before"
expect "the copy has the side files" sh -c "test -f '$T/a8c/config.json' && test -f '$T/a8c/quanto_qmap.json' && test -f '$T/a8c/tok512.bin'"
check "perplexity of the calibrated model" "$CQUANTO" perplexity "$T/a8c" -f $W -c 128 --chunks 8 -q
cal=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p' "$T/out")
check "perplexity of the uncalibrated model" "$CQUANTO" perplexity "$T/a8" -f $W -c 128 --chunks 8 -q
raw=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p' "$T/out")
check "perplexity of the float model" "$CQUANTO" perplexity $M -f $W -c 128 --chunks 8 -q
flt=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p' "$T/out")
expect "calibrated PPL ($cal) within 10% of float ($flt), uncalibrated ($raw) far off" \
    awk -v c="$cal" -v f="$flt" -v r="$raw" 'BEGIN { exit !(c < 1.1 * f && r > 3 * f) }'
check "generate with the calibrated model" "$CQUANTO" generate "$T/a8c" -p "Once upon a time" -n 12 --temp 0 -q
expect "it tells the same story start" grep -q "^Once upon a time, there was a little girl" "$T/out"

check_rc "existing output" 1 "$CQUANTO" calibrate "$T/a8" -f $W -o "$T/a8c" -c 128 --chunks 2
expect "existing output named" grep -q "exists" "$T/err"
check "--force replaces it" "$CQUANTO" calibrate "$T/a8" -f $W -o "$T/a8c" -c 128 --chunks 2 -q --force
check "calibrate the quanto folder, 4 chunks" "$CQUANTO" calibrate "$T/a8" -f $W -o "$T/q4c" -c 128 --chunks 4
cp "$T/out" "$T/table_q"
check "calibrate the float model, 4 chunks" "$CQUANTO" calibrate $M -f $W -o "$T/f4c" -c 128 --samples 4
expect "a float model is quantized first, with the same scales" cmp -s "$T/out" "$T/table_q"
expect "its output is a quanto folder" test -f "$T/f4c/quanto_qmap.json"
expect "no temp folder is left" sh -c "! ls -a '$T' | grep -q '^\.f4c'"
check "quantize without activations" "$CQUANTO" quantize $M --weights int4 -o "$T/w4"
check_rc "a weight-only folder has nothing to calibrate" 1 "$CQUANTO" calibrate "$T/w4" -f $W -o "$T/none" -c 128 --chunks 2
expect "nothing-to-calibrate explained" grep -q "no module quantizes its activations" "$T/err"
expect "and nothing was written" test ! -e "$T/none"
check "--help" "$CQUANTO" calibrate --help
expect "--help shows usage" grep -q "^usage: cquanto calibrate MODEL -f TEXT -o OUT" "$T/out"
check_rc "no output" 2 "$CQUANTO" calibrate "$T/a8" -f $W
check_rc "bad momentum" 2 "$CQUANTO" calibrate "$T/a8" -f $W -o "$T/x" --momentum 2
finish
