"""Photo facts in the catalog: the v1 -> v2 upgrade in place, round trips, stale lists, counts."""
from __future__ import annotations

import json
import sqlite3

import core.catalog as catalog_mod
from core.catalog import _SCHEMA, Catalog, FileRecord, Photo
from core.facts import FACTS_VERSION, PhotoFacts
from core.facts.view import facts_lines, facts_where

ASTRONAUT = PhotoFacts(caption="a portrait of a person", labels=[("mask", 0.3)], objects=[("person", 0.9), ("suit", 0.4)],
                       people=1, faces=1, scene="portrait", scene_score=0.7, colours=["white", "black"], text_checked=True)
SIGN = PhotoFacts(caption="a sign that says Cafe Milano", objects=[("sign", 0.8)], text=[("Cafe Milano", 0.97)], text_checked=True,
                  scene="street", scene_score=0.55, colours=["red"], notes=["people detector timed out"])


def _v1_catalog(path):
    """A catalog file exactly as the schema before facts wrote it (version 1, no facts column)."""
    con = sqlite3.connect(path)
    con.executescript(_SCHEMA)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO photos (id, path, source, added_at, caption, caption_source, tags) VALUES (?,?,?,?,?,?,?)",
                ("a" * 64, "/lib/astronaut.png", "demo", "2026-01-01T00:00:00+00:00", "a photo of mask", "bundled:x",
                 json.dumps([["mask", 0.3]])))
    con.execute("INSERT INTO files VALUES (?,?,?,?)", ("/lib/astronaut.png", "a" * 64, 10, 10))
    con.commit()
    con.close()


def test_v1_catalog_upgrades_in_place_and_keeps_its_photos(tmp_path):
    path = tmp_path / "catalog.sqlite"
    _v1_catalog(path)
    cat = Catalog(path)
    with sqlite3.connect(path) as con:
        assert int(con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]) == catalog_mod.SCHEMA_VERSION >= 2
        assert "facts" in {r[1] for r in con.execute("PRAGMA table_info(photos)")}
    photo = cat.get("a" * 64)
    assert photo.caption == "a photo of mask" and photo.facts is None and cat.count() == 1
    assert [p.id for p in cat.photos_with_stale_facts()] == ["a" * 64]
    meta = photo.index_metadata()
    assert "has_people" not in meta  # no facts yet: no facts keys, so a facts filter leaves it out
    cat.set_facts([("a" * 64, ASTRONAUT)])
    assert cat.get("a" * 64).facts == ASTRONAUT and cat.photos_with_stale_facts() == []
    Catalog(path)  # reopening never re-applies the upgrade
    assert cat.count() == 1


def test_facts_round_trip_through_commit_batch_and_index_metadata(catalog_target):
    cat = Catalog(catalog_target)
    p = Photo(id="b" * 64, path="/s.jpg", source="folder", facts=SIGN)
    cat.commit_batch([p], [FileRecord("/s.jpg", "b" * 64, 1, 1)], "m", indexed=["b" * 64])
    got = cat.get("b" * 64)
    assert got.facts == SIGN and got.facts.text == [("Cafe Milano", 0.97)]
    meta = got.index_metadata()
    assert {k: meta[k] for k in ("has_people", "people_count", "has_text", "scene", "objects", "colours")} == {
        "has_people": False, "people_count": 0, "has_text": True, "scene": "street", "objects": ["sign"], "colours": ["red"]}
    assert meta["path"] == "/s.jpg"
    # A later write without facts (a rename, a backend without facts) keeps the stored facts.
    cat.commit_batch([Photo(id="b" * 64, path="/t.jpg", source="folder")], [FileRecord("/t.jpg", "b" * 64, 1, 1)], "m")
    assert cat.get("b" * 64).facts == SIGN


def test_older_facts_are_stale_and_summary_counts(catalog_target):
    cat = Catalog(catalog_target)
    old = PhotoFacts(version=FACTS_VERSION - 1, people=2)
    rows = [Photo(id=c * 64, path=f"/{c}.jpg", source="f", facts=f) for c, f in (("a", ASTRONAUT), ("b", SIGN), ("c", old), ("d", None))]
    cat.commit_batch(rows, [FileRecord(f"/{c}.jpg", c * 64, 1, 1) for c in "abcd"], None)
    assert sorted(p.id[0] for p in cat.photos_with_stale_facts()) == ["c", "d"]
    assert cat.facts_summary() == {"photos": 4, "with_facts": 3, "with_people": 2, "with_text": 1,
                                   "scenes": {"portrait": 1, "street": 1}}


def test_facts_where_and_plain_text_lines():
    assert facts_where() is None
    assert facts_where(has_people=True) == {"has_people": True}
    assert facts_where(has_text=True, scene="kitchen") == {"$and": [{"has_text": True}, {"scene": "kitchen"}]}
    lines = facts_lines(SIGN)
    assert 'Text read: "Cafe Milano" (0.97)' in lines and "Scene: street (0.55)" in lines
    assert "Note: people detector timed out" in lines and "People: none found" in lines
    assert "People: 1 person (1 face)" in facts_lines(ASTRONAUT)
    assert "No facts yet" in facts_lines(None)[0]


def test_a_schema_3_catalog_gets_its_facts_counts_backfilled(catalog_target, monkeypatch):
    """Upgrade 4 adds the facts summary columns and fills them from each photo's stored facts JSON."""
    from core.db import open_database

    monkeypatch.setattr(catalog_mod, "_MIGRATIONS", [m for m in catalog_mod._MIGRATIONS if m[0] <= 3])
    monkeypatch.setattr(catalog_mod, "SCHEMA_VERSION", 3)
    Catalog(catalog_target)
    old = PhotoFacts(version=FACTS_VERSION - 1, people=2)
    db = open_database(catalog_target)
    with db.connect() as con:
        for c, f in (("a", ASTRONAUT), ("b", SIGN), ("c", old), ("d", None)):
            con.execute("INSERT INTO photos (id, path, source, added_at, facts) VALUES (?,?,?,?,?)",
                        (c * 64, f"/{c}.jpg", "f", "2026-01-01", f.to_json() if f else None))
    db.close()
    monkeypatch.undo()
    cat = Catalog(catalog_target)
    assert cat.facts_summary() == {"photos": 4, "with_facts": 3, "with_people": 2, "with_text": 1,
                                   "scenes": {"portrait": 1, "street": 1}}
    assert sorted(p.id[0] for p in cat.photos_with_stale_facts()) == ["c", "d"]
    cat.set_facts([("c" * 64, SIGN)])
    assert cat.facts_summary()["with_text"] == 2 and cat.facts_summary()["with_people"] == 1
