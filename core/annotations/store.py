"""The annotation tables and every SQL statement on them, in the catalog's database (SQLite or PostgreSQL, core.db).

- `annotations`: one row per (photo, annotator, version): status 'ok' with values, or 'error'
  with the reason (an invalid or missing answer is never stored as a score);
- `corrections`: the human's values per photo, only the fields they set; they win field by field;
- `caption_truth`: ground-truth sentiment imported with captions (SentiCap);
- `annotation_values`: each photo's effective values (core.annotations.values), rewritten in the transaction of
  every write above, so readers of a million photos SELECT them instead of merging predictions and corrections.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Optional, Sequence

from core.annotate.prompts import DIMENSIONS
from core.annotations.values import LIST_FIELDS, PLAIN_FIELDS, VALUE_COLUMNS, VALUES_DDL, effective_values, from_row, to_row
from core.catalog import Catalog, now_iso
from core.db import Conn, chunks, in_chunks
from core.photo_changes import note_changes

if TYPE_CHECKING:  # pragma: no cover
    from core.annotate.base import AnnotationResult

# Fields a human can correct, and what the effective view reports per photo.
FIELDS = [*DIMENSIONS, *PLAIN_FIELDS, *LIST_FIELDS]

# {serial}: PostgreSQL has no rowid, so it gets a growing column to order rows written in the same second.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS annotations (
    photo_id TEXT NOT NULL, annotator TEXT NOT NULL, version TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    error TEXT, data TEXT NOT NULL DEFAULT '{{}}', created_at TEXT NOT NULL{serial},
    PRIMARY KEY (photo_id, annotator, version)
);
CREATE TABLE IF NOT EXISTS corrections (
    photo_id TEXT PRIMARY KEY, data TEXT NOT NULL, source TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS caption_truth (
    photo_id TEXT PRIMARY KEY, sentiment TEXT NOT NULL, source TEXT NOT NULL, updated_at TEXT NOT NULL
);
""" + VALUES_DDL + ";"
_INSERT_VALUES = (f"INSERT INTO annotation_values (photo_id, {', '.join(VALUE_COLUMNS.values())}) "
                  f"VALUES ({','.join('?' * (len(VALUE_COLUMNS) + 1))})")


# --- connection ---------------------------------------------------------------------------
@contextmanager
def _conn(catalog: Catalog) -> Iterator[Conn]:
    if not getattr(catalog, "_annotations_ready", False):
        # Once per Catalog, under the schema lock, so processes creating the tables at once do not collide.
        with catalog.db.migration() as con:
            con.script(_SCHEMA.format(serial=catalog.db.dialect.serial_column))
            _backfill(con)
        catalog._annotations_ready = True  # type: ignore[attr-defined]
    with catalog._conn() as con:  # one transaction per call
        yield con


def ensure_schema(catalog: Catalog) -> None:
    """Create the annotation tables (idempotent)."""
    with _conn(catalog):
        pass


# --- predictions ----------------------------------------------------------------------------
def record_results(catalog: Catalog, annotator: str, version: str, results: Sequence["AnnotationResult"]) -> None:
    """Store a batch of results in one transaction; a rerun of the same (photo, annotator, version) replaces it."""
    rows = []
    for r in results:
        data = asdict(r)
        data.pop("error", None)
        data.pop("photo_id", None)
        data.update(data.pop("scores") or {})  # the six dimensions stored flat, like every other field
        rows.append((r.photo_id, annotator, version, "ok" if r.ok else "error", r.error, json.dumps(data if r.ok else {}), now_iso()))
    with _conn(catalog) as con:
        con.executemany(
            "INSERT INTO annotations (photo_id, annotator, version, status, error, data, created_at) VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT(photo_id, annotator, version) DO UPDATE SET status=excluded.status, error=excluded.error, "
            "data=excluded.data, created_at=excluded.created_at", rows)
        _refresh_values(con, [r[0] for r in rows])


def done_ids(catalog: Catalog, annotator: str, version: str) -> set[str]:
    """Photos this exact annotator version already annotated successfully (skipped on resume)."""
    with _conn(catalog) as con:
        return {r[0] for r in con.execute("SELECT photo_id FROM annotations WHERE annotator=? AND version=? AND status='ok'", (annotator, version))}


def annotation_rows(catalog: Catalog, *, annotator: Optional[str] = None, photo_ids: Optional[Iterable[str]] = None) -> list[dict]:
    """Raw prediction rows (provenance included), newest first."""
    cols = "photo_id, annotator, version, status, error, data, created_at"
    q, args = f"SELECT {cols}, {catalog.db.dialect.insert_order} AS seq FROM annotations WHERE 1=1", []
    if annotator:
        q += " AND annotator=?"
        args.append(annotator)
    with _conn(catalog) as con:
        if photo_ids is None:
            rows = [dict(zip(r.keys(), r)) for r in con.execute(q, args)]
        else:
            rows = [dict(zip(r.keys(), r)) for r in in_chunks(con, q + " AND photo_id IN ({in})", list(photo_ids), before=args)]
    rows.sort(key=lambda r: (r["created_at"], r["seq"]), reverse=True)
    for r in rows:
        r["data"] = json.loads(r["data"] or "{}")
        del r["seq"]
    return rows


def latest_ok(catalog: Catalog, photo_ids: Optional[Iterable[str]] = None) -> dict[str, dict]:
    """Per photo, its latest 'ok' prediction (by created_at, then insert order), the row annotation_rows gives first.

    Only the winners' data JSON is parsed: at a million photos with a few annotators each, parsing every
    row was most of the Dashboards' load."""
    with _conn(catalog) as con:
        return _latest_ok(con, photo_ids)


def _latest_ok(con: Conn, photo_ids: Optional[Iterable[str]] = None) -> dict[str, dict]:
    q = f"SELECT photo_id, annotator, version, data, created_at, {con.dialect.insert_order} AS seq FROM annotations WHERE status='ok'"
    best: dict[str, tuple] = {}
    rows = con.execute(q) if photo_ids is None else in_chunks(con, q + " AND photo_id IN ({in})", list(photo_ids))
    for r in rows:
        held = best.get(r[0])
        if held is None or (r[4], r[5]) > (held[4], held[5]):
            best[r[0]] = tuple(r)
    return {pid: {"annotator": r[1], "version": r[2], "data": _loads(r[3] or "{}"), "created_at": r[4]} for pid, r in best.items()}


def _loads(text: str):
    try:
        return _json_loads(text)
    except ValueError:  # what orjson refuses and json reads (NaN, written by json.dumps)
        return json.loads(text)


try:  # orjson (a dependency of chromadb) parses the data JSON about 3x faster than json
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover
    _json_loads = json.loads


def annotations_signature(catalog: Catalog) -> tuple:
    """Changes when a photo is added or goes missing, or a prediction or correction is written: the key of
    a cached whole-library frame. Captions edited in place do not change it (readers that cache say so)."""
    with _conn(catalog) as con:
        photos = tuple(con.execute("SELECT COUNT(*), MAX(added_at) FROM photos WHERE missing=0").fetchone())
        preds = tuple(con.execute("SELECT COUNT(*), MAX(created_at) FROM annotations").fetchone())
        fixes = tuple(con.execute("SELECT COUNT(*), MAX(updated_at) FROM corrections").fetchone())
    return photos + preds + fixes


def annotators(catalog: Catalog) -> list[dict]:
    """Each (annotator, version) with counts of ok and failed photos and the last run time."""
    with _conn(catalog) as con:
        rows = con.execute(
            "SELECT annotator, version, SUM(CASE WHEN status='ok' THEN 1 ELSE 0 END) AS ok, "
            "SUM(CASE WHEN status='error' THEN 1 ELSE 0 END) AS failed, MAX(created_at) AS last "
            "FROM annotations GROUP BY annotator, version ORDER BY last DESC").fetchall()
    return [{k: (int(v) if k in ("ok", "failed") else v) for k, v in zip(r.keys(), r)} for r in rows]


def reset_annotator(catalog: Catalog, annotator: str, *, version: Optional[str] = None, photo_ids: Optional[Iterable[str]] = None) -> list[str]:
    """Delete one annotator's results (optionally one version / some photos); returns the photo ids touched."""
    q, args = "FROM annotations WHERE annotator=?", [annotator]
    if version:
        q += " AND version=?"
        args.append(version)
    with _conn(catalog) as con:
        ids = sorted({r[0] for r in con.execute("SELECT photo_id " + q, args)})
        if photo_ids is not None:
            ids = sorted(set(ids) & set(photo_ids))
            con.executemany("DELETE " + q + " AND photo_id=?", [(*args, pid) for pid in ids])
        else:
            con.execute("DELETE " + q, args)
        _refresh_values(con, ids)
    return ids


# --- corrections ----------------------------------------------------------------------------
def set_corrections(catalog: Catalog, corrections: dict[str, dict], *, source: str = "human") -> None:
    """Merge human values per photo (only the given fields) in one transaction; None clears a field."""
    with _conn(catalog) as con:
        for pid, values in corrections.items():
            row = con.execute("SELECT data FROM corrections WHERE photo_id=?", (pid,)).fetchone()
            data = json.loads(row[0]) if row else {}
            for k, v in values.items():
                if k not in FIELDS:
                    raise ValueError(f"unknown annotation field {k!r}; expected one of {', '.join(FIELDS)}")
                if v is None:
                    data.pop(k, None)
                else:
                    data[k] = v
            if data:
                con.execute("INSERT INTO corrections (photo_id, data, source, updated_at) VALUES (?,?,?,?) ON CONFLICT(photo_id) "
                            "DO UPDATE SET data=excluded.data, source=excluded.source, updated_at=excluded.updated_at",
                            (pid, json.dumps(data), source, now_iso()))
            else:
                con.execute("DELETE FROM corrections WHERE photo_id=?", (pid,))
        _refresh_values(con, list(corrections))


def corrections(catalog: Catalog) -> dict[str, dict]:
    """The human's values per photo: {photo_id: {field: value}}."""
    with _conn(catalog) as con:
        return _corrections(con)


def _corrections(con: Conn, photo_ids: Optional[Iterable[str]] = None) -> dict[str, dict]:
    q = "SELECT photo_id, data FROM corrections"
    rows = con.execute(q) if photo_ids is None else in_chunks(con, q + " WHERE photo_id IN ({in})", list(photo_ids))
    return {r[0]: json.loads(r[1]) for r in rows}


# --- effective values ---------------------------------------------------------------------------
def value_rows(catalog: Catalog, photo_ids: Optional[Iterable[str]] = None) -> dict[str, dict]:
    """{photo_id: effective_values(...)} read from annotation_values (these photos, or all); a photo with neither an
    'ok' prediction nor a correction has no entry."""
    _catch_up(catalog)
    q = f"SELECT photo_id, {', '.join(VALUE_COLUMNS.values())} FROM annotation_values"
    with _conn(catalog) as con:
        rows = con.execute(q) if photo_ids is None else in_chunks(con, q + " WHERE photo_id IN ({in})", list(photo_ids))
        return {r[0]: from_row(r) for r in rows}


_PROGRESS_EVERY = 50_000
# The photo columns the effective view shows, in this order ahead of VALUE_COLUMNS and the ground truth.
PHOTO_COLUMNS = ("id", "path", "class_name", "caption", "caption_source", "taken_at", "thumb_path")


def photo_value_rows(catalog: Catalog, photo_ids: Optional[Iterable[str]] = None, *,
                     on_progress: Optional[Callable[[int, int], None]] = None) -> list[tuple]:
    """(*PHOTO_COLUMNS, *VALUE_COLUMNS, ground-truth sentiment) per photo from one join: every photo not missing
    in the catalog's order, or these photos in the given order (unknown ids left out). Unannotated photos have
    NULL values. Paths are as stored (core.pathnames.from_db gives the real ones). Reading every photo calls
    `on_progress(rows read, photos)` every _PROGRESS_EVERY rows (a million take half a minute)."""
    _catch_up(catalog)
    cols = ", ".join([*(f"p.{c}" for c in PHOTO_COLUMNS), *(f"v.{c}" for c in VALUE_COLUMNS.values()), "t.sentiment"])
    q = (f"SELECT {cols} FROM photos p LEFT JOIN annotation_values v ON v.photo_id = p.id "
         "LEFT JOIN caption_truth t ON t.photo_id = p.id")
    with _conn(catalog) as con:
        if photo_ids is None:
            total = int(con.execute("SELECT COUNT(*) FROM photos WHERE missing = 0").fetchone()[0]) if on_progress else 0
            cur = con.execute(q + " WHERE p.missing = 0 ORDER BY p.added_at, p.path")
            rows: list[tuple] = []
            while part := cur.fetchmany(_PROGRESS_EVERY):
                rows += part
                if on_progress:
                    on_progress(len(rows), max(total, len(rows)))
            return rows
        ids = list(photo_ids)
        got = {r[0]: r for r in in_chunks(con, q + " WHERE p.id IN ({in})", ids)}
    return [got[i] for i in ids if i in got]


def _catch_up(catalog: Catalog) -> None:
    with _conn(catalog) as con:
        behind = _behind(con)
    if behind:  # written around the store after this Catalog made the table (bench_million's bulk load)
        with catalog.db.migration() as con:
            _backfill(con)


def _review_from(class_name: Optional[str], annotated_only: bool) -> tuple[str, list]:
    # "annotated" is what the review table shows by default: a score or a sentiment (the page's own test)
    have = " OR ".join(f"v.{VALUE_COLUMNS[f]} IS NOT NULL" for f in (*DIMENSIONS, "sentiment"))
    sql = ("FROM photos p " + ("JOIN" if annotated_only else "LEFT JOIN") + " annotation_values v ON v.photo_id = p.id "
           "WHERE p.missing = 0" + (" AND p.class_name = ?" if class_name is not None else "") + (f" AND ({have})" if annotated_only else ""))
    return sql, [class_name] if class_name is not None else []


def review_count(catalog: Catalog, *, class_name: Optional[str] = None, annotated_only: bool = True) -> int:
    """How many photos the review table pages through (one class's when given; only annotated ones by default)."""
    sql, args = _review_from(class_name, annotated_only)
    with _conn(catalog) as con:
        return int(con.execute("SELECT COUNT(*) " + sql, args).fetchone()[0])


def review_ids(catalog: Catalog, *, offset: int, limit: int, class_name: Optional[str] = None, annotated_only: bool = True) -> list[str]:
    """The photo ids of one review page, in the catalog's order: the page reads 50 photos' values, not the library's."""
    sql, args = _review_from(class_name, annotated_only)
    with _conn(catalog) as con:
        return [r[0] for r in con.execute("SELECT p.id " + sql + " ORDER BY p.added_at, p.path LIMIT ? OFFSET ?", [*args, limit, offset])]


def _refresh_values(con: Conn, photo_ids: Iterable[str]) -> None:
    """Rewrite these photos' annotation_values rows from their predictions and corrections, in the writer's transaction."""
    ids = sorted(set(photo_ids))
    # Lock each photo's row first, in one order: on PostgreSQL a concurrent writer of the same photo waits here, then
    # reads what the other committed, so neither stores values computed without the other's rows.
    con.executemany("INSERT INTO annotation_values (photo_id) VALUES (?) ON CONFLICT(photo_id) DO UPDATE SET photo_id=excluded.photo_id",
                    [(pid,) for pid in ids])
    latest, fixes = _latest_ok(con, ids), _corrections(con, ids)
    con.executemany("DELETE FROM annotation_values WHERE photo_id=?", [(pid,) for pid in ids])
    con.executemany(_INSERT_VALUES, [to_row(pid, effective_values(latest.get(pid), fixes.get(pid)))
                                     for pid in ids if pid in latest or pid in fixes])
    note_changes(con, ids)  # last: it holds the journal's lock to the end of the transaction


def _behind(con: Conn) -> bool:
    """annotation_values is empty though there is something to show: a library from before the table, or rows
    written around the store. (Every write through the store leaves a row per photo with an 'ok' row or a correction.)"""
    if con.execute("SELECT 1 FROM annotation_values LIMIT 1").fetchone():
        return False
    return bool(con.execute("SELECT 1 FROM annotations WHERE status='ok' LIMIT 1").fetchone()
                or con.execute("SELECT 1 FROM corrections LIMIT 1").fetchone())


def _backfill(con: Conn) -> None:
    """Fill annotation_values in one pass when `_behind`. Callers hold the schema lock: of processes starting at once
    the first fills it and the others find it full; DO NOTHING keeps a row that a writer of the store wrote meanwhile."""
    if not _behind(con):
        return
    latest, fixes = _latest_ok(con), _corrections(con)
    for part in chunks(list(dict.fromkeys([*latest, *fixes])), 20_000):
        con.executemany(_INSERT_VALUES + " ON CONFLICT(photo_id) DO NOTHING",
                        [to_row(pid, effective_values(latest.get(pid), fixes.get(pid))) for pid in part])


# --- captions and their ground truth ------------------------------------------------------------
def caption_truth(catalog: Catalog) -> dict[str, str]:
    """Imported ground-truth sentiment per photo: {photo_id: label}."""
    with _conn(catalog) as con:
        return {r[0]: r[1] for r in con.execute("SELECT photo_id, sentiment FROM caption_truth")}


def write_captions(catalog: Catalog, captions: dict[str, tuple[str, Optional[str]]], source: str) -> None:
    """Set each photo's caption and, where given, its ground-truth sentiment, all in one transaction."""
    with _conn(catalog) as con:
        for pid, (cap, truth) in captions.items():
            con.execute("UPDATE photos SET caption=?, caption_source=? WHERE id=?", (cap, source, pid))
            if truth:
                con.execute("INSERT INTO caption_truth (photo_id, sentiment, source, updated_at) VALUES (?,?,?,?) ON CONFLICT(photo_id) "
                            "DO UPDATE SET sentiment=excluded.sentiment, source=excluded.source, updated_at=excluded.updated_at",
                            (pid, truth, source, now_iso()))
        note_changes(con, list(captions))
