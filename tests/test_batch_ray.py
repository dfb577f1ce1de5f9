"""The same batch on a local Ray cluster started in the test: the same table row for row, and a
worker killed mid-input is retried with every input in the combined table exactly once."""
from __future__ import annotations

import signal
import threading
import time

import pandas as pd
import pytest
from test_batch import BROKEN, FAST, GOOD, assert_combined_equals_per_file, make_study

from mien.batch import BatchOptions, read_dataset, read_index, run_batch

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'mien[cluster]')")
psutil = pytest.importorskip("psutil", reason="psutil (a Ray dependency) is not installed")

pytestmark = pytest.mark.slow

INDEX_COLUMNS = ["path", "video_id", "status", "frames", "faces", "tracks", "duration_s", "output",
                 "fingerprint", "options_hash"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The study run in one process: what Ray must reproduce."""
    base = tmp_path_factory.mktemp("ref")
    root = make_study(base / "in")
    run_batch(root, base / "out", FAST, BatchOptions(workers=1, progress=False))
    return read_index(base / "out"), read_dataset(base / "out")


def test_ray_gives_the_single_process_table_row_for_row(local_ray, reference, tmp_path):
    ref_index, ref_rows = reference
    root = make_study(tmp_path / "in")
    summary = run_batch(root, tmp_path / "out", FAST, BatchOptions(ray="auto", progress=False))
    assert summary.workers == 2
    index = read_index(tmp_path / "out")
    pd.testing.assert_frame_equal(index[INDEX_COLUMNS].drop(columns="fingerprint"),
                                  ref_index[INDEX_COLUMNS].drop(columns="fingerprint"))
    assert index.set_index("path").loc[BROKEN, "status"] == "failed"
    pd.testing.assert_frame_equal(read_dataset(tmp_path / "out"), ref_rows)
    assert_combined_equals_per_file(tmp_path / "out", GOOD)
    # the same resume as on one machine
    again = run_batch(root, tmp_path / "out", FAST, BatchOptions(ray="auto", progress=False))
    assert again.counts == {"skipped": 4, "failed": 1}


class WorkerKiller(threading.Thread):
    """Kills the first Ray worker process seen analysing an input (SIGKILL: no clean-up)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.killed: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and not self.killed:
            for proc in psutil.process_iter(["cmdline"]):
                cmd = " ".join(proc.info["cmdline"] or [])
                if "BatchWorker.analyze" in cmd:
                    time.sleep(0.3)  # well inside the input, past its first frames
                    try:
                        proc.send_signal(signal.SIGKILL)
                    except psutil.NoSuchProcess:
                        continue
                    self.killed.append(proc.pid)
                    return
            time.sleep(0.05)


def test_a_worker_killed_mid_input_is_retried_and_every_input_appears_once(local_ray, reference, tmp_path):
    ref_index, ref_rows = reference
    root = make_study(tmp_path / "in")
    killer = WorkerKiller()
    killer.start()
    try:
        run_batch(root, tmp_path / "out", FAST, BatchOptions(ray="auto", progress=False))
    finally:
        killer.stop.set()
        killer.join()
    assert killer.killed, "no worker was seen analysing an input"
    index = read_index(tmp_path / "out")
    assert sorted(index["path"]) == sorted([*GOOD, BROKEN])  # every input once
    pd.testing.assert_frame_equal(index[INDEX_COLUMNS].drop(columns="fingerprint"),
                                  ref_index[INDEX_COLUMNS].drop(columns="fingerprint"))
    rows = read_dataset(tmp_path / "out")
    assert not rows.duplicated(["source", "frame_index", "track_id"]).any()
    pd.testing.assert_frame_equal(rows, ref_rows)
    parts = sorted((tmp_path / "out" / "results").iterdir())
    assert len(parts) == len(GOOD)  # no half-written or extra part
