"""Zero-shot annotator topics and concepts on the evaluation set's hand labels: tag caption vs photo facts.

    python bench/bench_annotate_topics.py [--limit N]

Both arms run in the same process on the same photos (tests/data/eval, bench/evalset.py) with the
bundled backend:
- "tags":  what the annotator read before photo facts: the three-ImageNet-tag caption, no facts;
- "facts": the backend's facts (people, scene, objects with WordNet parents, text) and its caption.
Printed as one JSON object: per arm, top-1 topic accuracy (the first topic is one of the hand
topics), micro precision/recall/F1 of the topic sets, "food" given to photos without food,
"people" recall, and the concept "a portrait of a person" given to photos without people.
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

PORTRAIT = "a portrait of a person"


def score(labels, results) -> dict:
    """labels: EvalPhoto list; results: AnnotationResult list (same order)."""
    tp = fp = fn = top1 = food_fp = people_hit = people_n = portrait_fp = 0
    for lab, r in zip(labels, results):
        truth, pred = set(lab.topics), [t for t in r.topics]
        top1 += pred[0] in truth
        tp += len(truth & set(pred))
        fp += len(set(pred) - truth)
        fn += len(truth - set(pred))
        food_fp += "food" in pred and "food" not in truth
        if "people" in truth:
            people_n += 1
            people_hit += "people" in pred
        portrait_fp += r.concept_text == PORTRAIT and lab.people == 0
    p = tp / max(tp + fp, 1)
    rec = tp / max(tp + fn, 1)
    return {"top1_accuracy": round(top1 / len(labels), 3), "precision": round(p, 3), "recall": round(rec, 3),
            "f1": round(2 * p * rec / max(p + rec, 1e-9), 3), "food_false_positives": food_fp,
            "people_recall": round(people_hit / max(people_n, 1), 3), "portrait_concept_without_people": portrait_fp}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0, help="only the first N photos (0 = all)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    from bench.evalset import load_eval_photos
    from core.annotate.zeroshot import ZeroShotAnnotator
    from core.catalog import Photo
    from core.images import load_rgb
    from models.base import caption_from_tags
    from models.bundled import BundledBackend

    labels = load_eval_photos()
    if args.limit:
        labels = labels[:args.limit]
    images = [load_rgb(lab.path) for lab in labels]
    backend = BundledBackend("cpu")
    annotator = ZeroShotAnnotator(backend)
    t = time.perf_counter()
    descs = [d for i in range(0, len(images), 16) for d in backend.describe(images[i:i + 16])]
    describe_s = time.perf_counter() - t
    if any(getattr(d, "facts", None) is None for d in descs):
        raise SystemExit("the bundled backend gave no photo facts for some photos: nothing to compare")
    source = f"{backend.name}:{backend.model_id}"
    arms = {
        "tags": [Photo(id=f"{k:064x}", path=lab.filename, source="eval", caption=caption_from_tags(d.tags), caption_source=source)
                 for k, (lab, d) in enumerate(zip(labels, descs))],
        "facts": [Photo(id=f"{k:064x}", path=lab.filename, source="eval", caption=d.caption, caption_source=source, facts=d.facts)
                  for k, (lab, d) in enumerate(zip(labels, descs))],
    }
    out: dict = {"photos": len(labels), "describe_s_per_photo": round(describe_s / len(labels), 3)}
    for arm, photos in arms.items():
        t = time.perf_counter()
        results = [r for i in range(0, len(photos), 16) for r in annotator.annotate(photos[i:i + 16], images[i:i + 16])]
        assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
        out[arm] = score(labels, results) | {"annotate_s_per_photo": round((time.perf_counter() - t) / len(labels), 3)}
    out["top1_gain"] = round(out["facts"]["top1_accuracy"] - out["tags"]["top1_accuracy"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
