"""The expression network: a small VGG-style CNN that runs in about a millisecond on one CPU thread."""
from __future__ import annotations

import torch
from torch import nn


def _block(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
    )


class ExpressionNet(nn.Module):
    """Grayscale face crop (N, 1, S, S), already normalised, to logits over the 8 expressions."""

    def __init__(self, width: int = 32, n_classes: int = 8, dropout: float = 0.4) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _block(1, w, 0.0),
            _block(w, 2 * w, 0.1),
            _block(2 * w, 4 * w, 0.1),
            _block(4 * w, 8 * w, 0.1),
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(8 * w, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


ARCHITECTURES = ("vgg", "effnet-lite0")


def build_net(cfg: dict, pretrained: bool = False) -> nn.Module:
    """The network a training config names: ``arch`` "vgg" (:class:`ExpressionNet`, from scratch)
    or "effnet-lite0" (:class:`~mien.training.effnet.EfficientNetLite0` at ``net_size`` px, from the
    ImageNet weights of a pinned registry package when ``pretrained``)."""
    arch = cfg.get("arch", "vgg")
    if arch == "vgg":
        return ExpressionNet(width=cfg["width"], dropout=cfg["dropout"])
    if arch == "effnet-lite0":
        from mien.training.effnet import EfficientNetLite0, load_imagenet

        net = EfficientNetLite0(net_size=cfg.get("net_size", 64), dropout=cfg["dropout"],
                                drop_path=cfg.get("drop_path", 0.1))
        if pretrained:
            load_imagenet(net)
        return net
    raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, not {arch!r}")


def describe_net(cfg: dict) -> str:
    """One line for a model card: the network a training config names."""
    if cfg.get("arch", "vgg") == "effnet-lite0":
        from mien.training.effnet import PRETRAINED_PACKAGE

        source = cfg.get("imagenet_weights", PRETRAINED_PACKAGE)
        return (f"EfficientNet-Lite0 (MBConv, ReLU6, no squeeze-excitation; the 48 px crop upsampled to "
                f"{cfg.get('net_size', 64)} px inside the graph), fine-tuned from ImageNet weights of the "
                f"registry package {source} (Apache-2.0; ImageNet images: non-commercial research terms)")
    w = cfg["width"]
    return (f"VGG-style CNN: 4 blocks of 2x(conv3x3-BN-ReLU) + max-pool, widths {w}-{2 * w}-{4 * w}-{8 * w}, "
            "global average pool, dropout, linear")
