"""Agreement between label sequences: confusion matrices, Cohen's kappa, macro-F1 (sentiment methods vs each
other and vs ground truth, core.dashboards). Pure numpy on label codes, so a million labels cost one pass."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from core.annotate.prompts import SENTIMENTS


def label_codes(values: Sequence, labels: Sequence[str] = SENTIMENTS) -> np.ndarray:
    """Index of each value in `labels`, -1 for anything else (missing included)."""
    if not isinstance(values, pd.Series):
        values = np.asarray(values, dtype=object)
    return np.asarray(pd.Categorical(values, categories=list(labels)).codes, dtype=np.int64)


def codes_confusion(ia: np.ndarray, ib: np.ndarray, k: int) -> np.ndarray:
    """Confusion matrix of two label_codes arrays over k labels (-1 codes left out)."""
    ok = (ia >= 0) & (ib >= 0)
    return np.bincount(ia[ok] * k + ib[ok], minlength=k * k).reshape(k, k).astype(np.int64)


def confusion(a: Sequence, b: Sequence, labels: Sequence[str] = SENTIMENTS) -> np.ndarray:
    """Confusion matrix (rows: a, columns: b) over `labels`; pairs with a label outside are ignored."""
    return codes_confusion(label_codes(a, labels), label_codes(b, labels), len(labels))


def kappa_of(m: np.ndarray) -> float:
    """Cohen's kappa of a confusion matrix; 1.0 when both agree on a single label (no variance)."""
    m = m.astype(float)
    n = m.sum()
    if n == 0:
        return float("nan")
    po = np.trace(m) / n
    pe = float((m.sum(axis=1) / n) @ (m.sum(axis=0) / n))
    if pe == 1.0:
        return 1.0 if po == 1.0 else 0.0
    return float((po - pe) / (1 - pe))


def cohen_kappa(a: Sequence, b: Sequence, labels: Sequence[str] = SENTIMENTS) -> float:
    """Cohen's kappa from the confusion matrix; 1.0 when both agree on a single label (no variance)."""
    return kappa_of(confusion(a, b, labels))


def macro_f1_of(m: np.ndarray) -> float:
    """Macro-F1 of a confusion matrix (rows: truth) over the labels present in either."""
    m = m.astype(float)
    present = (m.sum(axis=0) + m.sum(axis=1)) > 0
    tp = np.diag(m)
    precision = np.divide(tp, m.sum(axis=0), out=np.zeros_like(tp), where=m.sum(axis=0) > 0)
    recall = np.divide(tp, m.sum(axis=1), out=np.zeros_like(tp), where=m.sum(axis=1) > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean()) if present.any() else float("nan")


def macro_f1(truth: Sequence, pred: Sequence, labels: Sequence[str] = SENTIMENTS) -> float:
    """Macro-averaged F1 over the labels present in truth or prediction (as scikit-learn does)."""
    return macro_f1_of(confusion(truth, pred, labels))
