"""Train a captioner: teacher forcing, cross-entropy (optional label smoothing), AdamW with warmup
and cosine decay, gradient clipping, early stopping on validation loss, best and last checkpoints,
resume, cancel. CUDA runs with AMP; CPU in float32.

Speed trade-off: with augmentation off the frozen encoder runs once per image and its features
are cached (the loop then only trains the small decoder: fast on CPU). Augmentation (flips,
small rotations, colour jitter) changes pixels every step, so the encoder runs in the loop.
Horizontal flips swap the words "left" and "right" in the captions so the text stays true.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from core.captioning.datasets import CaptionItem, CaptionSet, Problem, split_by_image, split_from_ids
from core.captioning.vocab import Vocab

ProgressFn = Callable[..., None]


@dataclass
class TrainConfig:
    encoder: str = "effnet-lite0"
    image_size: int = 224
    finetune: bool = False  # also train the encoder's last block
    augment: bool = False  # flips, rotations, colour jitter; runs the encoder every step
    hflip: bool = True  # with augment; swaps left/right in the caption
    decoder: str = "transformer"  # or "lstm"
    preset: str = "small"  # nano | small | base; n_layer/n_head/n_embd override it
    n_layer: Optional[int] = None
    n_head: Optional[int] = None
    n_embd: Optional[int] = None
    dropout: float = 0.1
    max_len: int = 24
    min_freq: int = 1
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_frac: float = 0.05
    label_smoothing: float = 0.0
    grad_clip: float = 1.0
    patience: int = 4  # epochs without a better validation loss before stopping
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"
    bleu_images: int = 100  # validation images decoded (greedy) for the BLEU curve; 0 turns it off
    feature_batch_size: int = 32
    resnet_weights: Optional[str] = None
    time_limit_s: Optional[float] = None  # stop after the epoch that crosses this wall-clock budget
    cache_features: bool = True  # keep the frozen encoder's output in the run folder, so a resume skips it


@dataclass
class TrainResult:
    status: str  # finished | early_stopped | cancelled | time_limit
    out_dir: Path
    best_path: Optional[Path]
    last_path: Path
    history: list[dict]
    split_sizes: dict[str, int]
    problems: list[Problem] = field(default_factory=list)
    epochs_run: int = 0


def _cached_features(folder: Path, encoder_id: list, name: str, items: Sequence[CaptionItem], problems: list[Problem],
                     enabled: bool, compute: Callable[[], tuple]):
    """Features of `items` from `folder` when the same encoder saw the same images before, else computed and stored."""
    import hashlib
    import io
    import json

    import torch

    from core.images import atomic_write_bytes

    if not enabled:
        return compute()
    ident = [*encoder_id, [(it.image_id, str(it.path or "")) for it in items]]
    path = Path(folder) / f"{name}-{hashlib.sha1(json.dumps(ident).encode()).hexdigest()[:16]}.pt"
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            by_id = {it.image_id: it for it in items}
            problems.extend(Problem(*p) for p in saved["problems"])
            return [by_id[i] for i in saved["ids"]], saved["feats"]
        except Exception:  # a damaged cache is only a cache: recompute
            pass
    before = len(problems)
    n_items = len(items)
    kept, feats = compute()
    if feats is not None and len(kept) + (len(problems) - before) >= n_items:  # complete (not cancelled midway)
        for old in Path(folder).glob(f"{name}-*.pt"):
            old.unlink(missing_ok=True)
        buf = io.BytesIO()
        torch.save({"ids": [it.image_id for it in kept], "feats": feats,
                    "problems": [[p.source, p.line, p.message, p.text] for p in problems[before:]]}, buf)
        atomic_write_bytes(path, buf.getvalue())
    return kept, feats


def _readable(items: Sequence[CaptionItem], problems: list[Problem]) -> list[CaptionItem]:
    """Items whose image decodes; the others are reported and left out."""
    from core.images import ImageError

    kept = []
    for item in items:
        try:
            item.load()
            kept.append(item)
        except ImageError as exc:
            problems.append(Problem(str(item.path or item.image_id), None, f"image skipped: {exc.reason}"))
    return kept


def _swap_left_right(caption: str) -> str:
    swap = {"left": "right", "right": "left", "Left": "Right", "Right": "Left"}
    return " ".join(swap.get(w, w) for w in caption.split(" "))


def _augment(image, caption: str, rng, hflip: bool):
    """A random flip (caption follows), rotation within +-8 degrees and colour jitter."""
    from PIL import Image, ImageEnhance

    if hflip and rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        caption = _swap_left_right(caption)
    image = image.rotate(float(rng.uniform(-8, 8)), resample=Image.Resampling.BILINEAR, fillcolor=image.getpixel((0, 0)))
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(float(rng.uniform(0.8, 1.2)))
    return image, caption


def _lr_lambda(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return f


def _model_config(cfg: TrainConfig, vocab: Vocab, encoder):
    from models.captioner import PRESETS, CaptionerConfig

    if cfg.preset not in PRESETS:
        raise ValueError(f"unknown preset {cfg.preset!r}; choose one of {sorted(PRESETS)}")
    sizes = dict(PRESETS[cfg.preset])
    for k in ("n_layer", "n_head", "n_embd"):
        if getattr(cfg, k) is not None:
            sizes[k] = getattr(cfg, k)
    return CaptionerConfig(decoder=cfg.decoder, vocab_size=len(vocab), dropout=cfg.dropout, max_len=cfg.max_len,
                           feat_dim=encoder.feat_dim, n_feat=encoder.n_feat, encoder=cfg.encoder,
                           image_size=encoder.image_size, finetune=cfg.finetune, **sizes)


def train(data: CaptionSet, cfg: TrainConfig, out_dir: Path, *, resume: bool = True, clip_model: Any = None,
          on_progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> TrainResult:
    """Train on `data` into `out_dir` (best.pt, last.pt); resumes from last.pt when `resume`."""
    import numpy as np
    import torch
    from torch.nn import functional as F

    from core.captioning.decode import greedy_decode
    from core.captioning.evaluate import bleu_scores, teacher_forced_metrics
    from core.captioning.model import _load_head, extract_features, head_state, pair_tensors
    from core.device import pick_device
    from models.captioner import CaptionDecoder, Checkpoint, build_encoder, load_checkpoint, save_checkpoint

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    best_path, last_path = out_dir / "best.pt", out_dir / "last.pt"
    report = on_progress or (lambda *a, **k: None)
    cancel = cancel or threading.Event()
    problems = list(data.problems)
    device = pick_device(cfg.device)
    use_amp = device.startswith("cuda")
    torch.manual_seed(cfg.seed)

    prev: Optional[Checkpoint] = None
    if resume and last_path.is_file():
        prev = load_checkpoint(last_path, expect_encoder=cfg.encoder)
        if prev.config.decoder != cfg.decoder:
            raise ValueError(f"{last_path} holds a '{prev.config.decoder}' decoder, not '{cfg.decoder}'; "
                             "train into a new folder or pass resume=False")

    if prev is not None and prev.split:
        split = split_from_ids(data.items, prev.split)
    else:
        split = split_by_image(data.items, val=cfg.val_fraction, test=cfg.test_fraction, seed=cfg.seed)
    if not split["train"]:
        raise ValueError(f"dataset '{data.name}' has no usable training images; see the reported problems")
    vocab = Vocab(list(prev.vocab)) if prev else Vocab.build(
        (c for it in split["train"] for c in it.captions), min_freq=cfg.min_freq)

    # A resumed run keeps the encoder geometry it was trained with (the decoder's grid size depends on it).
    image_size, finetune = (prev.config.image_size, prev.config.finetune) if prev else (cfg.image_size, cfg.finetune)
    encoder = build_encoder(cfg.encoder, image_size=image_size, finetune=finetune, clip_model=clip_model,
                            resnet_weights=Path(cfg.resnet_weights) if cfg.resnet_weights else None).to(device)
    mcfg = prev.config if prev else _model_config(cfg, vocab, encoder)
    decoder = CaptionDecoder(mcfg).to(device)
    if prev:
        decoder.load_state_dict(prev.decoder_state)
        if prev.encoder_head_state:
            _load_head(encoder, prev.encoder_head_state)

    # Frozen trunk: compute once. The head runs in the loop only when it is fine-tuned.
    cached = not cfg.augment
    feats: dict[str, Any] = {}
    for name in ("train", "val"):
        if cached or name == "val":
            kept, f = _cached_features(
                out_dir / "features", [cfg.encoder, image_size, finetune], name, split[name], problems, cfg.cache_features,
                lambda: extract_features(encoder, split[name], device=device, batch_size=cfg.feature_batch_size,
                                         trunk_only=finetune, on_progress=lambda d, t, **k: report(d, t, split=name, **k),
                                         cancel=cancel, problems=problems))
            split[name], feats[name] = kept, f
    if not cached:
        split["train"] = _readable(split["train"], problems)  # the loop decodes them again every epoch
    split_ids = {k: [it.image_id for it in v] for k, v in split.items()}
    sizes = {k: len(v) for k, v in split.items()}
    if cancel.is_set():
        return TrainResult("cancelled", out_dir, best_path if best_path.is_file() else None, last_path,
                           list(prev.history) if prev else [], sizes, problems, prev.epoch if prev else 0)

    train_index, train_tokens = pair_tensors(split["train"], vocab, mcfg.max_len)
    val_index, val_tokens = pair_tensors(split["val"], vocab, mcfg.max_len)
    head = encoder.head if finetune else None

    params = [p for p in decoder.parameters()] + [p for p in encoder.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.98))
    steps_per_epoch = max(1, math.ceil(len(train_index) / cfg.batch_size))
    total_steps = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total_steps, int(cfg.warmup_frac * total_steps)))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history: list[dict] = list(prev.history) if prev else []
    start_epoch, step = (prev.epoch, prev.step) if prev else (0, 0)
    best_val = prev.best_val_loss if prev else float("inf")
    bad_epochs = prev.epochs_without_improvement if prev else 0
    if prev and prev.optimizer_state:
        opt.load_state_dict(prev.optimizer_state)
        sched.load_state_dict(prev.scheduler_state)

    def checkpoint(epoch: int) -> Checkpoint:
        return Checkpoint(config=mcfg, vocab=list(vocab.itos), decoder_state=decoder.state_dict(),
                          encoder_head_state=head_state(encoder) if finetune else None,
                          optimizer_state=opt.state_dict(), scheduler_state=sched.state_dict(), epoch=epoch, step=step,
                          best_val_loss=best_val, epochs_without_improvement=bad_epochs, history=history,
                          train_config=asdict(cfg), split=split_ids)

    if start_epoch >= cfg.epochs or (bad_epochs >= cfg.patience and history):
        status = "early_stopped" if bad_epochs >= cfg.patience else "finished"
        return TrainResult(status, out_dir, best_path if best_path.is_file() else None, last_path, history, sizes, problems, start_epoch)

    aug_rng = np.random.default_rng(cfg.seed + 1000 * start_epoch)
    t_start = time.perf_counter()
    status = "finished"
    epoch = start_epoch
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        decoder.train()
        order = torch.randperm(len(train_index), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
        loss_sum, n_batches = 0.0, 0
        for b in range(steps_per_epoch):
            if cancel.is_set():
                status = "cancelled"
                break
            rows = order[b * cfg.batch_size: (b + 1) * cfg.batch_size]
            img_idx = torch.as_tensor([train_index[r] for r in rows.tolist()])
            if cached:
                x = feats["train"][img_idx].to(device).float()
                tokens = train_tokens[rows].to(device)
            else:
                pairs = [_augment(split["train"][i].load(), vocab.decode(train_tokens[r].tolist()), aug_rng, cfg.hflip)
                         for i, r in zip(img_idx.tolist(), rows.tolist())]
                with torch.no_grad():
                    h = encoder.trunk(encoder.preprocess([p[0] for p in pairs]).to(device))
                x = h if finetune else encoder.head(h)
                ids = [vocab.encode(p[1], mcfg.max_len) for p in pairs]
                tokens = torch.tensor([r + [0] * (mcfg.max_len - len(r)) for r in ids], device=device)
            with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                f = encoder.head(x) if finetune else x
                logits = decoder(f, tokens[:, :-1])  # (B, T-1, V)
                loss = F.cross_entropy(logits.float().transpose(1, 2), tokens[:, 1:], ignore_index=vocab.pad_id,
                                       label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            loss_sum += loss.item()
            n_batches += 1
            report(b + 1, steps_per_epoch, phase="train", epoch=epoch + 1, epochs=cfg.epochs, loss=loss_sum / n_batches)
        loop_seconds = time.perf_counter() - t0
        if status == "cancelled":
            # Completed epochs are kept; the interrupted one is redone on resume.
            save_checkpoint(checkpoint(epoch), last_path)
            break

        val = {"loss": float("nan"), "token_acc": float("nan")}
        if val_index:
            val = teacher_forced_metrics(decoder, feats["val"][torch.as_tensor(val_index)], val_tokens, head=head)
        entry = {"epoch": epoch + 1, "train_loss": loss_sum / max(n_batches, 1), "val_loss": val["loss"],
                 "val_token_acc": val["token_acc"], "lr": sched.get_last_lr()[0],
                 "train_seconds": loop_seconds, "train_samples": min(len(train_index), n_batches * cfg.batch_size)}
        if cfg.bleu_images and split["val"]:
            n = min(cfg.bleu_images, len(split["val"]))
            f = feats["val"][:n].to(device).float()
            if head is not None:
                with torch.no_grad():
                    f = head(f).float()
            hyps = [vocab.decode(s) for s in greedy_decode(decoder, f, bos_id=vocab.bos_id, eos_id=vocab.eos_id, max_len=mcfg.max_len)]
            entry["val_bleu4"] = bleu_scores(hyps, [it.captions for it in split["val"][:n]])["bleu4"]
        improved = bool(val_index) and entry["val_loss"] < best_val
        entry["best"] = improved or not val_index
        entry["seconds"] = time.perf_counter() - t0
        history.append(entry)
        if entry["best"]:
            best_val = entry["val_loss"] if val_index else best_val
            bad_epochs = 0
            save_checkpoint(checkpoint(epoch + 1), best_path)
        else:
            bad_epochs += 1
        save_checkpoint(checkpoint(epoch + 1), last_path)
        report(epoch + 1, cfg.epochs, phase="epoch", **entry)
        if bad_epochs >= cfg.patience:
            status = "early_stopped"
            break
        if cfg.time_limit_s is not None and time.perf_counter() - t_start >= cfg.time_limit_s and epoch + 1 < cfg.epochs:
            status = "time_limit"
            break
    epochs_run = len(history)
    return TrainResult(status, out_dir, best_path if best_path.is_file() else None, last_path, history, sizes, problems, epochs_run)

