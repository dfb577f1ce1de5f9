"""The detector's input blob, built by OpenCV outside the GIL, must be exactly the numpy one."""
from __future__ import annotations

import numpy as np

from mien.detection import _MEAN_BGR, _blob


def test_blob_is_bgr_minus_mean_in_nchw():
    rng = np.random.default_rng(0)
    for shape in ((37, 53, 3), (128, 128, 3), (540, 960, 3)):
        images = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(3)]
        want = np.ascontiguousarray((np.stack(images).astype(np.float32) - _MEAN_BGR).transpose(0, 3, 1, 2))
        got = _blob(images)
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)
