"""Does MediaPipe's attention Face Mesh (``face_landmark_with_attention.tflite``, refined eyes, brows,
lips and irises) make the ``geo_*`` measures separate expressions better than the plain mesh mien
ships? Measured before anything is converted (issue #18; docs/geometry.md "The attention mesh").

    python bench/attention_mesh.py MEDIAPIPE_PYTHON

``MEDIAPIPE_PYTHON``: an interpreter with the pinned ``mediapipe==0.10.21`` wheel, e.g. a throwaway
venv (mediapipe is no dependency of mien)::

    python -m venv /tmp/mpvenv
    /tmp/mpvenv/bin/pip install --no-deps mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl
    /tmp/mpvenv/bin/pip install "numpy<2" "protobuf>=4.25.3,<5" absl-py attrs flatbuffers \
        opencv-contrib-python matplotlib sentencepiece sounddevice

The faces, crops, folds and measure definitions are exactly those of ``bench/geometry.py``
(:func:`mien.geometry.validation.measure_aucs`): mien detects and crops each face as it always
does, the crops go to MediaPipe's own ``FaceLandmarkCpu`` graph (``bench/_attention_worker.py``),
plain and with attention, and the points come back through mien's back-projection, pose-free
frame and measures. The plain mesh through MediaPipe's graph is printed too: it checks the harness
(it must match mien's ONNX mesh). Nothing here chooses a definition.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mien.detection import FaceDetector  # noqa: E402
from mien.faces import Faces  # noqa: E402
from mien.geometry import FaceMesh  # noqa: E402
from mien.geometry.pose import stable_face_frame  # noqa: E402
from mien.geometry.stills import largest_face_geometry  # noqa: E402
from mien.geometry.validation import (  # noqa: E402
    EXPECTED,
    auc,
    ibug68_error,
    labelled_measures,
    pair_auc,
    subject_pairs,
    subjects_of,
    validation_fold,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = ("taiwanese_chen2013", "london_face_research_lab", "yale_faces")
DLIB = ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml")


def _key(crop: np.ndarray) -> bytes:
    return hashlib.sha1(np.ascontiguousarray(crop, np.float32).tobytes()).digest()


class CachedDetector:
    """The detector, each image detected once across the passes (keyed by the image's bytes)."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector
        self.cache: dict[bytes, Faces] = {}

    def detect(self, image_bgr: np.ndarray) -> Faces:
        k = hashlib.sha1(np.ascontiguousarray(image_bgr).tobytes()).digest()
        if k not in self.cache:
            self.cache[k] = self.detector.detect(image_bgr)
        return self.cache[k]


class RecordingMesh(FaceMesh):
    """mien's mesh, keeping every crop it is given (in order, once each)."""

    def __init__(self, mesh: FaceMesh) -> None:
        super().__init__(mesh.card, mesh.onnx_path, mesh.threads)
        self.crops: dict[bytes, np.ndarray] = {}

    def run_crops(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        for c in crops:
            self.crops.setdefault(_key(c), np.round(c * 255).astype(np.uint8))
        return super().run_crops(crops)


class ReplayMesh(FaceMesh):
    """Crop-pixel points from another network run on the same crops (looked up by the crop); a
    crop that network found no face in gives NaN points (and so NaN measures) and score 0."""

    def __init__(self, mesh: FaceMesh, points: dict[bytes, np.ndarray], name: str) -> None:
        super().__init__(dict(mesh.card, name=name), mesh.onnx_path, mesh.threads)
        self.points = points

    def run_crops(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pts = np.stack([self.points[_key(c)][:468] for c in crops]).astype(np.float32)
        return pts, np.where(np.isfinite(pts).all(axis=(1, 2)), 1.0, 0.0).astype(np.float32)


def measures_by_set(det: CachedDetector, mesh: FaceMesh) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    return {s: (np.array(lab), cols) for s in SETS
            for lab, cols in [labelled_measures(SHARED / "expressions" / s, det, mesh)]}  # type: ignore[arg-type]


#: The brow points (person's right / left): lower line (the shipped geo_brow_raise), upper line.
LOWER_BROW = ((46, 53, 52, 65, 55), (276, 283, 282, 295, 285))
UPPER_BROW = ((70, 63, 105, 66, 107), (300, 293, 334, 296, 336))


def _height(p: np.ndarray, right: tuple[int, ...], left: tuple[int, ...],
            ref_right: tuple[int, ...] = (), ref_left: tuple[int, ...] = ()) -> np.ndarray:
    """Mean height (both sides) of points above reference points (the frame's origin without), / IOD."""
    def side(pts: tuple[int, ...], ref: tuple[int, ...]) -> np.ndarray:
        return p[:, list(pts), 1].mean(1) - (p[:, list(ref), 1].mean(1) if ref else 0.0)
    iod = np.linalg.norm(p[:, 33] - p[:, 263], axis=1)
    return (side(right, ref_right) + side(left, ref_left)) / 2 / iod


#: Brow-raise definitions tried on both meshes, chosen on the Taiwanese training folds only
#: (all were among the ~150 tried on the plain mesh when the shipped one was chosen).
BROW_VARIANTS = {
    "lower line above the origin (shipped)": lambda p: _height(p, *LOWER_BROW),
    "upper line above the origin": lambda p: _height(p, *UPPER_BROW),
    "both lines above the origin": lambda p: (_height(p, *LOWER_BROW) + _height(p, *UPPER_BROW)) / 2,
    "inner ends (55, 107 / 285, 336) above the origin": lambda p: _height(p, (55, 107), (285, 336)),
    "outer ends (46, 70 / 276, 300) above the origin": lambda p: _height(p, (46, 70), (276, 300)),
    "lower line above the eye corners": lambda p: _height(p, *LOWER_BROW, (33, 133), (263, 362)),
    "upper line above the eye corners": lambda p: _height(p, *UPPER_BROW, (33, 133), (263, 362)),
    "lower line above the upper lid (159 / 386)": lambda p: _height(p, *LOWER_BROW, (159,), (386,)),
}


def brow_variants(det: CachedDetector, mesh: FaceMesh, set_name: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(labels, each :data:`BROW_VARIANTS` value) for a set's images, on the same faces as the table."""
    import csv

    import cv2

    root = SHARED / "expressions" / set_name
    with (root / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    pts = np.full((len(rows), 468, 3), np.nan)
    for i, r in enumerate(rows):
        g = largest_face_geometry(cv2.imread(str(root / r["path"])), det, mesh)  # type: ignore[arg-type]
        if g is not None:
            pts[i] = stable_face_frame(g.points[None])[0]
    return np.array([r["label"] for r in rows]), {k: fn(pts) for k, fn in BROW_VARIANTS.items()}


def boot_diff(pos_a: np.ndarray, neg_a: np.ndarray, pos_b: np.ndarray, neg_b: np.ndarray,
              reps: int = 2000) -> tuple[float, float]:
    """95% interval of AUC(b) - AUC(a) on the same faces, resampling expression and neutral faces
    apart (paired: a face drawn is drawn for both)."""
    rng = np.random.default_rng(0)
    d = []
    for _ in range(reps):
        i, j = rng.integers(0, len(pos_a), len(pos_a)), rng.integers(0, len(neg_a), len(neg_a))
        d.append(auc(pos_b[i], neg_b[j]) - auc(pos_a[i], neg_a[j]))
    lo, hi = np.nanpercentile(d, [2.5, 97.5])
    return float(lo), float(hi)


def within_performer(by_mesh: dict, set_name: str, expr: str, measure: str, rows: np.ndarray,
                     reps: int = 2000) -> tuple[float, float, float, float, int, int]:
    """Within-performer AUC of ``measure`` (each expression photo against the same performer's neutral
    photos, pooled over pairs), plain and attention, with a 95% interval of the difference from
    resampling performers; and how many performers and pairs."""
    lab = by_mesh["plain"][set_name][0]
    subj = subjects_of(SHARED / "expressions" / set_name)
    pairs = subject_pairs(np.asarray(lab), subj, expr, rows)
    names = np.array(sorted(pairs), dtype=object)
    v = {k: by_mesh[k][set_name][1][measure] for k in ("plain", "attention")}
    a = {k: pair_auc(x, pairs, names) for k, x in v.items()}
    rng = np.random.default_rng(0)
    d = []
    for _ in range(reps):
        draw = names[rng.integers(0, len(names), len(names))]
        d.append(pair_auc(v["attention"], pairs, draw) - pair_auc(v["plain"], pairs, draw))
    lo, hi = np.percentile(d, [2.5, 97.5])
    n_pairs = sum(len(p) * len(q) for p, q in pairs.values())
    return a["plain"], a["attention"], float(lo), float(hi), len(names), n_pairs


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    if not SHARED.is_dir():
        sys.exit(f"bench: {SHARED} not found; this bench needs ../shared/data beside the checkout")
    det, shipped = CachedDetector(FaceDetector()), FaceMesh.load()
    rec = RecordingMesh(shipped)
    plain = measures_by_set(det, rec)
    nme_plain = [ibug68_error(SHARED / "face_detection" / "dlib_faces" / x, det, rec) for x in DLIB]  # type: ignore[arg-type]
    keys = list(rec.crops)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "crops.npz", crops=np.stack([rec.crops[k] for k in keys]))
        subprocess.run([sys.argv[1], str(Path(__file__).with_name("_attention_worker.py")),
                        str(Path(tmp) / "crops.npz"), str(Path(tmp) / "out.npz")], check=True)
        out = dict(np.load(Path(tmp) / "out.npz"))
    mp_plain = ReplayMesh(shipped, dict(zip(keys, out["plain"], strict=True)), "plain (MediaPipe graph)")
    att = ReplayMesh(shipped, dict(zip(keys, out["attention"], strict=True)), "attention")
    by_mesh = {"plain": plain, "mp_plain": measures_by_set(det, mp_plain), "attention": measures_by_set(det, att)}
    nme_att = [ibug68_error(SHARED / "face_detection" / "dlib_faces" / x, det, att) for x in DLIB]  # type: ignore[arg-type]

    raw_onnx = np.stack([rec.run_crops(rec.crops[k][None].astype(np.float32) * np.float32(1 / 255))[0][0]
                         for k in keys[:50]])
    print(f"## Plain vs attention Face Mesh on mien's crops ({len(keys)} crops)\n")
    print(f"- harness check: plain mesh through MediaPipe's graph vs mien's ONNX mesh, first 50 crops: max "
          f"|difference| {np.nanmax(np.abs(out['plain'][:50] - raw_onnx)[..., :2]):.2e} px (x, y, of 192)")
    print(f"- faces MediaPipe's graph dropped (presence < 0.5): plain {int((~out['found_plain']).sum())}, "
          f"attention {int((~out['found_attention']).sum())} of {len(keys)}")
    sec = out["seconds"]
    print(f"- MediaPipe's graph over all crops, one after another: plain {1e3 * sec[0] / len(keys):.2f} ms/crop, "
          f"attention {1e3 * sec[1] / len(keys):.2f} ms/crop (attention takes {sec[1] / sec[0]:.2f}x the time)")
    a468 = out["attention"][:, :468]
    dist = np.linalg.norm((a468 - out["plain"])[..., :2], axis=-1)
    brows = [46, 53, 52, 65, 55, 276, 283, 282, 295, 285]
    print(f"- attention vs plain points, crop pixels (of 192): all 468 mean {np.nanmean(dist):.2f}, "
          f"lower brow line ({', '.join(map(str, brows))}) mean {np.nanmean(dist[:, brows]):.2f}\n")
    print("| file | faces | found plain / attention | NME mean plain | NME mean attention |\n|---|---|---|---|---|")
    for x, p, a in zip(DLIB, nme_plain, nme_att, strict=True):
        print(f"| {x} | {p.faces} | {p.found} / {a.found} | {p.nme_mean:.4f} | {a.nme_mean:.4f} |")

    print("\n| set | part | expression vs neutral | measure | n | AUC plain | AUC plain (MediaPipe graph) "
          "| AUC attention | attention − plain, 95% interval |\n|---|---|---|---|---|---|---|---|---|")
    for set_name, expr, measure in EXPECTED:
        val = validation_fold(SHARED / "expressions" / set_name)
        lab = by_mesh["plain"][set_name][0]
        parts = [("all", np.ones(len(lab), bool))] if val is None else [("training folds", ~val),
                                                                       ("validation fold", val)]
        for part, rows in parts:
            pos, neg = rows & (lab == expr), rows & (lab == "neutral")
            v = {k: m[set_name][1][measure] for k, m in by_mesh.items()}
            a = {k: auc(x[pos], x[neg]) for k, x in v.items()}
            lo, hi = boot_diff(v["plain"][pos], v["plain"][neg], v["attention"][pos], v["attention"][neg])
            print(f"| {set_name} | {part} | {expr} | {measure} | {pos.sum()}/{neg.sum()} | {a['plain']:.3f} | "
                  f"{a['mp_plain']:.3f} | {a['attention']:.3f} | {a['attention'] - a['plain']:+.3f} "
                  f"[{lo:+.3f}, {hi:+.3f}] |")

    print("\n## Within performer: each expression photo against the same performer's neutral photos\n")
    print("What the engine's track-relative `geo_*_delta` columns use (a face against its own rest), so a "
          "face's build does not count. Interval: 95%, resampling performers.\n")
    print("| set | part | expression vs own neutral | measure | performers / pairs | AUC plain | AUC attention "
          "| attention − plain, 95% interval |\n|---|---|---|---|---|---|---|---|")
    for set_name, expr, measure in EXPECTED:
        val = validation_fold(SHARED / "expressions" / set_name)
        n_rows = len(by_mesh["plain"][set_name][0])
        parts = [("all", np.ones(n_rows, bool))] if val is None else [("training folds", ~val),
                                                                     ("validation fold", val)]
        for part, rows in parts:
            p, a, lo, hi, n_subj, n_pairs = within_performer(by_mesh, set_name, expr, measure, rows)
            print(f"| {set_name} | {part} | {expr} | {measure} | {n_subj} / {n_pairs} | {p:.3f} | {a:.3f} | "
                  f"{a - p:+.3f} [{lo:+.3f}, {hi:+.3f}] |")

    # the plain mesh with only its 20 brow points taken from the attention mesh (same crops)
    brow_idx = [i for side in LOWER_BROW + UPPER_BROW for i in side]
    hybrid_pts = {}
    for k, p, a in zip(keys, out["plain"], out["attention"], strict=True):
        h = p.copy()
        h[brow_idx] = a[brow_idx]
        hybrid_pts[k] = h
    meshes = {"plain": rec, "attention": att, "plain + attention brows": ReplayMesh(shipped, hybrid_pts, "hybrid")}
    print(f"\n## geo_brow_raise definitions, surprise vs neutral ({len(BROW_VARIANTS)} tried on each mesh)\n")
    print("Each mesh's definition is chosen on the Taiwanese training folds only (marked *); the validation "
          "fold and Yale are held out. `plain + attention brows`: the plain mesh with its 20 brow points "
          f"({', '.join(map(str, brow_idx))}) replaced by the attention mesh's.\n")
    print("| mesh | definition | Taiwanese training folds | Taiwanese validation fold | Yale |\n|---|---|---|---|---|")
    val = validation_fold(SHARED / "expressions" / "taiwanese_chen2013")
    for name, mesh in meshes.items():
        lab_t, var_t = brow_variants(det, mesh, "taiwanese_chen2013")
        lab_y, var_y = brow_variants(det, mesh, "yale_faces")
        rows_out = []
        for d in BROW_VARIANTS:
            v, w = var_t[d], var_y[d]
            tr = auc(v[~val & (lab_t == "surprise")], v[~val & (lab_t == "neutral")])
            va = auc(v[val & (lab_t == "surprise")], v[val & (lab_t == "neutral")])
            ya = auc(w[lab_y == "surprise"], w[lab_y == "neutral"])
            rows_out.append((tr, va, ya, d))
        best = max(rows_out)[3]
        for tr, va, ya, d in rows_out:
            print(f"| {name} | {d}{' *' if d == best else ''} | {tr:.3f} | {va:.3f} | {ya:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
