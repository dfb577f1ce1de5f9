"""Results: the long-format per-face-per-frame table, per-track summaries, and atomic writers.

The schema is documented in ``docs/schema.md``; its column order lives in :data:`COLUMNS`.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mien.errors import InputError
from mien.labels import EXPRESSIONS
from mien.manifest import file_sha256
from mien.outputs import TABLE_SUFFIXES, display, keep_mode, sidecar_path

SCHEMA_VERSION = 1
PROB_COLUMNS = [f"prob_{label}" for label in EXPRESSIONS]
SMOOTH_COLUMNS = [f"smooth_{label}" for label in EXPRESSIONS]
LANDMARK_COLUMNS = [f"lm{i}_{axis}" for i in range(5) for axis in ("x", "y")]
COLUMNS = (
    ["source", "frame_index", "time_s", "track_id", "x1", "y1", "x2", "y2", "det_score"]
    + LANDMARK_COLUMNS
    + ["face_px", "sharpness", "yaw_deg", "roll_deg", "abstain", "abstain_reason"]
    + PROB_COLUMNS
    + SMOOTH_COLUMNS
    + ["top_label", "top_prob"]
)
OUTPUT_SUFFIXES = TABLE_SUFFIXES


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
        if not self._n:
            return empty_frame()
        self._consolidate()
        df = pd.DataFrame({k: np.concatenate(v) for k, v in self._chunks.items()})
        df = df.astype({"frame_index": "int64", "track_id": "int64", "abstain": "bool"})
        return df[COLUMNS]


def empty_frame() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype="float64") for c in COLUMNS})
    df = df.astype({"source": "object", "frame_index": "int64", "track_id": "int64",
                    "abstain": "bool", "abstain_reason": "object", "top_label": "object"})
    return df


def track_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (source, track): timing, frame counts, share of frames per top expression,
    and mean probabilities over the frames where the face was not abstained."""
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
    """What :func:`mien.analyze` returns: the per-face-per-frame table, tracks and the manifest."""

    frames: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    checkpoint: Any = None  # the run's mien.checkpoint.Checkpointer, when it checkpointed

    def to_pandas(self) -> pd.DataFrame:
        """The long-format table (a row per face per analysed frame; see docs/schema.md)."""
        return self.frames

    def tracks(self) -> pd.DataFrame:
        """Per-track summary (see :func:`track_summary`)."""
        return track_summary(self.frames)

    def track(self, track_id: int, source: str | None = None) -> pd.DataFrame:
        """Rows of one track (of one source, when several were analysed)."""
        df = self.frames[self.frames["track_id"] == track_id]
        if source is not None:
            df = df[df["source"] == source]
        return df

    @property
    def track_ids(self) -> list[int]:
        return sorted(int(t) for t in self.frames["track_id"].unique())

    def __len__(self) -> int:
        return len(self.frames)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the table (.parquet/.csv/.jsonl), ``X.manifest.json`` and ``X.tracks.csv`` atomically."""
        return write_results(self.frames, self.manifest, path)


def sidecar(path: Path, kind: str) -> Path:
    """``out.parquet`` → ``out.parquet.manifest.json`` / ``out.parquet.tracks.csv`` (see :mod:`mien.outputs`)."""
    return sidecar_path(path, kind)


def table_fingerprint(path: Path, rows: int) -> dict[str, Any]:
    """What the manifest records about its table, so a reader can check they belong together."""
    return {"file": display(path.name), "rows": int(rows), "sha256": file_sha256(path)}


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write via a temp file in the same folder and rename: a crash never leaves a half file.
    A file that already exists keeps its permission bits (a private 0600 table stays private)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = keep_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
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


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a text file (JSON, HTML, Markdown) atomically; raise ``InputError`` if it can't be."""
    p = Path(path)
    try:
        atomic_write(p, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot write {p}: {exc.strerror or exc}; choose a writable path") from None
    return p


def write_table(df: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"{path}: unknown output format; use one of {', '.join(OUTPUT_SUFFIXES)}")
    if suffix == ".parquet":
        atomic_write(path, lambda p: df.to_parquet(p, index=False))
    elif suffix == ".csv":
        atomic_write(path, lambda p: df.to_csv(p, index=False))
    else:
        atomic_write(path, lambda p: df.to_json(p, orient="records", lines=True))


def write_results(df: pd.DataFrame, manifest: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the table, then its tracks and its manifest (which records the table's fingerprint)."""
    path = Path(path)
    write_table(df, path)
    manifest = {**manifest, "table": table_fingerprint(path, len(df))}
    atomic_write(sidecar(path, "tracks"), lambda p: track_summary(df).to_csv(p, index=False))
    atomic_write(sidecar(path, "manifest"), lambda p: p.write_text(json.dumps(manifest, indent=2, default=str)))
    return path


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by :func:`write_results`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such results file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path, keep_default_na=True).fillna({"abstain_reason": "", "top_label": ""})
        if suffix == ".jsonl":
            return pd.read_json(path, lines=True)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path}: cannot be read as mien results ({exc})") from None
    raise InputError(f"{path}: unknown results format; expected {', '.join(OUTPUT_SUFFIXES)}")


def concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else empty_frame()
