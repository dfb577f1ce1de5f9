"""The tracker alone, this checkout against an older engine's, on synthetic boxes (one process).

    git archive 5ed4a65 src | tar -x -C /tmp/base      # the per-track filter loop
    python bench/tracker_speed.py --baseline-src /tmp/base/src [--rounds 15]

N faces (1, 2, 4, 16) drift slowly across the frame for 300 frames at 25 fps, all detected every
frame (the matching and filter update every tracked face pays). Rounds alternate between the two
trackers; the fastest round of each is kept. Prints ms per frame and the ratio this / baseline.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

from mien.faces import Faces
from mien.tracking import FaceTracker


def _load(src: Path):
    spec = importlib.util.spec_from_file_location("baseline_tracking", src / "mien" / "tracking.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod.FaceTracker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline-src", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    trackers = {"baseline": _load(args.baseline_src), "this": FaceTracker}
    for n in (1, 2, 4, 16):
        frames = [Faces(np.array([[100 + 60 * j + 0.1 * i, 100, 150 + 60 * j + 0.1 * i, 160] for j in range(n)], np.float32),
                        np.full(n, 0.9, np.float32), np.zeros((n, 5, 2), np.float32)) for i in range(300)]
        best = {k: float("inf") for k in trackers}
        for _ in range(args.rounds):
            for name, cls in trackers.items():
                tr = cls()
                t = time.perf_counter()
                for i, f in enumerate(frames):
                    tr.update(f, i / 25)
                best[name] = min(best[name], (time.perf_counter() - t) / len(frames) * 1000)
        print(f"{n:2d} faces: baseline {best['baseline']:.3f} ms/frame, this {best['this']:.3f} ms/frame, "
              f"this/baseline {best['this'] / best['baseline']:.2f}")


if __name__ == "__main__":
    main()
