"""The annotator interface and the record one annotation run writes per photo."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol, Sequence, runtime_checkable

from PIL import Image

from core.catalog import Photo


@dataclass
class AnnotationResult:
    """One annotator's answer for one photo. `error` set means no values: never a made-up score."""

    photo_id: str
    scores: dict[str, int] = field(default_factory=dict)  # the six dimensions, 1-5
    concept_text: str = ""
    sentiment: Optional[str] = None  # fused
    sentiment_score: Optional[float] = None  # [-1, 1]
    sentiment_caption: Optional[str] = None
    sentiment_caption_score: Optional[float] = None
    sentiment_image: Optional[str] = None
    sentiment_image_score: Optional[float] = None
    topics: list[str] = field(default_factory=list)  # fused
    topics_caption: list[str] = field(default_factory=list)
    topics_image: list[str] = field(default_factory=list)
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class Annotator(Protocol):
    name: str
    version: str
    needs_image: bool  # False: works from the catalog alone (caption, tags)

    def annotate(self, photos: Sequence[Photo], images: Sequence[Optional[Image.Image]]) -> list[AnnotationResult]:
        """One result per photo, in order; a photo that cannot be annotated gets a result with `error`."""
