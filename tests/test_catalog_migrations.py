"""Catalog schema upgrades: applied once, in order, in place; a newer catalog is refused."""
from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

import core.catalog as catalog_mod
from core.catalog import Catalog, FileRecord, Photo


def _version(path) -> int:
    with sqlite3.connect(path) as con:
        return int(con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])


def test_fresh_catalog_is_at_current_version(tmp_path):
    Catalog(tmp_path / "c.db")
    assert _version(tmp_path / "c.db") == catalog_mod.SCHEMA_VERSION


def test_old_catalog_is_upgraded_in_place_and_keeps_rows(tmp_path, monkeypatch):
    path = tmp_path / "c.db"
    cat = Catalog(path)
    cat.commit_batch([Photo(id="a" * 64, path="/x.jpg", source="folder")], [FileRecord("/x.jpg", "a" * 64, 1, 1)], None)
    base = catalog_mod.SCHEMA_VERSION
    monkeypatch.setattr(catalog_mod, "_MIGRATIONS", [*catalog_mod._MIGRATIONS,
                                                     (base + 1, ("ALTER TABLE photos ADD COLUMN extra_test TEXT",))])
    monkeypatch.setattr(catalog_mod, "SCHEMA_VERSION", base + 1)
    Catalog(path)
    Catalog(path)  # a second open must not apply the upgrade again (duplicate column would raise)
    assert _version(path) == base + 1
    with sqlite3.connect(path) as con:
        cols = {r[1] for r in con.execute("PRAGMA table_info(photos)")}
    assert "extra_test" in cols
    assert Catalog(path).count() == 1


def test_newer_catalog_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "c.db"
    Catalog(path)
    with sqlite3.connect(path) as con:
        con.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    with pytest.raises(RuntimeError, match="newer PhotoLore"):
        Catalog(path)


def _open(path):
    Catalog(path)


def test_many_processes_opening_one_new_catalog_at_once(tmp_path):
    path = tmp_path / "c.db"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_open, args=(str(path),)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert _version(path) == catalog_mod.SCHEMA_VERSION


def test_an_upgrade_numbered_below_one_already_applied_still_runs(tmp_path, monkeypatch):
    """Two branches each add an upgrade; the higher number reaches a user first: the lower one must still run."""
    path = tmp_path / "c.db"
    base = catalog_mod.SCHEMA_VERSION
    first = (base + 2, ("ALTER TABLE photos ADD COLUMN later_one TEXT",))
    monkeypatch.setattr(catalog_mod, "_MIGRATIONS", [*catalog_mod._MIGRATIONS, first])
    monkeypatch.setattr(catalog_mod, "SCHEMA_VERSION", base + 2)
    Catalog(path)
    monkeypatch.setattr(catalog_mod, "_MIGRATIONS", [*catalog_mod._MIGRATIONS, (base + 1, ("ALTER TABLE photos ADD COLUMN earlier_one TEXT",))])
    Catalog(path)
    Catalog(path)
    with sqlite3.connect(path) as con:
        cols = {r[1] for r in con.execute("PRAGMA table_info(photos)")}
    assert {"later_one", "earlier_one"} <= cols
    assert _version(path) == base + 2
