"""The CLIP backend (open_clip): one joint space for images and texts.

Weights are never fetched implicitly. `local_weights()` only looks on disk; `pull()` is the one
function that downloads, and only the CLI's `models pull` calls it. Tests use the tiny configs in
models/configs/ with random weights (`pretrained=None`), which exercise every code path.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from models.base import Description, EncodedBatch, caption_from_tags, l2_normalise

CONFIG_DIR = Path(__file__).parent / "configs"
_HF_DEFAULT = "open_clip_pytorch_model.bin"
_HF_SAFE = "open_clip_model.safetensors"


def _register_configs() -> None:
    import open_clip

    if "PhotoLore-Tiny-ViT" not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)


@dataclass(frozen=True)
class ClipSpec:
    """Which CLIP to use: an architecture plus a pretrained tag, a local checkpoint, or neither (random)."""

    model: str = "ViT-B-32"
    pretrained: Optional[str] = "openai"
    checkpoint: Optional[Path] = None
    cache_dir: Optional[Path] = None

    @property
    def model_id(self) -> str:
        if self.checkpoint is not None:
            tag = "ckpt-" + Path(self.checkpoint).stem
        else:
            tag = self.pretrained or "random"
        return _slug(f"clip-{self.model}-{tag}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:120]


def pretrained_cfg(spec: ClipSpec) -> dict:
    import open_clip

    _register_configs()
    if spec.model not in open_clip.list_models():
        raise ValueError(f"unknown CLIP architecture '{spec.model}'; see `python -m core models list`")
    return open_clip.get_pretrained_cfg(spec.model, spec.pretrained) if spec.pretrained else {}


def _open_clip_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("open_clip_torch")
    except PackageNotFoundError:  # pragma: no cover - install problem
        return "missing"


def weight_sources(spec: ClipSpec) -> tuple[str, str]:
    """(hf_hub, url): where open_clip's table says the weights of `spec` come from.

    The table lives in open_clip, and importing open_clip imports torch: about 4 s and several
    hundred MB on every start of the app or the CLI, only to learn that the weights are not there
    (the common case) - and an ingest on ONNX Runtime would never need torch otherwise. So the answer
    is kept in `cache_dir`/pretrained-sources.json, keyed by open_clip's version, architecture and
    tag; open_clip is imported only the first time a key is asked (or when the cache is unwritable).
    An unknown architecture is remembered too, and raises the same ValueError as open_clip would.
    """
    key = f"{_open_clip_version()}/{spec.model}/{spec.pretrained}"
    path = Path(spec.cache_dir) / "pretrained-sources.json" if spec.cache_dir else None
    table: dict = {}
    if path is not None:
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            table = {}  # missing or damaged: rebuilt below
        if not isinstance(table, dict):
            table = {}
    entry = table.get(key)
    if not (isinstance(entry, dict) and {"known", "hf_hub", "url"} <= entry.keys()):
        try:
            cfg = pretrained_cfg(spec)
            entry = {"known": True, "hf_hub": str(cfg.get("hf_hub", "") or ""), "url": str(cfg.get("url", "") or "")}
        except ValueError:
            entry = {"known": False, "hf_hub": "", "url": ""}
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps({**table, key: entry}, indent=1, sort_keys=True), encoding="utf-8")
                os.replace(tmp, path)  # atomic: a reader sees the old table or the new one
            except OSError:
                pass  # a read-only data dir only costs the open_clip import next time
    if not entry["known"]:
        raise ValueError(f"unknown CLIP architecture '{spec.model}'; see `python -m core models list`")
    return entry["hf_hub"], entry["url"]


def local_weights(spec: ClipSpec) -> Optional[Path]:
    """The weights file for `spec` if it is already on disk; never touches the network (nor imports torch
    once `weight_sources` has seen this spec)."""
    if spec.checkpoint is not None:
        return Path(spec.checkpoint) if Path(spec.checkpoint).is_file() else None
    if not spec.pretrained:
        return None
    hub, url = weight_sources(spec)
    cache = str(spec.cache_dir) if spec.cache_dir else None
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(hub)
        filename = filename or _HF_DEFAULT
        names = ([_HF_SAFE] if filename == _HF_DEFAULT else []) + [filename]
        for name in names:
            found = try_to_load_from_cache(repo, name, cache_dir=cache)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    if url:
        root = Path(spec.cache_dir) if spec.cache_dir else Path.home() / ".cache" / "clip"
        candidate = root / os.path.basename(url)
        if candidate.is_file():
            return candidate
    return None


def pull(spec: ClipSpec) -> Path:
    """Download the weights for `spec` into its cache dir (explicit user action; shows tqdm bars)."""
    import open_clip

    cfg = pretrained_cfg(spec)
    if not cfg:
        raise ValueError(f"'{spec.model}' has no pretrained tag '{spec.pretrained}'; see `python -m core models list`")
    Path(spec.cache_dir or ".").mkdir(parents=True, exist_ok=True)
    path = open_clip.download_pretrained(cfg, cache_dir=str(spec.cache_dir) if spec.cache_dir else None)
    if not path:
        raise RuntimeError(f"open_clip returned no file for {spec.model}/{spec.pretrained}")
    return Path(path)


class ClipBackend:
    name = "clip"
    text_space = "image"

    def __init__(self, spec: ClipSpec, device: str = "cpu", *, allow_random: bool = False, top_k_tags: int = 5):
        import open_clip
        import torch

        self._torch = torch
        self.spec = spec
        _register_configs()
        cfg = pretrained_cfg(spec) if spec.pretrained else {}
        weights = local_weights(spec)
        if weights is None and not allow_random:
            raise FileNotFoundError(
                f"no local weights for CLIP {spec.model}/{spec.pretrained or spec.checkpoint}; "
                "run `python -m core models pull` or set PHOTOLORE_CLIP_CHECKPOINT to a file"
            )
        kwargs = {}
        if cfg:
            # Loading from a file path skips open_clip's per-tag settings; apply them ourselves.
            kwargs = dict(image_mean=cfg.get("mean"), image_std=cfg.get("std"),
                          image_interpolation=cfg.get("interpolation"), image_resize_mode=cfg.get("resize_mode"),
                          force_quick_gelu=bool(cfg.get("quick_gelu", False)))
            kwargs = {k: v for k, v in kwargs.items() if v is not None}
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.model, pretrained=str(weights) if weights else None, device=device, **kwargs
        )
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(spec.model)
        self.model_id = spec.model_id
        self.top_k_tags = top_k_tags
        self._class_embeddings: Optional[np.ndarray] = None
        self.dim = int(self.embed_texts(["a photo"]).shape[1])

    @property
    def device(self) -> str:
        return str(next(self.model.parameters()).device)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        batch = self._torch.stack([self.preprocess(im) for im in images]).to(self.device)
        with self._torch.inference_mode():
            feats = self.model.encode_image(batch)
        return l2_normalise(feats.float().cpu().numpy())

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        tokens = self.tokenizer(list(texts)).to(self.device)
        with self._torch.inference_mode():
            feats = self.model.encode_text(tokens)
        return l2_normalise(feats.float().cpu().numpy())

    def class_embeddings(self) -> np.ndarray:
        """Zero-shot ImageNet prompts, embedded once per backend instance."""
        if self._class_embeddings is None:
            from models.efficientnet import imagenet_categories

            prompts = [f"a photo of a {c}." for c in imagenet_categories()]
            self._class_embeddings = np.concatenate([self.embed_texts(prompts[i:i + 128]) for i in range(0, len(prompts), 128)])
        return self._class_embeddings

    def _describe_embeddings(self, image_emb: np.ndarray) -> list[Description]:
        from models.efficientnet import imagenet_categories

        cats = imagenet_categories()
        logits = 100.0 * image_emb @ self.class_embeddings().T
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        out = []
        for row in probs:
            idx = np.argsort(-row)[: self.top_k_tags]
            tags = [(cats[i], float(row[i])) for i in idx]
            out.append(Description(caption=caption_from_tags(tags), tags=tags))
        return out

    def describe(self, images: Sequence[Image.Image]) -> list[Description]:
        return self._describe_embeddings(self.embed_images(images)) if images else []

    def encode(self, images: Sequence[Image.Image]) -> EncodedBatch:
        emb = self.embed_images(images)
        return EncodedBatch(emb, self._describe_embeddings(emb) if len(emb) else [], None)
