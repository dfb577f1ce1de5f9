"""Does averaging a crop's logits with its mirror image's pay, by the selection rule?

    python scripts/flip_average_check.py src/mien/models/expression.onnx runs/mix2/student

Scores the ONNX model on the selection sets of the run (FER+ PublicTest and the Taiwanese and London
validation folds, engine-aligned crops) with and without flip averaging, network logits, argmax,
and prints the paired bootstrap of the gain (mien.training.selection.paired_bootstrap, by subject
on the posed sets), plus FER+ PrivateTest accuracy both ways for the record. The engine would pay
a second network call per face for it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def logits_of(sess, px: np.ndarray) -> np.ndarray:
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: px[i:i + 512].astype(np.float32)[:, None]})[0]
                           for i in range(0, len(px), 512)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("onnx", type=Path)
    ap.add_argument("run", type=Path, help="a mix run folder (its config.json names the sets)")
    ap.add_argument("--resamples", type=int, default=2000)
    args = ap.parse_args()
    import onnxruntime as ort

    from mien.training.mix import MixConfig, load_mix
    from mien.training.selection import paired_bootstrap

    config = json.loads((args.run / "config.json").read_text())
    cfg = MixConfig(**{k: v for k, v in config.items() if k in MixConfig.__dataclass_fields__})
    _fer, _pools, selection, report, _counts = load_mix(cfg)
    sess = ort.InferenceSession(str(args.onnx), providers=["CPUExecutionProvider"])
    sets = {n: es for n, (es, _px) in selection.items()}
    plain, flipped = {}, {}
    for name, (es, px) in (selection | report).items():
        a = logits_of(sess, px)
        b = (a + logits_of(sess, px[:, :, ::-1].copy())) / 2
        plain[name], flipped[name] = es.predictions(a), es.predictions(b)
    result = paired_bootstrap({n: plain[n] for n in sets}, {n: flipped[n] for n in sets}, sets,
                              n_resamples=args.resamples)
    fer_private = report["ferplus_private"][0].labels
    result["ferplus_private_accuracy"] = {"plain": float((plain["ferplus_private"] == fer_private).mean()),
                                          "flip_averaged": float((flipped["ferplus_private"] == fer_private).mean())}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
