"""Glue between datasets and the captioner: image features, caption token tensors, and a loaded,
ready-to-caption model. Training and evaluation both build their inputs here."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from core.captioning.datasets import CaptionItem, Problem
from core.captioning.vocab import Vocab

ProgressFn = Callable[..., None]


def extract_features(encoder, items: Sequence[CaptionItem], *, device: str = "cpu", batch_size: int = 32,
                     trunk_only: bool = False, max_pixels: int = 64_000_000,
                     on_progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None,
                     problems: Optional[list[Problem]] = None):
    """Run the frozen encoder once per image -> (kept items, (M, ...) float16 CPU tensor).

    Images that fail to decode are reported in `problems` and left out; the rest go on.
    `trunk_only` caches the frozen trunk's output so a fine-tuned head can run on top of it.
    """
    import torch

    from core.images import ImageError

    kept: list[CaptionItem] = []
    chunks = []
    total = len(items)
    encoder = encoder.to(device)
    for start in range(0, total, batch_size):
        if cancel is not None and cancel.is_set():
            break
        batch_items, images = [], []
        for item in items[start: start + batch_size]:
            try:
                images.append(item.load(max_pixels))
                batch_items.append(item)
            except ImageError as exc:
                if problems is not None:
                    problems.append(Problem(str(item.path or item.image_id), None, f"image skipped: {exc.reason}"))
        if images:
            x = encoder.preprocess(images).to(device)
            with torch.inference_mode():
                h = encoder.trunk(x) if trunk_only else encoder(x)
            chunks.append(h.to("cpu", torch.float16))
            kept.extend(batch_items)
        if on_progress is not None:
            on_progress(min(start + batch_size, total), total, phase="features")
    if not chunks:
        return kept, None
    return kept, torch.cat(chunks)


def pair_tensors(items: Sequence[CaptionItem], vocab: Vocab, max_len: int):
    """One row per (image, caption): image index (M,) and padded token ids (M, max_len)."""
    import torch

    index, rows = [], []
    for i, item in enumerate(items):
        for cap in item.captions:
            ids = vocab.encode(cap, max_len)
            rows.append(ids + [vocab.pad_id] * (max_len - len(ids)))
            index.append(i)
    return index, torch.tensor(rows, dtype=torch.long).view(-1, max_len)


@dataclass
class TrainedModel:
    """A checkpoint loaded with its encoder: `caption(images)` works on PIL images."""

    encoder: Any
    decoder: Any
    vocab: Vocab
    config: Any
    path: Optional[Path] = None

    @property
    def device(self) -> str:
        return str(next(self.decoder.parameters()).device)

    def features(self, images: Sequence[Any]):
        import torch

        with torch.inference_mode():
            return self.encoder(self.encoder.preprocess(images).to(self.device))  # (B, N, F)

    def caption(self, images: Sequence[Any], *, method: str = "beam", beam_size: int = 3,
                length_penalty: float = 0.6, batch_size: int = 32) -> list[str]:
        """One caption per PIL image."""
        from core.captioning.decode import decode

        out: list[str] = []
        for start in range(0, len(images), batch_size):
            feats = self.features(list(images[start: start + batch_size])).float()
            ids = decode(self.decoder, feats, bos_id=self.vocab.bos_id, eos_id=self.vocab.eos_id,
                         max_len=self.config.max_len, method=method, beam_size=beam_size, length_penalty=length_penalty)
            out.extend(self.vocab.decode(seq) for seq in ids)
        return out


def load_trained(path: Path, *, device: str = "cpu", clip_model: Any = None,
                 resnet_weights: Optional[Path] = None, expect_encoder: Optional[str] = None) -> TrainedModel:
    """Load a checkpoint and build its encoder; errors say which encoder or file is missing."""

    from models.captioner import CaptionDecoder, build_encoder, load_checkpoint

    ckpt = load_checkpoint(Path(path), expect_encoder=expect_encoder)
    cfg = ckpt.config
    if resnet_weights is None and ckpt.train_config.get("resnet_weights"):
        resnet_weights = Path(ckpt.train_config["resnet_weights"])
    encoder = build_encoder(cfg.encoder, image_size=cfg.image_size, finetune=cfg.finetune,
                            clip_model=clip_model, resnet_weights=resnet_weights)
    if ckpt.encoder_head_state:
        _load_head(encoder, ckpt.encoder_head_state)
    if getattr(encoder, "feat_dim", cfg.feat_dim) != cfg.feat_dim:
        raise ValueError(f"checkpoint {Path(path).name} expects {cfg.feat_dim}-d features but encoder '{cfg.encoder}' "
                         f"gives {encoder.feat_dim}-d; use the encoder it was trained with")
    decoder = CaptionDecoder(cfg)
    decoder.load_state_dict(ckpt.decoder_state)
    return TrainedModel(encoder.to(device).eval(), decoder.to(device).eval(), Vocab(list(ckpt.vocab)), cfg, Path(path))


def head_state(encoder) -> dict:
    """State of the fine-tuned encoder head only (the frozen trunk is rebuilt from its package)."""
    return {f"{i}.{k}": v for i, m in enumerate(encoder.head_modules()) for k, v in m.state_dict().items()}


def _load_head(encoder, state: dict) -> None:
    for i, m in enumerate(encoder.head_modules()):
        prefix = f"{i}."
        m.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
