"""Annotation storage: effective view, corrections, import/export, captions, SentiCap, Chroma sync (no model needed).

Every test runs on an SQLite and a PostgreSQL catalog (the catalog_target fixture)."""
import csv
import io
import json

import numpy as np
import pytest

from core import annotations as ann
from core.annotate.base import AnnotationResult
from core.catalog import FileRecord, Photo, open_catalog
from tests.conftest import write_image

HEADER = "filename,Safety,Belonging,Naturalness,Shared,Privacy,Convenience,concept_text"


class Env:
    def __init__(self, tmp_path):
        from core.settings import Settings
        from vectorstore.store import VectorStore

        self.settings = Settings(data_dir=tmp_path / "data")
        self.catalog = open_catalog(self.settings)
        self.store = VectorStore.from_settings(self.settings)
        lib = self.settings.library_dir
        paths = [write_image(lib / "rooms" / f"room{i}.jpg", seed=i) for i in range(3)]
        paths.append(write_image(tmp_path / "elsewhere" / "garden.jpg", seed=9))
        photos = [Photo(id=f"{i:064x}", path=str(p), source="test", class_name=p.parent.name, caption=f"caption {i}") for i, p in enumerate(paths)]
        self.catalog.commit_batch(photos, [FileRecord(p.path, p.id, 1, 1) for p in photos], "m", [p.id for p in photos])
        self.store.upsert("m", "image", [p.id for p in photos], np.eye(4, dtype=np.float32), [p.index_metadata() for p in photos])
        self.ids = [p.id for p in photos]
        self.names = ["rooms/room0.jpg", "rooms/room1.jpg", "rooms/room2.jpg", "garden.jpg"]


@pytest.fixture
def env(catalog_target, tmp_path):
    return Env(tmp_path)


def result(pid, base=3, **kw):
    scores = {d: min(5, base + j % 2) for j, d in enumerate(ann.DIMENSIONS)}
    return AnnotationResult(pid, scores=scores, concept_text="a cosy private room", sentiment="positive", sentiment_score=0.4,
                            sentiment_caption="neutral", sentiment_image="positive", topics=["interior"], topics_image=["interior"], **kw)


def meta(env, pid):
    col = env.store.collection("m", "image")
    return col.get(ids=[pid], include=["metadatas"])["metadatas"][0]


def test_effective_view_prefers_corrections_then_latest_prediction(env):
    a, b = env.ids[:2]
    ann.record_results(env.catalog, "zeroshot", "v1", [result(a, 2), AnnotationResult(b, error="no answer")])
    ann.record_results(env.catalog, "vlm-api", "m1", [result(a, 4)])
    df = ann.effective_annotations(env.catalog)
    assert list(df.filename) == env.names
    row_a = df.set_index("photo_id").loc[a]
    assert row_a.Safety == 4 and row_a.annotator == "vlm-api"  # the latest ok prediction
    assert row_a.topics == ["interior"] and row_a.sentiment == "positive"
    assert df.set_index("photo_id").loc[b].isna()["Safety"]  # an error is never a value
    ann.set_corrections(env.catalog, {a: {"Safety": 1, "sentiment": "negative", "topics": ["food"]}})
    row_a = ann.effective_annotations(env.catalog).set_index("photo_id").loc[a]
    assert (row_a.Safety, row_a.Belonging, row_a.sentiment, row_a.sentiment_score, row_a.topics) == (1, 5, "negative", -1.0, ["food"])
    assert row_a.corrected == ["Safety", "sentiment", "topics"]
    rows = ann.annotation_rows(env.catalog, photo_ids=[a])
    assert {(r["annotator"], r["version"]) for r in rows} == {("zeroshot", "v1"), ("vlm-api", "m1")}  # provenance kept
    assert all(r["created_at"] for r in rows)
    with pytest.raises(ValueError, match="unknown annotation field"):
        ann.set_corrections(env.catalog, {a: {"Colour": 3}})


def test_rerecording_replaces_and_done_ids_skip_errors(env):
    a, b = env.ids[:2]
    ann.record_results(env.catalog, "z", "v", [result(a), AnnotationResult(b, error="timeout")])
    assert ann.done_ids(env.catalog, "z", "v") == {a}
    ann.record_results(env.catalog, "z", "v", [result(b)])
    assert ann.done_ids(env.catalog, "z", "v") == {a, b}
    assert len(ann.annotation_rows(env.catalog)) == 2
    assert ann.annotators(env.catalog) == [{"annotator": "z", "version": "v", "ok": 2, "failed": 0, "last": ann.annotators(env.catalog)[0]["last"]}]


def test_export_is_exact_atomic_and_round_trips(env, tmp_path):
    ann.record_results(env.catalog, "z", "v", [result(i, 2) for i in env.ids[:3]])
    ann.set_corrections(env.catalog, {env.ids[0]: {"concept_text": 'a "quoted", comma phrase'}})
    out = tmp_path / "out" / "scores.csv"
    out.parent.mkdir()
    out.write_text("old contents")
    assert ann.export_scores(env.catalog, out) == 3
    text = out.read_text()
    assert text.splitlines()[0] == HEADER
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["filename"] for r in rows] == env.names[:3]
    assert rows[0]["concept_text"] == 'a "quoted", comma phrase' and rows[1]["Safety"] == "2"
    assert sorted(p.name for p in out.parent.iterdir()) == ["scores.csv"]  # no temp file left behind
    # Importing the export back as human values changes nothing.
    before = ann.effective_annotations(env.catalog)[list(ann.DIMENSIONS) + ["concept_text"]]
    rep = ann.import_scores(env.catalog, out)
    assert rep.written == 3 and not rep.errors
    after = ann.effective_annotations(env.catalog)[list(ann.DIMENSIONS) + ["concept_text"]]
    assert before.equals(after)
    assert ann.export_scores(env.catalog, tmp_path / "s.json") == 3
    assert json.loads((tmp_path / "s.json").read_text())[0]["filename"] == "rooms/room0.jpg"


def test_import_accepts_basenames_and_json(env):
    csv_text = HEADER + "\nroom1.jpg,1,2,3,4,5,1,a bright functional space\ngarden.jpg,5,5,5,5,5,5,\n"
    rep = ann.import_scores(env.catalog, csv_text, store=env.store)
    assert rep.written == 2
    df = ann.effective_annotations(env.catalog).set_index("filename")
    assert df.loc["rooms/room1.jpg", "Privacy"] == 5 and df.loc["garden.jpg", "Safety"] == 5
    assert meta(env, env.ids[1])["Convenience"] == 1 and meta(env, env.ids[1])["concept_text"] == "a bright functional space"
    js = json.dumps({"annotations": [{"filename": "rooms/room2.jpg", "Safety": 2, "Belonging": 2, "Naturalness": 2, "Shared": 2,
                                      "Privacy": 2, "Convenience": 2, "concept_text": "x"}]})
    assert ann.import_scores(env.catalog, js.encode()).written == 1


@pytest.mark.parametrize("text, expected", [
    ("filename,Safety,Belonging\nroom0.jpg,1,2\n", "missing columns: Naturalness, Shared, Privacy, Convenience, concept_text"),
    (HEADER + "\nroom0.jpg,3,3,3,3,3,3,ok\nroom0.jpg,3,3,3,3,3,3,again\n", "row 2 (room0.jpg): duplicate of row 1"),
    (HEADER + "\nnope.jpg,3,3,3,3,3,3,x\n", "row 1 (nope.jpg): unknown filename"),
    (HEADER + "\nroom0.jpg,3,3,3,3,3,3,ok\nroom1.jpg,3,high,3,3,3,3.5,x\n", "row 2 (room1.jpg): Belonging: 'high' is not an integer; Convenience: '3.5' is not an integer"),
    (HEADER + "\nroom1.jpg,0,3,3,3,3,6,x\n", "Safety: 0 is out of range 1-5; Convenience: 6 is out of range 1-5"),
    (HEADER + "\nroom1.jpg,3,3,3,3,3,,x\n", "Convenience: missing value"),
    ('[{"filename": "room1.jpg", "Safety": true, "Belonging": 3, "Naturalness": 3, "Shared": 3, "Privacy": 3, "Convenience": 3, "concept_text": 5}]',
     "Safety: True is not an integer; concept_text: 5 is not text"),
    ("[1, 2]", "JSON must be a list of objects"),
    ("{not json", "not valid JSON"),
])
def test_bad_imports_write_nothing_and_name_the_rows(env, text, expected):
    with pytest.raises(ann.AnnotationImportError) as err:
        ann.import_scores(env.catalog, text)
    assert expected in str(err.value)
    assert ann.corrections(env.catalog) == {}


def test_import_valid_rows_only_when_asked(env):
    text = HEADER + "\nroom0.jpg,3,3,3,3,3,3,ok\nroom1.jpg,9,3,3,3,3,3,x\nghost.jpg,1,1,1,1,1,1,x\n"
    with pytest.raises(ann.AnnotationImportError):
        ann.import_scores(env.catalog, text)
    rep = ann.import_scores(env.catalog, text, valid_only=True)
    assert rep.written == 1 and [e.row for e in rep.errors] == [2, 3]
    assert list(ann.corrections(env.catalog)) == [env.ids[0]]


def test_ambiguous_basename_is_rejected(env, tmp_path):
    other = write_image(env.settings.library_dir / "other" / "room0.jpg", seed=42)
    p = Photo(id="f" * 64, path=str(other), source="test")
    env.catalog.commit_batch([p], [FileRecord(p.path, p.id, 1, 1)], None)
    with pytest.raises(ann.AnnotationImportError, match="ambiguous"):
        ann.import_scores(env.catalog, HEADER + "\nroom0.jpg,3,3,3,3,3,3,x\n")
    assert ann.import_scores(env.catalog, HEADER + "\nother/room0.jpg,3,3,3,3,3,3,x\n").written == 1


def test_caption_and_senticap_imports(env):
    rep = ann.import_captions(env.catalog, "filename,caption\nroom0.jpg,My favourite sunny kitchen\n", store=env.store)
    assert rep.written == 1
    p = env.catalog.get(env.ids[0])
    assert (p.caption, p.caption_source) == ("My favourite sunny kitchen", "user")
    assert meta(env, env.ids[0])["caption"] == "My favourite sunny kitchen"
    with pytest.raises(ann.AnnotationImportError, match="row 1 .*caption: missing"):
        ann.import_captions(env.catalog, "filename,caption\nroom1.jpg,\n")
    senticap = {"images": [
        {"filename": "room1.jpg", "sentences": [{"raw": "a lovely bright room", "sentiment": 1}, {"raw": "a nice room", "sentiment": 1},
                                                {"raw": "an ugly room", "sentiment": 0}]},
        {"filename": "room2.jpg", "sentences": [{"raw": "a dreadful damp cellar", "sentiment": 0}]},
    ]}
    rep = ann.import_senticap(env.catalog, json.dumps(senticap))
    assert rep.written == 2
    assert ann.caption_truth(env.catalog) == {env.ids[1]: "positive", env.ids[2]: "negative"}
    assert env.catalog.get(env.ids[1]).caption == "a lovely bright room"
    df = ann.effective_annotations(env.catalog).set_index("photo_id")
    assert df.loc[env.ids[2], "sentiment_truth"] == "negative"
    bad = {"images": [{"filename": "room0.jpg", "sentences": [{"raw": "x", "sentiment": 2}]}]}
    with pytest.raises(ann.AnnotationImportError, match="sentiment must be 0 or 1"):
        ann.import_senticap(env.catalog, json.dumps(bad))


def test_chroma_sync_filters_and_reset_clears(env):
    a, b, c = env.ids[:3]
    food = result(a)
    food.topics = ["food", "interior"]
    ann.record_results(env.catalog, "z", "v", [food, result(b)])
    ann.sync_chroma(env.catalog, env.store, [a, b, c], topic_universe=["food", "interior", "nature"])
    m = meta(env, a)
    assert m["topics"] == "food,interior" and m["topic_food"] is True and m["topic_nature"] is False
    assert (m["sentiment"], m["sentiment_caption"], m["sentiment_image"], m["Safety"]) == ("positive", "neutral", "positive", 3)
    assert "sentiment" not in meta(env, c) and meta(env, c)["path"]  # unannotated photo untouched
    hits = env.store.query("m", "image", np.ones(4, np.float32), k=4, where={"topic_food": True})
    assert [h.id for h in hits] == [a]
    assert ann.count_photos(env.catalog, {"topic_food": True}) == 1
    assert ann.count_photos(env.catalog, {"sentiment": "positive"}) == 2
    # A correction removing the topic is mirrored.
    ann.set_corrections(env.catalog, {a: {"topics": ["interior"]}})
    ann.sync_chroma(env.catalog, env.store, [a])
    assert meta(env, a)["topic_food"] is False
    # Reset: the predictions go, so do their metadata keys (the correction stays).
    from core.annotate.runner import reset_results

    class S:  # the two collaborators reset_results needs
        catalog, store = env.catalog, env.store

    assert reset_results(S, "z") == 2
    assert ann.annotation_rows(env.catalog) == []
    mb = meta(env, b)
    assert "Safety" not in mb and "sentiment" not in mb and mb["path"]
    assert meta(env, a)["topics"] == "interior" and "Safety" not in meta(env, a)


def test_cli_export_import_list_reset(env, tmp_path, monkeypatch, capsys):
    from core.annotate.cli import main

    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(env.settings.data_dir))
    ann.record_results(env.catalog, "z", "v", [result(i) for i in env.ids[:2]])
    out = tmp_path / "export.csv"
    assert main(["export", str(out)]) == 0
    assert out.read_text().splitlines()[0] == HEADER and len(out.read_text().splitlines()) == 3
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\nroom0.jpg,3,3,3,3,3,3,ok\nroom1.jpg,3,3,3,3,3,9,x\n")
    assert main(["import", "scores", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "nothing imported" in err and "row 2 (room1.jpg): Convenience: 9 is out of range 1-5" in err and "--valid-only" in err
    assert ann.corrections(env.catalog) == {}
    assert main(["import", "scores", str(bad), "--valid-only"]) == 1
    assert list(ann.corrections(env.catalog)) == [env.ids[0]]
    capsys.readouterr()
    assert main(["list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["ok"] == 2
    assert main(["reset", "z"]) == 0 and ann.annotation_rows(env.catalog) == []
    assert main(["import", "scores", str(tmp_path / "missing.csv")]) == 2


def test_caption_preference_user_then_alt_then_captioner(env):
    pid = env.ids[0]
    assert env.catalog.get(pid).caption == "caption 0"  # as if written by a captioner (source 'test')
    assert ann.offer_caption(env.catalog, pid, "a kitchen (alt text)", "alt")
    assert not ann.offer_caption(env.catalog, pid, "a photo of espresso", "bundled:x")
    ann.import_captions(env.catalog, "filename,caption\nroom0.jpg,Our kitchen in June\n")
    assert not ann.offer_caption(env.catalog, pid, "alt text again", "alt")
    p = env.catalog.get(pid)
    assert (p.caption, p.caption_source) == ("Our kitchen in June", "user")
