"""Live analysis of a camera or a network stream, watched from the page.

``POST /api/streams`` starts a session: a job of kind ``stream`` analysed in its own thread (live
sessions have their own small limit, apart from the upload workers). Every analysed frame
replaces the session's *snapshot* — the faces of the latest frame (box, anonymous track id,
expression probabilities, abstention), the frame's size and the latency from decode to result —
which the page reads as server-sent events and draws with a rolling timeline. No picture leaves
the server: the page draws boxes, not the camera image.

A session ends when it reaches its ``max_seconds``/``max_frames``, when the stream ends, or on
``DELETE /api/streams/{id}``; its rows are then saved like any job's (table, manifest, report).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from mien.errors import MienError
from mien.faces import Faces
from mien.labels import EXPRESSIONS
from mien.pipeline import FrameResult
from mien.serve.jobs import ObservedAnalyzer, write_outputs
from mien.serve.store import DONE, FAILED, RUNNING, Job, JobError, JobInput, JobOptions, JobStore, new_job_id
from mien.sources import STREAM_SCHEMES

MAX_CAMERA_INDEX = 63


def check_stream_source(source: str) -> str | int:
    """A camera index (``0``) or a stream URL of a scheme mien reads; raise :class:`JobError` otherwise.

    Other FFmpeg protocols (``file:``, ``concat:``, ...) would read files on the server, so they
    are refused.
    """
    text = source.strip()
    if not text or len(text) > 2000 or any(ord(c) < 32 or c == " " for c in text):
        raise JobError("source: give a camera index (0, 1, ...) or a stream URL without spaces")
    if text.isdigit():
        index = int(text)
        if index > MAX_CAMERA_INDEX:
            raise JobError(f"source: camera index {index} is out of range (0-{MAX_CAMERA_INDEX})")
        return index
    if not text.lower().startswith(STREAM_SCHEMES):
        raise JobError("source: not a camera index or a stream URL; mien reads "
                       + " ".join(s.rstrip("/") for s in STREAM_SCHEMES) + " URLs")
    return text


@dataclass
class Snapshot:
    """The latest analysed frame of a live session."""

    seq: int = 0
    time_s: float = 0.0
    frame_index: int = 0
    width: int = 0
    height: int = 0
    latency_ms: float | None = None
    frames_per_s: float | None = None
    faces: list[dict[str, Any]] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        return {"seq": self.seq, "time_s": round(self.time_s, 3), "frame_index": self.frame_index,
                "width": self.width, "height": self.height,
                "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
                "frames_per_s": None if self.frames_per_s is None else round(self.frames_per_s, 2),
                "faces": self.faces, "labels": list(EXPRESSIONS)}


def faces_of(faces: Faces) -> list[dict[str, Any]]:
    """The faces of one analysed frame as the page draws them (no pixels)."""
    labels, probs, ok = faces.top_label, faces.top_prob, faces.classified
    return [{
        "track_id": int(faces.track_id[i]),
        "box": [round(float(v), 1) for v in faces.xyxy[i]],
        "abstain": bool(faces.abstain[i]),
        "abstain_reason": str(faces.abstain_reason[i] or ""),
        "top_label": labels[i],
        "top_prob": round(float(probs[i]), 4) if ok[i] else None,
        "smooth": [round(float(p), 4) for p in faces.smoothed[i]] if ok[i] else None,
    } for i in range(len(faces))]


class LiveSession:
    def __init__(self, job: Job, spec: str | int) -> None:
        self.job = job
        self.spec = spec
        self.snapshot = Snapshot()
        self.stop = threading.Event()
        self.finished = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def latest(self) -> dict[str, Any]:
        with self.lock:
            return self.snapshot.to_api()


class LiveManager:
    """Starts, tracks and stops live sessions (at most ``max_sessions`` at once)."""

    def __init__(self, store: JobStore, max_sessions: int = 1, max_seconds: float = 1800.0,
                 show_faces: bool = False) -> None:
        self.store = store
        self.max_sessions = max_sessions
        self.max_seconds = max_seconds
        self.show_faces = show_faces
        self._sessions: dict[str, LiveSession] = {}
        self._lock = threading.Lock()

    def start(self, source: str, options: JobOptions) -> Job:
        spec = check_stream_source(source)
        options.check()
        options.max_seconds = min(options.max_seconds or self.max_seconds, self.max_seconds)
        with self._lock:
            active = [s for s in self._sessions.values() if not s.finished.is_set()]
            if len(active) >= self.max_sessions:
                raise JobError(f"{len(active)} live analysis already running (this server runs at most "
                               f"{self.max_sessions}); stop it first", 409)
            job = Job(id=new_job_id(), kind="stream", status=RUNNING, created=time.time(),
                      started=time.time(), options=options,
                      inputs=[JobInput(name=_display(spec), path=str(spec), kind="stream")])
            self.store.add(job)
            session = LiveSession(job, spec)
            self._sessions[job.id] = session
        session.thread = threading.Thread(target=self._run, args=(session,), name=f"mien-live-{job.id[:8]}",
                                          daemon=True)
        session.thread.start()
        return job

    def get(self, job_id: str) -> LiveSession:
        with self._lock:
            session = self._sessions.get(job_id)
        if session is None:
            raise JobError(f"no live analysis {job_id!r} (it may have ended before this server started)", 404)
        return session

    def stop(self, job_id: str, timeout: float = 30.0) -> None:
        session = self.get(job_id)
        session.stop.set()
        session.finished.wait(timeout)

    def stop_all(self, timeout: float = 30.0) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
        for s in sessions:
            s.stop.set()
        for s in sessions:
            s.finished.wait(timeout)

    def _run(self, session: LiveSession) -> None:
        job = session.job
        started = time.perf_counter()
        frames = [0]

        def observe(res: FrameResult) -> None:
            frames[0] += 1
            snap = Snapshot(seq=session.snapshot.seq + 1, time_s=float(res.time_s), frame_index=int(res.index),
                            width=int(res.image.shape[1]), height=int(res.image.shape[0]),
                            latency_ms=(time.perf_counter() - res.arrival) * 1000,
                            frames_per_s=frames[0] / max(time.perf_counter() - started, 1e-9),
                            faces=faces_of(res.faces))
            with session.lock:
                session.snapshot = snap

        try:
            analyzer = ObservedAnalyzer(job.options.analysis_options())
            analyzer.observer, analyzer.should_stop = observe, session.stop.is_set
            try:
                result = analyzer.analyze_source(session.spec)
            except MienError as exc:
                self.store.finish(job.id, FAILED, error=str(exc))
                return
            self.store.update_progress(job.id, 1.0, frames[0], frames[0] / max(time.perf_counter() - started, 1e-9),
                                       None)
            try:
                outputs = write_outputs([result], self.store.outputs_dir(job.id), events=None,
                                        show_faces=self.show_faces, title=job.inputs[0].name)
            except MienError as exc:
                self.store.finish(job.id, FAILED, error=str(exc))
                return
            self.store.finish(job.id, DONE, warnings=list(result.manifest.warnings), outputs=outputs)
        except Exception as exc:  # noqa: BLE001 - the session must end as failed, never stay running
            self.store.finish(job.id, FAILED, error=f"internal error: {type(exc).__name__}: {exc}")
        finally:
            session.finished.set()


def _display(spec: str | int) -> str:
    """How a source is shown: a camera as ``camera 0``, a URL without its user:password part."""
    if isinstance(spec, int):
        return f"camera {spec}"
    scheme, _, rest = spec.partition("://")
    host, sep, path = rest.partition("/")
    return f"{scheme}://{host.rsplit('@', 1)[-1]}{sep}{path}"
