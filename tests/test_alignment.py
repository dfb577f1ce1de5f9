"""Alignment: the vectorised similarity transform and the crops cut from BGR frames without a
full-frame gray conversion must give what the per-face SVD on a gray frame gave."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import shared_video

from mien.alignment import FER_TEMPLATE, align_faces, similarity_transform, similarity_transforms


def umeyama_svd(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The reference: Umeyama's similarity by SVD (what mien computed per face before)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / ((s0**2).sum() / len(src))
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])


def reference_crops(gray: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """Per-face SVD transform and warp of the whole gray frame (small faces: no pre-shrink)."""
    dst = FER_TEMPLATE * size
    return np.stack([
        cv2.warpAffine(gray, umeyama_svd(p.astype(np.float64), dst).astype(np.float32), (size, size),
                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        for p in landmarks
    ])


def test_vectorised_similarity_matches_the_svd_reference():
    rng = np.random.default_rng(0)
    dst = FER_TEMPLATE * 48
    src = FER_TEMPLATE[None] * rng.uniform(20, 400, (200, 1, 1)) + rng.normal(0, 3, (200, 5, 2))
    ang = rng.uniform(-np.pi, np.pi, 200)
    rot = np.stack([np.cos(ang), -np.sin(ang), np.sin(ang), np.cos(ang)], 1).reshape(-1, 2, 2)
    src = np.einsum("nij,nkj->nki", rot, src) + rng.uniform(0, 1000, (200, 1, 2))
    src[:5, :, 0] *= -1  # mirrored point sets: the best similarity still must not reflect
    got = similarity_transforms(src, dst)
    want = np.stack([umeyama_svd(s, dst) for s in src])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(similarity_transform(src[7], dst), got[7])


def _frame_and_faces(name: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    import av

    from mien.detection import FaceDetector

    with av.open(str(shared_video(name))) as c:
        for i, vf in enumerate(c.decode(video=0)):
            if i == index:
                img = vf.to_ndarray(format="bgr24")
                break
    det = FaceDetector().detect(img)
    assert len(det), f"no face in frame {index} of {name}"
    return img, det.landmarks


@pytest.mark.parametrize("name,index", [("short_hamilton_clip.mp4", 40), ("WolfgangLanger_Pexels.mp4", 100)])
def test_crops_from_bgr_equal_crops_from_the_gray_frame(name, index):
    img, lms = _frame_and_faces(name, index)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    # faces pushed half out of the frame too: the replicated border must stay the frame's edge
    shifted = np.concatenate([lms, lms - lms[:, :1].min(0) - 10, lms + (np.array(img.shape[1::-1]) - lms[:, 1:2]) - 5])
    for landmarks in (lms, shifted):
        from_bgr = align_faces(img, landmarks, 48, FER_TEMPLATE)
        from_gray = align_faces(gray, landmarks, 48, FER_TEMPLATE)
        np.testing.assert_array_equal(from_bgr, from_gray)


def test_small_faces_match_the_per_face_svd_warp():
    img, lms = _frame_and_faces("short_hamilton_clip.mp4", 40)
    mats = similarity_transforms(lms, FER_TEMPLATE * 48)
    lms = lms[1.0 / np.hypot(mats[:, 0, 0], mats[:, 0, 1]) <= 2.0]  # faces warped without a pre-shrink
    assert len(lms)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    got = align_faces(img, lms, 48, FER_TEMPLATE).astype(int)
    want = reference_crops(gray, lms, 48).astype(int)
    # the crop-relative translation rounds differently in float32: at most one grey level, rarely
    assert np.abs(got - want).max() <= 1
    assert (got != want).mean() < 0.01


def test_large_faces_reduced_by_a_whole_number_box_filter_stay_close_to_the_exact_reduction(monkeypatch):
    """A face 4x or more larger than 1.5x the crop's scale (here in a 1080p frame) is first reduced
    by a whole-number factor (OpenCV's fast box filter) instead of exactly to 1.5x: the crops differ
    by resampling noise only (a grey level or two on average; the expression model's top label kept, its probabilities
    within 0.15), also for faces cut by the frame's right and bottom edges."""
    import mien.alignment as alignment
    from mien.expression import ExpressionModel

    img, lms = _frame_and_faces("WolfgangLanger_Pexels.mp4", 30)
    big = cv2.resize(img, (1920, 1080), interpolation=cv2.INTER_CUBIC)
    lms = lms * (1920 / img.shape[1])
    edge = lms + (np.array([1920, 1080]) - lms.max(1)[:, None] - 3)  # pushed into the corner
    landmarks = np.concatenate([lms, edge]).astype(np.float32)
    mats = similarity_transforms(landmarks, FER_TEMPLATE * 48)
    assert (1.0 / np.hypot(mats[:, 0, 0], mats[:, 0, 1]) / 1.5 >= alignment.INTEGER_SHRINK_FROM).all()
    fast = align_faces(big, landmarks, 48, FER_TEMPLATE)
    monkeypatch.setattr(alignment, "INTEGER_SHRINK_FROM", 10**9)
    exact = align_faces(big, landmarks, 48, FER_TEMPLATE)
    assert not np.array_equal(fast, exact)  # the two paths did differ
    assert (np.abs(fast.astype(int) - exact.astype(int)).mean((1, 2)) < 2.5).all()
    model = ExpressionModel.load(precision="float")
    p_fast, p_exact = model.predict_proba(fast), model.predict_proba(exact)
    # the top label is kept; how far the probabilities move depends on the network (2.1: 0.05, 2.2: 0.11
    # on this ambiguous sad/happy face)
    assert np.abs(p_fast - p_exact).max() < 0.15 and (p_fast.argmax(1) == p_exact.argmax(1)).all()
