"""Run a batch's jobs on this machine: in this process (one worker) or in a process pool.

Each pool worker loads the models once (its initializer) and ignores Ctrl-C: the parent alone
decides what an interrupt means. On Ctrl-C or SIGTERM the parent stops handing out inputs, ends
the workers, and reports the inputs that were in progress as interrupted; a re-run redoes them.
A worker that dies (a crashing decoder, the out-of-memory killer) breaks the pool: the inputs it
held are retried once in a fresh pool, then recorded as failed, and the batch goes on.
"""
from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from mien.batch.index import FAILED, INTERRUPTED
from mien.batch.work import Job, Outcome, run_job, worker_analyzer
from mien.options import AnalysisOptions
from mien.pipeline import Analyzer
from mien.signals import stop_requested

OnOutcome = Callable[[Job, Outcome, int], None]  # job, outcome, attempts
MAX_ATTEMPTS = 3  # a broken pool fails every input it held, started or not

_worker: Analyzer | None = None


def _init_worker(options: AnalysisOptions, threads: int) -> None:
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker = worker_analyzer(options, threads)


def _pool_job(job: Job) -> Outcome:
    assert _worker is not None, "pool worker used before its initializer ran"
    return run_job(_worker, job)


def run_in_process(jobs: list[Job], options: AnalysisOptions, threads: int, on_outcome: OnOutcome) -> None:
    """One worker: this process. Ctrl-C ends the current input early (recorded as interrupted)."""
    analyzer = worker_analyzer(options, threads)
    for job in jobs:
        outcome = run_job(analyzer, job)
        on_outcome(job, outcome, 1)
        if outcome.status == INTERRUPTED or stop_requested():
            raise KeyboardInterrupt


def run_in_pool(jobs: list[Job], options: AnalysisOptions, workers: int, threads: int,
                on_outcome: OnOutcome) -> None:
    """``workers`` processes, one model copy each; raises KeyboardInterrupt after an interrupt."""
    attempts = {job.relative: 0 for job in jobs}
    todo = list(jobs)
    while todo:
        broken: list[Job] = []
        ctx = multiprocessing.get_context("spawn")  # no inherited threads or ONNX sessions
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(options, threads))
        running: dict[Future[Outcome], Job] = {}
        try:
            for job in todo:
                attempts[job.relative] += 1
                running[pool.submit(_pool_job, job)] = job
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = running.pop(fut)
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool:
                        broken.append(job)
                        continue
                    on_outcome(job, outcome, attempts[job.relative])
                if stop_requested():  # a signal that arrived while a save was protected
                    raise KeyboardInterrupt
        except BaseException:
            _end_workers(pool)
            raise
        pool.shutdown(wait=True)
        todo = []
        for job in broken:
            if attempts[job.relative] < MAX_ATTEMPTS:
                todo.append(job)
            else:
                on_outcome(job, Outcome(job.relative, FAILED, error=(
                    f"the worker process died while analysing it ({attempts[job.relative]} tries); "
                    "the file may crash the decoder or need more memory than a worker has")),
                    attempts[job.relative])


def _end_workers(pool: ProcessPoolExecutor) -> None:
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in multiprocessing.active_children():
        proc.terminate()
    for proc in multiprocessing.active_children():
        proc.join(timeout=5)
