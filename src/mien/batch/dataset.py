"""The combined table of a batch: ``OUT/results/``, a Parquet dataset with one file per input.

Every input that finished has exactly one part, ``OUT/results/<video_id>.parquet``, holding its
per-face-per-frame rows (the columns of docs/schema.md) with two columns in front:

* ``video_id``: a 16-hex id that depends only on the input's path relative to the batch root;
* ``source``: that relative path (``sub/clip.mp4``), so the table does not depend on where the
  study folder is mounted.

A part is written atomically under a name fixed by its input, so a retried or redone input
replaces its part and never adds a second one. All parts share one Arrow schema (an input without
faces writes an empty part with the same column types), so every reader takes the folder in one
call::

    pandas.read_parquet("OUT/results")
    polars.read_parquet("OUT/results/*.parquet")
    duckdb.sql("SELECT * FROM 'OUT/results/*.parquet'")
    arrow::open_dataset("OUT/results")          # R
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mien.results import atomic_write
from mien.schema import DTYPES, OPTIONAL_COLUMNS, OPTIONAL_DTYPES, order_columns

RESULTS_DIR = "results"


def part_path(out_dir: Path, video_id: str) -> Path:
    return out_dir / RESULTS_DIR / f"{video_id}.parquet"


def arrow_schema(frame: pd.DataFrame) -> pa.Schema:
    """The dataset's schema for these columns: the results schema's types (so an empty part
    matches a full one), and for any extra column the type of its values (float when it has none)."""
    def arrow_type(col: str) -> pa.DataType:
        kind = "object" if col == "video_id" else DTYPES.get(col, OPTIONAL_DTYPES.get(col))
        if kind is not None:
            return pa.string() if kind == "object" else pa.from_numpy_dtype(np.dtype(kind))
        if len(frame) and frame[col].notna().any():
            return pa.Schema.from_pandas(frame[[col]], preserve_index=False).field(col).type
        return pa.float64()

    return pa.schema([(c, arrow_type(c)) for c in frame.columns])


def write_part(frame: pd.DataFrame, out_dir: Path, video_id: str, relative: str, *,
               geometry: bool = False) -> Path:
    """Write one input's rows as its part of the combined dataset (replacing an earlier one).

    With ``geometry`` an input with no face (whose table has none of the geometry columns) gets
    them empty, so that all parts keep one schema."""
    df = frame.drop(columns=["source"], errors="ignore")
    if geometry and not len(df):
        missing = [c for c in OPTIONAL_COLUMNS if c not in df.columns]
        df = df.assign(**{c: pd.Series(dtype=OPTIONAL_DTYPES[c], index=df.index) for c in missing})
        df = order_columns(df)
    df.insert(0, "source", relative)
    df.insert(0, "video_id", video_id)
    table = pa.Table.from_pandas(df, schema=arrow_schema(df), preserve_index=False)
    path = part_path(out_dir, video_id)
    atomic_write(path, lambda p: pq.write_table(table, p))
    return path


def remove_part(out_dir: Path, video_id: str) -> None:
    part_path(out_dir, video_id).unlink(missing_ok=True)


def remove_stale_parts(out_dir: Path, keep: set[str]) -> int:
    """Delete parts whose input is no longer in the batch; returns how many."""
    folder = out_dir / RESULTS_DIR
    if not folder.is_dir():
        return 0
    removed = 0
    for part in folder.glob("*.parquet"):
        if part.stem not in keep:
            part.unlink(missing_ok=True)
            removed += 1
    return removed


def read_dataset(out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """The combined table, sorted by source, track and frame (as every reader can sort it)."""
    folder = Path(out_dir) / RESULTS_DIR
    if not folder.is_dir() or not any(folder.glob("*.parquet")):
        return pd.DataFrame()
    df = pd.read_parquet(folder)
    return df.sort_values(["source", "frame_index", "track_id"], kind="stable").reset_index(drop=True)
