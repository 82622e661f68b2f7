"""The Collect page in a real headless Chromium (Playwright) against `streamlit run`."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.crawl_site.site import Route, Site, _jpeg, build_test_site, html

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian chromium")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app(tmp_path):
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), PHOTOLORE_DATA_DIR=str(tmp_path / "data"),
               PHOTOLORE_SECRETS=str(tmp_path / "no-secrets.toml"))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "pages" / "collect.py"), "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.3)
    yield f"http://127.0.0.1:{port}", tmp_path / "data"
    proc.terminate()
    proc.wait(10)


def _start(page, url: str, seeds: str) -> None:
    page.goto(url)
    page.get_by_text("Collect photos").first.wait_for()
    page.locator("textarea").first.fill(seeds)
    page.get_by_label("Seconds between requests per site").fill("0")
    page.get_by_label("Link depth").fill("1")
    page.get_by_text("Advanced").click()
    page.get_by_label("Minimum width/height (px)").fill("32")
    page.get_by_text("Allow private and local addresses").click()
    page.get_by_text("Add collected photos to the catalog and index").click()  # off: no model load in this test
    page.get_by_role("button", name="Start").click()


def test_collect_page_in_a_browser_crawls_and_lists_skips(app, browser_page):
    url, data = app
    site = build_test_site().start()
    try:
        _start(browser_page, url, f"living room: {site.base}/")
        browser_page.get_by_text("new photos saved").wait_for()
        browser_page.get_by_role("heading", name="Skipped").wait_for()
        assert browser_page.get_by_text("Pages visited").count() == 1
    finally:
        site.stop()
    files = sorted(p.name for p in (data / "library" / "living room").iterdir())
    assert "a.jpg" in files and "dup.jpg" not in files


def test_collect_page_in_a_browser_can_cancel(app, browser_page):
    url, data = app
    slow = {"/robots.txt": Route(b"", "text/plain"),
            "/": Route(html("Slow", "".join(f'<img src="/img/{i}.jpg">' for i in range(40))))}
    for i in range(40):
        slow[f"/img/{i}.jpg"] = _jpeg(100 + i, sleep=0.5)
    site = Site(slow).start()
    try:
        _start(browser_page, url, f"slow: {site.base}/")
        browser_page.get_by_role("button", name="Cancel").click()
        browser_page.get_by_text("Cancelled after").wait_for()
    finally:
        site.stop()
    assert len(site.paths()) < 42
