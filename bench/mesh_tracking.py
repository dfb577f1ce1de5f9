"""Mesh tracking between full detections against the window re-detection it replaces.

    python bench/mesh_tracking.py [--videos ...] [--rounds 6] [--no-speed]

With geometry on, the engine's default (``mesh_tracking=True``) finds a large, tracked face on the
frames between full-frame detections by its face mesh, framed as its last full detection
(:mod:`mien.geometry.follow`); ``mesh_tracking=False`` re-detects it in a 128-px window, as before.
For each clip, both settings are run and, on the frames between full detections (frame index not a
multiple of ``detect_every``), each face is scored against a full-size detection of the same
frame, which is what a still image (and every training photo of the expression model) gets:

* eye distance / the reference's, landmark error (mean over the 5 points, in reference eye
  distances), box IoU with the reference;
* the expression model's probabilities on the engine's crop against those on a crop aligned on the
  reference's points: total-variation distance and the share with the same top label;
* the box height's frame-to-frame change (median) and its median by phase of the detection cycle;
  the frame-to-frame standard deviation of ``pose_pitch_deg`` and ``prob_surprise``.

Then the speed of both in one process (one ``Analyzer``, the option switched between alternating
rounds): frames/s and CPU ms a frame, medians over the rounds. Tracks, rows and abstentions of the
two settings are printed too.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from common import shared

from mien.alignment import align_faces
from mien.pipeline import Analyzer
from mien.sources import FrameSelector, VideoFileSource
from mien.stats import iou_matrix

VIDEOS = ["WolfgangLanger_Pexels.mp4", "talking_d6.mp4", "talking_d3.mp4", "talking_d0.mp4", "short_hamilton_clip.mp4"]


def _landmarks(df) -> np.ndarray:
    return np.stack([df[[f"lm{k}_x", f"lm{k}_y"]].to_numpy(np.float64) for k in range(5)], 1)


def window_frame_scores(analyzer: Analyzer, path: str, table) -> dict[str, float]:
    """Each window-frame face of ``table`` against a full-size detection of its frame."""
    every = analyzer.options.detect_every
    by_frame = {k: g for k, g in table.groupby("frame_index") if k % every}
    model, det = analyzer.model, analyzer.detector
    eye_ratio, lm_err, ious, tvd, same = [], [], [], [], []
    for fr in VideoFileSource(path, FrameSelector()):
        g = by_frame.get(fr.index)
        if g is None:
            continue
        ref = det.detect(fr.image)
        if not len(ref):
            continue
        boxes = g[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
        iou = iou_matrix(boxes, ref.xyxy.astype(np.float64))
        lm = _landmarks(g)
        for i in range(len(g)):
            j = int(np.argmax(iou[i]))
            if iou[i, j] < 0.3:
                continue
            r = ref.landmarks[j].astype(np.float64)
            eye_ref = np.linalg.norm(r[1] - r[0])
            eye_ratio.append(np.linalg.norm(lm[i, 1] - lm[i, 0]) / eye_ref)
            lm_err.append(np.linalg.norm(lm[i] - r, axis=1).mean() / eye_ref)
            ious.append(iou[i, j])
            crops = align_faces(fr.image, np.stack([lm[i], r]).astype(np.float32), model.input_size, model.template)
            p = model.predict_proba(crops)
            tvd.append(0.5 * np.abs(p[0] - p[1]).sum())
            same.append(int(np.argmax(p[0]) == np.argmax(p[1])))
    return {"faces": len(ious), "eye_ratio": float(np.mean(eye_ratio)), "landmark_error": float(np.mean(lm_err)),
            "iou": float(np.mean(ious)), "tvd": float(np.mean(tvd)), "same_top": float(np.mean(same))}


def steadiness(table, every: int) -> dict[str, object]:
    t = table.sort_values(["track_id", "frame_index"])
    h = (t.y2 - t.y1).to_numpy(np.float64)
    same_track = np.diff(t.track_id.to_numpy()) == 0
    step = np.abs(np.diff(h))[same_track] / h[:-1][same_track]
    phase = t.frame_index.to_numpy() % every

    def sd_diff(col: str) -> float:
        v = t[col].to_numpy(np.float64)
        return float(np.nanstd(np.diff(v)[same_track]))

    return {"height_step": float(np.median(step)),
            "height_by_phase": " / ".join(f"{float(np.median(h[phase == k])):.1f}" for k in range(every)),
            "pitch_sd": sd_diff("pose_pitch_deg"), "surprise_sd": sd_diff("prob_surprise")}


def speed(analyzer: Analyzer, path: str, rounds: int) -> dict[bool, tuple[float, float]]:
    analyzer.options.mesh_tracking = True
    n = len(analyzer.analyze_source(path).to_pandas().frame_index.unique())  # warm, and the frame count
    fps: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds):
        for on in ((False, True) if r % 2 == 0 else (True, False)):
            analyzer.options.mesh_tracking = on
            c0, w = os.times(), time.perf_counter()
            analyzer.analyze_source(path)
            dt, c1 = time.perf_counter() - w, os.times()
            fps[on].append(n / dt)
            cpu[on].append(((c1.user - c0.user) + (c1.system - c0.system)) / n * 1e3)
    analyzer.options.mesh_tracking = True
    return {k: (statistics.median(fps[k]), statistics.median(cpu[k])) for k in (False, True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", nargs="+", default=VIDEOS)
    ap.add_argument("--rounds", type=int, default=6, help="alternating speed rounds per setting")
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()
    analyzer = Analyzer()
    for name in args.videos:
        path = str(shared(name))
        tables = {}
        for on in (False, True):
            analyzer.options.mesh_tracking = on
            tables[on] = analyzer.analyze_source(path).to_pandas()
        analyzer.options.mesh_tracking = True
        print(f"\n{name}: rows {len(tables[False])} / {len(tables[True])}, tracks "
              f"{tables[False].track_id.nunique()} / {tables[True].track_id.nunique()}, abstaining "
              f"{int(tables[False].abstain.sum())} / {int(tables[True].abstain.sum())} (window re-detection / mesh tracking)")
        for on in (False, True):
            label = "mesh tracking" if on else "window re-detection"
            s = window_frame_scores(analyzer, path, tables[on])
            st = steadiness(tables[on], analyzer.options.detect_every)
            print(f"  {label:<20} window frames {s['faces']}: eye distance / full detection's {s['eye_ratio']:.3f}, "
                  f"landmark error {s['landmark_error']:.4f} eye distances, box IoU {s['iou']:.3f}, "
                  f"probabilities' TVD {s['tvd']:.4f}, same top label {s['same_top']:.3f}")
            print(f"  {'':<20} box height step {st['height_step']:.4f}, by phase {st['height_by_phase']} px; "
                  f"frame-to-frame sd: pitch {st['pitch_sd']:.3f} deg, prob_surprise {st['surprise_sd']:.4f}")
        if not args.no_speed:
            sp = speed(analyzer, path, args.rounds)
            (f0, c0), (f1, c1) = sp[False], sp[True]
            print(f"  speed ({args.rounds} alternating rounds, medians): {f0:.1f} -> {f1:.1f} frames/s ({f1 / f0:.2f}x), "
                  f"CPU {c0:.2f} -> {c1:.2f} ms a frame ({c1 / c0:.2f}x)")


if __name__ == "__main__":
    main()
