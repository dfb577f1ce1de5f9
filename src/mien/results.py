"""Results: the long-format per-face-per-frame table, per-track summaries, and atomic writers.

The schema (columns, dtypes, file names) lives in :mod:`mien.schema`, documented in ``docs/schema.md``.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mien.errors import InputError
from mien.labels import EXPRESSIONS
from mien.manifest import file_sha256
from mien.outputs import display, keep_mode
from mien.schema import DTYPES, TABLE_SUFFIXES, RunManifest, empty_table, order_columns, sidecar_path

if TYPE_CHECKING:  # pragma: no cover - pandas is imported where a table is built (start-up)
    import pandas as pd


def preload_table_writers(outputs: Iterable[str | os.PathLike[str]]) -> None:
    """Import what writing ``outputs`` needs (pandas; pyarrow for parquet) now, e.g. while the
    models load in the background, rather than after the analysis."""
    import pandas  # noqa: F401

    if any(Path(o).suffix.lower() == ".parquet" for o in outputs):
        import pyarrow.parquet  # noqa: F401


class RowBuffer:
    """Accumulates the faces of each frame as numpy column pieces; one DataFrame at the end.

    Building a DataFrame per frame costs more than the expression model, and keeping one small
    array per frame and column costs far more memory than the data; so pieces are merged into
    chunks every few hundred frames, keeping memory to the size of the table itself.
    """

    _CONSOLIDATE_EVERY = 256  # frames

    def __init__(self) -> None:
        self._chunks: dict[str, list[np.ndarray]] = {}
        self._pieces: dict[str, list[np.ndarray]] = {}
        self._n = 0
        self._pending = 0

    def add(self, columns: dict[str, Any]) -> None:
        """Add the faces of one frame as columns (arrays of equal length, or scalars)."""
        n = next(len(v) for v in columns.values() if isinstance(v, (np.ndarray, list)))
        for k, v in columns.items():
            if not isinstance(v, (np.ndarray, list)):
                v = np.full(n, v, dtype=object if isinstance(v, str) else None)
            self._pieces.setdefault(k, []).append(np.asarray(v))
        self._n += n
        self._pending += 1
        if self._pending >= self._CONSOLIDATE_EVERY:
            self._consolidate()

    def _consolidate(self) -> None:
        for k, pieces in self._pieces.items():
            if pieces:
                self._chunks.setdefault(k, []).append(np.concatenate(pieces))
        self._pieces = {k: [] for k in self._pieces}
        self._pending = 0

    def to_frame(self) -> pd.DataFrame:
        """The table: the schema's columns in order and dtypes, then any extra columns."""
        import pandas as pd

        if not self._n:
            return empty_table()
        self._consolidate()
        df = pd.DataFrame({k: np.concatenate(v) for k, v in self._chunks.items()})
        df = df.astype({c: t for c, t in DTYPES.items() if c in df.columns})
        return order_columns(df)


def track_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (source, track): timing, frame counts, share of frames per top expression,
    and mean probabilities over the frames where the face was not abstained."""
    import pandas as pd

    cols = ["source", "track_id", "first_s", "last_s", "duration_s", "n_frames", "n_abstained"]
    cols += [f"share_{lab}" for lab in EXPRESSIONS] + [f"mean_{lab}" for lab in EXPRESSIONS]
    if df.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (source, tid), g in df.groupby(["source", "track_id"], sort=True):
        ok = g[~g["abstain"]]
        row: dict[str, Any] = {
            "source": source,
            "track_id": int(tid),
            "first_s": float(g["time_s"].min()),
            "last_s": float(g["time_s"].max()),
            "duration_s": float(g["time_s"].max() - g["time_s"].min()),
            "n_frames": len(g),
            "n_abstained": int(g["abstain"].sum()),
        }
        counts = ok["top_label"].value_counts()
        for lab in EXPRESSIONS:
            row[f"share_{lab}"] = float(counts.get(lab, 0) / len(ok)) if len(ok) else np.nan
        for lab in EXPRESSIONS:
            row[f"mean_{lab}"] = float(ok[f"prob_{lab}"].mean()) if len(ok) else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


@dataclass
class AnalysisResult:
    """What :func:`mien.analyze` returns: the per-face-per-frame table and the run manifest."""

    table: pd.DataFrame  # one row per face per analysed frame (docs/schema.md)
    manifest: RunManifest = field(default_factory=RunManifest)
    landmarks: pd.DataFrame | None = None  # 468 mesh points + iBUG-68 per face per frame (landmarks=True)
    checkpoint: Any = None  # the run's mien.checkpoint.Checkpointer, when it checkpointed

    @classmethod
    def combine(cls, results: list[AnalysisResult], failures: list[dict[str, str]] | None = None) -> AnalysisResult:
        """One result for several sources analysed with one configuration (a folder)."""
        return cls(concat(r.table for r in results), RunManifest.combine([r.manifest for r in results], failures))

    @property
    def frames(self) -> pd.DataFrame:
        """Deprecated name of :attr:`table` (which holds a row per face, not per frame)."""
        warnings.warn("AnalysisResult.frames is now AnalysisResult.table", DeprecationWarning, stacklevel=2)
        return self.table

    @property
    def failures(self) -> list[dict[str, str]]:
        """The sources that could not be analysed, with the error (``manifest.failures``)."""
        return self.manifest.failures

    def to_pandas(self) -> pd.DataFrame:
        """The long-format table (a row per face per analysed frame; see docs/schema.md)."""
        return self.table

    def tracks(self) -> pd.DataFrame:
        """Per-track summary (see :func:`track_summary`)."""
        return track_summary(self.table)

    def track(self, track_id: int, source: str | None = None) -> pd.DataFrame:
        """Rows of one track (of one source, when several were analysed)."""
        df = self.table[self.table["track_id"] == track_id]
        if source is not None:
            df = df[df["source"] == source]
        return df

    def __len__(self) -> int:
        return len(self.table)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the table (.parquet/.csv/.jsonl), its manifest and tracks sidecars atomically;
        a single source's manifest entry records where it was written. ``X.landmarks.parquet`` is
        written beside it when the result holds mesh points."""
        if len(self.manifest.sources) == 1:
            self.manifest.sources[0].output = str(path)
        out = write_results(self.table, self.manifest, path)
        if self.landmarks is not None:
            lm = self.landmarks
            atomic_write(sidecar_path(out, "landmarks"), lambda p: lm.to_parquet(p, index=False))
        return out


def table_fingerprint(path: Path, rows: int) -> dict[str, Any]:
    """What the manifest records about its table, so a reader can check they belong together."""
    return {"file": display(path.name), "rows": int(rows), "sha256": file_sha256(path)}


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write via a temp file in the same folder and rename: a crash never leaves a half file.
    A file that already exists keeps its permission bits (a private 0600 table stays private)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = keep_mode(path)
    # the temp name is printable text even when the output's name is not UTF-8 (some writers,
    # pyarrow among them, cannot take such a path)
    fd, tmp = tempfile.mkstemp(prefix=f".{display(path.name)}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask  # mkstemp creates 0600; new results are ordinary files
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write a text file (JSON, HTML, Markdown) atomically; raise ``InputError`` if it can't be."""
    p = Path(path)
    try:
        # non-UTF-8 file names inside the text (lone surrogates) are written as \xNN escapes
        atomic_write(p, lambda tmp: tmp.write_text(display(text), encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot write {p}: {exc.strerror or exc}; choose a writable path") from None
    return p


def write_table(df: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"{path}: unknown output format; use one of {', '.join(TABLE_SUFFIXES)}")
    if suffix == ".parquet":
        atomic_write(path, lambda p: write_parquet(df, p))
    elif suffix == ".csv":
        atomic_write(path, lambda p: df.to_csv(p, index=False))
    else:
        atomic_write(path, lambda p: df.to_json(p, orient="records", lines=True))


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """``df.to_parquet`` through a file object, so folders with non-UTF-8 names work."""
    with open(path, "wb") as f:
        df.to_parquet(f, index=False)


def write_results(df: pd.DataFrame, manifest: RunManifest, path: str | os.PathLike[str]) -> Path:
    """Write the table and, beside it, its tracks summary and run manifest (see :mod:`mien.schema`);
    the manifest records the table's fingerprint, which readers check."""
    path = Path(path)
    write_table(df, path)
    manifest = dataclasses.replace(manifest, table=table_fingerprint(path, len(df)))
    atomic_write(sidecar_path(path, "tracks"), lambda p: track_summary(df).to_csv(p, index=False))
    atomic_write(sidecar_path(path, "manifest"), lambda p: p.write_text(manifest.to_json()))
    return path


def concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    parts = [f for f in frames if len(f)]
    return pd.concat(parts, ignore_index=True) if parts else empty_table()
