# cquanto - GNU Make build. `make help` lists the targets.
#
# Build directories: build/release (default), build/asan, build/debug. BUILD=asan make test
# is what `make asan` does. ISA flags are given per file (kernel files only); the library is
# never built with -march=native.

PREFIX  ?= /usr/local
BUILD   ?= release
B       ?= build/$(BUILD)
CC      ?= cc
ARCH    := $(shell $(CC) -dumpmachine | cut -d- -f1)
JOBS    ?= 2

OPT_release := -O2 -g
OPT_debug   := -O0 -g3
OPT_asan    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDOPT_asan  := -fsanitize=address,undefined

CPPFLAGS_ALL := -Iinclude -Isrc -D_GNU_SOURCE $(CPPFLAGS)
# -fvisibility=hidden: the shared library exports only what the public headers mark CQ_API;
# the CLI, tests, fuzz replays and benches link the static library, so cq__ internals stay
# reachable for them.
CFLAGS_ALL   := -std=c11 -Wall -Wextra -Werror -ffp-contract=off -fPIC -fvisibility=hidden -fopenmp -MMD -MP \
                $(OPT_$(BUILD)) $(CFLAGS)
LDLIBS_ALL   := -ljansson -lpcre2-8 -lopenblas -lz -lm -fopenmp $(LDOPT_$(BUILD)) $(LDLIBS)

# ---- sources ---------------------------------------------------------------------------
LIB_SRC := $(sort $(shell find src -name '*.c'))
ifeq ($(ARCH),x86_64)
LIB_SRC := $(filter-out src/kernels/arm/%,$(LIB_SRC))
else ifeq ($(ARCH),aarch64)
LIB_SRC := $(filter-out src/kernels/x86/%,$(LIB_SRC))
else
LIB_SRC := $(filter-out src/kernels/arm/% src/kernels/x86/%,$(LIB_SRC))
endif
CLI_SRC   := $(sort $(wildcard tools/cquanto/*.c))
TEST_SRC  := $(sort $(wildcard tests/*.c))
EX_SRC    := $(sort $(wildcard examples/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))
FUZZ_SRC  := $(sort $(wildcard fuzz/fuzz_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(B)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(B)/%.o)

# ---- per-file ISA flags (kernel files only) ----------------------------------------------
$(B)/src/kernels/x86/%_avx2.o:   ISAFLAGS := -mavx2 -mfma -mf16c
$(B)/src/kernels/x86/%_avx512.o: ISAFLAGS := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl \
                                             -mavx512dq -mavx512vnni -mavx512bf16
$(B)/src/kernels/x86/%_amx.o:    ISAFLAGS := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl \
                                             -mavx512dq -mavx512vnni -mamx-tile -mamx-int8
$(B)/src/kernels/arm/%_neon.o:   ISAFLAGS := -march=armv8.2-a+dotprod+fp16

.PHONY: all lib cli tests examples test test-full asan fuzz bench demo install uninstall clean help deps \
        test-aarch64
all: cli examples

# Keep the objects of programs built by pattern rules (examples, fuzz replays, benches).
.SECONDARY:

help:
	@echo "make            build the library (static and shared), the cquanto CLI and the examples"
	@echo "make demo       the optimum-quanto workflow on the bundled LeNet + MNIST"
	@echo "make test       build and run every test suite (closing line: N passed, N failed)"
	@echo "make test-full  the same plus the long sweeps"
	@echo "make asan       the test suite under AddressSanitizer and UBSan"
	@echo "make fuzz       build the libFuzzer targets with clang and run each briefly"
	@echo "make bench      kernel and quantization benchmarks (see BENCHMARKS.md)"
	@echo "make test-aarch64  kernel tests cross-compiled for aarch64 and run under qemu-user"
	@echo "make install    PREFIX=$(PREFIX): library, headers, cquanto, pkg-config file"

# Missing Debian packages are installed when running as root; otherwise the exact apt-get
# line is printed and the build stops.
DEPS_STAMP := build/.deps-base
$(DEPS_STAMP): scripts/ensure-deps.sh
	@scripts/ensure-deps.sh base
	@mkdir -p build && touch $@
deps: $(DEPS_STAMP)

$(B)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(ISAFLAGS) -c $< -o $@

lib: $(B)/libcquanto.a $(B)/libcquanto.so
$(B)/libcquanto.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(B)/libcquanto.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDLIBS_ALL)

cli: $(B)/cquanto
$(B)/cquanto: $(CLI_OBJ) $(B)/libcquanto.a
	$(CC) -o $@ $(CLI_OBJ) $(B)/libcquanto.a $(LDLIBS_ALL)

examples: $(EX_SRC:examples/%.c=$(B)/examples/%)
$(B)/examples/%: $(B)/examples/%.o $(B)/libcquanto.a
	$(CC) -o $@ $< $(B)/libcquanto.a $(LDLIBS_ALL)

tests: $(B)/tests/cq_tests $(B)/cquanto $(B)/libcquanto.so $(FUZZ_SRC:fuzz/fuzz_%.c=$(B)/fuzz/replay_%)
$(B)/tests/cq_tests: $(TEST_OBJ) $(B)/libcquanto.a
	$(CC) -o $@ $(TEST_OBJ) $(B)/libcquanto.a $(LDLIBS_ALL)

# Replay drivers: each fuzz target linked with a main() that feeds it every corpus file, so
# past crashes stay regression tests inside `make test` without libFuzzer.
$(B)/fuzz/replay_%: $(B)/fuzz/fuzz_%.o $(B)/fuzz/replay_main.o $(B)/libcquanto.a
	$(CC) -o $@ $(B)/fuzz/fuzz_$*.o $(B)/fuzz/replay_main.o $(B)/libcquanto.a $(LDLIBS_ALL)

test: tests examples
	tests/run_tests.sh $(B)
test-full: tests examples
	tests/run_tests.sh $(B) --full

asan:
	$(MAKE) BUILD=asan test

FUZZ_B := build/fuzz
# The fuzz targets link one sanitized library built with clang: every layer (fuzz_pipeline runs
# the whole checkpoint pipeline) with only the reference kernels, since the x86/arm kernel files
# need per-file ISA flags. FUZZ_TARGETS=pipeline picks targets, FUZZ_SECONDS the time per target.
FUZZ_LIB_SRC := $(filter-out src/kernels/x86/% src/kernels/arm/%,$(LIB_SRC))
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -DCQ_KERNELS_REF_ONLY -Iinclude -Isrc -g -O1 -fopenmp -ffp-contract=off \
                -fsanitize=address,undefined
FUZZ_TARGETS ?= $(FUZZ_SRC:fuzz/fuzz_%.c=%)
$(FUZZ_B)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_B)/libcquanto_fuzz.a: $(FUZZ_LIB_SRC:%.c=$(FUZZ_B)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^
fuzz: $(DEPS_STAMP)
	@scripts/ensure-deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZ_B)/libcquanto_fuzz.a
	@for n in $(FUZZ_TARGETS); do \
	  echo "fuzz target $$n"; \
	  clang $(FUZZ_CFLAGS) -fsanitize=fuzzer fuzz/fuzz_$$n.c $(FUZZ_B)/libcquanto_fuzz.a -o $(FUZZ_B)/fuzz_$$n \
	    -ljansson -lpcre2-8 -lopenblas -lz -lm || exit 1; \
	  mkdir -p $(FUZZ_B)/corpus_$$n; \
	  $(FUZZ_B)/fuzz_$$n -max_total_time=$${FUZZ_SECONDS:-30} $(FUZZ_B)/corpus_$$n fuzz/corpus/$$n || exit 1; \
	done

BENCH_STAMP := build/.deps-bench
$(BENCH_STAMP): scripts/ensure-deps.sh | $(DEPS_STAMP)
	@scripts/ensure-deps.sh bench
	@touch $@
$(B)/bench/%: $(B)/bench/%.o $(B)/libcquanto.a | $(BENCH_STAMP)
	$(CC) -o $@ $< $(B)/libcquanto.a -ldnnl $(LDLIBS_ALL)
bench: $(BENCH_SRC:bench/%.c=$(B)/bench/%) $(B)/cquanto
	bench/run_all.sh $(B)

demo: $(B)/cquanto
	$(B)/cquanto demo

# ---- install ----------------------------------------------------------------------------
install: lib cli
	install -d $(DESTDIR)$(PREFIX)/include/cquanto $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/cquanto.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/cquanto/*.h $(DESTDIR)$(PREFIX)/include/cquanto/
	install -m 644 $(B)/libcquanto.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(B)/libcquanto.so $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(B)/cquanto $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(shell sed -n 's/^#define CQ_VERSION_STRING "\(.*\)"/\1/p' include/cquanto/core.h)|g' \
	    cquanto.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/cquanto.pc
uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/cquanto
	rm -f $(DESTDIR)$(PREFIX)/include/cquanto.h $(DESTDIR)$(PREFIX)/lib/libcquanto.a \
	      $(DESTDIR)$(PREFIX)/lib/libcquanto.so $(DESTDIR)$(PREFIX)/bin/cquanto \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/cquanto.pc

clean:
	rm -rf build

# ---- aarch64 (cross-compiled kernel tests under qemu-user) -------------------------------
# The kernel tests need only core + kernels, so they cross-compile without jansson or BLAS.
# Both dispatch levels really execute: CQ_ISA=ref, then the NEON (dot product) level.
A64_CC   ?= aarch64-linux-gnu-gcc
A64_B    := build/aarch64
A64_QEMU ?= qemu-aarch64 -L /usr/aarch64-linux-gnu
A64_SRC  := $(sort $(wildcard src/core/*.c) $(shell find src/kernels -name '*.c' -not -path '*/x86/*'))
A64_TSRC := tests/tst_main.c $(sort $(wildcard tests/test_kernels*.c))
A64_OBJ  := $(A64_SRC:%.c=$(A64_B)/%.o) $(A64_TSRC:%.c=$(A64_B)/%.o)
A64_DEPS := build/.deps-aarch64

$(A64_DEPS): scripts/ensure-deps.sh
	@scripts/ensure-deps.sh aarch64
	@mkdir -p build && touch $@
$(A64_B)/src/kernels/arm/%_neon.o: A64_ISA := -march=armv8.2-a+dotprod+fp16
$(A64_B)/%.o: %.c | $(A64_DEPS)
	@mkdir -p $(@D)
	$(A64_CC) $(CPPFLAGS_ALL) -std=c11 -Wall -Wextra -Werror -ffp-contract=off -fopenmp -MMD -MP -O2 -g \
	    $(A64_ISA) -c $< -o $@
$(A64_B)/cq_kernel_tests: $(A64_OBJ)
	$(A64_CC) -o $@ $^ -fopenmp -lm
test-aarch64: $(A64_B)/cq_kernel_tests
	@for isa in ref neon; do \
	  echo "== aarch64 kernels (CQ_ISA=$$isa, qemu-user)"; \
	  CQ_ISA=$$isa $(A64_QEMU) $(A64_B)/cq_kernel_tests kernel || exit 1; \
	done

-include $(shell find build -name '*.d' 2>/dev/null)
