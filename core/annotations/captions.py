"""Captions from outside the models: the user's own (`filename,caption`), SentiCap's with their sentiment, and which source wins.

An imported caption replaces alt text and generated captions; SentiCap's sentiment labels are
kept as ground truth (`caption_truth`) for the Dashboards' agreement charts.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from core.annotations.csv_io import AnnotationImportError, ImportReport, RowError, check_columns, read_table, validate_rows
from core.annotations.store import write_captions
from core.catalog import Catalog

CAPTION_COLUMNS = ["filename", "caption"]
# Where a caption came from, most trusted first; generated captions ("<backend>:<model>") rank last.
CAPTION_PRIORITY = ("user", "senticap", "alt")


def caption_rank(source: Optional[str]) -> int:
    """Lower is better: the user's own, then SentiCap, then the crawler's alt text, then any captioner."""
    return CAPTION_PRIORITY.index(source) if source in CAPTION_PRIORITY else len(CAPTION_PRIORITY)


_ORIGINS = {"user": "your own caption", "senticap": "imported from SentiCap", "alt": "the web page's alt text for this photo"}


def caption_origin(source: Optional[str]) -> str:
    """Where a caption came from, in words a user can weigh: a model's caption is a guess and says so."""
    if source in _ORIGINS:
        return _ORIGINS[source]
    backend, _, model = (source or "").partition(":")
    if backend and model:  # "<backend>:<model>", written at ingest or by a captioner
        return f"written by the {backend} models ({model}): a guess, it can be wrong"
    return "source unknown"


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
    _, rows = read_table(data, "captions")
    rows = check_columns(rows, CAPTION_COLUMNS, "captions")
    report, good = validate_rows(catalog, rows, "captions", _caption_row)
    if report.errors and not valid_only:
        raise AnnotationImportError(report)
    _store_captions(catalog, {pid: (v["caption"], None) for pid, v in good.items()}, source, store=store, services=services)
    report.written = len(good)
    return report


def _store_captions(catalog: Catalog, captions: dict[str, tuple[str, Optional[str]]], source: str, *, store=None, services=None) -> None:
    write_captions(catalog, captions, source)  # the catalog and ground truth first, in one transaction
    if services is not None and getattr(services, "backend", None) is not None:
        from core.library import set_captions

        set_captions(services, [(pid, cap) for pid, (cap, _) in captions.items()], source)
    elif store is not None and captions:
        store.update_metadata(list(captions), [{"caption": cap} for cap, _ in captions.values()])


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
    report, good = validate_rows(catalog, rows, "senticap", parse)
    if report.errors and not valid_only:
        raise AnnotationImportError(report)
    _store_captions(catalog, {pid: (v["caption"], v["truth"]) for pid, v in good.items()}, "senticap", store=store, services=services)
    report.written = len(good)
    return report
