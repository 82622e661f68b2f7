"""The Annotate page in a real headless Chromium: run the local annotator, see the review grid."""
import os
import re

import pytest

from tests.conftest import REPO, serve, streamlit_argv

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def annotate_server(demo_env_copy, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), PHOTOLORE_BATCH_SIZE="1")  # one photo per batch: room to cancel mid-run
    with serve(streamlit_argv("pages/annotate.py"), "/_stcore/health", tmp_path / "streamlit.log", env=env) as url:
        yield url


def test_annotate_page_cancel_resume_and_grid(annotate_server, browser_page, tmp_path, demo_env_copy):
    from core import annotations as ann
    from core.catalog import Catalog

    catalog = Catalog(demo_env_copy / "catalog.sqlite")
    page = browser_page
    page.goto(annotate_server, wait_until="domcontentloaded")
    page.get_by_text("Review and correct").wait_for(timeout=120_000)
    page.get_by_role("button", name="Run", exact=True).click()
    # Any in-progress state past the first photo: the frontend may coalesce fast progress updates,
    # so waiting for one exact count (e.g. 2/15) can miss it.
    page.get_by_text(re.compile(r"Annotating with zeroshot: [2-8]/15")).wait_for(timeout=180_000)
    page.get_by_role("button", name="Cancel", exact=True).click()
    page.get_by_text("Cancelled: the results", exact=False).wait_for(timeout=60_000)
    assert 2 <= len(ann.annotation_rows(catalog)) < 15  # finished batches were kept, the rest never started
    page.get_by_role("button", name="Run", exact=True).click()
    summary = page.get_by_text("already done", exact=False)
    summary.wait_for(timeout=180_000)
    done_before = int(re.search(r"(\d+) already done", summary.inner_text()).group(1))
    assert 2 <= done_before < 15  # the rerun resumed instead of starting over
    rows = ann.annotation_rows(catalog)
    assert len(rows) == 15 and len({r["photo_id"] for r in rows}) == 15
    page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=60_000)
    page.get_by_role("button", name="Download scores CSV").wait_for(timeout=60_000)
    page.screenshot(path=str(tmp_path / "annotate.png"), full_page=True)
