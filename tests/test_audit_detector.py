"""Detector audit: IoU, VOC matching and AP by hand, annotation parsing, and an end-to-end fake."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mien.audit.detector import (
    AnnotatedImage,
    average_precision,
    evaluate_detector,
    load_annotations,
    match_all,
    match_image,
    pr_curve,
    summarize,
)
from mien.errors import InputError
from mien.faces import Faces
from mien.stats import iou_matrix

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "face_detection"


def _gt(boxes, ignore=None):
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    ig = np.zeros(len(boxes), bool) if ignore is None else np.asarray(ignore, bool)
    return AnnotatedImage(Path("x.jpg"), boxes, ig)


def test_iou_by_hand():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    assert iou_matrix(a, b)[0] == pytest.approx([50 / 150, 0.0, 1.0])


def test_average_precision_by_hand():
    # 2 faces; detections TP (0.9), FP (0.8), TP (0.7):
    # recall .5 .5 1, precision 1 .5 .667 -> envelope 1, .667 -> AP = .5*1 + .5*2/3
    assert average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(5 / 6)
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1.0)
    # 3 faces; TP FP FP TP TP: precision rises after the dip, so the envelope lifts recall 2/3 to 0.6
    rec = np.array([1, 1, 1, 2, 3]) / 3
    prec = np.array([1, 1 / 2, 1 / 3, 2 / 4, 3 / 5])
    assert average_precision(rec, prec) == pytest.approx((1.0 + 0.6 + 0.6) / 3)
    assert average_precision(np.array([]), np.array([])) == 0.0


def test_matching_duplicates_and_ignored_faces():
    gt = _gt([[0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 120, 120]], ignore=[False, False, True])
    boxes = np.array(
        [
            [0, 0, 10, 10],  # TP on face 0
            [1, 0, 11, 10],  # duplicate of face 0 -> FP
            [100, 100, 120, 121],  # on the ignored face -> neither
            [200, 200, 210, 210],  # nothing there -> FP
            [50, 50, 60, 61],  # TP on face 1, low score
        ],
        float,
    )
    scores = np.array([0.9, 0.8, 0.95, 0.3, 0.2])
    kept, tp, matched = match_image(gt, boxes, scores)
    assert kept.tolist() == [0.9, 0.8, 0.3, 0.2]  # the ignored-face detection is dropped
    assert tp.tolist() == [True, False, False, True]
    assert matched.tolist() == [0.9, 0.2]  # one entry per non-ignored face

    m = match_all([gt], [(boxes, scores)])
    _, precision, recall = pr_curve(m)
    assert recall.tolist() == [0.5, 0.5, 0.5, 1.0]
    assert precision == pytest.approx([1, 0.5, 1 / 3, 0.5])
    s = summarize(m, threshold=0.5, n_resamples=20)
    assert s["ap"]["value"] == pytest.approx(0.5 * 1 + 0.5 * 0.5)
    op = s["operating_point"]
    assert (op["tp"], op["fp"], op["fn"]) == (1, 1, 1)
    assert op["precision"]["value"] == 0.5 and op["recall"]["value"] == 0.5
    assert op["fp_per_image"]["value"] == 1.0
    assert s["max_recall"] == 1.0


def test_recall_by_size_buckets():
    gt = _gt([[0, 0, 10, 12], [0, 0, 20, 40], [0, 0, 100, 70], [300, 300, 500, 500]])
    # sizes (shorter side): 10, 20, 70, 200; found at 0.9: the 70 and 200 px faces; the 20 at 0.1
    boxes = np.array([[0, 0, 100, 70], [300, 300, 500, 500], [0, 0, 20, 40]], float)
    m = match_all([gt], [(boxes, np.array([0.9, 0.9, 0.1]))])
    s = summarize(m, threshold=0.5, n_resamples=10)
    by = {b["bucket"]: b for b in s["recall_by_size"]}
    assert list(by) == ["<16", "16-32", "32-64", "64-128", ">=128"]
    assert [by[k]["n_faces"] for k in by] == [1, 1, 0, 1, 1]
    assert by["<16"]["recall"] == 0.0 and by["64-128"]["recall"] == 1.0 and by[">=128"]["recall"] == 1.0
    assert by["16-32"]["recall"] == 0.0 and by["16-32"]["recall_any_score"] == 1.0
    assert by["32-64"]["recall"] is None


def _voc(path: Path, filename: str, boxes, difficult=()):
    objs = "".join(
        f"<object><name>{'con_mascarilla' if i % 2 else 'sin_mascarilla'}</name>"
        f"<difficult>{1 if i in difficult else 0}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for i, b in enumerate(boxes)
    )
    path.write_text(f"<annotation><filename>{filename}</filename>{objs}</annotation>")


@pytest.fixture()
def voc(tmp_path: Path) -> Path:
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images").mkdir()
    for k in range(3):
        cv2.imwrite(str(tmp_path / "images" / f"im{k}.png"), np.full((100, 100, 3), k, np.uint8))
        _voc(
            tmp_path / "annotations" / f"im{k}.xml",
            f"im{k}.png",
            [[10, 10, 40, 40], [50, 50, 90, 90]],
            difficult=(1,) if k == 0 else (),
        )
    _voc(tmp_path / "annotations" / "im9.xml", "missing.png", [[0, 0, 30, 30]])
    return tmp_path


def test_parse_voc_folder(voc: Path):
    gts, fmt = load_annotations(voc)
    assert fmt == "voc" and len(gts) == 4
    assert gts[0].boxes.tolist() == [[10, 10, 40, 40], [50, 50, 90, 90]]
    assert gts[0].ignore.tolist() == [False, True]  # difficult=1
    assert gts[0].classes.tolist() == ["sin_mascarilla", "con_mascarilla"]
    assert gts[0].path == voc / "images" / "im0.png"


def test_parse_imglab(tmp_path: Path):
    xml = tmp_path / "t.xml"
    xml.write_text(
        "<?xml version='1.0'?><dataset><images>"
        "<image file='a.jpg'><box top='10' left='20' width='30' height='40'/>"
        "<box top='0' left='0' width='5' height='5' ignore='1'/></image>"
        "<image file='dogs.jpg'></image></images></dataset>"
    )
    gts, fmt = load_annotations(xml)
    assert fmt == "imglab" and len(gts) == 2
    assert gts[0].boxes.tolist() == [[20, 10, 50, 50], [0, 0, 5, 5]]
    assert gts[0].ignore.tolist() == [False, True]
    assert gts[1].boxes.shape == (0, 4) and gts[1].path == tmp_path / "dogs.jpg"
    with pytest.raises(InputError, match="pass one of them"):
        load_annotations(tmp_path)


def test_annotation_errors(tmp_path: Path):
    with pytest.raises(InputError, match="does not exist"):
        load_annotations(tmp_path / "nope")
    with pytest.raises(InputError, match="no .xml"):
        load_annotations(tmp_path)
    bad = tmp_path / "bad.xml"
    bad.write_text("<annotation><object><bndbox><xmin>a</xmin></bndbox></object></annotation>")
    with pytest.raises(InputError, match="numeric"):
        load_annotations(bad)


class PerfectDetector:
    """Finds every face of the VOC fixture exactly, plus one false positive per image."""

    def detect(self, image):
        boxes = np.array([[10, 10, 40, 40], [50, 50, 90, 90], [0, 60, 8, 68]], np.float32)
        return Faces(boxes, np.array([0.9, 0.8, 0.3], np.float32), np.zeros((3, 5, 2), np.float32))


def test_evaluate_detector_end_to_end(voc: Path):
    r = evaluate_detector(voc, PerfectDetector(), n_resamples=50, detector_info={"name": "fake"})
    ds = r["dataset"]
    # 7 boxes, 1 difficult (ignored); the missing image's face stays in the denominator as a miss
    assert (ds["n_images"], ds["n_faces"], ds["n_ignored"], ds["n_unreadable"]) == (4, 6, 1, 1)
    assert ds["unreadable"][0]["image"] == "missing.png"
    op = r["operating_point"]
    assert op["tp"] == 5 and op["fp"] == 0 and op["fn"] == 1
    assert op["recall"]["value"] == pytest.approx(5 / 6)
    assert op["fp_per_image"]["value"] == 0.0  # the low-score FPs fall below 0.5
    assert r["max_recall"] == pytest.approx(5 / 6)
    # all TPs score above every FP, so precision is 1 up to recall 5/6
    assert r["ap"]["value"] == pytest.approx(5 / 6)
    # recall per annotated class: sin_mascarilla 3 faces found + 1 missing-image face; con_mascarilla 2
    by_class = {c["class"]: (c["n_faces"], c["recall"]) for c in r["recall_by_class"]}
    assert by_class == {"con_mascarilla": (2, 1.0), "sin_mascarilla": (4, 0.75)}
    low = evaluate_detector(voc, PerfectDetector(), threshold=0.2, n_resamples=10)
    assert low["operating_point"]["fp_per_image"]["value"] == pytest.approx(3 / 4)


def test_real_annotations_parse():
    if not SHARED.is_dir():
        pytest.skip(f"shared detection data not found at {SHARED} (only on developer machines and CI)")
    mask, fmt = load_annotations(SHARED / "mask_faces")
    assert fmt == "voc" and len(mask) == 427
    assert all(g.path.is_file() for g in mask[:20])
    test_set, _ = load_annotations(SHARED / "dlib_faces" / "testing.xml")
    train_set, _ = load_annotations(SHARED / "dlib_faces" / "training.xml")
    n_faces = sum(len(g.boxes) for g in test_set + train_set)
    assert n_faces == 43  # as the data README says
    assert all(g.path.is_file() for g in test_set + train_set)
