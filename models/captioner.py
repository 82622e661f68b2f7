"""A trainable image captioner: a frozen pretrained image encoder + a small caption decoder.

    image -> encoder trunk (frozen) -> encoder head (frozen, or fine-tuned: its last block)
          -> grid features (B, N, F) -> projection to the decoder width (B, N, C)
          -> decoder: Transformer (cross-attends to the N grid cells) or LSTM (Show & Tell style,
             initialised from and fed with a summary of the whole grid) -> next-token logits.

Because the trunk is frozen, its output can be computed once per image and cached; only the
decoder (and, when fine-tuning, the encoder head) runs in the training loop. Data augmentation
changes the pixels every epoch, so it forces the encoder to run at every step (much slower on CPU).

Encoders come from a small registry: "effnet-lite0" (weights ship in a package, the default),
"clip" (the image tower of an open_clip model the caller already has weights for) and
"resnet18" (only from a local weights file: torchvision would download them).
"""
from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

import torch
from torch import nn

DecoderKind = Literal["transformer", "lstm"]
CHECKPOINT_VERSION = 1


# ----------------------------------------------------------------------------- encoders

class ImageEncoder(nn.Module):
    """trunk (always frozen) -> head (frozen unless fine-tuned) -> (B, N, F) grid features."""

    name: str = "encoder"
    feat_dim: int = 0
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __init__(self, image_size: int, finetune: bool = False):
        super().__init__()
        self.image_size = image_size
        self.finetune = finetune

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def head(self, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def head_modules(self) -> list[nn.Module]:
        return []

    def freeze(self) -> "ImageEncoder":
        """Freeze everything but the head when fine-tuning; BatchNorm statistics always stay frozen."""
        for p in self.parameters():
            p.requires_grad_(False)
        if self.finetune:
            for m in self.head_modules():
                for p in m.parameters():
                    p.requires_grad_(True)
        return self.eval()

    def train(self, mode: bool = True) -> "ImageEncoder":
        # Tiny caption batches would wreck pretrained BatchNorm statistics: keep eval mode.
        return super().train(False)

    def preprocess(self, images: Sequence[Any]) -> torch.Tensor:
        """PIL RGB images -> (B, 3, S, S) normalised (shorter side resized, centre crop)."""
        import numpy as np
        from PIL import Image

        s = self.image_size
        batch = np.empty((len(images), s, s, 3), dtype=np.uint8)
        for i, img in enumerate(images):
            w, h = img.size
            scale = s / min(w, h)
            nw, nh = max(s, round(w * scale)), max(s, round(h * scale))
            img = img.convert("RGB").resize((nw, nh), Image.Resampling.BILINEAR)
            left, top = (nw - s) // 2, (nh - s) // 2
            batch[i] = np.asarray(img.crop((left, top, left + s, top + s)), dtype=np.uint8)
        t = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)
        return (t - torch.tensor(self.mean).view(1, 3, 1, 1)) / torch.tensor(self.std).view(1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    @property
    def n_feat(self) -> int:
        """Number of grid cells N the encoder emits for its image size."""
        with torch.no_grad():
            dev = next(self.parameters()).device
            return int(self(torch.zeros(1, 3, self.image_size, self.image_size, device=dev)).shape[1])


class EffNetLite0Encoder(ImageEncoder):
    """The packaged EfficientNet-Lite0; grid = last feature map (S/32 x S/32 cells, 1280 channels)."""

    name = "effnet-lite0"
    feat_dim = 1280

    def __init__(self, image_size: int = 224, finetune: bool = False):
        super().__init__(image_size, finetune)
        from models.efficientnet import MEAN, STD, load_efficientnet_lite0

        self.mean, self.std = MEAN, STD
        self.cnn = load_efficientnet_lite0("cpu")

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cnn
        x = c.act(c._bn0(c._conv_stem(x)))
        for block in c._blocks[:-1]:
            x = block(x)
        return x  # (B, 192, S/32, S/32)

    def head_modules(self) -> list[nn.Module]:
        c = self.cnn
        return [c._blocks[-1], c._conv_head, c._bn1]

    def head(self, h: torch.Tensor) -> torch.Tensor:
        c = self.cnn
        x = c.act(c._bn1(c._conv_head(c._blocks[-1](h))))  # (B, 1280, h, w)
        return x.flatten(2).transpose(1, 2)  # (B, N, 1280)


class ResNet18Encoder(ImageEncoder):
    """torchvision ResNet-18 loaded from a local state-dict file; grid = layer4 output (512 channels)."""

    name = "resnet18"
    feat_dim = 512
    mean = (0.485, 0.456, 0.406)
    std = (0.229, 0.224, 0.225)

    def __init__(self, weights_path: Path, image_size: int = 224, finetune: bool = False):
        super().__init__(image_size, finetune)
        from torchvision.models import resnet18

        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"ResNet-18 weights not found at {path}; pass the path of a local resnet18 state-dict (.pth)")
        self.net = resnet18(weights=None)
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.net.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state, strict=True)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        return n.layer3(n.layer2(n.layer1(x)))

    def head_modules(self) -> list[nn.Module]:
        return [self.net.layer4]

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.net.layer4(h).flatten(2).transpose(1, 2)  # (B, N, 512)


class ClipImageEncoder(ImageEncoder):
    """The image tower of an open_clip model; one token per image (its pooled embedding)."""

    name = "clip"

    def __init__(self, clip_model: nn.Module, finetune: bool = False):
        if finetune:
            raise ValueError("fine-tuning is not supported for the CLIP encoder; train with finetune off")
        visual = clip_model.visual
        size = visual.image_size
        super().__init__(int(size[0] if isinstance(size, (tuple, list)) else size), False)
        self.visual = visual
        self.feat_dim = int(getattr(visual, "output_dim", None) or clip_model.text_projection.shape[1])
        self.mean = tuple(getattr(visual, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073))
        self.std = tuple(getattr(visual, "image_std", None) or (0.26862954, 0.26130258, 0.27577711))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x).unsqueeze(1)  # (B, 1, D)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return h


ENCODERS = ("effnet-lite0", "clip", "resnet18")


def build_encoder(name: str = "effnet-lite0", *, image_size: Optional[int] = None, finetune: bool = False,
                  clip_model: Optional[nn.Module] = None, resnet_weights: Optional[Path] = None) -> ImageEncoder:
    """The encoder registry; raises a clear error when the weights a choice needs are not at hand."""
    if name == "effnet-lite0":
        enc: ImageEncoder = EffNetLite0Encoder(image_size or 224, finetune)
    elif name == "clip":
        if clip_model is None:
            raise ValueError("encoder 'clip' needs an open_clip model with weights (a ClipBackend); none was given")
        enc = ClipImageEncoder(getattr(clip_model, "model", clip_model), finetune)
    elif name == "resnet18":
        if resnet_weights is None:
            raise ValueError("encoder 'resnet18' needs a local weights file (no download happens); pass resnet_weights")
        enc = ResNet18Encoder(Path(resnet_weights), image_size or 224, finetune)
    else:
        raise ValueError(f"unknown encoder {name!r}; choose one of {ENCODERS}")
    return enc.freeze()


# ----------------------------------------------------------------------------- decoders

@dataclass
class CaptionerConfig:
    decoder: DecoderKind = "transformer"
    vocab_size: int = 0
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.1
    max_len: int = 24  # token positions, <bos> and <eos> included
    feat_dim: int = 1280
    n_feat: int = 49  # grid cells per image
    encoder: str = "effnet-lite0"
    image_size: int = 224
    finetune: bool = False


# Tiny presets keep tests in seconds; "small" is the CPU default.
PRESETS: dict[str, dict[str, int]] = {
    "nano": dict(n_layer=1, n_head=2, n_embd=32),
    "small": dict(n_layer=2, n_head=4, n_embd=128),
    "base": dict(n_layer=3, n_head=8, n_embd=256),
}


class TransformerCaptionDecoder(nn.Module):
    """Causal self-attention over the caption, cross-attention over the projected grid cells."""

    def __init__(self, cfg: CaptionerConfig):
        super().__init__()
        C = cfg.n_embd
        self.proj = nn.Sequential(nn.LayerNorm(cfg.feat_dim), nn.Linear(cfg.feat_dim, C))
        self.mem_pos = nn.Parameter(torch.zeros(1, cfg.n_feat, C))  # where each grid cell is
        self.tok = nn.Embedding(cfg.vocab_size, C)
        self.pos = nn.Embedding(cfg.max_len, C)
        self.drop = nn.Dropout(cfg.dropout)
        layer = nn.TransformerDecoderLayer(C, cfg.n_head, 4 * C, cfg.dropout, activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerDecoder(layer, cfg.n_layer)
        self.ln_f = nn.LayerNorm(C)
        self.head = nn.Linear(C, cfg.vocab_size)
        nn.init.normal_(self.mem_pos, std=0.02)

    def memory(self, feats: torch.Tensor) -> torch.Tensor:
        return self.proj(feats) + self.mem_pos  # (B, N, F) -> (B, N, C)

    def forward(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        B, T = tokens.shape
        x = self.drop(self.tok(tokens) + self.pos(torch.arange(T, device=tokens.device)))  # (B, T, C)
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=tokens.device), diagonal=1)
        x = self.blocks(x, memory, tgt_mask=causal, tgt_is_causal=True)  # (B, T, C)
        return self.head(self.ln_f(x))  # (B, T, V)


class LSTMCaptionDecoder(nn.Module):
    """The classic CNN-RNN decoder: the image summary initialises the LSTM and is fed at every step."""

    def __init__(self, cfg: CaptionerConfig):
        super().__init__()
        C, self.n_layer = cfg.n_embd, cfg.n_layer
        self.proj = nn.Sequential(nn.LayerNorm(cfg.feat_dim), nn.Linear(cfg.feat_dim, C))
        # Flattening keeps which cell holds what: mean pooling would lose "top left" vs "bottom right".
        self.summary = nn.Sequential(nn.Flatten(1), nn.Linear(cfg.n_feat * C, C), nn.Tanh())
        self.init_h = nn.Linear(C, cfg.n_layer * C)
        self.init_c = nn.Linear(C, cfg.n_layer * C)
        self.tok = nn.Embedding(cfg.vocab_size, C)
        self.drop = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(2 * C, C, cfg.n_layer, batch_first=True, dropout=cfg.dropout if cfg.n_layer > 1 else 0.0)
        self.head = nn.Linear(C, cfg.vocab_size)

    def memory(self, feats: torch.Tensor) -> torch.Tensor:
        return self.summary(self.proj(feats))  # (B, N, F) -> (B, C)

    def forward(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        B, T = tokens.shape
        C = memory.shape[-1]
        h0 = torch.tanh(self.init_h(memory)).view(B, self.n_layer, C).transpose(0, 1).contiguous()  # (L, B, C)
        c0 = self.init_c(memory).view(B, self.n_layer, C).transpose(0, 1).contiguous()
        x = torch.cat([self.tok(tokens), memory.unsqueeze(1).expand(B, T, C)], dim=-1)  # (B, T, 2C)
        out, _ = self.lstm(self.drop(x), (h0, c0))  # (B, T, C)
        return self.head(self.drop(out))  # (B, T, V)


class CaptionDecoder(nn.Module):
    """The trainable part: feature projection + decoder of the chosen kind."""

    def __init__(self, cfg: CaptionerConfig):
        super().__init__()
        if cfg.vocab_size <= 4:
            raise ValueError("vocab_size must be set from the built vocabulary (more than the 4 special tokens)")
        if cfg.decoder == "transformer":
            if cfg.n_embd % cfg.n_head:
                raise ValueError(f"n_embd ({cfg.n_embd}) must be divisible by n_head ({cfg.n_head})")
            self.net: nn.Module = TransformerCaptionDecoder(cfg)
        elif cfg.decoder == "lstm":
            self.net = LSTMCaptionDecoder(cfg)
        else:
            raise ValueError(f"unknown decoder {cfg.decoder!r}; choose 'transformer' or 'lstm'")
        self.cfg = cfg

    def memory(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net.memory(feats)

    def forward(self, feats: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, F) features, (B, T) input tokens -> (B, T, V) next-token logits."""
        return self.net(self.net.memory(feats), tokens)

    def logits_from_memory(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(memory, tokens)


# ----------------------------------------------------------------------------- checkpoints

@dataclass
class Checkpoint:
    """Everything needed to resume training or to caption: one .pt file."""

    config: CaptionerConfig
    vocab: list[str]
    decoder_state: dict
    encoder_head_state: Optional[dict] = None  # only when the encoder head was fine-tuned
    optimizer_state: Optional[dict] = None
    scheduler_state: Optional[dict] = None
    epoch: int = 0
    step: int = 0
    best_val_loss: float = float("inf")
    epochs_without_improvement: int = 0
    history: list[dict] = field(default_factory=list)
    train_config: dict = field(default_factory=dict)
    split: dict = field(default_factory=dict)  # image ids per split, so eval uses the same test set


def save_checkpoint(ckpt: Checkpoint, path: Path) -> Path:
    """Write atomically (temp file + rename): a crash never leaves a half-written checkpoint."""
    from core.images import atomic_write_bytes

    payload = asdict(ckpt)
    payload["config"] = asdict(ckpt.config)
    payload["version"] = CHECKPOINT_VERSION
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def load_checkpoint(path: Path, *, expect_encoder: Optional[str] = None) -> Checkpoint:
    """Read a checkpoint; a mismatched encoder or an unreadable file gives an error saying what to do."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no captioner checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable captioner checkpoint ({type(exc).__name__}: {exc}); train again or pick another file") from None
    if not isinstance(payload, dict) or "config" not in payload or "decoder_state" not in payload:
        raise ValueError(f"{path} is not a captioner checkpoint (missing config / weights)")
    payload.pop("version", None)
    payload["config"] = CaptionerConfig(**payload["config"])
    ckpt = Checkpoint(**payload)
    if expect_encoder is not None and ckpt.config.encoder != expect_encoder:
        raise ValueError(
            f"checkpoint {path.name} was trained on encoder '{ckpt.config.encoder}', not '{expect_encoder}'; "
            f"use encoder '{ckpt.config.encoder}' or train a new captioner"
        )
    return ckpt


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
