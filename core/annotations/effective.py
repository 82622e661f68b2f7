"""The effective view: per photo, each field's correction if any, else the latest 'ok' prediction (by time).

Every reader of annotations (the review grid, exports, dashboards, the index sync) goes through
`effective_records`, so they all agree on which value wins: it reads the values from `annotation_values`,
which the store rewrites on every write with core.annotations.values' one merge rule.
Filenames: the photo's path relative to the library root (settings.library_dir, i.e.
<data_dir>/library) when it lies under it, else its base name.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

from core.annotate.prompts import DIMENSIONS
from core.annotations.store import PHOTO_COLUMNS, caption_truth, photo_value_rows, value_rows
from core.annotations.values import LIST_FIELDS, VALUE_COLUMNS, effective_values
from core.catalog import Catalog, Photo, PhotoSummary
from core.pathnames import display_path, from_db

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def photo_filename(photo: Photo | PhotoSummary, library_dir: Path) -> str:
    """Relative to the library root when under it, else the base name (see module doc)."""
    return PhotoFilenames(library_dir)(photo.path)


class PhotoFilenames:
    """photo_filename for many photos (build once, call per path): the library root resolved once, each path only when it must be.

    Stored paths are absolute and already resolved (ingest resolves its root; uploads are saved under
    the library), so a plain prefix test decides almost every photo; resolving each path cost 2 s
    per 20,000 photos in filesystem calls."""

    def __init__(self, library_dir: Path):
        self.root = Path(library_dir).resolve()
        self.prefix = self.root.as_posix().rstrip("/") + "/"

    def __call__(self, path: str) -> str:
        if path.startswith(self.prefix):
            return display_path(path[len(self.prefix):])
        resolved = Path(path).resolve() if ".." in path or not path.startswith("/") else None
        if resolved is not None:
            try:
                return display_path(resolved.relative_to(self.root).as_posix())
            except ValueError:
                pass
        return display_path(os.path.basename(path))  # str work: Path() per photo was 1.9 s per 100k


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
    return list(catalog.iter_photos())


def effective_records(catalog: Catalog, photo_ids: Optional[Iterable[str]] = None) -> list[dict]:
    """One dict per photo: the effective values plus provenance (`annotator`, `version`, `annotated_at`, `corrected`).

    Photos in the given order, or every photo in the catalog's order when None."""
    if photo_ids is not None:
        photo_ids = list(photo_ids)
        got = {p.id: p for p in catalog.photo_summaries(photo_ids)}
        photos = [got[i] for i in photo_ids if i in got]
    else:
        photos = catalog.photo_summaries()
    values = value_rows(catalog, [p.id for p in photos] if photo_ids is not None else None)
    truth = caption_truth(catalog)
    name = PhotoFilenames(library_dir_of(catalog))
    out = []
    for p in photos:
        rec: dict[str, Any] = {"photo_id": p.id, "filename": name(p.path), "class_name": p.class_name,
                               "caption": p.caption or "", "caption_source": p.caption_source or "", "taken_at": p.taken_at,
                               "thumb_path": p.thumb_path}
        rec.update(values.get(p.id) or effective_values(None, None))
        rec["sentiment_truth"] = truth.get(p.id)
        out.append(rec)
    return out


# The frame's columns, in order: the review table and the dashboards read them by name.
FRAME_COLUMNS = ["photo_id", "filename", "class_name", "caption", "sentiment", "sentiment_score", "sentiment_caption", "sentiment_image",
                 "topics", *DIMENSIONS, "concept_text", "taken_at", "topics_caption", "topics_image", "annotator", "version",
                 "annotated_at", "corrected", "sentiment_truth", "caption_source", "thumb_path"]


def effective_annotations(catalog: Catalog, photo_ids: Optional[Iterable[str]] = None, *,
                          on_progress: Optional[Callable[[int, int], None]] = None) -> "pd.DataFrame":
    """One row per photo: effective values (human correction > latest model prediction); the same values as
    effective_records, read column by column from one join (store.photo_value_rows).

    Built per column, not from a dict per photo: at a million photos the dicts and pandas' inference over
    them took 40 s of the Dashboards' first read. `on_progress(rows read, photos)`: see store.photo_value_rows."""
    import pandas as pd

    rows = photo_value_rows(catalog, photo_ids, on_progress=on_progress)
    n_photo = len(PHOTO_COLUMNS)
    columns = list(zip(*rows)) if rows else [()] * (n_photo + len(VALUE_COLUMNS) + 1)
    photo = dict(zip(PHOTO_COLUMNS, columns[:n_photo]))
    values = dict(zip(VALUE_COLUMNS, columns[n_photo:n_photo + len(VALUE_COLUMNS)]))
    name = PhotoFilenames(library_dir_of(catalog))
    data: dict[str, Any] = {
        "photo_id": photo["id"], "filename": [name(from_db(p)) for p in photo["path"]],
        "class_name": [c or "" for c in photo["class_name"]], "caption": [c or "" for c in photo["caption"]],
        "caption_source": [c or "" for c in photo["caption_source"]], "taken_at": photo["taken_at"],
        "thumb_path": [from_db(t) if t else t for t in photo["thumb_path"]], "sentiment_truth": columns[-1],
    }
    for f, col in values.items():
        if f in _LIST_OR_SPLIT:
            data[f] = [t[1:-1].split(",") if t else [] for t in col]  # values.from_row's ",a,b," form
        elif f == "concept_text":
            data[f] = [t or "" for t in col]
        elif f in DIMENSIONS:
            data[f] = pd.array(list(col), dtype="Int64")
        elif f == "sentiment_score":
            data[f] = pd.to_numeric(pd.Series(col, dtype=object), errors="coerce").to_numpy(dtype="float64")
        else:
            data[f] = col
    for c in FRAME_COLUMNS:  # text columns always as text: an all-None column would be inferred as object, and frames
        if isinstance(data[c], (tuple, list)) and c not in _LIST_OR_SPLIT:  # patched together must agree (live_frame)
            data[c] = pd.array(list(data[c]), dtype="str")
    return pd.DataFrame(data, columns=FRAME_COLUMNS)


_LIST_OR_SPLIT = {*LIST_FIELDS, "corrected"}
