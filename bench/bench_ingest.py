"""Ingest speed on phone-size photos vs the same photos small and vs the raw model, in one run.

    python bench/bench_ingest.py [--compare-onnx] [--cli] [--repeat 1] [--n 48 96] [--phone 4032x3024] [--small 320x240] [--batch 16] [--runtime torch]

Photos are made from the real demo photos (scikit-image / scikit-learn samples, core/demo.py; cropped, flipped, tinted
so every file differs, upscaled, with mild sensor-like noise, JPEG quality 90), once as phone-size
files and once at 320x240. Each (set, folder size, runtime) is ingested by `python -m core`-equivalent
code in a fresh process, so its peak RSS is its own; with `--compare-onnx` every folder is ingested
on PyTorch and on ONNX Runtime one after the other (the ONNX process never imports torch: the
exports are made once, first, by another process). Per run (`runs`):
  - pipeline_images_per_s: `ingest_folder` end to end (read, hash, decode, thumbnail, model,
    photo facts, caption and facts embeddings, Chroma + SQLite writes);
  - raw_forward_images_per_s / ratio_to_raw_forward: the image model alone on the run's runtime,
    on the same photos already decoded and preprocessed to 224 px, same batch size;
  - raw_models_images_per_s / ratio_to_raw_models: the backend's whole job on photos already
    decoded (forward pass, photo facts: faces, text check and OCR, scene; MiniLM caption and facts
    embeddings): what ingest adds beyond the models is reading, hashing, decoding and writing;
  - ingest_peak_rss_mb: the process's peak RSS when ingest ends (models, detectors, Chroma, the
    batches in flight; the baselines run after it): what a `python -m core ingest` run holds;
    peak_rss_mb: the peak after the baselines too; torch_imported: whether torch was ever imported;
  - decode_ms_per_photo / decode_share: `read_batch` (read + hash + decode + thumbnail) timed on
    one thread, and that time as a share of the pipeline's wall time.
`issue_targets` holds issue #16's numbers per runtime, each with its target: phone/small ingest
>= 0.8; ingest of phone photos >= 0.8x the raw PyTorch forward of the same photos (for ONNX,
PyTorch's forward measured by the PyTorch process of the same folder); ingest peak RSS < 1.5 GB
and growing at most 15% between the two folder sizes; ONNX ingest >= 1.5x PyTorch ingest.
`--legacy` adds a run with the old full-size decode and one decode thread. `--cli` adds whole
`python -m core ingest` processes with default settings (`cli_default_settings`: wall time from
interpreter start, peak RSS, whether torch was imported), including the first ingest ever. Prints one JSON
object. Every part shares the CPU with whatever else runs: on a busy machine compare the parts
of one run, not runs (`load_avg_1m` at start and end, and per run).
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


def prepare_onnx(models_dir: Path) -> dict:
    """Export both models to ONNX once (this needs torch), so the ONNX children never import it."""
    from models.bundled import BundledBackend

    b = BundledBackend("cpu", runtime="onnx", cache_dir=models_dir, facts=None)
    return {"image": [b.runtime, b.runtime_reason], "text": [b.text_runtime, b.text_runtime_reason]}


def child(folder: Path, batch: int, runtime: str, legacy: bool, warm: Path, models_dir: Path) -> dict:
    from core.images import decode_image
    from core.ingest import ingest_folder, read_batch, scan
    from core.services import build_services
    from core.settings import Settings
    from models.bundled import BundledBackend
    from models.efficientnet_io import preprocess_array
    from models.onnx_runtime import cpu_threads

    extra = {"decode_max_side": 16384, "decode_workers": 1} if legacy else {}
    data = Path(tempfile.mkdtemp(prefix="photolore-bench-"))
    (data / "models").symlink_to(models_dir)  # the ONNX exports are made once per bench run (prepare_onnx)
    settings = Settings(data_dir=data, batch_size=batch, image_runtime=runtime, **extra)
    backend = BundledBackend("cpu", runtime=runtime, cache_dir=settings.models_dir)
    if runtime == "onnx" and (backend.runtime, backend.text_runtime) != ("onnx", "onnx"):
        raise SystemExit(f"ONNX Runtime not used: {backend.runtime_reason} / {backend.text_runtime_reason}")
    files = sorted(folder.glob("*.jpg"))
    n = len(files)

    # Ingest first, so that this process's peak RSS is what a `python -m core ingest` run holds
    # (models, detectors, Chroma, the batches in flight), untouched by the baselines below.
    services = build_services(settings, backend=backend)
    # Warm-up, as the raw forward has one: the first ingest creates the Chroma collections, loads the
    # detectors and the text model's first call allocates; a real folder of thousands of photos pays that once.
    # The warm-up photos are made by the parent: making them here would import scikit-learn and scipy.
    ingest_folder(services, warm)
    t0 = time.perf_counter()
    report = ingest_folder(services, folder)
    pipe_s = time.perf_counter() - t0
    # a generated photo may come out a near duplicate of another (two crops of one demo photo): read, not stored
    assert report.added + len(report.near_duplicates) == n, report.summary()
    ingest_peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    # Raw model speed: the image model alone on the active runtime, on photos decoded and
    # preprocessed outside the timing. The PyTorch child's number is the issue's baseline; the
    # ONNX child never imports torch, so its ratio to PyTorch's forward is taken by the parent.
    arrays = [preprocess_array([decode_image(f.read_bytes(), max_side=settings.decode_max_side).image for f in files[i:i + batch]])
              for i in range(0, n, batch)]
    backend.image_forward(arrays[0])  # warm-up
    t0 = time.perf_counter()
    for x in arrays:
        backend.image_forward(x)  # what ingest runs: the facts read the regions too
    raw_s = time.perf_counter() - t0
    del arrays
    # The model's whole job per photo, on photos already decoded: the forward pass, the photo facts
    # (face detector, text check and OCR, scene rules) and the MiniLM caption + facts embeddings.
    # One batch decoded at a time, outside the timing, so the decoded photos never pile up in memory.
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
    torch_threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    return {"n": n, "runtime": backend.runtime, "text_runtime": backend.text_runtime, "legacy": legacy,
            "pipeline_images_per_s": round(n / pipe_s, 2),
            "raw_forward_images_per_s": round(n / raw_s, 2), "ratio_to_raw_forward": round(raw_s / pipe_s, 3),
            "raw_models_images_per_s": round(n / raw_models_s, 2), "ratio_to_raw_models": round(raw_models_s / pipe_s, 3),
            "decode_ms_per_photo": round(1000 * decode_s / n, 1), "decode_share": round(decode_s / pipe_s, 3),
            "torch_imported": "torch" in sys.modules, "torch_threads": torch_threads, "onnx_threads": cpu_threads(),
            "ingest_peak_rss_mb": ingest_peak, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


# What `python -m core ingest FOLDER` holds with default settings (backend auto, runtime auto),
# start to end: interpreter, imports, backend choice, models, ingest. Printed as the last line.
CLI_PROBE = ("import json, resource, sys; from core.cli import main; rc = main(sys.argv[1:]); "
             "print(json.dumps({'rc': rc, 'torch_imported': 'torch' in sys.modules, 'open_clip_imported': 'open_clip' in sys.modules, "
             "'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))")


def cli_run(data_dir: Path, folder: Path) -> dict:
    env = {k: v for k, v in _child_env().items() if not k.startswith("PHOTOLORE_") and k not in ("CHROMA_HOST", "CHROMA_PORT")}
    env["PHOTOLORE_DATA_DIR"] = str(data_dir)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CLI_PROBE, "ingest", str(folder)], capture_output=True, text=True, env=env,
                         cwd=Path(__file__).resolve().parents[1])
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"`python -m core ingest {folder}` failed:\n{out.stderr[-3000:]}")
    n = len(list(folder.glob("*.jpg")))
    return json.loads(out.stdout.strip().splitlines()[-1]) | {"photos": n, "wall_s": round(wall, 2), "images_per_s": round(n / wall, 2),
                                                               "load_avg_1m": round(os.getloadavg()[0], 1)}


def cli_runs(work: Path, first_folder: Path, folder: Path) -> dict:
    """`python -m core ingest` with default settings, whole processes: the first ingest ever (of the
    small photos: it times ONNX Runtime against PyTorch on its first batch and exports the models), then the same phone folder into two fresh
    libraries sharing those models: once as every start ran before the CLIP weight sources were cached
    (open_clip, and with it torch, imported only to find no weights) and once as now."""
    first = work / "cli-first"
    result = {"first_ingest_ever": cli_run(first, first_folder)}
    sources = first / "models" / "clip" / "pretrained-sources.json"
    for name in ("clip_table_read_at_start", "default"):
        data = work / f"cli-{name}"
        data.mkdir()
        (data / "models").symlink_to(first / "models")
        if name == "clip_table_read_at_start":
            sources.unlink(missing_ok=True)
        result[name] = cli_run(data, folder)
    return result


def _child_env() -> dict:
    return dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False")


def run_child(folder: Path, args, legacy: bool = False, runtime: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", str(folder), "--batch", str(args.batch), "--runtime", runtime or args.runtime,
           "--warm", args.warm, "--models", args.models]
    out = subprocess.run(cmd + (["--legacy"] if legacy else []), capture_output=True, text=True, env=_child_env())
    if out.returncode != 0:
        raise SystemExit(f"bench child failed for {folder}:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["load_avg_1m"] = round(os.getloadavg()[0], 1)
    return result


def _best(runs: list[dict], n: int, key: str = "pipeline_images_per_s") -> dict:
    return max((r for r in runs if r["n"] == n), key=lambda r: r[key])


def _summary(runs: dict[str, list[dict]], torch_runs: dict[str, list[dict]] | None) -> dict:
    """The issue's numbers for one runtime: phone vs small ingest, ingest vs PyTorch's raw forward on
    the same photos (from the PyTorch children of the same folder), peak RSS at both folder sizes.
    With --repeat, speeds are the best of the repeats (load from other jobs only ever slows a run)
    and RSS the worst."""
    sizes = sorted({r["n"] for r in runs["phone"]})
    phone, small = _best(runs["phone"], sizes[-1]), _best(runs["small"], max(r["n"] for r in runs["small"]))
    raw_torch = _best(torch_runs["phone"], sizes[-1], "raw_forward_images_per_s")["raw_forward_images_per_s"] if torch_runs else None
    rss = {str(n): max(r["ingest_peak_rss_mb"] for r in runs["phone"] if r["n"] == n) for n in sizes}
    return {"runtime": [phone["runtime"], phone["text_runtime"]], "phone_images_per_s": phone["pipeline_images_per_s"],
            "small_images_per_s": small["pipeline_images_per_s"],
            "phone_over_small": round(phone["pipeline_images_per_s"] / small["pipeline_images_per_s"], 3),
            "raw_torch_forward_images_per_s": raw_torch,
            "ingest_over_raw_torch_forward": round(phone["pipeline_images_per_s"] / raw_torch, 3) if raw_torch else None,
            "ingest_over_raw_own_forward": phone["ratio_to_raw_forward"], "ingest_over_raw_models": phone["ratio_to_raw_models"],
            "ingest_peak_rss_mb": rss, "ingest_rss_growth_mb": rss[str(sizes[-1])] - rss[str(sizes[0])],
            "torch_imported": any(r["torch_imported"] for r in runs["phone"] + runs["small"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    # 48 and 96: ingest reads up to three batches of 16 ahead, so below 48 photos the peak still
    # grows with the folder (the queue filling up), which is not the growth this checks for
    ap.add_argument("--n", type=int, nargs="+", default=[48, 96], help="folder sizes (peak RSS must not grow between them)")
    ap.add_argument("--phone", default="4032x3024")
    ap.add_argument("--small", default="320x240")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--runtime", default="torch", choices=["torch", "onnx"], help="runtime of the main runs (the issue's baseline: torch)")
    ap.add_argument("--compare-onnx", action="store_true", help="also ingest every folder on ONNX Runtime, torch-free, alternating with PyTorch")
    ap.add_argument("--repeat", type=int, default=1, help="ingest every folder this many times per runtime; speeds: the best run")
    ap.add_argument("--legacy", action="store_true", help="also run the old full-size decode on the largest phone folder")
    ap.add_argument("--cli", action="store_true", help="also time whole `python -m core ingest` processes with default settings")
    ap.add_argument("--photos", default=str(Path(tempfile.gettempdir()) / "photolore-bench-ingest-photos"),
                    help="where the generated photos are kept between runs")
    ap.add_argument("--child", default=None)
    ap.add_argument("--prepare", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--warm", default=None)
    ap.add_argument("--models", default=None)
    args = ap.parse_args()
    if args.prepare is not None:
        print(json.dumps(prepare_onnx(Path(args.prepare))))
        return
    if args.child is not None:
        print(json.dumps(child(Path(args.child), args.batch, args.runtime, args.legacy, Path(args.warm), Path(args.models))))
        return

    load_start = round(os.getloadavg()[0], 1)
    work = Path(tempfile.mkdtemp(prefix="photolore-bench-photos-"))
    args.warm = str(work / "warm-up")
    args.models = str(work / "models")
    make_photos(Path(args.warm), 2, (320, 240), seed=99)
    runtimes = [args.runtime] + (["onnx"] if args.compare_onnx and args.runtime != "onnx" else [])
    exports = None
    if "onnx" in runtimes:
        out = subprocess.run([sys.executable, __file__, "--prepare", args.models], capture_output=True, text=True, env=_child_env())
        if out.returncode != 0:
            raise SystemExit(f"the ONNX export failed:\n{out.stderr[-3000:]}")
        exports = json.loads(out.stdout.strip().splitlines()[-1])
    sizes = {"phone": tuple(int(v) for v in args.phone.split("x")), "small": tuple(int(v) for v in args.small.split("x"))}
    runs: dict[str, dict[str, list[dict]]] = {rt: {"phone": [], "small": []} for rt in runtimes}
    for kind, size in sizes.items():
        cache = Path(args.photos) / f"{size[0]}x{size[1]}-{max(args.n)}"
        if len(list(cache.glob("*.jpg"))) < max(args.n):  # generating 12 MP JPEGs takes a while: reuse them
            make_photos(cache, max(args.n), size)
        os.symlink(cache, work / kind)
        # small photos only at the largest size: the RSS question is asked of phone photos
        for n in sorted(args.n) if kind == "phone" else [max(args.n)]:
            folder = work / f"{kind}-{n}"
            folder.mkdir()
            for f in sorted((work / kind).glob("*.jpg"))[:n]:
                os.link(f, folder / f.name)
            for _ in range(args.repeat):
                for rt in runtimes:  # alternating, so a change in the machine's load hits both runtimes alike
                    runs[rt][kind].append(run_child(folder, args, runtime=rt))
    result = {"bench": "ingest", "phone_size": args.phone, "small_size": args.small, "batch": args.batch,
              "phone_file_mb": round(sum(f.stat().st_size for f in (work / f"phone-{max(args.n)}").glob("*.jpg")) / max(args.n) / 1e6, 2),
              "load_avg_1m": [load_start, round(os.getloadavg()[0], 1)], "cpus": os.cpu_count(), "onnx_exports": exports,
              "runs": runs}
    for rt in runtimes:
        result[rt] = _summary(runs[rt], runs.get("torch"))
    if args.legacy:
        legacy = run_child(work / f"phone-{max(args.n)}", args, legacy=True)
        result["legacy_full_decode"] = legacy
        result["speedup_over_legacy"] = round(result[runtimes[0]]["phone_images_per_s"] / legacy["pipeline_images_per_s"], 2)
    if args.cli:
        result["cli_default_settings"] = cli_runs(work, work / f"small-{max(args.n)}", work / f"phone-{max(args.n)}")
    # The issue's targets, each with what this run measured, per runtime.
    targets = {"phone_over_small": (">=", 0.8), "ingest_over_raw_torch_forward": (">=", 0.8), "ingest_peak_rss_mb": ("<", 1500),
               "ingest_rss_growth_share": ("<=", 0.15)}
    issue: dict[str, dict] = {}
    for name, (op, target) in targets.items():
        row: dict = {"target": f"{op} {target}"}
        for rt in runtimes:
            s = result[rt]
            value = (max(s["ingest_peak_rss_mb"].values()) if name == "ingest_peak_rss_mb"
                     else round(s["ingest_rss_growth_mb"] / max(s["ingest_peak_rss_mb"].values()), 3) if name == "ingest_rss_growth_share"
                     else s[name])
            met = None if value is None else value >= target if op == ">=" else value < target if op == "<" else value <= target
            row[rt] = {"value": value, "met": met}
        issue[name] = row
    if "onnx" in runtimes and "torch" in runtimes:
        value = round(result["onnx"]["phone_images_per_s"] / result["torch"]["phone_images_per_s"], 3)
        issue["onnx_over_torch_ingest"] = {"target": ">= 1.5", "value": value, "met": value >= 1.5}
    result["issue_targets"] = issue
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
