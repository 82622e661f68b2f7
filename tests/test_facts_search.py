"""Text search over photo facts: real eval photos ingested into a real Chroma store with the bundled models."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.search import search_text

EVAL = Path(__file__).parent / "data" / "eval" / "photos"
PHOTOS = ["astronaut.jpg", "tabby_cat.jpg", "coffee_cup.jpg", "book_page_text.jpg", "two_dogs_window.jpg",
          "snowy_mountains.jpg", "chinese_temple.jpg", "red_motorcycle_garage.jpg"]


@pytest.fixture(scope="module")
def eval_services(tmp_path_factory, bundled_backend):
    from core.ingest import ingest_folder
    from core.services import build_services
    from core.settings import Settings

    root = tmp_path_factory.mktemp("facts-lib")
    for name in PHOTOS:
        shutil.copy(EVAL / name, root / name)
    services = build_services(Settings(data_dir=root / "data", batch_size=4), backend=bundled_backend)
    report = ingest_folder(services, root)
    assert report.added == len(PHOTOS), report.summary()
    return services


def _top(services, query: str, k: int = 3) -> list[str]:
    return [Path(r.photo.path).name for r in search_text(services, query, k=k)]


def test_facts_are_indexed_beside_captions(eval_services):
    model = eval_services.backend.model_id
    assert eval_services.store.count(model, "facts") == len(PHOTOS) == eval_services.store.count(model, "caption")


@pytest.mark.parametrize("query,expected", [
    ("a portrait of a person", "astronaut.jpg"),  # ImageNet alone tagged it "bobsled, go-kart"
    ("a cat", "tabby_cat.jpg"),
    ("a dog", "two_dogs_window.jpg"),
    ("a printed page of text", "book_page_text.jpg"),  # read by OCR
    ("an old temple roof", "chinese_temple.jpg"),
    ("a snowy mountain", "snowy_mountains.jpg"),
    ("a red motorcycle", "red_motorcycle_garage.jpg"),
])
def test_queries_find_the_photo_the_facts_describe(eval_services, query, expected):
    assert _top(eval_services, query)[0] == expected


def test_scores_are_comparable_for_the_threshold(eval_services):
    from core.search import relevance_threshold

    res = search_text(eval_services, "a cat", k=len(PHOTOS))
    scores = [r.score for r in res]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 for s in scores)
    cut = relevance_threshold(eval_services.backend)
    assert scores[0] >= cut > scores[-1]  # the cat passes the calibrated cut-off, the coffee cup does not
    assert len(search_text(eval_services, "a cat", k=len(PHOTOS), threshold=cut)) < len(PHOTOS)


def test_a_match_must_score_near_the_best_photo(eval_services):
    """"a dog": the two dogs match; the cat, which passes the floor alone, is a weaker match."""
    from core.search import relevance_threshold, split_matches

    res = search_text(eval_services, "a dog", k=len(PHOTOS))
    matches, weaker, cut = split_matches(eval_services.backend, res)
    names = {Path(r.photo.path).name for r in matches}
    assert names == {"two_dogs_window.jpg"}, [(Path(r.photo.path).name, round(r.score, 3)) for r in res]
    cat = next(r for r in weaker if r.photo.path.endswith("tabby_cat.jpg"))
    assert cat.score >= relevance_threshold(eval_services.backend) and cut > cat.score


def test_an_index_without_facts_vectors_still_searches_captions(eval_services):
    model = eval_services.backend.model_id
    cat_id = next(r.photo.id for r in search_text(eval_services, "a cat", k=1))
    saved = eval_services.store.get_embeddings(model, "facts", [cat_id])
    eval_services.store.delete(model, "facts", [cat_id])  # as if ingested before photo facts existed
    try:
        assert cat_id in [r.photo.id for r in search_text(eval_services, "a cat", k=3)]
    finally:
        eval_services.store.upsert(model, "facts", [cat_id], [saved[cat_id]], [{"_": 0}])
