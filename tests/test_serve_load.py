"""A small, fast version of bench/serve_load.py: concurrent uploads to a real server on 127.0.0.1.

Every upload gets an id, every job completes exactly once, none is lost, and never more jobs run
at once than the server has workers. (The 20-upload run is ``python bench/serve_load.py``.)
"""
from __future__ import annotations

import time

import pytest
from conftest import load_module, shared_video

pytest.importorskip("uvicorn", reason="mien serve needs the [serve] extra: pip install '.[serve]'")


def load_bench():
    return load_module("bench/serve_load.py")


@pytest.mark.slow  # about 9 s: two workers load their models, six jobs, a server start and stop
def test_concurrent_uploads_each_complete_once(tmp_path):
    bench = load_bench()
    t = time.perf_counter()
    figures = bench.run_load(shared_video("talking_d1.mp4"), n_jobs=6, workers=2, stride=4, timeout_s=120,
                             data_dir=tmp_path)
    print(figures, f"{time.perf_counter() - t:.1f} s")
    assert figures["upload_errors"] == [] and figures["ids"] == 6
    assert not figures["timed_out"] and figures["lost"] == []
    assert figures["listed"] == figures["done"] == 6 and figures["runs"] == [1]
    assert figures["table_rows"] == [4]  # 16 frames at stride 4, one face each, in every job
    assert 1 <= figures["max_running"] <= 2


def test_max_overlap_counts_jobs_running_together():
    bench = load_bench()
    jobs = [{"started": 0, "finished": 2}, {"started": 1, "finished": 3}, {"started": 2, "finished": 4},
            {"started": 2.5, "finished": 5}]
    assert bench.max_overlap(jobs) == 3
    assert bench.max_overlap(jobs[:1]) == 1
