"""The small interface every vision-language backend implements."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Optional, Protocol, Sequence, runtime_checkable

import numpy as np
from PIL import Image

# Where a text query is compared:
#   "image":   texts and images share one embedding space (CLIP);
#   "caption": texts are compared with the embeddings of the photos' captions (bundled).
TextSpace = Literal["image", "caption"]

if TYPE_CHECKING:  # pragma: no cover
    from core.facts import PhotoFacts


@dataclass
class Description:
    """What a backend can say about a photo without any annotation."""

    caption: str
    tags: list[tuple[str, float]] = field(default_factory=list)  # (label, probability), best first
    facts: Optional["PhotoFacts"] = None  # people, text, scene, objects... when the backend extracts them


@dataclass
class EncodedBatch:
    """Everything ingest stores for a batch of images, computed in one pass."""

    image_embeddings: np.ndarray  # (N, D_img) float32, L2-normalised
    descriptions: list[Description]
    caption_embeddings: np.ndarray | None = None  # (N, D_txt) when text_space == "caption"
    facts_embeddings: np.ndarray | None = None  # (N, D_txt) the facts in the text space (see core.facts.vector)


@runtime_checkable
class VisionLanguageBackend(Protocol):
    name: str  # family: "bundled" or "clip"
    model_id: str  # unique per weights; names the index collections so spaces never mix
    text_space: TextSpace

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N, D_img) L2-normalised float32 embeddings."""

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D) L2-normalised float32; D matches the space named by `text_space`."""

    def describe(self, images: Sequence[Image.Image]) -> list[Description]:
        """A caption sentence and tags per image."""

    def encode(self, images: Sequence[Image.Image]) -> EncodedBatch:
        """Image embeddings, descriptions and (for caption space) caption embeddings together."""


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def caption_from_tags(tags: Sequence[tuple[str, float]], *, min_prob: float = 0.05, max_tags: int = 3) -> str:
    """A plain sentence from ImageNet-style tags, e.g. 'a photo of espresso, with cup and coffee mug'."""
    kept = [t for t, p in tags[:max_tags] if p >= min_prob] or [t for t, _ in tags[:1]]
    if not kept:
        return "a photo"
    if len(kept) == 1:
        return f"a photo of {kept[0]}"
    rest = kept[1:]
    tail = rest[0] if len(rest) == 1 else ", ".join(rest[:-1]) + f" and {rest[-1]}"
    return f"a photo of {kept[0]}, with {tail}"
