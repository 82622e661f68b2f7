"""The catalog at a lifetime of photos: counts from indexes that agree with the lists they replace, deep grid pages
read through an index, and the whole-library annotation frame read in one pass (bench/bench_million.py times them)."""
from __future__ import annotations

import sqlite3

import pytest

from bench.bench_million import MODEL, build
from core.annotate.base import AnnotationResult
from core.annotations import effective_annotations, effective_records, record_results, set_corrections
from core.catalog import Catalog, FileRecord, Photo


def _photo(i: int, root: str = "/photos") -> Photo:
    return Photo(id=f"{i:064x}", path=f"{root}/p{i:03d}.jpg", source="folder", class_name=f"c{i % 3}",
                 added_at=f"2026-01-01T00:00:{i % 7:02d}+00:00", caption=f"photo {i}", caption_source="bundled")


def test_counts_from_indexes_agree_with_the_lists(catalog_target, tmp_path):
    """count_not_indexed / count_stale_facts replace len(photos_not_indexed) / len(photos_with_stale_facts) on the Library
    page: same numbers after indexing some photos, a photo going missing, a photo removed and facts written for one."""
    from core.facts import FACTS_VERSION, PhotoFacts

    cat = Catalog(catalog_target, library_dir=tmp_path / "library")
    photos = [_photo(i, str(tmp_path / "photos")) for i in range(12)]
    cat.commit_batch(photos, [FileRecord(p.path, p.id, 1, 1) for p in photos], MODEL, indexed=[p.id for p in photos[:8]])

    def agree(expect_not_indexed: int, expect_stale: int) -> None:
        assert cat.count_not_indexed(MODEL) == len(cat.photos_not_indexed(MODEL)) == expect_not_indexed
        assert cat.count_stale_facts() == len(cat.photos_with_stale_facts()) == expect_stale

    agree(4, 12)
    cat.prune_missing(tmp_path / "photos", {p.path for p in photos if p.id not in (photos[0].id, photos[9].id)})  # one indexed, one not
    agree(3, 10)
    cat.remove_photo(photos[1].id)  # an indexed photo
    agree(3, 9)
    cat.set_facts([(photos[2].id, PhotoFacts(caption="a cup", version=FACTS_VERSION)), (photos[3].id, PhotoFacts(version=1))])
    agree(3, 8)
    assert cat.count_not_indexed("another-model") == 9
    # the ids that "annotate all / a class" jobs take: list_photos' ids and order, without the rows
    assert cat.photo_ids() == [p.id for p in cat.list_photos(limit=100)] and len(cat.photo_ids()) == 9
    assert cat.photo_ids(class_name="c1") == [p.id for p in cat.list_photos(class_name="c1", limit=100)]
    assert cat.photo_ids(class_name="nope") == []


def test_deep_grid_pages_and_class_counts_read_an_index(tmp_path):
    """At a million photos the grid's ORDER BY sorted the whole table for every page (15 s for a page in the middle)."""
    cat = Catalog(tmp_path / "catalog.sqlite", library_dir=tmp_path / "library")
    build(cat, 3000)
    con = sqlite3.connect(tmp_path / "catalog.sqlite")
    plans = {
        "grid": "SELECT * FROM photos WHERE missing=0 ORDER BY added_at, path LIMIT 48 OFFSET 1500",
        "class grid": "SELECT * FROM photos WHERE missing=0 AND class_name='folder000' ORDER BY added_at, path LIMIT 48 OFFSET 100",
        "classes": "SELECT class_name, COUNT(*) FROM photos WHERE missing=0 GROUP BY class_name",
    }
    for name, sql in plans.items():
        plan = " ".join(r[3] for r in con.execute("EXPLAIN QUERY PLAN " + sql))
        assert "USING" in plan and "INDEX" in plan and "TEMP B-TREE" not in plan, (name, plan)
    # the pages still hold what OFFSET paging over the old order gave
    everything = cat.list_photos(limit=5000)
    assert [p.id for p in cat.list_photos(limit=48, offset=1500)] == [p.id for p in everything[1500:1548]]
    assert [s.id for s in cat.photo_summaries()] == [p.id for p in everything] == [p.id for p in cat.iter_photos(batch=700)]


def test_whole_library_frame_in_one_pass_matches_the_per_photo_view(catalog_target, tmp_path):
    """effective_records for every photo (Dashboards, exports) reads the catalog once and parses only each photo's winning
    prediction; it must give what asking for the same photos by id gives, corrections and ties included."""
    cat = Catalog(catalog_target, library_dir=tmp_path / "library")
    photos = [_photo(i, str(tmp_path / "library" / "trip")) for i in range(6)] + [_photo(9, "/elsewhere")]
    cat.commit_batch(photos, [FileRecord(p.path, p.id, 1, 1) for p in photos], MODEL)
    ids = [p.id for p in photos]
    scores = {d: 3 for d in ("Safety", "Belonging", "Naturalness", "Shared", "Privacy", "Convenience")}
    record_results(cat, "a", "1", [AnnotationResult(i, scores=scores, sentiment="neutral", sentiment_score=0.0, topics=["home"]) for i in ids])
    # written later in the same second: insert order decides, as annotation_rows orders them
    record_results(cat, "b", "1", [AnnotationResult(ids[0], scores={**scores, "Safety": 5}, sentiment="positive", sentiment_score=0.9)])
    record_results(cat, "c", "1", [AnnotationResult(ids[1], error="bad reply")])  # an error never wins
    set_corrections(cat, {ids[2]: {"sentiment": "negative", "Privacy": 1}})
    whole = effective_records(cat)
    by_id = effective_records(cat, list(reversed(ids)))
    assert [r["photo_id"] for r in whole] == [p.id for p in cat.list_photos(limit=100)]
    assert sorted(whole, key=lambda r: r["photo_id"]) == sorted(by_id, key=lambda r: r["photo_id"])
    got = {r["photo_id"]: r for r in whole}
    assert got[ids[0]]["Safety"] == 5 and got[ids[0]]["annotator"] == "b" and got[ids[0]]["topics"] == []
    assert got[ids[1]]["annotator"] == "a" and got[ids[1]]["sentiment"] == "neutral"
    assert got[ids[2]]["sentiment"] == "negative" and got[ids[2]]["sentiment_score"] == -1.0 and got[ids[2]]["Privacy"] == 1
    assert got[ids[2]]["corrected"] == ["Privacy", "sentiment"]
    assert got[ids[3]]["filename"] == "trip/p003.jpg" and got[photos[-1].id]["filename"] == "p009.jpg"
    frame = effective_annotations(cat)
    assert len(frame) == 7 and str(frame["Safety"].dtype) == "Int64"


@pytest.mark.parametrize("n", [4000])
def test_the_bench_library_draws_every_chart_within_the_mark_budget(tmp_path, n):
    """The synthetic library of bench_million (200 folders, one annotation a photo) through the Dashboards' code."""
    from core import charts
    from core import dashboards as d

    cat = Catalog(tmp_path / "catalog.sqlite", library_dir=tmp_path / "library")
    build(cat, n)
    df = d.frame_from_catalog(cat)
    assert len(df) == n and df["Safety"].notna().all() and set(df["sentiment"]) == {"negative", "neutral", "positive"}
    sections = charts.build_sections(df, box_by="class_name")
    drawn = [s for s in sections if s.chart is not None]
    assert drawn and all(charts.data_rows(s.chart) <= charts.MAX_MARKS for s in drawn), [s.key for s in sections if s.chart is None]


def test_review_pages_hold_what_filtering_the_whole_library_gave(catalog_target, tmp_path):
    """The Annotate page's review table pages in SQL (review_count / review_ids) instead of reading every photo's
    annotations per rerun: the same photos, in the same order, as the filter it replaces, per class and overall."""
    from core.annotations import DIMENSIONS, review_count, review_ids

    cat = Catalog(catalog_target, library_dir=tmp_path / "library")
    photos = [_photo(i, str(tmp_path / "photos")) for i in range(30)]
    cat.commit_batch(photos, [FileRecord(p.path, p.id, 1, 1) for p in photos], MODEL, indexed=[p.id for p in photos])
    record_results(cat, "a", "1", [AnnotationResult(photo_id=p.id, scores={"Safety": 3} if i % 3 == 0 else {},
                                                    sentiment="positive" if i % 3 == 1 else None, topics=["food"])
                                   for i, p in enumerate(photos) if i % 4 != 3])  # i % 3 == 2: topics only, not shown
    set_corrections(cat, {photos[3].id: {"Privacy": 2}})  # never predicted, corrected: shown
    cat.prune_missing(tmp_path / "photos", {p.path for p in photos[1:]})  # a missing photo is never listed
    df = effective_annotations(cat)
    for class_name in (None, "c0", "c2"):
        for annotated_only in (True, False):
            want = df if class_name is None else df[df.class_name == class_name]
            if annotated_only:
                want = want[want[list(DIMENSIONS)].notna().any(axis=1) | want.sentiment.notna()]
            scope = {"class_name": class_name, "annotated_only": annotated_only}
            pages = [review_ids(cat, offset=o, limit=4, **scope) for o in range(0, 32, 4)]
            assert review_count(cat, **scope) == len(want) and [i for p in pages for i in p] == list(want.photo_id), scope
    assert 0 < review_count(cat) < review_count(cat, annotated_only=False) == 29  # the filters do filter
