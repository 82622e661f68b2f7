"""What each photo-facts source costs per photo, measured in one run on the real ingest path.

    python bench/bench_facts_cost.py [--set eval|phone ...] [--limit N] [--batch 16] [--runtime torch|onnx]

For each photo set (`eval`: tests/data/eval/photos; `phone`: the 4032x3024 JPEGs bench/bench_ingest.py
writes to /tmp/photolore-bench-ingest-photos/4032x3024-96) the photos are decoded as ingest decodes
them (Settings.decode_max_side), passed through the bundled backend's `encode` in batches with a
FactsExtractor that has the default people detector and OCR, and the extractor's own clocks
(FactsExtractor.seconds, RapidOCRReader.seconds) say how the facts' time splits: shrink (the 640 px
working copy), people (face detector), text check (RapidOCR's detector at 320 px), OCR (full pass,
only where the check fired; averaged over all photos), colours, cues, scene rules, region words,
objects, caption; plus the CNN forward pass (with its preprocessing), the facts vectors and the
caption embedding, timed around the backend's own calls. Milliseconds per photo, one JSON object;
`facts_ms_without_text` sums what facts cost an ingest without OCR (every source but the text check
and OCR, plus the facts vectors). The facts term cache
(core.facts.term_cache) starts empty, as in a library's first ingest: the backend gets a temporary
models folder (on ONNX Runtime linking the data dir's exports).
Timings are CPU-load dependent: compare runs made back to back, not against numbers from another day.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SETS = {"eval": ROOT / "tests" / "data" / "eval" / "photos", "phone": Path("/tmp/photolore-bench-ingest-photos/4032x3024-96")}


def _photos(folder: Path, limit: Optional[int]) -> list[Path]:
    if not folder.is_dir():
        raise SystemExit(f"{folder}: no such folder; for the phone-size set run "
                         "`python bench/bench_ingest.py` once (it writes the 4032x3024 JPEGs there)")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"))
    return paths[:limit] if limit else paths


def measure(backend, extractor, paths: Sequence[Path], batch: int, max_side: int) -> dict:
    """Milliseconds per photo for each part of an ingest's describe step on these photos."""
    from core.images import read_image_file
    from models.efficientnet_io import preprocess_array

    clocks = {"decode": 0.0, "preprocess": 0.0, "forward": 0.0, "facts vector": 0.0, "caption embedding": 0.0}
    before = dict(extractor.seconds)
    ocr = extractor.ocr
    ocr_before = dict(getattr(ocr, "seconds", {})), dict(getattr(ocr, "counts", {}))
    people, text = 0, 0
    for i in range(0, len(paths), batch):
        t0 = time.perf_counter()
        images = [read_image_file(p, max_side=max_side)[1].image for p in paths[i:i + batch]]
        t1 = time.perf_counter()
        x = preprocess_array(images)
        t2 = time.perf_counter()
        _, logits, regions = backend.image_forward(x)
        t3 = time.perf_counter()
        from models.bundled import _softmax

        descriptions = backend._describe(images, _softmax(logits), _softmax(regions))
        t4 = time.perf_counter()
        backend.facts_vectors(descriptions)
        t5 = time.perf_counter()
        backend.embed_texts([d.caption for d in descriptions])
        t6 = time.perf_counter()
        for key, a, b in (("decode", t0, t1), ("preprocess", t1, t2), ("forward", t2, t3), ("facts vector", t4, t5),
                          ("caption embedding", t5, t6)):
            clocks[key] += b - a
        people += sum(d.facts.people > 0 for d in descriptions)
        text += sum(bool(d.facts.text) for d in descriptions)
    n = len(paths)
    facts = {k: v - before.get(k, 0.0) for k, v in extractor.seconds.items()}
    if ocr is not None and hasattr(ocr, "seconds"):
        # the extractor's "text" clock holds the check and the full pass; split it with the reader's clocks
        facts.pop("text", None)
        for part in ("text check", "OCR"):
            facts[part] = ocr.seconds[part] - ocr_before[0].get(part, 0.0)
        fired = ocr.counts["OCR"] - ocr_before[1].get("OCR", 0)
    else:
        fired = None
    ms = {k: round(1000 * v / n, 2) for k, v in sorted(facts.items(), key=lambda kv: -kv[1])}
    model_ms = {k: round(1000 * v / n, 2) for k, v in clocks.items()}
    # issue #14's budget leaves OCR out, the cheap check included: what an ingest without OCR pays for facts
    without_text = sum(v for k, v in ms.items() if k not in ("OCR", "text check")) + model_ms["facts vector"]
    return {"photos": n, "facts_ms_per_photo": ms, "facts_ms_without_text": round(without_text, 2),
            "models_ms_per_photo": model_ms, "text_check_fired": fired, "photos_with_text": text, "photos_with_people": people}


def run(args) -> dict:
    from core.facts.extract import FactsExtractor
    from core.settings import Settings
    from models.bundled import BundledBackend

    settings = Settings()
    extractor = FactsExtractor(ocr=None if args.no_ocr else "auto")
    # A models folder of its own, so the facts term cache starts empty (a library's first ingest) and is
    # not left behind; on ONNX it links the data dir's exports, which are made once, not per run.
    models = Path(tempfile.mkdtemp(prefix="photolore-facts-cost-"))
    if args.runtime != "torch":
        (settings.models_dir / "onnx").mkdir(parents=True, exist_ok=True)
        (models / "onnx").symlink_to(settings.models_dir / "onnx")
    try:
        return _run(args, settings, extractor, BundledBackend(facts=extractor, runtime=args.runtime, cache_dir=models))
    finally:
        shutil.rmtree(models, ignore_errors=True)  # the link, not the exports it points to


def _run(args, settings, extractor, backend) -> dict:
    out: dict = {"bench": "facts_cost", "runtime": args.runtime, "ocr": not args.no_ocr, "decode_max_side": settings.decode_max_side,
                 "people_detector": getattr(extractor.people, "name", None), "load_notes": extractor.load_notes, "sets": {}}
    for name in args.set or ["eval", "phone"]:
        paths = _photos(SETS[name], args.limit)
        measure(backend, extractor, paths[:2], 2, settings.decode_max_side)  # warm-up: first-call costs are not per photo
        out["sets"][name] = measure(backend, extractor, paths, args.batch, settings.decode_max_side)
    return out


def main(argv: Optional[Sequence[str]] = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", action="append", choices=sorted(SETS), help="photo set(s) to measure (default: both)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many photos per set")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--no-ocr", action="store_true", help="facts without OCR and its text check (the #14 budget's setting)")
    ap.add_argument("--runtime", choices=("torch", "onnx"), default="torch", help="the CNN's and MiniLM's runtime")
    result = run(ap.parse_args(argv))
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
