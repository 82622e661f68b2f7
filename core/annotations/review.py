"""Edits from the Annotate page's review grid, checked and stored as human corrections."""
from __future__ import annotations

from core.annotate.prompts import DIMENSIONS, SENTIMENTS
from core.annotations.csv_io import RowError, parse_score
from core.annotations.index_sync import sync_chroma
from core.annotations.store import set_corrections
from core.catalog import Catalog


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
                n, problem = parse_score(int(v) if isinstance(v, float) and v.is_integer() else v)
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
