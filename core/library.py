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


def forget_photo(services, photo_id: str) -> list[str]:
    """Take a photo out of the library (catalog rows, then every index collection); its files stay on disk.

    The catalog goes first: a crash in between leaves an index entry with no catalog row, which search
    drops, never a catalog row that claims an index entry it lacks. Returns the photo's former paths.
    """
    paths = services.catalog.remove_photo(photo_id)
    store = services.store
    for name in store.collections():
        store.client.get_collection(name, embedding_function=None).delete(ids=[photo_id])
    return paths


def keep_near_duplicate(services, path: str, *, replace: bool = False):
    """Add a file that import left out as a near duplicate, as a photo of its own.

    With `replace`, the library photo it looked like is forgotten instead of kept beside it (a
    rescan then reports that one as the near duplicate). Returns the ingest report of the file.
    """
    from pathlib import Path

    from core.ingest import ingest_paths

    match = [n for n in services.catalog.near_duplicates(limit=100_000) if n.path == path]
    if not match:
        raise ValueError(f"{path!r} is not waiting as a near duplicate")
    of = services.catalog.get(match[0].photo_id)
    services.catalog.keep_near_duplicate(path)
    if replace and of is not None:
        forget_photo(services, of.id)
    return ingest_paths(services, [Path(path)], source=of.source if of else "folder",
                        class_override=of.class_name if of else None)
