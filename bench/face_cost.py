"""Where each extra face's time goes: the per-face path replayed step by step, one process.

    python bench/face_cost.py [--faces 16] [--frames 40] [--repeat 3] [--video PATH]

The input is bench/crowd.py's 1280x720 grid of N talking heads (built and cached the same way),
or with ``--video`` any clip (e.g. bench/crowd.py's WolfgangLanger re-encodings at 360p, 720p and
1080p in bench/.cache, to see which steps grow with the frame's pixels).
The engine first analyses the frames as usual (``Analyzer.process_frames``), which gives each
frame's tracked faces; then every step of the per-face path is replayed alone on those very faces
and frames, timed with ``time.perf_counter`` (best of ``--repeat`` passes, to read through a shared
machine's noise): the re-detection windows (warps and input blob, the network, decoding its
output), tracking, alignment, quality, the expression network, the face mesh (crops, network,
pose and measures) and smoothing; and, per frame, the full-frame detection the decode thread runs
on every ``detect_every``-th frame (its frame reduction and network; fine and coarse scans). Printed per step: ms per frame and ms per face, and each step's
share of their sum. The reference in the same process is the engine's own ms per frame.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from crowd import grid_video

from mien.alignment import align_faces
from mien.detection import _WINDOW_SCORE, _blob
from mien.geometry.mesh import back_project, crop_transforms, crops_for
from mien.geometry.stage import measure_faces
from mien.options import AnalysisOptions
from mien.pipeline import Analyzer
from mien.quality import assess
from mien.smoothing import ExpressionSmoother
from mien.sources import open_source
from mien.tracking import FaceTracker


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=16)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--video", default=None, help="replay this clip instead of the face grid")
    args = ap.parse_args()
    an = Analyzer(AnalysisOptions())
    an.detector.session, an.model.session, an.mesh.session  # noqa: B018 - built before the clock
    src = open_source(args.video or str(grid_video(args.faces, 150)))
    frames = [fr for _, fr in zip(range(args.frames), src)]
    src.close()
    for fr in frames:
        fr.detections = None  # the engine below detects in its own thread (as on a full scan)
    t = time.perf_counter()
    results = list(an.process_frames(iter(frames)))
    engine = (time.perf_counter() - t) / len(results)
    images = [r.image for r in results]
    faces = [r.faces for r in results]
    n_faces = sum(len(f) for f in faces)
    det, model, mesh = an.detector, an.model, an.mesh
    side = 128

    def windows() -> list[np.ndarray]:
        return [_window_blob(img, f.xyxy, side) for img, f in zip(images, faces)]

    blobs = windows()
    outputs = [det.session.run(None, {"input": b}) for b in blobs]

    def decode() -> None:
        thr = min(_WINDOW_SCORE, det.score_threshold)
        for loc, conf, landm in outputs:
            for i in range(len(loc)):
                det._decode(loc[i], conf[i], landm[i], side, side, 1.0, score_threshold=thr)

    def track() -> None:
        tr = FaceTracker(an.options.tracker)
        for r in results:
            tr.update(r.faces, r.time_s)

    crops = [align_faces(img, f.landmarks, model.input_size, model.template) for img, f in zip(images, faces)]
    transforms = [crop_transforms(f.xyxy, f.landmarks) for f in faces]
    mesh_in = [crops_for(img, m) for img, m in zip(images, transforms)]
    mesh_out = [mesh.run_crops(c) for c in mesh_in]

    def mesh_post() -> None:
        from mien.geometry.measures import geometry_measures
        from mien.geometry.pose import head_pose, stable_face_frame

        for (pts, _), m in zip(mesh_out, transforms):  # as mien.geometry.stage.measure_faces
            p = back_project(pts.astype(np.float64), m).astype(np.float32)
            head_pose(p)
            geometry_measures(stable_face_frame(p))

    def smooth() -> None:
        sm = ExpressionSmoother(an.options.smoothing_tau_s)
        for r in results:
            sm.smooth(r.faces, r.time_s)

    every = an.options.detect_every
    scanned = images[::every]

    def full_scan(coarse: bool) -> Callable[[], object]:
        def run() -> None:
            for img in scanned:
                side = min(max(img.shape[:2]), det.max_side or max(img.shape[:2]))
                det.detect(img, max_side=side // 2 if coarse else None)
        return run

    def reduction(coarse: bool) -> Callable[[], object]:
        def run() -> None:
            for img in scanned:
                det._prepare(img, (min(max(img.shape[:2]), det.max_side or max(img.shape[:2]))) // (2 if coarse else 1))
        return run

    steps: list[tuple[str, Callable[[], object]]] = [
        ("full-frame scan, fine (frame reduction)", reduction(False)),
        ("full-frame scan, fine (whole)", full_scan(False)),
        ("full-frame scan, coarse (frame reduction)", reduction(True)),
        ("full-frame scan, coarse (whole)", full_scan(True)),
        ("re-detection: window warps + blob", windows),
        ("re-detection: network", lambda: [det.session.run(None, {"input": b}) for b in blobs]),
        ("re-detection: decode output", decode),
        ("tracking", track),
        ("alignment", lambda: [align_faces(img, f.landmarks, model.input_size, model.template)
                               for img, f in zip(images, faces)]),
        ("quality", lambda: [assess(f, c, an.options.quality) for f, c in zip(faces, crops)]),
        ("expression network (+ softmax, prior)", lambda: [model.classify(f, c) for f, c in zip(faces, crops)]),
        ("mesh: crops", lambda: [crops_for(img, m) for img, m in zip(images, transforms)]),
        ("mesh: network", lambda: [mesh.run_crops(c) for c in mesh_in]),
        ("mesh: back-projection, pose, measures", mesh_post),
        ("geometry stage whole (measure_faces)", lambda: [measure_faces(mesh, img, f) for img, f in zip(images, faces)]),
        ("smoothing", smooth),
    ]
    what = args.video or f"{args.faces}-face grid"
    h, w = images[0].shape[:2]
    print(f"{what} ({w}x{h}), {len(results)} frames, {n_faces / len(results):.2f} tracked faces/frame; "
          f"engine (process_frames, main thread only): {engine * 1000:.1f} ms/frame")
    timed = [(name, _best(fn, args.repeat)) for name, fn in steps]
    print(f"  the decode thread's full-frame scans, one in {every} frames (coarse where every face seen was large):")
    for name, s in timed[:4]:
        print(f"  {name:<42} {s * 1000 / len(results):7.2f} ms/frame (over all frames)")
    timed = timed[4:]
    print("  the per-face path:")
    parts = sum(s for name, s in timed if not name.startswith("geometry stage whole"))
    for name, s in timed:
        share = "" if name.startswith("geometry stage whole") else f"{s / parts:6.1%}"
        print(f"  {name:<42} {s * 1000 / len(results):7.2f} ms/frame  {s * 1000 / n_faces:6.3f} ms/face  {share}")
    print(f"  {'sum of the steps':<42} {parts * 1000 / len(results):7.2f} ms/frame  {parts * 1000 / n_faces:6.3f} ms/face")


def _window_blob(image: np.ndarray, boxes: np.ndarray, side: int) -> np.ndarray:
    """The re-detection input for ``boxes`` (as FaceDetector.detect_windows builds it)."""
    import cv2

    from mien.detection import _MEAN_BGR

    wins = []
    for x1, y1, x2, y2 in boxes:
        s = side / (2.0 * max(x2 - x1, y2 - y1))
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        m = np.array([[s, 0, side / 2 - s * cx], [0, s, side / 2 - s * cy]], np.float32)
        wins.append(cv2.warpAffine(image, m, (side, side), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in _MEAN_BGR)))
    return _blob(wins)


if __name__ == "__main__":
    main()
