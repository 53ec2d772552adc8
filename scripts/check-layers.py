#!/usr/bin/env python3
"""Checks that the code keeps the one-way shape that ARCHITECTURE.md describes.

1. Crates: every workspace crate has a layer (LAYERS below). A crate may depend only on crates in a
   lower layer: `cargo metadata` is asked for every dependency (normal, build and dev) between
   workspace crates, and one that points to the same or a higher layer fails the check. A new crate
   must be given a layer here before it can depend on anything of ours.
2. Files: within each crate, no two files import each other, directly or through others. An
   import is a path that names a module of the same crate: `crate::a::b`, `super::x`, `self::x`,
   or a `use` of a child module declared in the file. Declaring a module (`mod x;`) is not an
   import. Test code is left out: a file's inline `#[cfg(test)]` module, and files that only tests
   compile (`tests.rs`, declared under `#[cfg(test)]`).

3. Reach: a crate in NEVER_REACH links none of the packages named there, even transitively (its
   own normal, build and dev dependencies, and their normal and build ones), from `cargo metadata`'s
   resolved graph.

Exit status 0 when all three hold; otherwise each offending edge or cycle is printed and the status is 1.
`--self-test` runs the checker against small made-up crates, so a broken checker cannot pass quietly.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

# Layer of each workspace crate, lowest first. Data flows ingest -> transcode -> playback, and each
# stage imports only the stages before it (the interfaces it consumes) and the libraries below.
LAYERS = {
    # Vocabulary every part shares: media types, metric names, configuration building blocks.
    "media": 0,
    "telemetry": 0,
    "settings": 0,
    # Sans-IO protocol and format crates, and the GStreamer pipeline: each depends only on layer 0.
    "rtmp": 1,
    "flv": 1,
    "srt": 1,
    "mpegts": 1,
    "hls": 1,
    "pipeline": 1,
    # The service, along the data flow. The cluster (Redis leases, and who owns a stream) sits
    # beside ingest: the wiring adapts ingest's admission and playback's sources to it.
    "ingest": 2,
    "cluster": 2,
    "transcode": 3,
    "playback": 4,
    # Wiring (HTTP router, health, shutdown, configuration assembly) and the binary.
    "ferrocast": 5,
}


# Packages a crate must not link, even through others: (crate, package or package-name prefix).
# Playback reads streams through `hls::Source` (seam 4), so its HTTP side never links the
# transcoder or GStreamer.
# Ingest and playback reach the cluster only through the interfaces the wiring provides
# (`ingest::Ownership`, `hls::Source`): neither links Redis. The cluster links no GStreamer.
NEVER_REACH = {
    "playback": ("transcode", "pipeline", "gstreamer", "cluster", "redis"),
    "ingest": ("cluster", "redis", "gstreamer"),
    "cluster": ("gstreamer", "pipeline"),
}


def fail(msg):
    print(f"check-layers: {msg}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# 1. Crates


def crate_edges(metadata):
    """(from, to, kind) for every dependency between workspace packages."""
    members = {p["name"] for p in metadata["packages"]}
    for p in metadata["packages"]:
        for d in p["dependencies"]:
            if d["name"] in members:
                yield p["name"], d["name"], d.get("kind") or "normal"


def check_crates(metadata, layers):
    problems = []
    names = {p["name"] for p in metadata["packages"]}
    for n in sorted(names - set(layers)):
        problems.append(f"crate {n} has no layer: give it one in scripts/check-layers.py")
    for a, b, kind in crate_edges(metadata):
        if a not in layers or b not in layers:
            continue
        if layers[b] >= layers[a]:
            problems.append(
                f"crate {a} (layer {layers[a]}) depends on {b} (layer {layers[b]}) [{kind}]: "
                "a crate may only import crates of a lower layer"
            )
    return problems


# ---------------------------------------------------------------------------------------------
# 2. Files

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def blank(text):
    """Source with comments, and the contents of string and character literals, blanked out, in
    one left-to-right pass (so `"http://x"` is a string, not a comment, and `// "` a comment)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            out.append(" ")
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            out.append(" ")
        elif (m := re.match(r'b?r(#*)"', text[i : i + 260])) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            i = n if end < 0 else end + 1 + len(m.group(1))
            out.append('""')
        elif c == '"' or (c == "b" and text.startswith('b"', i) and (i == 0 or not text[i - 1].isalnum())):
            i += 2 if c == "b" else 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and (m := re.match(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", text[i : i + 12], re.S)):
            i += len(m.group(0))
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip(text):
    """Source without comments, string literals and inline `#[cfg(test)]` modules."""
    text = blank(text)
    test_mod = re.compile(
        r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{"
    )
    while True:
        m = test_mod.search(text)
        if not m:
            return text
        text = text[: m.start()] + cut_block(text, m.end())


def inline_modules(text, modpath):
    """(module path, text) for a file's own code and for each inline `mod x { ... }` in it."""
    out = []
    rest = ""
    i = 0
    pattern = re.compile(r"(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*\{")
    while True:
        m = pattern.search(text, i)
        if not m:
            rest += text[i:]
            break
        rest += text[i : m.start()]
        after = cut_block(text, m.end())
        inner = text[m.end() : len(text) - len(after) - 1]
        out += inline_modules(inner, modpath + (m.group(1),))
        i = len(text) - len(after)
    return [(modpath, rest)] + out


def cut_block(text, start):
    """Text after the block whose opening brace ends right before `start`."""
    depth = 1
    i = start
    while i < len(text) and depth:
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
        i += 1
    return text[i:]


def declared_modules(text):
    """Child modules declared in a file: {name: is_test_only}."""
    out = {}
    for m in re.finditer(r"((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text):
        out[m.group(2)] = "cfg(test)" in m.group(1)
    return out


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = re.sub(r"\s+", "", tree)
    depth = 0
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                prefix, inner = tree[:i], tree[i + 1 : tree.rindex("}")]
                parts, d, cur = [], 0, ""
                for c in inner:
                    if c == "," and d == 0:
                        parts.append(cur)
                        cur = ""
                        continue
                    d += c == "{"
                    d -= c == "}"
                    cur += c
                parts.append(cur)
                return [p2 for p in parts if p for p2 in expand_use(prefix + p)]
            depth += 1
    return [tree]


def module_files(src_dir):
    """Maps module path tuples to files, following `mod` declarations from lib.rs/main.rs."""
    files = {}

    def visit(path, modpath, test_only):
        text = open(path, encoding="utf-8").read()
        files[modpath] = (path, test_only)
        base = os.path.dirname(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        own_dir = base if stem in ("lib", "main", "mod") else os.path.join(base, stem)
        for name, is_test in declared_modules(blank(text)).items():
            for cand in (os.path.join(own_dir, name + ".rs"), os.path.join(own_dir, name, "mod.rs")):
                if os.path.exists(cand):
                    visit(cand, modpath + (name,), test_only or is_test or name == "tests")
                    break

    for root in ("lib.rs", "main.rs"):
        p = os.path.join(src_dir, root)
        if os.path.exists(p):
            visit(p, (), False)
    return files


def file_imports(modpath, text, known):
    """Module paths (tuples, within the crate) of the files that this file's code refers to."""
    found = set()
    for segpath, segtext in inline_modules(text, modpath):
        found |= segment_imports(segpath, segtext, known)
    found.discard(modpath)
    return found


def segment_imports(modpath, text, known):
    """The files one module's code (a file, or an inline module in it) refers to."""
    children = set(declared_modules(text)) | {
        m.group(1) for m in re.finditer(r"\bmod\s+(" + IDENT + r")\s*\{", text)
    }
    found = set()

    def resolve(path):
        parts = path.split("::")
        if parts[0] == "crate":
            base, rest = (), parts[1:]
        elif parts[0] in ("super", "self"):
            base = modpath
            while parts and parts[0] in ("super", "self"):
                if parts[0] == "super":
                    base = base[:-1]
                parts = parts[1:]
            rest = parts
        elif parts[0] in children:
            base, rest = modpath, parts
        else:
            return None
        full = base + tuple(p for p in rest if re.fullmatch(IDENT, p))
        # The file that holds the module the path names: its longest prefix that is a file.
        for n in range(len(full), -1, -1):
            if full[:n] in known:
                return full[:n]
        return ()

    for m in re.finditer(r"\buse\s+([^;]+);", text):
        for path in expand_use(m.group(1)):
            path = re.sub(r"\bas\b.*$", "", path)
            t = resolve(path)
            if t is not None:
                found.add(t)
    for m in re.finditer(r"\b((?:crate|super|self)(?:::" + IDENT + ")+)", text):
        t = resolve(m.group(1))
        if t is not None:
            found.add(t)
    for name in children:
        if re.search(r"(?<![:\w])" + name + r"::", text):
            t = resolve(name)
            if t is not None:
                found.add(t)
    return found


def cycles(graph):
    """Every elementary cycle's node list, found once per strongly connected component."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            strong(v)
    return out


def check_files(crate, src_dir):
    files = module_files(src_dir)
    graph = {}
    for modpath, (path, test_only) in files.items():
        if test_only:
            continue
        text = strip(open(path, encoding="utf-8").read())
        deps = {d for d in file_imports(modpath, text, files) if not files[d][1]}
        graph[modpath] = deps
    problems = []
    for comp in cycles(graph):
        shown = ", ".join(os.path.relpath(files[m][0]) for m in comp)
        edges = [
            f"{os.path.relpath(files[a][0])} -> {os.path.relpath(files[b][0])}"
            for a in comp
            for b in sorted(graph[a])
            if b in comp
        ]
        problems.append(f"crate {crate}: files import each other: {shown} ({'; '.join(edges)})")
    return problems


# ---------------------------------------------------------------------------------------------
# 3. Reach


def reach(metadata, crate):
    """Names of the packages `crate` links: every dependency of its own (dev ones included, since
    its tests link them), then the normal and build dependencies of those."""
    names = {p["id"]: p["name"] for p in metadata["packages"]}
    nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}
    roots = [i for i in nodes if names.get(i) == crate]
    seen = set()
    stack = [(r, True) for r in roots]
    while stack:
        node, own = stack.pop()
        for d in nodes[node]["deps"]:
            kinds = {k.get("kind") or "normal" for k in d.get("dep_kinds") or [{}]}
            if not own and kinds <= {"dev"}:
                continue
            if d["pkg"] not in seen:
                seen.add(d["pkg"])
                stack.append((d["pkg"], False))
    return {names[i] for i in seen}


def check_reach(metadata, rules):
    problems = []
    for crate, banned in rules.items():
        linked = reach(metadata, crate)
        for b in banned:
            hits = sorted(n for n in linked if n == b or n.startswith(b + "-"))
            if hits:
                problems.append(f"crate {crate} links {', '.join(hits)}, which it must not reach")
    return problems


# ---------------------------------------------------------------------------------------------


def run(root):
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    problems = check_crates(meta, LAYERS)
    # The resolved graph, for the host only (other platforms' crates are never linked here). Not
    # offline: cargo may need the index entries of crates that no build on this machine fetched.
    host = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    host = next(l.split(": ", 1)[1] for l in host.splitlines() if l.startswith("host: "))
    full = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--filter-platform", host],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    problems += check_reach(full, NEVER_REACH)
    for p in meta["packages"]:
        src = os.path.join(os.path.dirname(p["manifest_path"]), "src")
        if os.path.isdir(src):
            problems += check_files(p["name"], src)
    for p in problems:
        fail(p)
    if not problems:
        n = len(meta["packages"])
        print(
            f"check-layers: {n} crates, every dependency points to a lower layer, no file import cycles, "
            f"and {', '.join(NEVER_REACH)} link(s) none of what they must not reach"
        )
    return 1 if problems else 0


def self_test():
    """The checker finds a back edge between crates and a cycle between files, and passes clean code."""
    meta = {
        "packages": [
            {"name": "low", "dependencies": []},
            {"name": "high", "dependencies": [{"name": "low", "kind": None}]},
        ]
    }
    layers = {"low": 0, "high": 1}
    assert check_crates(meta, layers) == [], "a downward dependency is fine"
    meta["packages"][0]["dependencies"].append({"name": "high", "kind": "dev"})
    assert len(check_crates(meta, layers)) == 1, "a back edge (even a dev one) is found"
    assert len(check_crates(meta, {"low": 0})) == 1, "a crate without a layer is found"

    # Reach: web -> seam -> util; core -> gstreamer-sys; web's dev dependency on mock -> core; seam's
    # dev dependency on core is not linked by web.
    dep = lambda pkg, kind=None: {"pkg": pkg, "dep_kinds": [{"kind": kind}]}
    graph = {
        "packages": [{"id": n, "name": n} for n in ("web", "seam", "util", "core", "gstreamer-sys", "mock")],
        "resolve": {"nodes": [
            {"id": "web", "deps": [dep("seam")]},
            {"id": "seam", "deps": [dep("util"), dep("core", "dev")]},
            {"id": "util", "deps": []},
            {"id": "core", "deps": [dep("gstreamer-sys")]},
            {"id": "gstreamer-sys", "deps": []},
            {"id": "mock", "deps": [dep("core")]},
        ]},
    }
    assert reach(graph, "web") == {"seam", "util"}, reach(graph, "web")
    assert check_reach(graph, {"web": ("core", "gstreamer")}) == [], "a dependency's dev dependency is not linked"
    graph["resolve"]["nodes"][0]["deps"].append(dep("mock", "dev"))
    found = check_reach(graph, {"web": ("core", "gstreamer")})
    assert len(found) == 2 and "gstreamer-sys" in found[1], found

    # (what, files, a file the one cycle found must name; None: no cycle)
    cases = [
        ("test code and comments are not imports", {
            "lib.rs": "mod a;\nmod b;\npub use a::A;\npub use b::{B, C};\n#[cfg(test)]\nmod tests;\n",
            "a.rs": "use crate::b::B;\npub struct A(B);\n#[cfg(test)]\nmod tests { use crate::a::A; }\n",
            "b.rs": "// use crate::a::A;\npub struct B; pub struct C; const S: &str = \"crate::a::A\";\n",
            "tests.rs": "use super::*;\nuse crate::a::A;\n",
        }, None),
        ("two files import each other", {
            "lib.rs": "mod a;\nmod b;\npub use a::A;\npub struct Root;\n",
            "a.rs": "use crate::b::B;\npub struct A(B);\n",
            "b.rs": "pub struct B;\nfn f() -> crate::a::A { todo!() }\n",
        }, "b.rs"),
        ("an import through the root re-export", {
            "lib.rs": "mod a;\npub use a::A;\npub struct Root;\n",
            "a/mod.rs": "mod inner;\npub use inner::A;\n",
            "a/inner.rs": "use crate::{Root, a::other};\npub struct A;\n",
        }, "lib.rs"),
        ("a child that imports its parent", {
            "lib.rs": "mod srt;\n",
            "srt/mod.rs": "mod admit;\nuse admit::decide;\npub struct Ingest;\n",
            "srt/admit.rs": "use super::Ingest;\npub fn decide() {}\n",
        }, "admit.rs"),
        ("super in an inline module is that module's parent", {
            "lib.rs": "mod a;\npub use a::A;\n",
            "a.rs": "pub struct A;\npub mod client { use super::*; }\n#[cfg(test)]\npub(crate) mod tests { use crate::A; }\n",
        }, None),
        ("a string holding // hides no code", {
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "const URL: &str = \"http://example.com\";\nuse crate::b::B;\nconst C: char = '\"';\npub struct A<'a>(&'a B);\n",
            "b.rs": "use crate::a::A;\npub struct B; /* \"use crate::x; */ const R: &str = r#\"//\"#;\n",
        }, "a.rs"),
    ]
    for what, files, named in cases:
        with tempfile.TemporaryDirectory() as d:
            for name, text in files.items():
                path = os.path.join(d, name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(text)
            found = check_files("case", d)
        if named is None:
            assert found == [], (what, found)
        else:
            assert len(found) == 1 and named in found[0], (what, found)
    print("check-layers: self-test passed")
    return 0


if __name__ == "__main__":
    if "--self-test" in sys.argv:
        sys.exit(self_test())
    sys.exit(run(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
