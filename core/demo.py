"""The demo library: colour photos that ship inside scikit-image and scikit-learn (no download).

Licences are listed in NOTICE; the two scikit-learn photos are CC-BY-2.0 and need attribution.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from core.images import atomic_write_bytes

# file name -> (loader, licence note). Only images whose licence is known and permissive.
_SKIMAGE = {
    "astronaut": "public domain (NASA)",
    "chelsea": "CC0 (Stefan van der Walt)",
    "coffee": "CC0 (Rachel Michetti)",
    "rocket": "public domain (SpaceX)",
    "hubble_deep_field": "public domain (NASA)",
    "immunohistochemistry": "no known copyright restrictions",
    "retina": "CC0 1.0",
    "camera": "CC0 (Lav Varshney)",
    "coins": "no known copyright restrictions",
    "brick": "CC0 (CC0Textures)",
    "grass": "CC0",
    "gravel": "CC0 (CC0Textures)",
    "clock": "public domain (Stefan van der Walt)",
}
_SKLEARN = {"china": "CC-BY-2.0, danielbuechele (Flickr)", "flower": "CC-BY-2.0, vultilion (Flickr)"}


def demo_sources() -> dict[str, Callable[[], np.ndarray]]:
    import skimage.data as data
    from sklearn.datasets import load_sample_image

    out: dict[str, Callable[[], np.ndarray]] = {name: getattr(data, name) for name in _SKIMAGE}
    for name in _SKLEARN:
        out[name] = lambda n=name: load_sample_image(f"{n}.jpg")
    return out


def licences() -> dict[str, str]:
    return {**_SKIMAGE, **_SKLEARN}


def write_demo_photos(folder: Path) -> list[Path]:
    """Write the demo photos as JPEGs into `folder`; idempotent (existing files are kept)."""
    folder = Path(folder)
    paths = []
    for name, load in demo_sources().items():
        path = folder / f"{name}.jpg"
        if not path.exists():
            arr = load()
            img = Image.fromarray(arr.astype(np.uint8) if arr.dtype != np.uint8 else arr).convert("RGB")
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=92)
            atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    return paths


def build_demo(services, *, on_progress=None, cancel=None):
    """Write the demo photos under the library and ingest them (class 'demo')."""
    from core.ingest import ingest_folder

    folder = services.settings.library_dir / "demo"
    write_demo_photos(folder)
    return ingest_folder(services, folder, source="demo", class_override="demo", on_progress=on_progress, cancel=cancel)
