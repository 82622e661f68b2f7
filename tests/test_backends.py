"""Backends: the bundled models' real behaviour, and the CLIP path with a tiny random model."""
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from models.base import VisionLanguageBackend, caption_from_tags


def test_bundled_tags_and_caption_space(bundled_backend):
    coffee, cat = Image.fromarray(data.coffee()), Image.fromarray(data.chelsea())
    enc = bundled_backend.encode([coffee, cat])
    assert isinstance(bundled_backend, VisionLanguageBackend)
    assert enc.image_embeddings.shape == (2, 1280) and enc.caption_embeddings.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(enc.image_embeddings, axis=1), 1, atol=1e-5)
    assert enc.descriptions[0].tags[0][0] == "espresso"
    assert "cat" in enc.descriptions[1].caption
    sims = bundled_backend.embed_texts(["a cup of coffee", "a cat"]) @ enc.caption_embeddings.T
    assert sims[0, 0] > sims[0, 1] and sims[1, 1] > sims[1, 0]


def test_caption_from_tags_reads_well():
    assert caption_from_tags([("espresso", 0.9), ("cup", 0.02)]) == "a photo of espresso"
    assert caption_from_tags([("a", 0.5), ("b", 0.3), ("c", 0.1)]) == "a photo of a, with b and c"


def test_tiny_clip_joint_space(tiny_clip_backend):
    imgs = [Image.new("RGB", (40, 30), c) for c in ["red", "blue"]]
    enc = tiny_clip_backend.encode(imgs)
    assert tiny_clip_backend.text_space == "image" and enc.caption_embeddings is None
    assert enc.image_embeddings.shape == (2, 32)
    assert tiny_clip_backend.embed_texts(["x", "y", "z"]).shape == (3, 32)
    assert all(d.caption.startswith("a photo of") for d in enc.descriptions)


def test_clip_local_checkpoint_loads_the_same_weights(tiny_clip_backend, tmp_path):
    from models.clip import ClipBackend, ClipSpec

    ckpt = tmp_path / "tiny.pt"
    torch.save(tiny_clip_backend.model.state_dict(), ckpt)
    loaded = ClipBackend(ClipSpec("PhotoLore-Tiny-ViT", None, checkpoint=ckpt), device="cpu")
    img = [Image.fromarray(data.coffee())]
    np.testing.assert_allclose(loaded.embed_images(img), tiny_clip_backend.embed_images(img), atol=1e-5)
    assert loaded.model_id == "clip-PhotoLore-Tiny-ViT-ckpt-tiny"


def test_auto_picks_bundled_without_weights_and_clip_with_checkpoint(tmp_path, tiny_clip_backend):
    from core.settings import Settings
    from models.registry import choose_backend

    s = Settings(data_dir=tmp_path, clip_model="ViT-B-32", clip_pretrained="openai")
    choice = choose_backend(s)
    assert choice.name == "bundled" and "models pull" in choice.reason
    with pytest.raises(FileNotFoundError, match="models pull"):
        choose_backend(Settings(data_dir=tmp_path, backend="clip"))
    ckpt = tmp_path / "tiny.pt"
    torch.save(tiny_clip_backend.model.state_dict(), ckpt)
    choice = choose_backend(Settings(data_dir=tmp_path, clip_model="PhotoLore-Tiny-ViT", clip_pretrained="", clip_checkpoint=ckpt))
    assert choice.name == "clip" and str(ckpt) in choice.reason


def test_clip_without_weights_refuses_instead_of_downloading(tmp_path):
    from models.clip import ClipBackend, ClipSpec

    with pytest.raises(FileNotFoundError, match="models pull"):
        ClipBackend(ClipSpec("PhotoLore-Tiny-ViT", "openai", cache_dir=tmp_path))


def test_unknown_clip_architecture_is_a_clear_error(tmp_path):
    from models.clip import ClipSpec, local_weights

    with pytest.raises(ValueError, match="unknown CLIP architecture"):
        local_weights(ClipSpec("No-Such-Net", "openai", cache_dir=tmp_path))


def test_tiny_resnet_clip_config_builds(tmp_path):
    from models.clip import ClipBackend, ClipSpec

    b = ClipBackend(ClipSpec("PhotoLore-Tiny-RN", None), allow_random=True)
    assert b.embed_images([Image.new("RGB", (70, 50))]).shape == (1, 32)


def test_choosing_the_backend_imports_neither_torch_nor_open_clip_once_the_sources_are_known(tmp_path):
    """Every start of the app and the CLI asks whether CLIP weights are on disk. Answering that from
    open_clip's table imports torch (~4 s, hundreds of MB); the answer is cached so later starts don't."""
    import json
    import subprocess
    import sys

    code = ("import json, sys; from core.settings import Settings; from models.registry import choose_backend; "
            "from models.clip import ClipSpec, local_weights\n"
            "c = choose_backend(Settings(data_dir=sys.argv[1]))\n"
            "try:\n    local_weights(ClipSpec('No-Such-Net', 'openai', cache_dir=sys.argv[1] + '/models/clip')); err = ''\n"
            "except ValueError as exc:\n    err = str(exc)\n"
            "print(json.dumps({'name': c.name, 'reason': c.reason, 'err': err, 'torch': 'torch' in sys.modules, "
            "'open_clip': 'open_clip' in sys.modules}))")

    def run() -> dict:
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    first = run()  # nothing cached yet: open_clip's table is read once
    assert first["open_clip"] and first["name"] == "bundled" and "models pull" in first["reason"]
    assert "unknown CLIP architecture 'No-Such-Net'" in first["err"]
    table = json.loads((tmp_path / "models" / "clip" / "pretrained-sources.json").read_text())
    [known] = [v for k, v in table.items() if k.endswith("/ViT-B-32/openai")]
    assert known["known"] and known["hf_hub"]  # the table really came from open_clip
    second = run()
    assert not second["torch"] and not second["open_clip"]
    assert (second["name"], second["reason"], second["err"]) == (first["name"], first["reason"], first["err"])
    (tmp_path / "models" / "clip" / "pretrained-sources.json").write_text("{not json")  # damaged: rebuilt, same answer
    third = run()
    assert third["open_clip"] and (third["name"], third["err"]) == (first["name"], first["err"])
    assert json.loads((tmp_path / "models" / "clip" / "pretrained-sources.json").read_text()).keys() == table.keys()
