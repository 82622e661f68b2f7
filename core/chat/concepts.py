"""A small question grammar over photo facts: concept words -> conditions, joined by "or", "and", "without".

A question (after intent, dates, scores and sentiment are taken out) is read as a sequence of items:
concept phrases found by the lexicon below, and runs of other content words. Items are joined by
their connectors: "or" puts two items in one any-of group, "without" / "no" / "not" / "except"
negates the next item, everything else is "and". Other words are matched by search score (a
"semantic" condition, with Search's cut-off), except a word right before a concept ("everyday
objects", "outer space"), which only orders the photos. The result is a conjunction of any-of groups
(CNF), which is enough for "cats or dogs", "animals without people", "indoor photos with no
people", "photos that are not black and white".

The lexicon is data about the facts, not about any question: each concept names an index metadata
key written by `PhotoFacts.index_metadata()` (people, text, setting, monochrome, scene, objects,
colours) or an annotation topic. When two concepts claim the same words the longer phrase wins,
then the order of `_PRIORITY` (facts before topics before object words): "animals" is the
annotator's topic where the library has it, an ImageNet WordNet parent otherwise.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Literal, Sequence, Union

from pydantic import BaseModel

# Scene groups: a word that names several scenes. Names cover both the extractor's scenes
# (core/facts/scenes.toml) and the hand labels' (tests/data/eval/README.md); only names present in
# the library are ever matched, so an absent one costs nothing.
ROOM_SCENES = ("kitchen", "bathroom", "bedroom", "living room", "dining room", "office")
LANDSCAPE_SCENES = ("beach", "mountain", "forest", "field", "water", "lake", "harbour", "farm")
# Whether an object word is answered by the extracted object list (True) or by Search's score with its
# cut-off (False). Score: "how many cats" then agrees with Search for "cats", and the score already
# weighs the object words (and their WordNet parents) by probability, while the index keeps only the
# top-12 words without it (a retina's first word is "animal"). On the eval set (bench_chat --objects):
# extracted-facts count accuracy 0.45 by score vs 0.52 by the list; see the README for the numbers.
OBJECT_FACTS_DECIDE = False
_PRIORITY = ("fact", "scene", "topic", "object", "synonym")


class Cond(BaseModel):
    """One test on a photo's index metadata; `key` "semantic" tests the search score instead."""

    key: str  # has_people, people_count, portrait, has_text, setting, monochrome, scene, objects, detected, colours, topic_<name>, semantic
    op: Literal["eq", "ge", "in", "has"] = "eq"
    value: Union[bool, int, str, list[str]]
    negate: bool = False
    label: str = ""
    also: str = ""  # search text whose match (Search's cut-off) satisfies the condition too: the detector can miss


    def describe(self) -> str:
        label = self.label or f"{self.key} {self.op} {self.value}"
        if self.negate:
            return "without" + label[4:] if label.startswith("with ") else "not " + label
        return label


@dataclass
class _Concept:
    pattern: str  # regex over the normalised question (lower case, single spaces)
    conds: Callable[[re.Match], list[Cond]]
    kind: str  # one of _PRIORITY


# Words that never name a subject (question words, "photo", fillers): no concept is made of them, and
# the query reads what is left after them as search text.
STOP_WORDS = set("""a an the of me my i we you show find give list get display any some all photo photos picture pictures image images
pic pics that which who what is are was were be it its in on at to for with about do does did have has there their this these those
please can could would will feel feels feeling look looks looking like most least more less very how many much number count
and or by from than as one ones shot shots taken kind sort tell describe whats what's photograph photographs
them only just also ones""".split())

_NUMBERS = {"one": 1, "a single": 1, "single": 1, "a lone": 1, "lone": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_NEG_WORDS = {"without", "no", "not", "non", "except", "excluding", "nor"}
_NEG = re.compile(rf"\b(?:{'|'.join(_NEG_WORDS)})\b")
_OR = re.compile(r"\b(?:or|and/or)\b")
_JOINERS = {"or", "but", "either", "neither", "both", "yet", "also"}  # connectors, never a subject


def _plural(word: str) -> str:
    """A regex for `word` or its plural (word boundaries included)."""
    w = re.escape(word).replace(r"\ ", r"[\s_-]+")
    if word.endswith("y") and not word.endswith(("ay", "ey", "oy")):
        w = w[:-1] + "(?:y|ies)"
    return rf"(?<![a-z0-9]){w}(?:s|es)?(?![a-z0-9])"


def fact_concepts(scenes: Sequence[str], colours: Sequence[str], known_scenes: Sequence[str] = ()) -> list[_Concept]:
    """Concepts answered by photo facts; `scenes` are the scene names present in the library.

    `known_scenes` (the extractor's scene names) are matched too, so "how many kitchens?" is an honest
    0 in a library without one, rather than a guess from search scores."""
    def one(c: Cond) -> Callable[[re.Match], list[Cond]]:
        return lambda _m: [c.model_copy()]

    people = Cond(key="has_people", value=True, label="with people")
    out = [
        _Concept(r"\bblack(?:\s+and\s+|\s*&\s*|-and-)white\b|\bb\s*&\s*w\b|\bb/w\b|\bmonochrome\b|\bgr[ae]y\s*scale\b",
                 one(Cond(key="monochrome", value=True, label="black and white")), "fact"),
        _Concept(r"\bin\s+colou?r\b|\bcolou?r(?:ed|ful)?\s+(?=photos?|pictures?|images?)",
                 one(Cond(key="monochrome", value=True, negate=True, label="black and white")), "fact"),
        _Concept(r"\b(?:a\s+)?(?:groups?|crowds?)(?:\s+of\s+(?:people|persons))?\b|\bcrowded\b",
                 one(Cond(key="people_count", op="ge", value=3, label="3 or more people")), "fact"),
        _Concept(rf"\b(more\s+than|over|at\s+least)\s+({'|'.join(_NUMBERS)}|\d+)\s+(?:people|persons?|men|women|humans?)\b",
                 lambda m: [_people_at_least((_NUMBERS.get(m[2], None) or int(m[2])) + (0 if m[1].startswith("at") else 1))], "fact"),
        _Concept(rf"\b({'|'.join(_NUMBERS)}|\d+)\s+(?:people|persons?|men|women|man|woman|humans?)\b",
                 lambda m: [_people_count(_NUMBERS.get(m[1], None) or int(m[1]))], "fact"),
        # A portrait: the photo facts' own definition (PhotoFacts.is_portrait), the one the caption uses.
        _Concept(r"\bportraits?\b", one(Cond(key="portrait", value=True, label="portraits (one person, face large in the frame)")),
                 "fact"),
        _Concept(r"\b(?:nobody|no\s*one)\b", one(people.model_copy(update={"negate": True})), "fact"),
        _Concept(r"\b(?:people|persons?|humans?|someone|somebody|anyone|faces?|men|women|man|woman)\b", one(people), "fact"),
        _Concept(r"\b(?:text|writing|written\s+words|words|lettering|letters|signs?|signage|inscriptions?)\b",
                 one(Cond(key="has_text", value=True, label="with text")), "fact"),
        _Concept(r"\b(?:outdoors?|outside|out\s+of\s+doors|open\s+air)\b",
                 one(Cond(key="setting", value="outdoor", label="outdoors")), "fact"),
        _Concept(r"\b(?:indoors?|inside)\b", one(Cond(key="setting", value="indoor", label="indoors")), "fact"),
    ]
    present = set(scenes)
    for word, group in (("room", ROOM_SCENES), ("landscape", LANDSCAPE_SCENES)):
        names = [s for s in group if s in present or s in known_scenes]
        if names:  # answers put the filters in parentheses: "(rooms (kitchen, ...))" read badly
            out.append(_Concept(_plural(word), one(Cond(key="scene", op="in", value=names, label=f"{word}s: {' / '.join(names)}")), "fact"))
    by_alias: dict[str, list[str]] = {}  # "sky" names both the extractor's "sky" and a library's "sky/space"
    for s in sorted(present | set(known_scenes)):
        for alias in sorted({s, *s.split("/")} - {"other", "indoor", ""}):
            by_alias.setdefault(alias, []).append(s)
    for alias, names in by_alias.items():
        cond = (Cond(key="scene", value=names[0], label=f"scene = {names[0]}") if len(names) == 1
                else Cond(key="scene", op="in", value=names, label=f"scene = {' or '.join(names)}"))
        out.append(_Concept(_plural(alias), one(cond), "scene"))
    for c in colours:
        out.append(_Concept(rf"\b{re.escape(c)}\b", one(Cond(key="colours", op="has", value=c, label=f"colour {c}")), "fact"))
    return out


def _people_at_least(n: int) -> Cond:
    return Cond(key="people_count", op="ge", value=n, label=f"{n} or more people")


def detected_concepts() -> list[_Concept]:
    """The object detector's labels and their other words (core.facts.detected): "dogs", "a sofa",
    "washbasins" test the photo's detected objects, the fact Search's object filter reads."""
    from core.facts.detected import words_of
    from models.objects import COCO_LABELS

    out = []
    for label in COCO_LABELS:
        if label == "person":
            continue  # people are the people facts above
        cond = Cond(key="detected", op="has", value=label, label=f"with {label}")
        for word in words_of(label):
            if len(word) >= 3 and word not in STOP_WORDS:
                # the photo counts when the detector found the object, or when the words as asked match
                # it as a search would (a cat the detector missed, curled up, is still a cat)
                out.append(_Concept(_plural(word), lambda m, c=cond: [_or_matching(c, " ".join(m[0].split()))], "fact"))
    return out


def _or_matching(cond: Cond, said: str) -> Cond:
    # No parentheses: the label is itself shown in parentheses after the count.
    return cond.model_copy(update={"also": said, "label": f"detected {cond.value} or matching “{said}”"})


def _people_count(n: int) -> Cond:
    return Cond(key="people_count", value=n, label="1 person" if n == 1 else f"{n} people")


def topic_concepts(topics: Sequence[str], prompts: dict[str, str]) -> list[_Concept]:
    """Annotation topics by name (or plural), then by the content words of the annotator's prompt for them."""
    from core.annotate.prompts import topic_key

    out = []
    for t in topics:
        cond = Cond(key=topic_key(t), value=True, label=f"topic = {t}")
        out.append(_Concept(_plural(t), lambda _m, c=cond: [c.model_copy()], "topic"))
        for w in set(re.findall(r"[a-z][a-z-]+", prompts.get(t, "").lower())) - STOP_WORDS - {"close-up", "or", t}:
            out.append(_Concept(_plural(w), lambda _m, c=cond: [c.model_copy()], "synonym"))
    return out


def object_concepts(words: Sequence[str]) -> list[_Concept]:
    """Object words: ImageNet names and their WordNet parents (the detector's words are detected_concepts)."""
    ok = sorted({w for w in words if len(w) >= 3 and w not in STOP_WORDS}, key=len, reverse=True)
    if not ok:
        return []
    alt = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in ok)

    def cond(m: re.Match) -> list[Cond]:
        word = " ".join(m[1].split())
        if not OBJECT_FACTS_DECIDE:  # the words as asked, exactly what Search would be given
            said = " ".join(m[0].split())
            return [Cond(key="semantic", value=said, label=f"matching “{said}”")]
        return [Cond(key="objects", op="has", value=word, label=f"object {word}")]

    return [_Concept(rf"(?<![a-z0-9])({alt})(?:s|es)?(?![a-z0-9])", cond, "object")]


@lru_cache(maxsize=1)
def imagenet_object_words() -> tuple[str, ...]:
    """The nameable ImageNet words (class names and everyday parents such as "dog", "vehicle")."""
    from core.facts.words import vocabulary

    v = vocabulary()
    return tuple(w for w, ok in zip(v.words, v.nameable) if ok)


@lru_cache(maxsize=1)
def topic_prompts() -> dict[str, str]:
    """The annotator's topic prompts (core/annotate/prompts.toml): what each topic means, in words."""
    import tomllib
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "annotate" / "prompts.toml"
    try:
        return dict(tomllib.loads(path.read_text(encoding="utf-8")).get("topics", {}).get("prompts", {}))
    except (OSError, ValueError):
        return {}


@dataclass
class Parsed:
    groups: list[list[Cond]]  # all of these groups, each any of its conditions
    rank_words: str  # words qualifying a concept ("everyday" objects): they order the photos, they do not filter them


def parse_concepts(q: str, concepts: Sequence[_Concept], stop: set[str]) -> Parsed:
    """Read `q` as concept items and word runs joined by or / and / without (see the module docstring)."""
    spans: list[tuple[int, int, list[Cond]]] = []
    found = []
    for c in concepts:
        for m in re.finditer(c.pattern, q):
            if m.end() > m.start():
                found.append((-(m.end() - m.start()), _PRIORITY.index(c.kind), m.start(), m.end(), c, m))
    taken = [False] * len(q)
    for _neg_len, _prio, a, b, c, m in sorted(found, key=lambda f: (f[0], f[1], f[2])):
        if any(taken[a:b]):
            continue
        taken[a:b] = [True] * (b - a)
        spans.append((a, b, c.conds(m)))
    # content words outside concepts: each run is an item of its own (a semantic condition when or-ed)
    for m in re.finditer(r"[a-z0-9][a-z0-9'_-]*", q):
        if not any(taken[m.start():m.end()]) and m[0] not in stop and m[0] not in _NEG_WORDS and m[0] not in _JOINERS:
            spans.append((m.start(), m.end(), [Cond(key="semantic", value=m[0], label=f"matching “{m[0]}”")]))
    spans.sort(key=lambda s: s[0])
    groups: list[list[Cond]] = []
    rank: list[str] = []
    prev_end, prev_semantic = 0, False
    for i, (a, b, conds) in enumerate(spans):
        gap = q[prev_end:a]
        is_semantic = conds[0].key == "semantic"
        nxt_gap = q[b:spans[i + 1][0]] if i + 1 < len(spans) else ""
        modifier = i + 1 < len(spans) and spans[i + 1][2][0].key != "semantic" and not nxt_gap.strip()
        if is_semantic and modifier:
            rank.append(conds[0].value)  # "outer" space, "everyday" objects: a word qualifying a concept orders only
            continue  # the connector before it ("sky or outer space") belongs to the concept it qualifies
        if _NEG.search(gap):
            conds = [c.model_copy(update={"negate": not c.negate}) for c in conds]
        if groups and _OR.search(gap) and len(conds) == 1:
            if conds[0] not in groups[-1]:
                groups[-1].append(conds[0])
        elif is_semantic and prev_semantic and groups and not gap.strip():  # "outer space": one phrase
            phrase = f"{groups[-1][-1].value} {conds[0].value}"
            groups[-1][-1] = groups[-1][-1].model_copy(update={"value": phrase, "label": f"matching “{phrase}”"})
        else:
            groups += [[c] for c in conds if [c] not in groups]
        prev_end, prev_semantic = b, is_semantic
    return Parsed(groups=groups, rank_words=" ".join(rank))


def cond_holds(c: Cond, meta: dict, semantic_ids: dict[str, set[str]], pid: str) -> bool:
    """Whether a photo (its index metadata) meets `c`; a photo without the fact never does, negated or not."""
    if c.key == "semantic":
        hit = pid in semantic_ids.get(str(c.value), set())
        return hit != c.negate
    if c.also and pid in semantic_ids.get(c.also, set()):
        return not c.negate
    if c.key not in meta:
        return False  # unknown (no facts yet, or an older facts version): neither with nor without
    v = meta[c.key]
    if c.op == "eq":
        hit = (float(v) >= 0.5) == c.value if c.key == "monochrome" and not isinstance(v, bool) else v == c.value
    elif c.op == "ge":
        hit = isinstance(v, (int, float)) and v >= c.value
    elif c.op == "in":
        hit = v in c.value
    else:
        items = v if isinstance(v, list) else [s.strip() for s in str(v).split(",")]
        target = _singular(str(c.value))
        hit = any(_singular(str(o).lower()) == target for o in items)
    return hit != c.negate


def _singular(word: str) -> str:
    for plural, single in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("xes", "x"), ("s", "")):
        if len(word) > 3 and word.endswith(plural) and not word.endswith("ss"):
            return word[: -len(plural)] + single
    return word


def describe_groups(groups: Sequence[Sequence[Cond]]) -> list[str]:
    """Each any-of group in words ("object cat or object dog")."""
    return [" or ".join(c.describe() for c in g) for g in groups]


@lru_cache(maxsize=1)
def known_scene_names() -> tuple[str, ...]:
    """The scene names the facts extractor can write (core/facts/scenes.toml)."""
    from core.facts.scenes import load_scene_rules

    try:
        return tuple(r.name for r in load_scene_rules().rules)
    except (OSError, ValueError):
        return ()
