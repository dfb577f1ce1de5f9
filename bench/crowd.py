"""Cost per face and per pixel: face grids at 1280x720 and one face at 360p/720p/1080p.

    python bench/crowd.py [--frames 150] [--grids 1,4,9,16] [--no-resolutions] [--precision P]
        [--no-geometry] [--baseline-src SRC] [--json out.json]

Before/after in one run: ``git archive COMMIT src | tar -x -C /tmp/base`` then ``--baseline-src
/tmp/base/src`` times that engine alternately with this checkout and prints the ratios.

Inputs are built here from the shared clips and cached in bench/.cache, so anyone can rerun them:

- **grids**: a 1280x720 canvas of 4x4 cells of 320x180; the first N cells (N = 1, 4, 9, 16) each
  play a different shared talking-head clip scaled to fit its cell, the others stay plain grey.
  Every face has the same size in every grid (about 55-80 px), so the cost difference between grids
  is the cost of the extra faces, not of other face sizes. Numpy tiling, H.264 by PyAV (libx264).
- **resolutions**: WolfgangLanger_Pexels.mp4 (one face) re-encoded at 640x360, 1280x720 and
  1920x1080 with the same settings.

Every measurement is a fresh child process with the models loaded before the clock (as a long run
amortises them), the default options (``detect_every=3``). Printed per video: frames/s (decoded
frames / wall, decoding included), decode-only frames/s (the floor), mean faces per frame, and the
main thread's ms/frame per stage from the run's manifest. Then the marginal cost per extra face:
the least-squares slope of wall ms/frame (and of each stage) against faces per frame over the
grids. For the resolutions, also the *analysis-only* frames/s ("decode aside"): the frames are
decoded into memory first and then fed through the same threaded path (full-frame detection ahead
in a second thread), so the ratio 1080p/360p measures mien's own cost of pixels.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
from common import CACHE, CHILD_PRELUDE, DECODE_ONLY, add_engine_args, encode_bgr, run_child, shared

CANVAS_W, CANVAS_H, CELLS = 1280, 720, 4
CELL_W, CELL_H = CANVAS_W // CELLS, CANVAS_H // CELLS
#: one face each, at least 150 frames where possible; clips repeat with a time offset past 12
GRID_CLIPS = [
    "WolfgangLanger_Pexels.mp4", "talking_d6.mp4", "RD_Radio2_000.mp4", "WDA_BobMenendez_000.mp4",
    "WDA_KatieHill_000.mp4", "talking_d3.mp4", "talking_d9.mp4", "talking_d8.mp4",
    "talking_d7.mp4", "talking_d5.mp4", "single_face.mp4", "talking_d0.mp4",
]
RESOLUTIONS = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}
FPS = 25


def _read(name: str, size: tuple[int, int], frames: int, skip: int = 0, fit: bool = True) -> np.ndarray:
    """``frames`` BGR frames of a shared clip from frame ``skip`` on (looping short clips),
    scaled to fit ``size`` (w, h) and centred on grey (``fit``) or resized to it exactly."""
    import av
    import cv2

    w, h = size
    out = []
    with av.open(str(shared(name))) as c:
        for vf in c.decode(video=0):
            out.append(vf.to_ndarray(format="bgr24"))
            if len(out) >= skip + frames:
                break
    src = [out[(skip + i) % len(out)] for i in range(frames)]
    res = np.full((frames, h, w, 3), 128, np.uint8)
    for i, img in enumerate(src):
        ih, iw = img.shape[:2]
        s = min(w / iw, h / ih) if fit else None
        tw, th = (round(iw * s), round(ih * s)) if s else (w, h)
        interp = cv2.INTER_AREA if tw < iw else cv2.INTER_CUBIC
        small = cv2.resize(img, (tw, th), interpolation=interp)
        y0, x0 = (h - th) // 2, (w - tw) // 2
        res[i, y0:y0 + th, x0:x0 + tw] = small
    return res


def _encode(frames, path: Path, size: tuple[int, int]) -> Path:
    return encode_bgr(frames, path, size, FPS, {"crf": "18", "preset": "veryfast"})


def grid_video(n_faces: int, frames: int) -> Path:
    """A 1280x720 video with ``n_faces`` talking heads in the first cells of a 4x4 grid."""
    out = CACHE / f"grid{n_faces}_{CANVAS_W}x{CANVAS_H}_{frames}f.mp4"
    if out.is_file():
        return out
    canvas = np.full((frames, CANVAS_H, CANVAS_W, 3), 128, np.uint8)
    for i in range(n_faces):
        name = GRID_CLIPS[i % len(GRID_CLIPS)]
        tile = _read(name, (CELL_W, CELL_H), frames, skip=(i // len(GRID_CLIPS)) * frames)
        r, c = divmod(i, CELLS)
        canvas[:, r * CELL_H:(r + 1) * CELL_H, c * CELL_W:(c + 1) * CELL_W] = tile
    return _encode(canvas, out, (CANVAS_W, CANVAS_H))


def resolution_video(label: str) -> Path:
    """WolfgangLanger re-encoded at one of :data:`RESOLUTIONS` (all its 472 frames)."""
    size = RESOLUTIONS[label]
    out = CACHE / f"WolfgangLanger_{label}.mp4"
    if out.is_file():
        return out
    import av
    import cv2

    def frames():
        with av.open(str(shared("WolfgangLanger_Pexels.mp4"))) as c:
            for vf in c.decode(video=0):
                img = vf.to_ndarray(format="bgr24")
                if (img.shape[1], img.shape[0]) != size:
                    img = cv2.resize(img, size, interpolation=cv2.INTER_CUBIC)
                yield img

    return _encode(frames(), out, size)


MIEN_STAGES = CHILD_PRELUDE + """
from mien.pipeline import Analyzer, AnalysisOptions
path, opts = sys.argv[1], json.loads(sys.argv[2])
an = Analyzer(AnalysisOptions(**opts))
an.detector.session; an.model.session
t = time.perf_counter(); c = time.process_time()
r = an.analyze_source(path)
dt = time.perf_counter() - t; dc = time.process_time() - c
m = r.manifest.frames if hasattr(r.manifest, "frames") else r.manifest["frames"]
print(json.dumps({"frames": m["decoded"], "seconds": dt, "fps": m["decoded"] / dt,
                  "cpu_ms_per_frame": dc * 1000 / m["decoded"],
                  "faces": m["faces"], "abstained": m["abstained"],
                  "faces_per_frame": m["faces"] / max(m["analysed"], 1),
                  "stage_ms_per_frame": m["stage_ms_per_frame"], "peak_rss_mb": peak_rss_mb()}))
"""

#: decode aside: frames decoded into memory first, then the same threaded path as a file source
MIEN_IN_MEMORY = CHILD_PRELUDE + """
import av
from mien.pipeline import Analyzer, AnalysisOptions
try:
    from mien.ahead import run_ahead
except ImportError:  # a baseline engine from before mien.ahead
    from mien.sources import _threaded as run_ahead
from mien.sources import Frame
path, limit = sys.argv[1], int(sys.argv[2])
an = Analyzer(AnalysisOptions(**json.loads(sys.argv[3])))
an.detector.session; an.model.session
if getattr(an, "mesh", None) is not None:
    an.mesh.session  # as analyze_source's runs: every model ready before the clock
images = []
with av.open(path) as c:
    s = c.streams.video[0]
    for i, vf in enumerate(c.decode(s)):
        images.append((i, float(vf.time), vf.to_ndarray(format="bgr24")))
        if len(images) >= limit:
            break
prepare = an._scheduled_detection()
def frames():
    for i, t0, img in images:
        fr = Frame(i, t0, img); prepare(fr); yield fr
t = time.perf_counter()
# the table as the engine builds it (analyze_frames would add pandas' import and a conversion to
# the timed part, which the file runs do not pay)
analyze = getattr(an, "analyze_rows", an.analyze_frames)
df, stats = analyze(run_ahead(frames(), 8), path)
dt = time.perf_counter() - t
print(json.dumps({"frames": len(images), "seconds": dt, "fps": len(images) / dt, "faces": stats["faces"],
                  "stage_ms_per_frame": stats["stage_ms_per_frame"]}))
"""


def _slope(x: list[float], y: list[float]) -> float:
    return float(np.polyfit(np.asarray(x), np.asarray(y), 1)[0])


def _stages(r: dict) -> str:
    return "  ".join(f"{k} {v:6.2f}" for k, v in r["stage_ms_per_frame"].items())


def _runs(args: argparse.Namespace) -> list[tuple[str, str | None, str]]:
    """(label, source folder or None for this checkout, options JSON) of each engine to time."""
    common: dict = {"threads": args.threads}
    if args.no_geometry:
        common["geometry"] = False
    opts = dict(common)
    if args.precision:
        opts["precision"] = args.precision
    runs = [("this", args.src, json.dumps(opts))]
    if args.baseline_src:
        runs.append(("baseline", args.baseline_src, json.dumps(common)))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=150, help="frames per grid video (25 fps)")
    ap.add_argument("--grids", default="1,4,9,16", help="faces per grid, comma-separated")
    ap.add_argument("--no-resolutions", action="store_true")
    ap.add_argument("--no-grids", action="store_true")
    ap.add_argument("--in-memory-frames", type=int, default=150,
                    help="frames held in memory for the decode-aside resolution runs")
    ap.add_argument("--threads", type=int, default=1, help="threads per ONNX model")
    ap.add_argument("--no-geometry", action="store_true", help="both engines without the face mesh stage")
    ap.add_argument("--precision", default=None, help="expression network for this checkout (auto|int8|float)")
    add_engine_args(ap, "as imported here")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.2f}; threads/model {args.threads}")
    print("cpu ms/frame = the process's CPU time (all threads) per decoded frame: steadier than wall "
          "time when the machine is shared")
    runs = _runs(args)
    report: dict = {"grids": [], "resolutions": []}

    if not args.no_grids:
        counts = [int(v) for v in args.grids.split(",")]
        print(f"\ngrids at {CANVAS_W}x{CANVAS_H}, {args.frames} frames, faces in {CELL_W}x{CELL_H} cells")
        for n in counts:
            path = grid_video(n, args.frames)
            base = run_child(DECODE_ONLY, str(path))
            row: dict = {"n": n, "path": str(path), "decode_fps": base["fps"]}
            for label, src, opts in runs:
                r = run_child(MIEN_STAGES, str(path), opts, src=src)
                r["ms_per_frame"] = 1000 / r["fps"]
                row[label] = r
                print(f"  {n:2d} faces, {label:<8}: {r['fps']:6.1f} frames/s ({r['ms_per_frame']:6.1f} ms/frame, "
                      f"cpu {r['cpu_ms_per_frame']:6.1f} ms/frame; decode-only {base['fps']:.0f}/s)  "
                      f"faces/frame {r['faces_per_frame']:5.2f}  stage ms/frame: {_stages(r)}")
            if "baseline" in row:
                print(f"  {n:2d} faces: this / baseline frames/s {row['this']['fps'] / row['baseline']['fps']:.2f}, "
                      f"cpu ms/frame {row['this']['cpu_ms_per_frame'] / row['baseline']['cpu_ms_per_frame']:.2f}")
            report["grids"].append(row)
        if len(report["grids"]) >= 2:
            g = report["grids"]
            for label, _, _ in runs:
                x = [row[label]["faces_per_frame"] for row in g]
                print(f"  {label}: marginal cost per extra face (slope over {len(g)} grids): wall "
                      f"{_slope(x, [row[label]['ms_per_frame'] for row in g]):.2f} ms, cpu "
                      f"{_slope(x, [row[label]['cpu_ms_per_frame'] for row in g]):.2f} ms;  by stage: " + "  ".join(
                          f"{k} {_slope(x, [row[label]['stage_ms_per_frame'][k] for row in g]):.2f}"
                          for k in g[0][label]["stage_ms_per_frame"]))

    if not args.no_resolutions:
        print("\nWolfgangLanger at three resolutions (one face, 472 frames)")
        for res_label in RESOLUTIONS:
            path = resolution_video(res_label)
            base = run_child(DECODE_ONLY, str(path))
            row = {"label": res_label, "decode_fps": base["fps"]}
            for label, src, opts in runs:
                r = run_child(MIEN_STAGES, str(path), opts, src=src)
                r["in_memory"] = run_child(MIEN_IN_MEMORY, str(path), str(args.in_memory_frames), opts, src=src)
                row[label] = r
                print(f"  {res_label:>5}, {label:<8}: {r['fps']:6.1f} frames/s (cpu {r['cpu_ms_per_frame']:5.1f} ms/frame; "
                      f"decode-only {base['fps']:.0f}/s); decode aside {r['in_memory']['fps']:6.1f} frames/s; "
                      f"stage ms/frame: {_stages(r)}")
            report["resolutions"].append(row)
        res = {row["label"]: row for row in report["resolutions"]}
        for label, _, _ in runs:
            print(f"  {label}: 1080p / 360p frames/s {res['1080p'][label]['fps'] / res['360p'][label]['fps']:.3f} with "
                  f"decoding, {res['1080p'][label]['in_memory']['fps'] / res['360p'][label]['in_memory']['fps']:.3f} "
                  "decode aside")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
