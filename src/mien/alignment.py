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
    src = np.asarray(src, np.float64).reshape(-1, np.shape(dst)[0], 2)
    dst = np.asarray(dst, np.float64)
    mu_s = src.mean(1)
    mu_d = dst.mean(0)
    p = src - mu_s[:, None]
    q = dst - mu_d
    norm = np.maximum((p**2).sum((1, 2)), 1e-12)
    a = (p[..., 0] * q[:, 0] + p[..., 1] * q[:, 1]).sum(1) / norm
    b = (p[..., 0] * q[:, 1] - p[..., 1] * q[:, 0]).sum(1) / norm
    out = np.empty((len(src), 2, 3), np.float64)
    out[:, 0, 0], out[:, 0, 1] = a, -b
    out[:, 1, 0], out[:, 1, 1] = b, a
    out[:, 0, 2] = mu_d[0] - (a * mu_s[:, 0] - b * mu_s[:, 1])
    out[:, 1, 2] = mu_d[1] - (b * mu_s[:, 0] + a * mu_s[:, 1])
    return out.astype(np.float32)


def _source_box(m: np.ndarray, size: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The part of the frame (x0, y0, x1, y1) that the crop warped by ``m`` samples, plus the
    bilinear filter's neighbour, clamped to the frame."""
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float32) @ inv.T
    x0, y0 = np.floor(corners.min(0)).astype(int) - 2
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
    h, w = shape[:2]
    return max(int(x0), 0), max(int(y0), 0), min(int(x1), w), min(int(y1), h)


#: Faces this many times (or more) 1.5x the crop's scale are first reduced by a whole-number factor.
INTEGER_SHRINK_FROM = 4


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
    """
    lms = np.asarray(landmarks, np.float32).reshape(-1, 5, 2)
    out = np.empty((len(lms), size, size), np.uint8)
    if not len(lms):
        return out
    dst = np.asarray(template, np.float32) * size
    mats = similarity_transforms(lms, dst)
    shrinks = 1.0 / np.maximum(np.hypot(mats[:, 0, 0], mats[:, 0, 1]), 1e-6)
    for i, (pts, m, shrink) in enumerate(zip(lms, mats, shrinks)):
        # Shrinking by warpAffine alone aliases. Large faces are first reduced with INTER_AREA
        # (an exact box filter, cheaper than a Gaussian pre-blur) to 1.5x the crop's scale.
        src, box = None, None
        if shrink > 2.0:
            margin = 0.9 * float(np.ptp(pts, 0).max())
            x0, y0 = np.maximum(np.floor(pts.min(0) - margin).astype(int), 0)
            x1 = min(int(np.ceil(pts[:, 0].max() + margin)), image.shape[1])
            y1 = min(int(np.ceil(pts[:, 1].max() + margin)), image.shape[0])
            # A whole-number factor takes OpenCV's fast box filter (about 4x faster than a
            # fractional one at 1080p): the region grows (at the frame's edge: shrinks) to a
            # multiple of k, and the crop is warped from between 1.5x and 1.5 * (1 + 1/k) its scale.
            k = int(shrink / 1.5)
            whole = k >= INTEGER_SHRINK_FROM
            if whole:
                (x0, x1), (y0, y1) = _whole_span(x0, x1, k, image.shape[1]), _whole_span(y0, y1, k, image.shape[0])
                whole = x1 - x0 >= k and y1 - y0 >= k
            if x1 - x0 > 4 and y1 - y0 > 4:
                if whole:
                    w0, h0 = (x1 - x0) // k, (y1 - y0) // k
                else:
                    s0 = 1.5 / float(shrink)
                    w0, h0 = max(int(round((x1 - x0) * s0)), 2), max(int(round((y1 - y0) * s0)), 2)
                src = cv2.resize(_gray(image, x0, y0, x1, y1), (w0, h0), interpolation=cv2.INTER_AREA)
                sx, sy = w0 / (x1 - x0), h0 / (y1 - y0)
                m = m.copy()
                m[:, 2] += m[:, 0] * x0 + m[:, 1] * y0
                m[:, 0] /= sx
                m[:, 1] /= sy
        if src is None:
            box = _source_box(m, size, image.shape)
            x0, y0, x1, y1 = box
            if x1 - x0 < 1 or y1 - y0 < 1:  # the crop lies wholly outside the frame
                x0, y0, x1, y1 = 0, 0, image.shape[1], image.shape[0]
            src = _gray(image, x0, y0, x1, y1)
            m = m.copy()
            m[:, 2] += m[:, 0] * x0 + m[:, 1] * y0
        out[i] = cv2.warpAffine(
            src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    return out
