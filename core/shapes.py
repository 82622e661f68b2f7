"""A procedurally generated captioned "shapes" dataset that needs no download.

Each image shows one shape; its attributes (colour, shape, size, position) determine an exact
sentence, a class label and a bounding box. That makes BLEU, retrieval mAP, GAN conditional
accuracy and heat-map localisation measurable offline.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (235, 205, 20),
    "purple": (140, 40, 170),
    "orange": (245, 130, 20),
}
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
POSITIONS = ("top left", "top right", "bottom left", "bottom right", "center")

# Paraphrase templates give several references per image, as real caption sets do.
TEMPLATES = (
    "a {size} {colour} {shape} in the {position}",
    "a {colour} {shape} that is {size} , in the {position}",
    "there is a {size} {colour} {shape} in the {position} of the image",
)


@dataclass
class ShapeSample:
    image: Image.Image = field(repr=False)
    colour: str
    shape: str
    size: str
    position: str
    bbox: tuple[int, int, int, int]  # (x0, y0, x1, y1) in pixels, inclusive-exclusive

    @property
    def caption(self) -> str:
        """The canonical exact sentence."""
        return self.captions[0]

    @property
    def captions(self) -> list[str]:
        return [t.format(size=self.size, colour=self.colour, shape=self.shape, position=self.position) for t in TEMPLATES]

    @property
    def label(self) -> str:
        """Class used for folders and retrieval relevance: colour + shape."""
        return f"{self.colour}_{self.shape}"


def class_names() -> list[str]:
    return [f"{c}_{s}" for c in COLOURS for s in SHAPES]


def render(colour: str, shape: str, size: str, position: str, *, image_size: int = 64, rng: Optional[np.random.Generator] = None) -> ShapeSample:
    """Draw one sample; `rng` adds background noise and jitter so no two images are identical."""
    rng = rng or np.random.default_rng(0)
    s = image_size
    base = rng.integers(200, 245, size=3)
    noise = rng.normal(0, 6, size=(s, s, 3))
    bg = np.clip(base[None, None, :] + noise, 0, 255).astype(np.uint8)
    img = Image.fromarray(bg, "RGB")
    draw = ImageDraw.Draw(img)

    extent = (0.42 if size == "large" else 0.22) * s
    extent *= rng.uniform(0.9, 1.1)
    centres = {
        "top left": (0.27, 0.27), "top right": (0.73, 0.27),
        "bottom left": (0.27, 0.73), "bottom right": (0.73, 0.73), "center": (0.5, 0.5),
    }
    cx, cy = centres[position]
    jitter = 0.04 * s
    cx = cx * s + rng.uniform(-jitter, jitter)
    cy = cy * s + rng.uniform(-jitter, jitter)
    half = extent / 2
    x0, y0, x1, y1 = cx - half, cy - half, cx + half, cy + half
    fill = tuple(int(v) for v in np.clip(np.array(COLOURS[colour]) + rng.integers(-12, 13, size=3), 0, 255))
    if shape == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=fill)
    elif shape == "square":
        draw.rectangle([x0, y0, x1, y1], fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}; choose one of {SHAPES}")
    bbox = (max(0, int(np.floor(x0))), max(0, int(np.floor(y0))), min(s, int(np.ceil(x1)) + 1), min(s, int(np.ceil(y1)) + 1))
    return ShapeSample(image=img, colour=colour, shape=shape, size=size, position=position, bbox=bbox)


def iter_samples(n: int, *, image_size: int = 64, seed: int = 0) -> Iterator[ShapeSample]:
    """`n` samples cycling through every attribute combination, deterministic for a seed."""
    combos = [(c, sh, sz, p) for c in COLOURS for sh in SHAPES for sz in SIZES for p in POSITIONS]
    order = np.random.default_rng(seed).permutation(len(combos))
    for i in range(n):
        c, sh, sz, p = combos[order[i % len(combos)]]
        yield render(c, sh, sz, p, image_size=image_size, rng=np.random.default_rng([seed, i]))


def generate(n: int, *, image_size: int = 64, seed: int = 0) -> list[ShapeSample]:
    return list(iter_samples(n, image_size=image_size, seed=seed))


def write_dataset(out_dir: Path, n: int, *, image_size: int = 64, seed: int = 0) -> Path:
    """Write `<out>/<colour_shape>/<i>.png`, `captions.csv` (filename,caption) and `annotations.json`.

    Idempotent: rerunning with the same arguments rewrites identical files.
    """
    from core.images import atomic_write_bytes

    out_dir = Path(out_dir)
    rows, meta = [], []
    for i, sample in enumerate(iter_samples(n, image_size=image_size, seed=seed)):
        rel = f"{sample.label}/{i:06d}.png"
        buf = io.BytesIO()
        sample.image.save(buf, format="PNG")
        atomic_write_bytes(out_dir / rel, buf.getvalue())
        for cap in sample.captions:
            rows.append((rel, cap))
        m = {k: v for k, v in asdict(sample).items() if k != "image"}
        meta.append({"filename": rel, "label": sample.label, "captions": sample.captions, **m})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["filename", "caption"])
    writer.writerows(rows)
    atomic_write_bytes(out_dir / "captions.csv", buf.getvalue().encode("utf-8"))
    atomic_write_bytes(out_dir / "annotations.json", json.dumps(meta, indent=1).encode("utf-8"))
    return out_dir
