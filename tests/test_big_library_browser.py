"""The Library page over a big synthetic library (bench_million's rows, no photo files) in headless Chromium."""
from __future__ import annotations

import os
import re

import pytest

from tests.conftest import serve, shot, streamlit_argv

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def big_library(tmp_path):
    """12,000 synthetic photos, each annotated, and the environment of an app serving them."""
    from bench.bench_million import build
    from core.catalog import Catalog
    from core.settings import Settings

    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    catalog = Catalog(settings.catalog_target, library_dir=settings.library_dir)
    build(catalog, 12_000)
    env = dict(os.environ, PHOTOLORE_DATA_DIR=str(data), PHOTOLORE_BACKEND="bundled", PHOTOLORE_SECRETS=str(tmp_path / "none.toml"))
    return catalog, env


def test_a_big_library_pages_by_number(tmp_path, browser_page, big_library):
    """12,000 photos are 250 grid pages: the list of every page is replaced by a page number, and a page deep in the
    library shows its photos and says which they are (a million photos gave a list of 20,834 choices)."""
    catalog, env = big_library
    deep = catalog.list_photos(limit=48, offset=124 * 48)
    page = browser_page
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log", env=env) as url:
        page.goto(url + "/library", wait_until="domcontentloaded")
        number = page.locator(".st-key-lib-page-number input")
        number.wait_for(timeout=60_000)
        assert page.get_by_text("Page (of 250)").count() == 1 and page.get_by_text("Photos shown").count() == 0
        page.get_by_text("Photos 1–48 of 12,000").wait_for()
        number.fill("125")
        number.press("Enter")
        page.get_by_text("Photos 5,953–6,000 of 12,000").wait_for(timeout=30_000)
        page.locator(f".st-key-lib-grid-details-{deep[0].id}").first.wait_for(state="attached", timeout=30_000)
        page.locator(f".st-key-lib-grid-details-{deep[-1].id}").first.wait_for(state="attached", timeout=30_000)
        shot(page, tmp_path, "library-big-page-125")


def test_the_annotate_review_table_pages_a_big_library(tmp_path, browser_page, big_library):
    """12,000 annotated photos: the review table counts and pages them in the catalog, page 120 shows its 50 photos
    (it read every photo's annotations on each rerun: 40 s at a million photos)."""
    _, env = big_library
    page = browser_page
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log", env=env) as url:
        page.goto(url + "/annotate", wait_until="domcontentloaded")
        number = page.locator(".st-key-ann-page input")
        number.wait_for(timeout=90_000)
        page.get_by_text("Page (of 240)").wait_for()
        page.get_by_text("Photos 1–50 of 12,000").wait_for()
        number.fill("120")
        number.press("Enter")
        page.get_by_text("Photos 5,951–6,000 of 12,000").wait_for(timeout=30_000)
        page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=30_000)
        shot(page, tmp_path, "annotate-big-page-120")


def test_the_dashboards_keep_a_big_library_and_read_only_what_changed(tmp_path, browser_page, big_library):
    """The Dashboards read 12,000 photos' annotations once; corrections and a caption edited since are read alone on
    the next open, a restarted app starts from the copy on disk, and Reload reads everything again (PHOTOLORE_DASH_CACHE_FROM lowered
    so that 12,000 photos count as big)."""
    from core.annotations import set_corrections

    catalog, env = big_library
    env = dict(env, PHOTOLORE_DASH_CACHE_FROM="1000")
    page = browser_page
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log", env=env) as url:
        page.goto(url + "/dashboards", wait_until="domcontentloaded")
        page.get_by_text(re.compile(r"Read the annotations of all 12,000 photos \(\d")).wait_for(timeout=120_000)
        page.get_by_text("12,000 of 12,000 photos pass the filters.").wait_for()
        page.locator(".st-key-dash-section-hist").wait_for(timeout=60_000)
        ids = [p.id for p in catalog.list_photos(limit=3, offset=500)]
        set_corrections(catalog, {pid: {"Safety": 1} for pid in ids})
        page.reload(wait_until="domcontentloaded")
        page.get_by_text(re.compile(r"Re-read the 3 photos that changed")).wait_for(timeout=60_000)
        page.locator(".st-key-dash-section-box").wait_for(timeout=60_000)
        shot(page, tmp_path, "dashboards-big-changes")
        catalog.set_caption(ids[0], "a caption edited on the Library page", "user")  # numbered by the catalog: no Reload
        page.reload(wait_until="domcontentloaded")
        page.get_by_text(re.compile(r"Re-read the 1 photo that changed")).wait_for(timeout=60_000)
    assert (tmp_path / "data" / "cache" / "annotations-frame.arrow").exists()
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit2.log", env=env) as url:
        page.goto(url + "/dashboards", wait_until="domcontentloaded")
        page.get_by_text(re.compile(r"Annotations from the copy on disk, and the 3 photos changed since")).wait_for(timeout=120_000)
        page.locator(".st-key-dash-section-hist").wait_for(timeout=60_000)
        reload = page.locator(".st-key-dash-reload button")
        reload.click()
        page.get_by_text(re.compile(r"Read the annotations of all 12,000 photos \(\d")).wait_for(timeout=120_000)
        assert reload.is_enabled()
        shot(page, tmp_path, "dashboards-big-reloaded")
