"""Named geometry measures of the face mesh: ``geo_*``.

They are geometry, not FACS coding: each is a distance between mesh points that moves when the
named action unit (AU) is produced, and also with anything else that moves those points (speech,
a face's build). Each is computed in the head's own frame (pose, position and size taken out by
a similarity fit of the canonical face on points expressions move least,
:func:`mien.geometry.pose.stable_face_frame`; y up, x towards the person's left), divided by the
inter-ocular distance (outer eye corners 33 and 263), so it does not change with the face's size
in the frame or its head pose. Larger always means more of the named movement. Left/right are the
person's own.

Two measures are read partly against that frame rather than against other points of the face that
move too: ``brow_raise`` is the lower brow line's height above the frame's origin (the canonical
face's, at about the middle of the nose), not above the eye corners (the mesh moves its lids and
eye corners with the brows); ``lip_corner_pull`` adds the corner's outward displacement from the
canonical face's corner to its height above the lips' midpoint (AU12 pulls the corner up and
out). The frame and these definitions were chosen on the Taiwanese set's training folds only
(docs/geometry.md, "How the definitions were chosen").

Faces differ at rest, so :func:`track_deltas` gives each measure relative to the track's own
baseline, and :func:`blink_events` turns eye opening into blink events.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mien.geometry.pose import canonical_face


@dataclass(frozen=True)
class Measure:
    name: str
    au: str
    definition: str
    right: tuple[int, ...]  # mesh indices used on the person's right (or the midline)
    left: tuple[int, ...] | None  # mirror indices; None: a midline measure


# Mesh indices (MediaPipe topology; the person's right side is the image's left).
_CORNERS_R, _CORNERS_L = (33, 133), (263, 362)  # eye corners: they move little with the lids
_BROW_R, _BROW_L = (70, 63, 105, 66, 107), (300, 293, 334, 296, 336)  # upper brow line
_LOWER_BROW_R, _LOWER_BROW_L = (46, 53, 52, 65, 55), (276, 283, 282, 295, 285)
_LIDS_R = ((159, 145), (158, 153), (160, 144))
_LIDS_L = ((386, 374), (385, 380), (387, 373))

MEASURES: tuple[Measure, ...] = (
    Measure("brow_raise", "AU1+2", "mean height of the lower brow line above the origin of the head's "
            "frame (the canonical face's, at about the middle of the nose)", _LOWER_BROW_R, _LOWER_BROW_L),
    Measure("brow_lower", "AU4", "minus the height of the inner brow end above the inner eye corner",
            (107, 133), (336, 362)),
    Measure("eye_open", "AU5/AU7 (and blinks)", "mean upper-to-lower eyelid distance at three points",
            (159, 145, 158, 153, 160, 144), (386, 374, 385, 380, 387, 373)),
    Measure("nose_wrinkle", "AU9", "minus the height of the inner eye corner above the nose wing",
            (133, 98), (362, 327)),
    Measure("upper_lip_raise", "AU10", "minus the height of the nose wing above the upper lip's peak",
            (98, 37), (327, 267)),
    Measure("lip_corner_pull", "AU12", "height of the mouth corner above the lips' vertical midpoint (mean "
            "of upper-lip top and lower-lip bottom) plus its outward displacement from the canonical "
            "face's corner", (61, 0, 17), (291, 0, 17)),
    Measure("lip_corner_depress", "AU15", "depth of the mouth corner below the base of the nose",
            (61, 2), (291, 2)),
    Measure("lip_stretch", "AU20", "mouth width, corner to corner", (61, 291), None),
    Measure("lip_press", "AU24", "minus the red-lip height, upper plus lower lip", (0, 13, 14, 17), None),
    Measure("mouth_open", "AU25/AU26", "gap between the inner lips", (13, 14), None),
    Measure("jaw_drop", "AU26/AU27", "nose tip to chin", (1, 152), None),
)

IOD_POINTS = (33, 263)


def _y(p: np.ndarray, *idx: int) -> np.ndarray:
    return p[:, list(idx), 1].mean(1)


@lru_cache(maxsize=1)
def _canonical() -> np.ndarray:
    """The canonical face's vertices (468, 3), cm: the rest positions displacements are taken from."""
    return canonical_face().vertices


def _side(name: str, p: np.ndarray, left: bool) -> np.ndarray:
    """One side's raw value (face frame, before dividing by the inter-ocular distance)."""
    if name == "brow_raise":
        # above the frame's origin (the canonical face's, at about the middle of the nose), not above
        # the eye corners: the mesh moves its lids and eye corners with the brows
        return _y(p, *(_LOWER_BROW_L if left else _LOWER_BROW_R))
    if name == "brow_lower":
        brow, corner = (336, 362) if left else (107, 133)
        return -(_y(p, brow) - _y(p, corner))
    if name == "eye_open":
        lids = _LIDS_L if left else _LIDS_R
        return np.mean([p[:, a, 1] - p[:, b, 1] for a, b in lids], axis=0)
    if name == "nose_wrinkle":
        corner, wing = (362, 327) if left else (133, 98)
        return -(_y(p, corner) - _y(p, wing))
    if name == "upper_lip_raise":
        wing, peak = (327, 267) if left else (98, 37)
        return -(_y(p, wing) - _y(p, peak))
    if name == "lip_corner_pull":
        corner = 291 if left else 61
        out = 1.0 if left else -1.0  # the person's left is +x in the head's frame
        return (_y(p, corner) - _y(p, 0, 17)) + out * (p[:, corner, 0] - _canonical()[corner, 0])
    if name == "lip_corner_depress":
        return _y(p, 2) - _y(p, 291 if left else 61)
    raise KeyError(name)


def _midline(name: str, p: np.ndarray) -> np.ndarray:
    if name == "lip_stretch":
        return np.linalg.norm(p[:, 291] - p[:, 61], axis=1)
    if name == "lip_press":
        return -((_y(p, 0) - _y(p, 13)) + (_y(p, 14) - _y(p, 17)))
    if name == "mouth_open":
        return _y(p, 13) - _y(p, 14)
    if name == "jaw_drop":
        return _y(p, 1) - _y(p, 152)
    raise KeyError(name)


def _raw_measures(p: np.ndarray) -> dict[str, np.ndarray]:
    """The definitions above, point by point, before the division by the inter-ocular distance."""
    out: dict[str, np.ndarray] = {}
    for m in MEASURES:
        if m.left is None:
            out[f"geo_{m.name}"] = _midline(m.name, p)
        else:
            r, lf = _side(m.name, p, False), _side(m.name, p, True)
            out[f"geo_{m.name}"] = (r + lf) / 2
            out[f"geo_{m.name}_left"] = lf
            out[f"geo_{m.name}_right"] = r
    return out


def _readable_measures(face_points: np.ndarray) -> dict[str, np.ndarray]:
    """The definitions (the source of truth; :func:`geometry_measures` computes the same values
    with one matrix product)."""
    p = np.asarray(face_points, np.float64)
    iod = np.linalg.norm(p[:, IOD_POINTS[0]] - p[:, IOD_POINTS[1]], axis=1)
    iod = np.where(iod > 0, iod, np.nan)
    return {k: v / iod for k, v in _raw_measures(p).items()}


_NONLINEAR = ("geo_lip_stretch",)  # a Euclidean distance; every other measure is affine in the coordinates


@lru_cache(maxsize=1)
def _affine_weights() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(columns, W (468*3, k), b (k,)): before the division by the inter-ocular distance every
    measure except lip_stretch is the affine function ``points.reshape(-1) @ W + b`` of the
    coordinates; W and b are read off the readable definitions (b at all-zero points, W's rows
    at each unit coordinate)."""
    n = 468 * 3
    cols = tuple(c for c in measure_columns() if c not in _NONLINEAR)
    zero = _raw_measures(np.zeros((1, 468, 3)))
    b = np.array([zero[c][0] for c in cols])
    # only the points the measures name can have non-zero weights: the unit basis of those
    # coordinates (~150 instead of 1,404; tests/test_geometry.py checks the result against the
    # definitions on points moved everywhere on the mesh)
    coords = np.array([3 * i + c for i in measure_points() for c in range(3)])
    basis = np.zeros((len(coords), n))
    basis[np.arange(len(coords)), coords] = 1.0
    unit = _raw_measures(basis.reshape(-1, 468, 3))
    w = np.zeros((n, len(cols)))
    w[coords] = np.stack([unit[c] for c in cols], axis=1) - b
    return cols, w, b


def measure_points() -> tuple[int, ...]:
    """Every mesh index a measure's definition reads (its ``right`` and ``left`` points)."""
    return tuple(sorted({i for m in MEASURES for i in m.right + (m.left or ())}))


def geometry_measures(face_points: np.ndarray) -> dict[str, np.ndarray]:
    """``geo_*`` columns for n faces from mesh points (n, 468, 3) in the head's frame: the engine's
    values come from :func:`mien.geometry.pose.stable_face_frame` (``geometry_measures(
    stable_face_frame(points))``). Sided measures give ``geo_X_left``, ``geo_X_right`` and ``geo_X``
    (their mean)."""
    p = np.asarray(face_points, np.float64)
    iod = np.linalg.norm(p[:, IOD_POINTS[0]] - p[:, IOD_POINTS[1]], axis=1)
    iod = np.where(iod > 0, iod, np.nan)
    cols, w, b = _affine_weights()
    vals = (p.reshape(len(p), -1) @ w + b) / iod[:, None]
    out = {c: vals[:, j] for j, c in enumerate(cols)}
    out["geo_lip_stretch"] = np.linalg.norm(p[:, 291] - p[:, 61], axis=1) / iod
    return {c: out[c] for c in measure_columns()}


def measure_columns() -> list[str]:
    cols = []
    for m in MEASURES:
        cols.append(f"geo_{m.name}")
        if m.left is not None:
            cols += [f"geo_{m.name}_left", f"geo_{m.name}_right"]
    return cols


def track_baselines(track_ids: np.ndarray, values: np.ndarray,
                    neutral_prob: np.ndarray | None = None, trusted: np.ndarray | None = None) -> np.ndarray:
    """Each row's track baseline for one measure: the median over the track's more neutral-looking
    half (rows whose neutral probability is at least the track's median), or over all its rows
    when no probability is given. NaN rows (no mesh, abstained) are left out, and so are rows
    where ``trusted`` is False (the mesh did not find the face); a track with no such row has no
    baseline (NaN)."""
    track_ids = np.asarray(track_ids)
    values = np.asarray(values, np.float64)
    usable = np.isfinite(values) if trusted is None else np.isfinite(values) & np.asarray(trusted, bool)
    out = np.full(len(values), np.nan)
    for t in np.unique(track_ids):
        rows = np.flatnonzero((track_ids == t) & usable)
        if len(rows) == 0:
            continue
        use = rows
        if neutral_prob is not None:
            p = np.asarray(neutral_prob, np.float64)[rows]
            ok = np.isfinite(p)
            if ok.any():
                use = rows[ok & (p >= np.median(p[ok]))]
        out[track_ids == t] = np.median(values[use])
    return out


def track_deltas(track_ids: np.ndarray, measures: dict[str, np.ndarray],
                 neutral_prob: np.ndarray | None = None, trusted: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``geo_X_delta`` = ``geo_X`` minus its track baseline (:func:`track_baselines`)."""
    return {f"{k}_delta": np.asarray(v, np.float64) - track_baselines(track_ids, v, neutral_prob, trusted)
            for k, v in measures.items()}


# Eyes count as closed below this share of the track's median opening. The mesh never closes its
# lids fully: on single_face.mp4's blink (frames 26-28, eyes shut when looked at) it reads 0.63-0.66
# of the median, while open eyes there stay above 0.82.
BLINK_CLOSED_FRACTION = 0.75
BLINK_MAX_S = 0.5  # a closure longer than this is reported as eyes_closed, not a blink


def blink_events(track_ids: np.ndarray, times_s: np.ndarray, eye_open: np.ndarray) -> list[dict]:
    """Eye closures per track: runs of consecutive rows of a track whose ``geo_eye_open`` is below
    ``BLINK_CLOSED_FRACTION`` (0.75) x the track's median. Each event: track_id, start_s, end_s, frames,
    kind (``blink`` up to ``BLINK_MAX_S``, else ``eyes_closed``), min_ratio (deepest closure)."""
    track_ids = np.asarray(track_ids)
    times_s = np.asarray(times_s, np.float64)
    eye_open = np.asarray(eye_open, np.float64)
    events: list[dict] = []
    for t in np.unique(track_ids):
        rows = np.flatnonzero(track_ids == t)
        rows = rows[np.argsort(times_s[rows], kind="stable")]
        v = eye_open[rows]
        ok = np.isfinite(v)
        if ok.sum() < 3:
            continue
        base = float(np.median(v[ok]))
        if base <= 0:
            continue
        ratio = v / base
        closed = ok & (ratio < BLINK_CLOSED_FRACTION)
        i = 0
        while i < len(rows):
            if not closed[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(rows) and closed[j + 1]:
                j += 1
            start, end = float(times_s[rows[i]]), float(times_s[rows[j]])
            events.append({"track_id": t.item() if hasattr(t, "item") else t, "start_s": start, "end_s": end,
                           "frames": int(j - i + 1), "kind": "blink" if end - start <= BLINK_MAX_S else "eyes_closed",
                           "min_ratio": float(np.nanmin(ratio[i:j + 1]))})
            i = j + 1
    return events
