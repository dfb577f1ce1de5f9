"""Issue #16: nothing lost, nothing crashes. Each bad input, fault or signal is built on the fly
(from the shared clips, with PyAV/numpy: no ffmpeg binary needed) and the test checks the exit
code, the message, and what was kept on disk. Signal tests use real subprocesses."""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import shared_video


def sidecar_path(table: Path, kind: str) -> Path:
    """The documented sidecar names (docs/schema.md): after the table's whole name."""
    return table.with_name(table.name + {"manifest": ".manifest.json", "tracks": ".tracks.csv",
                                         "checkpoint": ".checkpoint"}[kind])

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def run_mien(*args: str, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mien", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or os.getcwd(), env=ENV, errors="replace")


class _InProcess:
    """``mien.cli.main`` in this process (no interpreter start-up): returncode, stdout, stderr."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        from mien.cli import main

        self.capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
        out, err = self.capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)


@pytest.fixture
def mien(capsys) -> _InProcess:
    return _InProcess(capsys)


def start_mien(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mien", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The run failed with ``code``, no traceback, and its error line names every needle."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert lines, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_of(table: Path) -> dict:
    """The manifest beside ``table``, with its one source's entries (input, frames, warnings)
    at the top level, whatever the manifest layout."""
    m = json.loads(sidecar_path(table, "manifest").read_text())
    sources = m.get("sources") or []
    return {**m, **sources[0]} if len(sources) == 1 else m


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A real results table (single_face.mp4, every 6th frame) with its sidecars."""
    from mien.cli import main

    out = tmp_path_factory.mktemp("results") / "r.parquet"
    assert main(["analyze", str(shared_video("single_face.mp4")), "-o", str(out), "--stride", "6", "--quiet"]) == 0
    return out


def wait_for(path: Path, timeout: float = 120) -> None:
    t = time.monotonic()
    while not path.exists():
        assert time.monotonic() - t < timeout, f"{path} never appeared"
        time.sleep(0.05)


# ------------------------------------------------------------------------------ 1. outputs = inputs
def test_report_and_episodes_refuse_to_overwrite_their_input(results, tmp_path, mien):
    csv = tmp_path / "R.csv"
    pd.read_parquet(results).to_csv(csv, index=False)
    before = digest(results), digest(csv)
    one_line_error(mien("report", str(results), "-o", str(results)), 2, "is also the input", "destroy")
    one_line_error(mien("episodes", str(csv), "-o", str(csv)), 2, "is also the input")
    # a sidecar of an input is an input too
    manifest = sidecar_path(results, "manifest")
    one_line_error(mien("episodes", str(results), "-o", str(sidecar_path(results, "tracks"))), 2, "is also the input")
    assert (digest(results), digest(csv)) == before and manifest.is_file()


def test_analyze_refuses_outputs_that_are_inputs_or_each_other(tmp_path, mien):
    video = tmp_path / "v.csv"  # a video that happens to be named .csv
    shutil.copy(shared_video("single_face.mp4"), video)
    before = digest(video)
    one_line_error(mien("analyze", str(video), "-o", str(video)), 2, "is also the input")
    # the same file spelled another way (a symlink) is caught: real paths are compared
    (tmp_path / "link.csv").symlink_to(video)
    one_line_error(mien("analyze", str(video), "-o", str(tmp_path / "link.csv")), 2, "is also the input")
    one_line_error(mien("analyze", str(video), "-o", str(tmp_path / "a.parquet"), "--report",
                            str(tmp_path / "a.parquet")), 2, "--report", "is also written as -o")
    assert digest(video) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "v.csv"]


# -------------------------------------------------------------------------------- 2. sidecar names
def test_sidecars_are_named_after_the_whole_output_and_report_checks_the_manifest(tmp_path, mien):
    video = str(shared_video("single_face.mp4"))
    pq, csv = tmp_path / "talk.parquet", tmp_path / "talk.csv"
    assert mien("analyze", video, "-o", str(pq), "--stride", "24", "--quiet").returncode == 0
    assert mien("analyze", video, "-o", str(csv), "--stride", "12", "--quiet").returncode == 0
    m_pq, m_csv = manifest_of(pq), manifest_of(csv)
    assert m_pq["parameters"]["stride"] == 24 and m_csv["parameters"]["stride"] == 12
    assert m_pq["table"]["sha256"] == digest(pq) and m_pq["table"]["rows"] == len(pd.read_parquet(pq))
    assert sidecar_path(pq, "tracks").is_file() and sidecar_path(csv, "tracks").is_file()
    assert not (tmp_path / "talk.manifest.json").exists()
    # a manifest moved beside the wrong table is detected, said, and not used
    shutil.copy(sidecar_path(csv, "manifest"), sidecar_path(pq, "manifest"))
    proc = mien("report", str(pq), "-o", str(tmp_path / "r.html"))
    assert proc.returncode == 0, proc.stderr
    assert "describes another table" in proc.stderr
    assert "describes another table" in (tmp_path / "r.html").read_text()


# ---------------------------------------------------------------------------- 3. unique folder names
def test_folder_outputs_mirror_input_names_so_none_overwrites_another(tmp_path, mien):
    folder = tmp_path / "in"
    folder.mkdir()
    src = shared_video("single_face.mp4")
    shutil.copy(src, folder / "clip.mp4")
    shutil.copy(src, folder / "clip.mov")
    with av.open(str(src)) as c:
        cv2.imwrite(str(folder / "clip.jpg"), next(c.decode(video=0)).to_ndarray(format="bgr24"))
    out = tmp_path / "out"
    proc = mien("analyze", str(folder), "-o", str(out), "--stride", "24", "--quiet")
    assert proc.returncode == 0, proc.stderr
    tables = sorted(p.name for p in out.glob("*.parquet") if p.name != "index.parquet")  # the batch's index
    assert tables == ["clip.jpg.parquet", "clip.mov.parquet", "clip.mp4.parquet"]
    for name in tables:
        assert manifest_of(out / name)["input"]["path"].endswith(name.removesuffix(".parquet"))
    from mien.schema import mirrored_output
    from mien.schema import sidecar_path as engine_sidecar

    assert mirrored_output("/r", "/r/sub/clip.mp4", "/o", ".parquet") == Path("/o/sub/clip.mp4.parquet")
    assert engine_sidecar(Path("/o/a.csv"), "manifest") == sidecar_path(Path("/o/a.csv"), "manifest")


def test_single_input_default_output_keeps_the_input_suffix(tmp_path, mien, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(shared_video("single_face.mp4"), tmp_path / "clip.mp4")
    proc = mien("analyze", "clip.mp4", "--stride", "24", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "clip.mp4.parquet").is_file() and (tmp_path / "clip.mp4.parquet.manifest.json").is_file()


# ------------------------------------------------------------------------------------- 4. signals
@pytest.mark.slow
@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)], ids=["sigterm", "double-ctrl-c"])
def test_sigterm_and_a_double_ctrl_c_keep_the_finished_frames(tmp_path, signals):
    out, ann = tmp_path / "r.parquet", tmp_path / "a.mp4"
    proc = start_mien("analyze", str(shared_video("WolfgangLanger_Pexels.mp4")), "-o", str(out),
                      "--annotate", str(ann), "--checkpoint-s", "0.3", "--quiet")
    progress = sidecar_path(out, "checkpoint") / "progress.json"
    wait_for(progress)
    # a few finished frames first (the first part may hold a single one): the assertions below
    # are about keeping finished frames, so there must be some
    t = time.monotonic()
    while json.loads(progress.read_text()).get("frames_analysed", 0) < 5:
        assert time.monotonic() - t < 120, "the run never got past its first frames"
        time.sleep(0.05)
    for s in signals:
        proc.send_signal(s)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    manifest = manifest_of(out)
    assert manifest["status"] == "interrupted"
    df = pd.read_parquet(out)
    assert 0 < manifest["frames"]["analysed"] < 472 and len(df) > 0
    assert manifest["frames"]["last_frame_index"] >= df["frame_index"].max()
    with av.open(str(ann)) as c:  # the annotated video was finalised, not left as a .part
        assert sum(1 for _ in c.decode(video=0)) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["r.parquet", "r.parquet.manifest.json", "r.parquet.tracks.csv", "a.mp4"])


# ------------------------------------------------------------------------ 5. outputs checked first
@pytest.mark.parametrize("flags, needle", [
    (["-o", "{tmp}/afile.mp4/x.parquet"], "is a file, not a folder"),
    (["-o", "/sys/mien_test.parquet"], "cannot write in /sys"),
    (["-o", "{tmp}/x.txt"], "must end in .parquet"),
    (["--annotate", "{tmp}/a.csv"], "--annotate"),
    (["--annotate", "{tmp}/a.gif"], "must end in .mp4"),
    (["--annotate", "{tmp}/outdir"], "is a folder"),
    (["--annotate", "/sys/a.mp4"], "cannot write in /sys"),
    (["--report", "{tmp}/r.parquet"], "must end in .html"),
])
def test_every_output_path_is_checked_before_any_frame_is_decoded(tmp_path, flags, needle, mien):
    (tmp_path / "afile.mp4").write_bytes(b"x")
    (tmp_path / "outdir").mkdir()
    if "/sys" in " ".join(flags) and os.access("/sys", os.W_OK) and not Path("/sys").is_mount():
        pytest.skip("/sys is writable here")
    args = [a.replace("{tmp}", str(tmp_path)) for a in flags]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "ok.parquet")]
    t = time.perf_counter()
    proc = mien("analyze", str(shared_video("WolfgangLanger_Pexels.mp4")), *args)
    one_line_error(proc, 2, needle)
    assert time.perf_counter() - t < 30  # refused up front, not after a full analysis
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile.mp4", "outdir"]


# --------------------------------------------------------------------------- 6. non-UTF-8 names
@pytest.mark.skipif(sys.platform != "linux", reason="POSIX byte file names")
def test_a_non_utf8_file_name_is_analysed_and_written(tmp_path, mien):
    folder = tmp_path / "in"
    folder.mkdir()
    odd = os.fsdecode(b"caf\xe9.mp4")  # Latin-1 bytes: not UTF-8
    shutil.copy(shared_video("single_face.mp4"), folder / odd)
    shutil.copy(shared_video("single_face.mp4"), folder / "plain.mp4")
    out = tmp_path / "out"
    proc = mien("analyze", str(folder), "-o", str(out), "--stride", "24")
    assert proc.returncode == 0, proc.stderr
    assert "caf\\xe9.mp4" in proc.stdout  # printed escaped, not crashed
    table = out / (odd + ".parquet")
    assert table.is_file() and (out / "plain.mp4.parquet").is_file()
    with open(table, "rb") as f:
        df = pd.read_parquet(f)
    assert set(df["source"]) == {str(folder / "caf\\xe9.mp4")}
    assert manifest_of(table)["input"]["path"].endswith("caf\\xe9.mp4")
    rep = mien("report", str(table), "-o", str(tmp_path / "r.html"))
    assert rep.returncode == 0, rep.stderr


# ----------------------------------------------------------------------------- 7. checkpoints
@pytest.mark.slow
def test_sigkill_keeps_the_checkpointed_rows_and_says_how_far_it_got(tmp_path):
    from mien.checkpoint import last_frame, read_partial

    out = tmp_path / "r.parquet"
    proc = start_mien("analyze", str(shared_video("WolfgangLanger_Pexels.mp4")), "-o", str(out),
                      "--checkpoint-s", "0.3", "--quiet")
    progress = sidecar_path(out, "checkpoint") / "progress.json"
    wait_for(progress)
    t = time.monotonic()
    while json.loads(progress.read_text())["parts"] < 2 and time.monotonic() - t < 60:
        time.sleep(0.05)
    proc.kill()
    proc.communicate()
    assert not out.exists()  # the table is only ever written whole, at the end
    partial = read_partial(out)
    assert len(partial.frame) == partial.progress["rows"] > 0
    assert partial.progress["parts"] >= 2 and partial.progress["source"].endswith("WolfgangLanger_Pexels.mp4")
    assert last_frame(out) == partial.last_frame_index >= partial.frame["frame_index"].max()
    assert partial.frame["frame_index"].is_monotonic_increasing
    # a new run must not silently replace what the killed one kept
    again = run_mien("analyze", str(shared_video("single_face.mp4")), "-o", str(out), "--quiet")
    one_line_error(again, 2, "checkpoint of an earlier run")


def test_a_finished_run_leaves_no_checkpoint(tmp_path, mien):
    out = tmp_path / "r.csv"
    proc = mien("analyze", str(shared_video("single_face.mp4")), "-o", str(out), "--stride", "6",
                    "--checkpoint-s", "0", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert not sidecar_path(out, "checkpoint").exists()
    assert "checkpoint" not in manifest_of(out)["frames"]


def test_checkpoint_parts_hold_every_row_of_the_final_table(tmp_path, analyzer):
    from mien.checkpoint import read_partial

    out = tmp_path / "r.parquet"
    analyzer.options.checkpoint_s, analyzer.options.stride = 0.0001, 4  # a part after every frame
    try:
        res = analyzer.analyze_source(str(shared_video("single_face.mp4")), checkpoint=out)
    finally:
        analyzer.options.checkpoint_s, analyzer.options.stride = 30.0, 1
    partial = read_partial(out)
    assert partial.progress["frames_analysed"] == res.manifest.frames["analysed"] == 18
    assert partial.progress["parts"] == 18 and partial.last_frame_index == 68
    # per-track geometry baselines and blinks need the whole run: parts have every other column
    from mien.geometry.stage import END_OF_RUN_COLUMNS

    assert set(res.table.columns) - set(partial.frame.columns) == set(END_OF_RUN_COLUMNS)
    pd.testing.assert_frame_equal(partial.frame, res.table.drop(columns=list(END_OF_RUN_COLUMNS)))


# ------------------------------------------------------------------- 8-10. incomplete inputs
def test_a_truncated_file_is_reported_partial_with_its_lost_frames(tmp_path, mien):
    src = shared_video("WolfgangLanger_Pexels.mp4")
    bad = tmp_path / "trunc.mp4"
    data = src.read_bytes()
    bad.write_bytes(data[: int(len(data) * 0.9)])
    out = tmp_path / "t.parquet"
    proc = mien("analyze", str(bad), "-o", str(out), "--stride", "8")
    assert proc.returncode == 0, proc.stderr
    m = manifest_of(out)
    assert m["status"] == "partial"
    assert m["frames"]["lost"] == 472 - m["frames"]["decoded"] > 0
    assert "truncated" in proc.stderr and f"{m['frames']['lost']} lost" in proc.stdout


def _decodable(path: Path) -> tuple[int, int]:
    """(frames a decode that stops at the first error gets, frames ffmpeg gets by skipping damaged
    packets, as `ffmpeg -i` does)."""
    naive = 0
    with av.open(str(path)) as c:
        try:
            for _ in c.decode(video=0):
                naive += 1
        except av.error.FFmpegError:
            pass
    skipping = 0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        for pkt in c.demux(s):
            try:
                skipping += len(s.decode(pkt))
            except av.error.FFmpegError:
                pass
    return naive, skipping


@pytest.mark.slow
def test_flipped_bytes_skip_the_damaged_packet_and_carry_on(tmp_path, mien):
    data = bytearray(shared_video("WolfgangLanger_Pexels.mp4").read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + 2000, 7):
        data[i] ^= 0xFF
    bad = tmp_path / "flip.mp4"
    bad.write_bytes(bytes(data))
    naive, skipping = _decodable(bad)
    assert naive < 300 < skipping  # the damage stops a plain decode half-way
    out = tmp_path / "f.parquet"
    proc = mien("analyze", str(bad), "-o", str(out), "--stride", "8", "--quiet")
    assert proc.returncode == 0, proc.stderr
    m = manifest_of(out)["frames"]
    assert m["decoded"] >= skipping - 1
    assert m["damaged_packets"] >= 1 and m["lost"] == 472 - m["decoded"] >= 1
    assert manifest_of(out)["status"] == "partial" and "damaged" in proc.stderr


def test_a_video_stream_with_zero_frames_is_an_error(tmp_path, mien):
    empty = tmp_path / "empty.y4m"
    empty.write_bytes(b"YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C420jpeg\n")
    proc = mien("analyze", str(empty), "-o", str(tmp_path / "e.parquet"))
    one_line_error(proc, 2, "empty.y4m", "no decodable frame")
    assert not (tmp_path / "e.parquet").exists()


# ------------------------------------------------------------------------ 11. HTTP file vs live
@pytest.fixture
def http_folder(tmp_path):
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **k)  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow
def test_a_file_over_http_is_read_whole_and_forced_live_reports_its_drops(http_folder, mien):
    folder, url = http_folder
    # moov first ("faststart", as web video is published): this simple server has no Range requests
    with av.open(str(shared_video("single_face.mp4"))) as inp, \
            av.open(str(folder / "clip.mp4"), "w", options={"movflags": "faststart"}) as dst:
        vout = dst.add_stream_from_template(inp.streams.video[0])
        for pkt in inp.demux(inp.streams.video[0]):
            if pkt.dts is not None:
                pkt.stream = vout
                dst.mux(pkt)
    out = folder / "h.parquet"
    proc = mien("analyze", f"{url}/clip.mp4", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    m = manifest_of(out)
    assert m["frames"]["read_as"] == "file" and m["frames"]["decoded"] == 72 == m["frames"]["analysed"]
    assert m["frames"]["dropped"] == 0 and m["status"] == "complete"
    live = folder / "l.parquet"
    proc = mien("analyze", f"{url}/clip.mp4", "-o", str(live), "--input-kind", "live")
    assert proc.returncode == 0, proc.stderr
    m = manifest_of(live)
    assert m["frames"]["read_as"] == "live"
    if m["frames"]["dropped"]:  # read faster than real time, the live reader drops and says so
        assert m["status"] == "partial" and f"{m['frames']['dropped']} dropped" in proc.stdout
        assert any("dropped" in w for w in m["warnings"])


# ----------------------------------------------------------------------------- 12. pixel limits
def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_an_image_claiming_huge_dimensions_is_refused_before_decoding(tmp_path, mien):
    bomb = tmp_path / "in" / "bomb.png"
    bomb.parent.mkdir()
    bomb.write_bytes(_png_header_only(100000, 100000))
    assert len(bomb.read_bytes()) < 80
    one_line_error(mien("analyze", str(bomb), "-o", str(tmp_path / "b.parquet")), 2,
                   "100000×100000", "--max-pixels")
    # in a folder it is one failed input, and the others are written
    with av.open(str(shared_video("single_face.mp4"))) as c:
        cv2.imwrite(str(bomb.parent / "face.jpg"), next(c.decode(video=0)).to_ndarray(format="bgr24"))
    proc = mien("analyze", str(bomb.parent), "-o", str(tmp_path / "out"), "--quiet")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert (tmp_path / "out" / "face.jpg.parquet").is_file()
    # the limit is a flag
    small = mien("analyze", str(bomb.parent / "face.jpg"), "-o", str(tmp_path / "s.parquet"), "--max-pixels", "1000")
    one_line_error(small, 2, "face.jpg", "--max-pixels")


def test_image_header_sizes_are_read_for_every_supported_format(tmp_path):
    from mien.sources import image_size

    img = np.zeros((37, 53, 3), np.uint8)
    for ext in (".png", ".jpg", ".bmp", ".tif", ".webp"):
        ok, data = cv2.imencode(ext, img)
        assert ok and image_size(data.tobytes()) == (53, 37), ext


def test_evaluate_survives_an_image_bomb_in_its_dataset(tmp_path, mien):
    root = tmp_path / "data" / "happiness"
    root.mkdir(parents=True)
    (root / "bomb.png").write_bytes(_png_header_only(100000, 100000))
    with av.open(str(shared_video("single_face.mp4"))) as c:
        cv2.imwrite(str(root / "face.jpg"), next(c.decode(video=0)).to_ndarray(format="bgr24"))
    proc = mien("evaluate", str(tmp_path / "data"), "-o", str(tmp_path / "e.json"), "--bootstrap", "10")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "2 items, 1 scored" in proc.stdout and "1 unreadable" in proc.stdout


# -------------------------------------------------------------------- 13. numeric flags
@pytest.mark.parametrize("command, flag", [
    ("analyze", "--smoothing"), ("analyze", "--stride"), ("analyze", "--fps"), ("analyze", "--detect-every"),
    ("analyze", "--detect-threshold"), ("analyze", "--min-face"), ("analyze", "--min-det-score"),
    ("analyze", "--min-sharpness"), ("analyze", "--max-yaw"), ("analyze", "--prior-strength"),
    ("analyze", "--threads"), ("analyze", "--max-frames"), ("analyze", "--max-seconds"),
    ("analyze", "--checkpoint-s"), ("analyze", "--max-pixels"),
    ("report", "--min-prob"), ("report", "--min-duration"), ("report", "--max-gap"), ("report", "--bootstrap"),
    ("report", "--max-tracks"), ("report", "--min-track"), ("episodes", "--min-prob"),
    ("evaluate", "--bootstrap"), ("evaluate", "--min-group-n"), ("evaluate", "--limit"),
    ("evaluate-detector", "--iou"), ("evaluate-detector", "--detect-threshold"),
])
@pytest.mark.parametrize("value", ["nan", "-1", "inf"])
def test_numeric_flags_reject_nan_negative_and_infinite_values(command, flag, value):
    from mien.cli import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit) as info:
        parser.parse_args([command, "x", f"{flag}={value}"])
    assert info.value.code == 2


def test_a_bad_number_is_a_usage_error_naming_the_flag(mien):
    proc = mien("analyze", "x.mp4", "--smoothing", "nan")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "usage: mien analyze" in proc.stderr and "argument --smoothing: 'nan' is not a finite number" in proc.stderr
    proc = mien("analyze", "x.mp4", "--smoothing", "-1")
    assert proc.returncode == 2 and "--smoothing: -1 must be ≥ 0" in proc.stderr


# ------------------------------------------------------------- 14-16. more one-line errors
def test_evaluate_csv_with_a_huge_field_is_a_one_line_error(tmp_path, mien):
    csv = tmp_path / "d.csv"
    csv.write_text('path,label\n"' + "x" * 200_000 + '",happiness\n')
    one_line_error(mien("evaluate", str(csv), "-o", str(tmp_path / "e.json")), 2, "d.csv", "field")


def test_a_model_card_without_file_is_a_one_line_error(tmp_path, mien):
    card = json.loads((Path(__file__).parents[1] / "src/mien/models/expression.json").read_text())
    del card["file"]
    (tmp_path / "card.json").write_text(json.dumps(card))
    proc = mien("analyze", str(shared_video("single_face.mp4")), "-o", str(tmp_path / "r.parquet"),
                    "--model-card", str(tmp_path / "card.json"))
    one_line_error(proc, 2, "card.json", "'file'")


def test_info_into_a_closed_pipe_exits_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "mien", "info"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()  # like `| head` that has read its lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_a_y4m_header_claiming_absurd_dimensions_is_refused(tmp_path, mien):
    y4m = tmp_path / "big.y4m"
    y4m.write_bytes(b"YUV4MPEG2 W100000 H100000 F25:1 C420jpeg\nFRAME\n" + b"\x80" * 1000)
    proc = mien("analyze", str(y4m), "-o", str(tmp_path / "r.parquet"))
    one_line_error(proc, 2, "big.y4m", "100000×100000", "--max-pixels")


# ---------------------------------------------------------------- 17-18. resources, file modes
def test_the_decode_queue_is_bounded_in_bytes_not_frames(tmp_path):
    from mien.sources import VideoFileSource

    path = tmp_path / "uhd.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 3840, 2160, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((2160, 3840, 3), i * 40, np.uint8), format="bgr24")
            for pkt in s.encode(frame):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    src = VideoFileSource(str(path))
    assert src.queue_size * 3840 * 2160 * 3 <= max(64 << 20, 2 * 3840 * 2160 * 3)
    assert src.queue_size < 8 == VideoFileSource(str(shared_video("single_face.mp4"))).queue_size
    assert sum(1 for _ in src) == 3


def test_rewriting_an_output_keeps_its_file_mode(tmp_path):
    from mien.results import write_results
    from mien.schema import RunManifest, empty_table

    out = tmp_path / "r.parquet"
    write_results(empty_table(), RunManifest(), out)
    for p in (out, sidecar_path(out, "manifest"), sidecar_path(out, "tracks")):
        os.chmod(p, 0o600)
    write_results(empty_table(), RunManifest(), out)
    for p in (out, sidecar_path(out, "manifest"), sidecar_path(out, "tracks")):
        assert p.stat().st_mode & 0o777 == 0o600, p


# ---------------------------------------------------------------------------- 19. messages
def _noise(seed: int, n: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _scrambled_samples() -> bytes:
    """single_face.mp4 with every byte of its media data replaced by noise: the container opens,
    no packet decodes (the decoder's warnings then become part of the error)."""
    data = bytearray(shared_video("single_face.mp4").read_bytes())
    mdat, moov = data.find(b"mdat"), data.find(b"moov")
    assert 0 < mdat < moov, "single_face.mp4 is expected to keep its index after its media data"
    data[mdat + 4:moov - 4] = _noise(0, moov - 4 - mdat - 4)
    return bytes(data)


@pytest.mark.parametrize("damage", ["noise", "scrambled samples"])
def test_a_failed_input_in_a_folder_is_named_once(tmp_path, mien, damage):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.mp4").write_bytes(_noise(1, 4096) if damage == "noise" else _scrambled_samples())
    shutil.copy(shared_video("single_face.mp4"), folder / "good.mp4")
    proc = mien("analyze", str(folder), "-o", str(tmp_path / "out"), "--stride", "24", "--quiet")
    assert proc.returncode == 1, proc.stderr
    bad = str(folder / "bad.mp4")
    lines = [ln for ln in proc.stderr.splitlines() if "bad.mp4" in ln]
    assert lines and all(ln.count(bad) == 1 for ln in lines), lines
    assert not any("results cover" in ln for ln in lines), lines  # there are none
    assert (tmp_path / "out" / "good.mp4.parquet").is_file()


def test_a_file_that_is_not_a_video_exits_2_in_a_fresh_process(tmp_path):
    """The error comes before the models' sessions are built in the background: the process
    still exits with the documented code, not an abort of ONNX Runtime torn down mid-build."""
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n")
    proc = run_mien("analyze", str(bad), "-o", str(tmp_path / "r.parquet"))
    one_line_error(proc, 2, "notes.mp4", "not a readable video")
    assert "terminate called" not in proc.stderr, proc.stderr


def test_missing_and_empty_inputs_both_exit_2(tmp_path, mien):
    (tmp_path / "empty.mp4").write_bytes(b"")
    one_line_error(mien("analyze", str(tmp_path / "missing.mp4")), 2, "no such file")
    one_line_error(mien("analyze", str(tmp_path / "empty.mp4"), "-o", str(tmp_path / "e.parquet")), 2, "empty")


def test_permission_denied_is_said_as_such(tmp_path, monkeypatch):
    from mien.errors import InputError
    from mien.sources import VideoFileSource, _explain_open_error

    msg = _explain_open_error("/data/x.mp4", PermissionError(13, "Permission denied"))
    assert "permission denied" in msg and "media player" not in msg
    video = tmp_path / "locked.mp4"
    shutil.copy(shared_video("single_face.mp4"), video)

    def denied(self, *a, **k):  # root reads any file, so chmod 000 cannot show this
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(InputError, match="locked.mp4: permission denied; check the file's permissions"):
        VideoFileSource(str(video))


def test_a_typo_in_a_flag_shows_the_subcommands_usage(mien):
    proc = mien("analyze", "x.mp4", "--blur-face-typo")
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: mien analyze") and "unrecognized arguments: --blur-face-typo" in proc.stderr


def test_help_documents_the_exit_codes(mien):
    proc = mien("--help")
    assert proc.returncode == 0
    for code in ("0 ", "1 ", "2 ", "130 "):
        assert f"\n  {code}" in proc.stdout


@pytest.fixture
def silent_tcp_server():
    """Accepts connections and never sends a byte (a stream that hangs)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    conns = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    yield srv.getsockname()[1]
    stop.set()
    th.join()
    for c in conns:
        c.close()
    srv.close()


@pytest.fixture
def garbage_tcp_server():
    """Sends the same 4 KiB of noise forever (not a video stream; seeded, so every run sees the same bytes)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn = srv.accept()[0]
            except OSError:
                continue
            try:
                while not stop.is_set():
                    conn.sendall(_noise(2, 4096))
                    time.sleep(0.01)
            except OSError:
                pass
            finally:
                conn.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    yield srv.getsockname()[1]
    stop.set()
    th.join()
    srv.close()


def test_a_stream_that_never_answers_names_the_timeout(tmp_path, silent_tcp_server, mien):
    proc = mien("analyze", f"tcp://127.0.0.1:{silent_tcp_server}", "-o", str(tmp_path / "s.parquet"),
                    "--max-seconds", "2")
    line = one_line_error(proc, 2, "open timeout")
    assert "Immediate exit requested" not in line


@pytest.mark.slow
def test_max_seconds_holds_on_a_garbage_stream(tmp_path, garbage_tcp_server, mien):
    t = time.perf_counter()
    proc = mien("analyze", f"tcp://127.0.0.1:{garbage_tcp_server}", "-o", str(tmp_path / "g.parquet"),
                    "--max-seconds", "3")
    wall = time.perf_counter() - t
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 2), proc.stderr
    assert wall < 3 + 6, wall  # model loading and start-up (a few s) on top of the 3 s
