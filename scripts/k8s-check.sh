#!/usr/bin/env bash
# Checks the deployment files: the Helm chart (k8s/helm/ferrocast), the plain manifests and the
# monitoring objects rendered from it (k8s/manifests, k8s/monitoring), the kustomize overlays
# (k8s/kustomize), the alert rules and dashboard, docker/compose.yaml and docker/Dockerfile.
#   - helm lint --strict and helm template | kubernetes-validate --strict, per values file
#   - the rendered config.toml accepted by `ferrocast check-config` (when a binary is built)
#   - the chart's guards refuse what they must (grace period, keys in the ConfigMap, bad keys,
#     more than one replica or autoscaling while replicas cannot serve each other's streams)
#   - ServiceMonitor and PrometheusRule shape (kubernetes-validate passes CRDs unchecked)
#   - promtool check rules (the chart file and the rendered PrometheusRule) and rule unit tests;
#     every alert has a unit test where it fires and one where it stays quiet
#   - promtool parses every PromQL query of the dashboard (as recording rules)
#   - the metric names in alerts and dashboard exist in crates/telemetry/src/names.rs
#   - checkov: chart (per values file), manifests, kustomize overlays, Dockerfile: 0 failed
#   - k8s/manifests and k8s/monitoring match a fresh scripts/k8s-render.sh (drift)
# Tools come from scripts/k8s-tools.sh (cached in /var/tmp/ferrocast-tools). Exit status 1 when
# any check fails; the last line says how many passed and failed.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
start=$SECONDS
chart=k8s/helm/ferrocast
kube_version=1.30.0

tools_bin="$(scripts/k8s-tools.sh | tail -n 1)" || { echo "k8s-check: installing tools failed" >&2; exit 1; }
export PATH="$tools_bin:$PATH"
# checkov's helm runner calls `helm` from PATH; keep it from phoning home.
export CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false BC_SKIP_MAPPING=TRUE

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
failures=()
# check NAME CMD...: runs CMD, output to a log shown only on failure.
check() {
    local name="$1"; shift
    local log="$work/log.$((passed + failed))"
    if "$@" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "ok    $name"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAIL  $name"
        sed 's/^/      /' "$log" | tail -n 60
    fi
}

# The values sets: each environment file, GPU on top of production, and every option on.
declare -A values_sets=(
    [default]=""
    [development]="-f $chart/values-development.yaml"
    [production]="-f $chart/values-production.yaml"
    [gpu]="-f $chart/values-gpu.yaml"
    [production+gpu]="-f $chart/values-production.yaml -f $chart/values-gpu.yaml"
    [all-features]="-f $chart/ci/all-features-values.yaml"
)
set_names=(default development production gpu production+gpu all-features)

render() { # SET -> $work/render-SET.yaml
    # shellcheck disable=SC2086
    helm template ferrocast "$chart" --namespace ferrocast ${values_sets[$1]} >"$work/render-$1.yaml"
}

kvalidate() { # FILE: kubernetes-validate, quiet unless something fails
    kubernetes-validate --strict --quiet -k "$kube_version" "$1"
}

# Checks ServiceMonitor and PrometheusRule objects against the parts of the Prometheus Operator
# CRDs Ferrocast uses, and that every ServiceMonitor selects a Service in the same file with the
# port it scrapes. Fails on any other custom resource, so nothing passes unchecked.
crd_check() { # FILE
    python3 - "$1" <<'PY'
import re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
errors = []
dur = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
def err(obj, msg):
    errors.append(f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}: {msg}")
def keys(obj, where, d, allowed, required=()):
    if not isinstance(d, dict):
        err(obj, f"{where} must be a map"); return False
    for k in d:
        if k not in allowed: err(obj, f"{where}.{k} is not a field of the CRD")
    for k in required:
        if k not in d: err(obj, f"{where}.{k} is required")
    return True
def str_map(obj, where, d):
    if d is None: return
    if not isinstance(d, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in d.items()):
        err(obj, f"{where} must map strings to strings")
services = [d for d in docs if d.get("kind") == "Service"]
for d in docs:
    kind, api = d.get("kind"), d.get("apiVersion", "")
    if "." in api.split("/")[0] and not api.startswith(("apps/", "batch/", "policy/", "autoscaling/")) \
            and not re.match(r"^[a-z]+\.k8s\.io/", api) and kind not in ("ServiceMonitor", "PrometheusRule"):
        err(d, f"custom resource {api} {kind} has no check here"); continue
    if kind not in ("ServiceMonitor", "PrometheusRule"): continue
    if api != "monitoring.coreos.com/v1": err(d, f"apiVersion {api}, want monitoring.coreos.com/v1")
    keys(d, "", d, {"apiVersion", "kind", "metadata", "spec"}, ("metadata", "spec"))
    md = d.get("metadata", {})
    if not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", md.get("name", "")): err(d, "metadata.name is not a DNS name")
    str_map(d, "metadata.labels", md.get("labels")); str_map(d, "metadata.annotations", md.get("annotations"))
    spec = d.get("spec") or {}
    if kind == "ServiceMonitor":
        keys(d, "spec", spec, {"selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels",
                               "podTargetLabels", "sampleLimit", "attachMetadata"}, ("selector", "endpoints"))
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        str_map(d, "spec.selector.matchLabels", sel)
        if not sel: err(d, "spec.selector.matchLabels is empty: it would select every Service")
        ns = spec.get("namespaceSelector", {})
        keys(d, "spec.namespaceSelector", ns, {"any", "matchNames"})
        eps = spec.get("endpoints")
        if not isinstance(eps, list) or not eps: err(d, "spec.endpoints must be a non-empty list"); eps = []
        for i, ep in enumerate(eps):
            w = f"spec.endpoints[{i}]"
            keys(d, w, ep, {"port", "targetPort", "path", "scheme", "interval", "scrapeTimeout", "honorLabels",
                            "honorTimestamps", "relabelings", "metricRelabelings", "params", "tlsConfig",
                            "authorization", "bearerTokenSecret", "followRedirects", "enableHttp2"})
            if not isinstance(ep.get("port"), str): err(d, f"{w}.port must name a Service port")
            if not str(ep.get("path", "/metrics")).startswith("/"): err(d, f"{w}.path must start with /")
            for k in ("interval", "scrapeTimeout"):
                if k in ep and not dur.match(str(ep[k])): err(d, f"{w}.{k} {ep[k]!r} is not a duration")
            for j, r in enumerate(ep.get("relabelings") or []):
                keys(d, f"{w}.relabelings[{j}]", r, {"action", "sourceLabels", "separator", "targetLabel",
                                                      "regex", "modulus", "replacement"})
            # The Service this endpoint scrapes, when it is in the same render.
            if services and ns.get("matchNames") is not None:
                hits = [s for s in services
                        if s["metadata"].get("namespace") in ns["matchNames"]
                        and all(s["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())]
                if not hits: err(d, "selects no Service in this render")
                for s in hits:
                    if ep.get("port") not in [p.get("name") for p in s["spec"].get("ports", [])]:
                        err(d, f"Service {s['metadata']['name']} has no port named {ep.get('port')}")
    else:
        keys(d, "spec", spec, {"groups"}, ("groups",))
        names = set()
        for i, g in enumerate(spec.get("groups") or []):
            w = f"spec.groups[{i}]"
            keys(d, w, g, {"name", "interval", "rules", "partial_response_strategy", "limit", "query_offset", "labels"}, ("name", "rules"))
            if g.get("name") in names: err(d, f"{w}.name {g.get('name')!r} repeats")
            names.add(g.get("name"))
            for j, r in enumerate(g.get("rules") or []):
                rw = f"{w}.rules[{j}]"
                keys(d, rw, r, {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}, ("expr",))
                if ("alert" in r) == ("record" in r): err(d, f"{rw} needs exactly one of alert and record")
                if not isinstance(r.get("expr"), (str, int)): err(d, f"{rw}.expr must be a string")
                if "for" in r and not dur.match(str(r["for"])): err(d, f"{rw}.for {r['for']!r} is not a duration")
                str_map(d, f"{rw}.labels", r.get("labels")); str_map(d, f"{rw}.annotations", r.get("annotations"))
                if "alert" in r and "severity" not in (r.get("labels") or {}): err(d, f"{rw} has no severity label")
        if not names: err(d, "spec.groups is empty")
for e in errors: print(e)
sys.exit(1 if errors else 0)
PY
}

# The rendered config.toml, checked by the binary itself when one is built.
ferrocast_bin=""
for b in "${CARGO_TARGET_DIR:-target}/release/ferrocast" "${CARGO_TARGET_DIR:-target}/debug/ferrocast"; do
    [ -x "$b" ] && { ferrocast_bin="$b"; break; }
done
config_check() { # SET
    python3 -c 'import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap" and "config.toml" in d.get("data", {}):
        open(sys.argv[2], "w").write(d["data"]["config.toml"])' "$work/render-$1.yaml" "$work/config-$1.toml"
    # A clean environment: a FERROCAST_* variable of the caller's must not change the verdict.
    env -i PATH="$PATH" "$ferrocast_bin" check-config "$work/config-$1.toml"
}

expect_fail() { # WANTED-MESSAGE helm args...: the chart must refuse these values, saying why
    local want="$1"; shift
    if out="$(helm template ferrocast "$chart" "$@" 2>&1)"; then
        echo "rendered, but should have failed with: $want"; return 1
    fi
    grep -qF -- "$want" <<<"$out" || { echo "$out"; echo "expected the message: $want"; return 1; }
}

echo "== helm ($(helm version --short))"
for s in "${set_names[@]}"; do
    # shellcheck disable=SC2086
    check "helm lint --strict [$s]" helm lint --strict "$chart" ${values_sets[$s]}
    check "helm template [$s]" render "$s"
    check "kubernetes-validate --strict $kube_version [$s]" kvalidate "$work/render-$s.yaml"
    check "ServiceMonitor/PrometheusRule shape [$s]" crd_check "$work/render-$s.yaml"
    if [ -n "$ferrocast_bin" ]; then
        check "ferrocast check-config on the ConfigMap [$s]" config_check "$s"
    fi
done
[ -n "$ferrocast_bin" ] || echo "skip  ferrocast check-config: no binary in ${CARGO_TARGET_DIR:-target}/{release,debug}"
check "chart refuses a grace period shorter than the drain" \
    expect_fail "must exceed preStopSleepSeconds" --set terminationGracePeriodSeconds=12
check "chart refuses stream keys in the ConfigMap" \
    expect_fail "never in the ConfigMap" --set 'config.streams[0].name=a' --set 'config.streams[0].key=b'
check "chart refuses a malformed stream key" \
    expect_fail "only letters, digits" --set 'streams[0].name=a' --set 'streams[0].key=bad key'
check "chart refuses a stream without a key" \
    expect_fail "streams[0].key is required" --set 'streams[0].name=a'
check "chart refuses more than one replica (no cluster mode yet)" \
    expect_fail "replicas cannot serve each other's streams yet" --set replicaCount=2
check "chart refuses autoscaling (no cluster mode yet)" \
    expect_fail "replicas cannot serve each other's streams yet" --set autoscaling.enabled=true
check "chart writes whole numbers as TOML integers" \
    bash -c "helm template x '$chart' --set config.rtmp.max_connections=300 --show-only templates/configmap.yaml | grep -qx '    max_connections = 300'"

echo "== kustomize ($(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p'))"
for o in base overlays/development overlays/production overlays/gpu; do
    f="$work/kustomize-${o//\//-}.yaml"
    check "kustomize build $o" bash -c "kubectl kustomize 'k8s/kustomize/$o' >'$f'"
    check "kubernetes-validate --strict $kube_version [kustomize $o]" kvalidate "$f"
    check "ServiceMonitor/PrometheusRule shape [kustomize $o]" crd_check "$f"
done

echo "== alerts and dashboard"
rules_from_cr() { # the PrometheusRule's spec as a plain rules file
    python3 -c 'import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert d["kind"] == "PrometheusRule", d["kind"]
yaml.safe_dump(d["spec"], open(sys.argv[2], "w"), sort_keys=False)' k8s/monitoring/prometheusrule.yaml "$work/rules-from-cr.yaml" &&
    promtool check rules "$work/rules-from-cr.yaml"
}
check "promtool check rules $chart/files/prometheus-rules.yaml" promtool check rules "$chart/files/prometheus-rules.yaml"
check "promtool check rules (spec of k8s/monitoring/prometheusrule.yaml)" rules_from_cr
check "promtool test rules k8s/monitoring/tests" promtool test rules k8s/monitoring/tests/prometheus-rules.test.yaml
alert_tests() { # every alert fires in some unit test and stays quiet in another; no test names an unknown alert
    python3 - "$chart/files/prometheus-rules.yaml" k8s/monitoring/tests/prometheus-rules.test.yaml <<'PY'
import sys, yaml
rules, tests = (yaml.safe_load(open(f)) for f in sys.argv[1:3])
alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
fires, quiet, errors = set(), set(), []
for t in tests["tests"]:
    for a in t.get("alert_rule_test") or []:
        exp = a.get("exp_alerts") or []
        (fires if exp else quiet).add(a["alertname"])
        for e in exp:
            if not {"summary", "description"} <= set(e.get("exp_annotations") or {}):
                errors.append(f"{t['name']}: {a['alertname']} at {a['eval_time']}: expect its summary and description")
errors += [f"the tests name {n}, which is no alert in the rules" for n in sorted((fires | quiet) - alerts)]
errors += [f"{n} never fires in a test" for n in sorted(alerts - fires)]
errors += [f"{n} is never expected quiet (exp_alerts: []) in a test" for n in sorted(alerts - quiet)]
for e in errors: print(e)
if not errors: print(f"{len(alerts)} alerts, each fires in a test and stays quiet in another")
sys.exit(1 if errors else 0)
PY
}
check "every alert has a firing and a quiet unit test" alert_tests
# Every PromQL query of the dashboard (each `expr`, however deeply nested: panels, rows, annotations;
# and the query variables that are not label_values(), label_names() or metrics()) becomes a
# recording rule, with Grafana's interval variables replaced by durations, for `promtool check
# rules` to parse. Other $variables stay as they are: in label matchers they are inside quoted
# strings; anywhere else the query would not parse for Prometheus either.
dashboard_queries() {
    python3 - "$chart/files/grafana-dashboard.json" "$work/dashboard-queries.yaml" <<'PY' &&
import json, re, sys, yaml
d = json.load(open(sys.argv[1]))
queries = []  # (where, query)
def walk(node, where):
    if isinstance(node, dict):
        if isinstance(node.get("id"), int) and "type" in node:
            where = f"panel_{node['id']}"
        for k, v in node.items():
            if k == "expr" and isinstance(v, str):
                queries.append((f"{where}_{node.get('refId', 'expr')}", v))
            elif k != "templating":
                walk(v, where)
    elif isinstance(node, list):
        for v in node:
            walk(v, where)
walk(d, "dashboard")
for v in (d.get("templating") or {}).get("list") or []:
    walk(v, f"variable_{v.get('name')}")
    if v.get("type") != "query":
        continue
    q = v.get("query")
    q = (q.get("query") if isinstance(q, dict) else q) or ""
    q = q.strip()
    if re.match(r"(label_values|label_names|metrics)\s*\(", q):
        continue
    m = re.fullmatch(r"query_result\s*\((.*)\)", q, re.S)
    queries.append((f"variable_{v.get('name')}", m.group(1) if m else q))
builtin = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h",
           "__interval_ms": "60000", "__range_s": "3600", "__range_ms": "3600000"}
def subst(e):
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", lambda m: builtin.get(m.group(1) or m.group(2), m.group(0)), e)
if len(queries) < 10:
    sys.exit(f"only {len(queries)} queries found in the dashboard")
rules = [{"record": "dashboard:" + re.sub(r"\W", "_", w), "expr": subst(q)} for w, q in queries]
yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, open(sys.argv[2], "w"), sort_keys=False)
print(f"{len(rules)} dashboard queries")
PY
    promtool check rules "$work/dashboard-queries.yaml"
}
check "promtool parses every dashboard query" dashboard_queries
metric_names() {
    python3 - "$chart/files/prometheus-rules.yaml" "$chart/files/grafana-dashboard.json" crates/telemetry/src/names.rs \
        $(find crates -path '*/src/*' -name '*.rs' | sort) <<'PY'
import json, re, sys, yaml
rules, dash, names_file = sys.argv[1:4]
registrations = sys.argv[4:]
exprs = [r["expr"] for g in yaml.safe_load(open(rules))["groups"] for r in g["rules"]]
d = json.load(open(dash))
assert d.get("uid") and d.get("panels"), "dashboard without uid or panels"
def walk(node):  # every panel, however nested (rows, collapsed rows), and every expr
    if isinstance(node, dict):
        if "gridPos" in node:
            assert node.get("datasource", {}).get("uid") == "${datasource}", f"panel {node.get('title')}: use the datasource variable"
        for k, v in node.items():
            if k == "expr" and isinstance(v, str):
                exprs.append(v)
            else:
                walk(v)
    elif isinstance(node, list):
        for v in node:
            walk(v)
walk(d["panels"])
# What the service exports: the names module, with _total on counters.
names_src = open(names_file).read()
src = "\n".join(open(f).read() for f in registrations)
known = set(re.findall(r'"((?:ferrocast|process)_[a-z0-9_]+)"', names_src))
# Registration (in each part's metrics) adds to some names: the unit
# (register_with_unit(names::X, "...", Unit::Seconds, ...) exports X_seconds) and _info for Info.
const = dict(re.findall(r'pub const (\w+): &str = "((?:ferrocast|process)_[a-z0-9_]+)"', names_src))
for c, unit in re.findall(r'register_with_unit\(\s*names::(\w+),\s*"(?:[^"\\]|\\.)*",\s*Unit::(\w+)', src):
    known.add(f"{const[c]}_{unit.lower()}")
for c in re.findall(r'register\(\s*names::(\w+),\s*"(?:[^"\\]|\\.)*",\s*Info::', src):
    known.add(const[c] + "_info")
known |= {n + "_total" for n in known} | {n + s for n in known for s in ("_bucket", "_sum", "_count")}
known |= {"up"}
bad = set()
for e in exprs:
    for name in re.findall(r"\b((?:ferrocast|process)_[a-z0-9_]+|up)\b(?=\s*[{\[)(]|\s*$|\s*[=!<>])", e):
        if name not in known: bad.add(name)
if bad: sys.exit("metrics used but not exported (crates/telemetry/src/names.rs): " + ", ".join(sorted(bad)))
print(f"{len(exprs)} expressions, metric names all exported")
PY
}
check "alerts and dashboard use only exported metric names" metric_names
check "dashboard JSON in k8s/monitoring is the chart's" cmp "$chart/files/grafana-dashboard.json" k8s/monitoring/grafana/ferrocast-dashboard.json

echo "== docker"
compose_check() {
    python3 - docker/compose.yaml <<'PY'
import os, sys, yaml
path = sys.argv[1]
c = yaml.safe_load(open(path))
base = os.path.dirname(path)
need = {"ferrocast", "prometheus", "grafana"}
assert need <= set(c["services"]), f"services {sorted(c['services'])} lack {need - set(c['services'])}"
assert any("gpu" in (s.get("profiles") or []) for s in c["services"].values()), "no gpu profile"
mounted = []
for name, s in c["services"].items():
    for v in s.get("volumes", []):
        src = v.split(":")[0]
        if src.startswith((".", "/")):
            full = os.path.normpath(os.path.join(base, src))
            assert os.path.exists(full), f"{name}: {src} does not exist"
            mounted.append(full)
    b = s.get("build")
    if b:
        assert os.path.exists(os.path.join(base, b["context"], b["dockerfile"])), f"{name}: no Dockerfile"
for want in ("k8s/helm/ferrocast/files/prometheus-rules.yaml", "k8s/helm/ferrocast/files/grafana-dashboard.json"):
    assert os.path.normpath(want) in mounted, f"compose does not mount the chart's {want}"
for k in c["services"]["ferrocast"].get("environment", {}):
    assert not k.startswith("FERROCAST_") or k in ("FERROCAST_CONFIG", "FERROCAST_STREAMS", "FERROCAST_LOG_FORMAT", "FERROCAST_LOG_LEVEL"), k
print("compose ok")
PY
}
check "docker/compose.yaml: services, gpu profile, mounts of the chart's files" compose_check
check "promtool check config docker/prometheus/prometheus.yml" bash -c "
    mkdir -p '$work/prom/rules' && cp '$chart/files/prometheus-rules.yaml' '$work/prom/rules/ferrocast.yaml' &&
    sed 's#/etc/prometheus/rules#$work/prom/rules#' docker/prometheus/prometheus.yml >'$work/prom/prometheus.yml' &&
    promtool check config '$work/prom/prometheus.yml'"
check "shell syntax of docker/*.sh and scripts/{k8s,container}-*.sh" \
    bash -c 'for f in docker/*.sh scripts/k8s-*.sh scripts/container-*.sh; do [ -e "$f" ] || continue; bash -n "$f" || exit 1; done'

echo "== checkov ($(checkov --version))"
checkov_run() { # checkov args...: 0 failed checks, and something was checked
    local out
    out="$(checkov --skip-download --compact --quiet "$@" 2>&1)"
    local rc=$?
    echo "$out"
    grep -q "Passed checks: [1-9]" <<<"$out" || { echo "checkov checked nothing"; return 1; }
    grep -q "Failed checks: 0," <<<"$out" && [ $rc -eq 0 ]
}
check "checkov helm [default]" checkov_run -d "$chart" --framework helm
for v in values-development.yaml values-production.yaml values-gpu.yaml ci/all-features-values.yaml; do
    check "checkov helm [$v]" checkov_run -d "$chart" --framework helm --var-file "$chart/$v"
done
check "checkov kubernetes k8s/manifests" checkov_run -d k8s/manifests --framework kubernetes
mkdir -p "$work/kustomized"
for o in development production gpu; do
    cp "$work/kustomize-overlays-$o.yaml" "$work/kustomized/$o.yaml" 2>/dev/null
done
check "checkov kubernetes [kustomize overlays]" checkov_run -d "$work/kustomized" --framework kubernetes
check "checkov dockerfile docker/Dockerfile" checkov_run -f docker/Dockerfile --framework dockerfile

echo "== drift"
drift() {
    mkdir -p "$work/fresh" && HELM="$(command -v helm)" scripts/k8s-render.sh "$work/fresh" 2>/dev/null || return 1
    diff -r "$work/fresh/manifests" k8s/manifests || return 1
    (cd "$work/fresh/monitoring" && find . -type f | sort) >"$work/generated"
    while read -r f; do diff -u "$work/fresh/monitoring/$f" "k8s/monitoring/$f" || return 1; done <"$work/generated"
}
check "k8s/manifests and k8s/monitoring match the chart (scripts/k8s-render.sh)" drift

echo
for f in "${failures[@]}"; do echo "failed: $f"; done
echo "k8s-check: $passed passed, $failed failed ($((SECONDS - start))s)"
[ "$failed" -eq 0 ]
