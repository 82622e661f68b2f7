"""ImageNet class probabilities -> plain object words with their WordNet parents.

The mapping is data (`imagenet_words.json`, derived from WordNet 3.0 by
scripts/build_imagenet_words.py), so run time needs neither WordNet nor a download. A parent's
score is the summed probability of the classes under it, so "cat" collects every cat breed and
a photo the classifier cannot place among 20 dog breeds is still confidently "dog".
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

WORDS_FILE = Path(__file__).with_name("imagenet_words.json")


@dataclass(frozen=True)
class Vocabulary:
    words: list[str]  # every plain word: class names and parents
    membership: np.ndarray  # (1000, V) float32, 1 where class c is (a kind of) word v
    class_words: list[str]  # the plain name of each class
    depth: np.ndarray  # (V,) 0 = a class name, k = nearest as the k-th parent of some class
    nameable: np.ndarray  # (V,) bool: a class name or an everyday category ("cat", "bed"), fit for a caption

    def index(self, word: str) -> int:
        return self.words.index(word)


@lru_cache(maxsize=1)
def vocabulary(path: Path = WORDS_FILE) -> Vocabulary:
    """The class -> words mapping, loaded once."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        classes, anchors = data["classes"], set(data.get("anchors", ()))
    except (OSError, ValueError, KeyError) as exc:
        raise RuntimeError(f"{path}: cannot read the ImageNet word list ({exc}); rebuild it with "
                           "scripts/build_imagenet_words.py or restore it from git") from exc
    if len(classes) != 1000:
        raise RuntimeError(f"{path}: expected 1000 ImageNet classes, found {len(classes)}; rebuild it")
    words: list[str] = []
    pos: dict[str, int] = {}
    depth: dict[str, int] = {}
    rows: list[list[int]] = []
    for c in classes:
        chain = [c["words"][0]] + [p for p in c["parents"] if p != c["words"][0]]
        idx = []
        for k, w in enumerate(chain):
            if w not in pos:
                pos[w] = len(words)
                words.append(w)
            depth[w] = min(depth.get(w, k), k)
            idx.append(pos[w])
        rows.append(idx)
    membership = np.zeros((1000, len(words)), np.float32)
    for c, idx in enumerate(rows):
        membership[c, idx] = 1.0
    depths = np.array([depth[w] for w in words])
    nameable = np.array([depth[w] == 0 or w in anchors for w in words])
    return Vocabulary(words, membership, [c["words"][0] for c in classes], depths, nameable)


@lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """Every object word a photo's facts can hold: the ImageNet words and the detector's (core.facts.detected)."""
    from core.facts.detected import coco_words

    return frozenset(vocabulary().words) | frozenset(coco_words())


# Class probabilities below this are noise: summed over the ~400 animal classes they alone would make
# every photo 30% "animal".
NOISE_FLOOR = 0.02


def word_scores(class_probs: np.ndarray, floor: float = NOISE_FLOOR) -> np.ndarray:
    """(N, 1000) probabilities -> (N, V) word scores (summed over each word's likely classes, <= 1)."""
    vocab = vocabulary()
    p = np.asarray(class_probs, np.float32)
    return np.clip(np.where(p >= floor, p, 0.0) @ vocab.membership, 0.0, 1.0)


def top_objects(scores: np.ndarray, *, k: int = 20, min_score: float = 0.03) -> list[tuple[str, float]]:
    """One photo's (V,) word scores -> the best words, best first."""
    vocab = vocabulary()
    order = np.argsort(-scores)[: k * 2]
    return [(vocab.words[i], round(float(scores[i]), 4)) for i in order if scores[i] >= min_score][:k]


def specific_words(scores: np.ndarray, *, min_class: float = 0.3, min_category: float = 0.5, k: int = 3) -> list[tuple[str, float]]:
    """The most specific words a person would name: a class if it is likely, else its nearest likely category.

    Only class names and everyday categories are named (never "covering" or "instrumentality"),
    and a category needs more evidence than a class, since it sums many small probabilities.
    """
    vocab = vocabulary()
    order = np.argsort(vocab.depth * 10 - scores)  # specific first, then likely
    out: list[tuple[str, float]] = []
    covered: set[int] = set()
    for i in order:
        need = min_class if vocab.depth[i] == 0 else min_category
        if not vocab.nameable[i] or scores[i] < need or i in covered:
            continue
        # a parent already explained by a chosen child adds nothing ("cat" after "tabby")
        members = np.flatnonzero(vocab.membership[:, i])
        out.append((vocab.words[i], float(scores[i])))
        for c in members:
            covered.update(np.flatnonzero(vocab.membership[c]).tolist())
        if len(out) == k:
            break
    return out
