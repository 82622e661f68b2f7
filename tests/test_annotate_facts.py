"""The zero-shot annotator reads photo facts: real eval photos with hand-written facts, real bundled backend."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.annotate.evidence import evidence, facts_sentence
from core.annotate.prompts import DEFAULT_PATH, load_prompts
from core.annotate.zeroshot import ZeroShotAnnotator
from core.catalog import Photo
from core.facts import PhotoFacts
from core.images import load_rgb

pytestmark = pytest.mark.slow

EVAL = Path(__file__).parent / "data" / "eval" / "photos"
# What a facts extractor should say about these photos (objects carry their WordNet parents).
FACTS = {
    "astronaut.jpg": PhotoFacts(caption="a portrait of a person", objects=[("suit", 0.4), ("clothing", 0.5)], people=1, faces=1,
                                scene="studio/indoor", scene_score=0.5),
    "coffee_cup.jpg": PhotoFacts(caption="a cup of coffee on a table", objects=[("espresso", 0.6), ("coffee", 0.7), ("beverage", 0.8),
                                                                               ("food", 0.8), ("cup", 0.5)], scene="restaurant", scene_score=0.4),
    "greek_coins.jpg": PhotoFacts(caption="coins", objects=[("coin", 0.5), ("money", 0.5), ("metal", 0.3)]),
    "brick_wall.jpg": PhotoFacts(caption="a brick wall", objects=[("brick", 0.5), ("wall", 0.4), ("building material", 0.4)],
                                 scene="building", scene_score=0.3),
}


@pytest.fixture(scope="module")
def annotated(bundled_backend):
    names = list(FACTS)
    images = [load_rgb(EVAL / n) for n in names]
    annotator = ZeroShotAnnotator(bundled_backend)
    tag_captions = [d.caption for d in bundled_backend.describe(images)]

    def run(with_facts: bool):
        photos = [Photo(id=f"{k:064x}", path=n, source="t", caption=c, facts=FACTS[n] if with_facts else None)
                  for k, (n, c) in enumerate(zip(names, tag_captions))]
        return dict(zip(names, annotator.annotate(photos, images)))

    return run(False), run(True)


def test_facts_fix_the_issue_examples(annotated):
    before, after = annotated
    assert all(r.ok for r in after.values())
    for name in ("greek_coins.jpg", "brick_wall.jpg", "astronaut.jpg"):
        assert "food" not in after[name].topics and "food" not in after[name].topics_image, (name, after[name].topics)
    for name in ("greek_coins.jpg", "brick_wall.jpg", "coffee_cup.jpg"):
        assert after[name].concept_text != "a portrait of a person", name
    assert "people" in after["astronaut.jpg"].topics and "people" in after["astronaut.jpg"].topics_image
    assert "food" in after["coffee_cup.jpg"].topics
    # Without facts the annotator reads the tag caption as before (and makes the issue's mistakes).
    assert any("food" in before[n].topics for n in ("greek_coins.jpg", "brick_wall.jpg", "astronaut.jpg"))


def test_facts_sentence_leaves_out_missing_facts():
    prompts = load_prompts()
    coins = facts_sentence(FACTS["greek_coins.jpg"], prompts)
    assert coins == "coins, showing coin, money, metal" and "people" not in coins
    assert facts_sentence(FACTS["astronaut.jpg"], prompts).startswith("a portrait of a person, a studio/indoor, with a person")
    assert facts_sentence(PhotoFacts(), prompts) == "a photo"
    assert evidence(FACTS["astronaut.jpg"], prompts) == {"suit", "clothing", "people", "scene:studio/indoor"}


def test_rules_naming_an_unknown_topic_are_refused_with_the_file(tmp_path):
    bad = tmp_path / "p.toml"
    text = DEFAULT_PATH.read_text().replace('people = ["people"]\nfood =', 'peple = ["people"]\nfood =')
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"p.toml: \[facts.requires\] 'peple' is not a topic or concept phrase"):
        load_prompts(bad)
    bad.write_text(DEFAULT_PATH.read_text().replace('scene = "a {scene}"', 'scene = "a place"'), encoding="utf-8")
    with pytest.raises(ValueError, match=r"\[facts.sentence\] scene must contain \{scene\}"):
        load_prompts(bad)
