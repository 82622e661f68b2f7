"""What PhotoLore knows about a photo beyond its embedding: the one owner of "photo facts".

`PhotoFacts` is written once per photo at ingest (or by `reindex` when FACTS_VERSION rises),
stored in the catalog as JSON, flattened into the vector index metadata for filters, and read by
captions, search, the annotator, dashboards and chat. Extraction lives in `core.facts.extract`;
this module only defines the record, so readers never import a model.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Bump when extraction changes what facts mean; reindex re-extracts photos with an older version.
# 2: colour-and-layout cues (setting, monochrome, landscape) and scenes that use them.
# 3: "indoor" from object evidence (core.facts.cues.indoor_evidence), not only from room scenes.
# 4: the largest face's share of the frame is kept, so "portrait" is a fact Chat and filters can read.
# 5: detected objects with boxes (COCO-80), people counted from person boxes and faces, expressions.
FACTS_VERSION = 5
# Facts extracted while the detectors are not built hold exactly what version 4 held, so they carry
# that number: once `python -m core detectors build` adds the detectors, reindex upgrades them.
FACTS_VERSION_WITHOUT_DETECTORS = 4
PORTRAIT_FACE_SHARE = 0.03  # one person whose face covers >= 3% of the frame: a portrait


@dataclass
class PhotoFacts:
    """Offline evidence about one photo. Scores are 0..1; lists are best first."""

    version: int = FACTS_VERSION
    caption: str = ""  # a sentence a person would accept, written from the facts below
    labels: list[tuple[str, float]] = field(default_factory=list)  # raw classifier labels (ImageNet), top few
    objects: list[tuple[str, float]] = field(default_factory=list)  # plain words incl. parents ("tabby" -> "cat", "animal")
    people: int = 0  # persons seen (faces or bodies), 0 = none found
    faces: int = 0
    largest_face: float = 0.0  # the largest face's share of the frame (0..1)
    text: list[tuple[str, float]] = field(default_factory=list)  # OCR lines (text, confidence)
    text_checked: bool = False  # OCR (or its cheap pre-check) ran; False = unknown, not "no text"
    scene: str = ""  # e.g. "kitchen", "street"; "" = unknown
    scene_score: float = 0.0
    colours: list[str] = field(default_factory=list)  # dominant colour names
    setting: str = ""  # "indoor", "outdoor"; "" = cannot tell (a close-up)
    setting_score: float = 0.0
    monochrome: bool = False  # black and white (or any single-tone grey) photo
    landscape: list[tuple[str, float]] = field(default_factory=list)  # colour-and-layout cues: ("sky", 0.8), ("water", 0.5)
    detections: list[tuple[str, float, tuple[float, float, float, float]]] = field(default_factory=list)  # (COCO label, score, x1 y1 x2 y2 as shares), best first
    detector: str = ""  # the object detector that ran ("centernet-320"); "" = none ran, so no detections means unknown
    expressions: list[tuple[str, float]] = field(default_factory=list)  # each face's likeliest expression ("happy", 0.8)
    notes: list[str] = field(default_factory=list)  # what failed or was skipped ("OCR timed out")

    @property
    def has_people(self) -> bool:
        return self.people > 0

    @property
    def is_portrait(self) -> bool:
        """One person, seen by a face that fills a good part of the frame: what the caption calls
        "a portrait of a person" and what Chat counts for "portraits" (one definition for both)."""
        return self.people == 1 and self.faces == 1 and self.largest_face >= PORTRAIT_FACE_SHARE

    @property
    def has_text(self) -> bool:
        return bool(self.text)

    @property
    def object_counts(self) -> dict[str, int]:
        """{COCO label: how many} of the detections sure enough to assert (core.facts.detected)."""
        from core.facts.detected import counts

        return counts(self.detections)

    def text_content(self) -> str:
        return " ".join(t for t, _ in self.text)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> "PhotoFacts | None":
        """None for a missing/empty value; unknown keys from newer versions are ignored."""
        if not raw:
            return None
        data: dict[str, Any] = json.loads(raw)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("labels", "objects", "text", "landscape", "expressions"):
            if key in known:
                known[key] = [(str(a), float(b)) for a, b in known[key]]
        if "detections" in known:
            known["detections"] = [(str(a), float(b), tuple(float(v) for v in box)) for a, b, box in known["detections"]]
        return cls(**known)

    def index_metadata(self) -> dict[str, Any]:
        """Flat keys for vector-index `where` filters (Search filters, Chat counts)."""
        return {
            "has_people": self.has_people, "people_count": int(self.people), "portrait": self.is_portrait,
            "has_text": self.has_text,
            "scene": self.scene, "objects": [w for w, _ in self.objects[:12]] or [""], "colours": list(self.colours[:3]),
            "setting": self.setting, "monochrome": bool(self.monochrome),
            "landscape": [w for w, _ in self.landscape] or [""],  # Chroma rejects an empty list
            # the sure detections' labels, for "with a dog" filters and Chat counts; [""] = none found or no detector
            "detected": sorted(k for k in self.object_counts if k != "person") or [""],
            "facts_version": int(self.version),
        }
