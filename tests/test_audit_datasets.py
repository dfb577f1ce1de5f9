"""Dataset loading: folders, CSVs, the FER+ npz, and their edge cases."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mien.audit.datasets import (
    ImageReadError,
    crop_to_detector_image,
    load_dataset,
    subsample,
)
from mien.errors import InputError
from mien.labels import EXPRESSIONS
from mien.stats import ferplus_majority

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FERPLUS = SHARED / "data" / "ferplus" / "fer2013_ferplus.npz"


def _png(path: Path, value: int = 100, size: int = 20) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((size, size, 3), value, np.uint8))
    return path


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "faces"
    _png(root / "happy" / "a.png")
    _png(root / "happy" / "sub" / "b.png")
    _png(root / "Angry" / "c.png")
    _png(root / "neutral" / "d.png")
    (root / "neutral" / "notes.txt").write_text("not an image")
    (root / "neutral" / "broken.jpg").write_bytes(b"this is not a jpeg")
    (root / "README.md").write_text("ignored: not a folder")
    return root


def test_folder_labels_from_names_and_aliases(folder: Path):
    ds = load_dataset(folder)
    assert ds.format == "folder"
    by_id = dict(zip(ds.ids, ds.labels.tolist()))
    assert by_id == {
        "Angry/c.png": EXPRESSIONS.index("anger"),
        "happy/a.png": EXPRESSIONS.index("happiness"),
        "happy/sub/b.png": EXPRESSIONS.index("happiness"),
        "neutral/broken.jpg": EXPRESSIONS.index("neutral"),
        "neutral/d.png": EXPRESSIONS.index("neutral"),
    }
    assert ds.dropped == {"non_image_files": 1}
    assert ds.describe()["labels_absent"] == ["surprise", "sadness", "disgust", "fear", "contempt"]


def test_unreadable_image_is_kept_and_raises_on_read(folder: Path):
    ds = load_dataset(folder)
    i = ds.ids.index("neutral/broken.jpg")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        ds.read(i)
    assert ds.read(ds.ids.index("happy/a.png")).shape == (20, 20, 3)


def test_unknown_folder_label_is_a_clear_input_error(folder: Path):
    (folder / "bored").mkdir()
    with pytest.raises(InputError, match=r"'bored'.*use one of neutral"):
        load_dataset(folder)


def test_folder_without_class_subfolders(tmp_path: Path):
    _png(tmp_path / "x.png")
    with pytest.raises(InputError, match="no class subfolders"):
        load_dataset(tmp_path)


def _csv(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "data" / "labels.csv"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_csv_paths_subjects_and_groups(tmp_path: Path):
    _png(tmp_path / "data" / "img" / "1.png")
    absolute = _png(tmp_path / "elsewhere" / "2.png")
    p = _csv(
        tmp_path,
        "Path,Label,subject,age_band,skin_tone\n"
        "img/1.png,happy,s1,18-29,V\n"
        f"{absolute},Surprised,s1,,II\n"
        "img/1.png,neutral,s2,30-44,V\n"
        "\n"
        "img/missing.png,sad,s3,30-44,V\n",
    )
    ds = load_dataset(p)
    assert ds.format == "csv" and len(ds) == 4
    assert ds.labels.tolist() == [1, 2, 0, 3]
    assert ds.ids[0] == "img/1.png" and ds.ids[2] == "img/1.png#2"  # duplicate paths stay distinct
    assert ds.paths[0] == tmp_path / "data" / "img" / "1.png"  # relative to the CSV
    assert ds.paths[1] == absolute
    assert ds.subjects.tolist() == ["s1", "s1", "s2", "s3"]
    assert set(ds.groups) == {"age_band", "skin_tone"}
    assert ds.groups["age_band"].tolist() == ["18-29", "(missing)", "30-44", "30-44"]
    with pytest.raises(ImageReadError):
        ds.read(3)  # a missing file is an unreadable item, not a crash
    assert ds.sha256 and len(ds.sha256) == 64

    only = load_dataset(p, groups=["skin_tone"])
    assert list(only.groups) == ["skin_tone"]
    with pytest.raises(InputError, match="gender"):
        load_dataset(p, groups=["gender"])


def test_csv_empty_subject_column_means_no_clusters(tmp_path: Path):
    ds = load_dataset(_csv(tmp_path, "path,label,subject\na.png,happy,\nb.png,sad,\n"))
    assert ds.subjects is None and ds.groups == {}


def test_group_columns_need_a_csv(folder: Path):
    with pytest.raises(InputError, match="group columns come from a CSV"):
        load_dataset(folder, groups=["age"])


def test_csv_unknown_label_names_the_row(tmp_path: Path):
    p = _csv(tmp_path, "path,label\na.png,happy\nb.png,bored\n")
    with pytest.raises(InputError, match=r"'bored' in .*labels.csv row 3"):
        load_dataset(p)


def test_csv_missing_columns_and_empty(tmp_path: Path):
    with pytest.raises(InputError, match="no 'label' column"):
        load_dataset(_csv(tmp_path, "path,emotion\na.png,happy\n"))
    with pytest.raises(InputError, match="no rows"):
        load_dataset(_csv(tmp_path, "path,label\n"))
    with pytest.raises(InputError, match="empty path"):
        load_dataset(_csv(tmp_path, "path,label\n,happy\n"))


def test_dispatch_errors(tmp_path: Path, folder: Path):
    with pytest.raises(InputError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    other = tmp_path / "x.txt"
    other.write_text("x")
    with pytest.raises(InputError, match="neither a folder"):
        load_dataset(other)
    with pytest.raises(InputError, match="--split applies to the FER"):
        load_dataset(folder, split="PublicTest")


def _fake_ferplus(path: Path) -> Path:
    names = np.array([*EXPRESSIONS, "unknown", "NF"])
    votes = np.array(
        [
            [0, 9, 1, 0, 0, 0, 0, 0, 0, 0],  # happiness
            [2, 0, 0, 0, 0, 0, 0, 0, 5, 3],  # majority unknown -> dropped
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # NF -> dropped
            [5, 0, 0, 0, 0, 0, 0, 5, 0, 0],  # tie neutral/contempt -> first column (neutral)
            [0, 0, 0, 0, 0, 0, 0, 6, 4, 0],  # contempt
            [0, 0, 0, 0, 7, 0, 0, 0, 0, 3],  # anger, but in Training
        ],
        dtype=np.int16,
    )
    usage = np.array(["PrivateTest"] * 5 + ["Training"])
    pixels = np.arange(6 * 48 * 48, dtype=np.int64).reshape(6, 48, 48).astype(np.uint8)
    np.savez(
        path,
        pixels=pixels,
        usage=usage,
        ferplus_votes=votes,
        ferplus_vote_names=names,
        fer2013_row=np.arange(100, 106, dtype=np.int32),
    )
    return path


def test_ferplus_majority_and_split(tmp_path: Path):
    p = _fake_ferplus(tmp_path / "fer.npz")
    ds = load_dataset(p)
    assert ds.split == "PrivateTest" and ds.is_crops
    assert ds.labels.tolist() == [1, 0, 7]
    assert ds.ids == ["fer2013_row:100", "fer2013_row:103", "fer2013_row:104"]
    assert ds.dropped == {"majority_unknown_or_nf": 2}
    assert ds.read(1).shape == (48, 48)
    train = load_dataset(p, split="training")
    assert train.labels.tolist() == [4]
    with pytest.raises(InputError, match="unknown FER\\+ split"):
        load_dataset(p, split="Validation")


def test_npz_that_is_not_ferplus(tmp_path: Path):
    p = tmp_path / "other.npz"
    np.savez(p, x=np.zeros(3))
    with pytest.raises(InputError, match="not the FER\\+ npz"):
        load_dataset(p)


def test_crop_to_detector_image_upscales_and_pads():
    img = crop_to_detector_image(np.full((48, 48), 30, np.uint8))
    assert img.shape == (384, 384, 3)
    assert img[0, 0].tolist() == [128, 128, 128]  # padding
    assert img[192, 192].tolist() == [30, 30, 30]  # the face, in the middle


def test_subsample_is_seeded_and_ordered(folder: Path):
    ds = load_dataset(folder)
    a, b = subsample(ds, 3, seed=1), subsample(ds, 3, seed=1)
    assert a.ids == b.ids and len(a) == 3
    assert [ds.ids.index(i) for i in a.ids] == sorted(ds.ids.index(i) for i in a.ids)
    assert a.dropped["not_sampled"] == 2
    assert subsample(ds, None) is ds
    with pytest.raises(InputError):
        subsample(ds, 0)


def test_real_ferplus_private_test_matches_training_protocol():
    if not FERPLUS.is_file():
        pytest.skip(f"shared FER+ data not found at {FERPLUS} (only on developer machines and CI)")
    from mien.training import ferplus  # the loader the model was trained with

    ds = load_dataset(FERPLUS)
    data = np.load(FERPLUS)
    private = data["ferplus_votes"][data["usage"] == "PrivateTest"]
    assert len(ds) + ds.dropped["majority_unknown_or_nf"] == 3573
    top = private.argmax(1)  # the FER+ rule by hand: most votes, unknown (8) / not a face (9) dropped
    expected = np.where(top >= 8, -1, top)
    assert np.array_equal(ds.labels, expected[expected >= 0])
    assert ferplus.ferplus_majority is ferplus_majority  # training and audit share the one rule
    assert set(ds.labels.tolist()) == set(range(8))


def test_csv_default_groups_leave_out_soft_label_proportions_and_identifiers(tmp_path: Path):
    """A CSV like the shared expression sets' (soft_* rater proportions, a source path per row) is
    audited by its real group columns only; naming a skipped column in ``groups=`` audits it."""
    _png(tmp_path / "data" / "img" / "1.png")
    rows = "".join(f"img/1.png,happy,s{i % 4},{'female' if i % 2 else 'male'},0.{i},orig/{i}.jpg\n"
                   for i in range(12))
    p = _csv(tmp_path, "path,label,subject,gender,soft_happiness,source_path\n" + rows)
    ds = load_dataset(p)
    assert list(ds.groups) == ["gender"]
    assert ds.skipped_columns == {"soft_happiness": "label proportions, not a group",
                                  "source_path": "an identifier: a different value on every row"}
    assert ds.describe()["group_columns_skipped"] == ds.skipped_columns
    assert ds.subset(np.arange(3)).skipped_columns == ds.skipped_columns
    named = load_dataset(p, groups=["source_path", "gender"])
    assert set(named.groups) == {"source_path", "gender"} and named.skipped_columns == {}
    # fewer rows than IDENTIFIER_MIN_ROWS: a column of distinct values may be a real group
    short = load_dataset(_csv(tmp_path, "path,label,site\n" + "".join(f"img/1.png,happy,site{i}\n" for i in range(3))))
    assert list(short.groups) == ["site"]
