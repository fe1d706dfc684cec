#!/usr/bin/env bash
# test_cpu.sh - `cquanto cpu`: the dispatch report, the cap flag and environment, usage errors.
. "$(dirname "$0")/lib.sh"

check "cpu runs" "$CQUANTO" cpu
expect "cpu lists every op with a chosen variant" grep -q "^matmul_fast " "$T/out"
expect "cpu names the active level" grep -q "^active level: " "$T/out"
check "cpu --isa ref" "$CQUANTO" cpu --isa ref
expect "ref cap chooses ref everywhere" sh -c "! grep -E '^(convert|absmax|quantize|dequantize|matmul)' '$T/out' | awk '{print \$2}' | grep -qv '^ref$'"
check "CQ_ISA=ref caps too" env CQ_ISA=ref "$CQUANTO" cpu
expect "CQ_ISA cap is reported" grep -q "^cap: ref" "$T/out"
check "cpu --help" "$CQUANTO" cpu --help
check_rc "unknown level is a usage error" 2 "$CQUANTO" cpu --isa sse9
check_rc "stray argument is a usage error" 2 "$CQUANTO" cpu extra
finish
