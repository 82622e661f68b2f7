"""Deep retrieval: embeddings from the active vision-language backend, cosine ranking, and a
similarity threshold that decides what counts as a match.

Any object with `model_id` and `embed_images(images) -> (N, D) L2-normalised` works (the
VisionLanguageBackend protocol of models/base.py). `EfficientNetEmbedder` is the packaged CNN
on its own, for when no full backend is wanted.
"""
from __future__ import annotations

import hashlib
import io
import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image

from core.retrieval import Cancelled, Hit, noop_progress
from core.retrieval.classical import BuildReport, _item_id
from core.retrieval.storage import load_index, save_index

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DeepConfig:
    """Threshold and batching for deep retrieval."""

    threshold: float = 0.75  # cosine similarity at or above which a result is a match
    batch_size: int = 16

    def validate(self) -> "DeepConfig":
        """Raise ValueError naming the first bad parameter."""
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"deep config: threshold must lie in [-1, 1] (got {self.threshold})")
        if self.batch_size < 1:
            raise ValueError(f"deep config: batch_size must be >= 1 (got {self.batch_size})")
        return self


class EfficientNetEmbedder:
    """Pooled 1280-d EfficientNet-Lite0 features (packaged ImageNet weights) as an image embedder."""

    name = "efficientnet"
    text_space = "caption"

    def __init__(self, device: str = "cpu", image_size: int = 224):
        from models.efficientnet import load_efficientnet_lite0

        self.model = load_efficientnet_lite0(device)
        self.image_size = image_size
        self.model_id = f"efficientnet-lite0-imagenet@{image_size}"

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N, 1280) L2-normalised float32."""
        import torch

        from models.base import l2_normalise
        from models.efficientnet import preprocess

        device = next(self.model.parameters()).device
        with torch.inference_mode():
            pooled, _ = self.model(preprocess(list(images), size=self.image_size).to(device))
        return l2_normalise(pooled.float().cpu().numpy())


class DeepIndex:
    """Image embeddings of a gallery; `build`, `save`, `load`, `query`."""

    def __init__(self, config: DeepConfig, model_id: str, ids: list[str], labels: list[tuple[str, ...]], embeddings: np.ndarray, report: Optional[BuildReport] = None):
        self.config = config
        self.model_id = model_id
        self.ids = ids
        self.labels = labels
        self.embeddings = embeddings.astype(np.float32)  # (N, D), L2-normalised
        self.report = report or BuildReport(n_indexed=len(ids))
        self.backend = None  # set by build / attach; needed only to embed new queries

    @classmethod
    def build(cls, items: Sequence, backend, config: DeepConfig = DeepConfig(), *, on_progress: Callable[..., None] = noop_progress,
              cancel: Optional[threading.Event] = None, work_dir: Optional[Path] = None) -> "DeepIndex":
        """Embed `items` (objects with .id, .labels, .load()) or PIL images with `backend`.

        With `work_dir`, each batch's embeddings are kept so a cancelled build resumes.
        Unreadable images are skipped and listed in `.report.skipped`.
        """
        config.validate()
        items = list(items)
        if not items:
            raise ValueError("deep index: nothing to index (0 items)")
        total, bs = len(items), config.batch_size
        key = hashlib.sha256(json.dumps([backend.model_id, bs, [_item_id(it, i) for i, it in enumerate(items)]]).encode()).hexdigest()[:16]
        report = BuildReport()
        embs, ids, labels = [], [], []
        for start in range(0, total, bs):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"deep build cancelled after {start}/{total} images; rerun with the same work_dir to resume")
            cache = Path(work_dir) / f"emb-{key}-{start:08d}.npz" if work_dir else None
            meta_cache = cache.with_suffix(".json") if cache else None
            if cache is not None and cache.is_file() and meta_cache.is_file():
                with np.load(cache, allow_pickle=False) as z:
                    e = z["emb"]
                meta = json.loads(meta_cache.read_text())
                b_ids, b_labels, b_skipped = meta["ids"], [tuple(x) for x in meta["labels"]], [tuple(x) for x in meta["skipped"]]
            else:
                imgs, b_ids, b_labels, b_skipped = [], [], [], []
                for j, it in enumerate(items[start:start + bs]):
                    iid = _item_id(it, start + j)
                    try:
                        imgs.append(it if isinstance(it, Image.Image) else it.load())
                    except (ValueError, OSError) as exc:
                        b_skipped.append((iid, getattr(exc, "reason", str(exc))))
                        continue
                    b_ids.append(iid)
                    b_labels.append(tuple(getattr(it, "labels", ())))
                e = np.asarray(backend.embed_images(imgs), np.float32) if imgs else None
                if cache is not None and e is not None:
                    from core.images import atomic_write_bytes

                    buf = io.BytesIO()
                    np.savez(buf, emb=e)
                    atomic_write_bytes(cache, buf.getvalue())
                    atomic_write_bytes(meta_cache, json.dumps({"ids": b_ids, "labels": b_labels, "skipped": b_skipped}).encode())
            if e is not None:
                embs.append(e)
            ids += b_ids
            labels += b_labels
            report.skipped += b_skipped
            on_progress(min(start + bs, total), total, stage="embeddings", skipped=len(report.skipped))
        if not embs:
            raise ValueError(f"deep index: none of the {total} images could be read ({report.skipped[:3]} ...)")
        report.n_indexed = len(ids)
        index = cls(config, backend.model_id, ids, labels, np.concatenate(embs), report)
        index.backend = backend
        return index

    def attach(self, backend) -> "DeepIndex":
        """Use `backend` for queries; refuses one whose embedding space differs from the index's."""
        if backend.model_id != self.model_id:
            raise ValueError(f"this index was built with '{self.model_id}' but the backend is '{backend.model_id}'; rebuild the index or switch backend")
        self.backend = backend
        return self

    def _require_backend(self):
        if self.backend is None:
            raise RuntimeError("deep index has no backend attached; call .attach(backend) after load()")
        return self.backend

    def rank_embedding(self, embedding: np.ndarray, k: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        """(positions, scores) of the `k` most similar gallery items, best first."""
        scores = self.embeddings @ np.asarray(embedding, np.float32)
        k = len(scores) if k is None else min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        order = top[np.argsort(-scores[top], kind="stable")]
        return order, scores[order]

    def rank(self, image: Image.Image, k: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        """(positions, scores) for a query image."""
        return self.rank_embedding(self._require_backend().embed_images([image])[0], k)

    def _hits(self, pos: np.ndarray, scores: np.ndarray) -> list[Hit]:
        return [Hit(int(p), self.ids[p], float(s), bool(s >= self.config.threshold), self.labels[p]) for p, s in zip(pos, scores)]

    def query(self, image: Image.Image, k: int = 10) -> list[Hit]:
        """The `k` best gallery items; `Hit.match` says whether the score clears the threshold."""
        return self._hits(*self.rank(image, k))

    def query_text(self, text: str, k: int = 10) -> list[Hit]:
        """Text-to-image ranking; only for backends whose texts share the image space (CLIP)."""
        backend = self._require_backend()
        if getattr(backend, "text_space", None) != "image":
            raise ValueError(f"backend '{backend.model_id}' compares text with captions, not images; text-to-image deep retrieval needs CLIP")
        return self._hits(*self.rank_embedding(backend.embed_texts([text])[0], k))

    @property
    def nbytes(self) -> int:
        """Memory held by the index arrays."""
        return int(self.embeddings.nbytes)

    def save(self, directory: Path) -> Path:
        """Write `embeddings.npz` then `index.json` atomically."""
        meta = {"kind": "deep", "schema": SCHEMA_VERSION, "model_id": self.model_id, "config": asdict(self.config), "ids": self.ids,
                "labels": [list(l) for l in self.labels], "skipped": self.report.skipped}
        return save_index(directory, "embeddings.npz", {"embeddings": self.embeddings}, meta)

    @classmethod
    def load(cls, directory: Path, backend=None) -> "DeepIndex":
        """Reload a saved index (and attach `backend` when given)."""
        meta, arrays = load_index(directory, "embeddings.npz", "deep", SCHEMA_VERSION)
        emb = arrays["embeddings"]
        report = BuildReport(n_indexed=len(meta["ids"]), skipped=[tuple(x) for x in meta.get("skipped", [])])
        index = cls(DeepConfig(**meta["config"]), meta["model_id"], list(meta["ids"]), [tuple(l) for l in meta["labels"]], emb, report)
        if backend is not None:
            index.attach(backend)
        return index


BACKBONES = ("active", "efficientnet")


def make_deep_backend(backbone: str = "active", settings=None):
    """The embedder for deep retrieval: "active" = the app's backend (bundled or CLIP), or
    "efficientnet" = the packaged CNN's features alone (no text model loaded)."""
    from core.device import pick_device
    from core.settings import Settings

    settings = settings or Settings()
    if backbone == "active":
        from models.registry import create_backend

        return create_backend(settings)[0]
    if backbone == "efficientnet":
        return EfficientNetEmbedder(device=pick_device(settings.device))
    raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
