"""Checks on an uploaded file before it is queued: is it a video or an image mien can read?

A file passes when its name ends in a suffix mien analyses and its content decodes: FFmpeg
(PyAV) finds a video stream and decodes a first frame of it, and images also decode with OpenCV
(which mien reads them with). Everything else is refused with a message naming the file, so no
job is queued for it. Only the stored copy is opened; the user's file name is never used as a path.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mien.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES

#: Frames larger than this are refused (a decompression bomb costs memory before it costs time).
MAX_PIXELS = 8192 * 8192
_IMAGE_DEMUXERS = ("image2", "_pipe")


class UploadRejected(Exception):
    """An upload that will not be queued, with the HTTP status and the message to show."""

    def __init__(self, message: str, status: int = 415) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class MediaInfo:
    kind: str  # "video" or "image"
    width: int
    height: int
    duration_s: float | None
    frames: int | None


def accepted_suffixes() -> list[str]:
    return sorted(VIDEO_SUFFIXES | IMAGE_SUFFIXES)


def stored_suffix(name: str) -> str:
    """The suffix a stored copy of ``name`` gets (lower case), or raise when mien does not take it."""
    suffix = Path(name).suffix.lower()
    if suffix not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
        shown = f"'{suffix}'" if suffix else "no suffix"
        raise UploadRejected(f"{name}: not a video or image ({shown}); mien takes "
                             + " ".join(accepted_suffixes()))
    return suffix


def probe(path: Path, name: str, max_pixels: int = MAX_PIXELS) -> MediaInfo:
    """What ``path`` (the stored copy of the upload called ``name``) holds; raise :class:`UploadRejected`."""
    import av

    suffix = stored_suffix(name)
    size = path.stat().st_size
    if size == 0:
        raise UploadRejected(f"{name}: the file is empty (0 bytes)", 400)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UploadRejected(f"{name}: holds no video stream (audio only?); send a video or an image")
            demuxer = container.format.name
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > max_pixels:
                raise UploadRejected(f"{name}: frames of {width}x{height} pixels are larger than this server "
                                     f"takes ({max_pixels} pixels)", 413)
            frame = next(container.decode(stream), None)
            if frame is None:
                raise UploadRejected(f"{name}: no frame could be decoded; the file may be damaged")
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            frames = int(stream.frames) or None
    except UploadRejected:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, StopIteration) as exc:
        raise UploadRejected(f"{name}: not a video or image FFmpeg can decode ({type(exc).__name__})") from None
    is_image = suffix in IMAGE_SUFFIXES
    if is_image:
        import cv2

        if cv2.imread(str(path), cv2.IMREAD_COLOR) is None:
            raise UploadRejected(f"{name}: not an image OpenCV can read; re-save it as JPEG or PNG")
        return MediaInfo("image", width, height, None, 1)
    if any(demuxer.endswith(d) for d in _IMAGE_DEMUXERS) or demuxer == "tty":
        raise UploadRejected(f"{name}: is not a video (its content is {demuxer}); give it the suffix of "
                             "what it is")
    return MediaInfo("video", width, height, duration, frames)
