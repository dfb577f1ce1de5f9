"""3-D head pose: a weighted rigid (similarity) fit of the mesh to MediaPipe's canonical face.

The canonical face (468 vertices, centimetres) is right-handed: x towards the image's right for a
frontal face, y up, z out of the face towards the camera. Mesh points (x right, y down, z smaller
= nearer) are put in that frame by flipping y and z, then the rotation R, scale s and translation t
minimising sum_i w_i |s R c_i + t - p_i|^2 are found in closed form (Umeyama 1991), with MediaPipe's
own Procrustes weights: 33 points on the forehead, nose and cheeks, none on the mouth, brows or
eyelids, so an expression does not move the pose. The depth the network gives makes this a 3-D fit
(weak perspective), so it needs no camera intrinsics, unlike ``cv2.solvePnP``.

Sign conventions (degrees; R = R_y(yaw) R_x(-pitch) R_z(-roll), roll applied first):

* ``yaw`` > 0: the face turns towards the image's right (the person's own left); 0 frontal; ±90 profile.
* ``pitch`` > 0: the face tilts up (chin up); < 0: looking down.
* ``roll`` > 0: the head tilts clockwise in the image (the eye on the image's right is lower), the
  same sign as mien's earlier eye-line roll.

A horizontal image flip negates yaw and roll and leaves pitch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from mien.errors import ModelError
from mien.manifest import file_sha256

_FLIP = np.array([1.0, -1.0, -1.0])  # image (x right, y down, z away) -> canonical (y up, z towards)


@dataclass(frozen=True)
class CanonicalFace:
    vertices: np.ndarray  # (468, 3) cm
    weights: np.ndarray  # (468,) Procrustes weights (0 off the 33 basis points)
    triangles: np.ndarray  # (898, 3)


@lru_cache(maxsize=1)
def canonical_face(card_path: str | None = None) -> CanonicalFace:
    """The canonical face shipped beside the mesh network, SHA-256 checked against the card."""
    from mien.geometry.mesh import default_card_path

    card_file = Path(card_path) if card_path else default_card_path()
    card = json.loads(card_file.read_text())
    path = card_file.parent / card["canonical_file"]
    if not path.is_file() or file_sha256(path) != card["canonical_sha256"]:
        raise ModelError(f"canonical face {path} is missing or does not match its card; reinstall mien")
    with np.load(path) as z:
        w = np.zeros(len(z["vertices"]))
        w[z["procrustes_ids"]] = z["procrustes_weights"]
        return CanonicalFace(z["vertices"].astype(np.float64), w, z["triangles"].astype(np.int64))


@dataclass
class HeadPose:
    """Pose of n faces. ``rotation`` maps canonical to camera axes; ``scale`` is frame pixels per cm;
    ``translation`` in frame pixels (canonical axes)."""

    yaw_deg: np.ndarray
    pitch_deg: np.ndarray
    roll_deg: np.ndarray
    rotation: np.ndarray  # (n, 3, 3)
    scale: np.ndarray  # (n,)
    translation: np.ndarray  # (n, 3)

    def to_face_frame(self, points: np.ndarray) -> np.ndarray:
        """Mesh points (n, k, 3) in frame pixels -> the canonical face's frame and units (cm), with
        the head's rotation, position and size taken out."""
        p = np.asarray(points, np.float64) * _FLIP
        p = p - self.translation[:, None, :]
        return (p @ self.rotation) / self.scale[:, None, None]


def rotation_from_angles(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """R = R_y(yaw) R_x(-pitch) R_z(-roll) in the canonical frame (see the module's conventions)."""
    a, b, c = np.radians([yaw_deg, -pitch_deg, -roll_deg])
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


def angles_from_rotation(r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(yaw, pitch, roll) in degrees for rotations (n, 3, 3); inverse of :func:`rotation_from_angles`."""
    r = np.asarray(r, np.float64).reshape(-1, 3, 3)
    yaw = np.degrees(np.arctan2(r[:, 0, 2], r[:, 2, 2]))
    pitch = -np.degrees(np.arcsin(np.clip(-r[:, 1, 2], -1.0, 1.0)))
    roll = -np.degrees(np.arctan2(r[:, 1, 0], r[:, 1, 1]))
    return yaw, pitch, roll


def fit_similarity(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted Umeyama for n point sets: R (n,3,3), s (n,), t (n,3) with dst ~ s R src + t.
    ``src`` (k, 3) is shared; ``dst`` (n, k, 3); ``w`` (k,)."""
    return _fit_to(dst, *_source_terms(src, w))


def _source_terms(src: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The part of a fit that depends on the source points (k, 3) and weights (k,) alone: the
    normalised weights, the weighted mean ``mu_s``, ``ws0`` = w_k (src_k - mu_s) and the weighted
    variance ``var_s``."""
    w = np.asarray(w, np.float64) / np.sum(w)
    mu_s = w @ src
    s0 = src - mu_s
    return w, mu_s, s0 * w[:, None], float(w @ (s0**2).sum(1))


def _fit_to(dst: np.ndarray, w: np.ndarray, mu_s: np.ndarray, ws0: np.ndarray,
            var_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`fit_similarity` given the source's part (:func:`_source_terms`). As matrix products (numpy's 3-operand ``einsum`` was most of the pose fit's time for one face)."""
    mu_d = w @ dst  # (n, 3)
    cov = (dst - mu_d[:, None]).transpose(0, 2, 1) @ ws0  # sum_k w_k (d_k - mu_d) (s_k - mu_s)^T
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones((len(dst), 3))
    d[:, 2] = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    d[d[:, 2] == 0, 2] = 1.0
    rot = (u * d[:, None, :]) @ vt
    scale = (sig * d).sum(1) / max(var_s, 1e-12)
    t = mu_d - scale[:, None] * (rot @ mu_s)
    return rot, scale, t


@lru_cache(maxsize=4)
def _source_part(key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """The canonical face's fixed part of a fit: (point indices, normalised weights, mu_s, ws0,
    var_s) for the pose fit (``"pose"``, MediaPipe's Procrustes weights) or the measures' frame
    (``"stable"``, :data:`STABLE_POINTS`, equal weights)."""
    canon = canonical_face()
    if key == "pose":
        idx = np.flatnonzero(canon.weights)
        w = canon.weights[idx]
    else:
        idx = np.array(STABLE_POINTS)
        w = np.ones(len(idx))
    return (idx, *_source_terms(canon.vertices[idx], w))


#: Points the measures' frame is fitted on: the nose bridge (6, 168, 197, 195), the eye corners
#: (33, 133, 263, 362), the forehead (10, 151, 9, 108, 337, 67, 297) and the temples (54, 284, 21,
#: 251, 127, 356, 162, 389): points that expressions move least. MediaPipe's Procrustes weights
#: (the pose fit) also hold cheek, jaw-side and nose-wing points, which smiles and an opening jaw
#: move, and which then shift the frame the brows and mouth corners are measured in.
STABLE_POINTS: tuple[int, ...] = (6, 168, 197, 195, 33, 133, 263, 362, 10, 151, 9, 108, 337, 67, 297,
                                  54, 284, 21, 251, 127, 356, 162, 389)


def stable_face_frame(points: np.ndarray, canonical: CanonicalFace | None = None) -> np.ndarray:
    """Mesh points (n, 468, 3) in frame pixels -> the canonical face's frame and units (cm), by a
    similarity fit (equal weights) of the canonical face's :data:`STABLE_POINTS` to the mesh's: the
    frame the ``geo_*`` measures are computed in."""
    canon = canonical or canonical_face()
    pts = np.asarray(points, np.float64).reshape(-1, canon.vertices.shape[0], 3)
    if len(pts) == 0:
        return pts.copy()
    if canonical is None:
        idx, w, mu_s, ws0, var_s = _source_part("stable")
        rot, scale, t = _fit_to(pts[:, idx] * _FLIP, w, mu_s, ws0, var_s)
    else:
        idx = np.array(STABLE_POINTS)
        rot, scale, t = fit_similarity(canon.vertices[idx], pts[:, idx] * _FLIP, np.ones(len(idx)))
    # R^T (p - t) / s for every point: (p - t) @ R, row by row
    return ((pts * _FLIP - t[:, None, :]) @ rot) / scale[:, None, None]


def head_pose(points: np.ndarray, canonical: CanonicalFace | None = None) -> HeadPose:
    """Head pose of n faces from their mesh points (n, 468, 3) in frame pixels."""
    canon = canonical or canonical_face()
    pts = np.asarray(points, np.float64).reshape(-1, canon.vertices.shape[0], 3)
    if len(pts) == 0:
        z = np.zeros(0)
        return HeadPose(z, z, z, np.zeros((0, 3, 3)), z, np.zeros((0, 3)))
    if canonical is None:
        idx, w, mu_s, ws0, var_s = _source_part("pose")
        rot, scale, t = _fit_to(pts[:, idx] * _FLIP, w, mu_s, ws0, var_s)
    else:
        idx = np.flatnonzero(canon.weights)
        rot, scale, t = fit_similarity(canon.vertices[idx], pts[:, idx] * _FLIP, canon.weights[idx])
    yaw, pitch, roll = angles_from_rotation(rot)
    return HeadPose(yaw, pitch, roll, rot, scale, t)
