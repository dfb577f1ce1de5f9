"""Studies at scale: a folder tree of recordings analysed as one resumable batch.

``mien analyze DIR -o OUT/`` (or :func:`run_batch`) walks DIR, mirrors it under OUT, keeps
``OUT/index.parquet`` (one row per input) and the combined dataset ``OUT/results/`` (one Parquet
part per input), skips inputs that are up to date, and runs on all cores or on a Ray cluster.
"""
from __future__ import annotations

from mien.batch.dataset import read_dataset
from mien.batch.index import read_index
from mien.batch.runner import BatchOptions, BatchSummary, run_batch
from mien.batch.walk import BatchInput, walk_inputs

__all__ = ["BatchInput", "BatchOptions", "BatchSummary", "read_dataset", "read_index",
           "run_batch", "walk_inputs"]
