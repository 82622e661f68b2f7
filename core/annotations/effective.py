"""The effective view: per photo, each field's correction if any, else the latest 'ok' prediction (by time).

Every reader of annotations (the review grid, exports, dashboards, the index sync) goes
through `effective_records`, so they all agree on which value wins.
Filenames: the photo's path relative to the library root (settings.library_dir, i.e.
<data_dir>/library) when it lies under it, else its base name.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional

from core.annotate.prompts import DIMENSIONS
from core.annotations.store import FIELDS, annotation_rows, caption_truth, corrections
from core.catalog import Catalog, Photo
from core.pathnames import display_path

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


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


def all_photos(catalog: Catalog, photo_ids: Optional[Iterable[str]]) -> list[Photo]:
    """These photos in the given order (unknown ids skipped), or every photo of the catalog when None."""
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
    photos = all_photos(catalog, photo_ids)
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
