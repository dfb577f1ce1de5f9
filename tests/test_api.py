"""The public API: a light ``import mien``, typed keywords, no upward imports, per-frame streaming."""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, shared_video

import mien
from mien.errors import InputError
from mien.options import AnalysisFields, AnalysisOptions


def test_public_names_resolve_and_import_mien_stays_light():
    for name in mien.__all__:
        assert getattr(mien, name) is not None, name
    code = "import sys, mien; print(sorted(m for m in sys.modules if m.startswith('mien')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO / "src")}).stdout
    assert out.strip() == "['mien', 'mien._lazy', 'mien._version']"  # the lazy-name helper, no engine module


def test_analyze_keywords_are_the_options_fields():
    assert set(AnalysisFields.__annotations__) == {f.name for f in dataclasses.fields(AnalysisOptions)}
    with pytest.raises(InputError, match="unknown analysis option"):
        mien.analyze("x.mp4", strid=2)  # type: ignore[call-arg]
    with pytest.raises(InputError, match="not both"):
        mien.analyze("x.mp4", options=AnalysisOptions(), stride=2)


def test_no_engine_module_imports_the_package_or_reaches_upward():
    """The engine is a straight line: no module imports ``mien`` itself (for __version__ or
    anything else), and the engine's modules never import the report, the audit or the CLI."""
    engine = ["_version", "errors", "labels", "faces", "stats", "schema", "options", "runtime", "manifest",
              "sources", "detection", "tracking", "alignment", "quality", "expression", "smoothing",
              "results", "pipeline", "annotate"]
    for path in (REPO / "src" / "mien").rglob("*.py"):
        text = path.read_text()
        assert "\nimport mien\n" not in text and "from mien import" not in text, path
        if path.stem in engine and path.parent.name == "mien":
            upward = re.findall(r"^\s*(?:from|import) (mien\.(?:audit|reporting|cli|training)\b\S*)", text, re.M)
            assert not upward, f"{path.name} imports {upward}"


STAGES = ["sources", "detection", "tracking", "alignment", "quality", "expression", "smoothing", "results",
          "pipeline"]


def test_each_stage_imports_no_later_stage():
    """source → detect → track → align → quality → classify → smooth → results, then the pipeline
    that runs them: a stage may use the shared records (faces, schema, options, stats), never a
    stage further along the line."""
    for i, stage in enumerate(STAGES):
        text = (REPO / "src" / "mien" / f"{stage}.py").read_text()
        imported = set(re.findall(r"^\s*(?:from|import) mien\.(\w+)", text, re.M))
        later = imported & set(STAGES[i + 1:])
        assert not later, f"mien.{stage} imports the later stage(s) {sorted(later)}"


@pytest.mark.slow
def test_stream_yields_each_analysed_frame_as_analyze_source_tabulates_it(analyzer):
    video = str(shared_video("single_face.mp4"))
    frames = list(analyzer.stream(video))
    table = analyzer.analyze_source(video).table
    assert len(frames) == 72 and [f.index for f in frames] == list(range(72))
    faces = mien.Faces.merge([f.faces for f in frames])
    assert len(faces) == len(table)
    np.testing.assert_allclose(faces.xyxy, table[["x1", "y1", "x2", "y2"]].to_numpy())
    np.testing.assert_allclose(faces.smoothed, table[[c for c in table if c.startswith("smooth_")]].to_numpy())
    assert faces.top_label == table["top_label"].tolist()
    assert isinstance(frames[0].image, np.ndarray) and isinstance(table, pd.DataFrame)


@pytest.mark.slow
def test_analyze_takes_a_list_of_files_into_one_result(tmp_path):
    """``mien.analyze([a, b, broken])``: one result told apart by ``source``, the broken file in
    ``failures``; a missing file is an input error before any work; a file named twice runs once."""
    one, none = str(shared_video("single_face.mp4")), str(shared_video("no_face.mp4"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 but the rest is gone")
    again = os.path.relpath(one)  # the same file by another name
    result = mien.analyze([one, none, str(broken), again], stride=6, geometry=False)
    assert set(result.table["source"]) == {one}  # no_face.mp4 adds frames, not rows
    assert [f["source"] for f in result.failures] == [str(broken)]
    assert [s["input"]["path"] for s in result.manifest.to_dict()["sources"]] == [one, none]
    with pytest.raises(InputError, match="no such file"):
        mien.analyze([one, str(tmp_path / "missing.mp4")])
    with pytest.raises(InputError, match="empty list"):
        mien.analyze([])
