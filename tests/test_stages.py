"""The engine's two stage threads (``overlap_stages``) and the run-ahead helper under them."""
from __future__ import annotations

import threading
import time

import pytest
from conftest import shared_video

from mien.ahead import run_ahead


def test_run_ahead_keeps_order_and_runs_in_another_thread():
    seen = []

    def items():
        for i in range(50):
            seen.append(threading.current_thread().name)
            yield i

    assert list(run_ahead(items(), 3, name="ahead-test")) == list(range(50))
    assert set(seen) == {"ahead-test"}


def test_run_ahead_raises_the_producers_error_after_its_items():
    def items():
        yield 1
        yield 2
        raise ValueError("broken frame")

    out = []
    with pytest.raises(ValueError, match="broken frame"):
        for x in run_ahead(items(), 2):
            out.append(x)
    assert out == [1, 2]


def test_run_ahead_stops_the_producer_and_closes_it_when_the_consumer_leaves():
    closed = threading.Event()
    produced = []

    def items():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    for x in run_ahead(items(), 2):
        if x == 3:
            break
    assert closed.wait(2.0), "the source iterator was not closed"
    time.sleep(0.2)
    assert len(produced) <= 3 + 2 + 2  # what was consumed, the queue, one in hand


@pytest.mark.parametrize("clip", ["short_hamilton_clip.mp4", "WolfgangLanger_Pexels.mp4"])
def test_overlapped_stages_give_the_same_table_as_one_thread(analyzer, clip):
    # Hamilton: several faces, tracks, windows, fallbacks; WolfgangLanger: one face the mesh follows
    # between full detections, and the schedule of scans that following relaxes
    from itertools import islice

    from mien.options import AnalysisOptions
    from mien.pipeline import Analyzer
    from mien.sources import open_source

    path = str(shared_video(clip))
    tables = {}
    for overlap in (True, False):
        an = Analyzer(AnalysisOptions(detect_every=3, overlap_stages=overlap),
                      model=analyzer.model, detector=analyzer.detector)
        src = open_source(path, prepare=an._scheduled_detection())  # scans in the decode thread, as the engine
        try:
            table, stats = an.analyze_rows(islice(iter(src), 90), path)
        finally:
            src.close()
        assert stats["analysed"] == 90
        tables[overlap] = table.to_pandas()
    assert len(tables[True]) >= 90
    assert tables[True].equals(tables[False])


def test_numpy_blas_runs_on_one_thread_while_frames_are_analysed_and_is_restored_after():
    """OpenBLAS's own threads spin between the engine's small matrix products and took a third of
    the 16-face grid's frame rate (bench/RESULTS.md, "numpy's BLAS threads")."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from mien.pipeline import Analyzer
    from mien.sources import open_source

    def blas_threads() -> set[int]:
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    if not blas_threads():
        pytest.skip("numpy here links no BLAS that threadpoolctl can see")
    an = Analyzer()
    with threadpool_limits(limits=2, user_api="blas"):  # a known value to restore, on any machine
        during = []
        for res in an.process_frames(iter(open_source(str(shared_video("single_face.mp4"))))):
            during.append(blas_threads())
            if res.index >= 4:
                break
        assert during and all(d == {1} for d in during)
        assert blas_threads() == {2}  # the generator closed: the limit is lifted
