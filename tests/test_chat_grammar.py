"""The question grammar (core.chat.concepts) on real eval photos: one test per planning construct.

A library of 16 photos from tests/data/eval is ingested with the real bundled backend; the hand
labels (photos.csv) are written as annotations and photo facts, as bench/bench_chat.py's
"with_hand_facts" run does, so these tests check planning, not perception. Expected answers
follow from the hand labels by the definitions in tests/data/eval/README.md.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.evalset import hand_portrait, hand_setting, is_grey, load_eval_photos

NAMES = ("astronaut.jpg", "cameraman.jpg", "two_men_corridor.jpg", "grand_central_station.jpg", "tabby_cat.jpg",
         "small_dog.jpg", "two_dogs_window.jpg", "kookaburra.jpg", "red_marigold.jpg", "book_page_text.jpg",
         "helicopter_sailboat.jpg", "living_room_wine.jpg", "desk_lamp_laptop.jpg", "pink_bicycle.jpg",
         "coffee_cup.jpg", "forest_path.jpg")


@pytest.fixture(scope="module")
def eval_library(tmp_path_factory, bundled_backend):
    from bench.bench_chat import write_hand_annotations, write_hand_facts
    from bench.bench_understand import _filenames
    from core.ingest import ingest_paths
    from core.services import build_services
    from core.settings import Settings

    photos = [p for p in load_eval_photos() if p.filename in NAMES]
    root = tmp_path_factory.mktemp("evalchat")
    for p in photos:
        shutil.copy(p.path, root / p.filename)
    services = build_services(Settings(data_dir=root / "data", batch_size=8), backend=bundled_backend)
    report = ingest_paths(services, sorted(root.glob("*.jpg")), source="eval")
    assert not report.skipped
    ids = _filenames(services)
    write_hand_annotations(services, photos, ids)
    write_hand_facts(services, photos, ids)
    return services, {p.filename: p for p in photos}


def ask(services, question, history=()):
    from core.chat.reply import answer

    res = answer(question, list(history), services, None)
    return res


def shown_all(services, res) -> set[str]:
    """Every matching photo's file name (not only the k shown)."""
    got = services.catalog.get_many(res.matched_ids)
    return {Path(got[i].path).name for i in res.matched_ids}


def expect(photos, pred) -> set[str]:
    return {n for n, p in photos.items() if pred(p)}


def check(eval_library, question, pred):
    services, photos = eval_library
    res = ask(services, question)
    want = expect(photos, pred)
    assert shown_all(services, res) == want, (question, res.filters)
    assert res.total == len(want)
    return res


def test_disjunction_of_words_is_the_union_of_their_searches(eval_library):
    from core.search import search_text, split_matches

    services, _ = eval_library
    from core.chat.retriever import _metadatas

    union = {r.photo.id for w in ("cats", "dogs") for r in split_matches(services.backend, search_text(services, w, k=64))[0]}
    # each word is also the detector's label: a photo where it found a cat or a dog counts too
    union |= set(_metadatas(services, {"$or": [{"detected": {"$contains": "cat"}}, {"detected": {"$contains": "dog"}}]}))
    res = ask(services, "show me photos of cats or dogs")
    assert set(res.matched_ids) == union and res.filters == "detected cat or matching “cats” or detected dog or matching “dogs”"


def test_disjunction_of_topics_counts_the_union(eval_library):
    res = check(eval_library, "how many photos show vehicles or animals?", lambda p: {"vehicle", "animal"} & set(p.topics))
    assert res.count == res.total


def test_conjunction_black_and_white_with_people(eval_library):
    check(eval_library, "which black and white photos show people?", lambda p: is_grey(p) and p.people > 0)


def test_x_without_y(eval_library):
    check(eval_library, "how many photos show animals without people?", lambda p: "animal" in p.topics and p.people == 0)


def test_negation_no_people_and_not_black_and_white(eval_library):
    check(eval_library, "how many photos have no people in them?", lambda p: p.people == 0)
    check(eval_library, "how many photos are not black and white?", lambda p: not is_grey(p))


def test_setting_indoors_and_outdoors(eval_library):
    check(eval_library, "which photos were taken indoors?", lambda p: hand_setting(p) == "indoor")
    check(eval_library, "how many outdoor photos are there?", lambda p: hand_setting(p) == "outdoor")
    check(eval_library, "how many indoor photos have no people?", lambda p: hand_setting(p) == "indoor" and p.people == 0)


def test_monochrome(eval_library):
    check(eval_library, "how many photos are black and white?", is_grey)
    check(eval_library, "show me monochrome pictures", is_grey)


def test_people_counts_group_and_portraits(eval_library):
    check(eval_library, "how many photos show two people?", lambda p: p.people == 2)
    check(eval_library, "which photos show a crowd?", lambda p: p.people >= 3)
    check(eval_library, "show me group photos", lambda p: p.people >= 3)
    check(eval_library, "how many photos show a single person?", lambda p: p.people == 1)
    check(eval_library, "show me portraits", hand_portrait)


def test_text_and_signs(eval_library):
    check(eval_library, "show me photos with a sign", lambda p: p.has_text)
    check(eval_library, "how many photos with people or text?", lambda p: p.has_text or p.people > 0)


def test_rooms_are_any_room_scene(eval_library):
    check(eval_library, "show me photos of rooms", lambda p: p.scene in ("living room", "office", "kitchen", "bedroom", "bathroom"))
    res = check(eval_library, "how many photos show a kitchen?", lambda p: p.scene == "kitchen")
    assert res.count == 0 and res.photos == []  # an honest zero, no padding from search scores


def test_sentiment_and_topic_together(eval_library):
    check(eval_library, "which animal photos are positive?", lambda p: "animal" in p.topics and p.sentiment == "positive")


def test_colour_words_use_the_extracted_colours(eval_library):
    services, _ = eval_library
    col = services.store.collection(services.backend.model_id, "image")
    got = col.get(include=["metadatas"])
    red = {i for i, m in zip(got["ids"], got["metadatas"]) if "red" in (m.get("colours") or [])}
    res = ask(services, "show me red photos")
    assert set(res.matched_ids) == red and "colour red" in res.filters


def test_follow_up_what_about_a_new_fact(eval_library):
    services, photos = eval_library
    first = ask(services, "how many photos are black and white?")
    history = [{"role": "user", "content": "how many photos are black and white?"}, first.history_entry()]
    res = ask(services, "what about indoor photos?", history)
    assert res.plan.intent == "count" and shown_all(services, res) == expect(photos, lambda p: hand_setting(p) == "indoor")


def test_animals_without_topics_go_by_the_search_score(tmp_path, bundled_backend):
    """No annotations: "animals" is matched by Search's score, whose facts vector weighs the ImageNet
    words' WordNet parents ("animal" collects every cat and dog class) by probability."""
    from core.ingest import ingest_paths
    from core.services import build_services
    from core.settings import Settings

    src = {p.filename: p.path for p in load_eval_photos()}
    for name in ("tabby_cat.jpg", "small_dog.jpg", "coffee_cup.jpg", "clock_face.jpg"):
        shutil.copy(src[name], tmp_path / name)
    services = build_services(Settings(data_dir=tmp_path / "data", batch_size=8), backend=bundled_backend)
    ingest_paths(services, sorted(tmp_path.glob("*.jpg")), source="eval")
    res = ask(services, "how many photos show animals?")
    assert res.filters == "matching “animals”" and res.count == 2
    assert shown_all(services, res) == {"tabby_cat.jpg", "small_dog.jpg"}
    res = ask(services, "how many photos show animals or a clock?")
    assert " or " in res.filters and "clock_face.jpg" in shown_all(services, res)
