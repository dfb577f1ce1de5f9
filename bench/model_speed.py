"""Expression-model inference time per face at batch 1 on one CPU thread (issue 3's ≤ 2 ms).

    python bench/model_speed.py
    python bench/model_speed.py --candidate runs/eff96   # also time a training run's ONNX

Reference in the same process: the face detector on one 640x360 frame, one thread. A candidate
(any folder with ``expression.onnx``, e.g. before packaging it) is timed the same way, raw logits
at batch 1, and given as a ratio to the shipped model.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mien.detection import FaceDetector
from mien.expression import ExpressionModel
from mien.runtime import make_session


def per_call_ms(fn, n: int) -> float:
    for _ in range(10):
        fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1000


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidate", type=Path, action="append", default=[],
                    help="a run folder holding expression.onnx (repeatable)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    model = ExpressionModel.load(threads=1)
    crop = rng.integers(0, 256, (1, model.input_size, model.input_size), dtype=np.uint8)
    batch = rng.integers(0, 256, (16, model.input_size, model.input_size), dtype=np.uint8)
    det = FaceDetector(threads=1)
    frame = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    m1 = per_call_ms(lambda: model.predict_proba(crop), 500)
    m16 = per_call_ms(lambda: model.predict_proba(batch), 100) / 16
    d = per_call_ms(lambda: det.detect(frame), 50)
    print(f"expression model {model.name}: {m1:.3f} ms per face at batch 1, {m16:.3f} ms per face at batch 16 (1 thread)")
    print(f"reference, face detector on a 640x360 frame: {d:.2f} ms (1 thread); model/detector = {m1 / d:.3f}")
    for run in args.candidate:
        onnx_path = run / "expression.onnx"
        if not onnx_path.is_file():
            raise SystemExit(f"model_speed: {onnx_path} not found; export the run first "
                             f"(python -m mien.training.export {run})")
        session = make_session(str(onnx_path), 1)
        x = crop.astype(np.float32)[:, None]
        c1 = per_call_ms(lambda: session.run(None, {"gray": x}), 500)
        print(f"candidate {run}: {c1:.3f} ms per face at batch 1 (1 thread); candidate/shipped = {c1 / m1:.2f}")


if __name__ == "__main__":
    main()
