"""The Library page in a real headless Chromium: import a messy folder, see every file, keep a near duplicate."""
from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import REPO, scroll_to, serve, streamlit_argv
from tests.test_import_robust import make_messy_folder

pytestmark = [pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian chromium")]


@pytest.fixture
def app(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), PHOTOLORE_DATA_DIR=str(tmp_path / "data"), PHOTOLORE_BACKEND="bundled",
               PHOTOLORE_SECRETS=str(tmp_path / "no-secrets.toml"))
    with serve(streamlit_argv("pages/library.py"), "/_stcore/health", tmp_path / "streamlit.log", env=env) as url:
        yield url


def test_import_report_lists_every_file_and_a_near_duplicate_can_be_kept(app, browser_page, tmp_path):
    folder = tmp_path / "card"
    make_messy_folder(folder)
    page = browser_page
    page.goto(app)
    box = page.get_by_label("Import a folder on this machine (sub-folders become classes)")
    box.fill(str(folder))
    box.press("Enter")
    page.get_by_role("button", name="Import folder").click()
    summary = page.get_by_text("11 files seen", exact=False).first
    summary.wait_for(timeout=300_000)
    counts = page.locator('[data-testid="stTable"]').first
    scroll_to(counts)
    page.screenshot(path=str(tmp_path / "report.png"))
    text = " ".join(counts.inner_text().split())
    for row in ("added 4", "near duplicate 1", "duplicate 1", "not read: not an image type PhotoLore reads 3",
                "skipped: camera RAW 1", "skipped: empty file 1"):
        assert row in text, (row, text)
    assert page.locator('[data-testid="stAlertContentWarning"]').count() >= 1  # not a green success: files were left out

    panel = page.get_by_text("Near duplicates left out of the library (1)")
    scroll_to(panel)
    pair = page.get_by_test_id("stText").filter(has_text="small-coffee.jpg")
    assert "looks like" in pair.inner_text() and "coffee.jpg" in pair.inner_text() and "distance" in pair.inner_text()
    page.screenshot(path=str(tmp_path / "near.png"))
    # The photo whose name is not valid UTF-8 is in the grid, its bad bytes shown as \xHH.
    # (waited for: the grid is redrawn by the rerun that follows the report, which CI once read before it ended)
    page.get_by_text("caf\\xe9 on the beach \\xff.jpg", exact=False).first.wait_for(state="attached", timeout=30_000)

    page.get_by_role("button", name="Keep both").click()
    page.get_by_text("1 new photos", exact=False).first.wait_for(timeout=300_000)
    assert page.get_by_text("Near duplicates left out of the library").count() == 0
    metric = page.locator('[data-testid="stMetric"]').first.inner_text()
    page.screenshot(path=str(tmp_path / "kept.png"))
    assert "Photos" in metric and "5" in metric


def test_crawled_photo_details_show_page_url_image_url_and_alt_text(browser_page, tmp_path, settings, services):
    from core.crawl import CrawlConfig
    from core.crawl.job import CollectJob, ingest_with
    from tests.crawl_site.site import Route, Site, _jpeg, html

    site = Site({"/robots.txt": Route(b"User-agent: *\nAllow: /\n", "text/plain"),
                 "/garden.html": Route(html("Our garden", '<img src="/img/rose.jpg" alt="A red rose by the wall">')),
                 "/img/rose.jpg": _jpeg(60)}).start()
    try:
        config = CrawlConfig.from_settings(settings, [("garden", site.base + "/garden.html")], max_depth=0, delay_s=0.0,
                                           min_width=32, min_height=32, allow_private=True)
        job = CollectJob(config, ingest_with(services)).start()
        job.join(120)
        assert job.snapshot().state == "done" and services.catalog.count() == 1
    finally:
        site.stop()
    env = dict(os.environ, PYTHONPATH=str(REPO), PHOTOLORE_DATA_DIR=str(settings.data_dir), PHOTOLORE_BACKEND="bundled",
               PHOTOLORE_SECRETS=str(tmp_path / "no-secrets.toml"))
    page = browser_page
    with serve(streamlit_argv("pages/library.py"), "/_stcore/health", tmp_path / "streamlit.log", env=env) as url:
        page.goto(url)
        page.get_by_text("rose.jpg").first.wait_for()
        page.locator("button:has-text('info')").first.click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("source page").wait_for()
        scroll_to(dialog.get_by_text("source page"))
        page.screenshot(path=str(tmp_path / "details.png"))
        text = dialog.inner_text()
    assert f"{site.base}/garden.html" in text and f"{site.base}/img/rose.jpg" in text
    assert "A red rose by the wall" in text and "Our garden" in text
