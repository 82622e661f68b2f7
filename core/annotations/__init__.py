"""Annotation storage: model predictions and human corrections, the effective view, import/export, the index sync.

One module per concept, each importing only those above it in this list (no cycles):
- `values`: the effective value of a field = correction if any, else the latest 'ok' prediction, and its table row;
- `store`: the tables (`annotations`, `corrections`, `caption_truth`, `annotation_values`) and all SQL on them; every
  write numbers its photos in the catalog's change journal (core.photo_changes);
- `effective`: the effective view per photo (values, photo fields, provenance), read from `annotation_values`;
- `live_frame`: that view of every photo kept current by re-reading the photos the change journal names (the Dashboards');
- `index_sync`: the effective values as search-index (Chroma) metadata, and counts in those keys;
- `csv_io`: the scores table's import and export, and the row checks every import shares;
- `captions`: imported captions (the user's, SentiCap's with ground-truth sentiment) and which source wins;
- `review`: the Annotate page's grid edits, checked and stored as corrections.

Callers import from here (`from core.annotations import effective_annotations`), not from the modules.
"""
from __future__ import annotations

from core.annotate.prompts import DIMENSIONS, SENTIMENTS
from core.annotations.captions import (CAPTION_COLUMNS, CAPTION_PRIORITY, caption_rank, import_captions, import_senticap,
                                       offer_caption)
from core.annotations.csv_io import (CSV_COLUMNS, AnnotationImportError, ImportReport, RowError, export_csv_bytes, export_scores,
                                     import_scores, scores_table)
from core.annotations.effective import all_photos, effective_annotations, effective_records, library_dir_of, photo_filename
from core.annotations.index_sync import chroma_metadata, count_photos, sync_chroma
from core.annotations.live_frame import LiveFrame, Refresh
from core.annotations.review import save_review_edits
from core.annotations.store import (FIELDS, annotation_rows, annotations_signature, annotators, caption_truth, corrections, done_ids, ensure_schema,
                                    record_results, reset_annotator, review_count, review_ids, set_corrections, value_rows)
from core.annotations.values import VALUE_COLUMNS, effective_values

__all__ = [
    "CAPTION_COLUMNS", "CAPTION_PRIORITY", "CSV_COLUMNS", "DIMENSIONS", "FIELDS", "SENTIMENTS", "VALUE_COLUMNS",
    "AnnotationImportError", "ImportReport", "LiveFrame", "Refresh", "RowError",
    "all_photos", "annotation_rows", "annotations_signature", "annotators", "caption_rank", "caption_truth", "chroma_metadata", "corrections",
    "count_photos", "done_ids", "effective_annotations", "effective_records", "effective_values", "ensure_schema", "export_csv_bytes",
    "export_scores", "import_captions", "import_scores", "import_senticap", "library_dir_of", "offer_caption",
    "photo_filename", "record_results", "reset_annotator", "review_count", "review_ids", "save_review_edits", "scores_table", "set_corrections",
    "sync_chroma", "value_rows",
]
