"""Library-level edits that must keep the catalog and the index in step."""
from __future__ import annotations

from typing import Sequence


def set_captions(services, items: Sequence[tuple[str, str]], source: str) -> int:
    """Store (photo_id, caption) pairs in the catalog and make them searchable at once.

    With a caption-space backend (bundled), text search compares queries with caption
    embeddings, so the new captions are embedded and upserted; every index collection that
    holds the photo also gets the caption in its metadata. Returns how many photos changed.
    """
    photos = services.catalog.get_many([pid for pid, _ in items])
    changed = [(pid, text.strip()) for pid, text in items
               if pid in photos and text and text.strip() and (photos[pid].caption, photos[pid].caption_source) != (text.strip(), source)]
    if not changed:
        return 0
    backend = services.backend
    ids = [pid for pid, _ in changed]
    metas = [{"caption": text} for _, text in changed]
    if backend.text_space == "caption" and services.catalog.indexed_ids(backend.model_id, ids):
        indexed = services.catalog.indexed_ids(backend.model_id, ids)
        keep = [(pid, text) for pid, text in changed if pid in indexed]
        vectors = backend.embed_texts([text for _, text in keep])
        base = {p.id: p.index_metadata() for p in photos.values()}
        services.store.upsert(backend.model_id, "caption", [pid for pid, _ in keep], vectors,
                              [base[pid] | {"caption": text} for pid, text in keep])
    services.store.update_metadata(ids, metas)
    for pid, text in changed:
        services.catalog.set_caption(pid, text, source)
    return len(changed)
