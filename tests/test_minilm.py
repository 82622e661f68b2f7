"""models.minilm gives sentence-transformers' all-MiniLM-L6-v2 vectors without importing it."""
import numpy as np
import pytest

TEXTS = ["a cup of coffee", "a tabby cat on a sofa", "", "Région-based segmentation: ✓ 東京",
         "a photo with written text " * 80,  # past the 256-token limit: truncated the same way
         "a person", "a group of people in a street at night"]


@pytest.fixture(scope="module")
def encoder():
    from models.minilm import MiniLMEncoder

    return MiniLMEncoder()


def test_same_vectors_as_sentence_transformers(encoder):
    from sentence_transformers import SentenceTransformer

    from models.minilm import minilm_path

    ref = SentenceTransformer(minilm_path(), device="cpu", local_files_only=True).encode(
        TEXTS, batch_size=3, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
    got = encoder.encode(TEXTS, batch_size=3)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    cos = (got * ref).sum(1)
    assert cos.min() > 0.9999, cos
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_order_and_batching_do_not_change_a_vector(encoder):
    one = encoder.encode(["a cup of coffee"])[0]
    many = encoder.encode(TEXTS, batch_size=2)
    assert np.allclose(many[0], one, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_bundled_backend_does_not_import_sentence_transformers():
    import subprocess
    import sys

    code = ("import sys; from models.bundled import BundledBackend; b = BundledBackend('cpu', facts=None); "
            "b.embed_texts(['a cat']); print('sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
