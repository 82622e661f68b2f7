"""Sentiment three ways: caption text (VADER), image only (zero-shot), and fused.

Scores live in [-1, 1]. Labels use VADER's documented cut-offs: score >= 0.05 positive,
<= -0.05 negative, neutral in between; the same cut-offs label the image and fused scores.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional

import numpy as np

POS_CUTOFF = 0.05
CAPTION_WEIGHT = 0.5  # fused = weighted mean; the caption counts as much as the image


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def label_of(score: float) -> str:
    """negative / neutral / positive from a score in [-1, 1]."""
    if score >= POS_CUTOFF:
        return "positive"
    if score <= -POS_CUTOFF:
        return "negative"
    return "neutral"


def caption_sentiment(text: Optional[str]) -> Optional[tuple[str, float]]:
    """(label, VADER compound score) of a caption, or None when there is no caption."""
    text = (text or "").strip()
    if not text:
        return None
    score = float(_vader().polarity_scores(text)["compound"])
    return label_of(score), score


def softmax(x: np.ndarray, temperature: float) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def zero_shot_sentiment(sims: dict[str, float], temperature: float) -> tuple[str, float]:
    """From the similarity to each label's prompts: score = p(positive) - p(negative)."""
    labels = ["negative", "neutral", "positive"]
    p = softmax(np.array([sims[l] for l in labels]), temperature)
    score = float(p[2] - p[0])
    return label_of(score), score


# How each facial expression (models/expressions.py) reads as sentiment, -1..1: a smile is the
# clearest positive signal a photo of people gives; a neutral face says nothing either way.
EXPRESSION_VALENCE = {"happy": 1.0, "surprise": 0.3, "neutral": 0.0, "sad": -0.8, "fear": -0.7, "angry": -0.9, "disgust": -0.8}
EXPRESSION_WEIGHT = 0.5  # share of the image score the faces get when there are faces


def expression_sentiment(expressions) -> Optional[tuple[str, float]]:
    """The faces' sentiment: mean of valence x confidence over the faces; None when no face was read."""
    if not expressions:
        return None
    score = float(np.mean([EXPRESSION_VALENCE.get(e, 0.0) * float(p) for e, p in expressions]))
    return label_of(score), score


def with_expressions(image: tuple[str, float], expressions) -> tuple[str, float]:
    """The image-only sentiment with the faces' expressions mixed in (unchanged without faces)."""
    faces = expression_sentiment(expressions)
    if faces is None:
        return image
    score = (1 - EXPRESSION_WEIGHT) * image[1] + EXPRESSION_WEIGHT * faces[1]
    return label_of(score), float(score)


def fuse(caption: Optional[tuple[str, float]], image: Optional[tuple[str, float]]) -> Optional[tuple[str, float]]:
    """Weighted mean of the two scores; either alone when the other is missing."""
    if caption is None and image is None:
        return None
    if caption is None:
        return image
    if image is None:
        return caption
    score = CAPTION_WEIGHT * caption[1] + (1 - CAPTION_WEIGHT) * image[1]
    return label_of(score), float(score)
