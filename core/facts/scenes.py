"""Scenes (kitchen, street, beach, ...) inferred from object words, people and text by editable rules.

The rules live in `scenes.toml` (or a file the caller passes). Each scene lists evidence with a
weight; a photo's evidence is summed and squashed into a confidence:
    confidence = 1 - exp(-(sum of weight * word score + people weight + text weight))
so two strong cues (a bathtub and a washbasin) beat one weak one. A bad file fails loudly with
the file and line, never silently with fewer scenes.
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from core.facts.cues import CUE_NAMES

SCENES_FILE = Path(__file__).with_name("scenes.toml")


class SceneRulesError(ValueError):
    """The scene rules file is unreadable or invalid; the message names the file and line."""


@dataclass(frozen=True)
class SceneRule:
    name: str
    phrase: str  # how a caption names it: "a kitchen"
    objects: dict[str, float]
    where: str = ""  # how a caption places something in it: "on a patio" (default "in " + phrase)
    people: float = 0.0
    text: float = 0.0
    cues: dict[str, float] = field(default_factory=dict)  # colour-and-layout cues (core.facts.cues): {"water": 2.0}


@dataclass(frozen=True)
class SceneRules:
    rules: list[SceneRule]
    min_confidence: float

    def infer(self, word_score: Mapping[str, float], *, people: int = 0, has_text: bool = False,
              cues: Mapping[str, float] | None = None) -> tuple[str, float]:
        """(scene name, confidence) of the best rule, or ("", best confidence) when none reaches min_confidence."""
        best, best_conf = "", 0.0
        cues = cues or {}
        for rule in self.rules:
            evidence = sum(w * word_score.get(word, 0.0) for word, w in rule.objects.items())
            evidence += sum(w * cues.get(cue, 0.0) for cue, w in rule.cues.items())
            if evidence <= 0:
                continue  # people or text alone never make a place
            evidence += rule.people * (people > 0) + rule.text * has_text
            conf = 1.0 - math.exp(-max(evidence, 0.0))
            if conf > best_conf:
                best, best_conf = rule.name, conf
        return (best, round(best_conf, 3)) if best_conf >= self.min_confidence else ("", round(best_conf, 3))

    def rule(self, name: str) -> SceneRule | None:
        return next((r for r in self.rules if r.name == name), None)


def _line_of(text: str, needle: str) -> int:
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return n
    return 0


def load_scene_rules(path: Path | str = SCENES_FILE, *, known_words: set[str] | None = None) -> SceneRules:
    """Parse and validate a scene rules file; `known_words` (the object vocabulary) catches typos."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SceneRulesError(f"{path}: cannot read the scene rules ({exc.strerror or exc})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        where = f"line {m.group(1)}" if m else "somewhere"
        raise SceneRulesError(f"{path}, {where}: not valid TOML ({exc}); fix that line or restore the file from git") from exc

    def fail(scene: str, msg: str) -> SceneRulesError:
        line = _line_of(text, f"[scene.{scene}]") or _line_of(text, f'[scene."{scene}"]') or "?"
        return SceneRulesError(f"{path}, line {line} ([scene.{scene}]): {msg}")

    min_conf = data.get("min_confidence", 0.4)
    if not isinstance(min_conf, (int, float)) or not 0 <= min_conf <= 1:
        raise SceneRulesError(f"{path}, line {_line_of(text, 'min_confidence')}: min_confidence must be a number in 0..1")
    scenes = data.get("scene")
    if not isinstance(scenes, dict) or not scenes:
        raise SceneRulesError(f"{path}: no [scene.NAME] tables found; each scene needs an `objects` table")
    rules = []
    for name, body in scenes.items():
        if not isinstance(body, dict):
            raise fail(name, "expected a table with `objects`, `phrase`, `people`, `text`")
        unknown = set(body) - {"phrase", "where", "objects", "cues", "people", "text"}
        if unknown:
            raise fail(name, f"unknown key(s) {sorted(unknown)}; allowed: phrase, where, objects, cues, people, text")
        objects, cues = body.get("objects", {}), body.get("cues", {})
        if not isinstance(objects, dict) or not isinstance(cues, dict) or not (objects or cues):
            raise fail(name, "`objects` (and/or `cues`) must be a table of word = weight")
        for cue, w in cues.items():
            if cue not in CUE_NAMES:
                raise fail(name, f"'{cue}' is not a colour-and-layout cue; known: {', '.join(CUE_NAMES)}")
            if not isinstance(w, (int, float)) or isinstance(w, bool):
                raise fail(name, f"the weight of cue '{cue}' must be a number, not {w!r}")
        for word, w in objects.items():
            if not isinstance(w, (int, float)) or isinstance(w, bool):
                raise fail(name, f"the weight of '{word}' must be a number, not {w!r}")
            if known_words is not None and word not in known_words:
                raise fail(name, f"'{word}' is not an object word PhotoLore knows (see core/facts/imagenet_words.json and core/facts/detected.py)")
        for key in ("people", "text"):
            if not isinstance(body.get(key, 0.0), (int, float)):
                raise fail(name, f"`{key}` must be a number")
        phrase = str(body.get("phrase") or f"a {name}")
        rules.append(SceneRule(name, phrase, {k: float(v) for k, v in objects.items()}, str(body.get("where") or f"in {phrase}"),
                               float(body.get("people", 0.0)), float(body.get("text", 0.0)),
                               {k: float(v) for k, v in cues.items()}))
    return SceneRules(rules, float(min_conf))
