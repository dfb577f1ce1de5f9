"""Port face-api's FaceExpressionNet (npm @vladmandic/face-api 1.7.15, MIT) to ONNX. Training-only.

    python scripts/faceapi_port.py [--out runs/faceapi] [--cache runs/faceapi/npm]

Fetches the pinned tarball with ``npm pack`` (once; SHA-256 checked), reads only the expression
model, and writes ``face_expression_net.onnx``, its licence notice and a provenance JSON (with the
ONNX's SHA-256) to ``--out``. Nothing here ships with mien; see ``mien.training.faceapi``.
Exit status 1 with a one-line error when npm, the package or its check fails.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from mien.training import cli_errors
from mien.training.faceapi import port

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="faceapi_port", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "runs" / "faceapi", help="where the ONNX goes")
    p.add_argument("--cache", type=Path, default=None, help="where the npm tarball is kept (default OUT/npm)")
    args = p.parse_args(argv)
    with cli_errors("faceapi_port"):
        record = port(args.out, args.cache or args.out / "npm")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
