"""Query understanding by rules: a question becomes a validated `QueryPlan` (semantic text + structured filters).

No model is involved, so a 135M local LLM never has to produce tool calls or JSON. The words
it recognises come from the library itself (classes in the catalog, topics in the index
metadata), and the plan is validated against them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, Optional

from pydantic import BaseModel, Field, field_validator, model_validator

from core.annotate.prompts import DIMENSIONS, topic_key
from core.chat.concepts import STOP_WORDS, Cond, describe_groups, parse_concepts
from core.facts.view import facts_where

Sentiment = Literal["negative", "neutral", "positive"]
Intent = Literal["search", "count", "describe", "rank", "similar"]

# Words that name a score dimension (adjective or noun form), lower case.
DIMENSION_WORDS: dict[str, str] = {
    "safe": "Safety", "safety": "Safety", "secure": "Safety", "dangerous": "-Safety", "unsafe": "-Safety",
    "belonging": "Belonging", "welcoming": "Belonging", "belong": "Belonging",
    "natural": "Naturalness", "naturalness": "Naturalness", "nature": "Naturalness", "artificial": "-Naturalness",
    "shared": "Shared", "social": "Shared", "communal": "Shared", "public": "Shared",
    "private": "Privacy", "privacy": "Privacy", "intimate": "Privacy",
    "convenient": "Convenience", "convenience": "Convenience", "practical": "Convenience", "inconvenient": "-Convenience",
}
SENTIMENT_WORDS: dict[str, Sentiment] = {
    "negative": "negative", "sad": "negative", "unhappy": "negative", "gloomy": "negative", "depressing": "negative",
    "upsetting": "negative", "sombre": "negative", "somber": "negative", "bleak": "negative",
    "neutral": "neutral",
    "positive": "positive", "happy": "positive", "cheerful": "positive", "joyful": "positive", "uplifting": "positive",
    "upbeat": "positive", "pleasant": "positive",
}
_MONTHS = {m: i for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july", "august",
                                        "september", "october", "november", "december"], start=1)}
_MONTH_RE = "|".join(_MONTHS)
_WORD = re.compile(r"[a-z0-9][a-z0-9'_-]*")


class ScoreFilter(BaseModel):
    dimension: str
    op: Literal[">=", "<="]
    value: int = Field(ge=1, le=5)

    @field_validator("dimension")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in DIMENSIONS:
            raise ValueError(f"unknown dimension {v!r}; one of {', '.join(DIMENSIONS)}")
        return v


class SortSpec(BaseModel):
    dimension: str
    descending: bool = True

    @field_validator("dimension")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in DIMENSIONS and v != "sentiment_score":
            raise ValueError(f"unknown sort key {v!r}")
        return v


class QueryPlan(BaseModel):
    """What to fetch for a question: every field is checked, nothing is free text except `semantic`."""

    intent: Intent = "search"
    semantic: str = ""  # the part of the question matched against photos by meaning
    sentiment: Optional[Sentiment] = None
    topics: list[str] = Field(default_factory=list)
    class_name: Optional[str] = None
    date_from: Optional[date] = None
    date_to: Optional[date] = None  # inclusive
    scores: list[ScoreFilter] = Field(default_factory=list)
    sort: Optional[SortSpec] = None
    # Photo facts (core.facts), used only when the library has them (see Vocabulary.has_facts).
    people: Optional[bool] = None  # True: photos with people; False: photos without
    text: Optional[bool] = None  # True: photos with readable text
    scene: Optional[str] = None
    # Facts and topic conditions from the question grammar (core.chat.concepts): all groups, each any of its
    # conditions. When present, `semantic` only orders the photos that meet them (a named fact decides, not a score).
    facts: list[list[Cond]] = Field(default_factory=list)
    semantic_ranks: bool = False  # True when the question named facts or topics: `semantic` orders, it does not filter
    like_id: Optional[str] = None  # "similar": photos that look like this photo (a follow-up's "more like the second one")
    like_name: str = ""  # how the user knows that photo, for the answer
    within_ids: list[str] = Field(default_factory=list)  # a follow-up's "of those": only these photos
    photo_id: Optional[str] = None  # "describe": the photo a follow-up points at ("what is in the second one?")
    k: int = Field(default=6, ge=1, le=48)

    @model_validator(mode="after")
    def _dates_ordered(self) -> "QueryPlan":
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"date range is empty: {self.date_from} is after {self.date_to}")
        return self

    def describe_filters(self, semantic: bool = True) -> str:
        """The filters in words, for the answer and the UI (`semantic=False`: when the answer names it itself)."""
        parts = []
        if self.sentiment:
            parts.append(f"sentiment = {self.sentiment}")
        parts += [f"topic = {t}" for t in self.topics]
        parts += describe_groups(self.facts)
        if self.class_name:
            parts.append(f"class = {self.class_name}")
        if self.people is not None:
            parts.append("with people" if self.people else "without people")
        if self.text:
            parts.append("with text")
        if self.scene:
            parts.append(f"scene = {self.scene}")
        if self.within_ids:
            parts.append(f"among the {len(self.within_ids)} photo{'s' if len(self.within_ids) != 1 else ''} of the previous answer")
        if self.like_id and semantic:  # like the semantic text, the answer names it itself
            parts.append(f"looking like {self.like_name or self.like_id[:12]}")
        if self.date_from:
            parts.append(f"taken on or after {self.date_from.isoformat()}")
        if self.date_to:
            parts.append(f"taken on or before {self.date_to.isoformat()}")
        parts += [f"{s.dimension} {s.op} {s.value}" for s in self.scores]
        if self.sort:
            parts.append(f"sorted by {self.sort.dimension}, {'highest' if self.sort.descending else 'lowest'} first")
        if self.semantic and semantic:
            parts.append(f"ordered by “{self.semantic}”" if self.semantic_ranks else f"matching “{self.semantic}”")
        return ", ".join(parts)


@dataclass
class Vocabulary:
    """The names a question may use, read from the library (see `library_vocabulary`)."""

    classes: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    scenes: list[str] = field(default_factory=list)  # scene names in the photo facts
    has_facts: bool = False  # the index carries photo facts (has_people, has_text, scene)
    detected: bool = False  # photo facts from the object detector exist (facts version 5), so "dogs" reads its labels


def _find_phrase(text: str, phrase: str) -> Optional[re.Match]:
    """A whole-word, case-insensitive match of `phrase` (or its plural) in `text`."""
    p = re.escape(phrase.lower()).replace(r"\ ", r"[\s_-]+")
    return re.search(rf"(?<![a-z0-9]){p}(?:s|es)?(?![a-z0-9])", text)


def _parse_day(text: str, *, end: bool) -> Optional[date]:
    """'2023', 'March 2023', '2023-03', '2023-03-14' -> the first (or last, with end=True) day."""
    import calendar

    text = text.strip().lower()
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if m:
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:  # 2023-02-30: not a day, so not a filter
            return None
    m = re.fullmatch(rf"({_MONTH_RE})\s+(\d{{4}})", text)
    if m:
        text = f"{m[2]}-{_MONTHS[m[1]]}"
    m = re.fullmatch(r"(\d{4})-(\d{1,2})", text)
    if m and 1 <= int(m[2]) <= 12:
        y, mo = int(m[1]), int(m[2])
        return date(y, mo, calendar.monthrange(y, mo)[1] if end else 1)
    m = re.fullmatch(r"(\d{4})", text)
    if m:
        return date(int(m[1]), 12, 31) if end else date(int(m[1]), 1, 1)
    return None


_DAY = rf"(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}|\d{{4}}-\d{{1,2}}|(?:{_MONTH_RE})\s+\d{{4}}|\d{{4}})"


def _dates(q: str) -> tuple[Optional[date], Optional[date], str]:
    """Date range words -> (from, to, question without them)."""
    d_from = d_to = None
    m = re.search(rf"\b(?:between|from)\s+({_DAY})\s+(?:and|to|until)\s+({_DAY})\b", q)
    if m:
        d_from, d_to = _parse_day(m[1], end=False), _parse_day(m[2], end=True)
        return d_from, d_to, q[:m.start()] + " " + q[m.end():]
    for word, is_from in (("after", True), ("since", True), ("before", False)):
        m = re.search(rf"\b{word}\s+({_DAY})\b", q)
        if m:
            if is_from:
                d = _parse_day(m[1], end=True)
                d_from = date.fromordinal(d.toordinal() + 1) if word == "after" else _parse_day(m[1], end=False)
            else:
                d = _parse_day(m[1], end=False)
                d_to = date.fromordinal(d.toordinal() - 1)
            q = q[:m.start()] + " " + q[m.end():]
    m = re.search(rf"\b(?:in|during|from|of)\s+({_DAY})\b", q)
    if m and d_from is None and d_to is None:
        d_from, d_to = _parse_day(m[1], end=False), _parse_day(m[1], end=True)
        q = q[:m.start()] + " " + q[m.end():]
    return d_from, d_to, q


_CMP = [
    (r"(?:at least|>=|no less than)", ">=", 0), (r"(?:above|over|more than|greater than|higher than|>)", ">=", 1),
    (r"(?:at most|<=|no more than)", "<=", 0), (r"(?:below|under|less than|lower than|<)", "<=", -1),
]


def plan_question(question: str, vocab: Optional[Vocabulary] = None, *, k: int = 6) -> QueryPlan:
    """Rules: 'how many' -> count; 'least/most <dimension>' -> rank; sentiment, topic, class and date words -> filters."""
    vocab = vocab or Vocabulary()
    q = " " + re.sub(r"\s+", " ", (question or "").lower()).strip() + " "
    q = q.replace("’", "'").replace("?", " ").replace("!", " ")
    consumed: list[str] = []

    intent: Intent = "search"
    if re.search(r"\bhow many\b|\bnumber of\b|\bcount\b", q):
        intent = "count"
    elif re.search(r"\bwhat(?:'s| is| do you see)? in\b|\bdescribe\b|\btell me about\b|\bwhat does\b.*\bshow\b|\bwhat is shown\b", q):
        intent = "describe"

    d_from, d_to, q = _dates(q)

    scores: list[ScoreFilter] = []
    sort: Optional[SortSpec] = None
    dim_alt = "|".join(sorted(DIMENSION_WORDS, key=len, reverse=True))
    for pattern, op, shift in _CMP:
        for m in list(re.finditer(rf"\b({dim_alt})\b(?: score)?\s+(?:is\s+)?{pattern}\s+([1-5])\b", q)):
            dim = DIMENSION_WORDS[m[1]].lstrip("-")
            scores.append(ScoreFilter(dimension=dim, op=op, value=min(5, max(1, int(m[2]) + shift))))
            q = q.replace(m[0], " ")
    m = re.search(rf"\b(least|most|lowest|highest|less|more)\s+(?:\w+\s+)?({dim_alt})\b", q)
    if m:
        dim = DIMENSION_WORDS[m[2]]
        descending = m[1] in ("most", "highest", "more")
        if dim.startswith("-"):  # "most dangerous" = lowest Safety
            dim, descending = dim[1:], not descending
        sort = SortSpec(dimension=dim, descending=descending)
        consumed.append(m[2])
        if intent == "search":
            intent = "rank"

    sentiment: Optional[Sentiment] = None
    for word, label in SENTIMENT_WORDS.items():
        if re.search(rf"\b{word}\b", q):
            sentiment = label
            consumed.append(word)
            break
    if sort is None and re.search(r"\b(saddest|most negative|least positive|happiest|most positive|least negative)\b", q):
        saddest = re.search(r"\b(saddest|most negative|least positive)\b", q)
        sort = SortSpec(dimension="sentiment_score", descending=not saddest)
        sentiment = None
        intent = "rank" if intent == "search" else intent

    class_name = None
    # A folder named "photos" or "images" is not a filter every question asks for.
    for name in sorted((c for c in vocab.classes if c and c.lower() not in STOP_WORDS), key=len, reverse=True):
        m = _find_phrase(q, name)
        if m:
            class_name = name
            q = q[:m.start()] + " " + q[m.end():]
            break

    parsed = parse_concepts(q, _concepts(vocab), STOP_WORDS | set(consumed) | set(DIMENSION_WORDS) | _RANK_WORDS)
    # A topic that must hold (not or-ed, not negated) is a plain `where` filter, as Annotate's topics always
    # were; words that must match (not or-ed) are the search text, filtered by Search's cut-off.
    by_key = {topic_key(t): t for t in vocab.topics}
    single = lambda g, pred: len(g) == 1 and not g[0].negate and pred(g[0])  # noqa: E731
    topics = [by_key[g[0].key] for g in parsed.groups if single(g, lambda c: c.key in by_key)]
    words = [str(g[0].value) for g in parsed.groups if single(g, lambda c: c.key == "semantic")]
    # people, text and scene that must hold go through facts_where, the filters Search's page uses
    people = next((not g[0].negate for g in parsed.groups if len(g) == 1 and g[0].key == "has_people"), None)
    text = True if any(single(g, lambda c: c.key == "has_text") for g in parsed.groups) else None
    scene = next((str(g[0].value) for g in parsed.groups if single(g, lambda c: c.key == "scene" and c.op == "eq")), None)
    as_fields = lambda g: (len(g) == 1 and g[0].key == "has_people") or single(  # noqa: E731
        g, lambda c: c.key in by_key or c.key in ("semantic", "has_text") or (c.key == "scene" and c.value == scene))
    groups = [g for g in parsed.groups if not as_fields(g)]
    if parsed.groups:
        return QueryPlan(intent=intent, semantic=" ".join(words or [parsed.rank_words]).strip(), semantic_ranks=not words,
                         sentiment=sentiment, topics=topics, class_name=class_name, facts=groups, people=people, text=text,
                         scene=scene, date_from=d_from, date_to=d_to, scores=scores, sort=sort, k=1 if intent == "describe" else k)
    q = _NO_PEOPLE.sub(" ", q)  # "without people" cannot be filtered without facts; never read it as "people"
    words = [w for w in _WORD.findall(q) if w not in STOP_WORDS and w not in consumed and w not in DIMENSION_WORDS
             and w not in _RANK_WORDS]
    return QueryPlan(intent=intent, semantic=" ".join(words), sentiment=sentiment, class_name=class_name,
                     date_from=d_from, date_to=d_to, scores=scores, sort=sort, k=1 if intent == "describe" else k)


_RANK_WORDS = {"least", "most", "lowest", "highest", "score", "scores"}


def _concepts(vocab: Vocabulary) -> list:
    """The lexicon for this library: topics always (annotations), facts and object words only where facts exist."""
    from core.chat.concepts import (detected_concepts, fact_concepts, imagenet_object_words, known_scene_names, object_concepts,
                                    topic_concepts, topic_prompts)
    from core.facts.colours import PALETTE

    out = topic_concepts(vocab.topics, topic_prompts())
    if vocab.has_facts:
        out += fact_concepts(vocab.scenes, list(PALETTE), known_scene_names()) + object_concepts(list(imagenet_object_words()))
    if vocab.detected:
        out += detected_concepts()
    return out


_NO_PEOPLE = re.compile(r"\b(?:without|with no|no|empty of)\s+(?:any\s+)?(?:people|persons?|humans?|one|anyone|faces?)\b|\bnobody\b")


def where_clause(plan: QueryPlan) -> Optional[dict]:
    """The plan's metadata filters as a Chroma `where` (dates are filtered in Python: Chroma compares numbers only)."""
    conds: list[dict] = []
    if plan.sentiment:
        conds.append({"sentiment": plan.sentiment})
    conds += [{topic_key(t): True} for t in plan.topics]
    if plan.class_name:
        conds.append({"class_name": plan.class_name})
    # Facts filters come from the one place Search's filters come from, so both select the same photos.
    facts = facts_where(has_people=plan.people, has_text=True if plan.text else None, scene=plan.scene)
    if facts:
        conds += facts.get("$and", [facts])
    conds += [{s.dimension: {"$gte" if s.op == ">=" else "$lte": s.value}} for s in plan.scores]
    if plan.sort and plan.sort.dimension in DIMENSIONS:
        conds.append({plan.sort.dimension: {"$gte": 1}})  # only photos that carry the score
    elif plan.sort:
        conds.append({"sentiment_score": {"$gte": -1.0}})
    if not conds:
        return None
    return conds[0] if len(conds) == 1 else {"$and": conds}
