"""Text-to-image and image-to-image search over the active backend's index."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image

from core.catalog import Photo


# A text-search score at or above this counts as "this photo shows it" wherever a yes/no is needed
# (Chat's counts and lists), per backend family. Calibrated on the evaluation set in tests/data/eval;
# recalibrate when the scoring changes.
RELEVANCE_THRESHOLDS = {"bundled": 0.35, "clip": 0.25}


def relevance_threshold(backend) -> float:
    """The calibrated match cut-off for `backend`'s text-search scores."""
    return RELEVANCE_THRESHOLDS.get(getattr(backend, "name", ""), 0.3)


@dataclass
class SearchResult:
    photo: Photo
    score: float  # cosine similarity in the space searched


def _hits_to_results(services, hits, *, k: int, threshold: float, exclude: Optional[str] = None) -> list[SearchResult]:
    photos = services.catalog.get_many([h.id for h in hits])
    out = []
    for h in hits:
        p = photos.get(h.id)
        if p is None or p.missing or h.id == exclude or h.score < threshold:
            continue  # vectors of forgotten or vanished photos never reach the user
        out.append(SearchResult(p, h.score))
        if len(out) == k:
            break
    return out


def search_text(services, text: str, *, k: int = 12, threshold: float = -1.0, where: Optional[dict] = None) -> list[SearchResult]:
    """Photos best matching `text`: CLIP compares with images, bundled with captions."""
    text = (text or "").strip()
    if not text:
        raise ValueError("the search text is empty: type what you are looking for, e.g. 'a cup of coffee'")
    backend = services.backend
    vec = backend.embed_texts([text])[0]
    space = "image" if backend.text_space == "image" else "caption"
    hits = services.store.query(backend.model_id, space, vec, k=k + 8, where=where)
    return _hits_to_results(services, hits, k=k, threshold=threshold)


def search_image(services, *, image: Optional[Image.Image] = None, photo_id: Optional[str] = None, k: int = 12,
                 threshold: float = -1.0, where: Optional[dict] = None) -> list[SearchResult]:
    """Photos that look like `image` (an upload) or like the library photo `photo_id` (more like this)."""
    backend = services.backend
    if photo_id is not None:
        stored = services.store.get_embeddings(backend.model_id, "image", [photo_id])
        if photo_id not in stored:
            raise KeyError(f"photo {photo_id[:12]} is not in the {backend.model_id} index; run ingest or reindex")
        vec = stored[photo_id]
    elif image is not None:
        vec = backend.embed_images([image.convert("RGB")])[0]
    else:
        raise ValueError("give an image or a photo id to search with")
    hits = services.store.query(backend.model_id, "image", np.asarray(vec), k=k + 9, where=where)
    return _hits_to_results(services, hits, k=k, threshold=threshold, exclude=photo_id)
