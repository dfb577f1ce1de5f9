"""Model-card numbers come from the tool; the shipped card must match a fresh evaluation."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mien.audit.card import render_model_card_md, update_card_metrics
from mien.audit.datasets import Dataset
from mien.audit.evaluate import Predictions, build_evaluation
from mien.audit.metrics import HEADLINE

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FERPLUS = SHARED / "data" / "ferplus" / "fer2013_ferplus.npz"
WRITE_CARD = "mien evaluate ../shared/data/ferplus/fer2013_ferplus.npz --crops --write-card src/mien/models/expression.json"


def _small_evaluation() -> dict[str, Any]:
    labels = np.array([0, 1, 1, 2, 0, 1])
    logits = np.eye(8)[[0, 1, 0, 2, 0, 1]] * 4.0
    ds = Dataset(source="/data/val/labels.csv", format="csv", ids=[f"{i}" for i in range(6)], labels=labels)
    preds = Predictions.empty(6)
    preds.logits[:] = logits
    return build_evaluation(
        ds,
        preds,
        temperature=1.5,
        model={"name": "m", "sha256": "ab" * 32, "temperature": 1.5},
        mode="crops",
        n_resamples=100,
    )


def test_update_card_metrics_copies_the_numbers_and_keeps_the_rest():
    ev = _small_evaluation()
    card = {"name": "mien-expr", "temperature": 1.5, "labels": ["neutral"], "intended_use": "research"}
    out = update_card_metrics(card, ev)
    assert "evaluation" not in card  # input untouched
    assert out["name"] == "mien-expr" and out["intended_use"] == "research"
    block = out["evaluation"]
    for key in HEADLINE:
        assert block["metrics"][key] == ev["metrics"][key]
    assert block["metrics"]["accuracy"]["value"] == pytest.approx(5 / 6)
    assert block["per_class"] == ev["metrics"]["per_class"]
    assert block["confusion"] == ev["metrics"]["confusion"]
    assert block["dataset"]["source_name"] == "labels.csv"  # no local paths in a shipped card
    assert block["model_sha256"] == "ab" * 32 and block["temperature"] == 1.5
    assert block["metrics_restricted"]["labels_used"] == ["neutral", "happiness", "surprise"]
    assert "items" not in block and "errors" not in block["coverage"]
    json.dumps(out, allow_nan=False)


def test_render_model_card_md_shows_the_tool_numbers():
    card = update_card_metrics(
        {
            "name": "mien-expr",
            "labels": ["neutral", "happiness"],
            "input_size": 48,
            "temperature": 1.5,
            "intended_use": "Measuring facial expressions in research video.",
            "limitations": ["Trained on FER+ only.", "Grayscale 48 px."],
        },
        _small_evaluation(),
    )
    md = render_model_card_md(card)
    assert md.startswith("# Model card: mien-expr")
    assert "not recognise felt emotions" in md
    assert "## Intended use" in md and "- Trained on FER+ only." in md
    acc = card["evaluation"]["metrics"]["accuracy"]
    assert f"| Accuracy | {acc['value']:.3f} ({acc['ci_low']:.3f}–{acc['ci_high']:.3f}) |" in md
    assert "| happiness | 3 |" in md
    assert "| **neutral** | 2 | 0 | 0 |" in md  # confusion row
    assert "100 resamples of items (seed 0)" in md


def test_render_card_in_the_shipped_layout():
    card = {
        "name": "mien-fer-vgg-1.0",
        "labels": ["neutral"],
        "architecture": {"family": "VGG-style CNN", "parameters": 1174696},
        "input": {"size": 48, "colour": "grayscale (OpenCV BGR2GRAY weights)"},
        "temperature": 1.31,
        "temperature_fitted_on": "FER+ PublicTest",
        "training": {"data": "FER+", "dropped_unlabelled": {"Training": 3}},
        "known_limits": ["small faces"],
        "out_of_scope": ["identifying people"],
    }
    md = render_model_card_md(card)
    assert "| Input | 48x48 grayscale (OpenCV BGR2GRAY weights) |" in md
    assert "| Parameters | 1174696 |" in md
    assert "| Temperature | 1.31 (fitted on FER+ PublicTest) |" in md
    assert "## Training" in md and "- **dropped unlabelled**: Training: 3" in md
    assert "## Known limits\n\n- small faces" in md
    assert "## Out of scope\n\n- identifying people" in md


def test_render_card_without_evaluation():
    md = render_model_card_md({"name": "bare"})
    assert "# Model card: bare" in md and "## Evaluation" not in md


def _assert_close(actual: Any, expected: Any, where: str = "evaluation") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), f"keys differ at {where}"
        for k in expected:
            if k != "mien_version":
                _assert_close(actual[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"length differs at {where}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            _assert_close(a, e, f"{where}[{i}]")
    elif isinstance(expected, float) and isinstance(actual, (int, float)):
        assert math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-6), f"{where}: {actual} != {expected}"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@pytest.mark.slow
def test_shipped_card_numbers_are_regenerated_by_the_tool():
    """The shipped card's evaluation block must be exactly what `mien evaluate --write-card` produces."""
    if not FERPLUS.is_file():
        pytest.skip(f"shared FER+ data not found at {FERPLUS} (only on developer machines and CI)")
    from mien.expression import default_card_path

    card_path = default_card_path()
    assert card_path.is_file(), f"the shipped model card {card_path} is missing"  # the regression guarded
    card = json.loads(card_path.read_text())
    assert (card_path.parent / card.get("file", "")).is_file(), f"the shipped model file {card.get('file')} is absent"
    assert "evaluation" in card, f"the shipped card has no evaluation block; generate it with: {WRITE_CARD}"

    import tempfile

    from mien.cli import main as mien_main

    shipped = card["evaluation"]
    boot = shipped["bootstrap"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "card.json"
        rc = mien_main([
            "evaluate", str(FERPLUS), "--crops", "--split", shipped["dataset"]["split"],
            "--bootstrap", str(boot["n_resamples"]), "--seed", str(boot["seed"]), "--write-card", str(out),
        ])
        assert rc == 0
        fresh = json.loads(out.read_text())["evaluation"]
    assert fresh["dataset"]["sha256"] == shipped["dataset"]["sha256"], "the FER+ file differs from the card's"
    assert fresh["model_sha256"] == card["sha256"] == shipped["model_sha256"]
    try:
        _assert_close(fresh, shipped)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the shipped card is stale: regenerate it with {WRITE_CARD}") from None
