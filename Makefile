# Thin wrapper over CMake: the two commands a new user needs are `make run` and `make test`.
BUILD   ?= build
JOBS    ?= $(shell nproc)
PIXDIFF := $(BUILD)/pixdiff
# Debian packages pixdiff builds and runs with (dataset-fashion-mnist: training/metrics data;
# OpenMPI: optional for the build, installed so the mpirun tests run, docs/scale-out.md).
DEPS := cmake gcc make pkg-config libopenblas-openmp-dev libfftw3-dev libpng-dev libyaml-dev zlib1g-dev \
        libssl-dev liblapacke-dev libplplot-dev plplot-driver-cairo dataset-fashion-mnist \
        openmpi-bin libopenmpi-dev

.PHONY: all deps build run test bench install clean sanitize fuzz fuzz-deps fuzz-build fuzz-smoke
all: build

# Installs only what is missing; silent and prompt-free, so it is safe to run again.
deps:
	@missing=$$(for p in $(DEPS) $(EXTRA_DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# Keyed on the generated Makefile, not CMakeCache.txt: a configure that failed (say, before
# `make deps`) leaves a cache but no Makefile, and the next `make` configures again.
$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

run: deps build
	$(PIXDIFF) sample --n 64 --out samples.png
	@echo "wrote samples.png"

test: deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	$(PIXDIFF) bench

# make install [PREFIX=DIR]: the binary, libpixdiff.so/.a, pixdiff.h, pixdiff.pc, the CMake
# package and share/pixdiff/{models,configs}; the tree can be moved afterwards.
install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

# Reliability (docs/testing.md "Testing"): the whole ctest suite built with ASan + UBSan (+ LSan,
# with the suppressions of tests/sanitize/lsan.supp), and the libFuzzer harnesses of tests/fuzz/
# run for FUZZ_SECONDS each from their seed corpora (clang; work and findings in FUZZ_WORK),
# FUZZ_JOBS of them side by side. `make fuzz-smoke` is CI's short run: every harness for
# FUZZ_SMOKE_SECONDS from its seeds alone (a fresh work folder), so any finding is this tree's.
SAN_BUILD    ?= build-asan
# SAN_TESTS: a ctest -R regex to run part of the suite sanitized; SAN_EXCLUDE: a ctest -E regex
# of tests left out (CI runs them all).
SAN_TESTS    ?=
SAN_EXCLUDE  ?=
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 15
FUZZ_WORK    ?= $(FUZZ_BUILD)/fuzz-work
FUZZ_JOBS    ?= $(JOBS)
FUZZ_SMOKE_SECONDS ?= 15
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0 \
           LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitize/lsan.supp:print_suppressions=0 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

sanitize: deps
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Release -DPD_SANITIZE=ON
	cmake --build $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && $(SAN_ENV) ctest --output-on-failure -j $(JOBS) $(if $(SAN_TESTS),-R '$(SAN_TESTS)') $(if $(SAN_EXCLUDE),-E '$(SAN_EXCLUDE)')

fuzz-deps:
	@$(MAKE) --no-print-directory deps EXTRA_DEPS="clang libclang-rt-14-dev libomp-dev"

fuzz-build: fuzz-deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DPD_FUZZ=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_all

fuzz: fuzz-build
	FUZZ_JOBS=$(FUZZ_JOBS) tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_WORK)

fuzz-smoke: fuzz-build
	rm -rf $(FUZZ_BUILD)/smoke-work
	FUZZ_JOBS=$(FUZZ_JOBS) tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS) $(FUZZ_BUILD)/smoke-work

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)
