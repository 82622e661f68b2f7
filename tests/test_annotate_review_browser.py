"""The Annotate review grid in headless Chromium: after saving a correction nothing is left
pending (test_annotate_page checks the corrected row's annotator column)."""
import os
import pytest

from tests.conftest import REPO, scroll_to, serve, shot, streamlit_argv

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_saved_correction_clears_the_pending_count(demo_env_copy, bundled_backend, browser_page, tmp_path):
    from core import annotations as ann
    from core.annotate.runner import make_annotator, run_annotations
    from core.services import build_services
    from core.settings import Settings

    services = build_services(Settings(data_dir=demo_env_copy), backend=bundled_backend)
    run_annotations(services, make_annotator("zeroshot", services), None)
    first = ann.effective_annotations(services.catalog).iloc[0]
    new_safety = 1 if first.Safety != 1 else 2

    page = browser_page
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with serve(streamlit_argv("pages/annotate.py"), "/_stcore/health", tmp_path / "streamlit.log", env=env) as url:
        page.goto(url, wait_until="domcontentloaded")
        grid = page.locator("[data-testid='stDataFrame']").first
        grid.wait_for()
        save = page.locator(".st-key-ann-save button")
        assert save.inner_text().strip() == "No unsaved corrections" and save.is_disabled()
        # Select the first row's file name (the photo column would open the image), step right to Safety, type.
        scroll_to(grid)
        page.wait_for_timeout(2000)  # the grid takes keys once it has drawn
        grid.click(position={"x": 100, "y": 52})
        for key in ("ArrowRight", str(new_safety), "Enter"):
            page.wait_for_timeout(500)
            page.keyboard.press(key)
        page.get_by_role("button", name="Save corrections (1 rows changed)").wait_for()
        shot(page, tmp_path, "annotate-pending")
        save.click()
        page.get_by_text("Saved corrections for 1 photos.").wait_for()
        assert save.inner_text().strip() == "No unsaved corrections" and save.is_disabled()
        row = ann.effective_annotations(services.catalog, [first.photo_id]).iloc[0]
        assert row.Safety == new_safety and row.corrected == ["Safety"]
        shot(page, tmp_path, "annotate-saved")
