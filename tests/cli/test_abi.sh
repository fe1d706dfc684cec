#!/usr/bin/env bash
# test_abi.sh - the shared library's surface: it exports exactly the CQ_API functions of
# include/cquanto/*.h (no cq__ internals), each layer header stands alone and includes only
# the layers below it, and a program built like an installed user's (include/ and the .so,
# nothing from src/) compiles, links and runs.
. "$(dirname "$0")/lib.sh"
B=${CQ_BUILD_DIR:-build/release}
SO=$B/libcquanto.so
CC=${CC:-cc}

expect "the shared library was built" test -f "$SO"
expect "nm -D shows no cq__ symbol" test "$(nm -D "$SO" | grep -c ' cq__')" -eq 0

sed -n 's/^CQ_API .*[^a-z0-9_]\(cq_[a-z0-9_]*\)(.*/\1/p' include/cquanto/*.h | sort -u >"$T/declared"
nm -D --defined-only "$SO" | awk '$2 == "T" { print $3 }' | sort -u >"$T/exported"
expect "the headers declare the API with CQ_API" test "$(wc -l <"$T/declared")" -gt 300
comm -23 "$T/declared" "$T/exported" >"$T/missing"
expect "every CQ_API function is exported: $(head -c 200 "$T/missing" | tr '\n' ' ')" test ! -s "$T/missing"
comm -13 "$T/declared" "$T/exported" >"$T/extra"
expect "nothing else is exported: $(head -c 200 "$T/extra" | tr '\n' ' ')" test ! -s "$T/extra"

# Each layer header compiles on its own, and includes only layers listed before it here.
layers="core quant kernels io convert nn models lm experimental"
rank=0
for h in $layers; do
    check "cquanto/$h.h stands alone" sh -c "echo '#include \"cquanto/$h.h\"' | $CC -std=c11 -Wall -Wextra -Werror -fsyntax-only -Iinclude -x c -"
    below=$(echo "$layers" | tr ' ' '\n' | head -n "$rank" | tr '\n' ' ')
    bad=""
    for inc in $(sed -n 's|^#include "cquanto/\([a-z]*\)\.h"|\1|p' "include/cquanto/$h.h"); do
        case " $below " in *" $inc "*) ;; *) bad="$bad $inc" ;; esac
    done
    expect "cquanto/$h.h includes only lower layers (not:$bad)" test -z "$bad"
    rank=$((rank + 1))
done
expect "the umbrella leaves experimental.h out" sh -c "! grep -q 'include \"cquanto/experimental.h\"' include/cquanto.h"

# A user's program: only include/ and the .so (an ASan build needs the sanitizer runtime first).
san=""
ldd "$SO" | grep -q libasan && san="-fsanitize=address,undefined"
cat >"$T/user.c" <<'EOF'
#include "cquanto.h"
#include <stdio.h>
int main(void) {
    cq_err err = {0};
    int64_t shape[2] = {4, 8};
    cq_tensor *w = NULL, *x = NULL;
    cq_qweight *q = NULL;
    if (cq_tensor_new(&w, CQ_F32, 2, shape, &err) != CQ_OK) return 1;
    for (int64_t i = 0; i < 32; i++) cq_store_f32(w->data, CQ_F32, i, (float)(i % 7) - 3.0f);
    if (cq_qweight_quantize(w, CQ_QINT4, CQ_OPT_DEFAULT, 0, &q, &err) != CQ_OK) return 2;
    if (cq_qweight_dequantize(q, CQ_F32, &x, &err) != CQ_OK) return 3;
    cq_error_stats s = {0};
    cq_error_stats_add(&s, w->data, CQ_F32, x->data, CQ_F32, 32);
    cq_error_stats_finish(&s);
    printf("%s %s %.1f\n", CQ_VERSION_STRING, cq_qtype_name(q->qtype), s.snr_db);
    cq_tensor_free(x);
    cq_tensor_free(w);
    cq_qweight_free(q);
    return 0;
}
EOF
check "a user's program compiles and links against include/ and the .so" \
    $CC -std=c11 -Wall -Wextra -Werror $san -Iinclude "$T/user.c" -o "$T/user" -L"$B" -lcquanto
check "it runs" env LD_LIBRARY_PATH="$B" "$T/user"
expect "it prints the version and the qtype" grep -q "^0\.1\.0 qint4 " "$T/out"
check "examples/digits_mlp.c builds the same way (with the experimental header)" \
    $CC -std=c11 -Wall -Wextra -Werror $san -Iinclude examples/digits_mlp.c -o "$T/digits" -L"$B" -lcquanto
finish
