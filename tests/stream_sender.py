"""Test helper: serve a video file as a live MPEG-TS stream on a loopback TCP port, in real time.

    python tests/stream_sender.py VIDEO PORT|URL [SECONDS]

A bare PORT serves TCP (the sender listens, the analyser connects); a URL such as
``udp://127.0.0.1:PORT`` pushes to a listening analyser.

Packets are remuxed (not re-encoded) and paced by their timestamps, like a camera would send them.
"""

from __future__ import annotations

import sys
import time

import av


def main() -> None:
    path, target = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    url = f"tcp://127.0.0.1:{int(target)}?listen=1" if target.isdigit() else target
    out = av.open(url, mode="w", format="mpegts")
    start = time.perf_counter()
    offset = 0.0
    while time.perf_counter() - start < seconds:
        inp = av.open(path)
        vin = inp.streams.video[0]
        if not out.streams:
            vout = out.add_stream_from_template(vin)
        last = 0.0
        for pkt in inp.demux(vin):
            if pkt.dts is None:
                continue
            t = float(pkt.pts * vin.time_base) if pkt.pts is not None else last
            last = max(last, t)
            wait = start + offset + t - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            shift = int(offset / vin.time_base)
            pkt.pts = (pkt.pts or 0) + shift
            pkt.dts = pkt.dts + shift
            pkt.stream = vout
            try:
                out.mux(pkt)
            except (av.error.BrokenPipeError, av.error.ConnectionResetError, OSError):
                return
            if time.perf_counter() - start >= seconds:
                break
        offset += last + 0.05
        inp.close()
    out.close()


if __name__ == "__main__":
    main()
