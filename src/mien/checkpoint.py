"""Checkpoints: finished rows reach the disk while a run goes, so a killed run (SIGKILL, power
loss, out of memory) loses at most the last interval.

On-disk format (version 1), beside the output ``X`` (e.g. ``talk.mp4.parquet``)::

    X.checkpoint/
        part-00000.parquet   rows of the frames analysed in the first interval (schema of
        part-00001.parquet   docs/schema.md, one complete Parquet file per interval, each written
        ...                  to a temp name and renamed, so a part is whole or absent)
        progress.json        written (atomically) after each part: how far the run got

``progress.json`` holds ``format`` ("mien-checkpoint"), ``version`` (1), ``output``, ``source``,
``started``, ``updated``, ``parts`` (how many part files it covers), ``rows``, and the analysis
position after the last part: ``frames_analysed``, ``last_frame_index`` (index among decoded
frames, as in the table's ``frame_index``) and ``last_time_s``. Frames without faces produce no
rows, which is why the position is recorded and not read off the rows.

The run writes a part at most every ``interval_s`` seconds (``--checkpoint-s``); at the end it
writes the output, its tracks and manifest atomically, then removes the folder. A folder that is
still there after a run means the run was killed: :func:`read_partial` reads it, and
:func:`last_frame` says where a resumed run (``mien batch``/``serve``) must continue — from the
frame after ``last_frame_index``. Tracks and smoothing state are not saved: a resumed run starts
new tracks, so its track ids must be offset past the partial table's.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mien.errors import InputError
from mien.manifest import now_iso
from mien.outputs import display, sidecar_path

if TYPE_CHECKING:  # pragma: no cover - pandas is imported where a table is read (start-up)
    import pandas as pd

    from mien.table import ColumnTable

FORMAT, VERSION = "mien-checkpoint", 1
PROGRESS = "progress.json"


def checkpoint_dir(output: str | os.PathLike[str]) -> Path:
    """``X`` → ``X.checkpoint`` (see :func:`mien.outputs.sidecar_path`)."""
    return sidecar_path(output, "checkpoint")


@dataclass
class PartialRun:
    """What a killed run left: the rows it had checkpointed and its last progress record."""

    frame: pd.DataFrame
    progress: dict[str, Any] = field(default_factory=dict)

    @property
    def last_frame_index(self) -> int | None:
        value = self.progress.get("last_frame_index")
        return int(value) if isinstance(value, int) and value >= 0 else None


class Checkpointer:
    """Writes the rows of one run as part files, at most every ``interval_s`` seconds."""

    def __init__(self, output: str | os.PathLike[str], source: str, interval_s: float) -> None:
        self.dir = checkpoint_dir(output)
        self.output, self.source = Path(output), source
        self.interval_s = float(interval_s)
        self.started = now_iso()
        self.parts = 0
        self.rows = 0
        self._last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.interval_s

    def flush(self, rows: pd.DataFrame | ColumnTable, *, frames_analysed: int, last_frame_index: int, last_time_s: float) -> None:
        """Write ``rows`` (those since the last flush) as the next part, then the progress record."""
        from mien.results import atomic_write, write_parquet  # results imports outputs; keep it one-way

        self._last = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        if len(rows):
            part = self.dir / f"part-{self.parts:05d}.parquet"
            atomic_write(part, lambda p: write_parquet(rows, p))
            self.parts += 1
            self.rows += len(rows)
        progress = {
            "format": FORMAT, "version": VERSION, "output": display(self.output.name),
            "source": display(self.source), "started": self.started, "updated": now_iso(),
            "interval_s": self.interval_s, "parts": self.parts, "rows": self.rows,
            "frames_analysed": frames_analysed, "last_frame_index": last_frame_index,
            "last_time_s": last_time_s,
        }
        atomic_write(self.dir / PROGRESS, lambda p: p.write_text(json.dumps(progress, indent=2)))

    def finish(self) -> None:
        """The output is written: the checkpoint is no longer needed."""
        shutil.rmtree(self.dir, ignore_errors=True)


def read_partial(output: str | os.PathLike[str]) -> PartialRun:
    """The rows and progress a killed run left beside ``output`` (raises if there is none)."""
    d = checkpoint_dir(output)
    progress_path = d / PROGRESS
    if not progress_path.is_file():
        raise InputError(f"{display(d)}: no checkpoint here (no {PROGRESS})")
    try:
        progress = json.loads(progress_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{display(progress_path)}: unreadable checkpoint progress ({exc})") from None
    if progress.get("format") != FORMAT or progress.get("version") != VERSION:
        raise InputError(f"{display(progress_path)}: not a version-{VERSION} mien checkpoint")
    parts = [d / f"part-{i:05d}.parquet" for i in range(int(progress.get("parts", 0)))]
    import pandas as pd

    from mien.results import concat
    from mien.schema import coerce_table

    frames = []
    for p in parts:
        with open(p, "rb") as f:
            frames.append(coerce_table(pd.read_parquet(f)))  # the schema's dtypes, as the run had them

    return PartialRun(concat(frames), progress)


def last_frame(output: str | os.PathLike[str]) -> int | None:
    """Index (``frame_index``) of the last frame a killed run finished, or None without a checkpoint."""
    if not (checkpoint_dir(output) / PROGRESS).is_file():
        return None
    return read_partial(output).last_frame_index
