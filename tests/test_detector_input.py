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


def test_frames_with_faces_samples_every_nth_decoded_frame_with_its_detections():
    import av
    from conftest import shared_video

    from mien.detection import FaceDetector, frames_with_faces

    video = shared_video("single_face.mp4")
    det = FaceDetector()
    got = list(frames_with_faces(video, 10, det))
    with av.open(str(video)) as c:
        frames = [vf.to_ndarray(format="bgr24") for vf in c.decode(video=0)]
    expected = [f for f in frames[::10] if len(det.detect(f))]
    assert len(got) == len(expected) >= 5
    for (img, faces), ref in zip(got, expected):
        np.testing.assert_array_equal(img, ref)
        np.testing.assert_allclose(faces.xyxy, det.detect(ref).xyxy)
