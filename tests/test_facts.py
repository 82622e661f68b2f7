"""Photo facts on real sample photos: WordNet words, people, OCR, scenes, colours, captions, failures."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EVAL = Path(__file__).parent / "data" / "eval" / "photos"


def _photo(name: str) -> Image.Image:
    return Image.open(EVAL / name).convert("RGB")


@pytest.fixture(scope="module")
def people_detector():
    from models.faces import make_people_detector

    return make_people_detector()


@pytest.fixture(scope="module")
def ocr_reader():
    from models.ocr import RapidOCRReader

    return RapidOCRReader()


def _probs_for(name: str) -> np.ndarray:
    from core.facts.words import vocabulary

    p = np.zeros((1, 1000), np.float32)
    p[0, vocabulary().class_words.index(name)] = 1.0
    return p


def test_wordnet_parents_of_imagenet_classes():
    from core.facts.words import top_objects, vocabulary, word_scores

    vocab = vocabulary()
    tabby = {w for w, _ in top_objects(word_scores(_probs_for("tabby"))[0], k=40)}
    assert {"tabby", "cat", "animal"} <= tabby and "dog" not in tabby
    bed = {w for w, _ in top_objects(word_scores(_probs_for("four-poster"))[0], k=40)}
    assert {"four-poster", "bed", "furniture"} <= bed
    # a parent collects its classes' probabilities: three cat breeds at 0.3 make a confident "cat"
    p = np.zeros((1, 1000), np.float32)
    for name in ("tabby", "tiger cat", "egyptian cat"):
        p[0, vocab.class_words.index(name)] = 0.3
    scores = word_scores(p)[0]
    assert scores[vocab.index("cat")] == pytest.approx(0.9, abs=1e-5)
    assert scores[vocab.index("tabby")] == pytest.approx(0.3, abs=1e-5)


def test_a_face_on_the_astronaut_none_on_the_coffee_cup(people_detector):
    astronaut = people_detector.detect(_photo("astronaut.jpg"))
    assert astronaut.faces == 1 and astronaut.people == 1 and astronaut.largest_face > 0.01
    for name in ("coffee_cup.jpg", "tabby_cat.jpg", "rocket_launch_pad.jpg"):
        assert people_detector.detect(_photo(name)).people == 0, name


def test_ocr_reads_the_printed_page_and_nothing_on_the_cat(ocr_reader):
    lines = ocr_reader.read(_photo("book_page_text.jpg"))
    text = " ".join(t for t, _ in lines)
    assert "Region-based segmentation" in text
    assert all(score >= 0.8 for _, score in lines)
    assert ocr_reader.read(_photo("tabby_cat.jpg")) == []


def test_scene_rules_bad_files_name_the_file_and_line(tmp_path):
    from core.facts.scenes import SceneRulesError, load_scene_rules
    from core.facts.words import known_words

    known = known_words()
    broken = tmp_path / "scenes.toml"
    broken.write_text('min_confidence = 0.4\n\n[scene.kitchen]\nobjects = { "stove" = 2.0 \n')
    with pytest.raises(SceneRulesError, match=r"scenes\.toml, line [34]"):
        load_scene_rules(broken, known_words=known)
    typo = tmp_path / "typo.toml"
    typo.write_text('[scene.kitchen]\nobjects = { "stove" = 2.0 }\n\n[scene.bath]\nobjects = { "bathtubb" = 1.0 }\n')
    with pytest.raises(SceneRulesError, match=r"typo\.toml, line 4 .*'bathtubb' is not an object word"):
        load_scene_rules(typo, known_words=known)
    weight = tmp_path / "weight.toml"
    weight.write_text('[scene.kitchen]\nobjects = { "stove" = "lots" }\n')
    with pytest.raises(SceneRulesError, match=r"weight\.toml, line 1 .*must be a number"):
        load_scene_rules(weight, known_words=known)
    quoted = tmp_path / "quoted.toml"
    quoted.write_text('[scene."living room"]\nobjects = { "studio couch" = 2.0, "sofaa" = 1.0 }\n')
    with pytest.raises(SceneRulesError, match=r"quoted\.toml, line 1 .*'sofaa'"):
        load_scene_rules(quoted, known_words=known)
    with pytest.raises(SceneRulesError, match="cannot read"):
        load_scene_rules(tmp_path / "missing.toml")
    # the shipped rules load, and name real words only
    rules = load_scene_rules(known_words=known)
    assert {"kitchen", "bathroom", "bedroom", "living room", "street", "beach", "forest"} <= {r.name for r in rules.rules}


def test_scene_needs_objects_and_grows_with_evidence():
    from core.facts.scenes import load_scene_rules

    rules = load_scene_rules()
    one, _ = rules.infer({"bathtub": 0.3}), None
    both = rules.infer({"bathtub": 0.6, "washbasin": 0.6})
    assert both[0] == "bathroom" and both[1] > one[1]
    assert rules.infer({}, people=3, has_text=True)[0] == ""


def test_dominant_colours_of_real_photos():
    from core.facts.colours import dominant_colours

    assert dominant_colours(Image.new("RGB", (50, 40), (200, 30, 35))) == ["red"]
    pier = dominant_colours(_photo("pier_black_white.jpg"))
    assert set(pier) <= {"black", "white", "grey"}


class _Broken:
    def detect(self, image):
        raise RuntimeError("model file is corrupt")


class _Slow:
    def read(self, image):
        time.sleep(3)
        return [("never", 1.0)]


def test_a_failing_or_slow_detector_leaves_the_other_facts_and_a_note(bundled_backend):
    from core.facts.extract import FactsExtractor

    img = _photo("tabby_cat.jpg")
    _, probs, regions = bundled_backend._forward([img])
    ex = FactsExtractor(people=_Broken(), ocr=_Slow(), timeout_s=0.5)
    facts = ex.extract([img], probs, regions)[0]
    assert "cat" in [w for w, _ in facts.objects] and facts.colours and "cat" in facts.caption
    assert facts.people == 0 and facts.text == [] and not facts.text_checked
    notes = " | ".join(facts.notes)
    assert "people detector failed (RuntimeError: model file is corrupt)" in notes and "OCR timed out" in notes


def test_captions_from_facts(bundled_backend):
    descs = bundled_backend.describe([_photo("astronaut.jpg"), _photo("book_page_text.jpg"), _photo("tabby_cat.jpg")])
    astronaut, page, cat = descs
    assert "person" in astronaut.caption and astronaut.facts.faces == 1
    assert page.caption.startswith('a photo with the text "Region-based segmentation') and page.facts.has_text
    assert "cat" in cat.caption and cat.facts.people == 0
    assert all(d.tags and d.facts.version >= 1 for d in descs)


def test_text_check_box_shapes():
    from models.ocr import text_like

    area = 320.0 * 240.0
    blob = [(10, 10), (250, 10), (250, 200), (10, 200)]  # near-square, 60% of the photo: texture
    line = [(10, 100), (310, 100), (310, 160), (10, 160)]  # as big, but a line: a large sign
    small = [(10, 10), (40, 10), (40, 30), (10, 30)]  # any small box may be a word
    assert not text_like(blob, area) and text_like(line, area) and text_like(small, area)


def test_text_check_skips_texture_blobs_and_keeps_text(ocr_reader):
    """On the gorilla's fur the detector returns one box over most of the photo: no full OCR pass;
    the page of text and the helicopter's small registration still pass the check."""
    from models.ocr import CHECK_EDGE, _bgr

    fur = _bgr(_photo("gorilla.jpg"), CHECK_EDGE)
    assert len(ocr_reader._check(fur, use_cls=False, use_rec=False).boxes) > 0  # the detector does fire
    assert not ocr_reader.has_text(fur)
    for name in ("book_page_text.jpg", "helicopter_sailboat.jpg"):
        assert ocr_reader.has_text(_bgr(_photo(name), CHECK_EDGE)), name


def test_portrait_is_one_fact_for_caption_details_and_filters(bundled_backend):
    """A close face makes a portrait; a person within a wide scene does not. The caption, the photo
    details and the index metadata (what Chat counts "portraits" on) read the same PhotoFacts.is_portrait."""
    from core.facts import PhotoFacts
    from core.facts.view import facts_lines

    portrait, cameraman, cat = bundled_backend.describe([_photo("portrait_man.jpg"), _photo("cameraman.jpg"), _photo("tabby_cat.jpg")])
    assert portrait.facts.is_portrait and portrait.facts.largest_face >= 0.03
    assert portrait.caption.startswith("a portrait of a person") and portrait.facts.index_metadata()["portrait"] is True
    assert any("a portrait" in line for line in facts_lines(portrait.facts))
    assert cameraman.facts.people == 1 and not cameraman.facts.is_portrait
    assert not cameraman.caption.startswith("a portrait") and cameraman.facts.index_metadata()["portrait"] is False
    assert not cat.facts.is_portrait
    back = PhotoFacts.from_json(portrait.facts.to_json())
    assert back.largest_face == portrait.facts.largest_face and back.is_portrait
    assert not PhotoFacts(people=2, faces=2, largest_face=0.2).is_portrait  # two people are not a portrait


def test_caption_does_not_name_the_scene_twice():
    from core.facts.caption import write_caption

    def caption(phrase, evidence):
        return write_caption(people="", scene_phrase=phrase, scene_objects=evidence, objects=evidence)

    assert caption("a building", ["building", "palace"]) == "a building with a palace"  # was "a building with a building and a palace"
    assert caption("a lake", ["lakeside"]) == "a lake"
    assert caption("a bathroom", ["bathtub", "washbasin"]) == "a bathroom with a bathtub and a washbasin"


def test_ocr_sessions_do_not_spin_and_read_the_same_text(ocr_reader):
    """RapidOCR's sessions are rebuilt with idle spinning off (its default pool spun after every text
    check, taking the cores from what ran next); the text read is what the default sessions read."""
    from rapidocr import RapidOCR

    parts = [ocr_reader._check.text_det, ocr_reader._engine.text_det, ocr_reader._engine.text_cls, ocr_reader._engine.text_rec]
    for part in parts:
        opts = part.session.session.get_session_options()
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    from models.ocr import OCR_EDGE, _bgr

    page = _bgr(_photo("book_page_text.jpg"), OCR_EDGE)
    spinning = RapidOCR(params={"Global.log_level": "error"})(page)  # RapidOCR's own default sessions
    ours = ocr_reader._engine(page)
    assert list(ours.txts) == list(spinning.txts) and np.allclose(ours.scores, spinning.scores)


def test_facts_extractor_clocks_each_source(ocr_reader, people_detector, bundled_backend):
    """FactsExtractor.seconds and RapidOCRReader.seconds split a photo's facts time by source
    (bench/bench_facts_cost.py reports them); the full OCR pass is clocked only where the check fired."""
    from core.facts.extract import FactsExtractor

    imgs = [_photo("book_page_text.jpg"), _photo("tabby_cat.jpg")]
    _, probs, regions = bundled_backend._forward(imgs)
    ex = FactsExtractor(people=people_detector, ocr=ocr_reader)
    before = dict(ocr_reader.counts)
    ex.extract(imgs, probs, regions)
    assert {"shrink", "objects", "people", "text", "colours", "cues", "scene rules", "caption", "region words"} <= set(ex.seconds)
    assert all(v > 0 for v in ex.seconds.values())
    assert ocr_reader.counts["text check"] - before["text check"] == 2 and ocr_reader.counts["OCR"] - before["OCR"] == 1


def test_rgb_photos_are_read_without_a_copy_and_the_facts_are_unchanged(people_detector):
    """Colours, cues and the face detector read an RGB photo as it is (no convert copy); other modes
    are still converted, and give the same facts as their RGB conversion."""
    from core.facts.colours import dominant_colours
    from core.facts.cues import read_cues
    from core.images import rgb_of

    rgb = _photo("astronaut.jpg")
    assert rgb_of(rgb) is rgb
    rgba = rgb.convert("RGBA")
    assert rgb_of(rgba).mode == "RGB" and rgb_of(rgba) is not rgba
    assert dominant_colours(rgba) == dominant_colours(rgb) and read_cues(rgba) == read_cues(rgb)
    assert people_detector.detect(rgba) == people_detector.detect(rgb)


def test_ocr_keeps_words_not_rows_of_symbols(ocr_reader):
    """Grace Hopper's badge reads "COMO HOPPER"; the row of stars above it ("***", 0.92) is not text a
    person reads, and once made her caption end in `with the text "***"`."""
    texts = [t for t, _ in ocr_reader.read(_photo("grace_hopper.jpg"))]
    assert any("HOPPER" in t for t in texts) and not any(t.strip("*") == "" for t in texts), texts
