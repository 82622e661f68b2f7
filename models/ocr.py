"""Text in photos: RapidOCR (PP-OCR detector + recogniser as ONNX, shipped in the `rapidocr` wheel).

The cheap check: the text detector alone on a copy of at most CHECK_EDGE pixels. Only photos where
it finds a text box get the full pass (detector at OCR_EDGE, orientation, recogniser), so a photo
without text costs one small detector run (~0.1-0.5 s here instead of 1-5 s). The check misses
some small text (a locomotive's number in the eval set). Lines below `min_score` are dropped: on
photos with no text the recogniser returns confident-looking garbage at 0.56-0.66 (MODELS.md).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

OCR_EDGE = 1024  # longest edge given to the detector; bigger photos are shrunk first
CHECK_EDGE = 320  # longest edge for the cheap "is there any text?" detector run


class RapidOCRReader:
    name = "rapidocr"

    def __init__(self, min_score: float = 0.8, min_chars: int = 2):
        import logging

        from rapidocr import RapidOCR  # heavy import (onnxruntime sessions), once

        logging.getLogger("RapidOCR").setLevel(logging.ERROR)  # it logs every call, and warns on every photo without text
        quiet = {"Global.log_level": "error"}
        self._engine = RapidOCR(params=quiet)
        self._check = RapidOCR(params=quiet | {"Det.limit_side_len": CHECK_EDGE, "Det.limit_type": "max"})
        self.min_score = min_score
        self.min_chars = min_chars

    def has_text(self, bgr: np.ndarray) -> bool:
        """The cheap check: does the small detector run find any text box?"""
        boxes = self._check(bgr, use_cls=False, use_rec=False).boxes
        return boxes is not None and len(boxes) > 0

    def read(self, image: Image.Image) -> list[tuple[str, float]]:
        """Text lines (text, confidence) found in the photo, top to bottom; [] when none."""
        img = image.convert("RGB")
        scale = OCR_EDGE / max(img.size)
        if scale < 1:
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR)
        bgr = np.asarray(img)[:, :, ::-1].copy()  # RapidOCR wants BGR like OpenCV
        if not self.has_text(bgr):
            return []
        res = self._engine(bgr)
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
