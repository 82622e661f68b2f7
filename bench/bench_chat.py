"""Chat on the real-photo evaluation set: right counts, right photos, kept sentences, latency.

    python bench/bench_chat.py [--data-dir DIR] [--limit N] [--no-llm] [--budget S] [--verbose]
                               [--objects score|facts] [--threshold T]

Ingests tests/data/eval/photos with the project's pipeline (bench_understand.ingest_eval; bundled
backend unless PHOTOLORE_BACKEND says otherwise), writes the hand-labelled sentiment and topics as
annotations (what Annotate writes; Annotate's own accuracy is bench_annotate's business), then asks
every question of chat_questions.json, follow-ups after the question they continue. Two runs in
the same process, over the same library:
- "baseline_no_llm": retrieval and the computed answer only;
- "llm": the same with the packaged SmolLM2-135M (llama.cpp, 2 threads) and its time budget.
A third no-LLM run, "with_hand_facts", adds the hand labels' people/text/scene as photo facts in
the index: the ceiling for the facts work, so the bench shows what that work still has to earn.

Metrics per run: count accuracy (kind "count": the answer's count equals expected_count), total
accuracy (every question: photos that matched == expected_count), photo precision@3 (share of the
first three photos shown that are expected; an empty answer to a question expecting photos counts
0), and for "llm": share of model sentences kept by the grounding check, first-token (the computed
answer) and total latency p50/p95, and the ratio of totals to the baseline's. Timings on a shared,
loaded machine are noisy: compare the ratio, not the seconds.
Targets (issue #19): count accuracy >= 0.9, precision@3 >= 0.8, total p95 <= 4 s on 2 cores.
Each run is also reported "by_part": the "dev" and "holdout" halves (a fixed SHA-1 of the question
text), the first 45 questions and the 18 added for issue #19 (written before the planner learnt
their constructs). Honesty note: the issue #19 grammar was built from the issue's list of
constructs, but the first list of wrong answers looked at covered both halves, so "holdout" is a
weaker check than a true held-out set; keep new planner work to "dev".
"threshold_sweep" checks the relevance cut-off (floor and margin) against queries.json (best mean
F1), so the bench says when core.search.RELEVANCE_THRESHOLDS / RELEVANCE_MARGINS need recalibrating
after a scoring change.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from bench.evalset import ChatQuestion, EvalPhoto, load_chat_questions, load_eval_photos  # noqa: E402

_SENTIMENT_SCORE = {"negative": -0.5, "neutral": 0.0, "positive": 0.5}


def pct(values: Sequence[float], q: float) -> Optional[float]:
    return round(float(np.percentile(values, q)), 3) if values else None


def write_hand_annotations(services, photos: Sequence[EvalPhoto], ids: dict[str, str]) -> None:
    """Sentiment and topics from photos.csv, stored as an annotator run stores them (catalog, then the index)."""
    from core.annotate.base import AnnotationResult
    from core.annotations import store as ann
    from core.annotations.index_sync import sync_chroma

    by_name = {name: pid for pid, name in ids.items()}
    results = [AnnotationResult(photo_id=by_name[p.filename], sentiment=p.sentiment, sentiment_score=_SENTIMENT_SCORE[p.sentiment],
                                topics=list(p.topics)) for p in photos if p.filename in by_name]
    ann.record_results(services.catalog, "hand-labels", "1", results)
    sync_chroma(services.catalog, services.store, [r.photo_id for r in results])


def write_hand_facts(services, photos: Sequence[EvalPhoto], ids: dict[str, str]) -> None:
    """People, text, scene, objects, setting and black-and-white from photos.csv as the photo facts (the ceiling
    for extracted facts), written as reindex writes facts (index and catalog)."""
    from dataclasses import replace

    from bench.evalset import hand_portrait, hand_setting, is_grey
    from core.facts import FACTS_VERSION, PORTRAIT_FACE_SHARE, PhotoFacts
    from core.facts.refresh import store_facts

    by_name = {name: pid for pid, name in ids.items()}
    rows = [(by_name[p.filename], p) for p in photos if p.filename in by_name]
    extracted = services.catalog.get_many([pid for pid, _ in rows])
    items = []
    for pid, p in rows:
        # colours and landscape cues are not hand-labelled: the extracted ones stay; no detector boxes (the hand
        # labels name no boxes), and a face that fills the frame exactly where the hand label says portrait
        base = extracted[pid].facts if pid in extracted and extracted[pid].facts else PhotoFacts()
        items.append((pid, replace(base, people=p.people, text=[(p.text, 1.0)] if p.has_text else [], text_checked=True, scene=p.scene,
                                   objects=[(o, 1.0) for o in p.objects], setting=hand_setting(p), monochrome=is_grey(p),
                                   faces=1 if hand_portrait(p) else 0, largest_face=PORTRAIT_FACE_SHARE if hand_portrait(p) else 0.0,
                                   detections=[], detector="", version=FACTS_VERSION)))
    store_facts(services, items)


def ask_all(questions: Sequence[ChatQuestion], services, llm, cfg, ids: dict[str, str]) -> list[dict]:
    """Every question in order; a follow-up gets the conversation of the question it continues."""
    from core.chat.reply import answer

    turns: dict[int, list[dict]] = {}
    out = []
    for i, q in enumerate(questions):
        history = list(turns.get(q.follow_up_of, [])) if q.follow_up_of is not None else []
        t0 = time.perf_counter()
        marks: list[float] = []
        res = answer(q.question, history, services, llm, cfg=cfg, on_token=lambda _c: marks.append(time.perf_counter() - t0))
        total = time.perf_counter() - t0
        turns[i] = history + [{"role": "user", "content": q.question}, res.history_entry()]
        shown = [Path(p.path).name for p in res.photos]
        out.append({"question": q.question, "half": question_half(q.question), "index": i, "kind": q.kind, "expected_count": q.expected_count, "count": res.count,
                    "total": res.total, "shown": shown, "expected": list(q.expected_photos), "first": marks[0] if marks else total,
                    "seconds": total, "kept": res.kept, "dropped": len(res.dropped), "llm_error": res.llm_error,
                    "notice": res.notice, "filters": res.filters,
                    "model_text": res.text.split("\n\n", 1)[1] if res.kept and "\n\n" in res.text else ""})
    return out


def question_half(question: str) -> str:
    """A fixed split by a hash of the text: the planner is developed on "dev", "holdout" checks it generalises."""
    return "dev" if hashlib.sha1(question.strip().lower().encode("utf-8")).digest()[0] % 2 == 0 else "holdout"


# The first 45 questions came before issue #19's planner work; the 18 after them were written before
# the planner learnt their constructs (reported apart, as a second check against fitting the set).
FIRST_QUESTIONS = 45


def precision_at_3(row: dict) -> float:
    top = row["shown"][:3]
    if not top:
        return 0.0 if row["expected"] else 1.0
    return sum(n in row["expected"] for n in top) / len(top)


def summarise(rows: list[dict], *, latency: bool) -> dict:
    counts = [r for r in rows if r["kind"] == "count"]
    out = {
        "questions": len(rows),
        "count_accuracy": round(float(np.mean([r["count"] == r["expected_count"] for r in counts])), 3) if counts else None,
        "total_accuracy": round(float(np.mean([r["total"] == r["expected_count"] for r in rows])), 3),
        "precision_at_3": round(float(np.mean([precision_at_3(r) for r in rows])), 3),
        "answers_with_notice": sum(r["notice"] is not None for r in rows),
        "total_p50_s": pct([r["seconds"] for r in rows], 50), "total_p95_s": pct([r["seconds"] for r in rows], 95),
    }
    if latency:
        kept, dropped = sum(r["kept"] for r in rows), sum(r["dropped"] for r in rows)
        out |= {
            "first_token_p50_s": pct([r["first"] for r in rows], 50), "first_token_p95_s": pct([r["first"] for r in rows], 95),
            "model_sentences_kept": kept, "model_sentences_dropped": dropped,
            "share_of_model_sentences_kept": round(kept / (kept + dropped), 3) if kept + dropped else None,
            "answers_with_a_model_sentence": sum(r["kept"] > 0 for r in rows),
            "llm_errors": sum(r["llm_error"] is not None for r in rows),
        }
    return out


def sweep_threshold(services, ids: dict[str, str]) -> dict:
    """The cut-off that best separates relevant from irrelevant photos for queries.json (mean F1).

    A photo counts when its score reaches the floor and lies within the margin of the query's best
    score (core.search.relevance_cut); every pair of a grid is tried, margin None meaning the floor
    alone. Chat and Search use core.search's calibrated pair; this says whether it is still the best
    one for the active scoring (rerun after the scoring changes, e.g. when photo facts change)."""
    from bench.evalset import load_queries
    from core.search import search_text

    queries = load_queries()
    scored = {q.query: [(ids.get(r.photo.id), r.score) for r in search_text(services, q.query, k=len(ids))] for q in queries}
    table = {}
    for floor in np.round(np.arange(0.3, 0.6, 0.025), 3):
        for margin in (None, 0.05, 0.075, 0.1, 0.125, 0.15):
            f1 = []
            for q in queries:
                best = max((sc for _, sc in scored[q.query]), default=0.0)
                cut = floor if margin is None else max(floor, best - margin)
                got, rel = {n for n, sc in scored[q.query] if sc >= cut}, set(q.relevant)
                p, r = (len(got & rel) / len(got) if got else 0.0), len(got & rel) / len(rel)
                f1.append(2 * p * r / (p + r) if p + r else 0.0)
            table[f"{float(floor)}/{margin}"] = round(float(np.mean(f1)), 3)
    best = max(table, key=table.get)
    floor_alone = {k: v for k, v in table.items() if k.endswith("/None")}
    best_alone = max(floor_alone, key=floor_alone.get)
    return {"queries": len(queries), "best_floor_margin": best, "best_mean_f1": table[best],
            "best_floor_alone": best_alone, "best_floor_alone_mean_f1": table[best_alone], "mean_f1_by_floor_margin": table}


def run(args) -> dict:
    from bench.bench_understand import _filenames, ingest_eval
    from core.chat.chain import ChatConfig
    from core.services import build_services
    from core.settings import Settings

    import core.chat.concepts as concepts

    concepts.OBJECT_FACTS_DECIDE = args.objects == "facts"
    import core.search as search

    if args.threshold is not None:
        search.RELEVANCE_THRESHOLDS["bundled"] = args.threshold
    if args.margin is not None and args.margin < 0:  # the floor alone (the rule before the margin)
        search.RELEVANCE_MARGINS.pop("bundled", None)
    elif args.margin is not None:
        search.RELEVANCE_MARGINS["bundled"] = args.margin
    photos = load_eval_photos()
    questions = load_chat_questions(photos=photos)
    if args.limit:
        questions = questions[: args.limit]
        questions = [q for q in questions if q.follow_up_of is None or q.follow_up_of < len(questions)]
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="photolore-chat-"))
    try:
        import torch

        torch.set_num_threads(2)
        services = build_services(Settings(data_dir=data_dir))
        ingest_eval(services, photos[0].path.parent, {p.filename for p in photos})
        ids = {pid: name for pid, name in _filenames(services).items()}
        write_hand_annotations(services, photos, ids)
        sweep = sweep_threshold(services, ids)
        from core.chat.llm import LLMSettings

        args.budget = args.budget or LLMSettings().llm_budget
        cfg = ChatConfig(budget_s=args.budget)
        runs: dict[str, list[dict]] = {"baseline_no_llm": ask_all(questions, services, None, cfg, ids)}
        llm_label = None
        if not args.no_llm:
            from core.chat.llm import LLMSettings, build_llm

            llm = build_llm(LLMSettings(llm_backend="local", llm_model=None, llm_tools="off"))
            llm_label = llm.label
            ask_all(questions[:1], services, llm, cfg, ids)  # warm-up: the first call maps the model
            runs["llm"] = ask_all(questions, services, llm, cfg, ids)
        # On a copy, so a reused --data-dir keeps only what the pipeline wrote (its next baseline stays honest).
        copy_dir = Path(tempfile.mkdtemp(prefix="photolore-chat-facts-"))
        try:
            shutil.copytree(data_dir, copy_dir / "data")
            with_facts = build_services(Settings(data_dir=copy_dir / "data"), backend=services.backend)
            write_hand_facts(with_facts, photos, ids)
            runs["with_hand_facts_no_llm"] = ask_all(questions, with_facts, None, cfg, ids)
        finally:
            shutil.rmtree(copy_dir, ignore_errors=True)
        from core.search import relevance_threshold

        result = {"bench": "chat", "objects": args.objects, "backend": services.choice.name, "threshold": relevance_threshold(services.backend),
                  "margin": search.RELEVANCE_MARGINS.get(services.choice.name),
                  "photos": len(ids), "llm_model": llm_label, "llm_budget_s": args.budget, "cpu_count": os.cpu_count(),
                  "note": "timings on a shared, loaded 2-core machine; compare ratios within one run"}
        result["threshold_sweep"] = {k: v for k, v in sweep.items() if args.verbose or k != "mean_f1_by_floor_margin"}
        for name, rows in runs.items():
            result[name] = summarise(rows, latency=(name == "llm"))
            parts = {"dev": [r for r in rows if r["half"] == "dev"], "holdout": [r for r in rows if r["half"] == "holdout"],
                     "first_45": [r for r in rows if r["index"] < FIRST_QUESTIONS],
                     "added_18": [r for r in rows if r["index"] >= FIRST_QUESTIONS]}
            result[name]["by_part"] = {k: {m: v for m, v in summarise(rs, latency=False).items() if m != "answers_with_notice"}
                                       for k, rs in parts.items() if rs}
        if "llm" in runs:
            base = np.median([r["seconds"] for r in runs["baseline_no_llm"]])
            result["llm"]["total_p50_ratio_to_baseline"] = round(float(np.median([r["seconds"] for r in runs["llm"]]) / max(base, 1e-9)), 2)
        if args.verbose and "llm" in runs:  # what the grounding check let through, to read
            result["model_sentences_shown"] = [{"question": r["question"], "model": r["model_text"]} for r in runs["llm"] if r["model_text"]]
        if args.verbose:  # per run, the questions answered with a wrong number of photos
            result["wrong"] = {name: [{k: r[k] for k in ("question", "half", "expected_count", "total", "shown", "filters")}
                                      for r in rows if r["total"] != r["expected_count"]] for name, rows in runs.items()}
        return result
    finally:
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=None, help="library to build/reuse (default: a temp dir, removed afterwards)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions (a quick look)")
    ap.add_argument("--no-llm", action="store_true", help="skip the packaged-LLM run (accuracy only)")
    ap.add_argument("--budget", type=float, default=None, help="seconds from question to answer (default: PHOTOLORE_LLM_BUDGET, 3.5)")
    ap.add_argument("--objects", choices=("facts", "score"), default="score",
                    help="object words answered by the extracted object list or by the search score (an experiment)")
    ap.add_argument("--threshold", type=float, default=None, help="override the bundled relevance floor (an experiment)")
    ap.add_argument("--margin", type=float, default=None, help="override the bundled relevance margin; < 0: none (an experiment)")
    ap.add_argument("--verbose", action="store_true", help="list the questions answered with a wrong number of photos")
    result = run(ap.parse_args(argv))
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
