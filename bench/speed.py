"""End-to-end speed of mien against decode-only, on shared clips and a 10-minute loop.

    python bench/speed.py [--threads 1] [--json out.json]

For each video, in fresh child processes (so each peak RSS is its own): PyAV decode-only to BGR
arrays (the floor), mien at every frame with its default (full-frame detection every 3rd frame,
large faces followed by their mesh between and the others re-detected in a local window, face
geometry on), the same with ``mesh_tracking=False`` (every face re-detected in its window), with
``geometry=False``, mien with full-frame detection on every frame (the recall
reference), and mien at ``--stride 3``. Prints frames/s, faces found and the ratio to decode-only.
Throughput is counted in *video frames per second* (decoded frames / wall time), so a strided run
is credited for the frames it skips.
"""
from __future__ import annotations

import argparse
import json
import os
import platform

from common import DECODE_ONLY, MIEN_RUN, looped, run_child, shared

VIDEOS = ["WolfgangLanger_Pexels.mp4", "short_hamilton_clip.mp4", "talking_d6.mp4"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="threads per ONNX model")
    ap.add_argument("--loop-minutes", type=float, default=10.0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--videos", nargs="+", default=None, help="only these shared clips (no long loop)")
    args = ap.parse_args()
    if args.videos:
        paths = [str(shared(v)) for v in args.videos]
    else:
        paths = [str(shared(v)) for v in VIDEOS] + [str(looped(VIDEOS[0], args.loop_minutes))]
    configs = {
        "every frame": {"detect_every": 3},
        "every frame, no mesh tracking": {"detect_every": 3, "mesh_tracking": False},
        "every frame, no geometry": {"detect_every": 3, "geometry": False},
        "every frame, full detection each": {"detect_every": 1},
        "stride 3": {"detect_every": 3, "stride": 3},
    }
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; threads/model {args.threads}")
    rows = []
    for path in paths:
        base = run_child(DECODE_ONLY, path)
        name = os.path.basename(path)
        print(f"\n{name}: {base['frames']} frames; decode-only {base['fps']:.0f} frames/s, "
              f"peak RSS {base['peak_rss_mb']:.0f} MB")
        for label, opts in configs.items():
            if "loop" in name and label != "every frame":
                continue
            r = run_child(MIEN_RUN, path, json.dumps({**opts, "threads": args.threads}))
            ratio = r["fps"] / base["fps"]
            print(f"  mien {label:<34} {r['fps']:7.1f} frames/s  ({ratio:.3f} of decode-only)  "
                  f"face frames {r['face_frames']:5d}  faces {r['faces']:5d}  peak RSS {r['peak_rss_mb']:.0f} MB")
            rows.append({"video": name, "config": label, "decode_fps": base["fps"], **r, "ratio_to_decode": ratio})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
