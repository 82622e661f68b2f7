"""Crawled photos end up ingested and searchable; the CLI command works end to end."""
from __future__ import annotations

import pytest

from core.crawl import CrawlConfig
from core.crawl.cli import main as crawl_main
from core.crawl.job import CollectJob, ingest_with
from tests.crawl_site.site import build_test_site


@pytest.fixture
def site():
    s = build_test_site().start()
    yield s
    s.stop()


def test_cli_crawl_saves_into_the_data_dir_library(site, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHOTOLORE_SECRETS", str(tmp_path / "no-secrets.toml"))
    rc = crawl_main(["crawl", f"kitchen: {site.base}/nested/page1.html", "--allow-private", "--no-ingest", "--delay", "0",
                     "--max-depth", "0", "--min-size", "32", "--workers", "2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "data" / "library" / "kitchen").iterdir()) == ["a.jpg", "n1.jpg"]
    assert "saved: 2" in out and (tmp_path / "data" / "crawl.sqlite").exists()
    assert crawl_main(["crawl", "kitchen: ftp://x"]) == 2


@pytest.mark.slow
def test_collect_job_ingests_crawled_photos_and_they_are_searchable(site, settings, services):
    from core.search import search_text

    config = CrawlConfig.from_settings(settings, [("garden", site.base + "/")], max_depth=0, delay_s=0.0, min_width=32,
                                       min_height=32, timeout_s=0.6, retries=1, backoff_s=0.05, allow_private=True)
    job = CollectJob(config, ingest_with(services)).start()
    job.join(120)
    snap = job.snapshot()
    assert snap.state == "done", snap.error
    assert snap.saved >= 8 and "new photos" in snap.ingest_summary
    photos = services.catalog.list_photos(class_name="garden")
    assert len(photos) == snap.saved
    results = search_text(services, "a photo", k=50)
    found = {r.photo.id for r in results}
    assert found == {p.id for p in photos}
