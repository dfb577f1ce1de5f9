"""Analysis-ready tables from a batch's combined dataset, for R or Python.

* :func:`event_table`: the event-locked summary the report shows (per track and pooled, with
  bootstrap CIs; :mod:`mien.reporting.events` computes it), as tidy rows
  ``scope, input, track, event, expression, n_events, mean, ci_low, ci_high``.
* :func:`resample_tracks`: each track's smoothed probabilities on a fixed time grid (e.g. 10 Hz),
  to align with eye tracking or physiology recorded at its own rate. Grid point ``k/hz`` averages
  the track's non-abstained frames in ``[k/hz - 0.5/hz, k/hz + 0.5/hz)``; a point with none is
  empty (NaN, ``n_frames`` 0), never interpolated, so a gap in the face stays a gap in the table.
  A row without a time (``time_s`` NaN) has no place on the grid and is left out.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from mien.batch.dataset import RESULTS_DIR, read_dataset
from mien.errors import InputError
from mien.labels import EXPRESSIONS
from mien.reporting.events import align_events
from mien.reporting.params import DEFAULT_WINDOW, Window

SMOOTH = [f"smooth_{label}" for label in EXPRESSIONS]
EVENT_COLUMNS = ["scope", "input", "track", "event", "expression", "n_events", "mean", "ci_low", "ci_high"]


def load_frame(source: str | os.PathLike[str]) -> pd.DataFrame:
    """The per-face-per-frame rows of a batch folder (its ``results/``) or of one results file."""
    path = Path(source)
    if path.is_dir():
        if not (path / RESULTS_DIR).is_dir():
            raise InputError(f"{path}: no {RESULTS_DIR}/ folder here; pass the -o folder of "
                             "`mien analyze DIR -o OUT/`, or one results file")
        return read_dataset(path)
    from mien.reporting.load import load_results

    return load_results(path).frame


def event_table(frame: pd.DataFrame, events: str | os.PathLike[str] | pd.DataFrame,
                window: Window = DEFAULT_WINDOW) -> pd.DataFrame:
    """Event-locked means with CIs as tidy rows (see the module docstring)."""
    summary = align_events(frame, events if isinstance(events, pd.DataFrame) else Path(events), window)
    out = summary.rename(columns={"source": "input", "track_id": "track", "event_label": "event"})
    return out[EVENT_COLUMNS]


def resample_tracks(frame: pd.DataFrame, hz: float) -> pd.DataFrame:
    """Per-track smoothed probabilities on a ``hz`` grid (see the module docstring)."""
    if not hz > 0:
        raise InputError(f"--resample must be a rate in Hz > 0, got {hz}")
    cols = ["input", "track", "time_s", "n_frames", *SMOOTH, "top_label"]
    if not len(frame):
        return pd.DataFrame(columns=cols)
    df = frame[["source", "track_id", "time_s", "abstain", *SMOOTH]]
    df = df[np.isfinite(df["time_s"].to_numpy(float))].copy()  # a row without a time has no place
    if not len(df):
        return pd.DataFrame(columns=cols)
    df["k"] = np.floor(df["time_s"].to_numpy(float) * hz + 0.5).astype(np.int64)
    pieces = []
    for (source, track), g in df.groupby(["source", "track_id"], sort=True):
        grid = pd.RangeIndex(int(g["k"].min()), int(g["k"].max()) + 1, name="k")
        ok = g[~g["abstain"].to_numpy(bool)]
        means = ok.groupby("k")[SMOOTH].mean().reindex(grid)
        counts = ok.groupby("k").size().reindex(grid, fill_value=0)
        piece = means.reset_index()
        piece.insert(0, "n_frames", counts.to_numpy())
        piece.insert(0, "time_s", grid.to_numpy() / hz)
        piece.insert(0, "track", int(track))
        piece.insert(0, "input", source)
        pieces.append(piece.drop(columns="k"))
    out = pd.concat(pieces, ignore_index=True)
    values = out[SMOOTH].to_numpy(float)
    filled = ~np.isnan(values).all(axis=1)
    top = np.where(filled, np.nanargmax(np.where(np.isnan(values), -1.0, values), axis=1), -1)
    out["top_label"] = [EXPRESSIONS[k] if k >= 0 else "" for k in top]
    return out[cols]


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write an export as .csv or .parquet (atomically)."""
    from mien.results import atomic_write

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        atomic_write(p, lambda tmp: df.to_csv(tmp, index=False))
    elif suffix == ".parquet":
        atomic_write(p, lambda tmp: df.to_parquet(tmp, index=False))
    else:
        raise InputError(f"{p}: export to .csv or .parquet")
    return p
