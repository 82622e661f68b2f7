"""People in a photo: face and person counts from detectors whose weights ship in their packages.

Two families, one small interface (`detect(image) -> People`):
- `MediapipePeople`: mediapipe's bundled BlazeFace (full range) face detector;
- `OpenCVPeople`: OpenCV's built-in Haar frontal-face cascade plus its HOG people detector.
bench/bench_people.py measured both on the 61 evaluation photos (5 with people): mediapipe right on
0.95 (1 false face in a dandelion field; missed a distant crowd and a small cyclist), 0.04 s/photo;
OpenCV 4.14 Haar + HOG right on 0.77 (11 false positives on flowers, coins, landscapes), 0.9 s/photo.
So `make_people_detector()` builds mediapipe's. `make_people_detector("mediapipe+pose")` adds BlazePose's
person detector (models/pose.py; needs ai-edge-litert, not a pinned requirement): on the 72 eval photos
it finds one person the faces miss (0.944 -> 0.958) for 9 -> 24 ms a photo, so it is not the default.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.images import rgb_of

DETECT_EDGE = 640  # detectors run on a copy this big at most: faces of ~1/15 of the edge are still found


@dataclass
class People:
    faces: int = 0
    people: int = 0  # persons (faces or bodies, merged)
    largest_face: float = 0.0  # area share of the largest face (a portrait when large)
    note: str = ""  # a part that failed while the rest still counted ("body detector failed (...)")
    boxes: tuple[tuple[float, float, float, float], ...] = ()  # each face as x, y, w, h shares of the photo


def _resized(image: Image.Image) -> np.ndarray:
    img = rgb_of(image)
    scale = DETECT_EDGE / max(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(img))


def _merge_boxes(boxes: list[tuple[float, float, float, float]], iou: float = 0.3) -> list[tuple[float, float, float, float]]:
    """Drop boxes overlapping a kept one (detectors fire twice on one face)."""
    kept: list[tuple[float, float, float, float]] = []
    for b in sorted(boxes, key=lambda b: -(b[2] * b[3])):
        if all(_iou(b, k) < iou for k in kept):
            kept.append(b)
    return kept


def _contains(head, face, slack: float = 0.5) -> bool:
    """The centre of `face` lies in `head` grown by `slack` of its size on each side (both (x, y, w, h))."""
    cx, cy = face[0] + face[2] / 2, face[1] + face[3] / 2
    return (head[0] - slack * head[2] <= cx <= head[0] + (1 + slack) * head[2]
            and head[1] - slack * head[3] <= cy <= head[1] + (1 + slack) * head[3])


def _iou(a, b) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w, h = min(ax2, bx2) - max(a[0], b[0]), min(ay2, by2) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    return inter / max(a[2] * a[3] + b[2] * b[3] - inter, 1e-9)


class MediapipePeople:
    name = "mediapipe-blazeface"

    def __init__(self, min_confidence: float = 0.6, bodies: bool = False):
        from mediapipe.python.solutions import face_detection  # heavy import, once

        # model_selection=1: the full-range model (faces up to ~5 m away), not the selfie one.
        self._faces = face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_confidence)
        self._bodies = None
        if bodies:  # BlazePose's person detector (models/pose.py): people whose face the face detector misses
            from models.pose import PoseDetector

            self._bodies = PoseDetector()
            self.name = "mediapipe-blazeface+blazepose"

    def detect(self, image: Image.Image) -> People:
        res = self._faces.process(_resized(image))
        boxes = []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            if bb.width > 0.01 and bb.height > 0.01:
                boxes.append((bb.xmin, bb.ymin, bb.width, bb.height))
        boxes = _merge_boxes(boxes)
        largest = max((w * h for _, _, w, h in boxes), default=0.0)
        extra, note = 0, ""
        if self._bodies is not None:
            try:
                bodies = self._bodies.detect(image)
            except Exception as exc:  # the faces found still count
                bodies, note = [], f"body detector failed ({type(exc).__name__}: {exc})"
            # a body whose head box holds a found face is that face's person
            extra = sum(not any(_contains(b.head, f) for f in boxes) for b in bodies)
        return People(faces=len(boxes), people=len(boxes) + extra, largest_face=float(largest), note=note, boxes=tuple(boxes))


class OpenCVPeople:
    name = "opencv-haar-hog"

    def __init__(self):
        import cv2

        self._cv2 = cv2
        self._faces = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(self, image: Image.Image) -> People:
        cv2 = self._cv2
        rgb = _resized(image)
        h, w = rgb.shape[:2]
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        faces = self._faces.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=6, minSize=(max(24, w // 30),) * 2)
        fboxes = _merge_boxes([(x / w, y / h, fw / w, fh / h) for x, y, fw, fh in (faces if len(faces) else [])])
        bodies, weights = self._hog.detectMultiScale(grey, winStride=(8, 8), padding=(8, 8), scale=1.05)
        bboxes = _merge_boxes([(x / w, y / h, bw / w, bh / h) for (x, y, bw, bh), s in zip(bodies, np.ravel(weights)) if s > 0.5])
        # a body containing a face is one person
        extra = [b for b in bboxes if not any(_iou(b, f) > 0 for f in fboxes)]
        largest = max((fw * fh for _, _, fw, fh in fboxes), default=0.0)
        return People(faces=len(fboxes), people=len(fboxes) + len(extra), largest_face=float(largest), boxes=tuple(fboxes))


def make_people_detector(kind: str = "auto"):
    """The people detector to use: "mediapipe", "mediapipe+pose" (faces and BlazePose bodies, models/pose.py),
    "opencv", or "auto" (mediapipe; OpenCV's cascades when mediapipe is missing and the installed OpenCV
    still has them: OpenCV 5 moved them out)."""
    if kind not in ("auto", "mediapipe", "mediapipe+pose", "opencv"):
        raise ValueError(f"unknown people detector {kind!r}: choose auto, mediapipe, mediapipe+pose or opencv")
    if kind == "mediapipe+pose":
        try:
            return MediapipePeople(bodies=True)
        except ImportError as exc:
            raise ImportError(f"the pose detector needs mediapipe and ai-edge-litert ({exc}): pip install ai-edge-litert==2.3.0") from exc
    if kind in ("auto", "mediapipe"):
        try:
            return MediapipePeople()
        except ImportError as exc:
            if kind == "mediapipe":
                raise ImportError(f"mediapipe is not installed ({exc}): pip install --no-deps -r requirements-nodeps.txt") from exc
    import cv2

    if not hasattr(cv2, "CascadeClassifier"):
        raise ImportError(f"no people detector: mediapipe is missing and OpenCV {cv2.__version__} has no Haar cascades; "
                          "pip install --no-deps -r requirements-nodeps.txt")
    return OpenCVPeople()
