"""HTML pages are self-contained (no external fetches, no script) and escape dataset strings."""

from __future__ import annotations

import re

import numpy as np

from mien.audit.compare import compare_evaluations
from mien.audit.datasets import Dataset
from mien.audit.detector import AnnotatedImage, match_all, summarize
from mien.audit.evaluate import STATUS_NO_FACE, Predictions, build_evaluation
from mien.audit.html import (
    confusion_svg,
    reliability_svg,
    render_comparison_html,
    render_detector_html,
    render_evaluation_html,
)

EVIL = "<script>alert(1)</script>"


def _evaluation() -> dict:
    rng = np.random.default_rng(0)
    n = 60
    labels = rng.integers(0, 7, n)
    logits = rng.normal(0, 1, (n, 8))
    logits[np.arange(n), labels] += 2
    ds = Dataset(
        source=f"/data/{EVIL}.csv",
        format="csv",
        ids=[f"img{i}{EVIL if i == 3 else ''}.png" for i in range(n)],
        labels=labels,
        subjects=np.array([f"s{i // 3}" for i in range(n)], dtype=object),
        groups={"skin_tone": np.array([EVIL if i % 2 else "II" for i in range(n)], dtype=object)},
    )
    preds = Predictions.empty(n)
    preds.logits[:] = logits
    preds.logits[3] = np.nan
    preds.status[3] = STATUS_NO_FACE
    preds.messages[3] = "no face found"
    return build_evaluation(
        ds,
        preds,
        temperature=1.0,
        model={"name": "m", "temperature": 1.0},
        mode="full_pipeline",
        n_resamples=50,
    )


def _self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    # the only URL allowed is the SVG namespace identifier (never fetched)
    urls = set(re.findall(r"https?://[^\s'\"<>]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert not re.search(r"\b(src|href)\s*=", page)
    assert "&lt;script&gt;" in page or EVIL not in page


def test_evaluation_page():
    page = render_evaluation_html(_evaluation())
    _self_contained(page)
    assert page.count("<svg") >= 6  # confusion + reliability for 3 scopes
    assert "Found faces only (not the headline)" in page
    assert "argmax restricted" in page  # contempt absent from the labels
    assert "skin_tone" in page and "Worst group" in page
    assert "Items not scored" in page and "no face found" in page


def test_confusion_svg_counts_and_reliability_bins():
    svg = confusion_svg(
        {"rows": ["a", "b"], "columns": ["a", "b", "no_prediction"], "counts": [[3, 1, 0], [0, 2, 2]]}
    )
    assert svg.count("<rect") == 6 and ">3</text>" in svg and "75.0% of row" in svg
    rel = reliability_svg(
        {
            "n_bins": 2,
            "bins": [
                {"low": 0.0, "high": 0.5, "count": 0.0, "mean_confidence": None, "accuracy": None},
                {"low": 0.5, "high": 1.0, "count": 4.0, "mean_confidence": 0.8, "accuracy": 0.5},
            ],
        }
    )
    assert "4 items, mean confidence 0.800, accuracy 0.500" in rel


def test_comparison_page():
    a = _evaluation()
    page = render_comparison_html(compare_evaluations(a, a, n_resamples=20))
    _self_contained(page)
    assert "B − A" in page and "paired" in page


def test_detector_page():
    gt = AnnotatedImage(__import__("pathlib").Path("x.jpg"), np.array([[0, 0, 20, 20.0]]), np.zeros(1, bool))
    m = match_all([gt], [(np.array([[0, 0, 20, 20.0]]), np.array([0.9]))])
    result = {
        "dataset": {
            "source": EVIL,
            "format": "voc",
            "n_images": 1,
            "n_faces": 1,
            "n_ignored": 0,
            "n_unreadable": 0,
        },
        "detector": {"name": "fake"},
        "iou_threshold": 0.5,
        **summarize(m, n_resamples=10),
    }
    page = render_detector_html(result)
    _self_contained(page)
    assert "Recall by face size" in page and "<polyline" in page
