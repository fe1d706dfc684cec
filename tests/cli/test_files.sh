#!/usr/bin/env bash
# test_files.sh - the file rules of every checkpoint command (docs/CLI.md, "Files read and
# written"): inputs are never modified, nothing outside an input folder is read or published,
# special files never hang a command, signals stop a run at once and leave nothing behind, and
# the temp outputs of killed runs are cleaned up later. Each case failed before these rules.
. "$(dirname "$0")/lib.sh"

S=data/stories260K
t10() { timeout -k 2 10 "$@"; } # a hang counts as a failure (exit 124), not as a stuck suite

# A float checkpoint folder of our own (copied, so the test may link into it) and its int4 form.
mkdir -p "$T/f" && cp "$S"/* "$T/f/"
check "setup: quantize" "$CQUANTO" quantize "$T/f" -o "$T/q" --weights int4 --quiet
cp "$T/q/model.safetensors" "$T/q.orig"

# ---- 1. inputs are never modified --------------------------------------------------------------
refused() { # NAME CMD...: exit 1 with one line saying inputs are never modified
    local n=$1; shift
    check_rc "$n" 1 t10 "$@"
    expect "$n: says why" grep -q "inputs are never modified" "$T/err"
    expect "$n: one line" [ "$(wc -l <"$T/err")" -eq 1 ]
}
refused "dequantize over the input's own weights" "$CQUANTO" dequantize "$T/q" -o "$T/q/model.safetensors" --force
refused "dequantize over the qmap beside a file input" \
    "$CQUANTO" dequantize "$T/q/model.safetensors" -o "$T/q/quanto_qmap.json" --force
ln "$T/q/model.safetensors" "$T/hardlink.safetensors"
refused "dequantize onto a hard link of the input" "$CQUANTO" dequantize "$T/q" -o "$T/hardlink.safetensors" --force
refused "quantize into the input folder" "$CQUANTO" quantize "$T/f" -o "$T/f/q4" --weights int4
ln -s "$T/f" "$T/flink"
refused "quantize into the input through a folder link" "$CQUANTO" quantize "$T/flink" -o "$T/f/q4" --weights int4
refused "quantize over a folder holding the input" "$CQUANTO" quantize "$T/f" -o "$T" --weights int4 --force
refused "report chart over the input's qmap" "$CQUANTO" report "$T/f" "$T/q" --plot "$T/q/quanto_qmap.json"
expect "input weights unchanged" cmp -s "$T/q/model.safetensors" "$T/q.orig"
expect "input qmap unchanged" grep -q qint4 "$T/q/quanto_qmap.json"
expect "nothing written into the input folder" [ ! -e "$T/f/q4" ]

# An output that is a symbolic link, even a dangling one, is refused before any work.
ln -s "$T/nowhere" "$T/dangling"
check_rc "dangling link as -o" 1 t10 "$CQUANTO" quantize "$T/f" -o "$T/dangling" --weights int4
expect "dangling link: says so" grep -q "symbolic link" "$T/err"
expect "dangling link: no temp folder" [ -z "$(ls -A "$T" | grep '\.dangling\.tmp-')" ]
check_rc "dangling link as dequantize -o" 1 t10 "$CQUANTO" dequantize "$T/q" -o "$T/dangling" --force
expect "dangling link (dequantize): says so" grep -q "symbolic link" "$T/err"

# -o under a missing folder names that folder.
check_rc "-o under a missing folder" 1 t10 "$CQUANTO" quantize "$T/f" -o "$T/no/such/out" --weights int4
expect "missing folder named" grep -qF "the folder $T/no/such does not exist" "$T/err"
check_rc "dequantize -o under a missing folder" 1 t10 "$CQUANTO" dequantize "$T/q" -o "$T/no/x.safetensors"
expect "missing folder named (dequantize)" grep -qF "the folder $T/no does not exist" "$T/err"

# ---- 2. nothing outside the input is read or published ------------------------------------------
mkdir -p "$T/outside" && echo '{"secret": 1}' >"$T/outside/secret.json" && chmod 600 "$T/outside/secret.json"
mkdir -p "$T/side" && cp "$S"/* "$T/side/"
ln -s "$T/outside/secret.json" "$T/side/tokenizer.json"
echo private >"$T/side/private.txt" && chmod 600 "$T/side/private.txt"
check "side files: quantize" t10 "$CQUANTO" quantize "$T/side" -o "$T/side_q" --weights int4 --quiet
expect "a side-file link leading outside is not copied" [ ! -e "$T/side_q/tokenizer.json" ]
expect "  ...and the run says so" grep -q "tokenizer.json: not copied: a link to .*outside the input folder" "$T/err"
expect "a side file keeps its permissions (0600)" [ "$(stat -c %a "$T/side_q/private.txt")" = 600 ]
expect "other side files copied" cmp -s "$T/side_q/tok512.bin" "$S/tok512.bin"

mkdir -p "$T/cfg" && cp "$S/model.safetensors" "$T/cfg/" && ln -s "$T/outside/secret.json" "$T/cfg/config.json"
check_rc "config.json linking outside: refused" 1 t10 "$CQUANTO" quantize "$T/cfg" -o "$T/cfg_q" --weights int4
expect "  ...naming it" grep -q "config.json.*outside the folder" "$T/err"

# Shards: a link leading outside, a folder link, a subfolder: one rule for inspect and quantize.
mkdir -p "$T/sh" "$T/outside/d" && cp "$S/config.json" "$T/sh/" && cp "$S/model.safetensors" "$T/outside/d/m.safetensors"
ln -s "$T/outside/d/m.safetensors" "$T/sh/model-00001-of-00001.safetensors"
printf '{"metadata": {"total_size": 0}, "weight_map": {"model.norm.weight": "model-00001-of-00001.safetensors"}}\n' \
    >"$T/sh/model.safetensors.index.json"
for c in inspect "quantize -o $T/sh_q --weights int4"; do
    check_rc "shard linking outside: $c refuses" 1 t10 "$CQUANTO" $c "$T/sh"
    expect "  ...naming it" grep -q "outside the folder" "$T/err"
done
rm "$T/sh/model-00001-of-00001.safetensors" && ln -s "$T/outside/d" "$T/sh/d"
printf '{"metadata": {"total_size": 0}, "weight_map": {"model.norm.weight": "d/m.safetensors"}}\n' \
    >"$T/sh/model.safetensors.index.json"
check_rc "shard through a folder link: inspect refuses" 1 t10 "$CQUANTO" inspect "$T/sh"
rm "$T/sh/d" && mkdir "$T/sh/d" && cp "$S/model.safetensors" "$T/sh/d/m.safetensors"
check_rc "shard in a subfolder: inspect refuses" 1 t10 "$CQUANTO" inspect "$T/sh"
expect "  ...saying it is not beside the index" grep -q "not a file beside the index" "$T/err"
check_rc "shard in a subfolder: quantize refuses the same way" 1 t10 "$CQUANTO" quantize "$T/sh" -o "$T/sh_q" --weights int4
expect "  ...with the same message" grep -q "not a file beside the index" "$T/err"

# The Hugging Face cache links its snapshot files into the repo's blobs/: that is allowed.
mkdir -p "$T/hub/models--x/blobs" "$T/hub/models--x/snapshots/abc"
cp "$S/model.safetensors" "$T/hub/models--x/blobs/1111" && cp "$S/config.json" "$T/hub/models--x/blobs/2222"
ln -s ../../blobs/1111 "$T/hub/models--x/snapshots/abc/model.safetensors"
ln -s ../../blobs/2222 "$T/hub/models--x/snapshots/abc/config.json"
check "Hugging Face cache snapshot: quantize" t10 "$CQUANTO" quantize "$T/hub/models--x/snapshots/abc" -o "$T/hub_q" \
    --weights int4 --quiet
expect "  ...the same output as from the plain folder" cmp -s "$T/hub_q/model.safetensors" "$T/q/model.safetensors"

# ---- 3. special files never block a command ----------------------------------------------------
mkdir -p "$T/fifo_cfg" && cp "$S/model.safetensors" "$T/fifo_cfg/" && mkfifo "$T/fifo_cfg/config.json"
mkdir -p "$T/fifo_st" && cp "$S/config.json" "$T/fifo_st/" && mkfifo "$T/fifo_st/model.safetensors"
for d in fifo_cfg fifo_st; do
    check_rc "$d: quantize refuses at once" 1 t10 "$CQUANTO" quantize "$T/$d" -o "$T/${d}_q" --weights int4
    expect "$d: says not a regular file" grep -q "not a regular file" "$T/err"
done
check_rc "fifo_st: inspect refuses at once" 1 t10 "$CQUANTO" inspect "$T/fifo_st"
cp -r "$T/q" "$T/q_fifo" && rm "$T/q_fifo/quanto_qmap.json" && mkfifo "$T/q_fifo/quanto_qmap.json"
check_rc "fifo qmap: dequantize refuses at once" 1 t10 "$CQUANTO" dequantize "$T/q_fifo" -o "$T/q_fifo.safetensors"

# ---- 3. signals stop a run at once; killed runs are cleaned up later -----------------------------
# One 256 MB tensor of zeros (a sparse file), quantized with HQQ: a single long tensor.
big_st() { # FILE: one F32 [8192, 8192] tensor
    local h='{"w.weight":{"dtype":"F32","shape":[8192,8192],"data_offsets":[0,268435456]}}'
    while [ $(( ${#h} % 8 )) -ne 0 ]; do h="$h "; done
    { printf "$(printf '\\x%02x' $(( ${#h} & 255 )) $(( (${#h} >> 8) & 255 )) 0 0 0 0 0 0)"; printf '%s' "$h"; } >"$1"
    truncate -s $((8 + ${#h} + 268435456)) "$1"
}
mkdir -p "$T/big" && big_st "$T/big/model.safetensors"
# Waits until the run has made its temp folder (so it is inside the work), up to 20 s.
wait_for_temp() { for _ in $(seq 200); do ls -A "$T" | grep -q '\.bigq\.tmp-' && return; sleep 0.1; done; }
"$CQUANTO" quantize "$T/big" -o "$T/bigq" --weights int4 --optimizer hqq --threads 1 >"$T/out" 2>"$T/err" &
pid=$!
wait_for_temp
sleep 0.5
t0=$(date +%s%N)
kill -INT $pid
wait $pid
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "  SIGINT during one 256 MB HQQ tensor: exit after $ms ms"
expect "SIGINT in a long tensor: exit 1" [ $rc -eq 1 ]
expect "SIGINT in a long tensor: says interrupted" grep -q "interrupted" "$T/err"
expect "SIGINT in a long tensor: exits within a second ($ms ms)" [ "$ms" -lt 1000 ]
expect "SIGINT in a long tensor: no temp folder" [ -z "$(ls -A "$T" | grep '\.bigq\.tmp-')" ]

"$CQUANTO" quantize "$T/big" -o "$T/bigq" --weights int4 --optimizer hqq --threads 1 >"$T/out" 2>"$T/err" &
pid=$!
wait_for_temp
kill -KILL $pid
wait $pid 2>/dev/null
stale=$(ls -A "$T" | grep '\.bigq\.tmp-')
expect "SIGKILL leaves a temp folder (nothing can prevent that)" [ -n "$stale" ]
check "a later run with the same output" t10 "$CQUANTO" quantize "$T/f" -o "$T/bigq" --weights int4 --quiet
expect "  ...removes the dead run's temp folder" [ -z "$(ls -A "$T" | grep '\.bigq\.tmp-')" ]
expect "  ...and says so" grep -qF "removed $T/$stale, left by a run that was killed" "$T/err"
expect "  ...and writes its own output" [ -s "$T/bigq/model.safetensors" ]

# ---- small things ---------------------------------------------------------------------------
mkdir -p "$T/bare" && cp "$S/model.safetensors" "$T/bare/m.safetensors"
check "float8_e5m2 on a bare file" t10 "$CQUANTO" quantize "$T/bare/m.safetensors" -o "$T/bare_e5m2" --weights float8_e5m2
expect "  ...writes no empty config.json" [ ! -e "$T/bare_e5m2/config.json" ]

finish
