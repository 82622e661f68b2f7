"""How readers present and filter photo facts: plain-text lines for details, `where` filters for search.

Both work on the flat keys of `PhotoFacts.index_metadata()`, the same keys Chat counts on, so a
filter on the Search page and a count in Chat select the same photos.
"""
from __future__ import annotations

from typing import Optional

from core.facts import PhotoFacts

SETTINGS = ("indoor", "outdoor")


def facts_where(*, has_people: Optional[bool] = None, has_text: Optional[bool] = None, scene: Optional[str] = None,
                setting: Optional[str] = None, monochrome: Optional[bool] = None) -> Optional[dict]:
    """A Chroma `where` for the given facts filters (None = not filtered); None when nothing is filtered.

    `setting` is "indoor" or "outdoor" (photos whose setting could not be told match neither);
    `monochrome` True = black and white photos. Photos without facts (not yet reindexed) carry none of these keys, so any filter leaves them out."""
    parts: list[dict] = []
    if has_people is not None:
        parts.append({"has_people": bool(has_people)})
    if has_text is not None:
        parts.append({"has_text": bool(has_text)})
    if scene:
        parts.append({"scene": str(scene).strip()})
    if setting:
        value = str(setting).strip().lower()
        if value not in SETTINGS:
            raise ValueError(f"setting filter {setting!r} is not one of {', '.join(SETTINGS)}")
        parts.append({"setting": value})
    if monochrome is not None:
        parts.append({"monochrome": bool(monochrome)})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _people_phrase(n: int) -> str:
    return "none found" if n <= 0 else ("1 person" if n == 1 else f"{n} people")


def facts_lines(facts: Optional[PhotoFacts]) -> list[str]:
    """What the photo details show, as plain text lines (rendered with st.text, never as HTML/Markdown)."""
    if facts is None:
        return ["No facts yet: run Reindex (Library page) or `python -m core reindex`."]
    lines = []
    if facts.caption:
        lines.append(f"Described as: {facts.caption}")
    faces = f" ({facts.faces} face{'s' if facts.faces != 1 else ''})" if facts.faces else ""
    faces += ", a portrait" if facts.is_portrait else ""
    lines.append(f"People: {_people_phrase(facts.people)}{faces}")
    if facts.text:
        lines.append("Text read: " + " | ".join(f'"{t}" ({c:.2f})' for t, c in facts.text))
    else:
        lines.append("Text read: " + ("none" if facts.text_checked else "not checked"))
    lines.append(f"Scene: {facts.scene} ({facts.scene_score:.2f})" if facts.scene else "Scene: unknown")
    if facts.objects:
        lines.append("Objects: " + ", ".join(f"{w} ({p:.2f})" for w, p in facts.objects[:12]))
    if facts.setting:
        lines.append(f"Setting: {facts.setting} ({facts.setting_score:.2f})")
    if facts.landscape:
        lines.append("Seen from colours and layout: " + ", ".join(f"{w} ({p:.2f})" for w, p in facts.landscape))
    if facts.monochrome:
        lines.append("Colours: black and white")
    elif facts.colours:
        lines.append("Colours: " + ", ".join(facts.colours))
    for note in facts.notes:
        lines.append(f"Note: {note}")
    lines.append(f"Facts version: {facts.version}")
    return lines
