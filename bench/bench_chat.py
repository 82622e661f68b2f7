"""Chat latency and retrieval hit rate: ten fixed questions over the demo library with the packaged LLM.

    python bench/bench_chat.py [--data-dir DIR] [--repeats 1]

Builds the demo library in a temp dir (or reuses --data-dir), writes a few annotations that
follow the metadata contract (so count and rank questions have data), then asks each question
with the packaged SmolLM2-135M (llama.cpp) and, as the baseline in the same run, with no LLM
(retrieval and the lead sentence only). Reports time to first token (the lead sentence, from
the index), time to the first LLM sentence shown, total time p50/p95, the ratio of totals to
the baseline, and the share of questions whose retrieved photos include the expected one.
Target: first token p95 <= 2 s on 2 cores.
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

QUESTIONS = [  # (question, file name expected among the retrieved photos)
    ("what is in the photo of the cat?", "chelsea.jpg"),
    ("show me photos of coffee", "coffee.jpg"),
    ("show me the rocket", "rocket.jpg"),
    ("is there a photo of a palace?", "china.jpg"),
    ("show me flowers", "flower.jpg"),
    ("what is in the photo of the astronaut?", "astronaut.jpg"),
    ("how many negative photos are about food?", "coffee.jpg"),
    ("which photos feel the least private?", "china.jpg"),
    ("photos of a camera on a tripod", "camera.jpg"),
    ("show me a clock", "clock.jpg"),
]
ANNOTATIONS = {  # file -> (sentiment, score, topics, Privacy)
    "coffee.jpg": ("negative", -0.6, "food", 4), "chelsea.jpg": ("positive", 0.8, "animals", 5),
    "flower.jpg": ("positive", 0.7, "nature", 2), "china.jpg": ("neutral", 0.0, "architecture", 1),
    "rocket.jpg": ("negative", -0.3, "technology", 2), "retina.jpg": ("negative", -0.7, "food,science", 3),
}


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def annotate(services) -> None:
    from core.chat.query import DIMENSIONS, topic_key

    ids = {Path(p.path).name: p.id for p in services.catalog.list_photos()}
    metas = []
    for name, (sent, score, topics, privacy) in ANNOTATIONS.items():
        m = {"sentiment": sent, "sentiment_score": score, "topics": topics, **{d: 3 for d in DIMENSIONS}, "Privacy": privacy}
        m.update({topic_key(t): True for t in topics.split(",")})
        metas.append(m)
    services.store.update_metadata([ids[n] for n in ANNOTATIONS], metas)


def ask(question: str, services, llm) -> dict:
    from core.chat.chain import answer

    t0 = time.perf_counter()
    marks: list[float] = []
    res = answer(question, [], services, llm, on_token=lambda _c: marks.append(time.perf_counter() - t0))
    total = time.perf_counter() - t0
    return {"first": marks[0] if marks else total, "first_llm": marks[1] if len(marks) > 1 else None, "total": total,
            "files": [Path(p.path).name for p in res.photos], "llm_error": res.llm_error, "dropped": len(res.dropped)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=None, help="an existing demo library (default: build one in a temp dir)")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    from core.chat.llm import LLMSettings, build_llm
    from core.demo import build_demo
    from core.services import build_services
    from core.settings import Settings
    from models.bundled import BundledBackend

    data = args.data_dir or Path(tempfile.mkdtemp(prefix="photolore-chat-")) / "data"
    services = build_services(Settings(data_dir=data), backend=BundledBackend("cpu"))
    if services.catalog.count() == 0:
        build_demo(services)
    annotate(services)
    t0 = time.perf_counter()
    llm = build_llm(LLMSettings(llm_backend="local", llm_model=None, llm_tools="off"))
    load_s = time.perf_counter() - t0
    ask("warm up", services, llm)

    base, full = [], []
    for _ in range(args.repeats):
        for q, _expected in QUESTIONS:
            base.append(ask(q, services, None))
            full.append(ask(q, services, llm))
    expected = [e for _ in range(args.repeats) for _q, e in QUESTIONS]
    hits = [e in r["files"] for r, e in zip(full, expected)]
    firsts, totals = [r["first"] for r in full], [r["total"] for r in full]
    llm_firsts = [r["first_llm"] for r in full if r["first_llm"] is not None]
    base_totals = [r["total"] for r in base]
    print(json.dumps({
        "questions": len(full), "llm": llm.label, "llm_load_s": round(load_s, 2), "threads": torch.get_num_threads(),
        "first_token_p50_s": pct(firsts, 50), "first_token_p95_s": pct(firsts, 95),
        "first_llm_sentence_p50_s": pct(llm_firsts, 50), "first_llm_sentence_p95_s": pct(llm_firsts, 95),
        "answers_with_llm_sentence": len(llm_firsts),
        "total_p50_s": pct(totals, 50), "total_p95_s": pct(totals, 95),
        "baseline_no_llm_total_p50_s": pct(base_totals, 50), "baseline_no_llm_total_p95_s": pct(base_totals, 95),
        "total_p50_ratio_to_baseline": round(float(np.median(totals) / max(np.median(base_totals), 1e-9)), 2),
        "expected_photo_retrieved_share": round(float(np.mean(hits)), 3),
        "misses": [q for (q, _e), h in zip(QUESTIONS * args.repeats, hits) if not h],
        "llm_errors": sum(r["llm_error"] is not None for r in full),
        "sentences_dropped_by_grounding": sum(r["dropped"] for r in full),
        "target_first_token_p95_le_2s": bool(pct(firsts, 95) <= 2.0),
    }, indent=1))


if __name__ == "__main__":
    main()
