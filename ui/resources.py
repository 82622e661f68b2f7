"""Heavy objects built once per server process (st.cache_resource), never in session_state."""
from __future__ import annotations

import streamlit as st

from core.settings import Settings


@st.cache_resource(show_spinner="Loading the models and the photo index…")
def get_services():
    """Catalog + index + the active backend, shared by every page and session."""
    import threading

    from core.search import warm_index
    from core.services import build_services

    services = build_services(Settings())
    # in the background: the page shows now, and the first search finds the index in memory
    threading.Thread(target=_warm, args=(services, warm_index), name="photolore-warm", daemon=True).start()
    return services


def _warm(services, warm_index) -> None:
    try:
        warm_index(services)
    except Exception:  # an empty or unreachable index: the first search says what is wrong
        pass


def services_or_stop():
    """The services, or a clear error on the page (e.g. CHROMA_HOST unreachable) and a stop."""
    try:
        return get_services()
    except Exception as exc:  # the page must say what is wrong rather than show a traceback
        st.error(f"PhotoLore could not start its models, index or catalog: {exc}")
        st.stop()
