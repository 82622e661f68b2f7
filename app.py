"""PhotoLore: the router. Each page is a thin script under pages/."""
from pathlib import Path

import streamlit as st

# A file in the repo, served by Streamlit itself: a ":material/..." page icon made the browser
# fetch the tab icon from a font CDN, which fails offline.
ICON = str(Path(__file__).parent / "ui" / "assets" / "favicon.png")
st.set_page_config(page_title="PhotoLore", page_icon=ICON, layout="wide")

PAGES = [
    st.Page("pages/library.py", title="Library", icon=":material/photo_library:"),
    st.Page("pages/search.py", title="Search", icon=":material/search:"),
    st.Page("pages/collect.py", title="Collect", icon=":material/travel_explore:"),
    st.Page("pages/annotate.py", title="Annotate", icon=":material/label:"),
    st.Page("pages/dashboards.py", title="Dashboards", icon=":material/monitoring:"),
    st.Page("pages/chat.py", title="Chat", icon=":material/chat:"),
    st.Page("pages/caption.py", title="Caption", icon=":material/subtitles:"),
    st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:"),
    st.Page("pages/retrieval_lab.py", title="Retrieval lab", icon=":material/science:"),
]


def _home() -> None:
    st.switch_page(PAGES[0])


# The root URL opens the Library at its own address, /library: were the Library the default page, it would be
# served at "/" only, and a visit to /library (a bookmark, a typed URL) would open "Page not found" over it.
page = st.navigation([st.Page(_home, title="PhotoLore", url_path="home", default=True), *PAGES], position="hidden")
with st.sidebar:
    for p in PAGES:
        st.page_link(p)
page.run()
