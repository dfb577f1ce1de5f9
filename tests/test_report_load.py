"""The loader reads all three results formats (as mien's own writer writes them) the same way."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mien.errors import InputError
from mien.reporting.load import (
    REQUIRED_COLUMNS,
    coerce_results,
    load_many,
    load_results,
)
from mien.reporting.synthetic import demo_results
from mien.results import AnalysisResult, write_results
from mien.schema import COLUMNS, RunManifest, SourceRun, empty_table

MANIFEST = RunManifest(sources=[SourceRun(input={"path": "/videos/demo.mp4"},
                                          frames={"decoded": 250, "fps": 25.0, "analysed": 250})])


def write(frame: pd.DataFrame, path: Path) -> Path:
    return write_results(frame, MANIFEST, path)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_formats_round_trip(tmp_path: Path, suffix: str) -> None:
    frame = demo_results(duration_s=4.0, n_tracks=2)
    res = load_results(write(frame, tmp_path / f"out{suffix}"))
    got = res.frame
    assert tuple(got.columns) == COLUMNS
    assert len(got) == len(frame)
    assert got["abstain"].dtype == bool and got["abstain"].sum() == frame["abstain"].sum()
    assert got["track_id"].dtype == np.int64
    assert set(got["abstain_reason"]) == {"", "small_face"}  # CSV/JSONL empty strings come back as ""
    assert set(got.loc[got["abstain"], "top_label"]) == {""}
    want = frame.sort_values(["source", "track_id", "time_s"]).reset_index(drop=True)
    np.testing.assert_allclose(got["smooth_happiness"], want["smooth_happiness"], equal_nan=True)
    np.testing.assert_allclose(got["time_s"], want["time_s"])
    table = res.manifest.table  # the writer records the table's fingerprint
    assert dataclasses.replace(res.manifest, table=None) == MANIFEST
    assert table["rows"] == len(frame) and table["file"] == f"out{suffix}" and len(table["sha256"]) == 64
    assert res.tracks is not None and len(res.tracks) == 2
    assert res.warnings == []


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_no_face_results(tmp_path: Path, suffix: str) -> None:
    res = load_results(write(empty_table(), tmp_path / f"none{suffix}"))
    assert len(res.frame) == 0
    assert set(REQUIRED_COLUMNS) <= set(res.frame.columns)
    assert res.sources() == ["/videos/demo.mp4"]  # from the manifest, since no row names it


def test_missing_manifest_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "bare.csv"
    demo_results(duration_s=1.0).to_csv(path, index=False)
    res = load_results(path)
    assert res.manifest is None and res.tracks is None
    assert any("manifest" in w for w in res.warnings)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found") as info:
        load_results(tmp_path / "missing.parquet")
    assert "missing.parquet" in str(info.value)


def test_wrong_suffix_and_wrong_table(tmp_path: Path) -> None:
    odd = tmp_path / "results.xlsx"
    odd.write_text("x")
    with pytest.raises(InputError, match="suffix"):
        load_results(odd)
    other = tmp_path / "other.csv"
    pd.DataFrame({"a": [1], "b": [2]}).to_csv(other, index=False)
    with pytest.raises(InputError, match="lacks the column"):
        load_results(other)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="cannot read"):
        load_results(garbage)


def test_bad_abstain_values(tmp_path: Path) -> None:
    frame = demo_results(duration_s=1.0)
    frame["abstain"] = "maybe"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InputError, match="abstain"):
        load_results(path)


def test_in_memory_inputs() -> None:
    frame = demo_results(duration_s=1.0)
    analysis = AnalysisResult(frame, MANIFEST)
    res = coerce_results(analysis)
    assert res.manifest == MANIFEST and len(res.frame) == len(frame)
    many = load_many([frame, analysis])
    assert len(many) == 2
    with pytest.raises(InputError):
        load_many([])
    with pytest.raises(InputError):
        coerce_results(42)


def test_manifest_duration(tmp_path: Path) -> None:
    res = load_results(write(demo_results(duration_s=1.0), tmp_path / "r.parquet"))
    assert res.duration_s == pytest.approx(10.0)  # decoded / fps
    assert SourceRun(input={"path": "x", "duration_s": 12.5}).duration_s == 12.5
    assert load_results(write(demo_results(duration_s=1.0), tmp_path / "r.csv")).duration_s == pytest.approx(10.0)


def test_manifest_that_is_not_an_object(tmp_path: Path) -> None:
    path = write(demo_results(duration_s=1.0), tmp_path / "r.parquet")
    (tmp_path / "r.parquet.manifest.json").write_text(json.dumps([1, 2]))
    res = load_results(path)
    assert res.manifest is None and any("not a JSON object" in w for w in res.warnings)
