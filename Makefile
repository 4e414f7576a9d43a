# Thin wrapper over CMake: the two commands a new user needs are `make run` and `make test`.
BUILD   ?= build
JOBS    ?= $(shell nproc)
PIXDIFF := $(BUILD)/pixdiff
# Debian packages pixdiff builds and runs with (dataset-fashion-mnist: training/metrics data;
# OpenMPI: optional for the build, installed so the mpirun tests run, docs/scale-out.md).
DEPS := cmake gcc make pkg-config libopenblas-openmp-dev libfftw3-dev libpng-dev libyaml-dev zlib1g-dev \
        libssl-dev liblapacke-dev libplplot-dev plplot-driver-cairo dataset-fashion-mnist \
        openmpi-bin libopenmpi-dev

.PHONY: all deps build run test bench install clean
all: build

# Installs only what is missing; silent and prompt-free, so it is safe to run again.
deps:
	@missing=$$(for p in $(DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
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

clean:
	rm -rf $(BUILD)
