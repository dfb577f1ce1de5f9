"""Validation of the geometry on labelled photos: 68-point error and each measure's AUC.

Used by ``bench/geometry.py`` (the table in docs/geometry.md) and the slow tests.
"""
from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mien.detection import FaceDetector
from mien.errors import InputError
from mien.faces import Faces
from mien.geometry.landmarks68 import to_ibug68
from mien.geometry.mesh import FaceMesh
from mien.geometry.stills import largest_face_geometry

#: (set, expression, measure): the measure that should rise for that expression against neutral.
EXPECTED: tuple[tuple[str, str, str], ...] = (
    ("london_face_research_lab", "happiness", "geo_lip_corner_pull"),
    ("london_face_research_lab", "happiness", "geo_lip_stretch"),
    ("taiwanese_chen2013", "happiness", "geo_lip_corner_pull"),
    ("taiwanese_chen2013", "happiness", "geo_nose_wrinkle"),
    ("taiwanese_chen2013", "surprise", "geo_brow_raise"),
    ("taiwanese_chen2013", "surprise", "geo_mouth_open"),
    ("taiwanese_chen2013", "surprise", "geo_jaw_drop"),
    ("taiwanese_chen2013", "surprise", "geo_eye_open"),
    ("taiwanese_chen2013", "anger", "geo_brow_lower"),
    ("taiwanese_chen2013", "anger", "geo_lip_press"),
    ("taiwanese_chen2013", "sadness", "geo_lip_corner_depress"),
    ("taiwanese_chen2013", "sadness", "geo_brow_lower"),
    ("taiwanese_chen2013", "disgust", "geo_upper_lip_raise"),
    ("taiwanese_chen2013", "disgust", "geo_nose_wrinkle"),
    ("taiwanese_chen2013", "fear", "geo_lip_stretch"),
    ("taiwanese_chen2013", "fear", "geo_eye_open"),
    ("yale_faces", "happiness", "geo_lip_corner_pull"),
    ("yale_faces", "surprise", "geo_mouth_open"),
    ("yale_faces", "surprise", "geo_brow_raise"),
)


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path))
    if img is None:
        raise InputError(f"{path}: not a readable image")
    return np.asarray(img)


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half (the Mann-Whitney AUC)."""
    pos = np.asarray(pos, np.float64)
    neg = np.asarray(neg, np.float64)
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


@dataclass
class LandmarkError:
    faces: int
    found: int
    nme_mean: float
    nme_median: float


def _dlib_faces(xml_path: Path) -> list[tuple[Path, np.ndarray]]:
    out = []
    for im in ET.parse(xml_path).getroot().iter("image"):
        for box in im.iter("box"):
            parts = sorted(box.iter("part"), key=lambda p: int(p.get("name", "0")))
            pts = np.array([[float(p.get("x", 0)), float(p.get("y", 0))] for p in parts])
            if len(pts) == 68:
                out.append((xml_path.parent / str(im.get("file")), pts))
    return out


def ibug68_error(xml_path: Path, detector: FaceDetector, mesh: FaceMesh) -> LandmarkError:
    """Mean and median normalised error (by the outer-eye-corner distance, points 36 and 45) of the
    mesh's 68-point subset against dlib-format annotations. A face counts as found when a detection
    centre lies within half the annotated face width of the annotation's centre."""
    errs = []
    faces = _dlib_faces(xml_path)
    cache: dict[Path, tuple[np.ndarray, Faces]] = {}
    for path, gt in faces:
        if path not in cache:
            img = _read(path)
            cache[path] = (img, detector.detect(img))
        img, det = cache[path]
        if len(det) == 0:
            continue
        centres = (det.xyxy[:, :2] + det.xyxy[:, 2:]) / 2
        j = int(np.argmin(np.linalg.norm(centres - gt.mean(0), axis=1)))
        if np.linalg.norm(centres[j] - gt.mean(0)) > 0.5 * np.ptp(gt[:, 0]):
            continue
        res = mesh.run(img, det.xyxy[j:j + 1], det.landmarks[j:j + 1])
        pred = to_ibug68(res.points[:, :, :2])[0]
        iod = np.linalg.norm(gt[36] - gt[45])
        errs.append(float(np.linalg.norm(pred - gt, axis=1).mean() / iod))
    e = np.array(errs)
    return LandmarkError(len(faces), len(e), float(e.mean()) if len(e) else float("nan"),
                         float(np.median(e)) if len(e) else float("nan"))


def labelled_measures(set_dir: Path, detector: FaceDetector, mesh: FaceMesh,
                      labels: set[str] | None = None) -> tuple[list[str], dict[str, np.ndarray]]:
    """(labels, measure columns) for the images of one shared expression set (labels.csv)."""
    with (set_dir / "labels.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if labels is None or r["label"] in labels]
    out_labels: list[str] = []
    cols: dict[str, list[float]] = {}
    for r in rows:
        g = largest_face_geometry(_read(set_dir / r["path"]), detector, mesh)
        out_labels.append(r["label"])
        vals = g.measures if g is not None else {}
        if g is not None:
            vals = dict(vals, pose_yaw_deg=float(g.pose.yaw_deg[0]), mesh_score=g.score)
        for k in set(cols) | set(vals):
            cols.setdefault(k, [float("nan")] * (len(out_labels) - 1)).append(vals.get(k, float("nan")))
    return out_labels, {k: np.array(v) for k, v in cols.items()}


def measure_aucs(expressions_dir: Path, detector: FaceDetector, mesh: FaceMesh,
                 expected: tuple[tuple[str, str, str], ...] = EXPECTED) -> list[dict]:
    """AUC of each (set, expression, measure) in ``expected`` against the set's neutral faces."""
    out = []
    cache: dict[str, tuple[list[str], dict[str, np.ndarray]]] = {}
    for set_name, expr, measure in expected:
        if set_name not in cache:
            cache[set_name] = labelled_measures(expressions_dir / set_name, detector, mesh)
        labels, cols = cache[set_name]
        lab = np.array(labels)
        v = cols[measure]
        out.append({"set": set_name, "expression": expr, "measure": measure,
                    "n_expression": int((lab == expr).sum()), "n_neutral": int((lab == "neutral").sum()),
                    "auc": auc(v[lab == expr], v[lab == "neutral"])})
    return out
