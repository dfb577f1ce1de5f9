"""``mien analyze DIR -o OUT/``: a whole study, resumable, on all cores or a Ray cluster.

The run: walk the tree, fingerprint each input, skip those whose outputs are up to date (same
fingerprint, same options; ``force`` redoes them), hand the rest to the workers, and keep
``OUT/index.parquet`` current as inputs finish, so even a killed batch leaves a true index. The
combined dataset ``OUT/results/`` gets one part per finished input (see :mod:`mien.batch.dataset`).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mien.batch.dataset import part_path, remove_stale_parts
from mien.batch.index import (
    DONE,
    FAILED,
    INTERRUPTED,
    PENDING,
    SKIPPED,
    IndexRow,
    fingerprint,
    options_hash,
    write_index,
)
from mien.batch.progress import BatchProgress
from mien.batch.walk import listed_inputs, walk_inputs
from mien.batch.work import Job, Outcome
from mien.errors import InputError
from mien.options import AnalysisOptions
from mien.outputs import display
from mien.schema import TABLE_SUFFIXES, RunManifest, mirrored_output, sidecar_path
from mien.signals import graceful_stop

_INDEX_EVERY_S = 2.0  # rewrite the index at most this often while inputs finish


@dataclass
class BatchOptions:
    """How a batch runs (none of this changes a result, so none of it is in the options hash)."""

    workers: int | None = None  # None: as many as the cores allow
    threads: int | None = None  # per worker; None: cores // workers
    force: bool = False  # redo inputs that are up to date
    ray: str | None = None  # "auto" or a cluster address: run on Ray instead of a local pool
    suffix: str = ".parquet"  # per-file table format
    progress: bool = True


@dataclass
class BatchSummary:
    out_dir: Path
    rows: list[IndexRow]
    workers: int
    threads: int
    interrupted: bool = False
    stale_parts_removed: int = 0
    warnings: list[str] = field(default_factory=list)
    peak_rss_mib: dict[int, float] = field(default_factory=dict)  # per worker process id
    seconds: float = 0.0

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.status for r in self.rows)

    @property
    def failed(self) -> list[IndexRow]:
        return [r for r in self.rows if r.status == FAILED]

    def describe(self) -> str:
        c = self.counts
        parts = [f"{c[DONE]} done", f"{c[SKIPPED]} skipped (up to date)", f"{c[FAILED]} failed"]
        unfinished = c[PENDING] + c[INTERRUPTED]
        if unfinished:
            parts.append(f"{unfinished} not finished")
        return f"{len(self.rows)} inputs: " + ", ".join(parts)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan_workers(workers: int | None, threads: int | None, cores: int) -> tuple[int, int, list[str]]:
    """Workers and threads per worker such that workers × threads ≤ cores."""
    warnings: list[str] = []
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be ≥ 1, got {workers}")
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be ≥ 1, got {threads}")
    n = workers or max(1, cores // (threads or 1))
    t = threads or max(1, cores // n)
    if n * t > cores:
        t_new = max(1, cores // n)
        if t_new != t:
            warnings.append(f"{n} workers × {t} threads exceeds the {cores} cores; using {t_new} "
                            "thread(s) per worker")
            t = t_new
        if n > cores:
            warnings.append(f"{n} workers on {cores} cores: they will share cores")
    return n, t, warnings


def _up_to_date(job: Job) -> IndexRow | None:
    """The skipped row for ``job`` when its outputs were written from the same file and options."""
    try:
        manifest = RunManifest.from_dict(json.loads(sidecar_path(job.output, "manifest").read_text()))
        run = manifest.source
    except (OSError, ValueError):
        return None
    if (run.input.get("fingerprint") != job.fingerprint
            or options_hash(manifest.parameters, manifest.mien_version) != job.options_hash
            or manifest.status not in ("complete", "partial")
            or not Path(job.output).is_file() or not part_path(Path(job.out_dir), job.video_id).is_file()):
        return None
    frames = run.frames
    return IndexRow(job.relative, job.video_id, SKIPPED, frames=frames.get("analysed"),
                    faces=frames.get("faces"), tracks=frames.get("tracks"), duration_s=frames.get("duration_s"),
                    output=display(os.path.relpath(job.output, job.out_dir)), fingerprint=job.fingerprint,
                    options_hash=job.options_hash)


def check_output_dir(root: Path, out_dir: Path) -> None:
    if out_dir.suffix.lower() in TABLE_SUFFIXES:
        raise InputError(f"{root} is a folder: -o must name an output folder, not {out_dir}")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} exists and is not a folder; choose an output folder")
    if out_dir.resolve() == root.resolve():
        raise InputError(f"-o {out_dir} is the input folder itself; choose a separate output folder")


def run_batch(root: str | os.PathLike[str] | None, out_dir: str | os.PathLike[str],
              options: AnalysisOptions | None = None, batch: BatchOptions | None = None,
              files: list[str] | None = None) -> BatchSummary:
    """Analyse every video/image under ``root`` into ``out_dir`` (see the module docstring); or,
    with ``root=None``, the ``files`` named one by one, placed under ``out_dir`` relative to their
    deepest common folder (:func:`mien.batch.walk.listed_inputs`)."""
    t_start = time.monotonic()
    out = Path(out_dir)
    options = options or AnalysisOptions()
    batch = batch or BatchOptions()
    if root is None:
        if not files:
            raise InputError("give a folder or the files to analyse")
        if out.suffix.lower() in TABLE_SUFFIXES:
            raise InputError(f"{len(files)} inputs: -o must name an output folder, not {display(out)}")
        if out.exists() and not out.is_dir():
            raise InputError(f"-o {display(out)} exists and is not a folder; choose an output folder")
        root, inputs = listed_inputs(files, exclude=out)
    else:
        root = Path(root)
        check_output_dir(root, out)
        inputs = walk_inputs(root, exclude=out)
    cores = available_cores()
    warnings: list[str] = []
    if batch.ray:
        workers, threads = 0, batch.threads or 1
    else:
        workers, threads, warnings = plan_workers(batch.workers, batch.threads, cores)
    ohash = options_hash(options.to_dict())
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()  # a folder we may write in, before any work
    except OSError as exc:
        raise InputError(f"-o {out}: cannot write there ({exc.strerror or exc}); choose a writable "
                         "output folder") from None

    rows: dict[str, IndexRow] = {}
    jobs: list[Job] = []
    sizes: dict[str, int] = {}
    for item in inputs:
        output = mirrored_output(root, item.path, out, batch.suffix)
        rel_output = display(os.path.relpath(output, out))
        try:
            fp = fingerprint(item.path)
            sizes[item.relative] = item.path.stat().st_size
        except OSError as exc:
            rows[item.relative] = IndexRow(item.relative, item.video_id, FAILED, output=rel_output,
                                           error=f"{display(item.path)}: cannot be read ({exc.strerror or exc})")
            continue
        job = Job(str(item.path), item.relative, item.video_id, str(output), str(out), fp, ohash)
        skipped = None if batch.force else _up_to_date(job)
        if skipped is not None:
            rows[item.relative] = skipped
        else:
            rows[item.relative] = IndexRow(item.relative, item.video_id, PENDING, output=rel_output,
                                           fingerprint=fp, options_hash=ohash)
            jobs.append(job)

    def ordered() -> list[IndexRow]:
        return [rows[item.relative] for item in inputs]

    summary = BatchSummary(out, [], workers, threads, warnings=warnings)
    write_index(ordered(), out)
    progress = BatchProgress(len(jobs), sum(sizes.get(j.relative, 0) for j in jobs), enabled=batch.progress)
    last_index = time.monotonic()

    def on_outcome(job: Job, outcome: Outcome, attempts: int) -> None:
        nonlocal last_index
        rows[job.relative] = IndexRow(
            job.relative, job.video_id, outcome.status, frames=outcome.frames, faces=outcome.faces,
            tracks=outcome.tracks, duration_s=outcome.duration_s, error=outcome.error,
            output=display(os.path.relpath(job.output, out)), fingerprint=job.fingerprint,
            options_hash=job.options_hash, seconds=round(outcome.seconds, 3), attempts=attempts)
        if outcome.peak_rss_mib:
            pid = outcome.worker_pid
            summary.peak_rss_mib[pid] = max(summary.peak_rss_mib.get(pid, 0.0), outcome.peak_rss_mib)
        progress.update(job.relative, outcome.status, outcome.frames, sizes.get(job.relative, 0))
        if time.monotonic() - last_index >= _INDEX_EVERY_S:
            write_index(ordered(), out)
            last_index = time.monotonic()

    # longest first: the last worker to finish is not the one that drew the longest file
    jobs.sort(key=lambda j: -sizes.get(j.relative, 0))
    try:
        with graceful_stop():  # Ctrl-C and SIGTERM stop the batch; a second one never breaks a save
            if not jobs:
                pass
            elif batch.ray:
                from mien.batch.ray_runner import run_on_ray

                summary.workers = run_on_ray(jobs, options, batch.ray, threads, on_outcome)
            elif min(workers, len(jobs)) == 1:
                from mien.batch.pool import run_in_process

                run_in_process(jobs, options, threads, on_outcome)
            else:
                from mien.batch.pool import run_in_pool

                run_in_pool(jobs, options, min(workers, len(jobs)), threads, on_outcome)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        progress.close()
        summary.rows = ordered()
        write_index(summary.rows, out)
    if not summary.interrupted:
        summary.stale_parts_removed = remove_stale_parts(out, {item.video_id for item in inputs})
    summary.seconds = time.monotonic() - t_start
    return summary
