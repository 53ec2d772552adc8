#!/usr/bin/env bash
# Installs what building and testing Ferrocast needs on Debian or Ubuntu: the C toolchain, the
# GStreamer development files and plugins, and the real clients the end-to-end tests drive
# (ffmpeg, gst-launch-1.0, srt-tools, Chromium), Node.js and npm (hls.js for the player page,
# playwright-core for the browser tests), plus Python's prometheus_client for the OpenMetrics check
# and Debian's Prometheus server, which tests/observability.rs runs as a real scraper, and its
# redis-server, which the cluster tests run; a static ffmpeg 7 that publishes Enhanced RTMP
# (scripts/ertmp-ffmpeg.sh); and cargo-nextest, the test runner (`cargo install` when it is missing).
#
# Idempotent and quiet when everything is there: it asks dpkg-query first and runs
# `apt-get update` and `apt-get install` only for what is missing. Uses sudo when not root.
set -euo pipefail

packages=(
    build-essential pkg-config libssl-dev
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
    # pango: clockoverlay and timeoverlay, for a demo stream that shows its own latency.
    gstreamer1.0-x
    ffmpeg srt-tools chromium python3
    nodejs npm
    # /usr/bin/prometheus: tests/observability.rs starts its own on a free port. The package's
    # own daemon is stopped right after it is installed (see below).
    prometheus
    # Cluster mode's store: tests/cluster.rs and crates/cluster/tests start their own
    # redis-server on a free port (redis-cli comes with it). The package's daemon is stopped
    # right after it is installed (see below).
    redis-server
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: not root and no sudo; install as root: ${packages[*]}" >&2; exit 1; }
    sudo_cmd=(sudo)
fi

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Node.js from NodeSource (or any other build) ships npm inside its `nodejs` package and conflicts
# with Debian's `npm`: a working `node` and `npm` on PATH are as good as the packages.
present() {
    case "$1" in
        nodejs) command -v node >/dev/null 2>&1 && return 0 ;;
        npm) command -v npm >/dev/null 2>&1 && return 0 ;;
    esac
    installed "$1"
}

missing=()
for p in "${packages[@]}"; do
    present "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -q
    # Ubuntu ships Chromium as chromium-browser; take whichever name this release has.
    to_install=()
    for p in "${missing[@]}"; do
        if [ "$p" = chromium ] && ! apt-cache show chromium >/dev/null 2>&1; then
            p=chromium-browser
        fi
        to_install+=("$p")
    done
    "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${to_install[@]}"
fi

# Debian's prometheus and redis-server packages enable and start a system daemon (on 9090 and
# 6379; its systemd unit, or its /etc/init.d script where there is no systemd; a policy-rc.d
# that denies starts, as in containers, keeps it off). The tests run their own on free ports, so
# a daemon that this script just installed would only hold a port: stop it, and keep it from
# coming back at boot. One that was installed before is left as it is.
stop_packaged_daemon() { # SERVICE
    local service="$1"
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        "${sudo_cmd[@]}" systemctl disable --now "$service.service" >/dev/null 2>&1 || true
    fi
    if "${sudo_cmd[@]}" service "$service" status >/dev/null 2>&1; then
        echo "install-deps: stopping the $service daemon the package started"
        "${sudo_cmd[@]}" service "$service" stop >/dev/null 2>&1 \
            || "${sudo_cmd[@]}" invoke-rc.d "$service" stop >/dev/null 2>&1 \
            || true
        if "${sudo_cmd[@]}" service "$service" status >/dev/null 2>&1; then
            echo "install-deps: the $service daemon still runs; stop it with 'service $service stop'" >&2
            exit 1
        fi
    fi
    if [ ! -d /run/systemd/system ] && command -v update-rc.d >/dev/null 2>&1; then
        "${sudo_cmd[@]}" update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
}
for p in "${missing[@]}"; do
    case "$p" in
        prometheus | redis-server) stop_packaged_daemon "$p" ;;
    esac
done

# The OpenMetrics check in tests/foundation.rs uses the reference parser from prometheus_client,
# imported by whatever `python3` is first on PATH (the tests run that one).
if ! python3 -c 'import prometheus_client.openmetrics.parser' >/dev/null 2>&1; then
    echo "install-deps: installing the Python package prometheus-client"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        "${sudo_cmd[@]}" apt-get update -q
        "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends python3-pip
    fi
    # Debian's own python3 refuses pip installs outside a venv (PEP 668); pyenv and venvs do not.
    python3 -m pip install --quiet --disable-pip-version-check prometheus-client \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages prometheus-client
    python3 -c 'import prometheus_client.openmetrics.parser'
fi

if ! command -v cargo >/dev/null 2>&1 && [ ! -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    echo "install-deps: cargo not found. Install a Rust toolchain (1.85 or newer) with rustup:" >&2
    echo "  https://rustup.rs, with the rustfmt and clippy components" >&2
    exit 1
fi

# The Enhanced RTMP test publisher (HEVC and AV1 over RTMP): a pinned static ffmpeg 7.
scripts_dir="$(cd "$(dirname "$0")" && pwd)"
"$scripts_dir/ertmp-ffmpeg.sh" >/dev/null

# The test runner: `make test` runs the workspace's tests with cargo-nextest (a process per test,
# a time limit per test, test groups; .config/nextest.toml). Built from crates.io when missing.
if ! command -v cargo-nextest >/dev/null 2>&1 && [ ! -x "${HOME:-/root}/.cargo/bin/cargo-nextest" ]; then
    echo "install-deps: installing cargo-nextest (cargo install --locked cargo-nextest)"
    PATH="${HOME:-/root}/.cargo/bin:$PATH" cargo install --locked cargo-nextest
fi
