"""Train one expression network on FER+ (optionally distilling teachers into it) and export it to ONNX.

    python -m mien.training.train --data ../shared/data/ferplus/fer2013_ferplus.npz --out runs/default
    python -m mien.training.train --device cuda --width 64 --epochs 60 --batch-size 256 --lr 0.1

``mien.training.recipe`` chains these runs into the recipes that produce the shipped model.

Fixed seeds, the whole config logged to ``config.json``, validation on PublicTest every epoch
(the best epoch is kept), and PrivateTest touched once, at the end. The exported ONNX takes raw
grayscale values in 0..255 and does its own per-image standardisation, so the engine cannot get
the normalisation wrong.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mien.audit.calibrate import fit_temperature, select_prior_strength
from mien.labels import EXPRESSIONS
from mien.runtime import make_session
from mien.training import cli_errors
from mien.training.ferplus import FerPlus, Split, load_ferplus
from mien.training.net import ARCHITECTURES, build_net

OPSET = 17


@dataclass
class TrainConfig:
    data: str = "../shared/data/ferplus/fer2013_ferplus.npz"
    out: str = "runs/default"
    seed: int = 20261127
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    width: int = 32
    dropout: float = 0.4
    class_weight_power: float = 0.25  # loss weight per class = (share of votes) ** -power
    ema_decay: float = 0.998
    rotate_deg: float = 12.0
    scale_range: float = 0.12
    translate: float = 0.08
    erase_p: float = 0.5
    lowres_p: float = 0.25
    threads: int = 2
    input_size: int = 48
    device: str = "cpu"  # "cpu", "cuda" or "auto"
    time_budget_s: float = 0.0  # > 0: cap the epochs so training fits this many seconds (chosen epochs logged)
    distill_weight: float = 0.0  # share of the loss on the teachers' probabilities (distillation only)
    precision: str = "auto"  # "auto", "bf16" or "fp32": of the training steps (scoring and export are fp32)
    size_schedule: str = ""  # progressive resizing, e.g. "32@0.35,40@0.65": 32 px for the first 35% of the
    # epochs, 40 px up to 65%, input_size after; only full-size epochs can be kept as the best
    arch: str = "vgg"  # "vgg" (from scratch, width) or "effnet-lite0" (ImageNet-initialised, net_size)
    net_size: int = 64  # effnet-lite0: the input_size crop is upsampled to this inside the graph
    drop_path: float = 0.1  # effnet-lite0: stochastic depth of the last block


class Standardize(nn.Module):
    """Raw 0..255 grayscale to per-image zero mean, unit variance (robust to exposure)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x / 255.0
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True)
        return (x - mean) / (std + 1e-3)


class Deployable(nn.Module):
    """What ships: standardisation + network, raw grayscale in, logits out."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.norm = Standardize()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(x))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def augment(x: torch.Tensor, cfg: TrainConfig, g: torch.Generator) -> torch.Tensor:
    """Face-appropriate augmentation of a batch in 0..255 on its own device: flips, small
    rotation/scale/shift, exposure and gamma, low resolution (as in video), and random erasing
    (occlusion). Fully vectorised, so it runs as well on a GPU as on a CPU."""
    n, dev = x.shape[0], x.device
    u = lambda *s: torch.rand(*s, generator=g, device=dev)
    ang = (u(n) * 2 - 1) * math.radians(cfg.rotate_deg)
    scale = 1 + (u(n) * 2 - 1) * cfg.scale_range
    flip = torch.where(u(n) < 0.5, -1.0, 1.0)
    tx, ty = [(u(n) * 2 - 1) * cfg.translate * 2 for _ in range(2)]
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    # exposure: gamma, contrast, brightness
    x01 = (x / 255.0).clamp(0, 1)
    gamma = torch.exp((u(n, 1, 1, 1) * 2 - 1) * 0.4)
    x01 = x01.pow(gamma)
    contrast = 0.7 + 0.6 * u(n, 1, 1, 1)
    bright = (u(n, 1, 1, 1) * 2 - 1) * 0.15
    x01 = ((x01 - 0.5) * contrast + 0.5 + bright).clamp(0, 1)
    x = x01 * 255.0

    # low resolution: down to 16..36 px and back up (one size per batch)
    h, w = x.shape[-2:]
    if cfg.lowres_p > 0:
        s = int(16 + 20 * float(u(1)))
        blurred = F.interpolate(F.interpolate(x, size=(s, s), mode="area"), size=(h, w),
                                mode="bilinear", align_corners=False)
        x = torch.where((u(n) < cfg.lowres_p).view(n, 1, 1, 1), blurred, x)

    # random erasing: one rectangle of noise, 2-20% of the area, aspect 1/3..3
    if cfg.erase_p > 0:
        area = (0.02 + 0.18 * u(n)) * h * w
        aspect = torch.exp((u(n) * 2 - 1) * math.log(3))
        eh = torch.sqrt(area * aspect).round().clamp(1, h)
        ew = torch.sqrt(area / aspect).round().clamp(1, w)
        y0 = (u(n) * (h - eh + 1)).floor()
        x0 = (u(n) * (w - ew + 1)).floor()
        ys = torch.arange(h, device=dev).view(1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, w)
        inside = ((ys >= y0.view(n, 1, 1)) & (ys < (y0 + eh).view(n, 1, 1))
                  & (xs >= x0.view(n, 1, 1)) & (xs < (x0 + ew).view(n, 1, 1)))
        inside = inside & (u(n) < cfg.erase_p).view(n, 1, 1)
        x = torch.where(inside.unsqueeze(1), u(n, 1, h, w) * 255.0, x)
    return x


def soft_ce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    logp = F.log_softmax(logits, dim=1)
    return -(target * weight * logp).sum(dim=1).mean()


def parse_size_schedule(spec: str, input_size: int) -> list[tuple[int, float]]:
    """``"32@0.35,40@0.65"`` to ``[(32, 0.35), (40, 0.65)]``: each size holds until that share of the
    epochs; sizes must grow and stay below ``input_size``, shares must grow within (0, 1)."""
    if not spec.strip():
        return []
    steps = []
    for part in spec.split(","):
        size, _, until = part.strip().partition("@")
        try:
            steps.append((int(size), float(until)))
        except ValueError:
            raise ValueError(f"size_schedule part {part!r} is not SIZE@SHARE, e.g. 32@0.35") from None
    sizes, shares = [s for s, _ in steps], [u for _, u in steps]
    if sizes != sorted(set(sizes)) or not all(8 <= s < input_size for s in sizes):
        raise ValueError(f"size_schedule sizes {sizes} must grow, from 8 px up to below {input_size}")
    if shares != sorted(set(shares)) or not all(0 < u < 1 for u in shares):
        raise ValueError(f"size_schedule shares {shares} must grow within (0, 1)")
    return steps


def epoch_size(schedule: list[tuple[int, float]], epoch: int, epochs: int, input_size: int) -> int:
    """Input size of ``epoch`` (0-based) of ``epochs`` under a parsed size schedule."""
    for size, until in schedule:
        if epoch < round(until * epochs):
            return size
    return input_size


def schedule_cost(schedule: list[tuple[int, float]], input_size: int) -> float:
    """Mean cost of an epoch under a size schedule, relative to a full-size one: each size costs by
    its area, 0.44x at 32 px and 0.69x at 40 px (measured on the 2 CPU cores here: 0.45-0.50x and
    0.67-0.73x, ``bench/train_speed.py``)."""
    cost, start = 0.0, 0.0
    for size, until in schedule:
        cost += (until - start) * (size / input_size) ** 2
        start = until
    return cost + (1 - start)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Area-downsample a batch (N, 1, S, S) to ``size`` (progressive resizing); no-op at its size."""
    return x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="area")


@torch.no_grad()
def predict_logits(model: nn.Module, pixels: np.ndarray, batch: int = 512, size: int | None = None) -> np.ndarray:
    """Float32 logits of ``model`` (on whatever device it lives) for uint8 images (n, S, S),
    optionally downsampled to ``size``."""
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for i in range(0, len(pixels), batch):
        xb = torch.from_numpy(pixels[i : i + batch]).to(dev).float().unsqueeze(1)
        if size is not None:
            xb = resize(xb, size)
        out.append(model(xb).float().cpu().numpy())
    return np.concatenate(out).astype(np.float64)


class TeacherEnsemble(nn.Module):
    """Mean probabilities of several trained models over a face and its mirror image: the
    distillation target, computed on exactly the augmented batch the student sees."""

    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        both = torch.cat([x, torch.flip(x, dims=[3])], 0)
        p = torch.stack([F.softmax(m(both).float(), dim=1) for m in self.models]).mean(0)
        return (p[:n] + p[n:]) / 2


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA GPU")
    return torch.device("cuda", torch.cuda.current_device()) if name == "cuda" else torch.device(name)


def accuracy(logits: np.ndarray, split: Split) -> float:
    return float((logits.argmax(1) == split.majority).mean())


def training_prior(train: Split) -> np.ndarray:
    """Share of the FER+ votes per class in the training split (floored: an absent class must not
    weigh infinitely in the loss, nor get an infinite prior offset)."""
    share = np.maximum(train.soft.mean(0), 1e-4)
    return share / share.sum()


def operating_point(val_logits: np.ndarray, val: Split, prior: np.ndarray) -> dict[str, Any]:
    """Temperature (min NLL) and class-prior strength (max macro-F1), both chosen on PublicTest."""
    temperature = fit_temperature(val_logits, val.majority)
    strength, table = select_prior_strength(val_logits, val.majority, temperature, prior)
    return {
        "temperature": temperature,
        "prior_strength": strength,
        "training_prior": [float(x) for x in prior],
        "prior_strength_table": table,
    }


def export_onnx(model: nn.Module, path: Path, size: int) -> None:
    model.eval()
    dummy = torch.zeros(1, 1, size, size)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["gray"],
        output_names=["logits"],
        dynamic_axes={"gray": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )


def export_verified_onnx(model: nn.Module, path: Path, size: int, probe: np.ndarray) -> float:
    """Export ``model`` (on the CPU) and check ONNX Runtime against torch on ``probe`` images
    (uint8, (n, S, S)); returns the largest absolute logit difference, raises if it is not < 1e-4
    (NaN included)."""
    export_onnx(model, path, size)
    sess = make_session(str(path))  # as the engine will run it
    onnx_logits = sess.run(None, {"gray": probe.astype(np.float32)[:, None]})[0]
    max_diff = float(np.abs(onnx_logits - predict_logits(model, probe)).max())
    if not max_diff < 1e-4:
        raise RuntimeError(f"ONNX export differs from torch by {max_diff:.2e}")
    return max_diff


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX). Without it oneDNN
    emulates bf16, which is slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(name: str, dev: torch.device, arch: str = "vgg") -> str:
    """``auto``: bf16 on a GPU, and for the VGG net on a CPU that has bf16 in hardware (2.3-2.8x the
    images per second of float32 on the 2 AMD EPYC cores this was measured on, with channels-last:
    ``bench/train_speed.py``); float32 elsewhere, and for EfficientNet-Lite0 on any CPU (its
    depthwise convolutions run slower in bf16 there: 221 against 338 images/s at 64 px)."""
    if name not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, not {name!r}")
    if name == "auto":
        if dev.type == "cuda":
            return "bf16"
        return "bf16" if arch == "vgg" and cpu_has_native_bf16() else "fp32"
    return name


def _autocast(dev: torch.device, precision: str):
    # bf16 autocast (no loss scaling needed): convolutions and matmuls in bf16, the loss in float32
    return torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def fit_epochs(budget_s: float, spent_s: float, per_epoch_s: float, final_s: float, max_epochs: int) -> int:
    """How many epochs fit a stage's time budget: what is left after the time already spent on
    this stage (loading, building, the timing probe) and the final scoring (``final_s``), at least
    3 and at most ``max_epochs``. (Counting only the epochs let each GPU teacher overrun its share
    by about 20 s, which the student then lost.)"""
    return int(max(3, min(max_epochs, (budget_s - spent_s - final_s) // per_epoch_s)))


def train(
    cfg: TrainConfig,
    teachers: list[nn.Module] | None = None,
    data: FerPlus | None = None,
    export: bool = True,
) -> dict:
    """Train one network; with ``teachers``, distil their flip-averaged ensemble into it on the
    same augmented batches ("patient and consistent" distillation, Beyer et al., 2022).

    Returns the summary (also written to ``summary.json``); ``best.pt`` holds whichever of the EMA
    and the raw weights scored best on PublicTest, over all epochs. ``export=False`` skips the ONNX
    export (done later on a CPU by ``mien.training.export``)."""
    t_begin = time.perf_counter()
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    dev = resolve_device(cfg.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    data = data if data is not None else load_ferplus(cfg.data)
    tr, val = data.train, data.public_test
    print(
        f"[{out.name}] train {len(tr)} (removed {data.removed_duplicates} duplicates of test images), "
        f"PublicTest {len(val)}, PrivateTest {len(data.private_test)}, device {dev}",
        flush=True,
    )
    share = training_prior(tr)
    weight = torch.from_numpy((share ** -cfg.class_weight_power).astype(np.float32))
    weight = (weight / (weight * torch.from_numpy(share)).sum()).to(dev)  # expected weight 1

    net = build_net(asdict(cfg), pretrained=True)
    model = Deployable(net).to(dev).to(memory_format=torch.channels_last)  # type: ignore[call-overload, unused-ignore]  # faster on CPUs and GPUs
    precision = resolve_precision(cfg.precision, dev, cfg.arch)
    ensemble = TeacherEnsemble(teachers).to(dev).eval() if teachers else None
    if ensemble is not None and cfg.distill_weight <= 0:
        raise ValueError("teachers given but distill_weight is 0")
    params = sum(p.numel() for p in model.parameters())

    g = torch.Generator(device=dev).manual_seed(cfg.seed)
    g_perm = torch.Generator().manual_seed(cfg.seed)
    x_all = torch.from_numpy(tr.pixels).to(dev).float().unsqueeze(1)
    y_all = torch.from_numpy(tr.soft).to(dev)
    steps_per_epoch = len(tr) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{len(tr)} training images are fewer than one batch of {cfg.batch_size}")

    schedule = parse_size_schedule(cfg.size_schedule, cfg.input_size)

    def step_loss(m: nn.Module, idx: torch.Tensor, gen: torch.Generator, size: int) -> torch.Tensor:
        xb = resize(augment(x_all[idx], cfg, gen), size).contiguous(memory_format=torch.channels_last)
        with _autocast(dev, precision):
            logits = m(xb).float()
        loss = soft_ce(logits, y_all[idx], weight)
        if ensemble is not None:
            with _autocast(dev, precision):
                target = ensemble(xb)
            loss = (1 - cfg.distill_weight) * loss + cfg.distill_weight * soft_ce(
                logits, target, torch.ones_like(weight))
        return loss

    epochs = cfg.epochs
    if cfg.time_budget_s > 0:
        # time a few real steps on a throwaway copy, then fit the epochs to the budget; the probe
        # draws from its own generators, so training sees the same random stream either way
        fork_devices = [dev.index or 0] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):  # dropout in the probe draws from the global RNGs
            probe = copy.deepcopy(model).train()
            g_probe = torch.Generator(device=dev).manual_seed(cfg.seed + 1)
            g_probe_idx = torch.Generator().manual_seed(cfg.seed + 1)
            probe_opt = torch.optim.SGD(probe.parameters(), lr=1e-4, momentum=0.9)
            timings = []
            for k in range(25):
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                idx = torch.randint(0, len(tr), (cfg.batch_size,), generator=g_probe_idx).to(dev)
                loss = step_loss(probe, idx, g_probe, cfg.input_size)
                probe_opt.zero_grad(set_to_none=True)
                loss.backward()
                probe_opt.step()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                if k >= 5:
                    timings.append(time.perf_counter() - t0)
        del probe, probe_opt
        predict_logits(model, val.pixels)  # the first call pays for cuDNN's autotuning
        t0 = time.perf_counter()
        predict_logits(model, val.pixels)
        t_eval = 2 * (time.perf_counter() - t0)  # EMA and raw weights are both scored
        per_epoch = steps_per_epoch * float(np.median(timings)) * 1.25 + t_eval
        per_epoch *= schedule_cost(schedule, cfg.input_size)  # smaller epochs cost by their area
        spent = time.perf_counter() - t_begin
        epochs = fit_epochs(cfg.time_budget_s, spent, per_epoch, t_eval, cfg.epochs)
        print(f"[{out.name}] ~{per_epoch:.1f} s/epoch: {epochs} epochs fit the {cfg.time_budget_s - spent:.0f} s "
              f"left of {cfg.time_budget_s:.0f} s (max {cfg.epochs})", flush=True)
    if epoch_size(schedule, epochs - 1, epochs, cfg.input_size) != cfg.input_size:
        raise ValueError(f"size_schedule {cfg.size_schedule!r} leaves none of the {epochs} epochs at the "
                         f"full {cfg.input_size} px, so no weights could be kept")
    config = asdict(cfg) | {"epochs_run": epochs, "teachers": len(teachers or []), "precision_run": precision}
    if cfg.arch == "effnet-lite0":
        from mien.training.effnet import imagenet_source

        config["imagenet_weights"] = imagenet_source()
    (out / "config.json").write_text(json.dumps(config, indent=2))

    ema = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True
    )
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=epochs * steps_per_epoch, pct_start=0.15
    )

    best: dict[str, Any] = {"val_acc": -1.0, "epoch": 0}
    log = (out / "train_log.jsonl").open("w")
    t_start = time.time()
    for epoch in range(epochs):
        size = epoch_size(schedule, epoch, epochs, cfg.input_size)
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(tr), generator=g_perm).to(dev)
        total = torch.zeros((), device=dev)
        for s in range(steps_per_epoch):
            loss = step_loss(model, perm[s * cfg.batch_size : (s + 1) * cfg.batch_size], g, size)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            ema.update_parameters(model)
            total += loss.detach()
        # validation at the epoch's input size, in float32 like the final scoring
        val_acc = accuracy(predict_logits(ema.module, val.pixels, size=size), val)
        raw_acc = accuracy(predict_logits(model, val.pixels, size=size), val)
        rec = {
            "epoch": epoch + 1,
            "input_size": size,
            "loss": float(total) / steps_per_epoch,
            "val_acc_ema": val_acc,
            "val_acc_raw": raw_acc,
            "lr": sched.get_last_lr()[0],
            "seconds": time.time() - t0,
            "images_per_s": steps_per_epoch * cfg.batch_size / (time.time() - t0),
        }
        log.write(json.dumps(rec) + "\n")
        log.flush()
        print(json.dumps(rec), flush=True)
        # keep the better of the EMA and the raw weights, by PublicTest accuracy, at full size only
        for acc, weights, kind in ((val_acc, ema.module, "ema"), (raw_acc, model, "raw")):
            if size == cfg.input_size and acc > best["val_acc"]:
                best = {"val_acc": acc, "epoch": epoch + 1, "weights": kind}
                torch.save({k: v.detach().cpu() for k, v in weights.state_dict().items()}, out / "best.pt")
    log.close()
    train_minutes = (time.time() - t_start) / 60

    model.load_state_dict(torch.load(out / "best.pt", map_location=dev))
    model.eval()
    val_logits = predict_logits(model, val.pixels)
    test_logits = predict_logits(model, data.private_test.pixels)
    np.savez_compressed(
        out / "predictions.npz",
        public_logits=val_logits,
        private_logits=test_logits,
        private_index=data.private_test.index,
    )
    summary = {
        "params": params,
        "train_images": len(tr),
        "removed_duplicates": data.removed_duplicates,
        "dropped_unlabelled": data.dropped_unlabelled,
        "epochs_run": epochs,
        "best_epoch": best["epoch"],
        "best_weights": best.get("weights"),
        "public_test_acc": accuracy(val_logits, val),
        "private_test_acc": accuracy(test_logits, data.private_test),
        **operating_point(val_logits, val, share),
        "train_minutes": train_minutes,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {cfg.threads} threads",
        "teachers": len(teachers or []),
        "precision": precision,
        "labels": list(EXPRESSIONS),
    }
    if export:
        model = model.cpu().to(memory_format=torch.contiguous_format).eval()
        max_diff = export_verified_onnx(model, out / "expression.onnx", cfg.input_size,
                                        data.private_test.pixels[:256])
        summary |= {"onnx_max_abs_diff": max_diff, "onnx_opset": OPSET}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2), flush=True)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, value in asdict(TrainConfig()).items():
        choices = {"precision": ("auto", "bf16", "fp32"), "arch": ARCHITECTURES}.get(name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value, choices=choices)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    with cli_errors("mien.training.train"):
        train(TrainConfig(**vars(args)))


if __name__ == "__main__":
    main()
