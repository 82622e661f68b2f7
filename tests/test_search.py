"""Search over the demo library with the real bundled models."""
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from core.search import search_image, search_text


@pytest.fixture
def demo_services(demo_data_dir, bundled_backend):
    from core.services import build_services
    from core.settings import Settings

    return build_services(Settings(data_dir=demo_data_dir), backend=bundled_backend)


def _names(results):
    return [Path(r.photo.path).stem for r in results]


@pytest.mark.parametrize("query,expected", [("a cup of coffee", "coffee"), ("a cat", "chelsea"), ("a rocket launch", "rocket")])
def test_text_query_finds_the_right_demo_photo_first(demo_services, query, expected):
    results = search_text(demo_services, query, k=5)
    assert _names(results)[0] == expected
    assert results[0].score > results[1].score


def test_image_query_and_more_like_this(demo_services):
    up = search_image(demo_services, image=Image.fromarray(data.coffee()).resize((300, 200)), k=3)
    assert _names(up)[0] == "coffee" and up[0].score > 0.9
    coffee_id = up[0].photo.id
    like = search_image(demo_services, photo_id=coffee_id, k=4)
    assert coffee_id not in [r.photo.id for r in like] and len(like) == 4


def test_threshold_and_k(demo_services):
    assert len(search_text(demo_services, "a cup of coffee", k=3)) == 3
    strict = search_text(demo_services, "a cup of coffee", k=10, threshold=0.4)
    assert _names(strict) == ["coffee"]


def test_bad_queries_are_clear(demo_services):
    with pytest.raises(ValueError, match="empty"):
        search_text(demo_services, "   ")
    with pytest.raises(KeyError, match="not in the"):
        search_image(demo_services, photo_id="0" * 64)


def test_new_caption_is_searchable_at_once(demo_data_dir, bundled_backend, tmp_path):
    import shutil

    from core.library import set_captions
    from core.services import build_services
    from core.settings import Settings

    data = tmp_path / "copy"
    shutil.copytree(demo_data_dir, data)
    services = build_services(Settings(data_dir=data), backend=bundled_backend)
    brick = next(p for p in services.catalog.list_photos() if p.path.endswith("brick.jpg"))
    assert _names(search_text(services, "a red lighthouse by the sea", k=1)) != ["brick"]
    assert set_captions(services, [(brick.id, "a red lighthouse by the sea")], "user") == 1
    assert set_captions(services, [(brick.id, "a red lighthouse by the sea")], "user") == 0  # idempotent
    assert _names(search_text(services, "a red lighthouse by the sea", k=1)) == ["brick"]
    assert services.catalog.get(brick.id).caption_source == "user"


def test_warm_index_on_an_empty_and_a_full_library(demo_services, tmp_path, bundled_backend):
    """warm_index (run by the app at start) works on an empty library and leaves results as they were."""
    from core.search import warm_index
    from core.services import build_services
    from core.settings import Settings

    empty = build_services(Settings(data_dir=tmp_path / "data"), backend=bundled_backend)
    warm_index(empty)  # empty collections: nothing to load, no error
    assert search_text(empty, "a cup of coffee") == []
    before = [(r.photo.id, round(r.score, 5)) for r in search_text(demo_services, "a cup of coffee")]
    warm_index(demo_services)
    assert [(r.photo.id, round(r.score, 5)) for r in search_text(demo_services, "a cup of coffee")] == before
