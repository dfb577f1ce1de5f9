"""What the per-frame ``Faces`` record costs: its bookkeeping as a share of the engine's time.

    python bench/faces_overhead.py [--video WolfgangLanger_Pexels.mp4]

Reference in the same process: the engine's own wall time per analysed frame (``Analyzer.stream``
over the clip, models loaded first). Then the record's work on those very frames is replayed alone:
building it from detector arrays, the four ``replace`` calls of tracking, quality, classification
and smoothing, and ``table_columns``. Printed: microseconds per frame and the ratio to the engine.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from common import shared

from mien.faces import Faces
from mien.pipeline import Analyzer
from mien.schema import table_columns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", default="WolfgangLanger_Pexels.mp4")
    args = ap.parse_args()
    an = Analyzer()
    an.detector.session, an.model.session  # noqa: B018 - load both models before the clock starts
    t = time.perf_counter()
    results = list(an.stream(str(shared(args.video))))
    engine_s = (time.perf_counter() - t) / len(results)

    frames = [r.faces for r in results]
    t = time.perf_counter()
    for f in frames:
        g = Faces(f.xyxy.copy(), f.score.copy(), f.landmarks.copy())
        g = g.replace(track_id=f.track_id)
        g = g.replace(face_px=f.face_px, sharpness=f.sharpness, yaw_deg=f.yaw_deg, roll_deg=f.roll_deg,
                      abstain=f.abstain, abstain_reason=f.abstain_reason)
        g = g.replace(probs=f.probs)
        g = g.replace(smoothed=f.smoothed)
        if len(g):
            table_columns(g, source="v", frame_index=0, time_s=0.0)
    record_s = (time.perf_counter() - t) / len(frames)
    faces = np.mean([len(f) for f in frames])
    print(f"{args.video}: {len(frames)} frames, {faces:.2f} faces per frame")
    print(f"engine {engine_s * 1e3:.2f} ms per frame; Faces bookkeeping {record_s * 1e6:.0f} us per frame "
          f"= {record_s / engine_s:.1%} of it")


if __name__ == "__main__":
    main()
