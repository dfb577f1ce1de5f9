"""Audit: how wrong the expression model and the face detector are, and for whom.

Everything here measures mien against data that carries its own labels. Group columns (age band,
gender, skin tone ...) are used only as the dataset provides them: mien never infers them.

Modules, one concern each:

- :mod:`mien.audit.metrics` -- pure-numpy classification metrics, calibration and the bootstrap.
- :mod:`mien.audit.groups` -- per-group metrics, worst group, gaps, negative-expression rates.
- :mod:`mien.audit.datasets` -- reading labelled folders, CSVs and the FER+ npz.
- :mod:`mien.audit.evaluate` -- running the model over a dataset and building the evaluation JSON.
- :mod:`mien.audit.compare` -- two evaluations side by side, with CIs for each difference.
- :mod:`mien.audit.calibrate` -- fitting a softmax temperature and writing a user model card.
- :mod:`mien.audit.card` -- model-card numbers produced by the tool, and their Markdown.
- :mod:`mien.audit.detector` -- face-detector precision, recall, AP and recall by face size.
- :mod:`mien.audit.html` -- self-contained HTML pages for the above.
- :mod:`mien.audit.cli` -- the ``evaluate``, ``calibrate`` and ``evaluate-detector`` subcommands.
"""

from __future__ import annotations

SCHEMA_VERSION = 1
