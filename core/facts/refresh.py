"""Bring an existing library's photo facts up to date in place ("reindex for facts").

Photos whose facts are missing (a library ingested before facts existed) or were extracted by an
older FACTS_VERSION are decoded again and described by the active backend; the new facts go into
the catalog and into the metadata of every index collection that holds the photo. No photo is
added or removed: ids, files, annotations and user captions stay. A caption the backend itself
wrote is replaced by the new one (and its caption vector re-embedded), since facts make a better
sentence; captions from users or crawled alt text are kept.

Order per batch, as in ingest: index first, catalog last. The catalog write is what marks a photo
done, so a run killed mid-batch redoes that batch and writes the same values again (idempotent).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from core.facts import FACTS_VERSION, PhotoFacts

ProgressFn = Callable[..., None]


@dataclass
class FactsReport:
    stale: int = 0  # photos that needed new facts when the run started
    updated: int = 0
    captions: int = 0  # backend-written captions replaced by the facts caption
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    unsupported: bool = False  # the active backend gives no facts
    cancelled: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        if self.unsupported:
            return f"the active backend gives no photo facts; {self.stale} photos keep their old facts"
        text = (f"facts updated for {self.updated} of {self.stale} photos ({self.captions} captions rewritten), "
                f"{len(self.failed)} failed in {self.seconds:.1f}s")
        return text + (" (cancelled: run again to resume)" if self.cancelled else "")


def stale_count(catalog) -> int:
    return len(catalog.photos_with_stale_facts(FACTS_VERSION))


def refresh_facts(services, *, on_progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> FactsReport:
    """Re-extract facts for every photo whose facts are missing or older than FACTS_VERSION."""
    from core.images import ImageError, load_rgb

    t0 = time.perf_counter()
    catalog, backend, store, s = services.catalog, services.backend, services.store, services.settings
    stale = catalog.photos_with_stale_facts(FACTS_VERSION)
    report = FactsReport(stale=len(stale))
    progress = on_progress or (lambda *a, **k: None)
    progress(0, len(stale), stage="facts")
    own_source = f"{backend.name}:{backend.model_id}"
    n = s.batch_size
    for start in range(0, len(stale), n):
        if cancel is not None and cancel.is_set():
            report.cancelled = True
            break
        batch, images = [], []
        for photo in stale[start:start + n]:
            try:
                images.append(load_rgb(photo.path, max_pixels=s.max_image_pixels))
                batch.append(photo)
            except (ImageError, OSError) as exc:
                report.failed.append((photo.path, f"cannot read the photo: {getattr(exc, 'reason', exc)}"))
        if batch:
            enc = backend.encode(images)
            facts: list[Optional[PhotoFacts]] = [getattr(d, "facts", None) for d in enc.descriptions]
            if all(f is None for f in facts):
                report.unsupported = True
                break
            _write(services, batch, enc, facts, own_source, report)
        progress(min(start + n, len(stale)), len(stale), stage="facts", updated=report.updated)
    report.seconds = time.perf_counter() - t0
    return report


def _write(services, batch, enc, facts, own_source: str, report: FactsReport) -> None:
    items, captions, vectors = [], [], []
    for k, (photo, f) in enumerate(zip(batch, facts)):
        if f is None:
            report.failed.append((photo.path, "the backend gave no facts for this photo"))
            continue
        items.append((photo.id, f))
        new_caption = enc.descriptions[k].caption
        if photo.caption_source == own_source and new_caption and new_caption != photo.caption:
            captions.append((photo.id, new_caption))
            if enc.caption_embeddings is not None:
                vectors.append(enc.caption_embeddings[k])
    store_facts(services, items, captions=captions, caption_vectors=vectors or None)
    report.updated += len(items)
    report.captions += len(captions)


def store_facts(services, items: Sequence[tuple[str, PhotoFacts]], *, captions: Sequence[tuple[str, str]] = (),
                caption_vectors: Optional[Sequence] = None) -> None:
    """Write (photo_id, facts) to the index metadata and the catalog, with optional new backend captions
    (photo_id, caption) and their caption-space vectors (same order). Idempotent; index first, catalog last."""
    catalog, backend, store = services.catalog, services.backend, services.store
    if not items:
        return
    photos = catalog.get_many([pid for pid, _ in items])
    new_caption = dict(captions)
    if caption_vectors is not None and backend.text_space == "caption":
        # Bundled text search reads caption vectors: a rewritten caption must be re-embedded.
        store.update_embeddings(backend.model_id, "caption", [pid for pid, _ in captions], caption_vectors)
    # Flat facts keys merged into every collection holding the photo (annotation keys are kept).
    metas = [{"caption": new_caption.get(pid, photos[pid].caption if pid in photos else "") or ""} | f.index_metadata()
             for pid, f in items]
    store.update_metadata([pid for pid, _ in items], metas)
    own_source = f"{backend.name}:{backend.model_id}"
    catalog.set_facts(list(items), [(pid, c, own_source) for pid, c in captions])
