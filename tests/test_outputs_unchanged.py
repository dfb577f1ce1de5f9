"""Speed work must not change what mien measures: the table of two shared clips against the one
the engine wrote before it (mien at commit 8320618, float model mien-fer-vgg-1.2, default options).

``tests/data/reference_*.csv.gz`` hold that run's frame, track, box (0.1 px), abstention and top
label for every face. Tolerances: 99% of the reference faces found again in their frame (box IoU ≥ 0.5;
not all: kernels differ between CPUs, see the test) and no more than 1% extra faces; boxes within IoU 0.97 on average; the same abstention for 97.5% (detector scores at the
abstention threshold move with the CPU's instruction set, see the test);
the same top label for 98% of the faces both runs classify, when the run has the reference's
float model (other models are compared with their float original in tests/test_int8_model.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import shared_video

DATA = Path(__file__).parent / "data"
REFERENCE_MODEL_SHA256 = "58a27112de62d0dc2cbe6ca2a396b232bfe4a3ea0676d6a1d304c555f59aed93"


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area = lambda x: (x[:, 2:] - x[:, :2]).prod(1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter + 1e-9)


def compare(ref: pd.DataFrame, new: pd.DataFrame) -> dict[str, float]:
    """Match faces frame by frame (greedy, best IoU first) and summarise the agreement."""
    cols = ["x1", "y1", "x2", "y2"]
    matched_ious, same_abstain, same_label, labelled = [], 0, 0, 0
    by_frame = {k: g for k, g in new.groupby("frame_index")}
    for frame, r in ref.groupby("frame_index"):
        n = by_frame.get(frame)
        if n is None:
            continue
        iou = _iou(r[cols].to_numpy(float), n[cols].to_numpy(float))
        while iou.size and iou.max() >= 0.5:
            i, j = np.unravel_index(iou.argmax(), iou.shape)
            matched_ious.append(iou[i, j])
            a, b = r.iloc[i], n.iloc[j]
            same_abstain += int(bool(a["abstain"]) == bool(b["abstain"]))
            if not a["abstain"] and not b["abstain"]:
                labelled += 1
                same_label += int(a["top_label"] == b["top_label"])
            iou[i, :] = -1
            iou[:, j] = -1
    m = len(matched_ious)
    return {
        "recall": m / len(ref), "extra": (len(new) - m) / len(ref), "mean_iou": float(np.mean(matched_ious)),
        "same_abstain": same_abstain / max(m, 1), "same_label": same_label / max(labelled, 1),
    }


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["WolfgangLanger_Pexels.mp4", "short_hamilton_clip.mp4"])
def test_table_matches_the_reference_run(clip):
    # geometry off: with the mesh on, the profile gate reads the mesh's yaw instead of the 5-point
    # proxy the reference run used (issue #18), and abstentions change by design
    from mien.pipeline import AnalysisOptions, Analyzer

    analyzer = Analyzer(AnalysisOptions(detect_every=3, geometry=False))
    path = shared_video(clip)
    ref = pd.read_csv(DATA / f"reference_{Path(clip).stem}.csv.gz", keep_default_na=False)
    ref["abstain"] = ref["abstain"].astype(str) == "True"
    new = analyzer.analyze_source(str(path)).to_pandas()
    got = compare(ref, new)
    # 99%, not every face: on an AMD EPYC (AVX2) machine the reference's 741 Hamilton faces come back
    # but for 4, at a scene change (frames 46-47, where the detector's scores sit near its threshold),
    # with the engine unchanged; ONNX Runtime's kernels differ by instruction set
    assert got["recall"] >= 0.99, got
    assert got["extra"] <= 0.01, got
    assert got["mean_iou"] >= 0.97, got
    # 97.5%, not 99%: on an AMD EPYC with AVX-512 (2026-12-03) 13 of the 727 matched Hamilton faces
    # abstain as low_score where the reference did not (detector scores at the threshold, frames
    # 46-53 and 224-259), and the reference's own engine (8320618) gives the same 13 there
    assert got["same_abstain"] >= 0.975, got
    if analyzer.model.sha256 == REFERENCE_MODEL_SHA256:
        assert got["same_label"] >= 0.98, got
    # another expression model (a new release, or its int8 quantisation) gives its own labels:
    # its agreement with its float original is tests/test_int8_model.py's to check


@pytest.mark.slow
def test_reference_labels_with_the_reference_model():
    """The label check above, run with the model the reference was made with, when it is at hand."""
    from mien.expression import ExpressionModel
    from mien.pipeline import AnalysisOptions, Analyzer

    model = ExpressionModel.load(precision="float")
    if model.sha256 != REFERENCE_MODEL_SHA256:
        pytest.skip("the shipped float model is not the reference run's (mien-fer-vgg-1.2); labels not comparable")
    clip = "short_hamilton_clip.mp4"
    ref = pd.read_csv(DATA / f"reference_{Path(clip).stem}.csv.gz", keep_default_na=False)
    ref["abstain"] = ref["abstain"].astype(str) == "True"
    new = Analyzer(AnalysisOptions(geometry=False), model=model).analyze_source(str(shared_video(clip))).to_pandas()
    assert compare(ref, new)["same_label"] >= 0.98
