"""The facts term cache (core.facts.term_cache): term embeddings kept between runs, real photos and models."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EVAL = Path(__file__).parent / "data" / "eval" / "photos"


@pytest.fixture(scope="module")
def descriptions(bundled_backend):
    """Facts of real photos, one with text read by OCR (the printed page)."""
    photos = [Image.open(EVAL / n).convert("RGB") for n in ("tabby_cat.jpg", "book_page_text.jpg", "astronaut.jpg")]
    descs = bundled_backend.describe(photos)
    assert descs[1].facts.text, "the page's text should be read"
    return descs


def _counting(backend) -> list[str]:
    seen: list[str] = []
    embed = backend.embed_texts

    def counted(texts):
        seen.extend(texts)
        return embed(texts)

    backend.embed_texts = counted
    return seen


def test_a_new_process_reuses_the_saved_terms_and_gets_the_same_vectors(tmp_path, monkeypatch, descriptions):
    from core.facts import term_cache
    from core.facts.vector import labels_term, per_photo_terms, text_term
    from models.bundled import BundledBackend

    monkeypatch.setattr(term_cache, "SAVE_EVERY", 1)
    first = BundledBackend(facts=None, cache_dir=tmp_path)
    embedded_first = _counting(first)
    vectors = first.facts_vectors(descriptions)
    saved = np.load(tmp_path / term_cache.FILE_NAME)
    terms = set(saved["terms"].tolist())
    per_photo = [t for d in descriptions for t in per_photo_terms(d.facts)]
    assert "cat" in terms and "a person" in terms and terms == set(embedded_first) - set(per_photo)
    # what one photo alone says (its text, its label phrase) is never written to the cache
    assert text_term(descriptions[1].facts) in per_photo and labels_term(descriptions[0].facts) in per_photo

    second = BundledBackend(facts=None, cache_dir=tmp_path)  # a new process on the same data dir
    embedded_second = _counting(second)
    # equal up to float rounding: the terms are embedded in other batches (AVX-512 kernels round by batch shape)
    np.testing.assert_allclose(second.facts_vectors(descriptions), vectors, rtol=0, atol=1e-6)
    assert sorted(embedded_second) == sorted(set(per_photo))  # only what was not saved is embedded again


def test_a_foreign_or_broken_cache_file_is_ignored(tmp_path, monkeypatch, caplog, descriptions):
    from core.facts import term_cache
    from models.bundled import BundledBackend

    monkeypatch.setattr(term_cache, "SAVE_EVERY", 1)
    np.savez(tmp_path / term_cache.FILE_NAME, model_key=np.array("another model"), terms=np.array(["cat"]),
             vectors=np.ones((1, 384), np.float32))
    backend = BundledBackend(facts=None, cache_dir=tmp_path)
    reference = BundledBackend(facts=None).facts_vectors(descriptions)  # no cache dir: nothing saved or loaded
    assert np.allclose(backend.facts_vectors(descriptions), reference, atol=1e-6)  # the foreign "cat" was not used
    assert str(np.load(tmp_path / term_cache.FILE_NAME)["model_key"]) == backend._text_key()  # and was replaced

    (tmp_path / term_cache.FILE_NAME).write_bytes(b"not a zip file")
    with caplog.at_level(logging.WARNING, logger="core.facts.term_cache"):
        broken = BundledBackend(facts=None, cache_dir=tmp_path)
        assert np.allclose(broken.facts_vectors(descriptions), reference, atol=1e-6)
    assert "facts term cache unreadable" in caplog.text


def test_a_runtime_switch_drops_the_other_runtimes_terms(tmp_path):
    """The text runtime is decided on the first ingest batch: embeddings made before by the other
    runtime are dropped, not mixed, and the file is only read for the key it was written with."""
    from core.facts.term_cache import TermCache

    cache = TermCache(tmp_path, "")
    cache.load("MiniLM on torch")
    cache["cat"] = np.ones(384, np.float32)
    cache.load("MiniLM on torch")  # same key: kept
    assert "cat" in cache
    cache.load("MiniLM on onnx")
    assert "cat" not in cache and cache.model_key == "MiniLM on onnx"
