"""The photo catalog in SQLite: one row per distinct photo (id = sha256 of its bytes).

Several paths may point at one photo (exact duplicates are merged, renames recognised);
`files` maps each path to its photo with the size and mtime that make rescans incremental.
`indexed` says which photos are in which model's index, so a backend switch re-indexes
exactly what is missing. Connections are opened per call, so any thread may use a Catalog.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from core.pathnames import display_path, from_db, to_db

_SCHEMA = """
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
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS files_photo ON files(photo_id);
CREATE TABLE IF NOT EXISTS indexed (
    photo_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    PRIMARY KEY (photo_id, model_id)
);
CREATE TABLE IF NOT EXISTS skipped (
    path TEXT PRIMARY KEY,
    size INTEGER, mtime_ns INTEGER,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
"""

# Schema upgrades, applied in order to a catalog of an older version, in place. A fresh catalog
# is created at version 1 (`_SCHEMA`) and runs them all, so every catalog reaches the current
# schema by the same path. Append (version, SQL statements); never edit an entry that shipped.
_MIGRATIONS: list[tuple[int, tuple[str, ...]]] = [
    # 3: perceptual hash per photo (near duplicates on import); a near-duplicate skip names its photo;
    # files the user chose to keep although they look like a library photo.
    (3, ("ALTER TABLE photos ADD COLUMN phash TEXT",
         "ALTER TABLE skipped ADD COLUMN near_of TEXT",
         "ALTER TABLE skipped ADD COLUMN distance INTEGER",
         "CREATE TABLE IF NOT EXISTS near_dup_kept (path TEXT PRIMARY KEY, at TEXT NOT NULL)")),
]
SCHEMA_VERSION = max([1, *(v for v, _ in _MIGRATIONS)])


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Photo:
    id: str
    path: str
    source: str
    class_name: str = ""
    width: Optional[int] = None
    height: Optional[int] = None
    format: Optional[str] = None
    taken_at: Optional[str] = None
    orientation: Optional[int] = None
    added_at: str = ""
    thumb_path: Optional[str] = None
    caption: Optional[str] = None
    caption_source: Optional[str] = None
    tags: list[tuple[str, float]] = field(default_factory=list)
    missing: bool = False
    phash: Optional[str] = None  # 64-bit perceptual hash, hex (core.neardup)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Photo":
        data = {k: v for k, v in dict(row).items() if k in _PHOTO_FIELDS}  # columns of later versions stay in SQL
        data["tags"] = [tuple(t) for t in json.loads(data.get("tags") or "[]")]
        data["missing"] = bool(data.get("missing"))
        data["path"] = from_db(data["path"])
        if data.get("thumb_path"):
            data["thumb_path"] = from_db(data["thumb_path"])
        return cls(**data)

    def index_metadata(self) -> dict:
        """What the vector index stores beside the embedding, for filters and display."""
        return {
            "path": display_path(self.path), "source": self.source, "class_name": self.class_name,
            "caption": self.caption or "", "tags": [t for t, _ in self.tags[:5]],
            "width": self.width, "height": self.height, "taken_at": self.taken_at,
        }


_PHOTO_FIELDS = frozenset(Photo.__dataclass_fields__)


@dataclass
class NearDuplicate:
    """A file not imported because it looks like a library photo; the user may keep it anyway."""

    path: str
    photo_id: str
    distance: int
    reason: str


@dataclass
class FileRecord:
    path: str
    photo_id: str
    size: int
    mtime_ns: int


class Catalog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    def _migrate(self) -> None:
        """Create or upgrade the schema. BEGIN IMMEDIATE serialises processes that open the same
        catalog at once, so each upgrade runs exactly once."""
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        con.execute(stmt)
                row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                current = 1 if row is None else int(row[0])
                if current > SCHEMA_VERSION:
                    raise RuntimeError(f"{self.path} was written by a newer PhotoLore (schema {current}); upgrade PhotoLore")
                # Which upgrades ran is recorded one by one, not as one number, so an upgrade added on a
                # branch that lands after a higher-numbered one still runs on catalogs opened in between.
                row = con.execute("SELECT value FROM meta WHERE key='migrations'").fetchone()
                applied = set(json.loads(row[0])) if row else set(range(2, current + 1))
                for version, statements in sorted(_MIGRATIONS):
                    if version not in applied:
                        for stmt in statements:
                            con.execute(stmt)
                        applied.add(version)
                        current = max(current, version)
                for key, value in (("schema_version", str(current)), ("migrations", json.dumps(sorted(applied)))):
                    con.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            con.close()

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30)
        con.row_factory = sqlite3.Row
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            with con:  # one transaction: commit on success, roll back on error
                yield con
        finally:
            con.close()

    # --- lookups -------------------------------------------------------------------------
    def file_state(self, paths: Sequence[str]) -> dict[str, FileRecord]:
        out: dict[str, FileRecord] = {}
        with self._conn() as con:
            for chunk in _chunks([to_db(p) for p in paths], 500):
                q = f"SELECT path, photo_id, size, mtime_ns FROM files WHERE path IN ({','.join('?' * len(chunk))})"
                for r in con.execute(q, chunk):
                    path = from_db(r["path"])
                    out[path] = FileRecord(path, r["photo_id"], r["size"], r["mtime_ns"])
        return out

    def skipped_state(self, paths: Sequence[str]) -> dict[str, tuple[int, int, str, Optional[str], Optional[int]]]:
        """path -> (size, mtime_ns, reason, near-duplicate photo id or None, distance or None)."""
        out = {}
        with self._conn() as con:
            for chunk in _chunks([to_db(p) for p in paths], 500):
                q = f"SELECT path, size, mtime_ns, reason, near_of, distance FROM skipped WHERE path IN ({','.join('?' * len(chunk))})"
                for r in con.execute(q, chunk):
                    out[from_db(r["path"])] = (r["size"], r["mtime_ns"], r["reason"], r["near_of"], r["distance"])
        return out

    def indexed_ids(self, model_id: str, ids: Optional[Iterable[str]] = None) -> set[str]:
        with self._conn() as con:
            if ids is None:
                return {r[0] for r in con.execute("SELECT photo_id FROM indexed WHERE model_id=?", (model_id,))}
            out: set[str] = set()
            for chunk in _chunks(list(ids), 500):
                q = f"SELECT photo_id FROM indexed WHERE model_id=? AND photo_id IN ({','.join('?' * len(chunk))})"
                out.update(r[0] for r in con.execute(q, [model_id, *chunk]))
            return out

    def existing_ids(self, ids: Iterable[str]) -> set[str]:
        out: set[str] = set()
        with self._conn() as con:
            for chunk in _chunks(list(ids), 500):
                q = f"SELECT id FROM photos WHERE id IN ({','.join('?' * len(chunk))})"
                out.update(r[0] for r in con.execute(q, chunk))
        return out

    def get(self, photo_id: str) -> Optional[Photo]:
        with self._conn() as con:
            row = con.execute("SELECT * FROM photos WHERE id=?", (photo_id,)).fetchone()
        return Photo.from_row(row) if row else None

    def get_many(self, ids: Sequence[str]) -> dict[str, Photo]:
        out = {}
        with self._conn() as con:
            for chunk in _chunks(list(ids), 500):
                for row in con.execute(f"SELECT * FROM photos WHERE id IN ({','.join('?' * len(chunk))})", chunk):
                    out[row["id"]] = Photo.from_row(row)
        return out

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

    def near_duplicates(self, limit: int = 1000) -> list[NearDuplicate]:
        """Files left out of the library as near duplicates of a photo, newest first."""
        with self._conn() as con:
            rows = con.execute("SELECT path, near_of, distance, reason FROM skipped WHERE near_of IS NOT NULL ORDER BY at DESC LIMIT ?",
                               (limit,)).fetchall()
        return [NearDuplicate(from_db(r[0]), r[1], int(r[2]), r[3]) for r in rows]

    def phashes(self) -> list[tuple[int, str]]:
        """(perceptual hash, photo id) of every photo in the library that has one."""
        with self._conn() as con:
            rows = con.execute("SELECT phash, id FROM photos WHERE missing=0 AND phash IS NOT NULL").fetchall()
        return [(int(r[0], 16), r[1]) for r in rows]

    def photos_without_phash(self) -> list[tuple[str, Optional[str]]]:
        """(id, thumbnail path) of photos stored before perceptual hashes were (schema < 3)."""
        with self._conn() as con:
            rows = con.execute("SELECT id, thumb_path FROM photos WHERE phash IS NULL AND missing=0").fetchall()
        return [(r[0], from_db(r[1]) if r[1] else None) for r in rows]

    def set_phashes(self, items: Sequence[tuple[str, str]]) -> None:
        with self._conn() as con:
            con.executemany("UPDATE photos SET phash=? WHERE id=? AND phash IS NULL", [(h, pid) for pid, h in items])

    def near_dup_kept(self, paths: Sequence[str]) -> set[str]:
        """Which of `paths` the user chose to keep although they look like a library photo."""
        out: set[str] = set()
        with self._conn() as con:
            for chunk in _chunks([to_db(p) for p in paths], 500):
                q = f"SELECT path FROM near_dup_kept WHERE path IN ({','.join('?' * len(chunk))})"
                out.update(from_db(r[0]) for r in con.execute(q, chunk))
        return out

    def keep_near_duplicate(self, path: str) -> None:
        """Remember that `path` is wanted as a photo of its own; the next ingest of it adds it."""
        with self._conn() as con:
            con.execute("INSERT OR IGNORE INTO near_dup_kept (path, at) VALUES (?,?)", (to_db(path), now_iso()))
            con.execute("DELETE FROM skipped WHERE path=?", (to_db(path),))

    def remove_photo(self, photo_id: str) -> list[str]:
        """Forget a photo (catalog rows only, never the file); returns its paths."""
        with self._conn() as con:
            paths = [from_db(r[0]) for r in con.execute("SELECT path FROM files WHERE photo_id=?", (photo_id,))]
            con.execute("DELETE FROM files WHERE photo_id=?", (photo_id,))
            con.execute("DELETE FROM indexed WHERE photo_id=?", (photo_id,))
            con.execute("DELETE FROM photos WHERE id=?", (photo_id,))
            con.execute("UPDATE skipped SET near_of=NULL, distance=NULL, reason='near duplicate of a removed photo', size=-1 "
                        "WHERE near_of=?", (photo_id,))
        return paths

    # --- writes (each one transaction) ----------------------------------------------------
    def commit_batch(self, photos: Sequence[Photo], files: Sequence[FileRecord], model_id: Optional[str], indexed: Sequence[str] = ()) -> None:
        """Write new photos, their file rows, and index membership atomically."""
        with self._conn() as con:
            for p in photos:
                con.execute(
                    """INSERT INTO photos (id, path, source, class_name, width, height, format, taken_at, orientation,
                                           added_at, thumb_path, caption, caption_source, tags, missing)
                       VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)
                       ON CONFLICT(id) DO UPDATE SET missing=0, path=excluded.path,
                           thumb_path=COALESCE(photos.thumb_path, excluded.thumb_path),
                           caption=COALESCE(photos.caption, excluded.caption),
                           caption_source=COALESCE(photos.caption_source, excluded.caption_source),
                           tags=CASE WHEN photos.tags='[]' THEN excluded.tags ELSE photos.tags END""",
                    (p.id, to_db(p.path), p.source, p.class_name, p.width, p.height, p.format, p.taken_at, p.orientation,
                     p.added_at or now_iso(), to_db(p.thumb_path) if p.thumb_path else None, p.caption, p.caption_source,
                     json.dumps(p.tags)),
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
                con.executemany("INSERT OR IGNORE INTO indexed (photo_id, model_id) VALUES (?,?)", [(i, model_id) for i in indexed])

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
            rows = con.execute("SELECT path, photo_id FROM files WHERE substr(path, 1, ?) = ?", (len(prefix), prefix)).fetchall()
            gone = [(r[0], r[1]) for r in rows if r[0] not in seen]
            for path, pid in gone:
                con.execute("DELETE FROM files WHERE path=?", (path,))
                other = con.execute("SELECT path FROM files WHERE photo_id=? ORDER BY path LIMIT 1", (pid,)).fetchone()
                if other:
                    con.execute("UPDATE photos SET path=? WHERE id=? AND path=?", (other[0], pid, path))
                else:
                    con.execute("UPDATE photos SET missing=1 WHERE id=?", (pid,))
            con.execute("DELETE FROM skipped WHERE substr(path, 1, ?) = ? AND path NOT IN (SELECT value FROM json_each(?))",
                        (len(prefix), prefix, json.dumps(sorted(seen))))
        return len(gone)

    def set_caption(self, photo_id: str, caption: str, source: str) -> None:
        with self._conn() as con:
            con.execute("UPDATE photos SET caption=?, caption_source=? WHERE id=?", (caption, source, photo_id))

    def photos_not_indexed(self, model_id: str) -> list[Photo]:
        with self._conn() as con:
            rows = con.execute(
                "SELECT * FROM photos WHERE missing=0 AND id NOT IN (SELECT photo_id FROM indexed WHERE model_id=?) ORDER BY path",
                (model_id,),
            ).fetchall()
        return [Photo.from_row(r) for r in rows]

    def forget_index(self, model_id: str, ids: Iterable[str]) -> None:
        with self._conn() as con:
            con.executemany("DELETE FROM indexed WHERE model_id=? AND photo_id=?", [(model_id, i) for i in ids])


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]
