"""The detector's frame reduction, ``mien.detection.shrink`` against ``cv2.INTER_AREA`` straight to size.

    python bench/detector_reduction.py                     # crowd grids and WolfgangLanger at 720p/1080p
    python bench/detector_reduction.py --videos my.mp4 --rounds 3

Two parts, both in this process:

1. the reduction alone on random frames, one OpenCV thread (ms per call);
2. the whole engine (default options) on each input with each reduction, rounds alternating, the
   fastest round kept (frames/s), and the table of ``shrink`` against the one of ``INTER_AREA``
   (``tests/test_outputs_unchanged.compare``: face recall, extra faces, mean box IoU, same
   abstention, same top label).

Inputs are bench/crowd.py's (built and cached in bench/.cache the same way).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from crowd import grid_video, resolution_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def inter_area(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def main() -> None:
    from test_outputs_unchanged import compare

    import mien.detection as det
    from mien.pipeline import AnalysisOptions, Analyzer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", nargs="*", default=None)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    shrink = det.shrink
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    for (h, w), size in [((720, 1280), (960, 540)), ((720, 1280), (480, 270)), ((1080, 1920), (960, 540)),
                         ((1080, 1920), (480, 270)), ((2160, 3840), (960, 540))]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ms = {}
        for name, fn in (("INTER_AREA", inter_area), ("shrink", shrink)):
            fn(img, size)
            t = time.perf_counter()
            for _ in range(50):
                fn(img, size)
            ms[name] = (time.perf_counter() - t) / 50 * 1000
        print(f"{w}x{h} -> {size[0]}x{size[1]}: INTER_AREA {ms['INTER_AREA']:.2f} ms, shrink {ms['shrink']:.2f} ms")
    cv2.setNumThreads(0)
    videos = args.videos or [str(grid_video(16, 150)), str(grid_video(1, 150)),
                             str(resolution_video("720p")), str(resolution_video("1080p"))]
    an = Analyzer(AnalysisOptions())
    for path in videos:
        best: dict[str, float] = {}
        tables = {}
        for _ in range(args.rounds):
            for name, fn in (("INTER_AREA", inter_area), ("shrink", shrink)):
                det.shrink = fn
                t = time.perf_counter()
                tables[name] = an.analyze_source(path).to_pandas()
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - t)
        det.shrink = shrink
        n = tables["INTER_AREA"]["frame_index"].nunique()
        c = compare(tables["INTER_AREA"], tables["shrink"])
        print(f"{Path(path).name}: frames/s INTER_AREA {n / best['INTER_AREA']:.1f}, shrink {n / best['shrink']:.1f} "
              f"({best['INTER_AREA'] / best['shrink']:.2f}x); " + ", ".join(f"{k} {v:.4f}" for k, v in c.items()))


if __name__ == "__main__":
    main()
