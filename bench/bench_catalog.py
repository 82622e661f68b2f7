"""The PostgreSQL catalog against the SQLite one, in the same run: ingest writes and a search page load.

    python bench/bench_catalog.py [--n 100000] [--batch 16] [--loads 200] [--url postgresql://...]

Ingest: `n` photos (real-sized rows: facts JSON, tags, thumbnail path) committed with
`commit_batch` in batches of `batch`, as ingest's writer does; photos/s per engine.
Search page load at `n` photos: what pages/search.py asks the catalog for on one render:
`facts_summary()` (the filters), `count()`, and `get_many` of the 20 hits; p50/p95 per engine.
Without `--url` a private PostgreSQL server is started (tests/pgserver.py, on 127.0.0.1, durability
off as in the tests; with `--durable` fsync and synchronous_commit stay on, like a real server).
SQLite runs in WAL mode with synchronous=NORMAL, as the app does. One JSON object is printed; the
ratios (postgres / sqlite) are the numbers to read.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.catalog import Catalog, FileRecord, Photo  # noqa: E402
from core.facts import PhotoFacts  # noqa: E402


def _photo(i: int) -> Photo:
    facts = PhotoFacts(caption=f"a kitchen with a cup {i}", objects=[("cup", 0.8), ("table", 0.5)], people=i % 3,
                       scene=("kitchen", "street", "beach", "")[i % 4], scene_score=0.6, colours=["red", "white"],
                       text=[("Cafe", 0.9)] if i % 5 == 0 else [], text_checked=True)
    return Photo(id=f"{i:064x}", path=f"/photos/c{i % 50}/p{i:07d}.jpg", source="folder", class_name=f"c{i % 50}", width=4032,
                 height=3024, format="JPEG", taken_at="2024-05-01T10:00:00", added_at="2026-01-01T00:00:00+00:00",
                 thumb_path=f"/data/thumbs/{i:064x}.jpg", caption=facts.caption, caption_source="bundled:x",
                 tags=[("cup", 0.8), ("table", 0.5)], facts=facts, phash=f"{i:016x}")


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2)


def measure(target, n: int, batch: int, loads: int) -> dict:
    cat = Catalog(target)
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        photos = [_photo(i) for i in range(start, min(n, start + batch))]
        cat.commit_batch(photos, [FileRecord(p.path, p.id, 2_000_000, 1) for p in photos], "m", [p.id for p in photos])
    ingest_s = time.perf_counter() - t0
    rng = random.Random(0)
    times = []
    for _ in range(loads):
        ids = [f"{i:064x}" for i in rng.sample(range(n), 20)]
        t = time.perf_counter()
        cat.facts_summary()
        cat.count()
        got = cat.get_many(ids)
        times.append(time.perf_counter() - t)
        assert len(got) == 20
    hits = []
    for _ in range(loads):
        ids = [f"{i:064x}" for i in rng.sample(range(n), 20)]
        t = time.perf_counter()
        cat.get_many(ids)
        hits.append(time.perf_counter() - t)
    cat.close()
    return {"ingest_photos_per_s": round(n / ingest_s, 1), "ingest_s": round(ingest_s, 2),
            "page_load_ms_p50": _pct(times, 0.5), "page_load_ms_p95": _pct(times, 0.95),
            "hits_rows_ms_p50": _pct(hits, 0.5), "hits_rows_ms_p95": _pct(hits, 0.95)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--loads", type=int, default=200)
    ap.add_argument("--url", default=None, help="an existing PostgreSQL database (its tables are created; use an empty one)")
    ap.add_argument("--durable", action="store_true", help="the private server keeps fsync and synchronous_commit on")
    args = ap.parse_args(argv)

    server = None
    url = args.url
    if url is None:
        from tests.conftest import free_port
        from tests.pgserver import PostgresServer, find_bin_dir

        bin_dir = find_bin_dir()
        if bin_dir is None:
            sys.exit("bench_catalog: PostgreSQL binaries not found (scripts/setup.sh installs them) and no --url given")
        server = PostgresServer(bin_dir, free_port(), durable=args.durable).start()
        url = server.new_schema_url()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = measure(Path(tmp) / "catalog.sqlite", args.n, args.batch, args.loads)
        postgres = measure(url, args.n, args.batch, args.loads)
    finally:
        if server is not None:
            server.stop()
    ratio = {k: round(postgres[k] / sqlite[k], 2) for k in sqlite if sqlite[k]}
    print(json.dumps({"n": args.n, "batch": args.batch, "loads": args.loads, "durable_server": bool(args.durable or args.url),
                      "sqlite": sqlite, "postgres": postgres, "postgres_over_sqlite": ratio}, indent=1))


if __name__ == "__main__":
    main()
