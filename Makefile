# Ferrocast: the commands a developer and CI use. `make run` and `make test` are the quick start.

SHELL := bash
CARGO ?= cargo
# rustup installs into ~/.cargo/bin, which a fresh login shell may not have on PATH yet.
export PATH := $(HOME)/.cargo/bin:$(PATH)
# An external CARGO_TARGET_DIR (CI keeps one outside the clone) is respected.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
BIN := $(TARGET_DIR)/release/ferrocast

.PHONY: deps build run test lint fuzz-build

## deps: install the Debian packages and tools the build and the tests need (no-op when present)
deps:
	scripts/install-deps.sh

## build: release build of the ferrocast binary
build:
	$(CARGO) build --release --locked -p ferrocast

## run: install, build and serve on the default ports (HTTP 8080, RTMP 1935)
run: deps
	$(CARGO) build --release --locked -p ferrocast
	$(BIN) serve

## test: the whole suite: unit, property and end-to-end tests, plus the fuzz targets' build
test: deps
	$(CARGO) test --workspace --locked
	$(MAKE) --no-print-directory fuzz-build

## lint: formatting and clippy, warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## fuzz-build: check that the cargo-fuzz targets compile on stable (running them needs nightly)
fuzz-build:
	$(CARGO) build --manifest-path fuzz/Cargo.toml
