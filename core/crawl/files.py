"""Checks an image must pass before it is saved, and safe, atomic, never-overwriting saves."""
from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

_MAGIC = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tif"),
    (b"MM\x00*", "tif"),
)


def sniff_image_type(data: bytes) -> str | None:
    """File extension from the magic bytes, or None when the bytes are no supported image."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp":  # ISO base media file: the major brand says HEIF or AVIF
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"):
            return "heic"
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    return None


@dataclass
class CheckedImage:
    ext: str
    sha256: str
    phash: int  # 64-bit perceptual hash
    width: int
    height: int


class ImageRejected(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def check_image(data: bytes, content_type: str, *, min_width: int, min_height: int, max_pixels: int) -> CheckedImage:
    """Content type, magic bytes, decodability and minimum size; raises `ImageRejected`."""
    from core.images import ImageError, decode_image, sha256_bytes
    from core.neardup import phash

    if content_type and not content_type.startswith("image/") and content_type != "application/octet-stream":
        raise ImageRejected(f"not an image: server says content type {content_type}")
    ext = sniff_image_type(data)
    if ext is None:
        head = data[:64].lstrip().lower()
        what = "HTML" if head.startswith((b"<!doctype html", b"<html")) else "unknown data"
        raise ImageRejected(f"not an image: content is {what} (magic bytes match no image format)")
    try:
        decoded = decode_image(data, max_pixels=max_pixels)
    except ImageError as exc:
        raise ImageRejected(f"undecodable: {exc.reason}") from None
    if decoded.width < min_width or decoded.height < min_height:
        raise ImageRejected(f"too small: {decoded.width}x{decoded.height} (minimum {min_width}x{min_height})")
    return CheckedImage(ext=ext, sha256=sha256_bytes(data), phash=phash(decoded.image), width=decoded.width, height=decoded.height)


_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_component(name: str, fallback: str, max_len: int = 80) -> str:
    """A single path component: no separators, no leading dots, no control or reserved characters."""
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    name = _UNSAFE.sub("_", name.replace("/", "_").replace("\\", "_"))
    name = re.sub(r"[_ ]{2,}", "_", name).strip(" ._-")
    name = name[:max_len].rstrip(" ._-")
    if not name or name.upper() in {"CON", "PRN", "AUX", "NUL", "COM1", "LPT1"}:
        return fallback
    return name


def file_stem_for(url: str) -> str:
    """A readable stem from the image URL's last path segment, without its extension."""
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    stem = segment.rsplit(".", 1)[0] if "." in segment else segment
    return safe_component(stem, "image", max_len=60)


def save_unique(directory: Path, stem: str, ext: str, data: bytes, sha256: str) -> Path:
    """Write atomically under a name that exists nowhere yet; reuse a same-content file at that name.

    Reusing identical content makes a rerun after a crash (file written, state not yet
    committed) idempotent instead of leaving a `-1` copy.
    """
    from core.images import sha256_bytes

    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".crawl.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        for n in range(10_000):
            target = directory / (f"{stem}.{ext}" if n == 0 else f"{stem}-{n}.{ext}")
            try:
                os.link(tmp, target)  # fails if the name exists: never overwrite
                return target
            except FileExistsError:
                try:
                    if target.stat().st_size == len(data) and sha256_bytes(target.read_bytes()) == sha256:
                        return target
                except OSError:
                    pass
        raise OSError(f"no free file name for {stem}.{ext} in {directory}")
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
