"""The face-mesh network alone, per face, one CPU thread: the shipped ONNX against an earlier one.

    python bench/mesh_network.py                       # against the mesh shipped before 3750c82
    python bench/mesh_network.py --baseline other.onnx --rounds 9

Both networks get the same input (batch 1, the engine's one-face-a-call, and batch 4), through
the engine's own session options (:func:`mien.runtime.make_session`); rounds alternate between
them and the fastest round of each is kept. Also printed: the largest difference between their
outputs (landmarks in input pixels, face logit), which should be float noise.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from mien.geometry.mesh import FaceMesh
from mien.runtime import make_session

REPO = Path(__file__).resolve().parents[1]
#: the mesh with tflite's channel padding as ONNX Pad nodes (before the identity-convolution rewrite)
BEFORE = "5ed4a65"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", type=Path, default=None, help=f"an ONNX mesh (default: the one at {BEFORE})")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args(argv)
    shipped = FaceMesh.load().onnx_path
    if args.baseline is None:
        tmp = Path(tempfile.mkdtemp()) / "face_mesh_before.onnx"
        tmp.write_bytes(subprocess.run(["git", "show", f"{BEFORE}:src/mien/models/face_mesh.onnx"], cwd=REPO,
                                       check=True, capture_output=True).stdout)
        args.baseline = tmp
    sessions = {"baseline": make_session(str(args.baseline)), "shipped": make_session(str(shipped))}
    rng = np.random.default_rng(0)
    for n in (1, 4):
        x = rng.random((n, 192, 192, 3)).astype(np.float32)
        outs = {k: s.run(None, {"input": x}) for k, s in sessions.items()}
        diff = [float(np.abs(a - b).max()) for a, b in zip(outs["baseline"], outs["shipped"])]
        best = {k: float("inf") for k in sessions}
        for _ in range(args.rounds):
            for k, s in sessions.items():
                t = time.perf_counter()
                for _ in range(args.calls):
                    s.run(None, {"input": x})
                best[k] = min(best[k], (time.perf_counter() - t) / args.calls / n * 1000)
        print(f"batch {n}: baseline {best['baseline']:.3f} ms/face, shipped {best['shipped']:.3f} ms/face, "
              f"shipped/baseline {best['shipped'] / best['baseline']:.3f}; max output difference "
              f"{diff[0]:.1e} px, logit {diff[1]:.1e}")


if __name__ == "__main__":
    main()
