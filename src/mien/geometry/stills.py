"""Geometry of the largest face in a still image (validation sets, audits)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mien.detection import FaceDetector
from mien.geometry.measures import geometry_measures
from mien.geometry.mesh import FaceMesh
from mien.geometry.pose import HeadPose, head_pose, stable_face_frame


@dataclass
class FaceGeometry:
    points: np.ndarray  # (468, 3) frame pixels
    score: float
    pose: HeadPose  # of this one face
    measures: dict[str, float]
    box: np.ndarray


def largest_face_geometry(image_bgr: np.ndarray, detector: FaceDetector, mesh: FaceMesh) -> FaceGeometry | None:
    """Mesh, pose and ``geo_*`` measures of the image's largest detected face; None without a face."""
    det = detector.detect(image_bgr)
    if len(det) == 0:
        return None
    wh = det.xyxy[:, 2:] - det.xyxy[:, :2]
    j = int(np.argmax(wh[:, 0] * wh[:, 1]))
    res = mesh.run(image_bgr, det.xyxy[j:j + 1], det.landmarks[j:j + 1])
    pose = head_pose(res.points)
    meas = geometry_measures(stable_face_frame(res.points))
    return FaceGeometry(res.points[0], float(res.score[0]), pose, {k: float(v[0]) for k, v in meas.items()},
                        det.xyxy[j])
