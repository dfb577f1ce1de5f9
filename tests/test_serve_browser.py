"""`mien serve` in headless Chromium: open the page, upload a shared clip, wait for the job, open
the report and check its timeline is drawn; delete the job from the page.

Needs Debian's ``chromium`` (/usr/bin/chromium, or $MIEN_CHROMIUM), ``pip install playwright`` and
the ``[serve]`` extra; skips with the reason otherwise. Screenshots of the page and the report are
kept in pytest's tmp folder and in ``test-artifacts/`` (git-ignored); their paths are printed.
"""
from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, shared_video

pytest.importorskip("uvicorn", reason="mien serve needs the [serve] extra: pip install '.[serve]'")

from mien.serve.app import ServeConfig, running_server  # noqa: E402

ARTIFACTS = REPO / "test-artifacts"

_TIMELINES = """() => [...document.querySelectorAll('svg.timeline')].map(svg => {
  const paths = [...svg.querySelectorAll('path.series')];
  const box = svg.getBoundingClientRect();
  return {paths: paths.length, width: box.width, height: box.height,
          drawn: paths.filter(p => (p.getAttribute('d') || '').length > 1 && p.getBBox().width > 0).length};
})"""

_UNLABELLED = """() => [...document.querySelectorAll('input, button, select, textarea')].filter(el => {
  if (el.type === 'hidden') return false;
  const named = el.labels && el.labels.length ? el.labels[0].textContent.trim()
              : (el.getAttribute('aria-label') || el.textContent || '').trim();
  return !named;
}).map(el => el.id || el.outerHTML.slice(0, 60))"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keep(path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)
    print(f"\nscreenshot: {path} (copy in {ARTIFACTS / path.name})")


@pytest.mark.slow  # a server, a browser and a real analysis: ~15 s
def test_upload_in_the_page_then_open_the_report(browser: Any, tmp_path: Path) -> None:
    clip = shared_video("single_face.mp4")
    config = ServeConfig(data_dir=tmp_path / "data", port=_free_port())
    with running_server(config) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 800})  # a laptop screen
        page = context.new_page()
        errors: list[str] = []
        foreign: list[str] = []
        page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type in ("error", "assert") else None)
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        context.on("request", lambda req: None if req.url.startswith((base, "data:")) else foreign.append(req.url))
        context.on("response", lambda r: errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
        page.goto(base + "/", wait_until="load")
        page.locator("#limits").filter(has_text="2000 MB and 50 files per job").wait_for()
        assert page.evaluate(_UNLABELLED) == []  # every control has an accessible name
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        page.focus("#files")  # the file chooser is a real, focusable input
        assert page.evaluate("() => document.activeElement.id") == "files"

        page.set_input_files("#files", str(clip))
        page.fill("#stride", "3")
        page.keyboard.press("Tab")
        page.click("#submit")
        row = page.locator("#jobs tbody tr").first
        row.locator("a.report-link").wait_for(timeout=120_000)
        assert row.get_attribute("data-status") == "done"
        assert "single_face.mp4" in row.inner_text()
        thumb = row.locator("td.thumb img")
        thumb.wait_for()
        page.wait_for_function("() => { const i = document.querySelector('td.thumb img'); "
                               "return i && i.complete && i.naturalWidth > 0; }")
        page.screenshot(path=str(tmp_path / "serve_page.png"), full_page=True)
        _keep(tmp_path / "serve_page.png")

        with context.expect_page() as opened:
            row.locator("a.report-link").click()
        report = opened.value
        report.wait_for_load_state("load")
        timelines = report.evaluate(_TIMELINES)
        report.screenshot(path=str(tmp_path / "serve_report.png"), full_page=True)
        _keep(tmp_path / "serve_report.png")
        assert timelines, "the report has no timeline"
        assert all(t["width"] > 300 and t["height"] > 30 and t["paths"] == 8 == t["drawn"] for t in timelines), timelines
        report.close()

        page.on("dialog", lambda dialog: dialog.accept())
        row.locator("button.danger").click()
        page.locator("#no-jobs").wait_for(state="visible")
        assert page.locator("#jobs tbody tr").count() == 0
        assert errors == [], errors
        assert foreign == [], foreign
        context.close()


@pytest.mark.slow  # a real-time MJPEG stream for a few seconds
def test_live_view_draws_faces_latency_and_timeline(browser: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    video = shared_video("WolfgangLanger_Pexels.mp4")
    cam_port = _free_port()
    sender = subprocess.Popen([sys.executable, str(REPO / "tests" / "mjpeg_server.py"), str(video), str(cam_port), "40"])
    try:
        from test_serve_live import wait_for_port

        wait_for_port(cam_port)
        config = ServeConfig(data_dir=tmp_path / "data", port=_free_port())
        with running_server(config) as base:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(base + "/", wait_until="load")
            page.fill("#source", f"http://127.0.0.1:{cam_port}/cam.mjpg")
            page.fill("#live-seconds", "30")
            page.click("#live-start")
            page.wait_for_function("() => /ms/.test(document.getElementById('live-latency').textContent)",
                                   timeout=60_000)
            page.wait_for_function("() => [...document.querySelectorAll('#live-list li')]"
                                   ".some(li => /face #\\d+: \\w+ \\d+%/.test(li.textContent))", timeout=60_000)
            page.wait_for_timeout(1500)  # a second and a half of timeline
            drawn = page.evaluate("""() => {
              const c = document.getElementById('live-timeline'), ctx = c.getContext('2d');
              const px = ctx.getImageData(30, 4, c.width - 34, c.height - 30).data;
              let coloured = 0;
              for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 0 && Math.abs(px[i] - px[i + 2]) > 40) coloured++;
              return coloured; }""")
            latency = page.inner_text("#live-latency")
            page.screenshot(path=str(tmp_path / "serve_live.png"), full_page=True)
            _keep(tmp_path / "serve_live.png")
            page.click("#live-stop")
            page.locator("#live-status").filter(has_text="results are in the jobs table").wait_for(timeout=60_000)
            assert drawn > 50, drawn  # coloured timeline lines, not just the grey frame
            assert int(latency.split()[0]) < 5000, latency
            row = page.locator("#jobs tbody tr").first
            row.locator("a.report-link").wait_for(timeout=30_000)
            assert "(live)" in row.inner_text()
            assert errors == [], errors
            page.close()
    finally:
        sender.kill()
        sender.wait()
