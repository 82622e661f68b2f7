"""Today's facts (no detectors, facts version 4) beside the detector facts (version 5), in one run.

    python bench/bench_objects.py [--skip-search] [--skip-chat] [--skip-ingest] [--phone N] [--json-out FILE]

On tests/data/eval/photos, each variant's FactsExtractor (same people detector and OCR; the v4 one
without the object and expression models) describes every photo, and the facts are scored against
the hand labels:
- objects: precision / recall of the COCO labels asserted (core.facts.detected: sure detections)
  against tests/data/eval/coco_objects.csv, micro over (photo, label) pairs, persons left out (they
  are the people metrics); today's facts have no COCO labels, so their object words are read through
  the same word table (a "sofa" word counts as a couch); exact counts where both have the label;
- people: yes/no and exact count (0, 1, 2, ... 6, 6+ alike) against photos.csv `people`;
- scene: accuracy against photos.csv `scene` as bench_understand scores it;
- detector cost: CPU milliseconds per photo of the detector alone, one thread, at its built size;
- ingest: phone-size (4032x3024) photos per second through `python -m core ingest` with the
  detectors off and on, alternated, best of two each, and their ratio (issue #24: >= 0.85);
- search and chat: bench_understand (success@1, precision@3, mAP, both halves) and
  bench_chat --no-llm (count accuracy, photos right) run as subprocesses with PHOTOLORE_DETECTORS
  false and true.
One JSON object. Timings depend on the machine's load: read the ratios of one run.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parents[1]
COCO_CSV = ROOT / "tests" / "data" / "eval" / "coco_objects.csv"


def load_coco_labels(path: Path = COCO_CSV) -> dict[str, dict[str, int]]:
    """filename -> {COCO label: count} (a count written "40+" reads as 40)."""
    from models.objects import COCO_LABELS

    out: dict[str, dict[str, int]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            labels: dict[str, int] = {}
            for part in filter(None, (p.strip() for p in (row.get("coco") or "").split(";"))):
                label, _, n = part.rpartition(":")
                if label not in COCO_LABELS:
                    raise SystemExit(f"{path}: {row['filename']}: {label!r} is not a COCO label")
                labels[label] = int(n.rstrip("+"))
            out[row["filename"]] = labels
    return out


def asserted_labels(facts) -> dict[str, int]:
    """The COCO labels (persons aside) a photo's facts assert, with counts where known."""
    from core.facts.detected import OBJECT_MIN, words_of
    from models.objects import COCO_LABELS

    if facts.detector:
        return {k: n for k, n in facts.object_counts.items() if k != "person"}
    words = {w for w, s in facts.objects if s >= OBJECT_MIN}  # today's facts: ImageNet words, read as COCO labels
    return {label: 0 for label in COCO_LABELS if label != "person" and words & set(words_of(label))}


def score_objects(facts_by_name: dict, truth: dict[str, dict[str, int]]) -> dict:
    tp = fp = fn = exact = counted = 0
    per_label: dict[str, list[int]] = {}
    for name, facts in facts_by_name.items():
        want = {k: n for k, n in truth.get(name, {}).items() if k != "person"}
        got = asserted_labels(facts)
        for label in set(want) | set(got):
            row = per_label.setdefault(label, [0, 0, 0])
            if label in want and label in got:
                tp += 1
                row[0] += 1
                if got[label]:
                    counted += 1
                    exact += got[label] == want[label]
            elif label in got:
                fp += 1
                row[1] += 1
            else:
                fn += 1
                row[2] += 1
    worst_fp = sorted(((k, v[1]) for k, v in per_label.items() if v[1]), key=lambda kv: -kv[1])[:8]
    worst_fn = sorted(((k, v[2]) for k, v in per_label.items() if v[2]), key=lambda kv: -kv[1])[:8]
    return {"precision": round(tp / max(tp + fp, 1), 3), "recall": round(tp / max(tp + fn, 1), 3),
            "true_positives": tp, "false_positives": fp, "misses": fn,
            "exact_count_rate": round(exact / counted, 3) if counted else None,
            "most_false_positives": worst_fp, "most_missed": worst_fn}


def score_people_and_scenes(facts_by_name: dict, photos) -> dict:
    from bench.bench_understand import facts_scene_name

    by = {p.filename: p for p in photos}
    rows = [(by[n], f) for n, f in facts_by_name.items() if n in by]
    cap = lambda n: min(int(n), 7)  # noqa: E731 - 7 stands for "many"
    return {"people_yes_no": round(sum((f.people > 0) == (p.people > 0) for p, f in rows) / len(rows), 4),
            "people_exact": round(sum(cap(f.people) == cap(p.people) for p, f in rows) / len(rows), 4),
            "people_wrong": [p.filename for p, f in rows if cap(f.people) != cap(p.people)],
            "scene_accuracy": round(sum(facts_scene_name(f) == p.scene for p, f in rows) / len(rows), 4)}


def describe_all(extractor, backend, paths: Sequence[Path]) -> dict:
    from core.images import load_rgb

    out = {}
    for i in range(0, len(paths), 8):
        chunk = paths[i:i + 8]
        images = [load_rgb(p) for p in chunk]
        _, probs, regions = backend._forward(images)
        for p, f in zip(chunk, extractor.extract(images, probs, regions)):
            out[p.name] = f
    return out


def detector_cpu_ms(detector, paths: Sequence[Path]) -> dict:
    from core.facts.extract import SMALL_EDGE, _shrunk
    from core.images import load_rgb

    smalls = [_shrunk(load_rgb(p), SMALL_EDGE) for p in paths]
    detector.detect(smalls[0])  # first-call costs are not per photo
    t0, c0 = time.perf_counter(), time.process_time()
    for im in smalls:
        detector.detect(im)
    n = len(smalls)
    return {"cpu_ms_per_photo": round(1000 * (time.process_time() - c0) / n, 1),
            "wall_ms_per_photo": round(1000 * (time.perf_counter() - t0) / n, 1), "input_size": detector.size}


def quality(args) -> dict:
    from bench.evalset import EVAL_DIR, load_eval_photos
    from core.facts.extract import FactsExtractor
    from core.settings import Settings
    from models.bundled import BundledBackend

    photos = load_eval_photos()
    paths = [EVAL_DIR / "photos" / p.filename for p in photos]
    truth = load_coco_labels()
    backend = BundledBackend(facts=None)
    folder = Settings().detectors_dir
    v5 = FactsExtractor(detectors_dir=folder)
    if v5.objects is None:
        raise SystemExit(f"the detectors are not built in {folder}: run `python -m core detectors build`")
    v4 = FactsExtractor(people=v5.people, ocr=v5.ocr, objects=None, expressions=None)
    out: dict = {}
    for name, ex in (("facts_v4", v4), ("facts_v5", v5)):
        facts = describe_all(ex, backend, paths)
        out[name] = {"objects": score_objects(facts, truth), **score_people_and_scenes(facts, photos)}
    out["detector"] = detector_cpu_ms(v5.objects, paths)
    return out


def _phone_ingest(n: int) -> dict:
    from bench.bench_ingest import make_photos

    folder = Path(tempfile.gettempdir()) / f"photolore-bench-objects-phone-{n}"
    if len(list(folder.glob("*.jpg"))) != n:
        shutil.rmtree(folder, ignore_errors=True)
        make_photos(folder, n, (4032, 3024))
    runs: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(2):
        for variant in ("off", "on"):
            data = Path(tempfile.mkdtemp(prefix="photolore-bench-objects-"))
            env = dict(os.environ, PHOTOLORE_DATA_DIR=str(data), PHOTOLORE_DETECTORS="true" if variant == "on" else "false")
            try:
                # warm: models load before the clock (a separate ingest of two photos into the same library)
                t0 = time.perf_counter()
                res = subprocess.run([sys.executable, "-m", "core", "ingest", str(folder), "--json"], cwd=ROOT, env=env,
                                     capture_output=True, text=True, timeout=3600)
                if res.returncode != 0:
                    raise SystemExit(f"ingest failed:\n{res.stderr[-2000:]}")
                runs[variant].append(n / (time.perf_counter() - t0))
            finally:
                shutil.rmtree(data, ignore_errors=True)
    best = {k: round(max(v), 3) for k, v in runs.items()}
    return {"photos": n, "photos_per_s": best, "ratio_on_to_off": round(best["on"] / best["off"], 3),
            "note": "whole `python -m core ingest` runs (model loading included), best of two each, alternated"}


def _sub_bench(script: str, extra: Sequence[str], detectors: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="photolore-bench-objects-") as tmp:
        out = Path(tmp) / "out.json"
        env = dict(os.environ, PHOTOLORE_DETECTORS="true" if detectors else "false")
        cmd = [sys.executable, str(ROOT / "bench" / script), *extra]
        res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=7200)
        if res.returncode != 0:
            raise SystemExit(f"{script} failed:\n{res.stderr[-2000:]}")
        return json.loads(res.stdout[res.stdout.index("{"):]) if not out.exists() else json.loads(out.read_text())


def search_and_chat(args) -> dict:
    out: dict = {}
    for detectors in (False, True):
        key = "facts_v5" if detectors else "facts_v4"
        row: dict = {}
        if not args.skip_search:
            u = _sub_bench("bench_understand.py", ["--no-topics"], detectors)
            s = u["search"]["search"]
            row["search"] = {"success_at_1": s["success_at_1"], "precision_at_3": s["precision_at_3"], "map": s["map"],
                             "held_out": {k: s["halves"]["held_out"][k] for k in ("success_at_1", "precision_at_3", "map")},
                             "tune": {k: s["halves"]["tune"][k] for k in ("success_at_1", "precision_at_3", "map")}}
            row["ingest_eval_seconds_per_photo"] = u["ingest"]["seconds_per_photo"]
        if not args.skip_chat:
            c = _sub_bench("bench_chat.py", ["--no-llm"], detectors)
            base = c["baseline_no_llm"]
            row["chat"] = {k: base[k] for k in ("count_accuracy", "total_accuracy", "photo_precision_at_3") if k in base}
        out[key] = row
    return out


def main(argv: Optional[Sequence[str]] = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--skip-chat", action="store_true")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--phone", type=int, default=24, help="phone-size photos for the ingest comparison")
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args(argv)
    result: dict = {"bench": "objects", "quality": quality(args)}
    if not (args.skip_search and args.skip_chat):
        result["search_and_chat"] = search_and_chat(args)
    if not args.skip_ingest:
        result["phone_ingest"] = _phone_ingest(args.phone)
    text = json.dumps(result, indent=1)
    if args.json_out:
        Path(args.json_out).write_text(text)
    print(text)
    return result


if __name__ == "__main__":
    main()
