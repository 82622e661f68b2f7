"""The local zero-shot annotator and the batch runner, with the real bundled backend and a tiny CLIP."""
import threading

import numpy as np
import pytest

from core import annotations as ann
from core.annotate import sentiment as sent
from core.annotate.prompts import DIMENSIONS, load_prompts, topic_key
from core.annotate.runner import run_annotations
from core.annotate.topics import pick_topics
from core.annotate.zeroshot import ZeroShotAnnotator, ladder_score

pytestmark = pytest.mark.slow


def test_ladder_calibration():
    assert ladder_score(np.zeros(5), 0.02) == 3  # undecided -> the neutral middle
    assert ladder_score(np.array([0.3, 0.1, 0.1, 0.1, 0.1]), 0.02) == 1
    assert ladder_score(np.array([0.1, 0.1, 0.1, 0.1, 0.3]), 0.02) == 5
    assert ladder_score(np.array([0.1, 0.1, 0.1, 0.3, 0.1]), 0.02) == 4


def test_caption_sentiment_and_fusion():
    assert sent.caption_sentiment("a lovely, beautiful sunny garden")[0] == "positive"
    assert sent.caption_sentiment("a horrible dirty broken room")[0] == "negative"
    assert sent.caption_sentiment("a photo of a chair")[0] == "neutral"
    assert sent.caption_sentiment("  ") is None
    assert sent.fuse(("positive", 0.8), ("negative", -0.4)) == ("positive", pytest.approx(0.2))
    assert sent.fuse(None, ("negative", -0.4)) == ("negative", -0.4)
    assert pick_topics(np.array([0.1, 0.15, 0.75]), ["a", "b", "c"], 0.2) == ["c"]
    assert pick_topics(np.array([0.1, 0.1, 0.1]), ["a", "b", "c"], 0.2) == ["other"]
    assert topic_key("Street Food") == "topic_street_food"


def test_prompt_file_errors_name_the_entry(tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text('[ladders]\nSafety = ["a", "b"]\n')
    with pytest.raises(ValueError, match=r"Safety must be a list of 5"):
        load_prompts(bad)
    bad.write_text("not = [toml")
    with pytest.raises(ValueError, match="cannot read the prompt file"):
        load_prompts(bad)
    assert set(load_prompts().ladders) == set(DIMENSIONS)


@pytest.fixture
def demo_services(demo_env_copy, bundled_backend):
    from core.services import build_services
    from core.settings import Settings

    return build_services(Settings(), backend=bundled_backend)


def test_zeroshot_on_the_demo_library_is_sensible_and_filterable(demo_services):
    s = demo_services
    annotator = ZeroShotAnnotator(s.backend)
    seen = []
    report = run_annotations(s, annotator, on_progress=lambda d, t, **i: seen.append((d, t)))
    assert (report.done, report.failed, report.total) == (15, [], 15)
    assert seen[-1] == (15, 15)
    df = ann.effective_annotations(s.catalog)
    df.index = [f.rsplit("/", 1)[-1] for f in df.filename]  # the copy's catalog points into the original library
    for d in DIMENSIONS:
        assert df[d].between(1, 5).all()
    assert set(df.sentiment_image) <= {"negative", "neutral", "positive"}
    # The image side sees what the classifier saw: coffee is food, the cat an animal, the palace architecture.
    assert "food" in df.loc["coffee.jpg", "topics"]
    assert "animal" in df.loc["chelsea.jpg", "topics"]
    assert "architecture" in df.loc["china.jpg", "topics"]
    assert df.loc["china.jpg", "concept_text"] == "a historic building"
    assert (df.annotator == "zeroshot").all() and df.version.str.startswith(s.backend.model_id).all()
    # Filters through Chroma metadata.
    from core.search import search_text

    hits = search_text(s, "a cup of coffee", k=15, where={"topic_food": True})
    assert hits and hits[0].photo.path.endswith("coffee.jpg")
    assert all(ann.effective_annotations(s.catalog, [h.photo.id]).topics[0].count("food") for h in hits)
    # Resume: a rerun skips everything this version already did.
    again = run_annotations(s, annotator)
    assert (again.done, again.already_done) == (0, 15)
    assert len(ann.annotation_rows(s.catalog)) == 15


def test_user_caption_drives_the_caption_side(demo_services):
    s = demo_services
    ann.import_captions(s.catalog, "filename,caption\ncoffee.jpg,A wonderful delicious happy breakfast\n", services=s)
    from core.search import search_text

    assert search_text(s, "delicious happy breakfast", k=1)[0].photo.path.endswith("coffee.jpg")  # re-embedded at once
    annotator = ZeroShotAnnotator(s.backend)
    coffee = [p for p in s.catalog.list_photos() if p.path.endswith("coffee.jpg")]
    run_annotations(s, annotator, [coffee[0].id])
    row = ann.effective_annotations(s.catalog, [coffee[0].id]).iloc[0]
    assert row.sentiment_caption == "positive" and row.sentiment == "positive"


def test_cancel_then_resume_without_duplicates(demo_services):
    s = demo_services
    annotator = ZeroShotAnnotator(s.backend)
    cancel = threading.Event()

    ids = [p.id for p in s.catalog.list_photos()[:5]]

    def progress(done, total, **info):
        if done >= 2:
            cancel.set()

    first = run_annotations(s, annotator, ids, batch_size=2, on_progress=progress, cancel=cancel)
    assert first.cancelled and first.done == 2
    second = run_annotations(s, annotator, ids, batch_size=2)
    assert (second.already_done, second.done, second.cancelled) == (2, 3, False)
    rows = ann.annotation_rows(s.catalog)
    assert sorted(r["photo_id"] for r in rows) == sorted(ids)


def test_unreadable_photo_is_reported_and_the_run_goes_on(demo_services, tmp_path):
    from core.catalog import FileRecord, Photo

    s = demo_services
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")  # e.g. a file damaged after ingest
    bad = Photo(id="b" * 64, path=str(broken), source="test")
    s.catalog.commit_batch([bad], [FileRecord(bad.path, bad.id, 12, 1)], None)
    ids = [bad.id] + [p.id for p in s.catalog.list_photos()[:2]]
    annotator = ZeroShotAnnotator(s.backend)
    report = run_annotations(s, annotator, ids)
    assert report.done == 2 and len(report.failed) == 1
    assert report.failed[0][:2] == (bad.id, "broken.jpg") and "cannot" in report.failed[0][2]
    assert ann.done_ids(s.catalog, "zeroshot", annotator.version) == set(ids[1:])


def test_tiny_clip_compares_images_with_prompts_directly(tiny_clip_backend, tmp_path):
    from PIL import Image

    from core.catalog import Photo

    annotator = ZeroShotAnnotator(tiny_clip_backend)
    assert annotator.ladder_emb.shape[:2] == (6, 5)
    images = [Image.new("RGB", (40, 30), c) for c in ((200, 20, 20), (20, 200, 20))]
    photos = [Photo(id=str(i), path=f"{i}.jpg", source="t", caption=c) for i, c in enumerate(["a great sunny day", ""])]
    results = annotator.annotate(photos, images + [])
    assert all(r.ok for r in results)
    assert all(set(r.scores) == set(DIMENSIONS) and all(1 <= v <= 5 for v in r.scores.values()) for r in results)
    assert results[0].sentiment_caption == "positive" and results[1].sentiment_caption is None
    assert results[1].topics_caption == [] and results[1].topics_image
    assert annotator.annotate(photos[:1], [None])[0].error == "no image to annotate"
