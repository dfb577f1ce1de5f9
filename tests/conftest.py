from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
VIDEOS = SHARED / "videos"
FERPLUS = SHARED / "ferplus" / "fer2013_ferplus.npz"
CHROMIUM = Path(os.environ.get("MIEN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def load_module(relpath: str, register: bool = False) -> ModuleType:
    """A script or bench of the repository (``scripts/x.py``, ``bench/y.py``) loaded as a module;
    ``register`` also puts it in ``sys.modules`` under its file name, so a later ``import`` of that
    name finds this module."""
    path = REPO / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def shared_video(name: str) -> Path:
    path = VIDEOS / name
    if not path.is_file():
        pytest.skip(f"shared data absent: {path} (tests on real clips need ../shared beside the checkout)")
    return path


@pytest.fixture(scope="session")
def analyzer():
    from mien.pipeline import AnalysisOptions, Analyzer

    return Analyzer(AnalysisOptions(detect_every=3))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Debian Chromium under playwright (the real-browser tests); skips with the reason
    when either is missing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set MIEN_CHROMIUM)")
    with sync_api.sync_playwright() as play:
        try:
            instance = play.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001 - a broken browser install is a skip, not a failure
            pytest.skip(f"Chromium at {CHROMIUM} does not start under playwright: {exc}")
        yield instance
        instance.close()
