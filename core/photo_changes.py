"""The change journal of photos: every write that changes what the app shows of a photo numbers it.

One table, `photo_changes (photo_id, seq)`, holding each photo's latest change number. The catalog numbers
the photos an ingest batch writes, a rescan moves or marks missing, a caption edit, a removal; the
annotation store numbers every prediction, correction, reset and imported caption (core.annotations.store).
A reader that keeps a whole-library view (core.annotations.live_frame) asks `changes_since(its number)`
and re-reads those photos only.

Numbers are given inside the writer's transaction, as its last statement: on PostgreSQL a table lock makes
them commit in order (a writer taking number 6 waits until the one with 5 has committed), so a reader that
has seen 6 has seen everything before it; SQLite has one writer at a time anyway.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional, Sequence

from core.db import Conn, in_chunks

if TYPE_CHECKING:  # pragma: no cover
    from core.db import Database

CHANGES_DDL = ("CREATE TABLE IF NOT EXISTS photo_changes (photo_id TEXT PRIMARY KEY, seq BIGINT NOT NULL)",
               "CREATE INDEX IF NOT EXISTS photo_changes_seq ON photo_changes (seq)")


def note_changes(con: Conn, photo_ids: Iterable[str]) -> None:
    """Give these photos the next change number, in `con`'s transaction (call it last: it holds a lock to the end)."""
    ids = sorted(set(photo_ids))
    if not ids:
        return
    if con.dialect.kind == "postgresql":
        con.execute("LOCK TABLE photo_changes IN EXCLUSIVE MODE")
    seq = int(con.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM photo_changes").fetchone()[0])
    con.executemany("INSERT INTO photo_changes (photo_id, seq) VALUES (?, ?) ON CONFLICT(photo_id) DO UPDATE SET seq=excluded.seq",
                    [(pid, seq) for pid in ids])


def change_number(con: Conn) -> int:
    """The number of the last committed change (0 before any)."""
    return int(con.execute("SELECT COALESCE(MAX(seq), 0) FROM photo_changes").fetchone()[0])


def changes_since(con: Conn, seq: int) -> tuple[int, list[str]]:
    """(the last change number, the photos changed after change `seq` up to it): the number and the photos agree."""
    last = change_number(con)
    return last, [r[0] for r in con.execute("SELECT photo_id FROM photo_changes WHERE seq > ? AND seq <= ?", (seq, last))]


class ChangeQueries:
    """What a whole-library view asks the catalog to stay current; mixed into core.catalog.Catalog."""

    db: "Database"

    def change_number(self) -> int:
        """The last photo change's number: the mark a whole-library view keeps."""
        with self.db.connect() as con:
            return change_number(con)

    def changes_since(self, seq: int) -> tuple[int, list[str]]:
        """(the last change number, the photos changed after `seq`)."""
        with self.db.connect() as con:
            return changes_since(con, seq)

    def present_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these photos are in the catalog and not missing."""
        with self.db.connect() as con:
            return {r[0] for r in in_chunks(con, "SELECT id FROM photos WHERE missing=0 AND id IN ({in})", list(ids))}

    def photos_mark(self) -> tuple[int, Optional[str]]:
        """(photos not missing, the newest added_at): with `ids_added_after`, a check for rows written by a writer
        that numbers nothing (a bulk load, an older PhotoLore on a shared PostgreSQL catalog)."""
        with self.db.connect() as con:
            n, newest = con.execute("SELECT COUNT(*), MAX(added_at) FROM photos WHERE missing = 0").fetchone()
        return int(n), newest

    def ids_added_after(self, added_at: Optional[str]) -> list[str]:
        """Ids of the photos (not missing) added after `added_at` (all when None), in the catalog's order."""
        q = "SELECT id FROM photos WHERE missing = 0" + (" AND added_at > ?" if added_at is not None else "") + " ORDER BY added_at, path"
        with self.db.connect() as con:
            return [r[0] for r in con.execute(q, [added_at] if added_at is not None else [])]
