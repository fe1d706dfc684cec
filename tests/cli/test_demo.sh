#!/usr/bin/env bash
# test_demo.sh - `cquanto demo` argument handling (the full demo takes most of a minute, so
# `make demo` runs it, not the tests) and the digits example end to end (under a second).
. "$(dirname "$0")/lib.sh"

check "demo --help" "$CQUANTO" demo --help
expect "help names the options" grep -q -- "--data DIR" "$T/out"
check_rc "unknown option" 2 "$CQUANTO" demo --bogus
check_rc "bad thread count" 2 "$CQUANTO" demo --threads 0
check_rc "missing value" 2 "$CQUANTO" demo --data
check_rc "missing data" 1 "$CQUANTO" demo --data /nonexistent --quiet
expect "the message names the file" grep -q "/nonexistent/mnist-t10k-images-idx3-ubyte.gz" "$T/err"

EX="${CQ_BUILD_DIR:-build/release}/examples/digits_mlp"
if [ -x "$EX" ]; then
    check "digits example" "$EX" data/digits.csv.gz "$T/digits"
    expect "example reloads bit-identically" grep -q "bit-identical outputs" "$T/out"
    expect "example wrote a quanto checkpoint" test -s "$T/digits/model.safetensors" -a -s "$T/digits/quanto_qmap.json"
fi
finish
