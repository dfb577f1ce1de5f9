from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
VIDEOS = SHARED / "videos"
FERPLUS = SHARED / "ferplus" / "fer2013_ferplus.npz"


def shared_video(name: str) -> Path:
    path = VIDEOS / name
    if not path.is_file():
        pytest.skip(f"shared data absent: {path} (tests on real clips need ../shared beside the checkout)")
    return path


@pytest.fixture(scope="session")
def analyzer():
    from mien.pipeline import AnalysisOptions, Analyzer

    return Analyzer(AnalysisOptions(detect_every=3))
