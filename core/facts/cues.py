"""Scene cues ImageNet has no class for, read from colour and layout: sky, sunset, water, grass, trees,
snow, sand, night, and whether the photo is black and white.

One cheap pass over a 64x64 copy of the decoded thumbnail (numpy only; 3-10 ms a photo on a loaded
2-core machine, about 0.05x the EfficientNet forward pass: bench_understand's `cues_ratio_to_forward`). Each cue is a fraction-like confidence in 0..1 built from where pixels of a kind
sit in the frame, because layout is what tells a sky from a blue shirt: sky is bright and smooth
at the top, water and grass fill the bottom, foliage is green texture across the frame. These are
guesses from colour, not recognition: a blue wall at the top of a room can pass for sky, which is
why the setting (indoor/outdoor) also weighs the ImageNet objects (`infer_setting`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from PIL import Image

from core.images import rgb_of

SIDE = 64  # working size: enough for bands and texture, small enough to cost nothing
MIN_CUE = 0.25  # a cue below this is not stored (it would only add noise to the facts vector)
CUE_NAMES = ("sky", "sunset", "water", "grass", "trees", "snow", "sand", "night")  # what read_cues may report
# Lab chroma under which a pixel is grey: a grey photo saved as RGB JPEG stays near 0, while a
# newspaper under warm light (~6) or a starfield with a few coloured galaxies (~15) is not grey.
MONO_CHROMA = 3.0


@dataclass(frozen=True)
class Cues:
    """Colour-and-layout evidence for one photo."""

    elements: dict[str, float]  # "sky", "sunset", "water", "grass", "trees", "snow", "sand", "night" -> 0..1
    monochrome: float  # 0..1, 1 = no colour at all


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W, 3) float RGB in 0..1 -> hue in degrees, saturation and value in 0..1."""
    mx, mn = rgb.max(-1), rgb.min(-1)
    d = mx - mn
    safe = np.where(d > 1e-6, d, 1.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    h = np.where(mx == r, (g - b) / safe % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) * 60.0
    h = np.where(d > 1e-6, h, 0.0)
    s = np.where(mx > 1e-6, d / np.maximum(mx, 1e-6), 0.0)
    return h, s, mx


def _texture(v: np.ndarray) -> np.ndarray:
    """Local contrast: mean absolute difference to the right and lower neighbours (0..1)."""
    t = np.zeros_like(v)
    t[:, :-1] += np.abs(np.diff(v, axis=1))
    t[:-1, :] += np.abs(np.diff(v, axis=0))
    return t / 2


def _clip01(x: float) -> float:
    return float(min(max(x, 0.0), 1.0))


def read_cues(image: Image.Image) -> Cues:
    """Colour-and-layout cues of one photo (any size; it is shrunk to 64x64 here)."""
    rgb = np.asarray(rgb_of(image).resize((SIDE, SIDE), Image.Resampling.BILINEAR), np.float32) / 255.0
    h, s, v = _hsv(rgb)
    tex = _texture(v) / (v + 0.1)  # relative: a dark forest has as much texture as a bright one
    third = SIDE // 3
    top, bottom = slice(0, third), slice(SIDE - third, SIDE)
    upper, lower = slice(0, SIDE // 2), slice(SIDE // 2, SIDE)

    smooth = tex < 0.04
    textured = tex > 0.08
    blue = (h >= 185) & (h <= 255) & (s > 0.12)
    sky_px = (blue & (v > 0.45)) | ((s < 0.18) & (v > 0.72) & smooth)  # blue, or a bright overcast sky
    warm = ((h < 55) | (h > 320)) & (s > 0.3) & (v > 0.5)
    green = (h >= 55) & (h <= 170) & (s > 0.18) & (v > 0.12)
    foliage = (green | ((h >= 15) & (h < 55) & (s > 0.55) & (v > 0.3))) & ~smooth  # green or autumn leaves, not flat
    water_px = (h >= 170) & (h <= 250) & (s > 0.12) & (v > 0.15) & (v < 0.95)
    white = (s < 0.12) & (v > 0.78)
    sand_px = (h >= 20) & (h <= 50) & (s > 0.12) & (s < 0.55) & (v > 0.55) & ~textured

    brighter_top = float(v[top].mean() - v[bottom].mean())
    # sky: bright, smooth, at the top, and not darker than the ground below it
    sky = float((sky_px & ~textured)[top].mean()) * _clip01(0.6 + 2 * brighter_top)
    # sunset: warm, smooth light in the upper half over a darker lower part (a red flower is warm all over),
    # or the sun itself in the frame (a small blown-out patch) over a dark, backlit foreground
    sunset_glow = float((warm & ~textured)[upper].mean()) * _clip01(0.3 + 3 * float(v[upper].mean() - v[lower].mean()))
    glare = float((v > 0.97).mean())
    backlit = _clip01((0.4 - float(v[lower].mean())) * 5) * (0.003 < glare < 0.08) * _clip01(sky + 0.3)
    sunset = max(sunset_glow, backlit)
    # water lies below a horizon: a frame of sky fading smoothly into more sky has none
    horizon = _clip01((_horizon(rgb) - 0.15) * 3)
    water = float((water_px & ~textured)[bottom].mean()) * _clip01(0.5 + sky) * horizon
    grass = float(green[bottom].mean()) * (0.5 + 0.5 * float((~smooth)[bottom].mean()))  # a mown lawn is smooth at 64 px
    trees = float(foliage.mean()) * _clip01(0.4 + float(foliage[top].mean()))
    snow = float(white[lower].mean()) * _clip01(0.3 + sky + float(white[top].mean()))
    sand = float(sand_px[bottom].mean()) * _clip01(0.4 + sky + water)
    dark = float((v < 0.2).mean())
    night = dark * _clip01(_point_lights(image) * 150) if dark > 0.6 else 0.0  # mostly dark, a few lights or stars

    lab_chroma = _chroma(rgb)
    monochrome = _clip01((2 * MONO_CHROMA - float(np.percentile(lab_chroma, 99))) / MONO_CHROMA)
    night *= _clip01(1.0 - grass - trees)  # colour does not survive the dark: green foliage means daylight
    elements = {"sky": sky, "sunset": sunset, "water": water, "grass": grass, "trees": trees, "snow": snow,
                "sand": sand, "night": night}
    if monochrome >= 0.5:
        # a grey photo has no colours to read: only layout (a bright smooth top) still says something
        elements = {"sky": sky * 0.6, "snow": 0.0, "night": night}
    elements = {k: round(_clip01(x), 3) for k, x in elements.items() if x >= MIN_CUE}
    return Cues(dict(sorted(elements.items(), key=lambda kv: -kv[1])), round(monochrome, 3))


def _horizon(rgb: np.ndarray) -> float:
    """Strongest step in colour between bands of rows in the middle of the frame (sum of RGB differences)."""
    rows = rgb.mean(axis=1)  # (H, 3)
    steps = [np.abs(rows[i - 4:i].mean(0) - rows[i:i + 4].mean(0)).sum() for i in range(SIDE // 5, SIDE - SIDE // 5)]
    return float(max(steps))


def _point_lights(image: Image.Image) -> float:
    """Share of bright pixels at 256 px: lamps and stars vanish when averaged down to 64x64."""
    grey = image.convert("L")
    grey.thumbnail((256, 256))
    return float((np.asarray(grey) > 180).mean())


def _chroma(rgb: np.ndarray) -> np.ndarray:
    from core.facts.colours import _lab

    lab = _lab((rgb * 255).astype(np.uint8))
    return np.hypot(lab[..., 1], lab[..., 2])


# ImageNet words that place a photo outdoors or indoors, with how much each counts.
OUTDOOR_WORDS = {"geological formation": 1.0, "shore": 1.0, "mountain": 1.0, "bridge": 0.6, "boat": 0.5, "ship": 0.5,
                 "tower": 0.5, "aircraft": 0.4, "bird": 0.3, "motor vehicle": 0.3, "fence": 0.4, "plant": 0.3,
                 "flower": 0.2, "fungus": 0.4}
# Things that live inside buildings, as WordNet parents of ImageNet classes (core/facts/words.py sums each
# parent's classes), so "furniture" collects every sofa, desk and wardrobe. Their evidence is combined as
# independent clues (noisy-OR): a telephone and a monitor together say "indoors" more than either alone.
# Generic parents that live both inside and out ("container", "clothing", "seat": a park bench) are left out.
INDOOR_WORDS = {"furniture": 1.0, "home appliance": 1.0, "kitchen appliance": 1.0, "lampshade": 0.8, "window shade": 0.6,
                "blind": 0.4, "bedclothes": 0.8, "computer": 0.8, "electronic equipment": 0.7, "telephone": 0.6,
                "timepiece": 0.6, "lamp": 0.5, "kitchen utensil": 0.6, "cutlery": 0.6, "toiletry": 0.6, "shop": 0.6,
                "musical instrument": 0.5, "beverage": 0.4, "dish": 0.3, "screen": 0.6}
INDOOR_SCENES = {"kitchen", "bathroom", "bedroom", "living room", "dining room", "office", "restaurant", "shop"}
MIN_SETTING = 0.4
# With no sky, water, greenery or any other outdoor cue in the frame, less indoor evidence suffices: the
# cues' silence is itself a clue (a room has walls where a landscape has sky).
MIN_INDOOR_UNCONTESTED = 0.3


OUTDOOR_CUES = ("sky", "sunset", "water", "grass", "trees", "snow", "sand")  # night can be a lit room


def indoor_evidence(word_score: Mapping[str, float]) -> float:
    """0..1: how strongly the object words say "indoors" (noisy-OR of INDOOR_WORDS' weighted scores)."""
    miss = 1.0
    for word, weight in INDOOR_WORDS.items():
        miss *= 1.0 - min(weight * word_score.get(word, 0.0), 1.0)
    return 1.0 - miss


def infer_setting(elements: Mapping[str, float], word_score: Mapping[str, float], scene: str = "") -> tuple[str, float]:
    """("indoor" | "outdoor" | "", confidence) from the colour-and-layout cues, the object words and the scene."""
    outdoor_colour = max((elements.get(k, 0.0) for k in OUTDOOR_CUES), default=0.0)
    out = max(outdoor_colour, max((w * word_score.get(k, 0.0) for k, w in OUTDOOR_WORDS.items()), default=0.0))
    ind = indoor_evidence(word_score)
    if scene:
        (ind, out) = (max(ind, 0.8), out) if scene in INDOOR_SCENES else (ind, max(out, 0.8))
    if ind > out and (ind >= MIN_SETTING or (ind >= MIN_INDOOR_UNCONTESTED and out < MIN_CUE)):
        return "indoor", round(ind, 3)
    if out >= MIN_SETTING and out >= ind:
        return "outdoor", round(out, 3)
    return "", round(max(out, ind), 3)
