"""The schema module is the one description of the results files; docs/schema.md follows it."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from mien.errors import InputError
from mien.faces import Faces
from mien.results import AnalysisResult, RowBuffer
from mien.schema import (
    COLUMNS,
    DTYPES,
    RunManifest,
    SourceRun,
    read_manifest,
    read_table,
    schema_markdown,
    sidecar_path,
    table_columns,
)


def test_docs_schema_md_shows_the_schema_table():
    doc = (REPO / "docs" / "schema.md").read_text()
    assert schema_markdown() in doc, "docs/schema.md is out of date: paste mien.schema.schema_markdown() into it"


def test_sidecar_names():
    # after the table's whole name, so r.parquet and r.csv never share a sidecar (issue #16)
    assert sidecar_path("out/r.parquet", "manifest") == Path("out/r.parquet.manifest.json")
    assert sidecar_path(Path("r.csv"), "tracks") == Path("r.csv.tracks.csv")


def _result(n_frames: int = 3) -> AnalysisResult:
    buf = RowBuffer()
    for f in range(n_frames):
        faces = Faces(np.array([[0, 0, 40, 40]]), np.array([0.9]), np.zeros((1, 5, 2)), track_id=[0],
                      probs=np.eye(8)[:1], smoothed=np.eye(8)[:1], data={"mouth_open": [f / 10]})
        buf.add(table_columns(faces, source="v.mp4", frame_index=f, time_s=f / 25))
    run = SourceRun(input={"path": "v.mp4"}, frames={"decoded": 3, "analysed": 3, "fps": 25.0})
    return AnalysisResult(buf.to_frame(), RunManifest(sources=[run]))


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_round_trip_keeps_dtypes_and_extra_columns(tmp_path, suffix):
    res = _result()
    out = res.save(tmp_path / f"r{suffix}")
    back = read_table(out)
    assert tuple(back.columns) == (*COLUMNS, "mouth_open")
    for col, dtype in DTYPES.items():
        assert str(back[col].dtype) == dtype, col
    assert list(back["top_label"]) == ["neutral"] * 3 and list(back["abstain_reason"]) == [""] * 3
    np.testing.assert_allclose(back["mouth_open"], [0.0, 0.1, 0.2])
    manifest = read_manifest(sidecar_path(out, "manifest"))
    assert manifest.table["rows"] == 3 and manifest.table["file"] == f"r{suffix}"  # the table's fingerprint
    assert dataclasses.replace(manifest, table=None) == res.manifest and manifest.frames["decoded"] == 3
    assert manifest.source.output == str(out)


def test_manifest_has_one_shape_for_one_source_and_many():
    one = _result().manifest
    many = RunManifest.combine([one, one], failures=[{"source": "bad.mp4", "error": "unreadable"}])
    assert json.loads(one.to_json()).keys() == json.loads(many.to_json()).keys()
    assert len(many.sources) == 2 and many.status == "partial"
    with pytest.raises(ValueError, match="2 sources"):
        many.frames


def test_version_1_manifests_are_read():
    v1 = {"mien_version": "0.1.0", "schema_version": 1, "status": "partial", "input": {"path": "/v/a.mp4"},
          "frames": {"decoded": 10, "fps": 5.0}, "warnings": ["truncated"], "parameters": {"stride": 1}}
    m = RunManifest.from_dict(v1)
    assert m.manifest_version == 1 and m.source.path == "/v/a.mp4" and m.warnings == ["truncated"]
    assert m.source.duration_s == 2.0 and m.parameters == {"stride": 1}


def test_unreadable_files_are_input_errors(tmp_path):
    bad = tmp_path / "r.manifest.json"
    bad.write_text("{}")
    with pytest.raises(InputError, match="names no sources"):
        read_manifest(bad)
    with pytest.raises(InputError, match="not found"):
        read_table(tmp_path / "missing.parquet")


def test_the_manifest_records_the_numeric_libraries_and_the_cpu_features():
    """Results differ slightly between instruction sets (tests/test_outputs_unchanged.py), so a
    manifest says which CPU features and library versions produced it."""
    import sys

    import cv2
    import onnxruntime

    from mien.schema import RunManifest

    env = RunManifest().environment
    assert env["onnxruntime"] == onnxruntime.__version__ and env["opencv"] == cv2.__version__
    assert env["numpy"] == np.__version__ and env["python"] == sys.version.split()[0]
    flags: set[str] = set()
    if Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
    for feature in ("avx2", "avx512f", "avx512_vnni", "asimd"):
        assert (feature in env["cpu"].split("; ")[-1].split()) == (feature in flags), (feature, env["cpu"])
    assert json.loads(json.dumps(RunManifest().to_dict()))["environment"] == env
