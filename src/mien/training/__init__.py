"""Training code for mien's own expression model (needs the ``mien[train]`` extra: torch, onnx).

``python -m mien.training.train --data ../shared/data/ferplus/fer2013_ferplus.npz`` reproduces the
shipped model from FER+.
"""
