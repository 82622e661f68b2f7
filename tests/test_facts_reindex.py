"""Reindex upgrades an existing library's photo facts in place: nothing re-added, resumable, exactly once."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading

import pytest

from core.facts import FACTS_VERSION
from core.facts.refresh import refresh_facts, stale_count
from core.facts.view import facts_where
from core.search import search_text
from tests.conftest import PYTHON, REPO, start_then_sigkill

pytestmark = pytest.mark.slow


def _age_library(db) -> None:
    """Make the demo library look older: half the photos have no facts, the rest facts of an older version,
    and the backend's captions are the old three-tag sentences."""
    with sqlite3.connect(db) as con:
        con.execute("UPDATE photos SET caption='a photo of ' || json_extract(tags, '$[0][0]') WHERE caption_source LIKE 'bundled:%'")
        # The facts JSON and its summary columns (schema 4) together, as the catalog writes them.
        con.execute("UPDATE photos SET facts=json_set(facts, '$.version', ?), facts_version=?", (FACTS_VERSION - 1, FACTS_VERSION - 1))
        con.execute("UPDATE photos SET facts=NULL, facts_people=NULL, facts_ntext=NULL, facts_scene=NULL, facts_version=NULL "
                    "WHERE rowid % 2 = 0")


def _current(db) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM photos WHERE json_extract(facts, '$.version') = ?", (FACTS_VERSION,)).fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture
def old_library(demo_env_copy, bundled_backend, monkeypatch):
    from core.services import build_services
    from core.settings import Settings

    monkeypatch.setenv("PHOTOLORE_BATCH_SIZE", "4")
    s = build_services(Settings(), backend=bundled_backend)
    _age_library(s.settings.catalog_path)
    ids = [p.id for p in s.catalog.list_photos(limit=100)]
    s.store.delete(s.backend.model_id, "facts", ids)  # an index built before facts had no facts vectors
    # Stale index metadata too (nobody found, no scene), so the test sees the index being rewritten.
    s.store.update_metadata(ids, [{"has_people": False, "has_text": False, "scene": "old"} for _ in ids])
    return s


def test_reindex_upgrades_facts_in_place_resumable_and_keeps_annotations(old_library):
    s = old_library
    model = s.backend.model_id
    coffee = next(p.id for p in s.catalog.list_photos(limit=100) if p.path.endswith("coffee.jpg"))
    s.store.update_metadata([coffee], [{"topic_food": True}])
    counts = (s.catalog.count(), s.catalog.count_files(), s.store.count(model, "image"), s.store.count(model, "caption"))
    assert stale_count(s.catalog) == 15

    cancel = threading.Event()
    first = refresh_facts(s, cancel=cancel, on_progress=lambda done, total, **i: cancel.set() if done >= 4 else None)
    assert first.cancelled and first.updated == 4 and stale_count(s.catalog) == 11
    rest = refresh_facts(s)
    assert not rest.cancelled and not rest.failed and rest.updated == 11 and stale_count(s.catalog) == 0
    assert refresh_facts(s).updated == 0  # nothing left: a rerun does no work
    assert first.captions + rest.captions == 15  # every old tag caption was the backend's: rewritten from the facts

    assert (s.catalog.count(), s.catalog.count_files(), s.store.count(model, "image"), s.store.count(model, "caption")) == counts
    photos = {p.path.rsplit("/", 1)[-1]: p for p in s.catalog.list_photos(limit=100)}
    assert all(p.facts is not None and p.facts.version == FACTS_VERSION for p in photos.values())
    assert photos["astronaut.jpg"].facts.has_people and not photos["coffee.jpg"].facts.has_people
    # The index carries the new facts, and the annotation written before the upgrade.
    people = {r.photo.path.rsplit("/", 1)[-1] for r in search_text(s, "a photo", k=15, where=facts_where(has_people=True))}
    assert "astronaut.jpg" in people and "coffee.jpg" not in people
    assert [r.photo.id for r in search_text(s, "a cup of coffee", k=15, where={"topic_food": True})] == [coffee]
    meta = s.store.get_metadata(model, "caption", [coffee])[coffee]
    assert meta["scene"] == photos["coffee.jpg"].facts.scene and meta["caption"] == photos["coffee.jpg"].caption
    # Version 2 keys (colour-and-layout cues) reach the index: the grey camera man is black and white, the coffee is not.
    assert meta["monochrome"] is False and meta["setting"] in ("", "indoor", "outdoor")
    grey = {r.photo.path.rsplit("/", 1)[-1] for r in search_text(s, "a photo", k=15, where=facts_where(monochrome=True))}
    assert "camera.jpg" in grey and "coffee.jpg" not in grey
    # Facts vectors were added for every photo, carrying the photo's metadata (annotation included).
    assert s.store.ids(model, "facts") == {p.id for p in photos.values()}
    facts_meta = s.store.get_metadata(model, "facts", [coffee])[coffee]
    assert facts_meta["topic_food"] is True and facts_meta["class_name"] == "demo" and facts_meta["scene"] == meta["scene"]


def test_killed_reindex_rerun_holds_every_photo_once(old_library):
    """SIGKILL `python -m core reindex` mid-run; the rerun finishes the facts with no duplicate anywhere."""
    s = old_library
    db, model = s.settings.catalog_path, s.backend.model_id
    env = dict(os.environ, PHOTOLORE_BATCH_SIZE="2")
    start_then_sigkill([PYTHON, "-m", "core", "reindex"], env, lambda: _current(db) >= 2)
    at_kill = _current(db)
    assert 0 < at_kill < 15, f"the kill should land mid-run ({at_kill}/15 photos had new facts)"
    done = subprocess.run([PYTHON, "-m", "core", "reindex", "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["reindexed"] == 0 and out["facts"]["updated"] == 15 - at_kill and out["facts"]["failed"] == []
    ids = {p.id for p in s.catalog.list_photos(limit=100)}
    assert _current(db) == 15 and s.catalog.count() == 15 and s.catalog.count_files() == 15
    for space in ("image", "caption", "facts"):
        assert s.store.ids(model, space) == ids
