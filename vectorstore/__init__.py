"""The embedding index (Chroma). Never imports streamlit."""
from vectorstore.store import VectorStore, Hit, collection_name

__all__ = ["VectorStore", "Hit", "collection_name"]
