"""Caption metrics: corpus BLEU-1..4 (sacrebleu, all references per image), token accuracy, loss."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from core.captioning.datasets import CaptionItem


def bleu_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU-1..4 in [0, 1] with every reference of each image (sacrebleu, 13a tokenisation)."""
    from sacrebleu.metrics import BLEU

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    if not hypotheses:
        return {f"bleu{n}": 0.0 for n in range(1, 5)}
    n_refs = max(len(r) for r in references)
    # sacrebleu takes reference *streams*; images with fewer references pad with None (ignored).
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(n_refs)]
    out = {}
    for n in range(1, 5):
        metric = BLEU(max_ngram_order=n, effective_order=False)
        out[f"bleu{n}"] = float(metric.corpus_score(list(hypotheses), streams).score) / 100.0
    return out


def teacher_forced_metrics(decoder, feats, tokens, *, label_smoothing: float = 0.0, head=None,
                           batch_size: int = 256) -> dict[str, float]:
    """Mean cross-entropy and next-token accuracy over non-pad targets, fed the true previous tokens."""
    import torch
    from torch.nn import functional as F

    decoder.eval()
    device = next(decoder.parameters()).device
    loss_sum, correct, count = 0.0, 0, 0
    with torch.inference_mode():
        for s in range(0, tokens.shape[0], batch_size):
            f = feats[s: s + batch_size].to(device).float()
            if head is not None:
                f = head(f).float()
            t = tokens[s: s + batch_size].to(device)
            logits = decoder(f, t[:, :-1])  # (B, T-1, V)
            target = t[:, 1:]
            mask = target != 0
            loss = F.cross_entropy(logits.float().transpose(1, 2), target, ignore_index=0,
                                   label_smoothing=label_smoothing, reduction="sum")
            loss_sum += float(loss)
            correct += int(((logits.argmax(-1) == target) & mask).sum())
            count += int(mask.sum())
    return {"loss": loss_sum / max(count, 1), "token_acc": correct / max(count, 1)}


def evaluate_checkpoint(path: Path, items: Sequence[CaptionItem], *, device: str = "cpu", method: str = "beam",
                        beam_size: int = 3, length_penalty: float = 0.6, clip_model: Any = None,
                        resnet_weights: Optional[Path] = None, on_progress=None, n_examples: int = 5) -> dict[str, Any]:
    """BLEU-1..4, token accuracy and loss of a checkpoint on `items` (use the held-out test split)."""
    import torch

    from core.captioning.decode import decode
    from core.captioning.model import extract_features, load_trained, pair_tensors

    model = load_trained(path, device=device, clip_model=clip_model, resnet_weights=resnet_weights)
    problems: list = []
    kept, feats = extract_features(model.encoder, list(items), device=device, on_progress=on_progress, problems=problems)
    if feats is None:
        raise ValueError("no image of the evaluation set could be read; see the reported problems")
    hyps: list[str] = []
    for s in range(0, len(kept), 64):
        ids = decode(model.decoder, feats[s: s + 64].to(device).float(), bos_id=model.vocab.bos_id, eos_id=model.vocab.eos_id,
                     max_len=model.config.max_len, method=method, beam_size=beam_size, length_penalty=length_penalty)
        hyps.extend(model.vocab.decode(x) for x in ids)
    refs = [it.captions for it in kept]
    index, tokens = pair_tensors(kept, model.vocab, model.config.max_len)
    tf = teacher_forced_metrics(model.decoder, feats[torch.as_tensor(index)], tokens)
    return {
        **bleu_scores(hyps, refs), "token_acc": tf["token_acc"], "loss": tf["loss"], "n_images": len(kept),
        "method": method, "beam_size": beam_size if method == "beam" else 1,
        "examples": [{"image": it.image_id, "caption": h, "references": it.captions} for it, h in zip(kept[:n_examples], hyps)],
        "problems": [str(p) for p in problems],
    }


def evaluate_split(path: Path, data, *, split: str = "test", **kwargs) -> dict[str, Any]:
    """Evaluate a checkpoint on one split of `data` (a CaptionSet), using the split stored in the checkpoint."""
    from core.captioning.datasets import split_from_ids
    from models.captioner import load_checkpoint

    ckpt = load_checkpoint(Path(path))
    items = list(data.items) if split == "all" else split_from_ids(data.items, ckpt.split)[split]
    if not items:
        raise ValueError(f"the {split} split of dataset '{data.name}' is empty for checkpoint {Path(path).name}; "
                         "was it trained on this dataset?")
    return {"checkpoint": str(path), "split": split, **evaluate_checkpoint(path, items, **kwargs)}
