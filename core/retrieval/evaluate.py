"""Evaluation harness: both retrieval methods on one dataset split, same queries, one report.

For each method: build the index on the gallery (timed, peak traced memory), rank every query
(latency per query), then precision@k, recall@k, mAP, accuracy of the threshold's match
decision over all query-gallery pairs, build time, query p50/p95 and index memory.
"""
from __future__ import annotations

import csv
import io
import json
import platform
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from core.retrieval import Cancelled, noop_progress
from core.retrieval.classical import ClassicalConfig, ClassicalIndex
from core.retrieval.datasets import RetrievalDataset, relevant
from core.retrieval.deep import DeepConfig, DeepIndex
from core.retrieval import metrics as M

METHODS = ("classical", "deep", "random")


@dataclass(frozen=True)
class EvalConfig:
    """What to measure: methods, query count, cut-offs and the ranking depth."""

    methods: tuple[str, ...] = METHODS  # "random" is the chance baseline every method is compared with
    n_queries: int = 36
    ks: tuple[int, ...] = (1, 5, 10)
    depth: int = 50  # results ranked per query for mAP (the classical stage 1 may return fewer)
    seed: int = 0
    classical: ClassicalConfig = field(default_factory=ClassicalConfig)
    deep: DeepConfig = field(default_factory=DeepConfig)

    def validate(self) -> "EvalConfig":
        """Raise ValueError naming the first bad parameter."""
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise ValueError(f"unknown retrieval method(s) {bad or '(none)'}; choose from {', '.join(METHODS)}")
        if any(k < 1 for k in self.ks) or not self.ks:
            raise ValueError(f"ks must be positive integers (got {self.ks})")
        if self.depth < max(self.ks):
            raise ValueError(f"depth ({self.depth}) must be at least the largest k ({max(self.ks)})")
        self.classical.validate()
        self.deep.validate()
        return self


@dataclass
class MethodResult:
    method: str
    model: str
    metrics: dict[str, float]
    curve: list[dict[str, float]]  # precision@k and recall@k for k = 1..min(depth, n_gallery)
    n_gallery: int
    n_queries: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class EvalReport:
    dataset: str
    config: dict
    results: list[MethodResult]
    environment: dict = field(default_factory=dict)

    def table(self) -> list[dict]:
        """One flat row per method (the CSV and the page's table)."""
        return [{"method": r.method, "model": r.model, "n_gallery": r.n_gallery, "n_queries": r.n_queries, **r.metrics} for r in self.results]

    def curves(self) -> list[dict]:
        """Long-format rows (method, k, precision, recall) for charts."""
        return [{"method": r.method, **pt} for r in self.results for pt in r.curve]

    def to_json(self) -> str:
        return json.dumps({"dataset": self.dataset, "config": self.config, "environment": self.environment,
                           "results": [asdict(r) for r in self.results]}, indent=1, default=str)

    def to_csv(self) -> str:
        rows = self.table()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()) if rows else ["method"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()

    def write(self, out_dir: Path, stem: str = "retrieval_eval") -> tuple[Path, Path]:
        """Write `<stem>.json` and `<stem>.csv` atomically; returns both paths."""
        from core.images import atomic_write_bytes

        out_dir = Path(out_dir)
        j, c = out_dir / f"{stem}.json", out_dir / f"{stem}.csv"
        atomic_write_bytes(j, self.to_json().encode("utf-8"))
        atomic_write_bytes(c, self.to_csv().encode("utf-8"))
        return j, c


def _score_queries(index, queries, gallery_labels, depth: int, ks: Sequence[int], threshold: float, cancel, on_progress, method: str):
    latencies, rel_lists, n_rels, scores_all, rel_all = [], [], [], [], []
    n_gallery = len(gallery_labels)
    for qi, item in enumerate(queries):
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"evaluation cancelled during {method} queries")
        try:
            img = item.load()
        except (ValueError, OSError):
            continue
        t0 = time.perf_counter()
        pos, scores = index.rank(img, depth)
        latencies.append(time.perf_counter() - t0)
        pos, scores = pos[:depth], scores[:depth]
        rel_flags = [relevant(item.labels, gallery_labels[p]) for p in pos]
        rel_lists.append(rel_flags)
        n_rels.append(sum(relevant(item.labels, lab) for lab in gallery_labels))
        # Threshold decision over every query-gallery pair; unranked pairs are "no match".
        full = np.full(n_gallery, -np.inf)
        full[pos] = scores
        scores_all.append(full)
        rel_all.append([relevant(item.labels, lab) for lab in gallery_labels])
        on_progress(qi + 1, len(queries), stage=f"{method} queries")
    return latencies, rel_lists, n_rels, np.concatenate(scores_all) if scores_all else np.zeros(0), np.concatenate(rel_all) if rel_all else np.zeros(0, bool)


class PeakRSS:
    """Samples this process's resident memory in a thread; `.delta_mb` is the peak growth seen.

    Unlike tracemalloc it sees torch and OpenCV allocations too, and costs next to nothing.
    """

    def __init__(self, interval_s: float = 0.005):
        self.interval_s = interval_s
        self.delta_mb = 0.0
        self._stop = threading.Event()

    @staticmethod
    def rss_bytes() -> int:
        """Current resident set size (Linux /proc; falls back to ru_maxrss elsewhere)."""
        try:
            with open("/proc/self/statm") as fh:
                import os

                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self.rss_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakRSS":
        self._start = self._peak = self.rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self.rss_bytes())
        self.delta_mb = (self._peak - self._start) / 2**20


class RandomIndex:
    """The chance baseline: a random ranking of the gallery (seeded per query)."""

    def __init__(self, items, seed: int = 0):
        self.ids = [it.id for it in items]
        self.labels = [tuple(it.labels) for it in items]
        self.model_id = "random"
        self.rng = np.random.default_rng(seed)
        self.nbytes = 0
        from core.retrieval.classical import BuildReport

        self.report = BuildReport(n_indexed=len(items))

    def rank(self, image, k=None):
        """(positions, scores) of a random permutation; scores are uniform in [0, 1)."""
        order = self.rng.permutation(len(self.ids))[: k or len(self.ids)]
        return order, np.sort(self.rng.random(len(order)))[::-1]


def evaluate_index(method: str, build: Callable[[], object], queries, config: EvalConfig, threshold: float, *,
                   on_progress=noop_progress, cancel: Optional[threading.Event] = None) -> MethodResult:
    """Build one index (timed, memory traced), run all queries and compute every metric."""
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        index = build()
        build_s = time.perf_counter() - t0
    labels = index.labels
    lat, rel_lists, n_rels, scores, rels = _score_queries(index, queries, labels, config.depth, config.ks, threshold, cancel, on_progress, method)
    m: dict[str, float] = {"mAP": M.mean_average_precision(rel_lists, n_rels)}
    for k in config.ks:
        m[f"P@{k}"] = float(np.mean([M.precision_at_k(r, k) for r in rel_lists])) if rel_lists else 0.0
        m[f"R@{k}"] = float(np.mean([M.recall_at_k(r, k, n) for r, n in zip(rel_lists, n_rels)])) if rel_lists else 0.0
    m["threshold"] = threshold
    m.update(M.threshold_metrics(M.threshold_confusion(scores, rels, threshold)))
    m["build_s"] = build_s
    m["query_p50_ms"] = 1000 * M.percentile(lat, 50)
    m["query_p95_ms"] = 1000 * M.percentile(lat, 95)
    m["index_mb"] = index.nbytes / 2**20
    # Growth of resident memory while building (model weights loaded earlier are not counted).
    m["build_peak_rss_mb"] = mem.delta_mb
    curve = []
    # Beyond the gallery size every method has returned every photo, so all curves would coincide
    # (and the last one drawn hides the others): the curve stops at the gallery size.
    for k in range(1, min(config.depth, len(labels)) + 1):
        curve.append({"k": k, "precision": float(np.mean([M.precision_at_k(r, k) for r in rel_lists])) if rel_lists else 0.0,
                      "recall": float(np.mean([M.recall_at_k(r, k, n) for r, n in zip(rel_lists, n_rels)])) if rel_lists else 0.0})
    model = getattr(index, "model_id", "sift+hog+colour+shape")
    return MethodResult(method, model, m, curve, len(labels), len(rel_lists), list(index.report.skipped))


def run_evaluation(dataset: RetrievalDataset, config: EvalConfig = EvalConfig(), *, backend=None,
                   on_progress: Callable[..., None] = noop_progress, cancel: Optional[threading.Event] = None) -> EvalReport:
    """Evaluate the configured methods on `dataset` with the same query/gallery split."""
    config.validate()
    if "deep" in config.methods and backend is None:
        raise ValueError("deep retrieval needs a backend (the active bundled or CLIP backend)")
    queries, gallery = dataset.split(config.n_queries, seed=config.seed)
    results = []
    for method in config.methods:
        if method == "classical":
            def build():
                return ClassicalIndex.build(gallery, config.classical, on_progress=lambda d, t, **i: on_progress(d, t, stage="classical build"), cancel=cancel)
            threshold = config.classical.threshold
        elif method == "random":
            def build():
                return RandomIndex(gallery, seed=config.seed)
            threshold = 0.5
        else:
            def build():
                return DeepIndex.build(gallery, backend, config.deep, on_progress=lambda d, t, **i: on_progress(d, t, stage="deep build"), cancel=cancel)
            threshold = config.deep.threshold
        results.append(evaluate_index(method, build, queries, config, threshold, on_progress=on_progress, cancel=cancel))
    env = {"python": platform.python_version(), "machine": platform.machine(), "n_items": len(dataset), "n_classes": len(dataset.classes)}
    return EvalReport(dataset.name, asdict(config), results, env)
