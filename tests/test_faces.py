"""The per-frame face record: validation, defaults, indexing, merging, and its one way into the table."""
from __future__ import annotations

import numpy as np
import pytest

from mien.faces import Faces
from mien.labels import EXPRESSIONS
from mien.schema import COLUMNS, table_columns


def _faces(n: int = 3) -> Faces:
    xyxy = np.array([[10 * i, 0, 10 * i + 50, 60] for i in range(n)], np.float32)
    return Faces(xyxy, np.linspace(0.5, 0.9, n), np.zeros((n, 5, 2)), track_id=np.arange(n),
                 data={"mouth_open": np.arange(n) / 10.0})


def test_unset_columns_get_their_not_measured_values():
    f = Faces(np.zeros((2, 4)), np.ones(2))
    assert len(f) == 2 and f.track_id.tolist() == [-1, -1] and f.abstain.tolist() == [False, False]
    assert f.probs.shape == (2, len(EXPRESSIONS)) and np.isnan(f.probs).all()
    assert f.landmarks.shape == (2, 5, 2) and list(f.abstain_reason) == ["", ""]
    assert f.xyxy.dtype == np.float32 and f.track_id.dtype == np.int64
    empty = Faces.empty()
    assert len(empty) == 0 and empty.xyxy.shape == (0, 4) and empty.smoothed.shape == (0, 8)


def test_validation_names_the_bad_column():
    with pytest.raises(ValueError, match="landmarks"):
        Faces(np.zeros((2, 4)), np.ones(2), np.zeros((3, 5, 2)))
    with pytest.raises(ValueError, match="score is required"):
        Faces(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="mouth_open"):
        Faces(np.zeros((2, 4)), np.ones(2), data={"mouth_open": np.zeros(3)})
    with pytest.raises(ValueError, match="shadow"):
        Faces(np.zeros((1, 4)), np.ones(1), data={"score": np.zeros(1)})


@pytest.mark.parametrize("index, expected", [
    (1, [1]), (slice(1, None), [1, 2]), (np.array([True, False, True]), [0, 2]), ([2, 0], [2, 0]),
])
def test_indexing_selects_every_column_and_data(index, expected):
    f = _faces()[index]
    assert f.track_id.tolist() == expected
    np.testing.assert_allclose(f.data["mouth_open"], np.array(expected) / 10.0)
    assert f.xyxy[:, 0].tolist() == [10.0 * i for i in expected]


def test_merge_and_replace():
    a, b = _faces(2), _faces(3)[2:]
    m = Faces.merge([a, Faces.empty().replace(), b])
    assert m.track_id.tolist() == [0, 1, 2] and m.data["mouth_open"].tolist() == [0.0, 0.1, 0.2]
    with pytest.raises(ValueError, match="different data"):
        Faces.merge([a, Faces(np.zeros((1, 4)), np.ones(1))])
    r = a.replace(track_id=np.array([7, 8]), data={"yaw_mesh": np.ones(2)})
    assert r.track_id.tolist() == [7, 8] and set(r.data) == {"mouth_open", "yaw_mesh"}
    assert a.track_id.tolist() == [0, 1]  # the original is unchanged
    with pytest.raises(ValueError, match="track_id"):
        a.replace(track_id=np.array([1, 2, 3]))


def test_top_expression_comes_from_the_smoothed_probabilities_and_skips_abstentions():
    smoothed = np.full((3, 8), 0.01)
    smoothed[0, 1] = 0.9
    smoothed[1, 3] = 0.8
    f = _faces().replace(smoothed=smoothed, abstain=np.array([False, True, False]))
    f = f.replace(smoothed=np.where(np.arange(3)[:, None] == 2, np.nan, f.smoothed))
    assert f.top_label == ["happiness", "", ""]
    np.testing.assert_allclose(f.top_prob, [0.9, np.nan, np.nan])


def test_table_columns_follow_the_schema_then_data():
    f = _faces(2).replace(data={"mesh": np.ones((2, 2, 3))})
    cols = table_columns(f, source="v.mp4", frame_index=4, time_s=0.2)
    assert tuple(cols)[: len(COLUMNS)] == COLUMNS
    assert tuple(cols)[len(COLUMNS):] == ("mouth_open", *(f"mesh_{j}" for j in range(6)))
    assert cols["x2"].tolist() == [50.0, 60.0] and cols["track_id"].tolist() == [0, 1]
    assert list(cols["top_label"]) == ["", ""]


def test_clipped_keeps_boxes_inside_the_frame_and_leaves_the_rest():
    f = Faces(np.array([[-5, 10, 700, 400], [10, 20, 30, 40]], np.float32), np.array([0.9, 0.8], np.float32),
              np.ones((2, 5, 2), np.float32), track_id=np.array([3, 4]))
    c = f.clipped(640, 360)
    np.testing.assert_array_equal(c.xyxy, [[0, 10, 640, 360], [10, 20, 30, 40]])
    np.testing.assert_array_equal(c.track_id, f.track_id)
    np.testing.assert_array_equal(f.xyxy[0], [-5, 10, 700, 400])  # a copy: the original is untouched
    assert len(Faces.empty().clipped(640, 360)) == 0
