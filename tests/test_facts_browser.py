"""End to end in headless Chromium: the Library's photo details show the facts, Search filters by them."""
from __future__ import annotations

import re
import time
from dataclasses import replace

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core.facts import PhotoFacts
from tests.conftest import scroll_to, serve, streamlit_argv
from tests.test_facts_use import FACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def facts_server(demo_env_copy, bundled_backend, tmp_path):
    """`streamlit run` over a copy of the demo library whose photos carry hand-written true facts."""
    from core.facts.refresh import store_facts
    from core.services import build_services
    from core.settings import Settings

    s = build_services(Settings(), backend=bundled_backend)
    ids = {p.path.rsplit("/", 1)[-1]: p.id for p in s.catalog.list_photos(limit=100)}
    # Every photo gets hand facts (the others: none found), so the page shows exactly these.
    facts = {n: FACTS.get(n, PhotoFacts(text_checked=True)) for n in ids}
    if "camera.jpg" in facts:  # the demo's camera man is a grey photo
        facts["camera.jpg"] = replace(facts["camera.jpg"], monochrome=True, setting="outdoor", setting_score=0.6)
    # what the object detector finds on the coffee photo (boxes as shares of the photo), by hand
    facts["coffee.jpg"] = replace(facts["coffee.jpg"], detector="centernet-320",
                                  detections=[("cup", 0.62, (0.2, 0.05, 0.85, 0.7)), ("dining table", 0.41, (0.0, 0.3, 1.0, 1.0))])
    store_facts(s, [(ids[n], f) for n, f in facts.items()])
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log") as url:
        yield url, ids


def test_library_details_show_the_facts_as_plain_text(facts_server, browser_page, tmp_path):
    url, ids = facts_server
    page = browser_page
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_text("Photos", exact=True).first.wait_for(timeout=120_000)
    page.locator(f".st-key-lib-grid-details-{ids['rocket.jpg']} button").first.click()  # the info icon (tooltip "Details")
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Photo facts", exact=True).wait_for(timeout=60_000)
    facts = dialog.get_by_text('Text read: "SPACEX" (0.93)', exact=False)
    facts.wait_for(timeout=60_000)
    scroll_to(facts)
    page.screenshot(path=str(tmp_path / "library-facts.png"))  # the viewport: the dialog scrolls inside it
    body = dialog.inner_text()
    assert "Scene: street (0.30)" in body and "People: none found" in body and "Objects: rocket (0.80), vehicle (0.80)" in body


def test_library_details_draw_the_detected_boxes(facts_server, browser_page, tmp_path):
    url, ids = facts_server
    page = browser_page
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_text("Photos", exact=True).first.wait_for(timeout=120_000)
    page.locator(f".st-key-lib-grid-details-{ids['coffee.jpg']} button").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Detected (centernet-320): cup, dining table", exact=False).wait_for(timeout=60_000)
    caption = dialog.get_by_text("Boxes: what the object detector found", exact=False)
    caption.wait_for(timeout=60_000)
    img = dialog.locator("img").first
    img.wait_for(timeout=60_000)
    assert page.evaluate("(el) => el.complete && el.naturalWidth > 0", img.element_handle())
    page.screenshot(path=str(tmp_path / "library-boxes.png"))
    # the photo shown is the drawn copy: its pixels carry the boxes' yellow, which the coffee photo has little of
    import io

    from PIL import Image

    shot = Image.open(io.BytesIO(img.screenshot())).convert("RGB")
    yellow = sum(1 for r, g, b in shot.getdata() if r > 230 and 180 < g < 220 and b < 40)
    assert yellow > 200, yellow
    # a photo without detections shows the plain photo, no caption about boxes
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached", timeout=30_000)
    page.locator(f".st-key-lib-grid-details-{ids['rocket.jpg']} button").first.click()
    # wait for the rocket's own facts: "Photo facts" alone can still be the coffee dialog's, read before it redraws
    page.get_by_role("dialog").get_by_text('Text read: "SPACEX"', exact=False).wait_for(timeout=60_000)
    assert "Boxes:" not in page.get_by_role("dialog").inner_text()


def _coffee_then_filter(url: str, page, filter_label: str, want: list[str], shot) -> list[str]:
    """Search "a cup of coffee", tick a facts filter in the sidebar, and return the filtered grid's file names."""
    page.goto(f"{url}/search", wait_until="domcontentloaded")
    box = page.get_by_label("Describe the photo")
    box.wait_for(timeout=120_000)
    box.fill("a cup of coffee")
    box.press("Enter")
    page.get_by_text("coffee.jpg", exact=False).first.wait_for(timeout=120_000)  # unfiltered: the coffee photo leads
    page.get_by_text(filter_label, exact=True).click()
    page.get_by_text("coffee.jpg", exact=False).first.wait_for(state="detached", timeout=120_000)
    page.get_by_text(want[0], exact=False).first.wait_for(timeout=60_000)
    # Streamlit keeps the previous run's cards (stale) until the rerun finishes: wait for the final grid.
    names: list[str] = []
    deadline = time.time() + 60
    while time.time() < deadline:
        names = sorted(t.split("·")[-1].strip() for t in page.locator("[data-testid='stCaptionContainer']").all_inner_texts() if ".jpg" in t)
        if names == want:
            break
        time.sleep(0.5)
    page.screenshot(path=str(shot), full_page=True)
    return names


def test_search_filter_has_people_in_a_real_browser(facts_server, browser_page, tmp_path):
    url, _ = facts_server
    names = _coffee_then_filter(url, browser_page, "with people (2)", ["astronaut.jpg", "camera.jpg"], tmp_path / "search-people.png")
    assert names == ["astronaut.jpg", "camera.jpg"], names


def test_search_filter_black_and_white_in_a_real_browser(facts_server, browser_page, tmp_path):
    url, _ = facts_server
    names = _coffee_then_filter(url, browser_page, "black and white", ["camera.jpg"], tmp_path / "search-black-and-white.png")
    assert names == ["camera.jpg"], names


def test_dashboards_facts_breakdown(facts_server, browser_page, tmp_path):
    url, _ = facts_server
    page = browser_page
    page.goto(f"{url}/dashboards", wait_until="domcontentloaded")
    page.get_by_text("Photo facts", exact=True).first.wait_for(timeout=120_000)
    page.get_by_text("15 of 15", exact=True).wait_for(timeout=60_000)
    heading = page.get_by_text("With people", exact=True)
    scroll_to(heading)
    page.screenshot(path=str(tmp_path / "dashboards-facts.png"), full_page=True)
    metrics = page.locator("[data-testid='stMetric']").all_inner_texts()
    assert any("With people" in m and "13%" in m for m in metrics), metrics
    assert any("With text" in m and "7%" in m for m in metrics), metrics


@pytest.fixture
def old_library_server(demo_env_copy, bundled_backend, tmp_path):
    """`streamlit run` over a copy of the demo library made to look older (facts missing or outdated)."""
    from core.settings import Settings
    from tests.test_facts_reindex import _age_library

    _age_library(Settings().catalog_path)
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log") as url:
        yield url


def test_library_updates_older_facts_in_a_real_browser(old_library_server, browser_page, tmp_path):
    page = browser_page
    page.goto(old_library_server, wait_until="domcontentloaded")
    page.get_by_text("15 photos have older facts", exact=False).first.wait_for(timeout=120_000)
    page.get_by_role("button", name="Update their facts").click()
    page.get_by_text("facts updated for 15 of 15 photos", exact=False).first.wait_for(timeout=300_000)
    page.screenshot(path=str(tmp_path / "library-updated.png"), full_page=True)
    assert page.get_by_text("photos have older facts", exact=False).count() == 0


def test_search_filter_by_detected_object_in_a_real_browser(facts_server, browser_page, tmp_path):
    url, _ = facts_server
    page = browser_page
    page.goto(f"{url}/search", wait_until="domcontentloaded")
    box = page.get_by_label("Describe the photo")
    box.wait_for(timeout=120_000)
    box.fill("a photo")
    box.press("Enter")
    page.get_by_text("rocket.jpg", exact=False).first.wait_for(timeout=120_000)
    chooser = page.locator(".st-key-search-objects input").first
    # only the objects some photo has, each with its number of photos (not all 79 detector labels)
    options = page.get_by_role("option")
    deadline = time.time() + 60
    while True:  # a rerun still drawing the results redraws the sidebar and closes a list opened meanwhile
        chooser.click()
        try:
            options.first.wait_for(timeout=5_000)
            break
        except PlaywrightTimeout:
            if time.time() > deadline:
                page.screenshot(path=str(tmp_path / "search-object-choices-never-opened.png"), full_page=True)
                raise
            chooser.press("Escape")
    listed = [o for o in options.all_inner_texts() if o != "Select all"]  # Streamlit's own first option
    page.screenshot(path=str(tmp_path / "search-object-choices.png"), full_page=True)
    assert "cup (1)" in listed and len(listed) < 20, listed
    assert all(re.fullmatch(r"[a-z ]+ \(\d+\)", o) for o in listed) and not any(o.startswith("person") for o in listed), listed
    chooser.fill("cup")
    chooser.press("Enter")
    page.get_by_text("rocket.jpg", exact=False).first.wait_for(state="detached", timeout=120_000)
    names: list[str] = []
    deadline = time.time() + 60
    while time.time() < deadline:
        names = sorted(t.split("·")[-1].strip() for t in page.locator("[data-testid='stCaptionContainer']").all_inner_texts() if ".jpg" in t)
        if names == ["coffee.jpg"]:
            break
        time.sleep(0.5)
    page.screenshot(path=str(tmp_path / "search-object.png"), full_page=True)
    assert names == ["coffee.jpg"], names
