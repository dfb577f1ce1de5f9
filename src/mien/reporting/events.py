"""Align expression measurements to external events (stimuli, questions, scene changes).

A user hands ``--events events.csv`` with columns ``time_s[,end_s],label[,source]``. For each
event we average every track's smoothed probabilities over a window after the event (default
``[0, 2)`` s after its onset; half-open so a frame on the boundary is not counted twice), then
summarise per event label:

* per track: mean over that track's events, with a bootstrap CI that resamples its events;
* pooled over tracks and videos: each *event instance* (one event row in one video) first
  averages the tracks visible in its window, so a crowded scene does not outweigh a single
  face, then the mean over instances gets a bootstrap CI that resamples instances.

The bootstrap is seeded (the seed and the group key fix the random stream), so the same inputs
always give the same CI. Fewer than two events give no CI (NaN): one event says nothing about
spread. Abstained frames are missing data and are left out of every mean.

Without a ``source`` column an event applies to every video in the report (the same stimulus
timeline shown to everyone); with one, it applies to the video whose path or file name matches.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mien.errors import InputError
from mien.labels import EXPRESSIONS
from mien.reporting.params import DEFAULT_WINDOW, EventStats, Window
from mien.reporting.params import parse_window as parse_window  # re-exported: defined there (no pandas)
from mien.stats import bootstrap_mean_ci

SUMMARY_COLUMNS: tuple[str, ...] = (
    "scope",
    "source",
    "track_id",
    "event_label",
    "expression",
    "n_events",
    "mean",
    "ci_low",
    "ci_high",
)


def load_events(events: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read and validate an events table; return columns ``time_s, end_s, label, source``.

    ``end_s`` is NaN where not given and ``source`` is ``""`` where the event applies to every video.
    Raises :class:`InputError` naming the file and row when the table is unusable.
    """
    if isinstance(events, pd.DataFrame):
        what = "events table"
        table = events.copy()
    else:
        path = Path(events)
        what = f"events file {path}"
        if not path.is_file():
            raise InputError(f"{what} not found; pass a CSV with columns time_s[,end_s],label.")
        try:
            table = pd.read_csv(path, dtype={"label": "string", "source": "string"})
        except Exception as exc:
            raise InputError(f"{what} cannot be read as CSV ({exc}); it needs columns "
                             "time_s[,end_s],label.") from exc
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in ("time_s", "label") if c not in table.columns]
    if missing:
        raise InputError(f"{what} lacks column(s) {', '.join(missing)}; found {list(table.columns)}. "
                         "It needs time_s (seconds from the start of the video), label, and "
                         "optionally end_s and source.")
    out = pd.DataFrame(index=table.index)
    for col in ("time_s", "end_s"):
        if col not in table.columns:
            out[col] = np.nan
            continue
        values = pd.to_numeric(table[col], errors="coerce")
        bad = values.isna() & table[col].notna() if col == "end_s" else values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{what}: {col} on data row {row + 1} ({table[col].iloc[row]!r}) is not a "
                             "number of seconds; fix or remove that row.")
        out[col] = values.astype(float)
    labels = table["label"].astype("string").str.strip()
    if labels.isna().any() or (labels == "").any():
        row = int(np.flatnonzero((labels.isna() | (labels == "")).to_numpy())[0])
        raise InputError(f"{what}: data row {row + 1} has no label; give every event a label.")
    out["label"] = labels.astype(object)
    if (out["time_s"] < 0).any():
        row = int(np.flatnonzero((out["time_s"] < 0).to_numpy())[0])
        raise InputError(f"{what}: time_s on data row {row + 1} is negative; times are seconds from "
                         "the start of the video.")
    reversed_ = out["end_s"].notna() & (out["end_s"] < out["time_s"])
    if reversed_.any():
        row = int(np.flatnonzero(reversed_.to_numpy())[0])
        raise InputError(f"{what}: end_s on data row {row + 1} is before its time_s.")
    if "source" in table.columns:
        out["source"] = table["source"].astype("string").fillna("").str.strip().astype(object)
    else:
        out["source"] = ""
    return out.reset_index(drop=True)


def _matches(event_source: str, source: str) -> bool:
    if not event_source:
        return True
    return event_source == source or Path(event_source).name == Path(source).name


def events_for_source(events: pd.DataFrame, source: str) -> pd.DataFrame:
    """The events that apply to ``source`` (all events without a ``source``, plus matching ones)."""
    if events is None or not len(events):
        return pd.DataFrame(columns=["time_s", "end_s", "label", "source"])
    keep = [_matches(s, source) for s in events["source"]]
    return events[np.asarray(keep, dtype=bool)]


def unmatched_event_sources(events: pd.DataFrame, sources: Sequence[str]) -> list[str]:
    """Event ``source`` values that name none of the report's videos (worth a warning)."""
    named = {s for s in events["source"] if s}
    return sorted(s for s in named if not any(_matches(s, src) for src in sources))


def event_responses(frame: pd.DataFrame, events: pd.DataFrame,
                    window: Window = DEFAULT_WINDOW) -> pd.DataFrame:
    """Mean smoothed probabilities per (event, source, track) over the window after each event.

    Returns columns ``event_id, event_label, event_time_s, source, track_id, n_frames,
    mean_<label>...``; a track with no non-abstained frame in the window gives no row.
    """
    smooth_cols = [f"smooth_{label}" for label in EXPRESSIONS]
    cols = ["event_id", "event_label", "event_time_s", "source", "track_id", "n_frames",
            *[f"mean_{label}" for label in EXPRESSIONS]]
    rows: list[list[object]] = []
    if len(frame) and len(events):
        if window == "span" and events["end_s"].isna().any():
            raise InputError("--window span needs an end_s for every event; add end_s to the events "
                             "file or give a window such as 0,2.")
        usable = frame[~frame["abstain"].to_numpy(dtype=bool)]
        for source, src in usable.groupby("source", sort=False):
            evs = events_for_source(events, str(source))
            if not len(evs):
                continue
            times = src["time_s"].to_numpy(dtype=float)
            tracks = src["track_id"].to_numpy()
            values = src[smooth_cols].to_numpy(dtype=float)
            for event_id, ev in evs.iterrows():
                if window == "span":
                    start, end = float(ev["time_s"]), float(ev["end_s"])
                    if end <= start:  # an instantaneous span: fall back to that frame's neighbourhood
                        end = start + 1e-6
                else:
                    start, end = float(ev["time_s"]) + window[0], float(ev["time_s"]) + window[1]
                inside = (times >= start) & (times < end)
                if not inside.any():
                    continue
                for track_id in np.unique(tracks[inside]):
                    sel = inside & (tracks == track_id)
                    with np.errstate(all="ignore"):
                        means = np.nanmean(values[sel], axis=0)
                    rows.append([int(event_id), ev["label"], float(ev["time_s"]), source, int(track_id),
                                 int(sel.sum()), *means.tolist()])
    return pd.DataFrame(rows, columns=cols)


def summarise_events(responses: pd.DataFrame, stats: EventStats | None = None) -> pd.DataFrame:
    """Per-track and pooled means per (event label, expression) with bootstrap CIs.

    Returns a tidy table with :data:`SUMMARY_COLUMNS`; ``scope`` is ``"track"`` or ``"pooled"``
    (pooled rows have ``source == ""`` and ``track_id == -1``).
    """
    stats = stats or EventStats()
    mean_cols = [f"mean_{label}" for label in EXPRESSIONS]
    rows: list[dict[str, object]] = []

    def emit(scope: str, source: str, track_id: int, event_label: str, values: np.ndarray) -> None:
        key = f"{scope}|{source}|{track_id}|{event_label}"
        # each group has its own fixed random stream: adding a video to a report does not change
        # the CIs of the groups that were already there
        low, high = bootstrap_mean_ci(values, n_resamples=stats.n_boot, level=stats.ci,
                                      seed=[stats.seed, zlib.crc32(key.encode("utf-8"))])
        with np.errstate(all="ignore"):
            means = np.nanmean(values, axis=0)
        for i, expression in enumerate(EXPRESSIONS):
            rows.append({"scope": scope, "source": source, "track_id": track_id,
                         "event_label": event_label, "expression": expression,
                         "n_events": int(values.shape[0]), "mean": float(means[i]),
                         "ci_low": float(low[i]), "ci_high": float(high[i])})

    if len(responses):
        for (event_label, source, track_id), grp in responses.groupby(
                ["event_label", "source", "track_id"], sort=True):
            emit("track", str(source), int(track_id), str(event_label), grp[mean_cols].to_numpy(float))
        for event_label, grp in responses.groupby("event_label", sort=True):
            per_instance = grp.groupby(["event_id", "source"], sort=True)[mean_cols].mean()
            emit("pooled", "", -1, str(event_label), per_instance.to_numpy(float))
    out = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    if len(out):
        out = out.sort_values(["scope", "event_label", "source", "track_id"], kind="stable",
                              key=lambda s: s.map({"pooled": 0, "track": 1}) if s.name == "scope" else s)
    return out.reset_index(drop=True)


def align_events(frame: pd.DataFrame, events: str | Path | pd.DataFrame, window: Window = DEFAULT_WINDOW,
                 stats: EventStats | None = None) -> pd.DataFrame:
    """Load ``events`` and summarise expressions after them: :func:`event_responses` then
    :func:`summarise_events`."""
    return summarise_events(event_responses(frame, load_events(events), window), stats)
