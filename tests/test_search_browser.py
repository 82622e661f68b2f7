"""The Search page in headless Chromium: a weak match says so in "Why", and "More like this"
shows a file name and gives the text query back on Clear."""
import re
from pathlib import Path

import pytest

from tests.conftest import scroll_to, serve, shot, streamlit_argv

pytestmark = [pytest.mark.browser, pytest.mark.slow]
QUERY = "a cup of coffee"


def _button(page, key: str):
    """The visible button with widget key `key` (a button with a tooltip is also drawn a second time, hidden)."""
    button = page.locator(f".st-key-{key} button >> visible=true").first
    button.wait_for()
    return button


def test_why_flags_weak_match_and_more_like_this_keeps_the_query(demo_env, bundled_backend, browser_page, tmp_path):
    from core.search import search_text, split_matches
    from core.services import build_services
    from core.settings import Settings

    results = search_text(build_services(Settings(), backend=bundled_backend), QUERY, k=12)
    cut = split_matches(bundled_backend, results)[2]
    weak = results[-1]
    assert weak.score < cut, (weak.score, cut)  # the data this test needs: a result below the calibrated cut-off
    coffee = next(r for r in results if Path(r.photo.path).name.startswith("coffee"))
    assert coffee.score >= cut, (coffee.score, cut)

    page = browser_page
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log") as url:
        page.goto(url + "/search", wait_until="domcontentloaded")
        box = page.get_by_label("Describe the photo")
        box.fill(QUERY)
        box.press("Enter")
        # Matches above the calibrated cut-off first, weaker ones apart under their own heading.
        heading = page.get_by_role("heading", name="Weaker matches")
        heading.wait_for(timeout=180_000)
        y = {name: loc.bounding_box()["y"] for name, loc in (("coffee", _button(page, f"search-grid-why-{coffee.photo.id}")),
                                                             ("heading", heading), ("weak", _button(page, f"search-grid-why-{weak.photo.id}")))}
        assert y["coffee"] < y["heading"] < y["weak"], y
        scroll_to(heading)
        shot(page, tmp_path, "search-weaker-matches")
        _button(page, f"search-grid-why-{weak.photo.id}").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Weak match", exact=True).wait_for(timeout=180_000)
        text = dialog.inner_text()
        assert f"score {weak.score:.3f}" in text and f"cut-off {cut:.3f}" in text
        dialog.get_by_text("weak match: greyed").wait_for()
        shot(page, tmp_path, "search-why-weak")
        page.keyboard.press("Escape")
        dialog.wait_for(state="hidden")

        _button(page, f"search-grid-like-{coffee.photo.id}").click()
        info = page.get_by_text(re.compile(r"^Photos like "))
        info.wait_for()
        assert info.inner_text().strip() == f"Photos like {Path(coffee.photo.path).name}"
        main = page.locator("[data-testid='stMain']").inner_text()
        assert coffee.photo.path not in main and str(demo_env) not in main  # no server paths
        assert box.input_value() == QUERY  # the text query is still there
        shot(page, tmp_path, "search-more-like")
        _button(page, "search-like-clear").click()
        info.wait_for(state="hidden")
        assert box.input_value() == QUERY
        _button(page, f"search-grid-why-{coffee.photo.id}")  # the text results are back
