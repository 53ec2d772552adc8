#!/usr/bin/env python3
"""Records the handshake datagrams real libsrt callers send, as seeds for the `srt_handshake`
fuzz target (fuzz/seeds/srt_handshake/, fuzz/README.md).

A tiny SRT listener on a free loopback UDP port answers one caller at a time: its induction
with an HSv5 induction response, its conclusion with a conclusion response that echoes the
caller's HSREQ and KMREQ (so encrypting callers are satisfied), and then records a few of the
datagrams that follow (data, ACKs, keep-alives, the shutdown), payloads cut to 64 bytes. Each
seed file is the framing the fuzz target reads: per datagram one flag byte (0: the first
caller address, no timer, answer access requests, fix the cookie, no time step) and a
big-endian u16 length, then the datagram.

    python3 scripts/capture-srt-handshakes.py fuzz/seeds/srt_handshake

needs ffmpeg (built with libsrt) and srt-live-transmit; every caller is killed by its PID
after a few seconds. Nothing here is needed to build or run the fuzz target.
"""

import os
import signal
import socket
import struct
import subprocess
import sys
import time

SRT_MAGIC = 0x4A17
OUR_SOCKET_ID = 0x2A2A2A2A
OUR_COOKIE = 0x5EED5EED
AFTER = 8  # datagrams recorded after the handshake
PAYLOAD_CUT = 64

CALLERS = {
    # name: argv, with {url} for the SRT URL (the streamid and options come after it)
    "ffmpeg_live": ["ffmpeg", "-url", "?streamid=live/fuzzkey"],
    "ffmpeg_access_control": ["ffmpeg", "-url", "?streamid=#!::r=live/fuzzkey,m=publish"],
    "ffmpeg_transtype_file": ["ffmpeg", "-url", "?streamid=live/fuzzkey&transtype=file"],
    "ffmpeg_passphrase_no_pbkeylen": [
        "ffmpeg", "-url", "?streamid=live/fuzzkey&passphrase=fuzz-passphrase-1"],
    "ffmpeg_passphrase_pbkeylen16": [
        "ffmpeg", "-url", "?streamid=live/fuzzkey&passphrase=fuzz-passphrase-1&pbkeylen=16"],
    "ffmpeg_passphrase_pbkeylen32": [
        "ffmpeg", "-url", "?streamid=live/fuzzkey&passphrase=fuzz-passphrase-1&pbkeylen=32"],
    "slt_live": ["slt", "-url", "?streamid=publish:live/fuzzkey"],
    "slt_packetfilter_fec": ["slt", "-url", "?streamid=live/fuzzkey&packetfilter=fec,cols:4,rows:2"],
    "slt_congestion_file": ["slt", "-url", "?streamid=live/fuzzkey&transtype=file"],
    "slt_passphrase_pbkeylen24": [
        "slt", "-url", "?streamid=live/fuzzkey&passphrase=fuzz-passphrase-1&pbkeylen=24"],
}


def caller_command(kind, url):
    source = ["-re", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30", "-t", "3",
              "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
              "-pix_fmt", "yuv420p", "-f", "mpegts"]
    if kind == "ffmpeg":
        return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "quiet"] + source + [url], False
    # srt-live-transmit reads the transport stream from stdin
    ff = " ".join(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "quiet"] + source + ["-"])
    return ["sh", "-c", f"{ff} | srt-live-transmit -q -t:4 file://con '{url}'"], True


def cut(datagram):
    if datagram[0] & 0x80:  # control packets are kept whole
        return datagram
    return datagram[:16 + PAYLOAD_CUT]


def induction_response(induction):
    header = bytearray(induction[:16])
    cif = bytearray(induction[16:64])
    caller_socket = struct.unpack(">I", cif[24:28])[0]
    struct.pack_into(">I", header, 12, caller_socket)
    struct.pack_into(">IHH", cif, 0, 5, 0, SRT_MAGIC)
    struct.pack_into(">II", cif, 24, OUR_SOCKET_ID, OUR_COOKIE)
    return bytes(header + cif)


def conclusion_response(conclusion):
    header = bytearray(conclusion[:16])
    cif = bytearray(conclusion[16:64])
    caller_socket = struct.unpack(">I", cif[24:28])[0]
    struct.pack_into(">I", header, 12, caller_socket)
    encryption = struct.unpack(">H", cif[4:6])[0]
    extensions = b""
    flags = 0
    rest = conclusion[64:]
    while len(rest) >= 4:
        kind, words = struct.unpack(">HH", rest[:4])
        body = rest[4:4 + 4 * words]
        rest = rest[4 + 4 * words:]
        if kind == 1:  # HSREQ -> HSRSP
            extensions += struct.pack(">HH", 2, words) + body
            flags |= 1
        elif kind == 3:  # KMREQ -> KMRSP (an echo is what libsrt expects)
            extensions += struct.pack(">HH", 4, words) + body
            flags |= 2
            if encryption == 0:
                encryption = (len(body) - 16 - 16 - 8) // 8  # key length / 8 from the wrap
    struct.pack_into(">IHH", cif, 0, 5, encryption, flags)
    struct.pack_into(">II", cif, 24, OUR_SOCKET_ID, OUR_COOKIE)
    return bytes(header + cif) + extensions


def frame(datagrams):
    return b"".join(struct.pack(">BH", 0, len(d)) + d for d in datagrams)


def capture(name, kind, query, out_dir):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    port = sock.getsockname()[1]
    argv, _ = caller_command(kind, f"srt://127.0.0.1:{port}{query}")
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    seen = []
    deadline = time.monotonic() + 8
    concluded = False
    after = 0
    try:
        while time.monotonic() < deadline and after < AFTER:
            try:
                datagram, peer = sock.recvfrom(2048)
            except socket.timeout:
                continue
            if len(datagram) < 16:
                continue
            is_handshake = datagram[0] == 0x80 and datagram[1] == 0 and len(datagram) >= 64
            if is_handshake:
                shake_type = struct.unpack(">I", datagram[36:40])[0]
                if shake_type == 1:
                    if not seen:
                        seen.append(datagram)
                    sock.sendto(induction_response(datagram), peer)
                    continue
                if shake_type == 0xFFFFFFFF:
                    if not concluded:
                        seen.append(datagram)
                        concluded = True
                    sock.sendto(conclusion_response(datagram), peer)
                    continue
            if concluded:
                seen.append(cut(datagram))
                after += 1
    finally:
        # the caller and, for srt-live-transmit, its ffmpeg: the session this script started
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()
        sock.close()
    if len(seen) < 2:
        print(f"{name}: no conclusion captured ({len(seen)} datagrams)", file=sys.stderr)
        return False
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(frame(seen))
    print(f"{name}: {len(seen)} datagrams, {sum(len(d) for d in seen)} bytes")
    return True


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "fuzz/seeds/srt_handshake"
    os.makedirs(out_dir, exist_ok=True)
    ok = True
    for name, (kind, _, query) in CALLERS.items():
        ok &= capture(name, kind, query, out_dir)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
