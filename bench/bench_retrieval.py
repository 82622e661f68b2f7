"""Benchmark: classical vs deep retrieval on the same dataset in one run, side by side.

Prints one JSON object. Baselines are measured in the same run: mAP is compared with a random
ranking (ratio), and deep's build time / latency / memory are given as ratios to classical's.

    python bench/bench_retrieval.py [--n 216] [--queries 36] [--backbone efficientnet|active]
    python bench/bench_retrieval.py --dataset folders --path ~/photos_by_class
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="shapes", choices=["shapes", "folders", "cifar10", "voc2007"])
    p.add_argument("--path")
    p.add_argument("--limit", type=int)
    p.add_argument("--n", type=int, default=216)
    p.add_argument("--queries", type=int, default=36)
    p.add_argument("--backbone", default="efficientnet", choices=["efficientnet", "active"])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from core.retrieval.datasets import load_dataset
    from core.retrieval.deep import make_deep_backend
    from core.retrieval.evaluate import EvalConfig, run_evaluation

    ds = load_dataset(args.dataset, Path(args.path) if args.path else None, limit=args.limit, n=args.n)
    backend = make_deep_backend(args.backbone)
    report = run_evaluation(ds, EvalConfig(n_queries=args.queries), backend=backend)
    by = {r.method: r.metrics for r in report.results}
    keys = ("mAP", "P@1", "P@10", "R@10", "accuracy", "balanced_accuracy", "build_s", "query_p50_ms", "query_p95_ms", "index_mb", "build_peak_rss_mb")
    out = {
        "bench": "retrieval",
        "dataset": report.dataset,
        "n_items": len(ds),
        "n_queries": report.results[0].n_queries,
        "deep_model": next(r.model for r in report.results if r.method == "deep"),
        "methods": {m: {k: round(v[k], 4) for k in keys} for m, v in by.items()},
        "ratios": {
            "classical_mAP_over_random": round(by["classical"]["mAP"] / max(by["random"]["mAP"], 1e-9), 3),
            "deep_mAP_over_random": round(by["deep"]["mAP"] / max(by["random"]["mAP"], 1e-9), 3),
            "deep_mAP_over_classical": round(by["deep"]["mAP"] / max(by["classical"]["mAP"], 1e-9), 3),
            "deep_build_time_over_classical": round(by["deep"]["build_s"] / max(by["classical"]["build_s"], 1e-9), 3),
            "deep_query_p50_over_classical": round(by["deep"]["query_p50_ms"] / max(by["classical"]["query_p50_ms"], 1e-9), 3),
            "deep_index_mb_over_classical": round(by["deep"]["index_mb"] / max(by["classical"]["index_mb"], 1e-9), 3),
        },
        "environment": report.environment,
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
