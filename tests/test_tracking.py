"""Tracking: IDF1 and identity switches on known trajectories, and one track per single-person clip."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from conftest import shared_video

from mien.faces import Faces
from mien.sources import Frame
from mien.tracking import FaceTracker, iou_matrix
from mien.tracking_eval import score_tracking


def test_iou_matrix_hand_computed():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 0.0]])


def test_score_tracking_counts_a_switch_and_idf1():
    box = np.array([[0, 0, 10, 10]], float)
    gt = {f: (np.array([1]), box) for f in range(4)}
    pred = {
        0: (np.array([7]), box),
        1: (np.array([7]), box),
        2: (np.array([8]), box),
        3: (np.array([8]), box),
    }
    s = score_tracking(gt, pred)
    assert s.id_switches == 1
    assert s.idf1 == pytest.approx(2 * 2 / 8)  # best identity match covers 2 of 4 frames


def test_tracker_keeps_ids_through_a_short_miss():
    tr = FaceTracker()
    ids = []
    for f in range(20):
        t = f / 30
        boxes = np.array([[100 + 3 * f, 100, 160 + 3 * f, 170], [400 - 3 * f, 50, 450 - 3 * f, 110]], float)
        if 8 <= f <= 11:  # first face occluded for 4 frames
            boxes = boxes[1:]
            out = tr.update(Faces(boxes, np.array([0.9])), t).track_id
            ids.append((None, out[0]))
        else:
            out = tr.update(Faces(boxes, np.array([0.9, 0.9])), t).track_id
            ids.append((out[0], out[1]))
    firsts = {a for a, _ in ids if a is not None}
    seconds = {b for _, b in ids}
    assert len(firsts) == 1 and len(seconds) == 1 and firsts != seconds


class _OneFilter:
    """The textbook constant-velocity Kalman filter for one track, matrix by matrix: the reference
    for the tracker's filter bank, which runs the same equations for all tracks at once."""

    def __init__(self, box):
        box = np.asarray(box, np.float64)
        cx, cy, w, h = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, max(box[2] - box[0], 1), max(box[3] - box[1], 1)
        self.x = np.array([cx, cy, w, h, 0, 0, 0, 0], float)
        s = max(w, h)
        self.P = np.diag([0.1 * s] * 4 + [2 * s, 2 * s, s, s]) ** 2

    def predict(self, dt):
        F = np.eye(8)
        F[:4, 4:] = np.eye(4) * dt
        s = max(self.x[2], self.x[3], 1.0)
        q = np.array([0.05 * s] * 4 + [1.0 * s] * 4) ** 2 * max(dt, 1e-3)
        self.x = F @ self.x
        self.x[2:4] = np.maximum(self.x[2:4], 1.0)
        self.P = F @ self.P @ F.T + np.diag(q)

    def update(self, box):
        box = np.asarray(box, np.float64)
        z = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, max(box[2] - box[0], 1), max(box[3] - box[1], 1)])
        H = np.zeros((4, 8))
        H[:, :4] = np.eye(4)
        S = H @ self.P @ H.T + np.diag([0.05 * max(z[2], z[3], 1.0)] * 4) ** 2
        K = self.P @ H.T @ np.linalg.inv(S)
        self.x = self.x + K @ (z - H @ self.x)
        self.P = (np.eye(8) - K @ H) @ self.P


def test_the_filter_bank_runs_each_tracks_textbook_kalman_filter():
    """Faces come and go, move, get weak detections and misses; after every frame each track's
    state and covariance must be those of its own filter run alone, and its prediction too."""
    rng = np.random.default_rng(3)
    tr = FaceTracker()
    ref: dict[int, _OneFilter] = {}
    last: dict[int, float] = {}
    starts = rng.uniform(50, 900, (12, 2))
    for f in range(120):
        t = f / 25 + (0.02 if f % 7 == 0 else 0.0)  # uneven steps
        present = [k for k in range(12) if 10 * k <= f < 10 * k + 60 and rng.random() > 0.15]
        boxes = np.array([[*(starts[k] + 2 * f), *(starts[k] + 2 * f + 40 + k)] for k in present], float)
        boxes = (boxes.reshape(-1, 4) + rng.normal(0, 1, (len(present), 4))).astype(np.float32)  # as Faces holds them
        scores = np.where(rng.random(len(present)) < 0.2, 0.45, 0.9)
        # the reference sees the same predictions and updates the tracker makes
        for tid, filt in ref.items():
            if t - last[tid] <= tr.config.max_gap_s:
                filt.predict(max(t - last[tid], 0.0))
        ids = tr.update(Faces(boxes, scores), t).track_id
        alive = {k.track_id for k in tr.tracks}
        for tid in list(ref):
            if tid not in alive:
                del ref[tid], last[tid]
        for d, tid in enumerate(ids):
            if tid < 0:
                continue
            if tid not in ref:
                ref[tid] = _OneFilter(boxes[d])
            else:
                ref[tid].update(boxes[d])
            last[tid] = t
        for tid in ref:  # unmatched: the mean goes back to the last sighting, the covariance stays
            if last[tid] != t:
                ref[tid].x[:4] -= ref[tid].x[4:] * max(t - last[tid], 0.0)
        bank_x = {trk.track_id: tr._kalman.x[i] for i, trk in enumerate(tr.tracks)}
        bank_p = {trk.track_id: tr._kalman.P[i] for i, trk in enumerate(tr.tracks)}
        assert set(bank_x) == set(ref)
        for tid, filt in ref.items():
            np.testing.assert_allclose(bank_x[tid], filt.x, rtol=1e-9, atol=1e-7)
            np.testing.assert_allclose(bank_p[tid], filt.P, rtol=1e-9, atol=1e-6)
    assert tr._next_id >= 12  # every face started a track at least once


def _face_crops() -> list[np.ndarray]:
    """Real face crops (with some margin) from shared clips of four different people."""
    from mien.detection import FaceDetector

    det = FaceDetector()
    crops = []
    for name, index in [
        ("WolfgangLanger_Pexels.mp4", 30),
        ("RD_Radio2_000.mp4", 20),
        ("WDA_KatieHill_000.mp4", 40),
        ("talking_d3.mp4", 10),
    ]:
        with av.open(str(shared_video(name))) as c:
            for i, f in enumerate(c.decode(video=0)):
                if i == index:
                    img = f.to_ndarray(format="bgr24")
                    break
        d = det.detect(img)
        x1, y1, x2, y2 = d.xyxy[int(d.score.argmax())]
        w, h = x2 - x1, y2 - y1
        a, b = int(max(x1 - 0.25 * w, 0)), int(max(y1 - 0.25 * h, 0))
        crop = img[b : int(y2 + 0.15 * h), a : int(x2 + 0.25 * w)]
        crops.append(cv2.resize(crop, (110, 130), interpolation=cv2.INTER_AREA))
    return crops


def _synthetic_scene(crops: list[np.ndarray], n_frames: int = 90, fps: float = 30.0):
    """Four faces on known paths over a real background: faces 0 and 1 cross; 2 and 3 do not,
    and face 2 is hidden behind a panel for 4 frames."""
    with av.open(str(shared_video("no_face.mp4"))) as c:
        bg = cv2.resize(next(c.decode(video=0)).to_ndarray(format="bgr24"), (960, 540))
    paths = {
        0: lambda t: (60 + 700 * t, 60),  # left to right
        1: lambda t: (760 - 700 * t, 110),  # right to left: crosses face 0
        2: lambda t: (80 + 200 * t, 340),
        3: lambda t: (620, 300 + 60 * np.sin(2 * np.pi * t)),
    }
    frames, gt = [], {}
    for f in range(n_frames):
        t = f / (n_frames - 1)
        img = bg.copy()
        ids, boxes = [], []
        for k in (1, 0, 2, 3):  # 0 passes in front of 1
            x, y = (int(round(v)) for v in paths[k](t))
            h, w = crops[k].shape[:2]
            img[y : y + h, x : x + w] = crops[k]
            if k == 2 and 40 <= f < 44:
                cv2.rectangle(img, (x - 10, y - 10), (x + w + 10, y + h + 10), (90, 90, 90), -1)
                continue
            ids.append(k)
            boxes.append([x, y, x + w, y + h])
        frames.append(Frame(f, f / fps, img))
        gt[f] = (np.array(ids), np.array(boxes, float))
    return frames, gt


@pytest.mark.slow
def test_synthetic_crossing_faces_idf1(analyzer):
    frames, gt = _synthetic_scene(_face_crops())
    df, _ = analyzer.analyze_frames(frames, "synthetic")
    pred = {
        int(f): (g["track_id"].to_numpy(), g[["x1", "y1", "x2", "y2"]].to_numpy())
        for f, g in df.groupby("frame_index")
    }
    # the detector's box is tighter than the pasted crop; match at IoU 0.3
    score = score_tracking(gt, pred, iou_threshold=0.3)
    print(f"synthetic scene: IDF1 {score.idf1:.3f}, switches {score.switches_by_gt}")
    assert score.idf1 >= 0.95
    assert score.switches_by_gt.get(2, 0) == 0 and score.switches_by_gt.get(3, 0) == 0


SINGLE_PERSON = [
    "WolfgangLanger_Pexels.mp4",
    "single_face.mp4",
    "RD_Radio2_000.mp4",
    "WDA_BobMenendez_000.mp4",
    "WDA_KatieHill_000.mp4",
    "talking_d0.mp4",
    "talking_d1.mp4",
    "talking_d3.mp4",
    "talking_d5.mp4",
    "talking_d6.mp4",
    "talking_d7.mp4",
    "talking_d8.mp4",
    "talking_d9.mp4",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", SINGLE_PERSON)
def test_single_person_clip_is_one_track(analyzer, name):
    result = analyzer.analyze_source(str(shared_video(name)))
    df = result.table
    assert len(df) > 0, f"no face found in {name}"
    share = df["track_id"].value_counts().iloc[0] / df["frame_index"].nunique()
    print(f"{name}: largest track covers {share:.3f} of face frames ({df['track_id'].nunique()} tracks)")
    assert share >= 0.95


@pytest.mark.slow
def test_fast_path_finds_every_face_frame_that_full_detection_does(analyzer):
    """Detection every 3rd frame + local re-detection + coarse scans (the default) must not lose
    face frames against full-frame detection on every frame (issue 6's recall condition)."""
    from mien.pipeline import AnalysisOptions, Analyzer

    video = str(shared_video("WolfgangLanger_Pexels.mp4"))
    fast = analyzer.analyze_source(video)
    full = Analyzer(AnalysisOptions(detect_every=1, coarse_scan=False), model=analyzer.model).analyze_source(video)
    assert fast.manifest.frames["full_frame_detections"] < full.manifest.frames["full_frame_detections"] / 2
    assert fast.table["frame_index"].nunique() >= full.table["frame_index"].nunique() == 472


def test_coarse_scan_rescans_at_full_size_every_second(analyzer):
    """While all faces are large, scheduled scans run at half size, but never for more than 1 s."""
    from mien.pipeline import AnalysisOptions, Analyzer

    calls = []

    class Recorder:
        max_side = 960

        def detect(self, image, max_side=None):
            calls.append(max_side)
            return Faces(np.array([[100, 100, 300, 320]], np.float32), np.array([0.99], np.float32),
                              np.zeros((1, 5, 2), np.float32))

    # without mesh tracking every 3rd frame; with it (the default), every 6th while every face
    # found is large enough to be followed (this one is 200 px)
    an = Analyzer(AnalysisOptions(detect_every=3, mesh_tracking=False), model=analyzer.model, detector=Recorder())
    img = np.zeros((360, 640, 3), np.uint8)
    for a, step in ((an, 3), (Analyzer(AnalysisOptions(detect_every=3), model=analyzer.model, detector=Recorder()), 6)):
        prepare = a._scheduled_detection()
        frames = [Frame(i, i / 30, img) for i in range(90)]  # 3 s at 30 fps
        calls.clear()
        for fr in frames:
            prepare(fr)
        scanned = [fr for fr in frames if fr.detections is not None]
        assert [fr.index for fr in scanned] == list(range(0, 90, step))
    assert calls.count(320) > len(calls) / 2  # mostly half-size scans (640 / 2)
    full_times = [fr.time_s for fr, c in zip(scanned, calls) if c is None]
    assert full_times[0] == 0 and np.diff(full_times).max() <= 1.0 + 1e-9 and len(full_times) >= 3
    calls.clear()
    an_off = Analyzer(AnalysisOptions(detect_every=3, coarse_scan=False), model=analyzer.model, detector=Recorder())
    prepare = an_off._scheduled_detection()
    for fr in [Frame(i, i / 30, img) for i in range(30)]:
        prepare(fr)
    assert set(calls) == {None}
