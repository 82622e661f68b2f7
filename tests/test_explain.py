"""Heat maps: localisation with the packaged CNN on shapes, plumbing with tiny CLIP towers."""
import numpy as np
import pytest
from PIL import Image

from core.explain import explain, gradcam_efficientnet, slug
from core.shapes import iter_samples


@pytest.mark.slow
def test_bundled_cnn_heat_map_peaks_on_the_shape():
    """The issue's test: the peak falls inside the named shape's box in >= 80 % of cases."""
    import torch

    from models.efficientnet import load_efficientnet_lite0

    torch.set_num_threads(2)
    model = load_efficientnet_lite0()
    inside, inside_plain, chance = [], [], []
    for s in iter_samples(40, image_size=64, seed=1):
        x0, y0, x1, y1 = s.bbox
        e = gradcam_efficientnet(model, s.image, s.caption)
        assert e.method == "multiscale-cam-efficientnet"
        assert e.heatmap.shape == (64, 64) and 0.0 <= e.heatmap.min() and e.heatmap.max() == pytest.approx(1.0)
        x, y = e.peak
        inside.append(x0 <= x < x1 and y0 <= y < y1)
        x, y = gradcam_efficientnet(model, s.image, s.caption, layers=((-1, "grad"),)).peak
        inside_plain.append(x0 <= x < x1 and y0 <= y < y1)
        chance.append((x1 - x0) * (y1 - y0) / 64 ** 2)
    rate, plain, base = float(np.mean(inside)), float(np.mean(inside_plain)), float(np.mean(chance))
    print(f"peak-in-bbox rate {rate:.2f} (head Grad-CAM alone {plain:.2f}) vs chance {base:.2f}")
    # Measured 0.90 on these 40 (head Grad-CAM alone 0.35, chance 0.14); 0.825-0.975 per 40 on
    # seeds 2-8, 0.92 over all 320.
    assert rate >= 0.8
    assert rate > plain + 0.3


@pytest.mark.parametrize("arch, method", [("PhotoLore-Tiny-ViT", "grad-attention-clip-vit"), ("PhotoLore-Tiny-RN", "gradcam-clip-resnet")])
def test_clip_heat_maps_have_image_shape(arch, method, tmp_path):
    from models.clip import ClipBackend, ClipSpec

    backend = ClipBackend(ClipSpec(arch, pretrained=None), allow_random=True)
    img = Image.new("RGB", (80, 60), (200, 200, 200))
    img.paste((220, 30, 30), (10, 10, 40, 40))
    e = explain(backend, img, "a red square")
    assert e.method == method
    assert e.heatmap.shape == (60, 80) and np.isfinite(e.heatmap).all()
    assert 0 <= e.heatmap.min() and e.heatmap.max() <= 1.0
    assert e.overlay.size == img.size
    assert e.targets[0][0] == "a red square"
    # The ViT path swaps the last block's attention for a manual one: it must be removed afterwards.
    if arch.endswith("ViT"):
        assert "attention" not in vars(backend.model.visual.transformer.resblocks[-1])


def test_manual_attention_matches_torch():
    import torch

    from core.explain import _manual_attention
    from models.clip import ClipBackend, ClipSpec

    backend = ClipBackend(ClipSpec("PhotoLore-Tiny-ViT", pretrained=None), allow_random=True)
    block = backend.model.visual.transformer.resblocks[-1]
    x = torch.randn(2, 17, block.attn.embed_dim)
    keep = {}
    with torch.enable_grad():
        ours = _manual_attention(block, keep)(x)
    theirs = block.attention(x)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
    assert keep["attn"].shape == (2, block.attn.num_heads, 17, 17)


def test_save_overlay_names_and_cli(tmp_path, capsys):
    assert slug("A red circle, please!") == "a-red-circle-please"
    assert slug("***") == "query"
    s = next(iter_samples(1, image_size=64, seed=2))
    path = tmp_path / "photo one.png"
    s.image.save(path)
    import argparse

    from core.retrieval.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "cam_vis"
    args = parser.parse_args(["explain", str(path), "a", s.colour, s.shape, "--backbone", "efficientnet", "--out", str(out)])
    assert args.func(args) == 0
    written = out / f"photo one_a-{s.colour}-{s.shape}.png"
    assert written.is_file() and Image.open(written).size == (64, 64)
    assert "wrote" in capsys.readouterr().out
    # Rerun: the same file is replaced, nothing else appears.
    assert args.func(args) == 0
    assert [p.name for p in out.iterdir()] == [written.name]
