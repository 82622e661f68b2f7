"""The Collect page in a real headless Chromium (Playwright) against `streamlit run`."""
from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import REPO, scroll_to, serve, streamlit_argv
from tests.crawl_site.site import Route, Site, _jpeg, build_test_site, html

pytestmark = [pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian chromium")]


@pytest.fixture
def app(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), PHOTOLORE_DATA_DIR=str(tmp_path / "data"),
               PHOTOLORE_SECRETS=str(tmp_path / "no-secrets.toml"))
    with serve(streamlit_argv("pages/collect.py"), "/_stcore/health", tmp_path / "streamlit.log", env=env) as url:
        yield url, tmp_path / "data"


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
        slow[f"/img/{i}.jpg"] = _jpeg(100 + i, sleep=2.0)  # 40 x 2 s over 4 workers: ~20 s to press Cancel in
    site = Site(slow).start()
    try:
        _start(browser_page, url, f"slow: {site.base}/")
        browser_page.get_by_role("button", name="Cancel").click()
        browser_page.get_by_text("Cancelled after").wait_for()
    finally:
        site.stop()
    assert len(site.paths()) < 42


def test_refused_start_page_warns_with_the_checkbox_and_runs_once_it_is_ticked(app, browser_page, tmp_path):
    """A local start page is refused: a warning (not a green success) names the reason and the checkbox;
    ticking it and pressing Start again crawls the same start page."""
    url, data = app
    site = build_test_site().start()
    page = browser_page
    try:
        page.goto(url)
        page.get_by_text("Collect photos").first.wait_for()
        page.locator("textarea").first.fill(f"garden: {site.base}/")
        page.get_by_label("Seconds between requests per site").fill("0")
        page.get_by_label("Link depth").fill("0")
        page.get_by_text("Advanced").click()
        page.get_by_label("Minimum width/height (px)").fill("32")
        page.get_by_text("Add collected photos to the catalog and index").click()  # off: no model load in this test
        page.get_by_role("button", name="Start").click()
        warning = page.locator('[data-testid="stAlertContentWarning"]')
        warning.wait_for()
        text = warning.inner_text()
        scroll_to(warning)
        page.screenshot(path=str(tmp_path / "refused.png"))
        assert "Nothing was saved" in text and "non-public address 127.0.0.1" in text
        assert '"Allow private and local addresses"' in text and "--allow-private" in text
        assert page.locator('[data-testid="stAlertContentSuccess"]').count() == 0
        assert site.paths() == []

        page.get_by_test_id("stExpanderDetails").get_by_text("Allow private and local addresses").click()
        page.get_by_role("button", name="Start").click()
        page.get_by_text("new photos saved").wait_for()
        scroll_to(page.get_by_text("new photos saved"))
        page.screenshot(path=str(tmp_path / "allowed.png"))
        assert page.locator('[data-testid="stAlertContentWarning"]').count() == 0
    finally:
        site.stop()
    files = sorted(p.name for p in (data / "library" / "garden").iterdir())
    assert "a.jpg" in files and len(files) >= 8
