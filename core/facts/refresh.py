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

import numpy as np

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


def expected_version(settings) -> int:
    """The facts version a reindex here would write: the current one when the detectors are built and
    on, else the version without them (so a library is not called stale for detectors it cannot have)."""
    from core.facts import FACTS_VERSION_WITHOUT_DETECTORS
    from models.human_models import CENTERNET, problem

    if settings.detectors and problem(settings.detectors_dir, CENTERNET) is None:
        return FACTS_VERSION
    return FACTS_VERSION_WITHOUT_DETECTORS


def stale_count(catalog, version: int = FACTS_VERSION) -> int:
    return catalog.count_stale_facts(version)


def refresh_facts(services, *, on_progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> FactsReport:
    """Re-extract facts for every photo whose facts are missing or older than the version the active
    backend's extractor writes (FACTS_VERSION with the detectors, the version before without them)."""
    from core.images import ImageError, load_rgb

    t0 = time.perf_counter()
    catalog, backend, s = services.catalog, services.backend, services.settings
    extractor = getattr(backend, "facts_extractor", None)
    stale = catalog.photos_with_stale_facts(getattr(extractor, "version", FACTS_VERSION))
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
    items, captions, caption_rows = [], [], []
    for k, (photo, f) in enumerate(zip(batch, facts)):
        if f is None:
            report.failed.append((photo.path, "the backend gave no facts for this photo"))
            continue
        items.append((photo.id, f))
        new_caption = enc.descriptions[k].caption
        if photo.caption_source == own_source and new_caption and new_caption != photo.caption:
            captions.append((photo.id, new_caption))
            caption_rows.append(k)
    vectors = {}
    if enc.caption_embeddings is not None and caption_rows:
        vectors["caption"] = ([batch[k].id for k in caption_rows], enc.caption_embeddings[caption_rows])
    facts_emb = getattr(enc, "facts_embeddings", None)  # facts as their own vectors (scored by core.search)
    if facts_emb is not None:
        rows = [k for k, f in enumerate(facts) if f is not None]
        vectors["facts"] = ([batch[k].id for k in rows], facts_emb[rows])
    store_facts(services, items, captions=captions, vectors=vectors)
    report.updated += len(items)
    report.captions += len(captions)


def store_facts(services, items: Sequence[tuple[str, PhotoFacts]], *, captions: Sequence[tuple[str, str]] = (),
                vectors: Optional[dict[str, tuple[list[str], np.ndarray]]] = None) -> None:
    """Write (photo_id, facts) to the index metadata and the catalog, with optional new backend captions
    (photo_id, caption) and vectors per index space ({"caption": (ids, embeddings), "facts": ...}) of the
    active backend. Idempotent; index first, catalog last."""
    catalog, backend, store = services.catalog, services.backend, services.store
    if not items:
        return
    photos = catalog.get_many([pid for pid, _ in items])
    new_caption = dict(captions)
    metas = {pid: {"caption": new_caption.get(pid, photos[pid].caption if pid in photos else "") or ""} | f.index_metadata()
             for pid, f in items}
    indexed = catalog.indexed_ids(backend.model_id, list(metas))
    for space, (ids, emb) in (vectors or {}).items():
        rows = [k for k, pid in enumerate(ids) if pid in indexed]  # never index a photo the backend has not indexed
        if rows:
            _put_vectors(store, backend.model_id, space, [ids[k] for k in rows], np.asarray(emb)[rows], metas)
    # Flat facts keys merged into every collection holding the photo (annotation keys are kept).
    store.update_metadata(list(metas), list(metas.values()))
    own_source = f"{backend.name}:{backend.model_id}"
    catalog.set_facts(list(items), [(pid, c, own_source) for pid, c in captions])


def _put_vectors(store, model_id: str, space: str, ids: list[str], emb: np.ndarray, metas: dict) -> None:
    """New vectors for `ids` in one space: replaced where present (metadata kept), added where not,
    with the metadata the photo has in the image collection (class, annotations) plus the new facts."""
    present = store.ids_present(model_id, space, ids)
    keep = [k for k, i in enumerate(ids) if i in present]
    store.update_embeddings(model_id, space, [ids[k] for k in keep], emb[keep])
    new = [k for k, i in enumerate(ids) if i not in present]
    if new:
        base = store.get_metadata(model_id, "image", [ids[k] for k in new])
        store.upsert(model_id, space, [ids[k] for k in new], emb[new], [base.get(ids[k], {}) | metas[ids[k]] for k in new])
