"""Follow-up questions resolved from the conversation, by rules like the first question.

Three shapes are understood, each against the last answer that carried a plan:
- "and which of those are positive?": the new filters applied to exactly the photos the last answer
  matched (its `matched_ids`, not only the ones shown);
- "show me more like the second one" / "similar to [2]": photos that look like that shown photo;
- "what is in the second one?" / "tell me about [2]": that shown photo described;
- "what about bedrooms?" / "and kitchens?": the last question again with a new subject.

History entries are dicts; an assistant turn may carry "plan" (QueryPlan.model_dump(mode="json")),
"photo_ids" (shown, in order) and "matched_ids" (everything that matched). Plain (role, text) turns
are kept for the LLM but cannot be followed up.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence, Union

from core.chat.query import QueryPlan, Vocabulary, plan_question

_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "fifth": 5, "5th": 5,
             "sixth": 6, "6th": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "last": -1}
_ORD = "|".join(sorted(_ORDINALS, key=len, reverse=True))
# "like the second one", "similar to [2]", "like photo 3": a bare number ("like 2 cats") is not a reference.
_LIKE = re.compile(rf"\b(?:more\s+like|similar\s+to|others\s+like|ones\s+like|photos\s+like|like)\s+(?:the\s+)?"
                   rf"(?:({_ORD})\b|(?:photo\s+|picture\s+|number\s+|no\.?\s*|#\s*|\[\s*)(\d+)\b)")
_WHICH = rf"(?:the\s+)?(?:({_ORD})\b|(?:photo\s+|picture\s+|number\s+|no\.?\s*|#\s*|\[\s*)(\d+)\b)"
_DESCRIBE = re.compile(rf"\b(?:what(?:'s|\s+is)?\s+(?:in|on)|describe|tell\s+me\s+(?:more\s+)?about|what\s+does)\s+{_WHICH}")
_THOSE = re.compile(r"\b(?:of|among|from|in)\s+(?:those|these|them)\b|\b(?:those|these)\s+(?:ones|photos|pictures|images)\b")
# "what about bedrooms?", "and kitchens?" (a bare "and ..." only when short: "and show me the rocket" is a new question)
_ABOUT = re.compile(r"^\s*(?:and\s+|but\s+|ok\s+|okay\s+)?(?:what|how)\s+about\s+(.+?)\s*$|"
                    r"^\s*and\s+(?!which\b|what\b|how\b|show\b|find\b|list\b)((?:[\w'-]+\s*){1,3})$")


def last_turn(history: Sequence) -> Optional[dict]:
    """The most recent assistant turn that carries a plan, or None."""
    for h in reversed(list(history)):
        if isinstance(h, dict) and h.get("role") == "assistant" and h.get("plan"):
            return h
    return None


def resolve_followup(question: str, history: Sequence, vocab: Vocabulary, *, k: int = 6) -> Union[QueryPlan, str, None]:
    """A plan for a follow-up question; a message when it cannot be resolved; None when it is not a follow-up."""
    prev = last_turn(history)
    if prev is None:
        return None
    try:
        before = QueryPlan.model_validate(prev["plan"])
    except ValueError:
        return None  # a history from an older version: treat the question as new
    q = " " + re.sub(r"\s+", " ", question.lower().replace("?", " ").replace("’", "'")).strip() + " "

    for pattern, intent in ((_LIKE, "similar"), (_DESCRIBE, "describe")):
        m = pattern.search(q)
        if not m:
            continue
        shown = list(prev.get("photo_ids") or [])
        n = _ORDINALS[m[1]] if m[1] else int(m[2])
        if not shown:
            return "The last answer showed no photos, so there is no photo to point at: ask for some photos first."
        if n == 0 or n > len(shown):
            return (f"The last answer showed {len(shown)} photo{'s' if len(shown) != 1 else ''}: "
                    f"say which one, from the first to the {_ordinal(len(shown))}.")
        idx = n - 1 if n > 0 else len(shown) - 1
        if intent == "describe":
            return QueryPlan(intent="describe", photo_id=shown[idx], k=1)
        return QueryPlan(intent="similar", like_id=shown[idx], like_name=f"[{idx + 1}]", k=k)

    if _THOSE.search(q):
        matched = list(prev.get("matched_ids") or prev.get("photo_ids") or [])
        if not matched:
            return "The last answer matched no photos, so there are none to choose from: ask a new question."
        new = plan_question(_THOSE.sub(" ", q), vocab, k=k)
        intent = "count" if new.intent == "count" else ("rank" if new.sort else "search")
        return new.model_copy(update={"intent": intent, "within_ids": matched, "k": k})

    m = _ABOUT.match(q)
    if m:
        sub = plan_question(m[1] or m[2], vocab, k=before.k)
        update: dict = {"like_id": None, "like_name": "", "within_ids": []}
        if sub.facts:  # a new subject named by facts replaces the old subject, facts and words alike
            update.update(facts=sub.facts, semantic=sub.semantic, semantic_ranks=sub.semantic_ranks, scene=None, people=None, text=None)
        elif sub.semantic or sub.scene:
            update.update(semantic=sub.semantic, scene=sub.scene, facts=[], semantic_ranks=sub.semantic_ranks)
        for name in ("sentiment", "class_name", "people", "text", "date_from", "date_to", "sort"):
            if getattr(sub, name) is not None:
                update[name] = getattr(sub, name)
        for name in ("topics", "scores"):
            if getattr(sub, name):
                update[name] = getattr(sub, name)
        if len(update) == 3:
            return None  # nothing recognisable after "what about": answer it as a new question
        if before.intent == "similar":
            update["intent"] = "search"
        return before.model_copy(update=update)
    return None


def _ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third"}.get(n, f"{n}th")
