"""Chat's filters read from catalog columns (core.catalog_keys, core.chat.keys_sql) select exactly the photos that
`cond_holds` selects from the index metadata Chroma holds, on SQLite and PostgreSQL; an older catalog gets the
columns filled in place."""
from __future__ import annotations

import itertools

from core.annotate.base import AnnotationResult
from core.annotations import record_results, set_corrections
from core.annotations.index_sync import chroma_metadata
from core.catalog import Catalog, FileRecord, Photo
from core.catalog_keys import SqlWhere, facts_terms
from core.chat.concepts import Cond, cond_holds
from core.chat.keys_sql import plan_sql
from core.facts import PORTRAIT_FACE_SHARE, PhotoFacts

MODEL = "keys-model"
TOPICS = ["food", "home", "street life"]


def _facts(i: int) -> PhotoFacts | None:
    if i % 11 == 10:
        return None  # not reindexed yet: has none of the facts keys
    people = i % 5
    dets = [("person", 0.9, (0.1, 0.1, 0.3, 0.9))] * min(people, 2) + ([("dog", 0.8, (0.5, 0.5, 0.9, 0.9))] if i % 3 == 0 else []) \
        + ([("couch", 0.7, (0.0, 0.4, 0.6, 1.0))] if i % 4 == 1 else [])
    return PhotoFacts(people=people, faces=1 if people == 1 else 0, largest_face=PORTRAIT_FACE_SHARE * 2 if i % 2 else 0.0,
                      text=[("EXIT", 0.9)] if i % 6 == 0 else [], text_checked=True,
                      scene=["", "kitchen", "bedroom", "street"][i % 4], colours=[["white", "red"], ["black"], []][i % 3],
                      setting=["indoor", "outdoor", ""][i % 3], monochrome=i % 7 == 0, detections=dets, detector="centernet-320")


def _library(target, tmp_path) -> tuple[Catalog, dict[str, dict]]:
    """40 photos with facts of every kind, 36 indexed, some annotated (two annotators, a correction); returns the
    catalog and each indexed photo's index metadata as ingest + Annotate write it to Chroma."""
    cat = Catalog(target, library_dir=tmp_path / "library")
    photos = [Photo(id=f"{i:064x}", path=str(tmp_path / f"p{i:02d}.jpg"), source="folder", class_name=f"c{i % 3}",
                    added_at=f"2026-01-01T00:00:{i:02d}+00:00", taken_at=f"2020-0{1 + i % 9}-01T10:00:00", facts=_facts(i))
              for i in range(40)]
    indexed = [p.id for p in photos if int(p.id, 16) % 10 != 9]
    cat.commit_batch(photos, [FileRecord(p.path, p.id, 1, 1) for p in photos], MODEL, indexed=indexed)
    results = [AnnotationResult(photo_id=p.id, scores={"Safety": 1 + i % 5, "Privacy": 5 - i % 5}, sentiment=["negative", "neutral", "positive"][i % 3],
                                sentiment_score=[-0.5, 0.0, 0.5][i % 3], topics=[TOPICS[i % 3]] + (["home"] if i % 4 == 0 else []))
               for i, p in enumerate(photos) if i % 5 != 4]
    record_results(cat, "a", "1", results)
    set_corrections(cat, {photos[0].id: {"sentiment": "positive", "topics": ["street life"]}})
    from core.annotations import effective_records

    recs = {r["photo_id"]: r for r in effective_records(cat)}
    metas = {}
    for p in photos:
        if p.id not in indexed:
            continue
        m = {"class_name": p.class_name} | (p.facts.index_metadata() if p.facts else {})
        if recs[p.id]["annotator"] or recs[p.id]["corrected"]:
            m |= chroma_metadata(recs[p.id], TOPICS)
        metas[p.id] = m
    return cat, metas


CONDS = [
    Cond(key="has_people", value=True), Cond(key="has_people", value=True, negate=True),
    Cond(key="people_count", value=2), Cond(key="people_count", op="ge", value=3), Cond(key="portrait", value=True),
    Cond(key="has_text", value=True), Cond(key="has_text", value=True, negate=True), Cond(key="setting", value="outdoor"),
    Cond(key="monochrome", value=True), Cond(key="monochrome", value=True, negate=True), Cond(key="scene", value="kitchen"),
    Cond(key="scene", op="in", value=["bedroom", "street"]), Cond(key="scene", value="kitchen", negate=True),
    Cond(key="detected", op="has", value="dog"), Cond(key="detected", op="has", value="couch", negate=True),
    Cond(key="colours", op="has", value="red"), Cond(key="topic_food", value=True), Cond(key="topic_street_life", value=True),
    Cond(key="topic_home", value=True, negate=True), Cond(key="detected", op="has", value="dog", also="dogs"),
    Cond(key="detected", op="has", value="couch", also="sofa", negate=True), Cond(key="semantic", value="dogs"),
    Cond(key="semantic", value="sofa", negate=True),
]
WHERES = [None, {"sentiment": "positive"}, {"$and": [{"topic_home": True}, {"Safety": {"$gte": 3}}]}, {"class_name": "c1"},
          {"$and": [{"has_people": True}, {"scene": "kitchen"}]}, {"detected": {"$contains": "dog"}}, {"people_count": {"$gte": 3}},
          {"sentiment_score": {"$gte": -1.0}}, {"Privacy": {"$lte": 2}}]


def test_sql_filters_select_what_the_index_metadata_does(catalog_target, tmp_path):
    cat, metas = _library(catalog_target, tmp_path)
    ids = sorted(metas)
    semantic = {"dogs": set(ids[::4]), "sofa": set(ids[1::5])}  # as a search's matches would be

    def by_sql(where, groups, must=None) -> set[str]:
        clause, params = plan_sql(where, groups, semantic, TOPICS, must)
        return {r[0] for r in cat.key_rows(MODEL, clause, params)}

    def by_metadata(where_ids, groups, must=None) -> set[str]:
        return {pid for pid in where_ids if (must is None or pid in must)
                and all(any(cond_holds(c, metas[pid], semantic, pid) for c in g) for g in groups)}

    everything = set(ids)
    assert by_sql(None, []) == everything
    for c in CONDS:  # each condition alone
        assert by_sql(None, [[c]]) == by_metadata(everything, [[c]]), c
    for a, b in itertools.combinations(CONDS[:12], 2):  # "a or b", "a and b"
        assert by_sql(None, [[a, b]]) == by_metadata(everything, [[a, b]]), (a, b)
        assert by_sql(None, [[a], [b]]) == by_metadata(everything, [[a], [b]]), (a, b)
    for where in WHERES:
        sql = SqlWhere(TOPICS)
        where_ids = {r[0] for r in cat.key_rows(MODEL, sql.where(where), sql.params)}
        assert where_ids == {pid for pid in ids if _chroma_match(where, metas[pid])}, where
        assert by_sql(where, [[CONDS[0], CONDS[13]]], must=set(ids[::2])) == by_metadata(where_ids, [[CONDS[0], CONDS[13]]], set(ids[::2]))
    assert 0 < len(by_sql(None, [[CONDS[13]]])) < len(ids)  # the conditions do select something, not all


def _chroma_match(where, meta) -> bool:
    """A Chroma `where` as Chroma evaluates it (equality, $gte, $lte, $contains on arrays, $and)."""
    if not where:
        return True
    if "$and" in where:
        return all(_chroma_match(w, meta) for w in where["$and"])
    (key, cond), = where.items()
    if key not in meta:
        return False
    value = meta[key]
    if not isinstance(cond, dict):
        return value == cond
    (op, arg), = cond.items()
    return {"$gte": lambda: value >= arg, "$lte": lambda: value <= arg, "$contains": lambda: arg in value}[op]()


def test_vocabulary_and_sort_values_come_from_the_columns(catalog_target, tmp_path):
    cat, metas = _library(catalog_target, tmp_path)
    vocab = cat.key_vocabulary()
    assert vocab["scenes"] == ["bedroom", "kitchen", "street"] and vocab["topics"] == sorted(TOPICS)
    assert vocab["has_facts"] and vocab["detected"]
    assert cat.key_exists(MODEL, {"sentiment_score": {"$gte": -1.0}}) and not cat.key_exists(MODEL, {"Belonging": {"$gte": 1}})
    rows = cat.key_rows(MODEL, "1=1", sort_key="Safety")
    assert {r[0]: r[4] for r in rows if r[4] is not None} == {pid: m["Safety"] for pid, m in metas.items() if "Safety" in m}


def test_detected_counts_are_photos_per_label_of_present_photos(catalog_target, tmp_path):
    cat, _ = _library(catalog_target, tmp_path)
    facts = {i: _facts(i) for i in range(40)}
    expected: dict[str, int] = {}
    for f in facts.values():
        for label in {d[0] for d in (f.detections if f else [])} - {"person"}:  # once per photo; persons are the people facts
            expected[label] = expected.get(label, 0) + 1
    counts = cat.detected_counts()
    assert counts == expected and list(counts) == sorted(expected, key=lambda k: (-expected[k], k))  # most photos first
    gone = next(tmp_path / f"p{i:02d}.jpg" for i in range(40) if facts[i] and any(d[0] == "couch" for d in facts[i].detections))
    cat.prune_missing(tmp_path, {str(tmp_path / f"p{i:02d}.jpg") for i in range(40)} - {str(gone)})  # marked missing: not counted
    assert cat.detected_counts()["couch"] == expected["couch"] - 1
    gone_id = f"{int(gone.stem[1:]):064x}"
    cat.commit_batch([], [FileRecord(str(gone), gone_id, 1, 1)], None)  # the file is back: counted again
    assert cat.detected_counts() == expected
    cat.set_facts([(gone_id, PhotoFacts(detections=[("cat", 0.9, (0.0, 0.0, 0.5, 0.5))] * 2, detector="centernet-320"))])
    assert cat.detected_counts()["couch"] == expected["couch"] - 1 and cat.detected_counts()["cat"] == 1  # once, not per box
    cat.set_facts([(gone_id, PhotoFacts(detections=[("cat", 0.9, (0.0, 0.0, 0.5, 0.5))] * 2, detector="centernet-320"))])  # rerun
    assert cat.detected_counts()["cat"] == 1
    cat.remove_photo(gone_id)
    assert "cat" not in cat.detected_counts()
    with cat.db.connect() as con:  # the rows are exactly the present photos' labels, nothing left over
        assert not con.execute("SELECT COUNT(*) FROM photo_objects WHERE photo_id=?", (gone_id,)).fetchone()[0]


def test_an_older_catalog_gets_its_object_rows_in_place(catalog_target, tmp_path):
    """A schema-7 catalog (facts_terms, no photo_objects) opened by this version: the rows are written from the terms."""
    cat, _ = _library(catalog_target, tmp_path)
    want = cat.detected_counts()
    with cat.db.connect() as con:
        con.execute("DROP TABLE photo_objects")
        con.execute("UPDATE meta SET value='7' WHERE key='schema_version'")
        con.execute("UPDATE meta SET value='[2, 3, 4, 5, 6, 7]' WHERE key='migrations'")
    cat.close()
    again = Catalog(catalog_target, library_dir=tmp_path / "library")
    assert again.detected_counts() == want and set(want) == {"dog", "couch"}


def test_an_older_catalog_gets_its_facts_terms_in_place(catalog_target, tmp_path):
    """A schema-5 catalog (facts JSON, no facts_terms) opened by this version: the terms are written from the JSON."""
    cat, _ = _library(catalog_target, tmp_path)
    with cat.db.connect() as con:
        want = {r[0]: r[1] for r in con.execute("SELECT id, facts_terms FROM photos")}
        con.execute("DROP INDEX photos_keys")
        con.execute("ALTER TABLE photos DROP COLUMN facts_terms")
        con.execute("UPDATE meta SET value='5' WHERE key='schema_version'")
        con.execute("UPDATE meta SET value='[2, 3, 4, 5]' WHERE key='migrations'")
    cat.close()
    again = Catalog(catalog_target, library_dir=tmp_path / "library")
    with again.db.connect() as con:
        got = {r[0]: r[1] for r in con.execute("SELECT id, facts_terms FROM photos")}
    assert got == want and sum(v is None for v in got.values()) == 3  # the three photos without facts stay without
    assert want[f"{0:064x}"] == facts_terms(_facts(0)) == ",setting:indoor,mono,det:dog,col:white,col:red,"
