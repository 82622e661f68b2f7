"""Annotation storage: model predictions and human corrections, the effective view, import/export, Chroma sync.

Tables live in the catalog's database (SQLite or PostgreSQL, core.db):
- `annotations`: one row per (photo, annotator, version): status 'ok' with values, or 'error'
  with the reason (an invalid or missing answer is never stored as a score);
- `corrections`: the human's values per photo, only the fields they set; they win field by field;
- `caption_truth`: ground-truth sentiment imported with captions (SentiCap).

Effective value of a field = correction if any, else the latest 'ok' prediction (by time).

Filenames in CSV/JSON: the photo's path relative to the library root (settings.library_dir,
i.e. <data_dir>/library) when it lies under it, else its base name. Import accepts either
form; a base name matching several photos is rejected as ambiguous.
"""
from __future__ import annotations

import csv
import io
import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Sequence

from core.annotate.prompts import DIMENSIONS, SENTIMENTS, topic_key
from core.catalog import Catalog, Photo, now_iso
from core.db import Conn, in_chunks
from core.pathnames import display_path, from_db

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from core.annotate.base import AnnotationResult

CSV_COLUMNS = ["filename", *DIMENSIONS, "concept_text"]
CAPTION_COLUMNS = ["filename", "caption"]
# Fields a human can correct, and what the effective view reports per photo.
FIELDS = [*DIMENSIONS, "concept_text", "sentiment", "sentiment_score", "sentiment_caption", "sentiment_image",
          "topics", "topics_caption", "topics_image"]

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
"""


class AnnotationImportError(ValueError):
    """An import with invalid rows; `report.errors` lists them. Nothing was written."""

    def __init__(self, report: "ImportReport"):
        self.report = report
        super().__init__(report.summary())


@dataclass
class RowError:
    row: int  # 1-based data row (the header is row 0); 0 = the file itself
    filename: str
    problems: list[str]

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row else "file"
        return f"{where} ({self.filename or '?'}): " + "; ".join(self.problems)


@dataclass
class ImportReport:
    source: str
    written: int = 0
    total_rows: int = 0
    errors: list[RowError] = field(default_factory=list)

    def summary(self) -> str:
        head = f"{self.source}: {self.written} of {self.total_rows} rows imported"
        if not self.errors:
            return head
        shown = "\n".join(f"  {e}" for e in self.errors[:50])
        more = f"\n  ... and {len(self.errors) - 50} more" if len(self.errors) > 50 else ""
        return f"{head}; {len(self.errors)} invalid rows:\n{shown}{more}"


# --- connection ---------------------------------------------------------------------------
@contextmanager
def _conn(catalog: Catalog) -> Iterator[Conn]:
    if not getattr(catalog, "_annotations_ready", False):
        # Once per Catalog, under the schema lock, so processes creating the tables at once do not collide.
        with catalog.db.migration() as con:
            con.script(_SCHEMA.format(serial=catalog.db.dialect.serial_column))
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


def corrections(catalog: Catalog) -> dict[str, dict]:
    with _conn(catalog) as con:
        return {r[0]: json.loads(r[1]) for r in con.execute("SELECT photo_id, data FROM corrections")}


def caption_truth(catalog: Catalog) -> dict[str, str]:
    with _conn(catalog) as con:
        return {r[0]: r[1] for r in con.execute("SELECT photo_id, sentiment FROM caption_truth")}


def save_review_edits(catalog: Catalog, store, edits: dict[str, dict], *, source: str = "human") -> list[RowError]:
    """Validate edits from the review grid ({photo_id: {field: value}}), store the valid ones as corrections, sync Chroma.

    Scores must be integers 1-5 (empty clears the correction), sentiment one of the three labels,
    topics a list or a comma-separated string. Returns the problems of the edits not saved.
    """
    problems: list[RowError] = []
    good: dict[str, dict] = {}
    for pid, values in edits.items():
        clean, bad = {}, []
        for f, v in values.items():
            if f in DIMENSIONS:
                if v is None or (isinstance(v, float) and v != v) or v == "":
                    clean[f] = None
                    continue
                n, problem = _parse_score(int(v) if isinstance(v, float) and v.is_integer() else v)
                if problem:
                    bad.append(f"{f}: {problem}")
                else:
                    clean[f] = n
            elif f == "sentiment":
                if v in (None, ""):
                    clean[f] = None
                elif v in SENTIMENTS:
                    clean[f] = v
                else:
                    bad.append(f"sentiment: {v!r} is not one of {', '.join(SENTIMENTS)}")
            elif f == "topics":
                items = v if isinstance(v, list) else str(v or "").split(",")
                clean[f] = [t.strip().lower() for t in items if str(t).strip()] or None
            elif f == "concept_text":
                clean[f] = " ".join(str(v or "").split()) or None
            else:
                bad.append(f"{f} cannot be edited")
        if bad:
            problems.append(RowError(0, pid[:12], bad))
        elif clean:
            good[pid] = clean
    if good:
        set_corrections(catalog, good, source=source)
        if store is not None:
            sync_chroma(catalog, store, list(good))
    return problems


# --- the effective view -----------------------------------------------------------------------
def photo_filename(photo: Photo, library_dir: Path) -> str:
    """Relative to the library root when under it, else the base name (see module doc)."""
    path = Path(photo.path)
    try:
        return display_path(path.resolve().relative_to(Path(library_dir).resolve()).as_posix())
    except ValueError:
        return display_path(path.name)


def library_dir_of(catalog: Catalog) -> Path:
    """settings.library_dir for this catalog (see core.catalog.open_catalog)."""
    if catalog.library_dir is None:
        raise ValueError(f"{catalog.describe()} was opened without a library dir: open it with core.catalog.open_catalog(settings)")
    return catalog.library_dir


def _all_photos(catalog: Catalog, photo_ids: Optional[Iterable[str]]) -> list[Photo]:
    if photo_ids is not None:
        got = catalog.get_many(list(photo_ids))
        return [got[i] for i in photo_ids if i in got]
    out, offset = [], 0
    while True:
        page = catalog.list_photos(limit=5000, offset=offset)
        out += page
        if len(page) < 5000:
            return out
        offset += 5000


def effective_records(catalog: Catalog, photo_ids: Optional[Iterable[str]] = None) -> list[dict]:
    """One dict per photo: the effective values plus provenance (`annotator`, `version`, `annotated_at`, `corrected`)."""
    photo_ids = list(photo_ids) if photo_ids is not None else None
    photos = _all_photos(catalog, photo_ids)
    ids = [p.id for p in photos]
    latest: dict[str, dict] = {}
    for r in annotation_rows(catalog, photo_ids=ids if photo_ids is not None else None):
        if r["status"] == "ok" and r["photo_id"] not in latest:
            latest[r["photo_id"]] = r
    fixes, truth = corrections(catalog), caption_truth(catalog)
    lib = library_dir_of(catalog)
    out = []
    for p in photos:
        pred = latest.get(p.id)
        values = dict(pred["data"]) if pred else {}
        fix = fixes.get(p.id, {})
        rec: dict[str, Any] = {"photo_id": p.id, "filename": photo_filename(p, lib), "class_name": p.class_name,
                               "caption": p.caption or "", "caption_source": p.caption_source or "", "taken_at": p.taken_at,
                               "thumb_path": p.thumb_path}
        for f in FIELDS:
            v = fix.get(f, values.get(f))
            if f in DIMENSIONS and v is not None:
                v = int(v)
            if f.startswith("topics"):
                v = list(v or [])
            rec[f] = v
        if "sentiment" in fix and "sentiment_score" not in fix:
            rec["sentiment_score"] = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}[fix["sentiment"]]
        rec["concept_text"] = rec["concept_text"] or ""
        rec["annotator"] = pred["annotator"] if pred else None
        rec["version"] = pred["version"] if pred else None
        rec["annotated_at"] = pred["created_at"] if pred else None
        rec["corrected"] = sorted(fix)
        rec["sentiment_truth"] = truth.get(p.id)
        out.append(rec)
    return out


def effective_annotations(catalog: Catalog, photo_ids: Optional[Iterable[str]] = None) -> "pd.DataFrame":
    """One row per photo: effective values (human correction > latest model prediction)."""
    import pandas as pd

    cols = ["photo_id", "filename", "class_name", "caption", "sentiment", "sentiment_score", "sentiment_caption", "sentiment_image",
            "topics", *DIMENSIONS, "concept_text", "taken_at", "topics_caption", "topics_image", "annotator", "version",
            "annotated_at", "corrected", "sentiment_truth", "caption_source", "thumb_path"]
    df = pd.DataFrame(effective_records(catalog, photo_ids), columns=cols)
    for d in DIMENSIONS:
        df[d] = df[d].astype("Int64")
    return df


def count_photos(catalog: Catalog, where: dict[str, Any]) -> int:
    """Photos whose effective values equal every `where` item (e.g. {"sentiment": "positive", "topic_food": True})."""
    n = 0
    for rec in effective_records(catalog):
        meta = chroma_metadata(rec)
        if all(meta.get(k, rec.get(k)) == v for k, v in where.items()):
            n += 1
    return n


# --- Chroma metadata --------------------------------------------------------------------------
def chroma_metadata(rec: dict, topic_universe: Iterable[str] = ()) -> dict[str, Any]:
    """The contract keys for one effective record; a topic not held is written False so filters stay exact."""
    meta: dict[str, Any] = {}
    for k in ("sentiment", "sentiment_caption", "sentiment_image"):
        if rec.get(k):
            meta[k] = rec[k]
    if rec.get("sentiment_score") is not None:
        meta["sentiment_score"] = float(rec["sentiment_score"])
    if rec.get("topics"):
        meta["topics"] = ",".join(rec["topics"])
    for t in set(topic_universe) | set(rec.get("topics") or []):
        meta[topic_key(t)] = t in (rec.get("topics") or [])
    for d in DIMENSIONS:
        if rec.get(d) is not None:
            meta[d] = int(rec[d])
    if rec.get("concept_text"):
        meta["concept_text"] = rec["concept_text"]
    return meta


_CONTRACT_KEYS = ["sentiment", "sentiment_score", "sentiment_caption", "sentiment_image", "topics", *DIMENSIONS, "concept_text"]


def sync_chroma(catalog: Catalog, store, photo_ids: Iterable[str], *, topic_universe: Iterable[str] = ()) -> int:
    """Copy effective values into the Chroma metadata of these photos; keys with no value any more are removed."""
    ids = list(photo_ids)
    if not ids:
        return 0
    recs = effective_records(catalog, ids)
    universe = set(topic_universe)
    for r in recs:
        universe |= set(r["topics"] or [])
    metas = [chroma_metadata(r, universe) for r in recs]
    held = _current_topic_keys(store, ids)
    for r, m in zip(recs, metas):
        for k in held.get(r["photo_id"], ()):
            m.setdefault(k, False)  # a topic dropped since the last sync must stop matching filters
    stale = {r["photo_id"]: [k for k in _CONTRACT_KEYS if k not in m] for r, m in zip(recs, metas)}
    _drop_metadata_keys(store, stale)
    return store.update_metadata([r["photo_id"] for r in recs], metas)


def _photo_collections(store):
    for name in store.collections():
        if name.startswith("photos-"):
            yield store.client.get_collection(name, embedding_function=None)


def _current_topic_keys(store, ids: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for col in _photo_collections(store):
        got = col.get(ids=ids, include=["metadatas"])
        for i, m in zip(got["ids"], got["metadatas"]):
            out.setdefault(i, set()).update(k for k in (m or {}) if k.startswith("topic_"))
    return out


def _drop_metadata_keys(store, stale: dict[str, list[str]]) -> None:
    # VectorStore.update_metadata merges and drops None values, so it cannot delete a key;
    # Chroma's own update deletes a key given None, which is what a reset needs.
    stale = {i: ks for i, ks in stale.items() if ks}
    if not stale:
        return
    for col in _photo_collections(store):
        present = set(col.get(ids=list(stale), include=[])["ids"])
        ids = [i for i in stale if i in present]
        if ids:
            col.update(ids=ids, metadatas=[{k: None for k in stale[i]} for i in ids])


# --- import / export --------------------------------------------------------------------------
class _FilenameIndex:
    def __init__(self, catalog: Catalog):
        lib = library_dir_of(catalog)
        self.by_name: dict[str, str] = {}
        self.by_base: dict[str, list[str]] = {}
        photos = _all_photos(catalog, None)
        with catalog._conn() as con:  # every file path at once: one query, not one per photo
            pairs = [(p.path, p.id) for p in photos] + [(from_db(r[0]), r[1]) for r in con.execute("SELECT path, photo_id FROM files")]
        live = {p.id for p in photos}
        for p in photos:
            self.by_name[photo_filename(p, lib)] = p.id
        for path, pid in pairs:
            ids = self.by_base.setdefault(display_path(Path(path).name), [])
            if pid in live and pid not in ids:
                ids.append(pid)

    def resolve(self, filename: str) -> tuple[Optional[str], Optional[str]]:
        """(photo id, None) or (None, problem)."""
        name = filename.strip().replace("\\", "/")
        if not name:
            return None, "empty filename"
        if name in self.by_name:
            return self.by_name[name], None
        ids = self.by_base.get(Path(name).name, [])
        if len(ids) == 1:
            return ids[0], None
        if len(ids) > 1:
            return None, f"filename {name!r} is ambiguous ({len(ids)} photos have that name): use the path relative to the library"
        return None, f"unknown filename {name!r} (not in the catalog)"


def _read_table(data: bytes | str | Path, what: str) -> tuple[str, list[dict]]:
    """('csv'|'json', rows) from CSV or JSON text, bytes or a file path."""
    if isinstance(data, Path):
        raw = data.read_bytes()
        kind = "json" if data.suffix.lower() == ".json" else "csv"
    else:
        raw = data.encode() if isinstance(data, str) else data
        kind = "json" if raw.lstrip()[:1] in (b"[", b"{") else "csv"
    text = raw.decode("utf-8-sig")
    if kind == "json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AnnotationImportError(ImportReport(what, errors=[RowError(0, "", [f"not valid JSON: {exc}"])])) from exc
        rows = obj.get("annotations", obj.get("captions", obj.get("rows"))) if isinstance(obj, dict) else obj
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise AnnotationImportError(ImportReport(what, errors=[RowError(0, "", ["JSON must be a list of objects (or {\"annotations\": [...]})"])]))
        return kind, rows
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return kind, [dict(r, __header__=reader.fieldnames) for r in rows] if rows else [{"__header__": reader.fieldnames, "__empty__": True}]


def _check_columns(rows: list[dict], required: list[str], what: str) -> list[dict]:
    header = rows[0].get("__header__") if rows else None
    present = set(header) if header is not None else set().union(*(r.keys() for r in rows)) if rows else set()
    missing = [c for c in required if c not in present]
    if missing:
        raise AnnotationImportError(ImportReport(what, total_rows=len(rows), errors=[RowError(0, "", [f"missing columns: {', '.join(missing)} (expected {','.join(required)})"])]))
    return [r for r in rows if not r.get("__empty__")]


def _parse_score(value: Any) -> tuple[Optional[int], Optional[str]]:
    if isinstance(value, bool):
        return None, f"{value!r} is not an integer"
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        n = int(value.strip())
    else:
        return None, f"{value!r} is not an integer" if value not in (None, "") else "missing value"
    if not 1 <= n <= 5:
        return None, f"{n} is out of range 1-5"
    return n, None


def _validate(catalog: Catalog, rows: list[dict], what: str, parse_row) -> tuple[ImportReport, dict[str, dict]]:
    """Shared row checks: known filename, no duplicates, then `parse_row(row) -> (values, problems)`."""
    index = _FilenameIndex(catalog)
    report = ImportReport(what, total_rows=len(rows))
    seen: dict[str, int] = {}
    good: dict[str, dict] = {}
    for n, row in enumerate(rows, start=1):
        fname = str(row.get("filename") or "")
        problems: list[str] = []
        pid, problem = index.resolve(fname)
        if problem:
            problems.append(problem)
        values, more = parse_row(row)
        problems += more
        if pid is not None and pid in seen:
            problems.append(f"duplicate of row {seen[pid]} (same photo)")
        if pid is not None:
            seen.setdefault(pid, n)
        if problems:
            report.errors.append(RowError(n, fname, problems))
        elif pid is not None:
            good[pid] = values
    return report, good


def _score_row(row: dict) -> tuple[dict, list[str]]:
    values, problems = {}, []
    for d in DIMENSIONS:
        n, problem = _parse_score(row.get(d))
        if problem:
            problems.append(f"{d}: {problem}")
        values[d] = n
    concept = row.get("concept_text")
    if concept is not None and not isinstance(concept, str):
        problems.append(f"concept_text: {concept!r} is not text")
    values["concept_text"] = concept.strip() if isinstance(concept, str) else ""
    return values, problems


def import_scores(catalog: Catalog, data: bytes | str | Path, *, valid_only: bool = False, source: str = "import", store=None) -> ImportReport:
    """Import `filename,Safety,...,concept_text` (CSV or JSON) as human values; all-or-nothing unless `valid_only`."""
    _, rows = _read_table(data, source)
    rows = _check_columns(rows, CSV_COLUMNS, source)
    report, good = _validate(catalog, rows, source, _score_row)
    if report.errors and not valid_only:
        raise AnnotationImportError(report)
    if not good and not rows:
        report.errors.append(RowError(0, "", ["no data rows"]))
        raise AnnotationImportError(report)
    set_corrections(catalog, good, source=source)
    report.written = len(good)
    if store is not None:
        sync_chroma(catalog, store, list(good))
    return report


def _caption_row(row: dict) -> tuple[dict, list[str]]:
    cap = row.get("caption")
    if not isinstance(cap, str) or not cap.strip():
        return {}, ["caption: missing or empty"]
    return {"caption": cap.strip()}, []


def import_captions(catalog: Catalog, data: bytes | str | Path, *, valid_only: bool = False, source: str = "user", store=None,
                    services=None) -> ImportReport:
    """Import the user's own captions (`filename,caption` CSV or JSON); they replace alt text and generated captions.

    With `services` the captions are also re-embedded (core.library.set_captions), so caption-space
    text search sees them at once; with only `store` the index metadata is updated.
    """
    _, rows = _read_table(data, "captions")
    rows = _check_columns(rows, CAPTION_COLUMNS, "captions")
    report, good = _validate(catalog, rows, "captions", _caption_row)
    if report.errors and not valid_only:
        raise AnnotationImportError(report)
    _store_captions(catalog, {pid: (v["caption"], None) for pid, v in good.items()}, source, store=store, services=services)
    report.written = len(good)
    return report


# Where a caption came from, most trusted first; generated captions ("<backend>:<model>") rank last.
CAPTION_PRIORITY = ("user", "senticap", "alt")


def caption_rank(source: Optional[str]) -> int:
    """Lower is better: the user's own, then SentiCap, then the crawler's alt text, then any captioner."""
    return CAPTION_PRIORITY.index(source) if source in CAPTION_PRIORITY else len(CAPTION_PRIORITY)


def offer_caption(catalog: Catalog, photo_id: str, caption: str, source: str) -> bool:
    """Set the caption unless the photo already has one from a more trusted source; True when written."""
    caption = " ".join((caption or "").split())
    photo = catalog.get(photo_id)
    if photo is None or not caption:
        return False
    if photo.caption and caption_rank(photo.caption_source) < caption_rank(source):
        return False
    catalog.set_caption(photo_id, caption, source)
    return True


def _store_captions(catalog: Catalog, captions: dict[str, tuple[str, Optional[str]]], source: str, *, store=None, services=None) -> None:
    _write_captions(catalog, captions, source)  # the catalog and ground truth first, in one transaction
    if services is not None and getattr(services, "backend", None) is not None:
        from core.library import set_captions

        set_captions(services, [(pid, cap) for pid, (cap, _) in captions.items()], source)
    elif store is not None and captions:
        store.update_metadata(list(captions), [{"caption": cap} for cap, _ in captions.values()])


def _write_captions(catalog: Catalog, captions: dict[str, tuple[str, Optional[str]]], source: str) -> None:
    with _conn(catalog) as con:
        for pid, (cap, truth) in captions.items():
            con.execute("UPDATE photos SET caption=?, caption_source=? WHERE id=?", (cap, source, pid))
            if truth:
                con.execute("INSERT INTO caption_truth (photo_id, sentiment, source, updated_at) VALUES (?,?,?,?) ON CONFLICT(photo_id) "
                            "DO UPDATE SET sentiment=excluded.sentiment, source=excluded.source, updated_at=excluded.updated_at",
                            (pid, truth, source, now_iso()))


def import_senticap(catalog: Catalog, data: bytes | str | Path, *, valid_only: bool = False, store=None, services=None) -> ImportReport:
    """SentiCap JSON ({"images": [{"filename", "sentences": [{"raw", "sentiment": 0|1}]}]}): caption + ground-truth sentiment.

    The caption is the first sentence; the truth label is the majority of the sentences'
    labels (1 positive, 0 negative; a tie is recorded as neutral).
    """
    raw = data.read_bytes() if isinstance(data, Path) else (data.encode() if isinstance(data, str) else data)
    try:
        obj = json.loads(raw.decode("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationImportError(ImportReport("senticap", errors=[RowError(0, "", [f"not valid JSON: {exc}"])])) from exc
    images = obj.get("images") if isinstance(obj, dict) else None
    if not isinstance(images, list):
        raise AnnotationImportError(ImportReport("senticap", errors=[RowError(0, "", ["SentiCap JSON needs a top-level \"images\" list"])]))

    def parse(row: dict) -> tuple[dict, list[str]]:
        sents = row.get("sentences")
        if not isinstance(sents, list) or not sents:
            return {}, ["sentences: missing or empty"]
        problems, labels = [], []
        for j, s in enumerate(sents):
            if not isinstance(s, dict) or not isinstance(s.get("raw"), str) or not s["raw"].strip():
                problems.append(f"sentence {j}: no 'raw' text")
            elif s.get("sentiment") not in (0, 1):
                problems.append(f"sentence {j}: sentiment must be 0 or 1, got {s.get('sentiment')!r}")
            else:
                labels.append(s["sentiment"])
        if problems:
            return {}, problems
        pos = sum(labels)
        truth = "positive" if pos * 2 > len(labels) else "negative" if pos * 2 < len(labels) else "neutral"
        return {"caption": sents[0]["raw"].strip(), "truth": truth}, []

    rows = [r if isinstance(r, dict) else {"filename": "", "sentences": None} for r in images]
    report, good = _validate(catalog, rows, "senticap", parse)
    if report.errors and not valid_only:
        raise AnnotationImportError(report)
    _store_captions(catalog, {pid: (v["caption"], v["truth"]) for pid, v in good.items()}, "senticap", store=store, services=services)
    report.written = len(good)
    return report


def scores_table(catalog: Catalog, photo_ids: Optional[Iterable[str]] = None) -> list[dict]:
    """Export rows (CSV_COLUMNS) for photos with all six effective scores."""
    out = []
    for rec in effective_records(catalog, photo_ids):
        if all(rec.get(d) is not None for d in DIMENSIONS):
            out.append({c: rec[c] for c in CSV_COLUMNS})
    return out


def export_csv_bytes(catalog: Catalog, photo_ids: Optional[Iterable[str]] = None) -> bytes:
    """The export as CSV bytes, exactly `filename,Safety,Belonging,Naturalness,Shared,Privacy,Convenience,concept_text`."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(scores_table(catalog, photo_ids))
    return buf.getvalue().encode("utf-8")


def export_scores(catalog: Catalog, path: Path, *, fmt: Optional[str] = None) -> int:
    """Write the export atomically (temp file + rename) as CSV, or JSON when `fmt`/suffix says so; returns rows."""
    from core.images import atomic_write_bytes

    path = Path(path)
    fmt = fmt or ("json" if path.suffix.lower() == ".json" else "csv")
    rows = scores_table(catalog)
    payload = export_csv_bytes(catalog) if fmt == "csv" else json.dumps(rows, indent=1, ensure_ascii=False).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, payload)
    return len(rows)
