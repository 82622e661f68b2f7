"""Ingest throughput vs the raw model forward pass, in the same run; peak RSS for two sizes.

    python bench/bench_ingest.py [--n 96 192] [--size 640x480] [--batch 16]

Prints one JSON object. `ratio` = pipeline images/s / raw forward images/s (target >= 0.8).
The raw forward is preprocess + EfficientNet-Lite0 on already-decoded images at the same batch
size; the pipeline adds reading, hashing, decoding, thumbnails, caption embeddings and writes.
Each size runs in a fresh process so its peak RSS is its own (it must not grow with N).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_images(folder: Path, n: int, size: tuple[int, int]) -> None:
    import numpy as np
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 255, 3)))
        d = ImageDraw.Draw(img)
        for _ in range(12):  # photo-like content: shapes and noise, so JPEG decode is realistic
            x0, y0 = rng.integers(0, size[0]), rng.integers(0, size[1])
            d.ellipse([x0, y0, x0 + rng.integers(20, 200), y0 + rng.integers(20, 200)], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        arr = np.asarray(img).astype(np.int16) + rng.integers(-12, 12, (size[1], size[0], 3))
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.jpg", quality=90)


def child(n: int, size: tuple[int, int], batch: int) -> dict:
    import torch

    from core.images import load_rgb
    from core.ingest import ingest_folder
    from core.services import build_services
    from core.settings import Settings
    from models.bundled import BundledBackend
    from models.efficientnet import preprocess

    work = Path(tempfile.mkdtemp(prefix="photolore-bench-"))
    make_images(work / "photos", n, size)
    backend = BundledBackend("cpu")
    images = [load_rgb(p) for p in sorted((work / "photos").glob("*.jpg"))]
    with torch.inference_mode():  # warm-up
        backend.cnn(preprocess(images[:batch]))
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, n, batch):
            backend.cnn(preprocess(images[i:i + batch]))
    raw_s = time.perf_counter() - t0
    del images

    services = build_services(Settings(data_dir=work / "data", batch_size=batch), backend=backend)
    t0 = time.perf_counter()
    report = ingest_folder(services, work / "photos")
    pipe_s = time.perf_counter() - t0
    assert report.added == n, report.summary()
    return {"n": n, "raw_images_per_s": n / raw_s, "pipeline_images_per_s": n / pipe_s,
            "ratio": (n / pipe_s) / (n / raw_s), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[96, 192])
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--child", type=int, default=None)
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    if args.child is not None:
        print(json.dumps(child(args.child, size, args.batch)))
        return
    runs = []
    for n in args.n:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--size", args.size, "--batch", str(args.batch)],
                             capture_output=True, text=True, check=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    ratios = [r["ratio"] for r in runs]
    result = {
        "bench": "ingest", "image_size": args.size, "batch": args.batch, "runs": runs,
        "ratio_min": min(ratios), "target_ratio": 0.8, "meets_target": min(ratios) >= 0.8,
        "rss_growth_mb": runs[-1]["peak_rss_mb"] - runs[0]["peak_rss_mb"],
        "rss_flat": runs[-1]["peak_rss_mb"] <= runs[0]["peak_rss_mb"] * 1.15,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
