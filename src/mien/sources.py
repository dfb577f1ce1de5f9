"""Frame sources: video files (any container/codec FFmpeg decodes), still images, folders, and
live streams (webcam index, rtsp/udp/tcp/http URLs).

Every source yields :class:`Frame` objects one at a time; nothing ever holds a whole video in
memory. Times come from the container's presentation timestamps (PTS) in seconds, so variable
frame rate video is timed correctly. Rotation metadata is applied, so faces are upright.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mien.errors import InputError
from mien.faces import Faces
from mien.schema import IMAGE_SUFFIXES, VIDEO_SUFFIXES

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "udp://", "tcp://", "http://", "https://", "srt://")


@dataclass
class Frame:
    """One decoded frame, upright, BGR uint8."""

    index: int  # index among decoded frames of the source
    time_s: float  # presentation time in seconds
    image: np.ndarray
    arrival: float = field(default_factory=time.perf_counter)  # when it left the decoder
    detections: Faces | None = None  # faces found ahead of time in the decode thread, if any


@dataclass
class SourceStats:
    """What happened while reading a source (reported in the manifest)."""

    decoded: int = 0
    yielded: int = 0
    dropped: int = 0  # live: frames skipped to keep up
    expected_frames: int | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    codec: str | None = None
    warnings: list[str] = field(default_factory=list)


def is_stream(spec: str | int) -> bool:
    if isinstance(spec, int):
        return True
    s = str(spec)
    return s.isdigit() or s.lower().startswith(STREAM_SCHEMES)


def expand_inputs(spec: str | os.PathLike | int) -> list[str | int]:
    """The sources named by ``spec``: a file, a stream, or every video/image in a folder (sorted)."""
    if isinstance(spec, int) or is_stream(str(spec)):
        return [int(spec) if str(spec).isdigit() else str(spec)]
    path = Path(spec)
    if path.is_dir():
        items = sorted(
            p for p in path.iterdir()
            if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES
        )
        if not items:
            raise InputError(
                f"{path}: folder holds no video or image files "
                f"(looked for {', '.join(sorted(VIDEO_SUFFIXES | IMAGE_SUFFIXES))})"
            )
        return [str(p) for p in items]
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    return [str(path)]


class FrameSelector:
    """Which decoded frames to analyse: every ``stride``-th, or at most ``fps`` per second."""

    def __init__(self, stride: int = 1, fps: float | None = None) -> None:
        if stride < 1:
            raise InputError(f"--stride must be ≥ 1, got {stride}")
        if fps is not None and fps <= 0:
            raise InputError(f"--fps must be > 0, got {fps}")
        self.stride, self.fps = int(stride), fps
        self._next_t: float | None = None

    def take(self, index: int, time_s: float) -> bool:
        if self.fps is not None:
            if self._next_t is None or time_s >= self._next_t - 1e-6:
                base = time_s if self._next_t is None else self._next_t
                self._next_t = base + 1.0 / self.fps
                if self._next_t <= time_s:  # after a gap, restart the grid
                    self._next_t = time_s + 1.0 / self.fps
                return True
            return False
        return index % self.stride == 0


def _rotate(img: np.ndarray, rotation: int) -> np.ndarray:
    """Apply display-matrix rotation (PyAV's ``frame.rotation``, counter-clockwise degrees)."""
    r = (-int(round(rotation))) % 360  # degrees clockwise to display upright, as ffmpeg autorotate
    if r == 90:
        return cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    if r == 180:
        return cv2.rotate(img, cv2.ROTATE_180)
    if r == 270:
        return cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return img


def _open_container(spec: str, options: dict | None = None, timeout: float | None = None, fmt=None):
    import av

    try:
        kwargs = {"options": options or {}}
        if timeout is not None:
            kwargs["timeout"] = timeout
        if fmt is not None:
            kwargs["format"] = fmt
        container = av.open(spec, **kwargs)
    except av.error.FileNotFoundError:
        raise InputError(f"{spec}: no such file; check the path") from None
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(_explain_open_error(spec, exc)) from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{spec}: holds no video stream; pass a video file, an image or a stream URL")
    return container


def _explain_open_error(spec: str, exc: Exception) -> str:
    msg = str(exc).strip().rstrip(".")
    if is_stream(spec):
        return (
            f"{spec}: cannot open the stream ({msg}); check that the address is right, the sender "
            "is running and reachable, and the protocol/port match"
        )
    p = Path(spec)
    if p.is_file() and p.stat().st_size == 0:
        return f"{spec}: the file is empty (0 bytes); re-copy or re-export the video"
    if "moov atom not found" in msg or "Invalid data" in msg:
        return (
            f"{spec}: not a readable video ({msg}); the file may be truncated, damaged or not a "
            "video at all; re-export it or check the download finished"
        )
    return f"{spec}: cannot be decoded as video ({msg}); check it plays in a media player"


class VideoFileSource:
    """Frames of a video file, decoded with FFmpeg (PyAV) in a background thread."""

    def __init__(
        self,
        path: str,
        selector: FrameSelector | None = None,
        queue_size: int = 8,
        prepare: Callable[[Frame], None] | None = None,
    ) -> None:
        p = Path(path)
        if not p.exists():
            raise InputError(f"{path}: no such file; check the path")
        if p.is_file() and p.stat().st_size == 0:
            raise InputError(f"{path}: the file is empty (0 bytes); re-copy or re-export the video")
        self.spec = str(path)
        self.selector = selector or FrameSelector()
        self.queue_size = queue_size
        self.prepare = prepare  # runs in the decode thread (e.g. face detection ahead of analysis)
        self.stats = SourceStats()
        self._container = _open_container(self.spec)
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._stream = stream
        self.stats.expected_frames = int(stream.frames) or None
        rate = stream.average_rate or stream.guessed_rate
        self.stats.fps = float(rate) if rate else None
        self.stats.codec = stream.codec_context.name
        self.stats.width, self.stats.height = stream.codec_context.width, stream.codec_context.height

    def close(self) -> None:
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - closing a broken container must not mask results
            pass

    def _decode(self) -> Iterator[Frame]:
        import av

        index = -1
        t0 = None
        try:
            for vf in self._container.decode(self._stream):
                index += 1
                self.stats.decoded += 1
                if vf.time is not None:
                    t = float(vf.time)
                elif self.stats.fps:
                    t = index / self.stats.fps
                else:
                    t = float(index)
                if t0 is None:
                    t0 = t
                t -= t0  # time since the first frame; some containers start at an offset
                if not self.selector.take(index, t):
                    continue
                img = vf.to_ndarray(format="bgr24")
                rot = getattr(vf, "rotation", 0) or 0
                if rot:
                    self.stats.rotation = int(rot)
                    img = _rotate(img, rot)
                self.stats.yielded += 1
                fr = Frame(index, t, img)
                if self.prepare is not None:
                    self.prepare(fr)
                yield fr
        except av.error.FFmpegError as exc:
            self.stats.warnings.append(
                f"{self.spec}: decoding stopped after {self.stats.decoded} frames ({exc}); "
                "the file is probably truncated or damaged — results cover the frames before it"
            )
        exp = self.stats.expected_frames
        if exp and self.stats.decoded < 0.9 * exp and not self.stats.warnings:
            self.stats.warnings.append(
                f"{self.spec}: decoded {self.stats.decoded} of {exp} frames the container announces; "
                "the file is probably truncated — results cover the frames decoded"
            )

    def __iter__(self) -> Iterator[Frame]:
        try:
            yield from _threaded(self._decode(), self.queue_size)
        finally:
            self.close()


class ImageSource:
    """A still image as a one-frame source."""

    def __init__(self, path: str) -> None:
        self.spec = str(path)
        self.stats = SourceStats(expected_frames=1)
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{path}: no such file; check the path")
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)  # applies EXIF orientation
        if img is None:
            raise InputError(f"{path}: cannot be read as an image; check it is a valid image file")
        self._image = img
        self.stats.height, self.stats.width = img.shape[:2]

    def __iter__(self) -> Iterator[Frame]:
        self.stats.decoded = self.stats.yielded = 1
        yield Frame(0, 0.0, self._image)

    def close(self) -> None:
        pass


class StreamSource:
    """A live source (webcam index or network URL).

    A reader thread decodes continuously into a short buffer: when analysis is slower than the
    stream, the oldest frames are dropped (and counted) rather than falling behind.
    """

    def __init__(
        self,
        spec: str | int,
        selector: FrameSelector | None = None,
        open_timeout: float = 10.0,
        read_timeout: float = 10.0,
        max_frames: int | None = None,
        max_seconds: float | None = None,
        buffer_frames: int = 4,
    ) -> None:
        self.spec = str(spec)
        self.selector = selector or FrameSelector()
        self.stats = SourceStats()
        self.max_frames, self.max_seconds = max_frames, max_seconds
        self.buffer_frames = max(1, int(buffer_frames))
        if isinstance(spec, int) or str(spec).isdigit():
            device = f"/dev/video{int(spec)}"
            if not Path(device).exists():
                raise InputError(f"webcam {spec}: {device} does not exist; check the camera index")
            self._container = _open_container(device, fmt="v4l2")
        else:
            opts = {}
            if self.spec.startswith(("rtsp://", "rtsps://")):
                opts["rtsp_transport"] = "tcp"
            self._container = _open_container(self.spec, opts, timeout=(open_timeout, read_timeout))
        stream = self._container.streams.video[0]
        stream.thread_type = "SLICE"  # frame threading would hold frames back (latency)
        self._stream = stream
        self.stats.codec = stream.codec_context.name
        self._stop = threading.Event()

    def close(self) -> None:
        self._stop.set()

    def __iter__(self) -> Iterator[Frame]:
        import av

        # A short queue absorbs the bursts in which network video arrives; when it is full the
        # oldest frame is dropped, so latency stays bounded by a few frame intervals.
        latest: queue.Queue[Frame | None] = queue.Queue(maxsize=self.buffer_frames)
        start = time.perf_counter()

        def reader() -> None:
            index = -1
            try:
                for vf in self._container.decode(self._stream):
                    if self._stop.is_set():
                        break
                    index += 1
                    self.stats.decoded += 1
                    t = float(vf.time) if vf.time is not None else time.perf_counter() - start
                    if not self.selector.take(index, t):
                        continue
                    fr = Frame(index, t, _rotate(vf.to_ndarray(format="bgr24"), vf.rotation or 0))
                    try:
                        latest.put_nowait(fr)
                    except queue.Full:
                        try:
                            latest.get_nowait()
                            self.stats.dropped += 1
                        except queue.Empty:
                            pass
                        latest.put_nowait(fr)
            except (av.error.FFmpegError, OSError) as exc:
                if not self._stop.is_set():
                    self.stats.warnings.append(f"{self.spec}: stream ended with an error ({exc})")
            finally:
                # the reader owns the container: closing it from another thread mid-decode crashes FFmpeg
                try:
                    self._container.close()
                except Exception:  # noqa: BLE001
                    pass
                while True:
                    try:
                        latest.put(None, timeout=0.1)
                        break
                    except queue.Full:
                        if self._stop.is_set():
                            break

        th = threading.Thread(target=reader, name="mien-stream-reader", daemon=True)
        th.start()
        t_first: float | None = None
        try:
            while True:
                fr = latest.get()
                if fr is None:
                    break
                if t_first is None:
                    t_first = fr.time_s
                fr.time_s -= t_first
                self.stats.yielded += 1
                yield fr
                if self.max_frames is not None and self.stats.yielded >= self.max_frames:
                    break
                if self.max_seconds is not None and time.perf_counter() - start >= self.max_seconds:
                    break
        finally:
            self._stop.set()
            th.join(timeout=15.0)


def _threaded(it: Iterator[Frame], maxsize: int) -> Iterator[Frame]:
    """Run a frame iterator in its own thread behind a bounded queue (decode overlaps analysis)."""
    q: queue.Queue = queue.Queue(maxsize=maxsize)
    stop = threading.Event()
    sentinel = object()
    error: list[BaseException] = []

    def work() -> None:
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            error.append(exc)
        finally:
            while not stop.is_set():
                try:
                    q.put(sentinel, timeout=0.1)
                    break
                except queue.Full:
                    continue

    th = threading.Thread(target=work, name="mien-decoder", daemon=True)
    th.start()
    try:
        while True:
            item = q.get()
            if item is sentinel:
                break
            yield item
        if error:
            raise error[0]
    finally:
        stop.set()
        th.join(timeout=5.0)


def open_source(
    spec: str | int,
    selector: FrameSelector | None = None,
    prepare: Callable[[Frame], None] | None = None,
    **stream_options: float,
) -> VideoFileSource | ImageSource | StreamSource:
    """The right source for ``spec`` (video file, image file, webcam index or stream URL)."""
    if is_stream(spec):
        return StreamSource(spec, selector, **stream_options)  # type: ignore[arg-type]
    if Path(str(spec)).suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(str(spec))
    return VideoFileSource(str(spec), selector, prepare=prepare)
