"""``OUT/index.parquet``: one row per input of a batch, and what decides whether a re-run redoes it.

An input is up to date when its results exist, were written from a file with the same
*fingerprint* (size and SHA-256 of its first and last MiB: cheap on hour-long videos, and
unchanged when a study folder is moved or copied) and with the same *options hash* (every
analysis option that can change a result, plus the mien version). Its per-file manifest records
both, so the index can always be rebuilt from the outputs: the manifests are the truth and the
index is their table.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mien._version import __version__
from mien.results import atomic_write

INDEX_NAME = "index.parquet"

#: Status of an input in the index.
DONE, SKIPPED, FAILED, INTERRUPTED, PENDING = "done", "skipped", "failed", "interrupted", "pending"
STATUSES = (DONE, SKIPPED, FAILED, INTERRUPTED, PENDING)

#: Options that cannot change a file's results (how fast, not what): left out of the hash.
_NOT_HASHED = frozenset({"threads", "overlap_stages", "max_frames", "max_seconds", "open_timeout_s", "checkpoint_s"})

_MIB = 1 << 20


@dataclass
class IndexRow:
    """One input's line in ``index.parquet`` (see docs/scale.md for each column)."""

    path: str  # relative to the batch root (POSIX)
    video_id: str
    status: str
    frames: int | None = None  # analysed frames
    faces: int | None = None  # face rows
    tracks: int | None = None
    duration_s: float | None = None
    error: str = ""
    output: str = ""  # per-file table, relative to OUT
    fingerprint: str = ""
    options_hash: str = ""
    seconds: float | None = None  # wall time of its analysis (in the run that did it)
    attempts: int = 0  # tries in the run that did it (>1 after a worker died)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexRow:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


INDEX_SCHEMA = pa.schema([
    ("path", pa.string()), ("video_id", pa.string()), ("status", pa.string()),
    ("frames", pa.int64()), ("faces", pa.int64()), ("tracks", pa.int64()),
    ("duration_s", pa.float64()), ("error", pa.string()), ("output", pa.string()),
    ("fingerprint", pa.string()), ("options_hash", pa.string()), ("seconds", pa.float64()),
    ("attempts", pa.int64()),
])


def fingerprint(path: str | os.PathLike[str]) -> str:
    """Size + SHA-256 of the first and last MiB of a file (hex, 32 characters)."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with p.open("rb") as f:
        h.update(f.read(_MIB))
        if size > 2 * _MIB:
            f.seek(size - _MIB)
            h.update(f.read(_MIB))
    return h.hexdigest()[:32]


def options_hash(parameters: dict[str, Any], mien_version: str = __version__) -> str:
    """Hash of the options that shape results (as ``AnalysisOptions.to_dict()`` or a manifest's
    ``parameters`` give them), the mien version, and a custom model card's contents."""
    shaping = {k: v for k, v in parameters.items() if k not in _NOT_HASHED}
    key: dict[str, Any] = {"mien": mien_version, "options": shaping}
    model_card = parameters.get("model_card")
    if model_card:
        try:
            key["card_sha256"] = hashlib.sha256(Path(model_card).read_bytes()).hexdigest()
        except OSError:
            key["card_sha256"] = None  # the analysis itself reports the missing card
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_index(rows: list[IndexRow], out_dir: Path) -> Path:
    """Write ``OUT/index.parquet`` atomically (a reader never sees half a table)."""
    path = out_dir / INDEX_NAME
    table = pa.Table.from_pylist([asdict(r) for r in rows], schema=INDEX_SCHEMA)
    atomic_write(path, lambda p: pq.write_table(table, p))
    return path


def read_index(out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """``OUT/index.parquet`` as a DataFrame (empty, with the columns, when there is none)."""
    path = Path(out_dir) / INDEX_NAME
    if not path.is_file():
        return INDEX_SCHEMA.empty_table().to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    # nullable integers: an input that failed has no frame count, and 3 frames stay 3, not 3.0
    return pq.read_table(path).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
