"""Catalog schema upgrades: applied once, in order, in place; a newer catalog is refused. On SQLite and PostgreSQL."""
from __future__ import annotations

import multiprocessing as mp

import pytest

import core.catalog as catalog_mod
from core.catalog import Catalog, FileRecord, Photo
from core.db import open_database


def _query(target, sql: str, args=()) -> list:
    db = open_database(target)
    try:
        with db.connect() as con:
            return con.execute(sql, args).fetchall()
    finally:
        db.close()


def _version(target) -> int:
    return int(_query(target, "SELECT value FROM meta WHERE key='schema_version'")[0][0])


def _columns(target, table: str) -> set[str]:
    if isinstance(target, str):
        rows = _query(target, "SELECT column_name FROM information_schema.columns WHERE table_schema=current_schema() AND table_name=?",
                      (table,))
        return {r[0] for r in rows}
    return {r[1] for r in _query(target, f"PRAGMA table_info({table})")}


def test_fresh_catalog_is_at_current_version(catalog_target):
    Catalog(catalog_target)
    assert _version(catalog_target) == catalog_mod.SCHEMA_VERSION


def test_old_catalog_is_upgraded_in_place_and_keeps_rows(catalog_target, monkeypatch):
    cat = Catalog(catalog_target)
    cat.commit_batch([Photo(id="a" * 64, path="/x.jpg", source="folder")], [FileRecord("/x.jpg", "a" * 64, 1, 1)], None)
    base = catalog_mod.SCHEMA_VERSION
    monkeypatch.setattr(catalog_mod, "_MIGRATIONS", [*catalog_mod._MIGRATIONS,
                                                     (base + 1, ("ALTER TABLE photos ADD COLUMN extra_test TEXT",))])
    monkeypatch.setattr(catalog_mod, "SCHEMA_VERSION", base + 1)
    Catalog(catalog_target)
    Catalog(catalog_target)  # a second open must not apply the upgrade again (duplicate column would raise)
    assert _version(catalog_target) == base + 1
    assert "extra_test" in _columns(catalog_target, "photos")
    assert Catalog(catalog_target).count() == 1


def test_version_one_catalog_reaches_the_current_schema(catalog_target):
    """A catalog written before any upgrade (no facts, no phash columns) is upgraded in place, rows kept."""
    db = open_database(catalog_target)
    with db.migration() as con:
        con.script(catalog_mod._SCHEMA)
        con.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
        con.execute("INSERT INTO photos (id, path, source, added_at) VALUES (?,?,?,?)", ("b" * 64, "/old.jpg", "folder", "2020-01-01"))
    db.close()
    cat = Catalog(catalog_target)
    assert {"facts", "phash"} <= _columns(catalog_target, "photos")
    assert _version(catalog_target) == catalog_mod.SCHEMA_VERSION
    assert cat.get("b" * 64).path == "/old.jpg" and cat.get("b" * 64).facts is None


def test_newer_catalog_is_refused_with_a_clear_error(catalog_target):
    Catalog(catalog_target)
    db = open_database(catalog_target)
    with db.connect() as con:
        con.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    db.close()
    with pytest.raises(RuntimeError, match="newer PhotoLore"):
        Catalog(catalog_target)


def _open(target):
    Catalog(target)


def test_many_processes_opening_one_new_catalog_at_once(catalog_target):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_open, args=(str(catalog_target),)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert _version(catalog_target) == catalog_mod.SCHEMA_VERSION


def test_an_upgrade_numbered_below_one_already_applied_still_runs(catalog_target, monkeypatch):
    """Two branches each add an upgrade; the higher number reaches a user first: the lower one must still run."""
    base = catalog_mod.SCHEMA_VERSION
    first = (base + 2, ("ALTER TABLE photos ADD COLUMN later_one TEXT",))
    monkeypatch.setattr(catalog_mod, "_MIGRATIONS", [*catalog_mod._MIGRATIONS, first])
    monkeypatch.setattr(catalog_mod, "SCHEMA_VERSION", base + 2)
    Catalog(catalog_target)
    monkeypatch.setattr(catalog_mod, "_MIGRATIONS", [*catalog_mod._MIGRATIONS, (base + 1, ("ALTER TABLE photos ADD COLUMN earlier_one TEXT",))])
    Catalog(catalog_target)
    Catalog(catalog_target)
    assert {"later_one", "earlier_one"} <= _columns(catalog_target, "photos")
    assert _version(catalog_target) == base + 2
