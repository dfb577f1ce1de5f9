"""Load on ``mien serve``: N concurrent uploads of a short clip to a server with W workers, on 127.0.0.1.

    python bench/serve_load.py [--jobs 20] [--workers 2] [--clip single_face.mp4] [--stride 2]

The server runs in this process (uvicorn on a loopback port, in a thread); N client threads each
upload the clip at once over HTTP, then the jobs are followed until all have ended (bounded by
``--timeout``). Checks: every upload got an id, every job ended ``done`` exactly once (``runs``
== 1), no job was lost, all tables are identical in length, never more than W jobs ran at the same
time (from the jobs' start/finish times), and the process's resident memory, sampled every 0.2 s
(its peak until half the jobs had finished against its peak over the run: flat means bounded).
The reference, in the same process: the same clip analysed N times in a row by one ``Analyzer``
with the same options, so the ratio says what the server costs (HTTP, probing, SQLite, reports)
against analysing alone.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "data" / "videos"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _multipart(path: Path, fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
             for k, v in fields.items()]
    parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
                 "Content-Type: video/mp4\r\n\r\n".encode() + path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def max_overlap(jobs: list[dict[str, Any]]) -> int:
    """Most jobs running at one moment, from their start and finish times."""
    edges = sorted([(j["started"], 1) for j in jobs] + [(j["finished"], -1) for j in jobs],
                   key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def run_load(clip: Path, n_jobs: int = 20, workers: int = 2, stride: int = 2, timeout_s: float = 600.0,
             data_dir: Path | None = None) -> dict[str, Any]:
    """Start a server, upload ``clip`` ``n_jobs`` times at once, wait for every job; return the figures."""
    from mien.serve.app import ServeConfig, running_server

    tmp = tempfile.TemporaryDirectory() if data_dir is None else None
    data = Path(tmp.name) if tmp is not None else Path(data_dir)  # type: ignore[arg-type]
    config = ServeConfig(data_dir=data, host="127.0.0.1", port=_free_port(), workers=workers)
    try:
        with running_server(config) as base:
            return _load(base, clip, n_jobs, workers, stride, timeout_s)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _load(base: str, clip: Path, n_jobs: int, workers: int, stride: int, timeout_s: float) -> dict[str, Any]:
    samples: list[tuple[float, float]] = []  # (time.time(), RSS MB)
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            samples.append((time.time(), rss_mb()))
            time.sleep(0.2)

    rss_before = rss_mb()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    body, ctype = _multipart(clip, {"stride": str(stride)})
    ids: list[str | None] = [None] * n_jobs
    errors: list[str] = []
    start = threading.Barrier(n_jobs)

    def client(i: int) -> None:
        start.wait()
        req = urllib.request.Request(f"{base}/api/jobs", data=body, method="POST",
                                     headers={"Content-Type": ctype})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                ids[i] = json.loads(r.read())["id"]
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(f"upload {i}: {exc}")

    t0 = time.perf_counter()
    clients = [threading.Thread(target=client, args=(i,)) for i in range(n_jobs)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    uploaded_s = time.perf_counter() - t0
    deadline = time.monotonic() + timeout_s
    jobs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        jobs = _get(f"{base}/api/jobs")["jobs"]
        if jobs and all(j["status"] in ("done", "failed", "cancelled") for j in jobs):
            break
        time.sleep(0.25)
    wall_s = time.perf_counter() - t0
    rows = sorted({len(_rows(f"{base}{j['outputs']['results.parquet']}")) for j in jobs if j["status"] == "done"})
    sampling.set()
    sampler.join()
    done = [j for j in jobs if j["status"] == "done"]
    return {
        "jobs": n_jobs, "workers": workers, "clip": clip.name, "stride": stride,
        "upload_errors": errors, "ids": len({i for i in ids if i}),
        "listed": len(jobs), "done": len(done), "runs": sorted({j["runs"] for j in jobs}),
        "lost": sorted({i for i in ids if i} - {j["id"] for j in jobs}),
        "timed_out": not jobs or not all(j["status"] in ("done", "failed", "cancelled") for j in jobs),
        "table_rows": rows, "max_running": max_overlap(done) if done else 0,
        "uploads_s": round(uploaded_s, 2), "wall_s": round(wall_s, 2),
        "rss_mb_before": round(rss_before, 1), "rss_mb_peak": round(max([m for _, m in samples] or [rss_before]), 1),
        "rss_mb_peak_first_half": round(_peak_until_half_done(samples, done, rss_before), 1),
        "rss_mb_end": round(samples[-1][1] if samples else rss_before, 1),
    }


def _peak_until_half_done(samples: list[tuple[float, float]], done: list[dict[str, Any]], rss_before: float) -> float:
    """Peak RSS until half the jobs had finished: against the whole run's peak, it shows whether
    memory grows with the number of jobs served."""
    if not done:
        return rss_before
    half = sorted(j["finished"] for j in done)[(len(done) - 1) // 2]
    return max([m for t, m in samples if t <= half] or [rss_before])


def _rows(url: str) -> Any:
    import io

    import pandas as pd

    with urllib.request.urlopen(url, timeout=30) as r:
        return pd.read_parquet(io.BytesIO(r.read()))


def direct_seconds(clip: Path, n_jobs: int, stride: int) -> float:
    """The reference: the clip analysed ``n_jobs`` times in a row by one Analyzer (models loaded once)."""
    from mien.pipeline import AnalysisOptions, Analyzer

    analyzer = Analyzer(AnalysisOptions(stride=stride))
    analyzer.analyze_source(str(clip))  # load and warm both models first, as the server's workers do
    t = time.perf_counter()
    for _ in range(n_jobs):
        analyzer.analyze_source(str(clip))
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clip", default="single_face.mp4")
    parser.add_argument("--stride", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    clip = VIDEOS / args.clip
    if not clip.is_file():
        sys.exit(f"bench: {clip} not found; the benchmarks need ../shared/data/videos beside the checkout")
    figures = run_load(clip, args.jobs, args.workers, args.stride, args.timeout)
    direct = direct_seconds(clip, args.jobs, args.stride)
    figures["direct_s"] = round(direct, 2)
    figures["wall_over_direct"] = round(figures["wall_s"] / direct, 2)
    print(json.dumps(figures, indent=2))
    ok = (not figures["upload_errors"] and not figures["lost"] and not figures["timed_out"]
          and figures["done"] == args.jobs and figures["runs"] == [1] and len(figures["table_rows"]) == 1
          and figures["max_running"] <= args.workers)
    print("serve load: " + ("every job completed exactly once" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
