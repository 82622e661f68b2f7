"""Photo facts used by the library: stored in catalog + real embedded Chroma, filtered in search."""
from __future__ import annotations

import pytest

from core.facts import PhotoFacts
from core.facts.refresh import store_facts
from core.facts.view import facts_where
from core.search import search_text

pytestmark = pytest.mark.slow

# Hand-written facts for four demo photos: people and scenes as a person labels them; the rocket is
# given a text line so the text filter has one photo to find.
FACTS = {
    "astronaut.jpg": PhotoFacts(caption="a portrait of a person", objects=[("person", 0.9)], people=1, faces=1, scene="portrait",
                                scene_score=0.7, text_checked=True),
    "camera.jpg": PhotoFacts(caption="a man with a camera", objects=[("camera", 0.6)], people=1, scene="street", scene_score=0.4,
                             text_checked=True),
    "rocket.jpg": PhotoFacts(caption="a rocket on a launch pad", objects=[("rocket", 0.8), ("vehicle", 0.8)],
                             text=[("SPACEX", 0.93)], text_checked=True, scene="street", scene_score=0.3),
    "coffee.jpg": PhotoFacts(caption="a cup of coffee", objects=[("cup", 0.7), ("beverage", 0.8), ("food", 0.8)],
                             scene="cafe", scene_score=0.6, text_checked=True),
}


@pytest.fixture
def demo_services(demo_env_copy, bundled_backend):
    from core.services import build_services
    from core.settings import Settings

    return build_services(Settings(), backend=bundled_backend)


def _ids_by_name(services) -> dict[str, str]:
    return {p.path.rsplit("/", 1)[-1]: p.id for p in services.catalog.list_photos(limit=100)}


def _names(results) -> set[str]:
    return {r.photo.path.rsplit("/", 1)[-1] for r in results}


def test_stored_facts_filter_search_on_real_chroma_and_keep_annotations(demo_services):
    s = demo_services
    ids = _ids_by_name(s)
    s.store.update_metadata([ids["coffee.jpg"]], [{"topic_food": True}])  # an annotation already in the index
    store_facts(s, [(ids[n], f) for n, f in FACTS.items()])
    assert s.catalog.count() == 15 and s.store.count(s.backend.model_id, "image") == 15
    assert _names(search_text(s, "a photo", k=15, where=facts_where(has_people=True))) == {"astronaut.jpg", "camera.jpg"}
    assert _names(search_text(s, "a photo", k=15, where=facts_where(has_text=True))) == {"rocket.jpg"}
    assert _names(search_text(s, "a photo", k=15, where=facts_where(scene="street"))) == {"camera.jpg", "rocket.jpg"}
    assert _names(search_text(s, "a photo", k=15, where=facts_where(has_people=True, scene="street"))) == {"camera.jpg"}
    # Annotation keys survive the facts update; the facts keys land in both collections.
    assert _names(search_text(s, "a photo", k=15, where={"$and": [{"topic_food": True}, {"scene": "cafe"}]})) == {"coffee.jpg"}
    from core.search import search_image

    assert _names(search_image(s, photo_id=ids["coffee.jpg"], k=15, where=facts_where(has_people=True))) == {"astronaut.jpg", "camera.jpg"}
    assert s.catalog.get(ids["rocket.jpg"]).facts == FACTS["rocket.jpg"]


def test_a_rewritten_backend_caption_is_searchable_at_once(demo_services):
    s = demo_services
    ids = _ids_by_name(s)
    caption = "a sign that says Cafe Milano"
    vec = s.backend.embed_texts([caption])
    s.store.delete(s.backend.model_id, "facts", [ids["clock.jpg"]])  # as if ingested before facts vectors existed
    before = s.store.count(s.backend.model_id, "facts")
    store_facts(s, [(ids["clock.jpg"], PhotoFacts(caption=caption, text=[("Cafe Milano", 0.9)], text_checked=True))],
                captions=[(ids["clock.jpg"], caption)], vectors={"caption": ([ids["clock.jpg"]], vec), "facts": ([ids["clock.jpg"]], vec)})
    photo = s.catalog.get(ids["clock.jpg"])
    assert photo.caption == caption and photo.caption_source == f"{s.backend.name}:{s.backend.model_id}"
    hits = search_text(s, "Cafe Milano sign", k=3)
    assert hits[0].photo.id == ids["clock.jpg"] and hits[0].photo.caption == caption
    # A space the photo was not in yet (facts vectors) gets it, with the metadata of its image entry.
    meta = s.store.get_metadata(s.backend.model_id, "facts", [ids["clock.jpg"]])[ids["clock.jpg"]]
    assert meta["class_name"] == "demo" and meta["has_text"] is True and meta["caption"] == caption
    assert s.store.count(s.backend.model_id, "facts") == before + 1


def test_cli_search_filters(demo_services, capsys):
    import json

    from core.cli import main

    ids = _ids_by_name(demo_services)
    store_facts(demo_services, [(ids[n], f) for n, f in FACTS.items()])
    assert main(["search", "a photo", "-k", "15", "--has-people", "--json"]) == 0
    assert {r["path"].rsplit("/", 1)[-1] for r in json.loads(capsys.readouterr().out)} == {"astronaut.jpg", "camera.jpg"}
    assert main(["search", "a photo", "--has-text", "--scene", "street", "--json"]) == 0
    assert [r["path"].rsplit("/", 1)[-1] for r in json.loads(capsys.readouterr().out)] == ["rocket.jpg"]


def test_object_and_people_count_filters_on_real_chroma(demo_services):
    from dataclasses import replace

    s = demo_services
    ids = _ids_by_name(s)
    facts = dict(FACTS)
    facts["coffee.jpg"] = replace(FACTS["coffee.jpg"], detector="centernet-320",
                                  detections=[("cup", 0.6, (0.2, 0.1, 0.8, 0.7)), ("dining table", 0.35, (0, 0.3, 1, 1))])
    facts["astronaut.jpg"] = replace(FACTS["astronaut.jpg"], detector="centernet-320", people=2,
                                     detections=[("person", 0.7, (0.1, 0, 0.6, 1)), ("person", 0.3, (0.6, 0.2, 0.9, 1)),
                                                 ("cup", 0.25, (0.4, 0.4, 0.5, 0.5))])  # too unsure to assert
    store_facts(s, [(ids[n], f) for n, f in facts.items()])
    assert _names(search_text(s, "a photo", k=15, where=facts_where(objects=["cup"]))) == {"coffee.jpg"}
    assert _names(search_text(s, "a photo", k=15, where=facts_where(objects=["cup", "dining table"]))) == {"coffee.jpg"}
    assert _names(search_text(s, "a photo", k=15, where=facts_where(objects=["dog"]))) == set()
    assert _names(search_text(s, "a photo", k=15, where=facts_where(people="2"))) == {"astronaut.jpg"}
    assert _names(search_text(s, "a photo", k=15, where=facts_where(people="1"))) == {"camera.jpg"}
    assert "coffee.jpg" in _names(search_text(s, "a photo", k=15, where=facts_where(people="none")))
    with pytest.raises(ValueError, match="not one of the detector's objects"):
        facts_where(objects=["unicorn"])
    with pytest.raises(ValueError, match="people filter"):
        facts_where(people="lots")
