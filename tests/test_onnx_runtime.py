"""The ONNX Runtime copy of EfficientNet-Lite0 gives PyTorch's outputs on real photos, and is reported."""
import json
import os
import subprocess

import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.conftest import PYTHON, REPO

pytestmark = pytest.mark.slow  # exports the real model to ONNX (tens of seconds on 2 cores)


def _real_photos() -> list[Image.Image]:
    """The demo photos, each also cropped and mirrored: 45 real photos."""
    from core.demo import demo_sources

    out = []
    for load in demo_sources().values():
        img = Image.fromarray(np.asarray(load()).astype(np.uint8)).convert("RGB")
        w, h = img.size
        out += [img, img.crop((w // 8, h // 8, w - w // 8, h - h // 8)), ImageOps.mirror(img)]
    return out


@pytest.fixture(scope="module")
def onnx_data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def onnx_backend(onnx_data_dir):
    from models.bundled import BundledBackend

    return BundledBackend("cpu", runtime="onnx", cache_dir=onnx_data_dir / "models")


def test_onnx_matches_pytorch_on_real_photos(onnx_backend, bundled_backend):
    from models.efficientnet import preprocess

    assert onnx_backend.runtime == "onnx" and bundled_backend.runtime == "torch"
    photos = _real_photos()
    x = preprocess(photos)
    t_pooled, t_logits, t_regions = bundled_backend.image_forward(x)
    o_pooled, o_logits, o_regions = onnx_backend.image_forward(x)
    cos = (t_pooled * o_pooled).sum(1) / (np.linalg.norm(t_pooled, axis=1) * np.linalg.norm(o_pooled, axis=1))
    assert cos.min() >= 0.999
    # the quadrant votes photo facts read agree too
    assert np.abs(t_regions - o_regions).max() < 1e-2 * max(1.0, float(np.abs(t_regions).max()))
    top5 = lambda logits: [set(np.argsort(-row)[:5].tolist()) for row in logits]  # noqa: E731
    agree = np.mean([a == b for a, b in zip(top5(t_logits), top5(o_logits))])
    assert agree >= 0.99
    # the whole encode (what ingest stores) agrees too: same captions, same caption embeddings
    t_enc, o_enc = bundled_backend.encode(photos[:6]), onnx_backend.encode(photos[:6])
    assert [d.caption for d in t_enc.descriptions] == [d.caption for d in o_enc.descriptions]
    assert (t_enc.image_embeddings * o_enc.image_embeddings).sum(1).min() >= 0.999


def test_auto_decides_on_the_first_ingest_batch_and_status_shows_it(onnx_backend, onnx_data_dir, tmp_path):
    from models.bundled import BundledBackend
    from models.efficientnet_onnx import DECISION_FILE

    data = onnx_data_dir  # the export made for `onnx_backend` is reused; auto measures both runtimes
    decision_file = data / "models" / "onnx" / DECISION_FILE
    decision_file.unlink()
    auto = BundledBackend("cpu", runtime="auto", cache_dir=data / "models")
    photos = _real_photos()
    auto.embed_images(photos[:1])  # a search query: no measuring yet
    assert auto.runtime == "torch" and not decision_file.exists()
    auto.encode(photos[:4])  # an ingest batch: measured now
    stored = json.loads(decision_file.read_text())
    assert stored["runtime"] == auto.runtime and stored["torch_ms_per_image"] > 0 and stored["onnx_ms_per_image"] > 0
    assert auto.runtime == ("onnx" if stored["onnx_ms_per_image"] < stored["torch_ms_per_image"] else "torch")
    assert BundledBackend("cpu", runtime="auto", cache_dir=data / "models").runtime == auto.runtime  # the next load reuses it
    env = dict(os.environ, PHOTOLORE_DATA_DIR=str(data), PHOTOLORE_BACKEND="bundled", PHOTOLORE_SECRETS=str(tmp_path / "none.toml"))
    out = subprocess.run([PYTHON, "-m", "core", "status"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("image model runtime:"))
    assert line.startswith(f"image model runtime: {auto.runtime} - auto:") and "ms/image" in line


def test_a_stale_export_is_replaced_before_use(tmp_path):
    """A cached file whose outputs differ from PyTorch's is exported again, never used as it is."""
    import torch

    from models.efficientnet import load_efficientnet_lite0, packaged_weights_path
    from models.efficientnet_onnx import _key, choose_runtime, export_onnx

    cnn = load_efficientnet_lite0()
    wrong = load_efficientnet_lite0()
    with torch.no_grad():
        wrong._fc.weight.mul_(-1.0)  # a different network behind the cached file name
    path = export_onnx(wrong, tmp_path / "onnx" / f"efficientnet-lite0-{_key(packaged_weights_path())}.onnx")
    decision, session = choose_runtime(cnn, packaged_weights_path(), tmp_path, mode="onnx")
    assert decision.runtime == "onnx" and session is not None
    x = torch.zeros(1, 3, 224, 224)
    with torch.inference_mode():
        expected = cnn(x)[1].numpy()
    assert np.abs(session(x.numpy())[1] - expected).max() < 1e-3 and path.is_file()
