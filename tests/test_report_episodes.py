"""Episodes on hand-made trajectories whose episodes are known in advance (10 fps, dt = 0.1 s)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mien.labels import EXPRESSIONS
from mien.reporting.episodes import EPISODE_COLUMNS, EpisodeParams, dominant_labels, find_episodes
from mien.reporting.synthetic import make_track

FPS = 10.0


def trajectory(
    spec: list[tuple[str, int]],
    *,
    value: float = 0.8,
    source: str = "v.mp4",
    track_id: int = 1,
    start: float = 0.0,
) -> pd.DataFrame:
    """Frames at 10 fps: ``("happiness", 10)`` = 10 frames where happiness has ``value``;
    ``("abstain", n)`` = abstained frames; ``("low", n)`` = happiness top but below 0.5;
    ``("skip", n)`` = no rows at all (face not detected)."""
    times, dom, abstain, levels = [], [], [], []
    t = start
    for what, n in spec:
        for _ in range(n):
            if what != "skip":
                times.append(round(t, 6))
                abstain.append(what == "abstain")
                dom.append("happiness" if what in ("low", "abstain") else what)
                levels.append(0.3 if what == "low" else value)
            t += 1.0 / FPS
    smooth = {label: np.zeros(len(times)) for label in EXPRESSIONS}
    for i, (label, level) in enumerate(zip(dom, levels, strict=True)):
        for other in EXPRESSIONS:
            smooth[other][i] = (1.0 - level) / 7.0
        smooth[label][i] = level
    return make_track(source, track_id, np.array(times), smooth, np.array(abstain), fps=FPS)


def eps(frame: pd.DataFrame, **kw: float) -> pd.DataFrame:
    return find_episodes(frame, EpisodeParams(**kw) if kw else None)


def test_columns_and_basic_spans() -> None:
    frame = trajectory([("neutral", 10), ("happiness", 10), ("neutral", 10)])
    out = eps(frame)
    assert list(out.columns) == list(EPISODE_COLUMNS)
    assert out["label"].tolist() == ["neutral", "happiness", "neutral"]
    hap = out.iloc[1]
    assert hap["onset_s"] == pytest.approx(1.0)
    assert hap["offset_s"] == pytest.approx(2.0)  # last dominant frame at 1.9 lasts dt = 0.1
    assert hap["duration_s"] == pytest.approx(1.0)
    assert hap["n_frames"] == 10
    assert hap["track_id"] == 1 and hap["source"] == "v.mp4"


def test_apex_is_highest_smoothed_value() -> None:
    frame = trajectory([("neutral", 5), ("happiness", 11), ("neutral", 5)])
    ramp = np.r_[np.linspace(0.55, 0.95, 6), np.linspace(0.9, 0.6, 5)]
    rows = frame["time_s"].between(0.45, 1.55)
    frame.loc[rows, "smooth_happiness"] = ramp
    out = eps(frame)
    hap = out[out["label"] == "happiness"].iloc[0]
    assert hap["apex_s"] == pytest.approx(1.0)
    assert hap["apex_value"] == pytest.approx(0.95)


def test_below_threshold_is_not_an_episode() -> None:
    frame = trajectory([("low", 20)])  # happiness is the top label at 0.3 < 0.5
    assert eps(frame).empty
    assert eps(frame, threshold=0.25)["label"].tolist() == ["happiness"]


def test_min_duration_boundary() -> None:
    short = trajectory([("neutral", 10), ("happiness", 4), ("neutral", 10)])
    exact = trajectory([("neutral", 10), ("happiness", 5), ("neutral", 10)])
    assert "happiness" not in eps(short)["label"].tolist()  # 0.4 s < 0.5 s
    assert "happiness" in eps(exact)["label"].tolist()  # 0.5 s is long enough


def test_short_gap_of_other_label_is_bridged_long_gap_splits() -> None:
    bridged = eps(trajectory([("happiness", 10), ("surprise", 2), ("happiness", 8)]))
    assert bridged["label"].tolist() == ["happiness"]
    one = bridged.iloc[0]
    assert (one["onset_s"], one["offset_s"]) == pytest.approx((0.0, 2.0))
    assert one["n_frames"] == 18  # the bridged surprise frames are not evidence of happiness

    split = eps(trajectory([("happiness", 10), ("surprise", 3), ("happiness", 8)]))
    assert split["label"].tolist() == ["happiness", "happiness"]  # 0.3 s > 0.25 s


def test_abstained_frames_bridge_but_never_count() -> None:
    out = eps(trajectory([("happiness", 10), ("abstain", 2), ("happiness", 10)]))
    assert len(out) == 1
    assert out.iloc[0]["n_frames"] == 20
    assert out.iloc[0]["duration_s"] == pytest.approx(2.2)

    long_abstention = eps(trajectory([("happiness", 10), ("abstain", 10), ("happiness", 10)]))
    assert len(long_abstention) == 2  # a 1 s abstention ends the episode


def test_abstention_does_not_extend_an_episode() -> None:
    out = eps(trajectory([("happiness", 10), ("abstain", 2)]))
    assert out.iloc[0]["offset_s"] == pytest.approx(1.0)
    out = eps(trajectory([("abstain", 2), ("happiness", 10)]))
    assert out.iloc[0]["onset_s"] == pytest.approx(0.2)


def test_missing_detections_are_gaps() -> None:
    bridged = eps(trajectory([("happiness", 10), ("skip", 2), ("happiness", 10)]))
    split = eps(trajectory([("happiness", 10), ("skip", 5), ("happiness", 10)]))
    assert len(bridged) == 1 and len(split) == 2


def test_max_gap_is_configurable() -> None:
    frame = trajectory([("happiness", 10), ("abstain", 10), ("happiness", 10)])
    assert len(eps(frame, max_gap_s=1.0)) == 1
    assert len(eps(frame, max_gap_s=0.0)) == 2


def test_tracks_and_sources_are_kept_apart() -> None:
    a = trajectory([("happiness", 10)], track_id=1)
    b = trajectory([("happiness", 10)], track_id=2)
    c = trajectory([("happiness", 10)], source="w.mp4")
    out = eps(pd.concat([a, b, c], ignore_index=True).sample(frac=1.0, random_state=0))
    assert sorted(zip(out["source"], out["track_id"], strict=True)) == [
        ("v.mp4", 1),
        ("v.mp4", 2),
        ("w.mp4", 1),
    ]
    assert (out["n_frames"] == 10).all()


def test_no_overlap_between_labels_with_defaults() -> None:
    rng = np.random.default_rng(3)
    labels = ["neutral", "happiness", "surprise"]
    spec = [(labels[rng.integers(3)], int(rng.integers(1, 12))) for _ in range(60)]
    out = eps(trajectory(spec))
    assert len(out) > 3
    for _, grp in out.groupby("track_id"):
        grp = grp.sort_values("onset_s")
        assert (grp["onset_s"].to_numpy()[1:] >= grp["offset_s"].to_numpy()[:-1] - 1e-9).all()


def test_empty_and_all_abstained() -> None:
    assert eps(trajectory([("abstain", 30)])).empty
    assert list(eps(trajectory([("happiness", 10)]).iloc[0:0]).columns) == list(EPISODE_COLUMNS)


def test_dominant_labels_handles_nan_rows() -> None:
    smooth = np.array([[np.nan] * 8, [0.1, 0.6, 0.1, 0.05, 0.05, 0.05, 0.03, 0.02]])
    assert dominant_labels(smooth, np.array([False, False]), 0.5).tolist() == [-1, 1]


def test_params_are_validated() -> None:
    with pytest.raises(ValueError):
        EpisodeParams(threshold=1.5)
    with pytest.raises(ValueError):
        EpisodeParams(min_duration_s=-1)
