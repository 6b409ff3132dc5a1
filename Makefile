# The two commands a user needs: `make demo` and `make test`. Both install missing
# Debian packages first (scripts/install-deps.sh: demo only what building and running the
# binary needs, test everything), then configure and build with CMake (demo only the binary).
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_BUILD_TYPE ?= Release
EVENTMART := $(BUILD_DIR)/apps/eventmart
# A new build folder is made for Ninja when it is installed (scripts/install-deps.sh installs
# it): a fresh build of everything takes 2 min 54 s with it against about 3 min 35 s with
# Makefiles on this 2-core machine. A folder keeps the generator it was made with; a
# CMAKE_GENERATOR of the caller's wins. Decided when the recipe runs, after the packages.
CMAKE := CMAKE_GENERATOR="$${CMAKE_GENERATOR:-$$(command -v ninja >/dev/null && echo Ninja || echo 'Unix Makefiles')}" cmake

.PHONY: all deps deps-build configure build demo test test-clang sanitize soak bench mutants format clean regression package upgrade-test cross-replay fuzz bench-assertions

all: build

# What building and running `eventmart` needs (make demo), and everything the tests need too.
deps-build:
	@bash scripts/install-deps.sh build
deps:
	@bash scripts/install-deps.sh all

# The first configuration of a folder: without the tests (make demo needs none of their
# packages). `build` turns them on, and keeps them on.
$(BUILD_DIR)/CMakeCache.txt: | deps-build
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(CMAKE_BUILD_TYPE) -DEVENTMART_BUILD_TESTS=OFF

configure: deps
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(CMAKE_BUILD_TYPE) -DEVENTMART_BUILD_TESTS=ON

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Only what the demo needs: the build packages and the `eventmart` target.
demo: deps-build $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS) --target eventmart
	$(EVENTMART) sim

# The property tests run a fixed seed here, so the gate is reproducible; `make soak` explores.
# RC_PARAMS from the caller wins (e.g. RC_PARAMS="reproduce=..." to replay a failure).
# Tests run two per core: most of them wait on brokers, processes and timeouts, not on the CPU
# (on this 2-core machine the suite used 25% of both cores at -j 2; at -j 4 it took 253 s
# instead of 327 s). The timing-sensitive ones are RUN_SERIAL (tests/CMakeLists.txt).
TEST_JOBS ?= $(shell echo $$(( $(JOBS) * 2 )))
test: build
	RC_PARAMS="$${RC_PARAMS:-seed=20261126}" ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(TEST_JOBS)

# The same suite built with Clang 14 (Debian's clang) in its own folder: the code builds
# warning-free with both compilers. .ci/run runs it after `make test`.
CLANG_BUILD_DIR ?= build-clang
test-clang: deps
	$(CMAKE) -S . -B $(CLANG_BUILD_DIR) -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++
	cmake --build $(CLANG_BUILD_DIR) -j $(JOBS)
	RC_PARAMS="$${RC_PARAMS:-seed=20261126}" ctest --test-dir $(CLANG_BUILD_DIR) --output-on-failure -j $(TEST_JOBS)

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer, in its own folder.
SANITIZE_BUILD_DIR ?= build-sanitize
sanitize: deps
	cmake -S . -B $(SANITIZE_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEVENTMART_SANITIZE=ON
	cmake --build $(SANITIZE_BUILD_DIR) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  RC_PARAMS="$${RC_PARAMS:-seed=20261126}" ctest --test-dir $(SANITIZE_BUILD_DIR) --output-on-failure -j $(JOBS)

# Many more property cases and swarm seeds than `make test`. The seeds are printed first, so
# any failure can be replayed: RC_PARAMS="seed=N" for the properties, and the printed
# `eventmart sim ...` command for a swarm seed. SOAK_SEED=N reruns a soak exactly.
SOAK_SEED ?= $(shell date +%s)
SOAK_CASES ?= 3000
SOAK_SEEDS ?= 5000
soak: build
	@echo "soak: property seed $(SOAK_SEED), $(SOAK_CASES) cases each; swarm seeds $(SOAK_SEED)..$$(($(SOAK_SEED) + $(SOAK_SEEDS) - 1))"
	RC_PARAMS="seed=$(SOAK_SEED) max_success=$(SOAK_CASES)" ctest --test-dir $(BUILD_DIR) -L properties --output-on-failure
	$(EVENTMART) sim --faults swarm --customers 1000 --seeds $(SOAK_SEED)..$$(($(SOAK_SEED) + $(SOAK_SEEDS) - 1))

# The pinned seeds replay alike on arm64 (cross-built, run under qemu-user) and with GCC and
# Clang at -O0 and -O3 (scripts/cross-replay.sh; build-replay/).
cross-replay:
	bash scripts/cross-replay.sh

# libFuzzer on every decoder of untrusted bytes (tests/fuzz/), FUZZ_SECONDS each, built with
# Clang in build-fuzz/; what reaches new code is kept in tests/fuzz/corpus/, crashes in
# tests/fuzz/crashes/ (make test replays both).
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
fuzz: deps
	cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++ -DEVENTMART_FUZZ=ON -DEVENTMART_BUILD_TESTS=OFF
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target fuzz_capnp_wire fuzz_json_wire \
	  fuzz_device_input fuzz_scenario
	bash scripts/fuzz.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS)

# Single-line mutants of the real code (scripts/mutants.list), each built in a scratch copy
# (build-mutants/) and run against the tests and a swarm; see docs/testing.md.
mutants: deps
	bash scripts/mutants.sh

bench: build
	$(BUILD_DIR)/bench/eventmart-bench
	$(BUILD_DIR)/bench/eventmart-mqtt-bench
	$(BUILD_DIR)/bench/eventmart-scrape-bench
	$(BUILD_DIR)/bench/eventmart-ttb-bench
	$(BUILD_DIR)/bench/eventmart-localize-bench
	$(BUILD_DIR)/bench/eventmart-storm-bench --states 6 --children 10

# What the always-on checks cost: the simulator with and without them (build-noassert/), in
# turn, on a swarm and on a plain day; medians and their ratio (scripts/bench-assertions.sh).
bench-assertions: build
	bash scripts/bench-assertions.sh $(BUILD_DIR)

# Upgrades a store one service at a time from the previous release (built in build-previous/)
# to this build, under load and faults, on a real mosquitto (scripts/upgrade-test.sh).
upgrade-test: build
	BUILD_DIR=$(BUILD_DIR) bash scripts/upgrade-test.sh

# A Debian package of the shipped binary, its systemd units, deploy/ and the docs:
# build/eventmart_VERSION_ARCH.deb (sudo dpkg -i it; docs/deploy.md).
package: deps-build $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)
	cd $(BUILD_DIR) && cpack

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD_DIR) $(CLANG_BUILD_DIR) $(SANITIZE_BUILD_DIR) build-mutants build-previous \
	  build-replay build-fuzz build-noassert

# Adds a failing swarm seed to the regression corpus (scripts/add-regression.sh):
#   make regression SEED=N FOUND="what it found" [SIM_ARGS="--customers 1000"]
# FOUND is taken as written ($(value ...)), quoted for the shell.
quote = '$(subst ','\'',$(value $1))'
regression: build
	@test -n '$(value SEED)' -a -n $(call quote,FOUND) || { echo 'make regression SEED=N FOUND="what it found" [SIM_ARGS=...]' >&2; exit 2; }
	EVENTMART=$(CURDIR)/$(EVENTMART) bash scripts/add-regression.sh $(call quote,SEED) $(call quote,FOUND) $(SIM_ARGS)
