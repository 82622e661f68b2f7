"""Text in photos: RapidOCR (PP-OCR detector + recogniser as ONNX, shipped in the `rapidocr` wheel).

The cheap check: the text detector alone on a copy of at most CHECK_EDGE pixels. Only photos where
it finds a text box get the full pass (detector at OCR_EDGE, orientation, recogniser), so a photo
without text costs one small detector run (~0.1-0.5 s here instead of 1-5 s). The check misses
some small text (a locomotive's number in the eval set). A near-square box over a large share of the
photo is not a line of text but the detector's false hit on texture (fur, petals, coins, noise):
on the eval set 10 of the 17 photos where the check fired were such blobs, each costing a full
pass of 0.6-6 s that read nothing, and no photo whose text was read had only such a box. Lines below `min_score` are dropped: on
photos with no text the recogniser returns confident-looking garbage at 0.56-0.66 (MODELS.md).
"""
from __future__ import annotations

import time

import numpy as np
from PIL import Image

OCR_EDGE = 1024  # longest edge given to the detector; bigger photos are shrunk first
CHECK_EDGE = 320  # longest edge for the cheap "is there any text?" detector run
BLOB_AREA = 0.25  # a check box covering more of the photo than this ...
LINE_ASPECT = 3.0  # ... counts as text only when it is this elongated (a line, not a blob)


def _bgr(image: Image.Image, edge: int) -> np.ndarray:
    """An RGB photo as a BGR array (RapidOCR's OpenCV layout) of at most `edge` px on its long side."""
    scale = edge / max(image.size)
    if scale < 1:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR,
                             reducing_gap=2.0)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


def text_like(box, image_area: float) -> bool:
    """A detector box (4 corner points) that can be a line of text: small, or large but elongated."""
    b = np.asarray(box, np.float32)
    w, h = float(np.linalg.norm(b[1] - b[0])), float(np.linalg.norm(b[3] - b[0]))
    return w * h <= BLOB_AREA * image_area or max(w, h) >= LINE_ASPECT * max(min(w, h), 1.0)


def _stop_spinning(engine, det_only: bool = False) -> None:
    """Rebuild a RapidOCR engine's ONNX Runtime sessions with idle spinning off (as models/onnx_runtime.py does).

    RapidOCR builds its sessions with ONNX Runtime's defaults: a pool of one thread per core that
    keeps spinning after each run, and the text check runs on every photo. On the 2-core test
    machine (72 eval photos, one reader per process, alternating): in whole ingests with OCR the
    text check took 22.6 ms a photo instead of 28.4 (medians of 4 runs each; 0.137 vs 0.146 s a
    photo in all); run back to back with the face detector, colours and cues on one thread, the
    check took 27-39 ms instead of 71-93 and those three 12-17 ms instead of 23-33.
    Same model, same threads, same outputs (the eval photos' text is identical); only idle waiting changes.
    The models are loaded here (RapidOCR loads them on first use) through its loaders, which exist
    in the pinned rapidocr 3.10; another version without them keeps its own sessions.
    """
    import onnxruntime as ort

    loaders = ("_load_det_model",) if det_only else ("_load_det_model", "_load_cls_model", "_load_rec_model")
    for name in loaders:
        load = getattr(engine, name, None)
        holder = getattr(load() if load else None, "session", None)  # RapidOCR's OrtInferSession
        old = getattr(holder, "session", None)
        path = getattr(old, "_model_path", None)
        if not isinstance(old, ort.InferenceSession) or not path:
            return
        opts = old.get_session_options()
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        holder.session = ort.InferenceSession(path, sess_options=opts, providers=old.get_providers())


class RapidOCRReader:
    name = "rapidocr"

    def __init__(self, min_score: float = 0.8, min_chars: int = 2):
        import logging

        from rapidocr import RapidOCR  # heavy import (onnxruntime sessions), once

        from core.threads import thread_limit

        logging.getLogger("RapidOCR").setLevel(logging.ERROR)  # it logs every call, and warns on every photo without text
        params = {"Global.log_level": "error"}
        if thread_limit() is not None:  # else each of its sessions runs a spinning pool of one thread per core
            params |= {"EngineConfig.onnxruntime.intra_op_num_threads": thread_limit(), "EngineConfig.onnxruntime.inter_op_num_threads": 1}
        self._engine = RapidOCR(params=params)
        self._check = RapidOCR(params=params | {"Det.limit_side_len": CHECK_EDGE, "Det.limit_type": "max"})
        _stop_spinning(self._check, det_only=True)
        _stop_spinning(self._engine)
        self.min_score = min_score
        self.min_chars = min_chars
        # seconds and photos per part since construction (bench/bench_facts_cost.py reads them)
        self.seconds = {"text check": 0.0, "OCR": 0.0}
        self.counts = {"text check": 0, "OCR": 0}

    def _count(self, part: str, t0: float) -> None:
        self.seconds[part] += time.perf_counter() - t0
        self.counts[part] += 1

    def has_text(self, bgr: np.ndarray) -> bool:
        """The cheap check: does the small detector run find a box that can be a line of text?"""
        boxes = self._check(bgr, use_cls=False, use_rec=False).boxes
        area = float(bgr.shape[0] * bgr.shape[1])
        return boxes is not None and any(text_like(b, area) for b in boxes)

    def read(self, image: Image.Image) -> list[tuple[str, float]]:
        """Text lines (text, confidence) found in the photo, top to bottom; [] when none."""
        # the check gets its own small copy: the 1024 px one is only made for photos that pass it
        t0 = time.perf_counter()
        found = self.has_text(_bgr(image, CHECK_EDGE))
        self._count("text check", t0)
        if not found:
            return []
        t0 = time.perf_counter()
        res = self._engine(_bgr(image, OCR_EDGE))
        self._count("OCR", t0)
        txts, scores, boxes = getattr(res, "txts", None), getattr(res, "scores", None), getattr(res, "boxes", None)
        if not txts:
            return []
        order = np.argsort([float(np.min(np.asarray(b)[:, 1])) for b in boxes]) if boxes is not None else range(len(txts))
        out = []
        for i in order:
            text, score = str(txts[i]).strip(), float(scores[i])
            # letters and digits only: a row of stars or dashes read off a badge is no text a person reads
            if score >= self.min_score and sum(ch.isalnum() for ch in text) >= self.min_chars:
                out.append((text, round(score, 3)))
        return out
