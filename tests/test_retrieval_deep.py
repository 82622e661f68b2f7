"""Deep index with real (tiny, randomly initialised) CLIP towers and the packaged CNN."""
import numpy as np
import pytest

from core.retrieval.datasets import load_shapes
from core.retrieval.deep import DeepConfig, DeepIndex


@pytest.fixture(scope="module")
def tiny_clip():
    from models.clip import ClipBackend, ClipSpec

    return ClipBackend(ClipSpec("PhotoLore-Tiny-ViT", pretrained=None), allow_random=True)


def test_build_query_threshold_and_roundtrip(tiny_clip, tmp_path):
    items = load_shapes(20).items
    index = DeepIndex.build(items, tiny_clip, DeepConfig(threshold=0.999, batch_size=6))
    assert index.embeddings.shape == (20, tiny_clip.dim)
    np.testing.assert_allclose(np.linalg.norm(index.embeddings, axis=1), 1.0, atol=1e-4)
    hits = index.query(items[3].load(), k=4)
    assert hits[0].id == items[3].id and hits[0].match  # its own copy, similarity 1
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.match == (h.score >= 0.999) for h in hits)
    text_hits = index.query_text("a red circle", k=3)
    assert len(text_hits) == 3

    index.save(tmp_path / "deep")
    loaded = DeepIndex.load(tmp_path / "deep", tiny_clip)
    assert [h.id for h in loaded.query(items[3].load(), 4)] == [h.id for h in hits]
    other = type("Other", (), {"model_id": "something-else"})()
    with pytest.raises(ValueError, match="rebuild the index or switch backend"):
        DeepIndex.load(tmp_path / "deep", other)
    with pytest.raises(RuntimeError, match="attach"):
        DeepIndex.load(tmp_path / "deep").query(items[0].load())


def test_text_query_needs_a_joint_space():
    from core.retrieval.deep import EfficientNetEmbedder

    emb = EfficientNetEmbedder(image_size=64)
    index = DeepIndex.build(load_shapes(4).items, emb)
    with pytest.raises(ValueError, match="needs CLIP"):
        index.query_text("a red circle")
    with pytest.raises(ValueError, match="threshold"):
        DeepConfig(threshold=2.0).validate()
