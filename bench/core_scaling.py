"""What two CPU cores give the three per-face networks, and the crowd frame rate that allows.

    python bench/core_scaling.py [--faces 16] [--calls 300]

For each network the engine runs once per face (the 128-px re-detection window, the face mesh
at 192 px, the expression network, int8 on the CPU by default), the same call at batch 1 through
the engine's session options (:func:`mien.runtime.make_session`, one ONNX Runtime thread), timed
alone and then from two threads at once (one session each; a pipeline stage per thread is how
the engine overlaps its stages). The reference in the same process is the call alone; printed,
per network: ms per face alone, ms per call with two threads, and the throughput ratio two
threads give over one (2.0 = two full cores).

From those it prints the networks-only ceiling for ``--faces`` faces per frame: each face's
three calls, spread over two threads with the measured ratio, with no glue, no decoding and no
full-frame detection at all. A crowd bench figure can only be below it.
"""
from __future__ import annotations

import argparse
import threading
import time

import numpy as np

from mien.detection import FaceDetector
from mien.detector_weights import detector_weights
from mien.expression import ExpressionModel, int8_card_path
from mien.geometry.mesh import FaceMesh
from mien.runtime import make_session


def timed_loop(session, feed: dict[str, np.ndarray], calls: int, out: list[float]) -> None:
    for _ in range(5):
        session.run(None, feed)
    t = time.perf_counter()
    for _ in range(calls):
        session.run(None, feed)
    out.append((time.perf_counter() - t) / calls * 1000)


def alone_and_paired(path, feed: dict[str, np.ndarray], calls: int) -> tuple[float, float]:
    """(ms per call alone, ms per call in each of two concurrent threads), best of 3 rounds."""
    sessions = [make_session(path, 1), make_session(path, 1)]
    alone, paired = [], []
    for _ in range(3):
        one: list[float] = []
        timed_loop(sessions[0], feed, calls, one)
        alone.append(one[0])
        two: list[float] = []
        threads = [threading.Thread(target=timed_loop, args=(s, feed, calls, two)) for s in sessions]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        paired.append(max(two))
    return min(alone), min(paired)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=16)
    ap.add_argument("--calls", type=int, default=300)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    precision = "int8" if int8_card_path() is not None else "float"  # what analyze runs on a CPU
    det, mesh = FaceDetector(threads=1), FaceMesh.load(threads=1)
    expr = ExpressionModel.load(threads=1, precision=precision)
    expr_input = expr.session.get_inputs()[0]
    expr_shape = [1 if not isinstance(d, int) else d for d in expr_input.shape]
    nets = {
        "re-detection window (128 px)": (detector_weights(), {det.session.get_inputs()[0].name:
                                         rng.random((1, 3, 128, 128), np.float32)}),
        "face mesh (192 px)": (str(mesh.onnx_path), {"input": rng.random((1, 192, 192, 3), np.float32)}),
        f"expression ({expr.name}, {precision})": (str(expr.onnx_path), {expr_input.name: rng.random(expr_shape, np.float32)}),
    }
    total_alone = total_paired = 0.0
    print(f"{'network':40s} {'alone ms':>9s} {'2 threads ms':>13s} {'2-thread throughput / 1':>24s}")
    for name, (path, feed) in nets.items():
        a, p = alone_and_paired(path, feed, args.calls)
        total_alone += a
        total_paired += p
        print(f"{name:40s} {a:9.3f} {p:13.3f} {2 * a / p:24.2f}")
    ratio = 2 * total_alone / total_paired
    per_frame = args.faces * total_alone / ratio
    print(f"all three per face: {total_alone:.3f} ms alone; two threads give {ratio:.2f}x one thread's throughput")
    print(f"networks-only ceiling at {args.faces} faces: {per_frame:.1f} ms per frame = {1000 / per_frame:.1f} frames/s "
          f"(no decoding, glue or full-frame detection); per extra face >= {total_alone / ratio:.2f} ms")


if __name__ == "__main__":
    main()
