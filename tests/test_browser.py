"""End to end: `streamlit run` on 127.0.0.1, driven by Debian's headless Chromium."""
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_search_for_coffee_in_a_real_browser(streamlit_server, browser_page, tmp_path):
    page = browser_page
    page.goto(f"{streamlit_server}/search", wait_until="domcontentloaded")
    box = page.get_by_label("Describe the photo")
    box.wait_for(timeout=120_000)
    assert page.get_by_text("Backend:", exact=False).first.is_visible()
    box.fill("a cup of coffee")
    box.press("Enter")
    first = page.get_by_text("coffee.jpg", exact=False).first
    first.wait_for(timeout=120_000)
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)
    # The first result card carries the highest score and is the coffee photo.
    scores = page.locator("[data-testid='stCaptionContainer']").all_inner_texts()
    ranked = [s for s in scores if s[:2] in ("0.", "1.")]
    assert ranked and "coffee" in ranked[0], ranked[:4]


def test_library_page_in_a_real_browser(streamlit_server, browser_page):
    page = browser_page
    page.goto(streamlit_server, wait_until="domcontentloaded")
    page.get_by_text("Library", exact=False).first.wait_for(timeout=120_000)
    page.get_by_text("Photos", exact=True).first.wait_for(timeout=120_000)
    assert page.get_by_text("15", exact=True).first.is_visible()


def test_dashboards_page_renders_in_a_real_browser(streamlit_server, browser_page):
    page = browser_page
    page.goto(f"{streamlit_server}/dashboards", wait_until="domcontentloaded")
    page.get_by_text("Embedding map", exact=True).first.wait_for(timeout=120_000)
    page.get_by_text("projection of 15 image embeddings", exact=False).first.wait_for(timeout=120_000)
    # The map is a real Vega chart (canvas or SVG marks), not just a heading.
    page.locator("[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg").first.wait_for(timeout=60_000)
    assert page.get_by_text("no photo has affective scores yet", exact=False).first.is_visible()
