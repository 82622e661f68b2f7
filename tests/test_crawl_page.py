"""The Collect page driven by Streamlit's AppTest against the local test site."""
from __future__ import annotations

from pathlib import Path

import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.crawl_site.site import build_test_site

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "collect.py")


@pytest.fixture
def site():
    s = build_test_site().start()
    yield s
    s.stop()


def _run_until_finished(at: AppTest, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        at.run()
        texts = [s.value for s in at.success] + [w.value for w in at.warning] + [e.value for e in at.error]
        if texts:
            return
        time.sleep(0.3)
    raise AssertionError("the crawl did not finish in time")


def test_collect_page_crawls_shows_progress_and_skips(site, tmp_path, monkeypatch):
    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHOTOLORE_SECRETS", str(tmp_path / "no-secrets.toml"))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception
    at.text_area(key="collect_seeds").input(f"rooms: {site.base}/")
    at.number_input(key="collect_max_depth").set_value(1)
    at.number_input(key="collect_delay").set_value(0.0)
    at.number_input(key="collect_min_size").set_value(32)
    at.checkbox(key="collect_allow_private").check()
    at.checkbox(key="collect_ingest").uncheck()
    at.button[0].click()  # the form's Start button
    _run_until_finished(at)
    assert not at.exception
    assert at.success, [e.value for e in at.error]
    assert "new photos saved" in at.success[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Pages visited"] == "5"  # home, nested page 1, calendar 1, css, moved (depth 1); robots-blocked page not visited
    saved = int(metrics["Downloaded"])
    files = list((tmp_path / "data" / "library" / "rooms").iterdir())
    assert saved == len(files) >= 8
    reasons = " ".join(str(v) for v in at.dataframe[0].value["reason"])
    assert "blocked by robots.txt" in reasons and "near duplicate" in reasons
    assert "/calendar?month=2" not in site.paths()


def test_collect_page_says_what_is_wrong_with_a_bad_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHOTOLORE_SECRETS", str(tmp_path / "no-secrets.toml"))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    at.text_area(key="collect_seeds").input("kitchen: not-a-url")
    at.button[0].click()
    at.run()
    assert at.error and "line 1" in at.error[0].value
