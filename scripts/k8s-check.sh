#!/usr/bin/env bash
# Checks the deployment files: the Helm chart (k8s/helm/ferrocast), the plain manifests and the
# monitoring objects rendered from it (k8s/manifests, k8s/monitoring), the kustomize overlays
# (k8s/kustomize), the alert rules and dashboard, docker/compose.yaml and docker/Dockerfile.
#   - helm lint --strict and helm template | kubernetes-validate --strict, per values file
#   - the rendered config.toml accepted by `ferrocast check-config` (when a binary is built)
#   - the chart's guards refuse what they must (grace period, keys in the ConfigMap, bad keys,
#     more than one replica or autoscaling while replicas cannot serve each other's streams)
#   - ServiceMonitor and PrometheusRule shape (kubernetes-validate passes CRDs unchecked)
#   - the admin listener stays internal, per values set and kustomize build (admin_check below):
#     its own ClusterIP Service, never an Ingress backend's port; bound on 0.0.0.0 in the pod,
#     probes on it; the ServiceMonitor scrapes it; the NetworkPolicy admits only the monitoring
#     namespace and the pods to it. Mutated renders show each of these checks fails when it must
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
# What a set's render must have, for admin_check (the rest is checked when present).
declare -A admin_expect=(
    [production]="ingress servicemonitor"
    [production+gpu]="ingress servicemonitor"
    [all-features]="ingress servicemonitor"
    [kustomize-overlays-production]="servicemonitor"
    [kustomize-overlays-gpu]="servicemonitor"
)

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
            and not re.match(r"^[a-z]+\.k8s\.io/", api) and kind not in ("ServiceMonitor", "PrometheusRule") \
            and not api.split("/")[0].endswith(".istio.io"):  # istio_check validates these
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

# Istio objects against Istio's CRD schemas (scripts/istio-validate: @kubernetes-models/istio
# 3.0.1, generated from Istio 1.29.2's CRDs; types, enums and required fields, and unknown fields
# through TypeScript's excess-property check on its typed models).
istio_check() { # FILE...
    node scripts/istio-validate/validate.mjs "$@"
}
istio_api=(--api-versions networking.istio.io/v1 --api-versions security.istio.io/v1)

# The admin listener (listen.admin: /api/v1, /metrics, /healthz, /readyz) stays internal. On one
# render (a chart values set or a kustomize build), SECTION is one of:
#   services    the admin Service (*-admin) is ClusterIP with the admin port, and only it; no other Service
#               has a port named admin or sent to the admin container port; every Ingress backend
#               is a Service of this render without such a port, by neither name nor number
#   pod         the container binds the admin listener to 0.0.0.0 on its admin port (the
#               ConfigMap's [listen] admin, or FERROCAST_LISTEN_ADMIN / --admin over it), without a
#               hostPort; startup, liveness and readiness probes GET /healthz, /readyz there; an
#               API token comes from a Secret, never a literal or the ConfigMap
#   monitoring  every ServiceMonitor selects the admin Service only and scrapes its admin port;
#               every NetworkPolicy rule that admits the admin port admits the monitoring
#               namespace and Ferrocast's own pods, and nothing else (and one admits both)
# EXPECT words make what the render must have non-optional: ingress, servicemonitor.
admin_check() { # SECTION FILE [EXPECT...]
    python3 - "$@" <<'PY'
import json, re, sys, tomllib, yaml
section, path, expect = sys.argv[1], sys.argv[2], set(sys.argv[3:])
docs = [d for d in yaml.safe_load_all(open(path)) if d]
errors = []
def err(msg): errors.append(msg)
def name(o): return f"{o['kind']}/{o['metadata']['name']}"
def ns(o): return o["metadata"].get("namespace", "default")
# What "the monitoring namespace" is: networkPolicy.adminFrom's default in the chart.
MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}

deps = [d for d in docs if d["kind"] == "Deployment"]
if len(deps) != 1: sys.exit(f"want one Deployment, found {len(deps)}")
dep = deps[0]
pod = dep["spec"]["template"]
pod_labels = pod["metadata"].get("labels") or {}
pod_selector = dep["spec"]["selector"]["matchLabels"]
cs = [c for c in pod["spec"]["containers"] if c["name"] == "ferrocast"]
if len(cs) != 1: sys.exit("no container named ferrocast")
c = cs[0]
cports = {p.get("name"): p for p in c.get("ports") or []}
if "admin" not in cports: sys.exit("the container has no port named admin")
admin_port = cports["admin"]["containerPort"]
by_name = {(d["kind"], ns(d), d["metadata"]["name"]): d for d in docs}

def selects_pod(svc):
    sel = svc["spec"].get("selector") or {}
    return ns(svc) == ns(dep) and bool(sel) and all(pod_labels.get(k) == v for k, v in sel.items())
def is_admin_port(svc, p):  # a Service port that is, or reaches, the admin listener
    tp = p.get("targetPort", p.get("port"))
    if isinstance(tp, str):
        tp = cports.get(tp, {}).get("containerPort", tp) if selects_pod(svc) else tp
    return p.get("name") == "admin" or tp in ("admin", admin_port)
services = [d for d in docs if d["kind"] == "Service"]
def has_admin_port(s): return any(is_admin_port(s, p) for p in s["spec"].get("ports") or [])
# The admin Service is the one named *-admin; any other Service with the admin port exposes it.
admin_svcs = [s for s in services if selects_pod(s) and s["metadata"]["name"].endswith("-admin")]

if section == "services":
    if len(admin_svcs) != 1:
        err(f"want one admin Service (*-admin) for Ferrocast's pods, found {[name(s) for s in admin_svcs]}")
    for s in admin_svcs:
        spec = s["spec"]
        if not has_admin_port(s): err(f"{name(s)} has no admin port ({admin_port})")
        if spec.get("type", "ClusterIP") != "ClusterIP": err(f"{name(s)}: type {spec.get('type')}, want ClusterIP")
        for k in ("externalIPs", "loadBalancerIP", "loadBalancerSourceRanges", "externalName"):
            if spec.get(k): err(f"{name(s)}: {k} set on the admin Service")
        for p in spec.get("ports") or []:
            if not is_admin_port(s, p): err(f"{name(s)}: port {p.get('name')} ({p.get('port')}) is not the admin port; the admin Service carries nothing else")
            elif p.get("name") != "admin" or p.get("targetPort") not in ("admin", admin_port):
                err(f"{name(s)}: port {p.get('name')} → {p.get('targetPort')}: name it admin, target the container's admin port")
            if p.get("nodePort"): err(f"{name(s)}: nodePort on the admin port")
    # Cluster mode's headless peers Service (*-peers, clusterIP None): pod-to-pod traffic on
    # the admin port, with no virtual IP, no node port and nothing else on it.
    peer_svcs = [s for s in services if selects_pod(s) and s["metadata"]["name"].endswith("-peers")]
    for s in peer_svcs:
        spec = s["spec"]
        if spec.get("clusterIP") != "None" or spec.get("type", "ClusterIP") != "ClusterIP":
            err(f"{name(s)}: a peers Service must be headless (type ClusterIP, clusterIP None)")
        for p in spec.get("ports") or []:
            if not is_admin_port(s, p): err(f"{name(s)}: port {p.get('name')} is not the admin port")
            if p.get("nodePort"): err(f"{name(s)}: nodePort on the admin port")
    for s in services:
        if s in admin_svcs: continue
        if s in peer_svcs and s["spec"].get("clusterIP") == "None": continue
        for p in s["spec"].get("ports") or []:
            if is_admin_port(s, p):
                err(f"{name(s)} ({s['spec'].get('type', 'ClusterIP')}) exposes the admin port: port {p.get('name')} {p.get('port')} → {p.get('targetPort')}")
    ingresses = [d for d in docs if d["kind"] == "Ingress"]
    if "ingress" in expect and not ingresses: err("no Ingress in this render, but one was expected")
    for ing in ingresses:
        spec = ing["spec"]
        backends = [("defaultBackend", spec["defaultBackend"])] if spec.get("defaultBackend") else []
        for r in spec.get("rules") or []:
            for p in (r.get("http") or {}).get("paths") or []:
                backends.append((f"{r.get('host', '*')}{p.get('path', '')}", p["backend"]))
        if not backends: err(f"{name(ing)} has no backend")
        for where, b in backends:
            if "service" not in b: err(f"{name(ing)} {where}: backend is not a Service"); continue
            sname, port = b["service"]["name"], b["service"].get("port") or {}
            what = f"{name(ing)} {where} → Service {sname} port {port.get('name', port.get('number'))}"
            svc = by_name.get(("Service", ns(ing), sname))
            if svc is None: err(f"{what}: no such Service in this render"); continue
            if svc in admin_svcs or svc["metadata"]["name"].endswith("-admin"): err(f"{what}: the Ingress sends to the admin Service")
            if port.get("name") == "admin" or port.get("number") == admin_port:
                err(f"{what}: the Ingress names the admin port")
            sports = svc["spec"].get("ports") or []
            hit = [p for p in sports if (p.get("name") == port["name"] if "name" in port else p.get("port") == port.get("number"))]
            if not hit: err(f"{what}: the Service has no such port")
            for p in sports if svc not in admin_svcs else []:
                if is_admin_port(svc, p):
                    err(f"{what}: Service {sname} has the admin port ({p.get('name')} {p.get('port')} → {p.get('targetPort')}), which the Ingress would put within reach")
    if not errors:
        print(f"admin Service {[name(s) for s in admin_svcs]} ClusterIP :{admin_port}; no other Service has it; {len(ingresses)} Ingress(es), none reaching it")

elif section == "pod":
    if pod["spec"].get("hostNetwork"): err("hostNetwork: the admin port would be on the node's addresses")
    if cports["admin"].get("hostPort"): err("the admin port has a hostPort")
    if cports["admin"].get("protocol", "TCP") != "TCP": err("the admin port is not TCP")
    env = {e["name"]: e for e in c.get("env") or []}
    # Where the bind address comes from, strongest first: the command line, the environment, the
    # config file (FERROCAST_CONFIG, from a ConfigMap of this render).
    bind, source = None, None
    args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
    for i, a in enumerate(args):
        if a == "--admin" and i + 1 < len(args): bind, source = args[i + 1], "--admin"
        elif a.startswith("--admin="): bind, source = a.split("=", 1)[1], "--admin"
        elif a == "--set" and i + 1 < len(args) and args[i + 1].startswith("listen.admin="):
            bind, source = args[i + 1].split("=", 1)[1], "--set listen.admin"
    config = {}
    cfg_path = (env.get("FERROCAST_CONFIG") or {}).get("value")
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts") or []}
    for v in pod["spec"].get("volumes") or []:
        cm = v.get("configMap")
        if not cm or v["name"] not in mounts: continue
        obj = by_name.get(("ConfigMap", ns(dep), cm["name"]))
        for key, text in ((obj or {}).get("data") or {}).items():
            if cfg_path == f"{mounts[v['name']].rstrip('/')}/{key}":
                config = tomllib.loads(text)
    if cfg_path and not config: err(f"FERROCAST_CONFIG {cfg_path} is no ConfigMap key of this render")
    if (config.get("api") or {}).get("token"): err("api.token is in the ConfigMap: put it in a Secret")
    if bind is None and "FERROCAST_LISTEN_ADMIN" in env:
        e = env["FERROCAST_LISTEN_ADMIN"]
        bind, source = e.get("value"), "FERROCAST_LISTEN_ADMIN"
        if bind is None: err("FERROCAST_LISTEN_ADMIN comes from valueFrom: cannot check it")
    if bind is None and "admin" in (config.get("listen") or {}):
        bind, source = config["listen"]["admin"], "[listen] admin in the ConfigMap"
    if bind is None:
        err("nothing sets listen.admin: it stays on the container's loopback, out of the kubelet's and Prometheus's reach")
    elif bind not in (f"0.0.0.0:{admin_port}", f"[::]:{admin_port}"):
        err(f"{source} = {bind}: want 0.0.0.0:{admin_port} (all addresses, the container's admin port)")
    tok = env.get("FERROCAST_API_TOKEN")
    if tok and not (tok.get("valueFrom") or {}).get("secretKeyRef"):
        err("FERROCAST_API_TOKEN must come from a Secret (valueFrom.secretKeyRef)")
    want = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path_want in want.items():
        pr = c.get(probe)
        if pr is None:
            if probe != "startupProbe": err(f"no {probe}")
            continue
        g = pr.get("httpGet")
        if not g: err(f"{probe} is not an httpGet"); continue
        if g.get("port") not in ("admin", admin_port): err(f"{probe} uses port {g.get('port')}, want admin ({admin_port}): {path_want} answers 404 elsewhere")
        if g.get("path") != path_want: err(f"{probe} GETs {g.get('path')}, want {path_want}")
        if g.get("host"): err(f"{probe} sets host {g['host']}")
    if not errors:
        print(f"bind {bind} ({source}); probes on admin ({admin_port}); api token: {'Secret' if tok else 'none'}")

elif section == "monitoring":
    sms = [d for d in docs if d["kind"] == "ServiceMonitor"]
    if "servicemonitor" in expect and not sms: err("no ServiceMonitor in this render, but one was expected")
    for sm in sms:
        spec = sm["spec"]
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        names = (spec.get("namespaceSelector") or {}).get("matchNames") or [ns(sm)]
        hits = [s for s in services if ns(s) in names and sel and all((s["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items())]
        if not hits: err(f"{name(sm)} selects no Service")
        for s in hits:
            if s not in admin_svcs: err(f"{name(sm)} selects {name(s)}, which is not the admin Service")
        admin_names = {p.get("name") for s in admin_svcs for p in s["spec"].get("ports") or [] if is_admin_port(s, p)}
        for i, ep in enumerate(spec.get("endpoints") or []):
            if ep.get("port") not in admin_names or ep.get("targetPort") not in (None, "admin", admin_port):
                err(f"{name(sm)} endpoints[{i}] scrapes port {ep.get('port')}, want the admin Service's {sorted(admin_names)}")
            if ep.get("path", "/metrics") != "/metrics": err(f"{name(sm)} endpoints[{i}] path {ep.get('path')}")
    pods_peer = {"podSelector": {"matchLabels": pod_selector}}
    def selects(np):
        s = np["spec"].get("podSelector") or {}
        return ns(np) == ns(dep) and all(pod_labels.get(k) == v for k, v in (s.get("matchLabels") or {}).items()) \
            and not s.get("matchExpressions")
    nps = [d for d in docs if d["kind"] == "NetworkPolicy" and selects(d)]
    if not nps: err("no NetworkPolicy selects Ferrocast's pods: anything in the cluster reaches the admin port")
    admitted = []
    for np in nps:
        types = np["spec"].get("policyTypes") or ["Ingress"]
        if "Ingress" not in types: err(f"{name(np)} does not restrict Ingress")
        for i, r in enumerate(np["spec"].get("ingress") or []):
            def covers(p):
                if p.get("protocol", "TCP") != "TCP": return False
                port = p.get("port")
                if port is None or port == "admin": return True
                return isinstance(port, int) and port <= admin_port <= p.get("endPort", port)
            ports = r.get("ports") or []
            if ports and not any(covers(p) for p in ports): continue
            peers = r.get("from") or []
            what = f"{name(np)} ingress[{i}] (ports {[p.get('port') for p in ports] or 'all'})"
            if not peers: err(f"{what} admits the admin port from everywhere")
            for peer in peers:
                if peer not in (MONITORING, pods_peer):
                    err(f"{what} admits the admin port from {json.dumps(peer, sort_keys=True)}: only {json.dumps(MONITORING)} and Ferrocast's pods")
            admitted += peers
    if nps:
        if MONITORING not in admitted: err("no NetworkPolicy rule admits the monitoring namespace to the admin port: Prometheus cannot scrape")
        if pods_peer not in admitted: err("no NetworkPolicy rule admits Ferrocast's own pods to the admin port")
    if not errors:
        print(f"{len(sms)} ServiceMonitor(s) on the admin Service's port; {len(nps)} NetworkPolicy(ies): admin port from monitoring and the pods only")
else:
    sys.exit(f"unknown section {section}")
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

# The admin listener's three checks on one render: admin_checks LABEL FILE EXPECT_KEY.
admin_checks() {
    local label=$1 f=$2 key=$3
    # shellcheck disable=SC2086
    {
        check "admin port only on a ClusterIP admin Service, never behind an Ingress [$label]" \
            admin_check services "$f" ${admin_expect[$key]:-}
        check "admin listener bound on 0.0.0.0 in the pod, probes on it [$label]" \
            admin_check pod "$f" ${admin_expect[$key]:-}
        check "ServiceMonitor on the admin port, NetworkPolicy admits it from monitoring and the pods only [$label]" \
            admin_check monitoring "$f" ${admin_expect[$key]:-}
    }
}

echo "== helm ($(helm version --short))"
for s in "${set_names[@]}"; do
    # shellcheck disable=SC2086
    check "helm lint --strict [$s]" helm lint --strict "$chart" ${values_sets[$s]}
    check "helm template [$s]" render "$s"
    check "kubernetes-validate --strict $kube_version [$s]" kvalidate "$work/render-$s.yaml"
    check "ServiceMonitor/PrometheusRule shape [$s]" crd_check "$work/render-$s.yaml"
    admin_checks "$s" "$work/render-$s.yaml" "$s"
    if [ -n "$ferrocast_bin" ]; then
        check "ferrocast check-config on the ConfigMap [$s]" config_check "$s"
    fi
    # The same values with Istio on (and its RTMP gateway), the Istio APIs given to Helm.
    # shellcheck disable=SC2086
    check "helm template with Istio [$s]" bash -c "helm template ferrocast '$chart' --namespace ferrocast ${values_sets[$s]} \
        --set istio.enabled=true --set istio.rtmpGateway.enabled=true ${istio_api[*]} >'$work/render-$s-istio.yaml'"
    check "kubernetes-validate --strict $kube_version [$s, Istio]" kvalidate "$work/render-$s-istio.yaml"
    check "Istio objects against the Istio CRD schemas [$s]" istio_check "$work/render-$s-istio.yaml"
    check "admin Service, pod and monitoring rules hold with Istio [$s]" \
        admin_check services "$work/render-$s-istio.yaml"
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
check "chart refuses more than one replica without cluster mode" \
    expect_fail "replicaCount 2 without cluster.enabled" --set replicaCount=2
check "chart refuses autoscaling without cluster mode" \
    expect_fail "autoscaling.enabled without cluster.enabled" --set autoscaling.enabled=true
check "chart refuses the Redis URL or the advertise address in cluster.config" \
    expect_fail "the chart sets them" --set cluster.enabled=true --set cluster.config.redis_url=redis://x:6379
check "chart refuses cluster keys in config" \
    expect_fail "set cluster.enabled and cluster.config instead" --set config.cluster.lease_ttl=5s
cluster_render() { # the Deployment of a 3-replica cluster-mode render, checked
    helm template x "$chart" --set replicaCount=3 --set cluster.enabled=true \
        --show-only templates/deployment.yaml | python3 -c '
import sys, yaml
d = yaml.safe_load(sys.stdin)
pod = d["spec"]["template"]["spec"]
env = {e["name"]: e for e in pod["containers"][0]["env"]}
assert d["spec"]["replicas"] == 3, d["spec"]["replicas"]
assert "FERROCAST_CLUSTER_REDIS_URL" not in env, "the Redis URL is a file, never an env var"
vol = next(v for v in pod["volumes"] if v["name"] == "cluster")["secret"]
assert vol["secretName"] == "x-ferrocast-redis-url", vol
assert vol["items"] == [{"key": "redis-url", "path": "redis-url"}], vol
mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "cluster")
assert mount["mountPath"] == "/etc/ferrocast/cluster" and mount["readOnly"], mount
assert env["FERROCAST_CLUSTER_ADVERTISE"]["value"] == "$(POD_IP):9091", env
assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP", env
'
}
check "chart renders three replicas in cluster mode, the Redis URL as a file from a Secret, the pod IP advertised" \
    cluster_render
adapter_check() { # the HPA's pods metric is what the shipped prometheus-adapter rule exposes, a real gauge
    python3 - "$work/render-all-features.yaml" crates/telemetry/src/names.rs <<'PY'
import re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
pods = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-prometheus-adapter-rules"))
rules = yaml.safe_load(cm["data"]["config.yaml"])["rules"]
exposed = [r["name"]["as"] for r in rules]
gauges = re.findall(r'pub const \w+: &str = "(\w+)";', open(sys.argv[2]).read())
assert pods == ["ferrocast_active_publishers"], pods
assert exposed == pods, (exposed, pods)
assert all(p in gauges for p in pods), f"{pods} not in names.rs"
assert all(r["seriesQuery"].startswith(p + "{") for r, p in zip(rules, pods)), rules
print(f"HPA pods metric {pods[0]}: exposed by the adapter rule, defined in names.rs")
PY
}
check "HPA scales on live publishers per pod through the shipped prometheus-adapter rule" adapter_check
check "chart refuses an unknown values key (values.schema.json), naming it" \
    expect_fail "Additional property enabeld is not allowed" --set cluster.enabeld=true
unknown_key_file() { # a values file with a misspelt nested key fails, and says which
    printf 'redis:\n  bundled:\n    persistance:\n      enabled: true\n' >"$work/values-typo.yaml"
    expect_fail "Additional property persistance is not allowed" -f "$work/values-typo.yaml"
}
check "chart refuses a values file with an unknown key" unknown_key_file
check "chart refuses Istio where the cluster has no Istio API" \
    expect_fail "has no networking.istio.io/v1" --set istio.enabled=true
istio_mutants() { # the validator refuses an unknown field, a wrong type and an unknown enum value
    local m out
    for m in unknown-field wrong-type bad-enum; do
        python3 - "$work/render-all-features-istio.yaml" "$work/istio-$m.yaml" "$m" <<'PY' || return 1
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
m = sys.argv[3]
vs = next(d for d in docs if d["kind"] == "VirtualService")
if m == "unknown-field": vs["spec"]["http"][0]["timout"] = "30s"
if m == "wrong-type": vs["spec"]["http"][0]["timeout"] = 30
if m == "bad-enum": next(d for d in docs if d["kind"] == "DestinationRule")["spec"]["trafficPolicy"]["tls"]["mode"] = "MUTUAL_PLEASE"
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
        if out="$(istio_check "$work/istio-$m.yaml")"; then
            echo "the Istio validator accepted the $m mutant"; return 1
        fi
        echo "$m refused: $(head -n 1 <<<"$out" | cut -c1-160)"
    done
}
check "the Istio validator refuses an unknown field, a wrong type and a bad enum (3 mutants)" istio_mutants
check "chart refuses the webhook's HMAC key in the ConfigMap" \
    expect_fail "never in the ConfigMap" --set config.auth.webhook_secret=abcdefghijklmnopq
check "chart refuses RTMPS without its certificate's Secret" \
    expect_fail "rtmps.tlsSecret: name the kubernetes.io/tls Secret" --set rtmps.enabled=true
check "chart refuses rtmps keys in config" \
    expect_fail "set rtmps.enabled and rtmps.tlsSecret instead" --set config.rtmps.cert_file=/x
rtmps_check() { # FILE: RTMPS's port on the Service, the container, the NetworkPolicy; the Secret
    python3 - "$1" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
def one(kind, pred=lambda d: True):
    found = [d for d in docs if d["kind"] == kind and pred(d)]
    assert found, f"no {kind}"
    return found[0]
svc = one("Service", lambda d: d["metadata"]["name"].endswith("-rtmp"))
assert any(p["name"] == "rtmps" and p["targetPort"] == "rtmps" for p in svc["spec"]["ports"]), svc["spec"]["ports"]
pod = one("Deployment")["spec"]["template"]["spec"]
c = pod["containers"][0]
assert any(p["name"] == "rtmps" for p in c["ports"]), c["ports"]
assert any(m["name"] == "rtmps-tls" and m["mountPath"] == "/etc/ferrocast/tls" and m["readOnly"] for m in c["volumeMounts"])
vol = [v for v in pod["volumes"] if v["name"] == "rtmps-tls"][0]
assert vol["secret"]["secretName"] == "ferrocast-rtmps-tls", vol
np = one("NetworkPolicy")
ports = [p["port"] for rule in np["spec"]["ingress"] for p in rule.get("ports", [])]
assert "rtmps" in ports, ports
toml = one("ConfigMap", lambda d: "config.toml" in d.get("data", {}))["data"]["config.toml"]
assert 'rtmps = "0.0.0.0:1936"' in toml and 'cert_file = "/etc/ferrocast/tls/tls.crt"' in toml, toml
PY
}
check "RTMPS on the Service, the container and the NetworkPolicy, its Secret mounted [all-features]" \
    rtmps_check "$work/render-all-features.yaml"
check "chart refuses an API token in the ConfigMap" \
    expect_fail "never in the ConfigMap" --set config.api.token=abc
check "chart refuses the admin listener on the public HTTP port" \
    expect_fail "needs a TCP port of its own" --set ports.admin=8080
check "chart writes whole numbers as TOML integers" \
    bash -c "helm template x '$chart' --set config.rtmp.max_connections=300 --show-only templates/configmap.yaml | grep -qx '    max_connections = 300'"

echo "== kustomize ($(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p'))"
for o in base overlays/development overlays/production overlays/gpu; do
    f="$work/kustomize-${o//\//-}.yaml"
    check "kustomize build $o" bash -c "kubectl kustomize 'k8s/kustomize/$o' >'$f'"
    check "kubernetes-validate --strict $kube_version [kustomize $o]" kvalidate "$f"
    check "ServiceMonitor/PrometheusRule shape [kustomize $o]" crd_check "$f"
    k="kustomize-${o//\//-}"
    admin_checks "kustomize $o" "$f" "$k"
done

# The Istio Component on the production overlay: builds, validates, and keeps SRT off the sidecar.
istio_component() {
    mkdir -p "$work/istio-overlay" || return 1
    local rel  # kustomize takes relative paths only
    rel="$(realpath --relative-to="$work/istio-overlay" "$PWD/k8s/kustomize")"
    cat >"$work/istio-overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $rel/overlays/production
components:
  - $rel/components/istio
YAML
    kubectl kustomize "$work/istio-overlay" >"$work/kustomize-istio.yaml" || return 1
    kvalidate "$work/kustomize-istio.yaml" && istio_check "$work/kustomize-istio.yaml" || return 1
    python3 - "$work/kustomize-istio.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dep = next(d for d in docs if d["kind"] == "Deployment")
ann = dep["spec"]["template"]["metadata"].get("annotations") or {}
srt = next(p["containerPort"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"] if p["name"] == "srt")
assert ann.get("traffic.sidecar.istio.io/excludeInboundPorts") == str(srt), ann
kinds = sorted(d["kind"] for d in docs if d["apiVersion"].split("/")[0].endswith(".istio.io"))
assert kinds == ["DestinationRule", "PeerAuthentication", "VirtualService"], kinds
PY
}
check "the istio Component added to the production overlay builds and validates" istio_component

# admin_check itself: each mutant breaks the all-features render one way, and the section that
# guards against it must fail, naming the fault.
admin_mutants() {
    local m section want out
    while IFS='|' read -r m section want; do
        python3 - "$work/render-all-features.yaml" "$work/mutant.yaml" "$m" <<'PY' || return 1
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
m = sys.argv[3]
def one(kind, suffix=""):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith("ferrocast" + suffix))
def rule(port):
    return next(r for r in np["spec"]["ingress"] if r["ports"][0]["port"] == port)
public, admin = one("Service"), one("Service", "-admin")
ing, np, sm = one("Ingress"), one("NetworkPolicy"), one("ServiceMonitor")
container = one("Deployment")["spec"]["template"]["spec"]["containers"][0]
if m == "public-service-admin-port":
    public["spec"]["ports"].append({"name": "admin", "port": 9091, "targetPort": "admin", "protocol": "TCP"})
elif m == "public-service-admin-number":
    public["spec"]["ports"].append({"name": "metrics", "port": 9999, "targetPort": 9091, "protocol": "TCP"})
elif m == "ingress-to-admin-service":
    b = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    b["name"], b["port"] = admin["metadata"]["name"], {"name": "admin"}
elif m == "admin-service-loadbalancer":
    admin["spec"]["type"] = "LoadBalancer"
elif m == "probe-on-http":
    container["readinessProbe"]["httpGet"]["port"] = "http"
elif m == "admin-on-loopback":
    container.setdefault("env", []).append({"name": "FERROCAST_LISTEN_ADMIN", "value": "127.0.0.1:9091"})
elif m == "servicemonitor-on-http":
    sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/service"] = "http"
    sm["spec"]["endpoints"][0]["port"] = "http"
elif m == "networkpolicy-admin-from-anywhere":
    rule("admin").pop("from")
elif m == "networkpolicy-admin-from-all-namespaces":
    rule("admin")["from"].append({"namespaceSelector": {}})
elif m == "networkpolicy-http-rule-all-ports":
    rule("http").pop("ports")
else:
    sys.exit(f"unknown mutant {m}")
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
        if out="$(admin_check "$section" "$work/mutant.yaml" ingress servicemonitor 2>&1)"; then
            echo "mutant $m passed admin_check $section"; return 1
        fi
        grep -qF -- "$want" <<<"$out" || { echo "$out"; echo "mutant $m: expected the message: $want"; return 1; }
        echo "mutant $m: $(grep -F -- "$want" <<<"$out" | head -n 1)"
    done <<'MUTANTS'
public-service-admin-port|services|exposes the admin port
public-service-admin-number|services|exposes the admin port
ingress-to-admin-service|services|the Ingress sends to the admin Service
admin-service-loadbalancer|services|want ClusterIP
probe-on-http|pod|readinessProbe uses port http
admin-on-loopback|pod|FERROCAST_LISTEN_ADMIN = 127.0.0.1:9091
servicemonitor-on-http|monitoring|which is not the admin Service
networkpolicy-admin-from-anywhere|monitoring|admits the admin port from everywhere
networkpolicy-admin-from-all-namespaces|monitoring|admits the admin port from {"namespaceSelector": {}}
networkpolicy-http-rule-all-ports|monitoring|(ports all) admits the admin port from
MUTANTS
}
check "admin_check fails renders that expose the admin listener (10 mutants)" admin_mutants

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
    assert not k.startswith("FERROCAST_") or k in ("FERROCAST_CONFIG", "FERROCAST_STREAMS", "FERROCAST_LOG_FORMAT", "FERROCAST_LOG_LEVEL", "FERROCAST_LISTEN_ADMIN"), k
# The admin listener: bound on the container's every address for Prometheus on the compose
# network, published (if at all) on the host's loopback only; Prometheus scrapes it, not 8080.
prom = yaml.safe_load(open(os.path.join(base, "prometheus/prometheus.yml")))
targets = [t for j in prom["scrape_configs"] if j["job_name"] == "ferrocast"
           for sc in j.get("static_configs") or [] for t in sc["targets"]]
for name in ("ferrocast", "ferrocast-gpu"):
    s = c["services"][name]
    bind = str((s.get("environment") or {}).get("FERROCAST_LISTEN_ADMIN", ""))
    assert bind.startswith(("0.0.0.0:", "[::]:")), f"{name}: FERROCAST_LISTEN_ADMIN {bind!r}, want 0.0.0.0:PORT"
    admin = int(bind.rsplit(":", 1)[1])
    for p in s.get("ports") or []:
        if isinstance(p, dict):
            host_ip, target = p.get("host_ip", ""), int(p["target"])
        else:
            parts = str(p).split("/")[0].rsplit(":", 2)
            host_ip = parts[0] if len(parts) == 3 else ""
            target = int(parts[-1])
        assert target != admin or host_ip in ("127.0.0.1", "::1", "[::1]"), \
            f"{name}: {p!r} publishes the admin port beyond the host's loopback"
    assert f"{name}:{admin}" in targets, f"prometheus.yml does not scrape {name}:{admin} (the admin listener)"
    assert not [t for t in targets if t.startswith(f"{name}:") and t != f"{name}:{admin}"], \
        f"prometheus.yml scrapes {name} on another port than the admin listener's {admin}"
print("compose ok")
PY
}
check "docker/compose.yaml: services, gpu profile, mounts of the chart's files, admin port on the loopback, scraped" compose_check
# The image: the HEALTHCHECK probes the admin listener's default port (the chart's ports.admin),
# and the admin port is not EXPOSEd (`docker run -P` would publish it on every host address).
image_admin() {
    local admin
    admin="$(sed -n 's/^  admin: \([0-9]*\)$/\1/p' "$chart/values.yaml" | head -n 1)"
    [ -n "$admin" ] || { echo "no ports.admin in $chart/values.yaml"; return 1; }
    grep -qx "port=\"\${port:-$admin}\"" docker/healthcheck.sh || { echo "docker/healthcheck.sh does not default to port $admin"; return 1; }
    grep -q '/healthz' docker/healthcheck.sh || { echo "docker/healthcheck.sh does not GET /healthz"; return 1; }
    grep -q 'CMD \["/usr/local/bin/ferrocast-healthcheck"\]' docker/Dockerfile || { echo "no HEALTHCHECK running ferrocast-healthcheck"; return 1; }
    if grep -E "^EXPOSE .*\b$admin\b" docker/Dockerfile; then echo "docker/Dockerfile EXPOSEs the admin port $admin"; return 1; fi
    if grep -q "FERROCAST_LISTEN_ADMIN" <(sed -n '/^ENV /,/^$/p' docker/Dockerfile); then
        echo "docker/Dockerfile sets FERROCAST_LISTEN_ADMIN: it would beat the chart's [listen] admin"; return 1
    fi
    echo "HEALTHCHECK on port $admin, not EXPOSEd"
}
check "docker/Dockerfile: HEALTHCHECK on the admin port, which is not EXPOSEd" image_admin
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
    diff -r "$work/fresh/manifests-cluster" k8s/manifests-cluster || return 1
    diff -r "$work/fresh/kustomize/components/istio" k8s/kustomize/components/istio || return 1
    (cd "$work/fresh/monitoring" && find . -type f | sort) >"$work/generated"
    while read -r f; do diff -u "$work/fresh/monitoring/$f" "k8s/monitoring/$f" || return 1; done <"$work/generated"
}
check "k8s/manifests, k8s/manifests-cluster and k8s/monitoring match the chart (scripts/k8s-render.sh)" drift

echo
for f in "${failures[@]}"; do echo "failed: $f"; done
echo "k8s-check: $passed passed, $failed failed ($((SECONDS - start))s)"
[ "$failed" -eq 0 ]
