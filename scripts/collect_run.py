"""Gather a training run from a lent GPU machine into at most 8 files under $OUT.

    python scripts/collect_run.py /tmp/runs/gpu "$OUT"

``run.tar.gz``: every config, log, summary, prediction file and the student's weights;
``teacherK.pt``: each teacher's weights in float16 (too big to tar together within the limits).
Each file is written under a temporary name and then renamed, so a snapshot taken while training
goes on (``device_train.sh`` takes one a minute) is never left half-written by a time limit.
"""
from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

import torch

run, out = Path(sys.argv[1]), Path(sys.argv[2])
part = out / "run.tar.gz.partial"
with tarfile.open(part, "w:gz") as tar:
    for f in sorted(run.rglob("*")):
        if f.is_file() and not (f.name == "best.pt" and f.parent.name.startswith("teacher")):
            tar.add(f, arcname=str(f.relative_to(run.parent)))
os.replace(part, out / "run.tar.gz")
for t in sorted(run.glob("teacher*/best.pt")):
    sd = torch.load(t, map_location="cpu")
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in sd.items()}, part)
    os.replace(part, out / f"{t.parent.name}.pt")
print("collected", sorted(p.name for p in out.iterdir()))
