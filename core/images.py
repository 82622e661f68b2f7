"""Safe image decoding: every way a file can be bad becomes an `ImageError` with a reason.

Handles zero-byte files, non-images with image extensions, truncated data, decompression
bombs (pixel cap checked from the header, before decoding), CMYK / 16-bit / palette / alpha /
animated images, and EXIF orientation.
"""
from __future__ import annotations

import hashlib
import io
import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# HEIC/HEIF through the pi-heif plugin (LGPL, decode only; pillow-heif is used instead when installed),
# registered on first decode; AVIF is read by Pillow itself.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif", ".hif", ".avif"})
FORMATS_READ = "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF, AVIF"
# Camera RAW: no maintained reader that works offline here; such files get a clear skip reason.
RAW_EXTENSIONS = frozenset({".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf",
                            ".pef", ".srw", ".x3f", ".3fr", ".erf", ".kdc", ".mrw", ".iiq", ".raw"})
NOT_READ_PREFIX = "not an image type PhotoLore reads"

# Never decode a partially downloaded file as if it were whole.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# We enforce our own (configurable) cap from the header; PIL's own check would fire later.
Image.MAX_IMAGE_PIXELS = None

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: os.umask can only be read by setting it
_EXIF_DATETIME_ORIGINAL = 0x9003
_EXIF_DATETIME = 0x0132
_EXIF_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769


class ImageError(ValueError):
    """A file that cannot be used as a photo; `reason` is shown to the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class DecodedImage:
    """An RGB image ready for models, with facts read from the file."""

    image: Image.Image  # RGB, EXIF orientation applied; at most `max_side` long when decoded with one
    width: int  # the photo's own size (upright), even when `image` was decoded smaller
    height: int
    taken_at: Optional[str]  # ISO 8601 from EXIF, when present
    orientation: int  # EXIF orientation tag as stored (1 = upright)
    format: str
    alpha: Optional[Image.Image] = field(default=None, repr=False)  # "L" transparency mask, when the file has one


def unread_reason(name: str) -> Optional[str]:
    """Why a file is not read at all, judged by its name; None for a file import should read."""
    if name.startswith("."):
        return f"{NOT_READ_PREFIX} (hidden file)"
    ext = os.path.splitext(name)[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return None
    if ext in RAW_EXTENSIONS:
        return f"camera RAW ({ext}) is not supported: export it as JPEG, HEIC or TIFF from your camera software"
    return f"{NOT_READ_PREFIX} ({ext or 'no extension'}; reads {FORMATS_READ})"


_plugins_ready = False


def register_plugins() -> None:
    """Teach Pillow HEIC/HEIF (once per process); without the plugin such files get a skip reason."""
    global _plugins_ready
    if _plugins_ready:
        return
    try:
        from pi_heif import register_heif_opener
    except ImportError:
        try:
            from pillow_heif import register_heif_opener
        except ImportError:
            register_heif_opener = None
    if register_heif_opener is not None:
        register_heif_opener()
    _plugins_ready = True


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _exif_facts(img: Image.Image) -> tuple[Optional[str], int]:
    try:
        exif = img.getexif()
    except Exception:  # malformed EXIF must not cost the photo
        return None, 1
    orientation = exif.get(_EXIF_ORIENTATION, 1)
    raw = None
    try:
        raw = exif.get_ifd(_EXIF_IFD).get(_EXIF_DATETIME_ORIGINAL)
    except Exception:
        raw = None
    raw = raw or exif.get(_EXIF_DATETIME)
    taken = None
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "ignore")
    if isinstance(raw, str):
        try:
            taken = datetime.strptime(raw.strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S").isoformat()
        except ValueError:
            taken = None
    try:
        orientation = int(orientation)
    except (TypeError, ValueError):
        orientation = 1
    return taken, orientation if 1 <= orientation <= 8 else 1


def rgb_of(img: Image.Image) -> Image.Image:
    """The image itself when it is RGB already (Image.convert would copy it), else a plain RGB conversion.
    For readers that only look (resize, np.asarray): decoded photos are RGB, and the copy cost ~0.7 ms
    a photo at 640 px in each of the face detector, the colours and the cues."""
    return img if img.mode == "RGB" else img.convert("RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit / float: scale to 8 bits by the image's own range instead of clipping at 255.
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _alpha_of(img: Image.Image) -> Optional[Image.Image]:
    """The transparency mask of an image that uses one, else None."""
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        alpha = img.convert("RGBA").getchannel("A")
        return alpha if alpha.getextrema()[0] < 255 else None
    return None


def _reduced_draft(img: Image.Image, max_side: int) -> None:
    """Ask libjpeg to decode with DCT scaling (1/2, 1/4, 1/8) when the photo is much bigger than needed.

    Decoding a 12 MP JPEG at 1/4 scale costs a fraction of a full decode and a sixteenth of the
    memory. The smallest scale whose long side is still >= 3/4 of `max_side` is picked, so the
    working image is never much smaller than asked for (a 4032 px photo decodes at 1008 px).
    """
    if img.format != "JPEG":
        return
    w, h = img.size
    ratio = 0.75 * max_side / max(w, h)
    if ratio >= 0.5:
        return  # no DCT scale would fit
    img.draft(img.mode, (max(1, math.ceil(w * ratio)), max(1, math.ceil(h * ratio))))


def decode_image(data: bytes, *, max_pixels: int = 64_000_000, name: str = "image", max_side: Optional[int] = None) -> DecodedImage:
    """Decode bytes into an upright RGB image, or raise `ImageError` saying why not.

    With `max_side`, the image comes back at most that many pixels on its long side (JPEGs are
    decoded reduced, never at full size); `width`/`height` still give the photo's own size.
    """
    if not data:
        raise ImageError("empty file (0 bytes)")
    register_plugins()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width <= 0 or height <= 0:
                raise ImageError(f"invalid image size {width}x{height}")
            if width * height > max_pixels:
                raise ImageError(
                    f"too many pixels ({width}x{height} = {width * height:,} > cap {max_pixels:,}); "
                    "possible decompression bomb. Raise PHOTOLORE_MAX_IMAGE_PIXELS if the photo is genuine"
                )
            fmt = img.format or "unknown"
            if getattr(img, "is_animated", False):
                img.seek(0)  # first frame of an animation stands for the file
            if max_side:
                _reduced_draft(img, max_side)
            img.load()
            taken_at, orientation = _exif_facts(img)
            # libheif turns the photo upright itself and resets the EXIF tag; keep what the file said.
            orientation = int(img.info.get("original_orientation") or orientation)
            stored_size = img.size
            # in place: without an orientation tag the default returns a copy of the whole decoded photo
            ImageOps.exif_transpose(img, in_place=True)
            if img.size != stored_size:  # rotated by 90 degrees: the photo's own sides swap too
                width, height = height, width
            rgb = _to_rgb(img)
            alpha = _alpha_of(img)
            if max_side and max(rgb.size) > max_side:
                rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
                alpha = alpha.resize(rgb.size, Image.Resampling.LANCZOS) if alpha is not None else None
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"not an image: the content is no image format PhotoLore can read ({FORMATS_READ})") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"refused as a decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc)
        if "truncated" in text.lower():
            raise ImageError("truncated image: the file ends before the image data does (incomplete download?)") from None
        raise ImageError(f"cannot decode image: {text or type(exc).__name__}") from None
    return DecodedImage(image=rgb, width=width, height=height, taken_at=taken_at, orientation=orientation, format=fmt, alpha=alpha)


def read_image_file(path: Path, *, max_pixels: int = 64_000_000, max_side: Optional[int] = None) -> tuple[bytes, DecodedImage]:
    """Read and decode a file (see `decode_image` for `max_side`); raises `ImageError` for unreadable or bad files."""
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise ImageError("is a directory, not a file") from None
    except PermissionError:
        raise ImageError("permission denied: PhotoLore cannot read this file; check its permissions") from None
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc.strerror or exc}") from None
    return data, decode_image(data, max_pixels=max_pixels, name=str(path), max_side=max_side)


def load_rgb(path: Path, *, max_pixels: int = 64_000_000, max_side: Optional[int] = None) -> Image.Image:
    """Convenience: an upright RGB image from a path (raises `ImageError`)."""
    return read_image_file(path, max_pixels=max_pixels, max_side=max_side)[1].image


def make_thumbnail(image: Image.Image, size: int, alpha: Optional[Image.Image] = None) -> Image.Image:
    """A JPEG-ready RGB thumbnail; with an `alpha` mask, transparent parts show a grey checkerboard.

    The model input composites transparency on white, so a white logo on a transparent
    background became a blank white thumbnail; a checkerboard shows dark and light logos alike.
    """
    thumb = image.copy()
    # reducing_gap=1: box-reduce by the whole factor first, then Lanczos: half the cost, same look at this size.
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=1.0)
    if alpha is None or alpha.size != image.size:
        return thumb
    # Opaque pixels keep their colour; where alpha is 0 the RGB is the white of the model input.
    mask = alpha.convert("L").resize(thumb.size, Image.Resampling.LANCZOS)
    yy, xx = np.mgrid[0:thumb.height, 0:thumb.width]
    light = ((yy // 8 + xx // 8) % 2 == 0)[..., None]
    board = Image.fromarray(np.where(light, 200, 150).astype(np.uint8).repeat(3, axis=2), "RGB")
    board.paste(thumb.convert("RGB"), mask=mask)
    return board


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder + rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def jpeg_bytes(image: Image.Image, quality: int = 85) -> bytes:
    """The image encoded as JPEG."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()

