"""Validation of the geometry on labelled photos: 68-point error and each measure's AUC.

Used by ``bench/geometry.py`` (the table in docs/geometry.md) and the slow tests. The Taiwanese
set is scored on its training folds and its validation fold apart (mien's subject folds,
:mod:`mien.training.expressions`): measure definitions are chosen on the training folds only, so
the validation fold, London and Yale are held out from those choices. Each AUC is given twice: across
people (every expression photo against every neutral one) and against each person's own neutral
photos (:func:`pair_auc`, what a track's ``geo_*_delta`` columns measure).
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
from mien.geometry.measures import IOD_POINTS
from mien.geometry.mesh import FaceMesh
from mien.geometry.stills import largest_face_geometry

#: The part of each set a row of :func:`measure_aucs` scores.
ALL_ROWS, TRAINING_FOLDS, VALIDATION_FOLD = "all", "training folds", "validation fold"
#: Sets split by subject folds (the others are held out from every definition choice as a whole).
FOLDED_SETS = ("taiwanese_chen2013",)

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


def previous_definitions(face_points: np.ndarray) -> dict[str, np.ndarray]:
    """The definitions ``geo_brow_raise`` and ``geo_lip_corner_pull`` had before the pose-normalised
    ones (mien before this change), from points in the head's frame (n, 468, 3), as
    ``before:geo_X`` columns, so the bench prints both: the upper brow line's height above the eye
    corners; the mouth corner's height above the lips' vertical midpoint (mean of 0 and 17)."""
    p = np.asarray(face_points, np.float64)
    iod = np.linalg.norm(p[:, IOD_POINTS[0]] - p[:, IOD_POINTS[1]], axis=1)
    y = p[:, :, 1]
    brow = ((y[:, [70, 63, 105, 66, 107]].mean(1) - y[:, [33, 133]].mean(1))
            + (y[:, [300, 293, 334, 296, 336]].mean(1) - y[:, [263, 362]].mean(1))) / 2
    corner = (y[:, 61] + y[:, 291]) / 2 - y[:, [0, 17]].mean(1)
    return {"before:geo_brow_raise": brow / iod, "before:geo_lip_corner_pull": corner / iod}


def validation_fold(set_dir: Path) -> np.ndarray | None:
    """True on the rows of ``set_dir/labels.csv`` in the set's validation fold (fold 0 of mien's
    seeded subject folds); None for a set that is not split (:data:`FOLDED_SETS`)."""
    if set_dir.name not in FOLDED_SETS:
        return None
    from mien.training.expressions import SOURCES, read_labels, split_of

    return split_of(read_labels(set_dir), SOURCES[set_dir.name])


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
            before = previous_definitions(g.pose.to_face_frame(g.points[None]))
            vals = dict(vals, pose_yaw_deg=float(g.pose.yaw_deg[0]), mesh_score=g.score,
                        **{k: float(v[0]) for k, v in before.items()})
        for k in set(cols) | set(vals):
            cols.setdefault(k, [float("nan")] * (len(out_labels) - 1)).append(vals.get(k, float("nan")))
    return out_labels, {k: np.array(v) for k, v in cols.items()}


def subject_pairs(labels: np.ndarray, subjects: np.ndarray, expression: str,
                  rows: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per subject among ``rows`` (bool mask) with both: (indices of its ``expression`` photos,
    indices of its neutral photos)."""
    pairs = {}
    for s in sorted(set(subjects[rows].tolist())):
        mine = rows & (subjects == s)
        pos, neg = np.flatnonzero(mine & (labels == expression)), np.flatnonzero(mine & (labels == "neutral"))
        if len(pos) and len(neg):
            pairs[s] = (pos, neg)
    return pairs


def pair_auc(values: np.ndarray, pairs: dict[str, tuple[np.ndarray, np.ndarray]],
             subjects: np.ndarray | list[str]) -> float:
    """P(an expression photo scores above the same subject's neutral photo), ties half, pooled over
    every (expression, neutral) pair of the subjects in ``subjects`` (one drawn twice counts twice):
    the face against its own rest, as the engine's track-relative ``geo_*_delta`` columns measure it."""
    wins, n = 0.0, 0
    for s in subjects:
        pos, neg = pairs[s]
        a, b = values[pos], values[neg]
        d = a[np.isfinite(a)][:, None] - b[np.isfinite(b)][None, :]
        wins += float((d > 0).sum() + 0.5 * (d == 0).sum())
        n += d.size
    return wins / n if n else float("nan")


def pair_auc_ci(values: np.ndarray, pairs: dict[str, tuple[np.ndarray, np.ndarray]],
                resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of :func:`pair_auc`, resampling whole subjects."""
    names = np.array(sorted(pairs), dtype=object)
    if len(names) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = [pair_auc(values, pairs, names[rng.integers(0, len(names), len(names))]) for _ in range(resamples)]
    lo, hi = np.nanpercentile(draws, [2.5, 97.5])
    return float(lo), float(hi)


def subjects_of(set_dir: Path) -> np.ndarray:
    """The ``subject`` column of ``set_dir/labels.csv``, in row order."""
    with (set_dir / "labels.csv").open() as f:
        return np.array([r["subject"] for r in csv.DictReader(f)], dtype=object)


def measure_aucs(expressions_dir: Path, detector: FaceDetector, mesh: FaceMesh,
                 expected: tuple[tuple[str, str, str], ...] = EXPECTED) -> list[dict]:
    """AUC of each (set, expression, measure) in ``expected`` against the set's neutral faces; a
    folded set (:data:`FOLDED_SETS`) gives one row for its training folds and one for its
    validation fold (``part``). ``measure`` may be a ``before:geo_X`` column
    (:func:`previous_definitions`). Each row also holds the AUC against each subject's own neutral
    photos (``auc_own_neutral``, :func:`pair_auc`, with its interval from resampling subjects,
    ``auc_own_neutral_ci``) and how many subjects and pairs it pools."""
    out = []
    cache: dict[str, tuple[list[str], dict[str, np.ndarray], np.ndarray | None, np.ndarray]] = {}
    for set_name, expr, measure in expected:
        if set_name not in cache:
            labels, cols = labelled_measures(expressions_dir / set_name, detector, mesh)
            cache[set_name] = (labels, cols, validation_fold(expressions_dir / set_name),
                               subjects_of(expressions_dir / set_name))
        labels, cols, val, subjects = cache[set_name]
        lab = np.array(labels)
        v = cols[measure]
        parts = [(ALL_ROWS, np.ones(len(lab), bool))] if val is None else [
            (TRAINING_FOLDS, ~val), (VALIDATION_FOLD, val)]
        for part, rows in parts:
            pos, neg = rows & (lab == expr), rows & (lab == "neutral")
            pairs = subject_pairs(lab, subjects, expr, rows)
            out.append({"set": set_name, "part": part, "expression": expr, "measure": measure,
                        "n_expression": int(pos.sum()), "n_neutral": int(neg.sum()),
                        "auc": auc(v[pos], v[neg]),
                        "auc_own_neutral": pair_auc(v, pairs, list(pairs)),
                        "auc_own_neutral_ci": pair_auc_ci(v, pairs),
                        "n_subjects": len(pairs), "n_pairs": sum(len(a) * len(b) for a, b in pairs.values())})
    return out
