"""The editable prompt file: ladders per dimension, sentiment prompts, topics, concept phrases."""
from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

DIMENSIONS = ("Safety", "Belonging", "Naturalness", "Shared", "Privacy", "Convenience")
SENTIMENTS = ("negative", "neutral", "positive")
DEFAULT_PATH = Path(__file__).with_name("prompts.toml")
FACT_PIECES = ("caption", "scene", "people", "objects", "text")


@dataclass(frozen=True)
class PromptSet:
    ladders: dict[str, list[str]]
    sentiment: dict[str, list[str]]
    topics: dict[str, str]
    topic_threshold: float = 0.2
    temperature: float = 0.02
    concepts: list[str] = field(default_factory=list)
    facts_sentence: dict[str, str] = field(default_factory=dict)  # piece name -> template (see prompts.toml [facts])
    facts_objects: int = 8
    requires: dict[str, list[str]] = field(default_factory=dict)  # topic or concept -> evidence words (any one)
    implies: dict[str, list[str]] = field(default_factory=dict)  # topic -> evidence words that add it

    def digest(self) -> str:
        """A short hash of the prompts: part of the annotator version, so edits never mix with old results."""
        blob = json.dumps([self.ladders, self.sentiment, self.topics, self.topic_threshold, self.temperature, self.concepts,
                           self.facts_sentence, self.facts_objects, self.requires, self.implies], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:8]


def topic_key(name: str) -> str:
    """The Chroma metadata key for a topic: `topic_<name>`, lower-case, spaces -> `_`."""
    return "topic_" + "_".join(name.strip().lower().split())


def load_prompts(path: Optional[Path] = None) -> PromptSet:
    """Read and validate a prompt file; errors name the file and the offending entry."""
    path = Path(path or os.environ.get("PHOTOLORE_ANNOTATE_PROMPTS") or DEFAULT_PATH)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read the prompt file {path}: {exc}") from exc
    ladders = data.get("ladders", {})
    for dim in DIMENSIONS:
        rungs = ladders.get(dim)
        if not isinstance(rungs, list) or len(rungs) != 5 or not all(isinstance(r, str) and r.strip() for r in rungs):
            raise ValueError(f"{path}: [ladders] {dim} must be a list of 5 non-empty prompts (rung 1 to rung 5)")
    sentiment = {k: ([v] if isinstance(v, str) else list(v)) for k, v in data.get("sentiment", {}).items()}
    if set(sentiment) != set(SENTIMENTS) or not all(sentiment.values()):
        raise ValueError(f"{path}: [sentiment] needs non-empty prompt lists for exactly {', '.join(SENTIMENTS)}")
    topics_tbl = data.get("topics", {})
    topics = {str(k).strip().lower(): str(v) for k, v in topics_tbl.get("prompts", {}).items()}
    if not topics or "other" in topics:
        raise ValueError(f"{path}: [topics.prompts] needs at least one topic ('other' is implicit: it is what falls below the threshold)")
    threshold = float(topics_tbl.get("threshold", 0.2))
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"{path}: [topics] threshold must be within 0..1, got {threshold}")
    temperature = float(data.get("temperature", 0.02))
    if temperature <= 0:
        raise ValueError(f"{path}: temperature must be > 0, got {temperature}")
    concepts = [str(c) for c in data.get("concepts", {}).get("phrases", [])] or ["a photo"]
    facts = data.get("facts", {})
    sentence = {str(k): str(v) for k, v in facts.get("sentence", {}).items()}
    unknown = set(sentence) - set(FACT_PIECES)
    if unknown:
        raise ValueError(f"{path}: [facts.sentence] {sorted(unknown)[0]!r} is not a fact; use {', '.join(FACT_PIECES)}")
    for piece, template in sentence.items():
        if "{" + piece + "}" not in template:
            raise ValueError(f"{path}: [facts.sentence] {piece} must contain {{{piece}}}, got {template!r}")
    rules = {}
    for table, allowed in (("requires", set(topics) | set(concepts)), ("implies", set(topics))):
        rules[table] = {}
        for name, words in facts.get(table, {}).items():
            if name not in allowed:
                raise ValueError(f"{path}: [facts.{table}] {name!r} is not a {'topic or concept phrase' if table == 'requires' else 'topic'} of this file")
            words = [words] if isinstance(words, str) else list(words)
            if not words or not all(isinstance(w, str) and w.strip() for w in words):
                raise ValueError(f"{path}: [facts.{table}] {name!r} needs a non-empty list of evidence words")
            rules[table][name] = [w.strip().lower() for w in words]
    return PromptSet({d: list(ladders[d]) for d in DIMENSIONS}, sentiment, topics, threshold, temperature, concepts,
                     sentence, int(facts.get("objects", 8)), rules["requires"], rules["implies"])
