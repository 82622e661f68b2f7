import math

import pytest

from core.retrieval import metrics as M


def test_precision_recall_at_k():
    rel = [True, False, True, False]
    assert M.precision_at_k(rel, 1) == 1.0
    assert M.precision_at_k(rel, 4) == 0.5
    # Fewer results than k: missing ones count as misses.
    assert M.precision_at_k([True], 5) == pytest.approx(0.2)
    assert M.recall_at_k(rel, 2, n_relevant=4) == pytest.approx(0.25)
    assert M.recall_at_k(rel, 4, n_relevant=0) == 0.0
    with pytest.raises(ValueError):
        M.precision_at_k(rel, 0)


def test_average_precision_hand_computed():
    # Relevant at ranks 1 and 3 of 2 relevant: (1/1 + 2/3) / 2.
    assert M.average_precision([True, False, True], 2) == pytest.approx((1 + 2 / 3) / 2)
    # A relevant item never retrieved halves AP.
    assert M.average_precision([True], 2) == pytest.approx(0.5)
    assert M.average_precision([False, False], 3) == 0.0
    assert M.mean_average_precision([[True], [False, True]], [1, 1]) == pytest.approx((1 + 0.5) / 2)


def test_threshold_metrics():
    conf = M.threshold_confusion([0.9, 0.8, 0.2, 0.1], [True, False, True, False], threshold=0.5)
    assert conf == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    m = M.threshold_metrics(conf)
    assert m["accuracy"] == 0.5 and m["match_f1"] == 0.5
    assert M.threshold_metrics(M.threshold_confusion([0.9, 0.1], [True, False], 0.5))["accuracy"] == 1.0


def test_percentile():
    assert M.percentile([1, 2, 3, 4], 50) == 2.5
    assert M.percentile([], 95) == 0.0
    assert math.isclose(M.percentile(list(range(101)), 95), 95)
