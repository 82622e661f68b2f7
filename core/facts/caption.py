"""A caption sentence written from a photo's facts ("a bathroom with a bathtub and a washbasin")."""
from __future__ import annotations

from typing import Sequence

_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five"}


_DETERMINERS = ("a", "an", "the", "two", "three", "four", "five", "six", "many")


def article(word: str) -> str:
    """"an apple", "a cat"; a phrase that is counted already ("two dogs", "a toilet") is kept."""
    if word.split(" ", 1)[0] in _DETERMINERS and " " in word:
        return word
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def people_phrase(people: int, portrait: bool) -> str:
    """`portrait`: PhotoFacts.is_portrait."""
    if people <= 0:
        return ""
    if people == 1:
        return "a portrait of a person" if portrait else "a person"
    if people <= 5:
        return f"{_NUMBERS[people]} people" if people < 3 else f"a group of {_NUMBERS[people]} people"
    return "a group of people"


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" and {items[-1]}"


# How colour-and-layout cues (core.facts.cues) read in a caption.
LANDSCAPE_NOUNS = {"sky": "the sky", "sunset": "a sunset", "water": "water", "grass": "grass", "trees": "trees",
                   "snow": "snow", "sand": "sand", "night": "night lights"}


def write_caption(*, people: str, scene_phrase: str, scene_where: str = "", scene_objects: Sequence[str], objects: Sequence[str],
                  text: str = "", colours: Sequence[str] = (), landscape: Sequence[str] = (), monochrome: bool = False) -> str:
    """Compose the caption. `scene_objects` are the detected objects that are evidence for the scene;
    `objects` are the most specific likely objects, best first; `landscape` the colour-and-layout cues, best first."""
    others = [o for o in objects if o not in scene_objects]
    if people and scene_phrase:
        sentence = f"{people} {scene_where or 'in ' + scene_phrase}"
    elif people:
        sentence = people + (f" with {article(others[0])}" if others else "")
    elif scene_phrase and others and not scene_objects:
        sentence = f"{article(others[0])} {scene_where or 'in ' + scene_phrase}"
    elif scene_phrase:
        # not the scene's own word again ("a building with a building", "a lake with a lakeside")
        named = [w for w in scene_phrase.split() if w not in ("a", "an", "the")]
        shown = [article(o) for o in (scene_objects or others)[:2] if not any(w in o for w in named)]
        sentence = scene_phrase + (f" with {_join(shown)}" if shown else "")
    elif objects:
        sentence = _join([article(o) for o in objects[:2]])
    elif text:
        sentence = "a photo"  # the text says more than a colour would
    elif landscape:  # nothing ImageNet knows, but the layout says what fills the frame
        sentence = "a view of " + _join([LANDSCAPE_NOUNS.get(w, w) for w in landscape[:2]])
    elif monochrome:
        sentence = "a black and white photo"
    else:
        sentence = f"a mostly {colours[0]} photo" if colours else "a photo"
    if text:
        short = text if len(text) <= 40 else text[:37].rstrip() + "..."
        sentence += f' with the text "{short}"'
    return sentence
