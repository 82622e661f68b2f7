"""FactsExtractor: ImageNet probabilities + detectors -> PhotoFacts, one per photo.

Built once (it loads the people detector, OCR and the scene rules) and then called per batch
with the class probabilities the backend already computed in its forward pass, so objects cost
no extra network run. Each detector runs under a time limit; one that fails or times out leaves
the other facts and a note, never an exception that loses the batch.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
from PIL import Image

from core.facts import FACTS_VERSION, FACTS_VERSION_WITHOUT_DETECTORS, PhotoFacts
from core.facts import detected
from core.facts.caption import people_phrase, write_caption
from core.facts.colours import dominant_colours
from core.facts.cues import MIN_CUE, Cues, infer_setting, read_cues
from core.facts.scenes import SCENES_FILE, load_scene_rules
from core.facts.words import known_words, specific_words, top_objects, vocabulary, word_scores

log = logging.getLogger(__name__)

# A region of the 7x7 feature map sees a quarter of the photo; its vote counts this much of the
# whole-photo vote, so a small object must be clear in its region to enter the facts.
REGION_WEIGHT = 0.6
SMALL_EDGE = 640  # the face detector's working size (models/faces.py DETECT_EDGE)


def merge_region_probs(class_probs: np.ndarray, region_probs: Optional[np.ndarray]) -> np.ndarray:
    """(N, 1000) whole-photo probabilities, raised where a region (N, R, 1000) saw a class more clearly."""
    if region_probs is None or len(region_probs) == 0:
        return class_probs
    return np.maximum(class_probs, REGION_WEIGHT * region_probs.max(axis=1))


class FactsExtractor:
    """Extracts PhotoFacts; detectors are loaded once and may be switched off (None)."""

    def __init__(self, *, people: object | str | None = "auto", ocr: object | str | None = "auto",
                 objects: object | str | None = "auto", expressions: object | str | None = "auto",
                 detectors_dir: Optional[Path] = None, scenes_path: Path | str = SCENES_FILE, timeout_s: float = 30.0):
        """`objects` / `expressions`: "auto" loads the ONNX detectors built in `detectors_dir`
        (default: Settings().detectors_dir); None leaves them out; or pass a built one."""
        self.timeout_s = timeout_s
        self.load_notes: list[str] = []
        vocab = vocabulary()
        self.scenes = load_scene_rules(scenes_path, known_words=known_words())
        self.people = self._load(people, "people detector", _make_people)
        self.ocr = self._load(ocr, "OCR", _make_ocr)
        folder = detectors_dir
        if folder is None and "auto" in (objects, expressions):
            from core.settings import Settings

            folder = Settings().detectors_dir
        self.objects = self._load(objects, "object detector", lambda _s: _make_objects(folder))
        # expressions read faces, so they follow the face detector
        self.expressions = None if self.people is None else self._load(expressions, "expression model", lambda _s: _make_expressions(folder))
        # One worker: detectors are not thread-safe, and a time limit needs the call off this thread.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="photolore-facts")
        # Seconds spent per fact source since construction (bench/bench_facts_cost.py reads them);
        # a perf_counter pair per source costs microseconds against milliseconds of work.
        self.seconds: dict[str, float] = defaultdict(float)

    @property
    def version(self) -> int:
        """The facts version this extractor writes: the current one only with the object detector."""
        return FACTS_VERSION if self.objects is not None else FACTS_VERSION_WITHOUT_DETECTORS

    @contextmanager
    def _clock(self, source: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[source] += time.perf_counter() - t0

    def _load(self, spec, what: str, factory: Callable[[str], object]):
        if spec is None or not isinstance(spec, str):
            return spec  # None (off) or a ready-made detector
        try:
            return factory(spec)
        except Exception as exc:  # a missing package or a broken model must not stop ingest
            log.warning("%s unavailable: %s", what, exc)
            self.load_notes.append(f"{what} unavailable ({type(exc).__name__}: {exc})")
            return None

    def _timed(self, fn, image: Image.Image, what: str, notes: list[str]):
        future = self._pool.submit(fn, image)
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout:
            # the worker thread cannot be killed; the next call queues behind it and times out too
            notes.append(f"{what} timed out after {self.timeout_s:.0f}s")
        except Exception as exc:
            notes.append(f"{what} failed ({type(exc).__name__}: {exc})")
        return None

    def extract(self, images: Sequence[Image.Image], class_probs: np.ndarray,
                region_probs: Optional[np.ndarray] = None) -> list[PhotoFacts]:
        """One PhotoFacts per image from its (1000,) class probabilities (+ optional (R, 1000) region ones)."""
        if len(images) != len(class_probs):
            raise ValueError(f"{len(images)} images but {len(class_probs)} rows of class probabilities")
        if not len(images):
            return []
        vocab = vocabulary()
        with self._clock("region words"):
            merged = merge_region_probs(np.asarray(class_probs, np.float32), region_probs)
            scores = word_scores(merged)  # (N, V)
        return [self._one(img, class_probs[i], scores[i], vocab) for i, img in enumerate(images)]

    def _one(self, image: Image.Image, probs: np.ndarray, scores: np.ndarray, vocab) -> PhotoFacts:
        notes = list(self.load_notes)
        with self._clock("shrink"):
            small = _shrunk(image, SMALL_EDGE)  # one cheap copy for the face detector and colours; OCR gets the full photo
        with self._clock("objects"):
            top = np.argsort(-probs)[:5]
            facts = PhotoFacts(version=self.version, labels=[(vocab.class_words[c], round(float(probs[c]), 4)) for c in top],
                               objects=top_objects(scores), notes=notes)
        with self._clock("people"):
            found = None if self.people is None else self._timed(self.people.detect, small, "people detector", notes)
        face_boxes = tuple(getattr(found, "boxes", ())) if found is not None else ()
        if found is not None:
            facts.people, facts.faces = int(found.people), int(found.faces)
            facts.largest_face = round(float(found.largest_face), 4)
            if getattr(found, "note", ""):
                notes.append(found.note)
        added: dict[str, float] = {}
        if self.objects is not None:
            with self._clock("detector"):
                dets = self._timed(self.objects.detect, small, "object detector", notes)
            if dets is not None:
                facts.detector = getattr(self.objects, "name", "detector")
                facts.detections = [(d.label, d.score, tuple(d.box)) for d in dets[:detected.MAX_KEPT]]
                facts.people = detected.count_people(facts.detections, face_boxes)
                added = detected.word_scores(facts.detections)
                facts.objects = detected.merge_objects(facts.objects, added)
        if self.expressions is not None and face_boxes:
            with self._clock("expressions"):
                read = self._timed(lambda img: self.expressions.read(img, face_boxes), small, "expression model", notes)
            if read is not None:
                facts.expressions = [(e, float(p)) for e, p in read]
        if self.ocr is not None:
            with self._clock("text"):
                lines = self._timed(self.ocr.read, image, "OCR", notes)
            if lines is not None:
                facts.text, facts.text_checked = list(lines), True
        cues = Cues({}, 0.0)
        try:
            with self._clock("colours"):
                facts.colours = dominant_colours(small)
            with self._clock("cues"):
                cues = read_cues(small)
        except Exception as exc:  # a strange image mode must not cost the other facts
            notes.append(f"colours failed ({type(exc).__name__}: {exc})")
        with self._clock("scene rules"):
            facts.monochrome = cues.monochrome >= 0.5
            facts.landscape = _damp_close_ups(cues.elements, probs, vocab)
            word_score = {vocab.words[i]: float(scores[i]) for i in np.flatnonzero(scores >= 0.01)}
            for w, v in added.items():
                word_score[w] = max(word_score.get(w, 0.0), v)
            facts.scene, facts.scene_score = self.scenes.infer(word_score, people=facts.people, has_text=facts.has_text,
                                                               cues=dict(facts.landscape))
            facts.setting, facts.setting_score = infer_setting(dict(facts.landscape), word_score, facts.scene)
        with self._clock("caption"):
            rule = self.scenes.rule(facts.scene) if facts.scene else None
            counted = {k: n for k, n in facts.object_counts.items() if k != "person"}
            named = {w for k in counted for w in detected.words_of(k)}
            # what the detector counted first ("two dogs"), then the classifier's words it does not cover
            specific = [detected.counted_phrase(k, n) for k, n in counted.items()]
            specific += [w for w, _ in specific_words(scores) if not _covered(w, named, vocab)]
            evidence = [] if rule is None else sorted((w for w in rule.objects if word_score.get(w, 0) >= 0.1 and w not in named),
                                                     key=lambda w: -word_score[w] * rule.objects[w])
            if rule is not None:  # what was counted comes first, named as counted: "a bathroom with a toilet and a sink"
                evidence = [detected.counted_phrase(k, n) for k, n in counted.items()] + [w for w in evidence if not _covered(w, named, vocab)]
            facts.caption = write_caption(
                people=people_phrase(facts.people, facts.is_portrait), scene_phrase=rule.phrase if rule else "",
                scene_where=rule.where if rule else "", scene_objects=evidence, objects=specific,
                text=facts.text[0][0] if facts.text else "", colours=facts.colours,
                landscape=[w for w, c in facts.landscape if c >= 0.4], monochrome=facts.monochrome)
        return facts


def _covered(word: str, named: set[str], vocab) -> bool:
    """Whether a classifier word is (a kind of) something the detector already named: "tabby" after "cat"."""
    if word in named or word not in vocab.words:
        return word in named
    i = vocab.index(word)
    classes = np.flatnonzero(vocab.membership[:, i])
    return any(vocab.words[j] in named for c in classes for j in np.flatnonzero(vocab.membership[c]))


SCENERY = ("geological formation", "shore")  # ImageNet words that are places, not things in front of the camera


def _damp_close_ups(elements: dict[str, float], probs: np.ndarray, vocab) -> list[tuple[str, float]]:
    """Landscape cues, the colour-only "sunset" lowered when the classifier is sure of a thing in close-up:
    a warm background behind an espresso or a marigold is not an evening sky."""
    top = int(np.argmax(probs))
    scenery = any(vocab.membership[top, vocab.index(w)] for w in SCENERY)
    sure = 0.0 if scenery else float(probs[top])
    out = [(k, round(v * (1 - sure), 3) if k == "sunset" else v) for k, v in elements.items()]
    return sorted(((k, v) for k, v in out if v >= MIN_CUE), key=lambda kv: -kv[1])


def _shrunk(image: Image.Image, edge: int) -> Image.Image:
    if max(image.size) <= edge:
        return image
    factor = max(image.size) // edge
    small = image.reduce(factor) if factor > 1 else image  # box-average by an integer factor: fast on big photos
    scale = edge / max(small.size)
    if scale < 1:
        small = small.resize((max(1, round(small.width * scale)), max(1, round(small.height * scale))), Image.Resampling.BILINEAR)
    return small


def _make_people(kind: str):
    from models.faces import make_people_detector

    return make_people_detector(kind)


def _make_objects(folder: Path):
    from models.human_models import make_object_detector

    return make_object_detector(folder)


def _make_expressions(folder: Path):
    from models.human_models import make_expression_reader

    return make_expression_reader(folder)


def _make_ocr(kind: str):
    from models.ocr import RapidOCRReader

    return RapidOCRReader()
