"""Studies at scale on one machine: the tree walk, the index, the combined dataset, resume,
interrupts (a real subprocess and a real signal), and the export tables.

The study is a nested folder of links to the shared clips, with duplicate stems (``a.mp4`` in two
folders, ``a.mp4`` beside ``a.mov``), a symlink loop, a hidden file, and one broken file.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import shared_video

from mien.batch import BatchOptions, read_dataset, read_index, run_batch, walk_inputs
from mien.batch.export import event_table, resample_tracks
from mien.batch.index import options_hash
from mien.batch.runner import plan_workers
from mien.batch.walk import video_id
from mien.errors import InputError
from mien.options import AnalysisOptions
from mien.reporting.events import align_events
from mien.schema import RunManifest, mirrored_output, read_table, sidecar_path

FAST = AnalysisOptions(stride=3, threads=1)
GOOD = ["s1/a.mov", "s1/a.mp4", "s2/a.mp4", "s2/deep/n.mp4"]
BROKEN = "s2/broken.mp4"


def make_study(root: Path, long_clip: bool = False) -> Path:
    """The nested test study; ``long_clip`` adds a 33 s clip so a run lasts long enough to stop."""
    (root / "s1").mkdir(parents=True)
    (root / "s2" / "deep").mkdir(parents=True)
    (root / "s1" / "a.mp4").symlink_to(shared_video("single_face.mp4"))
    (root / "s1" / "a.mov").symlink_to(shared_video("talking_d1.mp4"))
    (root / "s2" / "a.mp4").symlink_to(shared_video("talking_d0.mp4"))
    (root / "s2" / "deep" / "n.mp4").symlink_to(shared_video("no_face.mp4"))
    (root / "s2" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 but the rest is gone")
    (root / "s2" / "deep" / "loop").symlink_to(root)  # a symlink loop back to the top
    (root / "s1" / ".hidden.mp4").write_bytes(b"half-copied")
    (root / "s1" / "notes.txt").write_text("not media")
    if long_clip:
        (root / "s3").mkdir()
        (root / "s3" / "long.mp4").symlink_to(shared_video("talking_d6.mp4"))
    return root


def per_file_table(out: Path, relative: str) -> pd.DataFrame:
    df = read_table(out / f"{relative}.parquet")
    df["source"] = relative
    df.insert(0, "video_id", video_id(relative))
    return df


def assert_combined_equals_per_file(out: Path, relatives: list[str]) -> None:
    combined = read_dataset(out)
    expected = pd.concat([per_file_table(out, r) for r in relatives], ignore_index=True)
    expected = expected.sort_values(["source", "frame_index", "track_id"], kind="stable").reset_index(drop=True)
    assert sorted(combined["source"].unique()) == sorted(r for r in relatives if len(per_file_table(out, r)))
    pd.testing.assert_frame_equal(combined, expected[combined.columns], check_dtype=False)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One in-process batch over the study (shared by the tests that only read its outputs)."""
    base = tmp_path_factory.mktemp("study")
    root = make_study(base / "in")
    out = base / "out"
    summary = run_batch(root, out, FAST, BatchOptions(workers=1, progress=False))
    return root, out, summary


# ------------------------------------------------------------------ walk, names, workers
def test_walk_finds_nested_media_once_and_skips_loops_hidden_and_output(tmp_path):
    root = make_study(tmp_path / "in")
    out = root / "s1" / "results"  # an output folder inside the tree is never walked
    out.mkdir()
    (out / "x.mp4").symlink_to(shared_video("single_face.mp4"))
    found = walk_inputs(root, exclude=out)
    assert [b.relative for b in found] == sorted([*GOOD, BROKEN])
    names = {mirrored_output(root, b.path, tmp_path / "o", ".parquet") for b in found}
    assert len(names) == len(found)  # a.mp4 / a.mov and s1/a.mp4 / s2/a.mp4 stay apart
    assert mirrored_output(root, root / "s1" / "a.mov", tmp_path / "o", ".parquet") == tmp_path / "o" / "s1" / "a.mov.parquet"
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no video or image files"):
        walk_inputs(tmp_path / "empty")


@pytest.mark.parametrize("workers,threads,cores", [(None, None, 2), (2, None, 2), (None, None, 16),
                                                   (4, 4, 16), (2, 4, 4), (1, None, 8), (3, None, 2)])
def test_workers_times_threads_never_exceed_the_cores(workers, threads, cores):
    n, t, _ = plan_workers(workers, threads, cores)
    assert n >= 1 and t >= 1
    if workers:
        assert n == workers
    assert n * t <= max(cores, n)  # only more workers than cores (asked for) can exceed them


# ------------------------------------------------------------------ one run
def test_index_has_one_row_per_input_and_says_why_one_failed(study):
    root, out, summary = study
    index = read_index(out)
    assert list(index["path"]) == sorted([*GOOD, BROKEN])
    assert set(index.columns) >= {"path", "status", "frames", "faces", "tracks", "duration_s", "error",
                                  "output", "fingerprint", "options_hash"}
    by_path = index.set_index("path")
    assert (by_path.loc[GOOD, "status"] == "done").all()
    assert by_path.loc[BROKEN, "status"] == "failed" and "broken.mp4" in by_path.loc[BROKEN, "error"]
    assert by_path.loc["s1/a.mp4", "frames"] == 24 and by_path.loc["s1/a.mp4", "faces"] == 24
    assert by_path.loc["s2/deep/n.mp4", "faces"] == 0 and by_path.loc["s2/deep/n.mp4", "tracks"] == 0
    assert by_path.loc["s1/a.mov", "output"] == "s1/a.mov.parquet"
    assert index["options_hash"].nunique() == 1
    assert summary.describe().startswith("5 inputs: 4 done, 0 skipped")


def test_combined_dataset_equals_the_per_file_results(study):
    _, out, _ = study
    assert_combined_equals_per_file(out, GOOD)
    parts = sorted(p.stem for p in (out / "results").glob("*.parquet"))
    assert parts == sorted(video_id(r) for r in GOOD)  # the face-less input has an (empty) part too


def test_pandas_polars_and_duckdb_read_the_dataset_in_one_call(study):
    polars = pytest.importorskip("polars", reason="polars is in the [test] extra")
    duckdb = pytest.importorskip("duckdb", reason="duckdb is in the [test] extra")
    _, out, _ = study
    ref = read_dataset(out)
    keys = ["source", "frame_index", "track_id"]
    via_pandas = pd.read_parquet(out / "results").sort_values(keys).reset_index(drop=True)
    via_polars = polars.read_parquet(str(out / "results" / "*.parquet")).to_pandas().sort_values(keys).reset_index(drop=True)
    via_duckdb = duckdb.sql(f"SELECT * FROM '{out / 'results'}/*.parquet'").df().sort_values(keys).reset_index(drop=True)
    for df in (via_pandas, via_polars, via_duckdb):
        assert list(df.columns) == list(ref.columns)
        pd.testing.assert_frame_equal(df, ref, check_dtype=False)


@pytest.mark.slow
def test_rerun_skips_what_is_up_to_date_and_force_redoes_it(tmp_path):
    root = make_study(tmp_path / "in")
    out = tmp_path / "out"
    run_batch(root, out, FAST, BatchOptions(workers=1, progress=False))
    stamp = {r: sidecar_path(out / f"{r}.parquet", "manifest").stat().st_mtime_ns for r in GOOD}
    again = run_batch(root, out, FAST, BatchOptions(workers=1, progress=False))
    assert again.counts == {"skipped": 4, "failed": 1}
    assert {r: sidecar_path(out / f"{r}.parquet", "manifest").stat().st_mtime_ns for r in GOOD} == stamp
    assert read_index(out).set_index("path").loc["s1/a.mp4", "frames"] == 24  # filled from the manifest
    # a changed input is redone, the others are not
    (root / "s1" / "a.mp4").unlink()
    (root / "s1" / "a.mp4").symlink_to(shared_video("talking_d5.mp4"))
    changed = run_batch(root, out, FAST, BatchOptions(workers=1, progress=False))
    status = read_index(out).set_index("path")["status"]
    assert status["s1/a.mp4"] == "done" and (status[["s1/a.mov", "s2/a.mp4", "s2/deep/n.mp4"]] == "skipped").all()
    assert changed.counts["done"] == 1
    assert_combined_equals_per_file(out, GOOD)
    # other options: everything is redone; so it is with force
    assert run_batch(root, out, AnalysisOptions(stride=4, threads=1),
                     BatchOptions(workers=1, progress=False)).counts["done"] == 4
    assert run_batch(root, out, AnalysisOptions(stride=4, threads=1),
                     BatchOptions(workers=1, force=True, progress=False)).counts["done"] == 4
    # an input that left the tree leaves the combined table too
    (root / "s1" / "a.mov").unlink()
    run_batch(root, out, AnalysisOptions(stride=4, threads=1), BatchOptions(workers=1, progress=False))
    assert "s1/a.mov" not in set(read_dataset(out)["source"])


# ------------------------------------------------------------------ interrupted, then resumed
def _foreground_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _wait_for_done(out: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    """Until the running batch's index shows a finished input."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the batch ended before it could be interrupted"
        try:
            if (read_index(out)["status"] == "done").any():
                return
        except Exception:  # noqa: BLE001 - the index is being replaced
            pass
        time.sleep(0.2)
    raise AssertionError("no input finished in time")


@pytest.mark.slow
@pytest.mark.parametrize("sig,workers", [(signal.SIGINT, 2), (signal.SIGTERM, 1)],
                         ids=["ctrl-c-pool", "sigterm-in-process"])
def test_interrupted_batch_resumes_without_redoing_finished_files(tmp_path, sig, workers):
    root = make_study(tmp_path / "in", long_clip=True)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mien", "analyze", str(root), "-o", str(out), "--stride", "2",
           "--workers", str(workers), "--threads", "1"]
    # a session of its own: Ctrl-C at a terminal signals the whole group, workers included; and
    # Ctrl-C's default handling even when the tests themselves run in the background (nohup, &)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_foreground_signals)
    try:
        _wait_for_done(out, proc)
        os.killpg(proc.pid, sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert "interrupted; run the same command again" in stderr
    first = read_index(out).set_index("path")
    finished = sorted(first.index[first["status"] == "done"])
    unfinished = sorted(first.index[first["status"].isin(["pending", "interrupted"])])
    assert finished and unfinished, first["status"]
    stamps = {r: sidecar_path(out / f"{r}.parquet", "manifest").stat().st_mtime_ns for r in finished}
    assert not list(out.rglob("*.part"))

    resumed = subprocess.run(cmd + ["--quiet"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 1, resumed.stderr  # the broken file fails again, and only it
    index = read_index(out).set_index("path")
    assert (index.loc[finished, "status"] == "skipped").all()
    assert (index.loc[unfinished, "status"].isin(["done", "failed"])).all()
    assert {r: sidecar_path(out / f"{r}.parquet", "manifest").stat().st_mtime_ns for r in finished} == stamps
    good = [*GOOD, "s3/long.mp4"]
    assert set(index.index[index["status"].isin(["done", "skipped"])]) == set(good)
    assert_combined_equals_per_file(out, good)


@pytest.mark.slow
def test_a_killed_input_is_finished_from_its_checkpoint(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    (root / "long.mp4").symlink_to(shared_video("talking_d6.mp4"))  # 1008 frames
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mien", "analyze", str(root), "-o", str(out), "--stride", "2",
           "--workers", "1", "--checkpoint-s", "0.5", "--quiet"]
    progress = out / "long.mp4.parquet.checkpoint" / "progress.json"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the input finished before it could be killed"
            try:
                if json.loads(progress.read_text())["parts"] >= 2:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)  # no clean-up at all: only the checkpoint survives
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    from mien.checkpoint import read_partial

    partial = read_partial(out / "long.mp4.parquet")
    cut = partial.last_frame_index
    assert cut is not None and cut < 1000 and len(partial.frame)

    summary = run_batch(root, out, AnalysisOptions(stride=2, threads=1), BatchOptions(workers=1, progress=False))
    assert summary.counts == {"done": 1}
    manifest = RunManifest.from_dict(json.loads(sidecar_path(out / "long.mp4.parquet", "manifest").read_text()))
    frames = manifest.source.frames
    assert frames["resumed_after_frame"] == cut
    assert frames["analysed"] == 504  # every 2nd of 1008 frames, none lost or repeated at the cut
    table = read_table(out / "long.mp4.parquet")
    assert (table["frame_index"] % 2 == 0).all()
    assert not table.duplicated(["frame_index", "track_id"]).any()
    before = table[table["frame_index"] <= cut].reset_index(drop=True)
    # checkpoint parts lack the columns only a finished run can fill (geo_*_delta, geo_blink)
    kept = partial.frame.reset_index(drop=True)
    assert set(kept.columns) <= set(before.columns)
    pd.testing.assert_frame_equal(before[list(kept.columns)], kept, check_dtype=False)
    after = table[table["frame_index"] > cut]
    assert len(after) and after["track_id"].min() > before["track_id"].max()  # new tracks after the cut
    assert not (out / "long.mp4.parquet.checkpoint").exists()
    assert_combined_equals_per_file(out, ["long.mp4"])


def test_cli_folder_summary_and_clean_failure_line(tmp_path):
    root = tmp_path / "in"
    (root / "x").mkdir(parents=True)
    (root / "x" / "clip.mp4").symlink_to(shared_video("talking_d1.mp4"))
    (root / "x" / "clip.mov").write_text("garbage")
    proc = subprocess.run([sys.executable, "-m", "mien", "analyze", str(root), "-o", str(tmp_path / "out"),
                           "--stride", "4"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "2 inputs: 1 done, 0 skipped (up to date), 1 failed" in proc.stdout
    assert "1 of 2 inputs failed" in proc.stderr and "x/clip.mov" in proc.stderr
    assert "files 2/2 (1 failed)" in proc.stderr  # overall progress in a log
    bad = subprocess.run([sys.executable, "-m", "mien", "analyze", str(root), "-o", str(root)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "input folder itself" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "a_file").write_text("")
    bad = subprocess.run([sys.executable, "-m", "mien", "analyze", str(root), "-o", str(tmp_path / "a_file" / "out")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "cannot write there" in bad.stderr and "Traceback" not in bad.stderr


def test_listed_inputs_keep_their_place_under_their_common_folder(tmp_path):
    """``mien analyze a.mp4 b/c.mp4 ...`` (a shell glob): the root is the files' deepest common
    folder; a file named twice counts once; files inside the output folder are left out; a folder,
    a missing file or a non-media file is a one-line input error."""
    from mien.batch.walk import listed_inputs

    (tmp_path / "s1").mkdir()
    (tmp_path / "s2" / "deep").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    for rel in ("s1/a.mp4", "s2/a.mp4", "s2/deep/b.mov", "out/old.mp4", "notes.txt"):
        (tmp_path / rel).write_bytes(b"x")
    named = [str(tmp_path / r) for r in ("s2/deep/b.mov", "s1/a.mp4", "s2/a.mp4", "out/old.mp4")]
    root, inputs = listed_inputs(named + [str(tmp_path / "s1" / ".." / "s1" / "a.mp4")], exclude=tmp_path / "out")
    assert root == tmp_path
    assert [i.relative for i in inputs] == ["s1/a.mp4", "s2/a.mp4", "s2/deep/b.mov"]
    root, inputs = listed_inputs([str(tmp_path / "s2" / "a.mp4"), str(tmp_path / "s2" / "deep" / "b.mov")])
    assert root == tmp_path / "s2" and [i.relative for i in inputs] == ["a.mp4", "deep/b.mov"]
    for bad, message in ((tmp_path / "s1", "is a folder"), (tmp_path / "nope.mp4", "no such file"),
                         (tmp_path / "notes.txt", "not a video or image file")):
        with pytest.raises(InputError, match=message):
            listed_inputs([str(tmp_path / "s1" / "a.mp4"), str(bad)])
    with pytest.raises(InputError, match="inside the output folder"):
        listed_inputs([str(tmp_path / "out" / "old.mp4")], exclude=tmp_path / "out")


def test_cli_analyses_several_files_as_a_batch(tmp_path):
    """``mien analyze clips/*.mp4 -o out/``: one resumable batch (index, combined dataset), a broken
    file among them fails alone (exit 1), and the second run skips what is up to date."""
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "one.mp4").symlink_to(shared_video("single_face.mp4"))
    (tmp_path / "clips" / "two.mp4").symlink_to(shared_video("no_face.mp4"))
    (tmp_path / "clips" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 but the rest is gone")
    files = sorted(str(p) for p in (tmp_path / "clips").iterdir())
    cmd = [sys.executable, "-m", "mien", "analyze", *files, "-o", str(tmp_path / "out"), "--stride", "4"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "3 inputs: 2 done, 0 skipped (up to date), 1 failed" in proc.stdout
    assert "broken.mp4" in proc.stderr
    index = read_index(tmp_path / "out")
    assert sorted(index["path"]) == ["broken.mp4", "one.mp4", "two.mp4"]
    assert (tmp_path / "out" / "one.mp4.parquet").is_file()
    base = cmd[:4]  # python -m mien analyze
    again = subprocess.run(base + [files[1], files[2], "-o", str(tmp_path / "out"), "--stride", "4"],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "2 inputs: 0 done, 2 skipped (up to date), 0 failed" in again.stdout
    for extra, message in ((["-o", str(tmp_path / "x.parquet")], "must name an output folder"),
                           (["-o", str(tmp_path / "o"), "--annotate", str(tmp_path / "a.mp4")], "takes one input")):
        bad = subprocess.run(base + [files[1], files[2]] + extra, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_the_eta_scales_by_what_was_analysed_not_by_what_failed():
    """A broken file fails in moments whatever its size: counting it as analysed bytes made the
    ETA after a first failed input hours long."""
    import io

    from mien.batch.progress import BatchProgress

    log = io.StringIO()
    progress = BatchProgress(3, 3_000_000, stream=log)
    progress.started -= 2.0
    progress.update("broken.mp4", "failed", None, 10)
    assert "ETA -" in log.getvalue()
    progress.update("one.mp4", "done", 100, 1_000_000)
    eta = log.getvalue().splitlines()[-1].split("ETA ")[1].split(" ")[0]
    h, m, sec = map(int, eta.split(":"))
    assert h * 3600 + m * 60 + sec <= 5  # ~2 s for 1 MB, ~2 MB left


# ------------------------------------------------------------------ exports
def test_event_export_is_the_report_table_as_tidy_rows(study, tmp_path):
    _, out, _ = study
    events = tmp_path / "stimuli.csv"
    events.write_text("time_s,label\n0.0,start\n0.5,probe\n1.0,probe\n1.5,probe\n")
    table = event_table(read_dataset(out), events, (0.0, 0.5))
    assert list(table.columns) == ["scope", "input", "track", "event", "expression", "n_events", "mean",
                                   "ci_low", "ci_high"]
    assert set(table["input"]) == {"", "s1/a.mp4", "s2/a.mp4", "s1/a.mov"}
    ref = align_events(read_dataset(out), events, (0.0, 0.5))
    np.testing.assert_allclose(table["mean"], ref["mean"])
    probe = table[(table["scope"] == "pooled") & (table["event"] == "probe")]
    assert len(probe) == 8 and (probe["ci_low"] <= probe["mean"]).all() and (probe["mean"] <= probe["ci_high"]).all()
    proc = subprocess.run([sys.executable, "-m", "mien", "export", str(out), "--events", str(events),
                           "--window", "0,0.5", "-o", str(tmp_path / "events.csv")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "events.csv", keep_default_na=False,
                                              na_values=[""]).fillna({"input": ""}),
                                  table, check_dtype=False)


def test_resample_puts_each_track_on_a_fixed_grid(study, tmp_path):
    _, out, _ = study
    frame = read_dataset(out)
    grid = resample_tracks(frame, 10.0)
    for (src, track), g in grid.groupby(["input", "track"]):
        np.testing.assert_allclose(np.diff(g["time_s"]), 0.1)
        rows = frame[(frame["source"] == src) & (frame["track_id"] == track) & ~frame["abstain"]
                     & frame["time_s"].notna()]
        assert g["n_frames"].sum() == len(rows)
        k = np.floor(rows["time_s"].to_numpy() * 10 + 0.5)
        first = g[g["n_frames"] > 0].iloc[0]
        in_bin = rows[k == round(first["time_s"] * 10)]
        np.testing.assert_allclose(first["smooth_happiness"], in_bin["smooth_happiness"].mean())
        assert (g.loc[g["n_frames"] == 0, "smooth_neutral"].isna()).all()  # gaps stay gaps
    proc = subprocess.run([sys.executable, "-m", "mien", "export", str(out), "--resample", "10",
                           "-o", str(tmp_path / "grid.parquet")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_parquet(tmp_path / "grid.parquet")) == len(grid)
    bad = subprocess.run([sys.executable, "-m", "mien", "export", str(tmp_path), "--resample", "10",
                          "-o", str(tmp_path / "x.csv")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no results/ folder" in bad.stderr and "Traceback" not in bad.stderr


def test_manifest_records_what_resume_compares(study):
    _, out, _ = study
    manifest = RunManifest.from_dict(json.loads(sidecar_path(out / "s2/a.mp4.parquet", "manifest").read_text()))
    row = read_index(out).set_index("path").loc["s2/a.mp4"]
    assert manifest.source.input["fingerprint"] == row["fingerprint"]
    assert options_hash(manifest.parameters, manifest.mien_version) == row["options_hash"]
    assert manifest.source.frames["tracks"] == row["tracks"] >= 1
