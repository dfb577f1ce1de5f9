"""Child process for bench/peer_fer.py: runs the peer ``fer`` (25.10.3) on one video.

Runs inside the peer's own venv (bench/.venv-fer), never mien's:

    bench/.venv-fer/bin/python bench/_fer_worker.py VIDEO OUT.json [--max-frames N]

It takes fer's documented video path, ``Video(path).analyze(FER(), ...)``, on every frame with
nothing saved or shown, and writes one JSON object to OUT.json: frames read, wall time of
``analyze``, model load time, peak RSS of this process, and per frame the top label and area of the
largest face (or null). fer's ``analyze`` keeps only frames with a face and drops their indices, so
the per-frame record is taken by a FER subclass that notes each ``detect_emotions`` result as
``analyze`` calls it (one call per frame read, in order, with ``batch_size=1``) and returns it
unchanged.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from typing import Any

from fer.classes import Video
from fer.fer import FER


class RecordingFER(FER):
    """fer's FER, unchanged, that also remembers what it returned for each frame."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.per_frame: list[list[dict[str, Any]]] = []

    def detect_emotions(self, img: Any, face_rectangles: Any = None) -> list:
        faces = super().detect_emotions(img, face_rectangles)
        self.per_frame.append(faces)
        return faces


def largest_face(faces: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The face with the largest box (fer boxes are x, y, w, h), with its top label."""
    if not faces:
        return None
    face = max(faces, key=lambda f: float(f["box"][2]) * float(f["box"][3]))
    x, y, w, h = (float(v) for v in face["box"])
    emotions: dict[str, float] = face["emotions"]
    return {"label": max(emotions, key=emotions.__getitem__), "box": [x, y, x + w, y + h], "n_faces": len(faces)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("out")
    ap.add_argument("--max-frames", type=int, default=None)
    args = ap.parse_args()
    video_path, out_path = os.path.abspath(args.video), os.path.abspath(args.out)

    t0 = time.perf_counter()
    detector = RecordingFER()  # fer's defaults: Haar cascade + quantised TFLite classifier
    load_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="fer-bench-") as tmp:
        os.chdir(tmp)  # anything fer writes despite the flags below lands here and is removed
        video = Video(video_path, outdir=tmp)
        t = time.perf_counter()
        df = video.analyze(
            detector,
            display=False,
            output="pandas",  # "csv" (the default) writes data.csv into the working directory
            max_results=args.max_frames,
            save_frames=False,
            save_video=False,
            annotate_frames=False,  # annotation only draws on frames that are saved or shown
            zip_images=False,
            include_audio=False,
        )
        seconds = time.perf_counter() - t

    per_frame = [largest_face(f) for f in detector.per_frame]
    result = {
        "tool": "fer",
        "frames": len(per_frame),
        "seconds": seconds,
        "load_seconds": load_s,
        "face_frames": sum(f is not None for f in per_frame),
        "faces": sum(len(f) for f in detector.per_frame),
        "analyze_rows": len(df),  # fer's own output: one row per frame with a face
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "per_frame": per_frame,
        "versions": {"python": sys.version.split()[0], **_versions()},
    }
    with open(out_path, "w") as f:
        json.dump(result, f)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("fer", "tensorflow-cpu", "opencv-contrib-python", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out


if __name__ == "__main__":
    main()
