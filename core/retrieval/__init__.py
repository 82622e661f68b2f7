"""Retrieval lab: classical (SIFT/HOG/histograms + BoVW + PCA + k-means) and deep retrieval,
dataset loaders and an evaluation harness. Heavy libraries are imported inside functions."""
from __future__ import annotations

from dataclasses import dataclass


class Cancelled(RuntimeError):
    """Raised when long work stops because its `cancel` event was set; rerun to resume."""


@dataclass(frozen=True)
class Hit:
    """One ranked result: gallery position, item id, similarity and whether it counts as a match."""

    index: int
    id: str
    score: float
    match: bool = True
    labels: tuple[str, ...] = ()


def noop_progress(done: int, total: int, **info) -> None:
    """Default progress callback."""
