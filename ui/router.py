"""Keep every page under app.py's router, also when the first visit is a deep link.

Streamlit (1.67) still has the multipage "v1" mode for apps with a `pages/` folder: until some
session has called `st.navigation`, a visit to /search runs pages/search.py on its own, without
app.py. The page then has no navigation sidebar, no page config (centred, not wide) and no local
favicon. That is what a user gets who reloads a page tab after restarting the app.
"""
import streamlit as st


def ensure_router() -> None:
    """Call first in every page: in v1 mode, switch Streamlit to app.py's router and rerun this page."""
    # Private but pinned (requirements.txt): st.navigation() sets this same flag to False.
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()  # the rerun runs app.py, which resolves the same page (same URL path, same page hash)
