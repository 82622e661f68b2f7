"""Retrieval over our own index: a QueryPlan -> photos, counts and notices; and a LangChain retriever over it.

No second embedding store: semantic matching goes through core.search (the active backend's
collections); filters and counts read the catalog's key columns (core.catalog_keys: the photo facts
and the effective annotations, the same keys Chroma's metadata holds), never a language model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from core.catalog import Photo
from core.chat.query import DIMENSIONS, QueryPlan, Vocabulary, plan_question, topic_key, where_clause

_PAGE = 5000


@dataclass
class Retrieval:
    """What the index and catalog say about a plan: the photos to show, exact counts, and caveats."""

    plan: QueryPlan
    photos: list[Photo] = field(default_factory=list)  # shown, best first (at most plan.k)
    scores: list[Optional[float]] = field(default_factory=list)  # similarity when a search ranked them
    metadata: dict[str, dict] = field(default_factory=dict)  # photo id -> index metadata (annotations, facts)
    count: Optional[int] = None  # only for count questions; exact
    total: Optional[int] = None  # photos that passed the filters and the relevance cut-off (None: a ranking with no cut-off)
    matched_ids: list[str] = field(default_factory=list)  # all of them, best first: what a follow-up's "those" means
    weak: bool = False  # describe: no photo passed the cut-off, the closest one is shown anyway
    notice: Optional[str] = None  # e.g. "No sentiment annotations yet: run Annotate."
    how: str = ""  # how the photos were chosen, in words
    debug: list[str] = field(default_factory=list)  # for the debug expander and --json: cut-offs, fallbacks

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
    """Class, scene and topic names, and whether photo facts (and detector facts) exist, from the catalog's columns.

    Read from indexes, not from every photo's metadata in Chroma: that took 22 s per question at 100k photos."""
    from core.annotations.store import ensure_schema

    ensure_schema(services.catalog)  # annotation_values, which the topic names come from
    got = services.catalog.key_vocabulary()
    return Vocabulary(classes=sorted(services.catalog.classes()), topics=got["topics"], scenes=got["scenes"],
                      has_facts=got["has_facts"], detected=got["detected"])


def library_gap(services) -> Optional[str]:
    """The fix when there is nothing to answer from: an empty library, not "0 photos match"."""
    if services.catalog.count():
        return None
    return ("The library is empty, so there is nothing to count or show yet: add photos first "
            "(Library page: a folder, uploads or the demo photos; or run python -m core ingest FOLDER), then ask again.")


def annotation_gaps(services, plan: QueryPlan) -> Optional[str]:
    """An honest notice when the plan filters on annotations that no photo has yet, else None."""
    from core.annotations.store import ensure_schema

    ensure_schema(services.catalog)

    def present(where: dict) -> bool:
        return services.catalog.key_exists(services.backend.model_id, where)

    if (plan.sentiment or (plan.sort and plan.sort.dimension == "sentiment_score")) and not present({"sentiment_score": {"$gte": -1.0}}):
        return "No sentiment annotations yet: run Annotate on your photos first, then ask again."
    dims = {s.dimension for s in plan.scores} | ({plan.sort.dimension} if plan.sort and plan.sort.dimension in DIMENSIONS else set())
    missing = sorted(d for d in dims if not present({d: {"$gte": 1}}))
    if missing:
        return f"No {', '.join(missing)} scores yet: run Annotate on your photos first, then ask again."
    return None


def _in_dates(taken_at: Optional[str], d_from: Optional[date], d_to: Optional[date]) -> bool:
    if d_from is None and d_to is None:
        return True
    if not taken_at:
        return False  # an undated photo cannot be placed in a date range
    day = taken_at[:10]
    return (d_from is None or day >= d_from.isoformat()) and (d_to is None or day <= d_to.isoformat())


def _facts_present(services) -> bool:
    return services.catalog.key_exists(services.backend.model_id, {"facts_version": {"$gte": 1}})


# A row of the candidates a plan selects: (id, added_at, path, taken_at, sort value), from the catalog's key
# columns (Catalog.key_rows) or, for keys only Chroma holds, from its metadata.
Row = tuple


def _candidate_rows(services, plan: QueryPlan, where: Optional[dict], groups=(), semantic_ids: Optional[dict] = None,
                    must: Optional[set[str]] = None) -> list[Row]:
    """The indexed, present photos passing `where`, every facts group and `must`, in the plan's dates and `within`."""
    from core.chat.concepts import cond_holds
    from core.chat.keys_sql import plan_sql

    semantic_ids = semantic_ids or {}  # annotation_values exists: retrieve's annotation_gaps made sure, first
    sort_key = plan.sort.dimension if plan.sort else None
    names_topic = bool(plan.topics) or any(c.key.startswith("topic_") for g in groups for c in g)  # where_clause: plan.topics
    compiled = plan_sql(where, groups, semantic_ids, services.catalog.topic_names() if names_topic else [], must)
    if compiled is not None:
        rows = services.catalog.key_rows(services.backend.model_id, *compiled, sort_key=sort_key)
    else:  # a key no catalog column holds (an ImageNet object word, a landscape cue): Chroma's metadata answers
        metas = _metadatas(services, where)
        ids = [pid for pid, m in metas.items() if (must is None or pid in must)
               and all(any(cond_holds(c, m, semantic_ids, pid) for c in g) for g in groups)]
        rows = [(p.id, p.added_at, p.path, p.taken_at, metas[p.id].get(sort_key) if sort_key else None)
                for p in services.catalog.get_many(ids).values() if not p.missing]
    within = set(plan.within_ids)
    return [r for r in rows if _in_dates(r[3], plan.date_from, plan.date_to) and (not within or r[0] in within)]


def _photos(services, ids: Sequence[str]) -> list[Photo]:
    got = services.catalog.get_many(list(ids))
    return [got[i] for i in ids if i in got]


def _order(rows: list[Row], plan: QueryPlan, scores: Optional[dict[str, float]] = None) -> list[Row]:
    """Oldest added first; then by the plan's sort dimension, or by search score (stable, so ties keep that order)."""
    rows = sorted(rows, key=lambda r: (r[1], r[2]))
    if plan.sort:
        rows.sort(key=lambda r: float(r[4] or 0), reverse=plan.sort.descending)
    elif scores:
        rows.sort(key=lambda r: -scores.get(r[0], -1.0))
    return rows


def retrieve(services, plan: QueryPlan) -> Retrieval:
    """Run a plan against the index and catalog; answers only from what is stored.

    A semantic part is scored exactly as Search scores it (core.search.search_text) and a photo
    matches when its score passes the backend's calibrated cut-off (core.search.split_matches),
    so "how many X", "show me X" and Search agree. Lists hold only matching photos, never padding.
    """
    from core.search import search_image, search_text, split_matches

    out = Retrieval(plan=plan)
    out.notice = library_gap(services) or annotation_gaps(services, plan)
    if out.notice:
        return out
    where = where_clause(plan)
    within = set(plan.within_ids)
    keep = lambda p: not p.missing and _in_dates(p.taken_at, plan.date_from, plan.date_to) and (not within or p.id in within)  # noqa: E731
    if (plan.people is not None or plan.text or plan.scene) and where:
        out.debug.append(f"photo facts used as filters: {where}")
    elif plan.semantic and not _facts_present(services):
        out.debug.append("no photo facts (people, text, scene) in this library yet: matched by search score alone; "
                         "re-ingest or reindex to extract them")

    if (plan.facts or (plan.semantic_ranks and plan.semantic)) and not plan.photo_id and not plan.like_id:
        _retrieve_by_facts(services, plan, where, keep, out)
    elif plan.photo_id:
        photo = services.catalog.get_many([plan.photo_id]).get(plan.photo_id)
        out.photos = [photo] if photo is not None and not photo.missing else []
        out.scores, out.total, out.matched_ids = [None] * len(out.photos), len(out.photos), [p.id for p in out.photos]
        out.how = "the photo the question points at in the last answer"
    elif plan.like_id:
        like = services.catalog.get_many([plan.like_id]).get(plan.like_id)
        plan.like_name = Path(like.path).name if like else plan.like_name
        results = [r for r in search_image(services, photo_id=plan.like_id, k=plan.k * 2, where=where) if keep(r.photo)][: plan.k]
        out.photos, out.scores = [r.photo for r in results], [r.score for r in results]
        out.matched_ids = [p.id for p in out.photos]
        out.how = f"image features closest to {plan.like_name} (the k nearest; no cut-off for image similarity)"
    elif plan.semantic:
        space = "image" if services.backend.text_space == "image" else "caption"
        n = max(1, min(5000, services.store.count(services.backend.model_id, space)))
        results = [r for r in search_text(services, plan.semantic, k=n, where=where) if keep(r.photo)]
        passed, _, cut = split_matches(services.backend, results)
        if plan.sort:  # only the passed photos' values are read (at most 5,000), not the library's
            metas = services.store.get_metadata(services.backend.model_id, "image", [r.photo.id for r in passed])
            key = plan.sort.dimension
            passed.sort(key=lambda r: float(metas.get(r.photo.id, {}).get(key, 0)), reverse=plan.sort.descending)
        shown = passed[: plan.k]
        if plan.intent == "describe" and not shown and results:
            shown, out.weak = results[:1], True
        out.total, out.matched_ids = len(passed), [r.photo.id for r in passed]
        out.photos, out.scores = [r.photo for r in shown], [r.score for r in shown]
        out.how = (f"photos whose search score for “{plan.semantic}” is at least {cut:.3f} "
                   f"(the {services.backend.name} backend's cut-off for this query; Search shows the same photos as matches)")
    else:
        rows = _order(_candidate_rows(services, plan, where), plan)
        out.total, out.matched_ids = len(rows), [r[0] for r in rows]
        out.photos = _photos(services, out.matched_ids[: plan.k])
        out.scores = [None] * len(out.photos)
        out.how = "by " + plan.sort.dimension if plan.sort else "filters only"
    if plan.intent == "count":
        out.count = out.total
    if out.photos:
        got = _image_collection(services).get(ids=[p.id for p in out.photos], include=["metadatas"])
        metas = {i: dict(m or {}) for i, m in zip(got["ids"], got["metadatas"])}
        out.metadata = {p.id: metas.get(p.id, {}) for p in out.photos}
    out.debug.insert(0, f"chosen by {out.how}")
    return out


def _retrieve_by_facts(services, plan: QueryPlan, where: Optional[dict], keep, out: Retrieval) -> None:
    """Photos meeting the plan's facts conditions (core.chat.concepts); the semantic words only order them.

    A named fact decides membership, so "how many photos with people" counts facts, not scores; a
    word no fact names but joined by "or" ("food or drink") counts where its search score passes
    the cut-off, exactly like a plain search."""
    from core.search import search_text, split_matches

    space = "image" if services.backend.text_space == "image" else "caption"
    n = max(1, min(5000, services.store.count(services.backend.model_id, space)))
    searched: dict[str, list] = {}

    def search(text: str) -> list:  # each text is searched once, whether it filters, orders, or both
        if text not in searched:
            searched[text] = search_text(services, text, k=n, where=where)
        return searched[text]

    semantic_ids: dict[str, set[str]] = {}
    wanted = [str(c.value) for group in plan.facts for c in group if c.key == "semantic"]
    wanted += [c.also for group in plan.facts for c in group if c.also]
    if plan.semantic and not plan.semantic_ranks:  # words that must match, as in a plain search
        wanted.append(plan.semantic)
    for text in wanted:
        semantic_ids[text] = {r.photo.id for r in split_matches(services.backend, search(text))[0]}
    must = semantic_ids.get(plan.semantic) if plan.semantic and not plan.semantic_ranks else None
    rows = _candidate_rows(services, plan, where, plan.facts, semantic_ids, must)
    scores: dict[str, float] = {}
    order_text = " ".join([plan.semantic] + [str(c.also or c.value) for g in plan.facts for c in g
                                             if (c.key == "semantic" or c.also) and not c.negate]).strip()
    if order_text:
        scores = {r.photo.id: r.score for r in search(order_text)}
    rows = _order(rows, plan, scores)
    out.total, out.matched_ids = len(rows), [r[0] for r in rows]
    out.photos = _photos(services, out.matched_ids[: plan.k])
    if plan.intent == "describe" and not out.photos and order_text:
        # "what is in the photo of the cat?" names one photo: the closest one, marked weak, as a plain search does
        best = [r for r in search(order_text) if keep(r.photo)][:1]
        out.photos, out.weak = [r.photo for r in best], bool(best)
        scores.update({r.photo.id: r.score for r in best})
    out.scores = [scores.get(p.id) for p in out.photos]
    out.how = ("photo facts and annotations: " + (plan.describe_filters(semantic=False) or "none")
               + (f", ordered by search score for “{order_text}”" if order_text and not plan.sort else ""))
    out.debug.append(f"facts conditions (all groups, any within a group): {[[c.model_dump() for c in g] for g in plan.facts]}")


class PhotoRetriever(BaseRetriever):
    """LangChain retriever over the PhotoLore index: question -> rule-based plan -> photos as Documents."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    services: Any
    k: int = 6

    def plan(self, question: str, history: Sequence = ()) -> Union[QueryPlan, str]:
        """The plan for a question, resolving follow-ups from `history`; a str is a message for the user instead."""
        from core.chat.followup import resolve_followup

        vocab = library_vocabulary(self.services)
        resolved = resolve_followup(question, history, vocab, k=self.k) if history else None
        return resolved if resolved is not None else plan_question(question, vocab, k=self.k)

    def retrieve(self, plan: QueryPlan) -> Retrieval:
        return retrieve(self.services, plan)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        plan = self.plan(query)
        return self.retrieve(plan).documents() if isinstance(plan, QueryPlan) else []


__all__ = ["PhotoRetriever", "Retrieval", "library_vocabulary", "retrieve", "annotation_gaps", "topic_key"]
