"""One input's job, the same in-process, in a pool worker and in a Ray actor.

A job analyses one file with an :class:`~mien.pipeline.Analyzer` that its worker built once,
writes the per-file outputs (table, tracks, manifest) and the input's part of the combined
dataset, and returns an :class:`Outcome` for the index. Everything it writes goes to a name fixed
by the input, atomically, with the manifest last: a job killed at any point leaves either the old
complete outputs or none, and a retried job overwrites rather than duplicates.
"""
from __future__ import annotations

import dataclasses
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

from mien.batch.dataset import remove_part, write_part
from mien.batch.index import DONE, FAILED, INTERRUPTED
from mien.batch.resume import (
    ResumableAnalyzer,
    finish_from,
    mark_checkpoint,
    remove_checkpoint,
    usable_checkpoint,
)
from mien.errors import MienError
from mien.options import AnalysisOptions
from mien.outputs import display
from mien.pipeline import Analyzer
from mien.results import AnalysisResult
from mien.schema import sidecar_path
from mien.signals import protected_save


@dataclass(frozen=True)
class Job:
    """What a worker needs to analyse one input (picklable; paths absolute or as given)."""

    path: str
    relative: str
    video_id: str
    output: str  # per-file table
    out_dir: str
    fingerprint: str
    options_hash: str


@dataclass
class Outcome:
    """What a job reports back (also what a resumed run reads from the manifest)."""

    relative: str
    status: str
    frames: int | None = None
    faces: int | None = None
    tracks: int | None = None
    duration_s: float | None = None
    error: str = ""
    seconds: float = 0.0
    worker_pid: int = field(default_factory=os.getpid)
    peak_rss_mib: float = 0.0


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_job(analyzer: Analyzer, job: Job) -> Outcome:
    """Analyse ``job``'s input and write its outputs; a failing input gives a FAILED outcome."""
    t0 = time.perf_counter()
    out_dir = Path(job.out_dir)
    # a killed worker's checkpoint for this very file and options: finish it from there
    partial = usable_checkpoint(job.output, job.fingerprint, job.options_hash)
    try:
        if partial is not None and isinstance(analyzer, ResumableAnalyzer):
            result = finish_from(analyzer, job.path, partial)
        else:
            mark_checkpoint(job.output, job.fingerprint, job.options_hash)
            result = analyzer.analyze_source(job.path, checkpoint=job.output)
    except Exception as exc:  # noqa: BLE001 - a broken input must never stop the batch
        remove_checkpoint(job.output)
        remove_part(out_dir, job.video_id)  # an earlier success of a now-broken file is stale
        sidecar_path(job.output, "manifest").unlink(missing_ok=True)
        message = str(exc) if isinstance(exc, MienError) else f"{type(exc).__name__}: {exc}"
        return Outcome(job.relative, FAILED, error=display(message.replace("\n", " ")),
                       seconds=time.perf_counter() - t0, peak_rss_mib=peak_rss_mib())
    with protected_save():  # a signal now only stops the batch after this input is written
        return _write(result, job, out_dir, t0, geometry=analyzer.options.geometry)


def _write(result: AnalysisResult, job: Job, out_dir: Path, t0: float, *, geometry: bool) -> Outcome:
    run = result.manifest.source
    frames = run.frames
    interrupted = result.manifest.status == "interrupted"
    df = result.table
    tracks = int(df["track_id"].nunique()) if len(df) else 0
    # what a resumed run compares (options: the manifest's parameters and mien version)
    run.input["fingerprint"] = job.fingerprint
    frames["tracks"] = tracks
    if interrupted:
        remove_part(out_dir, job.video_id)  # the combined table holds finished inputs only
    else:
        write_part(df, out_dir, job.video_id, job.relative, geometry=geometry)
    result.save(job.output)  # the manifest is written last: its presence means all is there
    if not interrupted:  # an interrupted input keeps its checkpoint: the next run finishes from it
        remove_checkpoint(job.output)
    return Outcome(job.relative, INTERRUPTED if interrupted else DONE, frames=int(frames["analysed"]),
                   faces=int(frames["faces"]), tracks=tracks, duration_s=_duration(frames),
                   seconds=time.perf_counter() - t0, peak_rss_mib=peak_rss_mib())



def worker_analyzer(options: AnalysisOptions, threads: int) -> Analyzer:
    """The one model copy a worker keeps, with its share of the cores: ONNX Runtime and OpenCV
    each get ``threads`` (set for this process only, never through the environment)."""
    import cv2

    cv2.setNumThreads(threads)
    return ResumableAnalyzer(dataclasses.replace(options, threads=threads))


def _duration(frames: dict[str, object]) -> float | None:
    value = frames.get("duration_s")
    return float(value) if isinstance(value, (int, float)) else None
