"""Resuming a job that was cut off: from the engine's checkpoints and the segments saved at a stop.

While a job runs, each input ``NN`` is analysed with the engine's checkpointing
(:mod:`mien.checkpoint`) into ``outputs/inputNN.parquet.checkpoint/``. What a run leaves is, per
input, in ``outputs/``:

- ``inputNN.parquet`` (+ manifest sidecar): the input is finished; a resumed job reads it back.
- ``inputNN.segNN.parquet`` + ``inputNN.resume.json``: rows of earlier, cut-off runs of the input
  and how far they got (``skip_through``: the last decoded-frame index they finished). Written
  when the server stops (all rows analysed so far) or taken over from a checkpoint that a killed
  process left (its rows up to the last flush).

A resumed run skips the frames up to ``skip_through`` and analyses the rest; its track ids are
shifted past the earlier segments' (tracks and smoothing restart at the resume point — the
engine keeps no tracker state), and the manifest's source says where it resumed.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import pandas as pd

from mien.checkpoint import PROGRESS, checkpoint_dir, read_partial
from mien.results import AnalysisResult, concat
from mien.schema import RunManifest, sidecar_path


def table_path(out_dir: Path, index: int) -> Path:
    """Where input ``index``'s finished table goes (its checkpoint folder is named after it)."""
    return out_dir / f"input{index:02d}.parquet"


def _state_path(out_dir: Path, index: int) -> Path:
    return out_dir / f"input{index:02d}.resume.json"


def _read_state(out_dir: Path, index: int) -> dict[str, int]:
    path = _state_path(out_dir, index)
    if path.is_file():
        state = json.loads(path.read_text())
        return {"skip_through": int(state["skip_through"]), "segments": int(state["segments"])}
    return {"skip_through": -1, "segments": 0}


def _write_state(out_dir: Path, index: int, state: dict[str, int]) -> None:
    path = _state_path(out_dir, index)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def has_progress(out_dir: Path) -> bool:
    """Did a run of this job leave anything to resume from?"""
    if not out_dir.is_dir():
        return False
    return any(out_dir.glob("input*.parquet")) or any(out_dir.glob("input*.resume.json")) or any(
        (p / PROGRESS).is_file() for p in out_dir.glob("input*.parquet.checkpoint"))


def save_segment(out_dir: Path, index: int, rows: pd.DataFrame, last_frame_index: int) -> None:
    """Keep ``rows`` (frames up to ``last_frame_index``) of an input whose run stops here."""
    state = _read_state(out_dir, index)
    if len(rows):
        rows.to_parquet(out_dir / f"input{index:02d}.seg{state['segments']:02d}.parquet", index=False)
        state["segments"] += 1
    state["skip_through"] = max(state["skip_through"], int(last_frame_index))
    _write_state(out_dir, index, state)
    shutil.rmtree(checkpoint_dir(table_path(out_dir, index)), ignore_errors=True)


def absorb_checkpoint(out_dir: Path, index: int) -> None:
    """Turn the checkpoint a killed run left for input ``index`` into a saved segment."""
    table = table_path(out_dir, index)
    if (checkpoint_dir(table) / PROGRESS).is_file():
        partial = read_partial(table)
        last = partial.last_frame_index
        save_segment(out_dir, index, partial.frame, -1 if last is None else last)


def earlier(out_dir: Path, index: int) -> tuple[list[pd.DataFrame], int]:
    """The saved segments of input ``index`` and the last frame index they cover (-1: none)."""
    absorb_checkpoint(out_dir, index)
    state = _read_state(out_dir, index)
    segments = [pd.read_parquet(out_dir / f"input{index:02d}.seg{k:02d}.parquet") for k in range(state["segments"])]
    return segments, state["skip_through"]


def finished(out_dir: Path, index: int) -> AnalysisResult | None:
    """Input ``index``'s result when an earlier run of the job finished it."""
    table = table_path(out_dir, index)
    manifest = sidecar_path(table, "manifest")
    if not (table.is_file() and manifest.is_file()):
        return None
    return AnalysisResult(pd.read_parquet(table), RunManifest.from_dict(json.loads(manifest.read_text())))


def shifted(result: AnalysisResult, segments: list[pd.DataFrame]) -> pd.DataFrame:
    """A resumed run's rows with track ids moved past those of the earlier segments."""
    rows = result.to_pandas()
    offset = max((int(s["track_id"].max()) + 1 for s in segments if len(s)), default=0)
    if not offset:
        return rows
    rows = rows.copy()
    rows["track_id"] = rows["track_id"] + offset
    return rows


def joined(result: AnalysisResult, segments: list[pd.DataFrame], skip_through: int) -> AnalysisResult:
    """The earlier segments and a resumed run's rows as one result (track ids made distinct).

    The manifest's source gets ``frames.resumed_from_frame_index`` and ``frames.resumed_segments``
    and a warning that says what a resume changes."""
    if skip_through < 0:
        return result
    rows = shifted(result, segments)
    manifest = copy.deepcopy(result.manifest)
    for src in manifest.sources:
        src.frames["resumed_from_frame_index"] = skip_through + 1
        src.frames["resumed_segments"] = len(segments)
        src.warnings.append(
            f"the job was cut off and resumed at frame {skip_through + 1}: tracks and smoothing restart "
            "there (track ids after it are new), and the frame counts cover only the frames after it")
    return AnalysisResult(concat([*segments, rows]), manifest)


def keep_finished(out_dir: Path, index: int, result: AnalysisResult) -> None:
    """Save a finished input so that a resumed job does not analyse it again."""
    result.save(table_path(out_dir, index))
    for seg in out_dir.glob(f"input{index:02d}.seg*.parquet"):
        seg.unlink()
    _state_path(out_dir, index).unlink(missing_ok=True)
    shutil.rmtree(checkpoint_dir(table_path(out_dir, index)), ignore_errors=True)


def clear(out_dir: Path) -> None:
    """Remove every per-input file once the job's own outputs are written."""
    for path in out_dir.glob("input*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def start_over(out_dir: Path) -> None:
    """Forget everything an earlier run of the job left (for jobs that cannot be resumed)."""
    shutil.rmtree(out_dir, ignore_errors=True)
