"""Alignment: the vectorised similarity transform and the crops cut from BGR frames without a
full-frame gray conversion must give what the per-face SVD on a gray frame gave."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import shared_video

from mien.alignment import (
    FER_TEMPLATE,
    align_faces,
    similarity_transform,
    similarity_transforms,
    supersampled_crops,
)


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
    # the per-template terms are cached: a second template of the same shape gets its own
    other = dst[::-1] * 0.7 + 5
    np.testing.assert_allclose(similarity_transforms(src, other), np.stack([umeyama_svd(s, other) for s in src]),
                               rtol=1e-4, atol=1e-3)


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


@pytest.mark.parametrize("height", [360, 720, 1080])
def test_large_faces_are_the_mean_of_their_footprint(height):
    """Faces more than 2 frame pixels a crop pixel (halved, warped at twice the crop's size and
    box-filtered) come out as the supersampled reference, centred: a grey level or so on average
    (the earlier fractional box filter was 5-7 grey levels off), also for faces cut by the frame's
    edges, with the expression model's top label kept for the face inside the frame."""
    from mien.expression import ExpressionModel

    img, lms = _frame_and_faces("WolfgangLanger_Pexels.mp4", 30)
    if height != img.shape[0]:
        w = img.shape[1] * height // img.shape[0]
        lms = lms * (w / img.shape[1])
        img = cv2.resize(img, (w, height), interpolation=cv2.INTER_CUBIC)
    size = np.array(img.shape[1::-1])
    corner = lms + (size - lms.max(1)[:, None] - 3)  # pushed into the bottom-right corner
    top_left = lms - lms.min(1)[:, None] + 3
    landmarks = np.concatenate([lms, corner, top_left]).astype(np.float32)
    mats = similarity_transforms(landmarks, FER_TEMPLATE * 48)
    assert (1.0 / np.hypot(mats[:, 0, 0], mats[:, 0, 1]) > 2).all()  # all take the reduced path
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    got = align_faces(img, landmarks, 48, FER_TEMPLATE)
    want = supersampled_crops(gray, landmarks, 48)
    err = np.abs(got.astype(int) - want.astype(int)).mean((1, 2))
    # beyond the frame's edge both replicate made-up pixels: the reference the frame's last row, the
    # reduced path the mean of its last 2**h rows (at 1080p 8), so a crop half outside is looser
    assert err[0] < 1.5 and (err < 3.0).all(), err
    model = ExpressionModel.load(precision="float")
    p_got, p_want = model.predict_proba(got), model.predict_proba(want)
    # the face inside the frame keeps its label and its probabilities; the faces cut by the edges
    # differ in made-up pixels (above), and this frame's face is ambiguous there (happiness 0.3-0.5
    # against sadness 0.4-0.5 with 2.3), so only their probabilities are bounded, not the top label
    assert p_got[0].argmax() == p_want[0].argmax() and np.abs(p_got[0] - p_want[0]).max() < 0.05
    assert np.abs(p_got - p_want).max() < 0.2
