"""Results: the long-format per-face-per-frame table, per-track summaries, and atomic writers.

The schema (columns, dtypes, file names) lives in :mod:`mien.schema`, documented in ``docs/schema.md``.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mien.errors import InputError
from mien.labels import EXPRESSIONS
from mien.manifest import file_sha256
from mien.outputs import display, keep_mode
from mien.schema import (
    ALL_COLUMNS,
    DTYPES,
    OPTIONAL_DTYPES,
    TABLE_SUFFIXES,
    RunManifest,
    empty_table,
    sidecar_path,
)
from mien.table import ColumnTable

if TYPE_CHECKING:  # pragma: no cover - pandas is imported where a table is built (start-up)
    import pandas as pd


def preload_table_writers(outputs: Iterable[str | os.PathLike[str]]) -> None:
    """Import what writing ``outputs`` needs (pyarrow for Parquet, pandas for JSON Lines; CSV
    needs neither) now, e.g. while the models load in the background, rather than after the
    analysis."""
    suffixes = {Path(o).suffix.lower() for o in outputs}
    if ".parquet" in suffixes:
        import pyarrow.parquet  # noqa: F401
    if ".jsonl" in suffixes:
        import pandas  # noqa: F401


class RowBuffer:
    """Accumulates the faces of each frame as numpy column pieces; one table at the end.

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

    def to_table(self) -> ColumnTable:
        """The table: the schema's columns in order and dtypes, then any extra columns."""
        if not self._n:
            return empty_columns()
        self._consolidate()
        cols = {k: np.concatenate(v) for k, v in self._chunks.items()}
        cols = {k: v.astype(DTYPES[k], copy=False) if k in DTYPES else v for k, v in cols.items()}
        return ordered(ColumnTable(cols))

    def to_frame(self) -> pd.DataFrame:
        """:meth:`to_table` as a DataFrame."""
        return self.to_table().to_pandas()


def empty_columns(geometry: bool = False) -> ColumnTable:
    """:func:`mien.schema.empty_table` as columns: the schema's columns and dtypes, no rows; with
    ``geometry``, the face-geometry columns too (a run with the mesh on that found no face has the
    columns of one that found faces)."""
    dtypes = {**DTYPES, **OPTIONAL_DTYPES} if geometry else DTYPES
    return ordered(ColumnTable({c: np.empty(0, t) for c, t in dtypes.items()}))


def ordered(table: ColumnTable) -> ColumnTable:
    """:func:`mien.schema.order_columns` for columns: the schema's first, in order, then the rest."""
    known = [c for c in ALL_COLUMNS if c in table]
    return table.select(known + [c for c in table.names if c not in ALL_COLUMNS])


def track_rows(table: ColumnTable) -> ColumnTable:
    """:func:`track_summary` without pandas, for the ``.tracks.csv`` sidecar (the same numbers:
    groups sorted by source and track, means as pandas takes them)."""
    n = len(table)
    if not n:
        return ColumnTable({c: np.empty(0, object) for c in _TRACK_COLUMNS})
    source = table["source"].astype(str)
    tid = table["track_id"].astype(np.int64)
    order = np.lexsort((tid, source))  # stable: rows of a group stay in table order
    s_sorted, t_sorted = source[order], tid[order]
    starts = np.flatnonzero(np.r_[True, (s_sorted[1:] != s_sorted[:-1]) | (t_sorted[1:] != t_sorted[:-1])])
    groups = np.split(order, starts[1:])
    time_s = table["time_s"].astype(np.float64)
    abstain = table["abstain"].astype(bool)
    top = table["top_label"]
    probs = {lab: table[f"prob_{lab}"].astype(np.float64) for lab in EXPRESSIONS}
    out: dict[str, list[Any]] = {c: [] for c in _TRACK_COLUMNS}
    for g in groups:
        t = time_s[g]
        ok = g[~abstain[g]]
        timed = ~np.isnan(t)
        first, last = (float(t[timed].min()), float(t[timed].max())) if timed.any() else (np.nan, np.nan)
        out["source"].append(str(source[g[0]]))
        out["track_id"].append(int(tid[g[0]]))
        out["first_s"].append(float(first))
        out["last_s"].append(float(last))
        out["duration_s"].append(float(last - first))
        out["n_frames"].append(len(g))
        out["n_abstained"].append(int(abstain[g].sum()))
        by_label: dict[str, int] = {}
        if len(ok):
            labels, counts = np.unique(top[ok].astype(str), return_counts=True)
            by_label = {str(k): int(c) for k, c in zip(labels, counts)}
        for lab in EXPRESSIONS:
            out[f"share_{lab}"].append(float(by_label.get(lab, 0) / len(ok)) if len(ok) else np.nan)
        for lab in EXPRESSIONS:
            out[f"mean_{lab}"].append(_pandas_mean(probs[lab][ok]) if len(ok) else np.nan)
    return ColumnTable({c: np.asarray(v, dtype=object if c == "source" else None) for c, v in out.items()})


def _pandas_mean(values: np.ndarray) -> float:
    """``Series.mean()``: NaN left out (filled with 0 before the sum, as pandas' nanops does)."""
    valid = ~np.isnan(values)
    count = int(valid.sum())
    if not count:
        return float("nan")
    return float(np.where(valid, values, 0.0).sum() / count)


_TRACK_COLUMNS = ["source", "track_id", "first_s", "last_s", "duration_s", "n_frames", "n_abstained"]
_TRACK_COLUMNS += [f"share_{lab}" for lab in EXPRESSIONS] + [f"mean_{lab}" for lab in EXPRESSIONS]


def track_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (source, track): timing, frame counts, share of frames per top expression,
    and mean probabilities over the frames where the face was not abstained."""
    import pandas as pd

    cols = list(_TRACK_COLUMNS)
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


class AnalysisResult:
    """What :func:`mien.analyze` returns: the per-face-per-frame table and the run manifest.

    ``table`` is a pandas DataFrame. The engine hands over plain columns (:class:`ColumnTable`),
    and the DataFrame is built the first time ``table`` is read, so a run that only saves its
    result (``mien analyze``) never imports pandas; once read, the DataFrame is the table (edits
    to it are what :meth:`save` writes).
    """

    def __init__(self, table: pd.DataFrame | ColumnTable, manifest: RunManifest | None = None,
                 landmarks: pd.DataFrame | None = None, checkpoint: Any = None) -> None:
        self._columns: ColumnTable | None = table if isinstance(table, ColumnTable) else None
        self._frame: pd.DataFrame | None = None if isinstance(table, ColumnTable) else table
        self.manifest = manifest if manifest is not None else RunManifest()
        self.landmarks = landmarks  # 468 mesh points + iBUG-68 per face per frame (landmarks=True)
        self.checkpoint = checkpoint  # the run's mien.checkpoint.Checkpointer, when it checkpointed

    @property
    def table(self) -> pd.DataFrame:
        """One row per face per analysed frame (docs/schema.md)."""
        if self._frame is None:
            assert self._columns is not None
            self._frame = self._columns.to_pandas()
            self._columns = None
        return self._frame

    @table.setter
    def table(self, value: pd.DataFrame) -> None:
        self._frame, self._columns = value, None

    @property
    def n_tracks(self) -> int:
        """How many distinct track ids the table holds (without building the DataFrame)."""
        if self._columns is not None:
            return len(np.unique(self._columns["track_id"])) if len(self._columns) else 0
        return int(self.table["track_id"].nunique()) if len(self.table) else 0

    def __repr__(self) -> str:
        return f"AnalysisResult(rows={len(self)}, sources={len(self.manifest.sources)}, status={self.manifest.status!r})"

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
        return len(self._columns) if self._columns is not None else len(self.table)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the table (.parquet/.csv/.jsonl), its manifest and tracks sidecars atomically;
        a single source's manifest entry records where it was written. ``X.landmarks.parquet`` is
        written beside it when the result holds mesh points."""
        if len(self.manifest.sources) == 1:
            self.manifest.sources[0].output = str(path)
        table = self._columns if self._columns is not None else self.table
        out = write_results(table, self.manifest, path)
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


def write_table(df: pd.DataFrame | ColumnTable, path: Path) -> None:
    """Write a results table as its suffix says. Columns (:class:`ColumnTable`) go to Parquet and
    CSV without pandas, byte for byte as pandas would write them; JSON Lines, and columns of
    kinds :class:`ColumnTable` does not write, go through pandas."""
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"{path}: unknown output format; use one of {', '.join(TABLE_SUFFIXES)}")
    if isinstance(df, ColumnTable):
        if suffix == ".parquet" and df.writable():
            atomic_write(path, df.write_parquet)
            return
        if suffix == ".csv" and df.writable():
            atomic_write(path, df.write_csv)
            return
        df = df.to_pandas()
    frame = df
    if suffix == ".parquet":
        atomic_write(path, lambda p: write_parquet(frame, p))
    elif suffix == ".csv":
        atomic_write(path, lambda p: frame.to_csv(p, index=False))
    else:
        atomic_write(path, lambda p: frame.to_json(p, orient="records", lines=True))


def write_parquet(df: pd.DataFrame | ColumnTable, path: Path) -> None:
    """``df.to_parquet`` through a file object, so folders with non-UTF-8 names work (columns:
    :meth:`ColumnTable.write_parquet`, the same file without pandas)."""
    if isinstance(df, ColumnTable) and df.writable():
        df.write_parquet(path)
        return
    frame = df.to_pandas() if isinstance(df, ColumnTable) else df
    with open(path, "wb") as f:
        frame.to_parquet(f, index=False)


def write_results(df: pd.DataFrame | ColumnTable, manifest: RunManifest, path: str | os.PathLike[str]) -> Path:
    """Write the table and, beside it, its tracks summary and run manifest (see :mod:`mien.schema`);
    the manifest records the table's fingerprint, which readers check."""
    path = Path(path)
    write_table(df, path)
    manifest = dataclasses.replace(manifest, table=table_fingerprint(path, len(df)))
    tracks = sidecar_path(path, "tracks")
    if isinstance(df, ColumnTable):
        summary = track_rows(df)
        atomic_write(tracks, summary.write_csv)
    else:
        frame = df
        atomic_write(tracks, lambda p: track_summary(frame).to_csv(p, index=False))
    atomic_write(sidecar_path(path, "manifest"), lambda p: p.write_text(manifest.to_json()))
    return path


def concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    parts = [f for f in frames if len(f)]
    return pd.concat(parts, ignore_index=True) if parts else empty_table()


def concat_columns(tables: Iterable[ColumnTable]) -> ColumnTable | pd.DataFrame:
    """:func:`concat` for columns; through pandas only when the parts' columns differ."""
    parts = list(tables)
    joined = ColumnTable.concat(parts)
    if joined is not None:
        return joined
    if not any(len(t) for t in parts):
        return empty_columns()
    return concat(t.to_pandas() for t in parts)
