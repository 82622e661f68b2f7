"""Detected objects (models/objects.py, COCO's 80 classes) in the words the facts already use.

One place says what a detection means for the facts: which words it adds (a couch is also a
"sofa", a sink a "washbasin", so searches and scene rules written with either word find it), how
sure it must be to count, how people are counted from person boxes and faces together, and how a
caption names what was counted ("two dogs", "a toilet").
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

# Other words for a COCO label: ImageNet words and WordNet parents the facts, the scene rules and
# the queries already use. The label itself is always a word too.
COCO_WORDS: dict[str, tuple[str, ...]] = {
    "bicycle": ("bike",), "motorcycle": ("motorbike",), "airplane": ("airliner", "aeroplane", "plane"),
    "car": ("automobile",), "boat": ("ship",), "traffic light": ("traffic signal",), "bench": ("park bench",),
    "cow": ("ox", "cattle"), "elephant": ("African elephant",), "bear": ("brown bear",),
    "umbrella": ("parasol",), "handbag": ("bag", "purse"), "backpack": ("bag",), "suitcase": ("luggage", "bag"),
    "sports ball": ("ball",), "wine glass": ("glass", "goblet"), "cup": ("mug", "coffee mug"), "bowl": ("mixing bowl",),
    "donut": ("doughnut",), "couch": ("sofa", "settee"), "potted plant": ("plant", "houseplant", "pot"),
    "bed": ("bedroom furniture",), "dining table": ("table", "dining table"), "toilet": ("loo", "wc"),
    "tv": ("television", "screen", "monitor"), "laptop": ("notebook computer", "computer"), "mouse": ("computer mouse",),
    "remote": ("remote control",), "keyboard": ("computer keyboard",), "cell phone": ("cellular telephone", "phone", "smartphone"),
    "microwave": ("microwave oven",), "oven": ("stove", "cooker"), "sink": ("washbasin", "basin"),
    "refrigerator": ("fridge",), "book": ("books",), "clock": ("wall clock",), "teddy bear": ("teddy", "soft toy"),
    "hair drier": ("hair dryer", "hand blower"), "toothbrush": ("tooth brush",),
}
PERSON_MIN = 0.22  # a person box this sure counts as a person: on the eval photos (chosen there, bench/bench_objects.py) people yes/no 0.97, exact 0.96
OBJECT_MIN = 0.30  # an object this sure is asserted: objects, scenes, captions, counts, filters
MAX_KEPT = 20  # detections kept per photo (boxes in the details, evidence for search)


def words_of(label: str) -> tuple[str, ...]:
    return (label,) + tuple(w for w in COCO_WORDS.get(label, ()) if w != label)


def coco_words() -> set[str]:
    """Every word a detection can add (labels and their other words): known to the scene rules and Chat."""
    from models.objects import COCO_LABELS

    return {w for label in COCO_LABELS for w in words_of(label)}


def is_sure(label: str, score: float) -> bool:
    return score >= (PERSON_MIN if label == "person" else OBJECT_MIN)


def sure(detections: Iterable[tuple[str, float, Sequence[float]]]) -> list[tuple[str, float, Sequence[float]]]:
    return [d for d in detections if is_sure(d[0], d[1])]


def counts(detections: Iterable[tuple[str, float, Sequence[float]]]) -> dict[str, int]:
    """{label: how many} of the sure detections, most first."""
    return dict(Counter(d[0] for d in sure(detections)).most_common())


def word_scores(detections: Iterable[tuple[str, float, Sequence[float]]]) -> dict[str, float]:
    """The words the sure non-person detections add, each with its best detection's score."""
    out: dict[str, float] = {}
    for label, score, _ in sure(detections):
        if label == "person":
            continue  # people are their own fact (PhotoFacts.people), not an object word
        for w in words_of(label):
            out[w] = max(out.get(w, 0.0), float(score))
    return out


def merge_objects(objects: Sequence[tuple[str, float]], added: dict[str, float], k: int = 20) -> list[tuple[str, float]]:
    """The classifier's object words and the detector's, each word at its best score, best first."""
    best = dict(objects)
    for w, s in added.items():
        best[w] = round(max(best.get(w, 0.0), s), 4)
    return sorted(best.items(), key=lambda kv: -kv[1])[:k]


def _centre_in(face: Sequence[float], box: Sequence[float]) -> bool:
    """Face (x, y, w, h) centre inside person box (x1, y1, x2, y2), both as shares of the photo."""
    cx, cy = face[0] + face[2] / 2, face[1] + face[3] / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def count_people(detections: Iterable[tuple[str, float, Sequence[float]]], face_boxes: Sequence[Sequence[float]]) -> int:
    """Person boxes plus the faces no person box holds: people seen from behind, small or in a
    crowd count by their body, people the detector misses still count by their face."""
    persons = [d[2] for d in sure(detections) if d[0] == "person"]
    return len(persons) + sum(not any(_centre_in(f, b) for b in persons) for f in face_boxes)


_NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
_IRREGULAR = {"person": "people", "mouse": "mice", "knife": "knives", "sheep": "sheep", "skis": "skis", "tv": "tvs"}


def plural(label: str) -> str:
    *head, last = label.split(" ")
    if last in _IRREGULAR:
        word = _IRREGULAR[last]
    elif last.endswith(("s", "sh", "ch", "x")):
        word = last + "es"
    else:
        word = last + "s"
    return " ".join([*head, word])


def counted_phrase(label: str, n: int) -> str:
    """"a toilet", "two dogs", "many cars" (more than six is too many to say)."""
    if n <= 1:
        return ("an " if label[:1] in "aeiou" else "a ") + label
    return f"{_NUMBER_WORDS.get(n, 'many')} {plural(label)}"
