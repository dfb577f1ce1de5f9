"""Finishing an input from the checkpoint a killed worker left (see :mod:`mien.checkpoint`).

A worker killed mid-input (a pool worker ended by an interrupt, a Ray worker lost with its node,
SIGKILL, the out-of-memory killer) leaves ``X.checkpoint/``: the rows of the frames it finished, in
parts, and how far it got. The batch writes ``batch.json`` into that folder before the input
starts, with the input's fingerprint and the options hash, so a checkpoint is used only for the
same file analysed with the same options; any other checkpoint is discarded.

A resumed input decodes from the start but analyses only the frames after the checkpoint's last
one (the frame selector skips the others before they are converted or searched for faces), on
the same stride grid. Trackers and smoothing start fresh at the cut, so the resumed rows get track
ids above the checkpointed ones: a face followed across the cut is two tracks, and its smoothed
values restart there. The manifest says where the run resumed (``frames.resumed_after_frame``).
The resumed run writes no checkpoint of its own; the old one stays until the output is written,
so a second kill loses only the resumed part.
"""
from __future__ import annotations

import json
import shutil
from typing import Any

import pandas as pd

from mien.checkpoint import PROGRESS, PartialRun, checkpoint_dir, read_partial
from mien.errors import MienError
from mien.pipeline import Analyzer
from mien.results import AnalysisResult, concat
from mien.sources import FrameSelector

MARKER = "batch.json"


class _After(FrameSelector):
    """The wrapped selector's choice, restricted to frames after ``last_index``."""

    def __init__(self, inner: FrameSelector, last_index: int) -> None:
        super().__init__(inner.stride, inner.fps)
        self.inner, self.last_index = inner, last_index

    def take(self, index: int, time_s: float) -> bool:
        chosen = self.inner.take(index, time_s)  # always asked, so an fps grid keeps its phase
        return chosen and index > self.last_index


class ResumableAnalyzer(Analyzer):
    """An :class:`Analyzer` that can start a source after a given frame."""

    resume_after: int | None = None

    def open_source(self, spec: str | int) -> Any:
        src = super().open_source(spec)
        if self.resume_after is not None and hasattr(src, "selector"):
            src.selector = _After(src.selector, self.resume_after)
        return src


def usable_checkpoint(output: str, fingerprint: str, options_hash: str) -> PartialRun | None:
    """The checkpoint beside ``output`` if the same file and options made it, else None (and any
    other checkpoint is removed)."""
    folder = checkpoint_dir(output)
    if not folder.is_dir():
        return None
    try:
        marker = json.loads((folder / MARKER).read_text())
        if (marker.get("fingerprint"), marker.get("options_hash")) == (fingerprint, options_hash) \
                and (folder / PROGRESS).is_file():
            partial = read_partial(output)
            if partial.last_frame_index is not None:
                return partial
    except (OSError, ValueError, MienError):
        pass
    shutil.rmtree(folder, ignore_errors=True)
    return None


def mark_checkpoint(output: str, fingerprint: str, options_hash: str) -> None:
    """Say which file and options the checkpoint beside ``output`` will belong to."""
    folder = checkpoint_dir(output)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(json.dumps({"fingerprint": fingerprint, "options_hash": options_hash}))


def finish_from(analyzer: ResumableAnalyzer, path: str, partial: PartialRun) -> AnalysisResult:
    """Analyse ``path`` after the checkpoint's last frame and join the two parts."""
    last = partial.last_frame_index
    assert last is not None
    analyzer.resume_after = last
    try:
        rest = analyzer.analyze_source(path)
    finally:
        analyzer.resume_after = None
    before = partial.frame
    after = rest.table.copy()
    if len(before) and len(after):
        after["track_id"] += int(before["track_id"].max()) + 1
    if len(before):
        before = before.astype({c: after[c].dtype for c in after.columns if c in before.columns})
        before["source"] = after["source"].iloc[0] if len(after) else path
    table = concat([before, after]) if len(before) or len(after) else rest.table
    frames = rest.manifest.source.frames
    done = partial.progress
    frames["analysed"] = int(frames.get("analysed", 0)) + int(done.get("frames_analysed", 0))
    frames["faces"] = int(frames.get("faces", 0)) + len(before)
    frames["abstained"] = int(frames.get("abstained", 0)) + int(before["abstain"].sum() if len(before) else 0)
    frames["resumed_after_frame"] = last
    rest.table = table.reset_index(drop=True) if isinstance(table, pd.DataFrame) else table
    return rest


def remove_checkpoint(output: str) -> None:
    shutil.rmtree(checkpoint_dir(output), ignore_errors=True)

