"""Face geometry: MediaPipe's 468-point face mesh on tracked faces, 3-D head pose against the
canonical face, and named scale-free geometry measures (geometry, not FACS coding).

Modules: :mod:`mesh` (the network and the crop it expects), :mod:`pose` (rigid fit to the canonical
face), :mod:`measures` (``geo_*`` measures, per-track baselines, blink events), :mod:`landmarks68`
(the dlib/iBUG 68-point subset), :mod:`stills` (the largest face of a photo).
"""
from mien.geometry.landmarks68 import MESH_TO_IBUG68, to_ibug68
from mien.geometry.measures import MEASURES, blink_events, geometry_measures, measure_columns, track_deltas
from mien.geometry.mesh import FaceMesh, MeshResult
from mien.geometry.pose import HeadPose, canonical_face, head_pose, stable_face_frame

__all__ = [
    "MEASURES", "MESH_TO_IBUG68", "FaceMesh", "HeadPose", "MeshResult", "blink_events", "canonical_face",
    "geometry_measures", "head_pose", "measure_columns", "stable_face_frame", "to_ibug68", "track_deltas",
]
