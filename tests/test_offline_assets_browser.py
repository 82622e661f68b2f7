"""Every asset the app's pages load comes from the app itself: nothing from a CDN (the tab icon
was fetched from a font CDN and failed offline)."""
from urllib.parse import urlparse

import pytest

from tests.conftest import serve, streamlit_argv

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_pages_load_no_asset_from_outside(demo_env, browser_page, tmp_path):
    page = browser_page
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log") as url:
        for path in ("/", "/search", "/dashboards"):
            page.goto(url + path, wait_until="domcontentloaded")
            page.locator("h1").first.wait_for()
            page.wait_for_timeout(3000)  # late fetches (icons, fonts) happen after the first paint
        icon = page.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)")
    outside = sorted({u for u in requested if urlparse(u).scheme in ("http", "https") and urlparse(u).hostname != "127.0.0.1"})
    assert not outside, outside
    assert icon and all(h.startswith(url) or h.startswith("data:") for h in icon), icon
