# Ferrocast: the commands a developer and CI use. `make run` and `make test` are the quick start.

SHELL := bash
CARGO ?= cargo
# rustup installs into ~/.cargo/bin, which a fresh login shell may not have on PATH yet.
export PATH := $(HOME)/.cargo/bin:$(PATH)
# An external CARGO_TARGET_DIR (CI keeps one outside the clone) is respected.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
BIN := $(TARGET_DIR)/release/ferrocast
# npm installs from the committed lock files: hls.js, which the player page serves from
# http.assets_dir, and playwright-core, which drives Debian's Chromium in the browser tests (it
# never downloads a browser). npm keeps the packages' old file times, so each marker is touched:
# `npm ci` runs again only when the marker is missing or the lock file is newer.
PLAYER_JS := player/node_modules/hls.js/dist/hls.min.js
PLAYWRIGHT := tests/browser/node_modules/playwright-core/package.json

.PHONY: deps build run test test-quick test-e2e test-rust slowest test-deploy lint check-layers fuzz-build fuzz node-deps

## deps: install the Debian packages and tools the build and the tests need (no-op when present)
deps:
	scripts/install-deps.sh

## node-deps: hls.js for the player page and playwright-core for the browser tests (npm ci, when needed)
node-deps: $(PLAYER_JS) $(PLAYWRIGHT)

$(PLAYER_JS): player/package-lock.json
	npm ci --prefix player --no-audit --no-fund
	touch $@

$(PLAYWRIGHT): tests/browser/package-lock.json
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund
	touch $@

## build: release build of the ferrocast binary, and the player's hls.js
build: $(PLAYER_JS)
	$(CARGO) build --release --locked -p ferrocast

## run: install, build and serve on the default ports (HTTP 8080, RTMP 1935, SRT 9000) with the demo stream
run: deps
	$(MAKE) --no-print-directory $(PLAYER_JS)
	$(CARGO) build --release --locked -p ferrocast
	$(BIN) serve --demo

## test: the whole suite: unit, property and end-to-end tests (browser ones included) through
## cargo-nextest with .config/nextest.toml (a process and a time limit per test, CPU-bound and
## timing tests alone, the rest side by side), the doc tests, every fuzz target on its seeds, and
## the deployment checks (Helm/kustomize/checkov/promtool, and the container image built and run
## with podman around the binary the tests just built); then the 10 slowest tests
##
## Beside the suite, at idle priority (SCHED_IDLE, `chrt --idle 0`: they take only CPU time the
## tests leave idle, about half of it on two cores while the end-to-end tests wait on real time):
## the Kubernetes checks (static: rendering, schemas, policies, rule tests), then the fuzz
## targets, each for FUZZ_BESIDE_SECONDS (60 s) of wall time, which at idle priority buys about
## the executions 20 s in the foreground did (the report prints them). Their output follows the
## suite's. Everything that measures time or runs a stream stays in the foreground.
FUZZ_BESIDE_SECONDS ?= 60
test: deps
	$(MAKE) --no-print-directory check-layers
	$(MAKE) --no-print-directory node-deps
	$(CARGO) nextest run --workspace --locked --no-run
	@out=$$(mktemp -d); \
	( chrt --idle 0 scripts/k8s-check.sh >"$$out/k8s" 2>&1; echo $$? >"$$out/k8s.rc"; \
	  FUZZ_SECONDS=$(FUZZ_BESIDE_SECONDS) chrt --idle 0 scripts/fuzz-run.sh >"$$out/fuzz" 2>&1; \
	  echo $$? >"$$out/fuzz.rc" ) & beside=$$!; \
	trap 'rm -rf "$$out"' EXIT; \
	status=0; \
	$(MAKE) --no-print-directory test-rust || status=$$?; \
	wait $$beside; \
	for step in k8s fuzz; do \
	  echo "::: $$step (ran beside the suite at idle priority)"; cat "$$out/$$step"; \
	  [ "$$(cat "$$out/$$step.rc" 2>/dev/null)" = 0 ] || status=1; \
	done; \
	exit $$status
	scripts/container-test.sh "$(TARGET_DIR)/debug/ferrocast"
	$(MAKE) --no-print-directory slowest

# Every Rust test (nextest runs the workspace's; doc tests need cargo test). NEXTEST_ARGS adds
# nextest options or a filter: `make test-rust NEXTEST_ARGS='-E "binary(llhls)"'`.
test-rust:
	$(CARGO) nextest run --workspace --locked $(NEXTEST_ARGS)
	$(CARGO) test --workspace --locked --doc

## test-quick: unit, property and in-process tests (no end-to-end test), under 2 minutes warm
test-quick:
	$(CARGO) nextest run --workspace --locked --profile quick -E 'not (package(ferrocast) & kind(test))'

## test-e2e: the end-to-end tests alone (tests/*.rs: the real binary, real clients)
test-e2e: deps
	$(MAKE) --no-print-directory node-deps
	$(CARGO) nextest run --workspace --locked -E 'package(ferrocast) & kind(test)'

## slowest: the 10 slowest tests of the last nextest run (from its JUnit report)
slowest:
	@python3 scripts/slowest-tests.py target/nextest/default/junit.xml

## test-deploy: k8s validation and the podman container test (needs root or sudo for podman)
test-deploy:
	scripts/k8s-check.sh
	scripts/container-test.sh "$(TARGET_DIR)/debug/ferrocast"

## lint: formatting, clippy with warnings as errors, and the layer check
lint: check-layers
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## check-layers: crates import only lower layers, no two files import each other (ARCHITECTURE.md)
check-layers:
	python3 scripts/check-layers.py --self-test
	python3 scripts/check-layers.py

## fuzz-build: check that the cargo-fuzz targets compile (plain stable build, no instrumentation)
fuzz-build:
	$(CARGO) build --manifest-path fuzz/Cargo.toml

## fuzz: run every fuzz target, coverage-guided, for FUZZ_SECONDS each (stable Rust; fuzz/README.md)
fuzz:
	scripts/fuzz-run.sh
