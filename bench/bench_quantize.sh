#!/usr/bin/env bash
# bench_quantize.sh - `cquanto quantize` on a synthetic Llama-shaped checkpoint (TinyLlama-1.1B
# dimensions, bf16, 3 shards, 2.2 GB; bench/gen_synth_ckpt.c makes it once) to int8 (absmax),
# float8 (absmax), int4 (max) and int4 (hqq). Reports GB/s of input, the ratio to the memory-read bandwidth measured
# in the same run (bench/mem_read_bw.c), peak RSS (/usr/bin/time -v), and the ratio against
# optimum-quanto doing the same on this CPU (load, quantize, freeze, save:
# tools/interop/quanto_quantize_bench.py) when its pinned venv is there. Not a test.
#
# usage: bench/bench_quantize.sh [BUILD_DIR]
# env:   CQ_BENCH_CKPT  checkpoint folder (default BUILD_DIR/bench/synth_llama, generated if missing)
#        CQ_BENCH_OUT   scratch output folder (default /dev/shm/cq_bench_out when /dev/shm exists, so
#                       the disk's write speed, which cquanto's fsync at commit waits for, does not
#                       set the pace; one int8 run then also writes to BUILD_DIR to show that cost)
#        QUANTO_PYTHON  python with optimum-quanto (default /root/qvenv/bin/python; "" skips it)
#        CQ_BENCH_MODES space-separated weights:optimizer list (default "int8:absmax float8:absmax int4:max int4:hqq")
#        CQ_BENCH_QUANTO_MODES the modes optimum-quanto is timed on (default "int8:absmax int4:max")
# Figures vary with machine load: take them on a quiet machine.
set -eu
B=${1:-build/release}
CK=${CQ_BENCH_CKPT:-$B/bench/synth_llama}
DISK_OUT=$B/bench/quantize_out
if [ -z "${CQ_BENCH_OUT:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then OUT=/dev/shm/cq_bench_out; else OUT=${CQ_BENCH_OUT:-$DISK_OUT}; fi
PY=${QUANTO_PYTHON-/root/qvenv/bin/python}
MODES=${CQ_BENCH_MODES:-"int8:absmax float8:absmax int4:max int4:hqq"}
QMODES=${CQ_BENCH_QUANTO_MODES:-"int8:absmax int4:max"}
CQ=$B/cquanto
[ -x "$CQ" ] && [ -x "$B/bench/gen_synth_ckpt" ] && [ -x "$B/bench/mem_read_bw" ] || {
    echo "bench_quantize: build first (make bench, or make B=$B $B/cquanto $B/bench/gen_synth_ckpt $B/bench/mem_read_bw)" >&2
    exit 1
}
[ -f "$CK/model.safetensors.index.json" ] || "$B/bench/gen_synth_ckpt" "$CK"
in_bytes=$(cat "$CK"/*.safetensors | wc -c)
threads=${CQ_THREADS:-$(nproc)}

# Warm the page cache so both tools read the input from memory, as the bandwidth probe does.
cat "$CK"/*.safetensors >/dev/null
bw=$("$B/bench/mem_read_bw" "$threads" | awk 'END {print $2}')
# The operating system's share: reading the input through the page cache, and writing an int8-sized
# output (half the input) into the output's file system. cquanto cannot beat these plain copies.
t_read=$( { /usr/bin/time -f %e cat "$CK"/*.safetensors >/dev/null; } 2>&1 )
mkdir -p "$OUT.floor"
t_write=$( { /usr/bin/time -f %e dd if=/dev/zero of="$OUT.floor/x" bs=8M count=$(( in_bytes / 2 / 8388608 )) status=none; } 2>&1 )
rm -rf "$OUT.floor"

measure() { # OUTFILE CMD...: runs CMD under /usr/bin/time -v; prints "seconds maxrss_kB user_s sys_s"
    local log=$1; shift
    /usr/bin/time -v "$@" >"$log.out" 2>"$log"
    local wall rss usr sys
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$log")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
    usr=$(awk -F': ' '/User time/ {print $2}' "$log")
    sys=$(awk -F': ' '/System time/ {print $2}' "$log")
    echo "$wall $rss $usr $sys"
}

echo "## cquanto quantize: $(basename "$CK") ($(awk -v b="$in_bytes" 'BEGIN {printf "%.2f GB", b / 1e9}') bf16, $(ls "$CK"/*.safetensors | wc -l) shards), $threads threads"
echo
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); memory-read bandwidth: $bw GB/s ($threads threads, bench/mem_read_bw)."
echo "Plain copies on this machine: reading the input through the page cache (cat > /dev/null) $t_read s;" \
     "writing half of it (an int8 output's size) to $(dirname "$OUT") $t_write s."
echo
echo "| weights | optimizer | seconds | GB/s of input | of read bandwidth | CPU s: user + system | peak RSS | optimum-quanto seconds | speed-up |"
echo "|---|---|---|---|---|---|---|---|---|"
mkdir -p "$(dirname "$OUT")"
for m in $MODES; do
    w=${m%%:*} o=${m##*:}
    # Best of three for cquanto (one run for HQQ, which takes long enough to be steady).
    secs=1e9 rss=0 cpu=-
    for run in 1 2 3; do
        rm -rf "$OUT"
        read -r s1 r1 u1 y1 < <(measure "$OUT.log" "$CQ" quantize "$CK" -o "$OUT" --weights "$w" --optimizer "$o" --quiet --threads "$threads")
        # The CPU split of the fastest run: user time is cquanto's own work, system time the
        # operating system's (input page faults, copying the output into the page cache).
        if awk -v a="$secs" -v b="$s1" 'BEGIN {exit !(b < a)}'; then cpu="$u1 + $y1"; fi
        secs=$(awk -v a="$secs" -v b="$s1" 'BEGIN {print (b < a ? b : a)}')
        rss=$(( r1 > rss ? r1 : rss ))
        [ "$o" = hqq ] && break
    done
    gbs=$(awk -v b="$in_bytes" -v s="$secs" 'BEGIN {printf "%.2f", b / s / 1e9}')
    pct=$(awk -v g="$gbs" -v bw="$bw" 'BEGIN {printf "%.0f%%", 100 * g / bw}')
    qsecs="-" ratio="-"
    if [ -n "$PY" ] && [ -x "$PY" ] && [[ " $QMODES " == *" $m "* ]] && "$PY" -c "import optimum.quanto" 2>/dev/null; then
        rm -rf "$OUT.quanto"
        qopt=$([ "$o" = absmax ] && echo default || echo "$o")
        read -r qsecs qrss _ _ < <(measure "$OUT.quanto.log" "$PY" tools/interop/quanto_quantize_bench.py "$CK" "$OUT.quanto" \
            --weights "q$w" --optimizer "$qopt" --threads "$threads")
        # The ratio uses quanto's in-process time (load + quantize + freeze + save), not the
        # interpreter's start-up and imports, which the wall time also holds.
        qtotal=$(grep -o '"total": [0-9.]*' "$OUT.quanto.log.out" | grep -o '[0-9.]*$')
        ratio=$(awk -v q="$qtotal" -v s="$secs" 'BEGIN {printf "%.1fx", q / s}')
        qsecs="$qtotal ($qsecs wall with imports, $(awk -v r="$qrss" 'BEGIN {printf "%.1f GB", r / 1048576}') RSS; steps $(tail -n 1 "$OUT.quanto.log.out"))"
        rm -rf "$OUT.quanto"
    fi
    echo "| $w | $o | $secs | $gbs | $pct | $cpu | $(awk -v r="$rss" 'BEGIN {printf "%.0f MB", r / 1024}') | $qsecs | $ratio |"
done
rm -rf "$OUT" "$OUT.log" "$OUT.log.out" "$OUT.quanto.log" "$OUT.quanto.log.out"
if [ "$OUT" != "$DISK_OUT" ]; then
    rm -rf "$DISK_OUT"
    read -r secs rss _ _ < <(measure "$DISK_OUT.log" "$CQ" quantize "$CK" -o "$DISK_OUT" --weights int8 --quiet --threads "$threads")
    echo
    echo "Outputs above went to $OUT (tmpfs). int8 with the output on the build folder's disk, fsync included:" \
         "$secs s ($(awk -v b="$in_bytes" -v s="$secs" 'BEGIN {printf "%.2f", b / s / 1e9}') GB/s of input)."
    rm -rf "$DISK_OUT" "$DISK_OUT.log" "$DISK_OUT.log.out"
fi
echo
# The largest tensor of a Llama checkpoint is the embedding (or lm_head): vocab x hidden bf16.
v=$(grep -o '"vocab_size": [0-9]*' "$CK/config.json" | grep -o '[0-9]*$')
h=$(grep -o '"hidden_size": [0-9]*' "$CK/config.json" | grep -o '[0-9]*$')
echo "Peak-RSS bound of the issue: 2 x largest tensor + 64 MB = $(awk -v b="$(( v * h * 2 ))" 'BEGIN {printf "%.0f MB", (2 * b + 64 * 1048576) / 1048576}')"
