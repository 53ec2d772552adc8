#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time, with coverage guidance, on stable Rust.
#
#   scripts/fuzz-run.sh                 # every target, FUZZ_SECONDS (default 20) each
#   scripts/fuzz-run.sh amf0 mpegts     # just these
#
# cargo-fuzz needs nightly only for its sanitizer flag; libFuzzer's coverage comes from LLVM's
# sancov pass, which stable rustc runs with `-Cpasses=sancov-module`. Building with `--target`
# keeps those flags off build scripts and proc macros, as cargo-fuzz does. Debug assertions and
# overflow checks stay on, so arithmetic bugs crash as they would under cargo-fuzz.
#
# Each target starts from a throw-away copy of fuzz/seeds/<target>/ (the committed seeds stay as
# they are) and stops after FUZZ_SECONDS. A crash, a timeout (FUZZ_TIMEOUT seconds on one input)
# or running out of memory (FUZZ_RSS_MB) fails the run; the input that did it is kept in
# fuzz/artifacts/<target>/ and the script prints how to replay it. The last line per target is
# libFuzzer's own count of executions.
set -euo pipefail

cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-20}"
timeout_s="${FUZZ_TIMEOUT:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
target_dir="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/fuzz}"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^ferrocast-fuzz$')
fi

RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cdebug-assertions -Coverflow-checks" \
    cargo build --release --manifest-path fuzz/Cargo.toml --target "$triple" \
    --target-dir "$target_dir" "${targets[@]/#/--bin=}"

bin_dir="$target_dir/$triple/release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failed=()
summary=()
for t in "${targets[@]}"; do
    corpus="$work/$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    if [ -d "fuzz/seeds/$t" ]; then
        cp -r "fuzz/seeds/$t/." "$corpus/"
    fi
    echo "::: fuzz $t for ${seconds}s ($(find "$corpus" -type f | wc -l) seeds)"
    log="$work/$t.log"
    # libFuzzer stops itself at -max_total_time; `timeout` is the bound if it does not.
    if timeout --kill-after=10 $((seconds + 60)) "$bin_dir/$t" \
        -max_total_time="$seconds" -timeout="$timeout_s" -rss_limit_mb="$rss_mb" \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" "$corpus" >"$log" 2>&1; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
        summary+=("$t: ${runs:-?} executions, no crash")
    else
        tail -n 40 "$log"
        summary+=("$t: FAILED (replay: $bin_dir/$t fuzz/artifacts/$t/<file>)")
        failed+=("$t")
    fi
done

printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz-run: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
