"""annotation_values, the effective values the store rewrites in the transaction of every write: its rows equal a merge of
latest_ok and corrections from scratch after each kind of write, a backfill equals the maintained table, and
effective_records (read from the table) gives what the merge done on every read gave before.

Every test runs on an SQLite and a PostgreSQL catalog (the catalog_target fixture)."""
from __future__ import annotations

import threading
import time
from typing import Any, Optional

from core.annotate.base import AnnotationResult
from core.annotate.prompts import DIMENSIONS
from core.annotations import (VALUE_COLUMNS, caption_truth, corrections, effective_annotations, effective_records, effective_values,
                              ensure_schema, record_results, reset_annotator, set_corrections, value_rows)
from core.annotations.effective import PhotoFilenames
from core.annotations.store import latest_ok, write_captions
from core.annotations.values import from_row, to_row
from core.catalog import Catalog, FileRecord, Photo, now_iso

COLUMNS = ", ".join(VALUE_COLUMNS.values())


def _catalog(target, tmp_path, n: int = 8) -> tuple[Catalog, list[str]]:
    cat = Catalog(target, library_dir=tmp_path / "library")
    photos = [Photo(id=f"{i:064x}", path=str(tmp_path / "library" / "trip" / f"p{i}.jpg"), source="test", class_name=f"c{i % 2}",
                    added_at=f"2026-01-01T00:00:{i:02d}+00:00", caption=f"photo {i}") for i in range(n)]
    photos.append(Photo(id=f"{99:064x}", path="/elsewhere/x.jpg", source="test", added_at="2026-01-02T00:00:00+00:00"))
    cat.commit_batch(photos, [FileRecord(p.path, p.id, 1, 1) for p in photos], "m")
    return cat, [p.id for p in photos]


def _result(pid: str, safety: int, sentiment: str = "neutral", topics=("home",), **kw) -> AnnotationResult:
    scores = {d: 3 for d in DIMENSIONS} | {"Safety": safety}
    return AnnotationResult(pid, scores=scores, concept_text="a room", sentiment=sentiment, sentiment_score={"negative": -0.7, "neutral": 0.1,
                            "positive": 0.9}[sentiment], sentiment_caption=sentiment, topics=list(topics), **kw)


def _next_second() -> None:
    """Wait for the store's clock (whole seconds) to move on, so the next write is strictly later."""
    start = now_iso()
    while now_iso() == start:
        time.sleep(0.02)


def _table(cat: Catalog) -> dict[str, tuple]:
    with cat.db.connect() as con:
        return {r[0]: tuple(r) for r in con.execute(f"SELECT photo_id, {COLUMNS} FROM annotation_values")}


def _from_scratch(cat: Catalog) -> dict[str, tuple]:
    latest, fixes = latest_ok(cat), corrections(cat)
    return {pid: to_row(pid, effective_values(latest.get(pid), fixes.get(pid))) for pid in {*latest, *fixes}}


def _agrees(cat: Catalog) -> dict[str, tuple]:
    want = _from_scratch(cat)
    assert _table(cat) == want
    assert value_rows(cat) == {pid: from_row(row) for pid, row in want.items()}
    return want


def _old_effective_records(catalog: Catalog, photo_ids=None) -> list[dict]:
    """effective_records as it was before annotation_values (the merge on every read), the reference kept verbatim."""
    lists = ["topics", "topics_caption", "topics_image"]
    plain = ["concept_text", "sentiment", "sentiment_score", "sentiment_caption", "sentiment_image"]
    if photo_ids is not None:
        photo_ids = list(photo_ids)
        got = {p.id: p for p in catalog.photo_summaries(photo_ids)}
        photos = [got[i] for i in photo_ids if i in got]
    else:
        photos = catalog.photo_summaries()
    latest = latest_ok(catalog, [p.id for p in photos] if photo_ids is not None else None)
    fixes, truth = corrections(catalog), caption_truth(catalog)
    name = PhotoFilenames(catalog.library_dir)
    out = []
    for p in photos:
        pred = latest.get(p.id)
        values = pred["data"] if pred else {}
        fix = fixes.get(p.id)
        rec: dict[str, Any] = {"photo_id": p.id, "filename": name(p.path), "class_name": p.class_name,
                               "caption": p.caption or "", "caption_source": p.caption_source or "", "taken_at": p.taken_at,
                               "thumb_path": p.thumb_path}
        if fix:
            values = {**values, **fix}
        for f in plain:
            rec[f] = values.get(f)
        for f in DIMENSIONS:
            v = values.get(f)
            rec[f] = int(v) if v is not None else None
        for f in lists:
            rec[f] = list(values.get(f) or [])
        if fix and "sentiment" in fix and "sentiment_score" not in fix:
            rec["sentiment_score"] = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}[fix["sentiment"]]
        rec["concept_text"] = rec["concept_text"] or ""
        rec["annotator"] = pred["annotator"] if pred else None
        rec["version"] = pred["version"] if pred else None
        rec["annotated_at"] = pred["created_at"] if pred else None
        rec["corrected"] = sorted(fix) if fix else []
        rec["sentiment_truth"] = truth.get(p.id)
        out.append(rec)
    return out


def _write_history(cat: Catalog, ids: list[str], check=lambda cat: None) -> None:
    """Two annotators at different times, ties, errors, reruns, corrections set and cleared, resets; `check` after each write."""
    steps = [
        lambda: record_results(cat, "a", "1", [_result(i, 2) for i in ids[:6]] + [AnnotationResult(ids[6], error="no answer")]),
        # the same second as a's rows, most likely: the insert order decides, as latest_ok orders them
        lambda: record_results(cat, "b", "1", [_result(ids[0], 5, "positive", ("food", "city")), _result(ids[1], 4, topics=())]),
        _next_second,
        lambda: record_results(cat, "b", "2", [_result(ids[2], 1, "negative", ("food",), topics_caption=["food"]),
                                               AnnotationResult(ids[3], error="bad reply")]),  # an error never wins
        _next_second,
        lambda: record_results(cat, "a", "1", [_result(ids[0], 3, topics=("pets",))]),  # a rerun: earlier insert, later time
        lambda: set_corrections(cat, {ids[1]: {"sentiment": "negative", "Privacy": 1}, ids[7]: {"topics": ["pets", "food"]},
                                      ids[4]: {"concept_text": "a hall", "sentiment": "positive", "sentiment_score": 0.5}}),
        lambda: set_corrections(cat, {ids[1]: {"Privacy": None}}),  # clear one field
        lambda: set_corrections(cat, {ids[7]: {"topics": None}, ids[4]: {"concept_text": None, "sentiment": None,
                                                                         "sentiment_score": None}}),  # clear all
        lambda: set_corrections(cat, {ids[5]: {"Safety": 5}}),
        lambda: reset_annotator(cat, "b", version="2"),  # one version
        lambda: reset_annotator(cat, "a", photo_ids=[ids[3], ids[5]]),  # some photos
    ]
    for step in steps:
        step()
        check(cat)


def test_the_table_follows_every_write(catalog_target, tmp_path):
    cat, ids = _catalog(catalog_target, tmp_path)
    _write_history(cat, ids, _agrees)
    table = _agrees(cat)
    assert ids[3] not in table and ids[6] not in table and ids[7] not in table  # errors only; a correction cleared
    assert table[ids[5]][1:] == to_row(ids[5], effective_values(None, {"Safety": 5}))[1:]  # its prediction reset, its correction kept
    got = value_rows(cat, [ids[0], ids[1], ids[6]])
    assert set(got) == {ids[0], ids[1]} and got[ids[0]]["annotator"] == "a" and got[ids[0]]["topics"] == ["pets"]
    assert got[ids[1]]["sentiment_score"] == -1.0 and got[ids[1]]["corrected"] == ["sentiment"]

    set_corrections(cat, {ids[2]: {"topics": ["food", "city"]}})
    with cat.db.connect() as con:
        row = con.execute("SELECT topics, topics_caption, corrected, safety FROM annotation_values WHERE photo_id=?", (ids[2],)).fetchone()
        food = {r[0] for r in con.execute("SELECT photo_id FROM annotation_values WHERE topics LIKE '%,food,%'")}
    assert tuple(row) == (",food,city,", None, ",topics,", 2)
    assert food == {ids[2]}


def test_concurrent_writers_of_the_same_photos_leave_the_merge(catalog_target, tmp_path):
    """Writers in parallel (PostgreSQL: truly concurrent transactions) each see the others' committed rows before writing a value."""
    cat, ids = _catalog(catalog_target, tmp_path, n=20)
    ensure_schema(cat)
    set_corrections(cat, {ids[0]: {"Safety": 1}, ids[1]: {"sentiment": "positive"}})
    errors: list[BaseException] = []

    def write(annotator: str) -> None:
        try:
            for rnd in range(4):
                record_results(cat, annotator, str(rnd % 2), [_result(i, 1 + (rnd + len(annotator)) % 5) for i in reversed(ids[:20])])
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "bb", "ccc", "dddd")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(_agrees(cat)) == 20


def test_backfill_of_a_library_from_before_the_table_equals_the_maintained_one(catalog_target, tmp_path):
    cat, ids = _catalog(catalog_target, tmp_path)
    _write_history(cat, ids)
    maintained = _agrees(cat)
    with cat.db.connect() as con:
        con.execute("DROP TABLE annotation_values")

    # two processes opening the old library at once: one fills the table, the other finds it full
    opened = [Catalog(catalog_target, library_dir=tmp_path / "library") for _ in range(2)]
    threads = [threading.Thread(target=ensure_schema, args=(c,)) for c in opened]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _table(opened[0]) == maintained
    ensure_schema(Catalog(catalog_target, library_dir=tmp_path / "library"))
    assert _table(cat) == maintained

    # rows written around the store after this Catalog made the table (bench_million's bulk load) are read all the same
    with cat.db.connect() as con:
        con.execute("DELETE FROM annotation_values")
    assert [r["Safety"] for r in effective_records(cat)] == [r["Safety"] for r in _old_effective_records(cat)]
    assert _table(cat) == maintained


def test_effective_records_are_what_the_merge_on_every_read_gave(catalog_target, tmp_path):
    cat, ids = _catalog(catalog_target, tmp_path)
    _write_history(cat, ids)
    write_captions(cat, {ids[2]: ("a caption", "negative")}, "senticap")

    def same(photo_ids: Optional[list[str]]) -> None:
        got, want = effective_records(cat, photo_ids), _old_effective_records(cat, photo_ids)
        assert [list(r.items()) for r in got] == [list(r.items()) for r in want]  # keys, their order and values

    same(None)
    same([ids[5], "0" * 64, ids[0], ids[7], ids[2]])
    assert [r["photo_id"] for r in effective_records(cat)] == ids
    frame = effective_annotations(cat)
    assert len(frame) == len(ids) and str(frame["Safety"].dtype) == "Int64"
