"""Embeddings of facts terms kept between runs, so each new process does not embed the same words again.

A facts vector (core.facts.vector) is a weighted sum of text embeddings of its terms: object words
("cat", "furniture"), fixed phrases ("a person", "the sky", "outdoors") and a few per-photo ones
(the classifier's label phrase, the text read). The words come from a fixed vocabulary, so a
library embeds the same few hundred of them in every process: on the 72 eval photos a fresh
process embedded 509 terms, 1.9 ms each (~20 ms a photo, more than the face detector;
bench/bench_facts_cost.py). This cache is the in-memory dict facts_vectors already used, plus a
file in the data dir's models folder, loaded once and rewritten (atomically) after every
SAVE_EVERY new terms. It holds the embeddings of one text model and runtime (`model_key`); a file
made by another is ignored, as is an unreadable one (a note in the log: it is only a cache).
Terms made from one photo alone (its label phrase, its OCR text: core.facts.vector.per_photo_terms)
are never written to it: they are rarely seen again, and the text is the photo's content, so the
file stays near the vocabulary's size (~1,800 terms, ~3 MB) however large the library.
"""
from __future__ import annotations

import io
import logging
import threading
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

log = logging.getLogger(__name__)

FILE_NAME = "facts-terms.npz"
SAVE_EVERY = 64  # new terms between rewrites: the 72 eval photos rewrite the file ~6 times, < 1 MB each
MAX_SAVED = 20_000  # a bound in case the vocabulary ever grows: the file stops growing past it


class TermCache(dict):
    """text -> embedding (float32); `save_new` persists what was added since the last save."""

    def __init__(self, folder: Optional[Path] = None, model_key: str = ""):
        super().__init__()
        self.path = Path(folder) / FILE_NAME if folder is not None else None
        self.model_key = model_key
        self._saved: set[str] = set()
        self._private: set[str] = set()
        self._lock = threading.Lock()
        self._loaded = False

    def load(self, model_key: str) -> None:
        """Read the file once per model key; a missing, foreign or broken file leaves the cache as it is."""
        if self._loaded and model_key == self.model_key:
            return
        if self._loaded:  # the text runtime changed (decided on the first ingest batch): do not mix the two
            self.clear()
            self._saved.clear()
        self._loaded, self.model_key = True, model_key
        if self.path is None or not self.path.is_file():
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                if str(data["model_key"]) != model_key:
                    return  # another model or runtime made it: its vectors are not ours
                terms, vectors = data["terms"], data["vectors"].astype(np.float32)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: facts term cache unreadable (%s); the terms are embedded again", self.path, exc)
            return
        for t, v in zip(terms.tolist(), vectors):
            self.setdefault(t, v)
        self._saved.update(terms.tolist())

    def save_new(self, private: Iterable[str] = ()) -> None:
        """Rewrite the file when SAVE_EVERY terms not yet in it were embedded; `private` terms never go in."""
        if self.path is None:
            return
        with self._lock:
            self._private.update(private)
            new = set(self) - self._saved - self._private
            if len(new) < SAVE_EVERY or len(self._saved) >= MAX_SAVED:
                return
            keep = sorted(self._saved.intersection(self) | new)[:MAX_SAVED]
            buf = io.BytesIO()
            np.savez(buf, model_key=np.array(self.model_key), terms=np.array(keep), vectors=np.stack([self[t] for t in keep]))
            from core.images import atomic_write_bytes

            try:
                atomic_write_bytes(self.path, buf.getvalue())
            except OSError as exc:  # a read-only data dir costs speed, not facts
                log.warning("%s: cannot save the facts term cache (%s)", self.path, exc)
                return
            self._saved = set(keep)
