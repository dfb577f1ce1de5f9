"""--compare: differences, paired vs independent bootstrap, and reading evaluation JSONs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mien.audit.compare import compare_evaluations, load_evaluation
from mien.audit.datasets import Dataset
from mien.audit.evaluate import Predictions, build_evaluation
from mien.audit.metrics import HEADLINE
from mien.errors import InputError

N = 200


def _evaluation(correct: np.ndarray, ids: list[str] | None = None, temperature: float = 1.0) -> dict:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 8, N)
    logits = rng.normal(0, 0.5, (N, 8))
    wrong = (labels + 1) % 8
    target = np.where(correct, labels, wrong)
    logits[np.arange(N), target] += 3.0
    ds = Dataset(
        source="mem.csv",
        format="csv",
        ids=ids or [f"img{i}.png" for i in range(N)],
        labels=labels,
    )
    preds = Predictions.empty(N)
    preds.logits[:] = logits
    return build_evaluation(
        ds,
        preds,
        temperature=temperature,
        model={"name": "m", "temperature": temperature},
        mode="crops",
        n_resamples=300,
    )


@pytest.fixture(scope="module")
def pair() -> tuple[dict, dict]:
    correct_a = np.random.default_rng(1).random(N) < 0.7
    correct_b = correct_a.copy()
    correct_b[np.flatnonzero(~correct_a)[:10]] = True  # B fixes 10 of A's errors, breaks none
    return _evaluation(correct_a), _evaluation(correct_b)


def test_paired_difference_by_hand(pair):
    a, b = pair
    c = compare_evaluations(a, b, n_resamples=300, seed=0)
    assert c["bootstrap"]["method"] == "paired"
    acc = c["metrics"]["accuracy"]
    assert acc["difference"]["value"] == pytest.approx(10 / N)
    # B never does worse on any item, so every paired resample has a difference >= 0
    assert acc["difference"]["ci_low"] >= 0
    assert acc["difference"]["excludes_zero"] is True
    # metrics recomputed from the stored per-item logits equal the stored ones
    for key in HEADLINE:
        assert c["metrics"][key]["a"]["value"] == pytest.approx(a["metrics"][key]["value"], abs=1e-12)
        assert c["metrics"][key]["b"]["value"] == pytest.approx(b["metrics"][key]["value"], abs=1e-12)
    assert "f1/happiness" in c["metrics"] and "recall/contempt" in c["metrics"]


def test_paired_is_tighter_than_independent(pair):
    a, b = pair
    paired = compare_evaluations(a, b, n_resamples=300, seed=0)["metrics"]["accuracy"]["difference"]
    shuffled = dict(b, items=[dict(it, id=f"other{i}") for i, it in enumerate(b["items"])])
    indep = compare_evaluations(a, shuffled, n_resamples=300, seed=0)
    assert indep["bootstrap"]["method"] == "independent"
    d = indep["metrics"]["accuracy"]["difference"]
    assert d["value"] == pytest.approx(paired["value"])
    assert (d["ci_high"] - d["ci_low"]) > 2 * (paired["ci_high"] - paired["ci_low"])


def test_pairing_aligns_items_by_id(pair):
    a, b = pair
    reversed_b = dict(b, items=list(reversed(b["items"])))
    c1 = compare_evaluations(a, b, n_resamples=100, seed=3)
    c2 = compare_evaluations(a, reversed_b, n_resamples=100, seed=3)
    assert c2["bootstrap"]["method"] == "paired"
    assert c1["metrics"] == c2["metrics"]


def test_compare_is_reproducible(pair):
    a, b = pair
    assert compare_evaluations(a, b, n_resamples=50, seed=9) == compare_evaluations(
        a, b, n_resamples=50, seed=9
    )


def test_load_evaluation_errors(tmp_path: Path, pair):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="cannot read"):
        load_evaluation(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something else"}))
    with pytest.raises(InputError, match="not a mien evaluation"):
        load_evaluation(other)
    no_items = tmp_path / "noitems.json"
    no_items.write_text(json.dumps({k: v for k, v in pair[0].items() if k != "items"}))
    with pytest.raises(InputError, match="no per-item"):
        load_evaluation(no_items)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(pair[0]))
    assert load_evaluation(good)["schema"] == "mien.audit.evaluation"
