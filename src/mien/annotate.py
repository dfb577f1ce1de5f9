"""Annotated output: boxes, anonymous track ids and the top expression drawn on each frame of a
video (or on a still image, as a still), optionally with every face blurred (``--blur-faces``) so
it can be shared."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mien.errors import InputError
from mien.faces import Faces
from mien.schema import IMAGE_SUFFIXES
from mien.signals import uninterrupted

#: What ``--annotate`` may end in: a video, or, for a still-image input, a still.
VIDEO_ANNOTATION_SUFFIXES: tuple[str, ...] = (".mp4", ".mkv", ".mov")
STILL_ANNOTATION_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")

_PALETTE = [(66, 135, 245), (245, 130, 48), (60, 180, 75), (230, 25, 75), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128)]


def blur_regions(img: np.ndarray, boxes: np.ndarray, pad: float = 0.15) -> None:
    """Blur each box in place, strongly enough that a face is not recognisable."""
    h, w = img.shape[:2]
    for x1, y1, x2, y2 in boxes:
        bw, bh = x2 - x1, y2 - y1
        a, b = int(max(x1 - pad * bw, 0)), int(max(y1 - pad * bh, 0))
        c, d = int(min(x2 + pad * bw, w)), int(min(y2 + pad * bh, h))
        if c - a < 2 or d - b < 2:
            continue
        roi = img[b:d, a:c]
        small = cv2.resize(roi, (max(2, (c - a) // 12), max(2, (d - b) // 12)), interpolation=cv2.INTER_AREA)
        img[b:d, a:c] = cv2.GaussianBlur(
            cv2.resize(small, (c - a, d - b), interpolation=cv2.INTER_LINEAR), (0, 0), max(2.0, (c - a) / 20)
        )


def draw(img: np.ndarray, faces: Faces, blur: bool = False, mesh: np.ndarray | None = None) -> np.ndarray:
    """A copy of ``img`` with each face's box, track id and top expression (or "abstain"), and,
    when ``mesh`` (n, 468, 3) frame-pixel points is given, each face's mesh triangles."""
    out = img.copy()
    if blur and len(faces):
        blur_regions(out, faces.xyxy)
    if mesh is not None and len(mesh):
        from mien.geometry.pose import canonical_face

        tri = canonical_face().triangles
        for tid, pts in zip(faces.track_id, mesh):
            polys = np.round(pts[tri, :2]).astype(np.int32)
            cv2.polylines(out, list(polys), True, _PALETTE[int(tid) % len(_PALETTE)], 1, cv2.LINE_AA)
    probs = np.nan_to_num(faces.top_prob)
    for box, tid, label, p in zip(faces.xyxy, faces.track_id, faces.top_label, probs):
        color = _PALETTE[int(tid) % len(_PALETTE)]
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        text = f"#{int(tid)} {label} {p:.2f}" if label else f"#{int(tid)} (abstain)"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        y = max(y1 - 4, th + 4)
        cv2.rectangle(out, (x1, y - th - 4), (x1 + tw + 4, y + 2), color, -1)
        cv2.putText(out, text, (x1 + 2, y - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class AnnotatedVideoWriter:
    """H.264 (or MPEG-4 where libx264 is missing) writer timed by the source's PTS."""

    def __init__(self, path: str | Path, fps: float | None) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_ANNOTATION_SUFFIXES:
            raise InputError(f"--annotate {self.path}: an annotated video must end in .mp4, .mkv or .mov")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.part{self.path.suffix}")
        self.fps = fps or 30.0
        self._container: Any = None  # av.container.OutputContainer, opened on the first frame
        self._stream: Any = None
        self._last_pts = -1

    def _open(self, width: int, height: int) -> None:
        import av

        self._container = av.open(str(self.tmp), mode="w")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.width, self._stream.height = width - width % 2, height - height % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.time_base = Fraction(1, 1000)
        if codec == "libx264":
            self._stream.options = {"preset": "veryfast", "crf": "23"}

    def write(self, img: np.ndarray, time_s: float) -> None:
        import av

        if self._container is None:
            self._open(img.shape[1], img.shape[0])
        h, w = self._stream.height, self._stream.width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:h, :w]), format="bgr24")
        pts = max(int(round(time_s * 1000)), self._last_pts + 1)
        frame.pts, frame.time_base = pts, Fraction(1, 1000)
        self._last_pts = pts
        with uninterrupted():  # a stop between encode and mux would drop the packets it handed out
            for packet in self._stream.encode(frame):
                self._container.mux(packet)

    def abort(self) -> None:
        """The run failed: close the encoder and remove the temp file (no ``.part`` left behind)."""
        try:
            if self._container is not None:
                self._container.close()
        except Exception:  # noqa: BLE001 - the run's own error is what matters
            pass
        self._container = None
        self.tmp.unlink(missing_ok=True)

    def close(self) -> None:
        """Finish the video and move it into place (the frames written so far, even after a stop)."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        if self.path.exists():  # a rewrite keeps the existing file's permission bits
            self.tmp.chmod(self.path.stat().st_mode & 0o7777)
        self.tmp.replace(self.path)


class AnnotatedStillWriter:
    """The annotated frame of a still-image input, as a still (.jpg, .jpeg or .png), written
    atomically when the run finishes; the same interface as :class:`AnnotatedVideoWriter`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in STILL_ANNOTATION_SUFFIXES:
            raise InputError(f"--annotate {self.path}: an annotated still must end in .jpg, .jpeg or .png")
        self._image: np.ndarray | None = None

    def write(self, img: np.ndarray, time_s: float) -> None:
        self._image = img

    def abort(self) -> None:
        self._image = None

    def close(self) -> None:
        if self._image is None:
            return
        ok, data = cv2.imencode(self.path.suffix.lower(), self._image)
        if not ok:  # pragma: no cover - OpenCV encodes every suffix above
            raise InputError(f"--annotate {self.path}: OpenCV could not encode the image")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.part")
        tmp.write_bytes(data.tobytes())
        if self.path.exists():  # a rewrite keeps the existing file's permission bits
            tmp.chmod(self.path.stat().st_mode & 0o7777)
        tmp.replace(self.path)


def check_annotation(path: str | Path, source: str | int) -> bool:
    """True when ``--annotate PATH`` asks for a still; raises :class:`InputError` when it asks a
    still of a video or stream (checked before any work)."""
    if Path(path).suffix.lower() not in STILL_ANNOTATION_SUFFIXES:
        return False
    if Path(str(source)).suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"--annotate {path}: a still (.jpg/.png) annotates a still-image input; "
                         "for a video or stream name a .mp4, .mkv or .mov")
    return True


def annotation_writer(path: str | Path, source: str | int, fps: float) -> AnnotatedVideoWriter | AnnotatedStillWriter:
    """The writer ``--annotate PATH`` asks for: a still for a still-image source that names one
    (:func:`check_annotation`), a video otherwise."""
    return AnnotatedStillWriter(path) if check_annotation(path, source) else AnnotatedVideoWriter(path, fps)
