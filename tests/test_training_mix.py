"""Multi-source training (mien.training.expressions / mix / selection / warmstart): subject-disjoint
fixed splits, source-weighted epochs, the cross-domain selection rule, the warm start from the
shipped ONNX and the card of a mixed run."""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need the [train] extra (torch)")

from mien.labels import EXPRESSIONS  # noqa: E402
from mien.training import expressions, mix, selection  # noqa: E402
from mien.training.expressions import SOURCES, read_labels, split_of, subject_folds  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXPR = ROOT.parent / "shared" / "data" / "expressions"


def _shared_set(name: str) -> Path:
    path = EXPR / name / "labels.csv"
    if not path.is_file():
        pytest.skip(f"shared data absent: {path} (needs ../shared beside the checkout)")
    return path.parent


# ------------------------------------------------------------------------------------------ splits
def test_subject_folds_keep_every_subject_in_one_fold_and_are_fixed():
    subjects = np.array([f"s{k % 13}" for k in range(200)], dtype=object)
    folds = subject_folds(subjects, 3, seed=5)
    for s in set(subjects):
        assert len(set(folds[subjects == s])) == 1, s
    assert sorted(set(folds)) == [0, 1, 2]
    np.testing.assert_array_equal(folds, subject_folds(subjects, 3, seed=5))  # fixed by the seed
    # the rows' order does not matter: the same subject lands in the same fold
    perm = np.random.default_rng(0).permutation(len(subjects))
    np.testing.assert_array_equal(subject_folds(subjects[perm], 3, seed=5), folds[perm])


@pytest.mark.parametrize("name", [n for n, s in SOURCES.items() if s.folds > 1 and n != "muxspace"])
def test_real_sets_split_subject_disjoint_with_a_third_of_the_people_held_out(name):
    ls = read_labels(_shared_set(name))
    val = split_of(ls, SOURCES[name])
    assert all(ls.subjects), f"{name}: every row must name its subject"
    train_subjects, val_subjects = set(ls.subjects[~val]), set(ls.subjects[val])
    assert not train_subjects & val_subjects, f"{name}: performers in both training and validation"
    n = len(train_subjects | val_subjects)
    assert abs(len(val_subjects) - n / SOURCES[name].folds) <= 1
    # fixed: the same split on every call (seed derived from the set's name)
    np.testing.assert_array_equal(val, split_of(read_labels(_shared_set(name)), SOURCES[name]))


def test_taiwanese_validation_fold_holds_every_expression():
    ls = read_labels(_shared_set("taiwanese_chen2013"))
    val = split_of(ls, SOURCES["taiwanese_chen2013"])
    assert len(set(ls.subjects[val])) == 10 and val.sum() == 460
    held = set(ls.labels[val].tolist())
    assert held == set(ls.labels.tolist()) and len(held) == 7


def test_split_csvs_are_the_folds_training_reads(tmp_path):
    _shared_set("london_face_research_lab")
    counts = expressions.write_split_csvs(tmp_path, EXPR)
    for name in ("taiwanese_chen2013", "london_face_research_lab", "yale_faces"):
        parts = {}
        for part in ("train", "val"):
            with (tmp_path / f"{name}_{part}.csv").open() as f:
                parts[part] = list(csv.DictReader(f))
            assert len(parts[part]) == counts[name][part]
            assert all(Path(r["path"]).is_absolute() and Path(r["path"]).is_file() for r in parts[part][:5])
        assert not {r["subject"] for r in parts["train"]} & {r["subject"] for r in parts["val"]}
        ls = read_labels(EXPR / name)
        val = split_of(ls, SOURCES[name])
        assert [Path(r["path"]).name for r in parts["val"]] == [Path(p).name for p, v in zip(ls.paths, val) if v]


def test_soft_labels_are_the_raters_proportions_or_one_hot(tmp_path):
    root = tmp_path / "set"
    root.mkdir()
    (root / "labels.csv").write_text(
        "path,label,subject,soft_neutral,soft_happiness\n"
        "a.jpg,happiness,p1,0.25,0.75\n"
        "b.jpg,fear,p2,,\n")
    ls = read_labels(root)
    np.testing.assert_allclose(ls.soft[0, :2], [0.25, 0.75])
    assert ls.soft[1, EXPRESSIONS.index("fear")] == 1.0 and ls.soft.sum(1).tolist() == [1.0, 1.0]


# --------------------------------------------------------------------------------- source weights
def _pools():
    rng = np.random.default_rng(0)
    return [mix.Pool("big", rng.integers(0, 255, (1000, 48, 48), dtype=np.uint8),
                     np.eye(8, dtype=np.float32)[rng.integers(0, 2, 1000)], 0.6),
            mix.Pool("small", rng.integers(0, 255, (20, 48, 48), dtype=np.uint8),
                     np.eye(8, dtype=np.float32)[np.full(20, 4)], 0.4)]


def test_every_epoch_draws_each_source_by_its_share_not_its_size():
    pools = _pools()
    idx, src = mix.draw_epoch(pools, 500, np.random.default_rng(1))
    assert len(idx) == 500 and (src == 0).sum() == 300 and (src == 1).sum() == 200
    assert (idx[src == 1] >= 1000).all() and (idx[src == 0] < 1000).all()
    assert len(set(idx[src == 0].tolist())) == 300  # the big pool without replacement
    assert set(idx[src == 1].tolist()) <= set(range(1000, 1020))  # the small one oversampled


def test_mixed_prior_is_the_share_weighted_label_distribution():
    prior = mix.mixed_prior(_pools())
    assert prior[EXPRESSIONS.index("anger")] == pytest.approx(0.4, abs=1e-3)
    assert prior.sum() == pytest.approx(1.0) and (prior > 0).all()


def test_label_smoothing_applies_to_the_noisy_set_only():
    assert SOURCES["muxspace"].label_smoothing > 0 and SOURCES["taiwanese_chen2013"].label_smoothing == 0
    soft = mix._smooth(np.eye(8, dtype=np.float32)[[0]], 0.2)
    assert soft[0, 0] == pytest.approx(0.825) and soft.sum() == pytest.approx(1.0)


# ------------------------------------------------------------------------------------- selection
def test_balanced_accuracy_counts_missed_faces_as_errors():
    labels = np.array([0, 0, 1, 1])
    es = selection.EvalSet("x", labels, np.array([True, True, True, False]))
    logits = np.array([[5, 0], [5, 0], [0, 5]], dtype=float)
    pred = es.predictions(np.pad(logits, ((0, 0), (0, 6))))
    assert pred.tolist() == [0, 0, 1, -1]
    assert selection.balanced_accuracy(pred, labels) == pytest.approx(0.75)


def test_paired_bootstrap_replaces_only_on_a_clear_gain():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)
    sets = {"a": selection.EvalSet("a", labels, np.ones(400, bool), np.array([f"p{k % 40}" for k in range(400)]))}
    good = {"a": np.where(rng.random(400) < 0.8, labels, (labels + 1) % 4)}
    bad = {"a": np.where(rng.random(400) < 0.5, labels, (labels + 1) % 4)}
    assert selection.paired_bootstrap(bad, good, sets, n_resamples=200)["replace"]
    assert not selection.paired_bootstrap(good, bad, sets, n_resamples=200)["replace"]
    assert not selection.paired_bootstrap(good, good, sets, n_resamples=200)["replace"]


def test_the_prior_strength_is_chosen_by_the_selection_score():
    # a network biased towards class 0 by the training prior: the stronger correction wins
    labels = np.repeat(np.arange(4), 50)
    logits = np.eye(8)[labels] * 1.0
    logits[:, 0] += 1.5  # everything leans to class 0
    sets = {"s": selection.EvalSet("s", labels, np.ones(200, bool))}
    prior = np.full(8, 0.02)
    prior[0] = 0.86
    op = selection.choose_operating_point({"s": logits}, sets, prior, n_resamples=300)
    rows = {r["strength"]: r["score"] for r in op["prior_strength_table"]}
    assert rows[0.0] < rows[op["prior_strength"]]
    assert op["prior_strength"] > 0


def test_a_flat_score_keeps_the_least_prior_adjustment():
    """When a stronger correction scores higher only within the bootstrap's noise, the smallest
    strength that the best does not clearly beat is kept, not the top of a noisy curve."""
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(4), 60)
    logits = np.eye(8)[labels] * 2.0 + rng.normal(0, 1.2, (240, 8))
    logits[:, 0] += 0.5  # a slight lean to class 0: a correction helps a little, within the noise
    sets = {"s": selection.EvalSet("s", labels, np.ones(240, bool))}
    prior = np.full(8, 0.05)
    prior[0] = 0.65
    op = selection.choose_operating_point({"s": logits}, sets, prior, n_resamples=300)
    rows = {r["strength"]: r["score"] for r in op["prior_strength_table"]}
    assert max(rows.values()) - rows[op["prior_strength"]] < 0.05
    assert op["prior_strength"] < op["prior_strength_best"]
    assert op["prior_strength"] == 0.0


# ------------------------------------------------------------------------------------- warm start
def test_warm_start_reproduces_the_shipped_onnx():
    from mien.expression import ExpressionModel
    from mien.training.net import ExpressionNet
    from mien.training.train import Deployable, Standardize
    from mien.training.warmstart import load_onnx_into

    model = ExpressionModel.load()
    rng = np.random.default_rng(0)
    cal = rng.integers(0, 256, (64, 48, 48), dtype=np.uint8)
    net = ExpressionNet(32)
    load_onnx_into(net, model.onnx_path, Standardize()(torch.from_numpy(cal).float().unsqueeze(1)))
    probe = rng.integers(0, 256, (16, 48, 48), dtype=np.uint8)
    with torch.no_grad():
        ours = Deployable(net).eval()(torch.from_numpy(probe).float().unsqueeze(1)).numpy()
    np.testing.assert_allclose(ours, model.predict_network_logits(probe), atol=1e-3)
    with pytest.raises(ValueError, match="does not fit"):
        load_onnx_into(ExpressionNet(8), model.onnx_path, torch.zeros(2, 1, 48, 48))


def test_warm_start_with_another_sha256_is_refused(tmp_path):
    from mien.expression import ExpressionModel

    path = ExpressionModel.load().onnx_path
    cfg = mix.MixConfig(warm_start=str(path), warm_start_sha256="0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        mix.warm_start_file(cfg)


# --------------------------------------------------------------------------- a toy run and its card
def _toy_sets(root: Path, cache: Path) -> None:
    """Four tiny sets named as the real ones, with crops cached as the crops command writes them."""
    rng = np.random.default_rng(3)
    for name in SOURCES:
        d = root / name
        d.mkdir(parents=True)
        n = 24
        labels = rng.integers(0, 4, n)
        rows = ["path,label,subject,gender"]
        rows += [f"images/{i}.jpg,{EXPRESSIONS[c]},{'' if name == 'muxspace' else f'p{i % 6}'},{'fm'[i % 2]}"
                 for i, c in enumerate(labels)]
        (d / "labels.csv").write_text("\n".join(rows) + "\n")
        crops = rng.integers(0, 60, (n, 48, 48)).astype(np.uint8)
        for i, c in enumerate(labels):
            y, x = divmod(int(c), 2)
            crops[i, 8 + 20 * y: 20 + 20 * y, 8 + 20 * x: 20 + 20 * x] = 220
        found = np.ones(n, bool)
        found[0] = False  # one face the detector missed
        cache.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache / f"{name}.npz", crops=crops, found=found,
                            paths=np.array([f"images/{i}.jpg" for i in range(n)]), template=np.zeros((5, 2)))


@pytest.mark.slow
def test_a_mixed_run_selects_across_domains_and_its_card_says_what_it_trained_on(tmp_path, monkeypatch):
    from test_training import _fake_ferplus

    from mien.training import package, recipe

    _toy_sets(tmp_path / "expr", tmp_path / "cache")
    data = _fake_ferplus(tmp_path / "fer.npz", n_train=128, n_val=32)
    toy = {"epochs": 3, "stop_after": 2, "lr": 0.01, "epoch_samples": 128, "batch_size": 32, "threads": 1, "warm_start": "",
           "warm_start_sha256": "", "width": 4}
    cfg = mix.MixConfig(data=str(data), out=str(tmp_path / "runs" / "mix" / "student"),
                        expressions_root=str(tmp_path / "expr"), crop_cache=str(tmp_path / "cache"), **toy)
    summary = mix.train_mix(cfg)
    run = Path(cfg.out)
    logged = json.loads((run / "config.json").read_text())
    assert logged["sources"]["taiwanese_chen2013"]["no_face"] == 1
    assert logged["epochs_run"] == 3 and logged["epochs_completed"] == 2  # a 3-epoch schedule, stopped after 2
    assert len((run / "train_log.jsonl").read_text().splitlines()) == 2
    assert set(summary["balanced_accuracy"]) >= {"ferplus_public", "taiwanese_chen2013_val", "ferplus_private"}
    assert summary["selection_rule"].startswith("mean balanced accuracy over ferplus_public")
    assert "ferplus_private" not in logged["selection_sets"]  # report only
    assert summary["onnx_max_abs_diff"] < 1e-4
    monkeypatch.setitem(recipe.PRESETS, "mix", {**recipe.PRESETS["mix"], "student": toy})
    card = package.build_card(run, "expression.onnx", version="2.0", preset="mix")
    assert card["name"] == "mien-mix-vgg-2.0"
    assert "taiwanese_chen2013" in card["training"]["data"] and "subject-disjoint" in card["training"]["data"]
    assert "JPEG" in card["training"]["augmentation"]
    assert card["training"]["command"].startswith("python -m mien.training.expressions crops")
    assert "selection sets pooled" in card["temperature_fitted_on"]
    with pytest.raises(ValueError, match="preset 'mix' trains"):
        monkeypatch.setitem(recipe.PRESETS, "mix", {**recipe.PRESETS["mix"], "student": {**toy, "lr": 0.5}})
        package.build_card(run, "expression.onnx", version="2.0", preset="mix")
    assert replace(cfg, lr=0.5).lr == 0.5


# ----------------------------------------------------------------------------------------- teacher
def test_teacher_blend_keeps_the_labels_contempt_and_skips_faces_the_teacher_missed():
    c = EXPRESSIONS.index("contempt")
    soft = np.zeros((3, 8), np.float32)
    soft[0, EXPRESSIONS.index("anger")] = 1.0
    soft[1, c], soft[1, 0] = 0.5, 0.5
    soft[2, EXPRESSIONS.index("fear")] = 1.0
    teacher = np.zeros((3, 8), np.float32)
    teacher[:, EXPRESSIONS.index("disgust")] = 1.0  # face-api says disgust everywhere, never contempt
    out = mix.blend_teacher(soft, teacher, np.array([True, True, False]), 0.25)
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-6)
    assert out[0, EXPRESSIONS.index("anger")] == pytest.approx(0.75)
    assert out[0, EXPRESSIONS.index("disgust")] == pytest.approx(0.25)
    assert out[1, c] == pytest.approx(0.5)  # the label's contempt is not diluted by a 7-class teacher
    assert out[1, EXPRESSIONS.index("disgust")] == pytest.approx(0.125)
    np.testing.assert_array_equal(out[2], soft[2])  # no face for the teacher: the label alone
    np.testing.assert_array_equal(mix.blend_teacher(soft, teacher, np.ones(3, bool), 0.0), soft)


def test_a_teacher_file_with_another_sha256_is_refused(tmp_path):
    path = tmp_path / "teacher.npz"
    np.savez(path, labels=np.array(EXPRESSIONS))
    cfg = mix.MixConfig(teacher=str(path), teacher_sha256="0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        mix.load_teacher(cfg)
    with pytest.raises(FileNotFoundError, match="faceapi_eval"):
        mix.load_teacher(mix.MixConfig(teacher=str(tmp_path / "absent.npz")))


def test_a_teacher_file_written_again_keeps_its_pin(tmp_path):
    """np.savez stamps the zip members with the time: the pin is over the arrays, so the recipe's
    teacher hash holds when scripts/faceapi_eval.py writes the same predictions on another day."""
    import hashlib
    import zipfile

    arrays = {"labels": np.array(EXPRESSIONS), "ferplus_probs": np.eye(8, dtype=np.float32)}
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez_compressed(a, **arrays)
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:  # the same arrays, another timestamp
        for name in ("ferplus_probs", "labels"):
            info = zipfile.ZipInfo(name + ".npy", date_time=(2001, 2, 3, 4, 5, 6))
            buf = __import__("io").BytesIO()
            np.save(buf, arrays[name])
            z.writestr(info, buf.getvalue())
    assert hashlib.sha256(a.read_bytes()).digest() != hashlib.sha256(b.read_bytes()).digest()
    pin = mix.npz_content_sha256(a)
    assert mix.pinned_file(b, pin, "teacher file", "") == pin
    assert mix.pinned_file(a, hashlib.sha256(a.read_bytes()).hexdigest(), "teacher file", "")  # old pins
    arrays["ferplus_probs"][0, 0] = 0.5  # one changed number is another file
    np.savez_compressed(b, **arrays)
    with pytest.raises(ValueError, match="SHA-256"):
        mix.pinned_file(b, pin, "teacher file", "")


def test_a_preset_takes_its_teacher_as_the_other_instruction_set_writes_it_and_nothing_else(tmp_path, monkeypatch, capsys):
    """scripts/faceapi_eval.py writes one of two sets of arrays by the CPU (AVX2 or AVX-512): a
    preset pinned to one runs on the other's, its run recording the one it read, and the card's
    preset check takes that run; any other teacher file is still refused by the run's own check."""
    from mien.training import package, recipe

    assert recipe.SAME_TEACHER[recipe.SAME_TEACHER[recipe.FACEAPI_TEACHER_SHA256]] == recipe.FACEAPI_TEACHER_SHA256
    path = tmp_path / "teacher.npz"
    np.savez(path, labels=np.array(EXPRESSIONS), ferplus_probs=np.eye(8, dtype=np.float32))
    here, pinned = mix.npz_content_sha256(path), "a" * 64
    monkeypatch.setattr(recipe, "SAME_TEACHER", {pinned: here, here: pinned})
    settings = {"teacher": str(path), "teacher_sha256": pinned, "lr": 0.005}
    got = recipe.with_this_cpus_teacher(settings)
    assert got == {**settings, "teacher_sha256": here} and settings["teacher_sha256"] == pinned
    assert "instruction set" in capsys.readouterr().out
    assert recipe.with_this_cpus_teacher({**settings, "teacher_sha256": "b" * 64})["teacher_sha256"] == "b" * 64
    # a preset run goes through the swap: the run is configured with the hash of the file it reads
    seen: list[mix.MixConfig] = []
    monkeypatch.setattr(mix, "train_mix", lambda cfg: seen.append(cfg) or {})
    recipe.run_mix({"student": {**settings, "epochs": 1}}, recipe.TrainConfig(out=str(tmp_path / "run")), 0.0)
    assert seen[0].teacher_sha256 == here
    np.savez(path, labels=np.array(EXPRESSIONS), ferplus_probs=2 * np.eye(8, dtype=np.float32))  # another file
    assert recipe.with_this_cpus_teacher(settings) == settings
    with pytest.raises(ValueError, match="SHA-256"):
        mix.load_teacher(mix.MixConfig(teacher=str(path), teacher_sha256=pinned))
    # the card names the preset for a run that read the other instruction set's arrays, and no other
    monkeypatch.setitem(recipe.PRESETS, "toy", {"mix": True, "student": {"teacher": str(path), "teacher_sha256": pinned}})
    package.check_preset(tmp_path, {"teacher": str(path), "teacher_file_sha256": here}, "toy")
    with pytest.raises(ValueError, match="teacher"):
        package.check_preset(tmp_path, {"teacher": str(path), "teacher_file_sha256": "c" * 64}, "toy")


def test_refinishing_a_run_whose_warm_start_has_since_changed_is_refused(tmp_path):
    """A run warm-started from "shipped" must not be finished again after a newer model shipped:
    its warm-start score (the floor of the selection) would be another model's."""
    run = tmp_path / "run"
    run.mkdir()
    cfg = mix.MixConfig(out=str(run), warm_start="shipped")
    config = {**asdict(cfg), "warm_start_file_sha256": "0" * 64}
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="put that file back"):
        mix.finalize(run, stopped=False)


def test_the_posed_label_is_blended_into_raters_votes_and_leaves_one_hot_labels_alone():
    votes = np.array([[0.1, 0.0, 0.2, 0.6, 0.0, 0.0, 0.1, 0.0],   # posed fear the raters read as sadness
                      [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], np.float32)
    posed = np.array([EXPRESSIONS.index("fear"), EXPRESSIONS.index("neutral")])
    out = mix.with_posed_label(votes, posed, 0.5)
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-6)
    assert out[0].argmax() == EXPRESSIONS.index("fear")
    assert out[0, EXPRESSIONS.index("fear")] == pytest.approx(0.55)
    np.testing.assert_array_equal(out[1], votes[1])
    assert mix.with_posed_label(votes, posed, 0.0) is votes


def test_the_card_says_which_taiwanese_labels_a_mix_run_trained_on():
    """The card's targets line follows posed_label_weight, and the shipped card's matches the run
    that made it (its training log's config)."""
    from mien.training import package

    assert "raters' vote proportions" in package._mix_targets(0.0)
    assert "0.5 x votes + 0.5 x posed label" in package._mix_targets(0.5)
    assert "posed labels (one-hot; its raters' votes not used)" in package._mix_targets(1.0)
    models = Path(__file__).resolve().parents[1] / "src" / "mien" / "models"
    card = json.loads((models / "expression.json").read_text())
    config = json.loads((models / "expression_training.json").read_text())["config"]
    assert card["training"]["targets"] == package._mix_targets(float(config.get("posed_label_weight") or 0.0))


def test_source_shares_come_from_the_command_line():
    got = mix._shares("taiwanese_chen2013=0.16,muxspace=0.11,london_face_research_lab=0.08,yale_faces=0.03")
    assert got == {"taiwanese_chen2013": 0.16, "muxspace": 0.11, "london_face_research_lab": 0.08, "yale_faces": 0.03}
    import argparse

    for bad in ("taiwanese_chen2013=0.16", "taiwanese_chen2013:0.16,muxspace=0.1", "nosuchset=0.1"):
        with pytest.raises(argparse.ArgumentTypeError):
            mix._shares(bad)
