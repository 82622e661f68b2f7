"""Text in photos: RapidOCR (PP-OCR detector + recogniser as ONNX, shipped in the `rapidocr` wheel).

The text detector is the cheap check: recognition runs only on the boxes it finds, so a photo
without text costs one small detector pass. Lines below `min_score` are dropped: on photos with
no text the recogniser returns confident-looking garbage at 0.56-0.66 (see shared MODELS.md).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

OCR_EDGE = 1024  # longest edge given to the detector; bigger photos are shrunk first


class RapidOCRReader:
    name = "rapidocr"

    def __init__(self, min_score: float = 0.8, min_chars: int = 2):
        import logging

        from rapidocr import RapidOCR  # heavy import (onnxruntime sessions), once

        logging.getLogger("RapidOCR").setLevel(logging.ERROR)  # it logs every call, and warns on every photo without text
        self._engine = RapidOCR(params={"Global.log_level": "error"}) if _accepts_params(RapidOCR) else RapidOCR()
        self.min_score = min_score
        self.min_chars = min_chars

    def read(self, image: Image.Image) -> list[tuple[str, float]]:
        """Text lines (text, confidence) found in the photo, top to bottom; [] when none."""
        img = image.convert("RGB")
        scale = OCR_EDGE / max(img.size)
        if scale < 1:
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR)
        res = self._engine(np.asarray(img)[:, :, ::-1].copy())  # RapidOCR wants BGR like OpenCV
        txts, scores, boxes = getattr(res, "txts", None), getattr(res, "scores", None), getattr(res, "boxes", None)
        if not txts:
            return []
        order = np.argsort([float(np.min(np.asarray(b)[:, 1])) for b in boxes]) if boxes is not None else range(len(txts))
        out = []
        for i in order:
            text, score = str(txts[i]).strip(), float(scores[i])
            if score >= self.min_score and len(text.replace(" ", "")) >= self.min_chars:
                out.append((text, round(score, 3)))
        return out


def _accepts_params(cls) -> bool:
    import inspect

    try:
        return "params" in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False
