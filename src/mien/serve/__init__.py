"""``mien serve``: a local web app and REST API on the analysis engine.

The app (:mod:`mien.serve.app`) takes uploads, checks them (:mod:`mien.serve.probe`), queues them
as jobs kept in SQLite under a data folder (:mod:`mien.serve.store`), analyses them with a bounded
pool of workers (:mod:`mien.serve.jobs`; resuming cut-off jobs: :mod:`mien.serve.resume`), and serves the results, the HTML report and live analyses of camera or network
streams (:mod:`mien.serve.live`). :mod:`mien.serve.guard` holds the request checks (token, host,
body size). It needs the ``[serve]`` extra (FastAPI, uvicorn, python-multipart); nothing here is
imported by ``import mien``.
"""
from __future__ import annotations
