"""The grounding check: a model sentence is shown only when everything it claims is in the data.

The data is the delimited block the model was given (captions, tags, facts, annotations, counts),
the question and the computed answer. Small models fill gaps with plausible inventions ("a food
market catches the eye"), so the rule is strict: one content word outside the data drops the
sentence. Grammar words and talk about photos themselves ("shows", "image") carry no claim.
"""
from __future__ import annotations

import re
from typing import Optional

_EMPTY_CLAIM = re.compile(r"\b(no photos?|no images?|no pictures?|no results?|nothing (?:was )?found|is empty|are empty|library is empty|none of|zero)\b", re.I)
_FILE = re.compile(r"\b[\w.-]+\.(?:jpe?g|png|webp|gif|bmp|tiff?|heic)\b", re.I)
_CITE = re.compile(r"\[(\d+)\]")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")

_NUMBER_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                 "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "single": "1", "both": "2"}
# Words that carry no claim about a photo: grammar, and talk about the library itself.
_FUNCTION = set("""a an the and or but nor so yet if then than that this these those there here it its it's they them their theirs
he she his her him we us our you your i me my mine who whom whose which what when where why how all any some each every both
either neither no not none only just also too very quite rather really more most less least much many few several such same
other another own is are was were be been being am do does did doing done have has had having can could may might must shall
should will would of in on at to for with without within from by about above below under over into onto out up down off
through between among near behind beside across along around against as like unlike per via while whereas because since
although though one ones one's something anything nothing everything someone anyone everyone else yes ok okay well
example examples instance e.g i.e""".split())
_META = set("""photo photos image images picture pictures shot shots snapshot library collection file files caption captions tag tags
class classes label labels labelled labeled called named show shows shown showing depict depicts depicted depicting contain
contains containing contained include includes including included appear appears appearing seen see visible look looks looking
match matches matching matched find found result results number count total closest best first second third fourth fifth
sixth last score scores rated rating data question answer""".split())
_QUOTES = re.compile(r"[\"“”„«»]")


def _stem(word: str) -> str:
    w = word.lower().strip("'-").removesuffix("'s")
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""), ("ly", "")):
        if len(w) > len(suffix) + 2 and w.endswith(suffix) and not (suffix == "s" and w.endswith("ss")):
            return w[: -len(suffix)] + repl
    return w


def content_words(text: str) -> set[str]:
    """Stems of the words of `text` that could carry a claim (not grammar, not talk about photos)."""
    return {_stem(w) for w in re.findall(r"[a-z][a-z'-]*", text.lower()) if w not in _FUNCTION and w not in _META and len(w) > 1}


def _supported(stem: str, support: set[str]) -> bool:
    if stem in support:
        return True
    # "privacy" ~ "private", "kitchen" ~ "kitchenette": a shared start of five letters or more, of most of the word.
    return len(stem) >= 5 and any(len(s) >= 5 and (s.startswith(stem[:max(5, len(stem) - 2)]) or stem.startswith(s[:max(5, len(s) - 2)]))
                                  for s in support)


def tidy_sentence(sentence: str) -> str:
    """A model sentence without stray quote marks and list bullets (they are noise, not content)."""
    s = _QUOTES.sub("", sentence).replace("**", "").replace("__", "")
    s = re.sub(r"^\s*(?:[-*•]+|\d+[.)])\s+", "", s)
    return re.sub(r"\s+", " ", s).strip()


# The prompt's own wording and the data block's field layout (quotes are already gone: see tidy_sentence).
_SCAFFOLD = re.compile(r"question:|answer:|answer in one|data block|</?data>|instructions?\b|\[\d+\]\s*file\b|\bfile \"|"
                       r";\s*(?:caption|tags|sentiment|topics|scores|scene|objects|colours|taken)\b|count of matching", re.I)
_MARKUP = re.compile(r"[<>`*_#|]|\]\(|https?://|www\.", re.M)


_COUNT_CLAIM = re.compile(r"\b(\d+|" + "|".join(_NUMBER_WORDS) + r")\s+(?:[a-z-]+\s+)?(?:photos?|images?|pictures?)\b", re.I)


def grounding_problem(sentence: str, *, n_photos: int, files: set[str], numbers: set[str], found_something: bool,
                      support: Optional[set[str]] = None, lead: str = "", counts: Optional[set[str]] = None) -> Optional[str]:
    """Why a model sentence may not be shown, or None when every claim in it is in the data or the question.

    `support` holds the stems of every word of the data block, the question and the computed answer;
    a sentence with a content word outside it (a place, an object, a mood the data does not hold) is
    dropped whole, since a sentence cannot be shown in part without changing what it says.
    """
    for m in _CITE.finditer(sentence):
        if not 1 <= int(m[1]) <= n_photos:
            return f"cites photo [{m[1]}], which was not retrieved"
    for m in _FILE.finditer(sentence):
        if m[0].lower() not in files:
            return f"names {m[0]}, which was not retrieved"
    no_cites = _FILE.sub(" ", _CITE.sub(" ", sentence))
    for m in _NUMBER.finditer(no_cites):
        if m[0] not in numbers:
            return f"states the number {m[0]}, which is not in the data"
    for w in re.findall(r"[a-z]+", no_cites.lower()):
        if w in _NUMBER_WORDS and w not in ("one", "single", "both") and _NUMBER_WORDS[w] not in numbers:
            return f"states the number {w}, which is not in the data"
    if counts is not None:  # "2 photos" must be the computed count, not any number that happens to be in the data
        for m in _COUNT_CLAIM.finditer(no_cites):
            n = _NUMBER_WORDS.get(m[1].lower(), m[1])
            if n not in counts:
                return f"says {m[0]!r}, but the computed answer counts {' or '.join(sorted(counts)) or 'none'}"
    if found_something and _EMPTY_CLAIM.search(sentence):
        return "claims nothing was found, but photos were retrieved"
    if _MARKUP.search(no_cites):
        return "contains markup or links"
    if _SCAFFOLD.search(sentence) or (lead and (sentence.strip() in lead or lead.strip() in sentence)):
        return "repeats the prompt"
    if support is not None:
        words = content_words(no_cites)
        unsupported = sorted(w for w in words if not _supported(w, support) and w not in _NUMBER_WORDS)
        if unsupported:
            return f"says {', '.join(repr(w) for w in unsupported[:4])}, which the data does not hold"
        if not words and not _CITE.search(sentence):
            return "adds nothing to the computed answer"
    return None
