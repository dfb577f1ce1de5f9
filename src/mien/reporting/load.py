"""Read results files written by ``mien analyze`` (schema version 1, see ``docs/schema.md``).

A results file is ``X.parquet``, ``X.csv`` or ``X.jsonl`` with ``X.manifest.json`` and
``X.tracks.csv`` beside it. The report must work from any of the three formats, so this module
normalises their differences (CSV turns booleans into text and empty strings into NaN; an empty
JSONL file has no columns at all) into one typed :class:`pandas.DataFrame`.

The manifest and the tracks table are optional here: a report made from a table whose manifest
was lost is still useful, so their absence becomes a warning shown in the report, not a failure.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mien.errors import InputError
from mien.labels import EXPRESSIONS
from mien.manifest import file_sha256
from mien.outputs import legacy_sidecar_path, sidecar_path

#: Table suffixes ``mien analyze`` writes.
RESULT_SUFFIXES: tuple[str, ...] = (".parquet", ".csv", ".jsonl")

SMOOTH_COLUMNS: tuple[str, ...] = tuple(f"smooth_{label}" for label in EXPRESSIONS)
PROB_COLUMNS: tuple[str, ...] = tuple(f"prob_{label}" for label in EXPRESSIONS)
LANDMARK_COLUMNS: tuple[str, ...] = tuple(f"lm{i}_{axis}" for i in range(5) for axis in ("x", "y"))

#: Every column of schema version 1, in order.
SCHEMA_COLUMNS: tuple[str, ...] = (
    "source",
    "frame_index",
    "time_s",
    "track_id",
    "x1",
    "y1",
    "x2",
    "y2",
    "det_score",
    *LANDMARK_COLUMNS,
    "face_px",
    "sharpness",
    "yaw_deg",
    "roll_deg",
    "abstain",
    "abstain_reason",
    *PROB_COLUMNS,
    *SMOOTH_COLUMNS,
    "top_label",
    "top_prob",
)

#: Columns without which no part of the report can be drawn.
REQUIRED_COLUMNS: tuple[str, ...] = ("source", "time_s", "track_id", "abstain", *SMOOTH_COLUMNS)

_STRING_COLUMNS = ("source", "abstain_reason", "top_label")
_INT_COLUMNS = ("frame_index", "track_id")


@dataclass
class Results:
    """One results table with its manifest and tracks table (either may be ``None``).

    ``warnings`` collects what was missing or odd, so the report can say so instead of failing.
    ``origin`` is the path of the table (``None`` when the table came from memory); it is used to
    find the source video when the ``source`` column holds a path relative to the table.
    """

    frame: pd.DataFrame
    manifest: dict[str, Any] | None = None
    tracks: pd.DataFrame | None = None
    origin: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """A short human name: the table's file name, or the first source."""
        if self.origin is not None:
            return self.origin.name
        sources = self.sources()
        return sources[0] if sources else "results"

    def sources(self) -> list[str]:
        """The sources in this table, in order of first appearance (or the manifest's input)."""
        if len(self.frame):
            return list(dict.fromkeys(self.frame["source"].tolist()))
        src = manifest_input(self.manifest)
        return [src] if src else []


def sidecar_paths(table: Path) -> tuple[Path, Path]:
    """Return ``(X.manifest.json, X.tracks.csv)`` for the table ``X`` (``talk.parquet`` →
    ``talk.parquet.manifest.json``); files written by older mien (``talk.manifest.json``) are used
    when the new names are absent."""
    found = []
    for kind in ("manifest", "tracks"):
        new, old = sidecar_path(table, kind), legacy_sidecar_path(table, kind)
        found.append(old if not new.is_file() and old.is_file() else new)
    return found[0], found[1]


def check_manifest_matches(table: Path, manifest: dict[str, Any]) -> str | None:
    """Why ``manifest`` does not describe ``table`` (its recorded fingerprint differs), or None."""
    recorded = manifest.get("table")
    if not isinstance(recorded, dict) or not isinstance(recorded.get("sha256"), str):
        return (f"the manifest beside {table.name} records no table fingerprint (older mien); "
                "it cannot be checked against the table")
    if recorded["sha256"] != file_sha256(table):
        return (f"the manifest beside {table.name} describes another table ({recorded.get('file')}, "
                f"{recorded.get('rows')} rows), not this one; manifest not used — re-run `mien analyze`")
    return None


def manifest_input(manifest: dict[str, Any] | None) -> str | None:
    """Best effort: the input path a manifest names (its exact layout belongs to the engine)."""
    if not manifest:
        return None
    for key in ("input", "inputs", "source", "sources"):
        value = manifest.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            for sub in ("path", "source", "url"):
                if isinstance(value.get(sub), str):
                    return value[sub]
        if isinstance(value, list) and value:
            first = value[0]
            if isinstance(first, str):
                return first
            if isinstance(first, dict):
                for sub in ("path", "source", "url"):
                    if isinstance(first.get(sub), str):
                        return first[sub]
    return None


def manifest_duration(manifest: dict[str, Any] | None) -> float | None:
    """Best effort: the input's duration in seconds from the manifest, if it gives one."""
    if not manifest:
        return None

    def find(obj: Any, depth: int = 0) -> float | None:
        if depth > 3 or not isinstance(obj, dict):
            return None
        for key in ("duration_s", "duration"):
            value = obj.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return float(value)
        for value in obj.values():
            items = value if isinstance(value, list) else [value]
            for item in items:
                found = find(item, depth + 1)
                if found is not None:
                    return found
        return None

    found = find(manifest)
    if found is not None:
        return found
    # mien's manifest records decoded frames and the stream's frame rate.
    frames = manifest.get("frames")
    if isinstance(frames, dict):
        decoded, fps = frames.get("decoded"), frames.get("fps")
        if isinstance(decoded, (int, float)) and isinstance(fps, (int, float)) and decoded > 0 and fps > 0:
            return float(decoded) / float(fps)
    return None


def _to_bool(series: pd.Series) -> pd.Series:
    """Parse an ``abstain`` column that may be bool, 0/1 or the text True/False (CSV, JSONL)."""
    if series.dtype == bool:
        return series
    mapping = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False,
               "": False, "nan": False, "none": False}
    text = series.astype("string").str.strip().str.lower().fillna("")
    bad = sorted(set(text.unique()) - set(mapping))
    if bad:
        raise ValueError(f"abstain holds values that are not booleans: {bad[:5]}")
    return text.map(mapping).astype(bool)


def normalise_frame(frame: pd.DataFrame, *, what: str = "results table") -> tuple[pd.DataFrame, list[str]]:
    """Coerce a results table to schema types; return it with warnings about missing columns.

    Raises :class:`InputError` when a column the report cannot do without is absent or unparsable.
    """
    warnings: list[str] = []
    frame = frame.copy()
    if frame.shape[1] == 0:
        # An empty JSONL (no face in the video) has no columns: give it the schema's.
        frame = pd.DataFrame({col: pd.Series(dtype=object) for col in SCHEMA_COLUMNS})
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"{what} lacks the column(s) {', '.join(missing)}; it does not look like a mien results "
            "table (schema version 1, docs/schema.md). Pass the .parquet/.csv/.jsonl written by "
            "`mien analyze`."
        )
    absent = [c for c in SCHEMA_COLUMNS if c not in frame.columns]
    if absent:
        warnings.append(f"{what} lacks column(s) {', '.join(absent)}; the parts of the report that "
                        "need them are left out")
    try:
        for col in _STRING_COLUMNS:
            if col in frame.columns:
                frame[col] = frame[col].astype("string").fillna("").astype(object)
        for col in _INT_COLUMNS:
            if col in frame.columns:
                frame[col] = pd.to_numeric(frame[col]).astype("int64")
        frame["abstain"] = _to_bool(frame["abstain"])
        for col in frame.columns:
            if col in _STRING_COLUMNS or col in _INT_COLUMNS or col == "abstain":
                continue
            frame[col] = pd.to_numeric(frame[col]).astype("float64")
    except (ValueError, TypeError) as exc:
        raise InputError(f"{what} has a column that cannot be parsed ({exc}); re-create it with "
                         "`mien analyze`.") from exc
    if len(frame) and not np.isfinite(frame["time_s"].to_numpy()).all():
        raise InputError(f"{what} has rows without a finite time_s; re-create it with `mien analyze`.")
    frame = frame.sort_values(["source", "track_id", "time_s"], kind="stable").reset_index(drop=True)
    return frame, warnings


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        if path.stat().st_size == 0:
            return pd.DataFrame()
        return pd.read_csv(path, keep_default_na=True, na_values=["nan", "NaN"])
    if suffix == ".jsonl":
        if not path.read_text(encoding="utf-8").strip():
            return pd.DataFrame()
        return pd.read_json(path, lines=True, dtype=False)
    raise InputError(
        f"cannot read results file {path}: unknown suffix {path.suffix!r}; "
        f"pass one of {', '.join(RESULT_SUFFIXES)} written by `mien analyze`."
    )


def load_results(path: str | Path) -> Results:
    """Load one results table (any of the three formats) with its manifest and tracks table."""
    path = Path(path)
    if not path.is_file():
        hint = " (it is a folder)" if path.is_dir() else ""
        raise InputError(f"results file {path} not found{hint}; pass a .parquet, .csv or .jsonl "
                         "written by `mien analyze -o`.")
    try:
        raw = _read_table(path)
    except InputError:
        raise
    except Exception as exc:
        why = " ".join(str(exc).split())  # one line, whatever the parser's message holds
        raise InputError(f"cannot read results file {path}: {why}; is it a complete file written by "
                         "`mien analyze`?") from exc
    frame, warnings = normalise_frame(raw, what=f"results file {path}")
    manifest_path, tracks_path = sidecar_paths(path)
    manifest: dict[str, Any] | None = None
    if manifest_path.is_file():
        try:
            loaded = json.loads(manifest_path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                mismatch = check_manifest_matches(path, loaded)
                if mismatch is None or "no table fingerprint" in mismatch:
                    manifest = loaded
                if mismatch:
                    warnings.append(mismatch)
            else:
                warnings.append(f"{manifest_path.name} is not a JSON object; manifest not shown")
        except (OSError, ValueError) as exc:
            warnings.append(f"{manifest_path.name} could not be read ({exc}); manifest not shown")
    else:
        warnings.append(f"no run manifest beside {path.name} (expected {manifest_path.name}); "
                        "the run's parameters and model are unknown")
    tracks: pd.DataFrame | None = None
    if tracks_path.is_file():
        try:
            tracks = pd.read_csv(tracks_path)
        except Exception as exc:  # noqa: BLE001
            warnings.append(f"{tracks_path.name} could not be read ({exc})")
    return Results(frame=frame, manifest=manifest, tracks=tracks, origin=path.resolve(), warnings=warnings)


def from_frame(frame: pd.DataFrame, manifest: dict[str, Any] | None = None,
               tracks: pd.DataFrame | None = None) -> Results:
    """Wrap an in-memory results table (e.g. ``mien.analyze(...).to_pandas()``)."""
    table, warnings = normalise_frame(frame)
    return Results(frame=table, manifest=manifest, tracks=tracks, origin=None, warnings=warnings)


def coerce_results(item: Any) -> Results:
    """Turn a path, a DataFrame, a :class:`Results` or an analysis result object into ``Results``.

    Objects with ``to_pandas()`` (``mien.analyze``'s result) are accepted so ``mien analyze
    --report`` can hand its result over without writing and re-reading a file; their ``manifest``
    (a dict, or an object with ``to_dict()``) and ``path`` attributes are used when present.
    """
    if isinstance(item, Results):
        return item
    if isinstance(item, (str, Path)):
        return load_results(item)
    if isinstance(item, pd.DataFrame):
        return from_frame(item)
    to_pandas = getattr(item, "to_pandas", None)
    if callable(to_pandas):
        manifest = getattr(item, "manifest", None)
        if manifest is not None and not isinstance(manifest, dict):
            to_dict = getattr(manifest, "to_dict", None)
            manifest = to_dict() if callable(to_dict) else None
        tracks = getattr(item, "tracks", None)
        if tracks is not None and not isinstance(tracks, pd.DataFrame):
            tracks = None
        results = from_frame(to_pandas(), manifest=manifest, tracks=tracks)
        out = getattr(item, "path", None) or getattr(item, "output", None)
        if isinstance(out, (str, Path)):
            results.origin = Path(out).resolve()
        return results
    raise InputError(f"cannot make a report from a {type(item).__name__}; pass results file paths "
                     "or DataFrames in the mien results schema.")


def load_many(items: Any) -> list[Results]:
    """Load one or several results inputs (paths, frames, results objects) in the given order."""
    if isinstance(items, (str, Path, pd.DataFrame, Results)) or hasattr(items, "to_pandas"):
        seq: Sequence[Any] = [items]
    elif isinstance(items, Iterable):
        seq = list(items)
    else:
        seq = [items]
    if not seq:
        raise InputError("no results given; pass at least one results file written by `mien analyze`.")
    return [coerce_results(item) for item in seq]


def pooled_frame(results: Sequence[Results]) -> pd.DataFrame:
    """Concatenate the tables of several results (they keep their own ``source`` column)."""
    frames = [r.frame for r in results if len(r.frame)]
    if not frames:
        return results[0].frame.iloc[0:0].copy() if results else pd.DataFrame(columns=list(SCHEMA_COLUMNS))
    return pd.concat(frames, ignore_index=True)
