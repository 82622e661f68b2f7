"""The Chat page driven by AppTest over the demo library."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO, free_port

@pytest.fixture(autouse=True)
def _clear_cache():
    import streamlit as st

    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _no_exception(at):
    assert not at.exception, [e.value for e in at.exception]


def _page():
    return AppTest.from_file(str(REPO / "pages/chat.py"), default_timeout=180)


def _texts(at) -> list[str]:
    return [m.value for m in at.markdown]


@pytest.fixture
def dead_endpoint(demo_env, monkeypatch):
    """An OpenAI-compatible endpoint configured on a port where nothing listens."""
    monkeypatch.setenv("PHOTOLORE_LLM_BACKEND", "openai")
    monkeypatch.setenv("PHOTOLORE_LLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    monkeypatch.setenv("PHOTOLORE_LLM_MODEL", "nothing-here")
    monkeypatch.setenv("PHOTOLORE_LLM_TIMEOUT", "3")
    monkeypatch.setenv("PHOTOLORE_LLM_TOOLS", "off")
    return demo_env


def test_question_answer_thumbnails_details_and_new_chat(dead_endpoint):
    at = _page().run()
    _no_exception(at)
    llm_line = [c.value for c in at.caption if c.value.startswith("LLM:")]
    assert llm_line and "nothing\\-here" in llm_line[0] and "OpenAI" in llm_line[0], [c.value for c in at.caption]  # the active LLM is shown
    at.chat_input(key="chat-input").set_value("what is in the photo of the cat?").run()
    _no_exception(at)
    texts = _texts(at)
    assert "what is in the photo of the cat?" in texts[0]
    answer = texts[1]
    assert "chelsea" in answer and "unavailable" in answer  # facts from the index, and an honest note about the LLM
    assert len(at.get("image")) == 1  # the one photo the answer used
    details = [b for b in at.button if b.key and b.key.startswith("chat-1-details-")]
    assert len(details) == 1
    details[0].click().run()
    _no_exception(at)
    assert any("Caption:" in m.value for m in at.markdown)

    at.chat_input(key="chat-input").set_value("show me photos of coffee").run()
    assert len(at.session_state["chat-history"]) == 4
    assert len(at.get("image")) == 1 + 1  # only coffee.jpg passes the search cut-off
    expander = at.expander[-1]
    assert expander.label == "How this answer was made"
    assert any("search score for “coffee”" in c.value for c in expander.caption)
    at.button(key="chat-new").click().run()
    _no_exception(at)
    assert at.session_state["chat-history"] == [] and not at.get("image")


def test_user_and_photo_text_is_never_markup(dead_endpoint):
    at = _page().run()
    at.chat_input(key="chat-input").set_value("show me <img src=x onerror=alert(1)> **bold** [link](http://x) coffee").run()
    _no_exception(at)
    shown = _texts(at)[0]
    assert "\\<img" in shown and "\\*\\*bold\\*\\*" in shown and "\\[link\\]" in shown


def test_missing_model_file_is_a_clear_warning(demo_env, monkeypatch, tmp_path):
    monkeypatch.setenv("PHOTOLORE_LLM_BACKEND", "local")
    monkeypatch.setenv("PHOTOLORE_LLM_MODEL", str(tmp_path / "missing.gguf"))
    at = _page().run()
    _no_exception(at)
    assert any("unavailable" in w.value and "missing\\.gguf" in w.value for w in at.warning)
    at.chat_input(key="chat-input").set_value("show me photos of coffee").run()
    _no_exception(at)
    assert "coffee" in _texts(at)[1] and len(at.get("image")) == 1


@pytest.mark.slow
def test_packaged_llm_answers_on_the_page(demo_env, monkeypatch):
    monkeypatch.setenv("PHOTOLORE_LLM_BACKEND", "local")
    at = _page().run()
    _no_exception(at)
    assert any("SmolLM2" in c.value for c in at.caption)
    at.chat_input(key="chat-input").set_value("what is in the photo of the cat?").run()
    _no_exception(at)
    assert "chelsea" in _texts(at)[1] and len(at.get("image")) == 1
