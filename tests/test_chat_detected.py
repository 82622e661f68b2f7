"""Chat over the detector's facts: counts and lists by object and by people count."""
from __future__ import annotations

from dataclasses import replace

from core.chat.query import Vocabulary, plan_question
from tests.test_chat import demo_services, names, run  # noqa: F401 - demo_services is a fixture
from tests.test_facts_use import FACTS, _ids_by_name

V = Vocabulary(has_facts=True, detected=True, scenes=["kitchen", "bathroom"])


def test_questions_read_the_detected_objects_and_people_counts():
    dogs = plan_question("how many photos have dogs?", V)
    assert dogs.intent == "count" and [[(c.key, c.value, c.also) for c in g] for g in dogs.facts] == [[("detected", "dog", "dogs")]]
    sofa = plan_question("show me a sofa", V)  # another word for the detector's couch
    assert sofa.facts[0][0].value == "couch"
    crowd = plan_question("photos with more than two people", V)
    assert (crowd.facts[0][0].key, crowd.facts[0][0].op, crowd.facts[0][0].value) == ("people_count", "ge", 3)
    least = plan_question("photos with at least 2 people", V)
    assert (least.facts[0][0].op, least.facts[0][0].value) == ("ge", 2)
    no_people = plan_question("photos with cars but no people", V)
    assert no_people.describe_filters().startswith("detected car or matching “cars”")
    # a library without detector facts keeps reading object words by search score
    assert plan_question("how many photos have dogs?", Vocabulary(has_facts=True)).semantic == "dogs"


def test_counts_by_detected_object_and_people_on_real_chroma(demo_services):
    from core.facts.refresh import store_facts

    s = demo_services
    ids = _ids_by_name(s)
    facts = {n: FACTS.get(n, replace(FACTS["coffee.jpg"], caption="a photo", objects=[], scene="", detections=[])) for n in ids}
    facts = {n: replace(f, detector="centernet-320") for n, f in facts.items()}
    facts["coffee.jpg"] = replace(facts["coffee.jpg"], detections=[("cup", 0.6, (0.2, 0.1, 0.8, 0.7))])
    facts["astronaut.jpg"] = replace(facts["astronaut.jpg"], people=3,
                                     detections=[("person", 0.7, (0.1, 0, 0.4, 1)), ("person", 0.5, (0.4, 0, 0.7, 1)),
                                                 ("person", 0.4, (0.7, 0, 1, 1))])
    store_facts(s, [(ids[n], f) for n, f in facts.items()])
    cups = run("how many photos with a cup?", s, None)
    assert cups.count >= 1 and "coffee.jpg" in names(cups.photos)
    crowd = run("photos with more than two people", s, None)
    assert names(crowd.photos) == ["astronaut.jpg"] and "3 or more people" in crowd.text
