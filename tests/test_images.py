"""Bad and unusual image files: each gets a clear reason or is converted correctly."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from core.images import ImageError, atomic_write_bytes, decode_image, read_image_file
from tests.conftest import write_image


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_zero_byte_file():
    with pytest.raises(ImageError, match="empty file"):
        decode_image(b"")


def test_non_image_with_image_extension(tmp_path):
    p = tmp_path / "page.jpg"
    p.write_text("<html><body>not a photo</body></html>")
    with pytest.raises(ImageError, match="not an image"):
        read_image_file(p)


def test_truncated_jpeg():
    data = _bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)), "JPEG")
    with pytest.raises(ImageError, match="truncated"):
        decode_image(data[: len(data) // 2])


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size: the bomb must be refused before decoding."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_from_header():
    with pytest.raises(ImageError, match="decompression bomb"):
        decode_image(_png_header_only(100_000, 100_000), max_pixels=64_000_000)


def test_pixel_cap_is_configurable():
    data = _bytes(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageError, match="too many pixels"):
        decode_image(data, max_pixels=5000)
    assert decode_image(data, max_pixels=10_000).width == 100


def test_cmyk_jpeg_becomes_rgb():
    d = decode_image(_bytes(Image.new("CMYK", (20, 10), (0, 255, 255, 0)), "JPEG"))
    assert d.image.mode == "RGB" and d.image.size == (20, 10)
    r, g, b = d.image.getpixel((10, 5))
    assert r > 200 and g < 60 and b < 60  # cyan 0, magenta+yellow full = red


def test_16bit_png_is_scaled_not_clipped():
    arr = np.linspace(0, 65535, 64 * 8, dtype=np.uint16).reshape(8, 64)
    d = decode_image(_bytes(Image.fromarray(arr), "PNG"))
    out = np.asarray(d.image)
    assert d.image.mode == "RGB"
    assert out[..., 0].min() == 0 and out[..., 0].max() == 255  # full range kept
    assert len(np.unique(out[..., 0])) > 100  # a gradient, not a clipped white block


def test_palette_with_transparency_composited_on_white():
    img = Image.new("P", (10, 10), 0)
    img.putpalette([0, 0, 0] * 256)
    d = decode_image(_bytes(img, "PNG", transparency=0))
    assert d.image.getpixel((5, 5)) == (255, 255, 255)


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    d = decode_image(buf.getvalue())
    r, g, b = d.image.getpixel((8, 8))
    assert r > 200 and b < 50


def test_exif_orientation_applied_and_date_read():
    img = Image.new("RGB", (40, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif.get_ifd(0x8769)[0x9003] = "2021:07:04 12:30:00"
    d = decode_image(_bytes(img, "JPEG", exif=exif.tobytes()))
    assert (d.width, d.height) == (20, 40)
    assert d.orientation == 6
    assert d.taken_at == "2021-07-04T12:30:00"


def test_unreadable_paths(tmp_path):
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    with pytest.raises(ImageError, match="cannot read"):
        read_image_file(tmp_path / "gone.jpg")
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(ImageError, match="directory"):
        read_image_file(tmp_path / "dir.jpg")


def test_good_png_roundtrip(tmp_path):
    p = write_image(tmp_path / "a.png", size=(30, 20), colour=(1, 2, 3))
    data, d = read_image_file(p)
    assert d.format == "PNG" and d.image.getpixel((0, 0)) == (1, 2, 3) and data == p.read_bytes()


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "x" / "f.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]


def _phone_photo(orientation: int = 1) -> tuple[Image.Image, bytes]:
    """A real sample photo (scikit-image's coffee) upscaled to phone size, saved with an EXIF orientation."""
    from skimage import data as skdata

    upright = Image.fromarray(skdata.coffee()).resize((4032, 3024), Image.Resampling.BICUBIC)
    # orientation 8 = "turn 90 degrees anticlockwise to view": store the picture turned the other way, as a camera held sideways does
    stored = upright if orientation == 1 else upright.transpose(Image.Transpose.ROTATE_270)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return upright, _bytes(stored, "JPEG", quality=90, exif=exif.tobytes())


def test_phone_jpeg_is_decoded_reduced_and_keeps_its_true_size():
    _, data = _phone_photo()
    d = decode_image(data, max_side=1024)
    # 1008 = 4032 / 4: libjpeg's DCT scaling did the reduction (a full decode + resize would give 1024)
    assert d.image.size == (1008, 756)
    assert (d.width, d.height) == (4032, 3024)
    full = decode_image(data)
    assert full.image.size == (4032, 3024)
    small_full = np.asarray(full.image.resize((1008, 756), Image.Resampling.BOX), dtype=np.float32)
    assert np.abs(np.asarray(d.image, dtype=np.float32) - small_full).mean() < 3.0  # the same picture


def test_reduced_decode_applies_exif_rotation():
    upright, data = _phone_photo(orientation=8)  # stored rotated 90 degrees: the viewer turns it back
    d = decode_image(data, max_side=1024)
    assert (d.width, d.height) == (4032, 3024) and d.orientation == 8
    assert d.image.size == (1008, 756)
    expected = np.asarray(upright.resize((1008, 756), Image.Resampling.BOX), dtype=np.float32)
    assert np.abs(np.asarray(d.image, dtype=np.float32) - expected).mean() < 3.0


def test_max_side_shrinks_other_formats_and_leaves_small_photos_alone():
    big = decode_image(_bytes(Image.new("RGB", (3000, 1000), (5, 6, 7)), "PNG"), max_side=1024)
    assert big.image.size == (1024, 341) and (big.width, big.height) == (3000, 1000)
    small = decode_image(_bytes(Image.new("RGB", (320, 240), (5, 6, 7)), "JPEG"), max_side=1024)
    assert small.image.size == (320, 240)
