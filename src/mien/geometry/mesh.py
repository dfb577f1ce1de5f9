"""MediaPipe Face Mesh on faces that are already tracked: no extra detection.

The network wants what MediaPipe's own graph gives it: a square crop around the face, turned so the
eye line is horizontal, 1.5x the face box (MediaPipe's ``RectTransformationCalculator`` scale for
detection-seeded crops), resized to 192x192, RGB in 0..1. Here the box centre comes from the tracked
RetinaFace detection of the same frame, and the crop's size and turn from the box and its eye points
or, for a tracked face, from its previous mesh (``sides``, ``angles``: :func:`mesh_box_sides`,
:func:`mesh_eye_angles`). The network runs the frame's faces one by one
(:data:`NETWORK_BATCH`: faster per face than one batch); the 468
points come back in frame pixels (x right, y down; z is the network's relative depth, scaled like x,
smaller = nearer the camera).
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from mien.errors import ModelError
from mien.manifest import file_sha256

INPUT_SIZE = 192
CROP_SCALE = 1.5
N_POINTS = 468
#: Faces per network call. One at a time is the fastest per face on a CPU: one face's first feature
#: maps (192x192x16 float32, 2.4 MB) about fill a core's L2 cache, and in batches of 4 or 8 the
#: network took 1.25-1.6x as long per face (``bench/geometry.py stage``); the outputs are the same.
NETWORK_BATCH = 1
#: The detector box side (longer side, of a full-size detection as on a still image) that a mesh
#: stands for: the longer side of its points' 2-D bounding box times this. Median over 345 faces of
#: eight shared clips (IQR 1.081-1.110; ``python bench/detect_phase.py --calibrate``). The engine
#: sizes a tracked face's next crop from its previous mesh with it (:func:`mesh_box_sides`).
MESH_BOX_RATIO = 1.0959


def default_card_path() -> Path:
    return Path(__file__).resolve().parents[1] / "models" / "face_mesh.json"


@dataclass
class MeshResult:
    """The mesh of n faces: points (n, 468, 3) in frame pixels and the face-presence score (n,)."""

    points: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.score)

    @classmethod
    def empty(cls) -> MeshResult:
        return cls(np.zeros((0, N_POINTS, 3), np.float32), np.zeros(0, np.float32))


def mesh_box_sides(points: np.ndarray) -> np.ndarray:
    """(n,) the face box side each mesh (n, 468, 3) stands for (:data:`MESH_BOX_RATIO`)."""
    # (n, 2, 468) contiguous: numpy reduces a strided middle axis about 25x slower (16 faces)
    xy = np.ascontiguousarray(np.asarray(points)[..., :2].transpose(0, 2, 1))
    return MESH_BOX_RATIO * (xy.max(-1).astype(np.float64) - xy.min(-1).astype(np.float64)).max(1)


#: The outer eye corners (image left, image right) whose line turns a crop made from a mesh, as in
#: MediaPipe's own landmark-seeded crops.
EYE_LINE_POINTS = (33, 263)


def mesh_eye_angles(points: np.ndarray) -> np.ndarray:
    """(n,) the angle (radians) of each mesh's eye line in the frame, as :func:`crop_transforms` reads it."""
    p = np.asarray(points, np.float64)
    eye = p[:, EYE_LINE_POINTS[1], :2] - p[:, EYE_LINE_POINTS[0], :2]
    return np.arctan2(eye[:, 1], eye[:, 0])


def crop_transforms(boxes: np.ndarray, landmarks5: np.ndarray, scale: float = CROP_SCALE,
                    sides: np.ndarray | None = None, angles: np.ndarray | None = None) -> np.ndarray:
    """Affine maps (n, 2, 3) from frame pixels to the 192-px network crop of each face.

    Centre: the box centre. Side: ``scale`` x the longer box side, or x ``sides`` where given and
    finite. Rotation: the eye line (RetinaFace points 0 and 1) made horizontal, as MediaPipe rotates
    its crops, or ``angles`` (radians) where given and finite. The engine passes a tracked face's
    previous mesh's :func:`mesh_box_sides` and :func:`mesh_eye_angles`.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    lm = np.asarray(landmarks5, np.float64).reshape(-1, 5, 2)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    box_side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    if sides is not None:
        sides = np.asarray(sides, np.float64).reshape(-1)
        box_side = np.where(np.isfinite(sides), sides, box_side)
    side = scale * box_side
    eye = lm[:, 1] - lm[:, 0]
    theta = np.arctan2(eye[:, 1], eye[:, 0])
    if angles is not None:
        angles = np.asarray(angles, np.float64).reshape(-1)
        theta = np.where(np.isfinite(angles), angles, theta)
    s = INPUT_SIZE / np.maximum(side, 1e-6)
    c, si = np.cos(theta) * s, np.sin(theta) * s
    m = np.empty((len(boxes), 2, 3))
    m[:, 0, 0], m[:, 0, 1] = c, si
    m[:, 1, 0], m[:, 1, 1] = -si, c
    m[:, :, 2] = INPUT_SIZE / 2 - np.einsum("nij,nj->ni", m[:, :, :2], centre)
    return m


def back_project(points: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Crop-pixel points (n, k, 3) to frame pixels with the inverse of each crop transform; z is
    scaled by the same factor as x and y."""
    a = transforms[:, :, :2]
    inv = np.linalg.inv(a)
    out = np.empty(points.shape, np.float64)
    # inv @ (p - t) for every point, as (p - t) @ inv^T
    np.matmul(points[..., :2] - transforms[:, None, :, 2], inv.transpose(0, 2, 1), out=out[..., :2])
    scale = 1.0 / np.sqrt(np.abs(np.linalg.det(a)))
    np.multiply(points[..., 2], scale[:, None], out=out[..., 2])
    return out


#: Frame pixels per face up to which the frame is converted to 4 channels before the crops are
#: warped: OpenCV's bilinear warp of a 4-channel image runs about 3x faster than of a 3-channel one
#: (the same samples and values; checked bit for bit in tests/test_geometry.py), about 0.5 ms less
#: per 192-px crop here, and the conversion costs about 1 ns a frame pixel, so it pays up to about
#: 500,000 pixels a face in isolation; in the engine a single face in a 640x360 frame gained
#: nothing measurable, so the frame is converted from two such faces on.
FOUR_CHANNEL_PIXELS_PER_FACE = 150_000


def crops_for(image_bgr: np.ndarray, transforms: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The network input (n, 192, 192, 3) float32 RGB 0..1 for each transform; written into
    ``out`` (a float32 array of at least n such crops, C-contiguous) when given, and returned as its
    first n crops."""
    n = len(transforms)
    if out is None or len(out) < n:
        out = np.empty((n, INPUT_SIZE, INPUT_SIZE, 3), np.float32)
    out = out[:n]
    if image_bgr.ndim == 2:
        image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
    four = image_bgr.shape[0] * image_bgr.shape[1] <= FOUR_CHANNEL_PIXELS_PER_FACE * len(transforms)
    source = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2BGRA) if four else image_bgr
    to_rgb = cv2.COLOR_BGRA2RGB if four else cv2.COLOR_BGR2RGB
    for i, m in enumerate(transforms):
        crop = cv2.warpAffine(source, m.astype(np.float32), (INPUT_SIZE, INPUT_SIZE),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
        # contiguous copies only (a reversed-channel view copies 3-4x slower)
        np.multiply(cv2.cvtColor(crop, to_rgb), np.float32(1.0 / 255.0), out=out[i], casting="unsafe")
    return out


class FaceMesh:
    """The converted Face Mesh network (ONNX Runtime), SHA-256 checked against its card at load."""

    def __init__(self, card: dict, onnx_path: Path, threads: int = 1) -> None:
        self.card = card
        self.onnx_path = onnx_path
        self.threads = threads
        self._session = None
        self._lock = threading.Lock()  # the engine may build the session in a background thread
        self._buffers = threading.local()  # each calling thread's crops, reused frame to frame

    @classmethod
    def load(cls, card_path: str | Path | None = None, threads: int = 1) -> FaceMesh:
        path = Path(card_path) if card_path is not None else default_card_path()
        if not path.is_file():
            raise ModelError(f"face mesh card {path} not found; reinstall mien")
        try:
            card = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"face mesh card {path} is not valid JSON ({exc}); reinstall mien")
        for key_file, key_sha in (("file", "sha256"), ("canonical_file", "canonical_sha256")):
            f = (path.parent / card[key_file]).resolve()
            if not f.is_file():
                raise ModelError(f"face mesh file {f} named by card {path} is missing; reinstall mien")
            digest = _cached_sha256(str(f), f.stat().st_mtime_ns)
            if digest != card[key_sha]:
                raise ModelError(
                    f"face mesh file {f} has SHA-256 {digest} but its card says {card[key_sha]}; the file "
                    "is corrupt or was replaced: reinstall mien or rerun scripts/convert_face_mesh.py"
                )
        return cls(card, (path.parent / card["file"]).resolve(), threads)

    @property
    def session(self):
        with self._lock:
            if self._session is None:
                from mien.runtime import make_session

                session = make_session(str(self.onnx_path), self.threads)  # always the CPU
                # the first runs allocate ONNX Runtime's buffers (tens of ms on a video's first
                # frame): pay that here, where the engine builds the session in the background
                x = np.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), np.float32)
                for _ in range(2):
                    session.run(None, {"input": x})
                self._session = session
            return self._session

    def run_crops(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw network output for crops (n, 192, 192, 3): points (n, 468, 3) in crop pixels, score (n,)."""
        if len(crops) == 0:
            return np.zeros((0, N_POINTS, 3), np.float32), np.zeros(0, np.float32)
        crops = np.ascontiguousarray(crops, np.float32)
        runs = [self.session.run(None, {"input": crops[i:i + NETWORK_BATCH]})
                for i in range(0, len(crops), NETWORK_BATCH)]
        lm = np.concatenate([r[0] for r in runs]) if len(runs) > 1 else runs[0][0]
        logit = np.concatenate([r[1] for r in runs]) if len(runs) > 1 else runs[0][1]
        score = 1.0 / (1.0 + np.exp(-logit[:, 0].astype(np.float64)))
        return lm.reshape(-1, N_POINTS, 3), score.astype(np.float32)

    def run(self, image_bgr: np.ndarray, boxes: np.ndarray, landmarks5: np.ndarray,
            scale: float = CROP_SCALE, sides: np.ndarray | None = None,
            angles: np.ndarray | None = None) -> MeshResult:
        """The mesh of each face given by its box (n, 4) xyxy and 5 RetinaFace points (n, 5, 2);
        ``sides``, ``angles``: crop sizes and turns to use instead of the boxes' and eye points'
        (see :func:`crop_transforms`)."""
        if len(boxes) == 0:
            return MeshResult.empty()
        m = crop_transforms(boxes, landmarks5, scale, sides, angles)
        # one buffer per thread, grown as needed: 16 faces' crops are 7 MB, which malloc serves
        # from fresh pages (mien.memory) and the kernel faults in again every frame
        buf = getattr(self._buffers, "crops", None)
        crops = crops_for(image_bgr, m, buf)
        if buf is None or len(crops) > len(buf):
            self._buffers.crops = crops
        pts, score = self.run_crops(crops)
        return MeshResult(back_project(pts.astype(np.float64), m).astype(np.float32), score)


@lru_cache(maxsize=8)
def _cached_sha256(path: str, mtime_ns: int) -> str:
    return file_sha256(Path(path))
