"""The local zero-shot annotator: prompts from prompts.toml against the active backend.

What "image only" means per backend:
- CLIP (text_space "image"): the image embedding is compared with the prompt embeddings
  directly, in the joint image-text space.
- bundled (text_space "caption"): there is no joint space. The "image" side is the MiniLM
  embedding of the backend's own tag-derived description (`backend.describe(image).caption`,
  i.e. what the ImageNet classifier saw, never the user's caption), compared with the
  MiniLM embeddings of the prompts. It can only see what ImageNet tags can name.

Calibration (dimensions): the cosine similarities of the photo to the five rungs of a
ladder go through a softmax with temperature T (prompts.toml `temperature`); the score is
the expected rung, sum_i p_i * i, rounded to the nearest integer and clipped to 1..5. An
undecided model (flat p) therefore lands on 3, the neutral middle, rather than an extreme.

Concept text: the phrase in [concepts] closest to the photo's caption (or its tags when it
has no caption), in the backend's text space.

Photo facts (core.facts), when the photo has them: the bundled "image" side embeds a sentence
written from the facts (scene, people, objects with WordNet parents, text read) instead of the
tag caption, for the six scores, image sentiment, topics and the concept. For every backend the
`[facts.requires]` / `[facts.implies]` rules of the prompt file then drop topics and concepts the
facts contradict (no "portrait" without a person, no "food" without a food word) and add topics
they prove (a person found -> "people"); see core/annotate/evidence.py.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from PIL import Image

from core.annotate import evidence as ev
from core.annotate import sentiment as sent
from core.annotate import topics as tp
from core.annotate.base import AnnotationResult
from core.annotate.evidence import facts_sentence
from core.annotate.prompts import DIMENSIONS, SENTIMENTS, PromptSet, load_prompts
from core.catalog import Photo

CODE_VERSION = "2"  # 2: reads photo facts (evidence.py)


def ladder_score(sims: np.ndarray, temperature: float) -> int:
    """Five rung similarities -> an integer 1-5 (expected rung under a softmax; see module doc)."""
    p = sent.softmax(np.asarray(sims), temperature)
    expected = float((p * np.arange(1, 6)).sum())
    return int(min(5, max(1, round(expected))))


def caption_text(photo: Photo) -> str:
    """The text the caption side reads: the caption, else the tags, else empty."""
    if photo.caption and photo.caption.strip():
        return photo.caption.strip()
    return ", ".join(t for t, _ in photo.tags[:3])


class ZeroShotAnnotator:
    name = "zeroshot"
    needs_image = True

    def __init__(self, backend, prompts: Optional[PromptSet] = None):
        self.backend = backend
        self.prompts = prompts or load_prompts()
        self.version = f"{backend.model_id}/p{self.prompts.digest()}/v{CODE_VERSION}"
        p = self.prompts
        self.topic_names = list(p.topics)
        texts = [r for d in DIMENSIONS for r in p.ladders[d]]
        self._n_ladder = len(texts)
        sent_texts = [(lab, t) for lab in SENTIMENTS for t in p.sentiment[lab]]
        texts += [t for _, t in sent_texts] + [p.topics[n] for n in self.topic_names] + list(p.concepts)
        emb = backend.embed_texts(texts)  # (P, D), L2-normalised
        i = self._n_ladder
        self.ladder_emb = emb[:i].reshape(len(DIMENSIONS), 5, -1)  # (6, 5, D)
        self._sent_rows = [(lab, emb[i + k]) for k, (lab, _) in enumerate(sent_texts)]
        i += len(sent_texts)
        self.topic_emb = emb[i:i + len(self.topic_names)]  # (T, D)
        i += len(self.topic_names)
        self.concept_emb = emb[i:]  # (C, D)

    def image_vectors(self, images: Sequence[Image.Image], photos: Optional[Sequence[Photo]] = None) -> np.ndarray:
        """(N, D) vectors in the prompts' space that depend on the pixels only (see module doc).

        With a caption-space backend, a photo that has facts is read through the facts sentence
        (people, scene, objects, text); one without facts falls back to the tag caption."""
        if self.backend.text_space == "image":
            return self.backend.embed_images(images)
        facts = [getattr(p, "facts", None) for p in photos] if photos is not None else [None] * len(images)
        need = [k for k, f in enumerate(facts) if f is None]
        sentences = [facts_sentence(f, self.prompts) if f is not None else "" for f in facts]
        if need:
            for k, d in zip(need, self.backend.describe([images[k] for k in need])):
                sentences[k] = d.caption
        return self.backend.embed_texts(sentences)

    def _sentiment_sims(self, vec: np.ndarray) -> dict[str, float]:
        out: dict[str, list[float]] = {lab: [] for lab in SENTIMENTS}
        for lab, e in self._sent_rows:
            out[lab].append(float(e @ vec))
        return {lab: float(np.mean(v)) for lab, v in out.items()}

    def annotate(self, photos: Sequence[Photo], images: Sequence[Optional[Image.Image]]) -> list[AnnotationResult]:
        """Scores, concept, sentiment and topics for each photo with an image."""
        results: list[Optional[AnnotationResult]] = [None] * len(photos)
        usable = [k for k, im in enumerate(images) if im is not None]
        for k in range(len(photos)):
            if images[k] is None:
                results[k] = AnnotationResult(photos[k].id, error="no image to annotate")
        if not usable:
            return results  # type: ignore[return-value]
        T = self.prompts.temperature
        img_vecs = self.image_vectors([images[k] for k in usable], [photos[k] for k in usable])  # (N, D)
        texts = [caption_text(photos[k]) for k in usable]
        has_text = [bool(t) for t in texts]
        txt_vecs = self.backend.embed_texts([t or "a photo" for t in texts])  # (N, D)
        for row, k in enumerate(usable):
            photo, iv, tv = photos[k], img_vecs[row], txt_vecs[row]
            facts = getattr(photo, "facts", None)
            found = ev.evidence(facts, self.prompts) if facts is not None else None  # None = no facts: no rules apply
            ladder_sims = self.ladder_emb @ iv  # (6, 5)
            scores = {d: ladder_score(ladder_sims[j], T) for j, d in enumerate(DIMENSIONS)}
            # With facts, a caption-space backend reads the concept from the facts sentence, not the tag caption.
            concept_vec = iv if facts is not None and self.backend.text_space == "caption" else tv
            concept = ev.best_concept(self.concept_emb @ concept_vec, self.prompts.concepts, found, self.prompts)
            s_cap = sent.caption_sentiment(photo.caption)
            s_img = sent.zero_shot_sentiment(self._sentiment_sims(iv), T)
            if facts is not None:  # the faces' expressions are part of what the image itself shows
                s_img = sent.with_expressions(s_img, facts.expressions)
            # A caption the backend wrote from these same facts is no second view: fusing it would count the
            # facts twice through a lossier sentence, so the combined view is the facts view alone.
            own = facts is not None and (photo.caption_source or "").startswith(f"{self.backend.name}:")
            s_fused = sent.fuse(None if own else s_cap, s_img)
            p_img = ev.gate_topics(tp.topic_probs(self.topic_emb @ iv, T), self.topic_names, found, self.prompts)
            p_cap = tp.topic_probs(self.topic_emb @ tv, T) if has_text[row] else None
            p_fused = ev.gate_topics(tp.fuse_probs(None if own else p_cap, p_img), self.topic_names, found, self.prompts)
            th = self.prompts.topic_threshold
            implied = ev.implied_topics(self.topic_names, found, self.prompts)
            results[k] = AnnotationResult(
                photo.id, scores=scores, concept_text=concept,
                sentiment=s_fused[0], sentiment_score=round(s_fused[1], 4),
                sentiment_caption=s_cap[0] if s_cap else None, sentiment_caption_score=round(s_cap[1], 4) if s_cap else None,
                sentiment_image=s_img[0], sentiment_image_score=round(s_img[1], 4),
                topics=tp.with_topics(tp.pick_topics(p_fused, self.topic_names, th), implied),
                topics_caption=tp.pick_topics(p_cap, self.topic_names, th) if p_cap is not None else [],
                topics_image=tp.with_topics(tp.pick_topics(p_img, self.topic_names, th), implied),
            )
        return results  # type: ignore[return-value]
