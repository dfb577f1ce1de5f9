"""Face geometry: the mesh model's integrity, the pose solver and its signs, the measures, blinks."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED

from mien.errors import ModelError
from mien.geometry import FaceMesh, blink_events, canonical_face, geometry_measures, head_pose, track_deltas
from mien.geometry.landmarks68 import MESH_TO_IBUG68, to_ibug68
from mien.geometry.mesh import back_project, crop_transforms
from mien.geometry.pose import _FLIP, HeadPose, rotation_from_angles, stable_face_frame
from mien.geometry.validation import auc, pair_auc, pair_auc_ci, subject_pairs

TAIWANESE = SHARED / "expressions" / "taiwanese_chen2013"


def _image(path: Path) -> np.ndarray:
    if not path.is_file():
        pytest.skip(f"shared data absent: {path} (geometry tests on real faces need ../shared)")
    return cv2.imread(str(path))


@pytest.fixture(scope="module")
def models():
    from mien.detection import FaceDetector

    return FaceDetector(), FaceMesh.load()


def _frame_points(yaw: float, pitch: float, roll: float, scale: float = 9.0) -> np.ndarray:
    """The canonical face posed by (yaw, pitch, roll), in frame pixels (x right, y down)."""
    c = canonical_face()
    r = rotation_from_angles(yaw, pitch, roll)
    p = scale * c.vertices @ r.T + np.array([320.0, -240.0, -50.0])
    return (p * _FLIP)[None]


def test_mesh_card_refuses_a_changed_model(tmp_path: Path) -> None:
    src = Path(FaceMesh.load().onnx_path).parent
    for f in ("face_mesh.json", "face_mesh.onnx", "face_mesh_canonical.npz"):
        shutil.copy(src / f, tmp_path / f)
    FaceMesh.load(tmp_path / "face_mesh.json")
    data = bytearray((tmp_path / "face_mesh.onnx").read_bytes())
    data[-10] ^= 1
    (tmp_path / "face_mesh.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        FaceMesh.load(tmp_path / "face_mesh.json")
    card = json.loads((src / "face_mesh.json").read_text())
    assert card["source"]["pypi"] == "mediapipe==0.10.21" and "Apache-2.0" in card["licence"]
    assert "Apache License" in (src / "face_mesh_NOTICE.txt").read_text()


@pytest.mark.parametrize("angles", [(0, 0, 0), (30, 0, 0), (-45, 10, 5), (20, -25, -15), (-70, 15, 30)])
def test_solver_recovers_known_rotations_of_the_canonical_face(angles: tuple[float, float, float]) -> None:
    pose = head_pose(_frame_points(*angles))
    np.testing.assert_allclose([pose.yaw_deg[0], pose.pitch_deg[0], pose.roll_deg[0]], angles, atol=1e-6)
    np.testing.assert_allclose(pose.scale, 9.0, rtol=1e-9)
    # the head's frame undoes the pose exactly
    np.testing.assert_allclose(pose.to_face_frame(_frame_points(*angles))[0], canonical_face().vertices, atol=1e-9)


def test_pose_and_measure_frame_stay_rotations_on_a_mirrored_face() -> None:
    """A mirror image of the points (a reflection, as a bad mesh or flipped depth could give) must
    still be fitted by a rotation (det +1), never a reflection: the Umeyama sign correction."""
    mirrored = _frame_points(20, -10, 5) * np.array([1.0, 1.0, -1.0])  # depth flipped: a reflection
    pose = head_pose(mirrored)
    np.testing.assert_allclose(np.linalg.det(pose.rotation), 1.0, atol=1e-9)
    np.testing.assert_allclose(pose.rotation[0] @ pose.rotation[0].T, np.eye(3), atol=1e-9)
    frame = stable_face_frame(mirrored)
    # a rotation keeps the shape's handedness, so the fitted face is not the canonical one (a
    # reflection would map it back onto it)
    assert np.abs(frame[0] - canonical_face().vertices).max() > 0.5


def test_pose_signs_follow_the_documented_conventions() -> None:
    c = canonical_face()
    nose, right_eye, left_eye = 1, 33, 263  # the person's right eye is on the image's left
    p = _frame_points(30, 0, 0)[0]
    assert p[nose, 0] > p[[right_eye, left_eye], 0].mean()  # yaw > 0: nose towards the image's right
    p = _frame_points(0, 20, 0)[0]
    q = _frame_points(0, 0, 0)[0]
    assert p[nose, 1] - p[[right_eye, left_eye], 1].mean() < q[nose, 1] - q[[right_eye, left_eye], 1].mean()  # chin up
    p = _frame_points(0, 0, 15)[0]
    assert p[left_eye, 1] > p[right_eye, 1]  # roll > 0: the eye on the image's right is lower
    assert c.vertices[right_eye, 0] < 0 < c.vertices[left_eye, 0]


def test_flipping_the_points_negates_yaw_and_roll() -> None:
    p = _frame_points(25, -10, 12)
    flipped = p.copy()
    flipped[..., 0] = 640 - flipped[..., 0]
    # a mirror swaps the person's sides: mirror-symmetric mesh indices trade places
    c = canonical_face().vertices
    mirror = np.array([int(np.argmin(np.linalg.norm(c - c[i] * [-1, 1, 1], axis=1))) for i in range(len(c))])
    pose = head_pose(flipped[:, mirror])
    np.testing.assert_allclose([pose.yaw_deg[0], pose.pitch_deg[0], pose.roll_deg[0]], [-25, -10, -12], atol=1e-3)


def test_crop_transform_round_trips_points() -> None:
    boxes = np.array([[100, 50, 180, 150], [10, 20, 40, 60]], np.float32)
    lm = np.array([[[120, 90], [160, 80], [140, 110], [125, 130], [158, 125]],
                   [[18, 35], [32, 36], [25, 45], [19, 52], [31, 52]]], np.float32)
    m = crop_transforms(boxes, lm)
    frame_pts = np.array([[[140.0, 100.0, 3.0], [120, 90, 0]], [[25, 40, 1], [18, 35, 0]]])
    crop = np.einsum("nij,nkj->nki", m[:, :, :2], frame_pts[..., :2]) + m[:, None, :, 2]
    scale = np.sqrt(np.abs(np.linalg.det(m[:, :, :2])))
    crop = np.concatenate([crop, frame_pts[..., 2:] * scale[:, None, None]], -1)
    np.testing.assert_allclose(back_project(crop, m), frame_pts, atol=1e-9)
    # the box centre lands at the crop centre and the eye line is horizontal in the crop
    np.testing.assert_allclose(m[0, :, :2] @ [140, 100] + m[0, :, 2], [96, 96], atol=1e-9)
    eyes = np.einsum("ij,kj->ki", m[0, :, :2], lm[0, :2]) + m[0, :, 2]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-6


def test_measures_are_scale_and_pose_free_and_follow_their_movement() -> None:
    c = canonical_face().vertices
    base = geometry_measures(c[None])
    for angles, scale in (((30, 10, -20), 4.0), ((-50, -15, 10), 20.0)):
        p = _frame_points(*angles, scale=scale)
        moved = geometry_measures(stable_face_frame(p))
        for k in base:
            np.testing.assert_allclose(moved[k], base[k], atol=1e-9, err_msg=k)
    # open the mouth: move the lower lip and chin down; only the mouth measures grow
    opened = c.copy()
    lower = [14, 17, 152, 87, 317, 84, 314]
    opened[lower, 1] -= 1.0
    after = geometry_measures(opened[None])
    assert after["geo_mouth_open"][0] > base["geo_mouth_open"][0]
    assert after["geo_jaw_drop"][0] > base["geo_jaw_drop"][0]
    assert after["geo_brow_raise"][0] == base["geo_brow_raise"][0]
    raised = c.copy()
    raised[[70, 63, 105, 66, 107, 46, 53, 52, 65, 55], 1] += 0.5  # the person's right brow only
    r = geometry_measures(raised[None])
    assert r["geo_brow_raise_right"][0] > base["geo_brow_raise_right"][0]
    assert r["geo_brow_raise_left"][0] == base["geo_brow_raise_left"][0]
    # a smile pulls the corner up and outwards (the person's right is -x in the head's frame)
    pulled = c.copy()
    pulled[61] += [-0.3, 0.3, 0.0]
    s = geometry_measures(pulled[None])
    assert s["geo_lip_corner_pull_right"][0] > base["geo_lip_corner_pull_right"][0]
    assert s["geo_lip_corner_pull_left"][0] == pytest.approx(base["geo_lip_corner_pull_left"][0], abs=1e-12)
    outwards = c.copy()
    outwards[291, 0] += 0.3  # the left corner straight outwards (+x), no higher: still more of the pull
    assert geometry_measures(outwards[None])["geo_lip_corner_pull_left"][0] > base["geo_lip_corner_pull_left"][0]


def test_track_deltas_use_the_more_neutral_half() -> None:
    tracks = np.array([1, 1, 1, 1, 2, 2])
    vals = np.array([0.1, 0.2, 0.9, 1.0, 5.0, 7.0])
    neutral = np.array([0.9, 0.8, 0.1, 0.2, 0.5, 0.5])
    d = track_deltas(tracks, {"geo_x": vals}, neutral)["geo_x_delta"]
    np.testing.assert_allclose(d, [-0.05, 0.05, 0.75, 0.85, -1.0, 1.0])
    # rows where the mesh did not find the face give no baseline: track 1's comes from the more
    # neutral half of its trusted rows 1-3 (neutral 0.8, 0.1, 0.2: rows 1 and 3, values 0.2 and 1.0)
    trusted = np.array([False, True, True, True, False, False])
    d = track_deltas(tracks, {"geo_x": vals}, neutral, trusted)["geo_x_delta"]
    np.testing.assert_allclose(d[:4], [-0.5, -0.4, 0.3, 0.4])
    assert np.isnan(d[4:]).all()  # track 2: no trusted row, no baseline


def test_table_deltas_leave_out_rows_the_mesh_did_not_find() -> None:
    import pandas as pd

    from mien.geometry.stage import add_track_deltas

    table = pd.DataFrame({"source": "v.mp4", "track_id": 1, "time_s": np.arange(4) / 10,
                          "prob_neutral": [0.9, 0.9, 0.1, 0.05], "mesh_score": [0.1, 0.9, 0.9, 0.9],
                          "geo_mouth_open": [5.0, 0.2, 0.4, 0.6], "geo_eye_open": 0.3})
    out = add_track_deltas(table)
    # baseline: the more neutral half of rows 1-3 (rows 1 and 2), not row 0's 5.0 (mesh_score 0.1)
    np.testing.assert_allclose(out["geo_mouth_open_delta"], [4.7, -0.1, 0.1, 0.3])


def test_blink_events_find_short_closures() -> None:
    t = np.arange(60) / 30.0
    eye = np.full(60, 0.3)
    eye[10:13] = 0.05  # 3 frames: a blink
    eye[30:50] = 0.05  # 20 frames, 0.63 s: eyes closed
    ev = blink_events(np.zeros(60, int), t, eye)
    assert [(e["kind"], e["frames"]) for e in ev] == [("blink", 3), ("eyes_closed", 20)]
    assert ev[0]["start_s"] == pytest.approx(10 / 30)


def test_blinks_ignore_rows_the_mesh_did_not_find() -> None:
    """A lost mesh (mesh_score below the trust threshold) gives lids anywhere: those rows are no
    closure, in the table's geo_blink and in blink_table, whatever geo_eye_open they hold."""
    import pandas as pd

    from mien.geometry.stage import add_track_deltas, blink_table

    n = 60
    eye = np.full(n, 0.3)
    eye[10:13] = 0.05  # a real blink, mesh trusted
    eye[30:33] = 0.02  # "closed" only because the mesh lost the face
    score = np.full(n, 0.95)
    score[30:33] = 0.1
    table = pd.DataFrame({"source": "v.mp4", "track_id": 1, "time_s": np.arange(n) / 30.0,
                          "prob_neutral": 0.8, "mesh_score": score, "geo_eye_open": eye})
    out = add_track_deltas(table)
    assert out["geo_blink"].to_numpy().nonzero()[0].tolist() == [10, 11, 12]
    events = blink_table(table)
    assert events["start_s"].tolist() == pytest.approx([10 / 30])


def test_ibug68_subset_shape_and_order() -> None:
    assert len(MESH_TO_IBUG68) == 68 and len(set(MESH_TO_IBUG68)) == 68
    c = canonical_face().vertices
    sub = to_ibug68(c[None])[0]
    assert sub[8, 1] == sub[:, 1].min()  # point 8 is the chin
    assert sub[36, 0] < sub[45, 0]  # 36 outer corner of the image-left eye, 45 of the image-right


def test_mesh_on_a_real_face_is_consistent(models) -> None:
    det, mesh = models
    img = _image(TAIWANESE / "images" / "0101a02.jpg")
    d = det.detect(img)
    res = mesh.run(img, d.xyxy, d.landmarks)
    assert res.points.shape == (len(d), 468, 3) and res.score[0] > 0.9
    x1, y1, x2, y2 = d.xyxy[0]
    inside = ((res.points[0, :, 0] > x1 - 0.2 * (x2 - x1)) & (res.points[0, :, 0] < x2 + 0.2 * (x2 - x1))).mean()
    assert inside > 0.95
    # two copies of the face in one batch give the same mesh
    two = mesh.run(img, np.repeat(d.xyxy[:1], 2, 0), np.repeat(d.landmarks[:1], 2, 0))
    np.testing.assert_allclose(two.points[0], two.points[1], atol=1e-4)
    assert isinstance(head_pose(res.points), HeadPose)


def test_reused_crop_buffer_gives_each_call_its_own_faces(models) -> None:
    """FaceMesh.run keeps its crops buffer from call to call (per thread): a call with fewer or
    more faces than the last gets exactly the meshes a fresh network gives."""
    det, mesh = models
    img = _image(TAIWANESE / "images" / "0101a02.jpg")
    d = det.detect(img)[:1]
    wide = np.ascontiguousarray(np.hstack([img, img[:, ::-1]]))  # the face and its mirror image
    w = img.shape[1]
    boxes = np.vstack([d.xyxy, [w + w - d.xyxy[0, 2], d.xyxy[0, 1], w + w - d.xyxy[0, 0], d.xyxy[0, 3]]])
    lm_mirror = d.landmarks[0][[1, 0, 2, 4, 3]] * [-1, 1] + [2 * w, 0]
    lms = np.vstack([d.landmarks, lm_mirror[None]])
    reference = {k: FaceMesh.load().run(wide, boxes[idx], lms[idx]).points  # a fresh network each: no buffer yet
                 for k, idx in (("both", [0, 1]), ("mirror", [1]))}
    for k, idx in (("both", [0, 1]), ("mirror", [1]), ("both", [0, 1]), ("mirror", [1])):
        np.testing.assert_array_equal(mesh.run(wide, boxes[idx], lms[idx]).points, reference[k], strict=True)


def _rotated(img: np.ndarray, angle: float) -> np.ndarray:
    h, w = img.shape[:2]
    pad = cv2.copyMakeBorder(img, h // 2, h // 2, w // 2, w // 2, cv2.BORDER_REPLICATE)
    m = cv2.getRotationMatrix2D((pad.shape[1] / 2, pad.shape[0] / 2), angle, 1.0)
    return cv2.warpAffine(pad, m, (pad.shape[1], pad.shape[0]), borderMode=cv2.BORDER_REPLICATE)


@pytest.mark.parametrize("name", ["0101a02.jpg", "0111b01.jpg"])
def test_roll_follows_in_plane_rotation_and_flips_negate_yaw_and_roll(models, name: str) -> None:
    from mien.geometry.stills import largest_face_geometry

    det, mesh = models
    img = _image(TAIWANESE / "images" / name)
    ref = largest_face_geometry(_rotated(img, 0), det, mesh)
    assert ref is not None
    for angle in (-30, -15, 15, 30):  # cv2: positive angle turns the image counter-clockwise
        g = largest_face_geometry(_rotated(img, angle), det, mesh)
        assert g is not None
        assert abs((g.pose.roll_deg[0] - ref.pose.roll_deg[0]) - (-angle)) < 2.0, angle
    for angle in (0, 20):
        a = largest_face_geometry(_rotated(img, angle), det, mesh)
        b = largest_face_geometry(cv2.flip(_rotated(img, angle), 1), det, mesh)
        assert a is not None and b is not None
        assert abs(a.pose.roll_deg[0] + b.pose.roll_deg[0]) < 2.0
        assert abs(a.pose.yaw_deg[0] + b.pose.yaw_deg[0]) < 3.0


def test_landmarks_need_the_mesh(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import REPO

    proc = subprocess.run([sys.executable, "-m", "mien", "analyze", str(tmp_path / "x.mp4"), "--landmarks",
                           "--no-geometry"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "need the face mesh" in proc.stderr


def test_annotated_frame_draws_the_mesh() -> None:
    from mien.annotate import draw
    from mien.faces import Faces

    img = np.full((480, 640, 3), 40, np.uint8)
    pts = _frame_points(10, 0, 0, scale=12.0)
    x1, y1 = pts[0, :, :2].min(0)
    x2, y2 = pts[0, :, :2].max(0)
    faces = Faces(np.array([[x1, y1, x2, y2]]), np.array([0.9]), np.zeros((1, 5, 2)), track_id=[0])
    plain, meshed = draw(img, faces), draw(img, faces, mesh=pts)
    inner = (slice(int(y1) + 5, int(y2) - 5), slice(int(x1) + 5, int(x2) - 5))
    assert (plain[inner] != 40).sum() == 0 and (meshed[inner] != 40).any(axis=-1).mean() > 0.2


def test_profile_gate_uses_the_mesh_yaw_where_the_mesh_found_a_face() -> None:
    from mien.faces import Faces
    from mien.options import QualityThresholds
    from mien.quality import assess

    # 5 points whose nose sits on the eye line's end: the proxy reads about -90 degrees
    lm = np.array([[[100, 100], [140, 100], [100, 120], [105, 140], [135, 140]]] * 3, np.float32)
    faces = Faces(np.array([[80, 70, 160, 170]] * 3, np.float32), np.full(3, 0.9, np.float32), lm,
                  track_id=[0, 1, 2], data={"pose_yaw_deg": np.array([-30.0, -30.0, -80.0]),
                                            "mesh_score": np.array([0.9, 0.1, 0.9])})
    crops = np.random.default_rng(0).integers(0, 255, (3, 48, 48)).astype(np.uint8)
    out = assess(faces, crops, QualityThresholds())
    assert out.yaw_deg[0] < -70  # the proxy column is kept as it was
    assert ["profile" in r for r in out.abstain_reason] == [False, True, True]
    no_mesh = assess(Faces(faces.xyxy, faces.score, lm, track_id=[0, 1, 2]), crops, QualityThresholds())
    assert all("profile" in r for r in no_mesh.abstain_reason)


def test_matrix_form_of_the_measures_equals_their_definitions(models) -> None:
    from mien.geometry.measures import _readable_measures

    det, mesh = models
    img = _image(TAIWANESE / "images" / "0111b01.jpg")
    d = det.detect(img)
    res = mesh.run(img, d.xyxy, d.landmarks)
    face = head_pose(res.points).to_face_frame(res.points)
    noisy = face + np.random.default_rng(0).normal(0, 0.2, (4, *face.shape[1:]))
    fast, slow = geometry_measures(noisy), _readable_measures(noisy)
    assert list(fast) == list(slow)
    for k in slow:
        np.testing.assert_allclose(fast[k], slow[k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_measure_frame_is_not_moved_by_the_lower_face() -> None:
    """An opening jaw moves only the lower face: the brows' measure must not change with it. The pose
    fit's MediaPipe weights hold cheek and jaw-side points, so in its frame the brows would seem to rise."""
    c = canonical_face().vertices
    lowered = c.copy()
    # everything more than 2 cm below the origin (lips, chin, jaw), 1 cm down; the nose tip (y -1.13)
    # stays, so nose-to-chin grows (lowering the nose tip too left it unchanged, and the test then
    # passed on a 1e-16 rounding difference)
    lowered[c[:, 1] < -2.0, 1] -= 1.0
    r = rotation_from_angles(20, -10, 5)
    frames = np.stack([(10.0 * v @ r.T + [320.0, -240.0, -50.0]) * _FLIP for v in (c, lowered)])
    still = geometry_measures(stable_face_frame(frames))
    assert still["geo_brow_raise"][1] == pytest.approx(still["geo_brow_raise"][0], abs=1e-9)
    assert still["geo_jaw_drop"][1] > still["geo_jaw_drop"][0] + 0.05
    shifted = geometry_measures(head_pose(frames).to_face_frame(frames))
    assert shifted["geo_brow_raise"][1] > shifted["geo_brow_raise"][0] + 0.01


def _reference_crops(image_bgr: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """The mesh input as the engine first built it: a 3-channel warp per face, RGB, 0..1."""
    out = []
    for m in transforms:
        crop = cv2.warpAffine(image_bgr, m.astype(np.float32), (192, 192), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        out.append(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) * np.float32(1.0 / 255.0))
    return np.stack(out)


@pytest.mark.parametrize("pixels_per_face", [0, 10**9])  # never / always through the 4-channel frame
def test_mesh_crops_are_the_same_whichever_warp_builds_them(models, monkeypatch, pixels_per_face: int) -> None:
    import av
    from conftest import shared_video

    from mien.geometry import mesh as mesh_module

    monkeypatch.setattr(mesh_module, "FOUR_CHANNEL_PIXELS_PER_FACE", pixels_per_face)
    det, _ = models
    checked = 0
    with av.open(str(shared_video("short_hamilton_clip.mp4"))) as c:
        for i, vf in enumerate(c.decode(video=0)):
            if i > 160:
                break
            if i % 40:
                continue
            img = vf.to_ndarray(format="bgr24")
            d = det.detect(img)
            if not len(d):
                continue
            m = crop_transforms(d.xyxy, d.landmarks)
            off_edge = m.copy()
            off_edge[:, 0, 2] += 150  # the crops run over the frame's left edge: the border is black
            for t in (m, off_edge):
                assert np.array_equal(mesh_module.crops_for(img, t), _reference_crops(img, t))
                checked += len(t)
    assert checked >= 20


def test_mesh_runs_a_frames_faces_one_by_one_with_the_batch_result(models) -> None:
    """One face a network call is faster per face than one batch (bench/geometry.py stage) and
    must give what the batch gives."""
    det, mesh = models
    img = _image(TAIWANESE / "images" / "0101a02.jpg")
    d = det.detect(img)
    boxes, lms = np.repeat(d.xyxy[:1], 3, 0), np.repeat(d.landmarks[:1], 3, 0)
    boxes[1] += 6.0  # three different crops of the face
    boxes[2] -= 4.0
    from mien.geometry.mesh import NETWORK_BATCH, crops_for

    crops = crops_for(img, crop_transforms(boxes, lms))
    whole_lm, whole_logit = mesh.session.run(None, {"input": crops})
    calls = []

    class Spy:
        def __init__(self, session):
            self.session = session

        def run(self, names, feeds):
            calls.append(len(feeds["input"]))
            return self.session.run(names, feeds)

    real = mesh.session
    mesh._session = Spy(real)
    try:
        pts, score = mesh.run_crops(crops)
    finally:
        mesh._session = real
    assert calls == [NETWORK_BATCH] * 3 and NETWORK_BATCH == 1
    np.testing.assert_allclose(pts.reshape(3, -1), whole_lm, atol=1e-4)
    np.testing.assert_allclose(score, 1 / (1 + np.exp(-whole_logit[:, 0])), atol=1e-6)


def test_crop_framing_follows_the_previous_mesh_not_the_detection_schedule(analyzer) -> None:
    """The full detections frame a face ~10% larger than the window re-detections between them;
    sized from the previous frame's mesh, the mesh crop (and so the mesh) does not follow that."""
    from itertools import islice

    from conftest import shared_video

    from mien.geometry.mesh import MESH_BOX_RATIO, mesh_box_sides, mesh_eye_angles
    from mien.geometry.stage import CropFraming
    from mien.sources import open_source

    framing = CropFraming()
    pts = np.zeros((2, 468, 3))
    pts[:, 33, :2] = [10, 20]  # outer eye corners: the eye line
    pts[0, 263, :2] = [110, 20]  # level
    pts[1, 263, :2] = [20, 30]
    pts[0, 0, :2], pts[0, 1, :2] = [0, -40], [60, 40]  # extent 110 x 80
    framing.update(np.array([4, 7]), pts, np.array([0.9, 0.1]))  # track 7's mesh is not trusted
    sides, angles = framing.sides_and_angles(np.array([4, 7, 9]))
    np.testing.assert_allclose(sides, [110 * MESH_BOX_RATIO, np.nan, np.nan])
    np.testing.assert_allclose(angles, [0.0, np.nan, np.nan])
    np.testing.assert_allclose(mesh_eye_angles(pts), [0.0, np.pi / 4])

    from mien.options import AnalysisOptions
    from mien.pipeline import Analyzer

    # the window re-detection on every frame between full detections (what small faces still get)
    windows = Analyzer(AnalysisOptions(detect_every=3, mesh_tracking=False), model=analyzer.model,
                       detector=analyzer.detector)
    src = open_source(str(shared_video("WolfgangLanger_Pexels.mp4")), prepare=windows._scheduled_detection())
    try:
        res = list(islice(windows.process_frames(iter(src)), 120))
    finally:
        src.close()
    phase = np.array([r.index % 3 for r in res])
    box_h = np.array([r.faces.xyxy[0, 3] - r.faces.xyxy[0, 1] for r in res])
    mesh_side = mesh_box_sides(np.stack([r.mesh_points[0] for r in res]))
    assert np.median(box_h[phase == 0]) / np.median(box_h[phase != 0]) > 1.05  # the schedule's framing
    assert abs(np.median(mesh_side[phase == 0]) / np.median(mesh_side[phase != 0]) - 1) < 0.01


def _first_frames(analyzer, clip: str, n: int):
    from itertools import islice

    from conftest import shared_video

    from mien.pipeline import _RunCounts
    from mien.sources import open_source

    counts = _RunCounts()
    src = open_source(str(shared_video(clip)), prepare=analyzer._scheduled_detection())
    try:
        return list(islice(analyzer.process_frames(iter(src), counts), n)), counts
    finally:
        src.close()


def test_mesh_tracking_frames_a_large_face_as_its_full_detection_between_detections(analyzer) -> None:
    """Between full detections the mesh follows a large face (the default): the box and the five
    points keep the full detection's framing (the window re-detection frames the face ~10% smaller,
    its points ~10% closer together), and the scans run every 2 x detect_every frames."""
    from mien.options import AnalysisOptions
    from mien.pipeline import Analyzer

    assert analyzer.options.mesh_tracking and analyzer.mesh is not None
    res, counts = _first_frames(analyzer, "WolfgangLanger_Pexels.mp4", 120)
    windows = Analyzer(AnalysisOptions(detect_every=3, mesh_tracking=False), model=analyzer.model,
                       detector=analyzer.detector)
    res_w, counts_w = _first_frames(windows, "WolfgangLanger_Pexels.mp4", 120)
    assert counts.full_detections <= 120 / 6 + 1 < counts_w.full_detections  # every 6th frame against every 3rd
    full = np.array([r.index % 6 == 0 for r in res])

    def eyes(rs):
        return np.array([np.linalg.norm(r.faces.landmarks[0, 1] - r.faces.landmarks[0, 0]) for r in rs])

    def heights(rs):
        return np.array([r.faces.xyxy[0, 3] - r.faces.xyxy[0, 1] for r in rs])

    for values in (eyes(res), heights(res)):
        assert abs(np.median(values[~full]) / np.median(values[full]) - 1) < 0.03
    full_w = np.array([r.index % 3 == 0 for r in res_w])
    assert np.median(eyes(res_w)[~full_w]) / np.median(eyes(res_w)[full_w]) < 0.93  # what it replaces
    # the full detections' frames themselves are the detector's, as without mesh tracking
    np.testing.assert_allclose(np.stack([r.faces.xyxy[0] for r in res if r.index % 6 == 0]),
                               np.stack([r.faces.xyxy[0] for r in res_w if r.index % 6 == 0]), atol=1e-3)


def test_a_followed_face_whose_mesh_is_lost_is_looked_for_in_its_window(analyzer) -> None:
    """When the following mesh does not find the face (score under 0.5; forced here on every
    following call), the window re-detection finds it on the same frame: no frame loses its face,
    and those frames carry the window's own detection score, not the anchor's."""
    from mien.geometry.mesh import MeshResult
    from mien.options import AnalysisOptions
    from mien.pipeline import Analyzer

    class LosingMesh:
        """The engine's mesh, but a following call (the crop framed without detector points)
        finds nothing."""

        def __init__(self, mesh):
            self.mesh, self.following_calls = mesh, 0

        def run(self, image, boxes, landmarks5, **kw):
            res = self.mesh.run(image, boxes, landmarks5, **kw)
            if len(boxes) and not np.asarray(landmarks5).any():
                self.following_calls += 1
                return MeshResult(res.points, np.zeros_like(res.score))
            return res

    an = Analyzer(AnalysisOptions(detect_every=3), model=analyzer.model, detector=analyzer.detector)
    an.mesh = LosingMesh(analyzer.mesh)
    res, counts = _first_frames(an, "WolfgangLanger_Pexels.mp4", 60)
    assert an.mesh.following_calls >= 30
    assert [len(r.faces) for r in res] == [1] * 60
    anchor = None
    for r in res:
        if r.index % 6 == 0:
            anchor = float(r.faces.score[0])
        else:
            assert float(r.faces.score[0]) != anchor, r.index


def test_mesh_tracking_leaves_small_faces_to_the_window_re_detection(analyzer) -> None:
    """Hamilton's faces are under :data:`mien.geometry.follow.MIN_FOLLOW_PX` but for one in profile,
    whose mesh is not trusted (so it is not followed either): the same faces, points and meshes."""
    from mien.geometry.follow import MIN_FOLLOW_PX
    from mien.options import AnalysisOptions
    from mien.pipeline import Analyzer
    from mien.quality import MIN_MESH_SCORE

    windows = Analyzer(AnalysisOptions(detect_every=3, mesh_tracking=False), model=analyzer.model,
                       detector=analyzer.detector)
    got = [_first_frames(a, "short_hamilton_clip.mp4", 60)[0] for a in (analyzer, windows)]
    assert sum(len(r.faces) for r in got[0]) > 100
    large = np.concatenate([r.faces.data["mesh_score"][r.faces.sizes >= MIN_FOLLOW_PX] for r in got[0]])
    assert len(large) > 10 and (large < MIN_MESH_SCORE).all()
    for a, b in zip(*got):
        np.testing.assert_array_equal(a.faces.xyxy, b.faces.xyxy)
        np.testing.assert_array_equal(a.faces.landmarks, b.faces.landmarks)
        np.testing.assert_array_equal(a.mesh_points, b.mesh_points)


def test_a_followed_face_moves_its_anchor_by_the_meshes_similarity() -> None:
    """A mesh moved by a known 2-D similarity (turned, scaled, shifted) carries the full
    detection's box centre and its five points' offsets from the mesh's stand-ins by that same
    similarity; the box's sides scale with it."""
    from mien.faces import Faces
    from mien.geometry.follow import MeshFollower, stand_ins

    rng = np.random.default_rng(3)
    mesh0 = np.concatenate([rng.uniform(100, 300, (468, 2)), rng.uniform(-20, 20, (468, 1))], 1)
    box = np.array([[110.0, 90.0, 310.0, 320.0]])
    lm = stand_ins(mesh0[None]) + rng.normal(0, 4, (1, 5, 2))
    det = Faces(box.astype(np.float32), np.array([0.97], np.float32), lm.astype(np.float32), track_id=np.array([5]))
    follower = MeshFollower(min_face_px=50)
    follower.anchor(det, mesh0[None], np.array([0.99]))
    assert follower.followable(np.array([5, 6]), {5, 6}).tolist() == [True, False]
    assert follower.followable(np.array([5]), set()).tolist() == [False]  # not trusted on its last frame
    theta, scale, shift = 0.2, 1.1, np.array([13.0, -7.0])
    lin = scale * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    mesh1 = mesh0.copy()
    mesh1[:, :2] = mesh0[:, :2] @ lin.T + shift
    got = follower.faces_from(np.array([5]), mesh1[None])
    centre = (box[0, :2] + box[0, 2:]) / 2 @ lin.T + shift
    np.testing.assert_allclose((got.xyxy[0, :2] + got.xyxy[0, 2:]) / 2, centre, atol=1e-3)
    np.testing.assert_allclose(got.xyxy[0, 2:] - got.xyxy[0, :2], scale * (box[0, 2:] - box[0, :2]), atol=1e-3)
    np.testing.assert_allclose(got.landmarks[0], lm[0] @ lin.T + shift, atol=1e-3)
    assert got.score[0] == np.float32(0.97)
    small = Faces(box.astype(np.float32) / 5, np.array([0.97], np.float32), lm.astype(np.float32) / 5,
                  track_id=np.array([5]))
    follower.anchor(small, mesh0[None] / 5, np.array([0.99]))  # too small to follow: no anchor left
    assert follower.followable(np.array([5]), {5}).tolist() == [False]


def test_measure_faces_frames_the_crop_by_the_tracks_previous_mesh(models) -> None:
    """The size and the turn the track's framing holds are the ones the mesh runs with, and a frame
    where that differs from the detection's gives another mesh (so neither is silently dropped)."""
    from mien.faces import Faces
    from mien.geometry.stage import CropFraming, measure_faces

    det, mesh = models
    img = _image(TAIWANESE / "images" / "0101a02.jpg")
    d = det.detect(img)[:1]
    faces = Faces(d.xyxy, d.score, d.landmarks, track_id=np.array([3]))
    side = 1.1 * float((d.xyxy[0, 2:] - d.xyxy[0, :2]).max())
    for sides, angles in (([side], [np.nan]), ([np.nan], [0.2])):
        framing = CropFraming()
        framing._framing = {3: (sides[0], angles[0])}
        _, points = measure_faces(mesh, img, faces, framing)
        expected = mesh.run(img, d.xyxy, d.landmarks, sides=np.array(sides), angles=np.array(angles)).points
        np.testing.assert_allclose(points, expected, atol=1e-4)
        assert np.abs(points - mesh.run(img, d.xyxy, d.landmarks).points).max() > 0.5
        assert set(framing._framing) == {3}  # updated from this frame's (trusted) mesh
    m = crop_transforms(d.xyxy, d.landmarks, angles=np.array([0.2]))
    assert np.isclose(np.arctan2(m[0, 0, 1], m[0, 0, 0]), 0.2)


def test_the_matrix_form_reads_every_point_the_definitions_read() -> None:
    """The measures' weights are built from the unit basis of the points the measures name
    (``measure_points``), not of all 1,404 coordinates: on random points everywhere on the mesh
    the matrix form still equals the definitions, so a definition that reads a point its
    ``Measure`` does not list fails here."""
    from mien.geometry.measures import _readable_measures

    c = canonical_face().vertices
    noisy = c + np.random.default_rng(1).normal(0, 0.3, (6, *c.shape))
    fast, slow = geometry_measures(noisy), _readable_measures(noisy)
    assert list(fast) == list(slow)
    for k in slow:
        np.testing.assert_allclose(fast[k], slow[k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_auc_against_own_neutral_pairs_each_face_with_its_own_rest_only():
    """Two people, one with a wide resting mouth: across people the smile and the rest overlap, but
    each smile is above its own person's rest. Rows outside ``rows`` and people lacking a neutral
    photo take no part; ties count half."""
    labels = np.array(["neutral", "happiness", "neutral", "happiness", "happiness", "happiness", "neutral"])
    people = np.array(["a", "a", "b", "b", "b", "c", "d"], dtype=object)
    value = np.array([0.0, 0.2, 0.5, 0.7, 0.5, 9.0, -9.0])
    rows = np.ones(7, bool)
    pairs = subject_pairs(labels, people, "happiness", rows)
    assert set(pairs) == {"a", "b"} and pairs["b"][0].tolist() == [3, 4] and pairs["b"][1].tolist() == [2]
    assert pair_auc(value, pairs, list(pairs)) == pytest.approx((1 + 1 + 0.5) / 3)
    assert auc(value[[1, 3, 4]], value[[0, 2]]) == pytest.approx((2 + 1 + 1.5) / 6)  # across people: lower
    assert pair_auc(value, pairs, ["b", "b"]) == pytest.approx(0.75)  # a person drawn twice counts twice
    assert subject_pairs(labels, people, "happiness", np.arange(7) < 2).keys() == {"a"}
    lo, hi = pair_auc_ci(value, pairs, resamples=200)
    assert 0.75 <= lo <= hi <= 1.0
