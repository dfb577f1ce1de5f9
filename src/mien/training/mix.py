"""Fine-tune the expression network on FER+ Training plus the four sets in ../shared/data/expressions.

    python -m mien.training.expressions crops            # once: engine-aligned crops under runs/
    python -m mien.training.mix --out runs/mix --time-budget-s 3000

Starts from the shipped model's weights (``--warm-start``, default the packaged ONNX), and trains
on epochs drawn by source: every epoch holds ``epoch_samples`` faces, a fixed share from each source
(:data:`mien.training.expressions.SOURCES`, FER+ the rest), so the small posed sets weigh far more
than their size. Soft targets throughout: FER+ votes, the Taiwanese raters' proportions, one-hot
labels elsewhere, smoothed for the single-annotator muxspace set.

Selection (every epoch, EMA and raw weights): mean balanced accuracy over FER+ PublicTest and the
validation folds of the Taiwanese and London sets (:mod:`mien.training.selection`); then the
temperature (NLL) and the class-prior strength (the smallest the best does not beat by the paired
bootstrap, :func:`mien.training.selection.choose_operating_point`). PrivateTest and the other held-out
parts are predicted once at the end, for the record.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mien.labels import EXPRESSIONS
from mien.training import cli_errors
from mien.training.expressions import CACHE_DIR, EXPRESSIONS_ROOT, FERPLUS_SHARE, SOURCES, load_source
from mien.training.ferplus import load_ferplus
from mien.training.net import build_net
from mien.training.selection import EvalSet, choose_operating_point, paired_bootstrap, selection_score
from mien.training.train import (
    OPSET,
    Deployable,
    Standardize,
    TrainConfig,
    _autocast,
    augment,
    export_verified_onnx,
    predict_logits,
    resolve_device,
    resolve_precision,
    seed_everything,
    soft_ce,
)

#: the sets whose validation part selects the model (FER+ PublicTest always does)
SELECTION_SETS = tuple(n for n, s in SOURCES.items() if s.selects)


@dataclass
class MixConfig(TrainConfig):
    out: str = "runs/mix"
    epochs: int = 40
    lr: float = 0.02
    threads: int = 1  # on a busy 2-core machine one thread ran 3x faster than two
    batch_size: int = 128
    warm_start: str = "shipped"  # "shipped": the packaged ONNX; a path to another exported ONNX; "" from scratch
    warm_start_sha256: str = ""  # when set, the warm-start ONNX must have this SHA-256
    epoch_samples: int = 16384
    expressions_root: str = str(EXPRESSIONS_ROOT)
    crop_cache: str = str(CACHE_DIR)
    ferplus_share: float = FERPLUS_SHARE
    source_shares: dict = field(default_factory=lambda: {n: s.share for n, s in SOURCES.items()})
    blur_p: float = 0.2
    noise_p: float = 0.15
    jpeg_p: float = 0.3
    stop_after: int = 0  # > 0: stop after this many epochs of the ``epochs``-long schedule (repeats a
    # run that its time budget stopped early)
    ema_decay: float = 0.99  # a fine-tune of a few hundred steps: a short window
    score_raw: bool = True  # also score the raw (non-EMA) weights every epoch (doubles the scoring time)
    # face-api's FaceExpressionNet as a distillation teacher (training only; scripts/faceapi_eval.py
    # writes the file): each source's soft labels become (1 - w) * labels + w * teacher, per source
    teacher: str = ""  # path to teacher_probs.npz; "" no teacher
    teacher_sha256: str = ""  # when set, the teacher file must have this SHA-256
    teacher_ferplus: float = 0.0
    teacher_muxspace: float = 0.0
    teacher_posed: float = 0.0  # the Taiwanese, London and Yale sets
    # Where a set's soft labels are raters' votes (the Taiwanese set), blend the posed label back in:
    # (1 - w) * votes + w * one-hot(posed). The posed label is what mien is scored against, and the
    # raters' top choice agrees with it on 78% of the photos (fear: 9-20%), so votes alone teach the
    # network to read posed fear as the raters do
    posed_label_weight: float = 0.0


def domain_augment(x: torch.Tensor, cfg: MixConfig, g: torch.Generator, rng: np.random.Generator) -> torch.Tensor:
    """On top of :func:`mien.training.train.augment`: Gaussian blur (defocus, motion-free), sensor
    noise and JPEG re-compression at quality 25-90 (web and video frames)."""
    n, dev = x.shape[0], x.device
    if cfg.blur_p > 0:
        sigma = 0.5 + 1.0 * float(torch.rand(1, generator=g, device=dev))
        k = torch.arange(-2, 3, device=dev, dtype=x.dtype)
        ker = torch.exp(-(k ** 2) / (2 * sigma ** 2))
        ker = ker / ker.sum()
        blurred = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="replicate"), ker.view(1, 1, 1, 5))
        blurred = F.conv2d(F.pad(blurred, (0, 0, 2, 2), mode="replicate"), ker.view(1, 1, 5, 1))
        pick = torch.rand(n, generator=g, device=dev) < cfg.blur_p
        x = torch.where(pick.view(n, 1, 1, 1), blurred, x)
    if cfg.noise_p > 0:
        amp = 2 + 8 * torch.rand(n, 1, 1, 1, generator=g, device=dev)
        noisy = x + amp * torch.randn(x.shape, generator=g, device=dev)
        pick = torch.rand(n, generator=g, device=dev) < cfg.noise_p
        x = torch.where(pick.view(n, 1, 1, 1), noisy, x).clamp(0, 255)
    if cfg.jpeg_p > 0:
        import cv2

        picked = np.flatnonzero(rng.random(n) < cfg.jpeg_p)
        if len(picked):
            imgs = x[picked, 0].round().clamp(0, 255).to(torch.uint8).cpu().numpy()
            for j, img in zip(picked, imgs):
                ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 91))])
                if ok:
                    x[j, 0] = torch.from_numpy(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)).to(x)
    return x


@dataclass
class Pool:
    """Training faces of one source."""

    name: str
    pixels: np.ndarray  # uint8 (n, 48, 48)
    soft: np.ndarray  # float32 (n, 8)
    share: float


def _smooth(soft: np.ndarray, eps: float) -> np.ndarray:
    return ((1 - eps) * soft + eps / soft.shape[1]).astype(np.float32)


def npz_content_sha256(path: Path) -> str:
    """SHA-256 over an ``.npz`` file's arrays (names in sorted order, dtype, shape, bytes), not its
    zip container: ``np.savez`` stamps every member with the time it was written, so the same
    arrays written twice have different file hashes but the same content hash."""
    import hashlib

    h = hashlib.sha256()
    with np.load(path, allow_pickle=False) as z:
        for name in sorted(z.files):
            a = np.ascontiguousarray(z[name])
            h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def pinned_file(path: Path, sha256: str, what: str, hint: str) -> str:
    """The SHA-256 of ``path``, checked against ``sha256`` when that is set. For an ``.npz`` it is
    :func:`npz_content_sha256` (a pin of the file's own bytes is accepted too)."""
    import hashlib

    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found ({hint})")
    if path.suffix == ".npz":
        digest = npz_content_sha256(path)
        if sha256 and sha256 != digest and hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
            return sha256
    else:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if sha256 and digest != sha256:
        raise ValueError(f"{what} {path} has SHA-256 {digest}, not {sha256}")
    return digest


def with_posed_label(soft: np.ndarray, labels: np.ndarray, w: float) -> np.ndarray:
    """``(1 - w) * soft + w * one_hot(labels)``: unchanged where the soft labels are one-hot already."""
    if w <= 0:
        return soft
    onehot = np.eye(soft.shape[1], dtype=np.float32)[labels]
    return ((1 - w) * soft + w * onehot).astype(np.float32)


def teacher_weight(cfg: MixConfig, source: str) -> float:
    return {"ferplus": cfg.teacher_ferplus, "muxspace": cfg.teacher_muxspace}.get(source, cfg.teacher_posed)


def blend_teacher(soft: np.ndarray, teacher: np.ndarray, usable: np.ndarray, w: float) -> np.ndarray:
    """``(1 - w) * soft + w * teacher`` on the rows where the teacher saw a face. face-api has no
    contempt class: the label's contempt mass is kept and the teacher fills the rest."""
    if w <= 0:
        return soft
    c = EXPRESSIONS.index("contempt")
    t = teacher.astype(np.float64).copy()
    t[:, c] = 0.0
    t = t / np.maximum(t.sum(1, keepdims=True), 1e-12) * (1.0 - soft[:, c:c + 1])
    t[:, c] = soft[:, c]
    out = soft.astype(np.float64).copy()
    out[usable] = (1 - w) * soft[usable] + w * t[usable]
    return (out / out.sum(1, keepdims=True)).astype(np.float32)


def load_teacher(cfg: MixConfig) -> dict[str, Any] | None:
    if not cfg.teacher:
        return None
    path = Path(cfg.teacher)
    digest = pinned_file(path, cfg.teacher_sha256, "teacher file", "scripts/faceapi_eval.py writes it")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files} | {"sha256": digest}


def load_mix(cfg: MixConfig):
    """FER+ and every expression set: the training pools, the selection sets (with their logits'
    inputs) and the report-only parts."""
    fer = load_ferplus(cfg.data)
    teacher = load_teacher(cfg)
    fer_soft = fer.train.soft
    if teacher is not None and cfg.teacher_ferplus > 0:
        row = {int(i): k for k, i in enumerate(teacher["ferplus_index"])}
        pick = np.array([row.get(int(i), -1) for i in fer.train.index])
        probs = teacher["ferplus_probs"][np.maximum(pick, 0)]
        fer_soft = blend_teacher(fer_soft, probs, pick >= 0, cfg.teacher_ferplus)
    pools = [Pool("ferplus", fer.train.pixels, fer_soft, cfg.ferplus_share)]
    selection: dict[str, tuple[EvalSet, np.ndarray]] = {
        "ferplus_public": (EvalSet("ferplus_public", fer.public_test.majority,
                                   np.ones(len(fer.public_test), bool)), fer.public_test.pixels)}
    report: dict[str, tuple[EvalSet, np.ndarray]] = {
        "ferplus_private": (EvalSet("ferplus_private", fer.private_test.majority,
                                    np.ones(len(fer.private_test), bool)), fer.private_test.pixels)}
    counts: dict[str, dict] = {}
    for name, spec in SOURCES.items():
        src = load_source(name, Path(cfg.expressions_root), Path(cfg.crop_cache))
        tr, va = src.part(False), np.flatnonzero(src.val)
        ls = src.labels_set
        soft = with_posed_label(ls.soft[tr], ls.labels[tr], cfg.posed_label_weight)
        soft = _smooth(soft, spec.label_smoothing)
        w = teacher_weight(cfg, name)
        if teacher is not None and w > 0:
            if teacher[f"{name}__path"].tolist() != ls.paths:
                raise ValueError(f"teacher file rows do not match {name}/labels.csv; rebuild it")
            soft = blend_teacher(soft, teacher[f"{name}__probs"][tr], teacher[f"{name}__face_found"][tr], w)
        pools.append(Pool(name, src.crops[tr], soft, cfg.source_shares[name]))
        counts[name] = {"train": int(len(tr)), "validation": int(len(va)),
                        "no_face": int((~src.found).sum()),
                        "validation_no_face": int((~src.found[va]).sum()),
                        "train_subjects": len(set(ls.subjects[tr].tolist()) - {""}),
                        "validation_subjects": len(set(ls.subjects[va].tolist()) - {""})}
        if len(va):
            es = EvalSet(name, ls.labels[va], src.found[va], ls.subjects[va] if spec.folds and
                         all(ls.subjects[va]) else None)
            (selection if spec.selects else report)[f"{name}_val"] = (es, src.crops[va][src.found[va]])
    return fer, pools, selection, report, counts


def mixed_prior(pools: list[Pool]) -> np.ndarray:
    """The class shares a model trained on these pools sees: share-weighted mean soft label."""
    total = sum(p.share for p in pools)
    prior = sum(p.share / total * p.soft.mean(0) for p in pools)
    prior = np.maximum(prior, 1e-4)
    return (prior / prior.sum()).astype(np.float64)


def draw_epoch(pools: list[Pool], n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the concatenated pools for one epoch of ``n`` faces: ``share`` of them from each
    pool (with replacement once a pool is smaller than its quota), shuffled."""
    total = sum(p.share for p in pools)
    offsets = np.cumsum([0] + [len(p.pixels) for p in pools])
    idx, src = [], []
    for k, p in enumerate(pools):
        quota = int(round(n * p.share / total))
        pick = (rng.permutation(len(p.pixels))[:quota] if quota <= len(p.pixels)
                else rng.integers(0, len(p.pixels), quota))
        idx.append(offsets[k] + pick)
        src.append(np.full(quota, k))
    order = rng.permutation(sum(len(i) for i in idx))
    return np.concatenate(idx)[order], np.concatenate(src)[order]


def warm_start_file(cfg: MixConfig) -> tuple[Path, str] | None:
    """The ONNX to start from and its SHA-256 (checked against ``warm_start_sha256`` when set)."""
    if not cfg.warm_start:
        return None
    if cfg.warm_start == "shipped":
        from mien.expression import ExpressionModel

        model = ExpressionModel.load()  # SHA-256 checked against its card
        path, digest = model.onnx_path, model.sha256
    else:
        path = Path(cfg.warm_start)
        digest = pinned_file(path, "", "warm-start model", "docs/training.md says how to get it")
    if cfg.warm_start_sha256 and digest != cfg.warm_start_sha256:
        raise ValueError(f"warm-start model {path} has SHA-256 {digest}, not {cfg.warm_start_sha256}")
    return path, digest


def warm_started_net(cfg: MixConfig, calibration: np.ndarray) -> torch.nn.Module:
    from mien.training.net import ExpressionNet

    net = build_net(asdict(cfg))
    found = warm_start_file(cfg)
    if found is not None:
        from mien.training.warmstart import load_onnx_into

        if not isinstance(net, ExpressionNet):
            raise ValueError("--warm-start needs --arch vgg")
        path = found[0]
        cal = Standardize()(torch.from_numpy(calibration).float().unsqueeze(1))
        load_onnx_into(net, path, cal)
    return net


def _score_all(model: torch.nn.Module, sets: dict[str, tuple[EvalSet, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: predict_logits(model, px) for name, (_es, px) in sets.items()}


def _preds(logits: dict[str, np.ndarray], sets: dict[str, tuple[EvalSet, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: es.predictions(logits[name]) for name, (es, _px) in sets.items()}


def train_mix(cfg: MixConfig) -> dict:
    t_begin = time.perf_counter()
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    dev = resolve_device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    fer, pools, selection, report, counts = load_mix(cfg)
    sel_sets = {n: es for n, (es, _px) in selection.items()}
    print(f"[{out.name}] pools: " + ", ".join(f"{p.name} {len(p.pixels)} ({p.share:.0%})" for p in pools)
          + f"; selection on {', '.join(selection)}", flush=True)

    prior = mixed_prior(pools)
    weight = torch.from_numpy((prior ** -cfg.class_weight_power).astype(np.float32))
    weight = (weight / (weight * torch.from_numpy(prior.astype(np.float32))).sum()).to(dev)

    rng_cal = np.random.default_rng(cfg.seed)
    net = warm_started_net(cfg, fer.train.pixels[rng_cal.choice(len(fer.train), min(2048, len(fer.train)), replace=False)])
    model = Deployable(net).to(dev).to(memory_format=torch.channels_last)  # type: ignore[call-overload, unused-ignore]
    precision = resolve_precision(cfg.precision, dev, cfg.arch)
    params = sum(p.numel() for p in model.parameters())

    x_all = torch.from_numpy(np.concatenate([p.pixels for p in pools])).float().unsqueeze(1)
    y_all = torch.from_numpy(np.concatenate([p.soft for p in pools]))
    g = torch.Generator(device=dev).manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    steps = cfg.epoch_samples // cfg.batch_size

    def step_loss(idx: np.ndarray) -> torch.Tensor:
        xb = augment(x_all[idx].to(dev), cfg, g)
        xb = domain_augment(xb, cfg, g, rng).contiguous(memory_format=torch.channels_last)
        with _autocast(dev, precision):
            logits = model(xb).float()
        return soft_ce(logits, y_all[idx].to(dev), weight)

    start_logits = _score_all(model, selection)
    start = selection_score(_preds(start_logits, selection), sel_sets)
    print(f"[{out.name}] warm start ({cfg.warm_start or 'none'}): {json.dumps(start)}", flush=True)

    epochs = cfg.epochs
    if cfg.time_budget_s > 0:
        probe_idx, _ = draw_epoch(pools, cfg.batch_size * 12, np.random.default_rng(cfg.seed + 1))
        with torch.random.fork_rng():
            import copy

            saved = copy.deepcopy(model.state_dict())
            opt_probe = torch.optim.SGD(model.parameters(), lr=0.0)
            timings = []
            for k in range(12):  # the first two warm up and are not counted
                t0 = time.perf_counter()
                loss = step_loss(probe_idx[k * cfg.batch_size:(k + 1) * cfg.batch_size])
                opt_probe.zero_grad(set_to_none=True)
                loss.backward()
                timings.append(time.perf_counter() - t0)
            model.load_state_dict(saved)
        per_step = float(np.median(timings[2:]))
        t0 = time.perf_counter()
        _score_all(model, selection)
        t_eval = (2 if cfg.score_raw else 1) * (time.perf_counter() - t0)
        per_epoch = steps * per_step * 1.15 + t_eval
        left = cfg.time_budget_s - (time.perf_counter() - t_begin) - 2 * t_eval - 60
        epochs = int(max(2, min(cfg.epochs, left // per_epoch)))
        print(f"[{out.name}] ~{per_epoch:.0f} s/epoch: {epochs} epochs fit the budget", flush=True)
    ws = warm_start_file(cfg)
    teacher_sha = pinned_file(Path(cfg.teacher), cfg.teacher_sha256, "teacher file", "") if cfg.teacher else None
    config = asdict(cfg) | {"warm_start_file_sha256": ws[1] if ws else None, "epochs_run": epochs,
                            "precision_run": precision, "teachers": 1 if cfg.teacher else 0,
                            "teacher_file_sha256": teacher_sha,
                            "sources": counts, "selection_sets": list(selection)}
    (out / "config.json").write_text(json.dumps(config, indent=2))

    ema = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                          weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=epochs * steps, pct_start=0.15)
    best: dict = {"score": start["score"], "epoch": 0, "weights": "warm_start", "scores": start}
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out / "best.pt")
    log = (out / "train_log.jsonl").open("w")
    t_start = time.time()
    completed = 0
    for epoch in range(epochs):
        if cfg.stop_after and epoch >= cfg.stop_after:
            break
        if cfg.time_budget_s > 0 and epoch and time.perf_counter() - t_begin > cfg.time_budget_s:
            print(f"[{out.name}] time budget spent after {epoch} epochs: stopping (best so far is kept)", flush=True)
            break
        model.train()
        t0 = time.time()
        idx, _src = draw_epoch(pools, steps * cfg.batch_size, rng)
        total = 0.0
        for s in range(steps):
            loss = step_loss(idx[s * cfg.batch_size:(s + 1) * cfg.batch_size])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            ema.update_parameters(model)
            total += float(loss.detach())
        rec: dict = {"epoch": epoch + 1, "loss": total / steps, "lr": sched.get_last_lr()[0]}
        for kind, m in (("ema", ema.module), ("raw", model))[: 2 if cfg.score_raw else 1]:
            sc = selection_score(_preds(_score_all(m, selection), selection), sel_sets)
            rec[kind] = sc
            if sc["score"] > best["score"]:
                best = {"score": sc["score"], "epoch": epoch + 1, "weights": kind, "scores": sc}
                torch.save({k: v.detach().cpu() for k, v in m.state_dict().items()}, out / "best.pt")
        rec["seconds"] = time.time() - t0
        log.write(json.dumps(rec) + "\n")
        log.flush()
        print(json.dumps(rec), flush=True)
        completed += 1
    log.close()
    config["epochs_completed"] = completed
    (out / "config.json").write_text(json.dumps(config, indent=2))
    train_minutes = (time.time() - t_start) / 60
    return _finish(cfg, model, fer, pools, selection, report, counts, best, start, epochs, train_minutes,
                   params, precision, dev)


def _finish(cfg: MixConfig, model: torch.nn.Module, fer, pools: list[Pool], selection: dict, report: dict,
            counts: dict, best: dict, start: dict, epochs: int, train_minutes: float, params: int,
            precision: str, dev: torch.device) -> dict:
    """The end of a run: the kept weights scored on every set, the operating point chosen by the
    selection rule, predictions, summary and the verified ONNX."""
    out = Path(cfg.out)
    sel_sets = {n: es for n, (es, _px) in selection.items()}
    prior = mixed_prior(pools)
    model.load_state_dict(torch.load(out / "best.pt", map_location=dev))
    model.eval()
    sel_logits = _score_all(model, selection)
    rep_logits = _score_all(model, report)
    op = choose_operating_point(sel_logits, sel_sets, prior)
    arrays: dict[str, Any] = {"public_logits": sel_logits["ferplus_public"],
                              "private_logits": rep_logits["ferplus_private"],
                              "private_index": fer.private_test.index}
    arrays |= {f"{k}_logits": v for k, v in (sel_logits | rep_logits).items()}
    np.savez_compressed(out / "predictions.npz", **arrays)
    all_sets = selection | report
    final = {name: selection_score({name: es.predictions(lg)}, {name: es})[name]
             for name, (es, _px) in all_sets.items() for lg in [(sel_logits | rep_logits)[name]]}
    fer_acc = {k: float((lg.argmax(1) == es.labels).mean())
               for k, (es, _px) in all_sets.items() if k.startswith("ferplus")
               for lg in [(sel_logits | rep_logits)[k]]}
    summary = {
        "params": params,
        "train_images": int(sum(len(p.pixels) for p in pools)),
        "pools": {p.name: {"images": int(len(p.pixels)), "share": p.share} for p in pools},
        "sources": counts,
        "removed_duplicates": fer.removed_duplicates,
        "dropped_unlabelled": fer.dropped_unlabelled,
        "epochs_run": epochs,
        "best_epoch": best["epoch"],
        "best_weights": best["weights"],
        "selection_rule": "mean balanced accuracy over " + ", ".join(selection),
        "selection_score": best["score"],
        "warm_start_scores": start,
        "balanced_accuracy": final,
        "public_test_acc": fer_acc["ferplus_public"],
        "private_test_acc": fer_acc["ferplus_private"],
        **op,
        "operating_point_rule": "temperature: NLL over the selection sets pooled; prior strength: the "
        "selection rule",
        "train_minutes": train_minutes,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {cfg.threads} threads",
        "teachers": 1 if cfg.teacher else 0,
        "teacher": {"file": Path(cfg.teacher).name, "ferplus": cfg.teacher_ferplus, "muxspace": cfg.teacher_muxspace,
                    "posed": cfg.teacher_posed} if cfg.teacher else None,
        "precision": precision,
        "labels": list(EXPRESSIONS),
    }
    model = model.cpu().to(memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload, unused-ignore]
    max_diff = export_verified_onnx(model, out / "expression.onnx", cfg.input_size, fer.private_test.pixels[:256])
    summary |= {"onnx_max_abs_diff": max_diff, "onnx_opset": OPSET}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("best_epoch", "selection_score", "balanced_accuracy",
                                               "public_test_acc", "private_test_acc", "prior_strength")}, indent=2),
          flush=True)
    return summary




def finalize(run: Path, stopped: bool = True) -> dict:
    """Finish a run that was stopped between epochs (its ``best.pt`` and ``train_log.jsonl`` kept):
    the same final stage as an uninterrupted run, with ``epochs_completed`` from the log, so the
    preset's ``stop_after`` repeats it."""
    config = json.loads((run / "config.json").read_text())
    fields = {k: v for k, v in config.items() if k in MixConfig.__dataclass_fields__}
    cfg = MixConfig(**fields | {"out": str(run)})
    recorded = config.get("warm_start_file_sha256")
    found = warm_start_file(cfg)
    if recorded and found and found[1] != recorded:  # e.g. "shipped" after a newer model shipped
        raise ValueError(f"this run started from a model with SHA-256 {recorded}, but {found[0]} is now "
                         f"{found[1]}: the warm start it is scored against would be another model; put that "
                         "file back (docs/training.md says how to recover shipped models from git)")
    torch.set_num_threads(cfg.threads)
    dev = resolve_device(cfg.device)
    fer, pools, selection, report, counts = load_mix(cfg)
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines() if line]
    rng_cal = np.random.default_rng(cfg.seed)
    net = warm_started_net(cfg, fer.train.pixels[rng_cal.choice(len(fer.train), min(2048, len(fer.train)),
                                                                replace=False)])
    model = Deployable(net).to(dev)
    sel_sets = {n: es for n, (es, _px) in selection.items()}
    start = selection_score(_preds(_score_all(model, selection), selection), sel_sets)
    best: dict = {"score": start["score"], "epoch": 0, "weights": "warm_start", "scores": start}
    for rec in log:
        for kind in ("ema", "raw"):
            if kind in rec and rec[kind]["score"] > best["score"]:
                best = {"score": rec[kind]["score"], "epoch": rec["epoch"], "weights": kind, "scores": rec[kind]}
    config["epochs_completed"] = len(log)
    if stopped:
        config["finalized_after_stop"] = True
    else:
        config["refinished"] = True  # the final stage run again on the kept weights (e.g. a new operating-point rule)
    (run / "config.json").write_text(json.dumps(config, indent=2))
    minutes = sum(r["seconds"] for r in log) / 60
    return _finish(cfg, model, fer, pools, selection, report, counts, best, start, config["epochs_run"],
                   minutes, sum(p.numel() for p in model.parameters()), config["precision_run"], dev)


def compare_to_onnx(run: Path, onnx: Path, n_resamples: int = 2000) -> dict:
    """The selection rule's paired bootstrap: the ONNX model at ``onnx`` (A, e.g. 1.2) against the
    run's kept weights (B, its ``predictions.npz``), on the same selection sets, network logits,
    argmax (no temperature, no prior offset)."""
    import onnxruntime as ort

    config = json.loads((run / "config.json").read_text())
    cfg = MixConfig(**{k: v for k, v in config.items() if k in MixConfig.__dataclass_fields__})
    _fer, _pools, selection, _report, _counts = load_mix(cfg)
    sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    sets = {n: es for n, (es, _px) in selection.items()}
    preds_a = {n: es.predictions(np.concatenate([sess.run(None, {sess.get_inputs()[0].name: px[i:i + 512].astype(
        np.float32)[:, None]})[0] for i in range(0, len(px), 512)])) for n, (es, px) in selection.items()}
    with np.load(run / "predictions.npz") as p:
        preds_b = {n: es.predictions(p[f"{n}_logits"]) for n, es in sets.items()}
    return paired_bootstrap(preds_a, preds_b, sets, n_resamples=n_resamples)


def _shares(text: str) -> dict[str, float]:
    """``name=share,...`` -> {name: share}, every expression set named once."""
    out: dict[str, float] = {}
    for item in text.split(","):
        name, sep, share = item.partition("=")
        if not sep or name.strip() not in SOURCES:
            raise argparse.ArgumentTypeError(f"{item!r}: give SET=SHARE for each of {', '.join(SOURCES)}")
        out[name.strip()] = float(share)
    if set(out) != set(SOURCES):
        raise argparse.ArgumentTypeError(f"name every set once: {', '.join(SOURCES)}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, value in asdict(MixConfig()).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, dict):  # --source-shares taiwanese_chen2013=0.16,muxspace=0.11,...
            parser.add_argument(flag, type=_shares, default=value, metavar="SET=SHARE,...",
                                help=f"default: {','.join(f'{k}={v}' for k, v in value.items())}")
            continue
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value)
    parser.add_argument("--finalize", type=Path, default=None, metavar="RUN",
                        help="finish a run stopped between epochs (score, choose the operating point, export)")
    parser.add_argument("--refinish", type=Path, default=None, metavar="RUN",
                        help="run a finished run's final stage again on its kept weights (today's operating-point rule)")
    parser.add_argument("--compare", nargs=2, type=Path, default=None, metavar=("A.onnx", "RUN"),
                        help="paired bootstrap of the selection score: run B against the exported model A")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    with cli_errors("mien.training.mix"):
        if args.compare is not None:
            print(json.dumps(compare_to_onnx(args.compare[1], args.compare[0]), indent=2))
            return
        if args.finalize is not None or args.refinish is not None:
            finalize(args.finalize or args.refinish, stopped=args.finalize is not None)
            return
        del args.finalize, args.refinish, args.compare
        train_mix(MixConfig(**vars(args)))


if __name__ == "__main__":
    main()
