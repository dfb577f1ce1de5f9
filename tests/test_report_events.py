"""Event alignment on synthetic tracks whose responses after each event are set by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mien.errors import InputError
from mien.reporting.events import (
    EventStats,
    align_events,
    event_responses,
    load_events,
    parse_window,
    summarise_events,
)
from mien.reporting.synthetic import make_track
from mien.stats import bootstrap_mean_ci

FPS = 10.0
TIMES = np.round(np.arange(0.0, 40.0, 1.0 / FPS), 6)
EVENT_TIMES = [5.0, 15.0, 25.0]


def responding_track(
    source: str, track_id: int, levels: list[float], baseline: float = 0.1, abstain: np.ndarray | None = None
) -> pd.DataFrame:
    """Happiness is ``levels[i]`` during [event_i, event_i + 2) and ``baseline`` elsewhere."""
    happy = np.full(TIMES.size, baseline)
    for t0, level in zip(EVENT_TIMES, levels, strict=True):
        happy[(TIMES >= t0) & (TIMES < t0 + 2.0)] = level
    return make_track(source, track_id, TIMES, {"happiness": happy}, abstain, fps=FPS)


def events(label: str = "joke", **extra: list[object]) -> pd.DataFrame:
    return pd.DataFrame({"time_s": EVENT_TIMES, "label": [label] * 3, **extra})


def pick(summary: pd.DataFrame, scope: str, expression: str = "happiness", **keys: object) -> pd.Series:
    rows = summary[(summary["scope"] == scope) & (summary["expression"] == expression)]
    for k, v in keys.items():
        rows = rows[rows[k] == v]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_constant_response_gives_exact_mean_and_degenerate_ci() -> None:
    frame = responding_track("a.mp4", 1, [0.8, 0.8, 0.8])
    out = align_events(frame, events())
    row = pick(out, "track", track_id=1)
    assert row["n_events"] == 3
    assert row["mean"] == pytest.approx(0.8)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.8, 0.8))
    # The rest of the mass is spread over the 7 other labels.
    assert pick(out, "track", "neutral", track_id=1)["mean"] == pytest.approx(0.2 / 7)


def test_varying_response_mean_and_ci_bounds() -> None:
    frame = responding_track("a.mp4", 1, [0.2, 0.4, 0.9])
    out = align_events(frame, events(), stats=EventStats(n_boot=4000, seed=1))
    row = pick(out, "pooled")
    assert row["mean"] == pytest.approx(0.5)
    assert 0.2 <= row["ci_low"] < 0.5 < row["ci_high"] <= 0.9
    again = align_events(frame, events(), stats=EventStats(n_boot=4000, seed=1))
    pd.testing.assert_frame_equal(out, again)  # seeded: same inputs, same CIs
    values = np.random.default_rng(0).uniform(size=(20, 8))
    seed1 = bootstrap_mean_ci(values, n_resamples=500, seed=[1, 7])
    assert np.array_equal(seed1[0], bootstrap_mean_ci(values, n_resamples=500, seed=[1, 7])[0])
    assert not np.array_equal(seed1[0], bootstrap_mean_ci(values, n_resamples=500, seed=[2, 7])[0])


def test_bootstrap_ci_matches_percentiles_of_resampled_means() -> None:
    values = np.array([[0.0], [1.0], [1.0], [0.0], [1.0], [1.0], [1.0], [0.0]])
    low, high = bootstrap_mean_ci(values, n_resamples=20000, seed=0)
    # The mean of 8 Bernoulli(5/8) draws: 95% of resampled means lie within about [0.25, 1.0].
    assert low[0] == pytest.approx(0.25, abs=0.13)
    assert high[0] == pytest.approx(1.0, abs=0.13)
    nan_low, nan_high = bootstrap_mean_ci(values[:1])
    assert np.isnan(nan_low).all() and np.isnan(nan_high).all()  # one event: no spread to estimate


def test_window_is_configurable_and_half_open() -> None:
    frame = responding_track("a.mp4", 1, [0.8, 0.8, 0.8])
    later = align_events(frame, events(), window=(2.0, 4.0))
    assert pick(later, "track", track_id=1)["mean"] == pytest.approx(0.1)  # back at baseline
    # [0, 2.1) also catches the frame at +2.0 s, which is at baseline: mean = (20*0.8 + 0.1) / 21.
    wider = align_events(frame, events(), window=(0.0, 2.1))
    assert pick(wider, "track", track_id=1)["mean"] == pytest.approx((20 * 0.8 + 0.1) / 21)


def test_span_window_uses_end_s() -> None:
    frame = responding_track("a.mp4", 1, [0.8, 0.8, 0.8])
    evs = events(end_s=[6.0, 16.0, 26.0])
    out = align_events(frame, evs, window="span")
    assert pick(out, "track", track_id=1)["mean"] == pytest.approx(0.8)
    with pytest.raises(InputError, match="end_s"):
        align_events(frame, events(), window="span")


def test_pooled_weights_events_not_tracks_and_spans_videos() -> None:
    crowd = pd.concat([responding_track("a.mp4", k, [0.2] * 3) for k in (1, 2, 3)], ignore_index=True)
    single = responding_track("b.mp4", 1, [0.8] * 3)
    out = align_events(pd.concat([crowd, single], ignore_index=True), events())
    pooled = pick(out, "pooled")
    assert pooled["n_events"] == 6  # 3 events in each of 2 videos
    assert pooled["mean"] == pytest.approx(0.5)  # not (3*0.2 + 0.8) / 4 = 0.35
    assert pick(out, "track", source="a.mp4", track_id=2)["mean"] == pytest.approx(0.2)
    assert pick(out, "track", source="b.mp4", track_id=1)["mean"] == pytest.approx(0.8)


def test_event_source_column_restricts_to_that_video() -> None:
    a = responding_track("/data/clips/a.mp4", 1, [0.8] * 3)
    b = responding_track("/data/clips/b.mp4", 1, [0.2] * 3)
    out = align_events(pd.concat([a, b], ignore_index=True), events(source=["a.mp4"] * 3))
    assert set(out.loc[out["scope"] == "track", "source"]) == {"/data/clips/a.mp4"}
    assert pick(out, "pooled")["mean"] == pytest.approx(0.8)


def test_abstained_frames_are_left_out() -> None:
    abstain = np.zeros(TIMES.size, dtype=bool)
    abstain[(TIMES >= 5.0) & (TIMES < 6.0)] = True  # first half of the first window
    frame = responding_track("a.mp4", 1, [0.8, 0.8, 0.8], abstain=abstain)
    frame.loc[frame["abstain"], "smooth_happiness"] = 99.0  # would show if abstained rows leaked in
    responses = event_responses(frame, load_events(events()))
    assert responses["n_frames"].tolist() == [10, 20, 20]
    assert responses["mean_happiness"].tolist() == pytest.approx([0.8, 0.8, 0.8])


def test_event_labels_are_summarised_separately() -> None:
    frame = responding_track("a.mp4", 1, [0.9, 0.1, 0.9])
    evs = pd.DataFrame({"time_s": EVENT_TIMES, "label": ["joke", "question", "joke"]})
    out = align_events(frame, evs)
    assert pick(out, "pooled", event_label="joke")["mean"] == pytest.approx(0.9)
    assert pick(out, "pooled", event_label="question")["mean"] == pytest.approx(0.1)
    assert np.isnan(pick(out, "pooled", event_label="question")["ci_low"])


def test_event_outside_video_gives_no_rows() -> None:
    frame = responding_track("a.mp4", 1, [0.8] * 3)
    out = summarise_events(
        event_responses(frame, load_events(pd.DataFrame({"time_s": [500.0], "label": ["late"]})))
    )
    assert out.empty


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("time_s,what\n1,x\n", "lacks column"),
        ("time_s,label\nabc,x\n", "row 1"),
        ("time_s,label\n1,x\n2,\n", "no label"),
        ("time_s,end_s,label\n3,2,x\n", "before its time_s"),
        ("time_s,label\n-1,x\n", "negative"),
    ],
)
def test_bad_events_files(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "events.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=match) as info:
        load_events(path)
    assert str(path) in str(info.value)


def test_missing_events_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_events(tmp_path / "nope.csv")


def test_events_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("time_s,end_s,label\n1.5,,question\n3,4.5,  joke \n")
    table = load_events(path)
    assert table["label"].tolist() == ["question", "joke"]
    assert np.isnan(table["end_s"].iloc[0]) and table["end_s"].iloc[1] == 4.5
    assert table["source"].tolist() == ["", ""]


def test_parse_window() -> None:
    assert parse_window("0,2") == (0.0, 2.0)
    assert parse_window(" -1, 3.5") == (-1.0, 3.5)
    assert parse_window("span") == "span"
    for bad in ("2,1", "abc", "1"):
        with pytest.raises(InputError):
            parse_window(bad)
