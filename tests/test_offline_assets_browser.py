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


def test_a_deep_link_as_first_visit_gets_the_whole_app(demo_env, browser_page, tmp_path):
    """A reload of /dashboards right after the app (re)started: Streamlit's legacy pages/ mode ran the page
    alone, without app.py, so it had no navigation, a narrow centred layout and Streamlit's own tab icon."""
    page = browser_page
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log") as url:
        page.goto(url + "/dashboards", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Dashboards").wait_for()
        sidebar = page.get_by_test_id("stSidebar")
        for name in ("Library", "Search", "Chat"):
            sidebar.get_by_role("link", name=name).wait_for()  # app.py's navigation is there
        width = page.get_by_test_id("stMainBlockContainer").evaluate("e => e.getBoundingClientRect().width")
        assert width > 900, width  # the wide layout of app.py's page config (centred is 736 px)
        assert page.url == url + "/dashboards"
        assert page.title().endswith("PhotoLore") or "PhotoLore" in page.title(), page.title()
