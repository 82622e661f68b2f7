"""The Library page over a big synthetic library (bench_million's rows, no photo files) in headless Chromium."""
from __future__ import annotations

import os

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
