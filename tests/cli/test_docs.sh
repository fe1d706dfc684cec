#!/usr/bin/env bash
# test_docs.sh - the docs match the tree: no leftover scaffolding markers ("@@NAME@@", ownership
# notes, weak placeholder symbols), every "QUANTO-FORMAT.md N.M" citation names a section of
# docs/QUANTO-FORMAT.md (and no citation uses an older name), the folder tables of
# docs/ARCHITECTURE.md and README.md name folders that exist, every folder under src/ has an
# ARCHITECTURE.md row, each layer's "depends on" cell names exactly the layers its built objects
# call into, and the files docs/HOWTO.md names exist. Each check also runs on a planted bad tree,
# which it must reject.
. "$(dirname "$0")/lib.sh"

# Text files of the tree under $1 that docs and code comments live in (not this script, whose
# patterns would match themselves, nor build outputs or data).
text_files() {
    (cd "$1" && find src include tools tests docs bench fuzz examples scripts Makefile README.md \
        -type f \( -name '*.[ch]' -o -name '*.inc' -o -name '*.def' -o -name '*.md' -o -name '*.sh' \
        -o -name '*.py' -o -name Makefile \) -not -path 'tests/cli/test_docs.sh' 2>/dev/null | sort)
}

# No scaffolding left: prints offending lines, fails when there are any.
no_markers() {
    local root=$1 hits
    hits=$(cd "$root" && text_files . | xargs grep -nE '@@[A-Z0-9_]+@@|[Ss]ection owned by|owned by the [a-z]+ layer|__attribute__\(\(weak\)\)' 2>/dev/null)
    [ -z "$hits" ] || { echo "$hits" | head -5; return 1; }
}

# Every cited section exists; no citation in an older form ("spec 8.1", "quanto-format.md 3.1").
citations_resolve() {
    local root=$1 spec=$1/docs/QUANTO-FORMAT.md bad="" n
    [ -f "$spec" ] || { echo "no docs/QUANTO-FORMAT.md"; return 1; }
    local old
    old=$(cd "$root" && text_files . | xargs grep -nE '\bspec [0-9]|quanto-format\.md [0-9]|§ ?[0-9]' 2>/dev/null)
    [ -z "$old" ] || { echo "$old" | head -5; bad=1; }
    for n in $(cd "$root" && text_files . | xargs grep -ohE 'QUANTO-FORMAT\.md [0-9]+(\.[0-9]+)?(( ?[,-] ?| and | to )[0-9]+(\.[0-9]+)?)*' 2>/dev/null |
               sed 's/^QUANTO-FORMAT\.md //' | grep -oE '[0-9]+(\.[0-9]+)?' | sort -u); do
        if ! grep -qE "^#{2,3} ${n//./\\.}\.? " "$spec"; then echo "cited section $n is missing"; bad=1; fi
    done
    [ -z "$bad" ]
}

# Folder paths named in the first column of a markdown table ("| `src/core/` | ...").
table_folders() { sed -nE 's/^\| *(`[^|]*`) *\|.*/\1/p' "$1" | grep -oE '`[^`]+/`' | tr -d '`' | sort -u; }

# Every folder an ARCHITECTURE or README row names exists; every src/ folder has a row.
folders_match() {
    local root=$1 bad="" d
    for doc in docs/ARCHITECTURE.md README.md; do
        for d in $(table_folders "$root/$doc"); do
            [ -d "$root/$d" ] || { echo "$doc names $d, which does not exist"; bad=1; }
        done
    done
    for d in $(cd "$root" && find src -mindepth 1 -type d | sort); do
        table_folders "$root/docs/ARCHITECTURE.md" | grep -qxF "$d/" || { echo "docs/ARCHITECTURE.md has no row for $d/"; bad=1; }
    done
    [ -z "$bad" ]
}

# "layer dep" for every call from one library layer (src/<layer>/, sub-folders included) into
# another, read off the built objects: a symbol one imports that the other defines.
# Objects whose source is gone (a stale build folder) are left out.
deps_from_objects() {
    local o rel
    for o in $(find "$1/src" -name '*.o' | sort); do
        rel=${o#"$1"/src/}
        [ -f "src/${rel%.o}.c" ] && echo "$o"
    done | xargs nm -A 2>/dev/null | awk '
        { split($0, a, ":"); f = a[1]; sub(/.*\/src\//, "", f); sub(/\/.*/, "", f)
          n = split(a[2], w, " "); if (n < 2) next
          if (w[n-1] == "U") und[f SUBSEP w[n]] = 1; else if (w[n-1] ~ /^[TDBR]$/) def[w[n]] = f }
        END { for (k in und) { split(k, p, SUBSEP); d = def[p[2]]; if (d != "" && d != p[1]) print p[1], d } }' | sort -u
}
# The "depends on" cell of the ARCHITECTURE.md row of src/<layer>/.
deps_cell() { awk -F'|' -v row="\`src/$2/\`" '{ c = $2; gsub(/ /, "", c) } c == row { print $(NF-1) }' "$1/docs/ARCHITECTURE.md"; }
# Each top-level layer's row names exactly the layers it calls (outside libraries are free text).
deps_match() {
    local root=$1 objs=$2 bad="" l d cell layers
    layers=$(cd "$root" && find src -mindepth 1 -maxdepth 1 -type d | sed 's|src/||' | sort)
    deps_from_objects "$objs" >"$T/deps"
    [ -s "$T/deps" ] || { echo "no objects under $objs/src"; return 1; }
    for l in $layers; do
        cell=" $(deps_cell "$root" "$l" | tr ',' ' ') "
        for d in $(awk -v l="$l" '$1 == l { print $2 }' "$T/deps"); do
            case "$cell" in *" $d "*) ;; *) echo "src/$l/ calls into $d, which its row does not name"; bad=1 ;; esac
        done
        for d in $cell; do
            echo "$layers" | grep -qxF "$d" || continue
            grep -qxF "$l $d" "$T/deps" || { echo "the row of src/$l/ names $d, which it does not call"; bad=1; }
        done
    done
    [ -z "$bad" ]
}

expect "no scaffolding markers, ownership notes or weak placeholders" no_markers .
expect "every QUANTO-FORMAT.md citation resolves" citations_resolve .
expect "ARCHITECTURE.md and README.md folder rows match the tree" folders_match .
expect "ARCHITECTURE.md dependencies are those of the built objects" deps_match . "${CQ_BUILD_DIR:-build/release}"
# Files and folders docs/HOWTO.md names (placeholders such as src/<layer>/ aside) exist.
howto_paths_exist() {
    local root=$1 bad="" f
    for f in $(grep -oE '`[^` ]+`' "$root/docs/HOWTO.md" | tr -d '`' | grep / | grep -v '[<*$]' | sort -u); do
        [ -e "$root/$f" ] || { echo "docs/HOWTO.md names $f, which does not exist"; bad=1; }
    done
    [ -z "$bad" ]
}
expect "every file docs/HOWTO.md names exists" howto_paths_exist .
expect "the code cites QUANTO-FORMAT.md (at least 5 files)" test "$(text_files . | xargs grep -lE 'QUANTO-FORMAT\.md [0-9]' | wc -l)" -ge 5

# The same checks must reject a planted bad tree, naming what is wrong.
says() { local want=$1; shift; "$@" 2>&1 | grep -qF -- "$want"; }
bad=$T/bad
mkdir -p "$bad/src/core" "$bad/src/newlayer" "$bad/docs"
cp docs/QUANTO-FORMAT.md docs/ARCHITECTURE.md "$bad/docs/"
cp README.md "$bad/"
printf '/* @@CORE_API@@ */\n' >"$bad/src/core/a.c"
expect "a leftover marker is caught" says "@@CORE_API@@" no_markers "$bad"
printf '/* (section owned by src/core/) */\n' >"$bad/src/core/a.c"
expect "an ownership note is caught" says "owned by" no_markers "$bad"
printf '/* see QUANTO-FORMAT.md 8.1 and QUANTO-FORMAT.md 2.5, 77.3 */\n' >"$bad/src/core/a.c"
expect "a citation of a missing section is caught" says "cited section 77.3 is missing" citations_resolve "$bad"
printf '/* (spec 8.1) */\n' >"$bad/src/core/a.c"
expect "an old-style citation is caught" says "spec 8.1" citations_resolve "$bad"
printf '/* QUANTO-FORMAT.md 8.1, 2.5 and 9.7 */\n' >"$bad/src/core/a.c"
expect "good citations pass" citations_resolve "$bad"
expect "a row naming a missing folder is caught" says "names src/quant/, which does not exist" folders_match "$bad"
cp docs/HOWTO.md "$bad/docs/"
expect "a HOWTO.md path that does not exist is caught" says "names src/core/qtype.c, which does not exist" howto_paths_exist "$bad"
expect "a src/ folder without a row is caught" says "no row for src/newlayer/" folders_match "$bad"
sed -i 's/^\(| `src\/models\/` .*| \)core, nn |$/\1core, io |/' "$bad/docs/ARCHITECTURE.md"
rm -rf "$bad/src/newlayer"; mkdir -p "$bad/src/models" "$bad/src/io"
expect "a missing dependency is caught" says "src/models/ calls into nn" deps_match "$bad" "${CQ_BUILD_DIR:-build/release}"
expect "a stale dependency is caught" says "the row of src/models/ names io" deps_match "$bad" "${CQ_BUILD_DIR:-build/release}"
finish
