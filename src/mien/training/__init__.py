"""Training code for mien's own expression model (needs the ``mien[train]`` extra: torch, onnx).

``python -m mien.training.recipe --preset gpu`` (teachers distilled into the small net, on a GPU) or
``--preset cpu`` (the small net alone, on 2 CPU cores) reproduces the shipped model from FER+;
``mien.training.export`` and ``mien.training.package`` turn a run into the shipped ONNX and card.
"""
