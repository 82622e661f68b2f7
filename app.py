"""PhotoLore: the router. Each page is a thin script under pages/."""
from pathlib import Path

import streamlit as st

# A file in the repo, served by Streamlit itself: a ":material/..." page icon made the browser
# fetch the tab icon from a font CDN, which fails offline.
ICON = str(Path(__file__).parent / "ui" / "assets" / "favicon.png")
st.set_page_config(page_title="PhotoLore", page_icon=ICON, layout="wide")

PAGES = [
    st.Page("pages/library.py", title="Library", icon=":material/photo_library:", default=True),
    st.Page("pages/search.py", title="Search", icon=":material/search:"),
    st.Page("pages/collect.py", title="Collect", icon=":material/travel_explore:"),
    st.Page("pages/annotate.py", title="Annotate", icon=":material/label:"),
    st.Page("pages/dashboards.py", title="Dashboards", icon=":material/monitoring:"),
    st.Page("pages/chat.py", title="Chat", icon=":material/chat:"),
    st.Page("pages/caption.py", title="Caption", icon=":material/subtitles:"),
    st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:"),
    st.Page("pages/retrieval_lab.py", title="Retrieval lab", icon=":material/science:"),
]

page = st.navigation(PAGES, position="hidden")
with st.sidebar:
    for p in PAGES:
        st.page_link(p)
page.run()
