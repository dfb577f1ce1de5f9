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
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0**2).sum() / len(src)
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / max(var_s, 1e-12)
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]]).astype(np.float32)


def align_faces(
    gray: np.ndarray, landmarks: np.ndarray, size: int, template: np.ndarray = FER_TEMPLATE
) -> np.ndarray:
    """Aligned grayscale crops (n, size, size) uint8 for the faces with 5-point ``landmarks`` (n,5,2)."""
    if gray.ndim == 3:
        gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
    dst = np.asarray(template, np.float32) * size
    out = np.empty((len(landmarks), size, size), np.uint8)
    for i, pts in enumerate(landmarks):
        m = similarity_transform(pts, dst)
        # Shrinking by warpAffine alone aliases. Large faces are first reduced with INTER_AREA
        # (an exact box filter, cheaper than a Gaussian pre-blur) to 1.5x the crop's scale.
        shrink = 1.0 / max(float(np.hypot(m[0, 0], m[0, 1])), 1e-6)
        src = gray
        if shrink > 2.0:
            margin = 0.9 * float(np.ptp(pts, 0).max())
            x0, y0 = np.maximum(np.floor(pts.min(0) - margin).astype(int), 0)
            x1 = min(int(np.ceil(pts[:, 0].max() + margin)), gray.shape[1])
            y1 = min(int(np.ceil(pts[:, 1].max() + margin)), gray.shape[0])
            if x1 - x0 > 4 and y1 - y0 > 4:
                s0 = 1.5 / shrink
                w0, h0 = max(int(round((x1 - x0) * s0)), 2), max(int(round((y1 - y0) * s0)), 2)
                src = cv2.resize(gray[y0:y1, x0:x1], (w0, h0), interpolation=cv2.INTER_AREA)
                sx, sy = w0 / (x1 - x0), h0 / (y1 - y0)
                m = m.copy()
                m[:, 2] += m[:, 0] * x0 + m[:, 1] * y0
                m[:, 0] /= sx
                m[:, 1] /= sy
        out[i] = cv2.warpAffine(
            src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    return out
