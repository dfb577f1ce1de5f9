"""The face mesh following large faces between full-frame detections (MediaPipe's own scheme).

Between two full detections the engine re-finds each tracked face in a 128-px window around its
predicted box. That window frames a face 8-13% smaller than the full detection does, and its five
points come 10-13% closer together (docs/geometry.md, "The detection schedule in the measures"),
so the box and the expression crop used to jump with the 3-frame schedule. Where a track's mesh was
trusted on its previous frame and its face is large, the mesh can do the window's job: it runs on a
crop at the track's predicted position (sized and turned from that previous mesh, as always), and
its points give the frame's box and five points.

Each follows the track's last *full* detection, moved with the face: a 2-D similarity between that
detection's mesh and the new one (fitted on :data:`mien.geometry.pose.STABLE_POINTS`, which
expressions move least) carries the detection's box; each of the five points is its stand-in on the
new mesh (eye centres, nose tip, mouth corners) plus the offset the detection had from its own
mesh's stand-in, turned and scaled by that similarity. So a smile still moves the mouth corners,
and the framing is the full detection's, the one the expression model was trained on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mien.faces import Faces
from mien.geometry.pose import STABLE_POINTS
from mien.quality import MIN_MESH_SCORE

if TYPE_CHECKING:  # pragma: no cover
    from mien.geometry.stage import CropFraming

#: Faces whose box's shorter side is below this (frame pixels) keep the window re-detection: the
#: mesh of a small face is less sure (more of them fall under :data:`MIN_MESH_SCORE`, which costs a
#: mesh run and a window run), and small faces are where the window is cheap against the mesh.
MIN_FOLLOW_PX = 96.0

#: Mesh points standing for RetinaFace's five (image-left eye, image-right eye, nose tip, mouth
#: corners): each eye's corners and mid-lids averaged, nose tip 1, mouth corners 61 and 291.
_EYE_R = (33, 133, 159, 145)
_EYE_L = (263, 362, 386, 374)
_NOSE, _MOUTH_R, _MOUTH_L = 1, 61, 291
_STABLE = np.array(STABLE_POINTS)


def stand_ins(points: np.ndarray) -> np.ndarray:
    """(n, 5, 2) the mesh points (n, 468, >=2) standing for RetinaFace's five, in frame pixels."""
    p = np.asarray(points, np.float64)[..., :2]
    out = np.empty((len(p), 5, 2))
    out[:, 0] = p[:, _EYE_R].mean(1)
    out[:, 1] = p[:, _EYE_L].mean(1)
    out[:, 2] = p[:, _NOSE]
    out[:, 3] = p[:, _MOUTH_R]
    out[:, 4] = p[:, _MOUTH_L]
    return out


def similarity_2d(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares 2-D similarities dst ~ s R src + t for n point sets (n, k, 2): the linear part
    ``A`` = s R (n, 2, 2), and the centroids of ``src`` and ``dst`` (n, 2) (so p -> A (p - mu_src) + mu_dst)."""
    mu_s, mu_d = src.mean(1), dst.mean(1)
    a, b = src - mu_s[:, None], dst - mu_d[:, None]
    # for a similarity [[c, -s], [s, c]]: c = sum(a . b) / |a|^2, s = sum(a x b) / |a|^2
    norm = np.maximum((a * a).sum((1, 2)), 1e-12)
    c = (a * b).sum((1, 2)) / norm
    s = (a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]).sum(1) / norm
    lin = np.empty((len(src), 2, 2))
    lin[:, 0, 0], lin[:, 0, 1], lin[:, 1, 0], lin[:, 1, 1] = c, -s, s, c
    return lin, mu_s, mu_d


@dataclass
class _Anchor:
    """A track's last full detection and the mesh of that frame."""

    stable: np.ndarray  # (k, 2) the mesh's stable points
    box: np.ndarray  # (4,) the detection's box
    offsets: np.ndarray  # (5, 2) the detection's points minus the mesh's stand-ins
    score: float  # the detection's score


class MeshFollower:
    """Per track, the last full detection the mesh can carry to the frames after it."""

    def __init__(self, min_face_px: float = MIN_FOLLOW_PX) -> None:
        self.min_face_px = float(min_face_px)
        self._anchors: dict[int, _Anchor] = {}

    def clear(self) -> None:
        self._anchors = {}

    def followable(self, track_ids: np.ndarray, trusted_ids: set[int]) -> np.ndarray:
        """(n,) True for the tracks the mesh may follow on this frame: anchored by a full detection
        and trusted on their previous frame (``trusted_ids``: those whose mesh there scored at least
        :data:`MIN_MESH_SCORE`)."""
        return np.array([int(t) in self._anchors and int(t) in trusted_ids for t in track_ids], bool)

    def anchor(self, faces: Faces, points: np.ndarray, score: np.ndarray) -> None:
        """A full detection's frame: its tracked, large faces with a trusted mesh become the anchors
        (every other track loses its anchor and goes back to the window re-detection)."""
        ok = (score >= MIN_MESH_SCORE) & (faces.sizes >= self.min_face_px) & (faces.track_id >= 0)
        rows = np.flatnonzero(ok)
        if not len(rows):
            self._anchors = {}
            return
        pts = np.asarray(points, np.float64)[rows]
        offsets = faces.landmarks[rows].astype(np.float64) - stand_ins(pts)
        self._anchors = {
            int(faces.track_id[r]): _Anchor(pts[i][_STABLE, :2].copy(), faces.xyxy[r].astype(np.float64),
                                            offsets[i], float(faces.score[r]))
            for i, r in enumerate(rows)
        }

    def faces_from(self, track_ids: np.ndarray, points: np.ndarray) -> Faces:
        """The boxes, five points and scores the meshes (n, 468, 3) of these anchored tracks give."""
        if not len(track_ids):
            return Faces.empty()
        anchors = [self._anchors[int(t)] for t in track_ids]
        pts = np.asarray(points, np.float64)
        ref = np.stack([a.stable for a in anchors])
        lin, mu_ref, mu_now = similarity_2d(ref, pts[:, _STABLE, :2])
        box = np.stack([a.box for a in anchors])
        centre = (box[:, :2] + box[:, 2:]) / 2
        centre = np.einsum("nij,nj->ni", lin, centre - mu_ref) + mu_now
        scale = np.sqrt(np.abs(np.linalg.det(lin)))
        half = (box[:, 2:] - box[:, :2]) / 2 * scale[:, None]
        xyxy = np.hstack([centre - half, centre + half])
        offsets = np.stack([a.offsets for a in anchors])
        landmarks = stand_ins(pts) + offsets @ lin.transpose(0, 2, 1)
        return Faces(xyxy.astype(np.float32), np.array([a.score for a in anchors], np.float32),
                     landmarks.astype(np.float32))


@dataclass
class Carried:
    """The meshes the face-finding stage ran for the faces it followed: their track ids (n,),
    points (n, 468, 3) and face-presence scores (n,), handed to the geometry stage so that it does
    not run them again."""

    track_ids: np.ndarray
    points: np.ndarray
    score: np.ndarray


class FollowState:
    """The face-finding stage's own mesh state when it follows faces: the large tracks' crop framing
    (from their previous meshes) and their anchors. The large faces' meshes run in that stage (on a
    full detection's frame all of them, between full detections those trusted on their previous
    frame), so that its state never waits on another thread; the geometry stage runs the others'
    (with its own framing) and uses the carried ones as they are."""

    def __init__(self, framing: CropFraming, follower: MeshFollower) -> None:
        self.framing = framing
        self.follower = follower
