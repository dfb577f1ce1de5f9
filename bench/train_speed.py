"""Training throughput of the expression network on this CPU: float32 against bf16 autocast, with and
without channels-last memory (the settings `mien.training.train` picks with ``--precision auto``),
and bf16 at the smaller input sizes of progressive resizing (``--size-schedule``).

    python bench/train_speed.py [--width 32] [--threads 2]

Each setting runs real training steps (augmentation, forward, soft cross-entropy, backward, SGD) on
random 48x48 images; the reference is plain float32 in contiguous memory in the same process, and
every line prints its ratio to it. Needs the `[train]` extra.
"""
from __future__ import annotations

import argparse
import time

import torch

from mien.training.net import ExpressionNet
from mien.training.train import Deployable, TrainConfig, augment, cpu_has_native_bf16, resize, soft_ce


def images_per_s(width: int, bf16: bool, channels_last: bool, batch: int = 128, steps: int = 30,
                 size: int = 48) -> float:
    cfg = TrainConfig()
    model = Deployable(ExpressionNet(width=width, dropout=cfg.dropout))
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, 48, 48, generator=g) * 255  # augmented at 48 px, then resized
    y = torch.softmax(torch.randn(batch, 8, generator=g), 1)
    w = torch.ones(8)
    times = []
    for k in range(steps):
        t0 = time.perf_counter()
        xb = resize(augment(x, cfg, g), size).contiguous(memory_format=memory)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(xb).float()
        loss = soft_ce(logits, y, w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if k >= 4:  # warm-up: oneDNN builds its kernels on the first calls
            times.append(time.perf_counter() - t0)
    times.sort()
    return batch / times[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=TrainConfig.width)
    ap.add_argument("--threads", type=int, default=TrainConfig.threads)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"width {args.width}, {args.threads} threads, bf16 in hardware: {cpu_has_native_bf16()}")
    ref = images_per_s(args.width, bf16=False, channels_last=False)
    print(f"reference, float32 contiguous: {ref:.0f} images/s")
    for bf16, cl in ((False, True), (True, False), (True, True)):
        r = images_per_s(args.width, bf16=bf16, channels_last=cl)
        name = f"{'bf16' if bf16 else 'float32'} {'channels-last' if cl else 'contiguous'}"
        print(f"{name}: {r:.0f} images/s, {r / ref:.2f}x the reference")
    for size in (40, 32):
        r = images_per_s(args.width, bf16=True, channels_last=True, size=size)
        print(f"bf16 channels-last at {size} px: {r:.0f} images/s, {r / ref:.2f}x the reference")


if __name__ == "__main__":
    main()
