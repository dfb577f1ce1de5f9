"""Open reports in headless Chromium: no console or page error, no network, every chart drawn.

Needs Debian's ``chromium`` (/usr/bin/chromium, or $MIEN_CHROMIUM) and ``pip install playwright``
(no ``playwright install``: the system browser is used). Skips with the reason otherwise.
Screenshots go to pytest's tmp folder; their paths are printed (``pytest -s`` shows them).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mien.reporting import write_report
from mien.reporting.synthetic import demo_results

SHARED = Path(os.environ.get("MIEN_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))
VIDEOS = SHARED / "data" / "videos"

# Folded parts (the geometry's absolute values) are opened first, so their charts are measured too.
_CHART_INFO = """() => { document.querySelectorAll('details').forEach(d => { d.open = true; });
  return [...document.querySelectorAll('svg.timeline, svg.quality, svg.pose, svg.geometry')].map(svg => {
  const paths = [...svg.querySelectorAll('path.series')];
  const box = svg.getBoundingClientRect();
  return {kind: svg.getAttribute('class'), paths: paths.length, width: box.width, height: box.height,
          drawn: paths.filter(p => (p.getAttribute('d') || '').length > 1 && p.getBBox().width > 0).length};
}); }"""


def open_report(browser: Any, html: Path, screenshot: Path) -> tuple[Any, list[dict[str, Any]]]:
    """Load ``html``, fail on errors or network use, save a full-page screenshot; return page and charts."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}")
            if msg.type in ("error", "assert") else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("request", lambda req: requests.append(req.url))
    page.goto(html.as_uri(), wait_until="load")
    charts = page.evaluate(_CHART_INFO)
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"\nscreenshot: {screenshot}")
    assert errors == [], errors
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    for chart in charts:
        assert chart["width"] > 300 and chart["height"] > 30, chart
        assert chart["drawn"] == chart["paths"], chart  # every line has a path that takes up space
        assert chart["paths"] >= 1, chart  # fully abstained tracks get no timeline, so none is empty
    return page, charts


@pytest.mark.slow
def test_synthetic_report_renders(browser: Any, tmp_path: Path) -> None:
    events = pd.DataFrame({"time_s": [2.0, 7.0, 12.0], "end_s": [np.nan, 9.0, np.nan],
                           "label": ["question", "joke", "question"]})
    html = write_report([demo_results(duration_s=20.0, n_tracks=2),
                         demo_results(source="other.mp4", duration_s=15.0, n_tracks=1, seed=1)],
                        tmp_path / "synthetic.html", events=events)
    page, charts = open_report(browser, html, tmp_path / "synthetic.png")
    timelines = [c for c in charts if c["kind"] == "timeline"]
    assert len(timelines) == 3 and all(c["paths"] == 8 for c in timelines)
    assert page.locator("svg.timeline g.event").count() == 3 * 3  # 3 events on each of 3 timelines
    # The legend works: hiding happiness hides its line in every chart, and brings it back.
    page.locator('button.key[data-label="happiness"]').first.click()
    hidden = page.evaluate("() => [...document.querySelectorAll('path.s-happiness')]"
                           ".map(p => getComputedStyle(p).display)")
    assert hidden and set(hidden) == {"none"}
    page.locator('button.key[data-label="happiness"]').first.click()
    assert page.evaluate("() => getComputedStyle(document.querySelector('path.s-happiness')).display") != "none"
    page.close()


# ------------------------------------------------------------------------------ real shared clips

CLIPS = {
    "one_face": "WolfgangLanger_Pexels.mp4",
    "several_faces": "short_hamilton_clip.mp4",
    "no_face": "no_face.mp4",
}


@pytest.fixture(scope="module")
def shared_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Analyse the three shared clips once (at 6 analysed frames per second, to keep this quick)."""
    if not VIDEOS.is_dir():
        pytest.skip(f"shared data not found at {VIDEOS} (it is not part of the repository)")
    missing = [name for name in CLIPS.values() if not (VIDEOS / name).is_file()]
    if missing:
        pytest.skip(f"shared clips missing: {', '.join(missing)}")
    import mien  # an engine that cannot analyse the clips fails this test; it never skips it

    out = tmp_path_factory.mktemp("shared_results")
    paths: dict[str, Path] = {}
    for key, name in CLIPS.items():
        paths[key] = mien.analyze(str(VIDEOS / name), fps=6.0).save(out / f"{Path(name).stem}.parquet")
    return paths


@pytest.mark.slow
@pytest.mark.parametrize("key", list(CLIPS))
def test_shared_clip_report_renders(browser: Any, shared_results: dict[str, Path], key: str,
                                    tmp_path: Path) -> None:
    html = write_report(shared_results[key], tmp_path / f"{key}.html")
    page, charts = open_report(browser, html, tmp_path / f"{key}.png")
    text = page.inner_text("body")
    if key == "no_face":
        assert "found no face" in text and not charts
    else:
        timelines = [c for c in charts if c["kind"] == "timeline"]
        assert timelines and max(c["paths"] for c in timelines) == 8
        assert "blurred on purpose" in text or "not readable" in text
        # the geometry stage ran (the default): pose (3 lines) and measure charts render too
        pose = [c for c in charts if c["kind"] == "pose"]
        geometry = [c for c in charts if c["kind"] == "geometry"]
        assert pose and max(c["paths"] for c in pose) == 3
        assert geometry and sum(c["paths"] for c in geometry) >= 11
        assert "Head pose and face geometry" in text
    assert "emotion" not in text.lower()
    page.close()
