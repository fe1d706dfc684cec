#!/usr/bin/env bash
# test_cpu.sh - `cquanto cpu`: the kernel chosen per (op, weight format), the registry listing,
# the cap flag and environment, usage errors.
. "$(dirname "$0")/lib.sh"

# The chosen kernels of the slot table (op, weight, chosen, tile, registered) in file $1.
chosen() { awk '/^op +weight +chosen/ { f = 1; next } f && NF == 0 { exit } f { print $3 }' "$1"; }

check "cpu --all runs" "$CQUANTO" cpu --all
cp "$T/out" "$T/all"
expect "cpu names the active level" grep -q "^active level: " "$T/all"
expect "every matmul slot has a named kernel" sh -c "grep -Eq '^matmul_fast +qint4 +gemm_qd8_qb4w_f32_[0-9]+x[0-9]+__' '$T/all' &&
    grep -Eq '^matmul_w8a8 +qint8 +gemm_qs8_qc8w_f32_' '$T/all' && [ \$(grep -Ec '^matmul_exact +q' '$T/all') -eq 5 ]"
expect "every elementwise op has a kernel" grep -Eq "^quantize_act_blocks +- +quantize_act_blocks__" "$T/all"
chosen "$T/all" >"$T/chosen"
nslots=$(wc -l <"$T/chosen")
expect "every chosen kernel is registered and runs here" sh -c "[ $nslots -ge 25 ] && while read -r k; do
    grep -Eq \"^\$k +[0-9]+x[0-9]+ +[a-z0-9_-]+ +yes\$\" '$T/all' || exit 1; done <'$T/chosen'"

check "cpu --isa ref" "$CQUANTO" cpu --isa ref
chosen "$T/out" >"$T/chosen"
expect "ref cap chooses the reference everywhere" sh -c "[ \$(grep -vc '__ref\$' '$T/chosen') -eq 0 ]"
expect "ref cap keeps every slot" sh -c "[ \$(wc -l <'$T/chosen') -eq $nslots ]"
if grep -q "^levels supported:.* avx2" "$T/all"; then
    check "cpu --isa avx2" "$CQUANTO" cpu --isa avx2
    chosen "$T/out" >"$T/chosen"
    expect "avx2 cap chooses nothing above avx2" sh -c "[ \$(wc -l <'$T/chosen') -eq $nslots ] && ! grep -Eq '__(avx512|amx)' '$T/chosen'"
fi
# The AVX512-BF16 exact-mode kernels are their own registered kernels, chosen by dispatch.
if grep -q "^features:.* avx512_bf16" "$T/all" && grep -q "^levels supported:.* avx512" "$T/all"; then
    expect "AVX512-BF16 CPUs run the bf16 exact kernels" sh -c "[ \$(grep -E '^matmul_exact ' '$T/all' | awk '{print \$3}' | grep -c '__avx512bf16\$') -eq 5 ]"
else
    expect "no bf16 kernel runs without AVX512-BF16" sh -c "! grep -E '^matmul_exact ' '$T/all' | awk '{print \$3}' | grep -q bf16"
fi

check "CQ_ISA=ref caps too" env CQ_ISA=ref "$CQUANTO" cpu
expect "CQ_ISA cap is reported" grep -q "^cap: ref" "$T/out"
check "cpu --help" "$CQUANTO" cpu --help
check_rc "unknown level is a usage error" 2 "$CQUANTO" cpu --isa sse9
check_rc "stray argument is a usage error" 2 "$CQUANTO" cpu extra
finish
