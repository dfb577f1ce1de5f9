"""Does the detection schedule show in the measures? Per phase of the 3-frame detection cycle.

    python bench/detect_phase.py [--videos WolfgangLanger_Pexels.mp4 talking_d6.mp4] [--no-coarse]

The engine detects on the whole frame every ``detect_every`` (3) frames (at half size when every
face is large: ``coarse_scan``) and re-detects each tracked face in a 128-px window between. Any
difference between those detections' framing reaches the face mesh's crop and the expression
crop. For each one-face clip this prints, by the frame's phase in the cycle (0 = full detection):
the median box height, the detector's and the mesh's inter-ocular distance (px), and for each
geometry column the mean of its residual from a centred 3-frame mean (a pattern that repeats every
3 frames shows as phase means far from 0, against the residual's own standard deviation).
"""
from __future__ import annotations

import argparse

import numpy as np
from common import shared

import mien

COLUMNS = ("geo_lip_corner_pull", "geo_brow_raise", "geo_mouth_open", "geo_eye_open", "pose_pitch_deg", "pose_yaw_deg",
           "prob_neutral", "prob_happiness", "prob_sadness", "prob_surprise")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", nargs="+", default=["WolfgangLanger_Pexels.mp4", "talking_d6.mp4"])
    ap.add_argument("--no-coarse", action="store_true", help="full detections at full size (coarse_scan=False)")
    ap.add_argument("--calibrate", action="store_true",
                    help="print mien.geometry.mesh.MESH_BOX_RATIO's fit (full-size detections of the shared clips)")
    args = ap.parse_args()
    if args.calibrate:
        calibrate()
        return
    for name in args.videos:
        r = mien.analyze(str(shared(name)), landmarks=True, coarse_scan=not args.no_coarse)
        df = r.to_pandas().sort_values("frame_index")
        lm = r.landmarks.sort_values("frame_index")
        if df["track_id"].nunique() != 1:
            print(f"{name}: {df['track_id'].nunique()} tracks; this bench reads one-face clips")
            continue
        phase = df["frame_index"].to_numpy() % 3

        def by_phase(x: np.ndarray, f=np.median) -> str:
            return " / ".join(f"{float(f(x[phase == k])):.4g}" for k in range(3))

        def pts(frame, prefix: str, k: int) -> np.ndarray:
            return frame[[f"{prefix}{k}_x", f"{prefix}{k}_y"]].to_numpy(np.float64)

        print(f"\n{name} (coarse_scan={not args.no_coarse}), by phase 0 / 1 / 2 (0 = full detection):")
        print(f"  box height, median px          {by_phase((df.y2 - df.y1).to_numpy())}")
        print(f"  detector eye distance, px      {by_phase(np.linalg.norm(pts(df, 'lm', 1) - pts(df, 'lm', 0), axis=1))}")
        print(f"  mesh eye distance (33-263), px {by_phase(np.linalg.norm(pts(lm, 'mesh', 263) - pts(lm, 'mesh', 33), axis=1))}")
        for col in COLUMNS:
            x = df[col].to_numpy(np.float64)
            resid = (x - np.convolve(x, np.ones(3) / 3, mode="same"))[1:-1]
            p = phase[1:-1]
            means = " / ".join(f"{float(resid[p == k].mean()):+.4f}" for k in range(3))
            print(f"  {col:<22} residual mean {means}   (residual sd {float(resid.std()):.4f})")


CALIBRATION_CLIPS = ("talking_d0.mp4", "talking_d1.mp4", "talking_d3.mp4", "talking_d5.mp4", "talking_d7.mp4",
                     "talking_d8.mp4", "talking_d9.mp4", "single_face.mp4")


def calibrate(every: int = 5) -> None:
    """The ratio of the detector's longer box side (full-size detection, as on a still image) to
    the longer side of the 2-D bounding box of the mesh run on that detection's crop, median over
    every ``every``-th frame's trusted faces of clips this bench does not report on."""

    from mien.detection import FaceDetector, frames_with_faces
    from mien.geometry.mesh import FaceMesh
    from mien.quality import MIN_MESH_SCORE

    det, mesh = FaceDetector(), FaceMesh.load()
    ratios = []
    for name in CALIBRATION_CLIPS:
        for img, faces in frames_with_faces(shared(name), every, det):
            res = mesh.run(img, faces.xyxy, faces.landmarks)
            ext = (res.points[..., :2].max(1) - res.points[..., :2].min(1)).max(1)
            side = (faces.xyxy[:, 2:] - faces.xyxy[:, :2]).max(1)
            ok = res.score >= MIN_MESH_SCORE
            ratios.extend((side[ok] / ext[ok]).tolist())
    r = np.asarray(ratios)
    print(f"MESH_BOX_RATIO fit: median {np.median(r):.4f} (IQR {np.percentile(r, 25):.4f}-{np.percentile(r, 75):.4f}) "
          f"over {len(r)} faces of {len(CALIBRATION_CLIPS)} clips, every {every}th frame")


if __name__ == "__main__":
    main()
