"""Retrieval metrics over ranked lists of relevance flags (pure numpy, no models)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def precision_at_k(relevant: Sequence[bool], k: int) -> float:
    """Fraction of the first `k` results that are relevant (missing results count as misses)."""
    if k < 1:
        raise ValueError(f"k must be >= 1 (got {k})")
    return float(np.sum(np.asarray(relevant[:k], bool))) / k


def recall_at_k(relevant: Sequence[bool], k: int, n_relevant: int) -> float:
    """Fraction of all `n_relevant` gallery items found in the first `k` results."""
    if n_relevant <= 0:
        return 0.0
    return float(np.sum(np.asarray(relevant[:k], bool))) / n_relevant


def average_precision(relevant: Sequence[bool], n_relevant: int) -> float:
    """AP of one ranked list; relevant items never retrieved count as misses (divide by `n_relevant`)."""
    rel = np.asarray(relevant, bool)
    if n_relevant <= 0:
        return 0.0
    if not rel.any():
        return 0.0
    hits = np.cumsum(rel)
    precisions = hits / np.arange(1, len(rel) + 1)
    return float(precisions[rel].sum() / n_relevant)


def mean_average_precision(lists: Sequence[Sequence[bool]], n_relevants: Sequence[int]) -> float:
    """mAP over queries."""
    if not lists:
        return 0.0
    return float(np.mean([average_precision(r, n) for r, n in zip(lists, n_relevants)]))


def threshold_confusion(scores: Sequence[float], relevant: Sequence[bool], threshold: float) -> dict[str, int]:
    """Counts of (score >= threshold) vs relevance over query-gallery pairs."""
    s = np.asarray(scores, float)
    r = np.asarray(relevant, bool)
    pred = s >= threshold
    return {"tp": int((pred & r).sum()), "fp": int((pred & ~r).sum()), "fn": int((~pred & r).sum()), "tn": int((~pred & ~r).sum())}


def threshold_metrics(confusion: dict[str, int]) -> dict[str, float]:
    """Accuracy, balanced accuracy, precision, recall and F1 of the match decision."""
    tp, fp, fn, tn = (confusion[k] for k in ("tp", "fp", "fn", "tn"))
    total = tp + fp + fn + tn
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    tnr = tn / (tn + fp) if tn + fp else 0.0
    return {
        "accuracy": (tp + tn) / total if total else 0.0,
        "balanced_accuracy": (rec + tnr) / 2,
        "match_precision": prec,
        "match_recall": rec,
        "match_f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) or 0 for no values."""
    return float(np.percentile(np.asarray(values, float), q)) if len(values) else 0.0
