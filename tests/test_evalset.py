"""The evaluation set of real photos is complete, consistent and licensed; bad edits give clear errors."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from bench.evalset import (
    EVAL_DIR, SCENES, TOPICS, EvalSetError, hand_portrait, load_chat_questions, load_eval_photos, load_queries,
)


@pytest.fixture(scope="module")
def photos():
    return load_eval_photos()


def test_photos_are_real_small_jpegs_with_licences(photos):
    assert len(photos) >= 40
    on_disk = {p.name for p in (EVAL_DIR / "photos").iterdir()}
    assert on_disk == {p.filename for p in photos}, "every photo file has a row and every row a file"
    total = 0
    for p in photos:
        assert p.licence and p.author and p.source
        with Image.open(p.path) as im:
            assert im.format == "JPEG" and max(im.size) <= 800
            assert not im.getexif(), f"{p.filename} still carries EXIF"
        total += p.path.stat().st_size
    assert total < 6_500_000
    # the variety a real user has, by hand label
    assert sum(p.people > 0 for p in photos) >= 4
    assert sum(p.has_text for p in photos) >= 3
    assert sum("animal" in p.topics for p in photos) >= 5
    assert sum("vehicle" in p.topics for p in photos) >= 5
    assert {"mountain", "beach", "forest", "building", "office", "living room"} <= {p.scene for p in photos}
    assert all(p.scene in SCENES and set(p.topics) <= set(TOPICS) for p in photos)


def test_queries_name_existing_photos(photos):
    queries = load_queries(photos=photos)
    assert len(queries) >= 60
    assert len({q.query for q in queries}) == len(queries), "no duplicate queries"
    names = {p.filename for p in photos}
    assert all(q.relevant and set(q.relevant) <= names for q in queries)
    assert sum(len(q.relevant) > 1 for q in queries) >= 15, "several relevant photos per query where true"


def test_chat_questions_match_labels(photos):
    questions = load_chat_questions(photos=photos)
    assert len(questions) >= 40
    assert {q.kind for q in questions} == {"count", "list", "filter"}
    assert sum(q.follow_up_of is not None for q in questions) >= 5
    assert all((q.kind == "count") == q.question.lower().startswith(("how many", "and how many")) for q in questions)
    by_name = {p.filename: p for p in photos}
    people = next(q for q in questions if q.question == "how many photos show people?")
    assert set(people.expected_photos) == {n for n, p in by_name.items() if p.people > 0}
    text = next(q for q in questions if q.question == "show me photos with text")
    assert set(text.expected_photos) == {n for n, p in by_name.items() if p.has_text}


def _copy_set(tmp_path: Path) -> Path:
    dst = tmp_path / "eval"
    shutil.copytree(EVAL_DIR, dst)
    return dst


def test_malformed_csv_row_names_file_and_line(tmp_path):
    d = _copy_set(tmp_path)
    rows = list(csv.reader((d / "photos.csv").open(encoding="utf-8")))
    rows[3][rows[0].index("licence")] = ""
    with (d / "photos.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    with pytest.raises(EvalSetError, match=r"photos\.csv, line 4: column 'licence' is empty"):
        load_eval_photos(d / "photos.csv")

    rows[3][rows[0].index("licence")] = "CC0-1.0"
    rows[5][rows[0].index("scene")] = "moon base"
    with (d / "photos.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    with pytest.raises(EvalSetError, match=r"line 6: scene 'moon base' is not one of"):
        load_eval_photos(d / "photos.csv")


def test_unknown_relevant_photo_and_bad_count_are_reported(tmp_path):
    d = _copy_set(tmp_path)
    queries = json.loads((d / "queries.json").read_text())
    queries[2]["relevant"].append("no_such_photo.jpg")
    (d / "queries.json").write_text(json.dumps(queries))
    with pytest.raises(EvalSetError, match=r"queries\.json, entry 2: 'relevant' names photo\(s\) not in photos\.csv"):
        load_queries(d / "queries.json")

    chat = json.loads((d / "chat_questions.json").read_text())
    chat[1]["expected_count"] += 1
    (d / "chat_questions.json").write_text(json.dumps(chat))
    with pytest.raises(EvalSetError, match=r"chat_questions\.json, entry 1: 'expected_count'"):
        load_chat_questions(d / "chat_questions.json")


def test_chat_answers_follow_the_documented_definitions(photos):
    """The README's definitions, applied to photos.csv, give the answers in chat_questions.json."""
    questions = {q.question: q for q in load_chat_questions(photos=photos)}
    landscape = {"beach", "mountain", "forest", "field", "water"}
    expect = {
        "which photos are landscapes?": {p.filename for p in photos if p.scene in landscape},
        "how many photos of animals are there?": {p.filename for p in photos if "animal" in p.topics},
        "how many photos of vehicles are there?": {p.filename for p in photos if "vehicle" in p.topics},
        "which photos are negative?": {p.filename for p in photos if p.sentiment == "negative"},
        "which photos show a group of people?": {p.filename for p in photos if p.people >= 3},
        "show me portraits": {p.filename for p in photos if hand_portrait(p)},
        "how many photos are there?": {p.filename for p in photos},
    }
    for question, names in expect.items():
        assert set(questions[question].expected_photos) == names, question
    follow = questions["which of those are positive?"]
    assert set(follow.expected_photos) <= set(load_chat_questions(photos=photos)[follow.follow_up_of].expected_photos)
