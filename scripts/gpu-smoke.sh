#!/usr/bin/env bash
# GPU smoke test for a machine with an NVIDIA GPU (or inside a container started with the NVIDIA
# container runtime: NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,video,utility).
#
# 1. Shows what the driver and GStreamer offer (nvidia-smi, gst-inspect-1.0 nvcodec).
# 2. Runs Ferrocast's capability probe: which factories exist and which actually open a session.
# 3. Runs a short test-pattern ladder through every chain the machine can build: software,
#    NVDEC + CPU scale, CPU decode + CUDA scale, hybrid (NVDEC + CUDA scale + x264: H100/H200
#    have no NVENC), full NVIDIA (NVENC), and VA-API where present.
#
# Usage: scripts/gpu-smoke.sh [--device N]
# Exit status: 0 when every chain the probe offered produced segments on every rung.
set -euo pipefail
cd "$(dirname "$0")/.."

device=0
if [[ "${1:-}" == "--device" ]]; then
    device="${2:?--device needs a number}"
fi

echo "== driver"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv || true
else
    echo "nvidia-smi not found (no driver, or the container lacks NVIDIA_DRIVER_CAPABILITIES=utility)"
fi
echo "NVIDIA_VISIBLE_DEVICES=${NVIDIA_VISIBLE_DEVICES:-<unset>}"
echo "NVIDIA_DRIVER_CAPABILITIES=${NVIDIA_DRIVER_CAPABILITIES:-<unset>}"

echo "== GStreamer elements"
# gst-inspect caches the registry; a stale cache from before the driver was visible hides nvcodec.
export GST_REGISTRY_UPDATE=yes
for e in nvh264dec nvh264enc nvcudah264enc cudaupload cudascale cudaconvert cudadownload \
         vah264enc vaapih264enc avdec_h264 x264enc; do
    if gst-inspect-1.0 --exists "$e"; then echo "  $e: registered"; else echo "  $e: missing"; fi
done
if ! gst-inspect-1.0 nvcodec >/dev/null 2>&1; then
    echo "  the nvcodec plugin lists no elements: libcuda/libnvidia-encode did not load"
    echo "  (in a container: --gpus all, or the NVIDIA runtime with NVIDIA_DRIVER_CAPABILITIES=compute,video,utility)"
fi

echo "== one-frame session checks"
check() {
    local name="$1"; shift
    if timeout 20 gst-launch-1.0 -q "$@" >/dev/null 2>&1; then echo "  $name: opens"; else echo "  $name: FAILS"; fi
}
if gst-inspect-1.0 --exists nvh264enc; then
    check nvh264enc videotestsrc num-buffers=1 ! video/x-raw,format=NV12,width=320,height=240 ! nvh264enc ! fakesink
fi
if gst-inspect-1.0 --exists nvh264dec; then
    check nvh264dec videotestsrc num-buffers=2 ! video/x-raw,format=I420,width=320,height=240 ! x264enc ! h264parse ! nvh264dec ! fakesink
fi
if gst-inspect-1.0 --exists cudascale; then
    check cudascale videotestsrc num-buffers=1 ! cudaupload ! cudascale ! "video/x-raw(memory:CUDAMemory),width=160,height=120" ! cudadownload ! fakesink
fi

echo "== Ferrocast probe and ladders (cuda device $device)"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}" \
    cargo run --quiet --release -p pipeline --example probe -- --device "$device" --ladder
