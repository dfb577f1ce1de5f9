"""Shared helpers for the benchmarks: shared-clip paths, looped long videos, child-process runs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "data" / "videos"
CACHE = REPO / "bench" / ".cache"


def shared(name: str) -> Path:
    p = VIDEOS / name
    if not p.is_file():
        sys.exit(f"bench: {p} not found; the benchmarks need ../shared/data/videos beside the checkout")
    return p


def looped(name: str, minutes: float) -> Path:
    """A long video made by remuxing a shared clip end to end (no re-encode), cached in bench/.cache."""
    return looped_file(shared(name), minutes)


def uhd(name: str, seconds: float) -> Path:
    """A 4K (3840×2160) copy of the first ``seconds`` of a shared clip, upscaled and encoded with
    FFmpeg's libx264 through PyAV (no ffmpeg binary needed), cached in bench/.cache."""
    import av
    import cv2

    src = shared(name)
    out = CACHE / f"{src.stem}_4k_{seconds:g}s.mp4"
    if out.is_file():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        rate = vin.average_rate

        def frames():
            for frame in inp.decode(vin):
                if frame.time is not None and frame.time >= seconds:
                    break
                yield cv2.resize(frame.to_ndarray(format="bgr24"), (3840, 2160), interpolation=cv2.INTER_LINEAR)

        return encode_bgr(frames(), out, (3840, 2160), rate, {"preset": "ultrafast", "crf": "23"})


def encode_bgr(frames, path: Path, size: tuple[int, int], rate, options: dict[str, str]) -> Path:
    """BGR frames to an H.264 file (libx264 through PyAV, no ffmpeg binary), written beside and
    renamed into place so an interrupted build leaves no half file in the cache."""
    import av

    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), mode="w") as dst:
        st = dst.add_stream("libx264", rate=rate, options=options)
        st.width, st.height, st.pix_fmt = size[0], size[1], "yuv420p"
        for img in frames:
            for pkt in st.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                dst.mux(pkt)
        for pkt in st.encode():
            dst.mux(pkt)
    tmp.replace(path)
    return path


def looped_file(src: Path, minutes: float) -> Path:
    """Like :func:`looped`, for a file already in the cache (e.g. the 4K clip)."""
    import av

    out = CACHE / f"{src.stem}_loop{minutes:g}min.mp4"
    if out.is_file():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part.mp4")
    with av.open(str(src)) as probe:
        clip_s = float(probe.duration / 1e6)
    loops = max(1, round(minutes * 60 / clip_s))
    with av.open(str(tmp), mode="w") as dst:
        vout = None
        offset = 0
        for _ in range(loops):
            with av.open(str(src)) as inp:
                vin = inp.streams.video[0]
                if vout is None:
                    vout = dst.add_stream_from_template(vin)
                last = 0
                for pkt in inp.demux(vin):
                    if pkt.dts is None:
                        continue
                    last = max(last, (pkt.pts or 0) + (pkt.duration or 0))
                    pkt.pts = (pkt.pts or 0) + offset
                    pkt.dts += offset
                    pkt.stream = vout
                    dst.mux(pkt)
                offset += last
    tmp.replace(out)
    return out


def add_engine_args(ap, default_src: str) -> None:
    """``--src``, ``--baseline-src`` and ``--json``: which engines a bench times, and where it writes."""
    ap.add_argument("--src", default=None, metavar="SRC", help=f"time the mien in this source folder (default: {default_src})")
    ap.add_argument("--baseline-src", default=None, metavar="SRC",
                    help="also time the mien in this source folder (e.g. an export of an older commit's src), "
                    "alternating with this checkout, and print the ratios")
    ap.add_argument("--json", default=None)


def run_child(code: str, *args: str, src: str | None = None) -> dict:
    """Run ``code`` in a fresh interpreter (so peak RSS is its own); it prints one JSON line last.
    ``src``: import mien from this source folder (e.g. an older checkout's ``src``) instead."""
    env = None
    if src is not None:
        import os

        env = dict(os.environ, PYTHONPATH=src)
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


CHILD_PRELUDE = """
import json, resource, sys, time
def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

DECODE_ONLY = CHILD_PRELUDE + """
import av
from mien.sources import BgrConverter  # the engine's own conversion (one reused scaler)
path = sys.argv[1]
t = time.perf_counter(); n = 0
to_bgr = BgrConverter()
with av.open(path) as c:
    s = c.streams.video[0]; s.thread_type = "AUTO"
    for f in c.decode(s):
        to_bgr(f); n += 1
dt = time.perf_counter() - t
print(json.dumps({"frames": n, "seconds": dt, "fps": n / dt, "peak_rss_mb": peak_rss_mb()}))
"""

MIEN_RUN = CHILD_PRELUDE + """
import mien
path, opts = sys.argv[1], json.loads(sys.argv[2])
from mien.pipeline import Analyzer, AnalysisOptions
an = Analyzer(AnalysisOptions(**opts))
an.detector.session; an.model.session  # load outside the timed part, as a long run amortises it
if an.mesh is not None:
    an.mesh.session
t = time.perf_counter()
r = an.analyze_source(path)
dt = time.perf_counter() - t
df = r.to_pandas(); m = r.manifest.frames
print(json.dumps({"frames": m["decoded"], "analysed": m["analysed"], "seconds": dt,
                  "fps": m["decoded"] / dt, "face_frames": int(df["frame_index"].nunique()),
                  "faces": int(len(df)), "abstained": int(df["abstain"].sum()),
                  "full_detections": m["full_frame_detections"], "peak_rss_mb": peak_rss_mb()}))
"""
