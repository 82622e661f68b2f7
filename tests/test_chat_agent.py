"""The tool-calling agent with a scripted tool-calling chat model over the real demo index."""
from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from tests.test_chat import annotate, demo_services, names  # noqa: F401  (fixture)


class ToolScriptModel(BaseChatModel):
    """Replies with the scripted messages in order; records what it was sent and the tools bound."""

    script: list
    seen: list = []
    bound: list = []

    @property
    def _llm_type(self) -> str:
        return "tool-script"

    def bind_tools(self, tools, **kw):
        self.bound[:] = [t.name for t in tools]
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kw: Any) -> ChatResult:
        self.seen.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.script.pop(0))])


def agent_llm(script):
    from core.chat.llm import ChatLLM

    return ChatLLM(ToolScriptModel(script=script, seen=[], bound=[]), "openai", "scripted tool model", use_tools=True)


def call(name, args, i="c1"):
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": i, "type": "tool_call"}])


def test_agent_counts_with_the_tool_and_cites_retrieved_photos(demo_services):
    from core.chat.reply import answer

    annotate(demo_services)
    llm = agent_llm([call("count_photos", {"sentiment": "negative", "topic": "food"}),
                     AIMessage("There are 2 such photos, for example [1]. I also like [5] and there are 40 more.")])
    chunks = []
    res = answer("how many negative photos are about food?", [], demo_services, llm, on_token=chunks.append)
    assert set(llm.model.bound) == {"search_photos", "count_photos", "rank_photos", "describe_photo"}
    tool_msgs = [m for m in llm.model.seen[-1] if isinstance(m, ToolMessage)]
    assert "exact count: 2" in tool_msgs[0].content
    assert res.count == 2 and sorted(names(res.photos)) == ["coffee.jpg", "retina.jpg"]
    assert res.text.startswith("2 photos match.") and "[1]" in res.text
    assert "[5]" not in res.text and "40" not in res.text and len(res.dropped) == 1
    assert "".join(chunks) == res.text


def test_agent_search_then_describe(demo_services):
    from core.chat.reply import answer

    llm = agent_llm([call("search_photos", {"query": "cat", "k": 2}), call("describe_photo", {"number": 1}, "c2"),
                     AIMessage("Photo [1] shows an Egyptian cat.")])
    res = answer("what is in the photo of the cat?", [], demo_services, llm)
    assert names(res.photos) == ["chelsea.jpg"]  # only photos that pass the search cut-off, even when k=2 was asked
    assert res.text == "Photo [1] shows an Egyptian cat."
    described = [m.content for m in llm.model.seen[-1] if isinstance(m, ToolMessage)][1]
    assert "tags" in described and "tabby" in described


def test_agent_bad_tool_arguments_are_reported_to_the_model(demo_services):
    from core.chat.reply import answer

    llm = agent_llm([call("rank_photos", {"dimension": "Happiness"}), AIMessage("Sorry, I could not rank them.")])
    res = answer("which photos are happiest?", [], demo_services, llm)
    err = [m.content for m in llm.model.seen[-1] if isinstance(m, ToolMessage)][0]
    assert err.startswith("error:") and "Happiness" in err
    # No tool produced data, so the rule chain answered instead: "happiest" ranks by sentiment,
    # which this library has no annotations for, and it says so rather than inventing an answer.
    assert res.text.startswith("No sentiment annotations yet") and res.photos == []


def test_agent_without_tool_calls_falls_back_to_rules(demo_services):
    from core.chat.reply import answer

    llm = agent_llm([AIMessage("I think there are 99 cats."), AIMessage("Photo [1] is a cat.")])
    res = answer("how many photos of cats are there?", [], demo_services, llm)
    assert res.count == 1 and res.text.startswith("1 photo matches (detected cat or matching “cats”)") and "99" not in res.text
