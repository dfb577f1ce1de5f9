"""Jobs: what was asked, kept in SQLite; a bounded pool of workers that runs them.

A job is one upload (one or more videos/images) or one live stream, with its analysis options.
Everything about it lives under ``DATA/jobs/<id>/``: ``inputs/NN/`` (the uploaded files, under
their names reduced to letters, digits and ``._-``; the name as given is only displayed), ``outputs/``
(``results.parquet``, ``results.csv``, ``manifest.json``, ``report.html``, ``thumbnail.jpg``,
``annotated.mp4`` when asked for) and nothing else. The SQLite row says where it stands.

States: ``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``. A job is claimed by a
worker with one conditional UPDATE, so it runs at most once at a time; ``runs`` counts the claims.
While it runs, the engine checkpoints its rows (:mod:`mien.serve.resume`). When the server
starts, a job still marked ``running`` was cut off by a crash or a kill: it is queued again and
resumes from what it left when it left anything, and is marked ``failed`` with the reason when
it did not (never left ``running``). A server that stops normally saves the running jobs' rows
and queues them again. Queued jobs are queued again.
"""
from __future__ import annotations

import dataclasses
import json
import queue
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mien.checkpoint import Checkpointer
from mien.errors import MienError
from mien.pipeline import AnalysisOptions, Analyzer, FrameResult
from mien.results import AnalysisResult
from mien.serve import resume
from mien.sources import Frame

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
INTERRUPTED_REASON = ("the server stopped while this job was running, before it had checkpointed any "
                      "rows to resume from; submit it again")
LIVE_INTERRUPTED_REASON = "the server stopped during this live analysis; its rows were not saved"

#: Files a job may offer for download, by the name used in its URL.
OUTPUT_FILES = {
    "results.parquet": "application/vnd.apache.parquet",
    "results.csv": "text/csv",
    "manifest.json": "application/json",
    "report": "text/html",
    "annotated.mp4": "video/mp4",
    "thumbnail.jpg": "image/jpeg",
}
_STORED_NAME = {"report": "report.html"}


class JobError(MienError):
    """A request about a job that cannot be honoured (unknown job, bad option, full queue)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class JobOptions:
    """The analysis options a job may set (the rest are the engine's defaults)."""

    stride: int = 1
    fps: float | None = None
    detect_every: int = 3
    prior_strength: float | None = None
    annotate: bool = False
    blur_faces: bool = False
    max_seconds: float | None = None  # live streams only
    max_frames: int | None = None  # live streams only

    def check(self) -> JobOptions:
        """Raise :class:`JobError` naming the first option out of range."""
        limits: list[tuple[str, Any, bool]] = [
            ("stride", self.stride, 1 <= self.stride <= 10_000),
            ("fps", self.fps, self.fps is None or 0 < self.fps <= 1000),
            ("detect_every", self.detect_every, 1 <= self.detect_every <= 1000),
            ("prior_strength", self.prior_strength,
             self.prior_strength is None or 0.0 <= self.prior_strength <= 1.0),
            ("max_seconds", self.max_seconds, self.max_seconds is None or self.max_seconds > 0),
            ("max_frames", self.max_frames, self.max_frames is None or self.max_frames >= 1),
        ]
        for name, value, ok in limits:
            if not ok or (isinstance(value, float) and value != value):  # NaN never passes
                raise JobError(f"option {name}={value!r} is out of range")
        return self

    def analysis_options(self) -> AnalysisOptions:
        return AnalysisOptions(stride=self.stride, fps=self.fps, detect_every=self.detect_every,
                               prior_strength=self.prior_strength, max_seconds=self.max_seconds,
                               max_frames=self.max_frames)

    def key(self) -> str:
        """What decides the engine's set-up (annotation is per run, not per analyser)."""
        d = asdict(self)
        d.pop("annotate"), d.pop("blur_faces")
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobOptions:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class JobInput:
    """One input of a job: the name the user gave it, where mien keeps it, what the probe found."""

    name: str
    path: str
    kind: str  # "video", "image" or "stream"
    size: int = 0
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    frames: int | None = None
    server_path: bool = False  # a file on the server (not copied; never deleted by mien)


@dataclass
class Job:
    id: str
    kind: str  # "files" or "stream"
    status: str
    created: float
    inputs: list[JobInput]
    options: JobOptions
    events: bool = False
    started: float | None = None
    finished: float | None = None
    progress: float = 0.0
    frames: int = 0
    fps: float | None = None
    eta_s: float | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    runs: int = 0

    def to_api(self) -> dict[str, Any]:
        """The job as the API shows it (no server paths)."""
        return {
            "id": self.id, "kind": self.kind, "status": self.status,
            "created": self.created, "started": self.started, "finished": self.finished,
            "progress": round(self.progress, 4), "frames_analysed": self.frames,
            "frames_per_s": None if self.fps is None else round(self.fps, 2),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "error": self.error, "warnings": self.warnings, "runs": self.runs,
            "options": asdict(self.options), "events": self.events,
            "inputs": [{"name": i.name, "kind": i.kind, "size": i.size, "width": i.width,
                        "height": i.height, "duration_s": i.duration_s, "frames": i.frames}
                       for i in self.inputs],
            "outputs": {name: f"/api/jobs/{self.id}/{name}" for name in self.outputs},
        }


def new_job_id() -> str:
    return uuid.uuid4().hex


def is_job_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT NULL,
  started REAL, finished REAL, inputs TEXT NOT NULL, options TEXT NOT NULL, events INTEGER NOT NULL,
  progress REAL NOT NULL DEFAULT 0, frames INTEGER NOT NULL DEFAULT 0, fps REAL, eta_s REAL,
  error TEXT, warnings TEXT NOT NULL DEFAULT '[]', outputs TEXT NOT NULL DEFAULT '[]',
  runs INTEGER NOT NULL DEFAULT 0
)"""


class JobStore:
    """Jobs in ``DATA/jobs.sqlite`` and their files in ``DATA/jobs/<id>/``; safe across threads."""

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.data_dir / "jobs.sqlite", check_same_thread=False,
                                   isolation_level=None)  # autocommit: each statement is durable
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ paths
    def job_dir(self, job_id: str) -> Path:
        if not is_job_id(job_id):  # ids are ours; anything else never becomes a path
            raise JobError(f"no job {job_id!r}", 404)
        return self.jobs_dir / job_id

    def inputs_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "inputs"

    def outputs_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "outputs"

    def output_path(self, job_id: str, name: str) -> Path:
        if name not in OUTPUT_FILES:
            raise JobError(f"no output {name!r}; jobs offer {', '.join(OUTPUT_FILES)}", 404)
        return self.outputs_dir(job_id) / _STORED_NAME.get(name, name)

    # ------------------------------------------------------------------ rows
    def add(self, job: Job) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, kind, status, created, started, inputs, options, events) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, job.kind, job.status, job.created, job.started,
                 json.dumps([asdict(i) for i in job.inputs]), json.dumps(asdict(job.options)),
                 int(job.events)))

    def get(self, job_id: str) -> Job:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            cols = [d[0] for d in self._db.execute("SELECT * FROM jobs LIMIT 0").description]
        if row is None:
            raise JobError(f"no job {job_id!r}", 404)
        return self._job(dict(zip(cols, row)))

    def all(self, statuses: Iterable[str] | None = None) -> list[Job]:
        with self._lock:
            cur = self._db.execute("SELECT * FROM jobs ORDER BY created DESC")
            cols = [d[0] for d in cur.description]
            rows = cur.fetchall()
        jobs = [self._job(dict(zip(cols, r))) for r in rows]
        if statuses is not None:
            wanted = set(statuses)
            jobs = [j for j in jobs if j.status in wanted]
        return jobs

    def count(self, status: str) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (status,)).fetchone()[0])

    @staticmethod
    def _job(r: dict[str, Any]) -> Job:
        return Job(
            id=r["id"], kind=r["kind"], status=r["status"], created=r["created"], started=r["started"],
            finished=r["finished"], inputs=[JobInput(**i) for i in json.loads(r["inputs"])],
            options=JobOptions.from_dict(json.loads(r["options"])), events=bool(r["events"]),
            progress=r["progress"], frames=r["frames"], fps=r["fps"], eta_s=r["eta_s"], error=r["error"],
            warnings=json.loads(r["warnings"]), outputs=json.loads(r["outputs"]), runs=r["runs"],
        )

    def claim(self, job_id: str) -> bool:
        """Mark a queued job running; False when it is no longer queued (deleted, cancelled, taken)."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET status = ?, started = ?, runs = runs + 1 WHERE id = ? AND status = ?",
                (RUNNING, time.time(), job_id, QUEUED))
            return cur.rowcount == 1

    def update_progress(self, job_id: str, progress: float, frames: int, fps: float | None,
                        eta_s: float | None) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET progress = ?, frames = ?, fps = ?, eta_s = ? WHERE id = ?",
                             (progress, frames, fps, eta_s, job_id))

    def finish(self, job_id: str, status: str, *, error: str | None = None,
               warnings: list[str] | None = None, outputs: list[str] | None = None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = ?, finished = ?, error = ?, warnings = ?, outputs = ?, "
                "progress = CASE WHEN ? = 'done' THEN 1.0 ELSE progress END, eta_s = NULL WHERE id = ?",
                (status, time.time(), error, json.dumps(warnings or []), json.dumps(outputs or []),
                 status, job_id))

    def requeue(self, job_id: str) -> None:
        """Put a job that was stopped by a server shutdown back in the queue for the next start."""
        with self._lock:
            self._db.execute("UPDATE jobs SET status = ?, started = NULL, progress = 0, frames = 0, fps = NULL, "
                             "eta_s = NULL WHERE id = ?", (QUEUED, job_id))

    def delete(self, job_id: str) -> None:
        """Remove the job's row and every file mien stored for it (never a server-side input)."""
        job_dir = self.job_dir(job_id)
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        shutil.rmtree(job_dir, ignore_errors=True)

    def recover(self) -> list[str]:
        """After a restart: a job still marked running was cut off by a crash or a kill. Files jobs
        that left a checkpoint or saved rows are queued again (and resume from them); the others,
        and live sessions, are marked failed with the reason. Returns the queued ids, oldest first."""
        with self._lock:
            cut_off = self._db.execute("SELECT id, kind FROM jobs WHERE status = ?", (RUNNING,)).fetchall()
        for job_id, kind in cut_off:
            if kind == "files" and resume.has_progress(self.outputs_dir(job_id)):
                self.requeue(job_id)
            else:
                reason = LIVE_INTERRUPTED_REASON if kind == "stream" else INTERRUPTED_REASON
                with self._lock:
                    self._db.execute("UPDATE jobs SET status = ?, finished = ?, error = ?, eta_s = NULL "
                                     "WHERE id = ?", (FAILED, time.time(), reason, job_id))
        with self._lock:
            rows = self._db.execute("SELECT id FROM jobs WHERE status = ? ORDER BY created",
                                    (QUEUED,)).fetchall()
        return [r[0] for r in rows]


# ---------------------------------------------------------------------------------------- running


class StopRequested(Exception):
    """Raised inside a run when its job was cancelled or deleted."""


FrameObserver = Callable[[FrameResult], None]


class ObservedAnalyzer(Analyzer):
    """An :class:`Analyzer` that reports every analysed frame (:class:`FrameResult`) to
    ``observer``, stops early when ``should_stop`` says so (the rows analysed until then are
    kept), and skips (does not analyse) the frames up to ``skip_through`` when a job resumes."""

    observer: FrameObserver | None = None
    should_stop: Callable[[], bool] | None = None
    skip_through: int = -1

    def analyze_frames(self, frames: Iterable[Frame], source: str, on_frame: FrameObserver | None = None,
                       checkpoint: Checkpointer | None = None) -> tuple[Any, dict[str, Any]]:
        observer, should_stop, skip_through = self.observer, self.should_stop, self.skip_through

        def gated() -> Iterator[Frame]:
            it = iter(frames)
            try:
                for fr in it:
                    if should_stop is not None and should_stop():
                        break
                    if fr.index <= skip_through:
                        continue
                    yield fr
            finally:
                close = getattr(it, "close", None)
                if close is not None:
                    close()  # stops the decoder thread behind the frames

        def both(res: FrameResult) -> None:
            if on_frame is not None:
                on_frame(res)
            if observer is not None:
                observer(res)

        return super().analyze_frames(gated(), source, both, checkpoint=checkpoint)


class Progress:
    """Frames analysed, frames per second and time left, for a run over inputs of known duration."""

    def __init__(self, durations: list[float | None]) -> None:
        self.durations = [d or 0.0 for d in durations]
        self.total = sum(self.durations)
        self.started = time.perf_counter()
        self.done_before = 0.0  # media seconds of finished inputs
        self.current_s = 0.0
        self.frames = 0
        self.input_index = 0

    def next_input(self, index: int) -> None:
        self.done_before = sum(self.durations[:index])
        self.input_index = index
        self.current_s = 0.0

    def frame(self, time_s: float) -> None:
        self.frames += 1
        self.current_s = max(self.current_s, time_s)

    @property
    def fraction(self) -> float:
        if self.total <= 0:
            return 0.0
        return min(0.999, (self.done_before + self.current_s) / self.total)

    @property
    def fps(self) -> float | None:
        elapsed = time.perf_counter() - self.started
        return self.frames / elapsed if elapsed > 0 and self.frames else None

    @property
    def eta_s(self) -> float | None:
        p = self.fraction
        if p <= 0.01:
            return None
        elapsed = time.perf_counter() - self.started
        return elapsed * (1 - p) / p


def write_outputs(results: list[AnalysisResult], out_dir: Path, *, events: Path | None,
                  show_faces: bool, title: str | None = None) -> list[str]:
    """Write the job's table (Parquet and CSV), manifest, report and thumbnail; return their names."""
    from mien.reporting import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    combined = results[0] if len(results) == 1 else AnalysisResult.combine(results)
    combined.save(out_dir / "results.parquet")
    combined.save(out_dir / "results.csv")
    (out_dir / "manifest.json").write_text(combined.manifest.to_json())
    names = ["results.parquet", "results.csv", "manifest.json"]
    write_report(results, out_dir / "report.html", events=events, show_faces=show_faces,
                 title=None if title is None else f"mien expression report: {title}")
    names.append("report")
    if write_thumbnail(combined.to_pandas(), out_dir / "thumbnail.jpg", blur=not show_faces):
        names.append("thumbnail.jpg")
    if (out_dir / "annotated.mp4").is_file():
        names.append("annotated.mp4")
    return names


def write_thumbnail(frame: Any, path: Path, *, blur: bool = True) -> bool:
    """A picture of the job's first face for the page, blurred unless ``blur`` is False."""
    import base64

    from mien.reporting.thumbs import source_thumbnails

    faces = frame[~frame["abstain"]] if len(frame) else frame
    if not len(faces):
        return False
    source = str(faces["source"].iloc[0])
    first_track = int(faces[faces["source"] == source]["track_id"].iloc[0])
    thumbs = source_thumbnails(frame, source, per_track=1, blur=blur, size=96, tracks=[first_track])
    for items in thumbs.by_track.values():
        for thumb in items:
            path.write_bytes(base64.b64decode(thumb.data_uri.split(",", 1)[1]))
            return True
    return False


class JobRunner:
    """A fixed number of worker threads taking queued jobs in order; the queue itself is bounded."""

    def __init__(self, store: JobStore, workers: int = 2, max_queued: int = 100,
                 show_faces: bool = False, checkpoint_s: float = 10.0) -> None:
        self.store = store
        self.checkpoint_s = checkpoint_s
        self.workers = max(1, int(workers))
        self.max_queued = max_queued
        self.show_faces = show_faces
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._local = threading.local()
        self._cancel: set[str] = set()
        self._live: dict[str, Progress] = {}
        self._lock = threading.Lock()
        self._shutting_down = False
        self.running_now = 0
        self.running_peak = 0

    def start(self) -> None:
        for job_id in self.store.recover():
            self._queue.put(job_id)
        for i in range(self.workers):
            th = threading.Thread(target=self._work, name=f"mien-serve-worker-{i}", daemon=True)
            th.start()
            self._threads.append(th)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop running jobs at their next frame and queue them again for the next start (a job
        stays ``running`` in SQLite only if the process dies first; the next start marks it failed)."""
        with self._lock:
            self._shutting_down = True
            self._cancel.update(self._live)
        for _ in self._threads:
            self._queue.put(None)
        for th in self._threads:
            th.join(timeout)
        self._threads.clear()

    def submit(self, job: Job) -> None:
        if self.store.count(QUEUED) >= self.max_queued:
            raise JobError(f"the queue is full ({self.max_queued} jobs waiting); try again later", 503)
        self.store.add(job)
        self._queue.put(job.id)

    def cancel(self, job_id: str, timeout: float = 30.0) -> bool:
        """Ask a running job to stop; wait until it has. False when it was not running here."""
        with self._lock:
            if job_id not in self._live:
                return False
            self._cancel.add(job_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if job_id not in self._live:
                    return True
            time.sleep(0.05)
        return True

    def live_progress(self, job: Job) -> Job:
        """The job with its in-memory progress (fresher than the row, written once a second)."""
        with self._lock:
            prog = self._live.get(job.id)
        if prog is not None and job.status == RUNNING:
            job.progress, job.frames, job.fps, job.eta_s = prog.fraction, prog.frames, prog.fps, prog.eta_s
        return job

    # ------------------------------------------------------------------ worker
    def _analyzer(self, options: JobOptions) -> ObservedAnalyzer:
        """One analyser per worker thread and option set (models load once, ~2 s)."""
        cache: dict[str, ObservedAnalyzer] = getattr(self._local, "analyzers", {})
        self._local.analyzers = cache
        key = options.key()
        if key not in cache:
            if len(cache) >= 2:
                cache.pop(next(iter(cache)))
            cache[key] = ObservedAnalyzer(dataclasses.replace(options.analysis_options(),
                                                              checkpoint_s=self.checkpoint_s))
        return cache[key]

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            with self._lock:
                if job_id is None or self._shutting_down:
                    return
            if not self.store.claim(job_id):
                continue  # deleted or cancelled while queued
            with self._lock:
                self.running_now += 1
                self.running_peak = max(self.running_peak, self.running_now)
            try:
                self._run(self.store.get(job_id))
            except Exception as exc:  # noqa: BLE001 - a bug in one job must not stop the worker
                self.store.finish(job_id, FAILED, error=f"internal error: {type(exc).__name__}: {exc}")
            finally:
                with self._lock:
                    self.running_now -= 1
                    self._live.pop(job_id, None)
                    self._cancel.discard(job_id)

    def _run(self, job: Job) -> None:
        progress = Progress([i.duration_s if i.kind == "video" else 0.0 for i in job.inputs])
        with self._lock:
            self._live[job.id] = progress
        analyzer = self._analyzer(job.options)
        last_write = [0.0]

        def observe(res: FrameResult) -> None:
            progress.frame(float(res.time_s))
            now = time.monotonic()
            if now - last_write[0] >= 1.0:
                last_write[0] = now
                self.store.update_progress(job.id, progress.fraction, progress.frames, progress.fps,
                                           progress.eta_s)

        def stopping() -> bool:
            with self._lock:
                return job.id in self._cancel

        analyzer.observer, analyzer.should_stop = observe, stopping
        out_dir = self.store.outputs_dir(job.id)
        if job.options.annotate and resume.has_progress(out_dir):
            resume.start_over(out_dir)  # an annotated video cannot be continued: analyse it all again
        out_dir.mkdir(parents=True, exist_ok=True)
        results: list[AnalysisResult] = []
        errors: list[str] = []
        warnings: list[str] = []
        try:
            for index, item in enumerate(job.inputs):
                progress.next_input(index)
                done = resume.finished(out_dir, index)
                if done is not None:
                    results.append(done)
                    continue
                segments, skip_through = resume.earlier(out_dir, index)
                analyzer.skip_through = skip_through
                annotate = out_dir / "annotated.mp4" if job.options.annotate and item.kind == "video" else None
                try:
                    result = analyzer.analyze_source(item.path, annotate=annotate, blur_faces=job.options.blur_faces,
                                                     checkpoint=resume.table_path(out_dir, index))
                except MienError as exc:
                    errors.append(f"{item.name}: {_public(str(exc), item)}")
                    continue
                if stopping():
                    with self._lock:
                        keep = self._shutting_down and not job.options.annotate
                    if keep:  # the server is stopping: keep what was analysed, for the next start
                        last = int(result.manifest.frames.get("last_frame_index", -1))
                        resume.save_segment(out_dir, index, resume.shifted(result, segments), last)
                    break
                result = resume.joined(result, segments, skip_through)
                resume.keep_finished(out_dir, index, result)
                warnings += [_public(w, item) for w in result.manifest.warnings]
                results.append(result)
        finally:
            analyzer.observer = analyzer.should_stop = None
            analyzer.skip_through = -1
        if stopping():
            with self._lock:
                shutting_down = self._shutting_down
            if shutting_down:
                self.store.requeue(job.id)  # runs again (resuming) at the next start
            else:
                self.store.finish(job.id, CANCELLED, error="cancelled")
            return
        if not results:
            self.store.finish(job.id, FAILED, error="; ".join(errors) or "nothing was analysed")
            return
        self.store.update_progress(job.id, progress.fraction, progress.frames, progress.fps, None)
        events = self.store.job_dir(job.id) / "events.csv" if job.events else None
        try:
            outputs = write_outputs(results, out_dir, events=events, show_faces=self.show_faces,
                                    title=", ".join(i.name for i in job.inputs))
        except MienError as exc:
            self.store.finish(job.id, FAILED, error=str(exc), warnings=warnings)
            return
        resume.clear(out_dir)
        self.store.finish(job.id, DONE, error="; ".join(errors) or None, warnings=warnings, outputs=outputs)


def _public(message: str, item: JobInput) -> str:
    """A message with the stored path replaced by the name the user knows the file by."""
    return message.replace(item.path, item.name)
