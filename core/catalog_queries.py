"""Catalog queries about photo facts and near duplicates, mixed into core.catalog.Catalog.

They live apart from the catalog's core (schema, files, ingest writes) because each serves one
feature: facts (core.facts, reindex, filters) and near duplicates (core.neardup, import).
Each method is one transaction on `self.db`, on SQLite or PostgreSQL alike.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

from core.catalog_keys import facts_terms
from core.catalog_records import NearDuplicate, Photo, now_iso
from core.db import in_chunks
from core.facts import FACTS_VERSION, PhotoFacts
from core.pathnames import from_db, to_db
from core.photo_changes import note_changes
from core.photo_objects import object_counts, sync_objects

if TYPE_CHECKING:  # pragma: no cover
    from core.db import Database


def facts_row(facts: Optional[PhotoFacts]) -> tuple:
    """(facts JSON, people, lines of text, scene, version, terms): the facts column and the summary columns beside it."""
    if facts is None:
        return (None, None, None, None, None, None)
    return (facts.to_json(), int(facts.people), len(facts.text), facts.scene or "", int(facts.version), facts_terms(facts))


class FactsQueries:
    db: "Database"

    def set_facts(self, items: Sequence[tuple[str, PhotoFacts]], captions: Sequence[tuple[str, str, str]] = ()) -> None:
        """Store (photo_id, facts) pairs, and (photo_id, caption, source) for captions written from them, in one transaction."""
        with self.db.connect() as con:
            con.executemany("UPDATE photos SET facts=?, facts_people=?, facts_ntext=?, facts_scene=?, facts_version=?, facts_terms=? WHERE id=?",
                            [(*facts_row(f), pid) for pid, f in items])
            con.executemany("UPDATE photos SET caption=?, caption_source=? WHERE id=?", [(c, s, pid) for pid, c, s in captions])
            sync_objects(con, [pid for pid, _ in items])
            note_changes(con, [pid for pid, _, _ in captions])  # facts are not in the whole-library views; captions are

    def photos_with_stale_facts(self, version: int = FACTS_VERSION) -> list[Photo]:
        """Photos whose facts are missing or were extracted by an older FACTS_VERSION."""
        with self.db.connect() as con:
            rows = con.execute("SELECT * FROM photos WHERE missing=0 AND (facts IS NULL OR COALESCE(facts_version, 0) < ?) ORDER BY path",
                               (version,)).fetchall()
        return [Photo.from_row(r) for r in rows]

    def count_stale_facts(self, version: int = FACTS_VERSION) -> int:
        """len(photos_with_stale_facts(version)), read from the index photos_facts_version (schema 5)."""
        # facts_version is written with the facts JSON (facts_row), so NULL there means no facts yet.
        with self.db.connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM photos WHERE missing=0 AND COALESCE(facts_version, 0) < ?",
                                   (version,)).fetchone()[0])

    def facts_summary(self) -> dict:
        """Counts for filters and dashboards: photos, with facts, with people, with text, per scene."""
        # One pass over the summary columns (schema 4), grouped by scene; the totals are the sums of the groups.
        # COUNT(facts_version) counts photos with facts: every facts JSON has a version, written beside it.
        sql = """SELECT COALESCE(facts_scene, ''), COUNT(*), COUNT(facts_version), SUM(CASE WHEN facts_people > 0 THEN 1 ELSE 0 END),
                        SUM(CASE WHEN facts_ntext > 0 THEN 1 ELSE 0 END)
                 FROM photos WHERE missing=0 GROUP BY COALESCE(facts_scene, '')"""
        with self.db.connect() as con:
            groups = con.execute(sql).fetchall()
        scenes = sorted(((g[0], int(g[1])) for g in groups if g[0]), key=lambda s: (-s[1], s[0]))
        return {"photos": sum(int(g[1]) for g in groups), "with_facts": sum(int(g[2]) for g in groups),
                "with_people": sum(int(g[3] or 0) for g in groups), "with_text": sum(int(g[4] or 0) for g in groups),
                "scenes": dict(scenes)}

    def detected_counts(self) -> dict[str, int]:
        """Photos per object label the detector found surely (COCO labels; persons are the people facts), most first.

        Read from the rows of photo_objects (schema 8, kept with every write of the facts): one scan of
        its index. A photo counts once per label however many boxes it has."""
        with self.db.connect() as con:
            return object_counts(con)


class NearDupQueries:
    db: "Database"

    def near_duplicates(self, limit: int = 1000) -> list[NearDuplicate]:
        """Files left out of the library as near duplicates of a photo, newest first."""
        with self.db.connect() as con:
            rows = con.execute("SELECT path, near_of, distance, reason FROM skipped WHERE near_of IS NOT NULL ORDER BY at DESC LIMIT ?",
                               (limit,)).fetchall()
        return [NearDuplicate(from_db(r[0]), r[1], int(r[2]), r[3]) for r in rows]

    def phashes(self) -> list[tuple[int, str]]:
        """(perceptual hash, photo id) of every photo in the library that has one."""
        with self.db.connect() as con:
            rows = con.execute("SELECT phash, id FROM photos WHERE missing=0 AND phash IS NOT NULL").fetchall()
        return [(int(r[0], 16), r[1]) for r in rows]

    def photos_without_phash(self) -> list[tuple[str, Optional[str]]]:
        """(id, thumbnail path) of photos stored before perceptual hashes were (schema < 3)."""
        with self.db.connect() as con:
            rows = con.execute("SELECT id, thumb_path FROM photos WHERE phash IS NULL AND missing=0").fetchall()
        return [(r[0], from_db(r[1]) if r[1] else None) for r in rows]

    def set_phashes(self, items: Sequence[tuple[str, str]]) -> None:
        with self.db.connect() as con:
            con.executemany("UPDATE photos SET phash=? WHERE id=? AND phash IS NULL", [(h, pid) for pid, h in items])

    def near_dup_kept(self, paths: Sequence[str]) -> set[str]:
        """Which of `paths` the user chose to keep although they look like a library photo."""
        with self.db.connect() as con:
            return {from_db(r[0]) for r in in_chunks(con, "SELECT path FROM near_dup_kept WHERE path IN ({in})", [to_db(p) for p in paths])}

    def keep_near_duplicate(self, path: str) -> None:
        """Remember that `path` is wanted as a photo of its own; the next ingest of it adds it."""
        with self.db.connect() as con:
            con.execute("INSERT INTO near_dup_kept (path, at) VALUES (?,?) ON CONFLICT (path) DO NOTHING", (to_db(path), now_iso()))
            con.execute("DELETE FROM skipped WHERE path=?", (to_db(path),))
