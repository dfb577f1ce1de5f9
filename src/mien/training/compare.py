"""Should training run B replace run A? A paired bootstrap of their accuracy on the same images.

    python -m mien.training.compare shipped runs/cpu/student     # the packaged model against a run
    python -m mien.training.compare runs/cpu100/student runs/cpu150/student

The decision uses PublicTest only (the selection split): B replaces A when the 95% interval of B's
accuracy gain over A lies above 0. PrivateTest is shown for the record and never decides. Both runs
come from ``mien.training.train`` (their ``predictions.npz`` holds the logits of the kept weights)
on the same FER+ file; ``shipped`` stands for the model packaged in ``mien/models`` (its network
logits, SHA-256 checked, computed here on the same images).

Why a rule and not "B scores higher": a run with half as many epochs again as the shipped one
scored 0.3 points higher on PublicTest and 0.8 lower on PrivateTest (docs/training.md, progressive
resizing); on about 3,500 images either split moves by a point on noise alone.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from mien.stats import bootstrap_ci
from mien.training import cli_errors
from mien.training.ferplus import FerPlus, load_ferplus
from mien.training.train import TrainConfig

SPLITS = {"PublicTest": "public_logits", "PrivateTest": "private_logits"}
SHIPPED = Path("shipped")  # stands for the model packaged in mien/models


def _shipped_logits(fer: FerPlus) -> dict[str, np.ndarray]:
    from mien.expression import ExpressionModel

    model = ExpressionModel.load(threads=2)
    return {s.name: model.predict_network_logits(s.pixels) for s in (fer.public_test, fer.private_test)}


def _logits(run: Path, fer: FerPlus) -> dict[str, np.ndarray]:
    if run == SHIPPED:
        return _shipped_logits(fer)
    path = run / "predictions.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: is {run} a finished training run?")
    with np.load(path) as p:
        return {split: p[key] for split, key in SPLITS.items()}


def compare_runs(a: Path, b: Path, data: str | None = None, n_resamples: int = 2000,
                 seed: int = 0) -> dict[str, Any]:
    """Accuracy of both runs and B's gain over A, with paired 95% bootstrap intervals, per split;
    ``replace`` is whether B's PublicTest gain is above 0 with 95% confidence."""
    if data is None:  # the file run A (else B) was trained on, else where ../shared keeps it
        run = b if a == SHIPPED else a
        data = json.loads((run / "config.json").read_text())["data"] if run != SHIPPED else TrainConfig.data
        data = data if Path(data).is_file() else TrainConfig.data
    fer = load_ferplus(data)
    la, lb = _logits(a, fer), _logits(b, fer)
    out: dict[str, Any] = {"a": str(a), "b": str(b)}
    for split in (fer.public_test, fer.private_test):
        if not len(la[split.name]) == len(lb[split.name]) == len(split):
            raise ValueError(f"{split.name}: the runs' predictions do not match the {len(split)} images "
                             f"of {data}; were both trained on it?")
        right_a = la[split.name].argmax(1) == split.majority
        right_b = lb[split.name].argmax(1) == split.majority

        def stat(w: np.ndarray, ra=right_a, rb=right_b) -> dict[str, float]:
            acc_a, acc_b = np.average(ra, weights=w), np.average(rb, weights=w)
            return {"accuracy_a": acc_a, "accuracy_b": acc_b, "gain": acc_b - acc_a}

        out[split.name] = bootstrap_ci(stat, len(split), n_resamples=n_resamples, seed=seed)
    out["replace"] = bool(out["PublicTest"]["gain"]["ci_low"] > 0)
    return out


def _line(name: str, row: dict[str, Any]) -> str:
    g = row["gain"]
    return (f"{name}: A {row['accuracy_a']['value']:.1%}, B {row['accuracy_b']['value']:.1%}, "
            f"gain {100 * g['value']:+.1f} points [{100 * g['ci_low']:+.1f}, {100 * g['ci_high']:+.1f}]")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path, help="the current run, or 'shipped' for the packaged model")
    ap.add_argument("b", type=Path, help="the candidate")
    ap.add_argument("--data", default=None, help="FER+ npz (default: the one run A was trained on, "
                    "else ../shared/data/ferplus/fer2013_ferplus.npz)")
    ap.add_argument("--json", action="store_true", help="print the whole comparison as JSON")
    args = ap.parse_args(argv)
    with cli_errors("mien.training.compare"):
        result = compare_runs(args.a, args.b, args.data)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(_line("PublicTest (decides)", result["PublicTest"]))
    print(_line("PrivateTest (record only)", result["PrivateTest"]))
    print("B replaces A" if result["replace"] else "keep A: B's PublicTest gain is not above 0 with 95% confidence")


if __name__ == "__main__":
    main()
