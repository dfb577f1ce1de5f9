"""Tracking accuracy against ground truth: IDF1 (Ristani et al., 2016) and identity switches."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from mien.stats import iou_matrix


@dataclass(frozen=True)
class TrackingScore:
    idf1: float
    id_switches: int
    switches_by_gt: dict[int, int]
    matched_frames: int
    gt_boxes: int
    pred_boxes: int


def score_tracking(
    gt: dict[int, tuple[np.ndarray, np.ndarray]],
    pred: dict[int, tuple[np.ndarray, np.ndarray]],
    iou_threshold: float = 0.5,
) -> TrackingScore:
    """Score predicted tracks against ground truth.

    ``gt`` and ``pred`` map frame index → (ids (n,), boxes (n,4)). IDF1 uses the one-to-one
    assignment of ground-truth to predicted identities that maximises frames in agreement
    (IoU ≥ threshold); an identity switch is a change in the predicted id matched (per frame, by
    IoU) to one ground-truth id.
    """
    overlap: dict[tuple[int, int], int] = defaultdict(int)
    gt_count: dict[int, int] = defaultdict(int)
    pred_count: dict[int, int] = defaultdict(int)
    last_match: dict[int, int] = {}
    switches: dict[int, int] = defaultdict(int)
    matched = 0
    for f in sorted(set(gt) | set(pred)):
        g_ids, g_boxes = gt.get(f, (np.zeros(0, int), np.zeros((0, 4))))
        p_ids, p_boxes = pred.get(f, (np.zeros(0, int), np.zeros((0, 4))))
        for g in g_ids:
            gt_count[int(g)] += 1
        for p in p_ids:
            pred_count[int(p)] += 1
        if len(g_ids) and len(p_ids):
            iou = iou_matrix(np.asarray(g_boxes, float), np.asarray(p_boxes, float))
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] < iou_threshold:
                    continue
                g, p = int(g_ids[r]), int(p_ids[c])
                overlap[(g, p)] += 1
                matched += 1
                if g in last_match and last_match[g] != p:
                    switches[g] += 1
                last_match[g] = p
    g_list, p_list = sorted(gt_count), sorted(pred_count)
    idtp = 0
    if g_list and p_list:
        m = np.zeros((len(g_list), len(p_list)))
        for (g, p), v in overlap.items():
            m[g_list.index(g), p_list.index(p)] = v
        rows, cols = linear_sum_assignment(-m)
        idtp = int(m[rows, cols].sum())
    n_gt, n_pred = sum(gt_count.values()), sum(pred_count.values())
    idf1 = 2 * idtp / (n_gt + n_pred) if n_gt + n_pred else 1.0
    return TrackingScore(idf1, int(sum(switches.values())), dict(switches), matched, n_gt, n_pred)
