"""PhotoLore core: everything except the UI. Never imports streamlit.

Heavy libraries (torch, chromadb, open_clip) are imported inside the functions that need them,
so `python -m core --help` stays instant.
"""
