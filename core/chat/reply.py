"""Chat's entry point: which answerer replies (the page, the CLI and the bench call this).

A model that can call tools gets the agent (core.chat.agent), which falls back to the rule chain
(core.chat.chain) when its tool calls fail; every other model, or none, gets the rule chain.
This choice lives above both, so the agent depends on the chain and never the other way round.
"""
from __future__ import annotations

from typing import Callable, Generator, Optional, Sequence

from core.chat.agent import stream_agent_answer
from core.chat.chain import ChatAnswer, ChatConfig, stream_answer


def stream_reply(question: str, history: Sequence, services, llm, *, cfg: Optional[ChatConfig] = None) -> Generator[str, None, ChatAnswer]:
    """The tool-calling agent for capable models, the rule chain otherwise."""
    if llm is not None and llm.use_tools:
        return (yield from stream_agent_answer(question, history, services, llm, cfg=cfg))
    return (yield from stream_answer(question, history, services, llm, cfg=cfg))


def answer(question: str, history: Sequence, services, llm, on_token: Optional[Callable[[str], None]] = None, *,
           cfg: Optional[ChatConfig] = None) -> ChatAnswer:
    """Answer a question about the library; `on_token(chunk)` sees the text as it streams."""
    gen = stream_reply(question, history, services, llm, cfg=cfg)
    while True:
        try:
            chunk = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_token:
            on_token(chunk)
