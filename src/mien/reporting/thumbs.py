"""Face thumbnails for the report, cut from the source video at a track's times.

Thumbnails let a reader check that a track follows a face (not a poster or a false detection)
without opening the video. They show people, so they are **blurred by default**: enough to see
that there is a face and roughly how it is posed, not enough to recognise anyone. ``show_faces``
opts in to sharp crops for a user who has the right to look at them.

The results table holds only boxes, not pixels, so the video is re-opened with PyAV. When it is
missing or unreadable the report says so rather than failing: a report is still useful without
pictures.
"""
from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mien.reporting.load import manifest_inputs
from mien.schema import RunManifest
from mien.sources import rotate_upright

#: Below this many frames a video is decoded front to back and frames are matched by
#: ``frame_index`` (exact whatever the timestamp convention); above it we seek by time.
SEQUENTIAL_MAX_FRAMES = 3000


@dataclass
class Thumb:
    """One thumbnail: where it was taken and the JPEG as a data URI."""

    track_id: int
    time_s: float
    top_label: str
    data_uri: str


@dataclass
class SourceThumbs:
    """Thumbnails of one source, or the reason there are none."""

    by_track: dict[int, list[Thumb]] = field(default_factory=dict)
    error: str | None = None


def resolve_source(source: str, origin: Path | None = None,
                   manifest: RunManifest | None = None) -> Path | None:
    """Find the video a ``source`` value names: as given, beside the results file, or the manifest's."""
    if "://" in source:
        return None
    candidates: list[Path] = []
    for name in [source, *manifest_inputs(manifest)]:
        path = Path(name).expanduser()
        candidates.append(path)
        if origin is not None and not path.is_absolute():
            candidates.append(origin.parent / path)
        if origin is not None:
            candidates.append(origin.parent / path.name)
    for cand in candidates:
        if cand.is_file():
            return cand
    return None


def pick_rows(track: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` rows spread over the track (quantiles of time), preferring non-abstained, larger faces."""
    usable = track[~track["abstain"].to_numpy(dtype=bool)]
    pool = usable if len(usable) else track
    pool = pool.sort_values("time_s", kind="stable")
    if len(pool) <= n:
        return pool
    positions = np.unique(np.round(np.linspace(0, len(pool) - 1, n + 2)[1:-1]).astype(int))
    return pool.iloc[positions]


def _crop(img: np.ndarray, box: Sequence[float], size: int, blur: bool) -> bytes:
    import cv2

    h, w = img.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = x2 - x1, y2 - y1
    side = max(bw, bh) * 1.25
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    a, b = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    c, d = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    if c - a < 2 or d - b < 2:
        raise ValueError("box outside the frame")
    crop = img[b:d, a:c]
    scale = size / max(crop.shape[:2])
    out_w, out_h = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
    if blur:
        # Pixelate to ~8 cells across, then smooth the cells away: pose and framing stay visible,
        # identity does not.
        tiny = cv2.resize(crop, (8, max(1, round(8 * crop.shape[0] / crop.shape[1]))),
                          interpolation=cv2.INTER_AREA)
        crop = cv2.resize(tiny, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        k = max(3, (size // 6) | 1)
        crop = cv2.GaussianBlur(crop, (k, k), 0)
    else:
        crop = cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def _decode_targets(path: Path, targets: pd.DataFrame) -> dict[int, np.ndarray]:
    """Decode the frames the ``targets`` rows need; map row label -> BGR image (rotation applied)."""
    import av

    images: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        max_index = int(targets["frame_index"].max()) if "frame_index" in targets else -1
        if 0 <= max_index <= SEQUENTIAL_MAX_FRAMES:
            wanted: dict[int, list[int]] = {}
            for row_id, fi in zip(targets.index, targets["frame_index"], strict=True):
                wanted.setdefault(int(fi), []).append(int(row_id))
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    img = rotate_upright(frame.to_ndarray(format="bgr24"), frame.rotation or 0)
                    for row_id in wanted[i]:
                        images[row_id] = img
                if i >= max_index:
                    break
            return images
        # Long video: seek near each time and decode forward to the first frame at/after it.
        # ``time_s`` counts from the first frame (as mien's decoder does), PTS from the container's
        # start, so find the first frame's time once.
        first = next(container.decode(stream), None)
        t0 = float(first.time) if first is not None and first.time is not None else 0.0
        current = None
        decoder = None
        for row_id, rel in sorted(zip(targets.index, targets["time_s"], strict=True), key=lambda p: p[1]):
            target = float(rel) + t0
            cur_t: float | None = float(current.time) if current is not None and current.time is not None else None
            if decoder is None or cur_t is None or target < cur_t - 1e-3 or target - cur_t > 2.0:
                container.seek(max(0, int(target / float(stream.time_base or 1))), stream=stream, backward=True)
                decoder = container.decode(stream)
                current = None
            while current is None or (current.time is not None and current.time < target - 1e-3):
                try:
                    current = next(decoder)
                except StopIteration:
                    break
            if current is not None:
                images[int(row_id)] = rotate_upright(current.to_ndarray(format="bgr24"), current.rotation or 0)
    return images


def source_thumbnails(frame: pd.DataFrame, source: str, *, origin: Path | None = None,
                      manifest: RunManifest | None = None, per_track: int = 3, blur: bool = True,
                      size: int = 96, tracks: Sequence[int] | None = None) -> SourceThumbs:
    """Thumbnails for the tracks of ``source`` (or only ``tracks``); never raises on a bad video."""
    rows = frame[frame["source"] == source]
    if tracks is not None:
        rows = rows[rows["track_id"].isin(list(tracks))]
    if not len(rows) or per_track <= 0:
        return SourceThumbs()
    if not {"x1", "y1", "x2", "y2"}.issubset(rows.columns):
        return SourceThumbs(error="the results have no face boxes, so no thumbnails can be cut")
    path = resolve_source(source, origin, manifest)
    if path is None:
        return SourceThumbs(error=f"source video {source!r} is not readable here (not found, or a "
                                  "stream), so no face thumbnails are shown")
    picks = pd.concat([pick_rows(trk, per_track) for _, trk in rows.groupby("track_id", sort=True)])
    try:
        images = _decode_targets(path, picks)
    except Exception as exc:  # noqa: BLE001 - any decoder failure only costs the thumbnails
        return SourceThumbs(error=f"source video {path} could not be decoded ({type(exc).__name__}: "
                                  f"{exc}), so no face thumbnails are shown")
    result = SourceThumbs()
    failed = 0
    for row_id, row in picks.iterrows():
        img = images.get(int(row_id))
        if img is None:
            failed += 1
            continue
        try:
            jpeg = _crop(img, (row["x1"], row["y1"], row["x2"], row["y2"]), size, blur)
        except ValueError:
            failed += 1
            continue
        uri = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
        result.by_track.setdefault(int(row["track_id"]), []).append(
            Thumb(int(row["track_id"]), float(row["time_s"]), str(row.get("top_label", "") or ""), uri))
    if failed and not result.by_track:
        result.error = f"no frame of {path} could be matched to the results' times"
    elif failed:
        result.error = f"{failed} thumbnail(s) could not be cut from {path}"
    return result
