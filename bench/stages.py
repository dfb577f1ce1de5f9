"""The engine's two stage threads against one thread: interleaved rounds in one process.

    python bench/stages.py [--videos WolfgangLanger_Pexels.mp4 ...] [--rounds 5] [--switch-interval S]

For each shared clip, the same models run the clip with ``overlap_stages=True`` (detection,
tracking and geometry in a thread ahead of alignment, quality and expression) and ``False`` (both
stages in turn on one thread), with geometry on and off, alternating the configurations round by
round so a shared machine's load falls on all of them alike. Printed: median frames/s of each,
the ratio overlap / one thread, and whether the two tables are identical (they must be).
``--switch-interval`` sets Python's GIL switch interval (``sys.setswitchinterval``) for the run.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from common import shared
from crowd import grid_video

from mien.options import AnalysisOptions
from mien.pipeline import Analyzer

GRID_FRAMES = 150
VIDEOS = ["WolfgangLanger_Pexels.mp4", "short_hamilton_clip.mp4"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", nargs="*", default=VIDEOS)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--switch-interval", type=float, default=None)
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--grid", type=int, nargs="*", default=[],
                    help="also bench/crowd.py's 1280x720 grids of this many faces (e.g. 16)")
    args = ap.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    print(f"GIL switch interval {sys.getswitchinterval() * 1000:.2f} ms; {args.rounds} interleaved rounds")
    base = Analyzer(AnalysisOptions())
    configs = {}
    for geometry in (True, False):
        for overlap in (True, False):
            an = Analyzer(AnalysisOptions(geometry=geometry, overlap_stages=overlap, max_frames=args.max_frames),
                          model=base.model, detector=base.detector)
            an.detector.session, an.model.session  # noqa: B018
            if an.mesh is not None:
                an.mesh.session  # noqa: B018
            configs[(geometry, overlap)] = an
    print("| video | geometry | one thread, frames/s | two stages, frames/s | ratio | same table |")
    print("|---|---|---:|---:|---:|---|")
    inputs = [(name, str(shared(name))) for name in args.videos]
    inputs += [(f"{n}-face grid, 1280x720", str(grid_video(n, GRID_FRAMES))) for n in args.grid]
    for name, path in inputs:
        fps: dict[tuple[bool, bool], list[float]] = {k: [] for k in configs}
        tables = {}
        for _ in range(args.rounds):
            for key, an in configs.items():
                t = time.perf_counter()
                r = an.analyze_source(path)
                dt = time.perf_counter() - t
                fps[key].append(r.manifest.sources[0].frames["decoded"] / dt)
                tables[key] = r.to_pandas()
        for geometry in (True, False):
            one = statistics.median(fps[(geometry, False)])
            two = statistics.median(fps[(geometry, True)])
            same = tables[(geometry, True)].equals(tables[(geometry, False)])
            print(f"| {name} | {'on' if geometry else 'off'} | {one:.1f} | {two:.1f} | {two / one:.2f} | {same} |")


if __name__ == "__main__":
    main()
