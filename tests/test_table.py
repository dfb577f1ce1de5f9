"""The engine's tables are written without pandas, byte for byte as pandas writes them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import shared_video

from mien.geometry.stage import END_OF_RUN_COLUMNS, add_track_deltas, track_codes
from mien.labels import EXPRESSIONS
from mien.options import AnalysisOptions
from mien.results import AnalysisResult, RowBuffer, track_rows, track_summary
from mien.schema import RunManifest, read_table
from mien.table import ColumnTable


def _synthetic() -> ColumnTable:
    """Values real clips rarely hold: text that CSV must quote, NaN, infinities, tiny and huge
    numbers, float32 that prints shorter than its float64 value, two sources."""
    buf = RowBuffer()
    rng = np.random.default_rng(0)
    for f in range(6):
        n = 3
        abstain = np.array([f == 0, False, f % 2 == 1])
        probs = rng.dirichlet(np.ones(8), n)
        probs[abstain] = np.nan
        cols = {"source": 'a "b", c\nd.mp4' if f < 3 else "plain.mp4", "frame_index": f, "time_s": f / 30,
                "track_id": np.array([0, 1, 2]), "x1": rng.random(n, np.float32) * 1000,
                "y1": np.float32([0.1, 1e-7, 3e9]), "x2": np.full(n, 50.5, np.float32),
                "y2": np.full(n, 60, np.float32), "det_score": np.array([0.5, np.inf, 1e-300])}
        for k in range(5):
            cols[f"lm{k}_x"] = rng.random(n, np.float32)
            cols[f"lm{k}_y"] = rng.random(n, np.float32)
        cols.update(face_px=np.full(n, 50.0), sharpness=rng.random(n), yaw_deg=-rng.random(n),
                    roll_deg=np.zeros(n), abstain=abstain,
                    abstain_reason=["blurred;profile" if a else "" for a in abstain])
        for j, lab in enumerate(EXPRESSIONS):
            cols[f"prob_{lab}"] = probs[:, j]
            cols[f"smooth_{lab}"] = probs[:, j]
        cols["top_label"] = ["" if a else EXPRESSIONS[int(p.argmax())] for a, p in zip(abstain, probs)]
        cols["top_prob"] = np.where(abstain, np.nan, probs.max(1, initial=0, where=~np.isnan(probs)))
        cols["extra_count"] = np.arange(n, dtype=np.int32)  # a Faces.data column of its own dtype
        buf.add(cols)
    return buf.to_table()


def _pandas_files(df: pd.DataFrame, tmp_path, name: str) -> dict[str, bytes]:
    """What pandas writes for ``df``: the reference the column writers must match."""
    df.to_parquet(tmp_path / f"{name}.parquet", index=False)
    df.to_csv(tmp_path / f"{name}.csv", index=False)
    track_summary(df).to_csv(tmp_path / f"{name}.tracks.csv", index=False)
    return {s: (tmp_path / f"{name}{s}").read_bytes() for s in (".parquet", ".csv", ".tracks.csv")}


def _column_files(table: ColumnTable, tmp_path, name: str) -> dict[str, bytes]:
    AnalysisResult(table, RunManifest()).save(tmp_path / f"{name}.parquet")
    AnalysisResult(table, RunManifest()).save(tmp_path / f"{name}.csv")
    return {".parquet": (tmp_path / f"{name}.parquet").read_bytes(),
            ".csv": (tmp_path / f"{name}.csv").read_bytes(),
            ".tracks.csv": (tmp_path / f"{name}.csv.tracks.csv").read_bytes()}


def test_column_writers_match_pandas_byte_for_byte(tmp_path):
    table = _synthetic()
    assert table.writable()
    df = table.to_pandas()
    assert df["abstain"].any() and df["prob_neutral"].isna().any() and df["source"].nunique() == 2
    ours, theirs = _column_files(table, tmp_path, "cols"), _pandas_files(df, tmp_path, "pandas")
    for suffix in theirs:
        assert ours[suffix] == theirs[suffix], suffix
    pd.testing.assert_frame_equal(read_table(tmp_path / "cols.csv"), read_table(tmp_path / "pandas.csv"))


def test_an_empty_table_writes_as_pandas_does(tmp_path):
    table = RowBuffer().to_table()
    assert len(table) == 0
    ours, theirs = _column_files(table, tmp_path, "cols"), _pandas_files(table.to_pandas(), tmp_path, "pandas")
    for suffix in theirs:
        assert ours[suffix] == theirs[suffix], suffix


def test_the_result_builds_its_dataframe_once_and_saves_edits(tmp_path):
    result = AnalysisResult(_synthetic(), RunManifest())
    assert len(result) == 18 and result.n_tracks == 3
    df = result.table
    assert result.table is df
    df["note"] = 1.0
    result.save(tmp_path / "r.parquet")
    assert "note" in read_table(tmp_path / "r.parquet").columns


def test_track_codes_number_tracks_as_pandas_factorize():
    source = np.array(["b", "a", "b", "a", "c", "b"], dtype=object)
    tid = np.array([3, 3, 1, 3, 0, 3])
    key = pd.Series(source).astype(str) + "\x00" + pd.Series(tid).astype(str)
    np.testing.assert_array_equal(track_codes(source, tid), pd.factorize(key)[0])


@pytest.mark.slow
def test_a_real_clip_writes_the_same_files_without_pandas(tmp_path):
    """short_hamilton_clip: several small faces, half of them abstained (NaN probabilities),
    geometry columns and the per-track deltas and blinks added at the end of the run."""
    from mien.pipeline import Analyzer

    clip = shared_video("short_hamilton_clip.mp4")
    result = Analyzer(AnalysisOptions(max_frames=90)).analyze_source(str(clip))
    assert isinstance(result._columns, ColumnTable)  # the engine hands over columns, not a DataFrame
    table = result._columns
    assert table["abstain"].any() and not table["abstain"].all() and result.n_tracks > 1
    ours = _column_files(table, tmp_path, "cols")
    df = result.table
    assert result.n_tracks == df["track_id"].nunique()
    theirs = _pandas_files(df, tmp_path, "pandas")
    for suffix in theirs:
        assert ours[suffix] == theirs[suffix], suffix
    # the end-of-run columns: the same from columns as from a DataFrame
    bare = df.drop(columns=list(END_OF_RUN_COLUMNS))
    from_frame = add_track_deltas(bare)
    from_columns = add_track_deltas(ColumnTable.from_pandas(bare))
    pd.testing.assert_frame_equal(from_columns.to_pandas(), from_frame)
    pd.testing.assert_frame_equal(from_frame, df)
    pd.testing.assert_frame_equal(track_rows(table).to_pandas(), track_summary(df), check_dtype=False)


def test_json_lines_and_other_columns_still_go_through_pandas(tmp_path):
    table = _synthetic()
    AnalysisResult(table, RunManifest()).save(tmp_path / "r.jsonl")
    table.to_pandas().to_json(tmp_path / "p.jsonl", orient="records", lines=True)
    assert (tmp_path / "r.jsonl").read_bytes() == (tmp_path / "p.jsonl").read_bytes()
    odd = table.assign(when=np.arange(len(table)).astype("datetime64[s]"))  # a kind the writers leave to pandas
    assert not odd.writable()
    AnalysisResult(odd, RunManifest()).save(tmp_path / "odd.parquet")
    assert (tmp_path / "odd.parquet").read_bytes() == _pandas_files(odd.to_pandas(), tmp_path, "odd_p")[".parquet"]
