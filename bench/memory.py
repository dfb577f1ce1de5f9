"""Peak memory against video length: mien on a 1-minute and a 10-minute loop of a shared clip,
and on a 20-second and a 90-second 4K (3840×2160) video made from it.

    python bench/memory.py          # both cases
    python bench/memory.py 4k       # only the 4K case

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

from common import looped, looped_file, uhd


def peak_rss_of(cmd: list[str]) -> tuple[float, float]:
    t = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(cmd, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if after <= before:
        raise RuntimeError("RUSAGE_CHILDREN did not grow; run each measurement in a new process")
    return after / 1024, time.perf_counter() - t


def peak_rss_of_mien(video: Path) -> tuple[float, float]:
    """Peak RSS (MB) and wall time of one fresh ``mien analyze`` process on ``video``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.parquet"
        code = (
            "import resource,subprocess,sys;"
            f"subprocess.run([sys.executable,'-m','mien','analyze',{str(video)!r},'-o',{str(out)!r},'--quiet'],check=True);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024)"
        )
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return float(proc.stdout.strip().splitlines()[-1]), time.perf_counter() - t


def main() -> None:
    clip = "WolfgangLanger_Pexels.mp4"
    cases = sys.argv[1:] or ["640x360", "4k"]
    if "640x360" in cases:
        results = {}
        for minutes in (10, 1):
            rss, wall = peak_rss_of_mien(looped(clip, minutes))
            results[minutes] = rss
            print(f"{minutes:>2}-minute loop of {clip}: peak RSS {rss:.0f} MB, {wall:.0f} s")
        print(f"10-minute / 1-minute peak RSS: {results[10] / results[1]:.3f} (target ≤ 1.15)")
    if "4k" in cases:
        short = uhd(clip, 20)
        videos = {"20 s": short, "90 s": looped_file(short, 1.5)}
        rss4k = {}
        for label, video in videos.items():
            rss4k[label], wall = peak_rss_of_mien(video)
            print(f"4K (3840×2160) {label} of {clip}: peak RSS {rss4k[label]:.0f} MB, {wall:.0f} s")
        print(f"4K 90 s / 20 s peak RSS: {rss4k['90 s'] / rss4k['20 s']:.3f} (target ≤ 1.15); "
              f"largest {max(rss4k.values()):.0f} MB (target < 600 MB)")


if __name__ == "__main__":
    main()
