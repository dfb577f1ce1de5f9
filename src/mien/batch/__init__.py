"""Studies at scale: a folder tree of recordings analysed as one resumable batch.

``mien analyze DIR -o OUT/`` (or :func:`run_batch`) walks DIR, mirrors it under OUT, keeps
``OUT/index.parquet`` (one row per input) and the combined dataset ``OUT/results/`` (one Parquet
part per input), skips inputs that are up to date, and runs on all cores or on a Ray cluster.
The names load on first use, so that registering ``mien export`` does not import pandas.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from mien._lazy import lazy_names

if TYPE_CHECKING:  # pragma: no cover
    from mien.batch.dataset import read_dataset
    from mien.batch.index import read_index
    from mien.batch.runner import BatchOptions, BatchSummary, run_batch
    from mien.batch.walk import BatchInput, walk_inputs

_LAZY = {
    "BatchInput": "mien.batch.walk",
    "BatchOptions": "mien.batch.runner",
    "BatchSummary": "mien.batch.runner",
    "read_dataset": "mien.batch.dataset",
    "read_index": "mien.batch.index",
    "run_batch": "mien.batch.runner",
    "walk_inputs": "mien.batch.walk",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


__all__ = ["BatchInput", "BatchOptions", "BatchSummary", "read_dataset", "read_index",
           "run_batch", "walk_inputs"]
