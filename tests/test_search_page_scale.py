"""The Search page over a generated library (bench/bench_search_page.py's builder, small here):
text results come up, and the sidebar's facts counts, cached between reruns, follow the catalog."""
import os
from pathlib import Path

import pytest

from tests.conftest import serve, shot, streamlit_argv

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SIZE = 600


def test_search_page_on_a_generated_library(browser_page, tmp_path):
    from playwright.sync_api import expect

    from bench.bench_search_page import build_library, time_page
    from core.catalog import Catalog, FileRecord, Photo, now_iso
    from core.facts import PhotoFacts
    from core.settings import Settings
    from models.bundled import MODEL_ID

    data_dir = build_library(tmp_path / "library", SIZE)
    settings = Settings(data_dir=data_dir)
    people = sum(1 for i in range(SIZE) if i % 7 == 0)  # the builder gives every 7th photo a person
    env = dict(os.environ, PHOTOLORE_DATA_DIR=str(data_dir), PHOTOLORE_BACKEND="bundled",
               PHOTOLORE_SECRETS=str(tmp_path / "no-secrets.toml"))
    page = browser_page
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log", env=env) as url:
        timing = time_page(url, ["a cup of coffee", "a red car"], page)
        assert len(timing["first_result_s"]) == 2
        grid = page.locator("[class*='st-key-search-grid-why-'] button >> visible=true")
        expect(grid).to_have_count(12)  # the default number of results, drawn one after another
        sidebar = page.locator("[data-testid='stSidebar']")
        sidebar.get_by_text(f"with people ({people})").wait_for()
        shot(page, tmp_path, "search-generated-library")

        # a photo added by another process: the next rerun counts it (the cache keys on the catalog files)
        facts = PhotoFacts(caption="a person", people=1, faces=1, text_checked=True)
        photo = Photo(id="f" * 64, path="/photos/new.jpg", source="test", added_at=now_iso(), facts=facts,
                      thumb_path=str(next(Path(settings.thumbs_dir).rglob("*.jpg"))))
        Catalog(settings.catalog_path).commit_batch([photo], [FileRecord(photo.path, photo.id, 1, 1)], MODEL_ID, indexed=[photo.id])
        page.reload(wait_until="domcontentloaded")
        sidebar.get_by_text(f"with people ({people + 1})").wait_for()
