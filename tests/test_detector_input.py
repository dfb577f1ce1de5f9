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


def test_shrink_halves_by_box_averages_then_finishes_bilinear():
    """Exact halvings are INTER_AREA's own result; a fractional last step is bilinear, close to
    INTER_AREA; every size comes out exactly as asked."""
    import cv2

    from mien.detection import shrink

    rng = np.random.default_rng(1)
    img = cv2.GaussianBlur(rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8), (0, 0), 3)
    half = shrink(img, (960, 540))
    np.testing.assert_array_equal(half, cv2.resize(img, (960, 540), interpolation=cv2.INTER_AREA))
    quarter = shrink(img, (480, 270))  # two halvings: 4x4 means up to rounding
    exact = cv2.resize(img, (480, 270), interpolation=cv2.INTER_AREA)
    assert np.abs(quarter.astype(int) - exact).max() <= 1
    for size in ((960, 540), (700, 394), (317, 178)):
        small = shrink(img[:720, :1280], size)
        assert small.shape == (size[1], size[0], 3)
        area = cv2.resize(img[:720, :1280], size, interpolation=cv2.INTER_AREA)
        assert np.abs(small.astype(int) - area).mean() < 2.0


def test_detections_on_a_720p_frame_match_those_from_inter_area():
    """The detector's faster reduction finds the same faces, boxes within IoU 0.95 and scores
    within 0.05, as on the exact INTER_AREA reduction (a real frame upscaled to 1280x720)."""
    import av
    import cv2
    from conftest import shared_video

    import mien.detection as det_mod
    from mien.detection import FaceDetector

    with av.open(str(shared_video("short_hamilton_clip.mp4"))) as c:
        frame = next(f for i, f in enumerate(c.decode(video=0)) if i == 60).to_ndarray(format="bgr24")
    frame = cv2.resize(frame, (1280, 720), interpolation=cv2.INTER_CUBIC)
    det = FaceDetector()
    fast = det.detect(frame)
    saved = det_mod.shrink
    det_mod.shrink = lambda image, size: cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    try:
        exact = det.detect(frame)
    finally:
        det_mod.shrink = saved
    assert len(fast) == len(exact) >= 2
    order = [int(np.argmin(np.abs(fast.xyxy - b).sum(1))) for b in exact.xyxy]
    lt = np.maximum(exact.xyxy[:, :2], fast.xyxy[order, :2])
    rb = np.minimum(exact.xyxy[:, 2:], fast.xyxy[order, 2:])
    inter = np.clip(rb - lt, 0, None).prod(1)
    area = lambda b: (b[:, 2:] - b[:, :2]).prod(1)  # noqa: E731
    iou = inter / (area(exact.xyxy) + area(fast.xyxy[order]) - inter)
    assert iou.min() >= 0.95, iou
    np.testing.assert_allclose(fast.score[order], exact.score, atol=0.05)  # a marginal face (0.59) moves 0.022
