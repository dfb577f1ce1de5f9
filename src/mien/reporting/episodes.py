"""Expression episodes: spans during which one expression dominates a track.

Frame-level probabilities flicker; a reader wants "from 3.2 s to 5.0 s this face showed a
happiness expression, peaking at 0.91 at 4.1 s". This module turns a results table into such
episodes with explicit, documented rules so the same table always gives the same episodes.

Rules (all times in seconds, per ``source`` and ``track_id``, rows ordered by ``time_s``):

1. A frame is *dominant* for label L when it is not abstained, ``smooth_L`` is the largest of
   the eight smoothed probabilities, and ``smooth_L >= threshold``.
2. Each frame stands for the interval ``[t, t + dt)``, where ``dt`` is the median spacing of
   the analysed frames of that source. So a run of dominant frames ends at ``t_last + dt``,
   and one frame alone lasts ``dt``.
3. Two runs of the same label are merged when the gap between them (start of the next dominant
   frame minus end of the previous one) is at most ``max_gap_s``. Whatever fills the gap --
   another label, probabilities below the threshold, abstained frames, or no detection at all --
   is tolerated, but it is *never counted as evidence*: abstained or non-dominant frames neither
   extend an episode's onset/offset nor count in ``n_frames``. An abstention longer than
   ``max_gap_s`` (face turned away, too small, blurred) therefore ends the episode: we do not
   know what the face did meanwhile.
4. Merged runs shorter than ``min_duration_s`` (``offset_s - onset_s``) are dropped.
5. The apex is the dominant frame with the highest ``smooth_L`` (the earliest on ties).

With ``max_gap_s < min_duration_s`` (the defaults 0.25 < 0.5) episodes of different labels on
the same track never overlap: a span short enough to be bridged is too short to be an episode.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mien.labels import EXPRESSIONS
from mien.reporting.params import EpisodeParams as EpisodeParams  # defined there (no pandas), used here

EPISODE_COLUMNS: tuple[str, ...] = (
    "source",
    "track_id",
    "label",
    "onset_s",
    "apex_s",
    "apex_value",
    "offset_s",
    "duration_s",
    "n_frames",
)


def frame_interval(times: np.ndarray) -> float:
    """Median spacing of distinct analysed times: how long one analysed frame stands for.

    Returns 0.0 when fewer than two distinct times exist (nothing to measure spacing from).
    """
    uniq = np.unique(np.asarray(times, dtype=float))
    if uniq.size < 2:
        return 0.0
    return float(np.median(np.diff(uniq)))


def dominant_labels(smooth: np.ndarray, abstain: np.ndarray, threshold: float) -> np.ndarray:
    """Index of the dominant label per row, or -1 (abstained, all-NaN, or top below threshold)."""
    smooth = np.asarray(smooth, dtype=float)
    out = np.full(smooth.shape[0], -1, dtype=int)
    valid = ~np.asarray(abstain, dtype=bool) & np.isfinite(smooth).any(axis=1)
    if not valid.any():
        return out
    filled = np.where(np.isfinite(smooth[valid]), smooth[valid], -np.inf)
    top = filled.argmax(axis=1)
    top_value = filled[np.arange(top.size), top]
    out[np.flatnonzero(valid)] = np.where(top_value >= threshold, top, -1)
    return out


def _track_episodes(times: np.ndarray, smooth: np.ndarray, dom: np.ndarray, dt: float,
                    params: EpisodeParams) -> list[tuple[int, float, float, float, float, int]]:
    """Episodes of one track as (label index, onset, apex time, apex value, offset, n_frames)."""
    found: list[tuple[int, float, float, float, float, int]] = []
    for li in np.unique(dom[dom >= 0]):
        idx = np.flatnonzero(dom == li)
        starts = times[idx]
        ends = starts + dt
        # A new episode begins where the gap since the previous dominant frame's end is too long.
        gaps = starts[1:] - ends[:-1]
        breaks = np.flatnonzero(gaps > params.max_gap_s + 1e-9) + 1
        for seg in np.split(np.arange(idx.size), breaks):
            onset = float(starts[seg[0]])
            offset = float(ends[seg[-1]])
            if offset - onset + 1e-9 < params.min_duration_s:
                continue
            values = smooth[idx[seg], li]
            apex = int(np.argmax(values))
            found.append((int(li), onset, float(starts[seg[apex]]), float(values[apex]), offset,
                          int(seg.size)))
    return found


def find_episodes(frame: pd.DataFrame, params: EpisodeParams | None = None) -> pd.DataFrame:
    """Find expression episodes in a results table (any number of sources and tracks).

    Returns a DataFrame with :data:`EPISODE_COLUMNS`, sorted by source, track and onset.
    """
    params = params or EpisodeParams()
    rows: list[dict[str, object]] = []
    smooth_cols = [f"smooth_{label}" for label in EXPRESSIONS]
    if len(frame):
        for source, src_rows in frame.groupby("source", sort=False):
            dt = frame_interval(src_rows["time_s"].to_numpy())
            for track_id, trk in src_rows.groupby("track_id", sort=True):
                trk = trk.sort_values("time_s", kind="stable")
                times = trk["time_s"].to_numpy(dtype=float)
                smooth = trk[smooth_cols].to_numpy(dtype=float)
                dom = dominant_labels(smooth, trk["abstain"].to_numpy(dtype=bool), params.threshold)
                for li, onset, apex_t, apex_v, offset, n in _track_episodes(times, smooth, dom, dt,
                                                                           params):
                    rows.append({
                        "source": source,
                        "track_id": int(track_id),
                        "label": EXPRESSIONS[li],
                        "onset_s": onset,
                        "apex_s": apex_t,
                        "apex_value": apex_v,
                        "offset_s": offset,
                        "duration_s": offset - onset,
                        "n_frames": n,
                    })
    out = pd.DataFrame(rows, columns=list(EPISODE_COLUMNS))
    if len(out):
        out = out.sort_values(["source", "track_id", "onset_s", "label"], kind="stable")
    out = out.reset_index(drop=True)
    return out.astype({"track_id": "int64", "n_frames": "int64"}) if len(out) else out
