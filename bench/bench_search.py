"""Search latency and recall of the Chroma index vs exact brute force, in the same run.

    python bench/bench_search.py [--sizes 10000 100000] [--queries 200]

Vectors: 384-d (MiniLM's size) drawn from a mixture of clusters, L2-normalised, like real
caption embeddings. Each query = a real MiniLM text embedding time + the index lookup; the
baseline is an exact numpy dot product over all vectors with the same query vectors.
Targets: p95 <= 50 ms at 100k and recall@10 >= 0.95. The text-embedding and index-lookup parts
are also reported separately, so a slow run shows which part was slow.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def clustered(n: int, dim: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    labels = rng.integers(0, len(centres), n)
    x = centres[labels] + 0.35 * rng.normal(size=(n, dim)).astype(np.float32) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()

    from core.settings import Settings
    from models.bundled import BundledBackend
    from vectorstore.store import VectorStore

    dim = 384
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2000, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    backend = BundledBackend("cpu")
    texts = [f"a photo of item {i} on a table" for i in range(args.queries)]
    backend.embed_texts(texts[:4])  # warm-up

    results = []
    for size in args.sizes:
        data = clustered(size, dim, rng, centres)
        queries = clustered(args.queries, dim, rng, centres)
        store = VectorStore.from_settings(Settings(data_dir=Path(tempfile.mkdtemp(prefix="photolore-search-"))))
        ids = [f"p{i}" for i in range(size)]
        t0 = time.perf_counter()
        store.upsert("bench", "caption", ids, data, [{"i": i} for i in range(size)])
        build_s = time.perf_counter() - t0

        index_lat, exact_lat, lookup_lat, embed_lat, recalls = [], [], [], [], []
        for q, text in zip(queries, texts):
            t0 = time.perf_counter()
            backend.embed_texts([text])
            t1 = time.perf_counter()
            hits = store.query("bench", "caption", q, k=args.k)
            t2 = time.perf_counter()
            index_lat.append(t2 - t0)
            embed_lat.append(t1 - t0)
            lookup_lat.append(t2 - t1)
            t0 = time.perf_counter()
            backend.embed_texts([text])
            scores = data @ q
            top = np.argpartition(-scores, args.k)[: args.k]
            exact = set(top[np.argsort(-scores[top])].tolist())
            exact_lat.append(time.perf_counter() - t0)
            recalls.append(len(exact & {int(h.id[1:]) for h in hits}) / args.k)
        results.append({
            "vectors": size, "build_s": round(build_s, 2),
            "index_p50_ms": round(pct(index_lat, 50), 2), "index_p95_ms": round(pct(index_lat, 95), 2),
            "exact_p50_ms": round(pct(exact_lat, 50), 2), "exact_p95_ms": round(pct(exact_lat, 95), 2),
            "text_embed_p50_ms": round(pct(embed_lat, 50), 2), "index_lookup_p50_ms": round(pct(lookup_lat, 50), 2),
            "index_lookup_p95_ms": round(pct(lookup_lat, 95), 2),
            "recall_at_10": round(float(np.mean(recalls)), 4),
            "p95_ratio_index_over_exact": round(pct(index_lat, 95) / pct(exact_lat, 95), 3),
        })
    last = results[-1]
    print(json.dumps({"bench": "search", "dim": dim, "queries": args.queries, "results": results,
                      "targets": {"p95_ms": 50, "recall_at_10": 0.95},
                      "meets_target": last["index_p95_ms"] <= 50 and last["recall_at_10"] >= 0.95}, indent=1))


if __name__ == "__main__":
    main()
