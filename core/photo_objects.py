"""The detected objects of each photo as rows, `photo_objects (photo_id, label, missing)`: what the Search
page's object filter counts ("cup (12)").

The owner of what a photo's objects are is still its facts (`facts_terms`, written with the facts JSON); this
table is derived from that column and the photo's `missing` flag, re-derived in the writer's transaction for
every photo a catalog write changes (`sync_objects`, called beside `note_changes`). Counting the labels from
`facts_terms` meant reading and splitting every photo's terms: 1.7-2.7 s at a million photos on SQLite
(bench/bench_million.py), too slow for the Search page's every rerun. With the rows, the count is one scan of
the index (missing, label). `missing` is copied here so that scan needs no join back to photos.
"""
from __future__ import annotations

from typing import Iterable

from core.catalog_keys import KEYS
from core.db import Conn, chunks, placeholders

OBJECTS_DDL = (
    "CREATE TABLE IF NOT EXISTS photo_objects (photo_id TEXT NOT NULL, label TEXT NOT NULL, missing INTEGER NOT NULL, "
    "PRIMARY KEY (photo_id, label))",
    "CREATE INDEX IF NOT EXISTS photo_objects_count ON photo_objects (missing, label)",
)
_PREFIX = KEYS["detected"].prefix  # how facts_terms marks a detected object ("det:")


def labels_of(terms: object) -> set[str]:
    """The object labels in a facts_terms value (",setting:indoor,det:dog,det:cup,"): each once."""
    return {t[len(_PREFIX):] for t in str(terms or "").split(",") if t.startswith(_PREFIX)}


def sync_objects(con: Conn, photo_ids: Iterable[str]) -> None:
    """Make the object rows of these photos match their facts_terms and missing flag, in `con`'s transaction.
    A photo that no longer exists loses its rows. Idempotent: a rerun of the same write leaves the same rows."""
    for chunk in chunks(sorted(set(photo_ids)), 500):
        marks = placeholders(len(chunk))
        rows = con.execute(f"SELECT id, missing, facts_terms FROM photos WHERE id IN ({marks})", chunk).fetchall()
        con.execute(f"DELETE FROM photo_objects WHERE photo_id IN ({marks})", chunk)
        con.executemany("INSERT INTO photo_objects (photo_id, label, missing) VALUES (?, ?, ?)",
                        [(r[0], label, int(r[1] or 0)) for r in rows for label in sorted(labels_of(r[2]))])


def backfill_objects(con: Conn) -> None:
    """Write the rows of every photo stored before the table existed (schema 8), in keyset chunks."""
    last = ""
    while True:
        ids = [r[0] for r in con.execute("SELECT id FROM photos WHERE id > ? AND facts_terms LIKE ? ORDER BY id LIMIT 5000",
                                         (last, f"%,{_PREFIX}%"))]
        if not ids:
            return
        sync_objects(con, ids)
        last = ids[-1]


def object_counts(con: Conn) -> dict[str, int]:
    """Photos per object label among the photos present, most first (ties by label)."""
    rows = con.execute("SELECT label, COUNT(*) FROM photo_objects WHERE missing=0 GROUP BY label").fetchall()
    return dict(sorted(((str(r[0]), int(r[1])) for r in rows), key=lambda kv: (-kv[1], kv[0])))


__all__ = ["OBJECTS_DDL", "backfill_objects", "labels_of", "object_counts", "sync_objects"]
