"""The look-ahead re-detection (Analyzer.process_frames(lookahead=True), what files get) runs
the next frame's windows early, beside the current frame: the table must be the same."""
from __future__ import annotations

import pandas as pd
import pytest
from conftest import shared_video


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["short_hamilton_clip.mp4"])
def test_lookahead_gives_the_same_table(analyzer, clip):
    """Several small faces, tracks lost and found: windows, fall-back full detections and
    full scans from the decode thread all occur."""
    path = str(shared_video(clip))
    tables, stats = {}, {}
    for lookahead in (False, True):
        src = analyzer._open(path)
        try:
            table, stats[lookahead] = analyzer.analyze_rows(iter(src), path, lookahead=lookahead)
        finally:
            src.close()
        tables[lookahead] = table.to_pandas()
    assert stats[True]["full_frame_detections"] == stats[False]["full_frame_detections"]
    assert len(tables[True]) > 500
    pd.testing.assert_frame_equal(tables[False], tables[True])


def test_files_get_the_lookahead(analyzer, monkeypatch, tmp_path):
    import cv2
    import numpy as np

    seen = []
    real = analyzer.analyze_rows

    def spy(*args, **kwargs):
        seen.append(kwargs.get("lookahead"))
        return real(*args, **kwargs)

    monkeypatch.setattr(analyzer, "analyze_rows", spy)
    still = tmp_path / "grey.png"
    cv2.imwrite(str(still), np.full((64, 64, 3), 128, np.uint8))
    analyzer.analyze_source(str(still))
    assert seen == [True]
