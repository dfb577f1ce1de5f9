"""Unit tests for the engine's small parts: labels, alignment, quality, smoothing, results."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mien.alignment import FER_TEMPLATE, align_faces, similarity_transform
from mien.faces import Faces
from mien.labels import EXPRESSIONS, canonical_label
from mien.quality import QualityThresholds, assess, pose_from_landmarks
from mien.results import RowBuffer, track_summary, write_results
from mien.schema import COLUMNS, RunManifest, read_table
from mien.smoothing import ExpressionSmoother


def test_labels_and_aliases():
    assert EXPRESSIONS == ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
    assert canonical_label("Happy") == "happiness" and canonical_label("surprised") == "surprise"
    with pytest.raises(ValueError, match="unknown expression label"):
        canonical_label("suspicious")


def test_similarity_transform_recovers_a_known_transform():
    src = FER_TEMPLATE * 100
    ang, s, t = math.radians(20), 2.5, np.array([30.0, -12.0])
    r = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    dst = src @ (s * r).T + t
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], s * r, atol=1e-4)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-3)


def test_alignment_puts_landmarks_on_the_template():
    img = np.zeros((400, 400), np.uint8)
    lms = FER_TEMPLATE * 160 + np.array([100, 90])
    for x, y in lms:
        img[int(y) - 2 : int(y) + 3, int(x) - 2 : int(x) + 3] = 255
    crop = align_faces(img, lms[None], 48)[0]
    for x, y in FER_TEMPLATE * 48:
        assert crop[int(round(y)), int(round(x))] > 60  # a bright dot lands on each template point


def test_pose_proxies():
    frontal = FER_TEMPLATE[None] * 100
    yaw, roll = pose_from_landmarks(frontal)
    assert abs(yaw[0]) < 1e-3 and abs(roll[0]) < 1e-3
    turned = frontal.copy()
    turned[0, 2, 0] += 25  # nose far to one side: turned head
    assert abs(pose_from_landmarks(turned)[0][0]) > 45
    tilted = frontal.copy()
    tilted[0, 1, 1] += 20  # right eye lower: rolled head
    assert pose_from_landmarks(tilted)[1][0] > 20


def test_abstention_reasons():
    boxes = np.array([[0, 0, 12, 12], [0, 0, 100, 100]], float)
    lms = np.stack([FER_TEMPLATE * 12, FER_TEMPLATE * 100])
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, (48, 48), dtype=np.uint8)
    flat = np.full((48, 48), 128, np.uint8)
    q = assess(Faces(boxes, np.array([0.9, 0.3]), lms), np.stack([sharp, flat]), QualityThresholds())
    assert q.abstain_reason[0] == "small_face"
    assert q.abstain_reason[1] == "low_score;blurred"
    assert q.abstain.tolist() == [True, True]


def test_smoother_is_causal_and_time_based():
    sm = ExpressionSmoother(tau_s=0.5)
    a, b = np.eye(8)[0], np.eye(8)[1]
    assert np.allclose(sm.update(0, 0.0, a), a)
    out = sm.update(0, 0.5, b)
    w = 1 - math.exp(-1)
    np.testing.assert_allclose(out, (1 - w) * a + w * b)
    # same elapsed time in more steps gives the same result (frame-rate independent)
    sm2 = ExpressionSmoother(tau_s=0.5)
    sm2.update(0, 0.0, a)
    sm2.update(0, 0.25, b)
    np.testing.assert_allclose(sm2.update(0, 0.5, b), out)
    # tracks are independent, and a long gap restarts
    np.testing.assert_allclose(sm.update(1, 0.6, a), a)
    np.testing.assert_allclose(sm.update(0, 10.0, a), a)


def _rows(n_frames: int = 5) -> pd.DataFrame:
    buf = RowBuffer()
    for f in range(n_frames):
        probs = np.tile(np.eye(8)[f % 2], (2, 1))
        cols = {"source": "v.mp4", "frame_index": f, "time_s": f / 10, "track_id": np.array([0, 1]),
                "x1": np.zeros(2), "y1": np.zeros(2), "x2": np.ones(2) * 50, "y2": np.ones(2) * 50,
                "det_score": np.ones(2)}
        for k in range(5):
            cols[f"lm{k}_x"] = np.zeros(2)
            cols[f"lm{k}_y"] = np.zeros(2)
        abstain = np.array([False, f == 0])
        cols.update(face_px=np.full(2, 50.0), sharpness=np.ones(2), yaw_deg=np.zeros(2), roll_deg=np.zeros(2),
                    abstain=abstain, abstain_reason=["", "blurred" if f == 0 else ""])
        for j, lab in enumerate(EXPRESSIONS):
            cols[f"prob_{lab}"] = np.where(abstain, np.nan, probs[:, j])
            cols[f"smooth_{lab}"] = np.where(abstain, np.nan, probs[:, j])
        cols["top_label"] = ["" if a else EXPRESSIONS[f % 2] for a in abstain]
        cols["top_prob"] = np.where(abstain, np.nan, 1.0)
        buf.add(cols)
    return buf.to_frame()


def test_row_buffer_and_track_summary():
    df = _rows()
    assert tuple(df.columns) == COLUMNS and len(df) == 10
    s = track_summary(df).set_index("track_id")
    assert s.loc[0, "n_frames"] == 5 and s.loc[1, "n_abstained"] == 1
    assert s.loc[0, "share_neutral"] == pytest.approx(3 / 5)
    assert s.loc[1, "share_neutral"] == pytest.approx(2 / 4)  # abstained frame excluded
    assert s.loc[0, "duration_s"] == pytest.approx(0.4)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_results_round_trip_and_sidecars(tmp_path, suffix):
    df = _rows()
    out = write_results(df, RunManifest(), tmp_path / f"r{suffix}")
    back = read_table(out)
    assert tuple(back.columns) == COLUMNS and len(back) == len(df)
    assert (tmp_path / f"r{suffix}.manifest.json").is_file() and (tmp_path / f"r{suffix}.tracks.csv").is_file()
    assert not list(tmp_path.glob("*.part"))


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    class Boom(Exception):
        pass

    df = _rows()
    from mien import results

    def bad(path):
        path.write_text("half")
        raise Boom

    with pytest.raises(Boom):
        results.atomic_write(tmp_path / "x.csv", bad)
    assert list(tmp_path.iterdir()) == []
    assert len(df)


def test_a_stop_inside_uninterrupted_waits_for_the_block_to_end():
    """The annotated video's encode-and-mux must not be cut in half by a stop (a video whose
    keyframe packets were dropped decodes to nothing): the signal is raised when the block ends."""
    import os
    import signal

    import pytest

    from mien.signals import graceful_stop, uninterrupted

    done = []
    with graceful_stop(), pytest.raises(KeyboardInterrupt):
        with uninterrupted():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs here, between bytecodes
                done.append(1)
            done.append("end of block")
        done.append("after the block")  # never reached: the held stop is raised at the block's end
    assert done[-1] == "end of block" and len(done) == 1001
