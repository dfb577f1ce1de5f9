"""Live-stream latency: a 30 fps shared clip streamed in real time to a loopback TCP port
(MPEG-TS, remuxed, paced by timestamps), analysed by mien as a live source.

    python bench/live_latency.py [--seconds 20]

Prints the per-frame latency from the frame leaving the decoder to its result (p50/p95/max), frames
analysed and frames dropped to keep up. Reference in the same run: the stream's own frame rate.
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

import numpy as np
from common import REPO, shared


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--video", default="talking_d6.mp4")
    ap.add_argument("--overlap-stages", choices=("default", "on", "off"), default="default",
                    help="AnalysisOptions.overlap_stages: the engine's default, or forced on or off")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "stream_sender.py"), str(shared(args.video)), str(port),
         str(args.seconds + 10)]
    )
    try:
        time.sleep(1.0)
        from mien.pipeline import AnalysisOptions, Analyzer, FrameResult

        overlap = {"default": None, "on": True, "off": False}[args.overlap_stages]
        an = Analyzer(AnalysisOptions(overlap_stages=overlap, max_seconds=args.seconds, input_kind="live"))
        src = an.open_source(f"tcp://127.0.0.1:{port}")  # as `mien analyze tcp://...` opens it
        latencies: list[float] = []

        def on_frame(res: FrameResult) -> None:
            latencies.append((time.perf_counter() - res.arrival) * 1000)

        t = time.perf_counter()
        df, stats = an.analyze_frames(iter(src), "live", on_frame)
        wall = time.perf_counter() - t
    finally:
        sender.kill()
        sender.wait()
    lat = np.array(latencies[5:])  # the first frames include the stream's start-up burst
    print(f"overlap_stages={args.overlap_stages}: {args.video} streamed at its 30 fps for {wall:.1f} s: decoded {src.stats.decoded}, "
          f"analysed {stats['analysed']}, dropped {src.stats.dropped}, faces {len(df)}")
    print(f"latency frame-decoded -> result: p50 {np.percentile(lat, 50):.1f} ms, "
          f"p95 {np.percentile(lat, 95):.1f} ms, max {lat.max():.1f} ms (target < 100 ms); "
          f"frame interval of the stream {1000 / 30:.1f} ms")


if __name__ == "__main__":
    main()
