"""Run a batch's jobs on a Ray cluster (``mien analyze DIR -o OUT/ --ray auto|ADDRESS``).

One Ray task per input, run by a pool of worker actors that each load the models once. OUT must
be on a filesystem every node sees: workers write an input's outputs themselves (atomically, under
names fixed by the input) and send back only its small :class:`~mien.batch.work.Outcome`; the
driver alone writes the index. When a worker process dies mid-input, Ray restarts the actor and
retries the call (``max_restarts``/``max_task_retries``); the retry rewrites the same files, so
nothing is lost or duplicated in the combined table.

Install with the ``cluster`` extra (``pip install 'mien[cluster]'``).
"""
from __future__ import annotations

import dataclasses
import os
from collections import deque
from typing import Any

from mien.batch.index import FAILED
from mien.batch.pool import OnOutcome
from mien.batch.work import Job, Outcome, run_job, worker_analyzer
from mien.errors import MienError
from mien.options import AnalysisOptions
from mien.signals import stop_requested

ACTOR_RESTARTS = 3  # a worker that keeps dying is a node problem, not worth more tries
TASK_RETRIES = 3


class BatchWorker:
    """A Ray actor (see :func:`_actor_class`): one model copy, many inputs."""

    def __init__(self, options: AnalysisOptions, threads: int) -> None:
        self.analyzer = worker_analyzer(options, threads)

    def analyze(self, job: Job) -> Outcome:
        return run_job(self.analyzer, job)

    def pid(self) -> int:
        return os.getpid()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MienError("--ray needs Ray: install the cluster extra (pip install 'mien[cluster]')") from None
    return ray


def connect(address: str) -> bool:
    """Join the cluster at ``address``; ``auto``: the one this machine belongs to, else start one
    here. Returns whether this call started Ray (and so should stop it)."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    try:
        if address == "auto":
            try:
                ray.init(address="auto", log_to_driver=False)
            except ConnectionError:
                ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except ConnectionError as exc:
        raise MienError(f"--ray {address}: no Ray cluster there ({exc}); start one with `ray start "
                        "--head` or pass its address (ray://HOST:10001 or HOST:6379)") from None
    return True


def run_on_ray(jobs: list[Job], options: AnalysisOptions, address: str, threads: int,
               on_outcome: OnOutcome) -> int:
    """Run ``jobs`` on Ray; returns how many worker actors it used."""
    ray = _import_ray()
    started = connect(address)
    actors: list[Any] = []
    try:
        cpus = float(ray.cluster_resources().get("CPU", 1))
        n = max(1, min(len(jobs), int(cpus // threads)))
        worker_cls = ray.remote(BatchWorker)
        actors = [worker_cls.options(num_cpus=threads, max_restarts=ACTOR_RESTARTS,
                                     max_task_retries=TASK_RETRIES).remote(options, threads)
                  for _ in range(n)]
        queue = deque(_absolute(j) for j in jobs)
        idle = list(actors)
        running: dict[Any, tuple[Job, Any]] = {}
        while queue or running:
            while idle and queue:
                actor, job = idle.pop(), queue.popleft()
                running[actor.analyze.remote(job)] = (job, actor)
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                job, actor = running.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    outcome = Outcome(job.relative, FAILED, error=(
                        f"the Ray worker failed on it after {TASK_RETRIES} retries "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"))
                on_outcome(job, outcome, 1)
                idle.append(actor)
            if stop_requested():  # a signal that arrived while a save was protected
                raise KeyboardInterrupt
        return n
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if started:
            ray.shutdown()


def _absolute(job: Job) -> Job:
    """Workers may start in another folder (or node): give them absolute paths."""
    return dataclasses.replace(job, path=os.path.abspath(job.path), output=os.path.abspath(job.output),
                               out_dir=os.path.abspath(job.out_dir))
