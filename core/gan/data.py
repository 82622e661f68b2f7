"""Training images and their conditions.

Images from any folder (mixed sizes and modes, some corrupt) become one uint8 array at the
training resolution; bad files are skipped and reported. Conditions come from the active
backend and make training language-free: in clip mode the photo's own image embedding, in
bundled mode the embedding of its caption (from the library / a captions.csv, else the
backend's own description). At generation time the user's text is embedded in the same space.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image

from core.gan import GanError

MIN_IMAGES = 16


@dataclass
class ImageSet:
    """Square RGB training images at one resolution, with where they came from."""

    images: np.ndarray  # (N, R, R, 3) uint8
    names: list[str]  # one per image: a relative path or an id
    captions: Optional[list[str]] = None  # one per image when known
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def resolution(self) -> int:
        return int(self.images.shape[1])

    def pil(self, i: int) -> Image.Image:
        return Image.fromarray(self.images[i], "RGB")


def square_resize(image: Image.Image, resolution: int) -> np.ndarray:
    """Centre-crop to a square, resize to `resolution`: (R, R, 3) uint8."""
    image = image.convert("RGB")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    return np.asarray(image.resize((resolution, resolution), Image.Resampling.BICUBIC if side < resolution else Image.Resampling.LANCZOS), dtype=np.uint8)


def images_to_set(images: Sequence[Image.Image], resolution: int, *, captions: Optional[Sequence[str]] = None, names: Optional[Sequence[str]] = None) -> ImageSet:
    """An `ImageSet` from PIL images of any size and mode."""
    arr = np.stack([square_resize(im, resolution) for im in images]) if len(images) else np.zeros((0, resolution, resolution, 3), np.uint8)
    return ImageSet(arr, list(names) if names is not None else [str(i) for i in range(len(images))], list(captions) if captions is not None else None)


def _read_captions_csv(folder: Path) -> dict[str, str]:
    """`captions.csv` (filename,caption): the first caption per file wins (the canonical one)."""
    path = folder / "captions.csv"
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            name, caption = (row.get("filename") or "").strip(), (row.get("caption") or "").strip()
            if name and caption and name not in out:
                out[name] = caption
    return out


def load_image_folder(
    folder: Path,
    resolution: int,
    *,
    min_images: int = MIN_IMAGES,
    max_images: Optional[int] = None,
    max_pixels: int = 64_000_000,
    on_progress: Optional[Callable[..., None]] = None,
) -> ImageSet:
    """Every readable image under `folder` (recursive), squared and resized; bad files skipped.

    Raises `GanError` when the folder is missing or has fewer than `min_images` usable images.
    """
    from core.images import IMAGE_EXTENSIONS, ImageError, read_image_file

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise GanError(f"training folder '{folder}' does not exist or is not a folder; pick a folder of photos")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    if max_images is not None:
        paths = paths[:max_images]
    known = _read_captions_csv(folder)
    arrays, names, captions, skipped = [], [], [], []
    for i, path in enumerate(paths):
        rel = path.relative_to(folder).as_posix()
        try:
            _, decoded = read_image_file(path, max_pixels=max_pixels)
            arrays.append(square_resize(decoded.image, resolution))
            names.append(rel)
            captions.append(known.get(rel))
        except ImageError as exc:
            skipped.append((rel, exc.reason))
        if on_progress:
            on_progress(i + 1, len(paths), skipped=len(skipped))
    if len(arrays) < min_images:
        detail = f" ({len(skipped)} more were unreadable)" if skipped else ""
        raise GanError(
            f"training folder '{folder}' has {len(arrays)} usable images{detail}; a GAN needs at least {min_images}. "
            "Add more photos (hundreds train far better) or pick another folder"
        )
    have_all = all(c is not None for c in captions)
    return ImageSet(np.stack(arrays), names, captions if have_all else None, skipped)


def conditions_from_backend(backend, image_set: ImageSet, *, batch_size: int = 32, on_progress: Optional[Callable[..., None]] = None) -> np.ndarray:
    """(N, D) L2-normalised conditions for training, in the backend's text space.

    clip ("image" text space): the image embedding itself. bundled ("caption" text space): the
    embedding of the image's caption - the known one, else the backend's own description.
    """
    n = len(image_set)
    out: list[np.ndarray] = []
    for start in range(0, n, batch_size):
        idx = range(start, min(n, start + batch_size))
        pil = [image_set.pil(i) for i in idx]
        if backend.text_space == "image":
            out.append(np.asarray(backend.embed_images(pil), dtype=np.float32))
        else:
            if image_set.captions is not None:
                texts = [image_set.captions[i] for i in idx]
            else:
                texts = [d.caption for d in backend.describe(pil)]
            out.append(np.asarray(backend.embed_texts(texts), dtype=np.float32))
        if on_progress:
            on_progress(min(n, start + batch_size), n)
    cond = np.concatenate(out, axis=0)
    norms = np.linalg.norm(cond, axis=1, keepdims=True)
    return (cond / np.maximum(norms, 1e-12)).astype(np.float32)


def shapes_image_set(n: int, resolution: int, *, seed: int = 0) -> tuple[ImageSet, list[str]]:
    """The procedural shapes set as an `ImageSet` (canonical captions) plus class labels."""
    from core.shapes import iter_samples

    images, captions, labels = [], [], []
    for s in iter_samples(n, image_size=resolution, seed=seed):
        images.append(np.asarray(s.image, dtype=np.uint8))
        captions.append(s.caption)
        labels.append(s.label)
    return ImageSet(np.stack(images), [f"shape_{i:06d}" for i in range(n)], captions), labels


def load_library_class(catalog, class_name: str, resolution: int, *, library_dir: Optional[Path] = None, min_images: int = MIN_IMAGES, max_pixels: int = 64_000_000) -> ImageSet:
    """The catalog's photos of one class (with their captions when every photo has one)."""
    from core.images import ImageError, read_image_file

    photos = catalog.list_photos(class_name=class_name, limit=1_000_000)
    if not photos:
        known = ", ".join(sorted(k or "(none)" for k in catalog.classes())) or "none yet"
        raise GanError(f"the library has no photos of class '{class_name}'; classes: {known}")
    arrays, names, captions, skipped = [], [], [], []
    for photo in photos:
        path = Path(photo.path)
        if not path.is_absolute() and library_dir is not None:
            path = Path(library_dir) / path
        try:
            _, decoded = read_image_file(path, max_pixels=max_pixels)
        except ImageError as exc:
            skipped.append((photo.path, exc.reason))
            continue
        arrays.append(square_resize(decoded.image, resolution))
        names.append(photo.path)
        captions.append(photo.caption)
    if len(arrays) < min_images:
        raise GanError(f"library class '{class_name}' has {len(arrays)} usable photos; a GAN needs at least {min_images}. Add photos to it or pick a folder")
    have_all = all(captions)
    return ImageSet(np.stack(arrays), names, captions if have_all else None, skipped)
