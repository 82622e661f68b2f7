"""A library of up to a million photos, built without the models, and what each page's catalog work costs at that size.

    python bench/bench_million.py [--sizes 100000 1000000] [--engines sqlite postgresql] [--repeat 3]

For each engine and size, a fresh catalog is filled with synthetic rows in bulk (one transaction per
20,000 photos, no model run): photos with realistic spreads (200 folders of Zipf-like sizes, 20 years
of dates, people 0-12, 14 scenes, facts JSON of the real size), their files, the index rows of one
model, and one annotation per photo (six 1-5 scores, sentiment, two topics). Then the work each page
does on every rerun is timed with the app's own functions, median of `--repeat` runs:

- Library: photo / file / class counts, photos not indexed, photos with stale facts, and the first and
  a deep page of the grid (by OFFSET over the index photos_order: 0.04 s at 1M, so no keyset is needed);
- Search: the facts counts of the filters, the 20 hits' catalog rows, and the object filter's counts (from
  photo_objects, schema 8; beside them, as the baseline, the same counts split from facts_terms as before);
- Dashboards: the annotations frame (read whole the first time and kept on disk; a restarted app loads
  that copy; afterwards only photos that changed are read: 100 corrected photos per open here), the
  filters, every chart (aggregated to at most 5,000 marks) and the embedding map's sample;
  `dashboards_page_s` is an open after an edit, `_restart_s` the first open of a restarted app,
  `_first_s` the first open ever;
- Chat: vocabulary, plan and retrieval of count and list questions from the catalog's key columns
  (facts_terms, annotation_values; core.catalog_keys), the slowest question reported as chat_count_s.

Plus the build time, the catalog's size on disk and the process's peak resident memory. The vector
index is measured by bench/bench_search.py (`--sizes 1000000 --spaces text`, and `--spaces image`); each of
those builds takes about 18-20 minutes on 2 cores, so they are not part of this run. Timings on a shared machine vary: compare the
parts and sizes of one run, not runs.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.catalog_keys import facts_terms  # noqa: E402
from core.facts import PhotoFacts  # noqa: E402
from core.photo_objects import labels_of  # noqa: E402

SCENES = ["", "kitchen", "living room", "bedroom", "bathroom", "street", "beach", "forest", "office", "dining room",
          "mountain", "park", "restaurant", "city"]
TOPICS = ["family", "travel", "food", "home", "nature", "city", "pets", "friends", "work", "sport", "art", "garden"]
SENTIMENTS = ["negative", "neutral", "positive"]
DIMS = ["Safety", "Belonging", "Naturalness", "Shared", "Privacy", "Convenience"]
MODEL = "bench-model"
CHUNK = 20_000


def _facts(rng: np.random.Generator, people: int, scene: str) -> PhotoFacts:
    objs = [("cup", 0.8), ("table", 0.6), ("chair", 0.5), ("plant", 0.4)][: int(rng.integers(1, 5))]
    return PhotoFacts(caption=f"a {scene or 'photo'} with {people} people", labels=[("cup", 0.4), ("plate", 0.2)], objects=objs,
                      people=people, faces=min(people, 3), scene=scene, scene_score=0.6, colours=["white", "brown"],
                      text_checked=True, setting="indoor", detections=[("person", 0.7, (0.1, 0.1, 0.4, 0.9))] * min(people, 3)
                      + [(OBJECTS[j], 0.6, (0.5, 0.5, 0.9, 0.9)) for j in _objects_of(rng)], detector="centernet-320")


# Detected objects with a Zipf-like spread over 30 labels, 0-3 per photo: what the Search object filter counts.
OBJECTS = ("chair", "cup", "car", "dog", "bottle", "couch", "tv", "potted plant", "dining table", "bed", "cat", "laptop",
           "book", "bicycle", "clock", "bird", "boat", "sink", "toilet", "oven", "refrigerator", "umbrella", "bench",
           "truck", "horse", "cell phone", "handbag", "vase", "bowl", "motorcycle")
_OBJECT_P = 1.0 / np.arange(1, len(OBJECTS) + 1)
_OBJECT_P /= _OBJECT_P.sum()


def _objects_of(rng: np.random.Generator) -> list[int]:
    return sorted(set(rng.choice(len(OBJECTS), size=int(rng.integers(0, 4)), p=_OBJECT_P).tolist()))


def build(catalog, n: int, seed: int = 0, on_chunk: Callable[[int], None] = lambda done: None) -> None:
    """Fill `catalog` with n synthetic photos, their files, index rows and one annotation each."""
    from core.annotations.store import ensure_schema

    ensure_schema(catalog)
    rng = np.random.default_rng(seed)
    templates = [(f.to_json(), facts_terms(f)) for f in (_facts(rng, p, s) for p in range(4) for s in SCENES)]  # real size, reused
    folder_weights = 1.0 / np.arange(1, 201)
    folder_weights /= folder_weights.sum()
    start_day = np.datetime64("2006-01-01")
    for lo in range(0, n, CHUNK):
        m = min(CHUNK, n - lo)
        idx = np.arange(lo, lo + m)
        folders = rng.choice(200, size=m, p=folder_weights)
        people = np.minimum(rng.poisson(0.8, m), 12)
        scenes = rng.integers(0, len(SCENES), m)
        days = rng.integers(0, 20 * 365, m)
        scores = rng.integers(1, 6, (m, 6))
        sent = rng.choice(3, size=m, p=[0.2, 0.5, 0.3])
        topics = rng.integers(0, len(TOPICS), (m, 2))
        photos, files, indexed, notes = [], [], [], []
        for j, i in enumerate(idx):
            pid = f"{i:064x}"
            path = f"/photos/folder{folders[j]:03d}/IMG_{i:07d}.jpg"
            taken = f"{start_day + np.timedelta64(int(days[j]), 'D')}T10:{i % 60:02d}:00"
            facts, terms = templates[(int(people[j]) % 4) * len(SCENES) + int(scenes[j])]
            photos.append((pid, path, "folder", f"folder{folders[j]:03d}", 4032, 3024, "JPEG", taken, 1,
                           f"2026-01-01T00:00:{i % 60:02d}+00:00", f"/data/thumbs/{pid[:2]}/{pid}.jpg",
                           f"a {SCENES[scenes[j]] or 'photo'} with {people[j]} people", "bundled", '[["cup", 0.8], ["table", 0.5]]',
                           0, f"{int(rng.integers(0, 2**62)):016x}", facts, int(people[j]), 0, SCENES[scenes[j]], 5, terms))
            files.append((path, pid, 2_500_000, 1_700_000_000_000_000_000))
            indexed.append((pid, MODEL))
            data = {**{d: int(s) for d, s in zip(DIMS, scores[j])}, "concept_text": "a calm and shared space",
                    "sentiment": SENTIMENTS[sent[j]], "sentiment_score": float(sent[j] - 1), "sentiment_caption": SENTIMENTS[sent[j]],
                    "sentiment_image": SENTIMENTS[sent[j]], "topics": [TOPICS[t] for t in topics[j]], "topics_caption": [],
                    "topics_image": []}
            notes.append((pid, "bench", "1", "ok", None, json.dumps(data), "2026-01-02T00:00:00+00:00"))
        with catalog.db.connect() as con:
            con.executemany("INSERT INTO photos (id, path, source, class_name, width, height, format, taken_at, orientation, added_at, "
                            "thumb_path, caption, caption_source, tags, missing, phash, facts, facts_people, facts_ntext, facts_scene, "
                            "facts_version, facts_terms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", photos)
            con.executemany("INSERT INTO files (path, photo_id, size, mtime_ns) VALUES (?,?,?,?)", files)
            con.executemany("INSERT INTO indexed (photo_id, model_id) VALUES (?,?)", indexed)
            con.executemany("INSERT INTO annotations (photo_id, annotator, version, status, error, data, created_at) "
                            "VALUES (?,?,?,?,?,?,?)", notes)
            con.executemany("INSERT INTO photo_objects (photo_id, label, missing) VALUES (?,?,0)",  # as the catalog's writes keep them
                            [(ph[0], label) for ph in photos for label in sorted(labels_of(ph[-1]))])
        on_chunk(lo + m)
    with catalog.db.connect() as con:  # fresh statistics, as a long-lived catalog has them
        con.execute("ANALYZE")


def timed(fn: Callable, repeat: int) -> tuple[float, object]:
    """Median seconds of `repeat` calls, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 4), out


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _counts_from_terms(catalog) -> dict[str, int]:
    """The object counts as Catalog.detected_counts read them before photo_objects: split from facts_terms."""
    counts: dict[str, int] = {}
    with catalog.db.connect() as con:
        cur = con.execute("SELECT facts_terms FROM photos WHERE missing=0 AND facts_terms LIKE ?", ("%,det:%",))
        while rows := cur.fetchmany(20_000):
            for (terms,) in rows:
                for term in str(terms).split(","):
                    if term.startswith("det:"):
                        counts[term[4:]] = counts.get(term[4:], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def measure(catalog, n: int, repeat: int) -> dict:
    from core import charts
    from core import dashboards as d
    from core.facts.refresh import stale_count

    out: dict = {}
    ids = [f"{i:064x}" for i in np.random.default_rng(1).integers(0, n, 20)]
    lib = {
        "count": lambda: catalog.count(),
        "count_files": lambda: catalog.count_files(),
        "classes": lambda: catalog.classes(),
        "not_indexed": lambda: catalog.count_not_indexed(MODEL),
        "stale_facts": lambda: stale_count(catalog, 5),
        "first_page": lambda: catalog.list_photos(limit=48),
        "deep_page_offset": lambda: catalog.list_photos(limit=48, offset=n // 2),
    }
    for name, fn in lib.items():
        out[f"library_{name}_s"], _ = timed(fn, repeat)
    out["library_page_s"] = round(sum(out[f"library_{k}_s"] for k in ("count", "count_files", "classes", "not_indexed",
                                                                        "stale_facts", "first_page")), 4)
    out["search_facts_summary_s"], _ = timed(catalog.facts_summary, repeat)
    out["search_hit_rows_s"], _ = timed(lambda: catalog.get_many(ids), repeat)
    # the object filter's counts, read on every rerun of the page
    out["search_object_counts_s"], counts = timed(catalog.detected_counts, repeat)
    out["search_object_labels"] = len(counts)
    out["search_page_catalog_s"] = round(out["search_facts_summary_s"] + out["search_hit_rows_s"] + out["search_object_counts_s"], 4)
    # baseline in the same run: the same counts split from every photo's facts_terms (before schema 8)
    out["search_object_counts_from_terms_s"], legacy = timed(lambda: _counts_from_terms(catalog), repeat)
    assert legacy == counts, "photo_objects disagrees with facts_terms"

    # The Dashboards' frame as the page gets it (core.annotations.live_frame): read whole once and kept on disk,
    # loaded from there by a restarted app, then kept current by re-reading only the photos that changed.
    from core.annotations import set_corrections

    cache = Path(tempfile.mkdtemp(prefix="photolore-frame-")) / "annotations-frame.arrow"
    rss0 = peak_rss_mb()
    out["dash_first_read_s"], df_all = timed(lambda: d.live_frame(catalog, cache).get(), 1)
    out["dash_frame_rss_mb"] = round(peak_rss_mb() - rss0, 1)
    out["dash_frame_file_mb"] = round(cache.stat().st_size / 2**20, 1)
    live = d.live_frame(catalog, cache)
    out["dash_restart_read_s"], df_all = timed(live.get, 1)
    out["dash_unchanged_s"], df_all = timed(live.get, repeat)
    times = []
    for k in range(repeat):  # 100 photos corrected on the Annotate page (not timed), then the Dashboards opened again
        set_corrections(catalog, {pid: {"Safety": 1 + (k + j) % 5} for j, pid in enumerate(df_all["photo_id"].iloc[k * 100:(k + 1) * 100])})
        t0 = time.perf_counter()
        df_all = live.get()
        times.append(time.perf_counter() - t0)
    out["dash_after_edit_s"] = round(statistics.median(times), 4)
    assert live.last.kind == "changes" and live.last.rows == 100, live.last
    out["dash_filters_s"], df = timed(lambda: d.apply_filters(df_all, d.Filters()), repeat)
    out["dash_charts_s"], sections = timed(lambda: charts.build_sections(df, box_by="class_name"), repeat)
    out["dash_max_marks"] = max((charts.data_rows(s.chart) for s in sections if s.chart is not None), default=0)
    out["dash_map_sample_s"], _ = timed(lambda: d.sample_rows(df, "class_name", charts.MAX_MARKS), repeat)
    rest = sum(out[k] for k in ("dash_filters_s", "dash_charts_s", "dash_map_sample_s"))
    out["dashboards_page_s"] = round(out["dash_after_edit_s"] + rest, 4)  # an open with changes to read, the common case
    out["dashboards_page_restart_s"] = round(out["dash_restart_read_s"] + rest, 4)
    out["dashboards_page_first_s"] = round(out["dash_first_read_s"] + rest, 4)
    del df_all, df, sections, live
    cache.unlink()

    out |= measure_chat(catalog, repeat)
    return out


# Questions answered from facts and annotations alone, so no vector search runs: the index at 1M is not built here.
CHAT_QUESTIONS = ("how many photos with more than two people?", "how many kitchens are there?",
                  "how many positive photos are about food?", "show me bedrooms without people")


def measure_chat(catalog, repeat: int) -> dict:
    """Chat's whole answer path but the language model: vocabulary, plan, retrieval (counts, the photos shown)."""
    from types import SimpleNamespace

    from core.chat.query import plan_question
    from core.chat.retriever import library_vocabulary, retrieve
    from vectorstore.store import VectorStore

    with tempfile.TemporaryDirectory(prefix="photolore-million-chroma-") as tmp:
        import chromadb

        store = VectorStore(chromadb.PersistentClient(path=tmp))
        # the bench's photos are in the catalog's `indexed` table; the store only answers the shown photos' metadata
        services = SimpleNamespace(catalog=catalog, store=store,
                                   backend=SimpleNamespace(model_id=MODEL, text_space="image", name="bench"))
        out = {}
        out["chat_vocabulary_s"], vocab = timed(lambda: library_vocabulary(services), repeat)
        answers = {}
        for i, q in enumerate(CHAT_QUESTIONS):
            def ask(q=q):
                return retrieve(services, plan_question(q, library_vocabulary(services), k=6))
            out[f"chat_q{i}_s"], res = timed(ask, repeat)
            answers[q] = res.total
        out["chat_count_s"] = max(out[f"chat_q{i}_s"] for i in range(len(CHAT_QUESTIONS)))
        out["chat_answers"] = answers
    return out


def disk_bytes(catalog) -> int:
    if catalog.path is not None:
        return sum(p.stat().st_size for p in catalog.path.parent.glob(catalog.path.name + "*"))
    with catalog.db.connect() as con:
        return int(con.execute("SELECT pg_database_size(current_database())").fetchone()[0])


def run(engine: str, n: int, repeat: int, url_for: Callable[[], str], work: Path) -> dict:
    from core.annotations.store import ensure_schema
    from core.catalog import Catalog

    target = url_for() if engine == "postgresql" else work / f"catalog-{n}.sqlite"
    catalog = Catalog(target, library_dir=work / "library")
    t0 = time.perf_counter()
    build(catalog, n, on_chunk=lambda done: print(f"  {engine} {done}/{n}", file=sys.stderr, flush=True))
    row = {"engine": engine, "photos": n, "build_s": round(time.perf_counter() - t0, 1)}
    # The rows went in by SQL, around the store, as a library from before annotation_values has them: the first
    # Catalog to open the annotations fills the table (core.annotations.store._backfill), once.
    catalog.close()
    catalog = Catalog(target, library_dir=work / "library")
    t0 = time.perf_counter()
    ensure_schema(catalog)
    row["annotation_values_backfill_s"] = round(time.perf_counter() - t0, 1)
    row |= measure(catalog, n, repeat)
    row["catalog_disk_mb"] = round(disk_bytes(catalog) / 2**20, 1)
    row["peak_rss_mb"] = peak_rss_mb()
    catalog.close()
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--engines", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    server = None
    url_for: Callable[[], str] = lambda: ""  # noqa: E731
    if "postgresql" in args.engines:
        from tests.conftest import free_port
        from tests.pgserver import PostgresServer, find_bin_dir

        bin_dir = find_bin_dir()
        if bin_dir is None:
            sys.exit("bench_million: PostgreSQL binaries not found (scripts/setup.sh installs them); pass --engines sqlite")
        server = PostgresServer(bin_dir, free_port()).start()
        url_for = server.new_schema_url
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="photolore-million-") as tmp:
            for engine in args.engines:
                for n in args.sizes:
                    rows.append(run(engine, n, args.repeat, url_for, Path(tmp)))
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server.stop()
    targets = {"library_page_s": 1.0, "dashboards_page_s": 3.0, "chat_count_s": 2.0}
    largest = [r for r in rows if r["photos"] == max(args.sizes)]
    print(json.dumps({"bench": "million", "cpus": os.cpu_count(), "rows": rows, "targets": targets,
                      "met_at_largest": {f"{r['engine']}:{k}": (r.get(k) is not None and r[k] <= v)
                                         for r in largest for k, v in targets.items()}}, indent=1))


if __name__ == "__main__":
    main()
