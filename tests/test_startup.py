"""Start-up: ``mien analyze`` must not import what only other commands need."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest
from conftest import shared_video

PROBE = """
import json, sys
from mien.cli import main
rc = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.startswith(("mien.audit", "mien.reporting")))
print(json.dumps({"rc": rc, "heavy": heavy, "pandas": "pandas" in sys.modules, "pyarrow": "pyarrow" in sys.modules}))
"""


def _run(*argv: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_analyze_does_not_import_the_audit_or_report_commands(tmp_path):
    import av

    with av.open(str(shared_video("WolfgangLanger_Pexels.mp4"))) as c:
        img = next(c.decode(video=0)).to_ndarray(format="bgr24")
    still = tmp_path / "face.png"
    cv2.imwrite(str(still), img)
    out = _run("analyze", str(still), "-o", str(tmp_path / "r.parquet"), "--quiet")
    assert out["rc"] == 0 and out["heavy"] == []
    assert (tmp_path / "r.parquet").is_file()


@pytest.mark.slow
def test_analyze_writes_its_tables_without_pandas(tmp_path):
    """pandas costs more start-up than both models: the table, its tracks and manifest are
    written from columns (mien.table); pyarrow is loaded for Parquet only."""
    clip = shared_video("single_face.mp4")
    for suffix, arrow in ((".parquet", True), (".csv", False)):
        out = _run("analyze", str(clip), "-o", str(tmp_path / f"r{suffix}"), "--quiet", "--max-frames", "8")
        assert out == {"rc": 0, "heavy": [], "pandas": False, "pyarrow": arrow}, suffix
        assert (tmp_path / f"r{suffix}.tracks.csv").is_file()


HEAVY = ("numpy", "pandas", "pyarrow", "cv2", "onnxruntime", "av", "scipy", "torch")


def _heavy_after(code: str) -> list[str]:
    """The numerical and video libraries a fresh interpreter has loaded after running ``code``."""
    probe = f"import sys\n{code}\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1].replace("'", '"'))


def test_import_mien_is_light():
    """``import mien`` loads no numerical or video library: the public names come on first use."""
    assert _heavy_after("import mien") == []


def test_the_cli_and_the_detector_weights_import_no_numerical_library():
    """The command line is parsed, and the detector's weights are read and checked, before numpy,
    OpenCV, PyAV or ONNX Runtime load (``mien info`` and usage errors stay quick)."""
    assert _heavy_after("import mien.cli, mien.detector_weights\nmien.detector_weights.detector_weights()") == []


def test_registering_every_command_imports_no_pandas():
    """``mien --help`` (and a usage error) lists every command without loading pandas or the
    engine: the report, episodes and export commands import what they need when they run. (The
    audit commands' module needs numpy for its defaults.)"""
    loaded = _heavy_after("from mien.cli import build_parser\nbuild_parser(['--help'])")
    assert set(loaded) <= {"numpy"}, loaded


def test_other_commands_are_still_registered():
    from mien.cli import build_parser

    for argv in ([], ["--help"], ["report", "r.parquet"], ["evaluate", "x.npz"]):
        choices = build_parser(argv)._subparsers._group_actions[0].choices  # type: ignore[union-attr]
        assert {"analyze", "info", "evaluate", "report"} <= set(choices), argv
    assert set(build_parser(["analyze", "v.mp4"])._subparsers._group_actions[0].choices) == {"analyze", "info"}  # type: ignore[union-attr]


def test_the_engine_imports_without_pandas():
    """pandas (the slowest import at start-up) is loaded only when a table is built or read."""
    code = "import sys, mien.pipeline, mien.cli; print('pandas' in sys.modules, 'pyarrow' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]


WARM_PROBE = """
import json, sys, threading
from mien.options import AnalysisOptions
from mien.pipeline import Analyzer
from mien.geometry import measures, pose
Analyzer(AnalysisOptions(geometry=sys.argv[1] == "on"))
for t in threading.enumerate():
    if t.name == "mien-sessions":
        t.join()
print(json.dumps([measures._affine_weights.cache_info().currsize, pose.canonical_face.cache_info().currsize]))
"""


@pytest.mark.parametrize("geometry", ["on", "off"])
def test_the_session_builder_warms_the_geometry_before_the_first_frame(geometry):
    """The canonical face and the measures' weights are built in the background with the ONNX
    sessions, not on a video's first frame (which paid 12-16 ms for them: bench/RESULTS.md,
    "Idle-machine figures"); without geometry they are not built at all."""
    proc = subprocess.run([sys.executable, "-c", WARM_PROBE, geometry], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = [1, 1] if geometry == "on" else [0, 0]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected
