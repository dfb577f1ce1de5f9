"""The expression crop's cost and fidelity, one large face at 360p, 720p and 1080p.

    python bench/alignment.py [--baseline-src SRC] [--frames 40] [--repeat 5]

WolfgangLanger_Pexels.mp4's face (detected on every 12th frame, upscaled with the frame for 720p and
1080p) is cut by ``mien.alignment.align_faces`` to the model's 48-px crop. Printed per resolution:
microseconds per face (best of ``--repeat``), against the floor in the same process (one bilinear
``warpAffine`` straight from the gray frame, which aliases), and each crop's mean absolute
difference from the ideal anti-aliased crop (warped at 8x the crop's size from the gray frame and
box-filtered back: every crop pixel the mean of its footprint). ``--baseline-src`` also times and
scores the ``align_faces`` of another source tree (``git archive COMMIT src | tar -x -C /tmp/base``).
"""
from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import av
import cv2
import numpy as np
from common import shared

from mien.alignment import FER_TEMPLATE, align_faces, similarity_transforms, supersampled_crops
from mien.detection import FaceDetector
from mien.sources import BgrConverter

SIZE = 48


def load_align(src: str):
    spec = importlib.util.spec_from_file_location("baseline_alignment", Path(src) / "mien" / "alignment.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.align_faces


def plain_warp(image: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return np.stack([cv2.warpAffine(gray, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                     for m in similarity_transforms(landmarks, FER_TEMPLATE * size)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline-src", default=None, metavar="SRC")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    det, conv = FaceDetector(), BgrConverter()
    frames = []
    with av.open(str(shared("WolfgangLanger_Pexels.mp4"))) as c:
        for i, vf in enumerate(c.decode(video=0)):
            if i % 12 == 0:
                img = conv(vf)
                faces = det.detect(img)
                if len(faces):
                    frames.append((img, faces.landmarks[:1].astype(np.float32)))
            if len(frames) >= args.frames:
                break
    engines = {"plain warp (floor)": plain_warp, "align_faces (this)": align_faces}
    if args.baseline_src:
        engines["align_faces (baseline)"] = load_align(args.baseline_src)
    print(f"{len(frames)} frames of WolfgangLanger_Pexels.mp4, one face each; best of {args.repeat}")
    for height in (360, 720, 1080):
        width = height * 16 // 9
        scaled = [(cv2.resize(img, (width, height), interpolation=cv2.INTER_CUBIC) if height != img.shape[0] else img,
                   lms * (width / img.shape[1])) for img, lms in frames]
        refs = [supersampled_crops(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), lms, SIZE).astype(int) for img, lms in scaled]
        m = similarity_transforms(scaled[0][1], FER_TEMPLATE * SIZE)[0]
        print(f"{height:5d}p (about {1 / np.hypot(m[0, 0], m[0, 1]):.1f} frame px a crop px):")
        times = {}
        for name, fn in engines.items():
            best = np.inf
            for _ in range(args.repeat):
                t = time.perf_counter()
                crops = [fn(img, lms, SIZE) for img, lms in scaled]
                best = min(best, time.perf_counter() - t)
            times[name] = 1e6 * best / len(scaled)
            err = np.mean([np.abs(c.astype(int) - r).mean() for c, r in zip(crops, refs)])
            floor = times["plain warp (floor)"]  # timed first
            print(f"    {name:<24} {times[name]:6.0f} us a face ({times[name] / floor:.2f}x the floor), "
                  f"{err:4.2f} grey levels from the ideal crop")


if __name__ == "__main__":
    main()
