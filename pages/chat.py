"""Chat: ask the library questions; answers stream in, with the photos they used underneath."""
import streamlit as st

from core.chat.chain import ChatConfig
from core.chat.reply import stream_reply
from core.chat.llm import LLMSettings, LLMUnavailable
from ui.resources import services_or_stop
from ui.widgets import backend_badge, md_escape, photo_grid
from ui.router import ensure_router

ensure_router()

HISTORY = "chat-history"


@st.cache_resource(show_spinner="Loading the language model…")
def get_llm():
    """The configured chat model, loaded once per server process."""
    from core.chat.llm import build_llm

    return build_llm(LLMSettings())


def escaped(gen, holder: dict):
    """Stream chunks as literal text (photo and model text is data, never Markdown or HTML); keep the result."""
    while True:
        try:
            chunk = next(gen)
        except StopIteration as stop:
            holder["answer"] = stop.value
            return
        yield md_escape(chunk)


def show_photos(msg: dict, key: str) -> None:
    ids = msg.get("photo_ids") or []
    if not ids:
        return
    found = services.catalog.get_many(ids)
    photo_grid([(found[i], None) for i in ids if i in found], columns=4, key=key, services=services, numbered=True)


def show_debug(msg: dict, key: str) -> None:
    """How the answer was made: filters, cut-offs, fallbacks and the model sentences the grounding check left out."""
    if not (msg.get("debug") or msg.get("dropped") or msg.get("filters")):
        return
    with st.expander("How this answer was made", expanded=False, key=key):
        if msg.get("filters"):
            st.caption("Filters: " + md_escape(msg["filters"]))
        for line in msg.get("debug") or []:
            st.caption(md_escape(line))
        dropped = msg.get("dropped") or []
        if dropped:
            st.caption(f"{len(dropped)} model sentence(s) left out by the grounding check (a word, photo or number the data does not hold):")
            for line in dropped:
                st.text(line)


services = services_or_stop()
st.title("Chat")
backend_badge(services)
llm_cfg = LLMSettings()
try:
    llm = get_llm()
    mode = "tool-calling agent" if llm.use_tools else "rule-based query understanding"
    st.caption(f"LLM: **{md_escape(llm.label)}** · {mode}")
except LLMUnavailable as exc:
    llm = None
    st.warning(f"The language model is unavailable: {md_escape(exc)} Answers come from the photo index alone.")

history = st.session_state.setdefault(HISTORY, [])
if st.button("New chat", key="chat-new", icon=":material/add_comment:", disabled=not history):
    st.session_state[HISTORY] = []
    st.rerun()

for i, msg in enumerate(history):
    with st.chat_message(msg["role"]):
        st.markdown(md_escape(msg["content"]))
        show_photos(msg, key=f"chat-{i}")
        show_debug(msg, key=f"chat-{i}-debug")

question = st.chat_input("Ask about your photos, e.g. what is in the photo of the cat?", key="chat-input", max_chars=1000)
if question:
    with st.chat_message("user"):
        st.markdown(md_escape(question))
    with st.chat_message("assistant"):
        holder: dict = {}
        past = list(history)  # with each answer's plan and photos, so follow-ups resolve
        try:
            st.write_stream(escaped(stream_reply(question, past, services, llm, cfg=ChatConfig(timeout_s=llm_cfg.llm_timeout, budget_s=llm_cfg.llm_budget)), holder))
        except ValueError as exc:
            st.error(md_escape(exc))
    result = holder.get("answer")
    if result is not None:
        history.append({"role": "user", "content": question})
        history.append(result.history_entry())
        st.rerun()  # redraw from history so thumbnails and their buttons have stable keys
