"""Peak memory against video length: mien on a 1-minute and a 10-minute loop of a shared clip.

    python bench/memory.py

Each run is a fresh ``mien analyze`` process writing a parquet table; its peak RSS is read from
the kernel (ru_maxrss of the child). Memory must stay flat in video length: mien streams frames and
keeps only the growing result table (about 0.4 KB a face-row).
"""
from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import looped


def peak_rss_of(cmd: list[str]) -> tuple[float, float]:
    t = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(cmd, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if after <= before:
        raise RuntimeError("RUSAGE_CHILDREN did not grow; run each measurement in a new process")
    return after / 1024, time.perf_counter() - t


def main() -> None:
    clip = "WolfgangLanger_Pexels.mp4"
    results = {}
    # run the long video first: RUSAGE_CHILDREN is a running maximum over children
    for minutes in (10, 1):
        video = looped(clip, minutes)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "r.parquet"
            code = (
                "import resource,subprocess,sys;"
                f"subprocess.run([sys.executable,'-m','mien','analyze',{str(video)!r},'-o',{str(out)!r},'--quiet'],check=True);"
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024)"
            )
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            rss = float(proc.stdout.strip().splitlines()[-1])
            results[minutes] = rss
            print(f"{minutes:>2}-minute loop of {clip}: peak RSS {rss:.0f} MB, {time.perf_counter() - t:.0f} s")
    print(f"10-minute / 1-minute peak RSS: {results[10] / results[1]:.3f} (target ≤ 1.15)")


if __name__ == "__main__":
    main()
