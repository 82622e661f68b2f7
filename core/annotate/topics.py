"""Multi-label topics from zero-shot probabilities with an "other" threshold."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from core.annotate.sentiment import softmax

OTHER = "other"


def topic_probs(sims: np.ndarray, temperature: float) -> np.ndarray:
    """(T,) similarities to the topic prompts -> (T,) probabilities."""
    return softmax(np.asarray(sims), temperature)


def pick_topics(probs: np.ndarray, names: Sequence[str], threshold: float) -> list[str]:
    """Topics whose probability reaches `threshold`, most likely first; ["other"] when none does."""
    order = np.argsort(-probs)
    kept = [names[i] for i in order if probs[i] >= threshold]
    return kept or [OTHER]


def fuse_probs(caption: Optional[np.ndarray], image: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """Mean of the two distributions (either alone when the other is missing)."""
    parts = [p for p in (caption, image) if p is not None]
    return None if not parts else np.mean(parts, axis=0)


def with_topics(picked: list[str], proven: Sequence[str]) -> list[str]:
    """Topics the evidence proves first (evidence beats similarity), then `picked`; no 'other' beside a real topic."""
    out = list(dict.fromkeys([*proven, *(t for t in picked if t != OTHER)]))
    return out or [OTHER]
