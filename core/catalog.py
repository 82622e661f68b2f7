"""The photo catalog: one row per distinct photo (id = sha256 of its bytes), in SQLite or PostgreSQL.

Several paths may point at one photo (exact duplicates are merged, renames recognised);
`files` maps each path to its photo with the size and mtime that make rescans incremental.
`indexed` says which photos are in which model's index, so a backend switch re-indexes
exactly what is missing. Each call is one transaction, so any thread may use a Catalog, and
writes are upserts keyed on content hashes and paths, so processes ingesting the same photos
at once store each exactly once. The engine is chosen by `open_catalog(settings)`: an SQLite
file in the data directory, or the server `PHOTOLORE_CATALOG_URL` names (core.db).
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Optional, Sequence

from core.catalog_keys import KeyQueries
from core.catalog_queries import FactsQueries, NearDupQueries, facts_row
from core.catalog_records import FileRecord, NearDuplicate, Photo, PhotoSummary, now_iso
from core.catalog_schema import MIGRATIONS as _MIGRATIONS  # module globals here: the migration tests patch them
from core.catalog_schema import SCHEMA as _SCHEMA
from core.catalog_schema import SCHEMA_VERSION
from core.db import Conn, in_chunks, is_database_url, open_database
from core.pathnames import from_db, to_db
from core.photo_changes import ChangeQueries, note_changes
from core.photo_objects import sync_objects

if TYPE_CHECKING:  # pragma: no cover
    from core.settings import Settings

__all__ = ["Catalog", "FileRecord", "NearDuplicate", "Photo", "PhotoSummary", "SCHEMA_VERSION", "now_iso", "open_catalog"]


def open_catalog(settings: "Settings") -> "Catalog":
    """The catalog these settings name: PostgreSQL when `catalog_url` is set, else the SQLite file in the data dir."""
    return Catalog(settings.catalog_target, library_dir=settings.library_dir)


class Catalog(FactsQueries, NearDupQueries, KeyQueries, ChangeQueries):
    def __init__(self, target: str | Path, *, library_dir: Optional[Path] = None):
        """`target`: an SQLite file path or a postgresql:// URL. `library_dir` (settings.library_dir, where
        annotation exports make file names relative to) defaults to <file's dir>/library; open_catalog passes it."""
        self.db = open_database(target)
        self.url: Optional[str] = str(target) if is_database_url(target) else None
        self.path: Optional[Path] = None if self.url else Path(target)
        self.library_dir: Optional[Path] = (Path(library_dir) if library_dir is not None
                                            else self.path.parent / "library" if self.path else None)
        self._migrate()

    def describe(self) -> str:
        """Which catalog this is, for status lines (a URL without its password)."""
        return self.db.describe()

    def close(self) -> None:
        """Close pooled connections (PostgreSQL); the Catalog still works after, reconnecting on demand."""
        self.db.close()

    def _migrate(self) -> None:
        """Create or upgrade the schema, under a lock that serialises processes opening the same catalog at
        once (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so each upgrade runs exactly once."""
        with self.db.migration() as con:
            con.script(_SCHEMA)
            row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            current = 1 if row is None else int(row[0])
            if current > SCHEMA_VERSION:
                raise RuntimeError(f"{self.describe()} was written by a newer PhotoLore (schema {current}); upgrade PhotoLore")
            # Which upgrades ran is recorded one by one, not as one number, so an upgrade added on a
            # branch that lands after a higher-numbered one still runs on catalogs opened in between.
            row = con.execute("SELECT value FROM meta WHERE key='migrations'").fetchone()
            applied = set(json.loads(row[0])) if row else set(range(2, current + 1))
            for version, statements in sorted(_MIGRATIONS):
                if version not in applied:
                    for step in statements:
                        step(con) if callable(step) else con.execute(step)
                    applied.add(version)
                    current = max(current, version)
            for key, value in (("schema_version", str(current)), ("migrations", json.dumps(sorted(applied)))):
                con.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    @contextmanager
    def _conn(self) -> Iterator[Conn]:
        """One transaction (core.db.Conn: `?` placeholders on either engine)."""
        with self.db.connect() as con:
            yield con

    # --- lookups -------------------------------------------------------------------------
    def file_state(self, paths: Sequence[str]) -> dict[str, FileRecord]:
        out: dict[str, FileRecord] = {}
        with self._conn() as con:
            for r in in_chunks(con, "SELECT path, photo_id, size, mtime_ns FROM files WHERE path IN ({in})", [to_db(p) for p in paths]):
                path = from_db(r["path"])
                out[path] = FileRecord(path, r["photo_id"], r["size"], r["mtime_ns"])
        return out

    def skipped_state(self, paths: Sequence[str]) -> dict[str, tuple[int, int, str, Optional[str], Optional[int]]]:
        """path -> (size, mtime_ns, reason, near-duplicate photo id or None, distance or None)."""
        with self._conn() as con:
            rows = in_chunks(con, "SELECT path, size, mtime_ns, reason, near_of, distance FROM skipped WHERE path IN ({in})",
                             [to_db(p) for p in paths])
            return {from_db(r["path"]): (r["size"], r["mtime_ns"], r["reason"], r["near_of"], r["distance"]) for r in rows}

    def indexed_ids(self, model_id: str, ids: Optional[Iterable[str]] = None) -> set[str]:
        with self._conn() as con:
            if ids is None:
                return {r[0] for r in con.execute("SELECT photo_id FROM indexed WHERE model_id=?", (model_id,))}
            return {r[0] for r in in_chunks(con, "SELECT photo_id FROM indexed WHERE model_id=? AND photo_id IN ({in})", list(ids),
                                            before=(model_id,))}

    def existing_ids(self, ids: Iterable[str]) -> set[str]:
        with self._conn() as con:
            return {r[0] for r in in_chunks(con, "SELECT id FROM photos WHERE id IN ({in})", list(ids))}

    def get(self, photo_id: str) -> Optional[Photo]:
        with self._conn() as con:
            row = con.execute("SELECT * FROM photos WHERE id=?", (photo_id,)).fetchone()
        return Photo.from_row(row) if row else None

    def get_many(self, ids: Sequence[str]) -> dict[str, Photo]:
        with self._conn() as con:
            return {row["id"]: Photo.from_row(row) for row in in_chunks(con, "SELECT * FROM photos WHERE id IN ({in})", list(ids))}

    def list_photos(self, *, class_name: Optional[str] = None, limit: int = 1000, offset: int = 0, include_missing: bool = False) -> list[Photo]:
        q, args = "SELECT * FROM photos WHERE 1=1", []
        if not include_missing:
            q += " AND missing=0"
        if class_name is not None:
            q += " AND class_name=?"
            args.append(class_name)
        q += " ORDER BY added_at, path LIMIT ? OFFSET ?"
        args += [limit, offset]
        with self._conn() as con:
            return [Photo.from_row(r) for r in con.execute(q, args)]

    def photo_ids(self, *, class_name: Optional[str] = None) -> list[str]:
        """The ids of list_photos (every present photo, or one class's), without reading their rows: what a job
        over "all" or "a class" needs (the rows with their facts JSON took seconds per 100k photos)."""
        q = "SELECT id FROM photos WHERE missing=0" + (" AND class_name=?" if class_name is not None else "") + " ORDER BY added_at, path"
        with self._conn() as con:
            return [r[0] for r in con.execute(q, [class_name] if class_name is not None else [])]

    def iter_photos(self, *, batch: int = 5000) -> Iterator[Photo]:
        """Every present photo in list_photos' order, in one query read `batch` rows at a time (no OFFSET:
        paging a million photos by OFFSET re-read the skipped rows on every page, 40 s at 100k)."""
        with self._conn() as con:
            cur = con.execute("SELECT * FROM photos WHERE missing=0 ORDER BY added_at, path")
            while rows := cur.fetchmany(batch):
                yield from (Photo.from_row(r) for r in rows)

    def photo_summaries(self, ids: Optional[Sequence[str]] = None) -> list[PhotoSummary]:
        """What lists and tables of photos show (no tags, no facts JSON to parse), in list_photos' order;
        only these ids (unknown ones left out) when given."""
        cols = "id, path, class_name, caption, caption_source, taken_at, thumb_path"
        with self._conn() as con:
            if ids is None:
                rows = con.execute(f"SELECT {cols}, added_at FROM photos WHERE missing=0 ORDER BY added_at, path").fetchall()
            else:
                rows = sorted(in_chunks(con, f"SELECT {cols}, added_at FROM photos WHERE id IN ({{in}})", list(ids)),
                              key=lambda r: (r[7], r[1]))
        return [PhotoSummary(r[0], from_db(r[1]), r[2] or "", r[3], r[4], r[5], from_db(r[6]) if r[6] else r[6]) for r in rows]

    def paths_of(self, photo_id: str) -> list[str]:
        with self._conn() as con:
            return [from_db(r[0]) for r in con.execute("SELECT path FROM files WHERE photo_id=? ORDER BY path", (photo_id,))]

    def count(self, *, include_missing: bool = False) -> int:
        with self._conn() as con:
            q = "SELECT COUNT(*) FROM photos" + ("" if include_missing else " WHERE missing=0")
            return int(con.execute(q).fetchone()[0])

    def count_files(self) -> int:
        with self._conn() as con:
            return int(con.execute("SELECT COUNT(*) FROM files").fetchone()[0])

    def classes(self) -> dict[str, int]:
        with self._conn() as con:
            rows = con.execute("SELECT class_name, COUNT(*) FROM photos WHERE missing=0 GROUP BY class_name ORDER BY class_name")
            return {r[0]: r[1] for r in rows}

    def skipped(self, limit: int = 1000) -> list[tuple[str, str]]:
        with self._conn() as con:
            return [(from_db(r[0]), r[1]) for r in con.execute("SELECT path, reason FROM skipped ORDER BY at DESC LIMIT ?", (limit,))]

    def remove_photo(self, photo_id: str) -> list[str]:
        """Forget a photo (catalog rows only, never the file); returns its paths."""
        with self._conn() as con:
            paths = [from_db(r[0]) for r in con.execute("SELECT path FROM files WHERE photo_id=?", (photo_id,))]
            con.execute("DELETE FROM files WHERE photo_id=?", (photo_id,))
            con.execute("DELETE FROM indexed WHERE photo_id=?", (photo_id,))
            con.execute("DELETE FROM photos WHERE id=?", (photo_id,))
            con.execute("UPDATE skipped SET near_of=NULL, distance=NULL, reason='near duplicate of a removed photo', size=-1 "
                        "WHERE near_of=?", (photo_id,))
            sync_objects(con, [photo_id])
            note_changes(con, [photo_id])
        return paths

    # --- writes (each one transaction) ----------------------------------------------------
    def commit_batch(self, photos: Sequence[Photo], files: Sequence[FileRecord], model_id: Optional[str], indexed: Sequence[str] = ()) -> None:
        """Write new photos, their file rows, and index membership atomically. Every statement is an upsert, so
        processes committing the same photos at once store each once; rows go in key order, so two batches
        lock shared rows in the same order (and a PostgreSQL deadlock that still happens is retried)."""
        photos = sorted(photos, key=lambda p: p.id)
        files = sorted(files, key=lambda f: (f.photo_id, f.path))
        self.db.transact(lambda con: self._commit_batch(con, photos, files, model_id, sorted(indexed)))

    @staticmethod
    def _commit_batch(con: Conn, photos: Sequence[Photo], files: Sequence[FileRecord], model_id: Optional[str], indexed: Sequence[str]) -> None:
        for p in photos:
            con.execute(
                """INSERT INTO photos (id, path, source, class_name, width, height, format, taken_at, orientation,
                                       added_at, thumb_path, caption, caption_source, tags, missing, facts,
                                       facts_people, facts_ntext, facts_scene, facts_version, facts_terms)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?,?,?,?,?,?)
                   ON CONFLICT(id) DO UPDATE SET missing=0, path=excluded.path,
                       thumb_path=COALESCE(photos.thumb_path, excluded.thumb_path),
                       caption=COALESCE(photos.caption, excluded.caption),
                       caption_source=COALESCE(photos.caption_source, excluded.caption_source),
                       tags=CASE WHEN photos.tags='[]' THEN excluded.tags ELSE photos.tags END,
                       facts=COALESCE(excluded.facts, photos.facts),
                       facts_people=CASE WHEN excluded.facts IS NULL THEN photos.facts_people ELSE excluded.facts_people END,
                       facts_ntext=CASE WHEN excluded.facts IS NULL THEN photos.facts_ntext ELSE excluded.facts_ntext END,
                       facts_scene=CASE WHEN excluded.facts IS NULL THEN photos.facts_scene ELSE excluded.facts_scene END,
                       facts_version=CASE WHEN excluded.facts IS NULL THEN photos.facts_version ELSE excluded.facts_version END,
                       facts_terms=CASE WHEN excluded.facts IS NULL THEN photos.facts_terms ELSE excluded.facts_terms END""",
                (p.id, to_db(p.path), p.source, p.class_name, p.width, p.height, p.format, p.taken_at, p.orientation,
                 p.added_at or now_iso(), to_db(p.thumb_path) if p.thumb_path else None, p.caption, p.caption_source,
                 json.dumps(p.tags), *facts_row(p.facts)),
            )
            if p.phash:
                con.execute("UPDATE photos SET phash=COALESCE(phash, ?) WHERE id=?", (p.phash, p.id))
        for f in files:
            con.execute(
                "INSERT INTO files (path, photo_id, size, mtime_ns) VALUES (?,?,?,?) "
                "ON CONFLICT(path) DO UPDATE SET photo_id=excluded.photo_id, size=excluded.size, mtime_ns=excluded.mtime_ns",
                (to_db(f.path), f.photo_id, f.size, f.mtime_ns),
            )
            con.execute("UPDATE photos SET missing=0 WHERE id=?", (f.photo_id,))
            con.execute("DELETE FROM skipped WHERE path=?", (to_db(f.path),))
        if model_id:
            con.executemany("INSERT INTO indexed (photo_id, model_id) VALUES (?,?) ON CONFLICT DO NOTHING", [(i, model_id) for i in indexed])
        sync_objects(con, [p.id for p in photos] + [f.photo_id for f in files])  # new facts, or present again
        note_changes(con, [p.id for p in photos] + [f.photo_id for f in files])

    def record_skipped(self, items: Sequence[tuple]) -> None:
        """(path, size, mtime_ns, reason[, near-duplicate photo id, distance]): remembered so an unchanged
        bad file is not re-read every run."""
        rows = [(to_db(it[0]), it[1], it[2], it[3], it[4] if len(it) > 4 else None, it[5] if len(it) > 5 else None, now_iso())
                for it in items]
        with self._conn() as con:
            con.executemany(
                "INSERT INTO skipped (path, size, mtime_ns, reason, near_of, distance, at) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns, reason=excluded.reason, "
                "near_of=excluded.near_of, distance=excluded.distance, at=excluded.at",
                rows,
            )
            con.executemany("DELETE FROM files WHERE path=?", [(r[0],) for r in rows])

    def prune_missing(self, root: Path, seen: set[str]) -> int:
        """Forget file rows under `root` that a scan no longer saw; photos with no file left are marked missing."""
        prefix = to_db(str(Path(root).resolve()).rstrip("/") + "/")
        seen = {to_db(p) for p in seen}
        with self._conn() as con:
            under = "substr(path, 1, CAST(? AS INTEGER)) = ?"  # a prefix test with no LIKE wildcards to escape
            rows = con.execute(f"SELECT path, photo_id FROM files WHERE {under}", (len(prefix), prefix)).fetchall()
            gone = [(r[0], r[1]) for r in rows if r[0] not in seen]
            for path, pid in gone:
                con.execute("DELETE FROM files WHERE path=?", (path,))
                other = con.execute("SELECT path FROM files WHERE photo_id=? ORDER BY path LIMIT 1", (pid,)).fetchone()
                if other:
                    con.execute("UPDATE photos SET path=? WHERE id=? AND path=?", (other[0], pid, path))
                else:
                    con.execute("UPDATE photos SET missing=1 WHERE id=?", (pid,))
            stale = [r[0] for r in con.execute(f"SELECT path FROM skipped WHERE {under}", (len(prefix), prefix)) if r[0] not in seen]
            con.executemany("DELETE FROM skipped WHERE path=?", [(path,) for path in stale])
            sync_objects(con, [pid for _, pid in gone])  # a photo marked missing leaves the counts
            note_changes(con, [pid for _, pid in gone])  # moved to another copy, or missing
        return len(gone)

    def set_caption(self, photo_id: str, caption: str, source: str) -> None:
        with self._conn() as con:
            con.execute("UPDATE photos SET caption=?, caption_source=? WHERE id=?", (caption, source, photo_id))
            note_changes(con, [photo_id])

    def photos_not_indexed(self, model_id: str) -> list[Photo]:
        with self._conn() as con:
            rows = con.execute(
                "SELECT * FROM photos WHERE missing=0 AND id NOT IN (SELECT photo_id FROM indexed WHERE model_id=?) ORDER BY path",
                (model_id,),
            ).fetchall()
        return [Photo.from_row(r) for r in rows]

    def count_not_indexed(self, model_id: str) -> int:
        """How many photos photos_not_indexed would list, from three index lookups instead of a probe per photo.

        Relies on what every writer keeps true: an `indexed` row exists only for a photo in `photos`
        (remove_photo deletes both), so photos - indexed rows of present photos = photos not indexed."""
        with self._conn() as con:
            present = int(con.execute("SELECT COUNT(*) FROM photos WHERE missing=0").fetchone()[0])
            rows = int(con.execute("SELECT COUNT(*) FROM indexed WHERE model_id=?", (model_id,)).fetchone()[0])
            # EXISTS, not a join: it makes the few missing photos drive the lookup (a join with fresh statistics
            # probed photos for each of a million index rows, 0.9 s).
            of_missing = int(con.execute("SELECT COUNT(*) FROM photos p WHERE p.missing=1 AND EXISTS "
                                         "(SELECT 1 FROM indexed i WHERE i.photo_id=p.id AND i.model_id=?)", (model_id,)).fetchone()[0])
        return max(0, present - (rows - of_missing))

    def forget_index(self, model_id: str, ids: Iterable[str]) -> None:
        with self._conn() as con:
            con.executemany("DELETE FROM indexed WHERE model_id=? AND photo_id=?", [(model_id, i) for i in ids])

