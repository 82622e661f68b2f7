"""The catalog on a shared database: concurrent writers, the status line, clear errors, and ingest + search
through the CLI into a real PostgreSQL server."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import time

import pytest

from core import annotations as ann
from core.annotate.base import AnnotationResult
from core.catalog import Catalog, FileRecord, Photo
from core.db import open_database
from tests.conftest import PYTHON, REPO, free_port

SHARED, OWN, WORKERS = 30, 12, 4


def _writer(target: str, worker: int, start, batch: int) -> None:
    """One machine's ingest: the shared photos (same share path, plus a copy of its own) and photos only it has."""
    cat = Catalog(target)
    shared = [f"{i:064x}" for i in range(SHARED)]
    own = [f"{worker + 1:x}{i:063x}" for i in range(OWN)]
    work = [(pid, f"/share/{pid[-8:]}.jpg") for pid in shared] + [(pid, f"/w{worker}/copy-{pid[-8:]}.jpg") for pid in shared]
    work += [(pid, f"/w{worker}/{pid[-8:]}.jpg") for pid in own]
    if worker % 2:
        work.reverse()  # half the writers meet the shared rows in the opposite order
    start.wait(60)
    for i in range(0, len(work), batch):
        chunk = work[i:i + batch]
        photos = [Photo(id=pid, path=path, source="folder", class_name=f"w{worker}") for pid, path in chunk]
        cat.commit_batch(photos, [FileRecord(path, pid, 1, 1) for pid, path in chunk], "m", [pid for pid, _ in chunk])
    ann.record_results(cat, "zs", "v1", [AnnotationResult(pid, sentiment="positive") for pid in shared[:10]])


def _scalar(target, sql: str) -> int:
    db = open_database(target)
    try:
        with db.connect() as con:
            return int(con.execute(sql).fetchone()[0])
    finally:
        db.close()


@pytest.mark.parametrize("batch", [7])
def test_concurrent_writers_store_each_photo_exactly_once(catalog_target, batch):
    """Several processes ingest overlapping photos at once (upserts keyed on content hashes): no duplicate, no loss, no error."""
    Catalog(catalog_target)  # created up front, as by the first machine; the opens below race only the no-op upgrade check
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(catalog_target), w, start, batch)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    start.set()
    for p in procs:
        p.join(180)
    assert [p.exitcode for p in procs] == [0] * WORKERS
    total = SHARED + WORKERS * OWN
    cat = Catalog(catalog_target)
    assert cat.count() == total == _scalar(catalog_target, "SELECT COUNT(DISTINCT id) FROM photos")
    assert cat.count_files() == SHARED + WORKERS * (SHARED + OWN)
    assert len(cat.indexed_ids("m")) == total == _scalar(catalog_target, "SELECT COUNT(*) FROM indexed")
    assert {r["ok"] for r in ann.annotators(cat)} == {10}
    assert _scalar(catalog_target, "SELECT COUNT(*) FROM files f LEFT JOIN photos p ON p.id = f.photo_id WHERE p.id IS NULL") == 0


def _cli(args: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "core", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _env(tmp_path, **extra) -> dict:
    env = dict(os.environ, PHOTOLORE_DATA_DIR=str(tmp_path / "data"), PHOTOLORE_BACKEND="bundled",
               PHOTOLORE_SECRETS=str(tmp_path / "none.toml"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("CHROMA_HOST", None)
    env.update(extra)
    return env


def test_a_wrong_url_or_a_server_that_is_down_is_named_within_seconds(tmp_path):
    for url, says in (("mysql://me:pw@db.example/photos", "is not a PostgreSQL URL"),
                      (f"postgresql://me:hunter2@127.0.0.1:{free_port()}/photos", "cannot reach the PostgreSQL catalog")):
        t0 = time.monotonic()
        proc = _cli(["status"], _env(tmp_path, PHOTOLORE_CATALOG_URL=url), timeout=60)
        assert proc.returncode == 2 and time.monotonic() - t0 < 15
        assert says in proc.stderr and "PHOTOLORE_CATALOG_URL" in proc.stderr and "Traceback" not in proc.stderr
        assert "hunter2" not in proc.stderr and "pw@" not in proc.stderr  # the password is never printed


@pytest.mark.slow
def test_cli_ingest_and_search_on_postgres(pg_server, tmp_path):
    """`python -m core ingest DIR` into PostgreSQL (+ embedded Chroma), then status and search, as a user runs them."""
    from core.demo import write_demo_photos

    folder = tmp_path / "photos"
    paths = write_demo_photos(folder)
    url = pg_server.new_schema_url()
    with_password = url.replace("photolore@", "photolore:not-needed@")  # trust auth ignores it; status must hide it
    env = _env(tmp_path, PHOTOLORE_CATALOG_URL=with_password)
    proc = _cli(["ingest", str(folder), "--json"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["added"] == len(paths) > 0
    assert not (tmp_path / "data" / "catalog.sqlite").exists()  # nothing went to the SQLite default
    again = json.loads(_cli(["ingest", str(folder), "--json"], env).stdout)
    assert again["added"] == 0

    status = _cli(["status"], env)
    assert status.returncode == 0, status.stderr
    assert "catalog: PostgreSQL postgresql://photolore:***@127.0.0.1" in status.stdout and "not-needed" not in status.stdout
    assert f"photos: {report['added']}" in status.stdout

    hits = _cli(["search", "a", "cup", "of", "coffee", "-k", "3", "--json"], env)
    assert hits.returncode == 0, hits.stderr[-3000:]
    assert json.loads(hits.stdout)[0]["path"].endswith("coffee.jpg")


def test_a_deadlock_between_two_writers_is_retried(pg_server):
    """Two transactions lock two photos in opposite orders: PostgreSQL aborts one, transact() runs it again."""
    import threading

    cat = Catalog(pg_server.new_schema_url())
    a, b = "a" * 64, "b" * 64
    cat.commit_batch([Photo(id=a, path="/a.jpg", source="f"), Photo(id=b, path="/b.jpg", source="f")], [], None)
    both_hold_one = threading.Barrier(2)
    attempts: list[str] = []
    errors: list[BaseException] = []

    def writer(first: str, second: str) -> None:
        def work(con):
            attempts.append(first)
            con.execute("UPDATE photos SET caption=? WHERE id=?", (f"by {first[0]}", first))
            if len(attempts) <= 2:
                both_hold_one.wait(10)
            con.execute("UPDATE photos SET caption=? WHERE id=?", (f"by {first[0]}", second))
        try:
            cat.db.transact(work)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=pair) for pair in ((a, b), (b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(attempts) == 3  # one of the two ran twice
    assert cat.get(a).caption == cat.get(b).caption  # the retried one wrote both rows last


@pytest.mark.slow
def test_app_pages_read_a_postgres_catalog(pg_server, bundled_backend, tmp_path, monkeypatch):
    """The Library and Search pages (AppTest) over a library whose catalog is on PostgreSQL."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core.demo import build_demo
    from core.services import build_services
    from core.settings import Settings

    monkeypatch.setenv("PHOTOLORE_CATALOG_URL", pg_server.new_schema_url())
    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHOTOLORE_BACKEND", "bundled")
    monkeypatch.setenv("PHOTOLORE_SECRETS", str(tmp_path / "none.toml"))
    assert build_demo(build_services(Settings(), backend=bundled_backend)).added == 15
    assert not (tmp_path / "data" / "catalog.sqlite").exists()
    st.cache_resource.clear()
    try:
        lib = AppTest.from_file(str(REPO / "pages/library.py"), default_timeout=240).run()
        assert not lib.exception, [e.value for e in lib.exception]
        assert [m.value for m in lib.metric][:1] == ["15"]
        search = AppTest.from_file(str(REPO / "pages/search.py"), default_timeout=240).run()
        search.text_input(key="search-text").input("a cup of coffee").run()
        assert not search.exception, [e.value for e in search.exception]
        first = next(c.value for c in search.caption if c.value.startswith("**0."))
        assert "coffee" in first
    finally:
        st.cache_resource.clear()


def test_connections_end_with_their_threads(pg_server):
    """An app server runs each session in a thread of its own: a connection must not outlive its thread."""
    import gc
    import threading

    import psycopg

    cat = Catalog(pg_server.new_schema_url())
    for _ in range(40):
        t = threading.Thread(target=cat.count)
        t.start()
        t.join()
    gc.collect()
    with psycopg.connect(pg_server.url) as con:
        n = con.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type='client backend' AND datname='postgres'").fetchone()[0]
    assert n <= 5, f"{n} connections left open by 40 finished threads"
    cat.close()
