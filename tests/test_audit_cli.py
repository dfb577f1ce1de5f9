"""The evaluate / calibrate / evaluate-detector subcommands, run with a fake model and detector."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from mien.audit import cli
from mien.errors import InputError
from mien.faces import Faces
from mien.labels import EXPRESSIONS

ROOT = Path(__file__).resolve().parents[1]


class FakeModel:
    """Pixel value v -> logit 4 on class v // 10 (0..7)."""

    input_size = 8
    labels = EXPRESSIONS
    temperature = 1.0
    name = "fake"
    sha256 = "f" * 64

    def __init__(self, onnx_path: Path) -> None:
        self.onnx_path = onnx_path
        self.card = {
            "name": "fake",
            "file": "fake.onnx",
            "sha256": self.sha256,
            "temperature": 1.0,
            "labels": list(EXPRESSIONS),
        }

    def prepare_crops(self, images):
        return np.stack([cv2.resize(im if im.ndim == 2 else im[..., 0], (8, 8)) for im in images])

    def predict_logits(self, crops):
        return np.eye(8)[(crops[:, 4, 4] // 10) % 8] * 4.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mien")
    cli.register(p.add_subparsers(dest="command", required=True))
    return p


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return args.func(args)


@pytest.fixture()
def fake_model(monkeypatch, tmp_path: Path):
    model = FakeModel(tmp_path / "models" / "fake.onnx")
    monkeypatch.setattr(cli, "_load_model", lambda card, prior_strength=None: model)
    return model


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    root = tmp_path / "faces"
    for label, values in {"happy": [10, 10, 0], "neutral": [0, 0], "surprise": [20]}.items():
        (root / label).mkdir(parents=True)
        for k, v in enumerate(values):
            cv2.imwrite(str(root / label / f"{k}.png"), np.full((12, 12, 3), v, np.uint8))
    return root


def test_register_adds_three_subcommands_with_func():
    p = _parser()
    for argv in (["evaluate", "x"], ["calibrate", "x", "-o", "c.json"], ["evaluate-detector", "d"]):
        args = p.parse_args(argv)
        assert callable(args.func)
    with pytest.raises(SystemExit):
        p.parse_args(["evaluate", "x", "--crops", "--full-pipeline"])  # mutually exclusive


def test_evaluate_writes_json_html_and_card(tmp_path: Path, data: Path, fake_model, capsys):
    out = tmp_path / "out"
    rc = _run(
        [
            "evaluate",
            str(data),
            "--crops",
            "--bootstrap",
            "50",
            "-o",
            str(out / "ev.json"),
            "--html",
            str(out / "ev.html"),
            "--write-card",
            str(out / "card.json"),
        ]
    )
    assert rc == 0
    ev = json.loads((out / "ev.json").read_text())
    assert ev["mode"] == "crops" and ev["bootstrap"]["n_resamples"] == 50
    assert ev["metrics"]["accuracy"]["value"] == pytest.approx(5 / 6)
    assert (out / "ev.html").read_text().startswith("<!DOCTYPE html>")
    card = json.loads((out / "card.json").read_text())
    assert card["evaluation"]["metrics"]["accuracy"] == ev["metrics"]["accuracy"]
    assert (out / "card.md").read_text().startswith("# Model card: fake")
    assert "accuracy" in capsys.readouterr().out


def test_evaluate_compare(tmp_path: Path, data: Path, fake_model, capsys):
    a = tmp_path / "a.json"
    _run(["evaluate", str(data), "--crops", "--bootstrap", "30", "-o", str(a)])
    assert (
        _run(
            [
                "evaluate",
                "--compare",
                str(a),
                str(a),
                "--bootstrap",
                "30",
                "-o",
                str(tmp_path / "c.json"),
                "--html",
                str(tmp_path / "c.html"),
            ]
        )
        == 0
    )
    comp = json.loads((tmp_path / "c.json").read_text())
    assert comp["bootstrap"]["method"] == "paired"
    assert comp["metrics"]["accuracy"]["difference"]["value"] == 0.0
    assert "B - A" in capsys.readouterr().out


def test_evaluate_input_errors(data: Path, tmp_path: Path):
    with pytest.raises(InputError, match="either DATA or --compare"):
        _run(["evaluate", str(data), "--compare", "a.json", "b.json"])
    with pytest.raises(InputError, match="give DATA"):
        _run(["evaluate"])
    with pytest.raises(InputError, match="positive"):
        _run(["evaluate", str(data), "--bootstrap", "0"])


def test_evaluate_stops_when_no_image_can_be_read_and_warns_when_some_cannot(
        data: Path, fake_model, tmp_path: Path, capsys):
    """A CSV whose paths are all wrong would score 0.0 with zero-width intervals, which reads as
    a verdict on the model: it exits 2 with the first reason instead. Some unreadable images stay
    in the numbers as errors, with a warning that says so."""
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("path,label\nnope.png,happiness\nalso_nope.png,neutral\n")
    with pytest.raises(InputError, match=r"none of the 2 images in .*wrong.csv could be read \(first: .*nope.png"):
        _run(["evaluate", str(wrong), "--crops", "--bootstrap", "20"])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    half = tmp_path / "half.csv"
    half.write_text(f"path,label\n{data / 'happy' / '0.png'},happiness\nbroken.png,neutral\n")
    assert _run(["evaluate", str(half), "--crops", "--bootstrap", "20"]) == 0
    captured = capsys.readouterr()
    assert "warning: 1 of 2 images" in captured.err and "broken.png" in captured.err
    assert "2 items, 1 scored (0 no face, 1 unreadable" in captured.out


def test_full_pipeline_is_the_default_for_folders(data: Path, fake_model, monkeypatch, tmp_path: Path):
    calls = []
    model = fake_model

    class Analyzer:  # stands in for mien.pipeline.Analyzer(model=, detector=None)
        def __init__(self, model, detector):
            assert model is fake_model and detector is None
            self.detector = SimpleNamespace(score_threshold=0.5, min_face_px=0.0, max_side=960)

        def classify_image(self, image):
            calls.append(image.shape)
            if image[0, 0, 0] == 20:
                return SimpleNamespace(face_found=False, probs=None, logits=None, box=None, n_faces=0)
            return SimpleNamespace(
                face_found=True,
                probs=None,
                logits=model.predict_logits(model.prepare_crops([image]))[0],
                box=None,
                n_faces=1,
            )

    import mien.audit.evaluate

    monkeypatch.setattr(mien.audit.evaluate, "Analyzer", Analyzer)
    out = tmp_path / "fp.json"
    assert _run(["evaluate", str(data), "--bootstrap", "20", "-o", str(out)]) == 0
    ev = json.loads(out.read_text())
    assert ev["mode"] == "full_pipeline" and len(calls) == 6
    assert ev["detector"]["score_threshold"] == 0.5
    assert ev["coverage"]["n_no_face"] == 1
    assert ev["metrics"]["accuracy"]["value"] == pytest.approx(4 / 6)
    assert ev["metrics_found_faces_only"]["accuracy"]["value"] == pytest.approx(4 / 5)


def test_calibrate_writes_a_loadable_user_card(tmp_path: Path, data: Path, fake_model, capsys):
    out = tmp_path / "user" / "card.json"
    assert _run(["calibrate", str(data), "--crops", "-o", str(out)]) == 0
    card = json.loads(out.read_text())
    # 5 of 6 right with logit margin 4: the fitted T makes p(top) close to 5/6
    assert card["temperature"] != 1.0 and card["calibration"]["temperature_before"] == 1.0
    assert card["calibration"]["data"]["n"] == 6 and card["calibration"]["data"]["format"] == "folder"
    assert card["calibration"]["nll_after"] < card["calibration"]["nll_before"]
    assert Path(card["file"]).is_absolute() and card["file"].endswith("fake.onnx")
    assert "--model-card" in capsys.readouterr().out


def test_calibrate_fit_prior_strength_needs_a_training_prior(tmp_path: Path, data: Path, fake_model):
    with pytest.raises(InputError, match="training_prior"):
        _run(["calibrate", str(data), "--crops", "--fit-prior-strength", "-o", str(tmp_path / "c.json")])
    assert not (tmp_path / "c.json").exists()


def test_evaluate_detector_command(tmp_path: Path, monkeypatch, capsys):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((64, 64, 3), np.uint8))
    (tmp_path / "annotations" / "a.xml").write_text(
        "<annotation><filename>a.png</filename><object><name>face</name><bndbox><xmin>10</xmin>"
        "<ymin>10</ymin><xmax>40</xmax><ymax>40</ymax></bndbox></object></annotation>"
    )

    class Detector:
        def __init__(self, score_threshold=0.5, **kw):
            self.score_threshold = score_threshold

        def detect(self, image):
            return Faces(np.array([[10, 10, 40, 40.0]]), np.array([0.99]), np.zeros((1, 5, 2)))

    import mien.detection

    monkeypatch.setattr(mien.detection, "FaceDetector", Detector)
    out = tmp_path / "det.json"
    assert (
        _run(
            [
                "evaluate-detector",
                str(tmp_path),
                "--bootstrap",
                "10",
                "-o",
                str(out),
                "--html",
                str(tmp_path / "det.html"),
            ]
        )
        == 0
    )
    r = json.loads(out.read_text())
    assert r["ap"]["value"] == 1.0 and r["detector"]["min_score"] == cli.DETECTOR_MIN_SCORE
    assert "AP@0.5 1.000" in capsys.readouterr().out
    with pytest.raises(InputError, match="min-score"):
        _run(["evaluate-detector", str(tmp_path), "--curve-min-score", "0.9", "--detect-threshold", "0.5"])


def test_the_cross_domain_audit_script_builds_commands_the_cli_accepts(tmp_path: Path, monkeypatch):
    """scripts/audit_sets.py writes the card's tables through `mien evaluate`: its commands must
    parse with today's flags (a renamed flag once broke it silently until the next audit)."""
    import subprocess

    from conftest import load_module

    from mien.cli import _parse, build_parser

    audit_sets = load_module("scripts/audit_sets.py")
    commands: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: commands.append(cmd))
    audit_sets.run(Path("card.json"), tmp_path, list(audit_sets.SETS), 0.5)
    assert len(commands) == len(audit_sets.SETS)
    for cmd in commands:
        argv = cmd[cmd.index("evaluate"):]
        args = _parse(build_parser(argv), argv)  # argparse exits (SystemExit 2) on an unknown flag
        assert args.command == "evaluate" and str(args.output).endswith(".json")


def test_evaluate_says_which_csv_columns_it_does_not_audit_as_groups(tmp_path: Path, fake_model, capsys):
    img = tmp_path / "0.png"
    cv2.imwrite(str(img), np.full((12, 12, 3), 10, np.uint8))
    rows = "".join(f"0.png,happy,{g},1.0,src/{i}.jpg\n" for i, g in enumerate(["a", "b"] * 6))
    (tmp_path / "labels.csv").write_text("path,label,site,soft_happiness,source_path\n" + rows)
    out = tmp_path / "e.json"
    assert _run(["evaluate", str(tmp_path / "labels.csv"), "--crops", "--bootstrap", "20", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "group site:" in text and "group soft_happiness" not in text and "group source_path" not in text
    assert ("not audited as groups (name them in --groups to audit them): soft_happiness (label proportions, "
            "not a group); source_path (an identifier: a different value on every row)") in text
    ev = json.loads(out.read_text())
    assert list(ev["groups"]) == ["site"]
    assert set(ev["dataset"]["group_columns_skipped"]) == {"soft_happiness", "source_path"}
    from mien.audit.html import render_evaluation_html

    page = render_evaluation_html(ev)
    assert "columns not audited as groups" in page and "source_path (an identifier" in page
