#!/usr/bin/env bash
# run_all.sh BUILD_DIR - what `make bench` runs: every benchmark program BUILD_DIR/bench/bench_*
# (built from bench/bench_*.c) and every bench/bench_*.sh script (given BUILD_DIR). Helper
# programs (other bench/*.c, e.g. generators) are used by the scripts, not run here. Each
# benchmark gets a time limit so the whole run stays under 10 minutes; the output is also kept
# in BUILD_DIR/bench/results.md. Figures mean something only on a quiet machine, so the load
# average is printed first; BENCHMARKS.md explains the columns and records the results.
set -u
B=${1:-build/release}
# OpenBLAS is the sgemm/sgemv peer. Under some hypervisors it does not recognise the CPU and falls
# back to SSE3 kernels ("Prescott"), which would flatter every ratio against it: give it the
# kernels the CPU's flags allow, unless the caller chose.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
    elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
fi
mkdir -p "$B/bench"
run() { # NAME LIMIT CMD...
    local name=$1 limit=$2
    shift 2
    echo
    timeout "$limit" "$@"
    local rc=$?
    [ $rc -eq 0 ] || { echo "($name exited with status $rc)"; return 1; }
}
{
    echo "<!-- $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -srm), load average $(cut -d' ' -f1-3 /proc/loadavg) -->"
    status=0
    for prog in "$B"/bench/bench_*; do
        [ -f "$prog" ] && [ -x "$prog" ] || continue
        case $prog in *.*) continue ;; esac
        run "$(basename "$prog")" 300 "$prog" || status=1
    done
    for script in bench/bench_*.sh; do
        [ -f "$script" ] || continue
        run "$(basename "$script")" 270 bash "$script" "$B" || status=1
    done
    exit $status
} 2>&1 | tee "$B/bench/results.md"
exit "${PIPESTATUS[0]}"
