"""Dashboard frames for 10k synthetic annotated photos, and the page's first render in a browser.

    python bench/bench_dashboards.py [--n 10000] [--browser]

Prints one JSON object. Frames: every pure frame function the page calls (filters, histogram,
long scores, correlation, breakdowns, timeline, agreement, confusion, truth metrics, 2-D
projection of N embeddings). Target < 1 s together. Baseline in the same run: one pass of
`DataFrame.describe()` over the same frame, to show the machine's speed.
With --browser: `streamlit run` over the demo library, time from navigation to the last chart
title drawn in headless Chromium (target < 3 s), against the time to first paint of the router.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    from core import dashboards as d

    rng = np.random.default_rng(seed)
    topics = np.array(["food", "home", "nature", "people", "city", "water"])
    return pd.DataFrame({
        "photo_id": [f"p{i}" for i in range(n)], "filename": [f"{i}.jpg" for i in range(n)],
        "class_name": rng.choice(["kitchen", "living room", "garden", "bedroom"], n), "caption": "a photo",
        "sentiment": rng.choice(d.SENTIMENTS, n), "sentiment_score": rng.uniform(-1, 1, n),
        "sentiment_caption": rng.choice(d.SENTIMENTS, n), "sentiment_image": rng.choice(d.SENTIMENTS, n),
        "sentiment_truth": rng.choice(d.SENTIMENTS, n),
        "topics": [list(topics[rng.random(len(topics)) < 0.3]) for _ in range(n)],
        "taken_at": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, n), unit="D"),
        "concept_text": "a calm space", **{k: rng.integers(1, 6, n) for k in d.DIMENSIONS},
    })


def frames(n: int) -> dict:
    from core import dashboards as d

    raw = synthetic(n)
    emb = np.random.default_rng(1).normal(size=(n, 384)).astype(np.float32)
    t0 = time.perf_counter()
    raw.describe()
    baseline = time.perf_counter() - t0
    timings = {}

    def timed(name, fn):
        t = time.perf_counter()
        fn()
        timings[name] = round((time.perf_counter() - t) * 1000, 1)

    t_all = time.perf_counter()
    df = d.normalise(raw)
    timings["normalise"] = round((time.perf_counter() - t_all) * 1000, 1)
    timed("filters", lambda: d.apply_filters(df, d.Filters(classes=["kitchen", "garden"], topics=["food"], score_ranges={"Safety": (2, 5)})))
    timed("histogram", lambda: d.histogram_frame(df))
    timed("scores_long_by_topic", lambda: d.scores_long(df, by="topic"))
    timed("correlation", lambda: d.correlation_frame(df))
    timed("sentiment_by_class", lambda: d.sentiment_breakdown(df, by="class_name"))
    timed("topics", lambda: d.topic_breakdown(df))
    timed("over_time", lambda: d.over_time(df))
    timed("agreement", lambda: d.method_agreement(df))
    timed("confusion", lambda: d.confusion_frame(df, "sentiment_caption", "sentiment"))
    timed("truth", lambda: d.truth_metrics(df))
    timed("projection_pca", lambda: d.embedding_map_frame(df["photo_id"].tolist(), emb, df, method="pca"))
    total = time.perf_counter() - t_all
    return {"n": n, "frames_total_s": round(total, 3), "baseline_describe_s": round(baseline, 3),
            "ratio_to_describe": round(total / baseline, 1), "per_frame_ms": timings,
            "target_s": 1.0, "meets_target": total < 1.0}


def browser_first_render() -> dict:
    import os
    import shutil
    import subprocess
    import tempfile

    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM, CHROMIUM_ARGS, free_port, wait_http

    data = Path(tempfile.mkdtemp(prefix="photolore-dash-")) / "data"
    env = dict(os.environ, PHOTOLORE_DATA_DIR=str(data), PHOTOLORE_BACKEND="bundled", HF_HUB_OFFLINE="1")
    repo = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "core", "demo"], cwd=repo, env=env, check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)], cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc=proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")  # warm: models load once per server
            page.get_by_text("Photos", exact=True).first.wait_for(timeout=180_000)
            t0 = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text("Photos", exact=True).first.wait_for(timeout=60_000)
            router = time.perf_counter() - t0
            t0 = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/dashboards")
            page.get_by_text("Embedding map", exact=True).first.wait_for(timeout=60_000)
            page.locator("canvas, svg.marks").last.wait_for(timeout=60_000)
            dash = time.perf_counter() - t0
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(data.parent, ignore_errors=True)
    return {"dashboards_first_render_s": round(dash, 2), "library_page_render_s": round(router, 2),
            "ratio_to_library_page": round(dash / router, 2), "target_s": 3.0, "meets_target": dash < 3.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--browser", action="store_true")
    args = ap.parse_args()
    out = {"bench": "dashboards", "frames": frames(args.n)}
    if args.browser:
        out["browser"] = browser_first_render()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
