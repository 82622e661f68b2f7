"""What the zero-shot annotator reads from photo facts: a sentence to embed, and evidence rules.

The sentence and the rules come from the prompt file (prompts.toml `[facts]`), so a user can
change what counts as evidence without touching code. Evidence words are: "people" (a person was
found), "text" (text was read), "scene:<name>", and every object word (objects carry their WordNet
parents, so "animal" is present for a tabby).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from core.annotate.prompts import PromptSet
from core.facts import PhotoFacts

_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five"}


def people_phrase(n: int) -> str:
    if n <= 0:
        return ""
    return "a person" if n == 1 else f"{_NUMBERS.get(n, 'many')} people"


def facts_sentence(facts: PhotoFacts, prompts: PromptSet) -> str:
    """One sentence from the facts, e.g. 'a kitchen, with a person, showing cup, coffee, beverage'."""
    values = {
        "caption": facts.caption.strip(),
        "scene": facts.scene.strip(),
        "people": people_phrase(facts.people),
        "objects": ", ".join(w for w, _ in facts.objects[:prompts.facts_objects]),
        "text": facts.text_content().strip()[:200],
    }
    pieces = [template.replace("{" + name + "}", values[name]) for name, template in prompts.facts_sentence.items() if values.get(name)]
    return ", ".join(pieces) or "a photo"


def evidence(facts: PhotoFacts, prompts: PromptSet) -> set[str]:
    """The evidence words of a photo: the object words its sentence shows (best `[facts] objects`), plus
    "people", "text" and "scene:<name>" when found. Weaker object guesses are not evidence."""
    words = {w.strip().lower() for w, _ in facts.objects[:prompts.facts_objects]}
    if facts.has_people:
        words.add("people")
    if facts.has_text:
        words.add("text")
    if facts.scene:
        words.add("scene:" + facts.scene.strip().lower())
    return words


def allowed(name: str, found: set[str], prompts: PromptSet) -> bool:
    """False when `name` (topic or concept) requires evidence the facts do not show."""
    need = prompts.requires.get(name)
    return need is None or any(w in found for w in need)


def gate_topics(probs: np.ndarray, names: Sequence[str], found: Optional[set[str]], prompts: PromptSet) -> np.ndarray:
    """Zero the topics the facts rule out and renormalise (all ruled out: all zero, i.e. 'other')."""
    if found is None:
        return probs
    mask = np.array([allowed(n, found, prompts) for n in names], dtype=float)
    kept = probs * mask
    total = kept.sum()
    return kept / total if total > 0 else kept


def implied_topics(names: Sequence[str], found: Optional[set[str]], prompts: PromptSet) -> list[str]:
    if found is None:
        return []
    return [n for n in names if any(w in found for w in prompts.implies.get(n, ()))]


def best_concept(sims: np.ndarray, concepts: Sequence[str], found: Optional[set[str]], prompts: PromptSet) -> str:
    """The closest concept phrase the facts allow (the closest overall when they allow none)."""
    order = np.argsort(-np.asarray(sims))
    if found is not None:
        for i in order:
            if allowed(concepts[i], found, prompts):
                return concepts[i]
    return concepts[int(order[0])]
