"""Annotation throughput, each compared with a baseline measured in the same run.

    python bench/bench_annotate.py [--images 64] [--latency 0.05]

1. zeroshot: annotating N procedural shape images with the bundled backend vs the backend's
   plain `encode` of the same images (what ingest already pays): ratio = annotate / encode time.
2. vlm-api: N requests to a local server that answers after `latency` seconds, with
   concurrency 4 vs concurrency 1: speed-up = time(1) / time(4) (ideal 4).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.05)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    from core.annotate.vlm_api import VlmAnnotator, VlmSettings
    from core.annotate.zeroshot import ZeroShotAnnotator
    from core.catalog import Photo
    from core.shapes import generate
    from models.bundled import BundledBackend
    from tests.annotate_server import VlmServer, good_reply

    samples = generate(args.images, image_size=96, seed=1)
    images = [s.image for s in samples]
    photos = [Photo(id=f"{i:064x}", path=f"{i}.png", source="bench", caption=s.caption) for i, s in enumerate(samples)]
    backend = BundledBackend("cpu")
    annotator = ZeroShotAnnotator(backend)
    backend.encode(images[:4]), annotator.annotate(photos[:4], images[:4])  # warm-up
    t = time.perf_counter()
    for i in range(0, len(images), 16):
        backend.encode(images[i:i + 16])
    encode_s = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(0, len(images), 16):
        results = annotator.annotate(photos[i:i + 16], images[i:i + 16])
        assert all(r.ok for r in results)
    annotate_s = time.perf_counter() - t

    def api_time(concurrency: int) -> float:
        with VlmServer(lambda b, n: (*good_reply(b, n)[:3], args.latency)) as srv:
            a = VlmAnnotator(VlmSettings(base_url=srv.base_url, model="bench", concurrency=concurrency, requests_per_minute=1e6),
                             topics=["interior"])
            t0 = time.perf_counter()
            assert all(r.ok for r in a.annotate(photos, images))
            return time.perf_counter() - t0

    one, four = api_time(1), api_time(4)
    print(json.dumps({
        "images": len(images),
        "zeroshot_img_per_s": round(len(images) / annotate_s, 2),
        "encode_img_per_s": round(len(images) / encode_s, 2),
        "zeroshot_over_encode_time_ratio": round(annotate_s / encode_s, 3),
        "api_latency_s": args.latency,
        "api_concurrency1_s": round(one, 3),
        "api_concurrency4_s": round(four, 3),
        "api_speedup_4_vs_1": round(one / four, 2),
    }))


if __name__ == "__main__":
    main()
