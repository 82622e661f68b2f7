"""`render='js'`: a page whose photo only exists after its script ran, rendered by headless Chromium."""
from __future__ import annotations

import shutil

import pytest

from core.crawl import CrawlConfig, crawl
from tests.crawl_site.site import build_js_site

pytestmark = [pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")), reason="needs chromium + chromedriver")]


@pytest.fixture
def js_site():
    s = build_js_site().start()
    yield s
    s.stop()


def _config(site, tmp_path, render):
    return CrawlConfig(seeds=[("scripted", site.base + "/")], library_dir=tmp_path / render / "library",
                       state_path=tmp_path / render / "crawl.sqlite", max_depth=0, workers=1, delay_s=0.0,
                       timeout_s=20, min_width=32, min_height=32, render=render, render_wait_s=0.2, allow_private=True)


def test_js_render_finds_images_inserted_by_script(js_site, tmp_path):
    static = crawl(_config(js_site, tmp_path, "static"))
    assert static.pages_visited == 1 and static.images_found == 0

    rendered = crawl(_config(js_site, tmp_path, "js"))
    assert [p.url for p in rendered.saved] == [js_site.base + "/img/js.jpg"]
    assert rendered.saved[0].alt == "made by script" and rendered.saved[0].title == "Scripted"
    assert rendered.saved[0].path.parent.name == "scripted"
