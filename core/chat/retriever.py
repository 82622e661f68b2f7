"""Retrieval over our own index: a QueryPlan -> photos, counts and notices; and a LangChain retriever over it.

No second embedding store: semantic matching goes through core.search (the active backend's
collections), filters through the Chroma metadata written by Annotate, and counts come from
that metadata plus the catalog, never from a language model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Optional

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from core.catalog import Photo
from core.chat.query import DIMENSIONS, QueryPlan, Vocabulary, _singular, plan_question, topic_key, where_clause

_PAGE = 5000


@dataclass
class Retrieval:
    """What the index and catalog say about a plan: the photos to show, an exact count, and caveats."""

    plan: QueryPlan
    photos: list[Photo] = field(default_factory=list)
    scores: list[Optional[float]] = field(default_factory=list)  # similarity when a semantic query ranked them
    metadata: dict[str, dict] = field(default_factory=dict)  # photo id -> index metadata (annotations)
    count: Optional[int] = None  # only for count questions; exact
    notice: Optional[str] = None  # e.g. "No sentiment annotations yet: run Annotate."
    how: str = ""  # how the photos were chosen, in words

    def documents(self) -> list[Document]:
        """The retrieved photos as LangChain documents (caption as content, id and annotations as metadata)."""
        out = []
        for rank, (p, s) in enumerate(zip(self.photos, self.scores), start=1):
            meta = {k: v for k, v in self.metadata.get(p.id, {}).items() if isinstance(v, (str, int, float, bool))}
            meta.update({"id": p.id, "path": p.path, "rank": rank, "score": s, "class_name": p.class_name})
            out.append(Document(page_content=p.caption or "", metadata=meta, id=p.id))
        return out


def _image_collection(services):
    return services.store.collection(services.backend.model_id, "image")


def _metadatas(services, where: Optional[dict]) -> dict[str, dict]:
    """id -> metadata of every indexed photo passing `where` (paged: Chroma caps one get)."""
    col = _image_collection(services)
    out: dict[str, dict] = {}
    offset = 0
    while True:
        res = col.get(where=where or None, include=["metadatas"], limit=_PAGE, offset=offset)
        out.update({i: dict(m or {}) for i, m in zip(res["ids"], res["metadatas"])})
        if len(res["ids"]) < _PAGE:
            return out
        offset += _PAGE


def library_vocabulary(services) -> Vocabulary:
    """Class names from the catalog and topic names from the annotation metadata in the index."""
    topics: set[str] = set()
    for meta in _metadatas(services, {"topics": {"$ne": ""}}).values():
        topics.update(t.strip() for t in str(meta.get("topics", "")).split(",") if t.strip())
    return Vocabulary(classes=sorted(services.catalog.classes()), topics=sorted(topics))


def annotation_gaps(services, plan: QueryPlan) -> Optional[str]:
    """An honest notice when the plan filters on annotations that no photo has yet, else None."""
    col = _image_collection(services)

    def present(where: dict) -> bool:
        return bool(col.get(where=where, include=[], limit=1)["ids"])

    if (plan.sentiment or (plan.sort and plan.sort.dimension == "sentiment_score")) and not present({"sentiment_score": {"$gte": -1.0}}):
        return "No sentiment annotations yet: run Annotate on your photos first, then ask again."
    dims = {s.dimension for s in plan.scores} | ({plan.sort.dimension} if plan.sort and plan.sort.dimension in DIMENSIONS else set())
    missing = sorted(d for d in dims if not present({d: {"$gte": 1}}))
    if missing:
        return f"No {', '.join(missing)} scores yet: run Annotate on your photos first, then ask again."
    return None


def _in_dates(photo: Photo, d_from: Optional[date], d_to: Optional[date]) -> bool:
    if d_from is None and d_to is None:
        return True
    if not photo.taken_at:
        return False  # an undated photo cannot be placed in a date range
    day = photo.taken_at[:10]
    return (d_from is None or day >= d_from.isoformat()) and (d_to is None or day <= d_to.isoformat())


def _mentions(photo: Photo, words: list[str]) -> bool:
    # The file name counts: people name files after what they show (flower.jpg).
    text = " ".join([photo.caption or "", *(t for t, _ in photo.tags), photo.class_name or "",
                     Path(photo.path).stem.replace("_", " ")]).lower()
    return any(re.search(rf"(?<![a-z0-9]){re.escape(w)}", text) for w in words)


def retrieve(services, plan: QueryPlan) -> Retrieval:
    """Run a plan against the index and catalog; answers only from what is stored."""
    from core.search import search_text

    out = Retrieval(plan=plan)
    out.notice = annotation_gaps(services, plan)
    if out.notice:
        return out
    where = where_clause(plan)
    dated = plan.date_from is not None or plan.date_to is not None

    if plan.intent == "count" or (not plan.semantic and plan.intent != "describe"):
        metas = _metadatas(services, where)
        photos = services.catalog.get_many(list(metas))
        pool = [p for p in photos.values() if not p.missing and _in_dates(p, plan.date_from, plan.date_to)]
        if plan.semantic and plan.intent == "count":
            # Counting "photos of cats" by meaning has no exact answer; counting mentions does.
            words = [_singular(w) for w in plan.semantic.split()]
            pool = [p for p in pool if _mentions(p, words)]
            out.how = f"photos whose caption, tags or file name mention {' or '.join(repr(w) for w in words)}"
        if plan.sort:
            key = plan.sort.dimension
            pool.sort(key=lambda p: (float(metas[p.id].get(key, 0)), p.path), reverse=plan.sort.descending)
        else:
            pool.sort(key=lambda p: (p.added_at, p.path))
        if plan.intent == "count":
            out.count = len(pool)
        out.photos = pool[: plan.k]
        out.scores = [None] * len(out.photos)
        out.metadata = {p.id: metas[p.id] for p in out.photos}
        out.how = out.how or ("by " + plan.sort.dimension if plan.sort else "filters only")
        return out

    # Semantic: ask the index for more than k so that date filtering and sorting still leave k.
    want = plan.k * (4 if (dated or plan.sort) else 1)
    results = search_text(services, plan.semantic, k=min(200, max(want, plan.k)), where=where)
    results = [r for r in results if _in_dates(r.photo, plan.date_from, plan.date_to)]
    metas = _metadatas(services, where) if plan.sort else {}
    if plan.sort:
        key = plan.sort.dimension
        results.sort(key=lambda r: float(metas.get(r.photo.id, {}).get(key, 0)), reverse=plan.sort.descending)
    results = results[: plan.k]
    out.photos = [r.photo for r in results]
    out.scores = [r.score for r in results]
    if not metas and results:
        got = _image_collection(services).get(ids=[r.photo.id for r in results], include=["metadatas"])
        metas = {i: dict(m or {}) for i, m in zip(got["ids"], got["metadatas"])}
    out.metadata = {p.id: metas.get(p.id, {}) for p in out.photos}
    out.how = f"closest in meaning to “{plan.semantic}”"
    return out


class PhotoRetriever(BaseRetriever):
    """LangChain retriever over the PhotoLore index: question -> rule-based plan -> photos as Documents."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    services: Any
    k: int = 6

    def plan(self, question: str) -> QueryPlan:
        return plan_question(question, library_vocabulary(self.services), k=self.k)

    def retrieve(self, plan: QueryPlan) -> Retrieval:
        return retrieve(self.services, plan)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return self.retrieve(self.plan(query)).documents()


__all__ = ["PhotoRetriever", "Retrieval", "library_vocabulary", "retrieve", "annotation_gaps", "topic_key"]
