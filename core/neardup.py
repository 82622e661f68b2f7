"""Near-duplicate photos by 64-bit perceptual hash: one rule for the crawler and for import.

Two photos whose pHash differ in at most `threshold` bits look the same to a person (the same
shot re-encoded, resized or cropped by a pixel). The default comes from `Settings.near_dup_threshold`
(`PHOTOLORE_NEAR_DUP_THRESHOLD`); -1 switches the check off.
"""
from __future__ import annotations

from typing import Iterable, Optional, TypeVar

DEFAULT_THRESHOLD = 4  # bits of 64; a 1 px crop + re-encode measures 0-2, different photos 20+

T = TypeVar("T")


def phash(image) -> int:
    """The perceptual hash of a PIL image as an int (imagehash's DCT pHash, 8x8 bits).

    pHash looks at a 32x32 reduction; a box reduction first (short side kept >= 128 px) makes a
    12 MP photo cost ~45 ms instead of ~200 ms and changes at most a bit or two.
    """
    import imagehash

    factor = min(image.width, image.height) // 128
    if factor > 1:
        image = image.reduce(factor)
    return int(str(imagehash.phash(image)), 16)


def to_hex(value: int) -> str:
    return f"{value:016x}"


def from_hex(text: str) -> int:
    return int(text, 16)


def nearest(value: int, known: Iterable[tuple[int, T]], threshold: int, exclude: Optional[T] = None) -> Optional[tuple[T, int]]:
    """The closest (ref, distance) with distance <= threshold, or None; `exclude` is never matched."""
    if threshold < 0:
        return None
    best: Optional[tuple[T, int]] = None
    for other, ref in known:
        if exclude is not None and ref == exclude:
            continue
        d = (value ^ other).bit_count()
        if d <= threshold and (best is None or d < best[1]):
            best = (ref, d)
    return best


def backfill(catalog) -> int:
    """Hash library photos stored before hashes were kept, from their thumbnails (pHash looks at a
    32x32 reduction, so a 320 px thumbnail gives the same bits within 0-2); returns how many."""
    from PIL import Image

    done = []
    for photo_id, thumb in catalog.photos_without_phash():
        try:
            with Image.open(thumb) as img:
                done.append((photo_id, to_hex(phash(img.convert("RGB")))))
        except (OSError, TypeError, ValueError):  # no thumbnail left: that photo is not compared
            continue
    if done:
        catalog.set_phashes(done)
    return len(done)
