"""The ONNX Runtime copies of EfficientNet-Lite0 and MiniLM give PyTorch's outputs, are checked, reported, and need no torch."""
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
    from models.efficientnet_io import preprocess_array

    assert onnx_backend.runtime == "onnx" and bundled_backend.runtime == "torch"
    assert onnx_backend.text_runtime == "onnx" and bundled_backend.text_runtime == "torch"
    photos = _real_photos()
    x = preprocess_array(photos)
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
    assert (t_enc.caption_embeddings * o_enc.caption_embeddings).sum(1).min() >= 0.999
    assert (t_enc.facts_embeddings * o_enc.facts_embeddings).sum(1).min() >= 0.999


def test_auto_decides_on_the_first_ingest_batch_and_status_shows_it(onnx_backend, onnx_data_dir, tmp_path):
    from models.bundled import BundledBackend
    from models.efficientnet_onnx import IMAGE
    from models.minilm_onnx import TEXT
    from models.onnx_runtime import decision_file

    data = onnx_data_dir  # the exports made for `onnx_backend` are reused; auto measures both runtimes
    files = [decision_file(f, data / "models") for f in (IMAGE, TEXT)]
    for f in files:
        f.unlink()
    auto = BundledBackend("cpu", runtime="auto", cache_dir=data / "models")
    photos = _real_photos()
    auto.embed_images(photos[:1])  # a search query: no measuring yet
    assert auto.runtime == "torch" and auto.text_runtime == "torch" and not any(f.exists() for f in files)
    auto.encode(photos[:4])  # an ingest batch: measured now
    image, text = (json.loads(f.read_text()) for f in files)
    for stored, runtime in ((image, auto.runtime), (text, auto.text_runtime)):
        assert stored["runtime"] == runtime and stored["torch_ms"] > 0 and stored["onnx_ms"] > 0
        assert runtime == ("onnx" if stored["onnx_ms"] < stored["torch_ms"] else "torch")
    again = BundledBackend("cpu", runtime="auto", cache_dir=data / "models")  # the next load reuses both decisions
    assert (again.runtime, again.text_runtime) == (auto.runtime, auto.text_runtime)
    env = dict(os.environ, PHOTOLORE_DATA_DIR=str(data), PHOTOLORE_BACKEND="bundled", PHOTOLORE_SECRETS=str(tmp_path / "none.toml"))
    out = subprocess.run([PYTHON, "-m", "core", "status"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("image model (EfficientNet-Lite0) runtime:"))
    assert line.endswith("ms/image)") and f"runtime: {auto.runtime} - auto:" in line
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("text model (MiniLM) runtime:"))
    assert line.endswith("ms/text)") and f"runtime: {auto.text_runtime} - auto:" in line


def test_a_stale_export_is_replaced_before_use(tmp_path, caplog):
    """A cached file whose outputs differ from PyTorch's is exported again, never used as it is."""
    import torch

    from models.efficientnet import load_efficientnet_lite0
    from models.efficientnet_onnx import IMAGE
    from models.onnx_runtime import choose_runtime, export_path, family_key

    cnn = load_efficientnet_lite0()
    wrong = load_efficientnet_lite0()
    with torch.no_grad():
        wrong._fc.weight.mul_(-1.0)  # a different network behind the cached file name
    path = export_path(IMAGE, tmp_path, family_key(IMAGE))
    path.parent.mkdir(parents=True)
    IMAGE.export(wrong, path)
    decision, session = choose_runtime(IMAGE, cnn, tmp_path, mode="onnx")
    assert decision.runtime == "onnx" and session is not None
    assert "no manifest" in caplog.text and "exporting it again" in caplog.text
    x = torch.zeros(1, 3, 224, 224)
    with torch.inference_mode():
        expected = cnn(x)[1].numpy()
    assert np.abs(session(x.numpy())[1] - expected).max() < 1e-3 and path.is_file()


def _damage(path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "partial":
        path.write_bytes(bytes(data[: len(data) // 2]))  # an export cut off by a full disk or a kill
    else:
        data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how, message", [("partial", "a partial or damaged file"), ("flipped", "checksum differs")])
def test_a_damaged_minilm_export_is_detected_and_exported_again(onnx_backend, onnx_data_dir, caplog, how, message):
    from models.bundled import BundledBackend
    from models.minilm_onnx import TEXT
    from models.onnx_runtime import export_path, export_problem, family_key

    key = family_key(TEXT)
    path = export_path(TEXT, onnx_data_dir / "models", key)
    assert export_problem(path, key) is None  # exported and vouched for by the fixture's backend
    _damage(path, how)
    assert message in export_problem(path, key)
    backend = BundledBackend("cpu", runtime="onnx", cache_dir=onnx_data_dir / "models")
    assert message in caplog.text and "exporting it again from the packaged weights" in caplog.text
    assert export_problem(path, key) is None and backend.text_runtime == "onnx"
    ref = onnx_backend.embed_texts(["a cup of coffee"])
    assert float((backend.embed_texts(["a cup of coffee"]) * ref).sum()) > 0.9999


def test_an_onnx_ingest_never_imports_torch(onnx_data_dir, tmp_path):
    """Once both exports exist, `python -m core ingest` on ONNX Runtime runs without torch: facts, captions and all."""
    from tests.conftest import write_image

    from models.bundled import BundledBackend

    # decisions stored for PHOTOLORE_IMAGE_RUNTIME=onnx (another test may have left auto's)
    backend = BundledBackend("cpu", runtime="onnx", cache_dir=onnx_data_dir / "models", facts=None)
    assert backend.runtime == "onnx" and backend.text_runtime == "onnx"
    for i in range(3):
        write_image(tmp_path / "photos" / f"{i}.jpg", size=(320, 240), seed=i)
    env = {**os.environ, "PHOTOLORE_DATA_DIR": str(onnx_data_dir), "PHOTOLORE_BACKEND": "bundled", "PHOTOLORE_IMAGE_RUNTIME": "onnx",
           "PHOTOLORE_DEVICE": "cpu", "PHOTOLORE_SECRETS": str(tmp_path / "none.toml")}
    code = ("import sys; from core.cli import main; rc = main(['ingest', sys.argv[1], '--json']); assert rc == 0; "
            "heavy = [m for m in ('torch', 'torchvision', 'transformers', 'sentence_transformers') if m in sys.modules]; "
            "assert not heavy, f'imported: {heavy}'; print('ok')")
    run = subprocess.run([PYTHON, "-c", code, str(tmp_path / "photos")], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]
    assert json.loads(run.stdout[: run.stdout.rindex("ok")])["added"] == 3
    status = subprocess.run([PYTHON, "-m", "core", "status"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert "torch: not imported by ingest (both models on ONNX Runtime)" in status.stdout, status.stdout + status.stderr
