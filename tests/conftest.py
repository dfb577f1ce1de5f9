from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
VIDEOS = SHARED / "videos"
FERPLUS = SHARED / "ferplus" / "fer2013_ferplus.npz"
CHROMIUM = Path(os.environ.get("MIEN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


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
