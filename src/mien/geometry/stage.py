"""The geometry stage of the engine: mesh, pose and measures for one frame's tracked faces.

It reuses each face's tracked box and RetinaFace landmarks (no extra detection) and runs the
mesh network once per frame over all its faces. Its columns go into :attr:`mien.faces.Faces.data`;
the per-track ``geo_*_delta`` columns are added to the finished table by :func:`add_track_deltas`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

from mien.faces import Faces
from mien.geometry.measures import blink_events, measure_columns, track_deltas
from mien.geometry.measures import geometry_measures as _measures
from mien.geometry.mesh import N_POINTS, FaceMesh, mesh_box_sides, mesh_eye_angles
from mien.geometry.pose import head_pose, stable_face_frame
from mien.quality import MIN_MESH_SCORE
from mien.schema import order_columns
from mien.table import ColumnTable

if TYPE_CHECKING:  # pandas is imported where a table is built, not at engine start-up
    import pandas as pd

    from mien.geometry.follow import Carried

TableT = TypeVar("TableT", "pd.DataFrame", ColumnTable)

POSE_COLUMNS = ("pose_yaw_deg", "pose_pitch_deg", "pose_roll_deg")
#: Columns that need a track's whole run (added by :func:`add_track_deltas` when the run is complete;
#: checkpoint parts written during the run do not have them).
END_OF_RUN_COLUMNS: tuple[str, ...] = tuple(f"{c}_delta" for c in measure_columns()) + ("geo_blink",)


def measure_faces(mesh: FaceMesh, image_bgr: np.ndarray, faces: Faces,
                  framing: CropFraming | None = None, carried: Carried | None = None) -> tuple[Faces, np.ndarray]:
    """``faces`` with pose, ``mesh_score`` and ``geo_*`` columns in ``data``; and the mesh points
    (n, 468, 3) in frame pixels (for ``--landmarks`` and drawing). ``framing``: a source's tracks'
    crop framing from their previous meshes, used and then updated (None: every crop from its
    detection, as for a still image). ``carried``: meshes already run this frame for some tracks
    (faces the mesh followed, :mod:`mien.geometry.follow`), used for those tracks' faces."""
    points, score = run_meshes(mesh, image_bgr, faces, framing, carried)
    return faces.replace(data=geometry_columns(points, score)), points


def run_meshes(mesh: FaceMesh, image_bgr: np.ndarray, faces: Faces, framing: CropFraming | None = None,
               carried: Carried | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The mesh points (n, 468, 3) and face-presence scores (n,) of ``faces``: the ``carried``
    ones where given for a face's track, the others run now (framed by ``framing`` where it has
    the track); ``framing`` is then updated with all of them."""
    n = len(faces)
    points = np.empty((n, N_POINTS, 3), np.float32)
    score = np.empty(n, np.float32)
    need = np.ones(n, bool)
    if carried is not None and len(carried.track_ids):
        at = {int(k): i for i, k in enumerate(carried.track_ids)}
        rows = np.array([at.get(int(k), -1) for k in faces.track_id], np.int64)
        have = rows >= 0
        points[have], score[have] = carried.points[rows[have]], carried.score[rows[have]]
        need = ~have
    if need.any():
        ids = faces.track_id[need]
        sides, angles = framing.sides_and_angles(ids) if framing is not None else (None, None)
        res = mesh.run(image_bgr, faces.xyxy[need], faces.landmarks[need], sides=sides, angles=angles)
        points[need], score[need] = res.points, res.score
    if framing is not None:
        framing.update(faces.track_id, points, score)
    return points, score


def geometry_columns(points: np.ndarray, score: np.ndarray) -> dict[str, np.ndarray]:
    """The pose, ``mesh_score`` and ``geo_*`` columns of faces with these meshes (n, 468, 3) and
    face-presence scores (n,)."""
    pose = head_pose(points)
    data: dict[str, np.ndarray] = {
        "pose_yaw_deg": pose.yaw_deg, "pose_pitch_deg": pose.pitch_deg, "pose_roll_deg": pose.roll_deg,
        "mesh_score": np.asarray(score, np.float64),
    }
    data.update(_measures(stable_face_frame(points)))
    return data


def warm_up() -> None:
    """Load the canonical face and build the measures' weights once, on a synthetic face: a
    video's first frame would otherwise pay them (12-16 ms in a fresh process, numpy's BLAS
    starting its threads included; bench/RESULTS.md, "Idle-machine figures"). The engine calls it
    in the thread that builds its ONNX sessions."""
    from mien.geometry.pose import canonical_face

    face = canonical_face().vertices[None] * np.array([10.0, -10.0, -10.0]) + np.array([320.0, 180.0, 0.0])
    head_pose(face)
    _measures(stable_face_frame(face))


class CropFraming:
    """Each track's next mesh crop size and turn, from its previous frame's mesh (MediaPipe frames
    its crops from the last landmarks, too). The detector is not steady enough for them: the
    full-frame detections frame a face 8-13% larger than the window re-detections between them,
    its eye line jitters 2-4 degrees from frame to frame (the mesh's 0.5-0.6), and a crop framed
    from them passed both on as a 3-frame pattern in pose and measures (docs/geometry.md, "The
    detection schedule in the measures"). A track's first frame, and a frame after one where the
    mesh did not find its face, use the detection; the crop's centre always does."""

    def __init__(self) -> None:
        self._framing: dict[int, tuple[float, float]] = {}

    def sides_and_angles(self, track_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n,) crop sizes and (n,) turns (radians) for these tracks, NaN where the detection frames it."""
        got = np.array([self._framing.get(int(t), (np.nan, np.nan)) for t in track_ids], np.float64).reshape(-1, 2)
        return got[:, 0], got[:, 1]

    def tracks(self) -> set[int]:
        """The tracks whose previous mesh was trusted (those framed from it)."""
        return set(self._framing)

    def clear(self) -> None:
        """A frame without faces: every track starts again from its detection."""
        self._framing = {}

    def update(self, track_ids: np.ndarray, points: np.ndarray, score: np.ndarray) -> None:
        """Keep this frame's trusted meshes' framing (tracks absent from it, or untrusted, start
        again from their detection)."""
        if not len(track_ids):
            self.clear()
            return
        sides, angles = mesh_box_sides(points), mesh_eye_angles(points)
        self._framing = {int(t): (float(s), float(a))
                         for t, s, a, ok in zip(track_ids, sides, angles, score >= MIN_MESH_SCORE) if ok}


def add_track_deltas(table: TableT) -> TableT:
    """``geo_X_delta`` for every ``geo_X`` column: relative to the track's baseline, the median over
    its more neutral-looking half of frames (by ``prob_neutral``; abstaining rows have none and are
    left out of the choice) among those where the mesh found the face (``mesh_score`` >=
    :data:`mien.quality.MIN_MESH_SCORE`: elsewhere its points are not trusted, and a baseline from
    them would shift every delta of the track). Computed per source and track once the table is complete.

    ``table`` is a DataFrame or the engine's :class:`mien.table.ColumnTable` (no pandas needed)."""
    names = list(table.columns) if not isinstance(table, ColumnTable) else table.names
    cols = [c for c in measure_columns() if c in names]
    if not cols or table.empty:
        return table

    def column(name: str) -> np.ndarray:
        return np.asarray(table[name], np.float64) if isinstance(table, ColumnTable) else table[name].to_numpy(np.float64)

    track = track_codes(np.asarray(table["source"]), np.asarray(table["track_id"]))
    neutral = column("prob_neutral") if "prob_neutral" in names else None
    trusted = column("mesh_score") >= MIN_MESH_SCORE if "mesh_score" in names else None
    deltas = track_deltas(track, {c: column(c) for c in cols}, neutral, trusted)
    eye = column("geo_eye_open") if "geo_eye_open" in names else None
    if eye is not None and trusted is not None:  # an untrusted mesh's lids are no closure, nor the median's
        eye = np.where(trusted, eye, np.nan)
    blink = _blink_rows(column("time_s"), eye, track)
    if isinstance(table, ColumnTable):
        from mien.results import ordered

        return ordered(table.assign(**deltas, geo_blink=blink))
    return order_columns(table.assign(**deltas, geo_blink=blink))


def track_codes(source: np.ndarray, track_id: np.ndarray) -> np.ndarray:
    """A code per row for its (source, track), numbered in order of first appearance (as
    ``pd.factorize`` numbers them)."""
    src = np.unique(source.astype(str), return_inverse=True)[1].reshape(-1).astype(np.int64)
    tid = track_id.astype(np.int64)
    span = int(tid.max() - tid.min()) + 1
    key = src * span + (tid - tid.min())
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)]


def _blink_rows(times: np.ndarray, eye_open: np.ndarray | None, track: np.ndarray) -> np.ndarray:
    """1 on the rows that fall inside a blink (:func:`mien.geometry.blink_events`), else 0."""
    out = np.zeros(len(times), np.int64)
    if eye_open is None:
        return out
    for ev in blink_events(track, times, eye_open):
        if ev["kind"] == "blink":
            out[(track == ev["track_id"]) & (times >= ev["start_s"]) & (times <= ev["end_s"])] = 1
    return out


def blink_table(table: pd.DataFrame) -> pd.DataFrame:
    """The eye closures of a results table as events: source, track_id, start_s, end_s, frames, kind
    (``blink`` up to 0.5 s, else ``eyes_closed``), min_ratio (deepest closure / the track's median)."""
    import pandas as pd

    rows = []
    for (source, track_id), g in table.groupby(["source", "track_id"], sort=False):
        eye = g["geo_eye_open"].to_numpy(np.float64)
        if "mesh_score" in g.columns:  # rows where the mesh did not find the face: not trusted
            eye = np.where(g["mesh_score"].to_numpy(np.float64) >= MIN_MESH_SCORE, eye, np.nan)
        for ev in blink_events(np.zeros(len(g), np.int64), g["time_s"].to_numpy(np.float64), eye):
            rows.append({"source": source, **ev, "track_id": track_id})
    cols = ["source", "track_id", "start_s", "end_s", "frames", "kind", "min_ratio"]
    return pd.DataFrame(rows, columns=cols)


class LandmarkRows:
    """Collects every face's 468 mesh points (and the iBUG-68 subset) for ``X.landmarks.parquet``:
    one row per face per frame, keyed like the results table (source, frame_index, time_s,
    track_id), then ``mesh{i}_x|y|z`` (frame pixels; z relative depth, scaled like x) and
    ``ibug{j}_x|y`` (the dlib/iBUG 68-point order)."""

    def __init__(self) -> None:
        self._keys: list[dict[str, np.ndarray]] = []
        self._points: list[np.ndarray] = []

    def add(self, source: str, frame_index: int, time_s: float, track_ids: np.ndarray, points: np.ndarray) -> None:
        n = len(track_ids)
        self._keys.append({"source": np.full(n, source, dtype=object), "frame_index": np.full(n, frame_index),
                           "time_s": np.full(n, time_s), "track_id": np.asarray(track_ids)})
        self._points.append(np.asarray(points, np.float32))

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        from mien.geometry.landmarks68 import to_ibug68

        if not self._points:
            return pd.DataFrame({"source": [], "frame_index": [], "time_s": [], "track_id": []})
        keys = {k: np.concatenate([d[k] for d in self._keys]) for k in self._keys[0]}
        pts = np.concatenate(self._points)
        cols: dict[str, np.ndarray] = dict(keys)
        for i in range(pts.shape[1]):
            for a, axis in enumerate("xyz"):
                cols[f"mesh{i}_{axis}"] = pts[:, i, a]
        sub = to_ibug68(pts)
        for j in range(sub.shape[1]):
            cols[f"ibug{j}_x"], cols[f"ibug{j}_y"] = sub[:, j, 0], sub[:, j, 1]
        return pd.DataFrame(cols)
