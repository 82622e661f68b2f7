"""The catalog's schema and its upgrades (core.catalog opens a catalog and applies them).

A fresh catalog is created at version 1 (`SCHEMA`) and runs every upgrade in `MIGRATIONS`, so every catalog
reaches the current schema by the same path. The SQL must run on SQLite and PostgreSQL alike (core.db).
"""
from __future__ import annotations

from typing import Callable, Union

from core.db import Conn
from core.photo_changes import CHANGES_DDL
from core.photo_objects import OBJECTS_DDL, backfill_objects

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS photos (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    class_name TEXT NOT NULL DEFAULT '',
    width INTEGER, height INTEGER, format TEXT,
    taken_at TEXT, orientation INTEGER,
    added_at TEXT NOT NULL,
    thumb_path TEXT,
    caption TEXT, caption_source TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    missing INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    photo_id TEXT NOT NULL REFERENCES photos(id),
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_photo ON files(photo_id);
CREATE TABLE IF NOT EXISTS indexed (
    photo_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    PRIMARY KEY (photo_id, model_id)
);
CREATE TABLE IF NOT EXISTS skipped (
    path TEXT PRIMARY KEY,
    size BIGINT, mtime_ns BIGINT,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
"""

# Schema upgrades, applied in order to a catalog of an older version, in place. A fresh catalog
# is created at version 1 (`SCHEMA`) and runs them all, so every catalog reaches the current
# schema by the same path. Append (version, SQL statements); never edit an entry that shipped.
# The SQL must run on SQLite and PostgreSQL alike (core.db).
Step = Union[str, Callable[[Conn], None]]  # SQL, or a function of the connection for SQL that differs by engine


def _backfill_facts_columns(con: Conn) -> None:
    """Fill the facts summary columns from the facts JSON of photos stored before they existed."""
    d = con.dialect
    con.execute(f"""UPDATE photos SET facts_people = {d.json_number('facts', 'people')},
                        facts_ntext = {d.json_array_length('facts', 'text')},
                        facts_scene = COALESCE({d.json_text('facts', 'scene')}, ''),
                        facts_version = COALESCE({d.json_number('facts', 'version')}, 0)
                    WHERE facts IS NOT NULL""")


def _backfill_facts_terms(con: Conn) -> None:
    """Write facts_terms for photos stored before it existed, from their facts JSON (the owner of the terms is
    PhotoFacts.index_metadata, so Python, in keyset chunks: a million photos' JSON never sits in memory at once)."""
    from core.catalog_keys import facts_terms
    from core.facts import PhotoFacts

    last = ""
    while True:
        rows = con.execute("SELECT id, facts FROM photos WHERE facts IS NOT NULL AND id > ? ORDER BY id LIMIT 5000", (last,)).fetchall()
        if not rows:
            return
        con.executemany("UPDATE photos SET facts_terms=? WHERE id=?", [(facts_terms(PhotoFacts.from_json(r[1])), r[0]) for r in rows])
        last = rows[-1][0]


MIGRATIONS: list[tuple[int, tuple[Step, ...]]] = [
    (2, ("ALTER TABLE photos ADD COLUMN facts TEXT",)),  # PhotoFacts JSON (core.facts); NULL = not extracted yet
    # 3: perceptual hash per photo (near duplicates on import); a near-duplicate skip names its photo;
    # files the user chose to keep although they look like a library photo.
    (3, ("ALTER TABLE photos ADD COLUMN phash TEXT",
         "ALTER TABLE skipped ADD COLUMN near_of TEXT",
         "ALTER TABLE skipped ADD COLUMN distance INTEGER",
         "CREATE TABLE IF NOT EXISTS near_dup_kept (path TEXT PRIMARY KEY, at TEXT NOT NULL)")),
    # 4: what the Search filters and dashboards count, as columns written with the facts: counting them
    # by parsing every photo's JSON took 2.4 s (SQLite) / 1.6 s (PostgreSQL) per page load at 100k photos.
    (4, ("ALTER TABLE photos ADD COLUMN facts_people INTEGER",
         "ALTER TABLE photos ADD COLUMN facts_ntext INTEGER",
         "ALTER TABLE photos ADD COLUMN facts_scene TEXT",
         "ALTER TABLE photos ADD COLUMN facts_version INTEGER",
         _backfill_facts_columns,
         # Covering: the counts read this index, not the rows (SQLite keeps columns added later behind the
         # facts JSON, in overflow pages: the scan of the table itself took 0.9 s at 100k photos).
         "CREATE INDEX IF NOT EXISTS photos_facts ON photos(missing, facts_scene, facts_people, facts_ntext, facts_version)")),
    # 5: what the Library asks on every rerun, answered from indexes (bench/bench_million.py at 1M photos on SQLite):
    # a grid page deep in the library sorted the whole table (15.4 s), the class counts scanned it (0.6 s), the
    # stale-facts and not-indexed counts read every row (2.5 s each). With these: 0.04 s, 0.1 s, 0.07 s, 0.08 s.
    (5, ("CREATE INDEX IF NOT EXISTS photos_order ON photos(missing, added_at, path, id)",
         "CREATE INDEX IF NOT EXISTS photos_class ON photos(missing, class_name, added_at, path, id)",
         "CREATE INDEX IF NOT EXISTS photos_facts_version ON photos(missing, facts_version)",
         "CREATE INDEX IF NOT EXISTS indexed_model ON indexed(model_id, photo_id)")),
    # 6: the facts Chat and Search filter on that are not numbers (setting, portrait, black and white, detected
    # objects, colours), so a Chat count reads columns instead of every photo's metadata in Chroma (22 s at 100k).
    # The index covers what a count or list reads, so SQLite never follows a row into the facts JSON's pages.
    (6, ("ALTER TABLE photos ADD COLUMN facts_terms TEXT",
         _backfill_facts_terms,
         "CREATE INDEX IF NOT EXISTS photos_keys ON photos(missing, facts_version, facts_people, facts_ntext, facts_scene, "
         "facts_terms, class_name, added_at, path, taken_at, id)")),
    # 7: the change journal (core.photo_changes): what a whole-library view re-reads instead of every photo.
    (7, CHANGES_DDL),
    # 8: the detected objects as rows (core.photo_objects), so the Search filter's counts are an index scan
    # (1.7 s at 1M photos when split from facts_terms on every first open of the page).
    (8, (*OBJECTS_DDL, backfill_objects)),
]
SCHEMA_VERSION = max([1, *(v for v, _ in MIGRATIONS)])


__all__ = ["MIGRATIONS", "SCHEMA", "SCHEMA_VERSION", "Step"]
