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
from typing import Any

import cv2
import numpy as np

from mien.ahead import run_ahead
from mien.errors import InputError
from mien.faces import Faces
from mien.options import INPUT_KINDS
from mien.outputs import display
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
    lost: int = 0  # files: frames in damaged packets, or announced but missing (truncated file)
    damaged_packets: int = 0
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
        return [int(str(spec)) if str(spec).isdigit() else str(spec)]
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


def rotate_upright(img: np.ndarray, rotation: float) -> np.ndarray:
    """Apply display-matrix rotation (PyAV's ``frame.rotation``, counter-clockwise degrees)."""
    r = (-int(round(rotation))) % 360  # degrees clockwise to display upright, as ffmpeg autorotate
    if r == 90:
        return cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    if r == 180:
        return cv2.rotate(img, cv2.ROTATE_180)
    if r == 270:
        return cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return img


def _open_container(spec: str, options: dict[str, str] | None = None,
                    timeout: float | tuple[float, float] | None = None, fmt: str | None = None) -> Any:
    import av

    try:
        kwargs: dict[str, Any] = {"options": options or {}}
        if timeout is not None:
            kwargs["timeout"] = timeout
        if fmt is not None:
            kwargs["format"] = fmt
        container = av.open(spec, **kwargs)
    except av.error.FileNotFoundError:
        raise InputError(f"{display(spec)}: no such file; check the path") from None
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(_explain_open_error(spec, exc, timeout[0] if isinstance(timeout, tuple) else timeout)) from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{spec}: holds no video stream; pass a video file, an image or a stream URL")
    return container


def _explain_open_error(spec: str, exc: Exception, timeout: float | None = None) -> str:
    # FFmpeg's message without the file name PyAV appends (the message names the input already)
    msg = (getattr(exc, "strerror", None) or str(exc)).strip().rstrip(".")
    if is_stream(spec):
        if "Immediate exit requested" in msg or "timed out" in msg.lower():
            limit = f"within the {timeout:g} s open timeout " if timeout else ""
            return (
                f"{spec}: no video arrived {limit}(the stream did not answer); check that the sender "
                "is running and reachable, and the protocol/port match"
            )
        return (
            f"{spec}: cannot open the stream ({msg}); check that the address is right, the sender "
            "is running and reachable, and the protocol/port match"
        )
    p = Path(spec)
    if isinstance(exc, PermissionError) or "Permission denied" in msg:
        return f"{display(spec)}: permission denied; check the file's permissions (ls -l) or run as a user who may read it"
    if p.is_file() and p.stat().st_size == 0:
        return f"{display(spec)}: the file is empty (0 bytes); re-copy or re-export the video"
    if "moov atom not found" in msg or "Invalid data" in msg:
        return (
            f"{spec}: not a readable video ({msg}); the file may be truncated, damaged or not a "
            "video at all; re-export it or check the download finished"
        )
    return f"{spec}: cannot be decoded as video ({msg}); check it plays in a media player"


DEFAULT_MAX_PIXELS = 50_000_000  # 50 MP: above 8K (33 MP); a 50 MP BGR frame is 150 MB (= AnalysisOptions.max_pixels)


def check_pixels(spec: str, width: int | None, height: int | None, max_pixels: int) -> None:
    """Refuse frames above ``max_pixels`` before any is decoded (``--max-pixels`` raises the limit)."""
    if not width or not height:
        return
    if width * height > max_pixels:
        raise InputError(
            f"{display(spec)}: {width}×{height} pixels ({width * height / 1e6:.0f} MP) is above the "
            f"{max_pixels / 1e6:g} MP limit; if the size is real, raise it with --max-pixels {width * height}"
        )


def _read_header(path: Path, n: int = 1 << 16) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(n)
    except PermissionError:
        raise InputError(f"{display(path)}: permission denied; check the file's permissions (ls -l) "
                         "or run as a user who may read it") from None
    except OSError as exc:
        raise InputError(f"{display(path)}: cannot be read ({exc.strerror or exc})") from None


def image_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the first bytes of a PNG, JPEG, BMP, WebP or TIFF file; None if unknown.

    Read from the header alone, so an image claiming 100000×100000 pixels is refused without
    allocating them."""
    import struct

    try:
        if head[:8] == b"\x89PNG\r\n\x1a\n":
            w, h = struct.unpack(">II", head[16:24])
            return int(w), int(h)
        if head[:2] == b"BM":
            w, h = struct.unpack("<ii", head[18:26])
            return abs(int(w)), abs(int(h))
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            kind = head[12:16]
            if kind == b"VP8X":
                return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
            if kind == b"VP8 ":
                w, h = struct.unpack("<HH", head[26:30])
                return w & 0x3FFF, h & 0x3FFF
            if kind == b"VP8L":
                b = int.from_bytes(head[21:25], "little")
                return (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
        if head[:2] == b"\xff\xd8":
            i = 2
            while i + 9 < len(head):
                if head[i] != 0xFF:
                    i += 1
                    continue
                marker = head[i + 1]
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                    i += 1 if marker == 0xFF else 2
                    continue
                length = struct.unpack(">H", head[i + 2:i + 4])[0]
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    h, w = struct.unpack(">HH", head[i + 5:i + 9])
                    return int(w), int(h)
                i += 2 + length
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            e = "<" if head[:2] == b"II" else ">"
            off = struct.unpack(e + "I", head[4:8])[0]
            n = struct.unpack(e + "H", head[off:off + 2])[0]
            dims: dict[int, int] = {}
            for k in range(n):
                tag, typ, _cnt = struct.unpack(e + "HHI", head[off + 2 + 12 * k:off + 10 + 12 * k])
                raw = head[off + 10 + 12 * k:off + 14 + 12 * k]
                val = struct.unpack(e + ("H" if typ == 3 else "I"), raw[:2] if typ == 3 else raw)[0]
                dims[tag] = int(val)
            if 256 in dims and 257 in dims:
                return dims[256], dims[257]
    except (struct.error, IndexError):
        return None
    return None


def _y4m_size(head: bytes) -> tuple[int, int] | None:
    if not head.startswith(b"YUV4MPEG2"):
        return None
    line = head.split(b"\n", 1)[0].split()
    size = {t[:1]: t[1:] for t in line[1:] if t[:1] in (b"W", b"H")}
    try:
        return int(size[b"W"]), int(size[b"H"])
    except (KeyError, ValueError):
        return None


class VideoFileSource:
    """Frames of a video file (or a file served over HTTP), decoded with FFmpeg (PyAV) in a
    background thread.

    Packets are decoded one by one: a damaged packet is skipped and counted (``stats.lost``), and
    decoding carries on with the next, as ffmpeg does; frames the container announces but never
    delivers (a truncated file) are counted as lost too. The decode queue is bounded in bytes
    (``queue_bytes``), so a 4K video holds no more frame memory than a small one.
    """

    def __init__(
        self,
        path: str,
        selector: FrameSelector | None = None,
        queue_size: int = 8,
        prepare: Callable[[Frame], None] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        container: Any = None,
        queue_bytes: int = 64 << 20,
    ) -> None:
        self.spec = str(path)
        if container is None:
            p = Path(path)
            if not p.exists():
                raise InputError(f"{display(path)}: no such file; check the path")
            if p.is_file() and p.stat().st_size == 0:
                raise InputError(f"{display(path)}: the file is empty (0 bytes); re-copy or re-export the video")
            head = _read_header(p, 4096)
            y4m = _y4m_size(head)
            if y4m is not None:
                check_pixels(self.spec, *y4m, max_pixels)
            container = _open_container(self.spec)
        self.selector = selector or FrameSelector()
        self.prepare = prepare  # runs in the decode thread (e.g. face detection ahead of analysis)
        self.stats = SourceStats()
        self._container: Any = container
        stream = self._container.streams.video[0]
        self._stream = stream
        self.stats.expected_frames = int(stream.frames) or None
        rate = stream.average_rate or stream.guessed_rate
        self.stats.fps = float(rate) if rate else None
        self.stats.codec = stream.codec_context.name
        self.stats.width, self.stats.height = stream.codec_context.width, stream.codec_context.height
        try:
            check_pixels(self.spec, self.stats.width, self.stats.height, max_pixels)
        except InputError:
            self.close()
            raise
        frame_bytes = 3 * (self.stats.width or 640) * (self.stats.height or 360)
        # at least 2 frames so decode overlaps analysis; at most queue_size
        self.queue_size = max(2, min(queue_size, queue_bytes // max(frame_bytes, 1)))
        # frame threading keeps one decoded frame per thread in flight: few threads for big frames
        stream.thread_type = "AUTO"
        if frame_bytes > 8 << 20:
            stream.codec_context.thread_count = 2

    def close(self) -> None:
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - closing a broken container must not mask results
            pass

    def _packets_decoded(self) -> Iterator[object]:
        """Video frames, packet by packet: damaged packets are skipped and counted."""
        import av

        stream = self._stream
        packets = 0
        try:
            for packet in self._container.demux(stream):
                if packet.size or packet.dts is not None:  # the last, empty one flushes the decoder
                    packets += 1
                try:
                    decoded = stream.decode(packet)
                except av.error.FFmpegError:
                    self.stats.damaged_packets += 1
                    continue
                yield from decoded
        except av.error.FFmpegError as exc:
            self.stats.warnings.append(
                f"{display(self.spec)}: reading stopped after {packets} packets ({exc}); "
                "the file is probably truncated or damaged — results cover the frames before it"
            )
        exp = self.stats.expected_frames
        missing = max(0, exp - packets) if exp else 0
        self.stats.lost = self.stats.damaged_packets + missing
        if self.stats.lost and exp:
            # once damage is certain, every announced frame that did not decode is lost (a decoder
            # also swallows the frames around a bad packet); without damage a small shortfall is
            # the container's edit list at work, not a loss
            self.stats.lost = max(self.stats.lost, exp - self.stats.decoded)
        if self.stats.damaged_packets:
            self.stats.warnings.append(
                f"{display(self.spec)}: {self.stats.damaged_packets} damaged packet(s) skipped; "
                "the file is damaged — results cover the frames that decoded"
            )
        if missing:
            self.stats.warnings.append(
                f"{display(self.spec)}: {missing} of the {exp} frames the container announces are missing; "
                "the file is probably truncated — results cover the frames decoded"
            )

    def _decode(self) -> Iterator[Frame]:
        index = -1
        t0 = None
        to_bgr = BgrConverter()
        for vf in self._packets_decoded():
            index += 1
            self.stats.decoded += 1
            if vf.time is not None:  # type: ignore[attr-defined]
                t = float(vf.time)  # type: ignore[attr-defined]
            elif self.stats.fps:
                t = index / self.stats.fps
            else:
                t = float(index)
            if t0 is None:
                t0 = t
            t -= t0  # time since the first frame; some containers start at an offset
            if not self.selector.take(index, t):
                continue
            img = to_bgr(vf)
            rot = getattr(vf, "rotation", 0) or 0
            if rot:
                self.stats.rotation = int(rot)
                img = rotate_upright(img, rot)
            self.stats.yielded += 1
            fr = Frame(index, t, img)
            if self.prepare is not None:
                self.prepare(fr)
            yield fr

    def __iter__(self) -> Iterator[Frame]:
        try:
            yield from run_ahead(self._decode(), self.queue_size, name="mien-decoder")
        finally:
            self.close()


class ImageSource:
    """A still image as a one-frame source; its size is read from the header and checked against
    ``max_pixels`` before it is decoded."""

    def __init__(self, path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.spec = str(path)
        self.stats = SourceStats(expected_frames=1)
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{display(path)}: no such file; check the path")
        head = _read_header(p)
        if not head:
            raise InputError(f"{display(path)}: the file is empty (0 bytes); re-copy or re-export the image")
        size = image_size(head)
        if size is not None:
            check_pixels(self.spec, *size, max_pixels)
        img = read_image(p)
        self._image = img
        self.stats.height, self.stats.width = img.shape[:2]
        check_pixels(self.spec, self.stats.width, self.stats.height, max_pixels)

    def __iter__(self) -> Iterator[Frame]:
        self.stats.decoded = self.stats.yielded = 1
        yield Frame(0, 0.0, self._image)

    def close(self) -> None:
        pass


def read_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to BGR (EXIF orientation applied); one-line errors for bad files.

    The size in the header is checked against ``max_pixels`` first; OpenCV's own failures (a
    header that lies, an unsupported variant) become :class:`InputError`."""
    p = Path(path)
    size = image_size(_read_header(p))
    if size is not None:
        check_pixels(str(p), *size, max_pixels)
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None  # applies EXIF orientation
    except (cv2.error, OSError, MemoryError) as exc:
        raise InputError(f"{display(p)}: cannot be decoded as an image ({str(exc).strip()[:120]}); "
                         "check it is a valid image file") from None
    if img is None:
        raise InputError(f"{display(p)}: cannot be read as an image; check it is a valid image file")
    return img


class StreamSource:
    """A live source (webcam index or network URL).

    A reader thread decodes continuously into a short buffer: when analysis is slower than the
    stream, the oldest frames are dropped (and counted) rather than falling behind. ``prepare``
    runs on each frame in that thread before it is buffered (the engine's scheduled full-frame
    detection, as for files: it overlaps the analysis of earlier frames).
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
        container: Any = None,
        prepare: Callable[[Frame], None] | None = None,
    ) -> None:
        self.spec = str(spec)
        self.prepare = prepare
        self.selector = selector or FrameSelector()
        self.stats = SourceStats()
        self.max_frames, self.max_seconds = max_frames, max_seconds
        self.buffer_frames = max(1, int(buffer_frames))
        self.read_timeout = read_timeout
        self._container: Any
        if container is not None:
            self._container = container
        elif isinstance(spec, int) or str(spec).isdigit():
            device = f"/dev/video{int(spec)}"
            if not Path(device).exists():
                raise InputError(f"webcam {spec}: {device} does not exist; check the camera index")
            self._container = _open_container(device, fmt="v4l2")
        else:
            self._container = open_stream_container(self.spec, min(open_timeout, max_seconds or open_timeout),
                                                    read_timeout)
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
        # --max-seconds counts from here, once the stream is open (opening waits at most the open
        # timeout or max_seconds, whichever is shorter); it holds even when no frame comes
        start = time.perf_counter()

        failure: list[Exception] = []

        def reader() -> None:
            index = -1
            to_bgr = BgrConverter()
            try:
                for vf in self._container.decode(self._stream):
                    if self._stop.is_set():
                        break
                    index += 1
                    self.stats.decoded += 1
                    t = float(vf.time) if vf.time is not None else time.perf_counter() - start
                    if not self.selector.take(index, t):
                        continue
                    fr = Frame(index, t, rotate_upright(to_bgr(vf), vf.rotation or 0))
                    if self.prepare is not None:
                        self.prepare(fr)
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
                    if "Immediate exit requested" in str(exc):
                        why = f"no data for {self.read_timeout:g} s (the read timeout)"
                    else:
                        why = f"an error: {exc}"
                    self.stats.warnings.append(f"{display(self.spec)}: stream ended with {why}")
            except Exception as exc:  # noqa: BLE001 - from ``prepare``: re-raised in the consumer
                failure.append(exc)
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
                try:
                    # wake up at least every 0.2 s, so --max-seconds holds when no frame comes
                    fr = latest.get(timeout=0.2)
                except queue.Empty:
                    if self.max_seconds is not None and time.perf_counter() - start >= self.max_seconds:
                        break
                    continue
                if fr is None:
                    if failure:
                        raise failure[0]
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
            # the reader leaves within the read timeout; a run with --max-seconds does not wait for it
            th.join(timeout=1.0 if self.max_seconds is not None else self.read_timeout + 5.0)


class BgrConverter:
    """Decoded video frames to BGR arrays through one reused FFmpeg scaler: ``to_ndarray(format=)``
    builds a new one for every frame, which cost about 0.9 ms a 640x360 frame here (decode-only
    490-530 frames/s against 860-910 reused; the arrays are identical). Sizes or pixel formats
    that change mid-stream get a new scaler from PyAV."""

    def __init__(self) -> None:
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()

    def __call__(self, frame: Any) -> np.ndarray:
        out: np.ndarray = self._reformatter.reformat(frame, format="bgr24").to_ndarray()
        return out


def open_stream_container(spec: str, open_timeout: float, read_timeout: float) -> Any:
    opts = {}
    if spec.startswith(("rtsp://", "rtsps://")):
        opts["rtsp_transport"] = "tcp"
    return _open_container(spec, opts, timeout=(open_timeout, read_timeout))


def served_file(container: Any) -> bool:
    """True when an opened URL is a finite file (a duration is known and it is not an endless
    multipart/MJPEG stream): such a source is read frame by frame, none dropped."""
    duration = getattr(container, "duration", None)
    fmt = getattr(getattr(container, "format", None), "name", "") or ""
    live_formats = {"mpjpeg", "mjpeg", "rtsp", "rtp", "sdp"}
    return bool(duration and duration > 0) and not live_formats & set(fmt.split(","))


def open_source(
    spec: str | int,
    selector: FrameSelector | None = None,
    prepare: Callable[[Frame], None] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    input_kind: str = "auto",
    **stream_options: Any,
) -> VideoFileSource | ImageSource | StreamSource:
    """The right source for ``spec`` (video file, image file, webcam index or stream URL).

    An http(s) URL is opened once and probed: a file served over HTTP (finite duration) is read
    like a local file, every frame decoded; an endless stream is read live (frames dropped to keep
    up, and counted). ``input_kind`` ("file" or "live") overrides the probe."""
    if input_kind not in INPUT_KINDS:
        raise InputError(f"--input-kind must be one of {', '.join(INPUT_KINDS)}, not {input_kind!r}")
    if is_stream(spec):
        s = str(spec)
        url = not s.isdigit()
        if url and input_kind != "live" and (input_kind == "file" or s.lower().startswith(("http://", "https://"))):
            container = open_stream_container(s, float(stream_options.get("open_timeout") or 10.0),
                                               float(stream_options.get("read_timeout") or 10.0))
            if input_kind == "file" or served_file(container):
                return VideoFileSource(s, selector, prepare=prepare, max_pixels=max_pixels, container=container)
            return StreamSource(spec, selector, container=container, prepare=prepare, **stream_options)
        return StreamSource(spec, selector, prepare=prepare, **stream_options)
    if input_kind == "live":
        raise InputError(f"{display(str(spec))}: --input-kind live needs a webcam index or a stream URL")
    if Path(str(spec)).suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(str(spec), max_pixels=max_pixels)
    return VideoFileSource(str(spec), selector, prepare=prepare, max_pixels=max_pixels)
