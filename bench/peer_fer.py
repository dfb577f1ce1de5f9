"""Peer benchmark: mien against ``fer`` 25.10.3 (Haar cascade + quantised TFLite classifier).

    python bench/peer_fer.py [--json out.json] [--max-frames N] [--videos a.mp4 b.mp4 ...]

Run from the repo root with mien's venv active. The first run builds the peer's own CPU-only venv
at bench/.venv-fer from the interpreter running this script, so both tools run on the same Python
(reused after; delete it to rebuild). A plain ``pip install fer`` pulls CUDA
torch through facenet-pytorch, which fer's default path never imports (only ``FER(mtcnn=True)``
does), so the venv gets ``fer --no-deps`` plus tensorflow-cpu, opencv-contrib-python<5,
setuptools<81 (fer imports ``pkg_resources``) and fer's other runtime requirements.

For each shared clip, each tool runs in its own fresh child process (so each peak RSS, the child's
``ru_maxrss``, is its own), on every frame, with its defaults:

* fer: ``Video(path).analyze(FER(), display=False, save_frames=False, save_video=False,
  annotate_frames=False, output="pandas")`` in bench/.venv-fer (see bench/_fer_worker.py);
* mien: ``Analyzer().analyze_source(path)``, which is what ``mien.analyze(path)`` runs.

Models are loaded before the clock starts for both, so frames/s = frames read / wall time of the
analysis (decode included). Each tool runs ``--repeat`` times per clip (default 3), alternating with
the other, and the fastest run counts: on a shared machine that is the run least slowed by others. A frame "with a face" is one where the tool returned at least one face.
Top labels are compared on the frames where both found a face, largest face of each (by box area);
fer's names (angry, happy, ...) are mapped with ``mien.labels.canonical_label``. mien's top label is
its smoothed one; frames where mien's largest face abstains (quality gate) are left out and
counted. Agreement is the share of compared frames with the same label; Cohen's kappa corrects it
for chance. mien has an eighth label (contempt) that fer cannot give.

Machine notes go in the output (cores, load); CPU contention changes fps, not the labels.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import REPO, shared

VIDEOS = ["WolfgangLanger_Pexels.mp4", "short_hamilton_clip.mp4", "talking_d6.mp4"]

FER_VENV = REPO / "bench" / ".venv-fer"
FER_PY = FER_VENV / "bin" / "python"
FER_WORKER = Path(__file__).resolve().with_name("_fer_worker.py")
#: fer 25.10.3's runtime requirements (from its wheel's METADATA), CPU-only: tensorflow-cpu for
#: tensorflow, facenet-pytorch (and with it torch) left out because only FER(mtcnn=True) imports it.
FER_DEPS = [
    "tensorflow-cpu",
    "opencv-contrib-python<5",
    "setuptools<81",  # fer imports pkg_resources, gone from setuptools 81
    "matplotlib",
    "pandas",
    "requests",
    "tqdm>=4.62.1",
    "moviepy>=1.0.3,<2.0",
    "ffmpeg-python>=0.2.0",
    "Pillow",
]
FER_PIN = "fer==25.10.3"
READY = FER_VENV / ".peer-ready"  # written last: its content names what was installed


def ensure_fer_venv() -> None:
    """Create bench/.venv-fer with the peer installed, unless a complete one is already there."""
    spec = json.dumps({"fer": FER_PIN, "deps": FER_DEPS})
    if READY.is_file() and READY.read_text() == spec and FER_PY.exists():
        return
    print(f"building the peer venv at {FER_VENV.relative_to(REPO)} (once; about a minute)...", flush=True)
    if not FER_PY.exists():
        _check([sys.executable, "-m", "venv", str(FER_VENV)])
    pip = [str(FER_PY), "-m", "pip", "install", "--quiet"]
    _check([*pip, "--upgrade", "pip", "wheel"])  # the bundled pip builds moviepy's sdist the legacy way
    _check([*pip, *FER_DEPS])
    _check([*pip, "--no-deps", FER_PIN])  # last, so pip does not try to pull tensorflow/torch for it
    _check([str(FER_PY), "-c", "from fer.fer import FER; from fer.classes import Video; FER()"],
           env=_quiet_env())
    READY.write_text(spec)


def _check(cmd: list[str], env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"peer_fer: {' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")


def _quiet_env() -> dict[str, str]:
    # logging only: TF's C++ info lines, and Qt's platform plugin for fer's per-frame cv2.waitKey
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "QT_QPA_PLATFORM": "offscreen"}


def run_child(prefix: list[str], video: Path, extra: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``prefix VIDEO OUT.json *extra`` in a fresh process; return the JSON it wrote to OUT.json."""
    with tempfile.TemporaryDirectory(prefix="peer-fer-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [*prefix, str(video), str(out), *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def _limit(max_frames: int | None) -> list[str]:
    return ["--max-frames", str(max_frames)] if max_frames else []


def run_fer(video: Path, max_frames: int | None) -> dict[str, Any]:
    from mien.labels import canonical_label

    r = run_child([str(FER_PY), str(FER_WORKER)], video, _limit(max_frames), env=_quiet_env())
    for f in r["per_frame"]:
        if f is not None:
            f["label"] = canonical_label(f["label"])
    return r


def run_mien(video: Path, max_frames: int | None) -> dict[str, Any]:
    return run_child([sys.executable, str(Path(__file__).resolve()), "--mien-worker"], video, _limit(max_frames))


def mien_worker(video: str, out: str, max_frames: int | None) -> None:
    """Child process: mien with its defaults on every frame of ``video``; writes JSON to ``out``."""
    import resource
    from itertools import islice

    from mien.pipeline import Analyzer
    from mien.sources import open_source

    t0 = time.perf_counter()
    an = Analyzer()  # mien.analyze(path)'s defaults
    an.detector.session, an.model.session  # noqa: B018 - load both models before the clock starts
    load_s = time.perf_counter() - t0
    t = time.perf_counter()
    if max_frames:  # smoke tests: the first N frames (files honour max_frames only through this)
        df, stats = an.analyze_frames(islice(iter(open_source(video)), max_frames), video)
        frames, analysed = stats["analysed"], stats["analysed"]
    else:
        res = an.analyze_source(video)
        df, frames, analysed = res.to_pandas(), res.manifest.frames["decoded"], res.manifest.frames["analysed"]
    seconds = time.perf_counter() - t

    per_frame: list[dict[str, Any] | None] = [None] * frames
    if len(df):
        df = df.assign(area=(df["x2"] - df["x1"]) * (df["y2"] - df["y1"]))
        counts = df.groupby("frame_index").size()
        for row in df.sort_values("area").groupby("frame_index").tail(1).itertuples():
            per_frame[int(row.frame_index)] = {
                "label": None if row.abstain else str(row.top_label),
                "box": [float(row.x1), float(row.y1), float(row.x2), float(row.y2)],
                "n_faces": int(counts[row.frame_index]),
            }
    result = {
        "tool": "mien",
        "frames": frames,
        "analysed": analysed,
        "seconds": seconds,
        "load_seconds": load_s,
        "face_frames": int(df["frame_index"].nunique()) if len(df) else 0,
        "faces": len(df),
        "abstained": int(df["abstain"].sum()) if len(df) else 0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "per_frame": per_frame,
        "models": an.model_records(),
        "options": an.options.to_dict(),
    }
    Path(out).write_text(json.dumps(result, default=str))


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa of two label sequences (None when undefined: no pairs, or chance agreement 1)."""
    n = len(a)
    if n == 0:
        return None
    po = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return None if pe >= 1.0 else (po - pe) / (1.0 - pe)


def compare(fer: dict[str, Any], mien: dict[str, Any]) -> dict[str, Any]:
    """Top-label agreement on frames where both tools found a face (largest face of each)."""
    n = min(fer["frames"], mien["frames"])
    both = abstained = 0
    fl: list[str] = []
    ml: list[str] = []
    ious: list[float] = []
    for f, m in zip(fer["per_frame"][:n], mien["per_frame"][:n]):
        if f is None or m is None:
            continue
        both += 1
        if m["label"] is None:
            abstained += 1
            continue
        fl.append(f["label"])
        ml.append(m["label"])
        ious.append(iou(f["box"], m["box"]))
    same_face = [i for i, v in enumerate(ious) if v >= 0.3]
    agree = sum(x == y for x, y in zip(fl, ml))
    return {
        "frames_compared_range": n,
        "both_face_frames": both,
        "mien_abstained": abstained,
        "compared": len(fl),
        "agreement": agree / len(fl) if fl else None,
        "kappa": cohen_kappa(fl, ml),
        "same_face_frames": len(same_face),  # largest boxes overlap (IoU >= 0.3): the same face
        "agreement_same_face": (sum(fl[i] == ml[i] for i in same_face) / len(same_face)) if same_face else None,
        "fer_labels": dict(Counter(fl).most_common()),
        "mien_labels": dict(Counter(ml).most_common()),
        "confusion": {f"{x}->{y}": c for (x, y), c in Counter(zip(fl, ml)).most_common()},
    }


def best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of repeated runs (the least disturbed by other load), with every run's time kept.

    Labels and face counts are deterministic, so the runs must agree on them; peak RSS is the largest.
    """
    best = min(runs, key=lambda r: r["seconds"])
    if any(r["per_frame"] != best["per_frame"] for r in runs):
        raise RuntimeError(f"{best['tool']}: repeated runs gave different per-frame results")
    return {**best, "seconds_all": [r["seconds"] for r in runs],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def _secs(r: dict[str, Any]) -> str:
    return "/".join(f"{s:.1f}" for s in r["seconds_all"])


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=None, help="write the results (with per-frame labels) here")
    ap.add_argument("--max-frames", type=int, default=None, help="only the first N frames (smoke test)")
    ap.add_argument("--videos", nargs="+", default=VIDEOS, help="shared clips to run")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per tool and video, fer and mien alternating; the fastest counts (default 3)")
    ap.add_argument("--mien-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("worker_args", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mien_worker:
        mien_worker(*args.worker_args, max_frames=args.max_frames)
        return

    ensure_fer_venv()
    load = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {load[0]:.2f} at start"
          + (f"; first {args.max_frames} frames only" if args.max_frames else ""))
    rows = []
    for name in args.videos:
        path = shared(name)
        fer_runs: list[dict[str, Any]] = []
        mien_runs: list[dict[str, Any]] = []
        for _ in range(max(1, args.repeat)):
            fer_runs.append(run_fer(path, args.max_frames))
            mien_runs.append(run_mien(path, args.max_frames))
        fer, mien = best_of(fer_runs), best_of(mien_runs)
        cmp = compare(fer, mien)
        rows.append({"video": name, "fer": fer, "mien": mien, "compare": cmp})
        print(f"  {name}: {fer['frames']} frames; fer {_secs(fer)} s, mien {_secs(mien)} s", flush=True)

    head = (f"{'video':<28}{'frames':>7}{'fer fps':>9}{'mien fps':>9}{'mien/fer':>9}{'fer faces':>10}"
            f"{'mien faces':>11}{'compared':>9}{'agree':>7}{'kappa':>7}{'fer RSS':>9}{'mien RSS':>9}")
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        fer, mien, c = r["fer"], r["mien"], r["compare"]
        fer_fps, mien_fps = fer["frames"] / fer["seconds"], mien["frames"] / mien["seconds"]
        frames = str(fer["frames"]) if fer["frames"] == mien["frames"] else f"{fer['frames']}/{mien['frames']}"
        print(f"{r['video']:<28}{frames:>7}{fer_fps:>9.1f}{mien_fps:>9.1f}{mien_fps / fer_fps:>9.2f}"
              f"{fer['face_frames']:>10}{mien['face_frames']:>11}{c['compared']:>9}"
              f"{_fmt(c['agreement'], '.1%'):>7}{_fmt(c['kappa'], '.2f'):>7}"
              f"{fer['peak_rss_mb']:>6.0f} MB{mien['peak_rss_mb']:>6.0f} MB")
        r.update(fer_fps=fer_fps, mien_fps=mien_fps, speed_ratio=mien_fps / fer_fps)
    print("\nfps: frames / wall time of the analysis (models preloaded), fastest of the repeats; faces: frames with >= 1 face; "
          "compared: both found a face and mien's largest face did not abstain; RSS: peak of each child.")
    for r in rows:
        c = r["compare"]
        print(f"  {r['video']}: both found a face in {c['both_face_frames']} frames, mien abstained on "
              f"{c['mien_abstained']} of them; same face (IoU>=0.3) in {c['same_face_frames']} of "
              f"{c['compared']}, agreement there {_fmt(c['agreement_same_face'], '.1%')}")
        print(f"    fer labels {c['fer_labels']}\n    mien labels {c['mien_labels']}")
    if args.json:
        info = {"machine": platform.machine(), "cores": os.cpu_count(), "load_at_start": load,
                "end_load": os.getloadavg(), "max_frames": args.max_frames, "repeat": args.repeat,
                "fer_versions": rows[0]["fer"]["versions"] if rows else None}
        Path(args.json).write_text(json.dumps({"info": info, "videos": rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
