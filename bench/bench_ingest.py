"""Ingest speed on phone-size photos vs the same photos small and vs the raw model, in one run.

    python bench/bench_ingest.py [--n 24 48] [--phone 4032x3024] [--small 320x240] [--batch 16] [--runtime torch]

Photos are made from the real demo photos (scikit-image / scikit-learn samples, core/demo.py; cropped, flipped, tinted
so every file differs, upscaled, with mild sensor-like noise, JPEG quality 90), once as phone-size
files and once at 320x240. Each (set, folder size) is ingested by `python -m core`-equivalent
code in a fresh process, so its peak RSS is its own. Per run:
  - pipeline_images_per_s: `ingest_folder` end to end (read, hash, decode, thumbnail, model,
    caption embedding, Chroma + SQLite writes);
  - raw_torch_images_per_s / ratio_to_raw_torch: the PyTorch image model alone on the same photos,
    already decoded and preprocessed to 224 px tensors, same batch size (the strictest baseline);
    raw_runtime_*: the same for the active runtime (ONNX Runtime with `--runtime onnx`);
  - raw_models_images_per_s / ratio_to_raw_models: the backend's whole job on photos already
    decoded (forward pass, photo facts: faces, text check and OCR, scene; MiniLM caption and facts
    embeddings): what ingest adds beyond the models is reading, hashing, decoding and writing;
  - peak_rss_mb: the child process's peak; ingest_peak_rss_mb: the peak from the start of
    ingest on (models loaded, the baselines' arrays freed; Linux's clear_refs): what a
    `python -m core ingest` run holds;
  - decode_ms_per_photo / decode_share: `read_batch` (read + hash + decode + thumbnail) timed on
    one thread, and that time as a share of the pipeline's wall time.
Targets (issue #16): phone/small >= 0.8, pipeline/raw torch >= 0.8 on phone photos, peak RSS
< 1.5 GB and flat between the two folder sizes, ONNX ingest >= 1.5x PyTorch ingest
(`--compare-onnx`). `--legacy` adds a run with the old full-size decode and one decode thread,
a baseline measured in the same run. Prints one JSON object. Every part shares the CPU with
whatever else runs: on a busy machine compare the parts of one run, not runs.
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
import core  # noqa: E402,F401  (sets the OpenMP wait policy before torch is imported, as the app does)


def sample_photos():
    """The real demo photos that ship with scikit-image and scikit-learn (RGB, PIL)."""
    import numpy as np
    from PIL import Image

    from core.demo import demo_sources

    return [Image.fromarray(np.asarray(load()).astype(np.uint8)).convert("RGB") for load in demo_sources().values()]


def make_photos(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> None:
    """n distinct JPEGs at `size` from the sample photos (same seed = same photos at any size)."""
    import numpy as np
    from PIL import Image, ImageOps

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sources = sample_photos()
    noise = np.tile(rng.normal(0.0, 4.0, (256, 256, 3)).astype(np.float32), (size[1] // 256 + 1, size[0] // 256 + 2, 1))
    for i in range(n):
        src = sources[i % len(sources)]
        w, h = src.size
        cw, ch = int(w * rng.uniform(0.7, 1.0)), int(h * rng.uniform(0.7, 1.0))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        img = src.crop((x0, y0, x0 + cw, y0 + ch))
        if rng.random() < 0.5:
            img = ImageOps.mirror(img)
        img = ImageOps.fit(img, size, Image.Resampling.BICUBIC)
        arr = np.asarray(img, dtype=np.float32) * rng.uniform(0.85, 1.15, 3)  # a per-photo tint
        arr += np.roll(noise, int(rng.integers(0, 256)), axis=1)[: size[1], : size[0]]  # sensor-like noise: real file sizes
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.jpg", quality=90)


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) so that it measures what follows; Linux only."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def child(folder: Path, batch: int, runtime: str, legacy: bool, warm: Path) -> dict:
    import torch

    from core.images import decode_image
    from core.ingest import ingest_folder, read_batch, scan
    from core.services import build_services
    from core.settings import Settings
    from models.bundled import BundledBackend
    from models.efficientnet import preprocess

    extra = {"decode_max_side": 16384, "decode_workers": 1} if legacy else {}
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="photolore-bench-")), batch_size=batch, image_runtime=runtime, **extra)
    backend = BundledBackend("cpu", runtime=runtime, cache_dir=settings.models_dir)
    files = sorted(folder.glob("*.jpg"))
    n = len(files)

    # Raw model speed: decoded and preprocessed outside the timing; PyTorch always (the issue's
    # baseline), and the active runtime when it is another one.
    tensors = [preprocess([decode_image(f.read_bytes(), max_side=settings.decode_max_side).image for f in files[i:i + batch]])
               for i in range(0, n, batch)]

    def raw_seconds(forward) -> float:
        forward(tensors[0])  # warm-up
        t0 = time.perf_counter()
        for x in tensors:
            forward(x)
        return time.perf_counter() - t0

    with torch.inference_mode():
        raw_torch_s = raw_seconds(backend.cnn.forward_with_regions)  # what ingest runs: the facts read the regions
    raw_s = raw_seconds(backend.image_forward) if backend.runtime != "torch" else raw_torch_s
    del tensors
    # The model's whole job per photo, on photos already decoded: the forward pass, the photo facts
    # (face detector, text check and OCR, scene rules) and the MiniLM caption + facts embeddings.
    # One batch decoded at a time, outside the timing, so the decoded photos never pile up in memory.
    backend.encode([decode_image(f.read_bytes(), max_side=settings.decode_max_side).image for f in files[:2]])  # loads the detectors
    raw_models_s = 0.0
    for i in range(0, n, batch):
        images = [decode_image(f.read_bytes(), max_side=settings.decode_max_side).image for f in files[i:i + batch]]
        t0 = time.perf_counter()
        backend.encode(images)
        raw_models_s += time.perf_counter() - t0
    del images

    entries = list(scan(folder))
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        read_batch(entries[i:i + batch], max_pixels=settings.max_image_pixels, max_side=settings.decode_max_side, thumb_size=settings.thumb_size)
    decode_s = time.perf_counter() - t0

    import gc

    gc.collect()
    # From here the peak RSS is ingest's own (the models are loaded; the raw baselines' arrays are gone).
    reset = _reset_peak_rss()
    services = build_services(settings, backend=backend)
    # Warm-up, as the raw forward has one: the first ingest creates the Chroma collections and the
    # text model's first call allocates; a real folder of thousands of photos pays that once.
    # The warm-up photos are made by the parent: making them here would import scikit-learn and scipy.
    ingest_folder(services, warm)
    t0 = time.perf_counter()
    report = ingest_folder(services, folder)
    pipe_s = time.perf_counter() - t0
    assert report.added == n, report.summary()
    return {"n": n, "runtime": backend.runtime, "legacy": legacy, "pipeline_images_per_s": round(n / pipe_s, 2),
            "raw_torch_images_per_s": round(n / raw_torch_s, 2), "ratio_to_raw_torch": round(raw_torch_s / pipe_s, 3),
            "raw_runtime_images_per_s": round(n / raw_s, 2), "ratio_to_raw_runtime": round(raw_s / pipe_s, 3),
            "raw_models_images_per_s": round(n / raw_models_s, 2), "ratio_to_raw_models": round(raw_models_s / pipe_s, 3),
            "decode_ms_per_photo": round(1000 * decode_s / n, 1), "decode_share": round(decode_s / pipe_s, 3),
            "torch_threads": torch.get_num_threads(),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "ingest_peak_rss_mb": _peak_rss_mb() if reset else None}


def run_child(folder: Path, args, legacy: bool = False, runtime: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", str(folder), "--batch", str(args.batch), "--runtime", runtime or args.runtime,
           "--warm", args.warm]
    out = subprocess.run(cmd + (["--legacy"] if legacy else []), capture_output=True, text=True,
                         env=dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False"))
    if out.returncode != 0:
        raise SystemExit(f"bench child failed for {folder}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[24, 48], help="folder sizes (peak RSS must not grow between them)")
    ap.add_argument("--phone", default="4032x3024")
    ap.add_argument("--small", default="320x240")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--runtime", default="torch", choices=["torch", "onnx"], help="image model runtime")
    ap.add_argument("--compare-onnx", action="store_true", help="also ingest the largest phone folder with the ONNX runtime")
    ap.add_argument("--legacy", action="store_true", help="also run the old full-size decode on the largest phone folder")
    ap.add_argument("--photos", default=str(Path(tempfile.gettempdir()) / "photolore-bench-ingest-photos"),
                    help="where the generated photos are kept between runs")
    ap.add_argument("--child", default=None)
    ap.add_argument("--warm", default=None)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(child(Path(args.child), args.batch, args.runtime, args.legacy, Path(args.warm))))
        return

    work = Path(tempfile.mkdtemp(prefix="photolore-bench-photos-"))
    args.warm = str(work / "warm-up")
    make_photos(Path(args.warm), 2, (320, 240), seed=99)
    sizes = {"phone": tuple(int(v) for v in args.phone.split("x")), "small": tuple(int(v) for v in args.small.split("x"))}
    runs: dict[str, list[dict]] = {"phone": [], "small": []}
    for kind, size in sizes.items():
        cache = Path(args.photos) / f"{size[0]}x{size[1]}-{max(args.n)}"
        if len(list(cache.glob("*.jpg"))) < max(args.n):  # generating 12 MP JPEGs takes a while: reuse them
            make_photos(cache, max(args.n), size)
        os.symlink(cache, work / kind)
        for n in sorted(args.n):
            folder = work / f"{kind}-{n}"
            folder.mkdir()
            for f in sorted((work / kind).glob("*.jpg"))[:n]:
                os.link(f, folder / f.name)
            runs[kind].append(run_child(folder, args))
    biggest = work / f"phone-{max(args.n)}"
    phone, small = runs["phone"][-1], runs["small"][-1]
    result = {
        "bench": "ingest", "phone_size": args.phone, "small_size": args.small, "batch": args.batch,
        "phone_file_mb": round(sum(f.stat().st_size for f in biggest.glob("*.jpg")) / max(args.n) / 1e6, 2),
        "runs": runs,
        "phone_over_small": round(phone["pipeline_images_per_s"] / small["pipeline_images_per_s"], 3),
        "phone_ratio_to_raw_torch": phone["ratio_to_raw_torch"],
        "phone_ratio_to_raw_models": phone["ratio_to_raw_models"],
        "load_avg_1m": round(os.getloadavg()[0], 1),
        "phone_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["phone"]),
        "phone_ingest_peak_rss_mb": max(r["ingest_peak_rss_mb"] or 0 for r in runs["phone"]),
        "rss_growth_mb": runs["phone"][-1]["peak_rss_mb"] - runs["phone"][0]["peak_rss_mb"],
        "ingest_rss_growth_mb": (runs["phone"][-1]["ingest_peak_rss_mb"] or 0) - (runs["phone"][0]["ingest_peak_rss_mb"] or 0),
    }
    if args.legacy:
        legacy = run_child(biggest, args, legacy=True)
        result["legacy_full_decode"] = legacy
        result["speedup_over_legacy"] = round(phone["pipeline_images_per_s"] / legacy["pipeline_images_per_s"], 2)
    if args.compare_onnx:
        onnx = run_child(biggest, args, runtime="onnx")
        result["onnx"] = onnx
        result["onnx_over_torch_ingest"] = round(onnx["pipeline_images_per_s"] / phone["pipeline_images_per_s"], 3)
    result["targets"] = {"phone_over_small": 0.8, "phone_ratio_to_raw_torch": 0.8, "peak_rss_mb": 1500, "onnx_over_torch_ingest": 1.5}
    result["meets_target"] = (result["phone_over_small"] >= 0.8 and result["phone_ratio_to_raw_torch"] >= 0.8
                              and result["phone_ingest_peak_rss_mb"] < 1500
                              and result["ingest_rss_growth_mb"] <= 0.15 * result["phone_ingest_peak_rss_mb"])
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
