"""The 68-point dlib/iBUG 300-W subset of the 468-point mesh, for OpenFace-style pipelines.

The mapping was measured, not guessed: on the 18 faces of dlib's ``training_with_face_landmarks.xml``
(../shared/data/face_detection/dlib_faces), the mesh vertex nearest on average (in inter-ocular
units) to each of the 68 annotated points. ``bench/geometry.py`` reports the error on the held-out
``testing_with_face_landmarks.xml``. The jaw points (0-16) follow the visible outline in dlib's
scheme, so on turned faces they are the least faithful.
"""
from __future__ import annotations

import numpy as np

#: Mesh vertex for each iBUG-68 point (0-16 jaw, 17-26 brows, 27-35 nose, 36-47 eyes, 48-67 lips).
MESH_TO_IBUG68: tuple[int, ...] = (
    34, 227, 147, 213, 138, 136, 149, 176, 152, 377, 378, 394, 397, 435, 401, 366, 356,
    70, 63, 105, 66, 55, 336, 296, 334, 283, 276,
    168, 197, 195, 4, 75, 97, 2, 328, 460,
    7, 159, 158, 155, 153, 144, 382, 385, 386, 390, 373, 380,
    61, 39, 72, 0, 267, 304, 291, 405, 314, 17, 84, 181, 62, 38, 13, 268, 308, 316, 15, 86,
)


def to_ibug68(points: np.ndarray) -> np.ndarray:
    """The (n, 68, k) iBUG-ordered subset of mesh points (n, 468, k)."""
    return np.asarray(points)[:, list(MESH_TO_IBUG68)]
