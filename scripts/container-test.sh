#!/usr/bin/env bash
# Builds the Ferrocast image with podman and runs it the way production does: read-only root
# filesystem, non-root, all capabilities dropped, stream keys from a mounted file. The probes,
# /metrics and the API are checked on the admin listener (FERROCAST_LISTEN_ADMIN, on the host's
# loopback), and must answer 404 on the public one. Then it publishes with ffmpeg over RTMP,
# fetches the master playlist, a media playlist and a segment, and stops the container with
# SIGTERM, checking the drain (/readyz 503, exit status 0 within the grace).
#
#   scripts/container-test.sh [PATH_TO_FERROCAST_BINARY]
#
# The binary defaults to ${CARGO_TARGET_DIR:-target}/release/ferrocast (`make build`). No image can
# be pulled here, so:
#   - the base image is made with `debootstrap --variant=minbase bookworm` and imported as
#     docker.io/library/debian:bookworm-slim (once; kept in podman's store afterwards);
#   - the image is the Dockerfile's `runtime-prebuilt` target around the host-built binary and the
#     host's npm-installed hls.js (player/node_modules, `npm ci --prefix player`).
# podman runs with runc, cgroupfs and host networking (a containers.conf of this script's own,
# through CONTAINERS_CONF; the system's is left alone). Ports are picked free at run time.
# Installs podman, runc, debootstrap, ffmpeg and curl with apt-get when missing (root or sudo).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
start=$SECONDS
bin="${1:-${CARGO_TARGET_DIR:-target}/release/ferrocast}"
image="localhost/ferrocast:container-test"
base_image="docker.io/library/debian:bookworm-slim"
name="ferrocast-container-test-$$"
stream=ctest
key="ctest-$RANDOM$RANDOM$RANDOM"
grace_s=8

log() { echo "container-test: $* ($((SECONDS - start))s)" >&2; }
die() { echo "container-test: FAIL: $*" >&2; exit 1; }

[ -x "$bin" ] || die "no ferrocast binary at $bin: build it (make build) or pass its path"

# --- dependencies -----------------------------------------------------------------------------
packages=(podman runc debootstrap ffmpeg curl)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -q >/dev/null
    "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

work="$(mktemp -d)"
ffmpeg_pid=""
cleanup() {
    [ -n "$ffmpeg_pid" ] && kill "$ffmpeg_pid" 2>/dev/null || true
    podman rm -f --time 0 "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# The podman settings that work on CI machines (no systemd, cgroup v1, no user namespaces
# needed as root).
cat >"$work/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "host"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
export CONTAINERS_CONF="$work/containers.conf"

# --- base image -------------------------------------------------------------------------------
if ! podman image exists "$base_image"; then
    log "making $base_image with debootstrap (minutes, once)"
    rootfs="$work/rootfs"
    timeout 1200 debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
        || { tail -n 30 "$work/debootstrap.log"; die "debootstrap failed"; }
    # As slim as the real one: no apt lists, no caches.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" --numeric-owner -cf - . | podman import --change 'CMD ["bash"]' - "$base_image" >/dev/null
    rm -rf "$rootfs"
fi

# --- image ------------------------------------------------------------------------------------
hlsjs=player/node_modules/hls.js
if [ ! -f "$hlsjs/dist/hls.min.js" ]; then
    log "installing the player's hls.js (npm ci)"
    npm ci --prefix player --no-audit --no-fund >/dev/null
fi
ctx="$work/context"
mkdir -p "$ctx/docker" "$ctx/bin" "$ctx/hls.js/dist"
cp docker/Dockerfile docker/entrypoint.sh docker/healthcheck.sh "$ctx/docker/"
cp "$bin" "$ctx/bin/ferrocast"
cp "$hlsjs/dist/hls.min.js" "$ctx/hls.js/dist/"
cp "$hlsjs/LICENSE" "$ctx/hls.js/"
log "building $image (target runtime-prebuilt)"
# --format docker keeps HEALTHCHECK (OCI image configs have no such field).
timeout 1800 podman build --pull=never --network host --format docker \
    --target runtime-prebuilt \
    --build-arg PREBUILT_BINARY=bin/ferrocast --build-arg PREBUILT_PLAYER=hls.js \
    --build-arg REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    -f "$ctx/docker/Dockerfile" -t "$image" "$ctx" >"$work/build.log" 2>&1 \
    || { tail -n 40 "$work/build.log"; die "podman build failed"; }

inspect() { podman image inspect --format "$1" "$image"; }
[ "$(inspect '{{.Config.User}}')" = "10001:10001" ] || die "image user is $(inspect '{{.Config.User}}'), want 10001:10001"
inspect '{{json .Config.Healthcheck}}' | grep -q ferrocast-healthcheck || die "image has no HEALTHCHECK"
inspect '{{index .Config.Labels "org.opencontainers.image.title"}}' | grep -qx ferrocast || die "OCI labels missing"
for p in 8080/tcp 1935/tcp 9000/udp; do
    inspect '{{json .Config.ExposedPorts}}' | grep -q "\"$p\"" || die "image does not EXPOSE $p"
done
# The admin listener is internal: `-P` must not publish it.
if inspect '{{json .Config.ExposedPorts}}' | grep -q '"9091/tcp"'; then die "image EXPOSEs the admin port 9091"; fi
log "image ok: $(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"

# --- run --------------------------------------------------------------------------------------
free_port() { # tcp|udp
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "$1"
}
http_port=$(free_port tcp); admin_port=$(free_port tcp); rtmp_port=$(free_port tcp); srt_port=$(free_port udp)
base="http://127.0.0.1:$http_port"
admin="http://127.0.0.1:$admin_port"

printf '[[streams]]\nname = "%s"\nkey = "%s"\n' "$stream" "$key" >"$work/streams.toml"
chmod 0644 "$work/streams.toml"

# No systemd here to time healthchecks: `podman healthcheck run` below runs the image's check once.
# The admin listener on the loopback (host networking: the host's loopback, nothing beyond it),
# through the environment as compose sets it; the HEALTHCHECK takes its port from the variable.
run_args=(--network host --health-interval disable --read-only --tmpfs /tmp:rw,size=64m,mode=1777
    --cap-drop ALL --security-opt no-new-privileges
    -e FERROCAST_LISTEN_ADMIN="127.0.0.1:$admin_port"
    -v "$work/streams.toml:/etc/ferrocast/streams/streams.toml:ro")
cmd=(serve --http "127.0.0.1:$http_port" --rtmp "127.0.0.1:$rtmp_port" --srt "127.0.0.1:$srt_port"
    --shutdown-grace "${grace_s}s" --log-format text)
# http.assets_dir arrived with the player pages; older binaries refuse the key.
if podman run --rm "${run_args[@]}" "$image" check-config /dev/null \
        --set http.assets_dir=/usr/share/ferrocast/player >/dev/null 2>&1; then
    cmd+=(--set http.assets_dir=/usr/share/ferrocast/player)
    have_assets=1
else
    log "note: this binary has no http.assets_dir key; running without it"
    have_assets=0
fi
# Cluster mode's Redis URL comes as a file (the chart mounts it from a Secret): the entry point
# hands it on, and the binary's validation names the key it arrived in.
printf 'http://not-a-redis-url:1' >"$work/redis-url"
chmod 0644 "$work/redis-url"
redis_out="$(podman run --rm -v "$work/redis-url:/etc/ferrocast/cluster/redis-url:ro" "$image" \
    check-config /dev/null 2>&1 || true)"
grep -q 'cluster.redis_url' <<<"$redis_out" \
    || die "the entry point did not hand /etc/ferrocast/cluster/redis-url on as cluster.redis_url: $redis_out"
podman run -d --name "$name" "${run_args[@]}" "$image" "${cmd[@]}" >/dev/null
logs() { podman logs "$name" 2>&1 | tail -n "${1:-40}"; }

ready=0
for _ in $(seq 1 120); do
    if [ "$(podman inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" != true ]; then
        logs; die "the container exited during start-up"
    fi
    if curl -fsS -m 2 "$admin/readyz" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.5
done
[ "$ready" = 1 ] || { logs; die "/readyz on the admin listener did not answer 200 within 60 s"; }
log "ready on $base (admin $admin, rtmp $rtmp_port, srt $srt_port/udp)"

# Production posture inside the container.
[ "$(podman exec "$name" id -u)" = 10001 ] || die "not running as uid 10001"
if podman exec "$name" sh -c 'echo x >/usr/local/bin/x' 2>/dev/null; then die "root filesystem is writable"; fi
podman exec "$name" sh -c 'test -s /tmp/ferrocast-config.toml' || die "the entry point did not merge the streams file"
podman exec "$name" sh -c 'grep -q "^CapEff:[[:space:]]*0*$" /proc/1/status' || die "process has capabilities"
podman healthcheck run "$name" >/dev/null || die "HEALTHCHECK failed (on the admin listener, port $admin_port)"
curl -fsS -m 5 "$admin/healthz" >/dev/null || die "/healthz on the admin listener"
curl -fsS -m 5 "$admin/readyz" >/dev/null || die "/readyz on the admin listener"
curl -fsS -m 5 -o "$work/metrics" "$admin/metrics" && grep -q '^ferrocast_' "$work/metrics" || die "/metrics on the admin listener has no ferrocast_ metrics"
curl -fsS -m 5 "$base/" >/dev/null || die "player page /"
if [ "$have_assets" = 1 ]; then
    curl -fsS -m 5 -o "$work/hls.min.js" "$base/assets/hls.min.js" && [ -s "$work/hls.min.js" ] \
        || die "/assets/hls.min.js is not served from the image"
fi
curl -fsS -m 5 -o "$work/streams.json" "$admin/api/v1/streams" && grep -q "\"$stream\"" "$work/streams.json" \
    || die "/api/v1/streams on the admin listener lacks $stream"
# The public listener serves playback only: the admin paths are not there.
for path in /metrics /api/v1/streams /healthz /readyz; do
    code="$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$base$path" 2>/dev/null || true)"
    [ "$code" = 404 ] || die "$path on the public listener answered $code, want 404 (it belongs to the admin listener)"
done
curl -fsS -m 5 -o "$work/live.json" "$base/streams.json" || die "/streams.json on the public listener"
log "health, readiness, metrics, API on the admin listener (404 on the public one), player, HEALTHCHECK, posture: ok"

# --- publish and play -------------------------------------------------------------------------
timeout 120 ffmpeg -nostdin -hide_banner -loglevel error -re \
    -f lavfi -i "testsrc2=size=640x360:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
    -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p -g 30 -b:v 1200k \
    -c:a aac -b:a 96k -t 90 \
    -f flv "rtmp://127.0.0.1:$rtmp_port/live/$key" >"$work/ffmpeg.log" 2>&1 &
ffmpeg_pid=$!

fetch() { curl -fsS -m 10 -o "$2" -w '%{http_code}' "$1" 2>/dev/null; }
master="$work/master.m3u8"
got=0
for _ in $(seq 1 60); do
    if fetch "$base/live/$stream/index.m3u8" "$master" | grep -q 200 && head -n 1 "$master" | grep -q '^#EXTM3U'; then
        got=1; break
    fi
    kill -0 "$ffmpeg_pid" 2>/dev/null || { cat "$work/ffmpeg.log"; logs; die "ffmpeg stopped publishing"; }
    sleep 1
done
[ "$got" = 1 ] || { logs; die "no master playlist at /live/$stream/index.m3u8 within 60 s of publishing (does this binary package HLS yet?)"; }
grep -q '^#EXT-X-STREAM-INF' "$master" || die "master playlist lists no variant: $(cat "$master")"
variant="$(grep -v '^#' "$master" | grep -m 1 .)"
resolve() { python3 -c 'import sys, urllib.parse; print(urllib.parse.urljoin(sys.argv[1], sys.argv[2]))' "$1" "$2"; }
media_url="$(resolve "$base/live/$stream/index.m3u8" "$variant")"
media="$work/media.m3u8"
segment=""
for _ in $(seq 1 30); do
    if fetch "$media_url" "$media" | grep -q 200 && grep -q '^#EXTINF' "$media"; then
        segment="$(grep -A 1 -m 1 '^#EXTINF' "$media" | tail -n 1)"
        break
    fi
    sleep 1
done
[ -n "$segment" ] || { cat "$media" 2>/dev/null; die "media playlist $media_url has no segment within 30 s"; }
map="$(sed -n 's/^#EXT-X-MAP:.*URI="\([^"]*\)".*/\1/p' "$media" | head -n 1)"
if [ -n "$map" ]; then
    fetch "$(resolve "$media_url" "$map")" "$work/init.mp4" | grep -q 200 || die "init segment $map"
    python3 -c 'import sys; b=open(sys.argv[1],"rb").read(); sys.exit(0 if b[4:8]==b"ftyp" else 1)' "$work/init.mp4" \
        || die "init segment $map does not start with ftyp"
fi
fetch "$(resolve "$media_url" "$segment")" "$work/segment" | grep -q 200 || die "segment $segment"
[ -s "$work/segment" ] || die "segment $segment is empty"
python3 -c 'import sys; b=open(sys.argv[1],"rb").read(); sys.exit(0 if b[4:8] in (b"styp", b"moof", b"ftyp", b"prft", b"emsg") else 1)' "$work/segment" \
    || die "segment $segment is not fragmented MP4"
log "playback ok: master -> $variant -> $segment ($(stat -c %s "$work/segment") bytes)"
# The public list names the live stream, and never its key.
curl -fsS -m 5 -o "$work/live.json" "$base/streams.json" && grep -q "\"$stream\"" "$work/live.json" \
    || die "/streams.json does not list the live stream $stream: $(cat "$work/live.json" 2>/dev/null)"
if grep -qF -- "$key" "$work/live.json"; then die "/streams.json names the stream key"; fi

# --- drain on SIGTERM -------------------------------------------------------------------------
t0=$SECONDS
podman kill --signal TERM "$name" >/dev/null
saw_503=0
while [ "$(podman inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" = true ]; do
    code="$(curl -s -m 1 -o /dev/null -w '%{http_code}' "$admin/readyz" 2>/dev/null || true)"
    [ "$code" = 503 ] && saw_503=1
    [ $((SECONDS - t0)) -le $((grace_s + 5)) ] || { logs; die "still running $((grace_s + 5)) s after SIGTERM (grace ${grace_s}s)"; }
    sleep 0.1
done
status="$(podman inspect --format '{{.State.ExitCode}}' "$name")"
[ "$status" = 0 ] || { logs; die "exit status $status after SIGTERM, want 0"; }
# Read the whole log first: `podman logs | grep -q` fails under pipefail when grep stops at the
# match while podman still writes (SIGPIPE).
drain_log="$(podman logs "$name" 2>&1)"
grep -q 'shutdown requested' <<<"$drain_log" || { logs; die "no 'shutdown requested' in the log"; }
if [ "$saw_503" = 1 ]; then
    log "drain ok: /readyz 503 while draining, exit 0 after $((SECONDS - t0)) s"
else
    log "drain ok: exit 0 after $((SECONDS - t0)) s (the drain ended before a /readyz poll saw 503)"
fi
if kill -0 "$ffmpeg_pid" 2>/dev/null; then
    sleep 2
    kill -0 "$ffmpeg_pid" 2>/dev/null && die "the publisher is still connected after the drain"
fi
log "PASS"
