"""Loading training folders (mixed sizes and modes, corrupt files) and computing conditions."""
import numpy as np
import pytest
from PIL import Image

from core.gan import GanError
from core.gan.data import conditions_from_backend, images_to_set, load_image_folder, shapes_image_set, square_resize


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # One thread: on a shared 2-core machine two spinning OpenMP threads run many times slower.
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _messy_folder(root, n_good=18):
    root.mkdir()
    rng = np.random.default_rng(0)
    modes = ["RGB", "L", "RGBA", "P", "CMYK"]
    for i in range(n_good):
        w, h = int(rng.integers(20, 90)), int(rng.integers(20, 90))  # mixed sizes and aspect ratios
        img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), "RGB").convert(modes[i % len(modes)])
        ext = ".jpg" if img.mode in ("RGB", "L", "CMYK") else ".png"
        (root / "sub").mkdir(exist_ok=True)
        img.save(root / ("sub" if i % 3 == 0 else "") / f"img{i:02d}{ext}")
    Image.fromarray(np.full((40, 40), 60000, np.uint16)).save(root / "sixteen_bit.png")  # 16-bit grey
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.png").write_bytes(b"this is not an image")
    good = root / "img01.png" if (root / "img01.png").exists() else next(root.glob("*.png"))
    (root / "truncated.png").write_bytes(good.read_bytes()[:60])
    (root / "notes.txt").write_text("ignored: not an image extension")


def test_messy_folder_loads_good_images_and_reports_bad(tmp_path):
    _messy_folder(tmp_path / "photos")
    seen = []
    s = load_image_folder(tmp_path / "photos", 32, on_progress=lambda d, t, **kw: seen.append((d, t)))
    assert s.images.shape == (19, 32, 32, 3) and s.images.dtype == np.uint8
    assert len(s.names) == 19 and s.captions is None
    reasons = dict(s.skipped)
    assert set(reasons) == {"empty.jpg", "text.png", "truncated.png"}
    assert "empty" in reasons["empty.jpg"] and "not an image" in reasons["text.png"]
    assert seen[-1] == (22, 22)


def test_too_few_images_is_a_clear_error(tmp_path):
    _messy_folder(tmp_path / "few", n_good=5)
    with pytest.raises(GanError, match=r"has 6 usable images \(3 more were unreadable\); a GAN needs at least 16"):
        load_image_folder(tmp_path / "few", 32)
    with pytest.raises(GanError, match="does not exist"):
        load_image_folder(tmp_path / "nope", 32)


def test_captions_csv_is_used(tmp_path):
    from core.shapes import write_dataset

    write_dataset(tmp_path / "shapes", 20, image_size=40)
    s = load_image_folder(tmp_path / "shapes", 32)
    assert s.captions is not None and len(s.captions) == 20
    # The canonical (first) caption of each file, matched by relative path.
    import csv

    rows = list(csv.DictReader((tmp_path / "shapes" / "captions.csv").open()))
    first = {}
    for r in rows:
        first.setdefault(r["filename"], r["caption"])
    assert [first[n] for n in s.names] == s.captions


def test_square_resize_centre_crops():
    img = Image.new("RGB", (60, 20), (0, 0, 255))
    img.paste((255, 0, 0), (20, 0, 40, 20))  # red centre square
    out = square_resize(img, 8)
    assert out.shape == (8, 8, 3)
    assert out[:, :, 0].mean() > 200 and out[:, :, 2].mean() < 50


class _CaptionSpace:
    """A real (if trivial) backend in caption space: bag-of-words embeddings, deterministic."""

    name, model_id, text_space = "words", "words-v1", "caption"
    vocab = ["red", "green", "blue", "circle", "square", "triangle", "photo"]

    def embed_texts(self, texts):
        out = np.array([[t.split().count(w) for w in self.vocab] for t in texts], np.float32) + 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def describe(self, images):
        from models.base import Description

        return [Description(caption="a red photo" if np.asarray(im)[..., 0].mean() > 128 else "a blue photo") for im in images]


def test_conditions_in_caption_space_use_known_captions_else_descriptions():
    backend = _CaptionSpace()
    s, _ = shapes_image_set(6, 32)
    cond = conditions_from_backend(backend, s, batch_size=4)
    assert cond.shape == (6, 7)
    assert np.allclose(cond, backend.embed_texts(s.captions), atol=1e-6)
    imgs = [Image.new("RGB", (10, 10), (250, 0, 0)), Image.new("RGB", (10, 10), (0, 0, 250))]
    s2 = images_to_set(imgs, 16)
    c2 = conditions_from_backend(backend, s2)
    assert np.allclose(c2, backend.embed_texts(["a red photo", "a blue photo"]), atol=1e-6)


@pytest.mark.slow
def test_conditions_in_clip_space_are_image_embeddings():
    from models.clip import ClipBackend, ClipSpec

    backend = ClipBackend(ClipSpec(model="PhotoLore-Tiny-ViT", pretrained=None), allow_random=True)
    s, _ = shapes_image_set(5, 32)
    cond = conditions_from_backend(backend, s, batch_size=2)
    ref = backend.embed_images([s.pil(i) for i in range(5)])
    assert cond.shape == ref.shape and np.allclose(cond, ref, atol=1e-5)
    assert np.allclose(np.linalg.norm(cond, axis=1), 1, atol=1e-5)
