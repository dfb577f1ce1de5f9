"""What users feel: the whole ``mien analyze`` command, start-up included.

    python bench/cli_speed.py [--repeats 3] [--no-loop] [--importtime] [--baseline-src SRC] [--json out.json]

Before/after in one run: ``git archive COMMIT src | tar -x -C /tmp/base`` then ``--baseline-src
/tmp/base/src`` times that engine alternately with this checkout and prints the ratios.

Every run is a fresh ``python -m mien analyze VIDEO -o OUT.parquet --quiet`` process, timed by wall
clock from launch to exit (interpreter, imports, model checks, ONNX sessions, decoding, analysis,
writing the table and its sidecars). Inputs:

- a 1-frame video (the first frame of WolfgangLanger, built with PyAV into bench/.cache): its wall
  time is the start-up cost a user pays on every command;
- WolfgangLanger_Pexels.mp4 (472 frames, 640x360, one face), every frame;
- a 10-minute loop of it (remuxed, bench/.cache; skip with ``--no-loop``).

References in the same run, also fresh processes: ``python -c pass`` (the interpreter alone) and
PyAV decode-only of each video (the floor). Whole-command frames/s = decoded frames / wall time.
The per-stage main-thread ms/frame come from each run's manifest. ``--importtime`` also prints the
slowest imports of the 1-frame command (``python -X importtime``), cumulative.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CACHE, DECODE_ONLY, REPO, add_engine_args, looped, run_child, shared

CLIP = "WolfgangLanger_Pexels.mp4"


def one_frame_video(name: str = CLIP) -> Path:
    """The first frame of a shared clip as a 1-frame H.264 video, cached in bench/.cache."""
    import av

    out = CACHE / f"{Path(name).stem}_1frame.mp4"
    if out.is_file():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    with av.open(str(shared(name))) as inp:
        frame = next(inp.decode(video=0))
        img = frame.to_ndarray(format="bgr24")
    tmp = out.with_suffix(".part.mp4")
    with av.open(str(tmp), mode="w") as dst:
        st = dst.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = img.shape[1], img.shape[0], "yuv420p"
        for pkt in st.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
            dst.mux(pkt)
        for pkt in st.encode():
            dst.mux(pkt)
    tmp.replace(out)
    return out


def _env(src: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = src or str(REPO / "src")
    return env


def wall_of(cmd: list[str], src: str | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, all threads) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(src))
    dt = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return dt, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def mien_command(video: Path, repeats: int, src: str | None = None) -> dict:
    """Fresh ``mien analyze`` processes on ``video``: wall and CPU times, the manifest of the last."""
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.parquet"
        for _ in range(repeats):
            w, c = wall_of([sys.executable, "-m", "mien", "analyze", str(video), "-o", str(out), "--quiet"], src)
            walls.append(w)
            cpus.append(c)
        sidecar = next(p for p in (out.with_name("r.parquet.manifest.json"), out.with_name("r.manifest.json"))
                       if p.is_file())  # whole-name sidecars since faults (#16); the baseline's older name
        manifest = json.loads(sidecar.read_text())
    f = manifest["sources"][0]["frames"] if "sources" in manifest else manifest["frames"]
    return {"walls": walls, "wall": min(walls), "median_wall": statistics.median(walls), "cpu": min(cpus),
            "decoded": f["decoded"], "faces": f["faces"], "stage_ms_per_frame": f["stage_ms_per_frame"]}


def import_profile(video: Path, src: str | None = None, top: int = 15) -> list[tuple[str, float]]:
    """The slowest imports (cumulative ms) of ``mien analyze`` on ``video``."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "mien", "analyze", str(video), "-o",
             str(Path(tmp) / "r.parquet"), "--quiet"],
            capture_output=True, text=True, env=_env(src),
        )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cum_us, name = line.split(":", 1)[1].split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        if depth <= 1:
            rows.append((name.strip(), int(cum_us) / 1000))
    return sorted(rows, key=lambda r: -r[1])[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each short command (the fastest is kept)")
    ap.add_argument("--no-loop", action="store_true", help="skip the 10-minute loop")
    ap.add_argument("--loop-minutes", type=float, default=10.0)
    ap.add_argument("--importtime", action="store_true", help="also list the slowest imports at start-up")
    add_engine_args(ap, "this checkout's src")
    args = ap.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.2f}")
    interp = min(wall_of([sys.executable, "-c", "pass"])[0] for _ in range(args.repeats))
    print(f"python -c pass (interpreter alone): {interp * 1000:.0f} ms")
    print("cpu = user + system seconds of the command's process (all threads): steadier than wall time "
          "when the machine is shared")
    report: dict = {"interpreter_s": interp, "runs": []}
    engines = [("this", args.src)] + ([("baseline", args.baseline_src)] if args.baseline_src else [])

    videos = [("1-frame video", one_frame_video(), args.repeats), (CLIP, shared(CLIP), args.repeats)]
    if not args.no_loop:
        videos.append((f"{CLIP}, {args.loop_minutes:g}-minute loop", looped(CLIP, args.loop_minutes), 1))
    for label, video, repeats in videos:
        base = run_child(DECODE_ONLY, str(video))
        print(f"\n{label}: decode-only {base['fps']:.0f} frames/s in process")
        row: dict = {"video": label, "path": str(video), "decode_fps": base["fps"]}
        for engine, src in engines:
            r = mien_command(video, repeats, src)
            r["fps"] = r["decoded"] / r["wall"]
            stages = ", ".join(f"{k} {v:.2f}" for k, v in r["stage_ms_per_frame"].items())
            print(f"  {engine:<8} {r['decoded']} frames, {r['faces']} faces: wall {r['wall']:.3f} s "
                  f"(of {', '.join(f'{w:.3f}' for w in r['walls'])}), cpu {r['cpu']:.3f} s; "
                  f"{r['fps']:.1f} frames/s whole command;  stage ms/frame: {stages}")
            row[engine] = r
        if "baseline" in row:
            print(f"  this / baseline: wall {row['this']['wall'] / row['baseline']['wall']:.2f}, "
                  f"cpu {row['this']['cpu'] / row['baseline']['cpu']:.2f}")
        report["runs"].append(row)
    one, clip = report["runs"][0]["this"], report["runs"][1]["this"]
    print(f"\nstart-up (1-frame command) {one['wall']:.3f} s wall, {one['cpu']:.3f} s cpu = "
          f"{one['wall'] / clip['wall']:.2f} of the {CLIP} command's wall; {CLIP} with the start-up "
          f"taken out: {clip['decoded'] / max(clip['wall'] - one['wall'], 1e-9):.1f} frames/s")

    if args.importtime:
        print("\nslowest imports of the 1-frame command (cumulative ms, top-level and their direct children):")
        prof = import_profile(Path(report["runs"][0]["path"]), args.src)
        for name, ms in prof:
            print(f"  {ms:8.1f}  {name}")
        report["imports_ms"] = prof
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
