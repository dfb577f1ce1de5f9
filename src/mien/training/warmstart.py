"""Warm-start :class:`~mien.training.net.ExpressionNet` from a shipped ONNX model (e.g. mien-fer-vgg-1.2).

The export folds every batch-norm into the convolution before it, so the ONNX holds per-layer
``W'``, ``b'`` (conv weight and bias) and the linear head. Loading them into a conv (no bias) +
batch-norm pair: the conv takes ``W'``; a forward pass over ``calibration`` images measures the mean
``m`` and variance ``v`` of every conv output, and the batch-norm gets ``running_mean = m``,
``running_var = v``, ``weight = sqrt(v + eps)``, ``bias = b' + m``. In evaluation mode it then
computes exactly ``W'x + b'`` (so the network reproduces the ONNX), and in training mode it starts
from batch statistics close to those, so fine-tuning does not begin with a jolt.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mien.training.net import ExpressionNet


def onnx_weights(path: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """The (weight, bias) of every Conv node in graph order, and the head's (weight, bias)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    convs = []
    for node in model.graph.node:
        if node.op_type == "Conv":
            if len(node.input) < 3:
                raise ValueError(f"{path}: Conv {node.name} has no bias; not an exported mien network")
            convs.append((init[node.input[1]], init[node.input[2]]))
    gemm = [n for n in model.graph.node if n.op_type == "Gemm"]
    if len(gemm) != 1:
        raise ValueError(f"{path}: expected one Gemm (the linear head), found {len(gemm)}")
    return convs, (init[gemm[0].input[1]], init[gemm[0].input[2]])


def _conv_bn_pairs(net: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    mods = list(net.modules())
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d]] = []
    for m, nxt in zip(mods[:-1], mods[1:]):
        if isinstance(m, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
            pairs.append((m, nxt))
    return pairs


@torch.no_grad()
def load_onnx_into(net: ExpressionNet, path: Path, calibration: torch.Tensor) -> None:
    """Load the ONNX model at ``path`` into ``net`` (same width), re-estimating the batch-norm
    statistics on ``calibration`` (standardised crops, (N, 1, S, S)); raises if the shapes differ."""
    convs, (head_w, head_b) = onnx_weights(path)
    pairs = _conv_bn_pairs(net)
    if len(pairs) != len(convs):
        raise ValueError(f"{path} has {len(convs)} convolutions, the network {len(pairs)}")
    for (conv, bn), (w, b) in zip(pairs, convs):
        if tuple(conv.weight.shape) != w.shape:
            raise ValueError(f"{path}: conv weight {w.shape} does not fit {tuple(conv.weight.shape)} "
                             "(another width?)")
        assert bn.running_mean is not None and bn.running_var is not None  # track_running_stats
        conv.weight.copy_(torch.from_numpy(np.array(w)))
        bn.weight.fill_(1.0)
        bn.bias.copy_(torch.from_numpy(np.array(b)))
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)  # (x - 0) / sqrt(1 - eps + eps) = x
    linear = net.head[-1]
    assert isinstance(linear, nn.Linear)
    if tuple(linear.weight.shape) != head_w.shape:
        raise ValueError(f"{path}: head {head_w.shape} does not fit {tuple(linear.weight.shape)}")
    linear.weight.copy_(torch.from_numpy(np.array(head_w)))
    linear.bias.copy_(torch.from_numpy(np.array(head_b)))

    # measure every conv output on the calibration images with the network as the ONNX computes it
    stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [conv.register_forward_hook(
        lambda _m, _i, out, k=k: stats.__setitem__(k, (out.mean((0, 2, 3)), out.var((0, 2, 3)))))
        for k, (conv, _bn) in enumerate(pairs)]
    was_training = net.training
    net.eval()
    net(calibration.float())
    for h in hooks:
        h.remove()
    for k, (_conv, bn) in enumerate(pairs):
        m, v = stats[k]
        assert bn.running_mean is not None and bn.running_var is not None
        bn.running_mean.copy_(m)
        bn.running_var.copy_(v)
        bn.bias.add_(m)
        bn.weight.copy_(torch.sqrt(v + bn.eps))
    net.train(was_training)
