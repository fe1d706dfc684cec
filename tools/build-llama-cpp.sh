#!/usr/bin/env bash
# build-llama-cpp.sh - builds llama.cpp, the peer that tools/make_gguf_fixtures.sh and the GGUF
# comparisons run against, from the llama-cpp-python 0.3.36 sdist on PyPI (vendor/llama.cpp).
# Run with --help for the options.
set -eu

VERSION=0.3.36
SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
TARGETS="llama-quantize llama-perplexity llama-bench llama-imatrix llama-simple llama-completion llama-tokenize"

usage() {
    cat <<EOF
usage: tools/build-llama-cpp.sh [--sdist FILE] [--prefix DIR] [--jobs N] [--force]

Builds llama.cpp (the copy vendored in the llama-cpp-python $VERSION sdist) with cmake and
clang-16 (Release, OpenMP from libomp-16-dev, GGML_NATIVE=ON) outside the repository, and
prints the folder holding the binaries on its last line.

  --sdist FILE   llama_cpp_python-$VERSION.tar.gz; default: the cache (PREFIX/../../dl),
                 downloaded there with 'pip download --no-deps --no-binary :all:' if absent
  --prefix DIR   where to build (default \${CQ_PEERS:-\$HOME/.cache/cquanto/peers}/llama.cpp)
  --jobs N       parallel compile jobs (default: nproc)
  --force        rebuild even if every binary is already there

Targets: $TARGETS, and cq-greedy: greedy decoding through
libllama that prints the generated token ids ("ids: ...") and then the text.
(llama-cli needs the server and is not built; llama-simple / llama-completion generate.)
GCC 12 is avoided on purpose: its build dies with SIGILL in ggml's AMX kernels on CPUs with AMX.
As root, missing Debian packages (cmake, clang-16, libomp-16-dev) are installed with apt-get.
EOF
}

sdist=""
prefix="${CQ_PEERS:-$HOME/.cache/cquanto/peers}/llama.cpp"
jobs=$(nproc 2>/dev/null || echo 2)
force=0
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --sdist)  sdist=${2:?--sdist needs a file}; shift 2 ;;
        --prefix) prefix=${2:?--prefix needs a folder}; shift 2 ;;
        --jobs|-j) jobs=${2:?--jobs needs a number}; shift 2 ;;
        --force)  force=1; shift ;;
        *) echo "build-llama-cpp.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/ensure-deps.sh" llama

bindir="$prefix/build/bin"
built=1
for t in $TARGETS cq-greedy; do [ -x "$bindir/$t" ] || built=0; done
if [ $built = 1 ] && [ $force = 0 ]; then
    echo "llama.cpp already built in $bindir (--force rebuilds)" >&2
    echo "$bindir"
    exit 0
fi

# the sdist
if [ -z "$sdist" ]; then
    cache="$(dirname "$(dirname "$prefix")")/dl"
    sdist="$cache/llama_cpp_python-$VERSION.tar.gz"
    if [ ! -f "$sdist" ]; then
        mkdir -p "$cache"
        py=python3; [ -x /root/qvenv/bin/python ] && py=/root/qvenv/bin/python
        echo "downloading llama-cpp-python==$VERSION (sdist) into $cache" >&2
        # --no-build-isolation skips fetching build requirements: only the file is needed
        "$py" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
            -d "$cache" "llama-cpp-python==$VERSION" >&2 ||
        "$py" -m pip download -q --no-deps --no-binary :all: -d "$cache" "llama-cpp-python==$VERSION" >&2
    fi
fi
[ -f "$sdist" ] || { echo "build-llama-cpp.sh: no sdist at $sdist" >&2; exit 1; }
got=$(sha256sum "$sdist" | cut -d' ' -f1)
if [ "$got" != "$SDIST_SHA256" ]; then
    echo "build-llama-cpp.sh: $sdist has sha256 $got, expected $SDIST_SHA256" >&2
    exit 1
fi

src="$prefix/src"
if [ ! -f "$src/CMakeLists.txt" ]; then
    echo "extracting $sdist" >&2
    rm -rf "$prefix/src.tmp" && mkdir -p "$prefix/src.tmp"
    tar xzf "$sdist" -C "$prefix/src.tmp"
    top="$prefix/src.tmp/llama_cpp_python-$VERSION"
    commit=$(cat "$top/.git/modules/vendor/llama.cpp/HEAD" 2>/dev/null || echo unknown)
    rm -rf "$src"
    mv "$top/vendor/llama.cpp" "$src"
    rm -f "$src/.git"                      # points into the sdist's .git, which is not kept
    echo "$commit" > "$src/LLAMA_CPP_COMMIT"
    echo "llama-cpp-python $VERSION" > "$src/LLAMA_CPP_SOURCE"
    rm -rf "$prefix/src.tmp"
fi
commit=$(cat "$src/LLAMA_CPP_COMMIT")

t0=$(date +%s)
cmake -S "$src" -B "$prefix/build" -G "$(command -v ninja >/dev/null && echo Ninja || echo 'Unix Makefiles')" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16 \
    -DGGML_NATIVE=ON -DGGML_OPENMP=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_COMMIT="${commit:0:7}" -DLLAMA_BUILD_NUMBER=0 >&2
cmake --build "$prefix/build" -j "$jobs" --target $TARGETS >&2

# cq-greedy: greedy decoding that prints the token ids (llama-simple prints only the text)
cat > "$prefix/build/cq-greedy.c" <<'EOF'
/* cq-greedy -m MODEL [-n N] [-t THREADS] [-c CTX] [--no-eos-stop] PROMPT
   Greedy decoding with libllama, as llama-simple does (prompt tokenized with add_special and
   parse_special, so BOS when the model asks for it; stops at an end-of-generation token unless
   --no-eos-stop). Prints "prompt_ids: ...", "ids: ..." (generated, the end-of-generation token
   included), "stop: eog" or "stop: length", then "text: ..." (the generated pieces). */
#include "llama.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet(enum ggml_log_level level, const char *text, void *ud) {
    (void)ud;
    if (level >= GGML_LOG_LEVEL_WARN) fputs(text, stderr);
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL;
    int n_predict = 64, n_threads = 1, n_ctx = 0, eos_stop = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) model_path = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) n_predict = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-c") && i + 1 < argc) n_ctx = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-eos-stop")) eos_stop = 0;
        else prompt = argv[i];
    }
    if (!model_path || !prompt) {
        fprintf(stderr, "usage: %s -m MODEL [-n N] [-t THREADS] [-c CTX] [--no-eos-stop] PROMPT\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(model_path, mp);
    if (!model) { fprintf(stderr, "cq-greedy: cannot load %s\n", model_path); return 1; }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int n_prompt = -llama_tokenize(vocab, prompt, (int)strlen(prompt), NULL, 0, true, true);
    llama_token *toks = malloc(sizeof(llama_token) * (size_t)(n_prompt + n_predict + 1));
    if (llama_tokenize(vocab, prompt, (int)strlen(prompt), toks, n_prompt, true, true) < 0) {
        fprintf(stderr, "cq-greedy: tokenize failed\n"); return 1;
    }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx > 0 ? (uint32_t)n_ctx : (uint32_t)(n_prompt + n_predict);
    cp.n_batch = cp.n_ctx;
    cp.n_threads = cp.n_threads_batch = n_threads;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "cq-greedy: cannot create a context\n"); return 1; }
    struct llama_sampler *smpl = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(smpl, llama_sampler_init_greedy());

    printf("prompt_ids:");
    for (int i = 0; i < n_prompt; i++) printf(" %d", toks[i]);
    printf("\n");
    int n_gen = 0, eog = 0;
    struct llama_batch batch = llama_batch_get_one(toks, n_prompt);
    while (n_gen < n_predict) {
        if (llama_decode(ctx, batch)) { fprintf(stderr, "cq-greedy: decode failed\n"); return 1; }
        llama_token t = llama_sampler_sample(smpl, ctx, -1);
        toks[n_prompt + n_gen++] = t;
        if (eos_stop && llama_vocab_is_eog(vocab, t)) { eog = 1; break; }
        batch = llama_batch_get_one(&toks[n_prompt + n_gen - 1], 1);
    }
    printf("ids:");
    for (int i = 0; i < n_gen; i++) printf(" %d", toks[n_prompt + i]);
    printf("\nstop: %s\ntext: ", eog ? "eog" : "length");
    for (int i = 0; i < n_gen; i++) {
        char buf[256];
        int n = llama_token_to_piece(vocab, toks[n_prompt + i], buf, sizeof buf, 0, false);
        if (n > 0) fwrite(buf, 1, (size_t)n, stdout);
    }
    printf("\n");
    llama_sampler_free(smpl);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    free(toks);
    return 0;
}
EOF
clang-16 -std=c11 -O2 -o "$bindir/cq-greedy" "$prefix/build/cq-greedy.c" \
    -I"$src/include" -I"$src/ggml/include" -L"$bindir" -L"$prefix/build/src" -L"$prefix/build/ggml/src" \
    -lllama -lggml -lggml-base -Wl,-rpath,"$bindir" -Wl,-rpath,"$prefix/build/src" -Wl,-rpath,"$prefix/build/ggml/src"

echo "built llama.cpp $commit (llama-cpp-python $VERSION) in $(( $(date +%s) - t0 )) s" >&2
echo "$bindir"
