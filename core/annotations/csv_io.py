"""Import and export of the scores table (`filename,Safety,...,concept_text`, CSV or JSON), and the row checks every import shares.

Filenames: the photo's path relative to the library root when it lies under it, else its base
name (core.annotations.effective.photo_filename). Import accepts either form; a base name
matching several photos is rejected as ambiguous. An import with invalid rows writes nothing
unless asked to keep the valid ones.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from core.annotate.prompts import DIMENSIONS
from core.annotations.effective import PhotoFilenames, effective_records, library_dir_of
from core.annotations.index_sync import sync_chroma
from core.annotations.store import set_corrections
from core.catalog import Catalog
from core.pathnames import display_path, from_db

CSV_COLUMNS = ["filename", *DIMENSIONS, "concept_text"]


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


# --- reading and checking rows ------------------------------------------------------------------
class _FilenameIndex:
    def __init__(self, catalog: Catalog):
        name = PhotoFilenames(library_dir_of(catalog))
        self.by_name: dict[str, str] = {}
        self.by_base: dict[str, list[str]] = {}
        photos = catalog.photo_summaries()  # ids and paths: no facts JSON to parse per photo
        with catalog._conn() as con:  # every file path at once: one query, not one per photo
            pairs = [(p.path, p.id) for p in photos] + [(from_db(r[0]), r[1]) for r in con.execute("SELECT path, photo_id FROM files")]
        live = {p.id for p in photos}
        for p in photos:
            self.by_name[name(p.path)] = p.id
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


def read_table(data: bytes | str | Path, what: str) -> tuple[str, list[dict]]:
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


def check_columns(rows: list[dict], required: list[str], what: str) -> list[dict]:
    """The data rows, once every required column is present (else AnnotationImportError)."""
    header = rows[0].get("__header__") if rows else None
    present = set(header) if header is not None else set().union(*(r.keys() for r in rows)) if rows else set()
    missing = [c for c in required if c not in present]
    if missing:
        raise AnnotationImportError(ImportReport(what, total_rows=len(rows), errors=[RowError(0, "", [f"missing columns: {', '.join(missing)} (expected {','.join(required)})"])]))
    return [r for r in rows if not r.get("__empty__")]


def parse_score(value: Any) -> tuple[Optional[int], Optional[str]]:
    """(score, None) for an integer 1-5, else (None, problem); the review grid checks its edits the same way."""
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


def validate_rows(catalog: Catalog, rows: list[dict], what: str,
                  parse_row: Callable[[dict], tuple[dict, list[str]]]) -> tuple[ImportReport, dict[str, dict]]:
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


# --- the scores table ---------------------------------------------------------------------------
def _score_row(row: dict) -> tuple[dict, list[str]]:
    values, problems = {}, []
    for d in DIMENSIONS:
        n, problem = parse_score(row.get(d))
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
    _, rows = read_table(data, source)
    rows = check_columns(rows, CSV_COLUMNS, source)
    report, good = validate_rows(catalog, rows, source, _score_row)
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
