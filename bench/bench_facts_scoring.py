"""Photo facts and text search on the eval set in seconds: model outputs cached once, facts re-extracted.

    python bench/bench_facts_scoring.py [--cache FILE] [--set MODULE.NAME=VALUE ...] [--verbose]

The first run passes the 72 eval photos through the bundled backend's CNN (class and region
probabilities), the face detector, OCR and, when they are built, the object detector and the
expression model, and pickles those outputs to `--cache` (default in the system temp dir; delete it
after a model change; `--no-detectors` replays the facts without the object detector). Every run then re-extracts PhotoFacts with the
current core/facts code (scene rules, cues, setting, caption, facts vector) and scores the 96
queries in memory exactly as core.search.text_hits ranks a library that small (every photo is a
candidate; score = core.search.combined_score), so a rule or weight change is measured in ~15 s
instead of a full ingest. `--set core.facts.vector.LANDSCAPE_WEIGHT=0.6` overrides a module
constant for one run (a number, or a tuple like `(0.4,0.25,0.15)`), which is how the weight sweeps
in the `perceive` branch's commit log were made. Prints one JSON object: search metrics overall and
per half (bench_understand.query_half), and the facts' accuracy against the hand labels
(bench_understand.facts_accuracy). bench_understand.py stays the reference: it ingests for real and
times it; this bench only replays.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench.bench_understand import facts_accuracy, ranking_metrics, split_metrics  # noqa: E402
from bench.evalset import load_eval_photos, load_queries  # noqa: E402

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "photolore-facts-scoring-cache.pkl"


def build_cache(backend, path: Path) -> dict:
    """Run the models once on the eval photos and pickle what the facts extractor reads from them."""
    from core.facts.extract import SMALL_EDGE, _shrunk
    from core.images import load_rgb
    from models.faces import make_people_detector
    from models.ocr import RapidOCRReader

    photos = load_eval_photos()
    images = [load_rgb(p.path) for p in photos]
    probs, regions = [], []
    for i in range(0, len(images), 16):
        _, p, r = backend._forward(images[i:i + 16])
        probs.append(p)
        regions.append(r)
    small = [_shrunk(im, SMALL_EDGE) for im in images]  # what the extractor gives the face detector and the cues
    people, ocr = make_people_detector(), RapidOCRReader()
    data = {"names": [p.filename for p in photos], "probs": np.concatenate(probs), "regions": np.concatenate(regions),
            "people": [people.detect(s) for s in small], "ocr": [ocr.read(im) for im in images],
            "small": [np.asarray(s) for s in small]}
    path.write_bytes(pickle.dumps(data))
    return data


class _Replay:
    """A detector that returns the cached results in order (the extractor calls it once per photo, in order)."""

    def __init__(self, results: Sequence):
        self._results, self._next = list(results), 0

    def _step(self, _image, *_more):
        out = self._results[self._next]
        self._next += 1
        return out

    detect = read = _step


def add_detector_outputs(data: dict, path: Path) -> bool:
    """Add the object detector's and the expression model's outputs to the cache when they are built
    (facts version 5); False when they are not (the run then replays version 4 facts)."""
    if "objects" in data:
        return data["objects"] is not None
    from core.settings import Settings
    from models.human_models import make_expression_reader, make_object_detector

    try:
        detector, reader = make_object_detector(Settings().detectors_dir), make_expression_reader(Settings().detectors_dir)
    except Exception as exc:  # not built: say so once, keep the cache as it is
        print(f"detectors unavailable ({exc}); replaying facts without them", file=sys.stderr)
        return False
    images = [Image.fromarray(a) for a in data["small"]]
    data["objects"] = [detector.detect(im) for im in images]
    data["expressions"] = [reader.read(im, tuple(getattr(found, "boxes", ()))) if getattr(found, "boxes", ()) else None
                           for im, found in zip(images, data["people"])]
    path.write_bytes(pickle.dumps(data))
    return True


def apply_overrides(pairs: Sequence[str]) -> None:
    """`module.NAME=value` -> setattr(module, NAME, literal value)."""
    for pair in pairs:
        target, _, raw = pair.partition("=")
        module_name, _, name = target.rpartition(".")
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            raise SystemExit(f"--set {pair}: {module_name} has no {name}")
        setattr(module, name, ast.literal_eval(raw))


def run(args) -> dict:
    from core.facts.extract import FactsExtractor
    from core.facts.vector import facts_vectors
    from core.search import combined_score
    from models.bundled import BundledBackend

    backend = BundledBackend(facts=None)
    cache = Path(args.cache)
    data = pickle.loads(cache.read_bytes()) if cache.is_file() else build_cache(backend, cache)
    detectors = not args.no_detectors and add_detector_outputs(data, cache)
    apply_overrides(args.set or [])
    extractor = FactsExtractor(people=_Replay(data["people"]), ocr=_Replay(data["ocr"]),
                               objects=_Replay(data["objects"]) if detectors else None,
                               expressions=_Replay([e for e in data["expressions"] if e is not None]) if detectors else None)
    facts = extractor.extract([Image.fromarray(a) for a in data["small"]], data["probs"], data["regions"])
    names = data["names"]
    photos = load_eval_photos()
    queries = load_queries(photos=photos)
    q = backend.embed_texts([x.query for x in queries])
    scores = combined_score(q @ backend.embed_texts([f.caption for f in facts]).T, q @ facts_vectors(facts, backend.embed_texts).T)
    ranked = {x.query: [names[j] for j in np.argsort(-scores[i])] for i, x in enumerate(queries)}
    search = ranking_metrics(ranked, queries)
    accuracy = facts_accuracy(photos, dict(zip(names, facts)))
    out = {"bench": "facts_scoring", "cache": str(cache), "facts_version": extractor.version, "overrides": list(args.set or []), "photos": len(names),
           "queries": len(queries), "search": {k: v for k, v in search.items() if k != "misses"} | {"halves": split_metrics(ranked, queries)},
           "facts": {k: v for k, v in accuracy.items() if k != "scene_misses"}}
    if args.verbose:
        out["misses_at_1"] = search["misses"]
        out["scene_misses"] = accuracy["scene_misses"]
    return out


def main(argv: Optional[Sequence[str]] = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=str(DEFAULT_CACHE), help="the model outputs' pickle (built on first use)")
    ap.add_argument("--set", action="append", metavar="MODULE.NAME=VALUE", help="override a module constant for this run")
    ap.add_argument("--no-detectors", action="store_true", help="replay facts version 4 (no object detector) even when it is built")
    ap.add_argument("--verbose", action="store_true", help="also list the top-1 misses and the scene misses")
    result = run(ap.parse_args(argv))
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
