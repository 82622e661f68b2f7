"""Colour-and-layout cues (sky, water, trees, ..., black and white) and the indoor/outdoor setting on real photos."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from core.facts import FACTS_VERSION, PhotoFacts
from core.facts.cues import Cues, infer_setting, read_cues
from core.facts.view import facts_lines, facts_where

EVAL = Path(__file__).parent / "data" / "eval" / "photos"


def _cues(name: str) -> Cues:
    image = Image.open(EVAL / name).convert("RGB")
    image.thumbnail((640, 640))  # the extractor's working copy
    return read_cues(image)


def test_black_and_white_photos_are_found_and_colour_ones_are_not():
    for name in ("pier_black_white.jpg", "cameraman.jpg", "two_men_corridor.jpg", "moon_surface.jpg"):
        assert _cues(name).monochrome >= 0.5, name
    # a starfield with a few coloured galaxies and a newspaper under warm light are not black and white
    for name in ("coffee_cup.jpg", "old_town_street.jpg", "tabby_cat.jpg", "lake_dusk.jpg", "hubble_deep_field.jpg",
                 "sudoku_newspaper.jpg"):
        assert _cues(name).monochrome < 0.5, name


def test_a_sky_over_landscapes_and_none_on_close_ups():
    for name in ("snowy_mountains.jpg", "chinese_temple.jpg", "autumn_mountain_meadow.jpg", "kite_sky.jpg"):
        assert _cues(name).elements.get("sky", 0) >= 0.5, name
    for name in ("coffee_cup.jpg", "tabby_cat.jpg", "living_room_wine.jpg", "office_desk_phone.jpg"):
        assert "sky" not in _cues(name).elements, name


def test_setting_indoor_and_outdoor_on_known_photos():
    outdoor = infer_setting(_cues("snowy_mountains.jpg").elements, {"geological formation": 0.6, "alp": 0.5})
    assert outdoor[0] == "outdoor" and outdoor[1] >= 0.5
    indoor = infer_setting(_cues("living_room_wine.jpg").elements, {"furniture": 0.7, "table lamp": 0.4}, scene="living room")
    assert indoor[0] == "indoor"
    assert infer_setting(_cues("tabby_cat.jpg").elements, {"cat": 0.9, "animal": 1.0})[0] == ""  # a close-up: cannot tell


def test_indoor_from_object_evidence_without_a_room_scene():
    """No scene rule fires on an office desk, yet a telephone and electronic equipment with no sky or
    greenery in the frame say indoors; the same objects under a sky do not."""
    from core.facts.cues import indoor_evidence

    desk = {"electronic equipment": 0.73, "telephone": 0.66}
    assert indoor_evidence(desk) > max(0.7 * 0.73, 0.6 * 0.66)  # independent clues add up
    assert infer_setting(_cues("office_desk_phone.jpg").elements, desk) == ("indoor", pytest.approx(indoor_evidence(desk), abs=1e-3))
    assert infer_setting(_cues("snowy_mountains.jpg").elements, desk)[0] == "outdoor"
    # weak evidence (a drum, a little furniture) only counts when no outdoor cue contradicts it
    weak = {"musical instrument": 0.62, "furniture": 0.09}
    assert infer_setting({}, weak)[0] == "indoor"
    assert infer_setting({"grass": 0.3}, weak)[0] == ""
    assert infer_setting({}, {"clothing": 1.0, "container": 0.7})[0] == ""  # worn and carried outdoors too


def test_new_facts_round_trip_filter_and_show():
    facts = PhotoFacts(setting="outdoor", setting_score=0.8, monochrome=True, landscape=[("sky", 0.7), ("water", 0.4)])
    back = PhotoFacts.from_json(facts.to_json())
    assert back == facts and back.version == FACTS_VERSION >= 2
    meta = back.index_metadata()
    assert meta["setting"] == "outdoor" and meta["monochrome"] is True and meta["landscape"] == ["sky", "water"]
    assert PhotoFacts().index_metadata()["landscape"] == [""]  # Chroma rejects an empty list
    assert facts_where(setting="outdoor") == {"setting": "outdoor"}
    assert facts_where(monochrome=True, has_people=True) == {"$and": [{"has_people": True}, {"monochrome": True}]}
    lines = "\n".join(facts_lines(back))
    assert "Setting: outdoor" in lines and "sky (0.70)" in lines and "black and white" in lines
    old = PhotoFacts.from_json('{"version": 1, "scene": "beach"}')  # a library from before the cues
    assert old.setting == "" and old.monochrome is False and old.version == 1


def test_a_bad_setting_filter_names_the_choices():
    with pytest.raises(ValueError, match="indoor, outdoor"):
        facts_where(setting="underwater")


def test_scene_rules_use_cues_and_reject_unknown_ones(tmp_path):
    from core.facts.scenes import SceneRulesError, load_scene_rules

    rules = load_scene_rules()
    # a meadow ImageNet has no class for: the grass cue alone makes the scene
    assert rules.infer({}, cues={"grass": 0.7})[0] == "field"
    assert rules.infer({}, cues={"water": 0.8, "sky": 0.6})[0] == "water"
    assert rules.infer({"bathtub": 0.9, "washbasin": 0.5}, cues={"sky": 0.4})[0] == "bathroom"  # objects still win
    assert rules.infer({}, people=2)[0] == ""  # people alone never make a place
    bad = tmp_path / "scenes.toml"
    bad.write_text('[scene.lake]\ncues = { "lava" = 1.0 }\n', encoding="utf-8")
    with pytest.raises(SceneRulesError, match=r"line 1.*'lava' is not a colour-and-layout cue"):
        load_scene_rules(bad)


def test_caption_names_the_landscape_when_imagenet_has_no_class():
    from core.facts.caption import write_caption

    assert write_caption(people="", scene_phrase="", scene_objects=[], objects=[], landscape=["sky", "water"]) == "a view of the sky and water"
    assert write_caption(people="", scene_phrase="", scene_objects=[], objects=[], monochrome=True, colours=["grey"]) == "a black and white photo"
    assert write_caption(people="", scene_phrase="", scene_objects=[], objects=["castle"], landscape=["sky"]) == "a castle"


def test_the_extractor_on_real_photos(bundled_backend):
    """The whole bundled pipeline (classifier + cues): outdoor landscapes, a black and white pier, no
    sunset on the espresso's warm wooden table, since the classifier is sure it is a close-up, and an office
    desk indoors."""
    names = ["snowy_mountains.jpg", "beech_forest.jpg", "pier_black_white.jpg", "coffee_cup.jpg", "office_desk_phone.jpg"]
    facts = {n: d.facts for n, d in zip(names, bundled_backend.describe([Image.open(EVAL / n).convert("RGB") for n in names]))}
    assert facts["snowy_mountains.jpg"].setting == "outdoor" and dict(facts["snowy_mountains.jpg"].landscape)["sky"] >= 0.5
    assert facts["beech_forest.jpg"].setting == "outdoor" and "trees" in dict(facts["beech_forest.jpg"].landscape)
    assert facts["pier_black_white.jpg"].monochrome
    coffee = facts["coffee_cup.jpg"]
    assert not coffee.monochrome and "sunset" not in dict(coffee.landscape) and coffee.setting != "outdoor"
    # a room that no scene rule names is still indoors, from its objects; no landscape is
    assert facts["office_desk_phone.jpg"].setting == "indoor" and not facts["office_desk_phone.jpg"].scene
    assert all(facts[n].setting != "indoor" for n in ("snowy_mountains.jpg", "beech_forest.jpg", "pier_black_white.jpg"))
