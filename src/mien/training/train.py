"""Train mien's expression model on FER+ and export it to ONNX.

    python -m mien.training.train --data ../shared/data/ferplus/fer2013_ferplus.npz --out runs/default

Fixed seeds, the whole config logged to ``config.json``, validation on PublicTest every epoch
(the best epoch is kept), and PrivateTest touched once, at the end. The exported ONNX takes raw
grayscale values in 0..255 and does its own per-image standardisation, so the engine cannot get
the normalisation wrong.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mien.labels import EXPRESSIONS
from mien.training.ferplus import Split, load_ferplus
from mien.training.net import ExpressionNet

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
    """Face-appropriate augmentation of a batch in 0..255: flips, small rotation/scale/shift,
    exposure and gamma, low resolution (as in video), and random erasing (occlusion)."""
    n = x.shape[0]
    u = lambda *s: torch.rand(*s, generator=g)
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

    # low resolution: down to 16..36 px and back up
    low = u(n) < cfg.lowres_p
    if low.any():
        s = int(16 + 20 * float(u(1)))
        small = F.interpolate(x[low], size=(s, s), mode="area")
        x[low] = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)

    # random erasing: one rectangle of noise, 2-20% of the area
    h, w = x.shape[-2:]
    er = torch.nonzero(u(n) < cfg.erase_p).flatten()
    for i in er.tolist():
        area = (0.02 + 0.18 * float(u(1))) * h * w
        aspect = math.exp((float(u(1)) * 2 - 1) * math.log(3))
        eh = min(h, int(round(math.sqrt(area * aspect))))
        ew = min(w, int(round(math.sqrt(area / aspect))))
        y0 = int(float(u(1)) * (h - eh + 1))
        x0 = int(float(u(1)) * (w - ew + 1))
        x[i, :, y0 : y0 + eh, x0 : x0 + ew] = u(1, eh, ew) * 255.0
    return x


def soft_ce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    logp = F.log_softmax(logits, dim=1)
    return -(target * weight * logp).sum(dim=1).mean()


@torch.no_grad()
def predict_logits(model: nn.Module, pixels: np.ndarray, batch: int = 512) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(pixels), batch):
        xb = torch.from_numpy(pixels[i : i + batch]).float().unsqueeze(1)
        out.append(model(xb).numpy())
    return np.concatenate(out).astype(np.float64)


def accuracy(logits: np.ndarray, split: Split) -> float:
    return float((logits.argmax(1) == split.majority).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising NLL of the majority labels (golden-section on log T)."""

    def nll(log_t: float) -> float:
        z = logits / math.exp(log_t)
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return float(-logp[np.arange(len(labels)), labels].mean())

    lo, hi = math.log(0.25), math.log(8.0)
    phi = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = hi - phi * (hi - lo), lo + phi * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return float(math.exp((lo + hi) / 2))


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


def train(cfg: TrainConfig) -> dict:
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    data = load_ferplus(cfg.data)
    tr, val = data.train, data.public_test
    print(
        f"train {len(tr)} (removed {data.removed_duplicates} duplicates of test images), "
        f"PublicTest {len(val)}, PrivateTest {len(data.private_test)}",
        flush=True,
    )
    share = tr.soft.mean(0)
    weight = torch.from_numpy((share ** -cfg.class_weight_power).astype(np.float32))
    weight = weight / (weight * torch.from_numpy(share)).sum()  # expected weight 1

    net = ExpressionNet(width=cfg.width, dropout=cfg.dropout)
    model = Deployable(net)
    ema = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True
    )
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
    )
    steps_per_epoch = len(tr) // cfg.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )
    g = torch.Generator().manual_seed(cfg.seed)
    x_all = torch.from_numpy(tr.pixels).float().unsqueeze(1)
    y_all = torch.from_numpy(tr.soft)

    best = {"val_acc": -1.0}
    log = (out / "train_log.jsonl").open("w")
    t_start = time.time()
    for epoch in range(cfg.epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(tr), generator=g)
        total = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            xb = augment(x_all[idx].clone(), cfg, g)
            loss = soft_ce(model(xb), y_all[idx], weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            ema.update_parameters(model)
            total += float(loss)
        val_acc = accuracy(predict_logits(ema.module, val.pixels), val)
        rec = {
            "epoch": epoch + 1,
            "loss": total / steps_per_epoch,
            "val_acc_ema": val_acc,
            "lr": sched.get_last_lr()[0],
            "seconds": time.time() - t0,
            "images_per_s": steps_per_epoch * cfg.batch_size / (time.time() - t0),
        }
        log.write(json.dumps(rec) + "\n")
        log.flush()
        print(json.dumps(rec), flush=True)
        if val_acc > best["val_acc"]:
            best = {"val_acc": val_acc, "epoch": epoch + 1}
            torch.save(ema.module.state_dict(), out / "best.pt")
    log.close()

    model.load_state_dict(torch.load(out / "best.pt"))
    model.eval()
    val_logits = predict_logits(model, val.pixels)
    temperature = fit_temperature(val_logits, val.majority)
    onnx_path = out / "expression.onnx"
    export_onnx(model, onnx_path, cfg.input_size)

    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    probe = data.private_test.pixels[:256].astype(np.float32)[:, None]
    onnx_logits = sess.run(None, {"gray": probe})[0]
    max_diff = float(np.abs(onnx_logits - predict_logits(model, data.private_test.pixels[:256])).max())
    if max_diff >= 1e-4:
        raise RuntimeError(f"ONNX export differs from torch by {max_diff:.2e}")

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
        "best_epoch": best["epoch"],
        "public_test_acc": accuracy(val_logits, val),
        "private_test_acc": accuracy(test_logits, data.private_test),
        "temperature": temperature,
        "onnx_max_abs_diff": max_diff,
        "onnx_opset": OPSET,
        "train_minutes": (time.time() - t_start) / 60,
        "labels": list(EXPRESSIONS),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2), flush=True)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, value in asdict(TrainConfig()).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    train(TrainConfig(**vars(args)))


if __name__ == "__main__":
    main()
