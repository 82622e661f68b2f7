"""BlazePose's person detector (models/pose.py) on real eval photos, and its merge with the faces."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# ai-edge-litert is pinned in requirements.txt; the body detector is off by default (README "What the
# bundled backend can and cannot see") and on with PHOTOLORE_PEOPLE_DETECTOR=mediapipe+pose.

EVAL = Path(__file__).parent / "data" / "eval" / "photos"


def _photo(name: str) -> Image.Image:
    return Image.open(EVAL / name).convert("RGB")


@pytest.fixture(scope="module")
def pose():
    from models.pose import PoseDetector

    return PoseDetector()


@pytest.fixture(scope="module")
def people():
    from models.faces import make_people_detector

    return make_people_detector("mediapipe+pose")


def test_anchors_and_letterbox_follow_the_graph_options():
    from models.pose import INPUT, letterbox, ssd_anchors

    anchors = ssd_anchors()
    assert anchors.shape == (2254, 2)  # the model's output rows: 28x28x2 + 14x14x2 + 7x7x6
    assert np.allclose(anchors[0], [0.5 / 28, 0.5 / 28]) and np.allclose(anchors[-1], [6.5 / 7, 6.5 / 7])
    tensor, (left, top, right, bottom) = letterbox(Image.new("RGB", (400, 200), (255, 255, 255)))
    assert tensor.shape == (1, INPUT, INPUT, 3) and tensor.max() == 1.0 and tensor.min() == -1.0  # white photo, black bars
    assert left == right == 0 and top == pytest.approx(0.25, abs=0.01) and bottom == pytest.approx(0.25, abs=0.01)


def test_a_body_where_the_face_detector_finds_no_face(pose, people):
    """The two men in the corridor: their faces are too small and turned for BlazeFace; the pose
    detector finds the one facing the camera, whose body box covers his standing figure."""
    from models.faces import MediapipePeople

    image = _photo("two_men_corridor.jpg")
    assert MediapipePeople().detect(image).people == 0
    bodies = pose.detect(image)
    assert len(bodies) == 1 and bodies[0].presence >= 0.5
    x, y, w, h = bodies[0].body
    assert x < 0.2 and h > 0.5  # the man on the left, head to knees at least
    found = people.detect(image)
    assert found.people == 1 and found.faces == 0


def test_no_body_on_photos_without_people_and_no_double_count(pose, people):
    # the detector alone fires on the helicopter, the kite and the moon (0.5-0.8); the landmark model's presence check drops them
    for name in ("coffee_cup.jpg", "tabby_cat.jpg", "helicopter_sailboat.jpg", "kite_sky.jpg", "moon_surface.jpg"):
        assert pose.detect(_photo(name)) == [], name
    astronaut = people.detect(_photo("astronaut.jpg"))  # her face and her body are one person
    assert astronaut.faces == 1 and astronaut.people == 1


def test_a_failing_body_detector_keeps_the_faces_and_says_so(people, bundled_backend):
    from core.facts.extract import FactsExtractor

    class Broken:
        def detect(self, image):
            raise RuntimeError("interpreter crashed")

    saved, people._bodies = people._bodies, Broken()
    try:
        image = _photo("astronaut.jpg")
        _, probs, regions = bundled_backend._forward([image])
        facts = FactsExtractor(people=people, ocr=None).extract([image], probs, regions)[0]
    finally:
        people._bodies = saved
    assert facts.faces == 1 and facts.people == 1
    assert any("body detector failed (RuntimeError: interpreter crashed)" in n for n in facts.notes)


def test_the_setting_turns_the_body_detector_on(monkeypatch, tmp_path):
    """PHOTOLORE_PEOPLE_DETECTOR reaches the facts extractor: bodies counted on the corridor photo only with it."""
    from core.settings import Settings
    from models.registry import create_backend

    monkeypatch.setenv("PHOTOLORE_BACKEND", "bundled")
    found = {}
    for kind in ("auto", "mediapipe+pose"):
        monkeypatch.setenv("PHOTOLORE_PEOPLE_DETECTOR", kind)
        backend, _ = create_backend(Settings(data_dir=tmp_path / kind, image_runtime="torch"))
        detector = backend.facts_extractor.people
        found[kind] = (detector.name, detector.detect(_photo("two_men_corridor.jpg")).people)
    assert found["auto"] == ("mediapipe-blazeface", 0)
    assert found["mediapipe+pose"][0] == "mediapipe-blazeface+blazepose" and found["mediapipe+pose"][1] >= 1
