"""A photo's facts as one vector in the text space, so a query is scored against all of them.

ConSE-style (Norouzi et al., 2014): the probability-weighted mean of the embeddings of the
object words (classes and their WordNet parents), plus the scene, the people and the text read
in the photo, each weighted by how sure we are of it. A query like "a cat" then lands near a
photo whose probability mass is spread over five cat breeds, which a three-label sentence misses.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from core.facts import PhotoFacts
from models.base import caption_from_tags

# Relative weights of the evidence kinds (object word weights are their scores, 0..1).
SCENE_WEIGHT = 1.0
PEOPLE_WEIGHT = 1.2
TEXT_WEIGHT = 0.8
LABELS_WEIGHT = 1.0
COLOUR_WEIGHTS = (0.4, 0.25, 0.15)  # dominant colour first
MONOCHROME_WEIGHT = 0.8
LANDSCAPE_WEIGHT = 1.2  # times the cue's confidence: sky, water, trees are the whole subject of a landscape
SETTING_WEIGHT = 0.4  # "outdoors"/"indoors" is weak on its own but separates a sea from a blue wall
# How each colour-and-layout cue reads as words (the cue names are facts keys, these are for the text space).
LANDSCAPE_WORDS = {"sky": "the sky", "sunset": "a sunset", "water": "water, the sea or a lake", "grass": "green grass, a meadow",
                   "trees": "trees, a forest", "snow": "snow", "sand": "sand, a beach", "night": "at night, a dark sky with lights or stars"}
OBJECT_POWER = 0.5  # sqrt: likely-but-not-certain words still count, so a word at 0.25 weighs half of one at 1.0
MAX_OBJECTS = 12


def facts_terms(facts: PhotoFacts) -> list[tuple[str, float]]:
    """(text, weight) pairs that make up the facts vector."""
    terms = [(w, float(s) ** OBJECT_POWER) for w, s in facts.objects[:MAX_OBJECTS]]
    if facts.labels and LABELS_WEIGHT:
        # the classifier's own top labels as one phrase: keeps the sense of what co-occurs in the photo
        terms.append((labels_term(facts), LABELS_WEIGHT))
    if facts.scene:
        terms.append((facts.scene.replace("_", " "), SCENE_WEIGHT * max(facts.scene_score, 0.0)))
    if facts.people:
        who = "a person" if facts.people == 1 else "a group of people"
        terms.append((who, PEOPLE_WEIGHT))
    terms += [(LANDSCAPE_WORDS.get(name, name), LANDSCAPE_WEIGHT * score) for name, score in facts.landscape]
    if facts.setting:
        terms.append((f"{facts.setting}s", SETTING_WEIGHT * facts.setting_score))  # "outdoors", "indoors"
    if facts.monochrome:
        terms.append(("a black and white photo", MONOCHROME_WEIGHT))
    else:
        terms += [(f"{c} colour", w) for c, w in zip(facts.colours, COLOUR_WEIGHTS)]
    if facts.text:
        terms.append(("a photo with written text", TEXT_WEIGHT))  # for "a sign", "a page of text"
        terms.append((text_term(facts), TEXT_WEIGHT))  # for what it says
    return [(t, w) for t, w in terms if w > 0]


def labels_term(facts: PhotoFacts) -> str:
    """The classifier's top labels as one phrase ("a photo of tabby, with tiger cat and ...")."""
    return caption_from_tags(facts.labels)


def text_term(facts: PhotoFacts) -> str:
    """The term for what the photo's text says (its OCR lines, cut to 200 characters)."""
    return facts.text_content()[:200]


def per_photo_terms(facts: PhotoFacts) -> list[str]:
    """Terms made from this photo alone (its label phrase, its text): rarely seen again, so not worth
    keeping between runs (core.facts.term_cache), unlike the object words and fixed phrases."""
    return ([labels_term(facts)] if facts.labels else []) + ([text_term(facts)] if facts.text else [])


def facts_vectors(facts: Sequence[PhotoFacts], embed_texts: Callable[[Sequence[str]], np.ndarray],
                  cache: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(N, D) L2-normalised facts vectors; `cache` keeps word embeddings between batches."""
    cache = {} if cache is None else cache
    if len(cache) > 50_000:
        cache.clear()  # OCR lines are unique per photo: keep the cache from growing with the library
    per_photo = [facts_terms(f) or [("a photo", 1.0)] for f in facts]
    missing = sorted({t for terms in per_photo for t, _ in terms if t not in cache})
    if missing:
        for t, e in zip(missing, embed_texts(missing)):
            cache[t] = np.asarray(e, np.float32)
    out = np.stack([sum(w * cache[t] for t, w in terms) for terms in per_photo]).astype(np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
