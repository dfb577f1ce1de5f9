"""Batch throughput: a folder of shared clips ×N analysed with 1 and 2 local workers and on a
local Ray cluster, against N × the single-file time, all in this one process.

    python bench/batch.py [--copies 3] [--stride 1] [--modes 1,2,ray]

The folder holds ``--copies`` links to each of four short face clips (in nested subfolders, so the
tree walk and the mirrored names are exercised). The reference is each distinct clip analysed once
in this process with the one-worker plan (all cores to one model copy), its time × the copies.
Every mode starts its own workers inside the timed span, as a user's run would; Ray's cluster
start-up is timed apart and reported both ways (a user's first run pays it; a standing cluster
does not). ``ratio`` is the mode's wall time over N × single-file time: below 1 means the batch
beat running the files one after another. Peak RSS is per worker process (ru_maxrss reported by
the worker with each input; for one worker, this process itself, models included).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import shared

from mien.batch import BatchOptions, read_index, run_batch
from mien.batch.runner import available_cores
from mien.options import AnalysisOptions

CLIPS = ("single_face.mp4", "talking_d0.mp4", "talking_d5.mp4", "talking_d7.mp4")


def make_folder(root: Path, copies: int) -> None:
    for c in range(copies):
        for name in CLIPS:
            dst = root / f"participant{c}" / "session1" / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(shared(name))


def timed_batch(root: Path, out: Path, options: AnalysisOptions, batch: BatchOptions) -> dict:
    t = time.perf_counter()
    summary = run_batch(root, out, options, batch)
    wall = time.perf_counter() - t
    index = read_index(out)
    assert (index["status"] == "done").all(), index[["path", "status", "error"]]
    frames = int(index["frames"].sum())
    return {"wall_s": wall, "files": len(index), "frames": frames, "workers": summary.workers,
            "threads": summary.threads, "peak_rss_mib": sorted(round(v) for v in summary.peak_rss_mib.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--modes", default="1,2,ray", help="comma-separated: 1 (worker), 2 (workers), ray")
    args = ap.parse_args()
    options = AnalysisOptions(stride=args.stride)
    cores = available_cores()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        # the reference: each distinct clip alone, one after another, in this process
        single = 0.0
        for name in CLIPS:
            one = base / "single" / name
            one.mkdir(parents=True)
            (one / name).symlink_to(shared(name))
            r = timed_batch(one, base / "single_out" / name, options, BatchOptions(workers=1, progress=False))
            single += r["wall_s"]
        reference = single * args.copies
        make_folder(base / "study", args.copies)
        wanted = set(args.modes.split(","))
        modes = [(label, batch) for key, label, batch in (
            ("1", "1 worker", BatchOptions(workers=1, progress=False)),
            ("2", "2 workers", BatchOptions(workers=2, progress=False)),
            ("ray", "Ray local", BatchOptions(ray="auto", progress=False))) if key in wanted]
        for label, batch in modes:
            ray_start = 0.0
            if batch.ray:
                # start the local cluster apart, so its start-up is reported on its own
                import ray

                t = time.perf_counter()
                ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
                ray_start = time.perf_counter() - t
            r = timed_batch(base / "study", base / label.replace(" ", "_"), options, batch)
            if batch.ray:
                ray.shutdown()
                r["ray_start_s"] = ray_start
                r["wall_s"] += ray_start  # a user's run starts the cluster too
            r["files_per_s"] = r["files"] / r["wall_s"]
            r["frames_per_s"] = r["frames"] / r["wall_s"]
            r["ratio_to_n_single"] = r["wall_s"] / reference
            results[label] = r
            if batch.ray:
                up = dict(r, wall_s=r["wall_s"] - ray_start)
                up["files_per_s"] = up["files"] / up["wall_s"]
                up["frames_per_s"] = up["frames"] / up["wall_s"]
                up["ratio_to_n_single"] = up["wall_s"] / reference
                results["Ray local, cluster already up"] = up
    print(f"cores {cores}; {args.copies} copies × {len(CLIPS)} clips, stride {args.stride}; "
          f"N × single-file time {reference:.1f} s")
    print("| mode | workers × threads | files/s | frames/s | wall s | ratio to N × single | peak RSS per worker (MiB) |")
    print("|---|---|---:|---:|---:|---:|---|")
    for label, r in results.items():
        print(f"| {label} | {r['workers']} × {r['threads']} | {r['files_per_s']:.3f} | {r['frames_per_s']:.1f} | "
              f"{r['wall_s']:.1f} | {r['ratio_to_n_single']:.3f} | {', '.join(map(str, r['peak_rss_mib']))} |")
    print(json.dumps({"reference_s": reference, **results}))


if __name__ == "__main__":
    main()
