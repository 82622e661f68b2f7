"""Chat with the library: rule-based query understanding, retrieval over our index, an LLM that only phrases."""
