"""The bundled backend: works offline with weights that ship inside pip packages.

Images -> EfficientNet-Lite0 (ImageNet class probabilities + 1280-d pooled features) -> photo
facts (objects with WordNet parents, people, text, scene, colours; core.facts.extract) -> a
caption written from the facts -> all-MiniLM-L6-v2 embeddings of the caption and of the facts.
Text queries are scored against both (core.search); image-to-image search uses the CNN features.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from models.base import Description, EncodedBatch, caption_from_tags, l2_normalise

MODEL_ID = "bundled-effnetlite0-minilm"
_MIN_BATCH_TO_DECIDE = 4  # `auto` picks the image runtime at the first batch this big (an ingest, not a search)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class BundledBackend:
    name = "bundled"
    model_id = MODEL_ID
    text_space = "caption"

    def __init__(self, device: str = "cpu", top_k_tags: int = 5, facts: object = "auto", runtime: str = "torch",
                 cache_dir: Optional[Path] = None):
        """`facts`: "auto" builds the FactsExtractor on first use; None turns facts off; or pass a built one.
        `runtime`: "torch", "onnx" or "auto" (ONNX Runtime when it is faster on this CPU; the export
        and the decision are cached under `cache_dir`, the data dir's models folder)."""
        import torch
        import transformers

        transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar on every start

        from models.efficientnet import imagenet_categories, load_efficientnet_lite0
        from models.efficientnet_onnx import read_decision
        from models.minilm import MiniLMEncoder

        self._torch = torch
        self.cnn = load_efficientnet_lite0(device)
        self.text_model = MiniLMEncoder(device=device)
        self.categories = imagenet_categories()
        self.top_k_tags = top_k_tags
        self._facts = facts
        self._facts_lock = threading.Lock()
        self._term_cache: dict = {}  # word -> embedding, for facts vectors
        self._onnx = None
        self.runtime, self.runtime_reason = "torch", "PyTorch (default)"
        if runtime not in ("torch", "onnx", "auto"):
            raise ValueError(f"unknown image runtime '{runtime}'; choose torch, onnx or auto")
        self._pending_runtime: Optional[tuple[str, Path]] = None
        if runtime != "torch":
            if device != "cpu" or cache_dir is None:
                self.runtime_reason = f"PyTorch: ONNX Runtime is only used on the CPU with a data dir (device {device})"
            elif runtime == "auto" and read_decision(Path(cache_dir)) is None:
                # Decided on the first batch worth timing (an ingest), so opening the app or a
                # search never waits for the one-off export and measurement.
                self._pending_runtime = (runtime, Path(cache_dir))
                self.runtime_reason = "PyTorch until the first ingest batch measures ONNX Runtime against it"
            else:
                self._decide_runtime(runtime, Path(cache_dir))
        self._runtime_lock = threading.Lock()

    def _decide_runtime(self, mode: str, cache_dir: Path) -> None:
        from models.efficientnet import packaged_weights_path
        from models.efficientnet_onnx import choose_runtime

        try:
            decision, self._onnx = choose_runtime(self.cnn, packaged_weights_path(), cache_dir, mode=mode)
        except Exception as exc:
            if mode == "onnx":
                raise RuntimeError(f"PHOTOLORE_IMAGE_RUNTIME=onnx but ONNX Runtime cannot run the image model ({exc}); "
                                   "use auto or torch, or reinstall requirements.txt") from exc
            self.runtime_reason = f"PyTorch: ONNX Runtime could not be used ({exc})"
        else:
            self.runtime, self.runtime_reason = decision.runtime, decision.reason

    @property
    def device(self) -> str:
        return str(next(self.cnn.parameters()).device)

    @property
    def image_dim(self) -> int:
        return 1280

    @property
    def text_dim(self) -> int:
        return self.text_model.dim

    @property
    def facts_extractor(self):
        """The FactsExtractor, built once on first use (it loads the detectors); None when facts are off."""
        if isinstance(self._facts, str):
            with self._facts_lock:
                if isinstance(self._facts, str):
                    from core.facts.extract import FactsExtractor

                    self._facts = FactsExtractor()
        return self._facts

    def image_forward(self, x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, 3, 224, 224) preprocessed tensor -> (pooled features (B, 1280), logits (B, 1000),
        region logits (B, 4, 1000)) on the active runtime; both runtimes give all three."""
        if self._onnx is not None:
            return self._onnx(x.numpy())
        with self._torch.inference_mode():
            pooled, logits, regions = self.cnn.forward_with_regions(x.to(self.device))
        return pooled.float().cpu().numpy(), logits.float().cpu().numpy(), regions.float().cpu().numpy()

    def _forward(self, images: Sequence[Image.Image]):
        """(pooled (N, 1280), class probs (N, 1000), region probs (N, 4, 1000)) from one CNN pass."""
        from models.efficientnet import preprocess

        if self._pending_runtime is not None and len(images) >= _MIN_BATCH_TO_DECIDE:
            with self._runtime_lock:
                if self._pending_runtime is not None:
                    self._decide_runtime(*self._pending_runtime)
                    self._pending_runtime = None

        pooled, logits, region_logits = self.image_forward(preprocess(images))
        return pooled, _softmax(logits), _softmax(region_logits)

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
        return self.text_model.encode(list(texts), batch_size=64)

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
