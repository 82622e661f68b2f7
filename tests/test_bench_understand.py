"""The understanding bench's metric code on a tiny subset of the eval set (no timings asserted)."""
from __future__ import annotations

import json

import pytest

from bench.bench_understand import facts_accuracy, main, ranking_metrics, topic_accuracy
from bench.evalset import EvalQuery, load_eval_photos
from core.facts import PhotoFacts


@pytest.fixture(scope="module")
def photos():
    by_name = {p.filename: p for p in load_eval_photos()}
    return [by_name[n] for n in ("astronaut.jpg", "tabby_cat.jpg", "book_page_text.jpg", "snowy_mountains.jpg")]


def test_ranking_metrics_on_known_rankings():
    queries = [EvalQuery("a cat", ("tabby_cat.jpg",)),
               EvalQuery("a person", ("astronaut.jpg", "grace_hopper.jpg"))]
    perfect = {"a cat": ["tabby_cat.jpg", "astronaut.jpg", "coffee_cup.jpg"],
               "a person": ["grace_hopper.jpg", "astronaut.jpg", "tabby_cat.jpg"]}
    m = ranking_metrics(perfect, queries)
    assert m["success_at_1"] == 1.0 and m["map"] == 1.0 and m["misses"] == []
    assert m["precision_at_3"] == pytest.approx((1 / 3 + 2 / 3) / 2, abs=1e-4)

    # the cat second, one person first and one never found
    worse = {"a cat": ["coffee_cup.jpg", "tabby_cat.jpg"], "a person": ["astronaut.jpg", "coffee_cup.jpg"]}
    m = ranking_metrics(worse, queries)
    assert m["success_at_1"] == 0.5
    assert m["map"] == pytest.approx((0.5 + 0.5) / 2, abs=1e-4)  # AP(cat) = 1/2; AP(person) = 1/2 (one of two found)
    assert m["recall_at_10"] == pytest.approx((1.0 + 0.5) / 2, abs=1e-4)
    assert m["misses"] == [{"query": "a cat", "got": "coffee_cup.jpg", "wanted": ["tabby_cat.jpg"]}]
    assert ranking_metrics({}, queries)["misses"][0]["got"] is None  # a method that returned nothing is a miss


def test_facts_accuracy_against_hand_labels(photos):
    assert facts_accuracy(photos, {}) is None  # no facts in the catalog: reported as null
    facts = {
        "astronaut.jpg": PhotoFacts(people=1, faces=1, scene="studio/indoor", setting="indoor"),
        "tabby_cat.jpg": PhotoFacts(people=1, scene="living room", setting="indoor"),  # a false person, scene and setting
        "book_page_text.jpg": PhotoFacts(text=[("Region-based segmentation", 0.98)], scene="other"),
        "snowy_mountains.jpg": None,  # not extracted yet: left out, not counted as wrong
    }
    a = facts_accuracy(photos, facts)
    assert a["photos_with_facts"] == 3
    assert a["people_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert a["text_accuracy"] == 1.0
    assert 0.0 < a["text_word_recall"] < 1.0  # two of the labelled words were read
    assert a["scene_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert a["scene_misses"] == [{"photo": "tabby_cat.jpg", "got": "living room", "wanted": "other"}]
    # indoor against the README's definition: the studio portrait is indoors, the cat's close-up is not
    assert a["indoor_told"] == 2 and a["indoor_precision"] == 0.5 and a["indoor_recall"] == 1.0 and a["indoor_photos"] == 1


def test_topic_accuracy_multi_label(photos):
    predicted = {"astronaut.jpg": ["people", "vehicle"], "tabby_cat.jpg": ["food"],
                 "book_page_text.jpg": ["object"], "snowy_mountains.jpg": ["nature"]}
    t = topic_accuracy(photos, predicted)
    assert t["top1_accuracy"] == 0.75 and t["exact_accuracy"] == 0.5
    assert t["micro_precision"] == pytest.approx(3 / 5, abs=1e-4) and t["micro_recall"] == 0.75
    assert topic_accuracy(photos, {}) is None


@pytest.mark.slow
def test_bench_runs_on_real_photos_with_the_bundled_backend(tmp_path, capsys):
    out = tmp_path / "u.json"
    result = main(["--limit", "6", "--compare", "--no-topics", "--verbose", "--json-out", str(out),
                   "--data-dir", str(tmp_path / "data")])
    assert json.loads(out.read_text()) == json.loads(capsys.readouterr().out) == result
    assert result["photos"] == 6 and result["ingest"]["photos_added"] == 6
    assert set(result["search"]) == {"search", "captions", "random"}
    assert all(0.0 <= r["map"] <= 1.0 for r in result["search"].values())
    assert result["facts"] is None or result["facts"]["photos_with_facts"] <= 6
    # the coffee cup is found for the coffee query by today's caption search on this subset
    assert not any(m["query"] == "a cup of coffee" for m in result["misses_at_1"]["captions"])


def test_facts_scoring_overrides_name_a_real_constant(monkeypatch):
    import core.facts.vector as vector
    from bench.bench_facts_scoring import apply_overrides

    monkeypatch.setattr(vector, "LANDSCAPE_WEIGHT", vector.LANDSCAPE_WEIGHT)  # restored after the test
    monkeypatch.setattr(vector, "COLOUR_WEIGHTS", vector.COLOUR_WEIGHTS)
    apply_overrides(["core.facts.vector.LANDSCAPE_WEIGHT=0.6", "core.facts.vector.COLOUR_WEIGHTS=(0.5,0.2,0.1)"])
    assert vector.LANDSCAPE_WEIGHT == 0.6 and vector.COLOUR_WEIGHTS == (0.5, 0.2, 0.1)
    with pytest.raises(SystemExit, match="has no LANDSCAPE_WEIGHTS"):
        apply_overrides(["core.facts.vector.LANDSCAPE_WEIGHTS=1"])
