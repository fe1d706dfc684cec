#!/usr/bin/env bash
# test_malformed.sh - `cquanto inspect` on every file of the malformed corpus (tests/malformed,
# see make_corpus.py): exit 1, one line on stderr naming the file and the problem (the fragment
# expected.tsv gives), nothing on stdout. Under `make asan` this also proves no crash or leak.
. "$(dirname "$0")/lib.sh"

n=0
while IFS=$'\t' read -r file status fragment; do
    case $file in '#'*|'') continue ;; esac
    p=tests/malformed/$file
    n=$((n + 1))
    check_rc "$file: exit 1" 1 "$CQUANTO" inspect "$p"
    expect "$file: one line on stderr" [ "$(wc -l <"$T/err")" -eq 1 ]
    expect "$file: names the file and the problem" grep -qF "cquanto inspect: $p: " "$T/err"
    expect "$file: says '$fragment'" grep -qF -- "$fragment" "$T/err"
    expect "$file: nothing on stdout" [ ! -s "$T/out" ]
done <tests/malformed/expected.tsv
expect "at least 25 malformed files" [ $n -ge 25 ]
finish
