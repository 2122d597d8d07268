# mnistd build.
#
#   make                 build build/mnistd (warnings on)
#   make test            install missing test dependencies, build, run every test
#   make test SANITIZER=address|undefined|thread   the whole suite on a
#                        sanitized build (address also includes UBSan)
#   make check           build and run tests without installing anything or
#                        a sanitizer pass (TESTS="test_pool test_http" picks)
#   make unit            the same for the C test programs alone
#   make bench           speed figures against PyTorch measured in the same run
#   make run             build and start the daemon on a model repository
#                        (build/state/models) seeded with the shipped model
#   make test-fresh      the README's two commands in a new Debian 12 root (slow)
#   make model           retrain the shipped model with the recipe
#   make robustness      train the augmented recipe and print the robustness
#                        table (scripts/robustness.sh)
#
# Objects of a sanitizer build go to build/<sanitizer>/ so that a normal and a
# sanitized build can live side by side.

CC       ?= cc
STD      := -std=c11 -D_GNU_SOURCE
WARN     := -Wall -Wextra -Wstrict-prototypes -Wshadow
OPT      ?= -O3
# A portable baseline: the hot loops are compiled again for AVX2+FMA and
# AVX-512 (model/isa/kernels.c) and chosen at startup from what the CPU has,
# so one binary runs, at full speed, on any x86-64 CPU of the last 15 years.
ARCH     ?= -march=x86-64-v2
DEBUG    ?= -g
CFLAGS   ?=
LDFLAGS  ?=
ifeq ($(CI),true)
WERROR   ?= -Werror
endif

SANITIZER ?=
ifeq ($(SANITIZER),)
BUILD    := build
MALLOC   := -ljemalloc
SANFLAGS :=
else ifeq ($(SANITIZER),address)
BUILD    := build/address
MALLOC   :=
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -DMNISTD_SANITIZER=1
else ifeq ($(SANITIZER),undefined)
BUILD    := build/undefined
MALLOC   :=
SANFLAGS := -fsanitize=undefined -fno-sanitize-recover=all -DMNISTD_SANITIZER=1
else ifeq ($(SANITIZER),thread)
BUILD    := build/thread
MALLOC   :=
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer -DMNISTD_SANITIZER=1
else
$(error SANITIZER must be address, undefined or thread)
endif

VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GITREV   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DEFS     := -DMNISTD_VERSION=\"$(VERSION)\" -DMNISTD_GITREV=\"$(GITREV)\"
ALLCFLAGS = $(STD) $(WARN) $(WERROR) $(OPT) $(ARCH) $(DEBUG) $(SANFLAGS) $(DEFS) -I. -pthread -MMD -MP $(CFLAGS)
# BLAS=path/to/libopenblas.a links OpenBLAS statically: only the routines
# used (sgemm, for every CPU) instead of the whole shared library
# (docker/Dockerfile does it to keep the image small).
BLAS     ?= -lopenblas
MODEL_LIBS  := $(BLAS) -lpng -lz -lcjson -lm
SERVER_LIBS := -lmicrohttpd -lgnutls
LIBS     = $(SERVER_LIBS) $(MODEL_LIBS) $(MALLOC) -pthread

MODEL_SRC  := $(sort $(wildcard model/*.c))
SERVER_SRC := $(sort $(wildcard server/*.c))
API_SRC    := $(sort $(wildcard api/*.c))
# cmd/: the daemon's assembly and the command line; main.c alone stays out of
# the library, so tests can link the commands.
CMD_SRC    := $(sort $(filter-out cmd/main.c,$(wildcard cmd/*.c)))
# One object of model/isa/kernels.c per kernel level (model/kernels.h), each
# with its instruction set; on other CPU families only the portable one.
KERNEL_LEVELS := portable
ifneq ($(filter x86_64 amd64,$(firstword $(subst -, ,$(shell $(CC) -dumpmachine)))),)
KERNEL_LEVELS += avx2 avx512
DEFS     += -DMNISTD_KERNELS_X86=1
endif
ISA_portable :=
ISA_avx2     := -march=x86-64-v3
ISA_avx512   := -march=x86-64-v4
KERNEL_OBJ := $(KERNEL_LEVELS:%=$(BUILD)/obj/model/isa/kernels-%.o)
# sqrtf without errno: its argument in Adam's update is never negative, and
# the errno branch kept that loop from being vectorised.
KERNEL_FLAGS := -fno-math-errno
# The integer kernels of int8 inference (model/qkernels.h), the same way;
# the avx512 one also uses AVX512-VNNI, and runs only where the CPU has it,
# and avxvnni AVX-VNNI (VEX) at the avx2 level where the CPU has that.
# avxvnni_evex is avxvnni's code in AVX512-VNNI's encoding, for the tests.
QKERNEL_LEVELS := $(KERNEL_LEVELS)
ifneq ($(filter avx2,$(KERNEL_LEVELS)),)
QKERNEL_LEVELS += avxvnni avxvnni_evex
endif
QISA_portable :=
QISA_avx2     := -march=x86-64-v3
QISA_avxvnni  := -march=x86-64-v3 -mavxvnni -DQK_VNNI256
QISA_avxvnni_evex := -march=x86-64-v4 -mavx512vnni -DQK_VNNI256 -DQK_VNNI256_EVEX
QISA_avx512   := -march=x86-64-v4 -mavx512vnni
QKERNEL_OBJ := $(QKERNEL_LEVELS:%=$(BUILD)/obj/model/isa/qkernels-%.o)
MODEL_OBJ  := $(MODEL_SRC:%.c=$(BUILD)/obj/%.o) $(KERNEL_OBJ) $(QKERNEL_OBJ)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/obj/%.o)
API_OBJ    := $(API_SRC:%.c=$(BUILD)/obj/%.o)
CMD_OBJ    := $(CMD_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ   := $(BUILD)/obj/cmd/main.o
LIB_OBJ    := $(MODEL_OBJ) $(SERVER_OBJ) $(API_OBJ) $(CMD_OBJ)

TEST_SRC   := $(sort $(wildcard tests/unit/test_*.c))
TEST_BIN   := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC   := $(sort $(wildcard tests/tools/*.c bench/*.c))
TOOL_BIN   := $(TOOL_SRC:%.c=$(BUILD)/%)

.PHONY: all test check unit bench run model robustness deps-build deps-test deps-bench clean fuzz check-deploy test-fresh
all: $(BUILD)/mnistd

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c $< -o $@

$(KERNEL_OBJ): $(BUILD)/obj/model/isa/kernels-%.o: model/isa/kernels.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(ISA_$*) $(KERNEL_FLAGS) -DKERNELS_ISA=$* -c $< -o $@

$(QKERNEL_OBJ): $(BUILD)/obj/model/isa/qkernels-%.o: model/isa/qkernels.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(QISA_$*) -DQKERNELS_ISA=$* -c $< -o $@

# openapi.yaml is built into api/embed.o with .incbin, which -MMD does not see.
$(BUILD)/obj/api/embed.o: openapi.yaml

$(BUILD)/libmnistd.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/mnistd: $(MAIN_OBJ) $(BUILD)/libmnistd.a
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/test.h $(BUILD)/libmnistd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmnistd.a $(LIBS)

$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/libmnistd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmnistd.a $(LIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libmnistd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmnistd.a $(LIBS)

# Data for tests and benchmarks comes through the same setting a user has:
# MNISTD_DATA. It defaults to ../shared/data/mnist when that folder exists.
MNISTD_DATA ?= $(if $(wildcard ../shared/data/mnist),$(abspath ../shared/data/mnist),)
export MNISTD_DATA

deps-build:
	@bash scripts/deps.sh build
deps-test:
	@bash scripts/deps.sh test
deps-bench:
	@bash scripts/deps.sh bench

# A plain `make test` also runs the C test programs a second time, built with
# AddressSanitizer + UndefinedBehaviorSanitizer (build/address), and the
# concurrency tests a third, under ThreadSanitizer (build/thread), so every
# run, CI's included, has sanitizer passes. SANITIZER_PASS=0 skips them.
SANITIZER_PASS ?= 1
TSAN_PASS_TESTS := test_batcher test_pool test_modelstore test_jobs test_explainer
test: deps-test
	$(MAKE) --no-print-directory $(BUILD)/mnistd $(TEST_BIN) $(TOOL_BIN)
ifeq ($(SANITIZER)$(SANITIZER_PASS),1)
	$(MAKE) --no-print-directory SANITIZER=address build/address/mnistd \
	  $(TEST_SRC:tests/unit/%.c=build/address/tests/%)
	$(MAKE) --no-print-directory SANITIZER=thread $(TSAN_PASS_TESTS:%=build/thread/tests/%)
	@BUILD=$(BUILD) SANITIZER= ASAN_PASS_BUILD=build/address TSAN_PASS_BUILD=build/thread \
	  TSAN_PASS_TESTS="$(TSAN_PASS_TESTS)" bash tests/run.sh
else
	@BUILD=$(BUILD) SANITIZER=$(SANITIZER) bash tests/run.sh
endif

# The inner loop: no dependency check, no sanitizer pass, and only the C
# test programs that TESTS names (all when TESTS is empty) are built.
CHECK_BIN = $(if $(TESTS),$(filter $(addprefix $(BUILD)/tests/,$(TESTS)),$(TEST_BIN)),$(TEST_BIN))
check:
	$(MAKE) --no-print-directory $(BUILD)/mnistd $(CHECK_BIN) $(TOOL_BIN)
	@BUILD=$(BUILD) SANITIZER=$(SANITIZER) bash tests/run.sh
unit:
	$(MAKE) --no-print-directory $(CHECK_BIN)
	@BUILD=$(BUILD) SANITIZER=$(SANITIZER) SUITES=unit bash tests/run.sh

bench: deps-bench
	$(MAKE) --no-print-directory $(BUILD)/mnistd $(TOOL_BIN)
	@BUILD=$(BUILD) bash bench/run.sh

# The daemon serves a model repository in build/state/models: the shipped
# model seeds it as its first version (the file itself is never written),
# training jobs add versions, activation and rollback switch between them.
run: deps-build
	$(MAKE) --no-print-directory $(BUILD)/mnistd
	@mkdir -p build/state
	./$(BUILD)/mnistd serve --model-dir build/state/models --model models/mnist-cnn.safetensors $(if $(MNISTD_DATA),--data $(MNISTD_DATA),)

model: deps-build
	$(MAKE) --no-print-directory $(BUILD)/mnistd
	./$(BUILD)/mnistd train --data "$(MNISTD_DATA)" --epochs 5 --seed 1 --threads 2 --out models/mnist-cnn.safetensors

robustness: deps-build
	$(MAKE) --no-print-directory $(BUILD)/mnistd
	MNISTD_BIN=$(BUILD)/mnistd bash scripts/robustness.sh

# The Dockerfile, compose and Kubernetes checks alone (they run in `make test` too).
check-deploy: deps-test
	$(MAKE) --no-print-directory $(BUILD)/mnistd
	@TESTS=test_deploy SANITIZER_PASS=0 BUILD=$(BUILD) bash tests/run.sh

# The README's two commands on a fresh Debian 12 root: debootstrap, git and
# make, then chroot (root; about an hour). Not part of `make test`.
test-fresh:
	@bash tests/fresh/run.sh

clean:
	rm -rf build

# Header dependencies (-MMD) of this $(BUILD) only.
-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(TEST_BIN:=.d) $(TOOL_BIN:=.d)

# Fuzzing: libFuzzer harnesses in tests/fuzz/, built with clang under
# ASan+UBSan into build/fuzz/ (never with jemalloc). Each harness runs for
# FUZZ_SECONDS; FUZZ_TARGETS picks some (png multipart idx ckpt ckpt_header
# json_train json_evaluate v2).
# Crash inputs go to build/fuzz/artifacts/; see tests/fuzz/README.md.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz: deps-test
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh run $(FUZZ_TARGETS)

# The web page is built into api/web.o with .incbin, which -MMD does not see.
$(BUILD)/obj/api/web.o: web/index.html web/app.js web/style.css
