"""Running jobs: a fixed pool of worker threads taking queued jobs in order.

Each worker keeps its own :class:`ObservedAnalyzer` per option set (models load once), reports
progress (frames analysed, frames/s, time left) and writes the job's outputs. While a job runs,
the engine checkpoints its rows (:mod:`mien.serve.resume`). When the server starts, a job still
marked ``running`` was cut off by a crash or a kill: it is queued again and resumes from what it
left when it left anything, and is marked ``failed`` with the reason when it did not (never left
``running``). A server that stops normally saves the running jobs' rows and queues them again.
Queued jobs are queued again.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from mien.checkpoint import Checkpointer
from mien.errors import MienError
from mien.pipeline import Analyzer, FrameResult
from mien.results import AnalysisResult
from mien.serve import resume
from mien.serve.store import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    Job,
    JobError,
    JobInput,
    JobOptions,
    JobStore,
)
from mien.sources import Frame

FrameObserver = Callable[[FrameResult], None]


class ObservedAnalyzer(Analyzer):
    """An :class:`Analyzer` that reports every analysed frame (:class:`FrameResult`) to
    ``observer``, stops early when ``should_stop`` says so (the rows analysed until then are
    kept), and skips (does not analyse) the frames up to ``skip_through`` when a job resumes."""

    observer: FrameObserver | None = None
    should_stop: Callable[[], bool] | None = None
    skip_through: int = -1

    def analyze_rows(self, frames: Iterable[Frame], source: str, on_frame: FrameObserver | None = None,
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

        return super().analyze_rows(gated(), source, both, checkpoint=checkpoint)

    def process_frames(self, frames: Iterable[Frame], counts: Any = None) -> Iterator[FrameResult]:
        """As the engine's, and stopping right after the result at which ``should_stop`` first
        says so: with geometry on, the engine's stage threads have taken a few frames more from
        the gate in :meth:`analyze_rows` by then, and those are not analysed to the end."""
        should_stop = self.should_stop
        for res in super().process_frames(frames, counts):
            yield res
            if should_stop is not None and should_stop():
                return


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
