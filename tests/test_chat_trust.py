"""Issue #19: Chat agrees with Search, says only what the data holds, and follows the conversation.

Real demo library, real bundled backend and Chroma index; the model is scripted so the planted
made-up sentences are exactly the ones a user saw.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from tests.test_chat import annotate, demo_services, names, run, scripted  # noqa: F401  (fixture)

# Sentences the packaged model really added to answers (issue #19), verbatim.
TRAPS = {
    "how many photos are about food?": '"A photo of a food market catches the eye.',
    "which photos feel the least private?": ("The lack of personal details makes them less private than other types of photos, "
                                             "which often include identifying features like faces or logos."),
    "how many photos have a motorcycle?": ("These images showcase various aspects of motorcycle culture, from riding to interacting "
                                      "with riders and other motorcycle enthusiasts."),
}


def search_names(services, text: str) -> list[str]:
    from core.search import search_text, split_matches

    return names(r.photo for r in split_matches(services.backend, search_text(services, text, k=100))[0])


@pytest.mark.parametrize("question", sorted(TRAPS))
def test_planted_made_up_sentences_never_reach_the_answer(demo_services, question):
    annotate(demo_services)
    res = run(question, demo_services, scripted(TRAPS[question]))
    assert res.llm_used and len(res.dropped) == 1 and res.kept == 0
    assert "catches the eye" not in res.text and "personal details" not in res.text and "culture" not in res.text
    # Nothing the model wrote survived: the answer is the computed one, with no note about it.
    assert "\n" not in res.text and "left out" not in res.text and "grounding" not in res.text
    assert '"' not in res.text


def test_a_sentence_the_data_supports_is_kept_and_tidied(demo_services):
    res = run("show me the cat", demo_services, scripted('"[1] shows an Egyptian cat." The cat [1] is a tabby'))
    assert names(res.photos)[0] == "chelsea.jpg"
    assert res.text.endswith("\n\n[1] shows an Egyptian cat.") and res.kept == 1  # stray quotes gone
    assert len(res.dropped) == 1 and "unfinished" in res.dropped[0]  # cut off by max_tokens or the budget: never shown


@pytest.mark.parametrize("word", ["coffee", "cat", "rocket", "bathroom", "flower"])
def test_count_and_list_agree_with_search(demo_services, word):
    expected = search_names(demo_services, word)
    count = run(f"how many photos of {word} are there?", demo_services, None)
    assert count.count == len(expected) and count.total == len(expected)
    listed = run(f"show me photos of {word}", demo_services, None)
    assert names(listed.photos) == expected[:6]  # only photos that pass the cut-off, never padded to k
    if not expected:
        # a scene name ("bathroom") is answered by the scene fact, other words by the search score
        assert listed.text.startswith((f"No photo looks like “{word}”", f"I found no photo in your library (scene = {word})"))
        assert not listed.photos
    elif len(expected) < 6:
        # a word the object detector knows ("cat") is its label or the search; others the search alone
        assert listed.text.startswith((f"Only {len(expected)} photo", f"{len(expected)} photo matches (detected {word} or matching"))


def test_answers_name_photos_as_a_user_knows_them(demo_services):
    res = run("show me photos of coffee", demo_services, None)
    assert "[1] coffee.jpg (demo; an espresso)" in res.text


def test_followups_resolve_from_the_conversation(demo_services):
    annotate(demo_services)
    history: list[dict] = []

    def ask(q):
        res = run(q, demo_services, None, history)
        history.extend([{"role": "user", "content": q}, res.history_entry()])
        return res

    first = ask("how many negative photos are there?")
    assert first.count == 3 and sorted(names(first.photos)) == ["coffee.jpg", "retina.jpg", "rocket.jpg"]
    food = ask("and which of those are about food?")
    assert sorted(names(food.photos)) == ["coffee.jpg", "retina.jpg"]
    assert "among the 3 photos of the previous answer" in food.filters
    similar = ask("show me more like the second one")
    second = names(food.photos)[1]
    assert similar.plan.intent == "similar" and second not in names(similar.photos) and similar.photos
    assert f"look most like {second}" in similar.text
    about = ask("how many photos of cats are there?")
    other = ask("what about rockets?")
    assert other.plan.intent == "count" and other.plan.semantic == "rockets"
    assert other.count == len(search_names(demo_services, "rockets")) and about.count >= 1
    described = ask("what is in the first one?")  # the first photo of the last answer (rockets)
    assert names(described.photos) == names(other.photos)[:1] == ["rocket.jpg"]
    assert described.text.startswith("That photo is [1] rocket.jpg") and "tags:" in described.text
    out_of_range = ask("more like the ninth one")
    assert "say which one" in out_of_range.text and not out_of_range.photos


def test_photo_facts_become_filters_and_their_absence_is_said(demo_services):
    res = run("show me photos of people", demo_services, None)
    assert not any("no photo facts" in d for d in res.debug)  # ingest wrote facts into the demo index
    ids = {Path(p.path).name: p.id for p in demo_services.catalog.list_photos()}
    from core.facts import PhotoFacts

    facts = {"astronaut.jpg": PhotoFacts(people=1, faces=1, scene="space"), "coffee.jpg": PhotoFacts(scene="kitchen"),
             "chelsea.jpg": PhotoFacts(scene="kitchen"), "clock.jpg": PhotoFacts(text=[("hello", 0.9)], text_checked=True)}
    others = {n: PhotoFacts() for n in ids if n not in facts}
    table = {**facts, **others}
    from core.facts.refresh import store_facts

    store_facts(demo_services, [(ids[n], f) for n, f in table.items()])  # index and catalog, as reindex writes them
    people = run("how many photos with people are there?", demo_services, None)
    assert people.count == 1 and names(people.photos) == ["astronaut.jpg"]
    kitchens = run("how many kitchens are there?", demo_services, None)
    assert kitchens.count == 2 and sorted(names(kitchens.photos)) == ["chelsea.jpg", "coffee.jpg"]
    assert kitchens.plan.scene == "kitchen" and not kitchens.plan.semantic
    text = run("show me photos with text", demo_services, None)
    assert names(text.photos) == ["clock.jpg"] and text.text.startswith("1 photo matches (with text)")


def test_cli_keeps_the_conversation_in_a_history_file(demo_env_copy, tmp_path, capsys):
    from core.cli import main

    hist = tmp_path / "chat.json"
    assert main(["chat", "--no-llm", "--json", "--history", str(hist), "show", "me", "coffee"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["photos"][0]["name"].startswith("coffee.jpg")
    assert main(["chat", "--no-llm", "--json", "--history", str(hist), "more", "like", "the", "first", "one"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert "look most like coffee.jpg" in second["answer"] and "coffee.jpg" not in [p["name"] for p in second["photos"]]
    assert len(json.loads(hist.read_text())) == 4


class SlowChatModel(BaseChatModel):
    """A real LangChain chat model that thinks for `delay` seconds before its first token (a busy CPU)."""

    delay: float = 3.0

    @property
    def _llm_type(self) -> str:
        return "slow"

    def _generate(self, messages, stop=None, run_manager=None, **kw):
        raise NotImplementedError("streamed only")

    def _stream(self, messages, stop=None, run_manager=None, **kw):
        time.sleep(self.delay)
        yield ChatGenerationChunk(message=AIMessageChunk(content="An espresso [1]."))


def test_the_model_is_stopped_at_the_budget_and_the_computed_answer_stands(demo_services):
    import threading

    from core.chat.chain import ChatConfig
    from core.chat.llm import ChatLLM
    from core.chat.reply import answer

    llm = ChatLLM(SlowChatModel(delay=3.0), "local", "slow local model", lock=threading.Lock())
    t0 = time.monotonic()
    res = answer("show me photos of coffee", [], demo_services, llm, cfg=ChatConfig(budget_s=1.0))
    assert time.monotonic() - t0 < 2.5 and res.llm_error is None
    assert res.text.startswith("Only 1 photo looks like “coffee”") and "\n" not in res.text
    assert any("time budget" in d for d in res.debug)
    # The first answer's model call still holds the model: the next answer does not wait for it.
    t0 = time.monotonic()
    res = answer("show me the rocket", [], demo_services, llm, cfg=ChatConfig(budget_s=1.0))
    assert time.monotonic() - t0 < 2.5 and names(res.photos) == ["rocket.jpg"]
    assert any("busy" in d or "budget" in d for d in res.debug), res.debug
