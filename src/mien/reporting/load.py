"""Read results files written by ``mien analyze`` (schema version 1, see ``docs/schema.md``).

A results file is ``X.parquet``, ``X.csv`` or ``X.jsonl`` with ``X.parquet.manifest.json`` and
``X.parquet.tracks.csv`` (the table's whole name, see :func:`mien.schema.sidecar_path`) beside it; :mod:`mien.schema` reads all three formats into one typed table, and
this module checks that the report has the columns it needs.

The manifest and the tracks table are optional here: a report made from a table whose manifest
was lost is still useful, so their absence becomes a warning shown in the report, not a failure.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mien.errors import InputError
from mien.manifest import file_sha256
from mien.results import AnalysisResult
from mien.schema import (
    COLUMNS,
    SMOOTH_COLUMNS,
    RunManifest,
    coerce_table,
    legacy_sidecar_path,
    read_manifest,
    read_table,
    sidecar_path,
)

#: Columns without which no part of the report can be drawn.
REQUIRED_COLUMNS: tuple[str, ...] = ("source", "time_s", "track_id", "abstain", *SMOOTH_COLUMNS)


@dataclass
class Results:
    """One results table with its manifest and tracks table (either may be ``None``).

    ``warnings`` collects what was missing or odd, so the report can say so instead of failing.
    ``origin`` is the path of the table (``None`` when the table came from memory); it is used to
    find the source video when the ``source`` column holds a path relative to the table.
    """

    frame: pd.DataFrame
    manifest: RunManifest | None = None
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
        return manifest_inputs(self.manifest)

    @property
    def duration_s(self) -> float | None:
        """The duration of the one source these results cover, from the manifest (else None)."""
        if self.manifest is None or len(self.manifest.sources) != 1:
            return None
        return self.manifest.sources[0].duration_s


def sidecar_paths(table: Path) -> tuple[Path, Path]:
    """``(X.manifest.json, X.tracks.csv)`` for the table ``X`` (``talk.parquet`` →
    ``talk.parquet.manifest.json``); the names older mien wrote (``talk.manifest.json``) are used
    when the new ones are absent."""
    found = []
    for kind in ("manifest", "tracks"):
        new, old = sidecar_path(table, kind), legacy_sidecar_path(table, kind)
        found.append(old if not new.is_file() and old.is_file() else new)
    return found[0], found[1]


def check_manifest_matches(table: Path, manifest: RunManifest) -> str | None:
    """Why ``manifest`` does not describe ``table`` (the fingerprint it records differs), or None."""
    recorded = manifest.table
    if not isinstance(recorded, dict) or not isinstance(recorded.get("sha256"), str):
        return (f"the manifest beside {table.name} records no table fingerprint (older mien); "
                "it cannot be checked against the table")
    if recorded["sha256"] != file_sha256(table):
        return (f"the manifest beside {table.name} describes another table ({recorded.get('file')}, "
                f"{recorded.get('rows')} rows), not this one; manifest not used — re-run `mien analyze`")
    return None


def manifest_inputs(manifest: RunManifest | None) -> list[str]:
    """The input paths (or stream URLs) a run manifest names, in order."""
    return [p for p in (s.path for s in manifest.sources) if p] if manifest is not None else []


def normalise_frame(frame: pd.DataFrame, *, what: str = "results table") -> tuple[pd.DataFrame, list[str]]:
    """Coerce a results table to schema types; return it with warnings about missing columns.

    Raises :class:`InputError` when a column the report cannot do without is absent or unparsable.
    """
    warnings: list[str] = []
    if frame.shape[1] == 0:
        frame = coerce_table(frame)  # an empty JSONL (no face in the video) has no columns
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"{what} lacks the column(s) {', '.join(missing)}; it does not look like a mien results "
            "table (schema version 1, docs/schema.md). Pass the .parquet/.csv/.jsonl written by "
            "`mien analyze`."
        )
    absent = [c for c in COLUMNS if c not in frame.columns]
    if absent:
        warnings.append(f"{what} lacks column(s) {', '.join(absent)}; the parts of the report that "
                        "need them are left out")
    try:
        frame = coerce_table(frame)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{what} has a column that cannot be parsed ({exc}); re-create it with "
                         "`mien analyze`.") from exc
    if len(frame) and not np.isfinite(frame["time_s"].to_numpy(float)).all():
        raise InputError(f"{what} has rows without a finite time_s; re-create it with `mien analyze`.")
    frame = frame.sort_values(["source", "track_id", "time_s"], kind="stable").reset_index(drop=True)
    return frame, warnings


def load_results(path: str | Path) -> Results:
    """Load one results table (any of the three formats) with its manifest and tracks table."""
    path = Path(path)
    frame, warnings = normalise_frame(read_table(path), what=f"results file {path}")
    manifest_path, tracks_path = sidecar_paths(path)
    manifest: RunManifest | None = None
    if manifest_path.is_file():
        try:
            manifest = read_manifest(manifest_path)
        except InputError as exc:
            warnings.append(f"{manifest_path.name} could not be read ({exc}); manifest not shown")
        if manifest is not None:
            mismatch = check_manifest_matches(path, manifest)
            if mismatch is not None and "describes another table" in mismatch:
                manifest = None
            if mismatch:
                warnings.append(mismatch)
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


def from_frame(frame: pd.DataFrame, manifest: RunManifest | None = None,
               tracks: pd.DataFrame | None = None) -> Results:
    """Wrap an in-memory results table (e.g. ``mien.analyze(...).to_pandas()``)."""
    table, warnings = normalise_frame(frame)
    return Results(frame=table, manifest=manifest, tracks=tracks, origin=None, warnings=warnings)


def coerce_results(item: Any) -> Results:
    """Turn a path, a DataFrame, a :class:`Results` or an :class:`~mien.results.AnalysisResult`
    (what ``mien.analyze`` returns, with its manifest) into ``Results``."""
    if isinstance(item, Results):
        return item
    if isinstance(item, (str, Path)):
        return load_results(item)
    if isinstance(item, pd.DataFrame):
        return from_frame(item)
    if isinstance(item, AnalysisResult):
        return from_frame(item.table, manifest=item.manifest)
    raise InputError(f"cannot make a report from a {type(item).__name__}; pass results file paths "
                     "or DataFrames in the mien results schema.")


def load_many(items: Any) -> list[Results]:
    """Load one or several results inputs (paths, frames, results objects) in the given order."""
    if isinstance(items, (str, Path, pd.DataFrame, Results, AnalysisResult)):
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
        return results[0].frame.iloc[0:0].copy() if results else pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(frames, ignore_index=True)
