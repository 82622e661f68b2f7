"""Dominant colours of a photo as plain names ("white", "brown", "blue")."""
from __future__ import annotations

import numpy as np
from PIL import Image

from core.images import rgb_of

# Basic colour terms with a typical sRGB value each; pixels go to the nearest in Lab space.
PALETTE = {
    "black": (20, 20, 20), "white": (245, 245, 245), "grey": (128, 128, 128), "red": (200, 30, 35),
    "orange": (240, 130, 30), "yellow": (240, 220, 40), "green": (50, 150, 50), "blue": (40, 90, 200),
    "purple": (120, 50, 150), "pink": (240, 150, 180), "brown": (120, 75, 40), "beige": (220, 200, 160),
    "light blue": (140, 190, 235), "dark green": (25, 70, 35), "dark blue": (20, 30, 90),
}


def _lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 sRGB -> CIE Lab (D65)."""
    c = rgb.astype(np.float32) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], np.float32)
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883], np.float32)
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


_NAMES = list(PALETTE)
_PALETTE_LAB = _lab(np.array([PALETTE[n] for n in _NAMES], np.uint8))


def dominant_colours(image: Image.Image, *, k: int = 3, min_share: float = 0.12) -> list[str]:
    """Up to `k` colour names covering at least `min_share` of the pixels each, most common first."""
    small = np.asarray(rgb_of(image).resize((48, 48), Image.Resampling.BILINEAR)).reshape(-1, 3)
    dist = ((_lab(small)[:, None, :] - _PALETTE_LAB[None]) ** 2).sum(-1)  # (P, C)
    share = np.bincount(dist.argmin(1), minlength=len(_NAMES)) / len(small)
    order = np.argsort(-share)
    return [_NAMES[i] for i in order[:k] if share[i] >= min_share] or [_NAMES[order[0]]]
