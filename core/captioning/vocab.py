"""Tokenizer and vocabulary built from the training captions."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)

# Words (with inner apostrophes / hyphens) and single punctuation marks, lower-cased.
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-case word and punctuation tokens: 'A dog, running.' -> ['a', 'dog', ',', 'running', '.']."""
    return _TOKEN_RE.findall(text.lower())


def detokenize(tokens: Sequence[str]) -> str:
    """Tokens joined by spaces; the inverse of `tokenize` up to spacing around punctuation."""
    return " ".join(tokens)


@dataclass
class Vocab:
    """Index <-> token maps; ids 0..3 are the special tokens, so padding is always 0."""

    itos: list[str] = field(default_factory=lambda: list(SPECIALS))

    def __post_init__(self) -> None:
        if tuple(self.itos[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with the special tokens {SPECIALS}")
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, captions: Iterable[str], *, min_freq: int = 1, max_size: int | None = None) -> "Vocab":
        """Tokens seen at least `min_freq` times, most frequent first (ties alphabetical, so builds are reproducible)."""
        counts = Counter(t for c in captions for t in tokenize(c))
        kept = sorted((t for t, n in counts.items() if n >= min_freq and t not in SPECIALS), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max(0, max_size - len(SPECIALS))]
        return cls(list(SPECIALS) + kept)

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def bos_id(self) -> int:
        return 1

    @property
    def eos_id(self) -> int:
        return 2

    @property
    def unk_id(self) -> int:
        return 3

    def encode(self, text: str, max_len: int) -> list[int]:
        """<bos> tokens <eos>, cut to `max_len` ids (the <eos> is kept when cutting)."""
        ids = [self.stoi.get(t, self.unk_id) for t in tokenize(text)][: max_len - 2]
        return [self.bos_id, *ids, self.eos_id]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> sentence, stopping at <eos> and dropping other special tokens."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.pad_id, self.bos_id):
                continue
            out.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
        return detokenize(out)
