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


@pytest.mark.slow  # exports the model to ONNX once (seconds on 2 cores)
def test_onnx_copy_gives_the_same_vectors_without_torch(encoder, tmp_path):
    import json
    import subprocess
    import sys

    from models.minilm_onnx import TEXT
    from models.onnx_runtime import choose_runtime

    decision, runner = choose_runtime(TEXT, encoder, tmp_path, mode="onnx")
    assert decision.runtime == "onnx" and runner is not None, decision.reason
    ref = encoder.encode(TEXTS, batch_size=3)
    got = runner.encode(TEXTS, batch_size=3)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert (got * ref).sum(1).min() >= 0.999
    assert np.allclose(runner.encode(["a cup of coffee"])[0], got[0], atol=1e-5)  # batching and padding change nothing
    assert runner.encode([]).shape == (0, 384)
    # a fresh process runs the export with tokenizers + onnxruntime alone
    code = ("import json, sys; from models.minilm_onnx import OnnxMiniLM; v = OnnxMiniLM(sys.argv[1]).encode(json.loads(sys.argv[2])); "
            "print(json.dumps({'torch': 'torch' in sys.modules, 'transformers': 'transformers' in sys.modules, 'v': v.tolist()}))")
    out = subprocess.run([sys.executable, "-c", code, decision.onnx_path, json.dumps(TEXTS)], capture_output=True, text=True, check=True)
    fresh = json.loads(out.stdout.strip().splitlines()[-1])
    assert not fresh["torch"] and not fresh["transformers"]
    assert (np.asarray(fresh["v"], np.float32) * ref).sum(1).min() >= 0.999
