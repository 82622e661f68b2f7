"""A photo's effective values (correction > latest 'ok' prediction, field by field) and their row in `annotation_values`.

The merge rule lives only here: core.annotations.store applies it on every write to keep the table, and
the effective view reads the table back. Lists are stored as ",a,b," (empty: NULL) so that SQL on either
engine tests membership with `topics LIKE '%,food,%'`; `corrected` (the corrected field names, sorted) too.
"""
from __future__ import annotations

from itertools import islice
from typing import Any, Optional, Sequence

from core.annotate.prompts import DIMENSIONS

PLAIN_FIELDS = ("concept_text", "sentiment", "sentiment_score", "sentiment_caption", "sentiment_image")
LIST_FIELDS = ("topics", "topics_caption", "topics_image")
PROVENANCE = ("annotator", "version", "annotated_at", "corrected")

# {value key: column}, in the effective record's key order. Lower-case names: PostgreSQL folds unquoted
# names to lower case, so readers write `safety` bare on both engines instead of quoting "Safety".
VALUE_COLUMNS: dict[str, str] = {f: f.lower() for f in (*PLAIN_FIELDS, *DIMENSIONS, *LIST_FIELDS, *PROVENANCE)}
# DOUBLE PRECISION, not REAL: REAL is 4 bytes on PostgreSQL and would round 0.9 to 0.899999976.
_TYPES = {"sentiment_score": "DOUBLE PRECISION", **{d: "INTEGER" for d in DIMENSIONS}}
VALUES_DDL = ("CREATE TABLE IF NOT EXISTS annotation_values (photo_id TEXT PRIMARY KEY, "
              + ", ".join(f"{c} {_TYPES.get(f, 'TEXT')}" for f, c in VALUE_COLUMNS.items()) + ")")

_SENTIMENT_SCORE = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}
_JOINED = (*LIST_FIELDS, "corrected")


def effective_values(pred: Optional[dict], fix: Optional[dict]) -> dict[str, Any]:
    """The values of VALUE_COLUMNS for one photo from its latest 'ok' prediction (a latest_ok entry) and its correction."""
    values = {**(pred["data"] if pred else {}), **(fix or {})}
    out: dict[str, Any] = {f: values.get(f) for f in PLAIN_FIELDS}
    for f in DIMENSIONS:
        v = values.get(f)
        out[f] = int(v) if v is not None else None
    for f in LIST_FIELDS:
        out[f] = list(values.get(f) or [])
    if fix and "sentiment" in fix and "sentiment_score" not in fix:  # the model's score belongs to the model's label
        out["sentiment_score"] = _SENTIMENT_SCORE[fix["sentiment"]]
    out["concept_text"] = out["concept_text"] or ""
    out["annotator"] = pred["annotator"] if pred else None
    out["version"] = pred["version"] if pred else None
    out["annotated_at"] = pred["created_at"] if pred else None
    out["corrected"] = sorted(fix) if fix else []
    return out


def to_row(photo_id: str, values: dict[str, Any]) -> tuple:
    """(photo_id, *VALUE_COLUMNS) for the table."""
    return (photo_id, *(_join(values[f]) if f in _JOINED else values[f] for f in VALUE_COLUMNS))


def from_row(row: Sequence[Any]) -> dict[str, Any]:
    """effective_values' dict back from a (photo_id, *VALUE_COLUMNS) row."""
    out = dict(zip(VALUE_COLUMNS, islice(row, 1, None)))
    for f in _JOINED:
        text = out[f]
        out[f] = text[1:-1].split(",") if text else []
    return out


def _join(items: list) -> Optional[str]:
    if not items:
        return None
    if any("," in t for t in items):  # would read back as two items
        raise ValueError(f"a topic or field name with a comma cannot be stored: {items!r}")
    return "," + ",".join(items) + ","
