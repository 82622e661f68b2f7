"""Streamlit glue shared by the pages: cached resources and small widgets. Only UI lives here."""
