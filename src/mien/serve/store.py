"""Jobs as records: what was asked, where its files are, where it stands — kept in SQLite.

A job is one upload (one or more videos/images) or one live stream, with its analysis options.
Everything about it lives under ``DATA/jobs/<id>/``: ``inputs/NN/`` (the uploaded files, under
their names reduced to letters, digits and ``._-``; the name as given is only displayed), ``outputs/``
(``results.parquet``, ``results.csv``, ``manifest.json``, ``report.html``, ``thumbnail.jpg``,
``annotated.mp4`` when asked for) and nothing else. The SQLite row (``DATA/jobs.sqlite``, each
statement committed at once) says where it stands.

States: ``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``. A job is claimed by a
worker with one conditional UPDATE (:meth:`JobStore.claim`), so it runs at most once at a time;
``runs`` counts the claims. :meth:`JobStore.recover` decides, at a start, what becomes of jobs a
crash left ``running`` (see :mod:`mien.serve.jobs`).
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mien.errors import MienError
from mien.pipeline import AnalysisOptions
from mien.serve import resume

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
            cur = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
            row = cur.fetchone()
            cols = [d[0] for d in cur.description]
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
