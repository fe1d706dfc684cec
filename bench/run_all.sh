#!/usr/bin/env bash
# run_all.sh BUILD_DIR - what `make bench` runs: every benchmark program BUILD_DIR/bench/bench_*
# (built from bench/bench_*.c) and every bench/bench_*.sh script (given BUILD_DIR). Helper
# programs (other bench/*.c, e.g. generators) are used by the scripts, not run here. Each
# benchmark gets a time limit so the whole run stays under 10 minutes; the output is also kept
# in BUILD_DIR/bench/results.md. Figures mean something only on a quiet machine, so the load
# average is printed first; BENCHMARKS.md explains the columns and records the results.
set -u
B=${1:-build/release}
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
