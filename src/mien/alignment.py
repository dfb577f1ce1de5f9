"""5-point similarity alignment of faces to the crop framing the expression model was trained on.

The template is read from the model's card. For mien's FER+ model it was measured, not guessed:
RetinaFace was run on 1,500 upscaled FER+ training crops and its landmarks averaged (and made
left-right symmetric), so a video face aligned to it is framed like a training image.
"""
from __future__ import annotations

import cv2
import numpy as np

#: FER framing: mean RetinaFace landmarks on FER+ training crops, as fractions of the crop side.
FER_TEMPLATE = np.array(
    [[15.5, 18.3], [32.5, 18.3], [24.0, 28.3], [17.2, 36.3], [30.8, 36.3]], dtype=np.float32
) / 48.0


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src → dst (Umeyama).

    Returns a 2x3 matrix for ``cv2.warpAffine``. Closed form: no RANSAC, so it never fails on the
    five well-behaved detector points and gives the same answer every time.
    """
    return similarity_transforms(np.asarray(src)[None], dst)[0]


def similarity_transforms(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """:func:`similarity_transform` for many point sets at once: src (n, k, 2) → dst (k, 2);
    returns (n, 2, 3) float32.

    In 2-D, Umeyama's least-squares similarity has a closed form without an SVD: with both point
    sets centred, scale·rotation is ``[[a, -b], [b, a]]`` where ``a = Σ p·q / Σ|p|²`` and
    ``b = Σ p×q / Σ|p|²`` (the complex-number least squares ``q ≈ (a + ib) p``), which never
    reflects. One vectorised pass for all the faces of a frame instead of one SVD per face.
    """
    mu_d, qq = _template_terms(np.asarray(dst, np.float64))
    src = np.asarray(src, np.float64).reshape(-1, qq.shape[0] // 2, 2)
    mu_s = np.add.reduce(src, 1) / src.shape[1]
    p = (src - mu_s[:, None]).reshape(len(src), -1)  # (n, 2k): x0, y0, x1, y1, ...
    # a = Σ p·q / Σ|p|², b = Σ p×q / Σ|p|² as one matrix product (few numpy calls: this runs
    # every frame, and with one face its cost is numpy's per-call overhead)
    ab = p @ qq
    ab /= np.maximum(np.einsum("ij,ij->i", p, p), 1e-12)[:, None]
    a, b = ab[:, 0], ab[:, 1]
    out = np.empty((len(src), 2, 3), np.float64)
    out[:, 0, 0], out[:, 0, 1] = a, -b
    out[:, 1, 0], out[:, 1, 1] = b, a
    out[:, 0, 2] = mu_d[0] - (a * mu_s[:, 0] - b * mu_s[:, 1])
    out[:, 1, 2] = mu_d[1] - (b * mu_s[:, 0] + a * mu_s[:, 1])
    return out.astype(np.float32)


_TEMPLATE_TERMS: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}


def _template_terms(dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A template's centroid (2,) and, as (2k, 2), its centred points q and their turns (q_y, -q_x):
    the right-hand side of :func:`similarity_transforms`' products. Computed once per template."""
    key = dst.tobytes() + bytes(str(dst.shape), "ascii")
    got = _TEMPLATE_TERMS.get(key)
    if got is None:
        mu = dst.mean(0)
        q = dst - mu
        got = mu, np.stack([q.ravel(), np.stack([q[:, 1], -q[:, 0]], 1).ravel()], 1)
        for a in got:
            a.setflags(write=False)
        if len(_TEMPLATE_TERMS) < 64:
            _TEMPLATE_TERMS[key] = got
    return got


def _source_box(m: np.ndarray, size: int, shape: tuple[int, ...], pad: int) -> tuple[int, int, int, int]:
    """The part of the frame (x0, y0, x1, y1) that the crop warped by ``m`` samples, plus ``pad``
    pixels (the filters' reach), clamped to the frame."""
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float32) @ inv.T
    x0, y0 = np.floor(corners.min(0)).astype(int) - pad
    x1, y1 = np.ceil(corners.max(0)).astype(int) + pad
    h, w = shape[:2]
    return max(int(x0), 0), max(int(y0), 0), min(int(x1), w), min(int(y1), h)


#: Faces whose crop is warped from more than this many frame pixels per crop pixel are first
#: reduced (anti-aliasing); below it the warp's bilinear filter alone samples them.
PRESHRINK_FROM = 2.0


def _whole_span(lo: int, hi: int, k: int, limit: int) -> tuple[int, int]:
    """``[lo, hi)`` grown to a length that is a multiple of ``k`` within ``[0, limit)``: past ``hi``
    where the frame allows, else before ``lo``; shrunk to the multiple below when the frame is
    narrower than that."""
    n = k * -(-(hi - lo) // k)
    if lo + n <= limit:
        return lo, lo + n
    if limit - n >= 0:
        return limit - n, limit
    return lo, lo + k * ((hi - lo) // k)


def _gray(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    roi = image[y0:y1, x0:x1]
    return cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY) if roi.ndim == 3 else roi


def align_faces(
    image: np.ndarray, landmarks: np.ndarray, size: int, template: np.ndarray = FER_TEMPLATE
) -> np.ndarray:
    """Aligned grayscale crops (n, size, size) uint8 for the faces with 5-point ``landmarks`` (n,5,2).

    ``image`` is grayscale or BGR. A BGR frame is converted to gray only where each crop samples
    it (the same pixels as converting the whole frame first: the conversion is per pixel, and the
    replicated border is the frame's own edge), so a 1080p frame costs no full-frame conversion.
    A face up to 2 frame pixels a crop pixel is warped straight from the frame (bilinear); a larger
    one by :func:`_reduced_warp` (exact halvings, then a 2x-supersampled warp), so each crop pixel
    is the mean of its footprint, centred where the template puts it.
    """
    lms = np.asarray(landmarks, np.float32).reshape(-1, 5, 2)
    out = np.empty((len(lms), size, size), np.uint8)
    if not len(lms):
        return out
    dst = np.asarray(template, np.float32) * size
    mats = similarity_transforms(lms, dst)
    shrinks = 1.0 / np.maximum(np.hypot(mats[:, 0, 0], mats[:, 0, 1]), 1e-6)
    for i, (m, shrink) in enumerate(zip(mats, shrinks)):
        if shrink > PRESHRINK_FROM:
            out[i] = _reduced_warp(image, m, float(shrink), size)
            continue
        x0, y0, x1, y1 = _source_box(m, size, image.shape, 2)
        if x1 - x0 < 1 or y1 - y0 < 1:  # the crop lies wholly outside the frame
            x0, y0, x1, y1 = 0, 0, image.shape[1], image.shape[0]
        m = m.copy()
        m[:, 2] += m[:, 0] * x0 + m[:, 1] * y0
        out[i] = cv2.warpAffine(_gray(image, x0, y0, x1, y1), m, (size, size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
    return out


def _reduced_warp(image: np.ndarray, m: np.ndarray, shrink: float, size: int) -> np.ndarray:
    """The crop of a face ``shrink`` (> 2) frame pixels per crop pixel, without aliasing and on
    OpenCV's fast paths only: the region the crop samples is halved ``halvings`` times by an exact 2x2 box
    filter (INTER_AREA at exactly half: a few microseconds, where a fractional INTER_AREA costs
    0.1-0.3 ms on a 300-px face), leaving ``s = shrink / 2**h`` in [1.5, 3); that is warped to a
    crop twice the size (a step of s/2 in [0.75, 1.5) pixels) and box-filtered by 2 once more
    (2x supersampling). Pixel centres are kept: a halved pixel p lies at ``2p + 1/2``, a crop pixel
    at the mean of its two supersamples. :func:`supersampled_crops` is what it approximates."""
    halvings = max(int(np.floor(np.log2(shrink / 1.5))), 0)
    k = 2**halvings
    h, w = image.shape[:2]
    x0, y0, x1, y1 = _source_box(m, size, image.shape, 2 + k)
    (x0, x1), (y0, y1) = _whole_span(x0, x1, k, w), _whole_span(y0, y1, k, h)
    if x1 - x0 < 2 * k or y1 - y0 < 2 * k:  # (almost) wholly outside the frame: sample it as is
        x0, y0, x1, y1 = 0, 0, w, h
        halvings, k = 0, 1
    src = _gray(image, x0, y0, x1, y1)
    for _ in range(halvings):
        src = cv2.resize(src, (src.shape[1] // 2, src.shape[0] // 2), interpolation=cv2.INTER_AREA)
    # frame x = k * p + x0 + (k - 1) / 2 for a pixel p of the reduced region; the 2x crop's pixel
    # q = 2 * c + 1/2 for a crop position c, so its pixels 2c, 2c+1 average to crop pixel c
    a = m[:, :2].astype(np.float64)
    t = m[:, 2].astype(np.float64) + a @ np.array([x0 + (k - 1) / 2, y0 + (k - 1) / 2])
    m2 = np.hstack([2 * k * a, (2 * t + 0.5)[:, None]]).astype(np.float32)
    big = cv2.warpAffine(src, m2, (2 * size, 2 * size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def supersampled_crops(gray: np.ndarray, landmarks: np.ndarray, size: int, template: np.ndarray = FER_TEMPLATE,
                       ss: int = 8) -> np.ndarray:
    """The reference :func:`align_faces` is held to (slow: for tests and benchmarks): each crop
    warped from the whole gray frame at ``ss`` times its size (bilinear) and box-filtered back, so
    every crop pixel is the mean of its footprint, centred where the template puts it."""
    out = np.empty((len(landmarks), size, size), np.uint8)
    for i, m in enumerate(similarity_transforms(landmarks, np.asarray(template, np.float32) * size)):
        m = np.hstack([ss * m[:, :2], (ss * m[:, 2] + (ss - 1) / 2)[:, None]]).astype(np.float32)
        big = cv2.warpAffine(gray, m, (ss * size, ss * size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[i] = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return out
