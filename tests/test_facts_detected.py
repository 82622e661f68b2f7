"""Photo facts v5 from the detectors, on real photos: objects with boxes and counts, people from
person boxes and faces, scenes and captions from what was counted, and a detector that fails."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

EVAL = Path(__file__).parent / "data" / "eval" / "photos"


def _photos(*names: str) -> list[Image.Image]:
    return [Image.open(EVAL / n).convert("RGB") for n in names]


@pytest.fixture(scope="module")
def extractor(detectors_dir):
    from core.facts.extract import FactsExtractor

    return FactsExtractor(ocr=None, detectors_dir=detectors_dir)


def _facts(extractor, bundled_backend, *names: str):
    imgs = _photos(*names)
    _, probs, regions = bundled_backend._forward(imgs)
    return dict(zip(names, extractor.extract(imgs, probs, regions)))


def test_people_objects_scenes_and_captions_on_real_photos(extractor, bundled_backend):
    from core.facts import FACTS_VERSION

    got = _facts(extractor, bundled_backend, "cyclist_bridge.jpg", "coffee_cup.jpg", "two_men_corridor.jpg",
                 "desk_lamp_laptop.jpg", "small_dog.jpg", "red_motorcycle_garage.jpg", "astronaut.jpg")
    assert all(f.version == FACTS_VERSION and f.detector for f in got.values())
    # the cyclist has no visible face: only the person detector sees him
    assert got["cyclist_bridge.jpg"].faces == 0 and got["cyclist_bridge.jpg"].people >= 1
    assert got["coffee_cup.jpg"].people == 0 and "cup" in got["coffee_cup.jpg"].object_counts
    men = got["two_men_corridor.jpg"]
    assert men.people == 2 and men.caption.startswith("two people")
    desk = got["desk_lamp_laptop.jpg"]
    assert desk.scene == "office" and "laptop" in desk.caption
    assert {"laptop", "keyboard"} <= set(desk.index_metadata()["detected"])
    dog = got["small_dog.jpg"]
    assert dog.index_metadata()["detected"] == ["dog"] and dog.caption == "a dog"
    assert "motorcycle" in got["red_motorcycle_garage.jpg"].caption
    # the detector's words join the object words the search and scenes read ("sofa" for a couch, ...)
    assert dict(desk.objects).get("computer keyboard", 0) >= 0.3
    for f in got.values():
        for label, score, box in f.detections:
            assert 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1 and 0 < score <= 1
    astronaut = got["astronaut.jpg"]
    assert astronaut.people == 1 and astronaut.expressions and astronaut.expressions[0][0] == "happy"


def test_facts_round_trip_keeps_boxes_and_expressions(extractor, bundled_backend):
    from core.facts import PhotoFacts

    f = _facts(extractor, bundled_backend, "astronaut.jpg")["astronaut.jpg"]
    back = PhotoFacts.from_json(f.to_json())
    assert back == f and isinstance(back.detections[0][2], tuple)


def test_without_detectors_the_facts_are_version_4_and_say_what_is_missing(bundled_backend, tmp_path):
    from core.facts import FACTS_VERSION_WITHOUT_DETECTORS
    from core.facts.extract import FactsExtractor

    ex = FactsExtractor(ocr=None, detectors_dir=tmp_path / "none")
    assert ex.objects is None and ex.version == FACTS_VERSION_WITHOUT_DETECTORS
    imgs = _photos("two_men_corridor.jpg")
    _, probs, regions = bundled_backend._forward(imgs)
    f = ex.extract(imgs, probs, regions)[0]
    assert f.version == FACTS_VERSION_WITHOUT_DETECTORS and not f.detections and f.detector == ""
    assert any("object detector unavailable" in n and "detectors build" in n for n in f.notes)
    assert f.index_metadata()["detected"] == [""]


class _Broken:
    name = "broken"

    def detect(self, image):
        raise RuntimeError("onnx said no")


def test_a_failing_detector_keeps_the_other_facts(bundled_backend):
    from core.facts.extract import FactsExtractor

    ex = FactsExtractor(ocr=None, objects=_Broken(), expressions=None)
    imgs = _photos("tabby_cat.jpg")
    _, probs, regions = bundled_backend._forward(imgs)
    f = ex.extract(imgs, probs, regions)[0]
    assert "object detector failed (RuntimeError: onnx said no)" in f.notes
    assert f.objects and f.caption and not f.detections and f.detector == ""


def test_people_counting_merges_faces_with_person_boxes():
    from core.facts.detected import count_people, counted_phrase, merge_objects, plural

    person = ("person", 0.6, (0.1, 0.1, 0.4, 0.9))
    face_in = (0.2, 0.15, 0.1, 0.1)  # inside the person box: the same person
    face_out = (0.7, 0.2, 0.1, 0.1)  # no body found: a person of its own
    assert count_people([person], [face_in]) == 1
    assert count_people([person], [face_in, face_out]) == 2
    assert count_people([("person", 0.1, (0, 0, 1, 1))], []) == 0  # too unsure to count
    assert counted_phrase("toilet", 1) == "a toilet" and counted_phrase("dog", 2) == "two dogs"
    assert counted_phrase("wine glass", 3) == "three wine glasses" and counted_phrase("car", 9) == "many cars"
    assert plural("person") == "people" and plural("bus") == "buses"
    assert merge_objects([("sofa", 0.2), ("cat", 0.9)], {"sofa": 0.6}) == [("cat", 0.9), ("sofa", 0.6)]
