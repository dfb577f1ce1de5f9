"""Per-face quality: size, detector score, sharpness and a head-pose proxy, and the abstention rule.

mien does not guess on faces it cannot see well: below any threshold the face stays in the results
with ``abstain=True`` and the reasons, and no expression is given for it.
"""
from __future__ import annotations

import cv2
import numpy as np

from mien.faces import Faces
from mien.options import QualityThresholds


def pose_from_landmarks(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Yaw and roll proxies (degrees) from 5 points (n,5,2).

    Roll is the angle of the eye line. Yaw comes from how far the nose tip sits from the eyes' and
    mouth corners' midline, relative to half their spread: 0 for a frontal face, ±90 in profile.
    """
    lm = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    le, re, nose, lmo, rmo = (lm[:, i] for i in range(5))
    eye_vec = re - le
    roll = np.degrees(np.arctan2(eye_vec[:, 1], eye_vec[:, 0]))
    axis = eye_vec / (np.linalg.norm(eye_vec, axis=1, keepdims=True) + 1e-9)
    mid = (le + re + lmo + rmo) / 4
    half = (np.linalg.norm(eye_vec, axis=1) + np.linalg.norm(rmo - lmo, axis=1)) / 4
    offset = ((nose - mid) * axis).sum(1) / (half + 1e-9)
    yaw = np.degrees(np.arcsin(np.clip(offset, -1, 1)))
    return yaw, roll


def sharpness(crops: np.ndarray) -> np.ndarray:
    """Variance of the Laplacian of each crop (n,S,S) over the crop's own variance.

    Dividing by the crop's variance makes the measure contrast-invariant (a dark but sharp face is
    not "blurred"), matching the model, which standardises each crop. Low means blurred.
    """
    out = np.empty(len(crops), dtype=np.float64)
    for i, c in enumerate(crops):
        out[i] = cv2.Laplacian(c, cv2.CV_32F).var() / (float(c.astype(np.float32).var()) + 1.0)
    return out


def assess(faces: Faces, crops: np.ndarray, thresholds: QualityThresholds) -> Faces:
    """``faces`` with their quality columns and abstention set; ``crops`` (n,S,S) are their aligned crops."""
    face_px = faces.sizes.astype(np.float64)
    sharp = sharpness(crops)
    yaw, roll = pose_from_landmarks(faces.landmarks)
    checks = (
        ("small_face", face_px < thresholds.min_face_px),
        ("low_score", faces.score < thresholds.min_det_score),
        ("blurred", sharp < thresholds.min_sharpness),
        ("profile", np.abs(yaw) > thresholds.max_abs_yaw_deg),
    )
    reasons = [";".join(name for name, bad in checks if bad[i]) for i in range(len(face_px))]
    abstain = np.array([bool(r) for r in reasons], dtype=bool)
    return faces.replace(face_px=face_px, sharpness=sharp, yaw_deg=yaw, roll_deg=roll, abstain=abstain,
                         abstain_reason=np.asarray(reasons, dtype=object))
