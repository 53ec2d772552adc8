#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time, with coverage guidance, on stable Rust.
#
#   scripts/fuzz-run.sh                 # every target, FUZZ_SECONDS (default 20) each
#   scripts/fuzz-run.sh amf0 mpegts     # just these
#
# FUZZ_JOBS targets (default: one per CPU) run side by side, each a single-threaded libFuzzer
# process, so each gets a whole core for its FUZZ_SECONDS, as when they ran one after another,
# in a fraction of the wall time.
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
jobs="${FUZZ_JOBS:-$(nproc)}"
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

# One target: its own copy of the seeds, its log, and a one-line result in $work/$t.result.
fuzz_one() {
    local t=$1 corpus="$work/$1" log="$work/$1.log" runs
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    if [ -d "fuzz/seeds/$t" ]; then
        cp -r "fuzz/seeds/$t/." "$corpus/"
    fi
    echo "::: fuzz $t for ${seconds}s ($(find "$corpus" -type f | wc -l) seeds)"
    # libFuzzer stops itself at -max_total_time; `timeout` is the bound if it does not.
    if timeout --kill-after=10 $((seconds + 60)) "$bin_dir/$t" \
        -max_total_time="$seconds" -timeout="$timeout_s" -rss_limit_mb="$rss_mb" \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" "$corpus" >"$log" 2>&1; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
        echo "ok $t: ${runs:-?} executions, no crash" >"$work/$t.result"
    else
        echo "FAILED $t: FAILED (replay: $bin_dir/$t fuzz/artifacts/$t/<file>)" >"$work/$t.result"
    fi
}

for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n || true
    done
    fuzz_one "$t" &
done
wait

failed=()
summary=()
for t in "${targets[@]}"; do
    result="$(cat "$work/$t.result" 2>/dev/null || echo "FAILED $t: no result")"
    summary+=("${result#* }")
    if [ "${result%% *}" != ok ]; then
        tail -n 40 "$work/$t.log" 2>/dev/null || true
        failed+=("$t")
    fi
done

printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz-run: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
