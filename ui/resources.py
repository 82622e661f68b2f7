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


@st.cache_data(show_spinner=False, max_entries=8, ttl=60)
def _facts_summary(catalog_path: str, version: tuple) -> dict:
    return get_services().catalog.facts_summary()


def facts_summary(services) -> dict:
    """The catalog's facts counts (sidebar filters), recomputed only when the catalog changed.

    Counting reads every row's facts JSON: seconds at 100k photos, on every rerun of a page (each
    query typed). The SQLite files' sizes and times change with every commit, so they key the
    cache; the ttl bounds staleness where they cannot tell (a catalog that is not a local file)."""
    path = services.catalog.path
    files = (path, path.with_name(path.name + "-wal"))
    version = tuple((st_.st_mtime_ns, st_.st_size) for st_ in (f.stat() for f in files if f.exists()))
    return _facts_summary(str(path), version)
