"""The command line on real clips and on bad input: one clear line, a non-zero exit, no traceback."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import av
import numpy as np
import pandas as pd
import pytest
from conftest import REPO, shared_video

from mien.labels import EXPRESSIONS
from mien.schema import ALL_COLUMNS


def run_mien(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mien", *args], capture_output=True, text=True, timeout=timeout,
        cwd=os.getcwd(), env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def assert_clean_error(proc: subprocess.CompletedProcess, must_name: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("mien: error:")]
    assert errors, proc.stderr
    assert must_name in errors[0]


@pytest.mark.slow
def test_analyze_writes_table_manifest_tracks_and_annotation(tmp_path):
    video = shared_video("single_face.mp4")
    out = tmp_path / "single.parquet"
    ann = tmp_path / "annotated.mp4"
    proc = run_mien("analyze", str(video), "-o", str(out), "--annotate", str(ann), "--blur-faces", "--quiet")
    assert proc.returncode == 0, proc.stderr
    df = pd.read_parquet(out)
    assert tuple(df.columns) == ALL_COLUMNS  # geometry is on by default
    assert len(df) == 72 and df["track_id"].nunique() == 1
    ok = df[~df["abstain"]]
    assert len(ok) > 60
    probs = ok[[f"prob_{label}" for label in EXPRESSIONS]].to_numpy()
    assert abs(probs.sum(1) - 1).max() < 1e-6
    assert set(ok["top_label"]) <= set(EXPRESSIONS)
    assert df["time_s"].is_monotonic_increasing
    manifest = json.loads((tmp_path / "single.parquet.manifest.json").read_text())
    (run,) = manifest["sources"]
    assert run["frames"]["decoded"] == 72 and run["frames"]["analysed"] == 72
    assert len(run["input"]["sha256_first_mib"]) == 64
    assert {m["role"] for m in manifest["models"]} == {"face_detector", "expression", "face_mesh"}
    assert manifest["parameters"]["stride"] == 1
    tracks = pd.read_csv(tmp_path / "single.parquet.tracks.csv")
    assert len(tracks) == 1 and tracks["n_frames"].iloc[0] == 72
    with av.open(str(ann)) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert n == 72


@pytest.mark.slow
def test_csv_and_jsonl_outputs_and_stride(tmp_path):
    video = shared_video("single_face.mp4")
    for suffix in (".csv", ".jsonl"):
        out = tmp_path / f"r{suffix}"
        proc = run_mien("analyze", str(video), "-o", str(out), "--stride", "6", "--quiet")
        assert proc.returncode == 0, proc.stderr
        df = pd.read_csv(out) if suffix == ".csv" else pd.read_json(out, lines=True)
        assert sorted(df["frame_index"].unique()) == list(range(0, 72, 6))


@pytest.mark.slow
def test_no_face_video_gives_zero_rows_and_exit_0(tmp_path):
    out = tmp_path / "nf.parquet"
    proc = run_mien("analyze", str(shared_video("no_face.mp4")), "-o", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_parquet(out)
    assert len(table) == 0
    # the columns and dtypes of a run that found faces (geometry on): a study's tables line up
    assert list(table.columns) == list(ALL_COLUMNS)
    assert str(table["pose_yaw_deg"].dtype) == "float64" and str(table["geo_blink"].dtype) == "int64"
    assert json.loads((tmp_path / "nf.parquet.manifest.json").read_text())["sources"][0]["frames"]["decoded"] == 95  # the container announces 98; 95 decode


def test_missing_path(tmp_path):
    assert_clean_error(run_mien("analyze", str(tmp_path / "nope.mp4")), "nope.mp4")


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    proc = run_mien("analyze", str(p))
    assert_clean_error(proc, "empty.mp4")
    assert "empty" in proc.stderr


def test_text_file_named_mp4(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 50)
    assert_clean_error(run_mien("analyze", str(p)), "notes.mp4")


@pytest.mark.slow
def test_truncated_video_keeps_frames_before_the_damage(tmp_path):
    src = shared_video("WolfgangLanger_Pexels.mp4")
    p = tmp_path / "truncated.mp4"
    data = src.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    out = tmp_path / "t.parquet"
    proc = run_mien("analyze", str(p), "-o", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stderr and "truncated" in proc.stderr
    df = pd.read_parquet(out)
    assert 100 < df["frame_index"].nunique() < 472
    manifest = json.loads((tmp_path / "t.parquet.manifest.json").read_text())
    assert manifest["status"] == "partial" and manifest["sources"][0]["warnings"]


def test_unreachable_stream():
    proc = run_mien("analyze", "tcp://127.0.0.1:9", "--quiet", timeout=60)
    assert_clean_error(proc, "tcp://127.0.0.1:9")


def test_bad_output_suffix(tmp_path):
    proc = run_mien("analyze", str(shared_video("single_face.mp4")), "-o", str(tmp_path / "x.xlsx"))
    assert_clean_error(proc, "x.xlsx")


@pytest.mark.slow
def test_folder_survives_a_bad_file(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(shared_video("single_face.mp4"), folder / "a_good.mp4")
    (folder / "b_broken.mp4").write_text("garbage")
    shutil.copy(shared_video("no_face.mp4"), folder / "c_noface.mp4")
    out = tmp_path / "out"
    proc = run_mien("analyze", str(folder), "-o", str(out), "--quiet")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "1 of 3 inputs failed" in proc.stderr and "b_broken.mp4" in proc.stderr
    assert len(pd.read_parquet(out / "a_good.mp4.parquet")) == 72
    assert len(pd.read_parquet(out / "c_noface.mp4.parquet")) == 0
    assert not (out / "b_broken.mp4.parquet").exists()
    assert not list(out.rglob("*.part")) and not list(out.rglob(".*part*"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["tcp", "udp", "http"])
def test_live_stream_from_loopback(tmp_path, protocol):
    """MPEG-TS over TCP and UDP, and MJPEG over HTTP (as IP cameras serve it), streamed in real
    time from a subprocess on loopback."""
    video = shared_video("WolfgangLanger_Pexels.mp4")
    port = _free_port()
    url = f"{protocol}://127.0.0.1:{port}" + ("/stream.mjpg" if protocol == "http" else "")
    out = tmp_path / "live.parquet"
    if protocol == "http":
        sender_cmd = [sys.executable, str(REPO / "tests" / "mjpeg_server.py"), str(video), str(port), "12"]
    else:
        sender_cmd = [sys.executable, str(REPO / "tests" / "stream_sender.py"), str(video),
                      str(port) if protocol == "tcp" else url, "12"]
    mien_cmd = [sys.executable, "-m", "mien", "analyze", url, "-o", str(out), "--max-seconds", "4", "--quiet"]
    if protocol in ("tcp", "http"):  # the sender listens, mien connects
        sender = subprocess.Popen(sender_cmd)
        time.sleep(1.0)
        analyser = subprocess.Popen(mien_cmd, stderr=subprocess.PIPE, text=True)
    else:  # mien listens, the sender pushes datagrams
        analyser = subprocess.Popen(mien_cmd, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        sender = subprocess.Popen(sender_cmd)
    try:
        _, err = analyser.communicate(timeout=120)
        assert analyser.returncode == 0, err
    finally:
        sender.kill()
        sender.wait()
    df = pd.read_parquet(out)
    m = json.loads((tmp_path / "live.parquet.manifest.json").read_text())["sources"][0]["frames"]
    print(f"live: analysed {m['analysed']}, dropped {m['dropped']}, latency p50 {m['latency_ms_p50']:.1f} ms "
          f"p95 {m['latency_ms_p95']:.1f} ms")
    assert m["analysed"] >= 20 and len(df) >= 20
    # every decoded frame is analysed or counted as dropped (the few in the buffer at the stop excepted)
    assert 0 <= m["decoded"] - (m["analysed"] + m["dropped"]) <= 6
    assert m["latency_ms_p50"] is not None and m["latency_ms_p50"] < 1000
    assert df["time_s"].is_monotonic_increasing


@pytest.mark.slow
def test_still_images_and_image_folder(tmp_path):
    with av.open(str(shared_video("single_face.mp4"))) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="bgr24")
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), frame)
    cv2.imwrite(str(folder / "b.png"), frame[:, ::-1])
    proc = run_mien("analyze", str(folder / "a.jpg"), "-o", str(tmp_path / "one.csv"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    one = pd.read_csv(tmp_path / "one.csv")
    assert len(one) == 1 and one["frame_index"].iloc[0] == 0 and one["time_s"].iloc[0] == 0
    proc = run_mien("analyze", str(folder), "-o", str(tmp_path / "out"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    for name in ("a.jpg", "b.png"):  # each input's own name and suffix, plus .parquet
        assert len(pd.read_parquet(tmp_path / "out" / f"{name}.parquet")) == 1


@pytest.mark.slow
def test_annotated_still_for_a_still_input(tmp_path):
    import cv2

    with av.open(str(shared_video("single_face.mp4"))) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="bgr24")
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), frame)
    ann = tmp_path / "ann" / "a_annotated.png"
    proc = run_mien("analyze", str(photo), "-o", str(tmp_path / "a.csv"), "--annotate", str(ann), "--blur-faces", "--quiet")
    assert proc.returncode == 0, proc.stderr
    drawn = cv2.imread(str(ann))
    assert drawn.shape == frame.shape
    row = pd.read_csv(tmp_path / "a.csv").iloc[0]
    x1, y1, x2, y2 = (int(round(row[k])) for k in ("x1", "y1", "x2", "y2"))
    inside = np.abs(drawn[y1 + 3:y2 - 3, x1 + 3:x2 - 3].astype(int) - frame[y1 + 3:y2 - 3, x1 + 3:x2 - 3]).mean()
    px, py = int(0.2 * (x2 - x1)), int(0.2 * (y2 - y1))
    away = np.ones(frame.shape[:2], bool)
    away[max(y1 - py - 30, 0):y2 + py, max(x1 - px, 0):x2 + px] = False  # the box, its blur margin, its label
    assert inside > 5  # the face is blurred and boxed
    assert np.array_equal(drawn[away], frame[away])  # the rest of the photo is the photo
    assert not list(ann.parent.glob(".*"))  # written whole, no temp file left
    # a still asked of a video: a one-line error before any work
    proc = run_mien("analyze", str(shared_video("single_face.mp4")), "-o", str(tmp_path / "v.csv"),
                    "--annotate", str(tmp_path / "v.png"))
    assert proc.returncode == 2 and "annotates a still-image input" in proc.stderr
    assert not (tmp_path / "v.csv").exists()


@pytest.mark.slow
def test_prior_strength_option_shifts_towards_rare_expressions_and_is_recorded(tmp_path):
    video = shared_video("single_face.mp4")
    rare = [f"prob_{label}" for label in ("disgust", "fear", "contempt")]
    from mien.expression import ExpressionModel

    shipped = ExpressionModel.load().prior_strength  # the model card's
    assert 0 <= shipped <= 1
    runs = {"default": (), "ferplus": ("--prior-strength", "0"), "half": ("--prior-strength", "0.5"),
            "uniform": ("--prior-strength", "1"), "card": ("--prior-strength", str(shipped))}
    mean_rare = {}
    for name, extra in runs.items():
        out = tmp_path / f"{name}.parquet"
        proc = run_mien("analyze", str(video), "-o", str(out), "--stride", "4", "--smoothing", "0", "--quiet", *extra)
        assert proc.returncode == 0, proc.stderr
        df = pd.read_parquet(out)
        mean_rare[name] = df.loc[~df["abstain"], rare].to_numpy().sum(1).mean()
        manifest = json.loads((tmp_path / f"{name}.parquet.manifest.json").read_text())
        expr = next(m for m in manifest["models"] if m["role"] == "expression")
        assert manifest["parameters"]["prior_strength"] == (None if name == "default" else float(extra[1]))
        assert expr["prior_strength"] == (shipped if name == "default" else float(extra[1]))
    assert mean_rare["ferplus"] < mean_rare["half"] < mean_rare["uniform"]
    assert mean_rare["default"] == pytest.approx(mean_rare["card"], rel=1e-6)  # no option: the card's strength


def test_prior_strength_out_of_range(tmp_path):
    proc = run_mien("analyze", str(tmp_path / "x.mp4"), "--prior-strength", "2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "usage: mien analyze" in proc.stderr and "argument --prior-strength: 2 must be ≤ 1" in proc.stderr


def test_a_subcommand_that_cannot_be_imported_says_so(monkeypatch, capsys):
    import importlib

    from mien import cli

    real = importlib.import_module

    def broken(name, *args):
        if name == "mien.audit.cli":
            raise ImportError("No module named 'mien.audit.metrics'")
        return real(name, *args)

    monkeypatch.setattr(cli.importlib, "import_module", broken)
    assert cli.main(["evaluate", "faces/", "-o", "audit.json"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mien: error:")
    assert "mien.audit.cli" in err[0] and "mien.audit.metrics" in err[0]
    assert "report" in cli.build_parser().format_help()  # the other subcommands are still there


def test_cli_defaults_come_from_the_options_dataclasses():
    from mien.cli import build_parser
    from mien.options import AnalysisOptions, QualityThresholds

    args = build_parser().parse_args(["analyze", "x.mp4"])
    d, q = AnalysisOptions(), QualityThresholds()
    assert (args.detect_threshold, args.detect_every, args.smoothing) == (d.score_threshold, d.detect_every,
                                                                           d.smoothing_tau_s)
    assert (args.min_face, args.min_det_score, args.min_sharpness, args.max_yaw) == (
        q.min_face_px, q.min_det_score, q.min_sharpness, q.max_abs_yaw_deg)
    from mien.cli import _analysis_options

    assert _analysis_options(args).mesh_tracking is d.mesh_tracking is True
    off = build_parser().parse_args(["analyze", "x.mp4", "--no-mesh-tracking"])
    assert _analysis_options(off).mesh_tracking is False


def test_info_lists_every_model_analyze_runs_and_the_machine():
    """``mien info`` names (and SHA-256 checks) what ``mien analyze`` runs by default on a CPU:
    the detector, the int8 expression twin, the face mesh; and the CPU features the manifest records."""
    from mien.expression import ExpressionModel
    from mien.geometry.mesh import FaceMesh

    proc = run_mien("info", timeout=60)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["expression_model"].startswith(ExpressionModel.load(precision="float").name + " ")
    assert info["expression_model_on_cpu"].startswith(ExpressionModel.load(precision="int8").name + " ")
    assert info["face_mesh"].startswith(FaceMesh.load().card["name"] + " ")
    assert all("SHA-256 verified" in info[k] for k in ("face_detector", "expression_model",
                                                       "expression_model_on_cpu", "face_mesh"))
    import onnxruntime

    assert info["environment"]["cpu"] and info["environment"]["python"] == sys.version.split()[0]
    assert info["environment"]["onnxruntime"] == onnxruntime.__version__
